import ArgumentParser
import AssayCore
import AssayMetrics
import AssayHTTP
import AssayOTLP
import AssayPipeline
import AssayStore
import Foundation
import Logging
import Postgres
import ServiceLifecycle

/// `assay serve`: one replica of the consumer group.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run one Assay replica: store every trace from the traces topic in PostgreSQL.",
        discussion: """
            Run several replicas with the same --group to share the topic's partitions.
            SIGTERM or SIGINT stops fetching, finishes the batch in hand, commits and leaves the group.
            """
    )

    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var log: LogOptions

    @Option(help: "Kafka consumer group shared by all replicas. Env: ASSAY_GROUP.")
    var group: String?

    @Option(name: .customLong("traces-topic"), help: "Topic the traces arrive on. Env: ASSAY_TRACES_TOPIC.")
    var tracesTopic: String?

    @Option(name: .customLong("batch-size"), help: "Messages per poll, written in one transaction.")
    var batchSize = 1000

    @Option(name: .customLong("decode-threads"), help: "Threads decoding each batch, in slices (default: one fewer than the cores, at least 1).")
    var decodeThreads: Int?

    @Option(name: .customLong("max-message-bytes"), help: "Larger messages become dead letters (too_large).")
    var maxMessageBytes = DecodeLimits.defaultMaxMessageBytes

    @Option(name: .customLong("max-spans-per-message"), help: "OTLP messages with more spans become dead letters (limit_exceeded).")
    var maxSpansPerMessage = 10_000

    @Option(name: .customLong("max-attribute-bytes"), help: "OTLP attribute values longer than this make the message a dead letter (limit_exceeded).")
    var maxAttributeBytes = 256 * 1024

    @Option(name: .customLong("max-nesting-depth"), help: "Deeper JSON or OTLP values make the message a dead letter.")
    var maxNestingDepth = 32

    @Option(name: .customLong("pool-size"), help: "PostgreSQL connections.")
    var poolSize = 4

    @Option(name: .customLong("session-timeout-ms"), help: "Kafka group session timeout; a crashed replica's partitions move after this long.")
    var sessionTimeoutMs = 45_000

    @Option(name: .customLong("replica-name"), help: "Name in logs and the Kafka client id (default: host-pid). Env: ASSAY_REPLICA_NAME.")
    var replicaName: String?

    @Option(name: .customLong("kafka-option"), help: ArgumentHelp("Raw librdkafka consumer property, repeatable.", valueName: "key=value"))
    var kafkaOptions: [String] = []

    @Option(name: .customLong("shutdown-deadline-seconds"), help: "On SIGTERM/SIGINT: finish the batch in hand, commit, drain the outbox and leave the group within this long; then cancel what is left.")
    var shutdownDeadlineSeconds = 30

    @Option(name: .customLong("http"), help: ArgumentHelp("Address of the admin API (monitor, health). Env: ASSAY_HTTP.", valueName: "addr:port"))
    var http: String?

    @Option(name: .customLong("monitor"), help: ArgumentHelp("Monitor config (JSON) to apply: stored as a new version when it differs from the current one. Env: ASSAY_MONITOR_FILE.", valueName: "file"))
    var monitorFile: String?

    @Option(name: .customLong("assessments-topic"), help: "Topic assessments and window summaries are published to. Env: ASSAY_ASSESSMENTS_TOPIC.")
    var assessmentsTopic: String?

    @Option(name: .customLong("max-future-skew-seconds"), help: "Traces whose request time is further ahead of this clock become dead letters (event_time_out_of_range).")
    var maxFutureSkewSeconds = 3600

    @Option(name: .customLong("alert-baseline-windows"), help: "Regression alerts: the previous windows pooled into a scorer's baseline; 0 turns alerts off.")
    var alertBaselineWindows = 6

    @Option(name: .customLong("alert-min-scored"), help: "Regression alerts: the fewest scored traces in the window and in the baseline for a decision.")
    var alertMinimumScored = 30

    @Option(name: .customLong("alert-z"), help: "Regression alerts: the critical value; an alert needs z <= -this (2.33: about 1% false alarms per window and scorer).")
    var alertZ = 2.33

    @Option(name: .customLong("idle-timeout-seconds"), help: "A partition with no new event time and no unread messages for this long stops holding windows open (keep it above the session timeout).")
    var idleTimeoutSeconds = 60

    @Option(name: .customLong("debug-crash-after-batches"), help: .hidden)
    var crashAfterBatches: Int?

    @Option(name: .customLong("debug-crash-after-scoring-chunks"), help: .hidden)
    var crashAfterScoringChunks: Int?

    @Flag(name: .customLong("debug-crash-after-publish"), help: .hidden)
    var crashAfterPublish = false

    @Option(name: .customLong("outbox-retention-hours"), help: "Published outbox rows older than this are deleted (their messages are in Kafka, their documents in assessments and window_summaries); 0 keeps them.")
    var outboxRetentionHours = 168

    @Option(name: .customLong("scoring-chunk-size"), help: "Traces per scoring transaction.")
    var scoringChunkSize = 500

    @Option(name: .customLong("scoring-slices"), help: "Ranges of the sampling key each new window is divided into, so that several replicas score it at once (1-64; windows of a monitor with max_per_window get 1).")
    var scoringSlices = 8

    @Flag(name: .customLong("score-open-windows"), inversion: .prefixedNo,
          help: "Score a window's traces as they are stored, before it closes, so its close has only the rest to do (not for monitors with max_per_window caps, nor OTLP traces).")
    var scoreOpenWindows = true

    @Option(name: .customLong("scoring-lease-seconds"), help: "How long a replica may hold a window without progress before another takes it over.")
    var scoringLeaseSeconds = 60

    func validate() throws {
        guard (2...86_400).contains(scoringLeaseSeconds) else { throw ValidationError("--scoring-lease-seconds must be between 2 and 86400.") }
        guard (0...87_600).contains(outboxRetentionHours) else { throw ValidationError("--outbox-retention-hours must be between 0 (keep) and 87600.") }
        guard (1...100_000).contains(scoringChunkSize) else { throw ValidationError("--scoring-chunk-size must be between 1 and 100000.") }
        guard (1...ScoringSlices.maximumCount).contains(scoringSlices) else {
            throw ValidationError("--scoring-slices must be between 1 and \(ScoringSlices.maximumCount).")
        }
        if let http = http ?? environment("ASSAY_HTTP") {
            do { _ = try AdminServer.Configuration.address(parsing: http) } catch { throw ValidationError("--http: \(error)") }
        }
        guard (1...3600).contains(shutdownDeadlineSeconds) else { throw ValidationError("--shutdown-deadline-seconds must be between 1 and 3600.") }
        guard maxSpansPerMessage >= 1, maxAttributeBytes >= 64, (4...512).contains(maxNestingDepth) else {
            throw ValidationError("--max-spans-per-message must be at least 1, --max-attribute-bytes at least 64, --max-nesting-depth between 4 and 512.")
        }
        guard maxFutureSkewSeconds >= 0 else { throw ValidationError("--max-future-skew-seconds must not be negative.") }
        guard idleTimeoutSeconds >= 1 else { throw ValidationError("--idle-timeout-seconds must be at least 1.") }
        guard alertBaselineWindows >= 0, alertMinimumScored >= 1, alertZ > 0, alertZ.isFinite else {
            throw ValidationError("--alert-baseline-windows must be at least 0, --alert-min-scored at least 1, --alert-z positive.")
        }
        guard batchSize >= 1 && batchSize <= 100_000 else { throw ValidationError("--batch-size must be between 1 and 100000.") }
        if let decodeThreads { guard decodeThreads >= 1 && decodeThreads <= 64 else { throw ValidationError("--decode-threads must be between 1 and 64.") } }
        guard maxMessageBytes >= 1024 else { throw ValidationError("--max-message-bytes must be at least 1024.") }
        guard poolSize >= 1 && poolSize <= 64 else { throw ValidationError("--pool-size must be between 1 and 64.") }
        _ = try parsedKafkaOptions()
    }

    func parsedKafkaOptions() throws -> [String: String] {
        var options: [String: String] = [:]
        for item in kafkaOptions {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw ValidationError("--kafka-option takes key=value, got '\(item)'.")
            }
            options[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return options
    }

    var ingestConfiguration: IngestConfiguration {
        get throws {
            var configuration = IngestConfiguration(brokers: kafka.brokers)
            configuration.groupID = group ?? environment("ASSAY_GROUP") ?? "assay"
            configuration.tracesTopic = tracesTopic ?? environment("ASSAY_TRACES_TOPIC") ?? "traces"
            configuration.batchSize = batchSize
            if let decodeThreads { configuration.decodeConcurrency = decodeThreads }
            configuration.decodeLimits = DecodeLimits(maxMessageBytes: maxMessageBytes, maxNestingDepth: max(maxNestingDepth, 16) * 4)
            configuration.otlpLimits = OTLPLimits(maxMessageBytes: maxMessageBytes, maxSpansPerMessage: maxSpansPerMessage,
                                                  maxSpansPerTrace: maxSpansPerMessage, maxAttributeValueBytes: maxAttributeBytes,
                                                  maxNestingDepth: maxNestingDepth)
            configuration.sessionTimeout = .milliseconds(sessionTimeoutMs)
            configuration.heartbeatInterval = .milliseconds(max(100, sessionTimeoutMs / 10))
            // Leaving at shutdown fits in the deadline even with the brokers unreachable: the
            // last commit (a sixth at most), then close (a third), whose revocation commit (a
            // sixth) can run past it: two thirds of the deadline in all.
            configuration.leaveTimeout = .milliseconds(min(10_000, shutdownDeadlineSeconds * 1000 / 3))
            configuration.kafkaCommitTimeout = .milliseconds(min(5_000, shutdownDeadlineSeconds * 1000 / 6))
            configuration.kafkaOptions = try parsedKafkaOptions()
            configuration.crashAfterDurableBatches = crashAfterBatches
            configuration.eventTimePolicy.maxFutureSkewNanos = Int64(maxFutureSkewSeconds) * 1_000_000_000
            configuration.replicaName = replicaName ?? environment("ASSAY_REPLICA_NAME") ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
            return configuration
        }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "assay.serve")
        AssayMetrics.bootstrap()
        let monitor = try MonitorFile.load(monitorFile ?? environment("ASSAY_MONITOR_FILE"))
        let schema = try MonitorFile.schema(option: database.schemaFlag ?? environment("ASSAY_SCHEMA"), monitor: monitor)
        let configuration = try ingestConfiguration
        _ = try await AssayDatabase.migrate(url: database.databaseURL, schema: schema, logger: logger)
        let pool = try PostgresPool(
            configuration: AssayDatabase.configuration(url: database.databaseURL, schema: schema, applicationName: "assay-\(configuration.replicaName)"),
            size: poolSize, name: "pg", logger: logger)
        if let monitor {
            let (stored, created) = try await pool.withConnection {
                try MonitorStore(schema: schema).saveIfChanged(monitor, note: "serve --monitor", nowNanos: wallClockNanos(), on: $0)
            }
            logger.info(created ? "monitor config stored as a new version" : "monitor config unchanged", metadata: ["config.version": "\(stored.version)", "monitor": "\(monitor.name)"])
        }
        let ingest = IngestService(configuration: configuration, pool: pool, logger: logger)
        var scoringConfiguration = ScoringConfiguration(owner: configuration.replicaName)
        scoringConfiguration.tracesTopic = configuration.tracesTopic
        scoringConfiguration.idleTimeout = .seconds(idleTimeoutSeconds)
        scoringConfiguration.chunkSize = scoringChunkSize
        scoringConfiguration.scoringSlices = scoringSlices
        scoringConfiguration.leaseSeconds = scoringLeaseSeconds
        scoringConfiguration.scoreOpenWindows = scoreOpenWindows
        scoringConfiguration.crashAfterChunks = crashAfterScoringChunks
        scoringConfiguration.schema = schema
        scoringConfiguration.regressionRule = alertBaselineWindows == 0 ? nil
            : RegressionRule(baselineWindows: alertBaselineWindows, minimumScored: alertMinimumScored, zCritical: alertZ)
        scoringConfiguration.listenerConfiguration = try AssayDatabase.configuration(url: database.databaseURL, schema: schema, applicationName: "assay-\(configuration.replicaName)-listen")
        let scoring = ScoringService(configuration: scoringConfiguration, pool: pool, logger: logger)
        var outboxConfiguration = OutboxPublisher.Configuration(brokers: kafka.brokers)
        outboxConfiguration.topic = assessmentsTopic ?? environment("ASSAY_ASSESSMENTS_TOPIC") ?? "assessments"
        outboxConfiguration.kafkaOptions = try parsedKafkaOptions().filter { !$0.key.hasPrefix("group.") && !$0.key.hasPrefix("session.") }
        outboxConfiguration.crashAfterPublishBeforeMark = crashAfterPublish
        outboxConfiguration.retention = outboxRetentionHours == 0 ? nil : .seconds(outboxRetentionHours * 3600)
        let outbox = OutboxPublisher(configuration: outboxConfiguration, pool: pool, logger: logger)
        let (host, port) = try AdminServer.Configuration.address(parsing: http ?? environment("ASSAY_HTTP") ?? "127.0.0.1:8080")
        let admin = AdminServer(
            configuration: .init(host: host, port: port, adminToken: environment("ASSAY_ADMIN_TOKEN")),
            pool: pool, schema: schema,
            readiness: { [pool] in ["postgres": await checkPostgres(pool), "kafka": await ingest.checkKafka()] },
            logger: logger,
            onServerRunning: { [logger] port in logger.info("admin API listening", metadata: ["http.host": "\(host)", "http.port": "\(port)"]) },
            tracesTopic: configuration.tracesTopic,
            idleTimeout: .seconds(idleTimeoutSeconds),
            lagProvider: { await ingest.consumerLag() },
            metricsText: AssayMetrics.prometheusText)
        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                .init(service: ingest), .init(service: scoring), .init(service: outbox), .init(service: admin),
                .init(service: SchedulingDelayService(probe: SchedulingDelayProbe())),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(shutdownDeadlineSeconds)
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        do {
            try await group.run()
        } catch {
            await pool.shutdown()
            throw error
        }
        await pool.shutdown()
        logger.info("stopped", metadata: ["traces.stored": "\(ingest.currentStatistics.tracesInserted)"])
    }
}

/// ``SchedulingDelayProbe`` as a service: it measures until graceful shutdown begins.
struct SchedulingDelayService: Service {
    let probe: SchedulingDelayProbe

    func run() async throws {
        await cancelWhenGracefulShutdown { await probe.run() }
    }
}
