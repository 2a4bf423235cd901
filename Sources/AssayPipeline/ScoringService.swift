import AssayCore
import AssayJudgeHTTP
import AssayMetrics
import AssayScoring
import AssayStore
import Foundation
import Logging
import Metrics
import Postgres
import ServiceLifecycle
import Synchronization

/// Settings of the window closer and scorer of one replica.
public struct ScoringConfiguration: Sendable {
    /// This replica's name, used as the window lease owner.
    public var owner: String
    public var tracesTopic: String = "traces"
    /// How often to look for closable windows when there is nothing to do.
    public var tick: Duration = .seconds(1)
    /// A partition whose newest event time has not advanced, and that has no unread
    /// messages, for this long no longer holds the watermark back. Keep it above the Kafka
    /// session timeout, so a crashed replica's partitions hold windows open until they move.
    public var idleTimeout: Duration = .seconds(60)
    /// Traces per chunk (one transaction each).
    public var chunkSize: Int = 500
    /// How long a window lease lasts without renewal (renewed every chunk).
    public var leaseSeconds: Int = 60
    /// Scorer runs in flight at once within a chunk.
    public var concurrency: Int = max(2, ProcessInfo.processInfo.activeProcessorCount)
    /// Fault injection for crash tests: SIGKILL this process after this many committed
    /// chunks, in the middle of a window. Never set in production.
    public var crashAfterChunks: Int?
    /// The schema (for the monitor store).
    public var schema: SchemaName = .default
    /// An OTLP trace whose root span has not arrived after this long without new spans is
    /// written as it is, flagged incomplete.
    public var assemblyTimeout: Duration = .seconds(60)
    /// When set, a connection of its own LISTENs for monitor updates, so a new version is
    /// seen at once rather than at the next tick.
    public var listenerConfiguration: PostgresConfiguration?
    /// When a window's pass rate counts as a regression that publishes an `alert/v1` event
    /// (``RegressionRule``); nil turns regression alerts off.
    public var regressionRule: RegressionRule? = RegressionRule()
    /// Where the scoring metrics go (the process-wide swift-metrics backend by default).
    public var metrics: AssayMetrics = .global
    /// Score a window's traces as they are stored, before it closes, so that its close has
    /// only the rest (and the summaries) to do. Windows whose monitor version caps a scorer
    /// (`max_per_window`) are scored at their close only, and OTLP traces always are.
    public var scoreOpenWindows = true
    /// Chunks one pass over an open window takes before it looks for closable windows again.
    public var openWindowChunksPerPass = 8
    /// Slices (ranges of ρ) a new window is divided into, so that several replicas score it
    /// at once, each leasing about an equal share (``ScoringSlices``). A window whose monitor
    /// caps a scorer (`max_per_window`) has one. 1 to 64.
    public var scoringSlices = 8
    /// A replica counts as scoring, for the share of slices each takes, this long after its
    /// last heartbeat (one per round, at most every ``heartbeatInterval``).
    public var replicaActivity: Duration = .seconds(10)
    public var heartbeatInterval: Duration = .seconds(2)

    /// ``replicaActivity`` in whole seconds, at least 1 (as the store's queries take it).
    var replicaActivitySeconds: Int { max(1, Int(replicaActivity.components.seconds)) }

    public init(owner: String) {
        self.owner = owner
    }
}

/// What the scoring service has done, for the demo and tests.
public struct ScoringStatistics: Sendable, Equatable {
    public var windowsScored = 0
    public var lateWindowPasses = 0
    public var tracesHandled = 0
    public var assessmentsProduced = 0
    public var summariesPublished = 0
    public var lastWatermarkNanos: Int64?
    public var configVersion: Int64?
    /// `alert/v1` regression events this replica raised.
    public var regressionAlerts = 0
    /// Passes over windows still open, and the traces they handled.
    public var openWindowPasses = 0
    public var tracesHandledWhileOpen = 0

    public init() {}
}

/// Closes event-time windows as the watermark passes them, and scores their sampled traces.
///
/// Every replica runs one; they share the work through PostgreSQL: a window is closed by
/// whichever replica sees it first (`windows` row), its traces are scored chunk by chunk by
/// the replicas holding leases of its slices, several at once (``ScoringSlices``), and it is
/// finished (summaries published) by whichever replica finds nothing left (`ScoringStore`). Traces that arrive after their window was scored
/// are handled by a later pass over the same window, flagged late. Before a window closes,
/// passes over it score the traces stored so far (``ScoringConfiguration/scoreOpenWindows``),
/// so the pass at its close is short whatever the window's size.
///
/// The watermark is the minimum over partitions of the newest event time, ignoring
/// partitions idle for `idleTimeout`; when every partition is idle it follows the clock
/// (`now - idleTimeout`), so the last windows close even when traffic stops.
public final class ScoringService: Service, Sendable {
    private let configuration: ScoringConfiguration
    private let pool: PostgresPool
    private let store: ScoringStore
    private let logger: Logger
    private let statistics = Mutex(ScoringStatistics())
    private let scorerCache = Mutex([Int64: (scorers: [any Scorer], judge: GovernedJudge?)]())
    private let chunksCommitted = Mutex(0)
    private let versionCache = Mutex([MonitorVersion]())
    private let wakeup = Wakeup()
    private let monitorStore: MonitorStore
    private let lastHeartbeat = Mutex<ContinuousClock.Instant?>(nil)

    public init(configuration: ScoringConfiguration, pool: PostgresPool, logger: Logger) {
        self.configuration = configuration
        self.pool = pool
        self.store = ScoringStore(tracesTopic: configuration.tracesTopic)
        self.monitorStore = MonitorStore(schema: configuration.schema)
        var logger = logger
        logger[metadataKey: "replica"] = "\(configuration.owner)"
        self.logger = logger
    }

    public var currentStatistics: ScoringStatistics { statistics.withLock { $0 } }

    public func run() async throws {
        let listener = configuration.listenerConfiguration.map {
            PostgresListener(configuration: $0, channels: [MonitorStore.channel], logger: logger)
        }
        let listening = listener.map { listener in
            Task { [wakeup, logger] in
                for await notification in listener.notifications {
                    logger.debug("monitor notification", metadata: ["payload": "\(notification.payload)"])
                    wakeup.signal()
                }
            }
        }
        defer {
            listening?.cancel()
            listener?.stop()
        }
        var reportedIdle: String?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var didWork = false
            do {
                let (worked, idleReason) = try await step()
                didWork = worked
                if let idleReason, idleReason != reportedIdle {
                    logger.info("\(idleReason)")
                }
                reportedIdle = idleReason
            } catch let error as ScoringStoreError {
                logger.warning("window pass abandoned", metadata: ["error": "\(error)"])
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                logger.warning("scoring step failed; retrying", metadata: ["error": "\(error)"])
            }
            if !didWork {
                await wakeup.wait(timeout: configuration.tick)
            }
        }
        // The others take this replica's share of the slices at once.
        let store = self.store
        let owner = configuration.owner
        try? await pool.withConnection { try store.leaveScoringReplicas(owner: owner, on: $0) }
    }

    /// Records that this replica is scoring, at most every ``ScoringConfiguration/heartbeatInterval``.
    private func heartbeat() async throws {
        let now = ContinuousClock.now
        let due = lastHeartbeat.withLock { last in
            guard last.map({ $0.duration(to: now) < configuration.heartbeatInterval }) != true else { return false }
            last = now
            return true
        }
        guard due else { return }
        let store = self.store
        let owner = configuration.owner
        try await pool.withConnection { try store.heartbeat(owner: owner, on: $0) }
    }

    /// How many slices a new window under `config` gets.
    func sliceCount(for config: MonitorConfig) -> Int {
        ScoringPlan(config: config).capsAnyScorer ? 1 : configuration.scoringSlices
    }

    /// The monitor versions, oldest first; re-read only when a newer version exists.
    private func monitorVersions() async throws -> [MonitorVersion] {
        let monitorStore = self.monitorStore
        let latest = try await pool.withConnection { try $0.query("SELECT max(version) FROM monitor_configs")[0].optionalInt64(0) }
        let cached = versionCache.withLock { $0 }
        if cached.last?.version == latest { return cached }
        let versions = try await pool.withConnection { try monitorStore.versions(limit: 10_000, on: $0) }.sorted { $0.version < $1.version }
        versionCache.withLock { $0 = versions }
        if let newest = versions.last {
            logger.info("monitor config version in force for new windows", metadata: [
                "config.version": "\(newest.version)", "monitor": "\(newest.config.name)", "paused": "\(newest.config.paused)",
                "effective_from": "\(newest.effectiveFromNanos == Int64.min ? "start of history" : TimeFormatting.rfc3339(nanos: newest.effectiveFromNanos, fraction: .shortestExact))",
            ])
        }
        return versions
    }

    /// One round: find closable windows and process them. Returns whether anything was
    /// done, and why nothing could be when idle.
    func step() async throws -> (Bool, String?) {
        let store = self.store
        let ingestStore = IngestStore(groupID: "")
        let quiet = Int(configuration.assemblyTimeout.components.seconds)
        let completed = try await pool.withConnection { try ingestStore.completeStaleAssemblies(quietSeconds: max(1, quiet), on: $0) }
        if completed > 0 {
            logger.info("OTLP traces completed without their root span after the assembly timeout", metadata: ["traces": "\(completed)"])
        }
        let versions = try await monitorVersions()
        guard let latest = versions.last else {
            return (false, "no monitor configured: storing every trace, scoring nothing")
        }
        statistics.withLock { $0.configVersion = latest.version }
        configuration.metrics.configVersion(latest.version)
        try await heartbeat()
        let progress = try await pool.withConnection { try store.partitionProgress(on: $0) }
        guard let watermark = Self.watermark(progress.partitions, now: progress.nowNanos, idleTimeoutNanos: configuration.idleTimeout.nanoseconds) else {
            return (false, latest.config.paused ? "monitor '\(latest.config.name)' is paused: storing every trace, scoring nothing" : nil)
        }
        statistics.withLock { $0.lastWatermarkNanos = watermark }

        // Each version owns the event times from its effective_from to the next version's;
        // those bounds are boundaries of both widths, so no window straddles two versions.
        var candidates: [(start: Int64, version: MonitorVersion)] = []
        for (index, version) in versions.enumerated() {
            let from = version.effectiveFromNanos
            let until = index + 1 < versions.count ? versions[index + 1].effectiveFromNanos : Int64.max
            guard until > from else { continue }
            let spec = version.config.window
            let closableBy = min(watermark &- spec.allowedLatenessNanos, until)
            let starts = try await pool.withConnection { try store.windowsNeedingWork(widthNanos: spec.widthNanos, from: from, endingBy: closableBy, on: $0) }
            guard !starts.isEmpty else { continue }
            let slices = sliceCount(for: version.config)
            try await pool.withConnection { try store.closeWindows(starts, widthNanos: spec.widthNanos, configVersion: version.version, slices: slices, on: $0) }
            candidates += starts.map { ($0, version) }
        }
        var worked = false
        for candidate in candidates.sorted(by: { $0.start < $1.start }) {
            if Task.isShuttingDownGracefully { break }
            var pass = WindowPass()
            try await scoreSlices(ofWindow: candidate.start, chunkBudget: nil, pass: &pass)
            if pass.handled > 0 {
                statistics.withLock {
                    $0.tracesHandled += pass.handled
                    $0.assessmentsProduced += pass.produced
                }
            }
            if try await finish(windowStartNanos: candidate.start, pass: pass) || pass.handled > 0 {
                worked = true
            }
        }
        if configuration.scoreOpenWindows && !Task.isShuttingDownGracefully,
           try await scoreOpenWindows(of: latest, watermark: watermark, nowNanos: progress.nowNanos) > 0 {
            worked = true
        }
        if !worked && candidates.isEmpty && latest.config.paused {
            return (false, "monitor '\(latest.config.name)' is paused: storing every trace, scoring nothing")
        }
        return (worked, nil)
    }

    /// Scores the traces stored so far in the newest version's windows that cannot close
    /// yet; returns how many traces were handled. Only windows that have begun by the
    /// database's clock (a trace stamped in the future does not open its window early), and
    /// only under the newest version, once it is in force: an open window keeps the version
    /// it was opened under (``ScoringStore/openWindow(startNanos:widthNanos:configVersion:on:)``).
    private func scoreOpenWindows(of latest: MonitorVersion, watermark: Int64, nowNanos: Int64) async throws -> Int {
        guard ScoringPlan(config: latest.config).scoresOpenWindows else { return 0 }
        let store = self.store
        let width = latest.config.window.widthNanos
        let closableBy = watermark &- latest.config.window.allowedLatenessNanos
        let from = max(latest.effectiveFromNanos, ScoringStore.floor(closableBy, width))
        let (end, overflow) = ScoringStore.floor(nowNanos, width).addingReportingOverflow(width)
        let before = overflow ? Int64.max : end
        let starts = try await pool.withConnection { try store.windowsWithUnscoredTraces(widthNanos: width, from: from, before: before, limit: 4, on: $0) }
        var handled = 0
        for start in starts {
            if Task.isShuttingDownGracefully { break }
            let version = latest.version
            let slices = sliceCount(for: latest.config)
            guard try await pool.withConnection({ try store.openWindow(startNanos: start, widthNanos: width, configVersion: version, slices: slices, on: $0) }) else { continue }
            var pass = WindowPass()
            try await scoreSlices(ofWindow: start, chunkBudget: configuration.openWindowChunksPerPass, pass: &pass)
            handled += pass.handled
            if pass.handled > 0 {
                statistics.withLock {
                    $0.openWindowPasses += 1
                    $0.tracesHandledWhileOpen += pass.handled
                    $0.assessmentsProduced += pass.produced
                }
                logger.debug("open window: traces scored ahead of its close", metadata: [
                    "window.start": "\(TimeFormatting.rfc3339(nanos: start, fraction: .shortestExact))",
                    "config.version": "\(version)", "traces": "\(pass.handled)", "assessments": "\(pass.produced)",
                ])
            }
        }
        return handled
    }

    /// The watermark of DESIGN invariant 5, never ahead of the database clock.
    static func watermark(_ partitions: [PartitionProgress], now: Int64, idleTimeoutNanos: Int64) -> Int64? {
        WatermarkCalculator(idleTimeoutNanos: idleTimeoutNanos).closingWatermark(partitions: partitions, now: now)
    }

    // MARK: - One window

    /// What this replica did for one window in one round.
    struct WindowPass {
        var handled = 0
        var produced = 0
        var chunks = 0
        /// Whether the planner's statistics were refreshed (at most once per round).
        var statisticsRefreshed = false
        let started = ContinuousClock.now
    }

    /// Scores the window's slices this replica can lease, run by run, until every slice was
    /// visited or leased by another replica (or `chunkBudget` chunks were taken). Each run is
    /// about this replica's share of the slices (``ScoringSlices/nextRun(unavailable:replicas:preferred:)``):
    /// alone, one run is the whole window.
    private func scoreSlices(ofWindow start: Int64, chunkBudget: Int?, pass: inout WindowPass) async throws {
        let store = self.store
        let owner = configuration.owner
        let lease = configuration.leaseSeconds
        let activity = configuration.replicaActivitySeconds
        let preferred = ScoringSlices.preference(of: owner)
        var visited = Set<Int>()
        while !Task.isShuttingDownGracefully {
            if let chunkBudget, pass.chunks >= chunkBudget { break }
            guard let view = try await pool.withConnection({ try store.sliceView(windowStartNanos: start, owner: owner, activeWithinSeconds: activity, on: $0) }),
                  !view.windowLeasedByOther else { break }
            let slices = ScoringSlices(count: view.count)
            guard let run = slices.nextRun(unavailable: visited.union(view.heldByOthers), replicas: view.replicas, preferred: preferred) else { break }
            visited.formUnion(run)
            guard let window = try await pool.withConnection({ try store.claimSlices(run, windowStartNanos: start, owner: owner, leaseSeconds: lease, on: $0) }) else {
                continue  // another replica took it first
            }
            do {
                try await process(window, chunkBudget: chunkBudget.map { $0 - pass.chunks }, pass: &pass)
            } catch {
                // Hand the run back rather than hold it until the lease expires: any replica
                // can take it from here.
                try? await pool.withConnection { try store.releaseLease(window, owner: owner, on: $0) }
                throw error
            }
            try await pool.withConnection { try store.releaseLease(window, owner: owner, on: $0) }
        }
    }

    /// Scores the traces of the leased run of slices not yet handled (of an open window: up
    /// to `chunkBudget` chunks of the traces stored so far, leaving OTLP traces, which may
    /// still get spans). The caller hands the lease back.
    private func process(_ window: ClaimedWindow, chunkBudget: Int?, pass: inout WindowPass) async throws {
        let store = self.store
        let monitorStore = self.monitorStore
        let version = window.configVersion
        guard let stored = try await pool.withConnection({ try monitorStore.version(version, on: $0) }) else {
            throw ScoringStoreError.invalidStoredConfig(version: version, reason: "version not found")
        }
        // The run's ρ range follows from the window's slice count and its version's rates,
        // the same on every replica.
        let slicing = ScoringSlices(count: window.sliceCount, rates: ScoringPlan(config: stored.config).rates)
        var window = window
        window.rhoRange = window.slices.map(slicing.rhoRange(of:)) ?? .all
        if stored.config.paused {
            // Nothing is scored; a closed window's traces are marked handled (so they do not
            // linger as work), and `assay backfill` can score them later.
            guard !window.isOpen else { return }
            try await markHandled(window)
            return
        }
        let (scorers, judge) = try scorers(for: stored)
        let chunkScorer = ChunkScorer(config: stored.config, configVersion: version, windowStartNanos: window.startNanos,
                                      scorers: scorers, concurrency: configuration.concurrency)
        let maximumRate = chunkScorer.plan.maximumRate
        // The first pass at a close refreshes the planner's statistics when a full chunk shows
        // much is left; a window scored while open usually has little left, and ANALYZE costs
        // the same whatever is left.
        if window.wasScored || window.isOpen { pass.statisticsRefreshed = true }
        var selected = try await pool.withConnection { [window] in try store.selectedCounts(of: window, on: $0) }

        // Chunks are scored in order (max_per_window counts carry over), and each chunk's commit
        // runs while the next chunk is loaded and scored: PostgreSQL and the scorers overlap.
        // Commits stay in order, one at a time, each checking the lease.
        let owner = configuration.owner
        let lease = configuration.leaseSeconds
        let activity = configuration.replicaActivitySeconds
        var leased = window
        var shareChecked = ContinuousClock.now
        var cursor: (rho: Double, traceID: String)?
        var sweeping = false
        var inFlight: Task<Void, Error>?  // on an error below, a commit in flight still completes (it is safe alone)
        var chunks = 0
        while !Task.isShuttingDownGracefully {
            if let chunkBudget, chunks >= chunkBudget { break }
            // A run taken when fewer replicas were scoring is cut to this replica's share once
            // more are: the slices its chunks have not reached go back for the others.
            if let run = leased.slices, run.count > 1, shareChecked.duration(to: .now) >= configuration.heartbeatInterval {
                shareChecked = .now
                let replicas = try await pool.withConnection { try store.activeReplicas(owner: owner, withinSeconds: activity, on: $0) }
                if let kept = slicing.keptPart(of: run, cursor: cursor?.rho, replicas: replicas) {
                    try await inFlight?.value  // its commit renews the whole run
                    inFlight = nil
                    var handedBack = leased
                    handedBack.slices = (kept.upperBound + 1)...run.upperBound
                    let toRelease = handedBack
                    try await pool.withConnection { try store.releaseLease(toRelease, owner: owner, on: $0) }
                    leased.slices = kept
                    leased.rhoRange = slicing.rhoRange(of: kept)
                    logger.info("slices handed back for other replicas", metadata: [
                        "window.start": "\(TimeFormatting.rfc3339(nanos: window.startNanos, fraction: .shortestExact))",
                        "kept": "\(kept.lowerBound)...\(kept.upperBound)", "handed_back": "\(kept.upperBound + 1)...\(run.upperBound)",
                        "replicas": "\(replicas)",
                    ])
                }
            }
            let limit = configuration.chunkSize
            let after = cursor
            let current = leased
            let rows = try await pool.withConnection { try store.unhandledTraces(of: current, after: after, excludingOTLP: current.isOpen, limit: limit, on: $0) }
            if rows.isEmpty {
                // An open window is visited again on the next round; no sweep.
                guard cursor != nil, !window.isOpen else { break }
                // Past the last chunk: once it is committed, look again from the start for
                // traces stored meanwhile behind the cursor, as one pass has always taken them.
                try await inFlight?.value
                inFlight = nil
                cursor = nil
                sweeping = true
                continue
            }
            if !pass.statisticsRefreshed && rows.count == limit {
                pass.statisticsRefreshed = true
                do {
                    try await pool.withConnection { try store.refreshTraceStatistics(on: $0) }
                } catch {
                    logger.debug("could not refresh the traces statistics", metadata: ["error": "\(error)"])
                }
            }
            if sweeping {
                logger.debug("traces stored behind the cursor during the pass", metadata: ["count": "\(rows.count)", "window.start": "\(window.startNanos)"])
                sweeping = false
            }
            if let last = rows.last { cursor = (last.rho, last.traceID) }
            // The window's shared judge budget as it stands, before the run's first chunk is
            // judged (later chunks start from the report after the chunk before).
            if chunks == 0 { try await shareJudgeBudget(judge, windowStartNanos: window.startNanos) }
            let sampledIDs = rows.filter { Sampler.isSampled(rho: $0.rho, rate: maximumRate) }.map(\.traceID)
            let closedAt = window.closedAtMicros
            let loaded = try await pool.withConnection { try TraceReader.load(traceIDs: sampledIDs, windowClosedAtMicros: closedAt, on: $0) }
            let traces = Dictionary(uniqueKeysWithValues: loaded.map { ($0.trace.traceID, $0.trace) })
            let chunk = try await chunkScorer.score(rows.map { ChunkScorer.Row(traceID: $0.traceID, rho: $0.rho, late: $0.late, trace: traces[$0.traceID]) },
                                                    selected: &selected) { ids in
                try await self.pool.withConnection { try store.storedOutcomes(assessmentIDs: ids, on: $0) }
            }
            try await shareJudgeBudget(judge, windowStartNanos: window.startNanos)

            try await inFlight?.value
            inFlight = Task { [self, current] in
                try await pool.withConnection { try store.commitChunk(chunk, window: current, owner: owner, leaseSeconds: lease, on: $0) }
                let committed = chunksCommitted.withLock { $0 += 1; return $0 }
                if let crashAfter = configuration.crashAfterChunks, committed >= crashAfter {
                    logger.critical("fault injection: crashing in the middle of a window")
                    kill(getpid(), SIGKILL)
                }
                Self.countAssessments(chunk.assessments, metrics: configuration.metrics)
            }
            pass.handled += rows.count
            pass.produced += chunk.assessments.count
            pass.chunks += 1
            chunks += 1
        }
        try await inFlight?.value
        if Task.isShuttingDownGracefully {
            logger.info("window slices handed back on shutdown", metadata: [
                "window.start": "\(TimeFormatting.rfc3339(nanos: window.startNanos, fraction: .shortestExact))",
                "slices": "\(window.slices.map { "\($0.lowerBound)...\($0.upperBound)" } ?? "all")",
            ])
        }
    }

    /// Marks the leased run's traces handled without scoring them (a closed window under a
    /// paused monitor version).
    private func markHandled(_ leased: ClaimedWindow) async throws {
        let store = self.store
        let owner = configuration.owner
        let lease = configuration.leaseSeconds
        let limit = configuration.chunkSize
        while !Task.isShuttingDownGracefully {
            let rows = try await pool.withConnection { try store.unhandledTraces(of: leased, limit: limit, on: $0) }
            if rows.isEmpty { break }
            var chunk = ChunkResult()
            chunk.handledTraces = rows.map { (traceID: $0.traceID, late: $0.late) }
            let toCommit = chunk
            try await pool.withConnection { try store.commitChunk(toCommit, window: leased, owner: owner, leaseSeconds: lease, on: $0) }
        }
    }

    /// Finishes a closed window when nothing is left to do in it: no slice leased by another
    /// replica and no trace left. Publishes every summary that changed (``ScoringStore/finishWindow``)
    /// and marks the window scored (or paused). Returns whether it did.
    private func finish(windowStartNanos start: Int64, pass: WindowPass) async throws -> Bool {
        guard !Task.isShuttingDownGracefully else { return false }
        let store = self.store
        let monitorStore = self.monitorStore
        let owner = configuration.owner
        let lease = configuration.leaseSeconds
        // While others score slices of it, leave the window's own lease alone: holding it,
        // even briefly, stops them from leasing their next run.
        let activity = configuration.replicaActivitySeconds
        if let view = try await pool.withConnection({ try store.sliceView(windowStartNanos: start, owner: owner, activeWithinSeconds: activity, on: $0) }),
           !view.heldByOthers.isEmpty || view.windowLeasedByOther {
            return false
        }
        guard let window = try await pool.withConnection({ try store.claimWindow(startNanos: start, owner: owner, leaseSeconds: lease, on: $0) }) else {
            return false  // another replica is finishing it
        }
        let finishable: Bool
        do {
            finishable = try await pool.withConnection { try !window.isOpen && store.canFinish(window, owner: owner, on: $0) }
        } catch {
            try? await pool.withConnection { try store.releaseLease(window, owner: owner, on: $0) }
            throw error
        }
        guard finishable else {
            // Others still score slices of it; the last of them finishes it.
            try await pool.withConnection { try store.releaseLease(window, owner: owner, on: $0) }
            return false
        }
        let version = window.configVersion
        guard let stored = try await pool.withConnection({ try monitorStore.version(version, on: $0) }) else {
            try? await pool.withConnection { try store.releaseLease(window, owner: owner, on: $0) }
            throw ScoringStoreError.invalidStoredConfig(version: version, reason: "version not found")
        }
        if stored.config.paused {
            _ = try await pool.withConnection { try store.finishWindow(window, owner: owner, leaseSeconds: lease, paused: true, on: $0) }
            logger.info("window closed while the monitor was paused: traces stored, nothing scored", metadata: [
                "window.start": "\(TimeFormatting.rfc3339(nanos: window.startNanos, fraction: .shortestExact))", "config.version": "\(version)",
            ])
            return true
        }
        let summaries = try await pool.withConnection { try store.finishWindow(window, owner: owner, leaseSeconds: lease, on: $0) }
        statistics.withLock {
            if window.wasScored { $0.lateWindowPasses += 1 } else { $0.windowsScored += 1 }
            $0.summariesPublished += summaries.count
        }
        if !window.wasScored { configuration.metrics.windowClosed() }
        let alerts = await RegressionAlerts.afterWindowPass(summaries, window: window, rule: configuration.regressionRule,
                                                           metrics: configuration.metrics, pool: pool, logger: logger)
        if alerts > 0 { statistics.withLock { $0.regressionAlerts += alerts } }
        logger.info(window.wasScored ? "late traces scored" : "window scored", metadata: [
            "window.start": "\(TimeFormatting.rfc3339(nanos: window.startNanos, fraction: .shortestExact))",
            "config.version": "\(version)", "traces": "\(pass.handled)", "assessments": "\(pass.produced)",
            "seconds": "\(pass.started.duration(to: .now))",
        ])
        return true
    }

    /// The scorers of a config version and the judge they share (one per version, cached).
    private func scorers(for stored: MonitorVersion) throws -> (scorers: [any Scorer], judge: GovernedJudge?) {
        if let cached = scorerCache.withLock({ $0[stored.version] }) { return cached }
        let judge = try JudgeWiring.makeJudge(stored.config, logger: logger, metrics: configuration.metrics)
        let made = (scorers: try ScorerFactory.makeScorers(stored.config, judge: judge), judge: judge)
        scorerCache.withLock { $0[stored.version] = made }
        return made
    }

    /// Adds what `judge` spent on the window since its last report to the window's shared
    /// total in PostgreSQL, and counts the rest of that total (other replicas, this one before
    /// a restart) against the judge's budget: replicas scoring one window share its budget.
    private func shareJudgeBudget(_ judge: GovernedJudge?, windowStartNanos start: Int64) async throws {
        guard let judge else { return }
        let key = ChunkScorer.budgetKey(windowStartNanos: start)
        let spent = judge.takeUnreportedUsage(budgetKey: key)
        let store = self.store
        // Nothing new to add (the run's first look, or a chunk that judged nothing): read
        // the total rather than write the row again.
        let total: JudgeUsage
        do {
            total = try await pool.withConnection {
                spent == GovernedJudge.WindowUsage()
                    ? try store.judgeUsage(windowStartNanos: start, on: $0)
                    : try store.addJudgeUsage(windowStartNanos: start, calls: spent.calls, inputTokens: spent.inputTokens,
                                              outputTokens: spent.outputTokens, on: $0)
            }
        } catch {
            // Not added: reported with the next chunk, or by whoever retries the run.
            judge.restoreUnreportedUsage(budgetKey: key, spent)
            throw error
        }
        judge.setSharedTotal(budgetKey: key, calls: total.calls, tokens: total.tokens)
    }

    /// Runs scorers with bounded concurrency; results in job order.
    static func run(_ jobs: [(Trace, any Scorer)], context: ScoringContext, concurrency: Int) async -> [[ScorerOutcome]] {
        var results = [[ScorerOutcome]](repeating: [], count: jobs.count)
        await withTaskGroup(of: (Int, [ScorerOutcome]).self) { group in
            var next = 0
            func addNext() {
                guard next < jobs.count else { return }
                let index = next
                let (trace, scorer) = jobs[index]
                group.addTask { (index, await scorer.score(trace, context: context)) }
                next += 1
            }
            for _ in 0..<max(1, concurrency) { addNext() }
            while let (index, outcomes) = await group.next() {
                results[index] = outcomes
                addNext()
            }
        }
        return results
    }

    static func storedOutcome(_ result: ScorerResult) -> StoredOutcome {
        switch result {
        case .notApplicable: return .notApplicable
        case .error, .budgetSkipped: return .error  // budget-skipped outcomes are dropped before this
        case .value(let value, _):
            switch value {
            case .yes, .bool(true): return .pass
            case .no, .bool(false): return .fail
            case .notApplicable: return .notApplicable
            case .number, .text: return .value
            }
        }
    }

    /// One trace's standing for one scorer, from all its assessments: errored if any failed,
    /// not applicable if none applied, else scored. Whether it passed depends on the scorer:
    /// - `retrieval_groundedness` (one verdict per retriever span): some span's documents
    ///   support the answer (support by one retriever's documents is support);
    /// - `retrieval_relevance` (one verdict per chunk): at least half the chunks are relevant
    ///   (the trace's precision is at least 0.5);
    /// - every other scorer: every verdict passed (and there was one: a bare number does not pass).
    enum TraceVerdict: Equatable {
        case notApplicable
        case errored
        case scored(passed: Bool)
    }

    static func traceVerdict(_ outcomes: [StoredOutcome], kind: ScorerKind? = nil) -> TraceVerdict {
        if outcomes.contains(.error) { return .errored }
        let applicable = outcomes.filter { $0 != .notApplicable }
        if applicable.isEmpty { return .notApplicable }
        let verdicts = applicable.filter { $0 == .pass || $0 == .fail }
        guard !verdicts.isEmpty else { return .scored(passed: false) }
        let passes = verdicts.filter { $0 == .pass }.count
        switch kind {
        case .retrievalGroundedness?: return .scored(passed: passes > 0)
        case .retrievalRelevance?: return .scored(passed: 2 * passes >= verdicts.count)
        default: return .scored(passed: passes == verdicts.count)
        }
    }

    static func countAssessments(_ items: [NewAssessment], metrics: AssayMetrics) {
        // Added once per (scorer, outcome): looking the counter up for every assessment was
        // about 3% of a scoring replica's CPU.
        var counts: [String: [String: Int]] = [:]
        for item in items { counts[item.scorerName, default: [:]][item.outcome.rawValue, default: 0] += 1 }
        for (scorer, outcomes) in counts {
            for (outcome, count) in outcomes { metrics.assessment(scorer: scorer, outcome: outcome, count: count) }
        }
    }
}

extension Duration {
    /// Whole nanoseconds, saturating.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? Int64.max : product &+ attoseconds / 1_000_000_000
    }
}

/// The judge call figures a scorer put in an outcome's metadata (`judge_latency_ms`,
/// `judge_input_tokens`, `judge_output_tokens`, `judge_cached`).
struct JudgeCallMetrics: Equatable {
    var latencyMillis: Double?
    var inputTokens: Int?
    var outputTokens: Int?

    init(_ metadata: [String: String]) {
        let cached = metadata["judge_cached"] == "true"
        latencyMillis = cached ? nil : metadata["judge_latency_ms"].flatMap(Double.init)
        inputTokens = metadata["judge_input_tokens"].flatMap(Int.init)
        outputTokens = metadata["judge_output_tokens"].flatMap(Int.init)
    }
}
