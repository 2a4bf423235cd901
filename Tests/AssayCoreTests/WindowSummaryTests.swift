import AssayCore
import Testing

func sampleSummary() -> WindowScorerSummary {
    WindowScorerSummary(
        windowStartNanos: 1_770_123_600_000_000_000,
        windowEndNanos: 1_770_124_500_000_000_000,
        scorerName: "relevance_to_query",
        configVersion: 3,
        eligible: 1000,
        filteredOut: 100,
        sampledOut: 540,
        notApplicable: 50,
        errored: 47,
        scored: 263,
        passed: 81,
        lateScored: 4,
        judgeLatencyP50Millis: 850,
        judgeLatencyP95Millis: 2400.5,
        tokens: TokenUsage(inputTokens: 120_000, outputTokens: 8_000)
    )
}

@Suite("Window summaries (invariant 10)")
struct WindowSummaryTests {
    /// Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
    /// method 3 (Wilson score without continuity correction), to 4 decimal places.
    @Test(arguments: [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0000),
        (0, 10, 0.0000, 0.2775),
        (5, 10, 0.2366, 0.7634),
    ])
    func wilsonPublishedValues(successes: Int, trials: Int, lower: Double, upper: Double) throws {
        let interval = try #require(WilsonInterval.compute(successes: successes, trials: trials))
        #expect(abs(interval.lower - lower) < 0.00005, "lower \(interval.lower)")
        #expect(abs(interval.upper - upper) < 0.00005, "upper \(interval.upper)")
    }

    @Test func wilsonEdges() throws {
        #expect(WilsonInterval.compute(successes: 0, trials: 0) == nil)
        #expect(WilsonInterval.compute(successes: 3, trials: 2) == nil)
        #expect(WilsonInterval.compute(successes: -1, trials: 2) == nil)
        let none = try #require(WilsonInterval.compute(successes: 0, trials: 5))
        #expect(none.lower == 0)
        let all = try #require(WilsonInterval.compute(successes: 5, trials: 5))
        #expect(all.upper == 1)
        // From Python with the same formula: 81/263 → (0.25528851948901576, 0.3662095774580194).
        let precise = try #require(WilsonInterval.compute(successes: 81, trials: 263))
        #expect(abs(precise.lower - 0.25528851948901576) < 1e-12)
        #expect(abs(precise.upper - 0.3662095774580194) < 1e-12)
        // A wider z gives a wider interval.
        let wide = try #require(WilsonInterval.compute(successes: 81, trials: 263, z: 2.575829))
        #expect(wide.lower < precise.lower && wide.upper > precise.upper)
    }

    @Test func percentiles() {
        let values: [Double] = [15, 20, 35, 40, 50]
        #expect(Percentiles.nearestRank(values, percentile: 50) == 35)
        #expect(Percentiles.nearestRank(values, percentile: 95) == 50)
        #expect(Percentiles.nearestRank(values, percentile: 100) == 50)
        #expect(Percentiles.nearestRank(values, percentile: 1) == 15)
        #expect(Percentiles.nearestRank([], percentile: 50) == nil)
        #expect(Percentiles.nearestRank(values, percentile: 0) == nil)
        let hundred = (1...100).map(Double.init).shuffled()
        #expect(Percentiles.nearestRank(hundred, percentile: 95) == 95)
    }

    @Test func consistency() {
        var summary = sampleSummary()
        #expect(summary.isConsistent)
        #expect(summary.passRate == 81.0 / 263.0)
        summary.sampledOut += 1
        #expect(!summary.isConsistent)
        summary = sampleSummary()
        summary.passed = summary.scored + 1
        #expect(!summary.isConsistent)
        summary = sampleSummary()
        summary.lateScored = summary.scored + 1
        #expect(!summary.isConsistent)
        summary = sampleSummary()
        summary.filteredOut = -1
        summary.eligible -= 101
        #expect(!summary.isConsistent)
        summary = sampleSummary()
        summary.windowEndNanos = summary.windowStartNanos
        #expect(!summary.isConsistent)
        summary = sampleSummary()
        summary.eligible = .max
        summary.scored = .max
        #expect(!summary.isConsistent)  // overflowing sums never "match"
    }

    @Test func exactJSON() {
        #expect(sampleSummary().json().serialized() == """
            {"window_start":"2026-02-03T13:00:00Z","window_end":"2026-02-03T13:15:00Z","scorer_name":"relevance_to_query",\
            "config_version":3,"revision":1,"eligible":1000,"filtered_out":100,"sampled_out":540,"budget_skipped":0,"not_applicable":50,"errored":47,\
            "scored":263,"passed":81,"late_scored":4,"pass_rate":0.30798479087452474,\
            "wilson_lower":0.25528851948901576,"wilson_upper":0.3662095774580194,\
            "judge_latency_p50_ms":850,"judge_latency_p95_ms":2400.5,"tokens":{"input":120000,"output":8000,"total":128000}}
            """)
    }

    @Test func nothingScoredWritesNulls() {
        let summary = WindowScorerSummary(
            windowStartNanos: 0, windowEndNanos: 10_000_000_000, scorerName: "no_pii", configVersion: 1,
            eligible: 7, filteredOut: 7, sampledOut: 0, notApplicable: 0, errored: 0, scored: 0, passed: 0, lateScored: 0
        )
        #expect(summary.isConsistent)
        #expect(summary.passRate == nil)
        let json = summary.json()
        #expect(json["pass_rate"] == .null)
        #expect(json["wilson_lower"] == .null)
        #expect(json["wilson_upper"] == .null)
        #expect(json["judge_latency_p50_ms"] == .null)
        #expect(json["tokens"] == .null)
        #expect(json["revision"] == 1)
        #expect(json.objectValue?.keys.count == 20)
    }
}
