// The API key is sent, and never logged.

import AssayCore
import AssayScoring
import AssayTestSupport
import Foundation
import Logging
import Testing

@testable import AssayJudgeHTTP

@Suite("Judge logging")
struct LoggingTests {
    @Test("the API key is in every Authorization header and in no log line, at any level, nor in any error")
    func apiKeyNeverLogged() async throws {
        let key = "test-key-\(UUID().uuidString)"
        // One server playing every part: success, retry on 500 and 429, unparseable, a 401
        // that echoes the key, and a slow reply that times out.
        let server = try LoopbackHTTPServer { request in
            let text = request.bodyText
            if text.contains("Question 1:") { return yesReply() }
            if text.contains("Question 2:") {
                return request.sequence < 3
                    ? .json(errorBody("overloaded"), status: 500)
                    : .json(errorBody("slow down"), status: 429, headers: [("Retry-After", "0")])
            }
            if text.contains("Question 3:") { return .json(chatCompletion(content: "no idea")) }
            if text.contains("Question 4:") {
                return .json(errorBody("Incorrect API key provided: \(key). You can find your API key at https://example.test.", type: "invalid_request_error"), status: 401)
            }
            return yesReply(delay: .seconds(6))
        }
        defer { server.stop() }
        let capture = LogCapture()
        let logger = capture.logger()
        let judge = GovernedJudge(
            wrapping: try makeJudge(server, apiKey: key, requestTimeout: .seconds(1), maxAttempts: 3, logger: logger),
            limits: .init(maxConcurrency: 2, maxCallsPerWindow: 5),
            logger: logger
        )

        var results: [Result<JudgeVerdict, JudgeFailure>] = []
        for n in 1...5 {
            results.append(await judge.judge(sampleRequest(n), context: ScoringContext(budgetKey: "w")))
        }
        results.append(await judge.judge(sampleRequest(1), context: ScoringContext(budgetKey: "w")))  // cached
        results.append(await judge.judge(sampleRequest(6), context: ScoringContext(budgetKey: "w")))  // over budget

        #expect(results.map(failureCode) == [nil, "JUDGE_HTTP_429", "JUDGE_UNPARSEABLE", "JUDGE_HTTP_401", "JUDGE_TIMEOUT", nil, "BUDGET_EXHAUSTED"])
        #expect(judge.retries == 4)  // two for the 500s before the 429, two for the timeouts
        let received = server.requests
        #expect(received.count == 9)
        #expect(received.allSatisfy { $0.header("Authorization") == "Bearer \(key)" })

        let records = capture.records
        // The capture saw the whole story, down to trace level …
        #expect(records.contains { $0.level == .info && $0.line.contains("retrying") })
        #expect(records.contains { $0.level == .debug && $0.line.contains("judge request") })
        #expect(records.contains { $0.level == .trace && $0.line.contains("cache hit") })
        #expect(records.contains { $0.line.contains("budget exhausted") })
        // … and the key is nowhere in it, nor in any error the judge returned.
        let leaking = records.filter { $0.line.contains(key) }
        #expect(leaking.isEmpty, "log lines with the key: \(leaking.map(\.line))")
        #expect(!records.contains { $0.line.contains("Authorization") || $0.line.contains("Bearer") })
        for result in results {
            #expect(failureMessage(result)?.contains(key) != true)
        }
        #expect(failureMessage(results[3])?.contains("<redacted>") == true)
        // Nor the prompts, at any level.
        #expect(!records.contains { $0.line.contains("capital of France") })
    }
}
