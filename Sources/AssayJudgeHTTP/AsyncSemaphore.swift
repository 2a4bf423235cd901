// A counting semaphore for Swift concurrency: FIFO, and a cancelled waiter leaves the queue.

import Synchronization

/// Limits how many tasks hold a permit at once.
///
/// - Waiters are served in arrival order: ``release()`` hands its permit straight to the
///   oldest waiter, so a stream of newcomers cannot starve it.
/// - A task cancelled while waiting stops waiting at once (``acquire()`` throws
///   `CancellationError`) and takes no permit.
/// - Suspension uses continuations, never a blocked thread.
final class AsyncSemaphore: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var available: Int
        var waiters: [Waiter] = []
        /// Acquirers between their fast-path check and registering a continuation, and whether
        /// they were cancelled meanwhile.
        var registering: [UInt64: Bool] = [:]
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>
    let permits: Int

    init(permits: Int) {
        self.permits = max(1, permits)
        state = Mutex(State(available: max(1, permits)))
    }

    /// Waits for a permit. Call ``release()`` exactly once after a successful return.
    func acquire() async throws(CancellationError) {
        if Task.isCancelled { throw CancellationError() }
        let id: UInt64? = state.withLock { state in
            if state.available > 0, state.waiters.isEmpty {
                state.available -= 1
                return nil
            }
            let id = state.nextID
            state.nextID &+= 1
            state.registering[id] = false
            return id
        }
        guard let id else { return }
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let cancelledEarly: Bool = state.withLock { state in
                        let cancelled = state.registering.removeValue(forKey: id) ?? false
                        if !cancelled {
                            state.waiters.append(Waiter(id: id, continuation: continuation))
                        }
                        return cancelled
                    }
                    if cancelledEarly { continuation.resume(throwing: CancellationError()) }
                }
            } onCancel: {
                let continuation: CheckedContinuation<Void, any Error>? = state.withLock { state in
                    if let index = state.waiters.firstIndex(where: { $0.id == id }) {
                        return state.waiters.remove(at: index).continuation
                    }
                    if state.registering[id] != nil {
                        state.registering[id] = true
                    }
                    // Otherwise the permit was already handed over: the caller holds it.
                    return nil
                }
                continuation?.resume(throwing: CancellationError())
            }
        } catch {
            throw CancellationError()
        }
    }

    /// Returns a permit: to the oldest waiter if there is one.
    func release() {
        let next: CheckedContinuation<Void, any Error>? = state.withLock { state in
            if state.waiters.isEmpty {
                state.available = min(state.available + 1, permits)
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }

    /// Permits free right now (for tests and metrics).
    var availablePermits: Int { state.withLock { $0.available } }

    /// Tasks waiting right now.
    var waiting: Int { state.withLock { $0.waiters.count } }
}
