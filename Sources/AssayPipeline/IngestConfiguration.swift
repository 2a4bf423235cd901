import AssayCore
import AssayMetrics
import AssayOTLP
import Foundation
import Kafka

/// Settings of one ingest replica.
public struct IngestConfiguration: Sendable {
    /// Kafka bootstrap servers, `host:port[,...]`.
    public var brokers: String
    /// Consumer group; all replicas of one deployment share it.
    public var groupID: String = "assay"
    public var tracesTopic: String = "traces"
    /// Messages per poll, written to PostgreSQL in one transaction.
    public var batchSize: Int = 1000
    /// How long one poll waits for a first message.
    public var pollTimeout: Duration = .milliseconds(250)
    public var decodeLimits = DecodeLimits()
    /// How many slices of a large batch are decoded at once. One core fewer than the
    /// machine has: a batch is decoded while the one before it is written, so decoding only
    /// has to keep pace with the writer, and the core left over serves the write (libpq,
    /// librdkafka's threads, and PostgreSQL itself when it shares the machine). On two
    /// cores, one decoding thread stored about 6% more traces per second than two from an
    /// empty group, and 9% more after the first batch (bench/RESULTS.md, eleventh stop).
    public var decodeConcurrency: Int = max(1, ProcessInfo.processInfo.activeProcessorCount - 1)
    /// Abuse limits for OTLP messages (spans, attribute bytes, nesting).
    public var otlpLimits = OTLPLimits()
    /// Traces with absurd event times (far future, before 2000) become dead letters, so one
    /// bad clock cannot close every window at once.
    public var eventTimePolicy = EventTimePolicy()
    public var sessionTimeout: Duration = .seconds(45)
    public var heartbeatInterval: Duration = .seconds(3)
    /// How long a Kafka offset commit waits for the group coordinator's answer. PostgreSQL
    /// holds the offsets that matter, so an unanswered commit is logged and retried with the
    /// next batch instead of holding up ingest.
    public var kafkaCommitTimeout: Duration = .seconds(5)
    /// How long leaving the group may take at shutdown. With the brokers unreachable
    /// librdkafka would try for up to the session timeout, past the shutdown deadline; the
    /// replica then leaves without a word to the broker, which evicts it after the session
    /// timeout. Kept, with two commit timeouts, inside the shutdown deadline.
    public var leaveTimeout: Duration = .seconds(10)
    /// Raw librdkafka consumer properties (escape hatch).
    public var kafkaOptions: [String: String] = [:]
    /// Name shown in logs and as the Kafka client id.
    public var replicaName: String = "assay"
    /// Fault injection for crash tests: after this many batches are durable in PostgreSQL,
    /// the process kills itself with SIGKILL before committing to Kafka. Never set in production.
    public var crashAfterDurableBatches: Int?
    /// Where the ingest metrics go (the process-wide swift-metrics backend by default).
    public var metrics: AssayMetrics = .global

    public init(brokers: String) {
        self.brokers = brokers
    }

    var consumerConfiguration: KafkaConsumerConfiguration {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: groupID)
        configuration.clientID = replicaName
        configuration.sessionTimeout = sessionTimeout
        configuration.heartbeatInterval = heartbeatInterval
        configuration.commitTimeout = kafkaCommitTimeout
        configuration.autoOffsetReset = .error
        configuration.maxMessageBytes = max(decodeLimits.maxMessageBytes * 2, 8 * 1024 * 1024)
        configuration.rawOptions = kafkaOptions
        return configuration
    }
}
