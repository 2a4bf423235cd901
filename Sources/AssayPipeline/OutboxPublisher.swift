import AssayMetrics
import AssayStore
import Foundation
import Kafka
import Logging
import Metrics
import Postgres
import ServiceLifecycle
import Synchronization

/// Publishes the outbox (assessments and window summaries) to the assessments topic.
///
/// Rows are taken in id order under `FOR UPDATE SKIP LOCKED` (a scored chunk's assessments
/// share one row), published with the idempotent producer, and marked published in the same
/// transaction once the broker acknowledged them. A crash in between publishes the same bytes
/// again: downstream may see an id twice, never two values for one id.
public final class OutboxPublisher: Service, Sendable {
    public struct Configuration: Sendable {
        public var brokers: String
        public var topic: String = "assessments"
        public var batchSize = 4000
        public var tick: Duration = .milliseconds(500)
        public var deliveryTimeout: Duration = .seconds(30)
        public var kafkaOptions: [String: String] = [:]
        /// Fault injection for crash tests: SIGKILL this process after the broker
        /// acknowledged a batch but before it is marked published. Never set in production.
        public var crashAfterPublishBeforeMark = false
        /// How often the `assay_outbox_backlog_messages` gauge is refreshed (one count query).
        public var backlogInterval: Duration = .seconds(1)
        /// Where the outbox metrics go (the process-wide swift-metrics backend by default).
        public var metrics: AssayMetrics = .global
        /// Published rows older than this are deleted (nil keeps them forever). Their messages
        /// are in Kafka and their documents in `assessments` and `window_summaries`.
        public var retention: Duration? = .seconds(7 * 86_400)
        /// How often a replica looks for rows past `retention` (one replica at a time sweeps).
        public var retentionSweepInterval: Duration = .seconds(600)
        /// Rows deleted per statement in a sweep.
        public var retentionBatch = 10_000
        /// Statements per sweep at most: publishing waits while a sweep runs, so a large
        /// backlog (the first sweep after an upgrade) is worked off over several sweeps.
        public var retentionBatchesPerSweep = 10

        public init(brokers: String) {
            self.brokers = brokers
        }
    }

    private let configuration: Configuration
    private let pool: PostgresPool
    private let store = ScoringStore()
    private let logger: Logger
    private let published = Mutex(0)

    public init(configuration: Configuration, pool: PostgresPool, logger: Logger) {
        self.configuration = configuration
        self.pool = pool
        self.logger = logger
    }

    /// Messages this replica has published.
    public var publishedCount: Int { published.withLock { $0 } }

    public func run() async throws {
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: configuration.brokers)
        producerConfiguration.clientID = "assay-outbox"
        producerConfiguration.maxMessageBytes = 4 * 1024 * 1024
        producerConfiguration.rawOptions = configuration.kafkaOptions
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        var failures = 0
        var backlogMeasured: ContinuousClock.Instant?
        var swept: ContinuousClock.Instant?
        while true {
            if backlogMeasured.map({ $0.duration(to: .now) >= configuration.backlogInterval }) ?? true {
                backlogMeasured = .now
                await measureBacklog()
            }
            if let retention = configuration.retention, !Task.isShuttingDownGracefully,
               swept.map({ $0.duration(to: .now) >= configuration.retentionSweepInterval }) ?? true {
                swept = .now
                await sweepPublished(olderThan: retention)
            }
            // Drain what is pending even during shutdown, so a clean stop leaves nothing behind.
            let count: Int
            do {
                count = try await publishBatch(producer)
                failures = 0
            } catch {
                failures += 1
                // Cancelled (another service failed): every attempt would throw at once.
                if Task.isCancelled { break }
                logger.warning("outbox publish failed; retrying", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                if Task.isShuttingDownGracefully && failures >= 3 { break }
                try? await Task.sleep(for: min(configuration.tick * failures, .seconds(5)))
                continue
            }
            if count == 0 {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                try? await Task.sleep(for: configuration.tick)
            }
        }
        await measureBacklog()
        await producer.close()
    }

    /// Sets the backlog gauge; a failed count leaves it as it was.
    private func measureBacklog() async {
        let store = self.store
        do {
            let backlog = try await pool.withConnection { try store.outboxBacklog(on: $0) }
            configuration.metrics.outboxBacklog(backlog)
        } catch {
            logger.debug("could not count the outbox backlog", metadata: ["error": "\(error)"])
        }
    }

    /// Deletes published rows older than `retention`, a batch per statement, until a batch
    /// comes back short, another replica is sweeping, or `retentionBatchesPerSweep` statements
    /// have run. A failure is logged and the rows wait for the next sweep.
    func sweepPublished(olderThan retention: Duration) async {
        let store = self.store
        let seconds = Int(retention.components.seconds)
        let batch = configuration.retentionBatch
        var deleted = 0
        do {
            for _ in 0..<max(1, configuration.retentionBatchesPerSweep) {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                guard let count = try await pool.withConnection({ try store.deletePublishedOutbox(olderThanSeconds: seconds, limit: batch, on: $0) }) else { break }
                deleted += count
                if count < batch { break }
            }
        } catch {
            logger.warning("outbox retention sweep failed; the rows wait for the next one", metadata: ["error": "\(error)"])
        }
        if deleted > 0 {
            logger.info("published outbox rows past their retention deleted", metadata: ["rows": "\(deleted)", "retention": "\(retention)"])
        }
    }

    /// Publishes one batch; returns how many messages it took (sent, or unsendable).
    func publishBatch(_ producer: KafkaProducer) async throws -> Int {
        let store = self.store
        let topic = configuration.topic
        let limit = configuration.batchSize
        let timeout = configuration.deliveryTimeout
        let crash = configuration.crashAfterPublishBeforeMark
        let logger = self.logger
        let batch = try await pool.withConnection { connection in
            try store.publishPending(limit: limit, on: connection) { messages in
                _ = try producer.sendAndWait(messages.map { message in
                    ProducerMessage(topic: topic, key: Array(message.key.utf8), value: Array(message.payload.utf8), headers: [
                        (name: "content-type", value: Array("application/json".utf8)),
                        (name: "assay-schema", value: Array(message.schemaName.utf8)),
                    ])
                }, timeout: timeout)
                if crash {
                    logger.critical("fault injection: crashing after publishing, before marking the outbox")
                    kill(getpid(), SIGKILL)
                }
            }
        }
        if !batch.unsendable.isEmpty {
            logger.error("outbox messages of deleted assessments marked published without sending", metadata: [
                "assessments": "\(batch.unsendable.map(\.description))",
            ])
        }
        let count = batch.published
        if count > 0 {
            published.withLock { $0 += count }
            configuration.metrics.outboxPublished(count: count)
        }
        return count + batch.unsendable.count
    }
}
