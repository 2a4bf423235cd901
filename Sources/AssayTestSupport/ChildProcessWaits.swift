import DedicatedThreads
import Foundation

extension Process {
    /// Waits until the process has exited, on a thread of its own rather than one of the
    /// cooperative pool's (see `runOnOwnThread`), and returns its termination status.
    ///
    /// Tests start children that run for seconds (a replica until it crashes, one shutting down
    /// after SIGTERM); `waitUntilExit()` called from a test's task would hold a pool thread that
    /// long, and on a 2-core machine two such waits at once would stall every other task.
    public func exited() async -> Int32 {
        await runOnOwnThread(name: "wait-for-child") { [self] in
            waitUntilExit()
            return terminationStatus
        }
    }
}
