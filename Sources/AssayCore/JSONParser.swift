/// Why a byte sequence is not a JSON document, and where.
///
/// The description names the byte offset and a short reason, never the payload's content.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Reason: String, Sendable, Equatable, CaseIterable {
        case emptyInput = "empty input"
        case unexpectedEndOfInput = "unexpected end of input"
        case unexpectedCharacter = "unexpected character"
        case invalidLiteral = "invalid literal"
        case invalidNumber = "invalid number"
        case expectedColon = "expected ':' after object key"
        case expectedKey = "expected a string object key"
        case expectedCommaOrEndOfObject = "expected ',' or '}'"
        case expectedCommaOrEndOfArray = "expected ',' or ']'"
        case unterminatedString = "unterminated string"
        case controlCharacterInString = "unescaped control character in string"
        case invalidEscape = "invalid escape sequence"
        case invalidUnicodeEscape = "invalid \\u escape"
        case loneSurrogate = "unpaired UTF-16 surrogate in \\u escape"
        case invalidUTF8 = "invalid UTF-8"
        case nestingTooDeep = "nesting too deep"
        case trailingData = "unexpected data after the JSON value"
    }

    /// Byte offset (from 0) of the first byte the parser could not accept.
    public var offset: Int
    public var reason: Reason

    public init(offset: Int, reason: Reason) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "\(reason.rawValue) at byte \(offset)" }
}

/// A strict RFC 8259 JSON parser over UTF-8 bytes.
///
/// - Accepts exactly one value, surrounded by optional JSON whitespace (space, tab, CR, LF);
///   anything after it is ``JSONParseError/Reason/trailingData``.
/// - Rejects invalid UTF-8 (overlong forms, encoded surrogates, code points above U+10FFFF),
///   unescaped control characters in strings, leading zeros, `+1`, `.5`, `NaN`, comments and
///   trailing commas.
/// - Decodes every escape, combining `\uD83D\uDE00` surrogate pairs into one scalar.
/// - Keeps numbers as their lexeme (``JSONValue/number(_:)``), so large integers stay exact.
/// - Refuses more than ``maxDepth`` nested arrays/objects, so hostile input cannot exhaust the stack.
public struct JSONParser: Sendable {
    /// What to do with a `\u` escape that is an unpaired UTF-16 surrogate (`"\uD800"`).
    ///
    /// RFC 8259's grammar allows such escapes but they denote no Unicode text, and Swift
    /// strings (like PostgreSQL text) cannot hold them.
    public enum LoneSurrogatePolicy: Sendable, Equatable {
        /// Decode it as U+FFFD REPLACEMENT CHARACTER (what Go's `encoding/json` does).
        case replace
        /// Fail with ``JSONParseError/Reason/loneSurrogate``.
        case reject
    }

    /// The default nesting limit.
    public static let defaultMaxDepth = 512

    /// The most arrays/objects that may be open at once.
    public var maxDepth: Int
    public var loneSurrogates: LoneSurrogatePolicy

    public init(maxDepth: Int = JSONParser.defaultMaxDepth, loneSurrogates: LoneSurrogatePolicy = .replace) {
        self.maxDepth = maxDepth
        self.loneSurrogates = loneSurrogates
    }

    /// Parses one JSON document from `bytes`.
    public func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBufferPointer { buffer in
            parseResult(buffer)
        }
        return try result.get()
    }

    /// Parses one JSON document from raw bytes (for example a Kafka message payload, without copying).
    public func parse(_ buffer: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        try parseResult(buffer.assumingMemoryBound(to: UInt8.self)).get()
    }

    /// Parses one JSON document from the UTF-8 of `text`.
    public func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var text = text
        let result: Result<JSONValue, JSONParseError> = text.withUTF8 { buffer in
            parseResult(buffer)
        }
        return try result.get()
    }

    /// The compact serialization of the document in `text`, made without building it: the same
    /// bytes as `try parse(text).serializedUTF8()`, and the same errors.
    ///
    /// For JSON that is only passed on (a span's inputs and outputs on their way to a `jsonb`
    /// column), this skips the tree that parsing would build and the writer would walk.
    public func compactUTF8(_ text: String) throws(JSONParseError) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count)
        try appendCompactUTF8(text, to: &output)
        return output
    }

    /// Appends ``compactUTF8(_:)`` of `text` to `output`. When it throws, `output` is as it was.
    public func appendCompactUTF8(_ text: String, to output: inout [UInt8]) throws(JSONParseError) {
        var text = text
        let start = output.count
        let failure: JSONParseError? = text.withUTF8 { buffer in
            var core = JSONParserCore(buffer: buffer, maxDepth: maxDepth, loneSurrogates: loneSurrogates)
            do throws(JSONParseError) {
                try core.copyDocument(into: &output)
                return nil
            } catch {
                return error
            }
        }
        if let failure {
            output.removeSubrange(start...)
            throw failure
        }
    }

    private func parseResult(_ buffer: UnsafeBufferPointer<UInt8>) -> Result<JSONValue, JSONParseError> {
        var core = JSONParserCore(buffer: buffer, maxDepth: maxDepth, loneSurrogates: loneSurrogates)
        do throws(JSONParseError) {
            return .success(try core.parseDocument())
        } catch {
            return .failure(error)
        }
    }
}

// MARK: - Implementation

private enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
}

/// The parser's cursor. Lives only inside one `withUnsafeBufferPointer` scope.
private struct JSONParserCore {
    let buffer: UnsafeBufferPointer<UInt8>
    let end: Int
    let maxDepth: Int
    let loneSurrogates: JSONParser.LoneSurrogatePolicy
    var position = 0
    var depth = 0
    /// Reused for strings that contain escapes.
    var scratch: [UInt8] = []

    init(buffer: UnsafeBufferPointer<UInt8>, maxDepth: Int, loneSurrogates: JSONParser.LoneSurrogatePolicy) {
        self.buffer = buffer
        self.end = buffer.count
        self.maxDepth = maxDepth
        self.loneSurrogates = loneSurrogates
    }

    private func fail(_ reason: JSONParseError.Reason, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(offset: offset ?? position, reason: reason)
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard position < end else {
            throw fail(end == 0 ? .emptyInput : .unexpectedEndOfInput)
        }
        let value = try parseValue()
        skipWhitespace()
        guard position == end else { throw fail(.trailingData) }
        return value
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while position < end {
            switch buffer[position] {
            case ASCII.space, ASCII.newline, ASCII.carriageReturn, ASCII.tab:
                position += 1
            default:
                return
            }
        }
    }

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard position < end else { throw fail(.unexpectedEndOfInput) }
        switch buffer[position] {
        case ASCII.openBrace:
            return try parseObject()
        case ASCII.openBracket:
            return try parseArray()
        case ASCII.quote:
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case ASCII.minus, ASCII.zero...ASCII.nine:
            return .number(try parseNumber())
        default:
            throw fail(.unexpectedCharacter)
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        let start = literal.utf8Start
        for index in 0..<count {
            guard position < end else { throw fail(.unexpectedEndOfInput) }
            guard buffer[position] == start[index] else { throw fail(.invalidLiteral) }
            position += 1
        }
    }

    private mutating func enterContainer() throws(JSONParseError) {
        depth += 1
        if depth > maxDepth { throw fail(.nestingTooDeep) }
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enterContainer()
        position += 1  // '{'
        var entries: [JSONObject.Entry] = []
        skipWhitespace()
        guard position < end else { throw fail(.unexpectedEndOfInput) }
        if buffer[position] == ASCII.closeBrace {
            position += 1
            depth -= 1
            return .object(JSONObject(entries))
        }
        while true {
            guard position < end else { throw fail(.unexpectedEndOfInput) }
            guard buffer[position] == ASCII.quote else { throw fail(.expectedKey) }
            let key = try parseString()
            skipWhitespace()
            guard position < end else { throw fail(.unexpectedEndOfInput) }
            guard buffer[position] == ASCII.colon else { throw fail(.expectedColon) }
            position += 1
            skipWhitespace()
            let value = try parseValue()
            entries.append((key: key, value: value))
            skipWhitespace()
            guard position < end else { throw fail(.unexpectedEndOfInput) }
            switch buffer[position] {
            case ASCII.comma:
                position += 1
                skipWhitespace()
            case ASCII.closeBrace:
                position += 1
                depth -= 1
                return .object(JSONObject(entries))
            default:
                throw fail(.expectedCommaOrEndOfObject)
            }
        }
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enterContainer()
        position += 1  // '['
        var elements: [JSONValue] = []
        skipWhitespace()
        guard position < end else { throw fail(.unexpectedEndOfInput) }
        if buffer[position] == ASCII.closeBracket {
            position += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard position < end else { throw fail(.unexpectedEndOfInput) }
            switch buffer[position] {
            case ASCII.comma:
                position += 1
            case ASCII.closeBracket:
                position += 1
                depth -= 1
                return .array(elements)
            default:
                throw fail(.expectedCommaOrEndOfArray)
            }
        }
    }

    @inline(__always)
    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= ASCII.zero && byte <= ASCII.nine
    }

    private mutating func parseNumber() throws(JSONParseError) -> String {
        let range = try scanNumber()
        return String(decoding: UnsafeBufferPointer(rebasing: buffer[range]), as: UTF8.self)
    }

    /// Steps over the number at `position` and returns its lexeme's bytes.
    private mutating func scanNumber() throws(JSONParseError) -> Range<Int> {
        let start = position
        if buffer[position] == ASCII.minus { position += 1 }
        guard position < end else { throw fail(.unexpectedEndOfInput) }
        if buffer[position] == ASCII.zero {
            position += 1
        } else if buffer[position] > ASCII.zero && buffer[position] <= ASCII.nine {
            position += 1
            while position < end && isDigit(buffer[position]) { position += 1 }
        } else {
            throw fail(.invalidNumber)
        }
        if position < end && buffer[position] == ASCII.dot {
            position += 1
            guard position < end else { throw fail(.unexpectedEndOfInput) }
            guard isDigit(buffer[position]) else { throw fail(.invalidNumber) }
            while position < end && isDigit(buffer[position]) { position += 1 }
        }
        if position < end && (buffer[position] == UInt8(ascii: "e") || buffer[position] == UInt8(ascii: "E")) {
            position += 1
            if position < end && (buffer[position] == ASCII.plus || buffer[position] == ASCII.minus) {
                position += 1
            }
            guard position < end else { throw fail(.unexpectedEndOfInput) }
            guard isDigit(buffer[position]) else { throw fail(.invalidNumber) }
            while position < end && isDigit(buffer[position]) { position += 1 }
        }
        return start..<position
    }

    /// Parses a string starting at its opening quote. The common case (no escapes) makes one
    /// `String` straight from the input bytes; strings with escapes are assembled in `scratch`.
    private mutating func parseString() throws(JSONParseError) -> String {
        position += 1  // opening quote
        let start = position
        guard try skipUnescapedRun(ofStringAt: start) else { return try parseEscapedString(from: start) }
        let string = String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<position]), as: UTF8.self)
        position += 1
        return string
    }

    /// Decodes the rest of a string with escapes into `scratch`; returns it as a `String`
    /// only when `makeString` (the copier uses `scratch` as it is).
    private mutating func parseEscapedString(from start: Int, makeString: Bool = true) throws(JSONParseError) -> String {
        scratch.removeAll(keepingCapacity: true)
        var runStart = start
        while true {
            let closed = try skipUnescapedRun(ofStringAt: start)
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[runStart..<position]))
            if closed {
                position += 1
                return makeString ? String(decoding: scratch, as: UTF8.self) : ""
            }
            try decodeEscape()
            runStart = position
        }
    }

    /// Steps over string bytes that stand for themselves (checking their UTF-8, refusing
    /// control characters) up to the closing quote, true, or a backslash, false, and stops on
    /// it. The string, the escaped one and the copied one share it: one place decides what a
    /// string may hold. `start` is where the string's content begins (for the error when it
    /// never ends).
    @inline(__always)
    private mutating func skipUnescapedRun(ofStringAt start: Int) throws(JSONParseError) -> Bool {
        while position < end {
            position = JSONStringScan.skipPlainASCII(buffer, from: position, end: end)
            guard position < end else { break }
            let byte = buffer[position]
            if byte == ASCII.quote { return true }
            if byte == ASCII.backslash { return false }
            if byte < 0x20 { throw fail(.controlCharacterInString) }
            if byte < 0x80 {
                position += 1
            } else {
                try skipMultibyteScalar()
            }
        }
        throw fail(.unterminatedString, at: start - 1)
    }

    /// Decodes the escape at `position` (a backslash) into `scratch`.
    private mutating func decodeEscape() throws(JSONParseError) {
        let escapeStart = position
        position += 1
        guard position < end else { throw fail(.unterminatedString) }
        let byte = buffer[position]
        position += 1
        switch byte {
        case ASCII.quote: scratch.append(ASCII.quote)
        case ASCII.backslash: scratch.append(ASCII.backslash)
        case ASCII.slash: scratch.append(ASCII.slash)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try readHex4()
            var scalar: UInt32 = unit
            if unit >= 0xD800 && unit <= 0xDBFF {
                // A high surrogate must be followed by `\u` + a low surrogate.
                if position + 1 < end && buffer[position] == ASCII.backslash && buffer[position + 1] == UInt8(ascii: "u") {
                    let save = position
                    position += 2
                    let low = try readHex4()
                    if low >= 0xDC00 && low <= 0xDFFF {
                        scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        // Not a pair: handle the high surrogate alone and re-read the second escape.
                        position = save
                        try loneSurrogate(at: escapeStart)
                        return
                    }
                } else {
                    try loneSurrogate(at: escapeStart)
                    return
                }
            } else if unit >= 0xDC00 && unit <= 0xDFFF {
                try loneSurrogate(at: escapeStart)
                return
            }
            appendUTF8(scalar)
        default:
            throw fail(.invalidEscape, at: escapeStart)
        }
    }

    private mutating func loneSurrogate(at offset: Int) throws(JSONParseError) {
        switch loneSurrogates {
        case .reject: throw fail(.loneSurrogate, at: offset)
        case .replace: appendUTF8(0xFFFD)
        }
    }

    private mutating func readHex4() throws(JSONParseError) -> UInt32 {
        guard position + 4 <= end else { throw fail(.unterminatedString) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = buffer[position]
            let digit: UInt32
            switch byte {
            case ASCII.zero...ASCII.nine: digit = UInt32(byte - ASCII.zero)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail(.invalidUnicodeEscape)
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | (scalar >> 6)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | (scalar >> 12)))
            scratch.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        default:
            scratch.append(UInt8(0xF0 | (scalar >> 18)))
            scratch.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
            scratch.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        }
    }

    // MARK: Copying without a tree (JSONParser.compactUTF8)
    //
    // The same grammar as parseDocument/parseValue/parseObject/parseArray above, step for
    // step, writing what JSONWriter would write for the value instead of building it. A test
    // holds the two to each other on valid and invalid documents.

    mutating func copyDocument(into output: inout [UInt8]) throws(JSONParseError) {
        skipWhitespace()
        guard position < end else {
            throw fail(end == 0 ? .emptyInput : .unexpectedEndOfInput)
        }
        try copyValue(into: &output)
        skipWhitespace()
        guard position == end else { throw fail(.trailingData) }
    }

    private mutating func copyValue(into output: inout [UInt8]) throws(JSONParseError) {
        guard position < end else { throw fail(.unexpectedEndOfInput) }
        switch buffer[position] {
        case ASCII.openBrace:
            try copyObject(into: &output)
        case ASCII.openBracket:
            try copyArray(into: &output)
        case ASCII.quote:
            try copyString(into: &output)
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            output.append(contentsOf: [0x74, 0x72, 0x75, 0x65])
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            output.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65])
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            output.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
        case ASCII.minus, ASCII.zero...ASCII.nine:
            let range = try scanNumber()
            output.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[range]))
        default:
            throw fail(.unexpectedCharacter)
        }
    }

    private mutating func copyObject(into output: inout [UInt8]) throws(JSONParseError) {
        if try openCopiedContainer(ASCII.openBrace, closedBy: ASCII.closeBrace, into: &output) { return }
        while true {
            guard position < end else { throw fail(.unexpectedEndOfInput) }
            guard buffer[position] == ASCII.quote else { throw fail(.expectedKey) }
            try copyString(into: &output)
            skipWhitespace()
            guard position < end else { throw fail(.unexpectedEndOfInput) }
            guard buffer[position] == ASCII.colon else { throw fail(.expectedColon) }
            position += 1
            output.append(ASCII.colon)
            skipWhitespace()
            try copyValue(into: &output)
            skipWhitespace()
            guard position < end else { throw fail(.unexpectedEndOfInput) }
            switch buffer[position] {
            case ASCII.comma:
                position += 1
                output.append(ASCII.comma)
                skipWhitespace()
            case ASCII.closeBrace:
                closeCopiedContainer(ASCII.closeBrace, into: &output)
                return
            default:
                throw fail(.expectedCommaOrEndOfObject)
            }
        }
    }

    private mutating func copyArray(into output: inout [UInt8]) throws(JSONParseError) {
        if try openCopiedContainer(ASCII.openBracket, closedBy: ASCII.closeBracket, into: &output) { return }
        while true {
            skipWhitespace()
            try copyValue(into: &output)
            skipWhitespace()
            guard position < end else { throw fail(.unexpectedEndOfInput) }
            switch buffer[position] {
            case ASCII.comma:
                position += 1
                output.append(ASCII.comma)
            case ASCII.closeBracket:
                closeCopiedContainer(ASCII.closeBracket, into: &output)
                return
            default:
                throw fail(.expectedCommaOrEndOfArray)
            }
        }
    }

    /// Enters the container whose opening byte is at `position` and copies that byte; true
    /// when the container is empty (then its closing byte is copied and the container left).
    private mutating func openCopiedContainer(_ open: UInt8, closedBy close: UInt8, into output: inout [UInt8]) throws(JSONParseError) -> Bool {
        try enterContainer()
        position += 1
        output.append(open)
        skipWhitespace()
        guard position < end else { throw fail(.unexpectedEndOfInput) }
        guard buffer[position] == close else { return false }
        closeCopiedContainer(close, into: &output)
        return true
    }

    /// Steps over the closing byte at `position`, copies it and leaves the container.
    private mutating func closeCopiedContainer(_ close: UInt8, into output: inout [UInt8]) {
        position += 1
        depth -= 1
        output.append(close)
    }

    /// Copies the string at `position`. Without escapes its bytes are exactly what the writer
    /// would write (valid UTF-8, no control character, quote or backslash, so no NUL either);
    /// with escapes it is decoded into `scratch` as parseString does and written by the writer.
    private mutating func copyString(into output: inout [UInt8]) throws(JSONParseError) {
        position += 1  // opening quote
        let start = position
        guard try skipUnescapedRun(ofStringAt: start) else {
            _ = try parseEscapedString(from: start, makeString: false)
            scratch.withUnsafeBufferPointer { JSONWriter.writeString(utf8: $0, into: &output) }
            return
        }
        output.append(ASCII.quote)
        output.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[start..<position]))
        output.append(ASCII.quote)
        position += 1
    }

    /// Validates one multi-byte UTF-8 scalar at `position` (Unicode Table 3-7) and steps over it.
    private mutating func skipMultibyteScalar() throws(JSONParseError) {
        let lead = buffer[position]
        let length: Int
        var secondLow: UInt8 = 0x80
        var secondHigh: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondLow = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondHigh = 0x9F
        case 0xF0: length = 4; secondLow = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondHigh = 0x8F
        default: throw fail(.invalidUTF8)
        }
        guard position + length <= end else { throw fail(.invalidUTF8) }
        let second = buffer[position + 1]
        guard second >= secondLow && second <= secondHigh else { throw fail(.invalidUTF8) }
        var index = position + 2
        while index < position + length {
            guard buffer[index] & 0xC0 == 0x80 else { throw fail(.invalidUTF8) }
            index += 1
        }
        position += length
    }
}
