import AssayCore

/// Passed out of scored traces: one scorer in one window, or pooled over several.
public struct PassCounts: Sendable, Equatable {
    public var scored: Int
    public var passed: Int

    public init(scored: Int, passed: Int) {
        self.scored = scored
        self.passed = passed
    }

    /// passed / scored, or nil when nothing was scored.
    public var passRate: Double? {
        scored > 0 ? Double(passed) / Double(scored) : nil
    }
}

/// When a scorer's pass rate in a closed window counts as a regression: a one-sided,
/// pooled two-proportion z-test of the window against the scorer's trailing baseline.
///
/// The rule, exactly:
/// 1. The baseline is the scorer's previous ``baselineWindows`` (K) scored windows, most
///    recent first; their counts are pooled: n₀ = Σ scored, x₀ = Σ passed, p₀ = x₀/n₀.
/// 2. The window has n₁ = scored, x₁ = passed, p₁ = x₁/n₁.
/// 3. Nothing is decided unless n₁ ≥ ``minimumScored`` and n₀ ≥ ``minimumScored``, and counts
///    are sane (0 ≤ passed ≤ scored).
/// 4. With the pooled rate p = (x₀ + x₁)/(n₀ + n₁) and standard error
///    SE = √(p(1 − p)(1/n₁ + 1/n₀)), z = (p₁ − p₀)/SE. When SE = 0 (p is 0 or 1, so both
///    rates are equal) there is no regression.
/// 5. It is a regression iff z ≤ −``zCritical`` (2.33 by default: about a 1% one-sided
///    false-alarm rate per window and scorer when nothing changed).
public struct RegressionRule: Sendable, Equatable {
    /// K: how many previous windows form the baseline.
    public var baselineWindows: Int
    /// The fewest scored traces on each side (window, pooled baseline) for a decision.
    public var minimumScored: Int
    /// The critical value: a regression needs z ≤ −zCritical.
    public var zCritical: Double

    public init(baselineWindows: Int = 6, minimumScored: Int = 30, zCritical: Double = 2.33) {
        self.baselineWindows = max(1, baselineWindows)
        self.minimumScored = max(1, minimumScored)
        self.zCritical = zCritical
    }

    /// The outcome of testing one window.
    public struct Evaluation: Sendable, Equatable {
        public enum Decision: Sendable, Equatable {
            case regression
            case noRegression
            /// Too few scored traces on a side, or impossible counts.
            case insufficientData
        }

        public var decision: Decision
        public var window: PassCounts
        /// The pooled baseline (the first K windows given).
        public var baseline: PassCounts
        /// How many windows the baseline pooled.
        public var baselineWindows: Int
        /// The z statistic, or nil when it is undefined (too little data, SE = 0).
        public var z: Double?

        public var isRegression: Bool { decision == .regression }
    }

    /// Tests `window` against `baseline`, the previous windows' counts, most recent first
    /// (only the first ``baselineWindows`` are used).
    public func evaluate(window: PassCounts, baseline: [PassCounts]) -> Evaluation {
        let used = Array(baseline.prefix(baselineWindows))
        let pooled = used.reduce(PassCounts(scored: 0, passed: 0)) {
            PassCounts(scored: $0.scored &+ $1.scored, passed: $0.passed &+ $1.passed)
        }
        var evaluation = Evaluation(decision: .insufficientData, window: window, baseline: pooled, baselineWindows: used.count, z: nil)
        let sane = ([window] + used).allSatisfy { $0.scored >= 0 && $0.passed >= 0 && $0.passed <= $0.scored }
        guard sane, window.scored >= minimumScored, pooled.scored >= minimumScored else { return evaluation }
        evaluation.z = Self.zStatistic(window: window, baseline: pooled)
        if let z = evaluation.z, z <= -zCritical {
            evaluation.decision = .regression
        } else {
            evaluation.decision = .noRegression
        }
        return evaluation
    }

    /// The pooled two-proportion z statistic (p₁ − p₀)/SE, or nil when a side has no trials
    /// or SE = 0.
    public static func zStatistic(window: PassCounts, baseline: PassCounts) -> Double? {
        guard window.scored > 0, baseline.scored > 0 else { return nil }
        let n1 = Double(window.scored), n0 = Double(baseline.scored)
        let p1 = Double(window.passed) / n1
        let p0 = Double(baseline.passed) / n0
        let pooled = Double(window.passed + baseline.passed) / (n1 + n0)
        let standardError = (pooled * (1 - pooled) * (1 / n1 + 1 / n0)).squareRoot()
        guard standardError > 0, standardError.isFinite else { return nil }
        return (p1 - p0) / standardError
    }
}

/// A pass-rate regression of one scorer in one window: the `alert/v1` document
/// (`schemas/alert.schema.json`) published to the assessments topic.
public struct RegressionAlert: Sendable, Equatable {
    /// The schema name, sent as the `assay-schema` header.
    public static let schemaName = "alert/v1"
    /// The alert kind in the document.
    public static let kind = "pass_rate_regression"

    public var windowStartNanos: Int64
    public var windowEndNanos: Int64
    public var scorerName: String
    public var configVersion: Int64
    public var evaluation: RegressionRule.Evaluation
    public var rule: RegressionRule
    /// When the alert was raised, ms since the epoch.
    public var createdAtMillis: Int64

    public init(windowStartNanos: Int64, windowEndNanos: Int64, scorerName: String, configVersion: Int64,
                evaluation: RegressionRule.Evaluation, rule: RegressionRule, createdAtMillis: Int64) {
        self.windowStartNanos = windowStartNanos
        self.windowEndNanos = windowEndNanos
        self.scorerName = scorerName
        self.configVersion = configVersion
        self.evaluation = evaluation
        self.rule = rule
        self.createdAtMillis = createdAtMillis
    }

    /// The alert id: a UUIDv5 of the window and the scorer, so evaluating the same window
    /// again can never make a second alert. It is ``Assessment/id(traceID:spanID:name:configVersion:)``
    /// (UUIDv5, SHA-1, in the assessment-id namespace) of the name
    /// `"alert|<window_start_ns>|pass_rate_regression:<scorer>|0"`.
    public static func id(windowStartNanos: Int64, scorerName: String) -> String {
        Assessment.id(traceID: "alert", spanID: String(windowStartNanos), name: "\(kind):\(scorerName)", configVersion: 0)
    }

    public var alertID: String { Self.id(windowStartNanos: windowStartNanos, scorerName: scorerName) }

    /// The Kafka message key: the window summary's key, so the alert follows the summary on
    /// the same partition.
    public var messageKey: String { "\(windowStartNanos)/\(scorerName)" }

    /// The JSON document, keys always in this order: `alert_id`, `kind`, `scorer_name`,
    /// `window_start`, `window_end`, `config_version`, `scored`, `passed`, `pass_rate`,
    /// `baseline_windows`, `baseline_scored`, `baseline_passed`, `baseline_pass_rate`, `z`,
    /// `z_critical`, `min_scored`, `created_at`.
    public func json() -> JSONValue {
        func number(_ value: Double?) -> JSONValue {
            guard let value else { return .null }
            return JSONValue(value)
        }
        var object = JSONObject()
        object["alert_id"] = .string(alertID)
        object["kind"] = .string(Self.kind)
        object["scorer_name"] = .string(scorerName)
        object["window_start"] = .string(TimeFormatting.rfc3339(nanos: windowStartNanos, fraction: .shortestExact))
        object["window_end"] = .string(TimeFormatting.rfc3339(nanos: windowEndNanos, fraction: .shortestExact))
        object["config_version"] = JSONValue(configVersion)
        object["scored"] = JSONValue(evaluation.window.scored)
        object["passed"] = JSONValue(evaluation.window.passed)
        object["pass_rate"] = number(evaluation.window.passRate)
        object["baseline_windows"] = JSONValue(evaluation.baselineWindows)
        object["baseline_scored"] = JSONValue(evaluation.baseline.scored)
        object["baseline_passed"] = JSONValue(evaluation.baseline.passed)
        object["baseline_pass_rate"] = number(evaluation.baseline.passRate)
        object["z"] = number(evaluation.z)
        object["z_critical"] = JSONValue(rule.zCritical)
        object["min_scored"] = JSONValue(rule.minimumScored)
        object["created_at"] = .string(TimeFormatting.rfc3339(millis: createdAtMillis))
        return .object(object)
    }
}
