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
        // No SO_REUSEADDR: without it no other socket can bind this port while it is held.
        (socketDescriptor, port) = try bindLoopbackSocket(reuseAddress: false)
    }

    deinit {
        close(socketDescriptor)
    }
}
