import AssayCore
import Testing

/// `JSONParser.compactUTF8` must give exactly `parse(text).serializedUTF8()`, and fail exactly
/// where `parse` fails: ingest writes its bytes to `jsonb` in place of the parsed value's.
@Suite("Compact JSON without a tree")
struct CompactJSONTests {
    /// What parsing then writing gives: the bytes, or the error.
    static func expected(_ text: String, parser: JSONParser) -> Result<[UInt8], JSONParseError> {
        do throws(JSONParseError) {
            return .success(try parser.parse(text).serializedUTF8())
        } catch {
            return .failure(error)
        }
    }

    static func compacted(_ text: String, parser: JSONParser) -> Result<[UInt8], JSONParseError> {
        do throws(JSONParseError) {
            return .success(try parser.compactUTF8(text))
        } catch {
            return .failure(error)
        }
    }

    static func check(_ text: String, parser: JSONParser = JSONParser(), sourceLocation: SourceLocation = #_sourceLocation) {
        let expected = expected(text, parser: parser)
        let actual = compacted(text, parser: parser)
        #expect(actual == expected, "for \(text.debugDescription)", sourceLocation: sourceLocation)
    }

    static let corpus: [String] = [
        // Valid, with whitespace everywhere it may be.
        #"{"a": [1, -2.5e+3, true, false, null, "x"], "b": {} , "c": [] }"#,
        " \t\r\n[ 1 , 2 ]\n",
        #"{"messages": [{"role": "user", "content": "What is our PTO policy?"}], "n": 0}"#,
        #""plain""#, "0", "-0", "1E9", "1e-9", "123456789012345678901234567890", "true", "null", "[]", "{}", "[[[[]]]]",
        // Escapes: every kind, keys included, and what the writer writes back differently.
        #""\"\\\/\b\f\n\r\t""#,
        #"{"k\u00e9y\n": "v\u0001\u001f\u007f"}"#,
        #""\u0000 NUL becomes U+FFFD""#,
        #""\ud83d\ude00 pair, \ud800 lone high, \udc00 lone low, \ud800\u0041 high then A""#,
        #""\uD83D\uDE00 upper-case hex""#,
        "\"naïve 東京 🙂 unescaped\"",
        #"{"a": 1, "a": 2}"#,
        // Invalid: each error kind the parser has.
        "", "   ", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "{1:2}", "[1 2]", "tru", "nul", "falsy", "01", "1.", "1e", "+1", ".5", "-",
        "\"unterminated", "\"bad \\x escape\"", "\"bad \\u12G4\"", "\"short \\u12\"", "\"ctrl \u{01}\"", "[1] 2", "{\"a\":1}}",
        "[\"a\", ", "{\"a\":", "\"\\", "nan", "/* c */ 1",
    ]

    @Test func matchesParsingThenWritingOnACorpus() {
        for text in Self.corpus { Self.check(text) }
    }

    @Test func keepsTheParsersLimitsAndSurrogatePolicy() {
        Self.check("[[[1]]]", parser: JSONParser(maxDepth: 2))
        Self.check("[[1]]", parser: JSONParser(maxDepth: 2))
        Self.check(#"{"a":{"b":{"c":{}}}}"#, parser: JSONParser(maxDepth: 3))
        Self.check(#""\ud800""#, parser: JSONParser(loneSurrogates: .reject))
        Self.check(#""\ud83d\ude00""#, parser: JSONParser(loneSurrogates: .reject))
        #expect(Self.compacted("[[[1]]]", parser: JSONParser(maxDepth: 2)).failureReason == .nestingTooDeep)
        #expect(Self.compacted(#""\ud800""#, parser: JSONParser(loneSurrogates: .reject)).failureReason == .loneSurrogate)
    }

    /// Random documents written with random spacing and escaping, then cut and damaged at
    /// random places: the copier and the parser agree on every one.
    @Test func matchesParsingThenWritingOnRandomDocuments() {
        var random = SplitMix64(seed: 0xC0FFEE)
        var valid = 0
        for _ in 0..<3000 {
            let text = RandomJSONText.document(&random)
            Self.check(text)
            if case .success = Self.expected(text, parser: JSONParser()) { valid += 1 }
            var bytes = Array(text.utf8)
            guard !bytes.isEmpty else { continue }
            // Cut short.
            Self.check(String(decoding: bytes[0..<Int.random(in: 0..<bytes.count, using: &random)], as: UTF8.self))
            // One byte replaced by one that matters to the grammar.
            let damage: [UInt8] = Array("\"\\{}[],: 0-eu\u{1}".utf8)
            bytes[Int.random(in: 0..<bytes.count, using: &random)] = damage[Int.random(in: 0..<damage.count, using: &random)]
            Self.check(String(decoding: bytes, as: UTF8.self))
        }
        // The generator makes valid documents (the damaged copies are the invalid ones).
        #expect(valid == 3000)
    }

    @Test func appendingKeepsWhatWasThereAndUndoesAFailure() throws {
        var output = Array("[".utf8)
        try JSONParser().appendCompactUTF8(#" { "a" : [ 1 , 2.50 ] } "#, to: &output)
        #expect(output == Array(#"[{"a":[1,2.50]}"#.utf8))
        for broken in [#"{"a": [1, 2"#, "", "nul", #"{"a": 1} x"#, #""\x""#] {
            #expect(throws: JSONParseError.self) { try JSONParser().appendCompactUTF8(broken, to: &output) }
            #expect(output == Array(#"[{"a":[1,2.50]}"#.utf8), "after \(broken)")
        }
    }

    @Test func valueReadsBackWhatWasCompacted() throws {
        let text = #"{"q": "PTO?", "k": [1.50, "\u00e9", {"x": null}]}"#
        let compact = try JSONParser().compact(text)
        #expect(compact.value == (try JSONParser().parse(text)))
        #expect(String(decoding: compact.utf8, as: UTF8.self) == #"{"q":"PTO?","k":[1.50,"é",{"x":null}]}"#)
    }
}

extension Result where Failure == JSONParseError {
    var failureReason: JSONParseError.Reason? {
        if case .failure(let error) = self { return error.reason }
        return nil
    }
}

/// Valid JSON text with random values, spacing and escape choices.
enum RandomJSONText {
    static let whitespace = ["", "", "", " ", "\n", "\t", "\r\n  "]
    static let characters: [String] = ["a", "Z", "0", " ", "é", "東", "🙂", "\"", "\\", "/", "\n", "\u{1}", "\u{7f}", "\u{0}"]

    static func document(_ random: inout SplitMix64) -> String {
        space(&random) + value(&random, depth: 0) + space(&random)
    }

    static func space(_ random: inout SplitMix64) -> String {
        whitespace[Int.random(in: 0..<whitespace.count, using: &random)]
    }

    static func value(_ random: inout SplitMix64, depth: Int) -> String {
        let kind = Int.random(in: 0..<(depth > 4 ? 5 : 7), using: &random)
        switch kind {
        case 0: return ["true", "false", "null"][Int.random(in: 0..<3, using: &random)]
        case 1: return ["0", "-0", "7", "-12.5", "1e3", "2.5E-7", "98765432109876543210"][Int.random(in: 0..<7, using: &random)]
        case 2, 3, 4: return string(&random)
        case 5:
            let count = Int.random(in: 0..<4, using: &random)
            let elements = (0..<count).map { _ in space(&random) + value(&random, depth: depth + 1) + space(&random) }
            return "[" + (elements.isEmpty ? space(&random) : elements.joined(separator: ",")) + "]"
        default:
            let count = Int.random(in: 0..<4, using: &random)
            let entries = (0..<count).map { _ in
                space(&random) + string(&random) + space(&random) + ":" + space(&random) + value(&random, depth: depth + 1) + space(&random)
            }
            return "{" + (entries.isEmpty ? space(&random) : entries.joined(separator: ",")) + "}"
        }
    }

    /// A string literal; each character written plainly when JSON allows, else escaped, and
    /// sometimes escaped when it need not be (`\u` forms, surrogate pairs, lone surrogates).
    static func string(_ random: inout SplitMix64) -> String {
        var text = "\""
        for _ in 0..<Int.random(in: 0..<8, using: &random) {
            let character = characters[Int.random(in: 0..<characters.count, using: &random)]
            let scalar = character.unicodeScalars.first!.value
            let mustEscape = scalar < 0x20 || character == "\"" || character == "\\"
            switch Int.random(in: 0..<4, using: &random) {
            case 0 where !mustEscape:
                text += character
            case 1 where scalar >= 0x10000:
                let offset = scalar - 0x10000
                text += hex(0xD800 + (offset >> 10)) + hex(0xDC00 + (offset & 0x3FF))
            case 2:
                // A lone surrogate, which the parser replaces.
                text += hex(Int.random(in: 0..<2, using: &random) == 0 ? 0xD83D : 0xDC00)
            default:
                switch character {
                case "\"": text += "\\\""
                case "\\": text += "\\\\"
                case "/": text += "\\/"
                case "\n": text += "\\n"
                default: text += scalar < 0x10000 ? hex(scalar) : character
                }
            }
        }
        return text + "\""
    }

    static func hex(_ unit: UInt32) -> String {
        let digits = String(unit, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
    }
}

/// Ingest decodes spans with their inputs and outputs compact; they must stand for the same
/// values as the usual decoding's.
@Suite("Span inputs and outputs held compact")
struct CompactSpanPayloadTests {
    static func payloads() throws -> [[UInt8]] {
        var generator = SyntheticTraceGenerator(seed: 31, startNanos: 1_770_000_000_000_000_000)
        let synthetic = (0..<100).map { _ in generator.next().json }
        return try Fixtures.lines("mlflow-traces-sample.jsonl") + [Fixtures.bytes("mlflow2-trace.json"), Fixtures.bytes("mlflow3-hex-ids.json"),
                                                                     Fixtures.bytes("mlflow-nul-in-string.json")] + synthetic
    }

    @Test func compactDecodingStandsForTheSameTrace() throws {
        var compactSpans = 0
        for payload in try Self.payloads() {
            let plain = try MessageDecoding.decode(payload: payload).get()
            let compact = try MessageDecoding.decode(payload: payload, compactPayloads: true).get()
            #expect(compact == plain)
            for (compactSpan, plainSpan) in zip(compact.spans, plain.spans) {
                #expect(compactSpan.compactInputs?.utf8 == plainSpan.inputs?.serializedUTF8())
                #expect(compactSpan.compactOutputs?.utf8 == plainSpan.outputs?.serializedUTF8())
                #expect(compactSpan.inputs == plainSpan.inputs)
                #expect(plainSpan.compactInputs == nil && plainSpan.compactOutputs == nil && plainSpan.compactAttributes == nil)
                #expect(compactSpan.compactAttributes != nil)
                #expect(compactSpan.attributes == plainSpan.attributes)
                #expect(compactSpan.spanType == plainSpan.spanType)
                if compactSpan.compactInputs != nil || compactSpan.compactOutputs != nil { compactSpans += 1 }
            }
        }
        #expect(compactSpans > 100)
    }

    @Test func anInputThatIsNotJSONStaysAString() throws {
        let payload = Array(#"""
        {"info": {"trace_id": "tr-5d1c0a8e2b7f4c3a9e6d1b0f2a3c4e5d", "request_time": "2026-02-03T14:00:53Z", "state": "OK"},
         "data": {"spans": [{"span_id": "1234567890123456", "name": "root", "start_time_unix_nano": 1,
           "attributes": {"mlflow.spanInputs": "not json {", "mlflow.spanOutputs": "[1, 2]"}}]}}
        """#.utf8)
        let span = try #require(try MessageDecoding.decode(payload: payload, compactPayloads: true).get().spans.first)
        #expect(span.compactInputs.map { String(decoding: $0.utf8, as: UTF8.self) } == #""not json {""#)
        #expect(span.inputs == .string("not json {"))
        #expect(span.compactOutputs.map { String(decoding: $0.utf8, as: UTF8.self) } == "[1,2]")
    }

    /// The other attributes, copied compact into one object in the payload's order: each value
    /// decoded as JSON when it is, kept as it came otherwise; a repeated key keeps its last
    /// value when read, as `jsonb` does.
    @Test func attributesHeldCompactReadAsTheParsedMap() throws {
        let payload = Array(#"""
        {"info": {"trace_id": "tr-5d1c0a8e2b7f4c3a9e6d1b0f2a3c4e5d", "request_time": "2026-02-03T14:00:53Z", "state": "OK"},
         "data": {"spans": [{"span_id": "1234567890123456", "name": "root", "start_time_unix_nano": 1,
           "attributes": {"mlflow.spanType": "\"LLM\"", "b": "{ \"x\" : [1, 2.50] }", "a": "not json {", "n": 7,
                          "mlflow.spanInputs": "\"q\"", "b": "\"last\"", "mlflow.spanType": "\"CHAT_MODEL\"", "nul\u0000key": "null"}}]}}
        """#.utf8)
        let compact = try #require(try MessageDecoding.decode(payload: payload, compactPayloads: true).get().spans.first)
        let plain = try #require(try MessageDecoding.decode(payload: payload).get().spans.first)
        #expect(compact.compactAttributes.map { String(decoding: $0.utf8, as: UTF8.self) }
                == #"{"mlflow.spanType":"LLM","b":{"x":[1,2.50]},"a":"not json {","n":7,"b":"last","mlflow.spanType":"CHAT_MODEL","nul\#u{FFFD}key":null}"#)
        #expect(compact.attributes == ["mlflow.spanType": .string("CHAT_MODEL"), "b": .string("last"), "a": .string("not json {"),
                                       "n": .number("7"), "nul\u{FFFD}key": .null])
        #expect(plain.attributes["nul\u{0}key"] == .null)
        #expect(compact.spanType == "CHAT_MODEL" && plain.spanType == "CHAT_MODEL")
        #expect(compact.inputs == .string("q"))
        var withoutNUL = plain
        withoutNUL.attributes["nul\u{FFFD}key"] = withoutNUL.attributes.removeValue(forKey: "nul\u{0}key")
        #expect(compact == withoutNUL)
    }

    @Test func settingAttributesReplacesTheCompactForm() throws {
        let payload = try Fixtures.bytes("mlflow3-hex-ids.json")
        var span = try #require(try MessageDecoding.decode(payload: payload, compactPayloads: true).get().spans.first)
        #expect(span.compactAttributes != nil)
        let before = span.attributes
        span.attributes["added"] = .bool(true)
        #expect(span.compactAttributes == nil)
        #expect(span.attributes.count == before.count + 1 && span.attributes["added"] == .bool(true))
        var other = span
        other.attributes = before
        #expect(other != span)
    }

    @Test func settingAValueReplacesTheCompactForm() throws {
        let payload = try Fixtures.bytes("mlflow3-hex-ids.json")
        var span = try #require(try MessageDecoding.decode(payload: payload, compactPayloads: true).get().spans.first)
        #expect(span.compactInputs != nil)
        span.inputs = .string("replaced")
        #expect(span.compactInputs == nil)
        #expect(span.inputs == .string("replaced"))
        var other = span
        other.outputs = .number("1")
        #expect(other != span)
    }
}
