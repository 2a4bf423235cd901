// A tiny HTTP/1.1 server on 127.0.0.1 for tests: it records what it receives and answers
// what the test's handler says, optionally after a delay.

import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A TCP socket bound to `127.0.0.1` on a port the kernel picks, not listening yet: its
/// descriptor and the port. With `reuseAddress`, SO_REUSEADDR is set first.
func bindLoopbackSocket(reuseAddress: Bool) throws(LoopbackHTTPServerError) -> (descriptor: Int32, port: UInt16) {
    #if canImport(Glibc) || canImport(Musl)
    let socketType = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    #else
    let socketType = SOCK_STREAM
    #endif
    let fd = socket(AF_INET, socketType, 0)
    guard fd >= 0 else { throw LoopbackHTTPServerError(operation: "socket", errno: errno) }
    if reuseAddress {
        var yes: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else {
        let code = errno
        close(fd)
        throw LoopbackHTTPServerError(operation: "bind", errno: code)
    }
    var chosen = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &chosen) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else {
        let code = errno
        close(fd)
        throw LoopbackHTTPServerError(operation: "getsockname", errno: code)
    }
    return (fd, UInt16(bigEndian: chosen.sin_port))
}

/// Why the server could not start.
public struct LoopbackHTTPServerError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32

    public var description: String { "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// An HTTP/1.1 server on the loopback interface, for tests of HTTP clients.
///
/// - Binds `127.0.0.1` on a port the kernel picks (``port``, ``baseURL``).
/// - Accepts on a thread of its own and serves each connection on another thread, so slow
///   answers do not hold up other requests.
/// - Reads the request line, headers and a `Content-Length` body (answers `100 Continue` when
///   asked), records the request, asks the handler for a ``Response``, waits its ``Response/delay``
///   (ending early if the client hangs up, which is then counted in ``abandonedResponses``), and
///   answers with `Connection: close`.
/// - Counts requests in flight (received, answer not yet started) and the most ever in
///   flight at once, for concurrency-limit tests.
/// - ``stop()`` stops accepting, cuts delays short, and returns once every thread has finished.
///   Call it when done (`defer { server.stop() }`): the threads keep the server alive until then.
///
/// Only for tests: no TLS, no chunked request bodies, no keep-alive, requests up to 8 MiB.
public final class LoopbackHTTPServer: Sendable {
    /// One request as received.
    public struct Request: Sendable {
        /// 0 for the first request the server received, 1 for the next, …
        public var sequence: Int
        public var method: String
        /// The request target, e.g. `/v1/chat/completions`.
        public var path: String
        /// Header fields in the order received.
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]
        /// When the request (headers and body) had fully arrived.
        public var arrival: ContinuousClock.Instant

        /// The value of the first header called `name` (any case).
        public func header(_ name: String) -> String? {
            let lowered = name.lowercased()
            return headers.first { $0.name.lowercased() == lowered }?.value
        }

        /// The body as UTF-8 text.
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    /// What to answer.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]
        /// How long to wait before answering (to simulate a slow server).
        public var delay: Duration?

        public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = [], delay: Duration? = nil) {
            self.status = status
            self.headers = headers
            self.body = body
            self.delay = delay
        }

        /// A JSON answer (`Content-Type: application/json`).
        public static func json(_ text: String, status: Int = 200, headers: [(name: String, value: String)] = [], delay: Duration? = nil) -> Response {
            Response(status: status, headers: [("Content-Type", "application/json")] + headers, body: Array(text.utf8), delay: delay)
        }
    }

    public typealias Handler = @Sendable (Request) -> Response

    private struct State {
        var requests: [Request] = []
        var inFlight = 0
        var maxInFlight = 0
        var abandoned = 0
        var stopped = false
    }

    /// The port the server listens on.
    public let port: UInt16
    private let listener: Int32
    /// Closing the write end makes the read end readable forever: the stop signal every
    /// thread polls for.
    private let stopRead: Int32
    private let stopWrite: Int32
    private let handler: Handler
    private let state = Mutex(State())
    private let threads = DispatchGroup()

    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts listening and accepting.
    public init(handler: @escaping Handler) throws(LoopbackHTTPServerError) {
        self.handler = handler
        let (fd, chosenPort) = try bindLoopbackSocket(reuseAddress: true)
        guard listen(fd, 128) == 0 else {
            let code = errno
            close(fd)
            throw LoopbackHTTPServerError(operation: "listen", errno: code)
        }
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            let code = errno
            close(fd)
            throw LoopbackHTTPServerError(operation: "pipe", errno: code)
        }
        listener = fd
        port = chosenPort
        stopRead = pipeEnds[0]
        stopWrite = pipeEnds[1]

        threads.enter()
        let thread = Thread { [self] in
            acceptLoop()
            threads.leave()
        }
        thread.name = "loopback-http-accept"
        thread.start()
    }

    /// Stops accepting, cuts pending delays short, waits for every thread, and closes the
    /// sockets. Safe to call more than once.
    public func stop() {
        let first = state.withLock { state in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        close(stopWrite)
        threads.wait()
        close(listener)
        close(stopRead)
    }

    /// Every request received so far, in arrival order.
    public var requests: [Request] { state.withLock { $0.requests } }

    /// How many requests were received.
    public var requestCount: Int { state.withLock { $0.requests.count } }

    /// The most requests that were in flight (received, not yet answered) at once.
    public var maxConcurrentRequests: Int { state.withLock { $0.maxInFlight } }

    /// Responses not sent because the client had gone (e.g. after its timeout).
    public var abandonedResponses: Int { state.withLock { $0.abandoned } }

    // MARK: Threads

    private func acceptLoop() {
        while true {
            var fds = [
                pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stopRead, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            threads.enter()
            let thread = Thread { [self] in
                serve(connection)
                close(connection)
                threads.leave()
            }
            thread.name = "loopback-http-connection"
            thread.start()
        }
    }

    private static let maxHeaderBytes = 64 * 1024
    private static let maxBodyBytes = 8 * 1024 * 1024
    private static let readTimeoutMillis: Int32 = 10_000

    private func serve(_ connection: Int32) {
        var buffer: [UInt8] = []
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headerEnd: Int?
        while headerEnd == nil {
            guard buffer.count <= Self.maxHeaderBytes, readMore(connection, into: &buffer) else { return }
            headerEnd = buffer.firstRange(of: separator)?.lowerBound
        }
        guard let headerEnd else { return }
        let headerText = String(decoding: buffer[..<headerEnd], as: UTF8.self)
        var lines = headerText.components(separatedBy: "\r\n")
        guard !lines.isEmpty else { return }
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: true)
        guard requestLine.count >= 2 else {
            write(connection, status: 400, headers: [], body: Array("bad request line".utf8))
            return
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers.append((name, value))
        }
        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name }?.value
        }
        if header("transfer-encoding") != nil {
            write(connection, status: 501, headers: [], body: Array("chunked bodies are not supported".utf8))
            return
        }
        let length = header("content-length").flatMap { Int($0) } ?? 0
        guard length >= 0, length <= Self.maxBodyBytes else {
            write(connection, status: 413, headers: [], body: [])
            return
        }
        if header("expect")?.lowercased() == "100-continue" {
            sendAll(connection, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
        }
        var body = Array(buffer[(headerEnd + separator.count)...])
        while body.count < length {
            guard readMore(connection, into: &body) else { return }
        }
        if body.count > length { body.removeLast(body.count - length) }

        let request: Request = state.withLock { state in
            let request = Request(
                sequence: state.requests.count, method: String(requestLine[0]), path: String(requestLine[1]),
                headers: headers, body: body, arrival: .now
            )
            state.requests.append(request)
            state.inFlight += 1
            state.maxInFlight = max(state.maxInFlight, state.inFlight)
            return request
        }
        let response = handler(request)
        var answered = true
        if let delay = response.delay {
            answered = waitUnlessHungUp(connection, for: delay)
        }
        // Out of flight before the answer leaves, so a client that sends its next request as
        // soon as it reads this answer never sees it counted twice.
        state.withLock { state in
            state.inFlight -= 1
            if !answered { state.abandoned += 1 }
        }
        if answered {
            write(connection, status: response.status, headers: response.headers, body: response.body)
        }
    }

    /// Appends what the peer sends to `buffer`; false on end of stream, error, stop or a
    /// 10-second silence.
    private func readMore(_ connection: Int32, into buffer: inout [UInt8]) -> Bool {
        var fds = [
            pollfd(fd: connection, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stopRead, events: Int16(POLLIN), revents: 0),
        ]
        let ready = poll(&fds, nfds_t(fds.count), Self.readTimeoutMillis)
        guard ready > 0, fds[1].revents == 0 else { return false }
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        buffer.append(contentsOf: chunk[..<count])
        return true
    }

    /// Waits `delay`; false if the peer closed its side (or the server stopped) meanwhile.
    private func waitUnlessHungUp(_ connection: Int32, for delay: Duration) -> Bool {
        let deadline = ContinuousClock.now + delay
        while true {
            let remaining = deadline - .now
            guard remaining > .zero else { return true }
            let millis = Int32(clamping: remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000 + 1)
            var fds = [
                pollfd(fd: connection, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stopRead, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, nfds_t(fds.count), millis)
            if ready < 0, errno != EINTR { return false }
            if ready <= 0 { continue }
            if fds[1].revents != 0 { return false }
            if fds[0].revents != 0 {
                // Readable during the delay: either the peer hung up (0 bytes) or sent more,
                // which is discarded.
                var chunk = [UInt8](repeating: 0, count: 4096)
                let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
                if count <= 0 { return false }
            }
        }
    }

    private func write(_ connection: Int32, status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        var head = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
        for (name, value) in headers where name.lowercased() != "content-length" && name.lowercased() != "connection" {
            head += "\(name): \(value)\r\n"
        }
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        sendAll(connection, Array(head.utf8) + body)
        _ = shutdown(connection, Int32(SHUT_WR))
    }

    /// Sends everything, ignoring a peer that has gone (no SIGPIPE).
    private func sendAll(_ connection: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { buffer in
                #if canImport(Darwin)
                send(connection, buffer.baseAddress, buffer.count, 0)
                #else
                send(connection, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
                #endif
            }
            if sent < 0, errno == EINTR { continue }
            guard sent > 0 else { return }
            offset += sent
        }
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 404: return "Not Found"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}
