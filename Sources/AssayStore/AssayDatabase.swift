import Logging
import Postgres

/// Opening Assay's database: connection settings with the schema on the search path,
/// and migrations.
public enum AssayDatabase {
    /// Connection settings whose search path is Assay's schema, so queries use bare names.
    public static func configuration(url: String, schema: SchemaName, applicationName: String = "assay") throws -> PostgresConfiguration {
        try PostgresConfiguration(url: url, applicationName: applicationName, searchPath: [schema.rawValue])
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
