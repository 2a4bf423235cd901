import AssayCore
import Testing

@Suite("JSON serialisation")
struct JSONWriterTests {
    @Test func writesCompactJSON() {
        let value: JSONValue = [
            "s": "x",
            "n": .number("1770123653476857750"),
            "f": .number("-2.5e-7"),
            "b": true,
            "z": nil,
            "a": [1, [], .object(JSONObject())],
        ]
        #expect(value.serialized() == #"{"s":"x","n":1770123653476857750,"f":-2.5e-7,"b":true,"z":null,"a":[1,[],{}]}"#)
    }

    @Test func escapesStrings() {
        let value = JSONValue.string("q\" b\\ /\n\r\t\u{08}\u{0C}\u{01}\u{1F}\u{7F} é😀")
        #expect(value.serialized() == #""q\" b\\ /\n\r\t\b\f\u0001\u001f"# + "\u{7F} é😀\"")
    }

    @Test func replacesNULWithReplacementCharacter() throws {
        let value: JSONValue = ["ke\u{0}y": "a\u{0}b", "list": ["\u{0}"]]
        let text = value.serialized()
        #expect(text == "{\"ke\u{FFFD}y\":\"a\u{FFFD}b\",\"list\":[\"\u{FFFD}\"]}")
        #expect(!text.utf8.contains(0))
        #expect(!text.contains("\\u0000"))
        #expect(!value.serializedUTF8().contains(0))
        // What comes back is the sanitised value.
        #expect(try JSONParser().parse(text) == value.sanitizedForPostgres)
        #expect(value.sanitizedForPostgres == ["ke\u{FFFD}y": "a\u{FFFD}b", "list": ["\u{FFFD}"]])
    }

    @Test func sanitizesPlainText() {
        #expect("plain text".sanitizedForPostgres == "plain text")
        #expect("a\u{0}b\u{0}".sanitizedForPostgres == "a\u{FFFD}b\u{FFFD}")
        #expect("\u{0}".sanitizedForPostgres.unicodeScalars.map(\.value) == [0xFFFD])
        #expect("é\u{0}😀".sanitizedForPostgres == "é\u{FFFD}😀")
    }

    @Test func handBuiltNumbersStayValid() {
        #expect(JSONValue.number("abc").serialized() == "null")
        #expect(JSONValue.number("01").serialized() == "null")
        #expect(JSONValue(Double.nan).serialized() == "null")
        #expect(JSONValue(Double.infinity) == .null)
        #expect(JSONValue(1.5).serialized() == "1.5")
        #expect(JSONValue(Int64(-42)).serialized() == "-42")
    }

    @Test func roundTripsEverySampleTrace() throws {
        let parser = JSONParser()
        for line in try Fixtures.lines("mlflow-traces-sample.jsonl") {
            let parsed = try parser.parse(line)
            let text = parsed.serialized()
            #expect(try parser.parse(text) == parsed)
            // Compact: shorter than Python's `", "`/`": "` separators.
            #expect(text.utf8.count < line.count)
        }
        let first = try parser.parse(try #require(Fixtures.lines("mlflow-traces-sample.jsonl").first))
        #expect(first.serialized().contains(#""start_time_unix_nano":1770123653476857750"#))
    }

    @Test func roundTripsTheNULSampleWithoutNUL() throws {
        let parser = JSONParser()
        let parsed = try parser.parse(Fixtures.bytes("mlflow-nul-in-string.json"))
        let preview = try #require(parsed["info"]?["request_preview"]?.stringValue)
        #expect(preview.contains("\u{0}"))
        let text = parsed.serialized()
        #expect(!text.utf8.contains(0))
        #expect(!text.contains("\\u0000"))
        #expect(text.contains("How many vacation da\u{FFFD}ys"))
        #expect(try parser.parse(text) == parsed.sanitizedForPostgres)
    }
}
