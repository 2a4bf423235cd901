import AssayCore
import Testing

@Suite("JSON parser")
struct JSONParserTests {
    let parser = JSONParser()

    private func parseError(_ bytes: [UInt8], parser: JSONParser = JSONParser()) -> JSONParseError? {
        do throws(JSONParseError) {
            _ = try parser.parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    private func parseError(_ text: String, parser: JSONParser = JSONParser()) -> JSONParseError? {
        parseError(utf8(text), parser: parser)
    }

    @Test func parsesEveryValueKind() throws {
        let value = try parser.parse(#" { "a" : [1, -2.5e+3, true, false, null, "x"], "b": {} , "c": [] } "#)
        let expected: JSONValue = [
            "a": [.number("1"), .number("-2.5e+3"), true, false, nil, "x"],
            "b": .object(JSONObject()),
            "c": [],
        ]
        #expect(value == expected)
        #expect(value["a"]?[1]?.doubleValue == -2500)
        #expect(value["a"]?[5]?.stringValue == "x")
        #expect(value["a"]?[6] == nil)
        #expect(value["missing"] == nil)
        #expect(value["b"]?.objectValue?.isEmpty == true)
    }

    @Test func keepsObjectKeyOrderAndLastDuplicateWins() throws {
        let value = try parser.parse(#"{"z": 1, "a": 2, "m": 3, "a": 4}"#)
        let object = try #require(value.objectValue)
        #expect(object.keys == ["z", "a", "m", "a"])
        #expect(object["a"] == .number("4"))
        #expect(value.serialized() == #"{"z":1,"a":2,"m":3,"a":4}"#)
    }

    @Test func decodesAllEscapes() throws {
        let value = try parser.parse(#""\"\\\/\b\f\n\r\t\u00e9\u20AC\u0041\u0000z""#)
        #expect(value == .string("\"\\/\u{08}\u{0C}\n\r\té€A\u{0}z"))
    }

    @Test func combinesSurrogatePairs() throws {
        #expect(try parser.parse(#""\uD83D\uDE00""#) == .string("😀"))
        #expect(try parser.parse(#""a\ud834\udd1eb""#) == .string("a𝄞b"))
    }

    @Test func loneSurrogatesAreReplacedByDefaultOrRejected() throws {
        #expect(try parser.parse(#""\uD800x""#) == .string("\u{FFFD}x"))
        #expect(try parser.parse(#""\uDC00""#) == .string("\u{FFFD}"))
        // A high surrogate followed by an escape that is not a low surrogate: both kept apart.
        #expect(try parser.parse(#""\uD800\u0041""#) == .string("\u{FFFD}A"))

        let strict = JSONParser(loneSurrogates: .reject)
        #expect(parseError(#""ab\uD800x""#, parser: strict) == JSONParseError(offset: 3, reason: .loneSurrogate))
        #expect(parseError(#""\uDC00""#, parser: strict) == JSONParseError(offset: 1, reason: .loneSurrogate))
        #expect(try strict.parse(#""\uD83D\uDE00""#) == .string("😀"))
    }

    @Test func keepsRawMultibyteUTF8() throws {
        #expect(try parser.parse("\"é€😀 ü\"") == .string("é€😀 ü"))
    }

    @Test func keepsBigIntegersExact() throws {
        let value = try parser.parse("[1770123653476857750, 9223372036854775807, -9223372036854775808, 9223372036854775808]")
        let elements = try #require(value.arrayValue)
        #expect(elements[0] == .number("1770123653476857750"))
        #expect(elements[0].int64Value == 1_770_123_653_476_857_750)
        #expect(elements[1].int64Value == Int64.max)
        #expect(elements[2].int64Value == Int64.min)
        #expect(elements[3].int64Value == nil)  // overflows Int64 …
        #expect(elements[3] == .number("9223372036854775808"))  // … but the lexeme is kept
        #expect(value.serialized() == "[1770123653476857750,9223372036854775807,-9223372036854775808,9223372036854775808]")
    }

    @Test func integerAccessorRules() throws {
        #expect(JSONValue.number("1555.0").int64Value == 1555)
        #expect(JSONValue.number("-0").int64Value == 0)
        #expect(JSONValue.number("1.5").int64Value == nil)
        #expect(JSONValue.number("1e3").int64Value == nil)
        #expect(JSONValue.string("1555").int64Value == nil)
        #expect(JSONValue.string("1770123653476857750").int64AcceptingDecimalString == 1_770_123_653_476_857_750)
        #expect(JSONValue.string("-42").int64AcceptingDecimalString == -42)
        #expect(JSONValue.string("12a").int64AcceptingDecimalString == nil)
        #expect(JSONValue.string("").int64AcceptingDecimalString == nil)
        #expect(JSONValue.number("3.25").doubleValue == 3.25)
    }

    @Test(arguments: [
        ("01", JSONParseError(offset: 1, reason: .trailingData)),
        ("-", JSONParseError(offset: 1, reason: .unexpectedEndOfInput)),
        ("-a", JSONParseError(offset: 1, reason: .invalidNumber)),
        ("+1", JSONParseError(offset: 0, reason: .unexpectedCharacter)),
        (".5", JSONParseError(offset: 0, reason: .unexpectedCharacter)),
        ("1.", JSONParseError(offset: 2, reason: .unexpectedEndOfInput)),
        ("1.e5", JSONParseError(offset: 2, reason: .invalidNumber)),
        ("1e", JSONParseError(offset: 2, reason: .unexpectedEndOfInput)),
        ("[1e+]", JSONParseError(offset: 4, reason: .invalidNumber)),
        ("NaN", JSONParseError(offset: 0, reason: .unexpectedCharacter)),
        ("[-01]", JSONParseError(offset: 3, reason: .expectedCommaOrEndOfArray)),
    ])
    func rejectsBadNumbers(text: String, expected: JSONParseError) {
        #expect(parseError(text) == expected)
    }

    @Test func acceptsNumberGrammarEdgeCases() throws {
        for lexeme in ["0", "-0", "0.0", "1E10", "1e-7", "-12.5E+03", "123456789012345678901234567890"] {
            #expect(try parser.parse(lexeme) == .number(lexeme))
        }
    }

    @Test func enforcesNestingDepth() throws {
        let ok = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(throws: Never.self) { try parser.parse(ok) }

        let tooDeep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(parseError(tooDeep) == JSONParseError(offset: 512, reason: .nestingTooDeep))

        let objects = String(repeating: #"{"a":"#, count: 4) + "1" + String(repeating: "}", count: 4)
        #expect(parseError(objects, parser: JSONParser(maxDepth: 3)) == JSONParseError(offset: 15, reason: .nestingTooDeep))
        #expect(throws: Never.self) { try JSONParser(maxDepth: 4).parse(objects) }

        // Hostile depth fails cleanly instead of overflowing the stack.
        let hostile = [UInt8](repeating: UInt8(ascii: "["), count: 1_000_000)
        #expect(parseError(hostile)?.reason == .nestingTooDeep)
    }

    @Test func rejectsTrailingGarbage() {
        #expect(parseError(#"{"a":1} x"#) == JSONParseError(offset: 8, reason: .trailingData))
        #expect(parseError("{} {}") == JSONParseError(offset: 3, reason: .trailingData))
        #expect(parseError("[1]]") == JSONParseError(offset: 3, reason: .trailingData))
        #expect(parseError("null\u{0}") == JSONParseError(offset: 4, reason: .trailingData))
    }

    @Test func acceptsSurroundingWhitespace() throws {
        #expect(try parser.parse(" \t\r\n true \n") == .bool(true))
    }

    @Test func rejectsInvalidUTF8() {
        // Bad continuation byte.
        #expect(parseError([0x22, 0xC3, 0x28, 0x22]) == JSONParseError(offset: 1, reason: .invalidUTF8))
        // Overlong encoding of "/".
        #expect(parseError([0x22, 0xC0, 0xAF, 0x22]) == JSONParseError(offset: 1, reason: .invalidUTF8))
        // Overlong 3-byte form.
        #expect(parseError([0x22, 0xE0, 0x80, 0xAF, 0x22]) == JSONParseError(offset: 1, reason: .invalidUTF8))
        // UTF-8 encoded surrogate U+D800.
        #expect(parseError([0x22, 0x61, 0xED, 0xA0, 0x80, 0x22]) == JSONParseError(offset: 2, reason: .invalidUTF8))
        // Above U+10FFFF.
        #expect(parseError([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22]) == JSONParseError(offset: 1, reason: .invalidUTF8))
        // Stray continuation byte and bytes never valid in UTF-8.
        #expect(parseError([0x22, 0x80, 0x22]) == JSONParseError(offset: 1, reason: .invalidUTF8))
        #expect(parseError([0x22, 0xFF, 0x22]) == JSONParseError(offset: 1, reason: .invalidUTF8))
        // Truncated sequence at the end of input.
        #expect(parseError([0x22, 0xE2, 0x82]) == JSONParseError(offset: 1, reason: .invalidUTF8))
        // Invalid byte after an escape (slow path).
        #expect(parseError([0x22, 0x5C, 0x6E, 0xC3, 0x28, 0x22]) == JSONParseError(offset: 3, reason: .invalidUTF8))
        // Non-ASCII outside a string.
        #expect(parseError([0xEF, 0xBB, 0xBF, 0x7B, 0x7D]) == JSONParseError(offset: 0, reason: .unexpectedCharacter))
    }

    @Test func rejectsStructuralErrors() {
        #expect(parseError("") == JSONParseError(offset: 0, reason: .emptyInput))
        #expect(parseError("  \n") == JSONParseError(offset: 3, reason: .unexpectedEndOfInput))
        #expect(parseError(#"{"a" 1}"#) == JSONParseError(offset: 5, reason: .expectedColon))
        #expect(parseError("{1:2}") == JSONParseError(offset: 1, reason: .expectedKey))
        #expect(parseError(#"{"a":1,}"#) == JSONParseError(offset: 7, reason: .expectedKey))
        #expect(parseError(#"{"a":1 "b":2}"#) == JSONParseError(offset: 7, reason: .expectedCommaOrEndOfObject))
        #expect(parseError("[1 2]") == JSONParseError(offset: 3, reason: .expectedCommaOrEndOfArray))
        #expect(parseError("[1,]") == JSONParseError(offset: 3, reason: .unexpectedCharacter))
        #expect(parseError("[1,") == JSONParseError(offset: 3, reason: .unexpectedEndOfInput))
        #expect(parseError("tru") == JSONParseError(offset: 3, reason: .unexpectedEndOfInput))
        #expect(parseError("trux") == JSONParseError(offset: 3, reason: .invalidLiteral))
        #expect(parseError("// c\n1") == JSONParseError(offset: 0, reason: .unexpectedCharacter))
        #expect(parseError(#"{"a": "abc"#) == JSONParseError(offset: 6, reason: .unterminatedString))
        #expect(parseError(#""ab\"#) == JSONParseError(offset: 4, reason: .unterminatedString))
        #expect(parseError(#""a\x""#) == JSONParseError(offset: 2, reason: .invalidEscape))
        #expect(parseError(#""\u12G4""#) == JSONParseError(offset: 5, reason: .invalidUnicodeEscape))
        #expect(parseError("\"a\nb\"") == JSONParseError(offset: 2, reason: .controlCharacterInString))
        #expect(parseError("\"a\tb\"") == JSONParseError(offset: 2, reason: .controlCharacterInString))
    }

    @Test func errorDescriptionNamesOffsetNotContent() {
        let error = parseError(#"{"secret": "hunter2"#)
        #expect(error?.description == "unterminated string at byte 11")
    }

    @Test func parsesFromStringBytesAndRawBuffer() throws {
        let text = #"{"n": 1770123653476857750, "s": "é"}"#
        let fromString = try parser.parse(text)
        let fromBytes = try parser.parse(utf8(text))
        let fromBuffer = try utf8(text).withUnsafeBytes { buffer throws(JSONParseError) in
            try parser.parse(buffer)
        }
        #expect(fromString == fromBytes)
        #expect(fromBuffer == fromBytes)
        #expect(fromBytes["n"]?.int64Value == 1_770_123_653_476_857_750)
        #expect(try JSONValue(parsing: text) == fromBytes)
    }

    @Test func parsesEverySampleTrace() throws {
        let lines = try Fixtures.lines("mlflow-traces-sample.jsonl")
        #expect(lines.count == 6)
        for line in lines {
            let value = try parser.parse(line)
            #expect(value["info"]?["trace_id"]?.stringValue?.hasPrefix("tr-") == true)
        }
    }

    @Test func rejectsTruncatedSample() throws {
        let error = parseError(try Fixtures.bytes("invalid-json.json"))
        #expect(error?.reason == .unterminatedString)
    }
}
