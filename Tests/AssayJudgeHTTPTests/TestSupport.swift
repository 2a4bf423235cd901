// Helpers for the HTTP judge tests: a fake OpenAI-compatible server, judges pointed at it,
// and a log handler that keeps everything.

import AssayCore
import AssayScoring
import AssayTestSupport
import Logging
import Synchronization
import Testing

@testable import AssayJudgeHTTP

/// A chat-completions reply whose message content is `content`.
func chatCompletion(content: String, promptTokens: Int = 12, completionTokens: Int = 3) -> String {
    let document: JSONValue = [
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "test-model",
        "choices": [
            ["index": 0, "message": ["role": "assistant", "content": .string(content)], "finish_reason": "stop"],
        ],
        "usage": [
            "prompt_tokens": JSONValue(promptTokens),
            "completion_tokens": JSONValue(completionTokens),
            "total_tokens": JSONValue(promptTokens + completionTokens),
        ],
    ]
    return document.serialized()
}

/// The judge's JSON answer as a model would write it.
func answer(_ result: String, _ rationale: String = "The response addresses the question.") -> String {
    JSONValue.object(["rationale": .string(rationale), "result": .string(result)]).serialized()
}

/// A correct `yes` reply.
func yesReply(promptTokens: Int = 12, completionTokens: Int = 3, delay: Duration? = nil) -> LoopbackHTTPServer.Response {
    .json(chatCompletion(content: answer("yes"), promptTokens: promptTokens, completionTokens: completionTokens), delay: delay)
}

/// An OpenAI error body.
func errorBody(_ message: String, type: String = "server_error") -> String {
    JSONValue.object(["error": ["message": .string(message), "type": .string(type)]]).serialized()
}

/// A distinct request per `n`.
func sampleRequest(_ n: Int = 0, promptVersion: String = "relevance_to_query@1") -> JudgeRequest {
    JudgeRequest(
        scorerKind: .relevanceToQuery,
        promptVersion: promptVersion,
        systemPrompt: "You are a careful judge. Answer in JSON.",
        userPrompt: "Question \(n): what is the capital of France?\nResponse: Paris.",
        fields: JudgeFields(request: "Question \(n): what is the capital of France?", response: "Paris.")
    )
}

let testAPIKey = "test-key-shape-7f3a"

/// Something a judge can be pointed at: a server, or a port that refuses connections.
protocol JudgeEndpoint {
    /// `http://127.0.0.1:<port>`.
    var baseURL: String { get }
}

extension LoopbackHTTPServer: JudgeEndpoint {}
extension ClosedLoopbackPort: JudgeEndpoint {}

/// An OpenAI judge for `endpoint`, with fast, deterministic retries unless told otherwise.
func makeJudge(
    _ endpoint: some JudgeEndpoint,
    apiKey: String = testAPIKey,
    requestTimeout: Duration = .seconds(10),
    maxAttempts: Int = 4,
    backoffBase: Duration = .milliseconds(10),
    fullJitter: Bool = false,
    maxConnections: Int = 8,
    logger: Logger = Logger(label: "assay.test.judge", factory: { _ in SwiftLogNoOpLogHandler() })
) throws -> OpenAIJudge {
    let configuration = try OpenAIJudgeConfiguration(
        baseURL: endpoint.baseURL + "/v1",
        model: "test-model",
        apiKey: JudgeAPIKey(apiKey),
        requestTimeout: requestTimeout,
        maxAttempts: maxAttempts,
        backoffBase: backoffBase,
        backoffCap: .seconds(5),
        fullJitter: fullJitter
    )
    return OpenAIJudge(configuration: configuration, maxConnections: maxConnections, logger: logger)
}

let quietLogger = Logger(label: "assay.test.judge", factory: { _ in SwiftLogNoOpLogHandler() })

/// The failure code of a result, or nil for a verdict.
func failureCode(_ result: Result<JudgeVerdict, JudgeFailure>) -> String? {
    switch result {
    case .success: return nil
    case .failure(.failed(let code, _)): return code
    case .failure(.budgetExhausted): return "BUDGET_EXHAUSTED"
    }
}

/// The failure message of a result, or nil for a verdict.
func failureMessage(_ result: Result<JudgeVerdict, JudgeFailure>) -> String? {
    switch result {
    case .success: return nil
    case .failure(.failed(_, let message)): return message
    case .failure(.budgetExhausted(let reason)): return reason
    }
}

/// The gap between the arrivals of two recorded requests.
func gap(_ requests: [LoopbackHTTPServer.Request], _ first: Int, _ second: Int) -> Duration {
    requests[second].arrival - requests[first].arrival
}

/// Every log record, rendered as one line with its metadata (handler, logger and record
/// metadata merged), at every level.
final class LogCapture: Sendable {
    private let lines = Mutex<[(level: Logger.Level, line: String)]>([])

    var records: [(level: Logger.Level, line: String)] { lines.withLock { $0 } }

    func append(_ level: Logger.Level, _ line: String) {
        lines.withLock { $0.append((level, line)) }
    }

    func logger(label: String = "assay.test") -> Logger {
        Logger(label: label, factory: { label in CapturingLogHandler(label: label, capture: self) })
    }
}

struct CapturingLogHandler: LogHandler {
    let label: String
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let own = event.metadata { all.merge(own) { _, new in new } }
        let rendered = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let errorText = event.error.map { " error=\(String(reflecting: $0))" } ?? ""
        capture.append(event.level, "\(event.level) \(label) \(event.message) \(rendered) source=\(event.source)\(errorText)")
    }
}
