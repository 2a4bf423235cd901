import AssayStore
import AssayTestSupport
import Kafka
import Logging
import Postgres
import Testing
@testable import AssayPipeline

/// What a revocation commits to Kafka comes from what the replica knows is durable, without
/// asking PostgreSQL inside the rebalance callback.
@Suite("Offsets committed on revocation")
struct DurableOffsetsTests {
    let p0 = TopicPartition(topic: "traces", partition: 0)
    let p1 = TopicPartition(topic: "traces", partition: 1)
    let p2 = TopicPartition(topic: "traces", partition: 2)

    @Test("an offset only moves forward, unless PostgreSQL's was set back; revoked partitions are forgotten")
    func recordResetTake() {
        let durable = DurableOffsets()
        durable.record([p0: 100, p1: 50])
        durable.record([p0: 80, p1: 70])  // a write that finished late cannot move p0 back
        #expect(durable.take([p0, p2]) == [p0: 100])
        #expect(durable.take([p0]) == [:])
        durable.assign([p1], stored: [p1: 10])  // the topic was recreated
        #expect(durable.take([p1]) == [p1: 10])
    }

    @Test("an assignment replaces what was known of its partitions with PostgreSQL's offsets")
    func assignmentReplaces() {
        let durable = DurableOffsets()
        durable.record([p0: 500, p1: 60, p2: 9])  // p0 and p1 stale: left over from before a revocation
        durable.assign([p0, p1], stored: [p0: 300])  // PostgreSQL set p0 back; p1 has no stored offset
        #expect(durable.take([p0, p1, p2]) == [p0: 300, p2: 9])
    }

    @Test("a revocation with PostgreSQL unreachable still commits what is known to be durable")
    func revocationWithoutPostgres() throws {
        let closed = try ClosedLoopbackPort()
        let pool = try PostgresPool(
            configuration: PostgresConfiguration(url: "postgres://assay@127.0.0.1:\(closed.port)/assay", connectTimeout: .seconds(1)), size: 1)
        defer { pool.shutdown() }
        let durable = DurableOffsets()
        let listener = StoredOffsetsListener(pool: pool, store: IngestStore(groupID: "assay"), durable: durable, logger: Logger(label: "test"))
        durable.record([p0: 42, p1: 7])
        #expect(listener.offsetsToCommit(revoking: [p0, p2]) == [p0: 42])
        #expect(listener.offsetsToCommit(revoking: [p1]) == [p1: 7])
        // Assignment still needs PostgreSQL (the consumer falls back to Kafka's offsets).
        #expect(throws: (any Error).self) { try listener.startingOffsets(for: [p2]) }
    }
}
