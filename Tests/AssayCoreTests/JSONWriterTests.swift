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

    /// Maps written straight (for `jsonb`) read back as the same map, sanitized, keys sorted:
    /// equal maps give equal bytes whatever order their dictionaries keep.
    @Test func mapsWrittenAsObjectsReadBackAsTheSameMap() throws {
        let values: [String: JSONValue] = ["b": ["x": [1, "y"]], "a": "q\"\n", "ke\u{0}y": "a\u{0}b", "n": .null, "long key, past fifteen bytes": .number("2.5")]
        var output: [UInt8] = Array("pre".utf8)
        values.appendSerializedJSONObject(to: &output)
        #expect(output.starts(with: Array("pre{".utf8)) && output.last == UInt8(ascii: "}"))
        #expect(!output.contains(0))
        guard case .object(let object) = try JSONParser().parse(Array(output.dropFirst(3))) else {
            Issue.record("not an object")
            return
        }
        #expect(object.count == values.count)
        #expect(Dictionary(object.entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
                == Dictionary(values.map { ($0.key.sanitizedForPostgres, $0.value.sanitizedForPostgres) }, uniquingKeysWith: { $1 }))

        let strings: [String: String] = ["user": "ana", "ke\u{0}y": "a\u{0}b\\", "": ""]
        var stringOutput: [UInt8] = []
        strings.appendSerializedJSONObject(to: &stringOutput)
        guard case .object(let stringObject) = try JSONParser().parse(stringOutput) else {
            Issue.record("not an object")
            return
        }
        #expect(Dictionary(stringObject.entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
                == ["user": "ana", "ke\u{FFFD}y": "a\u{FFFD}b\\", "": ""])

        #expect(String(decoding: stringOutput, as: UTF8.self) == "{\"\":\"\",\"ke\u{FFFD}y\":\"a\u{FFFD}b\\\\\",\"user\":\"ana\"}")
        var grown: [String: String] = [:]
        grown.reserveCapacity(64)
        for (key, value) in strings.sorted(by: { $0.key > $1.key }) { grown[key] = value }
        var grownOutput: [UInt8] = []
        grown.appendSerializedJSONObject(to: &grownOutput)
        #expect(grownOutput == stringOutput)

        var empty: [UInt8] = []
        [String: String]().appendSerializedJSONObject(to: &empty)
        #expect(empty == Array("{}".utf8))
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
