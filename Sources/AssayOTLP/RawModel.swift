// The wire-neutral form both readers (protobuf and JSON) produce, before the semantic mapping.
// Ids are already lowercase hex and every value is already checked against the limits.

import AssayCore

/// One `ResourceSpans`: the resource's attributes and the spans under it.
struct RawResourceSpans {
    var resourceAttributes: [(key: String, value: JSONValue)]
    var scopes: [RawScopeSpans]
}

/// One `ScopeSpans`.
struct RawScopeSpans {
    var scopeName: String
    var scopeVersion: String
    var spans: [RawSpan]
}

/// One OTLP span, as on the wire.
struct RawSpan {
    var traceIDHex: String
    var spanIDHex: String
    /// nil for a root (empty `parentSpanId`).
    var parentSpanIDHex: String?
    var traceState: String
    var flags: UInt32
    var name: String
    /// The `SpanKind` number (0 unspecified … 5 consumer).
    var kind: Int
    var startTimeNanos: Int64
    /// 0 when not set.
    var endTimeNanos: Int64
    var attributes: [(key: String, value: JSONValue)]
    var droppedAttributesCount: UInt32
    var events: [RawEvent]
    var droppedEventsCount: UInt32
    var links: [RawLink]
    var droppedLinksCount: UInt32
    /// The `Status.code` number (0 unset, 1 ok, 2 error).
    var statusCode: Int
    var statusMessage: String
}

/// One span event.
struct RawEvent {
    var timeNanos: Int64
    var name: String
    var attributes: [(key: String, value: JSONValue)]
}

/// One span link.
struct RawLink {
    var traceIDHex: String
    var spanIDHex: String
    var traceState: String
    var attributes: [(key: String, value: JSONValue)]
}

/// A decoding failure inside a reader: the rejection reason, the path to the offending field
/// (`resourceSpans[0].scopeSpans[1].spans[3].traceId`) and a short message.
struct OTLPReadError: Error {
    var reason: RejectionReason
    var path: String
    var message: String

    init(_ reason: RejectionReason, path: String = "", _ message: String) {
        self.reason = reason
        self.path = path
        self.message = message
    }

    /// The same error one level further out.
    func prefixed(_ prefix: String) -> OTLPReadError {
        var copy = self
        if path.isEmpty {
            copy.path = prefix
        } else {
            copy.path = path.hasPrefix("[") ? prefix + path : prefix + "." + path
        }
        return copy
    }

    func rejection(format: String) -> TraceRejection {
        let location = path.isEmpty ? "" : "\(path): "
        return TraceRejection(reason: reason, detail: "\(format): \(location)\(message)")
    }
}

/// Limit checks shared by both readers.
struct LimitChecker {
    let limits: OTLPLimits

    /// Fails when a string (name, key, value) is longer than the attribute value limit.
    func checkText(_ text: String, what: String) throws(OTLPReadError) {
        let size = text.utf8.count
        if size > limits.maxAttributeValueBytes {
            throw OTLPReadError(
                .limitExceeded,
                "\(what) is \(size) bytes, over the limit of \(limits.maxAttributeValueBytes) (maxAttributeValueBytes)")
        }
    }

    /// Adds `size` to a running attribute-value budget and fails when it goes over the limit.
    func charge(_ size: Int, to used: inout Int) throws(OTLPReadError) {
        used += size
        if used > limits.maxAttributeValueBytes {
            throw OTLPReadError(
                .limitExceeded,
                "attribute value is more than \(limits.maxAttributeValueBytes) bytes (maxAttributeValueBytes)")
        }
    }

    /// Fails when a list/map value is nested deeper than allowed.
    func checkDepth(_ depth: Int) throws(OTLPReadError) {
        if depth > limits.maxNestingDepth {
            throw OTLPReadError(
                .limitExceeded,
                "attribute value nested more than \(limits.maxNestingDepth) levels deep (maxNestingDepth)")
        }
    }

    /// Fails when a message holds more spans than allowed.
    func checkSpanCount(_ count: Int) throws(OTLPReadError) {
        if count > limits.maxSpansPerMessage {
            throw OTLPReadError(
                .limitExceeded,
                "the message holds more than \(limits.maxSpansPerMessage) spans (maxSpansPerMessage)")
        }
    }
}

/// Helpers for values that both wire forms share.
enum WireValues {
    /// A double attribute value: a JSON number when finite, else the protobuf JSON spelling
    /// (`"NaN"`, `"Infinity"`, `"-Infinity"`) as a string, since JSON has no such numbers.
    static func double(_ value: Double) -> JSONValue {
        if value.isFinite { return JSONValue(value) }
        if value.isNaN { return .string("NaN") }
        return .string(value < 0 ? "-Infinity" : "Infinity")
    }

    private static let base64Alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Standard, padded base64 of `bytes` (how a bytes attribute value is kept as JSON).
    static func base64<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var iterator = bytes.makeIterator()
        while let first = iterator.next() {
            let second = iterator.next()
            let third = iterator.next()
            let chunk = UInt32(first) << 16 | UInt32(second ?? 0) << 8 | UInt32(third ?? 0)
            output.append(base64Alphabet[Int(chunk >> 18 & 0x3F)])
            output.append(base64Alphabet[Int(chunk >> 12 & 0x3F)])
            output.append(second == nil ? UInt8(ascii: "=") : base64Alphabet[Int(chunk >> 6 & 0x3F)])
            output.append(third == nil ? UInt8(ascii: "=") : base64Alphabet[Int(chunk & 0x3F)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes standard or URL-safe base64, with or without padding; nil when invalid.
    static func decodeBase64(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var padding = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0, let value = base64Value(byte) else { return nil }
            accumulator = (accumulator << 6) | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        guard padding <= 2, bits < 6 else { return nil }
        return output
    }

    private static func base64Value(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"), UInt8(ascii: "-"): return 62
        case UInt8(ascii: "/"), UInt8(ascii: "_"): return 63
        default: return nil
        }
    }

    /// Whether `hex` is all zeros (an invalid OpenTelemetry id).
    static func isAllZero(_ hex: String) -> Bool {
        hex.utf8.allSatisfy { $0 == UInt8(ascii: "0") }
    }
}

/// Runs `body`, prefixing the path of any error it throws with `prefix`.
func at<T>(_ prefix: String, _ body: () throws(OTLPReadError) -> T) throws(OTLPReadError) -> T {
    do throws(OTLPReadError) {
        return try body()
    } catch {
        throw error.prefixed(prefix)
    }
}
