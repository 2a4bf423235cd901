import AssayCore
import AssayStore
import Foundation
import LocalPostgres
import Logging
import Postgres
import Synchronization
import Testing
@testable import AssayHTTP

/// A failure raised by test code itself.
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Logs for tests: silent unless ASSAY_TEST_LOG is set (then to stderr).
let quietLogger: Logger = {
    if ProcessInfo.processInfo.environment["ASSAY_TEST_LOG"] != nil {
        var logger = Logger(label: "test") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .debug
        return logger
    }
    return Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
}()

let testToken = "test-admin-token-0123456789"

/// A valid monitor document: two code scorers and an offline judge.
let validDocument = """
    {"name": "prod-chatbot", "destination": {"schema": "assay"}, "window": "1m", "allowed_lateness": "10s",
     "judge": {"kind": "offline"},
     "scorers": [
       {"name": "no_pii", "kind": "pii", "sample_rate": 0.4, "filter": "tags.env = 'prod'"},
       {"name": "fast_enough", "kind": "latency", "params": {"max_ms": 5000}}
     ]}
    """

/// `validDocument` with its name changed (a different document, same destination).
func document(named name: String, schema: String = "assay", paused: Bool = false) -> String {
    validDocument
        .replacingOccurrences(of: "\"prod-chatbot\"", with: "\"\(name)\"")
        .replacingOccurrences(of: "\"schema\": \"assay\"", with: "\"schema\": \"\(schema)\"")
        .replacingOccurrences(of: "\"allowed_lateness\"", with: "\"paused\": \(paused), \"allowed_lateness\"")
}

/// A running admin API on a fresh, migrated database.
struct APIHarness: Sendable {
    let port: Int
    let baseURL: URL
    let pool: PostgresPool
    let database: TestDatabase

    /// A client sending `token` (nil: no Authorization header).
    func client(token: String?) -> MonitorAdminClient {
        MonitorAdminClient(baseURL: baseURL, token: token, timeoutSeconds: 30)
    }

    /// The database side, as `assay monitor --database-url` uses it.
    func databaseAdmin(note: String = "cli") -> DatabaseMonitorAdmin {
        DatabaseMonitorAdmin(pool: pool, schema: .default, note: note)
    }

    /// How many versions are stored.
    func storedVersions() async throws -> Int {
        try await pool.withConnection { try MonitorStore(schema: .default).versions(limit: 1000, on: $0).count }
    }
}

/// Runs `body` against an ``AdminServer`` on `host`, port 0, over a fresh database; stops it after.
func withAPI<T: Sendable>(
    token: String? = testToken,
    host: String = "127.0.0.1",
    maxBodyBytes: Int = AdminServer.Configuration.defaultMaxBodyBytes,
    readiness: @escaping AdminServer.Readiness = { ["postgres": nil] },
    logger: Logger = quietLogger,
    _ body: (APIHarness) async throws -> T
) async throws -> T {
    try await TestDatabase.withTemporary(prefix: "assay_http", logger: quietLogger) { database in
        _ = try await AssayDatabase.migrate(url: database.url, schema: .default, logger: quietLogger)
        let pool = try PostgresPool(
            configuration: AssayDatabase.configuration(url: database.url, schema: .default), size: 2, name: "http-test", logger: quietLogger)
        return try await serving(pool: pool, database: database, body) { onServerRunning in
            AdminServer(
                configuration: .init(host: host, port: 0, adminToken: token, maxBodyBytes: maxBodyBytes),
                pool: pool, schema: .default, readiness: readiness, logger: logger, onServerRunning: onServerRunning)
        }
    }
}

extension MonitorAdminClient.Exchange {
    /// The body parsed as JSON.
    func parsed() throws -> JSONValue {
        try JSONParser().parse(body)
    }

    var errorMessage: String? { (try? parsed())?["error"]?.stringValue }
    var errorPath: String? { (try? parsed())?["path"]?.stringValue }
}

/// The error `body` throws, or nil when it throws none.
func adminError(_ body: () async throws -> Void) async -> MonitorAdminError? {
    do {
        try await body()
        return nil
    } catch let error as MonitorAdminError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

/// Every log record, rendered as one line with its metadata.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var records: [String] { lines.withLock { $0 } }

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    func logger(label: String = "test.capture") -> Logger {
        Logger(label: label) { label in CapturingLogHandler(label: label, capture: self) }
    }
}

struct CapturingLogHandler: LogHandler {
    let label: String
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append("\(event.level) \(event.message) \(rendered)")
    }
}

/// Starts the server `makeServer` builds (port 0; it must call the given closure once
/// listening), runs `body` against it, then stops it and shuts `pool` down, also on error.
func serving<T: Sendable>(
    pool: PostgresPool, database: TestDatabase,
    _ body: (APIHarness) async throws -> T,
    makeServer: (_ onServerRunning: @escaping @Sendable (Int) async -> Void) -> AdminServer
) async throws -> T {
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let server = makeServer { port in
        continuation.yield(port)
        continuation.finish()
    }
    let serverTask = Task {
        defer { continuation.finish() }
        try await server.run()
    }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else {
        try await serverTask.value
        await pool.shutdown()
        throw TestFailure("the admin server stopped before listening")
    }
    do {
        let harness = APIHarness(
            port: port, baseURL: try MonitorAdminClient.baseURL(parsing: "http://127.0.0.1:\(port)"), pool: pool, database: database)
        let result = try await body(harness)
        serverTask.cancel()
        _ = try? await serverTask.value
        await pool.shutdown()
        return result
    } catch {
        serverTask.cancel()
        _ = try? await serverTask.value
        await pool.shutdown()
        throw error
    }
}
