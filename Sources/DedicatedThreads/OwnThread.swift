import Foundation

/// Runs `body`, which may block (waiting for a child process, a semaphore, a C call), on a new
/// thread of its own, and resumes the caller with its result.
///
/// For one-off blocking waits in async code. Called straight from a task, such a wait holds one
/// of the cooperative pool's threads, of which there are as many as the machine has cores; with
/// all of them held, every other task in the process waits too, timers included.
public func runOnOwnThread<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.name = name
        thread.start()
    }
}

/// ``runOnOwnThread(name:_:)`` for a body that cannot fail.
public func runOnOwnThread<T: Sendable>(name: String, _ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.name = name
        thread.start()
    }
}
