import AssayCore
import AssayPipeline
import AssayStore
import AssayTestSupport
import Foundation
import Kafka
import LocalPostgres
import Logging
import Postgres
import ServiceLifecycle
import Synchronization
import Testing

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

/// One integration environment: a fresh database migrated to the `assay` schema, a pool
/// on it, and a fresh mock Kafka cluster with a traces topic. Torn down afterwards.
struct Environment: Sendable {
    let database: TestDatabase
    let pool: PostgresPool
    let cluster: MockCluster
    let topic: String
    let partitions: Int

    static func with<T>(partitions: Int, brokers: Int = 1, _ body: (Environment) async throws -> T) async throws -> T {
        try await TestDatabase.withTemporary(prefix: "assay_it", logger: quietLogger) { database in
            try await AssayDatabase.migrate(url: database.url, schema: .default, logger: quietLogger)
            let pool = try PostgresPool(configuration: AssayDatabase.configuration(url: database.url, schema: .default), size: 4, name: "it", logger: quietLogger)
            let cluster = try MockCluster(brokers: brokers, logger: quietLogger)
            let environment = Environment(database: database, pool: pool, cluster: cluster, topic: "traces", partitions: partitions)
            do {
                try cluster.createTopic("traces", partitions: partitions, replicationFactor: brokers)
                let result = try await body(environment)
                await pool.shutdown()
                cluster.shutdown()
                return result
            } catch {
                await pool.shutdown()
                cluster.shutdown()
                throw error
            }
        }
    }

    func ingestConfiguration(replica: String, group: String = "assay") -> IngestConfiguration {
        var configuration = IngestConfiguration(brokers: cluster.bootstrapServers)
        configuration.groupID = group
        configuration.tracesTopic = topic
        configuration.replicaName = replica
        configuration.batchSize = 500
        configuration.sessionTimeout = .seconds(6)
        configuration.heartbeatInterval = .milliseconds(500)
        return configuration
    }

    /// Publishes messages and waits until the broker has every one.
    func publish(_ messages: [ProducerMessage], maxMessageBytes: Int = 1_000_000) async throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
        configuration.maxMessageBytes = maxMessageBytes
        let producer = try KafkaProducer(configuration: configuration, logger: quietLogger)
        let failures = Mutex(0)
        for message in messages {
            try await producer.enqueueWaitingForRoom(message) { result in
                if case .failure = result { failures.withLock { $0 += 1 } }
            }
        }
        try await producer.flush(timeout: .seconds(60))
        await producer.close()
        let failed = failures.withLock { $0 }
        guard failed == 0 else { throw TestFailure("\(failed) messages were not delivered") }
    }

    /// Polls a query until `done` holds for its result, or fails after `timeout`.
    func waitUntil<T: Sendable>(
        _ what: String, timeout: Duration = .seconds(120),
        query: @escaping @Sendable (PostgresConnection) throws -> T, done: (T) -> Bool
    ) async throws -> T {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            let value = try await pool.withConnection(query)
            if done(value) { return value }
            if ContinuousClock.now > deadline { throw TestFailure("timed out waiting for \(what); last value: \(value)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func count(_ table: String) async throws -> Int {
        // `table` is one of our own table names, never input.
        try await pool.withConnection { try $0.query("SELECT count(*) FROM \(table)")[0].int(0) }
    }

    /// The end offset (high watermark) of every partition.
    func endOffsets() async throws -> [Int32: Int64] {
        let consumer = try KafkaConsumer(configuration: .init(bootstrapServers: cluster.bootstrapServers, groupID: "offset-reader"), listener: NoListener(), logger: quietLogger)
        var result: [Int32: Int64] = [:]
        for partition in 0..<Int32(partitions) {
            result[partition] = try await consumer.watermarks(TopicPartition(topic: topic, partition: partition)).high
        }
        await consumer.close()
        return result
    }

    /// The group's committed offsets in Kafka.
    func kafkaCommittedOffsets(group: String) async throws -> [Int32: Int64?] {
        let consumer = try KafkaConsumer(configuration: .init(bootstrapServers: cluster.bootstrapServers, groupID: group), listener: NoListener(), logger: quietLogger)
        let partitions = (0..<Int32(partitions)).map { TopicPartition(topic: topic, partition: $0) }
        let committed = try await consumer.committed(partitions)
        await consumer.close()
        return Dictionary(uniqueKeysWithValues: committed.map { ($0.key.partition, $0.value) })
    }

    /// consumer_offsets rows of a group.
    func storedOffsets(group: String) async throws -> [Int32: Int64] {
        try await pool.withConnection { connection in
            var result: [Int32: Int64] = [:]
            for row in try connection.query("SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = 'traces'", [.text(group)]) {
                result[Int32(try row.int(0))] = try row.int64(1)
            }
            return result
        }
    }

    /// Every stored trace id with its delivery count.
    func storedTraceIDs() async throws -> [String: Int] {
        try await pool.withConnection { connection in
            var result: [String: Int] = [:]
            for row in try connection.query("SELECT trace_id, deliveries FROM traces") {
                result[try row.string(0)] = try row.int(1)
            }
            return result
        }
    }
}

struct NoListener: ConsumerRebalanceListener {
    func startingOffsets(for partitions: [TopicPartition]) throws -> [TopicPartition: KafkaOffset] { [:] }
    func partitionsRevoked(_ partitions: [TopicPartition]) {}
}

/// Generated traces as Kafka messages keyed by trace id.
func syntheticMessages(count: Int, seed: UInt64, topic: String = "traces") -> (messages: [ProducerMessage], ids: Set<String>) {
    var generator = SyntheticTraceGenerator(seed: seed, startNanos: 1_770_000_000_000_000_000, spacingNanos: 10_000_000)
    var messages: [ProducerMessage] = []
    var ids = Set<String>()
    for _ in 0..<count {
        let trace = generator.next()
        ids.insert(trace.traceID)
        messages.append(ProducerMessage(topic: topic, key: Array(trace.traceID.utf8), value: trace.json))
    }
    return (messages, ids)
}

/// Ingest replicas running in a ServiceGroup, shut down gracefully at the end.
final class RunningReplicas: Sendable {
    let services: [IngestService]
    private let group: ServiceGroup
    private let task: Task<Void, Error>

    init(_ configurations: [IngestConfiguration], pool: PostgresPool) {
        services = configurations.map { IngestService(configuration: $0, pool: pool, logger: quietLogger) }
        group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: quietLogger))
        let group = self.group
        task = Task { try await group.run() }
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

/// Locates the `assay` executable built next to the test bundle.
func assayExecutable() throws -> URL {
    try builtExecutable("assay")
}

/// An executable product of this package, built next to the test bundle.
func builtExecutable(_ name: String) throws -> URL {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [directory, directory.deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    throw TestFailure("the \(name) executable was not found next to \(CommandLine.arguments[0]); run `swift build` (make test does) before the tests")
}

/// An `assay serve` child process.
final class ServeProcess: @unchecked Sendable {
    // @unchecked: `process` is only started and signalled through its thread-safe API.
    let process = Process()
    let stderrURL: URL

    init(environment: Environment, replica: String, extraArguments: [String] = []) throws {
        process.executableURL = try assayExecutable()
        process.arguments = [
            "serve", "--brokers", environment.cluster.bootstrapServers, "--database-url", environment.database.url,
            "--replica-name", replica, "--session-timeout-ms", "6000", "--batch-size", "200", "--log-level", "info", "--http", "127.0.0.1:0",
        ] + extraArguments
        stderrURL = FileManager.default.temporaryDirectory.appendingPathComponent("assay-serve-\(replica)-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: stderrURL)
        process.standardError = handle
        process.standardOutput = handle
        var environmentVariables = ProcessInfo.processInfo.environment
        environmentVariables["DATABASE_URL"] = nil
        process.environment = environmentVariables
        try process.run()
    }

    /// SIGKILL, then waits for the exit (off the cooperative pool: see `Process.exited()`).
    func kill() async {
        Foundation.kill(process.processIdentifier, SIGKILL)
        _ = await process.exited()
    }

    /// SIGTERM, then waits for the exit, which may take the replica's whole shutdown deadline.
    func terminate() async {
        process.terminate()
        _ = await process.exited()
    }

    /// Waits for the replica to exit on its own (a debug crash flag).
    func exited() async {
        _ = await process.exited()
    }

    var log: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: stderrURL)
    }
}

/// Bytes of a test fixture.
func fixture(_ name: String) throws -> [UInt8] {
    guard let url = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil),
          let data = FileManager.default.contents(atPath: url.path) else {
        throw TestFailure("missing fixture \(name)")
    }
    return Array(data)
}
