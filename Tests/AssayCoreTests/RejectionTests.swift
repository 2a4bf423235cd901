import AssayCore
import Testing

/// One step of a path into a JSON document, for building broken variants of a good trace.
enum Step: Sendable, CustomStringConvertible {
    case key(String)
    case index(Int)

    var description: String {
        switch self {
        case .key(let key): return ".\(key)"
        case .index(let index): return "[\(index)]"
        }
    }
}

/// `value` with the member at `path` replaced by `newValue` (removed when nil).
private func replacing(_ value: JSONValue, at path: ArraySlice<Step>, with newValue: JSONValue?) -> JSONValue {
    guard let step = path.first else { return newValue ?? .null }
    let rest = path.dropFirst()
    switch (value, step) {
    case (.object(var object), .key(let key)):
        if rest.isEmpty {
            object[key] = newValue
        } else {
            object[key] = replacing(object[key] ?? .null, at: rest, with: newValue)
        }
        return .object(object)
    case (.array(var elements), .index(let index)):
        elements[index] = replacing(elements[index], at: rest, with: newValue)
        return .array(elements)
    default:
        return value
    }
}

/// The first sample trace with one member replaced, as a message payload.
private func sampleVariant(_ path: [Step], _ newValue: JSONValue?) throws -> [UInt8] {
    let line = try #require(Fixtures.lines("mlflow-traces-sample.jsonl").first)
    let value = try JSONParser().parse(line)
    return replacing(value, at: path[...], with: newValue).serializedUTF8()
}

@Suite("Rejections")
struct RejectionTests {
    @Test func reasonRawValuesAreStable() {
        #expect(RejectionReason.allCases.map(\.rawValue) == [
            "tombstone", "empty_payload", "too_large", "invalid_json", "invalid_shape", "unsupported_format",
            "invalid_protobuf", "limit_exceeded",
        ])
    }

    @Test func tombstone() throws {
        let rejected = try rejection(nil)
        #expect(rejected.reason == .tombstone)
        #expect(MessageDecoding.decode(payload: nil as UnsafeRawBufferPointer?) == .failure(rejected))
    }

    @Test func emptyPayload() throws {
        let bytes = try Fixtures.bytes("empty.json")
        #expect(bytes.isEmpty)
        #expect(try rejection(bytes).reason == .emptyPayload)
    }

    @Test func tooLarge() throws {
        // The 2 MiB garbage blob from the samples README, rebuilt without hashing: any 2 MiB works.
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 2_097_152)
        let rejected = try rejection(big)
        #expect(rejected.reason == .tooLarge)
        #expect(rejected.detail == "message value is 2097152 bytes, over the limit of 1048576")

        // Size is checked before parsing: a valid trace over a small limit is still too large.
        let line = try #require(Fixtures.lines("mlflow-traces-sample.jsonl").first)
        #expect(try rejection(line, limits: DecodeLimits(maxMessageBytes: 100)).reason == .tooLarge)
        // Exactly at the limit is fine.
        #expect(throws: Never.self) {
            try MessageDecoding.decode(payload: line, limits: DecodeLimits(maxMessageBytes: line.count)).get()
        }
    }

    @Test func invalidJSON() throws {
        let truncated = try rejection(Fixtures.bytes("invalid-json.json"))
        #expect(truncated.reason == .invalidJSON)
        #expect(truncated.detail.hasPrefix("not JSON: unterminated string at byte "))
        #expect(truncated.detail.utf8.count < 80)

        let garbage = try Fixtures.bytes("garbage-4k.bin")
        #expect(garbage.count == 4096)
        let rejected = try rejection(garbage)
        #expect(rejected.reason == .invalidJSON)
        #expect(rejected.detail == "not JSON: unexpected character at byte 0")

        #expect(try rejection(utf8("   ")).reason == .invalidJSON)
        #expect(try rejection(utf8(#"{"info": {}} trailing"#)).reason == .invalidJSON)
    }

    @Test("valid JSON nested deeper than the limit is limit_exceeded, not invalid_json")
    func nestingTooDeep() throws {
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 600) + [UInt8](repeating: UInt8(ascii: "]"), count: 600)
        let rejected = try rejection(deep)
        #expect(rejected.reason == .limitExceeded)
        #expect(rejected.detail == "JSON nested more than 512 levels at byte 512")
        // Within the limit it parses, and is refused only for its shape.
        let shallow = [UInt8](repeating: UInt8(ascii: "["), count: 10) + [UInt8](repeating: UInt8(ascii: "]"), count: 10)
        #expect(try rejection(shallow).reason != .limitExceeded)
    }

    @Test func unsupportedFormat() throws {
        let otlp = try rejection(Fixtures.bytes("wrong-shape-otlp.json"))
        #expect(otlp.reason == .unsupportedFormat)
        #expect(otlp.detail.contains("OTLP"))
        #expect(otlp.detail.contains("later issue"))

        let array = try rejection(utf8("[1, 2]"))
        #expect(array.reason == .unsupportedFormat)
        #expect(array.detail.contains("array"))

        #expect(try rejection(utf8(#"{"hello": "world"}"#)).reason == .unsupportedFormat)
        #expect(try rejection(utf8(#""just a string""#)).reason == .unsupportedFormat)
        #expect(try rejection(utf8("42")).reason == .unsupportedFormat)
    }

    @Test func wrongShapeSampleNamesJSONPath() throws {
        let rejected = try rejection(Fixtures.bytes("wrong-shape-mlflow.json"))
        #expect(rejected.reason == .invalidShape)
        #expect(rejected.detail == "info.trace_id: expected a string, got number 12345")
        #expect(rejected.description == "invalid_shape: info.trace_id: expected a string, got number 12345")
    }

    @Test(arguments: [
        // (path, replacement, expected detail)
        ([Step.key("info"), .key("request_time")], JSONValue.string("yesterday"),
         #"info.request_time: not an RFC 3339 timestamp or epoch milliseconds ("yesterday")"#),
        ([.key("info"), .key("request_time")], nil, "info.request_time: missing"),
        ([.key("info"), .key("request_time")], .number("1.5"),
         "info.request_time: expected integer epoch milliseconds, got number 1.5"),
        ([.key("info"), .key("trace_id")], "", "info.trace_id: empty"),
        ([.key("info"), .key("state")], "MAYBE",
         #"info.state: unknown value "MAYBE" (expected OK, ERROR, IN_PROGRESS or STATE_UNSPECIFIED)"#),
        ([.key("info"), .key("execution_duration_ms")], "soon",
         #"info.execution_duration_ms: expected an integer (number or decimal string) within Int64, got string "soon""#),
        ([.key("info"), .key("execution_duration_ms")], -5, "info.execution_duration_ms: negative duration -5"),
        ([.key("info"), .key("trace_metadata"), .key("channel")], 7,
         "info.trace_metadata.channel: expected a string value, got number 7"),
        ([.key("info"), .key("tags"), .key("mlflow.traceName")], nil, nil),
        ([.key("info"), .key("tags"), .key("mlflow.traceName")], ["nested": true],
         #"info.tags["mlflow.traceName"]: expected a string value, got object"#),
        ([.key("info"), .key("tags")], "env=prod", #"info.tags: expected an object of strings, got string "env=prod""#),
        ([.key("info")], nil, "info: missing"),
        ([.key("info")], [1], "info: expected an object, got array"),
        ([.key("data")], nil, "data: missing"),
        ([.key("data"), .key("spans")], "none", #"data.spans: expected an array, got string "none""#),
        ([.key("data"), .key("spans"), .index(1)], 3, "data.spans[1]: expected a span object, got number 3"),
        ([.key("data"), .key("spans"), .index(1), .key("span_id")], "not-an-id",
         #"data.spans[1].span_id: not an 8-byte span id as 16 hex digits or base64 ("not-an-id")"#),
        ([.key("data"), .key("spans"), .index(1), .key("span_id")], nil, "data.spans[1].span_id: missing"),
        ([.key("data"), .key("spans"), .index(2), .key("span_id")], "DxxY3ia51MI=",
         "data.spans[2].span_id: duplicate span id 0f1c58de26b9d4c2 (also data.spans[0])"),
        ([.key("data"), .key("spans"), .index(1), .key("parent_span_id")], 12,
         "data.spans[1].parent_span_id: expected a string, got number 12"),
        ([.key("data"), .key("spans"), .index(0), .key("trace_id")], "abc",
         #"data.spans[0].trace_id: not a 16-byte trace id in hex or base64 ("abc")"#),
        ([.key("data"), .key("spans"), .index(0), .key("start_time_unix_nano")], .number("1.77e18"),
         "data.spans[0].start_time_unix_nano: expected an integer (number or decimal string) within Int64, got number 1.77e18"),
        ([.key("data"), .key("spans"), .index(0), .key("status"), .key("code")], "STATUS_CODE_MAYBE",
         #"data.spans[0].status.code: unknown status code "STATUS_CODE_MAYBE" (expected STATUS_CODE_OK, STATUS_CODE_ERROR or STATUS_CODE_UNSET)"#),
        ([.key("data"), .key("spans"), .index(0), .key("attributes")], "x",
         #"data.spans[0].attributes: expected an object, got string "x""#),
        ([.key("data"), .key("spans"), .index(0), .key("events")], ["boom"],
         #"data.spans[0].events[0]: expected an event object, got string "boom""#),
    ] as [([Step], JSONValue?, String?)])
    func invalidShapeNamesPath(path: [Step], replacement: JSONValue?, expectedDetail: String?) throws {
        let payload = try sampleVariant(path, replacement)
        let result = MessageDecoding.decode(payload: payload)
        guard let expectedDetail else {
            // Control case: this change keeps the trace valid.
            #expect(throws: Never.self) { try result.get() }
            return
        }
        #expect(result == .failure(TraceRejection(reason: .invalidShape, detail: expectedDetail)))
    }

    @Test func mlflow2ShapeErrors() throws {
        let good = try Fixtures.bytes("mlflow2-trace.json")
        let value = try JSONParser().parse(good)
        func detail(_ path: [Step], _ newValue: JSONValue?) throws -> String {
            let payload = replacing(value, at: path[...], with: newValue).serializedUTF8()
            let rejected = try rejection(payload)
            #expect(rejected.reason == .invalidShape)
            return rejected.detail
        }
        #expect(try detail([.key("info"), .key("request_id")], nil) == "info.request_id: missing")
        #expect(try detail([.key("info"), .key("timestamp_ms")], "2024-05-29")
            == #"info.timestamp_ms: expected an integer (number or decimal string) within Int64, got string "2024-05-29""#)
        #expect(try detail([.key("info"), .key("request_metadata"), .index(1), .key("value")], 5)
            == "info.request_metadata[1].value: expected a string, got number 5")
        #expect(try detail([.key("data"), .key("spans"), .index(1), .key("context")], nil)
            == "data.spans[1].context: missing")
        #expect(try detail([.key("data"), .key("spans"), .index(1), .key("context"), .key("span_id")], "0x12")
            == #"data.spans[1].context.span_id: not an 8-byte span id as 16 hex digits or base64 ("0x12")"#)
        #expect(try detail([.key("data"), .key("spans"), .index(2), .key("status_code")], "FINE")
            == #"data.spans[2].status_code: unknown status code "FINE" (expected STATUS_CODE_OK, STATUS_CODE_ERROR or STATUS_CODE_UNSET)"#)
        #expect(try detail([.key("data"), .key("spans"), .index(2), .key("events"), .index(0), .key("timestamp")], nil)
            == "data.spans[2].events[0].timestamp: missing")
        #expect(try detail([.key("data"), .key("request")], 1) == "data.request: expected a string, got number 1")
    }

    @Test func neitherMLflowVersionIsInvalidShape() throws {
        let rejected = try rejection(utf8(#"{"info": {"foo": 1}, "data": {"spans": []}}"#))
        #expect(rejected == TraceRejection(
            reason: .invalidShape, detail: "info: has neither trace_id (MLflow 3) nor request_id (MLflow 2)"))
    }

    @Test func detailNeverDumpsLongValues() throws {
        let long = String(repeating: "secret-", count: 500)
        let rejected = try rejection(try sampleVariant([.key("info"), .key("request_time")], .string(long)))
        #expect(rejected.reason == .invalidShape)
        #expect(rejected.detail.hasPrefix("info.request_time: "))
        #expect(rejected.detail.utf8.count < 120)
        #expect(rejected.detail.contains("…"))

        let longKey = String(repeating: "k", count: 300)
        let keyRejected = try rejection(try sampleVariant([.key("info"), .key("tags"), .key(longKey)], 1))
        #expect(keyRejected.detail.utf8.count < 140)
        #expect(keyRejected.detail.hasPrefix("info.tags[\"kkkk"))
    }

    @Test func requestTimeOutOfInt64RangeIsInvalidShape() throws {
        let rejected = try rejection(try sampleVariant([.key("info"), .key("request_time")], "2300-01-01T00:00:00Z"))
        #expect(rejected.reason == .invalidShape)
        #expect(rejected.detail.hasPrefix("info.request_time: "))
        let millis = try rejection(try sampleVariant([.key("info"), .key("request_time")], .number("9223372036854775")))
        #expect(millis.detail == "info.request_time: timestamp out of range (9223372036854775 ms)")
    }
}
