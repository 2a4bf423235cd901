import AssayTestSupport
import Kafka
import Logging
import Postgres
import Synchronization
import Testing
@testable import AssayPipeline

@Suite("Outbox publisher when its service group is cancelled")
struct OutboxCancellationTests {
    @Test("with PostgreSQL unreachable, cancellation ends the publisher instead of retrying at once, forever")
    func cancellationEndsRetries() async throws {
        let closed = try ClosedLoopbackPort()
        let pool = try PostgresPool(
            configuration: PostgresConfiguration(url: "postgres://assay@127.0.0.1:\(closed.port)/assay", connectTimeout: .seconds(1)), size: 1)
        let cluster: MockCluster
        do {
            // A broker that answers, so that closing the publisher's producer is quick.
            cluster = try MockCluster(brokers: 1, logger: Logger(label: "test"))
        } catch {
            await pool.shutdown()
            throw error
        }
        let publisher = OutboxPublisher(configuration: .init(brokers: cluster.bootstrapServers), pool: pool, logger: Logger(label: "test"))
        let finished = Mutex(false)
        let task = Task {
            try? await publisher.run()
            finished.withLock { $0 = true }
        }
        task.cancel()
        // A publisher that keeps retrying never finishes; the deadline bounds the wait.
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while !finished.withLock({ $0 }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let ended = finished.withLock { $0 }
        #expect(ended)
        // A publisher still running keeps its pool and broker: freeing them under it could crash
        // the whole test process.
        if ended {
            await pool.shutdown()
            cluster.shutdown()
        }
    }
}
