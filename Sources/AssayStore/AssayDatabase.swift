import Logging
import Postgres

/// Opening Assay's database: connection settings with the schema on the search path,
/// and migrations.
public enum AssayDatabase {
    /// Statements each connection keeps prepared, unless configured otherwise
    /// (`--database-statement-cache`, `ASSAY_DATABASE_STATEMENT_CACHE`).
    public static let defaultStatementCache = 100

    /// Connection settings whose search path is Assay's schema, so queries use bare names.
    /// `statementCache`: statements each connection keeps prepared (0: none, for a pooler in
    /// transaction mode).
    public static func configuration(url: String, schema: SchemaName, applicationName: String = "assay",
                                     statementCache: Int = defaultStatementCache) throws -> PostgresConfiguration {
        try PostgresConfiguration(url: url, applicationName: applicationName, searchPath: [schema.rawValue],
                                  statementCacheCapacity: statementCache)
    }

    /// Applies pending migrations over a short-lived connection; returns the versions applied.
    public static func migrate(url: String, schema: SchemaName, logger: Logger) async throws -> [Int] {
        let configuration = try PostgresConfiguration(url: url, applicationName: "assay-migrate")
        let pool = try PostgresPool(configuration: configuration, size: 1, name: "migrate", logger: logger)
        let migrator = Migrator(schema: schema)
        do {
            let applied = try await pool.withConnection { connection in
                try migrator.migrate(on: connection, logger: logger)
            }
            await pool.shutdown()
            return applied
        } catch {
            await pool.shutdown()
            throw error
        }
    }
}
