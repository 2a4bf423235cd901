import Foundation

/// A bound statement parameter (`$1`, `$2`, ...). Values are never spliced into SQL text.
///
/// Everything except `bytea` travels in PostgreSQL's text format with an unspecified type,
/// so the server infers the type from the context (`WHERE id = $1`), and you can cast where
/// it cannot (`SELECT $1::int8`). `bytea` travels in binary format with type `bytea`.
///
/// Conversions: `Int`/`Int32`/`Int64` as decimal text; `Double` as shortest round-trip text
/// (`Infinity`, `-Infinity`, `NaN` for the special values); `Bool` as `true`/`false`;
/// `Optional.none` as SQL NULL.
///
/// **Timestamps**: a `Date` becomes UTC text with microseconds, `2024-05-01 12:34:56.789012+00`,
/// which `timestamptz` (and, dropping the offset, `timestamp`) accept exactly — write
/// `$1::timestamptz` where the type cannot be inferred. To read one back without depending
/// on the session's `DateStyle`/`TimeZone`, select `extract(epoch from col)` and decode it
/// with ``PostgresRow/double(_:)-(Int)``.
public enum PostgresValue: Sendable, Hashable {
    /// SQL NULL.
    case null
    /// A value in PostgreSQL's text format (must not contain a NUL character).
    case text(String)
    /// Raw bytes for a `bytea` parameter.
    case bytea([UInt8])

    /// Any value that can be bound, or NULL for `nil`.
    public init(_ value: (some PostgresValueConvertible)?) {
        self = value?.postgresValue ?? .null
    }

    /// The value of a `Date` as `timestamptz` text; see the type's documentation.
    public static func timestamp(_ date: Date) -> PostgresValue {
        .text(Self.timestampText(date))
    }

    static func timestampText(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = Int(interval.rounded(.down))
        var micros = Int(((interval - Double(seconds)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            seconds += 1
            micros -= 1_000_000
        }
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(abs(Int(value)))
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let year = Int(parts.tm_year) + 1900
        // timestamptz accepts years before 1 AD only as "... BC".
        let yearText = year > 0 ? pad(Int32(year), 4) : pad(Int32(1 - year), 4)
        var text = "\(yearText)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2)) "
        text += "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
        text += ".\(pad(Int32(micros), 6))+00"
        if year <= 0 { text += " BC" }
        return text
    }
}

/// A Swift type that can be bound as a statement parameter.
public protocol PostgresValueConvertible {
    /// The parameter value for this Swift value.
    var postgresValue: PostgresValue { get }
}

extension PostgresValue: PostgresValueConvertible {
    public var postgresValue: PostgresValue { self }
}

extension String: PostgresValueConvertible {
    public var postgresValue: PostgresValue { .text(self) }
}

extension Substring: PostgresValueConvertible {
    public var postgresValue: PostgresValue { .text(String(self)) }
}

extension Int: PostgresValueConvertible {
    public var postgresValue: PostgresValue { .text(String(self)) }
}

extension Int32: PostgresValueConvertible {
    public var postgresValue: PostgresValue { .text(String(self)) }
}

extension Int64: PostgresValueConvertible {
    public var postgresValue: PostgresValue { .text(String(self)) }
}

extension Double: PostgresValueConvertible {
    public var postgresValue: PostgresValue {
        if isNaN { return .text("NaN") }
        if isInfinite { return .text(self < 0 ? "-Infinity" : "Infinity") }
        return .text(description)
    }
}

extension Bool: PostgresValueConvertible {
    public var postgresValue: PostgresValue { .text(self ? "true" : "false") }
}

extension Array: PostgresValueConvertible where Element == UInt8 {
    public var postgresValue: PostgresValue { .bytea(self) }
}

extension Date: PostgresValueConvertible {
    public var postgresValue: PostgresValue { .timestamp(self) }
}

extension Optional: PostgresValueConvertible where Wrapped: PostgresValueConvertible {
    public var postgresValue: PostgresValue { self?.postgresValue ?? .null }
}

extension PostgresValue: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension PostgresValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
}

extension PostgresValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self = value.postgresValue }
}

extension PostgresValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = value.postgresValue }
}

extension PostgresValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = value.postgresValue }
}

extension PostgresValue {
    /// Shorthand for binding a string; `nil` binds NULL.
    public static func string(_ value: String?) -> PostgresValue { PostgresValue(value) }
    /// Shorthand for binding an integer; `nil` binds NULL.
    public static func int(_ value: Int?) -> PostgresValue { PostgresValue(value) }
    /// Shorthand for binding a 32-bit integer; `nil` binds NULL.
    public static func int32(_ value: Int32?) -> PostgresValue { PostgresValue(value) }
    /// Shorthand for binding a 64-bit integer; `nil` binds NULL.
    public static func int64(_ value: Int64?) -> PostgresValue { PostgresValue(value) }
    /// Shorthand for binding a double; `nil` binds NULL.
    public static func double(_ value: Double?) -> PostgresValue { PostgresValue(value) }
    /// Shorthand for binding a boolean; `nil` binds NULL.
    public static func bool(_ value: Bool?) -> PostgresValue { PostgresValue(value) }
    /// Shorthand for binding bytes as `bytea`; `nil` binds NULL.
    public static func bytes(_ value: [UInt8]?) -> PostgresValue { PostgresValue(value) }
}
