import DedicatedThreads
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// Listens on PostgreSQL notification channels over a connection of its own, on a thread of
/// its own, reconnecting after failures. Notifications arrive as an `AsyncStream`; after a
/// reconnect a synthetic notification with an empty payload is delivered on every channel,
/// since anything sent while disconnected was missed.
///
/// `@unchecked Sendable`: the connection is created, used and closed only on `thread`; the
/// `stopped` flag is a `Mutex`.
public final class PostgresListener: @unchecked Sendable {
    private let configuration: PostgresConfiguration
    private let channels: [String]
    private let logger: Logger
    private let thread: DedicatedThread
    private let stopped = Mutex(false)
    private let continuation: AsyncStream<PostgresNotification>.Continuation
    /// Notifications, in arrival order; finishes after ``stop()``.
    public let notifications: AsyncStream<PostgresNotification>

    public init(configuration: PostgresConfiguration, channels: [String], logger: Logger) {
        self.configuration = configuration
        self.channels = channels
        self.logger = logger
        self.thread = DedicatedThread(name: "pg-listen")
        (notifications, continuation) = AsyncStream.makeStream(of: PostgresNotification.self, bufferingPolicy: .bufferingNewest(1024))
        thread.submit { [self] in self.loop() }
    }

    private var isStopped: Bool { stopped.withLock { $0 } }

    private func loop() {
        var connection: PostgresConnection?
        var failures = 0
        while !isStopped {
            do {
                if connection == nil {
                    let opened = try PostgresConnection.connect(configuration, logger: logger)
                    for channel in channels { try opened.listen(channel) }
                    connection = opened
                    if failures > 0 {
                        for channel in channels { continuation.yield(PostgresNotification(channel: channel, payload: "", senderPID: 0)) }
                    }
                    failures = 0
                }
                if let connection {
                    for notification in try connection.waitForNotifications(timeout: .milliseconds(250)) {
                        continuation.yield(notification)
                    }
                }
            } catch {
                connection?.close()
                connection = nil
                failures += 1
                logger.debug("notification listener lost its connection; reconnecting", metadata: ["error": "\(error)"])
                // Our own thread: a plain sleep is the backoff, bounded to stay responsive to stop().
                let pause = min(0.1 * Double(failures), 2.0)
                var slept = 0.0
                while slept < pause && !isStopped {
                    usleep(50_000)
                    slept += 0.05
                }
            }
        }
        connection?.close()
        continuation.finish()
    }

    /// Stops listening and closes the connection.
    public func stop() {
        stopped.withLock { $0 = true }
        thread.shutdown()
    }
}
