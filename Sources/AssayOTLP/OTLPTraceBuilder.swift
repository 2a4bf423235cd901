import AssayCore

/// How close the spans of one trace are to a complete trace.
///
/// A trace is complete when it has exactly one root span (a span without a parent) and that root
/// has ended. Children may still arrive after their root (OTLP exporters send spans as they end,
/// in batches), which is why completion is a decision for the caller (``TraceAssembler``, or the
/// database-backed ingest) rather than a property of one message.
public enum TraceCompleteness: Sendable, Equatable {
    /// Exactly one root, and it has ended.
    case complete(rootSpanID: String)
    /// No span without a parent has arrived yet.
    case rootMissing
    /// The one root has no end time.
    case rootNotEnded(rootSpanID: String)
    /// More than one span without a parent.
    case multipleRoots(count: Int)

    /// Whether this is ``complete(rootSpanID:)``.
    public var isComplete: Bool {
        if case .complete = self { return true }
        return false
    }

    /// A short reason for an incomplete trace (`root span missing`, …), nil when complete.
    public var incompleteReason: String? {
        switch self {
        case .complete: return nil
        case .rootMissing: return "root span missing"
        case .rootNotEnded: return "root span not ended"
        case .multipleRoots(let count): return "\(count) root spans"
        }
    }
}

/// Builds an AssayCore ``Trace`` from the merged spans of one OTLP trace. Pure; used by
/// ``TraceAssembler`` and usable by an ingest that keeps spans elsewhere (e.g. in PostgreSQL).
///
/// ## The trace
/// - `traceID` = `tr-<32 hex>`, `format` = `.otlp`.
/// - Spans: deduplicated by span id (the first occurrence wins), ordered by start time, then
///   span id, so the result does not depend on the order messages arrived in.
/// - For a **complete** trace (``TraceCompleteness/complete(rootSpanID:)``): `requestTimeNanos` =
///   root start, `executionDurationMillis` = (root end − root start) / 10^6, rounded down,
///   `state` = `ERROR` when the root's status is `ERROR`, else `OK` (OTLP's `UNSET` means the
///   operation did not fail).
/// - For an **incomplete** trace (built after a timeout): `state` = `STATE_UNSPECIFIED`,
///   `requestTimeNanos` = the root's start if there is one root, else the earliest span start,
///   `executionDurationMillis` = nil, and metadata ``incompleteMetadataKey`` = `"true"` and
///   ``incompleteReasonMetadataKey`` = the reason (`root span missing`, `root span not ended`,
///   `2 root spans`).
///
/// ## The root's inputs and outputs
/// Scorers read the request and response from the root span. When the root has neither inputs
/// nor outputs — a wrapper such as the GenAI convention's HTTP `SERVER` root `POST /api/v1/ask`,
/// whose `invoke_agent` child has the messages — they are lifted from a descendant, the first
/// that applies (a root with inputs but no outputs is an entry point that failed: it keeps no
/// response):
/// 1. the shallowest `AGENT` or `CHAIN` span (at most 4 levels down, earliest start first) that
///    has inputs or outputs: the root takes both from it, even if one is missing there (an
///    errored agent has no outputs, so the trace has no response);
/// 2. otherwise `CHAT_MODEL`/`LLM` spans: inputs from the earliest-starting one with inputs,
///    outputs from the latest-ending one (if it has outputs).
/// The root then carries `assay.inputs_from_span_id` / `assay.outputs_from_span_id` naming the
/// source span.
///
/// ## Tags and metadata
/// - Tags: `service.name`, `service.namespace`, `service.version` from the resource, and `env`
///   from `deployment.environment.name` (else the older `deployment.environment`).
/// - Metadata: every resource attribute (strings as they are, other values as compact JSON);
///   the string entries of an OpenInference `metadata` attribute on the root (an object or JSON
///   text); `mlflow.trace.session` from `mlflow.trace.session`, `session.id` or
///   `gen_ai.conversation.id`, and `mlflow.trace.user` from `mlflow.trace.user`, `user.id` or
///   `enduser.id` (the root first, then the other spans in start order), so session and user
///   filters work as for MLflow traces.
/// - `clientRequestID`: the root's `client_request_id` or `mlflow.clientRequestId`, the
///   `client_request_id` in its OpenInference `metadata`, else its
///   `http.request.header.x-request-id` (first value).
/// - Previews: the root's inputs/outputs as short text (a string as it is; a chat message list
///   → the last user / assistant message; otherwise compact JSON), at most ``previewLength``
///   characters (longer text is cut and ends with `...`).
///
/// The resource attributes are those of the fragment that carried the root (see
/// ``TraceAssembler``).
public enum OTLPTraceBuilder {
    /// Metadata key flagging a trace completed without its root having ended: `"true"`.
    public static let incompleteMetadataKey = "assay.incomplete"
    /// Metadata key with the reason a trace is incomplete.
    public static let incompleteReasonMetadataKey = "assay.incomplete_reason"
    /// The longest request/response preview, in characters (MLflow's limit).
    public static let previewLength = 1000

    /// How complete a set of spans is (duplicates by span id count once).
    public static func completeness(of spans: [Span]) -> TraceCompleteness {
        var seen: Set<String> = []
        var roots: [Span] = []
        for span in spans where span.parentSpanID == nil && seen.insert(span.spanID).inserted {
            roots.append(span)
        }
        switch roots.count {
        case 0: return .rootMissing
        case 1: return roots[0].endTimeNanos == nil ? .rootNotEnded(rootSpanID: roots[0].spanID) : .complete(rootSpanID: roots[0].spanID)
        default: return .multipleRoots(count: roots.count)
        }
    }

    /// The trace of `spans` (any order, duplicates allowed), incomplete-flagged when
    /// ``completeness(of:)`` is not complete.
    public static func build(traceIDHex: String, spans: [Span], resourceAttributes: [String: JSONValue]) -> Trace {
        var seen: Set<String> = []
        var unique: [Span] = []
        unique.reserveCapacity(spans.count)
        for span in spans where seen.insert(span.spanID).inserted { unique.append(span) }
        unique.sort { ($0.startTimeNanos, $0.spanID) < ($1.startTimeNanos, $1.spanID) }

        let completeness = completeness(of: unique)
        let rootIndex = unique.count(where: { $0.parentSpanID == nil }) == 1 ? unique.firstIndex(where: { $0.parentSpanID == nil }) : nil
        if let rootIndex { liftInputsAndOutputs(into: rootIndex, of: &unique) }
        let root = rootIndex.map { unique[$0] }

        var tags: [String: String] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in resourceAttributes { metadata[key] = text(of: value) }
        for key in ["service.name", "service.namespace", "service.version"] {
            if let value = resourceAttributes[key] { tags[key] = text(of: value) }
        }
        if let env = resourceAttributes["deployment.environment.name"] ?? resourceAttributes["deployment.environment"] {
            tags["env"] = text(of: env)
        }
        let rootMetadata = root.flatMap { openInferenceMetadata($0.attributes["metadata"]) }
        if let rootMetadata {
            for (key, value) in rootMetadata.entries {
                if metadata[key] == nil, case .string(let text) = value { metadata[key] = text }
            }
        }
        let ordered = (root.map { [$0] } ?? []) + unique.filter { $0.spanID != root?.spanID }
        if let session = firstString(in: ordered, keys: ["mlflow.trace.session", "session.id", "gen_ai.conversation.id"]) {
            metadata["mlflow.trace.session"] = session
        }
        if let user = firstString(in: ordered, keys: ["mlflow.trace.user", "user.id", "enduser.id"]) {
            metadata["mlflow.trace.user"] = user
        }

        var clientRequestID: String?
        if let root {
            clientRequestID = root.attributes["client_request_id"]?.stringValue
                ?? root.attributes["mlflow.clientRequestId"]?.stringValue
                ?? rootMetadata?["client_request_id"]?.stringValue
                ?? firstText(root.attributes["http.request.header.x-request-id"])
        }

        let state: TraceState
        let requestTime: Int64
        var duration: Int64?
        switch completeness {
        case .complete:
            let rootSpan = root ?? unique[0]
            state = rootSpan.status.code == .error ? .error : .ok
            requestTime = rootSpan.startTimeNanos
            if let end = rootSpan.endTimeNanos, end >= rootSpan.startTimeNanos {
                duration = (end - rootSpan.startTimeNanos) / 1_000_000
            }
        default:
            state = .unspecified
            requestTime = root?.startTimeNanos ?? unique.map(\.startTimeNanos).min() ?? 0
            metadata[incompleteMetadataKey] = "true"
            metadata[incompleteReasonMetadataKey] = completeness.incompleteReason
        }

        return Trace(
            traceID: "tr-" + traceIDHex,
            format: .otlp,
            requestTimeNanos: requestTime,
            executionDurationMillis: duration,
            state: state,
            clientRequestID: clientRequestID,
            requestPreview: root?.inputs.flatMap { preview($0, wantedRoles: ["user", "human"]) },
            responsePreview: root?.outputs.flatMap { preview($0, wantedRoles: ["assistant", "ai", "model"]) },
            tags: tags,
            metadata: metadata,
            spans: unique)
    }

    // MARK: Lifting

    private static let agentTypes: Set<String> = ["AGENT", "CHAIN"]
    private static let modelTypes: Set<String> = ["CHAT_MODEL", "LLM"]
    private static let maximumLiftDepth = 4

    private static func liftInputsAndOutputs(into rootIndex: Int, of spans: inout [Span]) {
        let root = spans[rootIndex]
        guard root.inputs == nil, root.outputs == nil else { return }
        var children: [String: [Int]] = [:]
        for (index, span) in spans.enumerated() {
            if let parent = span.parentSpanID { children[parent, default: []].append(index) }
        }
        // Spans are sorted by start time, so each child list is too.
        var level = children[root.spanID] ?? []
        var visited: Set<String> = [root.spanID]
        for _ in 0..<maximumLiftDepth where !level.isEmpty {
            for index in level {
                let span = spans[index]
                guard let type = span.spanType?.uppercased(), agentTypes.contains(type),
                      span.inputs != nil || span.outputs != nil else { continue }
                if spans[rootIndex].inputs == nil {
                    spans[rootIndex].inputs = span.inputs
                    spans[rootIndex].attributes["assay.inputs_from_span_id"] = .string(span.spanID)
                }
                if spans[rootIndex].outputs == nil {
                    spans[rootIndex].outputs = span.outputs
                    spans[rootIndex].attributes["assay.outputs_from_span_id"] = .string(span.spanID)
                }
                return
            }
            var next: [Int] = []
            for index in level where visited.insert(spans[index].spanID).inserted {
                next.append(contentsOf: children[spans[index].spanID] ?? [])
            }
            level = next.sorted()
        }
        // No agent or chain: the model calls.
        let models = spans.indices.filter { index in
            index != rootIndex && spans[index].spanType.map { modelTypes.contains($0.uppercased()) } == true
        }
        if spans[rootIndex].inputs == nil, let first = models.first(where: { spans[$0].inputs != nil }) {
            spans[rootIndex].inputs = spans[first].inputs
            spans[rootIndex].attributes["assay.inputs_from_span_id"] = .string(spans[first].spanID)
        }
        if spans[rootIndex].outputs == nil,
           let last = models.max(by: { (spans[$0].endTimeNanos ?? spans[$0].startTimeNanos, $0) < (spans[$1].endTimeNanos ?? spans[$1].startTimeNanos, $1) }),
           let outputs = spans[last].outputs {
            spans[rootIndex].outputs = outputs
            spans[rootIndex].attributes["assay.outputs_from_span_id"] = .string(spans[last].spanID)
        }
    }

    // MARK: Values as text

    /// A string as it is, another value as compact JSON.
    private static func text(of value: JSONValue) -> String {
        if case .string(let text) = value { return text }
        return value.serialized()
    }

    /// A string, or the first string of a list (HTTP header attributes are lists).
    private static func firstText(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: return text
        case .array(let list)?: return list.first?.stringValue
        default: return nil
        }
    }

    private static func firstString(in spans: [Span], keys: [String]) -> String? {
        for span in spans {
            for key in keys {
                if let text = span.attributes[key]?.stringValue, !text.isEmpty { return text }
            }
        }
        return nil
    }

    /// OpenInference's `metadata` attribute: a JSON object, possibly as JSON text.
    private static func openInferenceMetadata(_ value: JSONValue?) -> JSONObject? {
        switch value {
        case .object(let object)?:
            return object
        case .string(let text)?:
            guard text.utf8.count <= 64 * 1024, case .object(let object)? = try? JSONParser(maxDepth: 16).parse(text) else { return nil }
            return object
        default:
            return nil
        }
    }

    /// Preview text of an input or output value.
    private static func preview(_ value: JSONValue, wantedRoles: Set<String>) -> String? {
        let text: String
        switch value {
        case .null:
            return nil
        case .string(let string):
            text = string
        case .array(let messages):
            text = lastMessageText(messages, wantedRoles: wantedRoles) ?? value.serialized()
        case .object(let object):
            if case .array(let messages)? = object["messages"], let found = lastMessageText(messages, wantedRoles: wantedRoles) {
                text = found
            } else {
                text = value.serialized()
            }
        default:
            text = value.serialized()
        }
        return truncated(text)
    }

    private static func lastMessageText(_ messages: [JSONValue], wantedRoles: Set<String>) -> String? {
        for message in messages.reversed() {
            guard let role = message["role"]?.stringValue?.lowercased(), wantedRoles.contains(role) else { continue }
            if case .string(let content)? = message["content"], !content.isEmpty { return content }
        }
        return nil
    }

    private static func truncated(_ text: String) -> String {
        guard text.count > previewLength else { return text }
        return String(text.prefix(previewLength - 3)) + "..."
    }
}
