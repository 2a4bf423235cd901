import Dispatch
import Foundation

/// Errors from submitting work to a ``DedicatedThread``.
public enum DedicatedThreadError: Error, CustomStringConvertible, Sendable {
    /// The thread was shut down before the job could be queued.
    case shutDown(threadName: String)

    public var description: String {
        switch self {
        case .shutDown(let name): return "dedicated thread '\(name)' is shut down"
        }
    }
}

/// A thread of our own that runs submitted jobs one at a time, in submission order.
///
/// Blocking C calls (librdkafka polls, libpq round trips) run here so that they never
/// occupy one of the few threads of Swift's cooperative pool. Everything that touches a
/// C handle confined to this thread must be submitted through ``run(_:)`` or
/// ``runAndWait(_:)``.
///
/// `@unchecked Sendable`: all mutable state (`jobs`, `isStopping`) is read and written
/// only while holding `condition`; the OS thread itself is owned by this object and is
/// joined in ``shutdown()``.
public final class DedicatedThread: @unchecked Sendable {
    public let name: String
    private let condition = NSCondition()
    private var jobs: [(@Sendable () -> Void)?] = []
    private var jobsHead = 0
    private var isStopping = false
    private let exited = DispatchSemaphore(value: 0)
    private let threadKey: Int

    private static let counter = AtomicCounter()

    public init(name: String) {
        self.name = name
        self.threadKey = Self.counter.next()
        // The thread holds a strong reference until `shutdown()` lets it exit.
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Whether the caller is running on this thread.
    public var isCurrent: Bool {
        (Thread.current.threadDictionary[DedicatedThread.threadKeyName] as? Int) == threadKey
    }

    /// Runs `body` on this thread and returns its result to the awaiting task.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let queued = submit {
                continuation.resume(with: Result { try body() })
            }
            if !queued { continuation.resume(throwing: DedicatedThreadError.shutDown(threadName: name)) }
        }
    }

    /// Runs `body` on this thread and blocks the caller until it finishes.
    ///
    /// Only for callers that are themselves on a thread we own (for example a librdkafka
    /// callback on a poll thread); never call this from an `async` context.
    public func runAndWait<T>(_ body: () throws -> T) throws -> T {
        if isCurrent { return try body() }
        return try withoutActuallyEscaping(body) { escapable in
            let box = ResultBox<T>()
            let done = DispatchSemaphore(value: 0)
            // The job closure may outlive this call (the worker holds it until its loop
            // iteration ends), so it reaches `escapable` only through a box that drops it
            // before signalling; otherwise withoutActuallyEscaping traps.
            let bodyBox = BodyBox(escapable)
            let queued = submit {
                box.result = bodyBox.runOnce()
                done.signal()
            }
            guard queued else {
                bodyBox.discard()
                throw DedicatedThreadError.shutDown(threadName: name)
            }
            done.wait()
            // The semaphore orders the write on this thread before this read.
            return try box.result!.get()
        }
    }

    /// Queues `job`; returns false when the thread is shutting down.
    @discardableResult
    public func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !isStopping else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    /// Runs the jobs already queued, then stops the thread and waits for it to exit.
    /// Later submissions fail with ``DedicatedThreadError/shutDown(threadName:)``.
    public func shutdown() {
        condition.lock()
        let wasRunning = !isStopping
        isStopping = true
        condition.broadcast()
        condition.unlock()
        if wasRunning {
            precondition(!isCurrent, "DedicatedThread.shutdown() called from its own thread")
            exited.wait()
        }
    }

    /// Like ``shutdown()``, but returns at once: the thread runs the jobs already queued and
    /// then exits by itself. For a thread left in a C call that may not return soon (a
    /// handle being destroyed while its broker is unreachable), so the caller is not held.
    public func shutdownWithoutWaiting() {
        condition.lock()
        isStopping = true
        condition.broadcast()
        condition.unlock()
    }

    private static let threadKeyName = "assay.DedicatedThread.key"

    private func loop() {
        Thread.current.name = name  // shows in debuggers and crash reports
        Thread.current.threadDictionary[DedicatedThread.threadKeyName] = threadKey
        while true {
            condition.lock()
            while jobsHead == jobs.count && !isStopping { condition.wait() }
            if jobsHead == jobs.count {  // stopping and drained
                condition.unlock()
                break
            }
            // Take the job out so the queue does not keep its captures alive.
            let job = jobs[jobsHead]
            jobs[jobsHead] = nil
            jobsHead += 1
            if jobsHead > 64 && jobsHead * 2 > jobs.count {
                jobs.removeFirst(jobsHead)
                jobsHead = 0
            }
            condition.unlock()
            job?()
        }
        exited.signal()
    }
}

/// Holds a result written on one thread and read on another after a semaphore.
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}

/// Carries a non-Sendable closure across a thread hop whose ordering is enforced by a
/// semaphore (the caller blocks until the closure has run), so it is never used concurrently.
/// The closure is released as soon as it has run, before the caller is signalled.
private final class BodyBox<T>: @unchecked Sendable {
    private var body: (() throws -> T)?
    init(_ body: @escaping () throws -> T) { self.body = body }

    func runOnce() -> Result<T, Error>? {
        guard let body else { return nil }
        self.body = nil
        return Result { try body() }
    }

    func discard() { body = nil }
}

/// A process-wide counter for thread identities.
final class AtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}
