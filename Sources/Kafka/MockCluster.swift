import CRdKafka
import Foundation
import Logging

/// Kafka protocol API keys, for request error injection.
public enum KafkaAPIKey: Int16, Sendable, CaseIterable {
    case produce = 0
    case fetch = 1
    case listOffsets = 2
    case metadata = 3
    case offsetCommit = 8
    case offsetFetch = 9
    case findCoordinator = 10
    case joinGroup = 11
    case heartbeat = 12
    case leaveGroup = 13
    case syncGroup = 14
    case initProducerID = 22
}

/// librdkafka's in-process mock cluster: real Kafka-protocol brokers on loopback ports,
/// with fault injection. Used by tests, `assay dev-broker` and `assay demo`.
///
/// `@unchecked Sendable`: the mock API functions lock the cluster internally; `hostHandle`
/// and `cluster` are immutable and freed only in ``shutdown()``/deinit (cluster first).
public final class MockCluster: @unchecked Sendable {
    private let hostHandle: OpaquePointer
    private let cluster: OpaquePointer
    private let context: RDKafkaCallbackContext
    private let lock = NSLock()
    private var isShutDown = false
    public let brokerCount: Int
    /// `host:port,...` of the mock brokers.
    public let bootstrapServers: String

    /// How many bytes of messages to plan for per partition. The mock brokers keep only
    /// about 5 MiB per partition and delete the oldest messages beyond that, read or not;
    /// this leaves a margin for uneven keys.
    public static let plannedBytesPerPartition = 4 * 1_048_576

    /// The fewest partitions that hold `bytes` of messages (see ``plannedBytesPerPartition``).
    public static func partitionsToHold(bytes: Int) -> Int {
        max(1, (bytes + plannedBytesPerPartition - 1) / plannedBytesPerPartition)
    }

    public init(brokers: Int = 1, logger: Logger) throws(KafkaError) {
        precondition(brokers >= 1, "a mock cluster needs at least one broker")
        let context = RDKafkaCallbackContext(logger: logger)
        // The mock cluster needs a client handle for its bookkeeping; a bare producer will do.
        let conf = try makeRDKafkaConf([("client.id", "assay-mock-host")], operation: "mock cluster")
        installCommonCallbacks(conf: conf, context: context)
        let host = try makeRDKafkaHandle(type: RD_KAFKA_PRODUCER, conf: conf, operation: "mock cluster host")
        guard let cluster = rd_kafka_mock_cluster_new(host, Int32(brokers)) else {
            rd_kafka_destroy(host)
            throw KafkaError.client("rd_kafka_mock_cluster_new failed", operation: "mock cluster")
        }
        self.hostHandle = host
        self.cluster = cluster
        self.context = context
        self.brokerCount = brokers
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit { shutdown() }

    /// Stops the brokers and frees the cluster.
    public func shutdown() {
        lock.lock()
        defer { lock.unlock() }
        guard !isShutDown else { return }
        isShutDown = true
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(hostHandle)
    }

    /// Creates a topic (the mock has no CreateTopics API).
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(replicationFactor))
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "create topic \(name)") }
    }

    /// Disconnects a broker (1-based id) and refuses new connections; no leader change.
    public func setBrokerDown(_ brokerID: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_broker_set_down(cluster, brokerID)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "broker \(brokerID) down") }
    }

    /// Lets a broker accept connections again.
    public func setBrokerUp(_ brokerID: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_broker_set_up(cluster, brokerID)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "broker \(brokerID) up") }
    }

    /// Moves a partition's leadership to another broker.
    public func setPartitionLeader(topic: String, partition: Int32, brokerID: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_partition_set_leader(cluster, topic, partition, brokerID)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "set leader \(topic)/\(partition)") }
    }

    /// Makes the next `errors.count` requests of this API fail with these errors, in order.
    public func pushRequestErrors(_ api: KafkaAPIKey, _ errors: [KafkaErrorCode]) {
        let codes = errors.map(\.cValue)
        codes.withUnsafeBufferPointer { buffer in
            rd_kafka_mock_push_request_errors_array(cluster, api.rawValue, buffer.count, buffer.baseAddress)
        }
    }

    /// Clears pending injected errors for an API.
    public func clearRequestErrors(_ api: KafkaAPIKey) {
        rd_kafka_mock_clear_request_errors(cluster, api.rawValue)
    }
}
