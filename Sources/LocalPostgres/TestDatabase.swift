import DedicatedThreads
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A database created for one test (or one demo run) and dropped afterwards.
///
/// The admin URL comes from `DATABASE_URL` when it is set; otherwise from a throwaway
/// cluster that is started once per process (``LocalPostgresShared``) and stopped when the
/// process exits. Each database gets a unique name from a prefix and a random suffix.
///
/// ```swift
/// try await TestDatabase.withTemporary(prefix: "store") { db in
///     let pool = try PostgresPool(configuration: .init(url: db.url), size: 2)
///     ...
/// }
/// ```
public struct TestDatabase: Sendable {
    /// The database name.
    public let name: String
    /// URL of the new database (the admin URL with the path replaced).
    public let url: String
    /// The URL it was created through; it may carry a password, so do not log it.
    public let adminURL: String

    /// Creates a database named `PREFIX_<random>` through `adminURL` (default:
    /// ``LocalPostgresShared/adminURL(logger:)``). Blocks on `psql`: call it on a thread of
    /// your own, or use ``withTemporary(prefix:adminURL:logger:_:)`` from async code.
    public static func create(
        prefix: String = "assay_test",
        adminURL: String? = nil,
        logger: Logger = Logger(label: "assay.local-postgres")
    ) throws -> TestDatabase {
        let admin = try adminURL ?? LocalPostgresShared.adminURL(logger: logger)
        let suffix = UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        let name = "\(prefix.prefix(40))_\(suffix)"
        let url = try DatabaseAdmin.createDatabase(name: name, adminURL: admin, psql: try DatabaseAdmin.findPSQL())
        logger.debug("created test database", metadata: ["postgres.database": "\(name)"])
        return TestDatabase(name: name, url: url, adminURL: admin)
    }

    /// Drops the database, disconnecting any sessions still using it.
    public func drop() throws {
        try DatabaseAdmin.dropDatabase(name: name, adminURL: adminURL, psql: try DatabaseAdmin.findPSQL())
    }

    /// Creates a database, runs `body` with it and drops it afterwards — also when `body`
    /// throws. The blocking steps (starting the shared cluster, `psql`) run on a thread of
    /// their own, not on the cooperative pool.
    public static func withTemporary<T>(
        prefix: String = "assay_test",
        adminURL: String? = nil,
        logger: Logger = Logger(label: "assay.local-postgres"),
        _ body: (TestDatabase) async throws -> T
    ) async throws -> T {
        let database = try await runOnOwnThread(name: "local-postgres") {
            try TestDatabase.create(prefix: prefix, adminURL: adminURL, logger: logger)
        }
        let result: T
        do {
            result = try await body(database)
        } catch {
            try? await runOnOwnThread(name: "local-postgres") { try database.drop() }
            throw error
        }
        try await runOnOwnThread(name: "local-postgres") { try database.drop() }
        return result
    }
}

/// The process-wide throwaway cluster shared by tests.
public enum LocalPostgresShared {
    /// `DATABASE_URL` when set (and non-empty); otherwise the URL of a local cluster started
    /// on first use and stopped at process exit. Blocks while the cluster starts.
    ///
    /// - Throws: ``LocalPostgresError`` when the cluster cannot start; the same error is
    ///   reported to every later caller rather than retrying.
    public static func adminURL(logger: Logger = Logger(label: "assay.local-postgres")) throws -> String {
        if let configured = ProcessInfo.processInfo.environment["DATABASE_URL"], !configured.isEmpty {
            return configured
        }
        return try cluster(logger: logger).url
    }

    /// The shared local cluster, started on first use. Ignores `DATABASE_URL`.
    public static func cluster(logger: Logger = Logger(label: "assay.local-postgres")) throws -> LocalPostgresCluster {
        try sharedCluster.withLock { state in
            switch state {
            case .running(let cluster):
                return cluster
            case .failed(let error):
                throw error
            case .notStarted:
                do {
                    let cluster = try LocalPostgresCluster.start(logger: logger)
                    state = .running(cluster)
                    atexit { stopSharedCluster() }
                    return cluster
                } catch let error as LocalPostgresError {
                    state = .failed(error)
                    throw error
                } catch {
                    let wrapped = LocalPostgresError(message: "\(error)", output: nil)
                    state = .failed(wrapped)
                    throw wrapped
                }
            case .stopped:
                throw LocalPostgresError(message: "the shared local PostgreSQL cluster was already stopped", output: nil)
            }
        }
    }
}

private enum SharedClusterState: Sendable {
    case notStarted
    case running(LocalPostgresCluster)
    case failed(LocalPostgresError)
    case stopped
}

private let sharedCluster = Mutex<SharedClusterState>(.notStarted)

private func stopSharedCluster() {
    let cluster = sharedCluster.withLock { state -> LocalPostgresCluster? in
        guard case .running(let cluster) = state else { return nil }
        state = .stopped
        return cluster
    }
    cluster?.stop()
}

/// `CREATE DATABASE` / `DROP DATABASE` through `psql`.
///
/// This module deliberately does not depend on the `Postgres` module, so that the tests of
/// that module can rely on it without a cycle in what is under test. The database name
/// reaches the server only through psql's `:"name"` variable interpolation, which quotes it
/// as an identifier (psql uses `PQescapeIdentifier` for it); it is never spliced into SQL.
enum DatabaseAdmin {
    static func createDatabase(name: String, adminURL: String, psql: String) throws -> String {
        try validate(name)
        let target = try url(adminURL, withDatabase: name)
        try run(psql: psql, adminURL: adminURL, sql: "CREATE DATABASE :\"dbname\";\n", name: name, what: "CREATE DATABASE")
        return target
    }

    static func dropDatabase(name: String, adminURL: String, psql: String) throws {
        try validate(name)
        try run(
            psql: psql, adminURL: adminURL, sql: "DROP DATABASE IF EXISTS :\"dbname\" WITH (FORCE);\n",
            name: name, what: "DROP DATABASE")
    }

    /// `psql` next to the server binaries if there are any, else the first one on `PATH`.
    static func findPSQL() throws -> String {
        let fileManager = FileManager.default
        if let bin = try? LocalPostgresCluster.findBinDirectory(), fileManager.isExecutableFile(atPath: bin + "/psql") {
            return bin + "/psql"
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where fileManager.isExecutableFile(atPath: "\(directory)/psql") {
            return "\(directory)/psql"
        }
        throw LocalPostgresError(message: "psql not found (install postgresql-client or set ASSAY_PG_BINDIR)", output: nil)
    }

    private static func validate(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 63, !name.utf8.contains(0) else {
            throw LocalPostgresError(message: "database names must be 1 to 63 bytes long", output: nil)
        }
    }

    /// `adminURL` with its path replaced by `/name`.
    static func url(_ adminURL: String, withDatabase name: String) throws -> String {
        guard var components = URLComponents(string: adminURL) else {
            throw LocalPostgresError(message: "cannot parse the admin database URL", output: nil)
        }
        components.path = "/" + name
        guard let result = components.string else {
            throw LocalPostgresError(message: "cannot build a URL for database \(name)", output: nil)
        }
        return result
    }

    /// Runs `sql` (which refers to the name as `:"dbname"`) with psql. A password in the
    /// admin URL is moved to `PGPASSWORD`, so it appears neither on the command line nor in
    /// error messages.
    private static func run(psql: String, adminURL: String, sql: String, name: String, what: String) throws {
        var environment: [String: String] = [:]
        var connectURL = adminURL
        if var components = URLComponents(string: adminURL), let password = components.password {
            environment["PGPASSWORD"] = password
            components.password = nil
            connectURL = components.string ?? adminURL
        }
        let arguments = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "dbname=\(name)", "-d", connectURL]
        let result = try CommandRunner.run(psql, arguments, environment: environment, input: sql)
        guard result.status == 0 else {
            throw LocalPostgresError(
                message: "\(what) \(name) failed (psql exit status \(result.status))",
                output: result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}
