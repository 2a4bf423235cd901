import DedicatedThreads
import Dispatch
import Logging
import Synchronization

/// A fixed set of PostgreSQL connections, each owned by a `DedicatedThread` of its own.
///
/// The pool has ``size`` slots. A slot is a thread plus at most one connection, opened on
/// first use and reopened after it was found broken. ``withConnection(_:)`` waits for a free
/// slot (first come, first served), runs the closure on that slot's thread — never on Swift's
/// cooperative pool — and hands the slot back. Before each use an idle connection is checked
/// without blocking (``PostgresConnection/checkAlive()``), so a connection the server closed
/// while idle is replaced instead of failing the next job; one that breaks during a job fails
/// that job (the pool never retries work) and is replaced on the next use. A transaction left
/// open by a job is rolled back.
///
/// Call ``shutdown()`` when done; it closes the connections and stops the threads.
public final class PostgresPool: Sendable {
    /// The configuration every connection is opened with.
    public let configuration: PostgresConfiguration
    /// Number of slots (connections and threads).
    public let size: Int
    private let slots: [PoolSlot]
    private let shared: PoolShared
    private let logger: Logger

    /// Creates the pool and its threads; connections are opened lazily.
    ///
    /// - Parameters:
    ///   - size: number of slots, at least 1.
    ///   - name: prefix of the thread names (`NAME-0`, `NAME-1`, ...; the OS keeps 15 bytes).
    /// - Throws: ``PostgresError/Kind/invalidConfiguration`` when `size` < 1.
    public init(
        configuration: PostgresConfiguration,
        size: Int,
        name: String = "postgres-pool",
        logger: Logger = Logger(label: "assay.postgres.pool")
    ) throws {
        guard size >= 1 else {
            throw PostgresError(kind: .invalidConfiguration, message: "pool size must be at least 1 (got \(size))")
        }
        self.configuration = configuration
        self.size = size
        self.logger = logger
        self.slots = (0..<size).map { PoolSlot(index: $0, thread: DedicatedThread(name: "\(name)-\($0)")) }
        self.shared = PoolShared(slotCount: size)
    }

    deinit {
        // Normally `shutdown()` was called. A thread cannot join itself, so if the last
        // reference goes away on a slot thread, leave the threads to the process exit.
        if !shared.state.withLock({ $0.isClosed }) {
            if slots.contains(where: { $0.thread.isCurrent }) {
                logger.warning("PostgresPool released on one of its own threads without shutdown(); threads stay alive")
            } else {
                shutdown()
            }
        }
    }

    /// Whether the caller is running on one of this pool's slot threads.
    public var isCurrentThreadInPool: Bool { slots.contains { $0.thread.isCurrent } }

    /// Slots that are free right now (for metrics and tests).
    public var idleSlotCount: Int { shared.state.withLock { $0.free.count } }

    /// Callers waiting for a slot right now (for metrics and tests).
    public var waiterCount: Int { shared.state.withLock { $0.waiters.count } }

    /// Runs `body` with a connection on a slot's own thread and returns its result.
    ///
    /// Waits, in arrival order, for a free slot. Cancelling the calling task while it waits
    /// throws `CancellationError` and gives up its place; a task that is already cancelled
    /// does not run `body`. Once `body` runs it is not interrupted. `body` must not call back
    /// into the pool synchronously (``withConnectionBlocking(_:)`` refuses that).
    ///
    /// - Throws: whatever `body` throws; ``PostgresError`` of kind
    ///   ``PostgresError/Kind/connectionFailed`` when no connection could be opened, or
    ///   ``PostgresError/Kind/poolClosed`` after ``shutdown()``; `CancellationError`.
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let index = try await acquire()
        defer { release(index) }
        try Task.checkCancellation()
        let slot = slots[index]
        let shared = self.shared
        let configuration = self.configuration
        let logger = self.logger
        do {
            return try await slot.thread.run {
                try shared.ensureOpen()
                return try slot.lease(configuration: configuration, logger: logger, body)
            }
        } catch is DedicatedThreadError {
            throw PoolShared.closedError
        }
    }

    /// Like ``withConnection(_:)``, for callers that are on a thread of their own (for
    /// example a Kafka poll thread). It blocks the calling thread until a slot is free and
    /// `body` has run. **Never call it from async code**: it would block a thread of the
    /// cooperative pool.
    ///
    /// - Throws: ``PostgresError/Kind/invalidUsage`` when called on one of this pool's slot
    ///   threads (it could wait for itself forever), plus everything
    ///   ``withConnection(_:)`` throws except `CancellationError`.
    public func withConnectionBlocking<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        guard !isCurrentThreadInPool else {
            throw PostgresError(
                kind: .invalidUsage, message: "withConnectionBlocking called on one of the pool's own threads")
        }
        let index = try acquireBlocking()
        defer { release(index) }
        let slot = slots[index]
        do {
            return try slot.thread.runAndWait {
                try shared.ensureOpen()
                return try slot.lease(configuration: configuration, logger: logger, body)
            }
        } catch is DedicatedThreadError {
            throw PoolShared.closedError
        }
    }

    /// Fails all waiters with ``PostgresError/Kind/poolClosed``, lets jobs already running
    /// finish, closes every connection on its own thread and stops the threads. Blocks
    /// until that is done; later calls do nothing. Do not call it from within a pool job.
    public func shutdown() {
        guard let waiters = shared.close() else { return }
        Self.fail(waiters)
        for slot in slots {
            slot.thread.submit { slot.closeConnection() }
            slot.thread.shutdown()
        }
        logger.debug("PostgreSQL pool shut down", metadata: ["postgres.pool_size": "\(size)"])
    }

    /// Like ``shutdown()``, but waits for running jobs and closes the connections without
    /// blocking a cooperative thread for the duration of those jobs.
    public func shutdown() async {
        guard let waiters = shared.close() else { return }
        Self.fail(waiters)
        for slot in slots {
            _ = try? await slot.thread.run { slot.closeConnection() }
            // The queue is drained, so this only joins the idle thread.
            slot.thread.shutdown()
        }
        logger.debug("PostgreSQL pool shut down", metadata: ["postgres.pool_size": "\(size)"])
    }

    // MARK: - Slot hand-out

    private func acquire() async throws -> Int {
        let id = shared.state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let shared = self.shared
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, Error>) in
                let outcome = shared.state.withLock { state -> AcquireOutcome in
                    if state.isClosed { return .failed(PoolShared.closedError) }
                    // Checked under the lock: if cancellation came before this point, the
                    // flag is already set; if after, the handler below finds the waiter.
                    if Task.isCancelled { return .failed(CancellationError()) }
                    if let index = state.free.popLast() { return .acquired(index) }
                    state.waiters.append(PoolWaiter(id: id, kind: .async(continuation)))
                    return .waiting
                }
                switch outcome {
                case .acquired(let index): continuation.resume(returning: index)
                case .failed(let error): continuation.resume(throwing: error)
                case .waiting: break
                }
            }
        } onCancel: {
            let continuation = shared.state.withLock { state -> CheckedContinuation<Int, Error>? in
                guard let position = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                if case .async(let continuation) = state.waiters.remove(at: position).kind { return continuation }
                return nil
            }
            // If the waiter was already handed a slot, it owns it and releases it itself.
            continuation?.resume(throwing: CancellationError())
        }
    }

    private func acquireBlocking() throws -> Int {
        let handoff = BlockingHandoff()
        let outcome = shared.state.withLock { state -> AcquireOutcome in
            if state.isClosed { return .failed(PoolShared.closedError) }
            if let index = state.free.popLast() { return .acquired(index) }
            state.nextWaiterID += 1
            state.waiters.append(PoolWaiter(id: state.nextWaiterID, kind: .blocking(handoff)))
            return .waiting
        }
        switch outcome {
        case .acquired(let index): return index
        case .failed(let error): throw error
        case .waiting: return try handoff.wait().get()
        }
    }

    private func release(_ index: Int) {
        let next = shared.state.withLock { state -> PoolWaiter? in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.free.append(index)
            return nil
        }
        // Hand the slot straight to the longest waiter.
        switch next?.kind {
        case .async(let continuation): continuation.resume(returning: index)
        case .blocking(let handoff): handoff.deliver(.success(index))
        case nil: break
        }
    }

    private static func fail(_ waiters: [PoolWaiter]) {
        for waiter in waiters {
            switch waiter.kind {
            case .async(let continuation): continuation.resume(throwing: PoolShared.closedError)
            case .blocking(let handoff): handoff.deliver(.failure(PoolShared.closedError))
            }
        }
    }
}

private enum AcquireOutcome: Sendable {
    case acquired(Int)
    case failed(any Error)
    case waiting
}

private struct PoolWaiter: Sendable {
    enum Kind: Sendable {
        case async(CheckedContinuation<Int, Error>)
        case blocking(BlockingHandoff)
    }
    let id: UInt64
    let kind: Kind
}

private struct PoolState: Sendable {
    var free: [Int]
    var waiters: [PoolWaiter] = []
    var nextWaiterID: UInt64 = 0
    var isClosed = false
}

/// Pool state shared with jobs on the slot threads (which must not keep the pool itself alive).
private final class PoolShared: Sendable {
    static let closedError = PostgresError(kind: .poolClosed, message: "the connection pool is shut down")
    let state: Mutex<PoolState>

    init(slotCount: Int) {
        // `popLast` hands out slot 0 first, so a lightly used pool keeps few connections open.
        state = Mutex(PoolState(free: Array((0..<slotCount).reversed())))
    }

    func ensureOpen() throws {
        if state.withLock({ $0.isClosed }) { throw Self.closedError }
    }

    /// Marks the pool closed and takes its waiters; nil if it was closed already.
    func close() -> [PoolWaiter]? {
        state.withLock { state in
            guard !state.isClosed else { return nil }
            state.isClosed = true
            let waiters = state.waiters
            state.waiters = []
            return waiters
        }
    }
}

/// A slot handed to a thread blocked in `withConnectionBlocking`.
private final class BlockingHandoff: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let result = Mutex<Result<Int, PostgresError>?>(nil)

    func deliver(_ value: Result<Int, PostgresError>) {
        result.withLock { $0 = value }
        semaphore.signal()
    }

    func wait() -> Result<Int, PostgresError> {
        semaphore.wait()
        return result.withLock { $0 } ?? .failure(PoolShared.closedError)
    }
}

/// One pool slot: a dedicated thread and the connection it owns.
///
/// `@unchecked Sendable` because it wraps a libpq handle (via `PostgresConnection`) that is
/// not thread-safe: `connection` is only read or written by jobs running on `thread`
/// (asserted in debug builds), and that thread runs one job at a time, so the handle is
/// never used concurrently or from another thread.
private final class PoolSlot: @unchecked Sendable {
    let index: Int
    let thread: DedicatedThread
    private var connection: PostgresConnection?

    init(index: Int, thread: DedicatedThread) {
        self.index = index
        self.thread = thread
    }

    /// Runs `body` with this slot's connection, opening or replacing it as needed, then
    /// cleans up after it. Must run on `thread`.
    func lease<T>(
        configuration: PostgresConfiguration,
        logger: Logger,
        _ body: (PostgresConnection) throws -> T
    ) throws -> T {
        assert(thread.isCurrent, "PoolSlot used off its thread")
        let connection = try currentConnection(configuration: configuration, logger: logger)
        defer { afterUse(connection, logger: logger) }
        return try body(connection)
    }

    func closeConnection() {
        assert(thread.isCurrent, "PoolSlot used off its thread")
        connection?.close()
        connection = nil
    }

    private func currentConnection(configuration: PostgresConfiguration, logger: Logger) throws -> PostgresConnection {
        if let connection {
            if connection.checkAlive() { return connection }
            logger.info("replacing a broken PostgreSQL connection", metadata: ["postgres.slot": "\(index)"])
            connection.close()
            self.connection = nil
        }
        let fresh = try PostgresConnection.connect(configuration, logger: logger)
        connection = fresh
        return fresh
    }

    private func afterUse(_ used: PostgresConnection, logger: Logger) {
        guard used === connection else { return }
        if used.isHealthy && used.isInTransaction {
            logger.debug("rolling back a transaction left open by a pool job", metadata: ["postgres.slot": "\(index)"])
            _ = try? used.executeScript("ROLLBACK")
        }
        if !used.isHealthy || used.isInTransaction {
            logger.info("dropping a broken PostgreSQL connection", metadata: ["postgres.slot": "\(index)"])
            used.close()
            connection = nil
        }
    }
}
