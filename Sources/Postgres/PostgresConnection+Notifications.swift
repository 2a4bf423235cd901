import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// A `NOTIFY` received on a channel this connection listens to.
public struct PostgresNotification: Sendable, Equatable {
    public var channel: String
    public var payload: String
    /// The server process that sent it.
    public var senderPID: Int32
}

extension PostgresConnection {
    /// Starts listening on `channel` (`LISTEN`, with the name quoted as an identifier).
    public func listen(_ channel: String) throws {
        try executeScript("LISTEN \(try escapeIdentifier(channel))")
    }

    /// Waits up to `timeout` for notifications and returns those that arrived (possibly
    /// none). Blocks the calling thread: call it on the connection's own thread.
    ///
    /// Uses `poll(2)` on the connection's socket, then `PQconsumeInput` and `PQnotifies`.
    public func waitForNotifications(timeout: Duration) throws -> [PostgresNotification] {
        let handle = try notificationHandle()
        var pending = drainNotifications(handle)
        if !pending.isEmpty { return pending }
        let socket = PQsocket(handle)
        guard socket >= 0 else {
            throw PostgresError(kind: .connectionClosed, message: "the connection has no socket", connectionBroken: true)
        }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let (seconds, attoseconds) = timeout.components
        let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        let ready = poll(&descriptor, 1, max(0, milliseconds))
        if ready < 0 && errno != EINTR {
            throw PostgresError(kind: .connectionClosed, message: "poll on the connection failed (errno \(errno))", connectionBroken: true)
        }
        guard PQconsumeInput(handle) == 1 else {
            throw PostgresError(kind: .connectionClosed, message: "lost the connection while waiting for notifications", connectionBroken: true)
        }
        pending = drainNotifications(handle)
        return pending
    }

    private func drainNotifications(_ handle: OpaquePointer) -> [PostgresNotification] {
        var received: [PostgresNotification] = []
        while let notify = PQnotifies(handle) {
            let channel = String(cString: notify.pointee.relname)
            let payload = notify.pointee.extra.map { String(cString: $0) } ?? ""
            received.append(PostgresNotification(channel: channel, payload: payload, senderPID: notify.pointee.be_pid))
            PQfreemem(notify)
        }
        return received
    }
}
