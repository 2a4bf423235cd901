/// Which spans' inputs and outputs a reader of stored traces loads.
///
/// Span payloads are most of a stored trace's bytes (in the test fixture's traces, CHAT_MODEL
/// spans hold about two thirds of them), and reading them back means PostgreSQL printing
/// jsonb and Assay parsing it again. Scoring needs only some of them.
public enum SpanPayloads: Int, Sendable, Comparable, CaseIterable {
    /// What scorers that read spans through `TraceText` use: the inputs and outputs of root
    /// spans (no parent) and of spans that may be retrievers. A non-root span of an MLflow
    /// trace whose type is exactly one of ``typesWithoutScoredPayload`` keeps none. OTLP
    /// traces keep every payload: their root's request and response are lifted from its
    /// children when they are rebuilt.
    case rootAndRetrievers
    /// Every span's inputs and outputs.
    case all

    /// MLflow span types, as MLflow writes them, that are not RETRIEVER in any letter case.
    /// Spans of any other type (or none) keep their payloads.
    public static let typesWithoutScoredPayload = ["LLM", "CHAT_MODEL", "TOOL", "CHAIN", "AGENT", "EMBEDDING", "PARSER", "RERANKER", "UNKNOWN"]

    /// Trace formats whose spans can drop payloads (not OTLP).
    public static let formatsWithoutLiftedPayloads: [TraceFormat] = [.mlflow3, .mlflow2]

    public static func < (lhs: SpanPayloads, rhs: SpanPayloads) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Whether `span`, of a trace in `format`, keeps its inputs and outputs.
    public func keepsPayload(of span: Span, traceFormat format: TraceFormat) -> Bool {
        switch self {
        case .all:
            return true
        case .rootAndRetrievers:
            guard span.parentSpanID != nil, Self.formatsWithoutLiftedPayloads.contains(format),
                  let type = span.spanType, Self.typesWithoutScoredPayload.contains(type) else { return true }
            return false
        }
    }

    /// `trace` with the payloads this selection does not keep set to nil, as a reader using it
    /// returns the trace.
    public func applied(to trace: Trace) -> Trace {
        var result = trace
        for index in result.spans.indices where !keepsPayload(of: result.spans[index], traceFormat: trace.format) {
            result.spans[index].inputs = nil
            result.spans[index].outputs = nil
        }
        return result
    }
}
