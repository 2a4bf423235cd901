/// A JSON document held exactly as it was written.
///
/// Numbers keep their lexeme (the digits as written), so a 19-digit nanosecond timestamp
/// such as `1770123653476857750` survives a round trip without passing through `Double`.
/// Objects keep their key order (see ``JSONObject``).
///
/// Equality is structural and exact: numbers compare by lexeme (`1` ≠ `1.0`) and objects
/// compare entry by entry, in order.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number, as its JSON lexeme (for example `-12`, `3.5e-7`).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON object: key/value entries in document order.
///
/// Lookups by key scan the entries (trace objects are small). When a key occurs more than
/// once, lookups return the last occurrence, as most JSON readers (and PostgreSQL `jsonb`) do;
/// all entries are kept and serialised.
public struct JSONObject: Sendable, Equatable, RandomAccessCollection {
    /// One key/value pair.
    public typealias Entry = (key: String, value: JSONValue)

    /// The entries in document order.
    public var entries: [Entry]

    /// An object with the given entries, in order.
    public init(_ entries: [Entry] = []) {
        self.entries = entries
    }

    public var startIndex: Int { entries.startIndex }
    public var endIndex: Int { entries.endIndex }
    public subscript(position: Int) -> Entry { entries[position] }

    /// The value for `key` (the last one when the key is repeated), or nil when absent.
    public subscript(key: String) -> JSONValue? {
        get {
            var index = entries.endIndex
            while index > entries.startIndex {
                index -= 1
                if entries[index].key == key { return entries[index].value }
            }
            return nil
        }
        set {
            if let index = entries.lastIndex(where: { $0.key == key }) {
                if let newValue {
                    entries[index].value = newValue
                } else {
                    entries.remove(at: index)
                }
            } else if let newValue {
                entries.append((key: key, value: newValue))
            }
        }
    }

    /// The keys in document order (repeated keys appear more than once).
    public var keys: [String] { entries.map(\.key) }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.entries.count == rhs.entries.count else { return false }
        for (left, right) in zip(lhs.entries, rhs.entries) {
            if left.key != right.key || left.value != right.value { return false }
        }
        return true
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements.map { (key: $0.0, value: $0.1) })
    }
}

// MARK: - Accessors

extension JSONValue {
    /// The string, when this is a JSON string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The Boolean, when this is `true` or `false`.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The elements, when this is a JSON array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The object, when this is a JSON object.
    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The lexeme, when this is a JSON number.
    public var numberLexeme: String? {
        if case .number(let lexeme) = self { return lexeme }
        return nil
    }

    /// Whether this is JSON `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The exact integer, when this is a number with an integral lexeme that fits in `Int64`.
    ///
    /// `42`, `-7` and `1555.0` qualify; `1.5`, `1e3` and `9223372036854775808` do not.
    /// Strings never qualify; see ``int64AcceptingDecimalString``.
    public var int64Value: Int64? {
        guard case .number(let lexeme) = self else { return nil }
        return JSONNumberLexeme.int64(lexeme)
    }

    /// Like ``int64Value``, but also accepts a string of decimal digits with an optional
    /// leading `-` (`"1770123653476857750"`), as protobuf JSON writes 64-bit integers.
    public var int64AcceptingDecimalString: Int64? {
        switch self {
        case .number(let lexeme): return JSONNumberLexeme.int64(lexeme)
        case .string(let text): return JSONNumberLexeme.decimalStringInt64(text)
        default: return nil
        }
    }

    /// The number as a `Double` (possibly rounded), when this is a JSON number.
    public var doubleValue: Double? {
        guard case .number(let lexeme) = self else { return nil }
        return Double(lexeme)
    }

    /// The member `key` when this is an object that has it; nil otherwise.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The element at `index` when this is an array and the index is in range; nil otherwise.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    /// The JSON type name (`null`, `boolean`, `number`, `string`, `array`, `object`), for messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

// MARK: - Construction

extension JSONValue {
    /// An integer number.
    public init(_ value: Int64) {
        self = .number(String(value))
    }

    /// An integer number.
    public init(_ value: Int) {
        self = .number(String(value))
    }

    /// A floating-point number; NaN and infinities, which JSON cannot represent, become `null`.
    public init(_ value: Double) {
        if value.isFinite {
            self = .number(value.description)
        } else {
            self = .null
        }
    }

    /// Parses `text` as a JSON document with the default ``JSONParser``.
    public init(parsing text: String) throws(JSONParseError) {
        self = try JSONParser().parse(text)
    }
}

extension JSONValue: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self = .number(String(value)) }
}

extension JSONValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self.init(value) }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
}

// MARK: - Number lexemes

/// Helpers on JSON number lexemes (ASCII only).
enum JSONNumberLexeme {
    /// Whether `lexeme` matches RFC 8259's `number` production exactly.
    static func isValid(_ lexeme: String) -> Bool {
        var utf8 = lexeme.utf8.makeIterator()
        var byte = utf8.next()
        func isDigit(_ b: UInt8?) -> Bool { b.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
        if byte == UInt8(ascii: "-") { byte = utf8.next() }
        if byte == UInt8(ascii: "0") {
            byte = utf8.next()
        } else if let b = byte, b >= 0x31, b <= 0x39 {
            repeat { byte = utf8.next() } while isDigit(byte)
        } else {
            return false
        }
        if byte == UInt8(ascii: ".") {
            byte = utf8.next()
            guard isDigit(byte) else { return false }
            repeat { byte = utf8.next() } while isDigit(byte)
        }
        if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            byte = utf8.next()
            if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") { byte = utf8.next() }
            guard isDigit(byte) else { return false }
            repeat { byte = utf8.next() } while isDigit(byte)
        }
        return byte == nil
    }

    /// The exact `Int64` of an integral lexeme (`-12`, `1555.000`), or nil.
    static func int64(_ lexeme: String) -> Int64? {
        var integerPart = Substring(lexeme)
        if let dot = lexeme.utf8.firstIndex(of: UInt8(ascii: ".")) {
            let fraction = lexeme.utf8[lexeme.utf8.index(after: dot)...]
            guard !fraction.isEmpty, fraction.allSatisfy({ $0 == UInt8(ascii: "0") }) else { return nil }
            integerPart = lexeme[..<dot]
        }
        return decimalStringInt64(integerPart)
    }

    /// The `Int64` of `-?[0-9]+` text, or nil when it has other characters or overflows.
    static func decimalStringInt64<S: StringProtocol>(_ text: S) -> Int64? {
        var negative = false
        var value: Int64 = 0
        var digits = 0
        for (offset, byte) in text.utf8.enumerated() {
            if offset == 0, byte == UInt8(ascii: "-") {
                negative = true
                continue
            }
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            let digit = Int64(byte &- 0x30)
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            // Accumulate negatively so Int64.min is representable.
            let (next, overflow2) = times10.subtractingReportingOverflow(digit)
            if overflow1 || overflow2 { return nil }
            value = next
            digits += 1
        }
        guard digits > 0 else { return nil }
        if negative { return value }
        let (positive, overflow) = Int64(0).subtractingReportingOverflow(value)
        return overflow ? nil : positive
    }
}
