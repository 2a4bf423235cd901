import AssayTestSupport
import Foundation
import Kafka
import Logging
import Testing

/// A listener that starts partitions at fixed offsets and records revocations.
final class FixedOffsetsListener: ConsumerRebalanceListener, @unchecked Sendable {
    private let lock = NSLock()
    private let offsets: [TopicPartition: KafkaOffset]
    private var _revoked: [TopicPartition] = []

    init(_ offsets: [TopicPartition: KafkaOffset] = [:]) { self.offsets = offsets }

    func startingOffsets(for partitions: [TopicPartition]) throws -> [TopicPartition: KafkaOffset] {
        Dictionary(uniqueKeysWithValues: partitions.map { ($0, offsets[$0] ?? .beginning) })
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {
        lock.withLock { _revoked += partitions }
    }

    var revoked: [TopicPartition] { lock.withLock { _revoked } }
}

let testLogger: Logger = {
    var logger = Logger(label: "kafka-tests")
    logger.logLevel = ProcessInfo.processInfo.environment["ASSAY_TEST_LOG"] == nil ? .critical : .debug
    return logger
}()

func consumerConfiguration(_ cluster: MockCluster, group: String) -> KafkaConsumerConfiguration {
    var configuration = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: group)
    configuration.sessionTimeout = .seconds(6)
    configuration.heartbeatInterval = .milliseconds(500)
    return configuration
}

/// Polls until `count` messages arrived or the deadline passes.
func collect(_ consumer: KafkaConsumer, count: Int, within limit: Duration = .seconds(30)) async throws -> (messages: [ConsumerMessage], events: [ConsumerEvent]) {
    var messages: [ConsumerMessage] = []
    var events: [ConsumerEvent] = []
    let deadline = ContinuousClock.now.advanced(by: limit)
    while messages.count < count && ContinuousClock.now < deadline {
        let batch = try await consumer.poll(maxMessages: 500, timeout: .milliseconds(200))
        messages += batch.messages
        events += batch.events
    }
    return (messages, events)
}

@Suite("Kafka wrapper against the mock cluster")
struct KafkaWrapperTests {
    @Test("produced messages arrive intact: keys, headers, tombstones, empty values")
    func roundTrip() async throws {
        let cluster = try MockCluster(brokers: 3, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("t", partitions: 4)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: testLogger)
        var expected: [String: [UInt8]?] = [:]
        for index in 0..<200 {
            let key = "k\(index)"
            let value: [UInt8]? = index == 7 ? nil : (index == 8 ? [] : Array("v\(index)".utf8))
            expected[key] = value
            _ = try await producer.send(ProducerMessage(topic: "t", key: Array(key.utf8), value: value, headers: [("content-type", Array("application/json".utf8))]))
        }
        await producer.close()

        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "g1"), listener: FixedOffsetsListener(), logger: testLogger)
        try await consumer.subscribe(topics: ["t"])
        let (messages, events) = try await collect(consumer, count: 200)
        #expect(messages.count == 200)
        var seen: [String: [UInt8]?] = [:]
        for message in messages {
            let key = String(decoding: message.key ?? [], as: UTF8.self)
            seen[key] = message.value
            #expect(message.header("content-type") == "application/json")
        }
        #expect(seen.count == 200)
        #expect(seen["k7"] == .some(nil), "tombstone keeps a nil value")
        #expect(seen["k8"] == .some([]), "empty value stays empty, not null")
        #expect(seen["k42"] == .some(Array("v42".utf8)))
        let assigned = events.compactMap { event -> [TopicPartition: KafkaOffset]? in
            if case .assigned(let offsets) = event { return offsets }
            return nil
        }
        #expect(assigned.first?.count == 4)
        // Messages with the same key land on the same partition, in order.
        let byPartition = Dictionary(grouping: messages, by: \.topicPartition)
        for (_, list) in byPartition {
            #expect(list.map(\.offset) == list.map(\.offset).sorted())
        }
        await consumer.close()
    }

    @Test("explicit commit is visible as the group's committed offset; watermarks match")
    func commitAndWatermarks() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("t", partitions: 2)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: testLogger)
        for index in 0..<30 {
            _ = try await producer.send(ProducerMessage(topic: "t", partition: Int32(index % 2), value: Array("m\(index)".utf8)))
        }
        await producer.close()

        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "g2"), listener: FixedOffsetsListener(), logger: testLogger)
        try await consumer.subscribe(topics: ["t"])
        let (messages, _) = try await collect(consumer, count: 30)
        #expect(messages.count == 30)
        let p0 = TopicPartition(topic: "t", partition: 0)
        let p1 = TopicPartition(topic: "t", partition: 1)
        try await consumer.commit([p0: 15, p1: 9])
        let committed = try await consumer.committed([p0, p1])
        #expect(committed[p0] == .some(15))
        #expect(committed[p1] == .some(9))
        let marks = try await consumer.watermarks(p0)
        #expect(marks.low == 0)
        #expect(marks.high == 15)
        await consumer.close()
    }

    @Test("partitionCount asks the broker for a topic's partitions")
    func partitionCount() async throws {
        let cluster = try MockCluster(brokers: 2, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("five", partitions: 5)
        try cluster.createTopic("one", partitions: 1)
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "g-count"), listener: FixedOffsetsListener(), logger: testLogger)
        #expect(try await consumer.partitionCount(topic: "five") == 5)
        #expect(try await consumer.partitionCount(topic: "one") == 1)
        await consumer.close()
    }

    @Test("a partition starts at the offset the listener returns")
    func startingOffsets() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("t", partitions: 1)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: testLogger)
        for index in 0..<20 {
            _ = try await producer.send(ProducerMessage(topic: "t", partition: 0, value: Array("m\(index)".utf8)))
        }
        await producer.close()
        let p0 = TopicPartition(topic: "t", partition: 0)
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "g3"), listener: FixedOffsetsListener([p0: .exact(12)]), logger: testLogger)
        try await consumer.subscribe(topics: ["t"])
        let (messages, _) = try await collect(consumer, count: 8)
        #expect(messages.map(\.offset) == Array(12..<20))
        #expect(messages.first.map { String(decoding: $0.value ?? [], as: UTF8.self) } == "m12")
        await consumer.close()
    }

    @Test("lag: a partition assigned at its log end reads 0 before any message arrives, and counts what is produced after")
    func lagWithoutConsumedMessages() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("t", partitions: 2)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: testLogger)
        for index in 0..<10 {
            _ = try await producer.send(ProducerMessage(topic: "t", partition: 0, value: Array("m\(index)".utf8)))
        }
        let p0 = TopicPartition(topic: "t", partition: 0)
        let p1 = TopicPartition(topic: "t", partition: 1)
        // p0 starts after its last message (as after a rebalance with everything stored), so
        // librdkafka has no position for it; p1 is empty and starts at the beginning.
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "lag"),
                                         listener: FixedOffsetsListener([p0: .exact(10), p1: .beginning]), logger: testLogger)
        try await consumer.subscribe(topics: ["t"])
        var lags: [TopicPartition: Int64?] = [:]
        let deadline = ContinuousClock.now.advanced(by: waitGuard)
        // Poll until both partitions have a known lag (the first fetch caches the watermarks).
        while ContinuousClock.now < deadline {
            let batch = try await consumer.poll(maxMessages: 100, timeout: .milliseconds(100))
            #expect(batch.messages.isEmpty, "nothing to read: \(batch.messages.map(\.offset))")
            lags = try await consumer.lag()
            if lags.count == 2, lags.values.allSatisfy({ $0 != nil }) { break }
        }
        #expect(lags[p0] == .some(0), "\(lags)")
        #expect(lags[p1] == .some(0), "\(lags)")

        // Three more on p0: read from the assigned offset, then caught up again.
        for index in 10..<13 {
            _ = try await producer.send(ProducerMessage(topic: "t", partition: 0, value: Array("m\(index)".utf8)))
        }
        await producer.close()
        var read: [Int64] = []
        while ContinuousClock.now < deadline && read.count < 3 {
            read += try await consumer.poll(maxMessages: 100, timeout: .milliseconds(100)).messages.map(\.offset)
        }
        #expect(read == [10, 11, 12])
        #expect(try await consumer.lag()[p0] == .some(0))
        await consumer.close()
    }

    @Test("an offset beyond the log end is reported as offsetReset, and seek recovers")
    func offsetOutOfRange() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("t", partitions: 1)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: testLogger)
        for index in 0..<5 {
            _ = try await producer.send(ProducerMessage(topic: "t", partition: 0, value: Array("m\(index)".utf8)))
        }
        await producer.close()
        let p0 = TopicPartition(topic: "t", partition: 0)
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "g4"), listener: FixedOffsetsListener([p0: .exact(1000)]), logger: testLogger)
        try await consumer.subscribe(topics: ["t"])
        var reset: (TopicPartition, Int64)?
        let deadline = ContinuousClock.now.advanced(by: waitGuard)
        while reset == nil && ContinuousClock.now < deadline {
            let batch = try await consumer.poll(maxMessages: 100, timeout: .milliseconds(200))
            #expect(batch.messages.isEmpty)
            for case .offsetReset(let tp, let offset, _) in batch.events { reset = (tp, offset) }
        }
        #expect(reset?.0 == p0)
        try await consumer.restart(p0, at: .beginning)
        let (messages, _) = try await collect(consumer, count: 5)
        #expect(messages.map(\.offset) == [0, 1, 2, 3, 4])
        await consumer.close()
    }

    @Test("two members of one group split the partitions; pause stops and resume restarts delivery")
    func groupSplitAndPause() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("t", partitions: 4)
        let first = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "g5"), listener: FixedOffsetsListener(), logger: testLogger)
        let second = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "g5"), listener: FixedOffsetsListener(), logger: testLogger)
        try await first.subscribe(topics: ["t"])
        try await second.subscribe(topics: ["t"])
        // Alone this test takes about 5 s, inside the whole suite on 2 cores 66–109 s, and once
        // its wait for the split ran past an earlier 40 s bound.
        let deadline = ContinuousClock.now.advanced(by: waitGuard)
        var a: Set<TopicPartition> = []
        var b: Set<TopicPartition> = []
        while ContinuousClock.now < deadline {
            async let pollA = first.poll(maxMessages: 10, timeout: .milliseconds(200))
            async let pollB = second.poll(maxMessages: 10, timeout: .milliseconds(200))
            _ = try await (pollA, pollB)
            a = try await first.assignment()
            b = try await second.assignment()
            if a.count + b.count == 4 && !a.isEmpty && !b.isEmpty { break }
        }
        #expect(a.count == 2 && b.count == 2)
        #expect(a.isDisjoint(with: b))

        // Pause everything `first` owns, publish to those partitions, see nothing; resume, see all.
        try await first.pause(Array(a))
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: testLogger)
        for tp in a {
            for index in 0..<5 {
                _ = try await producer.send(ProducerMessage(topic: "t", partition: tp.partition, value: Array("m\(index)".utf8)))
            }
        }
        await producer.close()
        let paused = try await first.poll(maxMessages: 100, timeout: .milliseconds(500))
        #expect(paused.messages.isEmpty)
        try await first.resume(Array(a))
        let (messages, _) = try await collect(first, count: 10, within: .seconds(120))
        #expect(messages.count == 10)
        await second.close()
        await first.close()
    }

    @Test("a partition paused after delivering, then rewound with seek, delivers again from there on resume")
    func pauseSeekResume() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("t", partitions: 1)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: testLogger)
        for index in 0..<10 {
            _ = try await producer.send(ProducerMessage(topic: "t", partition: 0, value: Array("m\(index)".utf8)))
        }
        await producer.close()
        let p0 = TopicPartition(topic: "t", partition: 0)
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "g-rewind"), listener: FixedOffsetsListener(), logger: testLogger)
        try await consumer.subscribe(topics: ["t"])
        var first: [ConsumerMessage] = []
        let deadline = ContinuousClock.now.advanced(by: waitGuard)
        while first.count < 3 && ContinuousClock.now < deadline {
            first += try await consumer.poll(maxMessages: 3 - first.count, timeout: .milliseconds(200)).messages
        }
        #expect(first.map(\.offset) == [0, 1, 2])
        // The ingest service does this with messages it read while PostgreSQL was down.
        try await consumer.pause([p0])
        try await consumer.seek(p0, to: .exact(1))
        let whilePaused = try await consumer.poll(maxMessages: 100, timeout: .milliseconds(500))
        #expect(whilePaused.messages.isEmpty)
        try await consumer.resume([p0])
        let (again, _) = try await collect(consumer, count: 9)
        #expect(again.map(\.offset) == Array(1..<10))
        await consumer.close()
    }

    @Test("while pausing new assignments, assigned partitions deliver nothing until resumed")
    func pauseNewAssignments() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("t", partitions: 2)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: testLogger)
        for index in 0..<6 {
            _ = try await producer.send(ProducerMessage(topic: "t", partition: Int32(index % 2), value: Array("m\(index)".utf8)))
        }
        await producer.close()
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "g-pause-new"), listener: FixedOffsetsListener(), logger: testLogger)
        try await consumer.pauseNewAssignments(true)
        try await consumer.subscribe(topics: ["t"])
        var delivered: [ConsumerMessage] = []
        let deadline = ContinuousClock.now.advanced(by: waitGuard)
        while try await consumer.assignment().isEmpty, ContinuousClock.now < deadline {
            delivered += try await consumer.poll(maxMessages: 100, timeout: .milliseconds(200)).messages
        }
        // Long enough for fetches to have returned had the partitions not been paused.
        delivered += try await consumer.poll(maxMessages: 100, timeout: .seconds(1)).messages
        let assigned = try await consumer.assignment()
        #expect(assigned.count == 2)
        #expect(delivered.isEmpty, "nothing delivered from partitions paused at assignment")
        #expect(try await consumer.pausedPartitions() == assigned)
        try await consumer.pauseNewAssignments(false)
        try await consumer.resume(Array(try await consumer.pausedPartitions()))
        let (messages, _) = try await collect(consumer, count: 6)
        #expect(messages.count == 6)
        #expect(try await consumer.pausedPartitions().isEmpty)
        await consumer.close()
    }

    @Test("injected produce errors are retried by the idempotent producer without duplicates")
    func producerRetriesInjectedErrors() async throws {
        let cluster = try MockCluster(brokers: 1, logger: testLogger)
        defer { cluster.shutdown() }
        try cluster.createTopic("t", partitions: 1)
        cluster.pushRequestErrors(.produce, [.notEnoughReplicas, .requestTimedOut, .notEnoughReplicas])
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: cluster.bootstrapServers), logger: testLogger)
        var reports: [DeliveryReport] = []
        for index in 0..<10 {
            reports.append(try await producer.send(ProducerMessage(topic: "t", partition: 0, value: Array("m\(index)".utf8))))
        }
        await producer.close()
        #expect(reports.map(\.offset) == Array(0..<10))
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: "g6"), listener: FixedOffsetsListener(), logger: testLogger)
        try await consumer.subscribe(topics: ["t"])
        let (messages, _) = try await collect(consumer, count: 10)
        #expect(messages.map { String(decoding: $0.value ?? [], as: UTF8.self) } == (0..<10).map { "m\($0)" })
        let marks = try await consumer.watermarks(TopicPartition(topic: "t", partition: 0))
        #expect(marks.high == 10)
        await consumer.close()
    }

    @Test("a bad raw property is a typed configuration error")
    func badConfiguration() throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:1", groupID: "g")
        configuration.rawOptions["no.such.property"] = "1"
        #expect(throws: KafkaError.self) {
            _ = try KafkaConsumer(configuration: configuration, listener: FixedOffsetsListener(), logger: testLogger)
        }
    }
}
