import AssayTestSupport
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
        defer { pool.shutdown() }
        // No broker either: the publisher never gets as far as producing.
        let publisher = OutboxPublisher(configuration: .init(brokers: "127.0.0.1:\(closed.port)"), pool: pool, logger: Logger(label: "test"))
        let finished = Mutex(false)
        let task = Task {
            try? await publisher.run()
            finished.withLock { $0 = true }
        }
        task.cancel()
        // A publisher that keeps retrying never finishes; the deadline bounds the wait.
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while !finished.withLock({ $0 }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(finished.withLock { $0 })
    }
}
