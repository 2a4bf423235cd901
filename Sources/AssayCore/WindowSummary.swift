// Per-window, per-scorer denominators (DESIGN §2 invariant 10).

/// The Wilson score interval for a binomial proportion.
public enum WilsonInterval {
    /// z for a two-sided 95% interval.
    public static let z95 = 1.959964

    /// The Wilson score interval of `successes` out of `trials` at normal quantile `z`, or nil
    /// when there are no trials (or the counts are impossible: negative, or successes > trials).
    ///
    /// With p̂ = s/n: centre = (p̂ + z²/2n) / (1 + z²/n), half-width =
    /// z·√(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n); the bounds are clamped to [0, 1].
    public static func compute(successes: Int, trials: Int, z: Double = z95) -> (lower: Double, upper: Double)? {
        guard trials > 0, successes >= 0, successes <= trials, z.isFinite, z >= 0 else { return nil }
        let n = Double(trials)
        let p = Double(successes) / n
        let z2 = z * z
        let denominator = 1 + z2 / n
        let centre = (p + z2 / (2 * n)) / denominator
        let halfWidth = z * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot() / denominator
        var lower = max(0, centre - halfWidth)
        var upper = min(1, centre + halfWidth)
        // The exact bounds at the extremes (rounding would otherwise leave ~1e-17).
        if successes == 0 { lower = 0 }
        if successes == trials { upper = 1 }
        return (lower, upper)
    }
}

/// Nearest-rank percentiles for latency summaries.
public enum Percentiles {
    /// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `values`: the smallest value with at
    /// least p% of the values at or below it. Nil for no values or p outside (0, 100].
    public static func nearestRank(_ values: [Double], percentile p: Double) -> Double? {
        guard !values.isEmpty, p > 0, p <= 100 else { return nil }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}

/// Tokens a judge used.
public struct TokenUsage: Sendable, Equatable {
    public var inputTokens: Int64
    public var outputTokens: Int64

    public init(inputTokens: Int64, outputTokens: Int64) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }

    /// Input plus output tokens (saturating).
    public var totalTokens: Int64 {
        let (sum, overflow) = inputTokens.addingReportingOverflow(outputTokens)
        return overflow ? Int64.max : sum
    }
}

/// One row of the window summary: what happened to one scorer's traces in one window.
///
/// Every complete trace of the window is **eligible** and ends in exactly one bucket, counted
/// in this order:
///
///     eligible = sampled_out + filtered_out + budget_skipped + not_applicable + errored + scored
///
/// - `sampled_out`: ρ ≥ the scorer's rate, or the per-window cap (`max_per_window`, which
///   keeps the lowest ρ among sampled traces the filter accepts) left it out.
/// - `filtered_out`: sampled, but the scorer's filter rejected it. Sampling comes first: it
///   needs only ρ, an index scan, so the filter is evaluated on the sampled set alone.
/// - `budget_skipped`: selected, but the judge's per-window budget (calls or tokens) was used
///   up before it: counted, never silently dropped, and without an assessment.
/// - `not_applicable`: the scorer ran but did not apply (no RETRIEVER span, empty output …).
/// - `errored`: the scorer failed after its retries (an error assessment).
/// - `scored`: it has a value. `passed` ⊆ scored (values `yes`/`true`); `late_scored` ⊆ scored
///   (traces that arrived after the window closed, still scored, and flagged).
///
/// ``isConsistent`` checks the identity and the subsets.
public struct WindowScorerSummary: Sendable, Equatable {
    public var windowStartNanos: Int64
    public var windowEndNanos: Int64
    public var scorerName: String
    public var configVersion: Int64
    /// 1 for the summary published when the window is first scored; each later change (late
    /// traces) publishes the summary again with the next revision.
    public var revision: Int
    public var eligible: Int
    public var filteredOut: Int
    public var sampledOut: Int
    /// Selected, but the judge budget of the window was used up (no assessment written).
    public var budgetSkipped: Int
    public var notApplicable: Int
    public var errored: Int
    public var scored: Int
    public var passed: Int
    public var lateScored: Int
    /// Median judge latency over this window's judge calls, in milliseconds (nil: no calls).
    public var judgeLatencyP50Millis: Double?
    /// 95th-percentile judge latency in milliseconds (nil: no calls).
    public var judgeLatencyP95Millis: Double?
    /// Tokens the judge used for this scorer in this window (nil for code scorers).
    public var tokens: TokenUsage?

    public init(
        windowStartNanos: Int64,
        windowEndNanos: Int64,
        scorerName: String,
        configVersion: Int64,
        revision: Int = 1,
        eligible: Int,
        filteredOut: Int,
        sampledOut: Int,
        budgetSkipped: Int = 0,
        notApplicable: Int,
        errored: Int,
        scored: Int,
        passed: Int,
        lateScored: Int,
        judgeLatencyP50Millis: Double? = nil,
        judgeLatencyP95Millis: Double? = nil,
        tokens: TokenUsage? = nil
    ) {
        self.windowStartNanos = windowStartNanos
        self.windowEndNanos = windowEndNanos
        self.scorerName = scorerName
        self.configVersion = configVersion
        self.revision = revision
        self.eligible = eligible
        self.filteredOut = filteredOut
        self.sampledOut = sampledOut
        self.budgetSkipped = budgetSkipped
        self.notApplicable = notApplicable
        self.errored = errored
        self.scored = scored
        self.passed = passed
        self.lateScored = lateScored
        self.judgeLatencyP50Millis = judgeLatencyP50Millis
        self.judgeLatencyP95Millis = judgeLatencyP95Millis
        self.tokens = tokens
    }

    /// passed / scored, or nil when nothing was scored.
    public var passRate: Double? {
        scored > 0 ? Double(passed) / Double(scored) : nil
    }

    /// The Wilson 95% interval of the pass rate, or nil when nothing was scored.
    public var wilson95: (lower: Double, upper: Double)? {
        WilsonInterval.compute(successes: passed, trials: scored)
    }

    /// Whether the counts obey the identity and subset rules in the type's documentation, and
    /// the window is well formed.
    public var isConsistent: Bool {
        let counts = [eligible, filteredOut, sampledOut, budgetSkipped, notApplicable, errored, scored, passed, lateScored]
        guard counts.allSatisfy({ $0 >= 0 }), windowEndNanos > windowStartNanos else { return false }
        let (sum, overflow) = [filteredOut, sampledOut, budgetSkipped, notApplicable, errored, scored].reduce((0, false)) { partial, count in
            let (next, didOverflow) = partial.0.addingReportingOverflow(count)
            return (next, partial.1 || didOverflow)
        }
        return !overflow && sum == eligible && passed <= scored && lateScored <= scored
    }

    /// The JSON form (`schemas/window-summary.schema.json`), keys always in this order:
    /// `window_start`, `window_end` (RFC 3339 UTC), `scorer_name`, `config_version`, `revision`, `eligible`,
    /// `filtered_out`, `sampled_out`, `budget_skipped`, `not_applicable`, `errored`, `scored`, `passed`,
    /// `late_scored`, `pass_rate`, `wilson_lower`, `wilson_upper`, `judge_latency_p50_ms`,
    /// `judge_latency_p95_ms`, `tokens` (`{input, output, total}`). Absent values are `null`.
    public func json() -> JSONValue {
        func number(_ value: Double?) -> JSONValue {
            guard let value, value.isFinite else { return .null }
            return FeedbackValue.numberJSON(value)
        }
        let interval = wilson95
        var object = JSONObject()
        object["window_start"] = .string(TimeFormatting.rfc3339(nanos: windowStartNanos, fraction: .shortestExact))
        object["window_end"] = .string(TimeFormatting.rfc3339(nanos: windowEndNanos, fraction: .shortestExact))
        object["scorer_name"] = .string(scorerName)
        object["config_version"] = JSONValue(configVersion)
        object["revision"] = JSONValue(revision)
        object["eligible"] = JSONValue(eligible)
        object["filtered_out"] = JSONValue(filteredOut)
        object["sampled_out"] = JSONValue(sampledOut)
        object["budget_skipped"] = JSONValue(budgetSkipped)
        object["not_applicable"] = JSONValue(notApplicable)
        object["errored"] = JSONValue(errored)
        object["scored"] = JSONValue(scored)
        object["passed"] = JSONValue(passed)
        object["late_scored"] = JSONValue(lateScored)
        object["pass_rate"] = number(passRate)
        object["wilson_lower"] = number(interval?.lower)
        object["wilson_upper"] = number(interval?.upper)
        object["judge_latency_p50_ms"] = number(judgeLatencyP50Millis)
        object["judge_latency_p95_ms"] = number(judgeLatencyP95Millis)
        if let tokens {
            object["tokens"] = .object([
                "input": JSONValue(tokens.inputTokens),
                "output": JSONValue(tokens.outputTokens),
                "total": JSONValue(tokens.totalTokens),
            ])
        } else {
            object["tokens"] = .null
        }
        return .object(object)
    }
}
