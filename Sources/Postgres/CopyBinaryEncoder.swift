/// Writes PostgreSQL's binary COPY format (`COPY ... FROM STDIN WITH (FORMAT binary)`): a
/// ``header``, tuples, a ``trailer``.
///
/// Each tuple is a 16-bit field count, then per field a 32-bit byte length (−1 for NULL)
/// and the value in its type's binary send/receive form, all integers big-endian. Values
/// need no escaping, which saves the client a pass over every text and JSON value, and the
/// server parses fixed-width integers and times instead of their decimal text.
///
/// The encoder does not check values against their columns: the server refuses a field of
/// the wrong width ("incorrect binary data format"), and a `text` or `jsonb` value must be
/// valid UTF-8 without NUL.
public enum CopyBinaryEncoder {
    /// The signature `PGCOPY\n\377\r\n\0`, 32 bits of flags (none) and a header extension
    /// length of 0.
    public static let header: [UInt8] = [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00,
                                         0, 0, 0, 0, 0, 0, 0, 0]
    /// The field count −1 that ends the stream.
    public static let trailer: [UInt8] = [0xFF, 0xFF]

    /// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00 UTC), the
    /// origin of binary `timestamp` and `timestamptz` values.
    public static let postgresEpochMicros: Int64 = 946_684_800_000_000

    /// Starts a tuple of `fieldCount` fields; exactly that many field appends must follow.
    @inlinable
    public static func beginTuple(fieldCount: Int16, in buffer: inout [UInt8]) {
        appendBigEndian(UInt16(bitPattern: fieldCount), to: &buffer)
    }

    @inlinable
    public static func appendNull(to buffer: inout [UInt8]) {
        appendBigEndian(UInt32(bitPattern: -1), to: &buffer)
    }

    /// An `integer` (int4) field.
    @inlinable
    public static func appendInt32(_ value: Int32, to buffer: inout [UInt8]) {
        appendBigEndian(UInt32(4), to: &buffer)
        appendBigEndian(UInt32(bitPattern: value), to: &buffer)
    }

    /// A `bigint` (int8) field.
    @inlinable
    public static func appendInt64(_ value: Int64, to buffer: inout [UInt8]) {
        appendBigEndian(UInt32(8), to: &buffer)
        appendBigEndian(UInt64(bitPattern: value), to: &buffer)
    }

    /// A `double precision` (float8) field: the IEEE 754 bits.
    @inlinable
    public static func appendFloat8(_ value: Double, to buffer: inout [UInt8]) {
        appendBigEndian(UInt32(8), to: &buffer)
        appendBigEndian(value.bitPattern, to: &buffer)
    }

    /// A `timestamptz` (or `timestamp`) field from microseconds since the Unix epoch.
    @inlinable
    public static func appendTimestamp(microsSinceUnixEpoch micros: Int64, to buffer: inout [UInt8]) {
        appendInt64(micros - postgresEpochMicros, to: &buffer)
    }

    /// A field whose bytes `write` appends (a `text` value's UTF-8, for example); its length
    /// is filled in afterwards.
    @inlinable
    public static func appendField(to buffer: inout [UInt8], _ write: (inout [UInt8]) -> Void) {
        let lengthAt = buffer.count
        appendBigEndian(UInt32(0), to: &buffer)
        write(&buffer)
        let length = UInt32(truncatingIfNeeded: buffer.count - lengthAt - 4)
        buffer.withUnsafeMutableBufferPointer { bytes in
            bytes[lengthAt] = UInt8(truncatingIfNeeded: length >> 24)
            bytes[lengthAt + 1] = UInt8(truncatingIfNeeded: length >> 16)
            bytes[lengthAt + 2] = UInt8(truncatingIfNeeded: length >> 8)
            bytes[lengthAt + 3] = UInt8(truncatingIfNeeded: length)
        }
    }

    /// A `jsonb` field: the format version 1, then the JSON text `write` appends.
    @inlinable
    public static func appendJSONB(to buffer: inout [UInt8], _ write: (inout [UInt8]) -> Void) {
        appendField(to: &buffer) { field in
            field.append(1)
            write(&field)
        }
    }

    @inlinable
    static func appendBigEndian<Value: FixedWidthInteger & UnsignedInteger>(_ value: Value, to buffer: inout [UInt8]) {
        var shift = Value.bitWidth - 8
        while shift >= 0 {
            buffer.append(UInt8(truncatingIfNeeded: value >> shift))
            shift -= 8
        }
    }
}
