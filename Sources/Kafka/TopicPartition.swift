import CRdKafka

/// A partition of a topic.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)/\(partition)" }
}

/// Where a consumer starts reading a partition.
public enum KafkaOffset: Hashable, Sendable, CustomStringConvertible {
    /// The oldest message the broker still has.
    case beginning
    /// After the newest message.
    case end
    /// The group's offset committed in Kafka (falls back to `auto.offset.reset`).
    case committed
    /// An exact offset: the next message to read.
    case exact(Int64)

    var cValue: Int64 {
        switch self {
        case .beginning: return Int64(RD_KAFKA_OFFSET_BEGINNING)
        case .end: return Int64(RD_KAFKA_OFFSET_END)
        case .committed: return Int64(RD_KAFKA_OFFSET_STORED)
        case .exact(let offset): return offset
        }
    }

    public var description: String {
        switch self {
        case .beginning: return "beginning"
        case .end: return "end"
        case .committed: return "committed"
        case .exact(let offset): return String(offset)
        }
    }
}

/// Owns an `rd_kafka_topic_partition_list_t` for the duration of one call.
///
/// Not Sendable: built, passed to librdkafka and read back on one thread.
final class RDTopicPartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(capacity: Int) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(capacity, 1)))
    }

    convenience init(_ partitions: [TopicPartition], offset: (TopicPartition) -> Int64 = { _ in Int64(RD_KAFKA_OFFSET_INVALID) }) {
        self.init(capacity: partitions.count)
        for tp in partitions { add(tp, offset: offset(tp)) }
    }

    deinit { rd_kafka_topic_partition_list_destroy(pointer) }

    func add(_ tp: TopicPartition, offset: Int64) {
        let element = rd_kafka_topic_partition_list_add(pointer, tp.topic, tp.partition)
        element?.pointee.offset = offset
    }

    /// Copies the elements of a list librdkafka owns (e.g. in a rebalance callback).
    static func elements(of list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [(TopicPartition, Int64, rd_kafka_resp_err_t)] {
        guard let list, list.pointee.cnt > 0, let elems = list.pointee.elems else { return [] }
        return (0..<Int(list.pointee.cnt)).map { index in
            let element = elems[index]
            let topic = element.topic.map { String(cString: $0) } ?? ""
            return (TopicPartition(topic: topic, partition: element.partition), element.offset, element.err)
        }
    }

    var elements: [(TopicPartition, Int64, rd_kafka_resp_err_t)] { Self.elements(of: pointer) }
}
