import Kafka
import Testing
@testable import AssayPipeline

/// Which partitions a poll's events leave without a position: restarted together, once.
@Suite("Offset resets collected from a poll")
struct PositionResetsTests {
    let p0 = TopicPartition(topic: "traces", partition: 0)
    let p1 = TopicPartition(topic: "traces", partition: 1)

    @Test("resets are collected, the latest reason kept; errors change nothing")
    func collected() {
        var resets = PositionResets()
        #expect(resets.isEmpty)
        resets.note(.offsetReset(p0, offset: -1001, reason: "nothing committed"))
        resets.note(.error(KafkaError(code: -195, name: "_TRANSPORT", message: "broker down", operation: "poll")))
        resets.note(.offsetReset(p1, offset: 40, reason: "out of range"))
        resets.note(.offsetReset(p0, offset: 12, reason: "out of range again"))
        #expect(resets.partitions == [p0, p1])
        #expect(resets.reason(for: p0) == "out of range again")
        #expect(resets.reason(for: p1) == "out of range")
    }

    @Test("a rebalance makes the resets before it moot; those after it count")
    func rebalanceClears() {
        var resets = PositionResets()
        resets.note(.offsetReset(p0, offset: -1001, reason: "before the revocation"))
        resets.note(.revoked([p0, p1]))
        #expect(resets.isEmpty)
        resets.note(.offsetReset(p1, offset: -1001, reason: "before the assignment"))
        resets.note(.assigned([p0: .exact(3), p1: .committed]))
        #expect(resets.isEmpty)
        resets.note(.offsetReset(p1, offset: -1001, reason: "after the assignment"))
        #expect(resets.partitions == [p1])
    }
}
