// Who may call which route of the admin API.

/// Byte comparison whose running time does not depend on where (or whether) the inputs differ.
public enum ConstantTime {
    /// Both inputs are copied into zero-padded buffers of this many bytes (or of the longer
    /// input's length when that is more), so that for tokens up to this length the work done
    /// depends on neither token's content nor its length.
    public static let paddedWidth = 256

    /// Whether `lhs` and `rhs` are the same bytes, examining every byte of the padded width
    /// with no early exit: the differences of all bytes and of the two lengths are OR-ed
    /// together and tested once at the end.
    public static func equals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        compare(lhs, rhs).equal
    }

    /// ``equals(_:_:)`` with the number of byte positions it examined (for tests of the
    /// no-early-exit property).
    static func compare(_ lhs: [UInt8], _ rhs: [UInt8]) -> (equal: Bool, bytesExamined: Int) {
        let width = max(paddedWidth, lhs.count, rhs.count)
        var left = [UInt8](repeating: 0, count: width)
        var right = [UInt8](repeating: 0, count: width)
        left.replaceSubrange(0..<lhs.count, with: lhs)
        right.replaceSubrange(0..<rhs.count, with: rhs)
        var difference: UInt64 = UInt64(truncatingIfNeeded: lhs.count ^ rhs.count)
        var examined = 0
        for index in 0..<width {
            difference |= UInt64(left[index] ^ right[index])
            examined &+= 1
        }
        return (difference == 0, examined)
    }
}

/// The admin API's access rules.
///
/// - Mutations (`PUT /api/monitor`, `POST .../pause`, `POST .../resume`) need
///   `Authorization: Bearer <ASSAY_ADMIN_TOKEN>`; without a configured token they are refused
///   (403) whatever the request carries.
/// - Reads (`GET /api/monitor`, `GET /api/monitor/versions`) are public when the server is
///   bound to a loopback address (127.0.0.0/8, `::1`, `localhost`); otherwise they need the
///   token too.
/// - `/healthz` and `/readyz` are always public (they are probes); see ``AdminServer``.
///
/// Tokens are compared with ``ConstantTime/equals(_:_:)``; neither the token nor the header
/// is ever logged or echoed.
public struct AdminAccessPolicy: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What a route does.
    public enum Access: Sendable, Equatable {
        case read
        case mutation
    }

    /// The verdict on a request.
    public enum Decision: Sendable, Equatable {
        case allowed
        /// 401 with `WWW-Authenticate: Bearer`.
        case unauthorized(String)
        /// 403: no token could help.
        case forbidden(String)
    }

    private let token: [UInt8]?
    /// Whether reads need no token (the server is bound to a loopback address).
    public let readsArePublic: Bool

    /// - Parameters:
    ///   - adminToken: the token mutations need; nil or empty disables mutations.
    ///   - bindHost: the address the server listens on.
    public init(adminToken: String?, bindHost: String) {
        self.token = adminToken.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
        self.readsArePublic = Self.isLoopback(bindHost)
    }

    /// Whether a token is configured (mutations are possible at all).
    public var hasToken: Bool { token != nil }

    public var description: String {
        "AdminAccessPolicy(token: \(hasToken ? "<redacted>" : "none"), readsArePublic: \(readsArePublic))"
    }

    public var debugDescription: String { description }

    /// Whether `host` is a loopback address or name: `localhost`, `127.0.0.0/8`, `::1` (also
    /// written `[::1]` or in full), or an IPv4-mapped `::ffff:127.x.y.z`.
    public static func isLoopback(_ host: String) -> Bool {
        var text = host.lowercased()
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if text == "localhost" || text.hasSuffix(".localhost") { return true }
        if text == "::1" || text == "0:0:0:0:0:0:0:1" { return true }
        if text.hasPrefix("::ffff:") { text = String(text.dropFirst(7)) }
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return false }
        let values = octets.compactMap { octet -> Int? in
            guard !octet.isEmpty, octet.count <= 3, octet.allSatisfy(\.isASCII), let value = Int(octet), (0...255).contains(value) else { return nil }
            return value
        }
        return values.count == 4 && values[0] == 127
    }

    /// Whether a request with this `Authorization` header may do `access`.
    public func decide(_ access: Access, authorization: String?) -> Decision {
        if access == .read, readsArePublic { return .allowed }
        guard let token else {
            switch access {
            case .mutation:
                return .forbidden("changes through the admin API are disabled: set ASSAY_ADMIN_TOKEN on the server to enable them")
            case .read:
                return .forbidden("the admin API is bound to a non-loopback address and no ASSAY_ADMIN_TOKEN is set: reads are refused")
            }
        }
        guard let presented = Self.bearerToken(authorization) else {
            return .unauthorized("this route needs a bearer token: send Authorization: Bearer <ASSAY_ADMIN_TOKEN>")
        }
        guard ConstantTime.equals(Array(presented.utf8), token) else {
            return .unauthorized("the bearer token is not valid")
        }
        return .allowed
    }

    /// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or
    /// nil when the header is missing, of another scheme, or empty.
    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let trimmed = header.drop { $0 == " " || $0 == "\t" }
        guard trimmed.count > 7, trimmed.prefix(7).lowercased() == "bearer " else { return nil }
        let token = trimmed.dropFirst(7).trimmingSpaces()
        return token.isEmpty ? nil : String(token)
    }
}

/// Parses `If-Match` headers into an expected monitor version.
public enum IfMatch {
    /// The version in `3`, `"3"` or `W/"3"`; nil when `header` is nil. Throws
    /// ``MonitorAdminError/badRequest(_:)`` for anything else (including `*` and lists).
    public static func expectedVersion(_ header: String?) throws(MonitorAdminError) -> Int64? {
        guard let header else { return nil }
        var text = Substring(header).trimmingSpaces()
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { text = text.dropFirst().dropLast() }
        guard !text.isEmpty, text.count <= 18, text.allSatisfy({ ("0"..."9").contains($0) }),
              let version = Int64(text), version >= 1 else {
            throw .badRequest("If-Match must be one monitor version, such as 3 or \"3\" (the ETag of GET /api/monitor)")
        }
        return version
    }

    /// The ETag of a version: `"3"`.
    public static func etag(_ version: Int64) -> String { "\"\(version)\"" }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}
