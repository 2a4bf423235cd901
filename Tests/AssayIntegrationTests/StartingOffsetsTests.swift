import AssayTestSupport
import AssayStore
import Foundation
import Kafka
import Postgres
import Testing
@testable import AssayPipeline

/// Where partitions start after a rebalance comes from PostgreSQL. Without it they start at
/// Kafka's committed offsets, and where nothing is committed they stop until restarted.
@Suite("Starting offsets at assignment")
struct StartingOffsetsTests {
    @Test("a pooled connection the server closed (as when it restarts): the offsets are read again on a new one")
    func rereadAfterServerClosedConnection() async throws {
        try await Environment.with(partitions: 2) { env in
            let pool = try PostgresPool(configuration: AssayDatabase.configuration(url: env.database.url, schema: .default), size: 1,
                                        name: "listener", logger: quietLogger)
            defer { pool.shutdown() }
            let store = IngestStore(groupID: "assay")
            let p0 = TopicPartition(topic: env.topic, partition: 0)
            let p1 = TopicPartition(topic: env.topic, partition: 1)
            try await env.pool.withConnection { connection in
                try store.registerPartitions(topic: env.topic, partitions: [0, 1], on: connection)
                try store.resetOffset(PartitionKey(topic: env.topic, partition: 0), to: 17, on: connection)
            }

            // The listener's only connection, opened and then ended by the server.
            let backend = try await pool.withConnection { try $0.query("SELECT pg_backend_pid()")[0].int64(0) }
            try await env.pool.withConnection { connection in
                _ = try connection.query("SELECT pg_terminate_backend($1::int)", [.text(String(backend))])
            }
            let deadline = ContinuousClock.now.advanced(by: waitGuard)
            while try await env.pool.withConnection({ connection in
                try connection.query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", [.text(String(backend))])[0].int(0)
            }) > 0 {
                guard ContinuousClock.now < deadline else { throw TestFailure("backend \(backend) still running") }
                await Task.yield()
            }

            let durable = DurableOffsets()
            let listener = StoredOffsetsListener(pool: pool, store: store, durable: durable, logger: quietLogger)
            let offsets = try listener.startingOffsets(for: [p0, p1])
            #expect(offsets == [p0: .exact(17), p1: .beginning])
            #expect(durable.take([p0, p1]) == [p0: 17])
        }
    }
}
