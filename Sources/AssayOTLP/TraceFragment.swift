import AssayCore

/// The spans of one trace that one OTLP message carried under one resource, already mapped onto
/// AssayCore's ``Span``.
///
/// An `ExportTraceServiceRequest` yields one fragment per (`ResourceSpans`, trace id) pair, in the
/// order the trace ids first appear. A trace split across messages (or partitions) arrives as
/// several fragments; ``TraceAssembler`` (in memory) or the database-backed ingest merges them by
/// ``traceIDHex`` and span id, and ``OTLPTraceBuilder`` turns the merged spans into a ``Trace``.
///
/// ## How an OTLP span becomes a ``Span``
/// - **Ids**: trace ids are 32 and span ids 16 lowercase hex digits (protobuf bytes are
///   hex-encoded; OTLP/JSON hex is lowercased). An empty (or all-zero) `parentSpanId` is a root:
///   `parentSpanID == nil`. Empty or all-zero trace/span ids are rejected.
/// - **Times**: `startTimeUnixNano`; `endTimeUnixNano` of 0 (unset) becomes `endTimeNanos == nil`.
/// - **Status**: code 0/1/2 → `UNSET`/`OK`/`ERROR` (other numbers → `UNSET`), with the message.
/// - **Events** → ``SpanEvent`` with their attributes.
/// - **Attributes**: every attribute is kept, AnyValue → ``JSONValue``: string, bool, int (a JSON
///   number), double (a JSON number; NaN/±Infinity as the strings `"NaN"`, `"Infinity"`,
///   `"-Infinity"`), bytes (a standard base64 string), array → array, kvlist → object, empty →
///   `null`. String values stay strings (JSON text inside them is not decoded), except
///   `mlflow.*` attributes, which MLflow writes JSON-encoded and which are decoded as the MLflow
///   decoder does. `mlflow.spanInputs`/`mlflow.spanOutputs` move to ``Span/inputs``/``Span/outputs``
///   (as in the MLflow decoder); all others stay, including those that inputs and outputs are
///   derived from. Added, unless the producer set them: `otel.scope.name`, `otel.scope.version`,
///   `otel.span.kind` (`SERVER`, `CLIENT`, …), `otel.trace_state`, `otel.links` (`[{trace_id,
///   span_id, trace_state?, attributes?}]`) and `otel.dropped_{attributes,events,links}_count`
///   when non-zero, and `mlflow.chat.tokenUsage` (see below).
/// - **Span type** (the first that applies): `mlflow.spanType`; OpenInference
///   `openinference.span.kind` (`LLM` → `CHAT_MODEL` when the span has `llm.input_messages.*` or
///   `llm.output_messages.*`, else `LLM`; any other kind as written, upper-cased: `RETRIEVER`,
///   `TOOL`, `CHAIN`, `AGENT`, `EMBEDDING`, `RERANKER`, `GUARDRAIL`, …); GenAI
///   `gen_ai.operation.name` (`chat`/`generate_content` → `CHAT_MODEL`, `text_completion` → `LLM`,
///   `embeddings` → `EMBEDDING`, `execute_tool` → `TOOL`, `invoke_agent`/`create_agent` → `AGENT`,
///   `retrieval` → `RETRIEVER`); Traceloop `traceloop.span.kind` / `llm.request.type`; a span with
///   `gen_ai.request.model` but no operation → `LLM`; otherwise `UNKNOWN` (as MLflow types an
///   unannotated span — an HTTP `SERVER` root, for instance).
/// - **Inputs** (the first present): `mlflow.spanInputs`; OpenInference `input.value` (parsed as
///   JSON when `input.mime_type` is `application/json`, or when there is no mime type and the text
///   is a JSON object or array; else the string); GenAI `gen_ai.input.messages` ("parts" format,
///   JSON text or structured) → chat messages `[{role, content, tool_calls?, tool_call_id?,
///   finish_reason?}]` (text parts joined with a newline; `tool_call` parts → OpenAI-style
///   `tool_calls`; a `tool_call_response` part → `content` and `tool_call_id`), preceded by a
///   `system` message from `gen_ai.system_instructions`; `gen_ai.tool.call.arguments`;
///   `gen_ai.retrieval.query.text` → `{"query": …}`; flattened OpenInference
///   `llm.input_messages.N.message.*` or Traceloop `gen_ai.prompt.N.*` → chat messages; older
///   GenAI message events (`gen_ai.{system,user,assistant,tool}.message`, `gen_ai.content.prompt`).
/// - **Outputs** (the first present): `mlflow.spanOutputs`; for a `RETRIEVER`, its documents;
///   `output.value` (as for inputs); `gen_ai.output.messages` → chat messages;
///   `gen_ai.tool.call.result`; documents on a non-retriever; `llm.output_messages.N.message.*` or
///   `gen_ai.completion.N.*`; older `gen_ai.choice` / `gen_ai.content.completion` events.
/// - **Documents**: OpenInference `retrieval.documents.N.document.{content,id,score,metadata}`
///   (ordered by N) or GenAI `gen_ai.retrieval.documents` (a JSON list) → MLflow documents
///   `[{"page_content", "metadata": {…, "doc_uri", "score"}, "id"}]`, where `metadata` is the
///   producer's (JSON-decoded), `doc_uri` comes from the metadata (or its `uri`/`url`/`source`)
///   and otherwise is the document id. This is what AssayScoring's `TraceText` reads as retrieved documents.
/// - **Token usage**: GenAI `gen_ai.usage.input_tokens`/`output_tokens` or OpenInference
///   `llm.token_count.prompt`/`completion`/`total` are also written as MLflow's
///   `mlflow.chat.tokenUsage` `{input_tokens, output_tokens, total_tokens}` (total = input +
///   output unless given), unless the span already has it.
public struct TraceFragment: Sendable, Equatable {
    /// The OpenTelemetry trace id: 32 lowercase hex digits.
    public var traceIDHex: String
    /// The attributes of the resource the spans came from (`service.name`, `service.version`,
    /// `deployment.environment.name`, …), AnyValue → ``JSONValue`` as for span attributes.
    public var resourceAttributes: [String: JSONValue]
    /// The spans, in message order.
    public var spans: [Span]

    /// A fragment of trace `traceIDHex` with the given resource attributes and spans.
    public init(traceIDHex: String, resourceAttributes: [String: JSONValue], spans: [Span]) {
        self.traceIDHex = traceIDHex
        self.resourceAttributes = resourceAttributes
        self.spans = spans
    }

    /// The Assay trace id, `tr-<32 hex>`, so MLflow and OTLP ids look alike (its
    /// ``Trace/canonicalTraceID`` is ``traceIDHex``).
    public var traceID: String { "tr-" + traceIDHex }

    /// The spans without a parent.
    public var rootSpans: [Span] { spans.filter { $0.parentSpanID == nil } }

    /// Whether this fragment holds a root span that has ended (the usual sign that the trace is
    /// complete, once the fragments before it have arrived).
    public var containsEndedRoot: Bool {
        spans.contains { $0.parentSpanID == nil && $0.endTimeNanos != nil }
    }

    /// The earliest span start, or nil for an empty fragment.
    public var earliestStartTimeNanos: Int64? { spans.map(\.startTimeNanos).min() }

    /// The latest span end, or nil when no span has ended.
    public var latestEndTimeNanos: Int64? { spans.compactMap(\.endTimeNanos).max() }
}
