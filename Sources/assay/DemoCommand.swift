import ArgumentParser
import AssayCore
import AssayPipeline
import AssayStore
import DedicatedThreads
import Foundation
import Kafka
import LocalPostgres
import Logging
import Postgres
import ServiceLifecycle
import Synchronization

/// `assay demo`: the whole pipeline on embedded defaults, on one machine.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run Assay end to end: mock Kafka, a local PostgreSQL, generated traffic, several replicas.",
        discussion: """
            Uses DATABASE_URL (or --database-url) when set, in schema assay_demo (dropped and recreated);
            otherwise starts a throwaway PostgreSQL cluster and removes it at exit.
            """
    )

    @Option(help: "Traces to generate.")
    var traces = 2000

    @Option(help: "Partitions of the traces topic.")
    var partitions = 8

    @Option(help: "Ingest replicas in one consumer group.")
    var replicas = 2

    @Option(help: "Seed for the generated traffic.")
    var seed: UInt64 = 42

    @Option(name: .customLong("database-url"), help: "Use this PostgreSQL instead of a throwaway cluster. Env: ASSAY_DATABASE_URL, DATABASE_URL.")
    var databaseURLFlag: String?

    @Option(name: .customLong("timeout-seconds"), help: "Give up if ingest has not finished by then.")
    var timeoutSeconds = 180

    @OptionGroup var log: LogOptions

    func validate() throws {
        guard (1...200_000).contains(traces) else { throw ValidationError("--traces must be between 1 and 200000.") }
        guard (1...64).contains(partitions) else { throw ValidationError("--partitions must be between 1 and 64.") }
        guard (1...8).contains(replicas) else { throw ValidationError("--replicas must be between 1 and 8.") }
    }

    func run() async throws {
        var log = self.log
        if log.levelFlag == nil && environment("ASSAY_LOG_LEVEL") == nil { log.levelFlag = "warning" }
        let logger = log.bootstrap(label: "assay.demo")
        let schema = try SchemaName("assay_demo")

        print("Assay demo")
        let database = try await DemoDatabase.open(url: databaseURLFlag ?? environment("ASSAY_DATABASE_URL") ?? environment("DATABASE_URL"), schema: schema, logger: logger)
        print("  PostgreSQL: \(database.description)")
        let cluster: MockCluster
        do {
            cluster = try MockCluster(brokers: 3, logger: logger)
            try cluster.createTopic("traces", partitions: partitions, replicationFactor: 3)
        } catch {
            await database.close()
            throw error
        }
        print("  Kafka:      mock cluster, 3 brokers at \(cluster.bootstrapServers), topic traces with \(partitions) partitions")
        print("  Replicas:   \(replicas) in consumer group assay-demo")

        let outcome: DemoOutcome
        do {
            try await AssayDatabase.migrate(url: database.url, schema: schema, logger: logger)
            let pool = try PostgresPool(configuration: AssayDatabase.configuration(url: database.url, schema: schema, applicationName: "assay-demo"),
                                        size: 2 + replicas, name: "pg", logger: logger)
            var services: [IngestService] = []
            for index in 1...replicas {
                var configuration = IngestConfiguration(brokers: cluster.bootstrapServers)
                configuration.groupID = "assay-demo"
                configuration.replicaName = "replica-\(index)"
                configuration.sessionTimeout = .seconds(6)
                configuration.heartbeatInterval = .milliseconds(500)
                services.append(IngestService(configuration: configuration, pool: pool, logger: logger))
            }
            let driver = DemoDriver(
                traces: traces, partitions: partitions, seed: seed, brokers: cluster.bootstrapServers,
                pool: pool, replicas: services, timeout: .seconds(timeoutSeconds), logger: logger)
            var configurations = services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
            configurations.append(.init(service: driver, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
            let group = ServiceGroup(configuration: .init(services: configurations, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            do {
                try await group.run()
            } catch {
                logger.error("demo failed", metadata: ["error": "\(error)"])
            }
            outcome = driver.outcome
            await pool.shutdown()
        } catch {
            cluster.shutdown()
            await database.close()
            throw error
        }
        cluster.shutdown()
        await database.close()
        guard outcome == .succeeded else {
            print("demo did not finish: \(outcome)")
            throw ExitCode(1)
        }
    }
}

/// How the demo ended.
enum DemoOutcome: Equatable, CustomStringConvertible {
    case running
    case succeeded
    case timedOut
    case interrupted
    case failed(String)

    var description: String {
        switch self {
        case .running: return "still running"
        case .succeeded: return "succeeded"
        case .timedOut: return "timed out waiting for ingest"
        case .interrupted: return "interrupted"
        case .failed(let reason): return "failed: \(reason)"
        }
    }
}

/// The PostgreSQL the demo writes to, and how to let go of it.
struct DemoDatabase: Sendable, CustomStringConvertible {
    let url: String
    let description: String
    private let cluster: LocalPostgresCluster?

    static func open(url: String?, schema: SchemaName, logger: Logger) async throws -> DemoDatabase {
        if let url {
            let configuration = try PostgresConfiguration(url: url, applicationName: "assay-demo")
            let pool = try PostgresPool(configuration: configuration, size: 1, name: "demo-reset", logger: logger)
            do {
                try await pool.withConnection { connection in
                    let quoted = try connection.escapeIdentifier(schema.rawValue)
                    try connection.executeScript("DROP SCHEMA IF EXISTS \(quoted) CASCADE")
                }
            } catch {
                await pool.shutdown()
                throw error
            }
            await pool.shutdown()
            return DemoDatabase(url: url, description: "\(configuration.redactedURL), schema \(schema) (recreated)", cluster: nil)
        }
        let thread = DedicatedThread(name: "local-postgres")
        defer { thread.shutdown() }
        let cluster = try await thread.run { try LocalPostgresCluster.start(logger: logger) }
        return DemoDatabase(url: cluster.url, description: "throwaway cluster on 127.0.0.1:\(cluster.port) (removed at exit)", cluster: cluster)
    }

    func close() async {
        guard let cluster else { return }
        let thread = DedicatedThread(name: "local-postgres")
        _ = try? await thread.run { cluster.stop() }
        thread.shutdown()
    }
}

/// Publishes the traffic, waits for the replicas to store it, and prints the summary.
final class DemoDriver: Service, Sendable {
    let traces: Int
    let partitions: Int
    let seed: UInt64
    let brokers: String
    let pool: PostgresPool
    let replicas: [IngestService]
    let timeout: Duration
    let logger: Logger
    private let result = Mutex(DemoOutcome.running)

    init(traces: Int, partitions: Int, seed: UInt64, brokers: String, pool: PostgresPool, replicas: [IngestService], timeout: Duration, logger: Logger) {
        self.traces = traces
        self.partitions = partitions
        self.seed = seed
        self.brokers = brokers
        self.pool = pool
        self.replicas = replicas
        self.timeout = timeout
        self.logger = logger
    }

    var outcome: DemoOutcome { result.withLock { $0 } }

    func run() async throws {
        do {
            let outcome = try await runDemo()
            result.withLock { $0 = outcome }
        } catch {
            result.withLock { $0 = .failed("\(error)") }
            throw error
        }
    }

    private func runDemo() async throws -> DemoOutcome {
        // Traffic: realistic traces spread over the last few minutes, plus poison messages.
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        var generator = SyntheticTraceGenerator(seed: seed, startNanos: now - Int64(traces) * 20_000_000, spacingNanos: 20_000_000)
        generator.maxPaddingBytes = 4000
        var messages: [ProducerMessage] = []
        var kinds: [SyntheticTraceGenerator.Kind: Int] = [:]
        var errored = 0
        for _ in 0..<traces {
            let trace = generator.next()
            kinds[trace.kind, default: 0] += 1
            if trace.state == .error { errored += 1 }
            messages.append(ProducerMessage(topic: "traces", key: Array(trace.traceID.utf8), value: trace.json,
                                            headers: [(name: "content-type", value: Array("application/json".utf8))]))
        }
        let poison: [(String, [UInt8]?)] = [
            ("invalid JSON", Array(#"{"info": {"trace_id": "tr-"#.utf8)),
            ("a tombstone", nil),
            ("an empty value", []),
            ("JSON of the wrong shape", Array(#"{"info": {"trace_id": 12345, "request_time": "yesterday"}, "data": {"spans": "none"}}"#.utf8)),
        ]
        for (index, item) in poison.enumerated() {
            messages.insert(ProducerMessage(topic: "traces", partition: Int32(index % partitions), key: Array("poison-\(index)".utf8), value: item.1),
                            at: min(messages.count, (index + 1) * messages.count / (poison.count + 1)))
        }

        let clock = ContinuousClock()
        let publishStart = clock.now
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: brokers), logger: logger)
        let tally = DeliveryTally()
        for message in messages {
            try await producer.enqueueWaitingForRoom(message) { tally.record($0) }
        }
        try await producer.flush(timeout: .seconds(60))
        await producer.close()
        let published = tally.snapshot
        guard published.failed == 0 else { return .failed("\(published.failed) messages were not delivered: \(published.firstError ?? "")") }
        let kindText = SyntheticTraceGenerator.Kind.allCases.map { "\($0.rawValue) \(kinds[$0, default: 0])" }.joined(separator: ", ")
        print("Published \(traces) traces (\(kindText); \(errored) errored) and \(poison.count) poison messages (\(poison.map(\.0).joined(separator: ", "))) in \(Self.seconds(publishStart.duration(to: clock.now)))")
        print("Waiting for \(replicas.count) replicas to store them...")

        // Wait until every message is durable.
        let deadline = publishStart.advanced(by: timeout)
        var counts = (traces: 0, deadLetters: 0)
        while true {
            counts = try await pool.withConnection { connection in
                let row = try connection.query("SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM dead_letters)")
                return (try row[0].int(0), try row[0].int(1))
            }
            if counts.traces >= traces && counts.deadLetters >= poison.count { break }
            if Task.isShuttingDownGracefully { return .interrupted }
            if clock.now > deadline {
                print("Timed out: \(counts.traces) of \(traces) traces and \(counts.deadLetters) of \(poison.count) dead letters stored.")
                return .timedOut
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let elapsed = publishStart.duration(to: clock.now)
        print("All \(counts.traces) traces stored and \(counts.deadLetters) dead letters recorded \(Self.seconds(elapsed)) after publishing began (\(Int(Double(traces) / max(elapsed.seconds, 0.001))) traces/s, including the consumer group's first join)")
        try await printSummary(expectedTraces: traces)
        return .succeeded
    }

    private func printSummary(expectedTraces: Int) async throws {
        struct PartitionRow { var partition = 0; var traces = 0; var deadLetters = 0; var nextOffset: Int64 = 0 }
        let (rows, letters, distinct, repeats) = try await pool.withConnection { connection -> ([PartitionRow], [(String, Int)], Int, Int) in
            var byPartition: [Int: PartitionRow] = [:]
            for row in try connection.query("SELECT source_partition, count(*) FROM traces GROUP BY 1") {
                let partition = try row.int(0)
                byPartition[partition, default: PartitionRow(partition: partition)].traces = try row.int(1)
            }
            for row in try connection.query("SELECT source_partition, count(*) FROM dead_letters GROUP BY 1") {
                let partition = try row.int(0)
                byPartition[partition, default: PartitionRow(partition: partition)].deadLetters = try row.int(1)
            }
            for row in try connection.query("SELECT partition, next_offset FROM consumer_offsets WHERE group_id = 'assay-demo' AND topic = 'traces'") {
                let partition = try row.int(0)
                byPartition[partition, default: PartitionRow(partition: partition)].nextOffset = try row.int64(1)
            }
            let letters = try connection.query("SELECT reason, count(*) FROM dead_letters GROUP BY 1 ORDER BY 1").map { (try $0.string(0), try $0.int(1)) }
            let totals = try connection.query("SELECT count(DISTINCT trace_id), coalesce(sum(deliveries - 1), 0) FROM traces")
            return (byPartition.values.sorted { $0.partition < $1.partition }, letters, try totals[0].int(0), try totals[0].int(1))
        }
        print("")
        print("partition  traces  dead letters  next offset")
        for row in rows {
            print(Self.pad(String(row.partition), 9) + "  " + Self.pad(String(row.traces), 6) + "  " + Self.pad(String(row.deadLetters), 12) + "  " + String(row.nextOffset))
        }
        print("total      " + Self.pad(String(rows.reduce(0) { $0 + $1.traces }), 6) + "  " + Self.pad(String(rows.reduce(0) { $0 + $1.deadLetters }), 12))
        print("")
        print("Dead letters by reason: " + letters.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
        for (index, replica) in replicas.enumerated() {
            let stats = replica.currentStatistics
            print("replica-\(index + 1): consumed \(stats.messagesConsumed) messages, stored \(stats.tracesInserted) traces and \(stats.deadLetters) dead letters in \(stats.batchesWritten) batches")
        }
        print("Exactly once: \(distinct) distinct trace ids for \(expectedTraces) published, \(repeats) repeated deliveries")
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.1f s", duration.seconds)
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
