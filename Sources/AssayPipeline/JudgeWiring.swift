import AssayCore
import AssayJudgeHTTP
import AssayMetrics
import AssayScoring
import Foundation
import Logging

/// Builds the scorers of a monitor config, with the judge its `judge` section asks for.
///
/// The judge is wrapped in a ``GovernedJudge``: concurrency limit, per-window call and
/// token budgets (`max_concurrency`, `max_calls_per_window`, `max_tokens_per_window`) and a
/// response cache. The OpenAI-compatible judge reads its API key from the environment
/// variable the config names, never from the config.
public enum JudgeWiring {
    /// The judge for `config`, or nil when it configures none.
    public static func makeJudge(_ config: MonitorConfig, environment: [String: String] = ProcessInfo.processInfo.environment,
                                 logger: Logger, metrics: AssayMetrics = .global) throws -> GovernedJudge? {
        guard let judge = config.judge else { return nil }
        switch judge.kind {
        case .offline:
            // Deterministic and free, so no cache; the call budget still applies, so a
            // monitor behaves the same when its judge is swapped.
            return GovernedJudge(wrapping: OfflineJudge(), limits: .init(maxConcurrency: judge.maxConcurrency, maxCallsPerWindow: judge.maxCallsPerWindow,
                                                                         maxTokensPerWindow: judge.maxTokensPerWindow, cacheEntries: 0), logger: logger,
                                 metrics: metrics)
        case .openai:
            return try GovernedJudge.openAI(judgeConfig: judge, environment: environment, maxTokensPerWindow: judge.maxTokensPerWindow, logger: logger, metrics: metrics)
        }
    }

    /// The scorers of `config`, LLM scorers bound to its judge.
    public static func makeScorers(_ config: MonitorConfig, environment: [String: String] = ProcessInfo.processInfo.environment,
                                   logger: Logger, metrics: AssayMetrics = .global) throws -> [any Scorer] {
        let judge = try makeJudge(config, environment: environment, logger: logger, metrics: metrics)
        return try ScorerFactory.makeScorers(config, judge: judge)
    }
}
