import AssayCore
import Postgres

/// A monitor document as stored, with its version.
public struct StoredMonitorConfig: Sendable, Equatable {
    public var version: Int64
    public var config: MonitorConfig
}

/// A window this replica holds a lease of: a run of its slices (scoring), or the window's own
/// lease (finishing it).
public struct ClaimedWindow: Sendable, Equatable {
    public var startNanos: Int64
    public var endNanos: Int64
    public var configVersion: Int64
    /// When the window closed, epoch microseconds; traces stored later are late.
    /// `Int64.max` while the window is open.
    public var closedAtMicros: Int64
    /// Whether a pass already completed (later passes score late traces only).
    public var wasScored: Bool
    /// Whether the window was still open when claimed: it is being scored ahead of its
    /// close, and its pass neither publishes summaries nor changes its state.
    public var isOpen: Bool = false
    /// The run of slices (``ScoringSlices``) this replica leases, or nil when it holds the
    /// window's own lease.
    public var slices: ClosedRange<Int>?
    /// How many slices the window has.
    public var sliceCount: Int = 1
    /// The ρ of the traces this lease covers: the run's range, set by the scorer from the
    /// window's monitor version; every ρ under the window's own lease.
    public var rhoRange: RhoRange = .all
}

/// Who scores a window's slices right now, as one replica sees it.
public struct SliceView: Sendable, Equatable {
    /// The window's slice count.
    public var count: Int
    /// Slices leased by other replicas, with leases not yet expired.
    public var heldByOthers: Set<Int>
    /// Replicas scoring now (this one included), for the share each takes.
    public var replicas: Int
    /// Whether another replica holds the window's own lease (it is finishing the window, or
    /// runs a version of Assay before slices): no slice can be leased meanwhile.
    public var windowLeasedByOther: Bool

    public init(count: Int, heldByOthers: Set<Int>, replicas: Int, windowLeasedByOther: Bool) {
        self.count = count
        self.heldByOthers = heldByOthers
        self.replicas = replicas
        self.windowLeasedByOther = windowLeasedByOther
    }
}

/// How one scorer's outcomes in a chunk change its window summary.
public struct SummaryDelta: Sendable, Equatable {
    public var eligible = 0
    public var filteredOut = 0
    public var sampledOut = 0
    public var budgetSkipped = 0
    public var notApplicable = 0
    public var errored = 0
    public var scored = 0
    public var passed = 0
    public var lateScored = 0
    /// Traces the scorer took (toward `max_per_window`).
    public var selected = 0

    public init() {}

    public static func += (lhs: inout SummaryDelta, rhs: SummaryDelta) {
        lhs.eligible += rhs.eligible
        lhs.filteredOut += rhs.filteredOut
        lhs.sampledOut += rhs.sampledOut
        lhs.budgetSkipped += rhs.budgetSkipped
        lhs.notApplicable += rhs.notApplicable
        lhs.errored += rhs.errored
        lhs.scored += rhs.scored
        lhs.passed += rhs.passed
        lhs.lateScored += rhs.lateScored
        lhs.selected += rhs.selected
    }
}

/// The stored result of one assessment, enough to count it again without re-scoring.
public enum StoredOutcome: String, Sendable, Equatable {
    case pass
    case fail
    /// A value that is neither pass nor fail (a number, a text).
    case value
    case notApplicable = "not_applicable"
    case error
}

/// An assessment to store, with the bookkeeping columns.
public struct NewAssessment: Sendable {
    public var assessment: Assessment
    public var scorerName: String
    public var outcome: StoredOutcome
    public var late: Bool
    /// For judged assessments: the call's latency (nil for cache hits) and tokens.
    public var judgeLatencyMillis: Double?
    public var judgeInputTokens: Int?
    public var judgeOutputTokens: Int?

    public init(assessment: Assessment, scorerName: String, outcome: StoredOutcome, late: Bool,
                judgeLatencyMillis: Double? = nil, judgeInputTokens: Int? = nil, judgeOutputTokens: Int? = nil) {
        self.assessment = assessment
        self.scorerName = scorerName
        self.outcome = outcome
        self.late = late
        self.judgeLatencyMillis = judgeLatencyMillis
        self.judgeInputTokens = judgeInputTokens
        self.judgeOutputTokens = judgeOutputTokens
    }
}

/// What one chunk of a window pass produced, written in one transaction.
public struct ChunkResult: Sendable {
    public var assessments: [NewAssessment] = []
    /// Every trace the chunk handled (sampled or not), with its late flag.
    public var handledTraces: [(traceID: String, late: Bool)] = []
    public var deltas: [String: SummaryDelta] = [:]

    public init() {}
}

/// Judge calls and tokens spent on one window by all replicas (`judge_usage`).
public struct JudgeUsage: Sendable, Equatable {
    public var calls: Int
    public var inputTokens: Int
    public var outputTokens: Int
    public var tokens: Int { inputTokens + outputTokens }

    public init(calls: Int = 0, inputTokens: Int = 0, outputTokens: Int = 0) {
        self.calls = calls
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }
}

/// A message waiting in the outbox.
public struct OutboxMessage: Sendable, Equatable {
    /// The outbox row holding it (a chunk's assessments share one row).
    public var id: Int64
    public var key: String
    public var schemaName: String
    public var payload: String
}

/// An assessment message that cannot be sent: its assessment no longer exists.
public struct UnsendableMessage: Sendable, Equatable, CustomStringConvertible {
    /// The outbox row that named it.
    public var outboxID: Int64
    public var assessmentID: String

    public var description: String { "\(assessmentID) (outbox row \(outboxID))" }
}

/// What one ``ScoringStore/publishPending(limit:on:publish:)`` did.
public struct OutboxBatch: Sendable, Equatable {
    /// Messages sent and marked published.
    public var published = 0
    /// Assessment messages whose assessment no longer exists (deleted by hand): marked
    /// published without being sent.
    public var unsendable: [UnsendableMessage] = []

    public init() {}
}

/// Errors of the scoring store.
public enum ScoringStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another replica took the window over (our lease expired); this replica's work on it
    /// was rolled back.
    case leaseLost(windowStartNanos: Int64)
    /// A stored monitor document no longer parses (edited by hand?).
    case invalidStoredConfig(version: Int64, reason: String)

    public var description: String {
        switch self {
        case .leaseLost(let start): return "lost the lease of window \(start) to another replica"
        case .invalidStoredConfig(let version, let reason): return "stored monitor config version \(version) is invalid: \(reason)"
        }
    }
}

/// Windows, assessments, summaries and the outbox, in PostgreSQL.
///
/// A window's traces are scored by the replicas holding leases of its slices
/// (`window_slice_leases`, see ``ScoringSlices``), several at once; the window is finished
/// (summaries published) by the holder of its own lease (`windows.lease_owner`). Traces are
/// handled in chunks; each chunk's assessments, the `scored_at` marks of its traces and its
/// summary deltas commit together, after checking the lease is still ours, so a crash or a
/// lost lease never counts a trace twice, and assessment ids make the inserts idempotent
/// besides.
public struct ScoringStore: Sendable {
    public let tracesTopic: String

    public init(tracesTopic: String = "traces") {
        self.tracesTopic = tracesTopic
    }

    // MARK: - Watermark and windows

    /// Every partition's progress, and the database's clock (ns since the epoch).
    public func partitionProgress(on connection: PostgresConnection) throws -> (partitions: [PartitionProgress], nowNanos: Int64) {
        let rows = try connection.query(
            """
            SELECT max_event_time_ns, (extract(epoch FROM advanced_at) * 1000000)::bigint * 1000,
                   (extract(epoch FROM caught_up_at) * 1000000)::bigint * 1000,
                   (extract(epoch FROM now()) * 1000000)::bigint * 1000
            FROM partition_watermarks WHERE topic = $1
            """, [.text(tracesTopic)])
        let partitions = try rows.map {
            PartitionProgress(maxEventTimeNanos: try $0.optionalInt64(0), lastAdvancedWallTimeNanos: try $0.int64(1),
                              lastCaughtUpWallTimeNanos: try $0.optionalInt64(2))
        }
        let now: Int64
        if let row = rows.first {
            now = try row.int64(3)
        } else {
            now = try connection.query("SELECT (extract(epoch FROM now()) * 1000000)::bigint * 1000")[0].int64(0)
        }
        return (partitions, now)
    }

    /// Starts of windows (of `widthNanos`) with work left, with request times from
    /// `fromNanos`, in windows ending at or before `closedBeforeNanos`; oldest first. Work is
    /// traces not yet handled, a window closed but never finished (its last chunk committed,
    /// then the replica stopped before publishing the summaries), a window scored while open
    /// (however little was left), or summaries changed since they were published (a late pass
    /// stopped at the same point).
    public func windowsNeedingWork(widthNanos: Int64, from fromNanos: Int64 = Int64.min, endingBy closedBeforeNanos: Int64, limit: Int = 100,
                                   on connection: PostgresConnection) throws -> [Int64] {
        // window_start = floor(t / W) * W; a window ends by the bound iff it starts before floor(bound / W) * W.
        let bound = Self.floor(closedBeforeNanos, widthNanos)
        guard bound > fromNanos else { return [] }
        let rows = try connection.query(
            """
            WITH RECURSIVE \(Self.unscoredWindows)
            SELECT window_start FROM (
                SELECT window_start FROM unscored WHERE window_start IS NOT NULL
                UNION
                SELECT window_start_ns FROM windows
                WHERE state IN ('closed', 'open') AND window_end_ns - window_start_ns = $1 AND window_start_ns >= $2 AND window_start_ns < $3
                UNION
                SELECT w.window_start_ns FROM windows w
                WHERE w.window_end_ns - w.window_start_ns = $1 AND w.window_start_ns >= $2 AND w.window_start_ns < $3
                  AND EXISTS (SELECT 1 FROM window_summaries s WHERE s.window_start_ns = w.window_start_ns AND s.needs_publish)
            ) pending
            ORDER BY 1 LIMIT $4
            """,
            [.text(String(widthNanos)), .text(String(fromNanos)), .text(String(bound)), .text(String(limit))])
        return try rows.map { try $0.int64(0) }
    }

    /// Starts of windows (of `widthNanos`) with traces not yet handled, with request times
    /// in [`fromNanos`, `beforeNanos`), oldest first.
    public func windowsWithUnscoredTraces(widthNanos: Int64, from fromNanos: Int64, before beforeNanos: Int64, limit: Int,
                                          on connection: PostgresConnection) throws -> [Int64] {
        guard beforeNanos > fromNanos else { return [] }
        return try connection.query(
            "WITH RECURSIVE \(Self.unscoredWindows) SELECT window_start FROM unscored WHERE window_start IS NOT NULL ORDER BY 1",
            [.text(String(widthNanos)), .text(String(fromNanos)), .text(String(beforeNanos)), .text(String(limit))]
        ).map { try $0.int64(0) }
    }

    /// `unscored(window_start, n)`: the starts of windows of width $1 with unhandled traces
    /// with request times in [$2, $3), at most $4, found by skipping through the unscored
    /// index from one window to the next (one index probe per window), not by reading every
    /// unscored trace: this runs on every tick, while a large window may hold 100,000s of them.
    private static let unscoredWindows = """
        unscored(window_start, n) AS (
            SELECT (SELECT t.request_time_ns - (((t.request_time_ns % $1) + $1) % $1) FROM traces t
                    WHERE t.scored_at IS NULL AND t.request_time_ns >= $2 AND t.request_time_ns < $3
                    ORDER BY t.request_time_ns LIMIT 1), 1
            UNION ALL
            SELECT (SELECT t.request_time_ns - (((t.request_time_ns % $1) + $1) % $1) FROM traces t
                    WHERE t.scored_at IS NULL AND t.request_time_ns >= u.window_start + $1 AND t.request_time_ns < $3
                    ORDER BY t.request_time_ns LIMIT 1), u.n + 1
            FROM unscored u WHERE u.window_start IS NOT NULL AND u.n < $4
        )
        """

    /// `value` rounded down to a multiple of `width` (also for negative values).
    public static func floor(_ value: Int64, _ width: Int64) -> Int64 {
        let remainder = ((value % width) + width) % width
        return value - remainder
    }

    /// Records these windows as closed under `configVersion` with `slices` slices (existing
    /// rows keep both; an open window's row becomes closed, now).
    public func closeWindows(_ starts: [Int64], widthNanos: Int64, configVersion: Int64, slices: Int = 1, on connection: PostgresConnection) throws {
        guard !starts.isEmpty else { return }
        _ = try connection.execute(
            """
            INSERT INTO windows (window_start_ns, window_end_ns, config_version, scoring_slices)
            SELECT s, s + $2, $3, $4 FROM unnest($1::bigint[]) AS t(s)
            ON CONFLICT (window_start_ns) DO UPDATE SET state = 'closed', closed_at = now() WHERE windows.state = 'open'
            """,
            [.text(PostgresArray.integers(starts)), .text(String(widthNanos)), .text(String(configVersion)),
             .text(String(ScoringSlices(count: slices).count))])
    }

    /// Takes the window's own lease unless another live replica holds it (to finish the
    /// window; see ``canFinish(_:owner:on:)``).
    public func claimWindow(startNanos: Int64, owner: String, leaseSeconds: Int, on connection: PostgresConnection) throws -> ClaimedWindow? {
        let rows = try connection.query(
            """
            UPDATE windows SET lease_owner = $2, lease_until = now() + make_interval(secs => $3)
            WHERE window_start_ns = $1 AND (lease_until IS NULL OR lease_until < now() OR lease_owner = $2)
            RETURNING window_start_ns, window_end_ns, config_version,
                      (extract(epoch FROM closed_at) * 1000000)::bigint, state IN ('scored', 'paused'), state = 'open', scoring_slices
            """,
            [.text(String(startNanos)), .text(owner), .text(String(leaseSeconds))])
        guard let row = rows.first else { return nil }
        return ClaimedWindow(startNanos: try row.int64(0), endNanos: try row.int64(1), configVersion: try row.int64(2),
                             closedAtMicros: try row.optionalInt64(3) ?? Int64.max, wasScored: try row.bool(4), isOpen: try row.bool(5),
                             sliceCount: try row.int(6))
    }

    // MARK: - Slices

    /// Records that this replica is scoring, now (``activeReplicas``).
    public func heartbeat(owner: String, on connection: PostgresConnection) throws {
        _ = try connection.execute(
            "INSERT INTO scoring_replicas (owner, seen_at) VALUES ($1, now()) ON CONFLICT (owner) DO UPDATE SET seen_at = now()",
            [.text(owner)])
        // Replicas gone for a day (crashed, or renamed pods) no longer need a row.
        _ = try connection.execute("DELETE FROM scoring_replicas WHERE seen_at < now() - interval '1 day'")
    }

    /// Replicas scoring now: this one, and the others with a heartbeat within `withinSeconds`.
    public func activeReplicas(owner: String, withinSeconds: Int, on connection: PostgresConnection) throws -> Int {
        try connection.query(
            "SELECT count(*) + 1 FROM scoring_replicas WHERE seen_at >= now() - make_interval(secs => $2) AND owner <> $1",
            [.text(owner), .text(String(withinSeconds))])[0].int(0)
    }

    /// Removes this replica from the scoring replicas (on shutdown), so the others take its
    /// share at once.
    public func leaveScoringReplicas(owner: String, on connection: PostgresConnection) throws {
        _ = try connection.execute("DELETE FROM scoring_replicas WHERE owner = $1", [.text(owner)])
    }

    /// The window's slices as `owner` sees them now; nil when the window has no row. Replicas
    /// count as scoring when they recorded a heartbeat within `activeWithinSeconds`.
    public func sliceView(windowStartNanos: Int64, owner: String, activeWithinSeconds: Int, on connection: PostgresConnection) throws -> SliceView? {
        let rows = try connection.query(
            """
            SELECT w.scoring_slices,
                   (SELECT string_agg(l.slice::text, ',') FROM window_slice_leases l
                    WHERE l.window_start_ns = w.window_start_ns AND l.lease_until >= now() AND l.lease_owner <> $2),
                   (SELECT count(*) FROM scoring_replicas r WHERE r.seen_at >= now() - make_interval(secs => $3) AND r.owner <> $2) + 1,
                   coalesce(w.lease_until >= now() AND w.lease_owner <> $2, false)
            FROM windows w WHERE w.window_start_ns = $1
            """,
            [.text(String(windowStartNanos)), .text(owner), .text(String(activeWithinSeconds))])
        guard let row = rows.first else { return nil }
        let held = try row.optionalString(1).map { Set($0.split(separator: ",").compactMap { Int($0) }) } ?? []
        return SliceView(count: try row.int(0), heldByOthers: held, replicas: try row.int(2), windowLeasedByOther: try row.bool(3))
    }

    /// Leases the slices of `run` that no other live replica holds, unless another replica
    /// holds the window's own lease, and returns the window with the leased run: the first
    /// leased slice and those after it without a gap (any others are handed back at once).
    /// Nil when no slice of the run could be leased.
    public func claimSlices(_ run: ClosedRange<Int>, windowStartNanos: Int64, owner: String, leaseSeconds: Int,
                            on connection: PostgresConnection) throws -> ClaimedWindow? {
        try connection.transaction { connection in
            // FOR SHARE: a replica taking the window's own lease to finish it waits for this
            // statement, then sees these slice leases; one that took it first makes `w` empty.
            let claimed = try connection.query(
                """
                WITH w AS (
                    SELECT window_start_ns FROM windows
                    WHERE window_start_ns = $1 AND $3 < scoring_slices
                      AND (lease_until IS NULL OR lease_until < now() OR lease_owner = $4)
                    FOR SHARE
                )
                INSERT INTO window_slice_leases AS l (window_start_ns, slice, lease_owner, lease_until)
                SELECT w.window_start_ns, s, $4, now() + make_interval(secs => $5) FROM w, generate_series($2::integer, $3::integer) AS s
                ON CONFLICT (window_start_ns, slice) DO UPDATE SET lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until
                WHERE l.lease_until < now() OR l.lease_owner = EXCLUDED.lease_owner
                RETURNING slice
                """,
                [.text(String(windowStartNanos)), .text(String(run.lowerBound)), .text(String(run.upperBound)), .text(owner), .text(String(leaseSeconds))]
            ).map { try $0.int(0) }.sorted()
            guard let first = claimed.first else { return nil }
            var last = first
            while claimed.contains(last + 1) { last += 1 }
            let extra = claimed.filter { $0 > last }
            if !extra.isEmpty {
                _ = try connection.execute(
                    "DELETE FROM window_slice_leases WHERE window_start_ns = $1 AND slice = ANY($2::integer[]) AND lease_owner = $3",
                    [.text(String(windowStartNanos)), .text(PostgresArray.integers(extra.map(Int64.init))), .text(owner)])
            }
            let rows = try connection.query(
                """
                SELECT window_end_ns, config_version, (extract(epoch FROM closed_at) * 1000000)::bigint,
                       state IN ('scored', 'paused'), state = 'open', scoring_slices
                FROM windows WHERE window_start_ns = $1
                """, [.text(String(windowStartNanos))])
            guard let row = rows.first else { return nil }
            return ClaimedWindow(startNanos: windowStartNanos, endNanos: try row.int64(0), configVersion: try row.int64(1),
                                 closedAtMicros: try row.optionalInt64(2) ?? Int64.max, wasScored: try row.bool(3), isOpen: try row.bool(4),
                                 slices: first...last, sliceCount: try row.int(5))
        }
    }

    /// Whether the window, whose own lease `owner` holds, can be finished: no other replica
    /// holds a live lease of one of its slices, and no trace of it is left to handle.
    public func canFinish(_ window: ClaimedWindow, owner: String, on connection: PostgresConnection) throws -> Bool {
        let busy = try connection.query(
            "SELECT EXISTS (SELECT 1 FROM window_slice_leases WHERE window_start_ns = $1 AND lease_until >= now() AND lease_owner <> $2)",
            [.text(String(window.startNanos)), .text(owner)])[0].bool(0)
        if busy { return false }
        var whole = window
        whole.slices = nil
        whole.rhoRange = .all
        return try unhandledTraces(of: whole, limit: 1, on: connection).isEmpty
    }

    /// Makes sure the window starting at `startNanos` has a row, as an open window under
    /// `configVersion`, so it can be scored before it closes. Only while `configVersion` is
    /// still the newest monitor version, with width `widthNanos` and in force from at or
    /// before the window's start: then no update can give the window another version (an
    /// update takes effect after the last window with a row, and takes the same lock).
    /// Returns whether the window has a row in state 'open'.
    public func openWindow(startNanos: Int64, widthNanos: Int64, configVersion: Int64, slices: Int = 1, on connection: PostgresConnection) throws -> Bool {
        try connection.transaction { connection in
            try MonitorStore.lockVersions(on: connection)
            let newest = try connection.query("SELECT version, window_ns, effective_from_ns FROM monitor_configs ORDER BY version DESC LIMIT 1")
            guard let version = newest.first, try version.int64(0) == configVersion, try version.int64(1) == widthNanos,
                  try version.int64(2) <= startNanos else { return false }
            let state = try connection.query(
                """
                WITH inserted AS (
                    INSERT INTO windows (window_start_ns, window_end_ns, config_version, state, closed_at, scoring_slices)
                    VALUES ($1::bigint, $1::bigint + $2::bigint, $3::bigint, 'open', NULL, $4::integer)
                    ON CONFLICT (window_start_ns) DO NOTHING
                    RETURNING state
                )
                SELECT state FROM inserted UNION ALL SELECT state FROM windows WHERE window_start_ns = $1
                """,
                [.text(String(startNanos)), .text(String(widthNanos)), .text(String(configVersion)),
                 .text(String(ScoringSlices(count: slices).count))])
            return try state.first?.string(0) == "open"
        }
    }

    /// The next traces of a window not yet handled, in ascending ρ, each with whether it is
    /// late (stored after the window closed, as its row says now: a pass that began while
    /// the window was open may see it close). With `excludingOTLP`, traces assembled from
    /// OTLP spans are left for later: more of their spans may still arrive until the window
    /// closes.
    public func unhandledTraces(of window: ClaimedWindow, after cursor: (rho: Double, traceID: String)? = nil, excludingOTLP: Bool = false,
                                limit: Int, on connection: PostgresConnection) throws -> [(traceID: String, rho: Double, late: Bool)] {
        // Ordered by (rho, trace_id); `after` continues past a chunk still being committed.
        // The chunk should come from traces_unscored_rho_idx read in order; with statistics
        // from before the window filled up the planner reads every unscored trace of the
        // window and sorts them, once per chunk, so a pass refreshes them first.
        var parameters: [PostgresValue] = [.text(String(window.startNanos)), .text(String(window.endNanos)), .text(String(limit))]
        var conditions = ""
        if excludingOTLP {
            conditions += " AND format <> 'otlp'"
        }
        if let cursor {
            conditions += " AND (rho, trace_id) > ($\(parameters.count + 1)::double precision, $\(parameters.count + 2))"
            parameters += [.text(String(cursor.rho)), .text(cursor.traceID)]
        }
        if let lower = window.rhoRange.lower {
            conditions += " AND rho >= $\(parameters.count + 1)::double precision"
            parameters.append(.text(String(lower)))
        }
        if let upper = window.rhoRange.upper {
            conditions += " AND rho < $\(parameters.count + 1)::double precision"
            parameters.append(.text(String(upper)))
        }
        return try connection.query(
            """
            SELECT trace_id, rho, ingested_at > coalesce((SELECT closed_at FROM windows WHERE window_start_ns = $1), 'infinity')
            FROM traces
            WHERE request_time_ns >= $1 AND request_time_ns < $2 AND scored_at IS NULL\(conditions)
            ORDER BY rho, trace_id LIMIT $3
            """,
            parameters
        ).map { (try $0.string(0), try $0.double(1), try $0.bool(2)) }
    }

    /// Refreshes the planner's statistics of `traces` (a sample, bounded whatever the table's
    /// size). A window that just closed was usually filled since autovacuum last looked, and
    /// with estimates from before, the chunk query's plan reads every unscored trace per chunk.
    public func refreshTraceStatistics(on connection: PostgresConnection) throws {
        try connection.executeScript("ANALYZE traces")
    }

    /// How many traces each scorer already took in this window (for `max_per_window`).
    public func selectedCounts(of window: ClaimedWindow, on connection: PostgresConnection) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try connection.query("SELECT scorer_name, selected FROM window_summaries WHERE window_start_ns = $1", [.text(String(window.startNanos))]) {
            counts[try row.string(0)] = try row.int(1)
        }
        return counts
    }

    /// Outcomes already stored for these assessment ids (a pass interrupted earlier).
    public func storedOutcomes(assessmentIDs: [String], on connection: PostgresConnection) throws -> [String: StoredOutcome] {
        guard !assessmentIDs.isEmpty else { return [:] }
        var outcomes: [String: StoredOutcome] = [:]
        for row in try connection.query("SELECT assessment_id::text, outcome FROM assessments WHERE assessment_id = ANY($1::uuid[])",
                                         [.text(PostgresArray.text(assessmentIDs))]) {
            outcomes[try row.string(0)] = StoredOutcome(rawValue: try row.string(1)) ?? .value
        }
        return outcomes
    }

    /// Commits one chunk: checks the lease, marks the traces handled, stores new
    /// assessments (and their outbox messages) and adds the summary deltas.
    public func commitChunk(_ chunk: ChunkResult, window: ClaimedWindow, owner: String, leaseSeconds: Int, on connection: PostgresConnection) throws {
        try connection.transaction { connection in
            // The window's row first, then the slice leases: a replica leasing slices locks the
            // row (FOR SHARE) before the leases, so the same order here cannot deadlock with it.
            let late = chunk.handledTraces.filter(\.late).count
            if late > 0 {
                _ = try connection.execute("UPDATE windows SET late_traces = late_traces + $2 WHERE window_start_ns = $1",
                                           [.text(String(window.startNanos)), .text(String(late))])
            }
            try renewLease(window, owner: owner, leaseSeconds: leaseSeconds, on: connection)
            if !chunk.handledTraces.isEmpty {
                let marked = try connection.query(
                    """
                    UPDATE traces t SET scored_at = now(), late = v.late
                    FROM unnest($1::text[], $2::bool[]) AS v(id, late)
                    WHERE t.trace_id = v.id AND t.scored_at IS NULL
                    RETURNING t.trace_id
                    """,
                    [.text(PostgresArray.text(chunk.handledTraces.map(\.traceID))),
                     .text("{" + chunk.handledTraces.map { $0.late ? "t" : "f" }.joined(separator: ",") + "}")])
                // Under our lease nobody else handles these traces; if someone did, roll back
                // rather than count them twice.
                guard marked.count == chunk.handledTraces.count else { throw ScoringStoreError.leaseLost(windowStartNanos: window.startNanos) }
            }
            if !chunk.assessments.isEmpty {
                _ = try Self.insertAssessments(chunk.assessments, windowStartNanos: window.startNanos, configVersion: window.configVersion, on: connection)
            }
            for (scorer, delta) in chunk.deltas.sorted(by: { $0.key < $1.key }) {
                try addDelta(delta, scorer: scorer, window: window, on: connection)
            }
        }
    }

    /// Hands a lease back (a run of slices, or the window's own): it ends now, so another
    /// replica can take it at once instead of after it expires. A lease another replica took
    /// meanwhile is left alone.
    public func releaseLease(_ window: ClaimedWindow, owner: String, on connection: PostgresConnection) throws {
        if let slices = window.slices {
            _ = try connection.execute(
                "DELETE FROM window_slice_leases WHERE window_start_ns = $1 AND slice BETWEEN $2 AND $3 AND lease_owner = $4",
                [.text(String(window.startNanos)), .text(String(slices.lowerBound)), .text(String(slices.upperBound)), .text(owner)])
            return
        }
        _ = try connection.execute(
            "UPDATE windows SET lease_owner = NULL, lease_until = NULL WHERE window_start_ns = $1 AND lease_owner = $2",
            [.text(String(window.startNanos)), .text(owner)])
    }

    private func renewLease(_ window: ClaimedWindow, owner: String, leaseSeconds: Int, on connection: PostgresConnection) throws {
        if let slices = window.slices {
            let renewed = try connection.execute(
                """
                UPDATE window_slice_leases SET lease_until = now() + make_interval(secs => $5)
                WHERE window_start_ns = $1 AND slice BETWEEN $2 AND $3 AND lease_owner = $4
                """,
                [.text(String(window.startNanos)), .text(String(slices.lowerBound)), .text(String(slices.upperBound)), .text(owner),
                 .text(String(leaseSeconds))])
            guard renewed == slices.count else { throw ScoringStoreError.leaseLost(windowStartNanos: window.startNanos) }
            return
        }
        let renewed = try connection.execute(
            "UPDATE windows SET lease_until = now() + make_interval(secs => $3) WHERE window_start_ns = $1 AND lease_owner = $2",
            [.text(String(window.startNanos)), .text(owner), .text(String(leaseSeconds))])
        guard renewed == 1 else { throw ScoringStoreError.leaseLost(windowStartNanos: window.startNanos) }
    }

    /// Stores assessments whose ids are new and queues those for publishing; returns how many.
    ///
    /// The chunk's ids were looked up before scoring, so they are new unless another replica
    /// stored some meanwhile (its lease expired under it): COPY straight into `assessments` and
    /// `outbox`, and only on a conflict stage and merge, keeping each stored id's first value.
    static func insertAssessments(_ items: [NewAssessment], windowStartNanos: Int64, configVersion: Int64, on connection: PostgresConnection) throws -> Int {
        // In id order, as the merge queues them for publishing.
        let rows = items.map(AssessmentRow.init).sorted { $0.item.assessment.assessmentID < $1.item.assessment.assessmentID }
        try connection.executeScript("SAVEPOINT copy_new_assessments")
        do {
            let window = String(windowStartNanos)
            let version = String(configVersion)
            _ = try connection.copyFrom(copyAssessments) { writer in
                for row in rows { try writer.writeRow(row.values(windowStart: window, configVersion: version)) }
            }
            // One outbox row names the whole chunk (schema version 15), in id order; its empty
            // payload stops publishers from before version 15 (see the migration).
            _ = try connection.execute(
                "INSERT INTO outbox (schema_name, payload, assessment_ids, message_count) VALUES ('assessment/v1', '', $1::uuid[], $2)",
                [.text(PostgresArray.text(rows.map(\.item.assessment.assessmentID))), .text(String(rows.count))])
            try connection.executeScript("RELEASE SAVEPOINT copy_new_assessments")
            return rows.count
        } catch let error as PostgresError where error.isUniqueViolation {
            try connection.executeScript("ROLLBACK TO SAVEPOINT copy_new_assessments; RELEASE SAVEPOINT copy_new_assessments")
            return try mergeAssessments(rows, windowStartNanos: windowStartNanos, configVersion: configVersion, on: connection)
        }
    }

    static let assessmentColumns = ["assessment_id", "trace_id", "span_id", "assessment_name", "scorer_name", "window_start_ns",
                                    "config_version", "source_type", "outcome", "value", "rationale", "error_code", "late", "document",
                                    "judge_latency_ms", "judge_input_tokens", "judge_output_tokens"]
    static let copyAssessments = "COPY assessments (\(assessmentColumns.joined(separator: ", "))) FROM STDIN"

    /// One assessment's row, its JSON written once for both tables.
    struct AssessmentRow {
        let item: NewAssessment
        let traceID: String
        let document: String
        private let value: String?
        private let errorCode: String?

        init(_ item: NewAssessment) {
            self.item = item
            let assessment = item.assessment
            traceID = assessment.traceID.sanitizedForPostgres
            document = assessment.document()
            switch assessment.feedback {
            case .value(let feedback):
                value = feedback.json().serialized()
                errorCode = nil
            case .error(let code, _):
                value = nil
                errorCode = code.sanitizedForPostgres
            }
        }

        /// The values of ``assessmentColumns``, in order.
        func values(windowStart: String, configVersion: String) -> [String?] {
            let assessment = item.assessment
            return [
                assessment.assessmentID,
                traceID,
                assessment.spanID,
                assessment.name.sanitizedForPostgres,
                item.scorerName,
                windowStart,
                configVersion,
                assessment.source.sourceType.rawValue,
                item.outcome.rawValue,
                value,
                assessment.rationale?.sanitizedForPostgres,
                errorCode,
                item.late ? "t" : "f",
                document,
                item.judgeLatencyMillis.map { String($0) },
                item.judgeInputTokens.map { String($0) },
                item.judgeOutputTokens.map { String($0) },
            ]
        }
    }

    /// Stages the rows and inserts those whose ids are new; an id stored before keeps its
    /// first value and is not published again.
    private static func mergeAssessments(_ rows: [AssessmentRow], windowStartNanos: Int64, configVersion: Int64, on connection: PostgresConnection) throws -> Int {
        try connection.executeScript("""
            CREATE TEMP TABLE IF NOT EXISTS stage_assessments (
                assessment_id uuid, trace_id text, span_id text, assessment_name text, scorer_name text,
                window_start_ns bigint, config_version bigint,
                source_type text, outcome text, value text, rationale text, error_code text, late boolean, document text,
                judge_latency_ms double precision, judge_input_tokens integer, judge_output_tokens integer
            ) ON COMMIT DELETE ROWS
            """)
        let window = String(windowStartNanos)
        let version = String(configVersion)
        _ = try connection.copyFrom("COPY stage_assessments FROM STDIN") { writer in
            for row in rows { try writer.writeRow(row.values(windowStart: window, configVersion: version)) }
        }
        let columns = assessmentColumns.joined(separator: ", ")
        return try connection.query(
            """
            WITH inserted AS (
                INSERT INTO assessments (\(columns))
                SELECT \(columns) FROM stage_assessments
                ON CONFLICT (assessment_id) DO NOTHING
                RETURNING assessment_id
            )
            INSERT INTO outbox (schema_name, payload, assessment_ids, message_count)
            SELECT 'assessment/v1', '', array_agg(assessment_id ORDER BY assessment_id), count(*) FROM inserted
            HAVING count(*) > 0
            RETURNING message_count
            """).first.map { try $0.int(0) } ?? 0
    }

    private func addDelta(_ delta: SummaryDelta, scorer: String, window: ClaimedWindow, on connection: PostgresConnection) throws {
        let values = [delta.eligible, delta.filteredOut, delta.sampledOut, delta.notApplicable, delta.errored,
                      delta.scored, delta.passed, delta.lateScored, delta.selected, delta.budgetSkipped].map { PostgresValue.text(String($0)) }
        _ = try connection.execute(
            """
            INSERT INTO window_summaries AS s (window_start_ns, scorer_name, window_end_ns, config_version,
                eligible, filtered_out, sampled_out, not_applicable, errored, scored, passed, late_scored, selected, budget_skipped, needs_publish)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, true)
            ON CONFLICT (window_start_ns, scorer_name) DO UPDATE SET
                eligible = s.eligible + EXCLUDED.eligible,
                filtered_out = s.filtered_out + EXCLUDED.filtered_out,
                sampled_out = s.sampled_out + EXCLUDED.sampled_out,
                not_applicable = s.not_applicable + EXCLUDED.not_applicable,
                errored = s.errored + EXCLUDED.errored,
                scored = s.scored + EXCLUDED.scored,
                passed = s.passed + EXCLUDED.passed,
                late_scored = s.late_scored + EXCLUDED.late_scored,
                selected = s.selected + EXCLUDED.selected,
                budget_skipped = s.budget_skipped + EXCLUDED.budget_skipped,
                needs_publish = true,
                updated_at = now()
            """,
            [.text(String(window.startNanos)), .text(scorer), .text(String(window.endNanos)), .text(String(window.configVersion))] + values)
    }

    /// Ends a pass over a window: publishes every summary that changed (next revision),
    /// marks the window scored (or `paused`, when its config version was paused) and releases
    /// the lease. Returns the summaries published.
    @discardableResult
    public func finishWindow(_ window: ClaimedWindow, owner: String, leaseSeconds: Int, paused: Bool = false, on connection: PostgresConnection) throws -> [WindowScorerSummary] {
        try connection.transaction { connection in
            try renewLease(window, owner: owner, leaseSeconds: leaseSeconds, on: connection)
            let rows = try connection.query(
                """
                SELECT s.scorer_name, s.config_version, s.revision, s.eligible, s.filtered_out, s.sampled_out, s.not_applicable,
                       s.errored, s.scored, s.passed, s.late_scored, s.budget_skipped,
                       j.p50, j.p95, j.input_tokens, j.output_tokens
                FROM window_summaries s
                LEFT JOIN LATERAL (
                    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY judge_latency_ms) AS p50,
                           percentile_cont(0.95) WITHIN GROUP (ORDER BY judge_latency_ms) AS p95,
                           sum(judge_input_tokens) AS input_tokens, sum(judge_output_tokens) AS output_tokens
                    FROM assessments a WHERE a.window_start_ns = s.window_start_ns AND a.scorer_name = s.scorer_name
                      -- judged assessments only, from assessments_judged_idx (same predicate)
                      AND (a.judge_latency_ms IS NOT NULL OR a.judge_input_tokens IS NOT NULL OR a.judge_output_tokens IS NOT NULL)
                ) j ON true
                WHERE s.window_start_ns = $1 AND s.needs_publish
                ORDER BY s.scorer_name FOR UPDATE OF s
                """, [.text(String(window.startNanos))])
            var published: [WindowScorerSummary] = []
            for row in rows {
                let summary = WindowScorerSummary(
                    windowStartNanos: window.startNanos, windowEndNanos: window.endNanos,
                    scorerName: try row.string(0), configVersion: try row.int64(1), revision: try row.int(2) + 1,
                    eligible: try row.int(3), filteredOut: try row.int(4), sampledOut: try row.int(5),
                    budgetSkipped: try row.int(11), notApplicable: try row.int(6), errored: try row.int(7), scored: try row.int(8),
                    passed: try row.int(9), lateScored: try row.int(10),
                    judgeLatencyP50Millis: try row.optionalDouble(12), judgeLatencyP95Millis: try row.optionalDouble(13),
                    tokens: try Self.tokens(input: row.optionalInt64(14), output: row.optionalInt64(15)))
                let document = summary.json().serialized()
                _ = try connection.execute(
                    "UPDATE window_summaries SET revision = $3, document = $4, needs_publish = false, updated_at = now() WHERE window_start_ns = $1 AND scorer_name = $2",
                    [.text(String(window.startNanos)), .text(summary.scorerName), .text(String(summary.revision)), .text(document)])
                _ = try connection.execute(
                    "INSERT INTO outbox (message_key, schema_name, payload) VALUES ($1, 'window-summary/v1', $2)",
                    [.text("\(window.startNanos)/\(summary.scorerName)"), .text(document)])
                published.append(summary)
            }
            _ = try connection.execute(
                """
                UPDATE windows SET state = $3, scored_at = coalesce(scored_at, now()), lease_owner = NULL, lease_until = NULL
                WHERE window_start_ns = $1 AND lease_owner = $2
                """, [.text(String(window.startNanos)), .text(owner), .text(paused ? "paused" : "scored")])
            return published
        }
    }

    static func tokens(input: Int64?, output: Int64?) -> TokenUsage? {
        guard input != nil || output != nil else { return nil }
        return TokenUsage(inputTokens: input ?? 0, outputTokens: output ?? 0)
    }

    // MARK: - Outbox

    /// Publishes about `limit` unpublished messages in outbox order and marks their rows
    /// published, in one transaction: the rows stay locked (other replicas skip them) until
    /// `publish` returns, and a crash before the commit publishes them again, with the same
    /// bytes.
    ///
    /// Rows are taken whole, in id order, until they hold `limit` messages or more: a batch
    /// exceeds `limit` by less than one row (a scored chunk's row holds its chunk's messages).
    /// An assessment's message is its stored document (schema version 13), keyed by its trace
    /// id. If that assessment was deleted by hand there is nothing to send: the message is
    /// skipped and returned in ``OutboxBatch/unsendable`` for the caller to report, and its row
    /// is marked like the others, so it cannot hold them up.
    public func publishPending(limit: Int, on connection: PostgresConnection, publish: ([OutboxMessage]) throws -> Void) throws -> OutboxBatch {
        try connection.transaction { connection in
            // Sized first from the narrow columns (no list is read), among the rows no other
            // replica holds: locked in a savepoint that is rolled back (which releases the
            // locks), so the rows beyond the batch are not held while it is published.
            try connection.executeScript("SAVEPOINT outbox_sizing")
            let pending = try connection.query(
                "SELECT id, message_count FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                [.text(String(max(limit, 1)))])
            try connection.executeScript("ROLLBACK TO SAVEPOINT outbox_sizing; RELEASE SAVEPOINT outbox_sizing")
            var candidates: [Int64] = []
            var counted = 0
            for row in pending where counted < max(limit, 1) {
                candidates.append(try row.int64(0))
                counted += try row.int(1)
            }
            guard !candidates.isEmpty else { return OutboxBatch() }
            let rows = try connection.query(
                """
                WITH batch AS (
                    SELECT id, message_key, schema_name, payload, assessment_id, assessment_ids FROM outbox
                    WHERE id = ANY($1::bigint[]) AND published_at IS NULL
                    FOR UPDATE SKIP LOCKED
                )
                SELECT b.id, coalesce(b.message_key, a.trace_id), b.schema_name,
                       CASE WHEN b.assessment_ids IS NULL THEN coalesce(b.payload, a.document) ELSE a.document END, m.assessment_id::text
                FROM batch b
                CROSS JOIN LATERAL unnest(coalesce(b.assessment_ids, ARRAY[b.assessment_id])) WITH ORDINALITY AS m(assessment_id, position)
                LEFT JOIN assessments a ON a.assessment_id = m.assessment_id
                ORDER BY b.id, m.position
                """, [.text(PostgresArray.integers(candidates))])
            var messages: [OutboxMessage] = []
            var batch = OutboxBatch()
            var taken: [Int64] = []
            messages.reserveCapacity(rows.count)
            for row in rows {
                let id = try row.int64(0)
                if taken.last != id { taken.append(id) }
                guard let payload = try row.optionalString(3), let key = try row.optionalString(1) else {
                    batch.unsendable.append(UnsendableMessage(outboxID: id, assessmentID: try row.optionalString(4) ?? "?"))
                    continue
                }
                messages.append(OutboxMessage(id: id, key: key, schemaName: try row.string(2), payload: payload))
            }
            guard !taken.isEmpty else { return batch }
            if !messages.isEmpty { try publish(messages) }
            _ = try connection.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                                       [.text(PostgresArray.integers(taken))])
            batch.published = messages.count
            return batch
        }
    }

    // MARK: - Judge budgets

    /// Adds one replica's judge use since its last report to a window's shared total
    /// (`judge_usage`) and returns the new total, every replica's reports included.
    public func addJudgeUsage(windowStartNanos: Int64, calls: Int, inputTokens: Int, outputTokens: Int,
                              on connection: PostgresConnection) throws -> JudgeUsage {
        let row = try connection.query(
            """
            INSERT INTO judge_usage AS u (window_start_ns, calls, input_tokens, output_tokens) VALUES ($1, $2, $3, $4)
            ON CONFLICT (window_start_ns) DO UPDATE SET
                calls = u.calls + EXCLUDED.calls,
                input_tokens = u.input_tokens + EXCLUDED.input_tokens,
                output_tokens = u.output_tokens + EXCLUDED.output_tokens,
                updated_at = now()
            RETURNING calls, input_tokens, output_tokens
            """,
            [.text(String(windowStartNanos)), .text(String(calls)), .text(String(inputTokens)), .text(String(outputTokens))])[0]
        return JudgeUsage(calls: try row.int(0), inputTokens: try row.int(1), outputTokens: try row.int(2))
    }

    /// A window's shared judge total (`judge_usage`), every replica's reports included; zero
    /// before any report.
    public func judgeUsage(windowStartNanos: Int64, on connection: PostgresConnection) throws -> JudgeUsage {
        guard let row = try connection.query("SELECT calls, input_tokens, output_tokens FROM judge_usage WHERE window_start_ns = $1",
                                             [.text(String(windowStartNanos))]).first else { return JudgeUsage() }
        return JudgeUsage(calls: try row.int(0), inputTokens: try row.int(1), outputTokens: try row.int(2))
    }

    /// Messages not yet published (a metric: the outbox backlog).
    public func outboxBacklog(on connection: PostgresConnection) throws -> Int {
        try connection.query("SELECT coalesce(sum(message_count), 0) FROM outbox WHERE published_at IS NULL")[0].int(0)
    }

    /// Deletes up to `limit` outbox rows published more than `olderThanSeconds` ago (their
    /// messages are in Kafka, their documents in `assessments` and `window_summaries`). One
    /// replica at a time: the others find the sweep's advisory lock taken and get nil.
    /// Oldest ids first, through the primary key: rows are published roughly in id order, so
    /// the rows past the retention sit at its low end. Returns how many rows went.
    public func deletePublishedOutbox(olderThanSeconds: Int, limit: Int, on connection: PostgresConnection) throws -> Int? {
        try connection.transaction { connection in
            // Keyed by the schema, so deployments in other schemas of the database sweep apart.
            let locked = try connection.query("SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.outbox_retention'))")[0].bool(0)
            guard locked else { return nil }
            return try connection.execute("""
                DELETE FROM outbox WHERE id IN (
                    SELECT id FROM outbox WHERE published_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2)
                """, [.text(String(olderThanSeconds)), .text(String(limit))])
        }
    }
}
