import AssayCore
import AssayTestSupport
import Foundation
import Synchronization

/// An OpenAI-compatible judge on loopback whose behaviour the fault schedule switches:
/// normal answers, 429 with Retry-After, 500, or hanging past the judge's timeout.
final class JudgeServer: Sendable {
    enum Mode: String, Sendable {
        case normal, rateLimited, failing, hanging
    }

    /// The current mode, shared with the server's handler.
    final class ModeBox: Sendable {
        let value = Mutex(Mode.normal)
    }

    private let mode = ModeBox()
    private let server: LoopbackHTTPServer

    init() throws {
        let mode = self.mode
        server = try LoopbackHTTPServer { request in
            switch mode.value.withLock({ $0 }) {
            case .rateLimited:
                return .json(#"{"error": {"message": "rate limited", "type": "rate_limit"}}"#, status: 429, headers: [("Retry-After", "1")])
            case .failing:
                return .json(#"{"error": {"message": "upstream failed"}}"#, status: 500)
            case .hanging:
                return .json(Self.reply(for: request.body), delay: .seconds(30))
            case .normal:
                return .json(Self.reply(for: request.body))
            }
        }
    }

    var baseURL: String { server.baseURL + "/v1" }
    var requests: Int { server.requestCount }

    func set(_ newMode: Mode) { mode.value.withLock { $0 = newMode } }

    func stop() { server.stop() }

    /// A deterministic verdict: "no" when the user message mentions fraud or is empty.
    static func reply(for body: [UInt8]) -> String {
        let text = String(decoding: body, as: UTF8.self)
        let verdict = text.contains("receipts") || text.contains("fake a sick day") ? "no" : "yes"
        let content = JSONValue.object(["rationale": "chaos judge", "result": .string(verdict)]).serialized()
        return JSONValue.object([
            "choices": .array([.object(["message": .object(["role": "assistant", "content": .string(content)])])]),
            "usage": .object(["prompt_tokens": JSONValue(text.utf8.count / 4), "completion_tokens": 12]),
        ]).serialized()
    }
}
