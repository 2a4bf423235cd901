import ArgumentParser
import AssayStore
import Postgres

/// `assay migrate`: applies the schema migrations compiled into this binary.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade Assay's tables (safe to run from several replicas at once)."
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var log: LogOptions

    func run() async throws {
        let logger = log.bootstrap(label: "assay.migrate")
        let applied = try await AssayDatabase.migrate(url: database.databaseURL, schema: try database.schema, logger: logger)
        if applied.isEmpty {
            print("schema \(try database.schema) is up to date (version \(Migration.all.last?.version ?? 0))")
        } else {
            print("applied migrations \(applied.map(String.init).joined(separator: ", ")) to schema \(try database.schema)")
        }
    }
}
