// The OpenAI-compatible judge against a loopback server: request shape, replies, retries.

import AssayCore
import AssayScoring
import AssayTestSupport
import Logging
import Testing

@testable import AssayJudgeHTTP

@Suite("OpenAI judge over HTTP")
struct OpenAIJudgeTests {
    @Test("sends model, temperature 0, system and user messages, response_format and the bearer key")
    func requestShape() async throws {
        let server = try LoopbackHTTPServer { _ in yesReply() }
        defer { server.stop() }
        let judge = try makeJudge(server)
        let request = sampleRequest(1)

        let result = await judge.judge(request, context: ScoringContext(budgetKey: "w"))

        #expect(failureCode(result) == nil)
        let received = server.requests
        try #require(received.count == 1)
        let sent = received[0]
        #expect(sent.method == "POST")
        #expect(sent.path == "/v1/chat/completions")
        #expect(sent.header("Authorization") == "Bearer \(testAPIKey)")
        #expect(sent.header("Content-Type")?.hasPrefix("application/json") == true)
        let body = try JSONParser().parse(sent.body)
        #expect(body["model"]?.stringValue == "test-model")
        #expect(body["temperature"]?.doubleValue == 0)
        #expect(body["response_format"]?["type"]?.stringValue == "json_object")
        let messages = try #require(body["messages"]?.arrayValue)
        #expect(messages.count == 2)
        #expect(messages.first?["role"]?.stringValue == "system")
        #expect(messages.first?["content"]?.stringValue == request.systemPrompt)
        #expect(messages.last?["role"]?.stringValue == "user")
        #expect(messages.last?["content"]?.stringValue == request.userPrompt)
        #expect(judge.sourceID == "openai:test-model")
    }

    @Test("a correct answer becomes a verdict with its rationale and token usage")
    func correctAnswer() async throws {
        let server = try LoopbackHTTPServer { request in
            .json(chatCompletion(content: "```json\n" + answer("no", "It talks about Rome.") + "\n```", promptTokens: 321, completionTokens: 17))
        }
        defer { server.stop() }
        let judge = try makeJudge(server)

        let verdict = try await judge.judge(sampleRequest(), context: ScoringContext()).get()

        #expect(verdict.value == .no)
        #expect(verdict.rationale == "It talks about Rome.")
        #expect(verdict.inputTokens == 321)
        #expect(verdict.outputTokens == 17)
        #expect(verdict.cached == false)
        #expect(verdict.latencyMillis > 0)
        #expect(judge.statistics.inputTokens == 321)
        #expect(judge.statistics.outputTokens == 17)
        #expect(server.requestCount == 1)
    }

    /// Unparseable replies are not retried: at temperature 0 the model would most likely say
    /// the same again, and every retry costs a call.
    @Test("a malformed reply is JUDGE_UNPARSEABLE after a single request, quoting at most 200 characters")
    func malformedReply() async throws {
        let prose = "I think the response is mostly fine, but it depends. " + String(repeating: "More musing. ", count: 40)
        let server = try LoopbackHTTPServer { _ in .json(chatCompletion(content: prose)) }
        defer { server.stop() }
        let judge = try makeJudge(server)

        let result = await judge.judge(sampleRequest(), context: ScoringContext())

        #expect(failureCode(result) == "JUDGE_UNPARSEABLE")
        let message = try #require(failureMessage(result))
        #expect(message.contains("I think the response is mostly fine"))
        #expect(message.count < 320)
        #expect(server.requestCount == 1)
        #expect(judge.statistics.retries == 0)
    }

    @Test("a 200 that is not a chat completion is JUDGE_UNPARSEABLE, not retried")
    func notAChatCompletion() async throws {
        let server = try LoopbackHTTPServer { _ in
            LoopbackHTTPServer.Response(status: 200, headers: [("Content-Type", "text/html")], body: Array("<html>proxy login</html>".utf8))
        }
        defer { server.stop() }
        let judge = try makeJudge(server)

        let result = await judge.judge(sampleRequest(), context: ScoringContext())

        #expect(failureCode(result) == "JUDGE_UNPARSEABLE")
        #expect(failureMessage(result)?.contains("<html>proxy login</html>") == true)
        #expect(server.requestCount == 1)
    }

    @Test("a reply slower than the timeout is retried, then fails with JUDGE_TIMEOUT")
    func slowReplyTimesOut() async throws {
        // The server answers after an hour (stop() cuts that short); abandoning each attempt
        // at its deadline takes about 0.5 s in all on an idle machine.
        let server = try LoopbackHTTPServer { _ in yesReply(delay: .seconds(3600)) }
        defer { server.stop() }
        let judge = try makeJudge(server, requestTimeout: .milliseconds(250), maxAttempts: 2)

        // Returning at all is the check: an attempt that waited for the server's answer would
        // still be waiting. The bound is a guard far above the 46-65 s this took inside the
        // whole suite on 2 cores, where timers fire late (see `finishes(within:_:)`).
        let returned = await value(within: .seconds(300)) { await judge.judge(sampleRequest(), context: ScoringContext()) }

        let result = try #require(returned, "the judge waited for the server's answer instead of its own deadline")
        #expect(failureCode(result) == "JUDGE_TIMEOUT")
        #expect(server.requestCount == 2)
        #expect(judge.statistics.retries == 1)
    }

    @Test("a timed-out attempt followed by a prompt answer succeeds")
    func timeoutThenSuccess() async throws {
        let server = try LoopbackHTTPServer { request in
            request.sequence == 0 ? yesReply(delay: .seconds(3)) : yesReply()
        }
        defer { server.stop() }
        let judge = try makeJudge(server, requestTimeout: .milliseconds(250), maxAttempts: 3)

        let result = await judge.judge(sampleRequest(), context: ScoringContext())

        #expect(failureCode(result) == nil)
        #expect(server.requestCount == 2)
    }

    @Test("429 with Retry-After: 1 makes the next attempt wait at least a second, then it succeeds")
    func retryAfterIsHonoured() async throws {
        let server = try LoopbackHTTPServer { request in
            if request.sequence == 0 {
                return .json(errorBody("Rate limit reached", type: "rate_limit"), status: 429, headers: [("Retry-After", "1")])
            }
            return yesReply()
        }
        defer { server.stop() }
        // Without Retry-After the backoff would be 10 ms.
        let judge = try makeJudge(server, backoffBase: .milliseconds(10))

        let result = await judge.judge(sampleRequest(), context: ScoringContext())

        #expect(failureCode(result) == nil)
        let received = server.requests
        try #require(received.count == 2)
        #expect(gap(received, 0, 1) >= .seconds(1))
        #expect(judge.statistics.retries == 1)
    }

    @Test("500s are retried with exponential backoff, then succeed")
    func serverErrorsRetriedWithBackoff() async throws {
        let server = try LoopbackHTTPServer { request in
            request.sequence < 2 ? .json(errorBody("The server had an error"), status: 500) : yesReply()
        }
        defer { server.stop() }
        // No jitter: the waits are exactly 150 ms, then 300 ms.
        let judge = try makeJudge(server, maxAttempts: 4, backoffBase: .milliseconds(150), fullJitter: false)

        let result = await judge.judge(sampleRequest(), context: ScoringContext())

        #expect(failureCode(result) == nil)
        let received = server.requests
        try #require(received.count == 3)
        #expect(gap(received, 0, 1) >= .milliseconds(150))
        #expect(gap(received, 1, 2) >= .milliseconds(300))
        #expect(judge.statistics.retries == 2)
    }

    @Test("a persistent 500 is JUDGE_HTTP_500 after max attempts")
    func persistentServerError() async throws {
        let server = try LoopbackHTTPServer { _ in .json(errorBody("The server had an error"), status: 500) }
        defer { server.stop() }
        let judge = try makeJudge(server, maxAttempts: 3)

        let result = await judge.judge(sampleRequest(), context: ScoringContext())

        #expect(failureCode(result) == "JUDGE_HTTP_500")
        #expect(failureMessage(result)?.contains("The server had an error") == true)
        #expect(failureMessage(result)?.contains("attempt 3 of 3") == true)
        #expect(server.requestCount == 3)
    }

    @Test("4xx other than 429 are not retried", arguments: [400, 401, 403, 404])
    func clientErrorsNotRetried(status: Int) async throws {
        let server = try LoopbackHTTPServer { _ in .json(errorBody("nope", type: "invalid_request_error"), status: status) }
        defer { server.stop() }
        let judge = try makeJudge(server)

        let result = await judge.judge(sampleRequest(), context: ScoringContext())

        #expect(failureCode(result) == "JUDGE_HTTP_\(status)")
        #expect(server.requestCount == 1)
    }

    @Test("a 400 about response_format is retried without it, and the judge stops sending it")
    func responseFormatFallback() async throws {
        let server = try LoopbackHTTPServer { request in
            if request.bodyText.contains("response_format") {
                return .json(errorBody("Invalid parameter: 'response_format' of type 'json_object' is not supported with this model.", type: "invalid_request_error"), status: 400)
            }
            return yesReply()
        }
        defer { server.stop() }
        let judge = try makeJudge(server, maxAttempts: 1)

        let first = await judge.judge(sampleRequest(1), context: ScoringContext())
        let second = await judge.judge(sampleRequest(2), context: ScoringContext())

        #expect(failureCode(first) == nil)
        #expect(failureCode(second) == nil)
        let received = server.requests
        try #require(received.count == 3)
        #expect(received[0].bodyText.contains("response_format"))
        #expect(!received[1].bodyText.contains("response_format"))
        #expect(!received[2].bodyText.contains("response_format"))
        #expect(judge.sendsJSONResponseFormat == false)
    }

    @Test("an unreachable server is JUDGE_TRANSPORT after max attempts")
    func transportError() async throws {
        // Bound but never listening: refused, and no other test's server can be given the
        // port meanwhile (a stopped server's port could be, and then answered).
        let closed = try ClosedLoopbackPort()
        let judge = try makeJudge(closed, maxAttempts: 2)

        let result = await judge.judge(sampleRequest(), context: ScoringContext())

        #expect(failureCode(result) == "JUDGE_TRANSPORT")
        #expect(judge.statistics.httpRequests == 2)
        withExtendedLifetime(closed) {}
    }

    @Test("a cancelled call stops retrying and reports JUDGE_CANCELLED")
    func cancellation() async throws {
        let server = try LoopbackHTTPServer { _ in yesReply(delay: .seconds(3600)) }
        defer { server.stop() }
        let judge = try makeJudge(server, requestTimeout: .seconds(3000))
        let task = Task { await judge.judge(sampleRequest(), context: ScoringContext()) }
        // The request reaching the server is the event to wait for.
        for _ in 0..<2000 where server.requestCount == 0 {
            await Task.yield()
            try await Task.sleep(for: .milliseconds(1))
        }
        try #require(server.requestCount == 1)

        task.cancel()
        // A guard, not a measurement: without the cancellation the call would wait for the
        // server (an hour) or its own timeout (50 minutes).
        let returned = await value(within: .seconds(300)) { await task.value }

        let result = try #require(returned, "the call went on after its cancellation")
        #expect(failureCode(result) == "JUDGE_CANCELLED")
        #expect(server.requestCount == 1)
    }
}
