/// A JSON value held as its compact serialization: the bytes ``JSONValue/serializedUTF8()``
/// gives for it, made by ``JSONParser/compactUTF8(_:)`` without building the value.
///
/// For JSON that is mostly passed on, such as a span's inputs and outputs on their way from a
/// Kafka message to a `jsonb` column. ``value`` builds the value when something reads it.
public struct CompactJSON: Sendable, Hashable {
    /// Compact JSON text that PostgreSQL accepts as `jsonb` (see ``JSONValue/serialized()``).
    public let utf8: [UInt8]

    /// Only ``JSONParser/compactUTF8(_:)`` makes these, so `utf8` always parses.
    init(compacted utf8: [UInt8]) {
        self.utf8 = utf8
    }

    /// The value these bytes serialize.
    public var value: JSONValue {
        do throws(JSONParseError) {
            // The bytes came out of the copier, which checked this grammar and the decoder's
            // depth limit; no second limit applies here.
            return try JSONParser(maxDepth: Int.max, loneSurrogates: .replace).parse(utf8)
        } catch {
            // Unreachable: see above. A value that no longer parses reads as a string of its
            // bytes rather than stopping the process.
            return .string(String(decoding: utf8, as: UTF8.self))
        }
    }
}

extension JSONParser {
    /// ``compactUTF8(_:)`` as a ``CompactJSON``.
    public func compact(_ text: String) throws(JSONParseError) -> CompactJSON {
        CompactJSON(compacted: try compactUTF8(text))
    }
}
