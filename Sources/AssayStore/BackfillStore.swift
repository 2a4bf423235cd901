import AssayCore
import Postgres

/// A backfill run as stored (resumable by its parameters).
public struct BackfillRun: Sendable, Equatable {
    public var id: Int64
    public var fromNanos: Int64
    public var toNanos: Int64
    public var configVersion: Int64
    public var scorers: [String]
    public var sampleRate: Double?
    public var nextWindowNanos: Int64
    public var assessments: Int64
    public var finished: Bool
}

/// Storage for `assay backfill`: the runs, the traces of a window regardless of live
/// scoring, and assessments written without touching live windows and summaries.
public struct BackfillStore: Sendable {
    public init() {}

    /// The unfinished run with exactly these parameters, or a new one.
    public func startOrResume(fromNanos: Int64, toNanos: Int64, configVersion: Int64, scorers: [String], sampleRate: Double?,
                              firstWindowNanos: Int64, on connection: PostgresConnection) throws -> (run: BackfillRun, resumed: Bool) {
        try connection.transaction { connection in
            _ = try connection.query("SELECT pg_advisory_xact_lock(hashtext('assay.backfill_runs'))")
            let names = scorers.sorted().joined(separator: ",")
            let rate: PostgresValue = sampleRate.map { .text(String($0)) } ?? .null
            let existing = try connection.query(
                """
                SELECT \(Self.columns) FROM backfill_runs
                WHERE finished_at IS NULL AND from_ns = $1 AND to_ns = $2 AND config_version = $3 AND scorers = $4
                  AND sample_rate IS NOT DISTINCT FROM $5::double precision
                ORDER BY id DESC LIMIT 1
                """, [.text(String(fromNanos)), .text(String(toNanos)), .text(String(configVersion)), .text(names), rate])
            if let row = existing.first { return (try Self.decode(row), true) }
            let created = try connection.query(
                """
                INSERT INTO backfill_runs (from_ns, to_ns, config_version, scorers, sample_rate, next_window_ns)
                VALUES ($1, $2, $3, $4, $5::double precision, $6) RETURNING \(Self.columns)
                """, [.text(String(fromNanos)), .text(String(toNanos)), .text(String(configVersion)), .text(names), rate, .text(String(firstWindowNanos))])
            return (try Self.decode(created[0]), false)
        }
    }

    /// Records that every window before `nextWindowNanos` is done.
    public func advance(_ run: BackfillRun, nextWindowNanos: Int64, newAssessments: Int, finished: Bool, on connection: PostgresConnection) throws {
        _ = try connection.execute(
            """
            UPDATE backfill_runs SET next_window_ns = $2, assessments = assessments + $3, updated_at = now(),
                finished_at = CASE WHEN $4 THEN now() ELSE NULL END
            WHERE id = $1
            """, [.text(String(run.id)), .text(String(nextWindowNanos)), .text(String(newAssessments)), .text(finished ? "true" : "false")])
    }

    /// Traces of `[start, end)` after the (ρ, trace id) cursor, in ascending ρ.
    public func traces(windowStart: Int64, windowEnd: Int64, after cursor: (rho: Double, traceID: String)?, limit: Int,
                       on connection: PostgresConnection) throws -> [(traceID: String, rho: Double, late: Bool)] {
        try connection.query(
            """
            SELECT trace_id, rho, late FROM traces
            WHERE request_time_ns >= $1 AND request_time_ns < $2 AND (rho, trace_id) > ($3::double precision, $4)
            ORDER BY rho, trace_id LIMIT $5
            """,
            [.text(String(windowStart)), .text(String(windowEnd)), .text(String(cursor?.rho ?? -1)), .text(cursor?.traceID ?? ""), .text(String(limit))]
        ).map { (try $0.string(0), try $0.double(1), try $0.bool(2)) }
    }

    /// Stores assessments (new ids only) and queues them for publishing.
    public func storeAssessments(_ items: [NewAssessment], windowStartNanos: Int64, configVersion: Int64, on connection: PostgresConnection) throws -> Int {
        guard !items.isEmpty else { return 0 }
        return try connection.transaction { connection in
            try ScoringStore.insertAssessments(items, windowStartNanos: windowStartNanos, configVersion: configVersion, on: connection)
        }
    }

    static let columns = "id, from_ns, to_ns, config_version, scorers, sample_rate, next_window_ns, assessments, finished_at IS NOT NULL"

    static func decode(_ row: PostgresRow) throws -> BackfillRun {
        let names = try row.string(4)
        return BackfillRun(id: try row.int64(0), fromNanos: try row.int64(1), toNanos: try row.int64(2), configVersion: try row.int64(3),
                           scorers: names.isEmpty ? [] : names.split(separator: ",").map(String.init), sampleRate: try row.optionalDouble(5),
                           nextWindowNanos: try row.int64(6), assessments: try row.int64(7), finished: try row.bool(8))
    }
}
