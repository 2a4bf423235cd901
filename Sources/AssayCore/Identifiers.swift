/// Normalises OpenTelemetry-style trace and span ids to lowercase hex.
///
/// Producers write the same 8-byte span id (16-byte trace id) in several encodings: base64 of
/// the raw bytes (most MLflow 3 releases, e.g. `DxxY3ia51MI=`), hex (MLflow 3.5, OTLP JSON),
/// or `0x`-prefixed hex (MLflow 2). A hex string is also valid base64, so the encoding is
/// decided by length and alphabet alone, never by trying base64 first:
///
/// | form | span id (8 bytes) | trace id (16 bytes) |
/// |---|---|---|
/// | hex, any case | 16 hex digits | 32 hex digits |
/// | `0x` + hex | 18 characters | 34 characters |
/// | base64, padded | 12 characters ending in `=` | 24 characters ending in `==` |
/// | base64, unpadded | 11 characters | 22 characters |
///
/// Base64 may use the standard (`+/`) or URL-safe (`-_`) alphabet. Anything else is not an id.
public enum OTelIdentifier {
    /// The 16 lowercase hex digits of a span id in any accepted form, or nil.
    public static func spanIDHex(_ text: String) -> String? {
        normalizedHex(text, byteCount: 8)
    }

    /// The 32 lowercase hex digits of a trace id in any accepted form, or nil.
    public static func traceIDHex(_ text: String) -> String? {
        normalizedHex(text, byteCount: 16)
    }

    /// Lowercase hex of raw id bytes (as OTLP protobuf carries them).
    public static func hexString<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            output.append(hexDigits[Int(byte >> 4)])
            output.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Whether `text` is exactly `count` hex digits (any case).
    static func isHex(_ text: Substring.UTF8View, count: Int) -> Bool {
        text.count == count && text.allSatisfy { hexValue($0) != nil }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
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

    private static func normalizedHex(_ text: String, byteCount: Int) -> String? {
        var text = text
        return text.withUTF8 { normalizedHex($0, byteCount: byteCount) }
    }

    /// Works on the id's UTF-8 in place and writes the hex digits straight into the result: ids
    /// are decoded for every span of every trace.
    private static func normalizedHex(_ utf8: UnsafeBufferPointer<UInt8>, byteCount: Int) -> String? {
        let hexLength = byteCount * 2
        // Hex, optionally 0x-prefixed.
        var digits = utf8[...]
        if utf8.count == hexLength + 2, utf8[0] == UInt8(ascii: "0"), utf8[1] == UInt8(ascii: "x") || utf8[1] == UInt8(ascii: "X") {
            digits = utf8[2...]
        }
        if digits.count == hexLength {
            guard digits.allSatisfy({ hexValue($0) != nil }) else { return nil }
            return String(unsafeUninitializedCapacity: hexLength) { output in
                for (index, byte) in digits.enumerated() { output[index] = lowercased(byte) }
                return hexLength
            }
        }
        // Base64 of the raw bytes.
        let unpaddedLength = (byteCount * 4 + 2) / 3
        let paddedLength = (byteCount + 2) / 3 * 4
        let body: Slice<UnsafeBufferPointer<UInt8>>
        if utf8.count == paddedLength {
            let padding = paddedLength - unpaddedLength
            guard utf8.suffix(padding).allSatisfy({ $0 == UInt8(ascii: "=") }) else { return nil }
            body = utf8.dropLast(padding)
        } else if utf8.count == unpaddedLength {
            body = utf8[...]
        } else {
            return nil
        }
        var valid = true
        let hex = String(unsafeUninitializedCapacity: hexLength) { output in
            valid = decodeBase64(body, byteCount: byteCount, asHexInto: output)
            return valid ? hexLength : 0
        }
        return valid ? hex : nil
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
    }

    /// Decodes unpadded base64 that must yield exactly `byteCount` bytes, writing them as
    /// lowercase hex into `output` (2 × `byteCount` bytes). Leftover low bits in the last
    /// character are ignored, as most decoders do. False when a character is not base64.
    private static func decodeBase64(_ body: Slice<UnsafeBufferPointer<UInt8>>, byteCount: Int, asHexInto output: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        var accumulator: UInt32 = 0
        var bits = 0
        var written = 0
        for byte in body {
            guard let value = base64Value(byte) else { return false }
            accumulator = (accumulator << 6) | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                guard written < byteCount else { return false }
                let decoded = UInt8(truncatingIfNeeded: accumulator >> UInt32(bits))
                output[2 * written] = hexDigits[Int(decoded >> 4)]
                output[2 * written + 1] = hexDigits[Int(decoded & 0x0F)]
                written += 1
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        return written == byteCount
    }
}

extension Trace {
    /// The id used for deterministic sampling (DESIGN §2.4): the 32 lowercase hex digits of the
    /// OpenTelemetry trace id, so one trace samples identically whatever format it arrived in.
    ///
    /// - `tr-<32 hex>` (MLflow 3) → the 32 hex digits, lowercased.
    /// - a bare 32-hex id (OTLP, MLflow 2 request ids) → lowercased.
    /// - anything else → unchanged.
    public var canonicalTraceID: String {
        Trace.canonicalTraceID(for: traceID)
    }

    /// ``canonicalTraceID`` for an arbitrary trace id string.
    public static func canonicalTraceID(for id: String) -> String {
        let utf8 = Substring(id).utf8
        if utf8.count == 35, id.hasPrefix("tr-") {
            let digits = utf8.dropFirst(3)
            if OTelIdentifier.isHex(digits, count: 32) {
                return String(decoding: digits, as: UTF8.self).lowercased()
            }
            return id
        }
        if OTelIdentifier.isHex(utf8, count: 32) {
            return id.lowercased()
        }
        return id
    }
}
