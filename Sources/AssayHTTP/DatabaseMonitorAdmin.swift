import AssayCore
import AssayStore
import Foundation
import Postgres

/// The monitor operations on the database (``MonitorStore``): what the admin API serves and
/// what `assay monitor --database-url` runs.
///
/// Writes go through ``MonitorStore/update(_:expectedVersion:note:nowNanos:on:)``: version n+1
/// in one transaction, refused when `destination.schema` would change.
public struct DatabaseMonitorAdmin: MonitorAdmin {
    public let pool: PostgresPool
    public let store: MonitorStore
    /// Recorded with every version written (`api`, `cli`).
    public let note: String
    private let nowNanos: @Sendable () -> Int64

    /// - Parameters:
    ///   - note: stored with each version this writes.
    ///   - nowNanos: the wall clock (epoch ns) that decides when a new version takes effect.
    public init(pool: PostgresPool, schema: SchemaName, note: String, nowNanos: @escaping @Sendable () -> Int64 = DatabaseMonitorAdmin.wallClockNanos) {
        self.pool = pool
        self.store = MonitorStore(schema: schema)
        self.note = note
        self.nowNanos = nowNanos
    }

    /// Nanoseconds since the epoch, from the wall clock.
    @Sendable public static func wallClockNanos() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1_000_000_000)
    }

    public func current() async throws -> MonitorVersionInfo {
        let store = self.store
        let stored = try await database { try store.current(on: $0) }
        guard let stored else { throw MonitorAdminError.notFound(MonitorAdminMessages.notConfigured) }
        return MonitorVersionInfo(stored)
    }

    public func versions(limit: Int) async throws -> [MonitorVersionSummary] {
        let store = self.store
        let limit = max(1, limit)
        return try await database { try store.versions(limit: limit, on: $0) }.map { MonitorVersionInfo($0).summary }
    }

    public func update(document: [UInt8], expectedVersion: Int64?) async throws -> MonitorWrite {
        try await update(MonitorDocument.validate(document), expectedVersion: expectedVersion)
    }

    /// Writes an already parsed document (its scorer params are checked here) as version n+1.
    public func update(_ config: MonitorConfig, expectedVersion: Int64?) async throws -> MonitorWrite {
        try MonitorDocument.validate(config)
        let (store, note, nowNanos) = (self.store, self.note, self.nowNanos)
        let stored = try await database {
            try store.update(config, expectedVersion: expectedVersion, note: note, nowNanos: nowNanos(), on: $0)
        }
        return MonitorWrite(version: MonitorVersionInfo(stored), created: true)
    }

    public func setPaused(_ paused: Bool, expectedVersion: Int64?) async throws -> MonitorWrite {
        let (store, note, nowNanos) = (self.store, self.note, self.nowNanos)
        // Without an expected version, a concurrent writer between our read and our write is
        // not the caller's conflict: read again and retry a few times.
        var attempt = 0
        while true {
            attempt += 1
            let outcome: PauseOutcome
            do {
                outcome = try await database { connection -> PauseOutcome in
                    guard let current = try store.current(on: connection) else { return .noMonitor }
                    if let expectedVersion, expectedVersion != current.version {
                        throw MonitorUpdateError.versionConflict(expected: expectedVersion, current: current.version)
                    }
                    if current.config.paused == paused { return .unchanged(current) }
                    var config = current.config
                    config.paused = paused
                    return .written(try store.update(config, expectedVersion: current.version, note: note, nowNanos: nowNanos(), on: connection))
                }
            } catch MonitorAdminError.conflict(_, _) where expectedVersion == nil && attempt < 3 {
                continue
            }
            switch outcome {
            case .noMonitor:
                throw MonitorAdminError.conflict(MonitorAdminMessages.nothingTo(paused), path: nil)
            case .unchanged(let current):
                return MonitorWrite(version: MonitorVersionInfo(current), created: false)
            case .written(let stored):
                return MonitorWrite(version: MonitorVersionInfo(stored), created: true)
            }
        }
    }

    private enum PauseOutcome: Sendable {
        case noMonitor
        case unchanged(MonitorVersion)
        case written(MonitorVersion)
    }

    /// Runs `body` on a pooled connection and turns store and connection errors into
    /// ``MonitorAdminError``s; other errors are rethrown as they are.
    private func database<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        do {
            return try await pool.withConnection(body)
        } catch let error as MonitorUpdateError {
            switch error {
            case .versionConflict:
                throw MonitorAdminError.conflict(error.description, path: nil)
            case .destinationChanged:
                throw MonitorAdminError.conflict(error.description, path: "destination.schema")
            }
        } catch let error as PostgresError {
            if error.isConnectionError || error.kind == .connectionFailed || error.kind == .connectionClosed || error.kind == .poolClosed {
                throw MonitorAdminError.unavailable("PostgreSQL is unavailable: \(error.message)")
            }
            // undefined_table, invalid_schema_name: the schema was never migrated.
            if error.sqlState == "42P01" || error.sqlState == "3F000" {
                throw MonitorAdminError.unavailable("Assay's tables are missing in schema \(store.schema): run `assay migrate` first")
            }
            throw error
        }
    }
}
