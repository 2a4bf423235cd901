import ArgumentParser
import AssayCore
import AssayHTTP
import AssayMetrics
import AssayPipeline
import AssayScoring
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
        abstract: "Run Assay end to end: mock Kafka, a local PostgreSQL, generated traffic, several replicas, windows scored.",
        discussion: """
            Uses DATABASE_URL (or --database-url) when set, in schema assay_demo (dropped and recreated);
            otherwise starts a throwaway PostgreSQL cluster and removes it at exit.
            """
    )

    @Option(help: "Traces to generate.")
    var traces = 2000

    @Option(help: "Partitions of the topics.")
    var partitions = 8

    @Option(help: "Replicas in one consumer group.")
    var replicas = 2

    @Option(help: "Seed for the generated traffic.")
    var seed: UInt64 = 42

    @Option(name: .customLong("database-url"), help: "Use this PostgreSQL instead of a throwaway cluster. Env: ASSAY_DATABASE_URL, DATABASE_URL.")
    var databaseURLFlag: String?

    @Option(name: .customLong("monitor"), help: ArgumentHelp("Monitor config to use instead of the built-in demo default.", valueName: "file"))
    var monitorFile: String?

    @Option(name: .customLong("timeout-seconds"), help: "Give up if the demo has not finished by then.")
    var timeoutSeconds = 180

    @Flag(name: .customLong("json"), help: "Print one JSON document (for machines) instead of tables.")
    var json = false

    @Option(name: .customLong("judge-url"), help: "An OpenAI-compatible base URL: LLM scorers use it instead of the offline judge, and a guidelines scorer is added. Env: ASSAY_JUDGE_URL.")
    var judgeURL: String?

    @Option(name: .customLong("judge-model"), help: "Model for --judge-url. Env: ASSAY_JUDGE_MODEL.")
    var judgeModel: String?

    @Option(name: .customLong("judge-api-key-env"), help: "NAME of the environment variable holding the judge's API key.")
    var judgeAPIKeyEnv = "OPENAI_API_KEY"

    @Option(name: .customLong("http"), help: ArgumentHelp("Serve the dashboard, its API and /metrics here and keep serving after the demo finishes, until Ctrl-C. Without it they are served on a free loopback port while the demo runs.", valueName: "addr:port"))
    var http: String?

    @OptionGroup var log: LogOptions

    func validate() throws {
        if let http {
            do { _ = try AdminServer.Configuration.address(parsing: http) } catch { throw ValidationError("--http: \(error)") }
        }
        guard (1...200_000).contains(traces) else { throw ValidationError("--traces must be between 1 and 200000.") }
        guard (1...64).contains(partitions) else { throw ValidationError("--partitions must be between 1 and 64.") }
        guard (1...8).contains(replicas) else { throw ValidationError("--replicas must be between 1 and 8.") }
    }

    func run() async throws {
        var log = self.log
        if log.levelFlag == nil && environment("ASSAY_LOG_LEVEL") == nil { log.levelFlag = "warning" }
        let logger = log.bootstrap(label: "assay.demo")
        AssayMetrics.bootstrap()
        let schema = try SchemaName("assay_demo")
        var loaded = try MonitorFile.load(monitorFile) ?? MonitorConfig.demoDefault
        loaded.destinationSchema = schema.rawValue
        if let url = judgeURL ?? environment("ASSAY_JUDGE_URL") {
            // A real judge: the predefined scorers use it, and guidelines becomes possible.
            loaded.judge = JudgeConfig(kind: .openai, baseURL: url, model: judgeModel ?? environment("ASSAY_JUDGE_MODEL") ?? "gpt-4o-mini",
                                       apiKeyEnv: judgeAPIKeyEnv, maxConcurrency: 8, maxCallsPerWindow: 2000)
            if !loaded.scorers.contains(where: { $0.kind == .guidelines }) {
                loaded.scorers.append(ScorerConfig(name: "hr_only", kind: .guidelines, sampleRate: 0.2, guidelines: [
                    "The response must only answer questions about Northwind HR policies and benefits, and politely decline anything else.",
                ]))
            }
            do {
                loaded = try MonitorConfig.parse(loaded.json().serializedUTF8())  // the same validation as a file
                try ScorerFactory.validate(loaded)
                _ = try JudgeWiring.makeJudge(loaded, logger: logger)  // the key's variable must be set
            } catch {
                throw ValidationError("Cannot use the judge at \(url): \(error)")
            }
        }
        let monitor = loaded
        let output = DemoOutput(json: json)

        output.say("Assay demo")
        let database = try await DemoDatabase.open(url: databaseURLFlag ?? environment("ASSAY_DATABASE_URL") ?? environment("DATABASE_URL"), schema: schema, logger: logger)
        output.say("  PostgreSQL: \(database.description)")
        let cluster: MockCluster
        do {
            cluster = try MockCluster(brokers: 3, logger: logger)
            try cluster.createTopic("traces", partitions: partitions, replicationFactor: 3)
            try cluster.createTopic("assessments", partitions: partitions, replicationFactor: 3)
        } catch {
            await database.close()
            throw error
        }
        output.say("  Kafka:      mock cluster, 3 brokers at \(cluster.bootstrapServers); topics traces and assessments, \(partitions) partitions each")
        output.say("  Replicas:   \(replicas) in consumer group assay-demo, each ingesting, closing windows, scoring and publishing")
        output.say("  Monitor:    '\(monitor.name)': \(monitor.window.widthNanos / 1_000_000_000) s windows, \(monitor.window.allowedLatenessNanos / 1_000_000_000) s allowed lateness")
        for scorer in monitor.scorers {
            output.say("              \(scorer.name) (\(scorer.kind.rawValue)) at rate \(scorer.effectiveRate(global: monitor.sampleRate))\(scorer.filter.map { " where \($0.text)" } ?? "")")
        }

        let outcome: DemoOutcome
        do {
            _ = try await AssayDatabase.migrate(url: database.url, schema: schema, logger: logger)
            let pool = try PostgresPool(configuration: AssayDatabase.configuration(url: database.url, schema: schema, applicationName: "assay-demo"),
                                        size: 2 + 2 * replicas, name: "pg", logger: logger)
            _ = try await pool.withConnection { try MonitorStore(schema: schema).saveIfChanged(monitor, note: "demo", nowNanos: wallClockNanos(), on: $0) }
            var replicaSet: [DemoReplica] = []
            for index in 1...replicas {
                var configuration = IngestConfiguration(brokers: cluster.bootstrapServers)
                configuration.groupID = "assay-demo"
                configuration.replicaName = "replica-\(index)"
                configuration.sessionTimeout = .seconds(6)
                configuration.heartbeatInterval = .milliseconds(500)
                var scoring = ScoringConfiguration(owner: configuration.replicaName)
                scoring.schema = schema
                scoring.idleTimeout = .seconds(2)
                scoring.tick = .milliseconds(200)
                var outbox = OutboxPublisher.Configuration(brokers: cluster.bootstrapServers)
                outbox.tick = .milliseconds(200)
                replicaSet.append(DemoReplica(
                    name: configuration.replicaName,
                    ingest: IngestService(configuration: configuration, pool: pool, logger: logger),
                    scoring: ScoringService(configuration: scoring, pool: pool, logger: logger),
                    outbox: OutboxPublisher(configuration: outbox, pool: pool, logger: logger)))
            }
            let driver = DemoDriver(
                traces: traces, partitions: partitions, seed: seed, brokers: cluster.bootstrapServers, monitor: monitor,
                pool: pool, replicas: replicaSet, timeout: .seconds(timeoutSeconds), output: output, logger: logger)
            var configurations = replicaSet.flatMap { replica -> [ServiceGroupConfiguration.ServiceConfiguration] in
                [.init(service: replica.ingest), .init(service: replica.scoring), .init(service: replica.outbox)]
            }
            // With --http the dashboard outlives the run: the group ends on Ctrl-C.
            configurations.append(.init(service: driver, successTerminationBehavior: http == nil ? .gracefullyShutdownGroup : .ignore,
                                        failureTerminationBehavior: .gracefullyShutdownGroup))
            configurations.append(.init(service: try dashboard(pool: pool, schema: schema, replicas: replicaSet, output: output, logger: logger)))
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
            output.say("demo did not finish: \(outcome)")
            throw ExitCode(1)
        }
        if http == nil {
            output.say("The dashboard stopped with the demo; `assay demo --http 127.0.0.1:8080` keeps it up until Ctrl-C.")
        }
    }

    /// The dashboard, its JSON API and `/metrics` over the demo's schema; consumer lag is the
    /// largest any replica reports per partition.
    private func dashboard(pool: PostgresPool, schema: SchemaName, replicas: [DemoReplica], output: DemoOutput, logger: Logger) throws -> AdminServer {
        let (host, port) = try AdminServer.Configuration.address(parsing: http ?? "127.0.0.1:0")
        let keepServing = http != nil
        return AdminServer(
            configuration: .init(host: host, port: port, adminToken: environment("ASSAY_ADMIN_TOKEN")),
            pool: pool, schema: schema,
            readiness: { [pool] in ["postgres": await checkPostgres(pool)] },
            logger: logger,
            onServerRunning: { port in
                let shown = host.contains(":") ? "[\(host)]" : host
                output.say("  Dashboard:  http://\(shown):\(port)/  (metrics at /metrics\(keepServing ? "; Ctrl-C stops" : "; served while the demo runs"))")
            },
            idleTimeout: .seconds(2),
            lagProvider: {
                var merged: [String: Int64] = [:]
                for replica in replicas {
                    for (partition, lag) in await replica.ingest.consumerLag() {
                        merged[partition] = max(merged[partition] ?? 0, lag)
                    }
                }
                return merged
            },
            metricsText: AssayMetrics.prometheusText)
    }
}

/// One replica's services.
struct DemoReplica: Sendable {
    let name: String
    let ingest: IngestService
    let scoring: ScoringService
    let outbox: OutboxPublisher
}

/// Human output goes to stdout, unbuffered; with --json it goes to stderr and stdout gets
/// only the final JSON document.
struct DemoOutput: Sendable {
    let json: Bool

    func say(_ line: String) {
        let data = Data((line + "\n").utf8)
        if json {
            FileHandle.standardError.write(data)
        } else {
            FileHandle.standardOutput.write(data)
        }
    }

    func document(_ value: JSONValue) {
        FileHandle.standardOutput.write(Data((value.serialized() + "\n").utf8))
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

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
