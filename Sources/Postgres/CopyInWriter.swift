import CLibPQ

/// Encodes rows in PostgreSQL's `COPY ... FROM STDIN` text format (the default format:
/// tab-separated columns, one row per line).
///
/// Backslash, newline, carriage return and tab inside a value are written as `\\`, `\n`,
/// `\r` and `\t`; a `nil` value is written as `\N` (NULL). Values must be in the text format
/// of their column's type; for `bytea` use ``byteaText(_:)``.
public enum CopyTextEncoder {
    /// Appends one encoded row, including its terminating newline, to `buffer`.
    public static func appendRow(_ fields: [String?], to buffer: inout [UInt8]) {
        for (position, field) in fields.enumerated() {
            if position > 0 { buffer.append(UInt8(ascii: "\t")) }
            guard let field else {
                buffer.append(UInt8(ascii: "\\"))
                buffer.append(UInt8(ascii: "N"))
                continue
            }
            appendEscaped(field, to: &buffer)
        }
        buffer.append(UInt8(ascii: "\n"))
    }

    /// One encoded row, including its terminating newline, as a string.
    public static func encodeRow(_ fields: [String?]) -> String {
        var buffer: [UInt8] = []
        appendRow(fields, to: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// The text form of a `bytea` value (`\x` and hex digits), to pass as a COPY field.
    /// ``appendRow(_:to:)`` then escapes its backslash as COPY requires.
    public static func byteaText(_ bytes: [UInt8]) -> String { ByteaText.encodeHex(bytes) }

    private static func appendEscaped(_ field: String, to buffer: inout [UInt8]) {
        var field = field
        field.withUTF8 { utf8 in
            // Fast path: most values need no escaping.
            guard utf8.contains(where: needsEscape) else {
                buffer.append(contentsOf: utf8)
                return
            }
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\\"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "\n"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "n"))
                case UInt8(ascii: "\r"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "r"))
                case UInt8(ascii: "\t"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "t"))
                default: buffer.append(byte)
                }
            }
        }
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
    }
}

/// Streams data into a running `COPY ... FROM STDIN`; handed to the closure of
/// ``PostgresConnection/copyFrom(_:_:)``.
///
/// Rows are buffered and sent with `PQputCopyData` in chunks of about ``chunkSize`` bytes.
/// Every send is checked; a failed send throws ``PostgresError`` of kind
/// ``PostgresError/Kind/copyFailed``. Use it only inside the closure it was passed to.
public struct CopyInWriter {
    /// The size at which buffered data is sent to the server.
    public static let chunkSize = 128 * 1024
    /// The most sent in one `PQputCopyData` call when a large raw write is sent directly.
    static let directChunkSize = 1024 * 1024

    private let connection: PostgresConnection
    private var buffer: [UInt8] = []
    /// Rows written with ``writeRow(_:)`` so far (raw writes are not counted).
    public private(set) var rowsWritten = 0

    init(connection: PostgresConnection) {
        self.connection = connection
        buffer.reserveCapacity(Self.chunkSize + 4096)
    }

    /// Encodes one row (see ``CopyTextEncoder``) and queues it; `nil` fields are NULL.
    public mutating func writeRow(_ fields: [String?]) throws {
        CopyTextEncoder.appendRow(fields, to: &buffer)
        rowsWritten += 1
        if buffer.count >= Self.chunkSize { try flush() }
    }

    /// Queues bytes that are already in the COPY statement's format (for example CSV
    /// lines for `COPY ... FROM STDIN (FORMAT csv)`), without any escaping.
    public mutating func writeRaw(_ bytes: [UInt8]) throws {
        guard bytes.count >= Self.chunkSize else {
            buffer.append(contentsOf: bytes)
            if buffer.count >= Self.chunkSize { try flush() }
            return
        }
        // Large: sent from where it is, in chunks, rather than copied into the buffer first.
        try flush()
        try bytes.withUnsafeBufferPointer { all in
            var start = 0
            while start < all.count {
                let end = min(all.count, start + Self.directChunkSize)
                try connection.putCopyData(UnsafeBufferPointer(rebasing: all[start..<end]))
                start = end
            }
        }
    }

    /// Sends the buffered data now.
    public mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBufferPointer { try connection.putCopyData($0) }
        buffer.removeAll(keepingCapacity: true)
    }
}
