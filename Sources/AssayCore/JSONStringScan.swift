/// Skips the bytes of a JSON string that need no attention, eight at a time.
///
/// Reading and writing JSON strings spends most of its time looking at bytes that are simply
/// copied: printable ASCII other than `"` and `\`. These helpers step over whole 8-byte words
/// of such bytes with a few integer operations per word (the "has a zero byte" and "has a byte
/// less than n" bit tricks) and return the index of the first byte that is anything else, or
/// of the last few bytes (fewer than eight) when none is found before them. They never decide
/// anything about the bytes they stop at: the caller's byte-by-byte loop does, so what counts
/// as valid, escaped or an error is still decided in one place.
enum JSONStringScan {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// A mask with the high bit set in each byte of `word` that is zero. Exact in its lowest
    /// set bit: a false positive can only appear in a byte above (later than) a true one.
    @inline(__always)
    private static func zeroBytes(_ word: UInt64) -> UInt64 {
        (word &- ones) & ~word & highBits
    }

    /// A mask like ``zeroBytes(_:)`` of the bytes below 0x20 (control characters).
    @inline(__always)
    private static func controlBytes(_ word: UInt64) -> UInt64 {
        (word &- ones &* 0x20) & ~word & highBits
    }

    /// A mask like ``zeroBytes(_:)`` of the bytes that are `"`, `\` or below 0x20.
    @inline(__always)
    private static func quoteBackslashOrControlBytes(_ word: UInt64) -> UInt64 {
        controlBytes(word) | zeroBytes(word ^ (ones &* 0x22)) | zeroBytes(word ^ (ones &* 0x5C))
    }

    /// The first index at or after `index` that holds a byte which is not printable ASCII or is
    /// `"` or `\`, found 8 bytes at a time; when fewer than 8 bytes are left to `end` before
    /// such a byte, the index where they start. For a parser, which must also validate
    /// multi-byte UTF-8.
    @inline(__always)
    static func skipPlainASCII(_ buffer: UnsafeBufferPointer<UInt8>, from index: Int, end: Int) -> Int {
        skip(buffer, from: index, end: end, alsoStoppingAt: highBits)
    }

    /// Like ``skipPlainASCII(_:from:end:)``, but bytes of 0x80 and above count as plain: for a
    /// writer of UTF-8 that is already valid, where only `"`, `\` and control characters are
    /// escaped.
    @inline(__always)
    static func skipUnescaped(_ buffer: UnsafeBufferPointer<UInt8>, from index: Int, end: Int) -> Int {
        skip(buffer, from: index, end: end, alsoStoppingAt: 0)
    }

    /// The scan of both: stops at `"`, `\`, control characters, and at bytes with any bit of
    /// `extraBits` (repeated in every byte) set.
    @inline(__always)
    private static func skip(_ buffer: UnsafeBufferPointer<UInt8>, from index: Int, end: Int, alsoStoppingAt extraBits: UInt64) -> Int {
        guard let base = buffer.baseAddress else { return index }
        let raw = UnsafeRawPointer(base)
        var position = index
        while position &+ 8 <= end {
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            let attention = (word & extraBits) | quoteBackslashOrControlBytes(word)
            if attention != 0 { return position &+ attention.trailingZeroBitCount / 8 }
            position &+= 8
        }
        return position
    }
}
