import AssayTestSupport
import Foundation
@testable import Kafka
import Testing

/// Gives no start offset, so every partition starts at Kafka's committed offset (as when the
/// application's own store could not be read during the rebalance).
struct NoStartOffsetsListener: ConsumerRebalanceListener {
    func startingOffsets(for partitions: [TopicPartition]) throws -> [TopicPartition: KafkaOffset] { [:] }
    func partitionsRevoked(_ partitions: [TopicPartition]) {}
}

@Suite("Restarting partitions that lost their position")
struct RestartTests {
    @Test("nothing committed: the partitions await a position, one restart of all of them reads everything, and no reset follows")
    func restartTogether() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("t", partitions: 3)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: testLogger)
        for partition in 0..<3 {
            for index in 0..<4 {
                _ = try await producer.send(ProducerMessage(topic: "t", partition: Int32(partition), value: Array("m\(index)".utf8)))
            }
        }
        await producer.close()
        let partitions = Set((0..<3).map { TopicPartition(topic: "t", partition: Int32($0)) })
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "restart-together"),
                                         listener: NoStartOffsetsListener(), logger: testLogger)
        try await consumer.subscribe(topics: ["t"])

        // The first reset: the group has committed nothing, so the partition has no position.
        var firstReset: (TopicPartition, Int64)?
        let deadline = ContinuousClock.now.advanced(by: waitGuard)
        while firstReset == nil && ContinuousClock.now < deadline {
            let batch = try await consumer.poll(maxMessages: 100, timeout: .milliseconds(200))
            #expect(batch.messages.isEmpty)
            for case .offsetReset(let tp, let offset, _) in batch.events where firstReset == nil { firstReset = (tp, offset) }
        }
        let reset = try #require(firstReset)
        // Reported with a logical offset: what tells a stale "nothing committed" reset apart.
        #expect(reset.1 < 0, "offset \(reset.1)")
        // All three started at the committed offset and none has delivered anything.
        #expect(try await consumer.partitionsAwaitingPosition() == partitions)

        try await consumer.restart(Dictionary(uniqueKeysWithValues: partitions.map { ($0, KafkaOffset.exact(1)) }))
        #expect(try await consumer.partitionsAwaitingPosition().isEmpty)
        let (messages, events) = try await collect(consumer, count: 9)
        var read: [Int32: [Int64]] = [:]
        for message in messages { read[message.topicPartition.partition, default: []].append(message.offset) }
        #expect(read == [0: [1, 2, 3], 1: [1, 2, 3], 2: [1, 2, 3]])
        let resets = events.compactMap { event -> TopicPartition? in
            if case .offsetReset(let tp, _, _) = event { return tp }
            return nil
        }
        #expect(resets.isEmpty, "resets after the restart: \(resets)")
        await consumer.close()
    }

    @Test("restarting a partition that is not assigned is refused, and nothing is reassigned")
    func restartUnassigned() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("t", partitions: 1)
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "restart-unassigned"),
                                         listener: NoStartOffsetsListener(), logger: testLogger)
        await #expect(throws: KafkaError.self) {
            try await consumer.restart([TopicPartition(topic: "t", partition: 0): .beginning])
        }
        #expect(try await consumer.assignment().isEmpty)
        await consumer.close()
    }

    @Test("a reset describes the current assignment unless the partition was revoked or restarted at a position of its own")
    func staleResets() {
        // Nothing committed (a logical offset): current only while the partition starts at its committed offset.
        #expect(KafkaConsumer.resetIsCurrent(offset: -1001, assigned: true, start: .committed))
        #expect(KafkaConsumer.resetIsCurrent(offset: -1001, assigned: true, start: nil))
        #expect(!KafkaConsumer.resetIsCurrent(offset: -1001, assigned: true, start: .exact(5)))
        #expect(!KafkaConsumer.resetIsCurrent(offset: -1001, assigned: true, start: .beginning))
        // Out of range at a real offset: current whatever the start.
        #expect(KafkaConsumer.resetIsCurrent(offset: 1000, assigned: true, start: .exact(1000)))
        #expect(KafkaConsumer.resetIsCurrent(offset: 7, assigned: true, start: .committed))
        // Revoked since: never.
        #expect(!KafkaConsumer.resetIsCurrent(offset: 1000, assigned: false, start: .exact(1000)))
        #expect(!KafkaConsumer.resetIsCurrent(offset: -1001, assigned: false, start: .committed))
    }
}
