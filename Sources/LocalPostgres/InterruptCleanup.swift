import Dispatch
import Foundation
import Synchronization

/// The signal sources, kept alive for the process's life. Written only by
/// ``InterruptCleanup/install(tool:)``, once, at start-up; never read.
nonisolated(unsafe) private var signalSources: [any DispatchSourceSignal] = []

/// What a development tool (`assay-chaos`, `assay-bench`) must not leave behind when it is
/// interrupted (SIGTERM or SIGINT: a timeout, Ctrl-C, a test's watchdog): its child processes,
/// then its PostgreSQL cluster.
///
/// SIGKILL cannot be caught; after it, children and the cluster still outlive the tool.
public final class InterruptCleanup: Sendable {
    public static let shared = InterruptCleanup()

    private let childStops = Mutex<[@Sendable () -> Void]>([])
    private let cleanups = Mutex<[@Sendable () -> Void]>([])

    private init() {}

    /// Stops a child process on interruption (run before every ``onInterrupt(_:)`` cleanup).
    public func trackChild(stop: @escaping @Sendable () -> Void) {
        childStops.withLock { $0.append(stop) }
    }

    /// Runs `cleanup` on interruption, after the children are stopped; the last one added runs
    /// first.
    public func onInterrupt(_ cleanup: @escaping @Sendable () -> Void) {
        cleanups.withLock { $0.append(cleanup) }
    }

    /// Handles SIGTERM and SIGINT from now on: says so on standard error as `tool`, stops the
    /// children, runs the cleanups, and exits with 128 + the signal's number. Call once.
    public func install(tool: String) {
        let installed = [SIGTERM, SIGINT].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [self] in
                FileHandle.standardError.write(Data("\(tool): interrupted (signal \(signalNumber)); stopping every child process\n".utf8))
                for stop in childStops.withLock({ $0 }) { stop() }
                for cleanup in cleanups.withLock({ $0 }).reversed() { cleanup() }
                exit(128 + signalNumber)
            }
            source.resume()
            return source
        }
        signalSources += installed
    }
}
