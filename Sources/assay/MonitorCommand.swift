import ArgumentParser
import AssayHTTP
import AssayStore
import Foundation
import Logging
import Postgres

/// `assay monitor`: shows and changes the versioned monitor document, either directly in the
/// database (`--database-url`) or through the admin API of a running `assay serve` (`--url`).
///
/// The work is done by AssayHTTP (``DatabaseMonitorAdmin``, ``MonitorAdminClient``,
/// ``MonitorFormatting``); this file only parses options and prints.
struct MonitorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Show or change the monitor document, in the database or through the admin API.",
        discussion: """
            Every change writes version n+1 of the whole document in one transaction; it applies from the \
            next window boundary. destination.schema cannot change once set.

            With --url, changes need the server's token in ASSAY_ADMIN_TOKEN.
            """,
        subcommands: [Get.self, Update.self, Versions.self, Pause.self, Resume.self]
    )

    /// `assay monitor get`
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the current monitor: version, effective time, scorers with their rates and filters.")

        @OptionGroup var target: MonitorTargetOptions
        @OptionGroup var log: LogOptions

        @Flag(help: "Print the version as JSON (the API's GET /api/monitor body).")
        var json = false

        func run() async throws {
            let current = try await target.withAdmin(log: log) { try await $0.current() }
            print(json ? MonitorJSON.version(current).serialized() : MonitorFormatting.human(current))
        }
    }

    /// `assay monitor update`
    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the monitor document with a file (validated first), as a new version.")

        @OptionGroup var target: MonitorTargetOptions
        @OptionGroup var log: LogOptions

        @Option(help: ArgumentHelp("The whole monitor document (JSON).", valueName: "monitor.json"))
        var file: String

        @Option(name: .customLong("expected-version"), help: "Refuse the update unless this is the current version (optimistic concurrency).")
        var expectedVersion: Int64?

        @Flag(help: "Print the new version as JSON.")
        var json = false

        func validate() throws {
            if let expectedVersion, expectedVersion < 1 { throw ValidationError("--expected-version must be at least 1.") }
        }

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw MonitorCommandError("cannot read the monitor file \(file)")
            }
            let document = Array(data)
            do {
                _ = try MonitorDocument.validate(document)
            } catch {
                throw MonitorCommandError("\(file): \(error)")
            }
            let write = try await target.withAdmin(log: log) { try await $0.update(document: document, expectedVersion: expectedVersion) }
            print(json ? MonitorJSON.version(write.version).serialized() : MonitorFormatting.human(write, action: "update"))
        }
    }

    /// `assay monitor versions`
    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the versions of the monitor document, newest first.")

        @OptionGroup var target: MonitorTargetOptions
        @OptionGroup var log: LogOptions

        @Option(help: "How many versions to list (1–1000).")
        var limit = 20

        @Flag(help: "Print the list as JSON (the API's GET /api/monitor/versions body).")
        var json = false

        func validate() throws {
            guard (1...1000).contains(limit) else { throw ValidationError("--limit must be between 1 and 1000.") }
        }

        func run() async throws {
            let limit = self.limit
            let versions = try await target.withAdmin(log: log) { try await $0.versions(limit: limit) }
            print(json ? MonitorJSON.versions(versions).serialized() : MonitorFormatting.human(versions))
        }
    }

    /// `assay monitor pause`
    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop scoring (traces are still stored): writes a version with paused: true.")

        @OptionGroup var change: MonitorPauseOptions

        func run() async throws { try await change.run(paused: true) }
    }

    /// `assay monitor resume`
    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume scoring: writes a version with paused: false.")

        @OptionGroup var change: MonitorPauseOptions

        func run() async throws { try await change.run(paused: false) }
    }
}

/// The options of `pause` and `resume`.
struct MonitorPauseOptions: ParsableArguments {
    @OptionGroup var target: MonitorTargetOptions
    @OptionGroup var log: LogOptions

    @Option(name: .customLong("expected-version"), help: "Refuse unless this is the current version.")
    var expectedVersion: Int64?

    @Flag(help: "Print the version in force as JSON.")
    var json = false

    func validate() throws {
        if let expectedVersion, expectedVersion < 1 { throw ValidationError("--expected-version must be at least 1.") }
    }

    func run(paused: Bool) async throws {
        let expectedVersion = self.expectedVersion
        let write = try await target.withAdmin(log: log) { try await $0.setPaused(paused, expectedVersion: expectedVersion) }
        print(json ? MonitorJSON.version(write.version).serialized() : MonitorFormatting.human(write, action: paused ? "pause" : "resume"))
    }
}

/// Where the monitor is: the admin API (`--url`) or the database (`--database-url`, env
/// `ASSAY_DATABASE_URL` or `DATABASE_URL`, with `--schema`).
struct MonitorTargetOptions: ParsableArguments {
    @Option(name: .customLong("url"), help: ArgumentHelp("The admin API of a running `assay serve`, such as http://127.0.0.1:8080. The token comes from ASSAY_ADMIN_TOKEN.", valueName: "url"))
    var apiURL: String?

    @Option(name: .customLong("database-url"), help: ArgumentHelp("PostgreSQL URL, when not using --url. Env: ASSAY_DATABASE_URL, then DATABASE_URL.", valueName: "url"))
    var databaseURLFlag: String?

    @Option(name: .customLong("schema"), help: "PostgreSQL schema of Assay's tables (with the database). Env: ASSAY_SCHEMA.")
    var schemaFlag: String?

    var databaseURL: String? { databaseURLFlag ?? environment("ASSAY_DATABASE_URL") ?? environment("DATABASE_URL") }

    func validate() throws {
        if apiURL != nil, databaseURLFlag != nil || schemaFlag != nil {
            throw ValidationError("Pass either --url (the admin API) or --database-url/--schema (the database), not both.")
        }
        if let apiURL {
            do { _ = try MonitorAdminClient.baseURL(parsing: apiURL) } catch { throw ValidationError("\(error)") }
            return
        }
        guard databaseURL != nil else {
            throw ValidationError("Say where the monitor is: --url http://127.0.0.1:8080 (the admin API) or --database-url (or set ASSAY_DATABASE_URL).")
        }
        do { _ = try SchemaName(schemaFlag ?? environment("ASSAY_SCHEMA") ?? "assay") } catch { throw ValidationError("\(error)") }
    }

    /// Runs `body` against the API or the database (closing the database afterwards).
    func withAdmin<T: Sendable>(log: LogOptions, _ body: (any MonitorAdmin) async throws -> T) async throws -> T {
        if let apiURL {
            let client = MonitorAdminClient(baseURL: try MonitorAdminClient.baseURL(parsing: apiURL), token: environment("ASSAY_ADMIN_TOKEN"))
            return try await body(client)
        }
        guard let databaseURL else { throw MonitorCommandError("no database URL: pass --database-url or --url") }
        let logger = log.bootstrap(label: "assay.monitor")
        let schema = try SchemaName(schemaFlag ?? environment("ASSAY_SCHEMA") ?? "assay")
        let pool = try PostgresPool(
            configuration: AssayDatabase.configuration(url: databaseURL, schema: schema, applicationName: "assay-monitor"),
            size: 1, name: "monitor", logger: logger)
        do {
            let result = try await body(DatabaseMonitorAdmin(pool: pool, schema: schema, note: "cli"))
            await pool.shutdown()
            return result
        } catch {
            await pool.shutdown()
            throw error
        }
    }
}

/// A failure of `assay monitor`, printed as it is.
struct MonitorCommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
