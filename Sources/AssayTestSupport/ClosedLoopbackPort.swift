#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback port that refuses connections and that nothing else can take while it is held:
/// a TCP socket bound to `127.0.0.1` but never listening, so a connect gets "connection
/// refused". A stopped ``LoopbackHTTPServer`` is not that: its port is free again, and a
/// server that another test starts at the same moment may be given it.
public final class ClosedLoopbackPort: Sendable {
    /// The port, chosen by the kernel.
    public let port: UInt16
    private let socketDescriptor: Int32

    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public init() throws(LoopbackHTTPServerError) {
        #if canImport(Glibc) || canImport(Musl)
        let socketType = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let socketType = SOCK_STREAM
        #endif
        let fd = socket(AF_INET, socketType, 0)
        guard fd >= 0 else { throw LoopbackHTTPServerError(operation: "socket", errno: errno) }
        // No SO_REUSEADDR: without it no other socket can bind this port while it is held.
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var chosen = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = bound == 0 ? withUnsafeMutablePointer(to: &chosen) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        } : -1
        guard named == 0 else {
            let code = errno
            close(fd)
            throw LoopbackHTTPServerError(operation: bound == 0 ? "getsockname" : "bind", errno: code)
        }
        socketDescriptor = fd
        port = UInt16(bigEndian: chosen.sin_port)
    }

    deinit {
        close(socketDescriptor)
    }
}
