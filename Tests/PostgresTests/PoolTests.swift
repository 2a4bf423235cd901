import Foundation
import LocalPostgres
import Postgres
import Synchronization
import Testing

/// `PostgresPool`.
@Suite("PostgresPool", .timeLimit(.minutes(2)))
struct PoolTests {
    struct JobReport: Sendable {
        var threadName: String
        var onPoolThread: Bool
        var backendPID: Int
    }

    @Test("3 slots run 20 concurrent jobs, all on the pool's own threads")
    func concurrentJobs() async throws {
        let meter = ConcurrencyMeter()
        let (reports, idle, waiting, callerOnPool) = try await withPool(size: 3, name: "conc") { pool, _ in
            let reports = try await withThrowingTaskGroup(of: JobReport.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await pool.withConnection { connection in
                            meter.enter()
                            defer { meter.leave() }
                            let pid = try connection.query("SELECT pg_backend_pid() AS pid, pg_sleep(0.05)")[0].int("pid")
                            return JobReport(
                                threadName: Thread.current.name ?? "",
                                onPoolThread: pool.isCurrentThreadInPool,
                                backendPID: pid)
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            return (reports, pool.idleSlotCount, pool.waiterCount, pool.isCurrentThreadInPool)
        }
        #expect(reports.count == 20)
        // Evidence that no job ran on the cooperative pool: every job found itself on one of
        // the pool's DedicatedThreads (`isCurrentThreadInPool` asks `DedicatedThread.isCurrent`).
        // Thread names are not reliable evidence on Linux: Foundation sometimes fails to apply
        // a name that a new thread sets for itself.
        #expect(reports.allSatisfy { $0.onPoolThread }, "threads: \(Set(reports.map(\.threadName)))")
        #expect(Set(reports.map(\.backendPID)).count <= 3)
        #expect(meter.maximum <= 3)
        #expect(meter.maximum >= 2, "jobs never overlapped")
        #expect(idle == 3)
        #expect(waiting == 0)
        #expect(!callerOnPool)
    }

    @Test("the pool survives pg_terminate_backend of its connections and reconnects")
    func terminatedConnections() async throws {
        let applicationName = "assay-term-\(UUID().uuidString.prefix(8))"
        try await withPool(size: 3, name: "term", applicationName: applicationName) { pool, database in
            // Open all three connections at once.
            let before = try await Self.pidsOfAllSlots(pool)
            #expect(before.count == 3)

            let admin = try PostgresPool(configuration: PostgresConfiguration(url: database.url), size: 1)
            let terminated = try await admin.withConnection { connection in
                try connection.query(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) AS n FROM pg_stat_activity WHERE application_name = $1",
                    [.string(applicationName)])[0].int("n")
            }
            await admin.shutdown()
            #expect(terminated == 3)

            // Jobs right after: a connection whose loss was not yet visible may fail one job,
            // with a connection error; no other failure is acceptable.
            let outcomes = await withTaskGroup(of: Result<Int, Error>.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        await Result {
                            try await pool.withConnection { try $0.query("SELECT pg_backend_pid() AS pid")[0].int("pid") }
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            var failures = 0
            for case .failure(let error) in outcomes {
                failures += 1
                #expect((error as? PostgresError)?.isConnectionError == true, "unexpected failure: \(error)")
            }
            #expect(failures <= 3)
            for case .success(let pid) in outcomes { #expect(!before.contains(pid)) }

            // After that every slot works again, on new backends.
            let after = try await Self.pidsOfAllSlots(pool)
            #expect(after.count == 3)
            #expect(after.isDisjoint(with: before))
        }
    }

    @Test("a job that kills its own backend fails with a connection error; the next job reconnects")
    func brokenDuringJob() async throws {
        try await withPool(size: 1) { pool, _ in
            let first = try await pool.withConnection { Int($0.backendPID) }
            let error = await #expect(throws: PostgresError.self) {
                try await pool.withConnection { try $0.execute("SELECT pg_terminate_backend(pg_backend_pid())") }
            }
            #expect(error?.isConnectionError == true)
            let (second, healthy) = try await pool.withConnection { (Int($0.backendPID), $0.isHealthy) }
            #expect(second != first)
            #expect(healthy)
        }
    }

    @Test("a cancelled waiter gives up its place without leaking the slot")
    func cancelledWaiter() async throws {
        try await withPool(size: 1) { pool, _ in
            let gate = Gate()
            let holder = Task {
                try await pool.withConnection { connection in
                    _ = gate.wait()
                    return try connection.query("SELECT 1 AS one")[0].int("one")
                }
            }
            try await waitUntil("the holder has the slot") { pool.idleSlotCount == 0 }

            let waiter = Task { try await pool.withConnection { _ in "ran" } }
            try await waitUntil("the waiter queues") { pool.waiterCount == 1 }
            waiter.cancel()
            let waited = await waiter.result
            #expect(throws: CancellationError.self) { try waited.get() }
            #expect(pool.waiterCount == 0)

            gate.open()
            #expect(try await holder.value == 1)
            try await waitUntil("the slot is back") { pool.idleSlotCount == 1 }
            let next = try await withTimeout(seconds: 10, "a job after the cancellation") {
                try await pool.withConnection { _ in "next" }
            }
            #expect(next == "next")
        }
    }

    @Test("many waiters cancelled at random moments leak no slot")
    func cancellationStress() async throws {
        try await withPool(size: 2) { pool, _ in
            let tasks = (0..<60).map { i in
                Task {
                    try await pool.withConnection { connection in
                        try connection.query("SELECT pg_sleep(0.002)").count + i
                    }
                }
            }
            for (i, task) in tasks.enumerated() where i % 3 != 0 {
                try await Task.sleep(for: .microseconds(200 * (i % 7)))
                task.cancel()
            }
            for task in tasks {
                switch await task.result {
                case .success: break
                case .failure(let error): #expect(error is CancellationError, "unexpected: \(error)")
                }
            }
            #expect(pool.idleSlotCount == 2)
            #expect(pool.waiterCount == 0)
            // Both slots can be held at the same time.
            let rendezvous = Rendezvous(parties: 2)
            let met = try await withTimeout(seconds: 20, "two jobs meet") {
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for _ in 0..<2 { group.addTask { try await pool.withConnection { _ in rendezvous.arriveAndWait() } } }
                    return try await group.reduce(true) { $0 && $1 }
                }
            }
            #expect(met)
        }
    }

    @Test("shutdown fails waiters and later calls with poolClosed, letting the running job finish")
    func shutdown() async throws {
        try await TestDatabase.withTemporary(prefix: "pgtest") { database in
            let pool = try PostgresPool(configuration: PostgresConfiguration(url: database.url), size: 1)
            let gate = Gate()
            let started = Mutex(false)
            let holder = Task {
                try await pool.withConnection { _ in
                    started.withLock { $0 = true }
                    return gate.wait()
                }
            }
            try await waitUntil("the holder's job runs") { started.withLock { $0 } }
            let waiter = Task { try await pool.withConnection { _ in "ran" } }
            try await waitUntil("the waiter queues") { pool.waiterCount == 1 }

            let shutdown = Task { await pool.shutdown() }
            let waited = await waiter.result
            #expect((waited.failure as? PostgresError)?.kind == .poolClosed)
            gate.open()
            #expect(try await holder.value == true)
            await shutdown.value

            let later = await #expect(throws: PostgresError.self) { try await pool.withConnection { _ in 1 } }
            #expect(later?.kind == .poolClosed)
        }
    }

    @Test("withConnectionBlocking works from a thread of our own and refuses pool threads")
    func blockingUse() async throws {
        try await withPool(size: 1) { pool, _ in
            let fromThread: Result<Int, Error> = await withCheckedContinuation { continuation in
                let thread = Thread {
                    continuation.resume(returning: Result {
                        try pool.withConnectionBlocking { try $0.query("SELECT 7 AS seven")[0].int("seven") }
                    })
                }
                thread.start()
            }
            #expect(try fromThread.get() == 7)
            let nested = try await pool.withConnection { _ in
                Result { try pool.withConnectionBlocking { _ in 1 } }.failure as? PostgresError
            }
            #expect(nested?.kind == .invalidUsage)
        }
    }

    /// Runs one job per slot at the same time and returns their backend pids.
    static func pidsOfAllSlots(_ pool: PostgresPool) async throws -> Set<Int> {
        let rendezvous = Rendezvous(parties: pool.size)
        return try await withTimeout(seconds: 30, "one job on every slot") {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<pool.size {
                    group.addTask {
                        try await pool.withConnection { connection in
                            let pid = try connection.query("SELECT pg_backend_pid() AS pid")[0].int("pid")
                            guard rendezvous.arriveAndWait() else { throw TestFailure("slots did not all run at once") }
                            return pid
                        }
                    }
                }
                return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
            }
        }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

extension Result where Failure == Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
