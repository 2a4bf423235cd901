import Foundation
import LocalPostgres
import Logging
import Postgres
import Synchronization
import Testing

/// Errors thrown by test code itself, to tell them apart from the library's.
struct TestFailure: Error, Equatable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Log lines captured in memory (no global `LoggingSystem.bootstrap`).
final class CapturedLogs: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }

    func logger(label: String = "test") -> Logger {
        var logger = Logger(label: label) { _ in CapturingLogHandler(sink: self) }
        logger.logLevel = .trace
        return logger
    }
}

struct CapturingLogHandler: LogHandler {
    let sink: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        sink.append("\(event.level) \(event.message) \(merged)")
    }
}

/// Runs `body` with a fresh database and a pool on it; shuts the pool down and drops the
/// database afterwards, also when `body` throws.
func withPool<T>(
    size: Int = 1,
    name: String = "test-pool",
    applicationName: String? = nil,
    searchPath: [String]? = nil,
    logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
    _ body: (PostgresPool, TestDatabase) async throws -> T
) async throws -> T {
    try await TestDatabase.withTemporary(prefix: "pgtest") { database in
        let configuration = try PostgresConfiguration(
            url: database.url, applicationName: applicationName, searchPath: searchPath)
        let pool = try PostgresPool(configuration: configuration, size: size, name: name, logger: logger)
        do {
            let result = try await body(pool, database)
            await pool.shutdown()
            return result
        } catch {
            await pool.shutdown()
            throw error
        }
    }
}

/// Runs `body` on a connection to a fresh database (on the pool's own thread).
func withConnection<T: Sendable>(
    _ body: @escaping @Sendable (PostgresConnection) throws -> T
) async throws -> T {
    try await withPool { pool, _ in try await pool.withConnection(body) }
}

/// Fails with `TestFailure` if `operation` has not finished within `seconds`.
func withTimeout<T: Sendable>(
    seconds: Double,
    _ what: String,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw TestFailure("timed out after \(seconds) s: \(what)")
        }
        return value
    }
}

/// Polls `condition` every 10 ms until it holds; throws after `seconds`.
func waitUntil(seconds: Double = 10, _ what: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// A barrier for blocking code on the pool's threads: each party arrives and waits until
/// `parties` have arrived. Returns false on timeout.
final class Rendezvous: Sendable {
    private let arrived = Mutex(0)
    let parties: Int

    init(parties: Int) { self.parties = parties }

    func arriveAndWait(timeout seconds: Double = 15) -> Bool {
        arrived.withLock { $0 += 1 }
        let deadline = Date().addingTimeInterval(seconds)
        while arrived.withLock({ $0 }) < parties {
            if Date() > deadline { return false }
            usleep(2_000)
        }
        return true
    }
}

/// A one-shot gate that blocking code on a pool thread waits on.
final class Gate: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func open() { semaphore.signal() }
    /// Returns false on timeout.
    func wait(seconds: Double = 30) -> Bool { semaphore.wait(timeout: .now() + seconds) == .success }
}

/// A thread-safe counter of running jobs that remembers the maximum it reached.
final class ConcurrencyMeter: Sendable {
    private let state = Mutex((current: 0, maximum: 0))
    func enter() { state.withLock { $0.current += 1; $0.maximum = max($0.maximum, $0.current) } }
    func leave() { state.withLock { $0.current -= 1 } }
    var maximum: Int { state.withLock { $0.maximum } }
}

extension Error {
    var asPostgresError: PostgresError? { self as? PostgresError }
}
