// The governed judge's calls, errors, latency, tokens, cache hits and budget skips, counted
// into a TestMetrics passed to it (no process-wide bootstrap).

import AssayCore
import AssayJudgeHTTP
import AssayMetrics
import AssayScoring
import Logging
import MetricsTestKit
import Testing

/// Answers yes with fixed tokens, or fails for user prompts containing "fail".
private struct ScriptedJudge: Judge {
    var sourceID: String { "scripted@1" }

    func judge(_ request: JudgeRequest, context: ScoringContext) async -> Result<JudgeVerdict, JudgeFailure> {
        if request.userPrompt.contains("fail") {
            return .failure(.failed(code: "JUDGE_HTTP_500", message: "scripted failure"))
        }
        return .success(JudgeVerdict(value: .yes, rationale: "fine", inputTokens: 100, outputTokens: 7, latencyMillis: 1))
    }
}

private func request(_ prompt: String) -> JudgeRequest {
    JudgeRequest(scorerKind: .safety, promptVersion: "safety@1", systemPrompt: "judge", userPrompt: prompt, fields: JudgeFields(response: prompt))
}

@Suite("Judge metrics from GovernedJudge")
struct JudgeMetricsTests {
    @Test("calls, errors, latency, tokens, cache hits and budget skips")
    func counts() async throws {
        let test = TestMetrics()
        let judge = GovernedJudge(
            wrapping: ScriptedJudge(), limits: .init(maxConcurrency: 1, maxCallsPerWindow: 3),
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, metrics: AssayMetrics(factory: test))
        let window = ScoringContext(budgetKey: "w1")
        _ = await judge.judge(request("a"), context: window)      // call
        _ = await judge.judge(request("a"), context: window)      // cache hit
        _ = await judge.judge(request("fail"), context: window)   // call, error
        _ = await judge.judge(request("b"), context: window)      // call
        _ = await judge.judge(request("c"), context: window)      // budget skip (3 calls used)

        let labels = [("judge", "scripted@1"), ("scorer_kind", "safety")]
        #expect(try test.expectCounter("assay_judge_calls_total", labels).totalValue == 3)
        #expect(try test.expectCounter("assay_judge_errors_total", labels).totalValue == 1)
        #expect(try test.expectCounter("assay_judge_cache_hits_total", labels).totalValue == 1)
        #expect(try test.expectCounter("assay_judge_budget_skips_total", labels).totalValue == 1)
        #expect(try test.expectCounter("assay_judge_tokens_total", labels + [("direction", "input")]).totalValue == 200)
        #expect(try test.expectCounter("assay_judge_tokens_total", labels + [("direction", "output")]).totalValue == 14)
        let latencies = try test.expectTimer("assay_judge_call_duration_seconds", labels).values
        #expect(latencies.count == 3)
        #expect(latencies.allSatisfy { $0 >= 0 })
        // The metrics agree with the judge's own statistics.
        let statistics = judge.statistics
        #expect(statistics.calls == 3 && statistics.failures == 1 && statistics.cacheHits == 1 && statistics.budgetSkips == 1)
    }
}
