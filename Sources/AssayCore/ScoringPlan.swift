/// Decides, for one trace and one scorer in a window pass, whether the scorer runs.
///
/// Order: sampling (ρ < the scorer's rate; needs only ρ), then the scorer's filter, then the
/// per-window cap (`max_per_window`: traces are visited in ascending ρ, so the cap keeps the
/// lowest-ρ traces, which stays nested across rates). Each non-running outcome is a bucket of
/// the window summary.
public enum ScoringDecision: Sendable, Equatable {
    /// ρ ≥ rate, or the cap is full: counted as `sampled_out`.
    case sampledOut
    /// Sampled, but the filter rejected the trace: counted as `filtered_out`.
    case filteredOut
    /// Run the scorer.
    case score
}

/// The sampling plan of one monitor configuration.
public struct ScoringPlan: Sendable {
    public let config: MonitorConfig

    public init(config: MonitorConfig) {
        self.config = config
    }

    /// The rate of a scorer after the global default applies.
    public func rate(of scorer: ScorerConfig) -> Double {
        scorer.effectiveRate(global: config.sampleRate)
    }

    /// The largest rate of any scorer: traces with ρ at or above it are sampled out everywhere,
    /// so their full content never needs loading.
    public var maximumRate: Double {
        config.scorers.map(rate(of:)).max() ?? 0
    }

    /// Whether a window under this config may be scored while it is still open, trace by
    /// trace as they are stored, leaving only the rest to its close. Not when the monitor is
    /// paused or has no scorer, and not when a scorer has a `max_per_window` cap: the cap
    /// keeps the lowest-ρ traces of the whole window, known only once the window has closed.
    public var scoresOpenWindows: Bool {
        !config.paused && !config.scorers.isEmpty && !capsAnyScorer
    }

    /// Whether a scorer has a `max_per_window` cap: the cap keeps the lowest-ρ traces of the
    /// whole window, so one replica takes them in order (one slice, scored at the close).
    public var capsAnyScorer: Bool {
        config.scorers.contains { $0.maxPerWindow != nil }
    }

    /// Every scorer's rate, for the expected work of a trace by ρ (``ScoringSlices``).
    public var rates: [Double] {
        config.scorers.map(rate(of:))
    }

    /// Whether `scorer` runs on a trace. `subject` is consulted only when the trace is
    /// sampled and the scorer has a filter; `selectedSoFar` is how many traces this scorer
    /// already took in this window (for the cap).
    public func decide(rho: Double, scorer: ScorerConfig, subject: @autoclosure () -> TraceFilterSubject, selectedSoFar: Int) -> ScoringDecision {
        guard Sampler.isSampled(rho: rho, rate: rate(of: scorer)) else { return .sampledOut }
        if let filter = scorer.filter, !filter.matches(subject()) { return .filteredOut }
        if let cap = scorer.maxPerWindow, selectedSoFar >= cap { return .sampledOut }
        return .score
    }
}
