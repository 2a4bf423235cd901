import AssayCore
import AssayScoring
import AssayStore
import Logging
import Postgres

/// What to backfill.
public struct BackfillRequest: Sendable, Equatable {
    /// Request times from here (inclusive; rounded down to a window boundary)...
    public var fromNanos: Int64
    /// ...to here (exclusive; windows that start before it).
    public var toNanos: Int64
    /// Only these scorers (empty: all of the current config).
    public var scorers: [String]
    /// Overrides every selected scorer's sample rate.
    public var sampleRate: Double?

    public init(fromNanos: Int64, toNanos: Int64, scorers: [String] = [], sampleRate: Double? = nil) {
        self.fromNanos = fromNanos
        self.toNanos = toNanos
        self.scorers = scorers
        self.sampleRate = sampleRate
    }
}

/// Where a backfill is.
public struct BackfillProgress: Sendable, Equatable {
    public var windowsDone: Int
    public var windowsTotal: Int
    public var currentWindowNanos: Int64
    public var tracesRead: Int
    public var newAssessments: Int
    public var resumed: Bool
}

/// Errors a backfill reports before doing anything.
public enum BackfillError: Error, Sendable, Equatable, CustomStringConvertible {
    case noMonitor
    case unknownScorers([String])
    case emptyRange

    public var description: String {
        switch self {
        case .noMonitor: return "no monitor is configured: there is nothing to score with"
        case .unknownScorers(let names): return "the current monitor has no scorer named \(names.joined(separator: ", "))"
        case .emptyRange: return "--to must be after --from"
        }
    }
}

/// `assay backfill`: scores the stored traces of past windows with the current monitor
/// version, through the same code as live scoring (``ChunkScorer``), so assessments get the
/// same ids and nothing is written twice. Live windows, trace marks and summaries are not
/// touched; new assessments are published through the outbox. Progress is stored per
/// window, so an interrupted run resumes where it stopped.
public struct Backfill: Sendable {
    public let pool: PostgresPool
    public let schema: SchemaName
    public let logger: Logger
    public var chunkSize = 500
    public var concurrency = 4

    public init(pool: PostgresPool, schema: SchemaName, logger: Logger) {
        self.pool = pool
        self.schema = schema
        self.logger = logger
    }

    /// Runs (or resumes) the backfill; `progress` is called after every chunk.
    @discardableResult
    public func run(_ request: BackfillRequest, progress: @Sendable (BackfillProgress) -> Void) async throws -> BackfillProgress {
        guard request.toNanos > request.fromNanos else { throw BackfillError.emptyRange }
        let monitorStore = MonitorStore(schema: schema)
        guard let current = try await pool.withConnection({ try monitorStore.current(on: $0) }) else { throw BackfillError.noMonitor }
        var config = current.config
        let unknown = request.scorers.filter { config.scorer(named: $0) == nil }
        guard unknown.isEmpty else { throw BackfillError.unknownScorers(unknown) }
        if !request.scorers.isEmpty { config.scorers = config.scorers.filter { request.scorers.contains($0.name) } }
        if let rate = request.sampleRate {
            for index in config.scorers.indices { config.scorers[index].sampleRate = rate }
        }
        config.paused = false
        let scorers = try JudgeWiring.makeScorers(config, logger: logger)

        let width = config.window.widthNanos
        let first = ScoringStore.floor(request.fromNanos, width)
        let total = Int((request.toNanos - first + width - 1) / width)
        let backfillStore = BackfillStore()
        let (run, resumed) = try await pool.withConnection {
            try backfillStore.startOrResume(fromNanos: request.fromNanos, toNanos: request.toNanos, configVersion: current.version,
                                            scorers: request.scorers, sampleRate: request.sampleRate, firstWindowNanos: first, on: $0)
        }
        var state = BackfillProgress(windowsDone: Int((run.nextWindowNanos - first) / width), windowsTotal: total,
                                     currentWindowNanos: run.nextWindowNanos, tracesRead: 0, newAssessments: 0, resumed: resumed)
        if resumed {
            logger.info("resuming backfill", metadata: ["run": "\(run.id)", "windows.done": "\(state.windowsDone)"])
        }
        var windowStart = run.nextWindowNanos
        while windowStart < request.toNanos && !Task.isCancelled {
            let chunkScorer = ChunkScorer(config: config, configVersion: current.version, windowStartNanos: windowStart,
                                          scorers: scorers, concurrency: concurrency)
            let maximumRate = chunkScorer.plan.maximumRate
            var selected: [String: Int] = [:]
            var cursor: (rho: Double, traceID: String)?
            var windowAssessments = 0
            let start = windowStart
            let limit = chunkSize
            while !Task.isCancelled {
                let after = cursor
                let rows = try await pool.withConnection {
                    try backfillStore.traces(windowStart: start, windowEnd: start + width, after: after, limit: limit, on: $0)
                }
                guard let last = rows.last else { break }
                cursor = (last.rho, last.traceID)
                let sampledIDs = rows.filter { Sampler.isSampled(rho: $0.rho, rate: maximumRate) }.map(\.traceID)
                let loaded: [TraceReader.StoredTrace] = try await pool.withConnection { connection in
                    try TraceReader.load(traceIDs: sampledIDs, windowClosedAtMicros: Int64.max, on: connection)
                }
                let traces = Dictionary(uniqueKeysWithValues: loaded.map { ($0.trace.traceID, $0.trace) })
                let chunk = try await chunkScorer.score(rows.map { ChunkScorer.Row(traceID: $0.traceID, rho: $0.rho, late: $0.late, trace: traces[$0.traceID]) },
                                                        selected: &selected) { ids in
                    try await pool.withConnection { try ScoringStore().storedOutcomes(assessmentIDs: ids, on: $0) }
                }
                let version = current.version
                let written = try await pool.withConnection {
                    try backfillStore.storeAssessments(chunk.assessments, windowStartNanos: start, configVersion: version, on: $0)
                }
                windowAssessments += written
                state.tracesRead += rows.count
                state.newAssessments += written
                state.currentWindowNanos = start
                progress(state)
            }
            guard !Task.isCancelled else { break }
            windowStart += width
            state.windowsDone += 1
            let next = windowStart
            let added = windowAssessments
            let finished = next >= request.toNanos
            try await pool.withConnection { try backfillStore.advance(run, nextWindowNanos: next, newAssessments: added, finished: finished, on: $0) }
            progress(state)
        }
        return state
    }
}
