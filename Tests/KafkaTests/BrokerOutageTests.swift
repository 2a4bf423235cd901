import AssayTestSupport
import Foundation
import Kafka
import Synchronization
import Testing

/// Starts every partition at the beginning and, on revocation, commits the offsets it was
/// given.
final class CommittingListener: ConsumerRebalanceListener, @unchecked Sendable {
    // @unchecked: `revocations` is only touched under `lock`.
    private let lock = NSLock()
    private let offsets: [TopicPartition: Int64]
    private var revocations = 0

    init(_ offsets: [TopicPartition: Int64]) { self.offsets = offsets }

    func startingOffsets(for partitions: [TopicPartition]) throws -> [TopicPartition: KafkaOffset] {
        Dictionary(uniqueKeysWithValues: partitions.map { ($0, .beginning) })
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) { lock.withLock { revocations += 1 } }

    func offsetsToCommit(revoking partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        offsets.filter { partitions.contains($0.key) }
    }

    var revocationCount: Int { lock.withLock { revocations } }
}

@Suite("Kafka wrapper with the brokers down")
struct BrokerOutageTests {
    let p0 = TopicPartition(topic: "t", partition: 0)
    let p1 = TopicPartition(topic: "t", partition: 1)

    /// A member of `group` that has read the 10 messages of topic `t` (2 partitions), with
    /// commits that wait `commitTimeout` for an answer.
    func joinedConsumer(_ cluster: MockCluster, group: String, listener: CommittingListener, commitTimeout: Duration = .seconds(1)) async throws -> KafkaConsumer {
        try cluster.createTopic("t", partitions: 2)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: testLogger)
        for index in 0..<10 {
            _ = try await producer.send(ProducerMessage(topic: "t", partition: Int32(index % 2), value: Array("m\(index)".utf8)))
        }
        await producer.close()
        var configuration = consumerConfiguration(cluster, group: group)
        configuration.commitTimeout = commitTimeout
        let consumer = try KafkaConsumer(configuration: configuration, listener: listener, logger: testLogger)
        try await consumer.subscribe(topics: ["t"])
        let (messages, _) = try await collect(consumer, count: 10)
        #expect(messages.count == 10)
        return consumer
    }

    /// Takes the only broker down and polls until the consumer reports every broker down.
    func takeBrokerDown(_ cluster: MockCluster, _ consumer: KafkaConsumer) async throws {
        try cluster.setBrokerDown(1)
        var allBrokersDown = false
        for _ in 0..<100 where !allBrokersDown {
            let batch = try await consumer.poll(maxMessages: 10, timeout: .milliseconds(100))
            allBrokersDown = batch.events.contains { if case .error(let error) = $0 { error.name == "_ALL_BROKERS_DOWN" } else { false } }
        }
        #expect(allBrokersDown, "the consumer reported every broker down")
    }

    @Test("with the only broker down, a commit reports _TIMED_OUT after its commit timeout (librdkafka's own wait lasts up to the session timeout)")
    func commitDuringOutage() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        let consumer = try await joinedConsumer(cluster, group: "g-outage-commit", listener: CommittingListener([:]))
        try await consumer.commit([p0: 1, p1: 1])  // answered while the broker is up
        try await takeBrokerDown(cluster, consumer)
        let outcome = Mutex("no answer")
        let returned = await finishes(within: .seconds(120)) { [p0, p1] in
            do {
                try await consumer.commit([p0: 3, p1: 3])
                outcome.withLock { $0 = "committed" }
            } catch {
                outcome.withLock { $0 = (error as? KafkaError)?.name ?? "\(error)" }
            }
        }
        #expect(returned, "the commit returned with the coordinator unreachable")
        #expect(outcome.withLock { $0 } == "_TIMED_OUT")
        await consumer.close(timeout: .seconds(1))
    }

    @Test("with the only broker down, close revokes through the listener, then gives up after its timeout instead of waiting for a coordinator")
    func closeDuringOutage() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        let listener = CommittingListener([p0: 5, p1: 5])
        let consumer = try await joinedConsumer(cluster, group: "g-outage-close", listener: listener)
        try await takeBrokerDown(cluster, consumer)
        let outcome = Mutex<KafkaConsumer.CloseOutcome?>(nil)
        let returned = await finishes(within: .seconds(120)) {
            let result = await consumer.close(timeout: .seconds(1))
            outcome.withLock { $0 = result }
        }
        #expect(returned, "close returned with the broker down")
        #expect(outcome.withLock { $0 } == .gaveUp, "the session timeout (6 s) is far beyond close's 1 s")
        #expect(listener.revocationCount == 1, "the partitions were revoked through the listener first")
    }

    @Test("with the broker up, close leaves the group and its revocation commit lands")
    func closeWithBrokerUp() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        let listener = CommittingListener([p0: 4, p1: 2])
        let consumer = try await joinedConsumer(cluster, group: "g-close", listener: listener)
        #expect(await consumer.close(timeout: .seconds(30)) == .left)
        #expect(listener.revocationCount == 1)
        let reader = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "g-close"), listener: FixedOffsetsListener(), logger: testLogger)
        let committed = try await reader.committed([p0, p1])
        #expect(committed[p0] == .some(4))
        #expect(committed[p1] == .some(2))
        await reader.close()
    }
}
