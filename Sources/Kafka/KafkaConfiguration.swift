import CRdKafka

/// How a consumer group spreads partitions over its members.
///
/// Only the eager strategies are offered: librdkafka 2.0.2 has known bugs around
/// cooperative-sticky (close can hang, #4528; closing before the first assignment can
/// crash, #4381).
public enum PartitionAssignmentStrategy: String, Sendable {
    case range
    case roundRobin = "roundrobin"
}

/// What a consumer does when it has no valid offset for a partition.
public enum AutoOffsetReset: String, Sendable {
    case earliest
    case latest
    /// Report `offsetReset` to the application instead of silently moving: Assay uses this
    /// so that data lost to retention is recorded, never skipped quietly.
    case error
}

/// Typed settings for ``KafkaConsumer``.
public struct KafkaConsumerConfiguration: Sendable {
    /// `host:port[,host:port...]`.
    public var bootstrapServers: String
    public var groupID: String
    public var clientID: String = "assay"
    public var sessionTimeout: Duration = .seconds(45)
    public var heartbeatInterval: Duration = .seconds(3)
    public var maxPollInterval: Duration = .seconds(300)
    public var assignmentStrategy: PartitionAssignmentStrategy = .roundRobin
    public var autoOffsetReset: AutoOffsetReset = .error
    /// Upper bound on one message's size that the consumer will fetch.
    public var maxMessageBytes: Int = 8 * 1024 * 1024
    /// How long a commit (explicit, or on revocation) waits for the group coordinator's
    /// answer before it reports `_TIMED_OUT`.
    public var commitTimeout: Duration = .seconds(5)
    /// Raw librdkafka properties, applied last (escape hatch for anything not typed here).
    public var rawOptions: [String: String] = [:]

    public init(bootstrapServers: String, groupID: String) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
    }

    var properties: [(String, String)] {
        var props: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("group.id", groupID),
            ("client.id", clientID),
            ("session.timeout.ms", String(sessionTimeout.milliseconds)),
            ("heartbeat.interval.ms", String(heartbeatInterval.milliseconds)),
            ("max.poll.interval.ms", String(maxPollInterval.milliseconds)),
            ("partition.assignment.strategy", assignmentStrategy.rawValue),
            ("auto.offset.reset", autoOffsetReset.rawValue),
            // Offsets are ours: stored and committed explicitly after PostgreSQL commits.
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            // End-of-partition events tell ``KafkaConsumer/lag()`` that a partition with no
            // message read since assignment has been fetched up to its log end.
            ("enable.partition.eof", "true"),
            ("fetch.message.max.bytes", String(max(maxMessageBytes, 1_048_576))),
            ("receive.message.max.bytes", String(max(maxMessageBytes * 2, 100_000_000))),
        ]
        props += rawOptions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return props
    }
}

/// Typed settings for ``KafkaProducer``. Idempotence is always on (the broker drops
/// duplicates from retries and keeps per-partition order).
public struct KafkaProducerConfiguration: Sendable {
    public var bootstrapServers: String
    public var clientID: String = "assay"
    /// How long the producer waits to fill a batch.
    public var linger: Duration = .milliseconds(5)
    /// Upper bound on one message's size.
    public var maxMessageBytes: Int = 1_000_000
    /// How long a message may wait for delivery, retries included.
    public var deliveryTimeout: Duration = .seconds(120)
    /// Messages the local queue may hold before `enqueue` reports a full queue.
    public var maxQueuedMessages: Int = 500_000
    /// Raw librdkafka properties, applied last.
    public var rawOptions: [String: String] = [:]

    public init(bootstrapServers: String) {
        self.bootstrapServers = bootstrapServers
    }

    var properties: [(String, String)] {
        var props: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("client.id", clientID),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", String(linger.milliseconds)),
            ("message.max.bytes", String(maxMessageBytes)),
            ("message.timeout.ms", String(deliveryTimeout.milliseconds)),
            ("queue.buffering.max.messages", String(maxQueuedMessages)),
            // Java-compatible key hashing, so other producers pick the same partitions.
            ("partitioner", "murmur2_random"),
        ]
        props += rawOptions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return props
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Builds an `rd_kafka_conf_t` from properties. Throws with librdkafka's message on a bad key/value.
func makeRDKafkaConf(_ properties: [(String, String)], operation: String) throws(KafkaError) -> OpaquePointer {
    guard let conf = rd_kafka_conf_new() else {
        throw KafkaError.client("rd_kafka_conf_new returned NULL", operation: operation)
    }
    var errstr = [CChar](repeating: 0, count: 512)
    for (key, value) in properties {
        let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
        if result != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            let message = String(decoding: errstr.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw KafkaError.client("invalid property \(key): \(message)", operation: operation)
        }
    }
    return conf
}

/// Creates a client handle; librdkafka takes ownership of `conf` on success only.
func makeRDKafkaHandle(type: rd_kafka_type_t, conf: OpaquePointer, operation: String) throws(KafkaError) -> OpaquePointer {
    var errstr = [CChar](repeating: 0, count: 512)
    guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
        rd_kafka_conf_destroy(conf)
        let message = String(decoding: errstr.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw KafkaError.client(message, operation: operation)
    }
    return handle
}
