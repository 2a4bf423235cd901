import AssayCore
import Postgres

/// One stored version of the monitor document.
public struct MonitorVersion: Sendable, Equatable {
    public var version: Int64
    public var config: MonitorConfig
    /// The canonical JSON, exactly as stored.
    public var document: String
    /// When it was written, epoch milliseconds.
    public var createdAtMillis: Int64
    /// The event time (ns) from which windows use this version; `Int64.min` for the first.
    public var effectiveFromNanos: Int64
    /// Who wrote it: `api`, `cli`, `serve --monitor`, ...
    public var note: String?
}

/// Why an update was refused.
public enum MonitorUpdateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The caller expected another current version (optimistic concurrency): HTTP 409.
    case versionConflict(expected: Int64, current: Int64?)
    /// The destination schema is fixed once set: HTTP 409.
    case destinationChanged(current: String, requested: String)

    public var description: String {
        switch self {
        case .versionConflict(let expected, let current):
            return "expected version \(expected), but the current version is \(current.map(String.init) ?? "none"): reload and retry"
        case .destinationChanged(let current, let requested):
            return "destination.schema is fixed once set: it is \(current); an update cannot change it to \(requested)"
        }
    }
}

/// The versioned monitor document (DESIGN invariant 9): `update` writes version n+1 of the
/// whole document, never merging, and notifies replicas (`NOTIFY assay_monitor`).
///
/// A new version applies from the next window boundary: its `effective_from_ns` is the first
/// boundary at or after the update time that both the old and the new window widths share,
/// so a window is never scored half under one version and half under another.
public struct MonitorStore: Sendable {
    /// The schema this store lives in, which is every version's `destination.schema`.
    public let schema: SchemaName
    /// The notification channel replicas listen on.
    public static let channel = "assay_monitor"

    public init(schema: SchemaName) {
        self.schema = schema
    }

    /// The newest version, or nil when no monitor was ever configured.
    public func current(on connection: PostgresConnection) throws -> MonitorVersion? {
        try Self.decode(connection.query("\(Self.selectColumns) ORDER BY version DESC LIMIT 1")).first
    }

    /// One version.
    public func version(_ version: Int64, on connection: PostgresConnection) throws -> MonitorVersion? {
        try Self.decode(connection.query("\(Self.selectColumns) WHERE version = $1", [.text(String(version))])).first
    }

    /// Every version, newest first.
    public func versions(limit: Int = 100, on connection: PostgresConnection) throws -> [MonitorVersion] {
        try Self.decode(connection.query("\(Self.selectColumns) ORDER BY version DESC LIMIT $1", [.text(String(limit))]))
    }

    /// The version in force for a window starting at `windowStartNanos`.
    public func version(forWindowStart windowStartNanos: Int64, on connection: PostgresConnection) throws -> MonitorVersion? {
        try Self.decode(connection.query(
            "\(Self.selectColumns) WHERE effective_from_ns <= $1 ORDER BY version DESC LIMIT 1",
            [.text(String(windowStartNanos))])).first
    }

    /// Replaces the whole document with a new version and notifies replicas. `expectedVersion`
    /// (HTTP `If-Match`, CLI `--expected-version`) must equal the current version when given.
    @discardableResult
    public func update(_ config: MonitorConfig, expectedVersion: Int64?, note: String?, nowNanos: Int64, on connection: PostgresConnection) throws -> MonitorVersion {
        try connection.transaction { connection in
            try write(config, expectedVersion: expectedVersion, onlyIfChanged: false, note: note, nowNanos: nowNanos, on: connection).version
        }
    }

    /// Stores `config` as the next version unless the current version is the same document
    /// (`serve --monitor` at every start). Returns the version in force and whether it is new.
    public func saveIfChanged(_ config: MonitorConfig, note: String?, nowNanos: Int64, on connection: PostgresConnection) throws -> (version: MonitorVersion, created: Bool) {
        try connection.transaction { connection in
            try write(config, expectedVersion: nil, onlyIfChanged: true, note: note, nowNanos: nowNanos, on: connection)
        }
    }

    private func write(_ config: MonitorConfig, expectedVersion: Int64?, onlyIfChanged: Bool, note: String?, nowNanos: Int64,
                       on connection: PostgresConnection) throws -> (version: MonitorVersion, created: Bool) {
        // One writer at a time; versions are dense and never reused.
        try Self.lockVersions(on: connection)
        let current = try self.current(on: connection)
        if let expectedVersion, expectedVersion != current?.version {
            throw MonitorUpdateError.versionConflict(expected: expectedVersion, current: current?.version)
        }
        let fixedDestination = current?.config.destinationSchema ?? schema.rawValue
        guard config.destinationSchema == fixedDestination else {
            throw MonitorUpdateError.destinationChanged(current: fixedDestination, requested: config.destinationSchema)
        }
        let document = config.json().serialized()
        if onlyIfChanged, let current, current.document == document { return (current, false) }

        let effectiveFrom: Int64
        if let current {
            // Not before any window that has a row (closed, or open and being scored), so
            // those windows keep their version.
            let closedEnd = try connection.query("SELECT max(window_end_ns) FROM windows")[0].optionalInt64(0) ?? Int64.min
            effectiveFrom = Self.effectiveFrom(oldWidth: current.config.window.widthNanos, newWidth: config.window.widthNanos,
                                               notBefore: max(nowNanos, closedEnd))
        } else {
            effectiveFrom = Int64.min
        }
        let next = (current?.version ?? 0) + 1
        _ = try connection.execute(
            """
            INSERT INTO monitor_configs (version, document, window_ns, allowed_lateness_ns, effective_from_ns, note)
            VALUES ($1, $2, $3, $4, $5, $6)
            """,
            [.text(String(next)), .text(document), .text(String(config.window.widthNanos)),
             .text(String(config.window.allowedLatenessNanos)), .text(String(effectiveFrom)), note.map { .text($0) } ?? .null])
        _ = try connection.query("SELECT pg_notify($1, $2)", [.text(Self.channel), .text("\(schema.rawValue):\(next)")])
        guard let stored = try version(next, on: connection) else {
            throw MonitorUpdateError.versionConflict(expected: next, current: nil)
        }
        return (stored, true)
    }

    /// Takes, until the transaction ends, the lock that orders monitor updates against each
    /// other and against opening a window (``ScoringStore/openWindow(startNanos:widthNanos:configVersion:on:)``).
    static func lockVersions(on connection: PostgresConnection) throws {
        _ = try connection.query("SELECT pg_advisory_xact_lock(hashtext('assay.monitor_configs'))")
    }

    /// The first event time at or after `notBefore` that is a boundary of both widths.
    public static func effectiveFrom(oldWidth: Int64, newWidth: Int64, notBefore: Int64) -> Int64 {
        let step = lcm(max(oldWidth, 1), max(newWidth, 1))
        let remainder = ((notBefore % step) + step) % step
        if remainder == 0 { return notBefore }
        let (next, overflow) = (notBefore - remainder).addingReportingOverflow(step)
        return overflow ? Int64.max : next
    }

    static func lcm(_ a: Int64, _ b: Int64) -> Int64 {
        var (x, y) = (a, b)
        while y != 0 { (x, y) = (y, x % y) }
        let (product, overflow) = (a / x).multipliedReportingOverflow(by: b)
        return overflow ? max(a, b) : product
    }

    static let selectColumns = """
        SELECT version, document, (extract(epoch FROM created_at) * 1000)::bigint, effective_from_ns, note FROM monitor_configs
        """

    static func decode(_ rows: PostgresRows) throws -> [MonitorVersion] {
        try rows.map { row in
            let version = try row.int64(0)
            let document = try row.string(1)
            let config: MonitorConfig
            do {
                config = try MonitorConfig.parse(Array(document.utf8))
            } catch let error as MonitorConfigError {
                throw ScoringStoreError.invalidStoredConfig(version: version, reason: error.description)
            }
            return MonitorVersion(version: version, config: config, document: document, createdAtMillis: try row.int64(2),
                                  effectiveFromNanos: try row.int64(3), note: try row.optionalString(4))
        }
    }
}
