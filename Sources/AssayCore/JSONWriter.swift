// Compact JSON output that PostgreSQL accepts as `jsonb`, and NUL-free text for `text` columns.

/// The UTF-8 of U+FFFD REPLACEMENT CHARACTER, which stands in for U+0000 wherever PostgreSQL
/// would reject it.
private let replacementCharacterUTF8: [UInt8] = [0xEF, 0xBF, 0xBD]

extension JSONValue {
    /// Compact JSON text (no insignificant whitespace) that PostgreSQL accepts as `jsonb`.
    ///
    /// - Every U+0000 in a string or object key is written as U+FFFD, because `jsonb` rejects
    ///   `\u0000`.
    /// - Numbers are written as their lexeme; a ``JSONValue/number(_:)`` whose lexeme is not
    ///   a valid JSON number (only possible when built by hand) is written as `null`.
    /// - Object entries keep their order, repeated keys included.
    public func serialized() -> String {
        String(decoding: serializedUTF8(), as: UTF8.self)
    }

    /// ``serialized()`` as UTF-8 bytes.
    public func serializedUTF8() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        JSONWriter.write(self, into: &output)
        return output
    }

    /// Appends ``serializedUTF8()`` to `output`.
    public func appendSerialized(to output: inout [UInt8]) {
        JSONWriter.write(self, into: &output)
    }

    /// This value with every U+0000 in strings and keys replaced by U+FFFD.
    public var sanitizedForPostgres: JSONValue {
        switch self {
        case .null, .bool, .number:
            return self
        case .string(let string):
            return .string(string.sanitizedForPostgres)
        case .array(let elements):
            return .array(elements.map(\.sanitizedForPostgres))
        case .object(let object):
            return .object(JSONObject(object.entries.map {
                (key: $0.key.sanitizedForPostgres, value: $0.value.sanitizedForPostgres)
            }))
        }
    }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// Appends this map as a compact JSON object with its keys sorted, as
    /// ``JSONValue/appendSerialized(to:)`` would write that object, without building it.
    /// Sorted, so that equal maps give equal bytes (a dictionary's own order can differ
    /// between two equal ones).
    public func appendSerializedJSONObject(to output: inout [UInt8]) {
        JSONWriter.writeObject(self, into: &output) { JSONWriter.write($0, into: &$1) }
    }
}

extension Dictionary where Key == String, Value == String {
    /// Appends this map as a compact JSON object of strings, keys sorted (see the
    /// `[String: JSONValue]` overload).
    public func appendSerializedJSONObject(to output: inout [UInt8]) {
        JSONWriter.writeObject(self, into: &output) { JSONWriter.writeString($0, into: &$1) }
    }
}

extension String {
    /// This string with every U+0000 replaced by U+FFFD, because PostgreSQL `text` (and `jsonb`)
    /// cannot hold NUL. Returns `self` unchanged (no copy) in the usual case of no NUL.
    public var sanitizedForPostgres: String {
        var copy = self
        let hasNUL = copy.withUTF8 { $0.contains(0) }
        guard hasNUL else { return self }
        var output: [UInt8] = []
        output.reserveCapacity(utf8.count + 8)
        appendSanitizedUTF8(to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends the UTF-8 of ``sanitizedForPostgres`` to `output`, without making that string.
    public func appendSanitizedUTF8(to output: inout [UInt8]) {
        var copy = self
        copy.withUTF8 { utf8 in
            var runStart = 0
            var index = 0
            let count = utf8.count
            while index < count {
                if utf8[index] == 0 {
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                    output.append(contentsOf: replacementCharacterUTF8)
                    runStart = index + 1
                }
                index += 1
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<count]))
        }
    }
}

/// Writes JSON values as compact UTF-8.
enum JSONWriter {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func write(_ value: JSONValue, into output: inout [UInt8]) {
        switch value {
        case .null:
            output.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])  // null
        case .bool(true):
            output.append(contentsOf: [0x74, 0x72, 0x75, 0x65])  // true
        case .bool(false):
            output.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65])  // false
        case .number(let lexeme):
            if JSONNumberLexeme.isValid(lexeme) {
                output.append(contentsOf: lexeme.utf8)
            } else {
                output.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
            }
        case .string(let string):
            writeString(string, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(element, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            for (index, entry) in object.entries.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                writeString(entry.key, into: &output)
                output.append(UInt8(ascii: ":"))
                write(entry.value, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// `{`, each entry's key and `:` and then whatever `writeValue` writes for its value, in
    /// the order of the keys, with commas between, and `}`.
    static func writeObject<Value>(_ entries: [String: Value], into output: inout [UInt8], writeValue: (Value, inout [UInt8]) -> Void) {
        output.append(UInt8(ascii: "{"))
        var first = true
        for (key, value) in entries.sorted(by: { $0.key < $1.key }) {
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
            writeString(key, into: &output)
            output.append(UInt8(ascii: ":"))
            writeValue(value, &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    /// Writes a quoted, escaped string. Runs of bytes that need no escaping are copied in bulk.
    static func writeString(_ string: String, into output: inout [UInt8]) {
        var string = string
        string.withUTF8 { writeString(utf8: $0, into: &output) }
    }

    /// ``writeString(_:into:)`` of the string whose (valid) UTF-8 is `utf8`.
    static func writeString(utf8: UnsafeBufferPointer<UInt8>, into output: inout [UInt8]) {
        /// A backslash escape: `\` and `character`.
        func escape(_ character: UInt8) {
            output.append(UInt8(ascii: "\\"))
            output.append(character)
        }
        output.append(UInt8(ascii: "\""))
        var runStart = 0
        var index = 0
        let count = utf8.count
        while index < count {
            index = JSONStringScan.skipUnescaped(utf8, from: index, end: count)
            guard index < count else { break }
            let byte = utf8[index]
            if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            if runStart < index {
                output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
            }
            switch byte {
            case UInt8(ascii: "\""): escape(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): escape(UInt8(ascii: "\\"))
            case 0x00: output.append(contentsOf: replacementCharacterUTF8)
            case 0x08: escape(UInt8(ascii: "b"))
            case 0x09: escape(UInt8(ascii: "t"))
            case 0x0A: escape(UInt8(ascii: "n"))
            case 0x0C: escape(UInt8(ascii: "f"))
            case 0x0D: escape(UInt8(ascii: "r"))
            default:
                escape(UInt8(ascii: "u"))
                output.append(contentsOf: [UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]])
            }
            index += 1
            runStart = index
        }
        if runStart < count {
            output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<count]))
        }
        output.append(UInt8(ascii: "\""))
    }
}
