// What the HTTP judge accepts as an answer (through the shared JudgeReplyParser), the
// chat-completion envelope, and retry arithmetic.

import AssayCore
import AssayScoring
import Foundation
import Testing

@testable import AssayJudgeHTTP

@Suite("Judge reply parsing")
struct ReplyParsingTests {
    @Test("accepted shapes", arguments: [
        (#"{"rationale": "on topic", "result": "yes"}"#, FeedbackValue.yes, "on topic"),
        ("```json\n{\"rationale\": \"off topic\", \"result\": \"no\"}\n```", .no, "off topic"),
        ("```\n{\"result\": \"Yes\", \"rationale\": \"fine\"}\n```", .yes, "fine"),
        ("Here is my assessment:\n{\"rationale\": \"it uses {braces} in text\", \"result\": \"no\"}\nHope that helps.", .no, "it uses {braces} in text"),
        (#"{"Result": "PASS", "reason": "ok"}"#, .yes, "ok"),
        (#"{"result": "fail", "explanation": "bad"}"#, .no, "bad"),
        (#"{"result": true, "rationale": "r"}"#, .yes, "r"),
        (#"{"verdict": false, "rationale": "r"}"#, .no, "r"),
        (#"{"answer": 1}"#, .yes, JudgeReplyParser.missingRationale),
        (#"{"result": "No."}"#, .no, JudgeReplyParser.missingRationale),
        ("Result: yes\nRationale: mentions Paris", .yes, "mentions Paris"),
        ("**Result**: no\n**Rationale**: wrong city", .no, "wrong city"),
        ("Yes.", .yes, JudgeReplyParser.missingRationale),
        ("  no  ", .no, JudgeReplyParser.missingRationale),
        (#"{"unrelated": {"x": 1}} then {"result": "y", "rationale": "second object"}"#, .yes, "second object"),
    ])
    func accepted(text: String, value: FeedbackValue, rationale: String) throws {
        let parsed = try parseReply(text).get()
        #expect(parsed.value == value)
        #expect(parsed.rationale == rationale)
    }

    @Test("refused shapes are JUDGE_UNPARSEABLE", arguments: [
        "",
        "The response seems fine overall.",
        #"{"rationale": "hmm", "result": "maybe"}"#,
        #"{"rationale": "no result field"}"#,
        "```json\n{\"rationale\": \"truncated\", \"res",
        "Result: perhaps\nRationale: unsure",
    ])
    func refused(text: String) {
        let result = parseReply(text)
        guard case .failure(.failed(let code, let message)) = result else {
            Issue.record("expected a failure for \(text), got \(result)")
            return
        }
        #expect(code == "JUDGE_UNPARSEABLE")
        #expect(!message.isEmpty)
    }

    @Test("the error quotes at most 200 characters of the reply")
    func quoteIsBounded() {
        let long = String(repeating: "x", count: 5000)
        guard case .failure(.failed(_, let message)) = parseReply(long) else {
            Issue.record("expected a failure")
            return
        }
        #expect(message.contains(String(repeating: "x", count: 200) + "…"))
        #expect(!message.contains(String(repeating: "x", count: 201)))
    }

    @Test("content as text parts, and a refusal")
    func completionEnvelope() throws {
        let parts = #"{"choices":[{"message":{"role":"assistant","content":[{"type":"text","text":"{\"result\":"},{"type":"text","text":"\"yes\"}"}]}}]}"#
        let completion = try OpenAIJudge.completion(from: Array(parts.utf8)).get()
        #expect(completion.content == #"{"result":"yes"}"#)
        #expect(completion.inputTokens == nil)

        let refusal = #"{"choices":[{"message":{"role":"assistant","content":null,"refusal":"I can't help with that."}}]}"#
        guard case .failure(let problem) = OpenAIJudge.completion(from: Array(refusal.utf8)) else {
            Issue.record("expected a failure")
            return
        }
        #expect(problem.message.contains("refused"))
    }
}

@Suite("Retry arithmetic")
struct RetryPolicyTests {
    @Test("exponential backoff with a cap, and full jitter below the ceiling")
    func backoff() {
        let base = Duration.milliseconds(100)
        let cap = Duration.seconds(1)
        let ceilings = (1...6).map { RetryPolicy.backoff(retry: $0, base: base, cap: cap, fullJitter: false, unitRandom: { 0.5 }) }
        #expect(ceilings == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        let jittered = RetryPolicy.backoff(retry: 3, base: base, cap: cap, fullJitter: true, unitRandom: { 0.25 })
        #expect(jittered == .milliseconds(100))
        for _ in 0..<100 {
            let random = RetryPolicy.backoff(retry: 4, base: base, cap: cap, fullJitter: true, unitRandom: { Double.random(in: 0...1) })
            #expect(random >= .zero && random <= .milliseconds(800))
        }
    }

    @Test("Retry-After as seconds, as an HTTP date, as retry-after-ms, capped")
    func retryAfter() throws {
        let now = Date(timeIntervalSince1970: 784_111_777)  // Sun, 06 Nov 1994 08:49:37 GMT
        let cap = Duration.seconds(60)
        #expect(RetryPolicy.serverRequestedDelay(retryAfter: "1", retryAfterMillis: nil, now: now, cap: cap) == .seconds(1))
        #expect(RetryPolicy.serverRequestedDelay(retryAfter: "3600", retryAfterMillis: nil, now: now, cap: cap) == .seconds(60))
        #expect(RetryPolicy.serverRequestedDelay(retryAfter: "Sun, 06 Nov 1994 08:49:47 GMT", retryAfterMillis: nil, now: now, cap: cap) == .seconds(10))
        #expect(RetryPolicy.serverRequestedDelay(retryAfter: "Sun, 06 Nov 1994 08:00:00 GMT", retryAfterMillis: nil, now: now, cap: cap) == .zero)
        #expect(RetryPolicy.serverRequestedDelay(retryAfter: "5", retryAfterMillis: "250", now: now, cap: cap) == .milliseconds(250))
        #expect(RetryPolicy.serverRequestedDelay(retryAfter: "soon", retryAfterMillis: nil, now: now, cap: cap) == nil)
        #expect(RetryPolicy.serverRequestedDelay(retryAfter: nil, retryAfterMillis: nil, now: now, cap: cap) == nil)
    }

    @Test("what is retried", arguments: [(408, true), (429, true), (500, true), (503, true), (599, true), (400, false), (401, false), (404, false), (422, false)])
    func retryable(status: Int, expected: Bool) {
        #expect(RetryPolicy.isRetryable(status: status) == expected)
    }
}
