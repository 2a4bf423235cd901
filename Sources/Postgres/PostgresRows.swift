/// The rows of a query result, copied out of libpq's `PGresult` before it was freed.
///
/// Values are kept in PostgreSQL's text format and decoded on access by the typed accessors
/// of ``PostgresRow``. The value is a plain Swift value: it can be kept, and sent across
/// tasks, after the connection has moved on.
public struct PostgresRows: Sendable, RandomAccessCollection {
    /// Column names, in result order.
    public let columns: [String]
    /// Type OIDs of the columns (`PQftype`), in result order.
    public let columnTypes: [UInt32]
    /// The command tag, such as `SELECT 3` or `INSERT 0 1`.
    public let commandTag: String
    /// Rows affected (`PQcmdTuples`), 0 for commands that report none.
    public let affectedRows: Int

    let columnIndex: [String: Int]
    let cells: [String?]
    public let count: Int

    init(columns: [String], columnTypes: [UInt32], cells: [String?], rowCount: Int, commandTag: String, affectedRows: Int) {
        self.columns = columns
        self.columnTypes = columnTypes
        self.cells = cells
        self.count = rowCount
        self.commandTag = commandTag
        self.affectedRows = affectedRows
        var index: [String: Int] = [:]
        for (position, name) in columns.enumerated() where index[name] == nil {
            index[name] = position
        }
        self.columnIndex = index
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> PostgresRow {
        precondition(position >= 0 && position < count, "row index \(position) out of range 0..<\(count)")
        return PostgresRow(rows: self, row: position)
    }
}

/// One row of ``PostgresRows``, with typed accessors by column index or by column name.
///
/// Each accessor throws ``PostgresError`` of kind ``PostgresError/Kind/decodingFailed``
/// naming the column when the column does not exist, the value is NULL (use the `optional…`
/// variants to accept NULL), or the text cannot be read as the requested type. When a name
/// occurs twice in the result, lookup by name finds the first.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    /// This row's position in its ``PostgresRows``.
    public let row: Int

    /// Number of columns.
    public var columnCount: Int { rows.columns.count }

    /// Whether the value is SQL NULL.
    public func isNull(_ column: Int) throws -> Bool { try raw(column) == nil }
    /// Whether the value is SQL NULL.
    public func isNull(_ column: String) throws -> Bool { try isNull(index(of: column)) }

    /// The value's text, exactly as the server sent it.
    public func string(_ column: Int) throws -> String { try required(column, optionalString(column)) }
    /// The value's text, exactly as the server sent it.
    public func string(_ column: String) throws -> String { try string(index(of: column)) }
    /// The value's text, or `nil` for NULL.
    public func optionalString(_ column: Int) throws -> String? { try raw(column) }
    /// The value's text, or `nil` for NULL.
    public func optionalString(_ column: String) throws -> String? { try optionalString(index(of: column)) }

    /// The value as a 64-bit integer (`int2`, `int4`, `int8`, or numeric text without a fraction).
    public func int64(_ column: Int) throws -> Int64 { try required(column, optionalInt64(column)) }
    /// The value as a 64-bit integer.
    public func int64(_ column: String) throws -> Int64 { try int64(index(of: column)) }
    /// The value as a 64-bit integer, or `nil` for NULL.
    public func optionalInt64(_ column: Int) throws -> Int64? { try decode(column, as: "Int64") { Int64($0) } }
    /// The value as a 64-bit integer, or `nil` for NULL.
    public func optionalInt64(_ column: String) throws -> Int64? { try optionalInt64(index(of: column)) }

    /// The value as an `Int`.
    public func int(_ column: Int) throws -> Int { try required(column, optionalInt(column)) }
    /// The value as an `Int`.
    public func int(_ column: String) throws -> Int { try int(index(of: column)) }
    /// The value as an `Int`, or `nil` for NULL.
    public func optionalInt(_ column: Int) throws -> Int? { try decode(column, as: "Int") { Int($0) } }
    /// The value as an `Int`, or `nil` for NULL.
    public func optionalInt(_ column: String) throws -> Int? { try optionalInt(index(of: column)) }

    /// The value as a `Double` (`float4`, `float8`, `numeric`, integers; `Infinity`/`NaN` too).
    public func double(_ column: Int) throws -> Double { try required(column, optionalDouble(column)) }
    /// The value as a `Double`.
    public func double(_ column: String) throws -> Double { try double(index(of: column)) }
    /// The value as a `Double`, or `nil` for NULL.
    public func optionalDouble(_ column: Int) throws -> Double? { try decode(column, as: "Double", Self.parseDouble) }
    /// The value as a `Double`, or `nil` for NULL.
    public func optionalDouble(_ column: String) throws -> Double? { try optionalDouble(index(of: column)) }

    /// The value as a `Bool` (`t`/`f` as the server prints `boolean`).
    public func bool(_ column: Int) throws -> Bool { try required(column, optionalBool(column)) }
    /// The value as a `Bool`.
    public func bool(_ column: String) throws -> Bool { try bool(index(of: column)) }
    /// The value as a `Bool`, or `nil` for NULL.
    public func optionalBool(_ column: Int) throws -> Bool? { try decode(column, as: "Bool", Self.parseBool) }
    /// The value as a `Bool`, or `nil` for NULL.
    public func optionalBool(_ column: String) throws -> Bool? { try optionalBool(index(of: column)) }

    /// The bytes of a `bytea` value (hex `\x...` output, or the older escape output).
    public func bytes(_ column: Int) throws -> [UInt8] { try required(column, optionalBytes(column)) }
    /// The bytes of a `bytea` value.
    public func bytes(_ column: String) throws -> [UInt8] { try bytes(index(of: column)) }
    /// The bytes of a `bytea` value, or `nil` for NULL.
    public func optionalBytes(_ column: Int) throws -> [UInt8]? { try decode(column, as: "bytea", ByteaText.decode) }
    /// The bytes of a `bytea` value, or `nil` for NULL.
    public func optionalBytes(_ column: String) throws -> [UInt8]? { try optionalBytes(index(of: column)) }

    // MARK: - Helpers

    private func index(of name: String) throws -> Int {
        guard let index = rows.columnIndex[name] else {
            throw PostgresError(
                kind: .decodingFailed, message: "the result has no column named \"\(name)\"", columnName: name)
        }
        return index
    }

    private func columnName(_ column: Int) -> String {
        column >= 0 && column < rows.columns.count ? rows.columns[column] : "#\(column)"
    }

    private func raw(_ column: Int) throws -> String? {
        guard column >= 0 && column < rows.columns.count else {
            throw PostgresError(
                kind: .decodingFailed,
                message: "column index \(column) is out of range (the result has \(rows.columns.count) columns)")
        }
        return rows.cells[row * rows.columns.count + column]
    }

    private func required<T>(_ column: Int, _ value: T?) throws -> T {
        guard let value else {
            throw PostgresError(
                kind: .decodingFailed,
                message: "column \"\(columnName(column))\" (index \(column)) is NULL; use the optional accessor",
                columnName: columnName(column))
        }
        return value
    }

    private func decode<T>(_ column: Int, as typeName: String, _ parse: (String) -> T?) throws -> T? {
        guard let text = try raw(column) else { return nil }
        guard let value = parse(text) else {
            // The value itself may be user data: keep it out of `description`.
            throw PostgresError(
                kind: .decodingFailed,
                message: "column \"\(columnName(column))\" (index \(column)) cannot be decoded as \(typeName)",
                detail: "value: \(text.prefix(200))",
                columnName: columnName(column))
        }
        return value
    }

    static func parseDouble(_ text: String) -> Double? {
        switch text {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default:
            // Reject what Swift accepts but PostgreSQL never prints (hex floats, "inf", "nan").
            guard let first = text.utf8.first, first == UInt8(ascii: "-") || first == UInt8(ascii: ".")
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first),
                !text.contains("x"), !text.contains("X")
            else { return nil }
            return Double(text)
        }
    }

    static func parseBool(_ text: String) -> Bool? {
        switch text {
        case "t", "true": return true
        case "f", "false": return false
        default: return nil
        }
    }
}

/// Decoding of `bytea` values from PostgreSQL's text output formats.
enum ByteaText {
    /// Decodes hex format (`\x0aff`) or the older escape format (`ab\\\001`).
    static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        if utf8.count >= 2 && utf8[0] == UInt8(ascii: "\\") && utf8[1] == UInt8(ascii: "x") {
            return decodeHex(utf8[2...])
        }
        return decodeEscape(utf8)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func decodeHex(_ digits: ArraySlice<UInt8>) -> [UInt8]? {
        guard digits.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(digits.count / 2)
        var index = digits.startIndex
        while index < digits.endIndex {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            result.append(high << 4 | low)
            index += 2
        }
        return result
    }

    private static func decodeEscape(_ bytes: [UInt8]) -> [UInt8]? {
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                result.append(byte)
                index += 1
                continue
            }
            if index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\\") {
                result.append(byte)
                index += 2
                continue
            }
            guard index + 3 < bytes.count else { return nil }
            var value = 0
            for digit in bytes[(index + 1)...(index + 3)] {
                guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "7") else { return nil }
                value = value * 8 + Int(digit - UInt8(ascii: "0"))
            }
            guard value <= 255 else { return nil }
            result.append(UInt8(value))
            index += 4
        }
        return result
    }

    /// Encodes bytes in hex format, `\x` followed by two lowercase digits per byte.
    static func encodeHex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        text.reserveCapacity(2 + bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
