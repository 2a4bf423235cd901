import AssayCore
import AssayScoring
import Logging

/// Builds the scorers of a monitor config, with the judge its `judge` section asks for.
public enum JudgeWiring {
    /// The scorers of `config`, LLM scorers bound to their judge.
    public static func makeScorers(_ config: MonitorConfig, logger: Logger) throws -> [any Scorer] {
        try ScorerFactory.makeScorers(config)
    }
}
