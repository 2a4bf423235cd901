import AssayStore
import Logging
import Postgres

/// What `assay windows` and `assay trace` run against a database: one short-lived connection,
/// a ``DashboardStore`` query, and errors worth printing.
public enum DashboardReports {
    /// The newest `last` closed windows (newest first) with their summaries.
    public static func windows(databaseURL: String, schema: SchemaName, last: Int, logger: Logger) async throws -> [DashboardWindow] {
        let store = DashboardStore(schema: schema)
        return try await withConnection(databaseURL: databaseURL, schema: schema, logger: logger) { try store.windows(limit: last, on: $0) }
    }

    /// One stored trace; throws ``ReportError/notFound(_:)`` when there is none with this id.
    public static func trace(databaseURL: String, schema: SchemaName, id: String, maxSpans: Int, logger: Logger) async throws -> TraceDetail {
        let store = DashboardStore(schema: schema)
        let trace = try await withConnection(databaseURL: databaseURL, schema: schema, logger: logger) {
            try store.trace(id: id, maxSpans: maxSpans, on: $0)
        }
        guard let trace else { throw ReportError.notFound("no stored trace has the id \(ReportFormatting.line(id)) in schema \(schema)") }
        return trace
    }

    static func withConnection<T: Sendable>(databaseURL: String, schema: SchemaName, logger: Logger,
                                            _ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let pool = try PostgresPool(
            configuration: AssayDatabase.configuration(url: databaseURL, schema: schema, applicationName: "assay-report"),
            size: 1, name: "report", logger: logger)
        do {
            let result = try await pool.withConnection(body)
            await pool.shutdown()
            return result
        } catch let error as PostgresError where error.sqlState == "42P01" || error.sqlState == "3F000" {
            await pool.shutdown()
            throw ReportError.notMigrated("Assay's tables are missing in schema \(schema): run `assay migrate` (or pass --schema)")
        } catch {
            await pool.shutdown()
            throw error
        }
    }
}

/// A report that cannot be produced, said plainly.
public enum ReportError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(String)
    case notMigrated(String)

    public var description: String {
        switch self {
        case .notFound(let message), .notMigrated(let message): return message
        }
    }
}
