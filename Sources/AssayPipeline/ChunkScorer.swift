import AssayCore
import AssayScoring
import AssayStore
import Foundation
import Postgres

/// Scores one chunk of a window's traces: the sampling plan decides which scorers run on
/// which trace, the scorers run with bounded concurrency, and their outcomes become
/// assessments and summary deltas. Shared by live scoring and `assay backfill`, so both
/// produce the same assessments with the same ids.
struct ChunkScorer: Sendable {
    let config: MonitorConfig
    let configVersion: Int64
    let windowStartNanos: Int64
    let scorers: [any Scorer]
    let concurrency: Int

    var plan: ScoringPlan { ScoringPlan(config: config) }

    /// The judge's budget key of a window: its start.
    static func budgetKey(windowStartNanos: Int64) -> String { String(windowStartNanos) }

    /// A trace of the chunk: its id, ρ, late flag, and the trace itself when it was loaded
    /// (only traces sampled by some scorer are).
    struct Row: Sendable {
        var traceID: String
        var rho: Double
        var late: Bool
        var trace: Trace?
    }

    /// Scores `rows` (in ascending ρ). `selected` counts traces each scorer took so far in
    /// this window (for `max_per_window`); `storedOutcomes` looks up ids an earlier pass
    /// already stored, whose first value wins.
    func score(_ rows: [Row], selected: inout [String: Int],
               storedOutcomes: ([String]) async throws -> [String: StoredOutcome]) async throws -> ChunkResult {
        let plan = self.plan
        var chunk = ChunkResult()
        var jobs: [(trace: Trace, scorer: any Scorer, config: ScorerConfig, late: Bool)] = []
        for row in rows {
            chunk.handledTraces.append((traceID: row.traceID, late: row.late))
            for config in config.scorers {
                chunk.deltas[config.name, default: SummaryDelta()].eligible += 1
                let decision: ScoringDecision
                if let trace = row.trace {
                    decision = plan.decide(rho: row.rho, scorer: config, subject: TraceFilterSubject(trace: trace), selectedSoFar: selected[config.name, default: 0])
                } else {
                    decision = .sampledOut  // ρ at or above every rate (or the trace vanished)
                }
                switch decision {
                case .sampledOut: chunk.deltas[config.name, default: SummaryDelta()].sampledOut += 1
                case .filteredOut: chunk.deltas[config.name, default: SummaryDelta()].filteredOut += 1
                case .score:
                    guard let trace = row.trace, let scorer = scorers.first(where: { $0.name == config.name }) else { continue }
                    selected[config.name, default: 0] += 1
                    chunk.deltas[config.name, default: SummaryDelta()].selected += 1
                    jobs.append((trace, scorer, config, row.late))
                }
            }
        }

        let scoringContext = ScoringContext(budgetKey: Self.budgetKey(windowStartNanos: windowStartNanos))
        let results = await ScoringService.run(jobs.map { ($0.trace, $0.scorer) }, context: scoringContext, concurrency: concurrency)
        var candidates: [(job: Int, outcome: ScorerOutcome, assessment: Assessment, stored: StoredOutcome)] = []
        var skippedJobs = Set<Int>()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for (index, outcomes) in results.enumerated() {
            let job = jobs[index]
            let context = AssessmentContext(
                traceID: job.trace.traceID, windowStartNanos: windowStartNanos, configVersion: configVersion,
                sampleRate: plan.rate(of: job.config), late: job.late, createTimeMillis: now)
            for outcome in outcomes {
                if case .budgetSkipped = outcome.result {
                    skippedJobs.insert(index)  // counted, no assessment
                    continue
                }
                candidates.append((index, outcome, job.scorer.assessment(for: outcome, context: context), ScoringService.storedOutcome(outcome.result)))
            }
        }
        let existing = try await storedOutcomes(candidates.map(\.assessment.assessmentID))
        var perJob: [Int: [StoredOutcome]] = [:]
        for candidate in candidates {
            let stored = existing[candidate.assessment.assessmentID] ?? candidate.stored
            perJob[candidate.job, default: []].append(stored)
            if existing[candidate.assessment.assessmentID] == nil {
                let metrics = JudgeCallMetrics(candidate.outcome.extraMetadata)
                chunk.assessments.append(NewAssessment(
                    assessment: candidate.assessment, scorerName: jobs[candidate.job].config.name, outcome: candidate.stored,
                    late: jobs[candidate.job].late, judgeLatencyMillis: metrics.latencyMillis,
                    judgeInputTokens: metrics.inputTokens, judgeOutputTokens: metrics.outputTokens))
            }
        }
        for (index, job) in jobs.enumerated() {
            var delta = chunk.deltas[job.config.name, default: SummaryDelta()]
            if skippedJobs.contains(index) {
                delta.budgetSkipped += 1
            } else {
                switch ScoringService.traceVerdict(perJob[index] ?? [], kind: job.config.kind) {
                case .notApplicable: delta.notApplicable += 1
                case .errored: delta.errored += 1
                case .scored(let passed):
                    delta.scored += 1
                    if passed { delta.passed += 1 }
                    if job.late { delta.lateScored += 1 }
                }
            }
            chunk.deltas[job.config.name] = delta
        }
        return chunk
    }
}
