import AssayCore
import AssayTestSupport
import Testing

// schemas/mlflow-trace.schema.json against the MLflow decoder: real samples validate, broken
// documents fail, and for every document tried here the schema accepts exactly when
// `MessageDecoding` decodes (apart from the documented gaps, which are only ever looser).

private let traceSchemaFile = "mlflow-trace.schema.json"

private func traceSchema() throws -> JSONSchemaChecker {
    try JSONSchemaChecker(schemaBytes: Fixtures.bytes("schemas/\(traceSchemaFile)"))
}

/// Parses as the ingest path does (default depth limit, lone surrogates replaced).
private func parse(_ bytes: [UInt8]) throws -> JSONValue {
    try JSONParser().parse(bytes)
}

/// Whether the ingest sends `document` to the MLflow decoder: TraceMessageDecoder (AssayPipeline)
/// reads JSON with `resourceSpans`/`resource_spans` as OTLP, everything else as MLflow.
private func routedToOTLP(_ document: JSONValue) -> Bool {
    document["resourceSpans"] != nil || document["resource_spans"] != nil
}

/// Whether the ingest decodes `document` as an MLflow trace.
private func decoderAccepts(_ document: JSONValue) -> Bool {
    if routedToOTLP(document) { return false }
    if case .success = MessageDecoding.decode(json: document) { return true }
    return false
}

private func decoderVerdict(_ document: JSONValue) -> String {
    if routedToOTLP(document) { return "read as OTLP JSON" }
    switch MessageDecoding.decode(json: document) {
    case .success: return "decoded"
    case .failure(let rejection): return "rejected (\(rejection))"
    }
}

// MARK: - Editing documents

/// One step of a path into a JSON document: an object member or an array element.
enum TraceJSONStep: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case key(String)
    case index(Int)

    init(stringLiteral value: String) { self = .key(value) }
    init(integerLiteral value: Int) { self = .index(value) }

    var description: String {
        switch self {
        case .key(let key): return "." + key
        case .index(let index): return "[\(index)]"
        }
    }
}

struct TraceJSONPathError: Error, CustomStringConvertible {
    var path: [TraceJSONStep]
    var description: String { "no such place in the document: \(path.map(\.description).joined())" }
}

/// `document` with the value at `path` replaced by `newValue` (added when the last step is a
/// missing member), or removed when `newValue` is nil.
private func editing(_ document: JSONValue, at path: [TraceJSONStep], to newValue: JSONValue?) throws -> JSONValue {
    func edit(_ value: JSONValue, _ rest: ArraySlice<TraceJSONStep>) throws -> JSONValue? {
        guard let step = rest.first else { return newValue }
        switch (step, value) {
        case (.key(let key), .object(var object)):
            if let child = object[key] {
                object[key] = try edit(child, rest.dropFirst())
            } else {
                guard rest.count == 1 else { throw TraceJSONPathError(path: path) }
                object[key] = newValue
            }
            return .object(object)
        case (.index(let index), .array(var elements)):
            guard elements.indices.contains(index) else { throw TraceJSONPathError(path: path) }
            if let replaced = try edit(elements[index], rest.dropFirst()) {
                elements[index] = replaced
            } else {
                elements.remove(at: index)
            }
            return .array(elements)
        default:
            throw TraceJSONPathError(path: path)
        }
    }
    guard let result = try edit(document, path[...]) else { throw TraceJSONPathError(path: path) }
    return result
}

// MARK: - Base documents

/// The real samples that hand-made cases start from.
enum TraceSchemaSample: String, Sendable, CaseIterable {
    /// The first line of mlflow-traces-sample.jsonl (MLflow 3, base64 ids, RFC 3339 time).
    case mlflow3Sample = "mlflow-traces-sample.jsonl:1"
    /// MLflow 3 with hex ids, a digit-string time, a protobuf duration, an event.
    case mlflow3HexIDs = "mlflow3-hex-ids.json"
    /// MLflow 2 with 0x ids, list-form request_metadata, events.
    case mlflow2 = "mlflow2-trace.json"

    func document() throws -> JSONValue {
        switch self {
        case .mlflow3Sample: return try parse(#require(Fixtures.lines("mlflow-traces-sample.jsonl").first))
        case .mlflow3HexIDs: return try parse(Fixtures.bytes("mlflow3-hex-ids.json"))
        case .mlflow2: return try parse(Fixtures.bytes("mlflow2-trace.json"))
        }
    }
}

/// A sample with some edits, and whether the decoder (and so the schema) must accept it.
struct TraceSchemaCase: Sendable, CustomTestStringConvertible {
    enum Edit: Sendable {
        case set([TraceJSONStep], JSONValue)
        case remove([TraceJSONStep])
        /// Replaces the whole document.
        case replaceDocument(JSONValue)
    }

    var label: String
    var base: TraceSchemaSample
    var edits: [Edit]
    var accepted: Bool

    var testDescription: String { "\(accepted ? "accepts" : "rejects") \(label) [\(base.rawValue)]" }

    func document() throws -> JSONValue {
        var document = try base.document()
        for edit in edits {
            switch edit {
            case .set(let path, let value): document = try editing(document, at: path, to: value)
            case .remove(let path): document = try editing(document, at: path, to: nil)
            case .replaceDocument(let value): document = value
            }
        }
        return document
    }
}

private func accepts(_ label: String, _ base: TraceSchemaSample, _ edits: TraceSchemaCase.Edit...) -> TraceSchemaCase {
    TraceSchemaCase(label: label, base: base, edits: edits, accepted: true)
}

private func rejects(_ label: String, _ base: TraceSchemaSample, _ edits: TraceSchemaCase.Edit...) -> TraceSchemaCase {
    TraceSchemaCase(label: label, base: base, edits: edits, accepted: false)
}

private let span0: [TraceJSONStep] = ["data", "spans", 0]
private let span1: [TraceJSONStep] = ["data", "spans", 1]

/// Hand-made variants of the samples. The first four are the issue's examples.
private let traceCases: [TraceSchemaCase] = [
    // The issue's broken examples.
    rejects("missing info.trace_id", .mlflow3Sample, .remove(["info", "trace_id"])),
    rejects("state MAYBE", .mlflow3Sample, .set(["info", "state"], "MAYBE")),
    rejects("spans a string", .mlflow3Sample, .set(["data", "spans"], "none")),
    rejects("a tag value that is a number", .mlflow3Sample, .set(["info", "tags", "env"], 1)),

    // MLflow 3 info.
    accepts("unchanged", .mlflow3Sample),
    accepts("unknown members everywhere", .mlflow3Sample,
            .set(["zz_extra"], 1), .set(["info", "zz_extra"], ["a": 1]), .set(["data", "zz_extra"], .null),
            .set(span0 + ["zz_extra"], [1, 2]), .set(["info", "assessments"], [])),
    rejects("empty trace_id", .mlflow3Sample, .set(["info", "trace_id"], "")),
    rejects("null trace_id", .mlflow3Sample, .set(["info", "trace_id"], .null)),
    rejects("numeric trace_id", .mlflow3Sample, .set(["info", "trace_id"], 12345)),
    accepts("a trace_id that is not tr-hex", .mlflow3Sample, .set(["info", "trace_id"], "my trace #1")),
    rejects("missing request_time", .mlflow3Sample, .remove(["info", "request_time"])),
    rejects("null request_time", .mlflow3Sample, .set(["info", "request_time"], .null)),
    rejects("request_time yesterday", .mlflow3Sample, .set(["info", "request_time"], "yesterday")),
    rejects("request_time without a zone", .mlflow3Sample, .set(["info", "request_time"], "2026-02-03T13:00:53")),
    rejects("request_time month 13", .mlflow3Sample, .set(["info", "request_time"], "2026-13-03T13:00:53Z")),
    rejects("request_time fraction without digits", .mlflow3Sample, .set(["info", "request_time"], "2026-02-03T13:00:53.Z")),
    rejects("request_time with a 24:00 offset", .mlflow3Sample, .set(["info", "request_time"], "2026-02-03T13:00:53+24:00")),
    rejects("request_time 1.5", .mlflow3Sample, .set(["info", "request_time"], 1.5)),
    rejects("request_time true", .mlflow3Sample, .set(["info", "request_time"], true)),
    rejects("request_time ms overflowing Int64 ns", .mlflow3Sample, .set(["info", "request_time"], 9_223_372_036_855)),
    accepts("request_time integer ms", .mlflow3Sample, .set(["info", "request_time"], 1_770_123_653_476)),
    accepts("request_time ms as 1555.0", .mlflow3Sample, .set(["info", "request_time"], .number("1770123653476.0"))),
    accepts("request_time digit string", .mlflow3Sample, .set(["info", "request_time"], "1770123653476")),
    accepts("request_time lowercase t, offset, 9 fraction digits", .mlflow3Sample,
            .set(["info", "request_time"], "2026-02-03t14:00:53.123456789+01:00")),
    accepts("request_time space separator, z, leap second", .mlflow3Sample, .set(["info", "request_time"], "2016-12-31 23:59:60z")),
    accepts("state null", .mlflow3Sample, .set(["info", "state"], .null)),
    accepts("state absent", .mlflow3Sample, .remove(["info", "state"])),
    accepts("state IN_PROGRESS", .mlflow3Sample, .set(["info", "state"], "IN_PROGRESS")),
    accepts("state TRACE_STATUS_UNSPECIFIED", .mlflow3Sample, .set(["info", "state"], "TRACE_STATUS_UNSPECIFIED")),
    rejects("state lowercase ok", .mlflow3Sample, .set(["info", "state"], "ok")),
    rejects("state a number", .mlflow3Sample, .set(["info", "state"], 1)),
    rejects("negative execution_duration_ms", .mlflow3Sample, .set(["info", "execution_duration_ms"], -1)),
    rejects("execution_duration_ms 1.5", .mlflow3Sample, .set(["info", "execution_duration_ms"], 1.5)),
    rejects("execution_duration_ms 12a", .mlflow3Sample, .set(["info", "execution_duration_ms"], "12a")),
    accepts("execution_duration_ms digit string", .mlflow3Sample, .set(["info", "execution_duration_ms"], "1555")),
    accepts("execution_duration_ms -0", .mlflow3Sample, .set(["info", "execution_duration_ms"], "-0")),
    accepts("execution_duration_ms wins over a garbage execution_duration", .mlflow3Sample,
            .set(["info", "execution_duration"], "garbage")),
    accepts("execution_duration_ms null, execution_duration 1.5s", .mlflow3Sample,
            .set(["info", "execution_duration_ms"], .null), .set(["info", "execution_duration"], "1.5s")),
    rejects("execution_duration_ms null, execution_duration garbage", .mlflow3Sample,
            .set(["info", "execution_duration_ms"], .null), .set(["info", "execution_duration"], "garbage")),
    rejects("execution_duration without its unit", .mlflow3HexIDs, .set(["info", "execution_duration"], "2.250")),
    rejects("negative execution_duration", .mlflow3HexIDs, .set(["info", "execution_duration"], "-1s")),
    rejects("execution_duration with 10 fraction digits", .mlflow3HexIDs, .set(["info", "execution_duration"], "1.0000000000s")),
    rejects("execution_duration a number", .mlflow3HexIDs, .set(["info", "execution_duration"], 2.25)),
    accepts("execution_duration -0.000s", .mlflow3HexIDs, .set(["info", "execution_duration"], "-0.000s")),
    accepts("execution_duration 3s", .mlflow3HexIDs, .set(["info", "execution_duration"], "3s")),
    rejects("client_request_id a number", .mlflow3Sample, .set(["info", "client_request_id"], 7)),
    accepts("request_preview null", .mlflow3Sample, .set(["info", "request_preview"], .null)),
    rejects("response_preview an object", .mlflow3Sample, .set(["info", "response_preview"], ["text": "hi"])),
    rejects("a metadata value null", .mlflow3Sample, .set(["info", "trace_metadata", "app_version"], .null)),
    accepts("trace_metadata null", .mlflow3Sample, .set(["info", "trace_metadata"], .null)),
    rejects("tags a string", .mlflow3Sample, .set(["info", "tags"], "env=prod")),
    accepts("tags as a key/value list", .mlflow3Sample,
            .set(["info", "tags"], [["key": "env", "value": "prod"], ["key": .null, "value": "x"], ["value": "y"]])),
    rejects("a tag list entry without value", .mlflow3Sample, .set(["info", "tags"], [["key": "env"]])),
    rejects("a tag list entry with a null value", .mlflow3Sample, .set(["info", "tags"], [["key": "env", "value": .null]])),
    rejects("a tag list entry with a numeric key", .mlflow3Sample, .set(["info", "tags"], [["key": 1, "value": "x"]])),
    rejects("a tag list entry that is a string", .mlflow3Sample, .set(["info", "tags"], ["env"])),
    rejects("info has neither trace_id nor request_id", .mlflow3Sample, .set(["info"], ["zz_extra": 1])),
    rejects("info a string", .mlflow3Sample, .set(["info"], "info")),
    rejects("missing data", .mlflow3Sample, .remove(["data"])),
    rejects("data null", .mlflow3Sample, .set(["data"], .null)),
    rejects("a resourceSpans member (the ingest reads it as OTLP JSON)", .mlflow3Sample, .set(["resourceSpans"], [])),
    rejects("a resource_spans member (the ingest reads it as OTLP JSON)", .mlflow2, .set(["resource_spans"], .null)),
    accepts("resourceSpans below the top level", .mlflow3Sample, .set(["info", "resourceSpans"], [])),
    rejects("a top-level array", .mlflow3Sample, .replaceDocument([["info": [:], "data": [:]]])),

    // MLflow 3 spans.
    rejects("spans null", .mlflow3Sample, .set(["data", "spans"], .null)),
    rejects("spans missing", .mlflow3Sample, .remove(["data", "spans"])),
    accepts("no spans", .mlflow3Sample, .set(["data", "spans"], [])),
    rejects("a span that is a string", .mlflow3Sample, .set(span0, "span")),
    rejects("span_id missing", .mlflow3Sample, .remove(span0 + ["span_id"])),
    rejects("span_id empty", .mlflow3Sample, .set(span0 + ["span_id"], "")),
    rejects("span_id xyz", .mlflow3Sample, .set(span0 + ["span_id"], "xyz")),
    rejects("span_id of 17 hex digits", .mlflow3Sample, .set(span0 + ["span_id"], "1234567890abcdef0")),
    rejects("span_id of 16 characters that are not hex", .mlflow3Sample, .set(span0 + ["span_id"], "1234567890abcdeg")),
    rejects("span_id base64 of 12 characters without =", .mlflow3Sample, .set(span0 + ["span_id"], "DxxY3ia51MIx")),
    rejects("span_id a number", .mlflow3Sample, .set(span0 + ["span_id"], 1_234_567_890_123_456)),
    accepts("span_id hex", .mlflow3Sample, .set(span0 + ["span_id"], "1234567890ABCDEF")),
    accepts("span_id 0x hex", .mlflow3Sample, .set(span0 + ["span_id"], "0X1234567890abcdef")),
    accepts("span_id unpadded URL-safe base64", .mlflow3Sample, .set(span0 + ["span_id"], "-_-_-_-_-_-")),
    rejects("parent_span_id zz", .mlflow3Sample, .set(span1 + ["parent_span_id"], "zz")),
    rejects("parent_span_id a number", .mlflow3Sample, .set(span1 + ["parent_span_id"], 0)),
    accepts("parent_span_id empty", .mlflow3Sample, .set(span1 + ["parent_span_id"], "")),
    accepts("parent_span_id absent", .mlflow3Sample, .remove(span1 + ["parent_span_id"])),
    rejects("span trace_id not an id", .mlflow3Sample, .set(span0 + ["trace_id"], "not-an-id")),
    rejects("span trace_id tr-hex", .mlflow3Sample, .set(span0 + ["trace_id"], "tr-a0fd2357f2a9aaeff6b78e9b313feaac")),
    rejects("span trace_id a number", .mlflow3Sample, .set(span0 + ["trace_id"], 1)),
    accepts("span trace_id empty", .mlflow3Sample, .set(span0 + ["trace_id"], "")),
    accepts("span trace_id null", .mlflow3Sample, .set(span0 + ["trace_id"], .null)),
    accepts("span trace_id 0x hex", .mlflow3Sample, .set(span0 + ["trace_id"], "0x0123456789ABCDEF0123456789abcdef")),
    accepts("span trace_id unpadded base64", .mlflow3Sample, .set(span0 + ["trace_id"], "oP0jV_Kpqu_2t46bMT_qrA")),
    rejects("span name a number", .mlflow3Sample, .set(span0 + ["name"], 3)),
    accepts("span name absent", .mlflow3Sample, .remove(span0 + ["name"])),
    rejects("start time missing", .mlflow3Sample, .remove(span0 + ["start_time_unix_nano"])),
    rejects("start time null", .mlflow3Sample, .set(span0 + ["start_time_unix_nano"], .null)),
    rejects("start time 12:00", .mlflow3Sample, .set(span0 + ["start_time_unix_nano"], "12:00")),
    rejects("start time with a plus sign", .mlflow3Sample, .set(span0 + ["start_time_unix_nano"], "+1770123671019619012")),
    accepts("start time digit string", .mlflow3Sample, .set(span0 + ["start_time_unix_nano"], "1770123671019619012")),
    accepts("start time negative", .mlflow3Sample, .set(span0 + ["start_time_unix_nano"], -5)),
    rejects("end time 1.5", .mlflow3Sample, .set(span0 + ["end_time_unix_nano"], 1.5)),
    accepts("end time null", .mlflow3Sample, .set(span0 + ["end_time_unix_nano"], .null)),
    accepts("end time absent", .mlflow3Sample, .remove(span0 + ["end_time_unix_nano"])),
    rejects("status code FINE", .mlflow3Sample, .set(span0 + ["status", "code"], "FINE")),
    rejects("status a number", .mlflow3Sample, .set(span0 + ["status"], 5)),
    rejects("status message a number", .mlflow3Sample, .set(span0 + ["status", "message"], 5)),
    accepts("status a bare code string", .mlflow3Sample, .set(span0 + ["status"], "STATUS_CODE_ERROR")),
    accepts("status short code ERROR", .mlflow3Sample, .set(span0 + ["status", "code"], "ERROR")),
    accepts("status null", .mlflow3Sample, .set(span0 + ["status"], .null)),
    accepts("status an empty object", .mlflow3Sample, .set(span0 + ["status"], [:])),
    rejects("attributes a string", .mlflow3Sample, .set(span0 + ["attributes"], "x")),
    rejects("attributes an array", .mlflow3Sample, .set(span0 + ["attributes"], ["x"])),
    accepts("an attribute value that is a number", .mlflow3Sample, .set(span0 + ["attributes", "temperature"], 0.2)),
    accepts("an attribute value that is not JSON text", .mlflow3Sample, .set(span0 + ["attributes", "note"], "not json {")),
    accepts("attributes null", .mlflow3Sample, .set(span0 + ["attributes"], .null)),
    rejects("events a string", .mlflow3Sample, .set(span0 + ["events"], "none")),
    rejects("an event without a time", .mlflow3Sample, .set(span0 + ["events"], [["name": "e"]])),
    rejects("an event that is a number", .mlflow3Sample, .set(span0 + ["events"], [1])),
    rejects("an event with string attributes", .mlflow3Sample,
            .set(span0 + ["events"], [["name": "e", "time_unix_nano": 1, "attributes": "x"]])),
    rejects("an event named by a number", .mlflow3Sample, .set(span0 + ["events"], [["name": 1, "time_unix_nano": 1]])),
    accepts("an event with a digit-string time and no name", .mlflow3Sample,
            .set(span0 + ["events"], [["time_unix_nano": "1770123671019619012", "attributes": ["n": 1]]])),
    accepts("events null", .mlflow3Sample, .set(span0 + ["events"], .null)),
    rejects("an MLflow 2 span in an MLflow 3 trace", .mlflow3Sample,
            .set(["data", "spans"], [["context": ["span_id": "0x1a2b3c4d5e6f7081"], "start_time": 1]])),

    // MLflow 2.
    accepts("unchanged", .mlflow2),
    accepts("unchanged", .mlflow3HexIDs),
    rejects("missing request_id", .mlflow2, .remove(["info", "request_id"])),
    rejects("empty request_id", .mlflow2, .set(["info", "request_id"], "")),
    rejects("missing timestamp_ms", .mlflow2, .remove(["info", "timestamp_ms"])),
    rejects("timestamp_ms RFC 3339", .mlflow2, .set(["info", "timestamp_ms"], "2024-05-29T16:26:40Z")),
    accepts("timestamp_ms digit string", .mlflow2, .set(["info", "timestamp_ms"], "1717000000123")),
    accepts("status TRACE_STATUS_UNSPECIFIED", .mlflow2, .set(["info", "status"], "TRACE_STATUS_UNSPECIFIED")),
    accepts("status absent", .mlflow2, .remove(["info", "status"])),
    rejects("status MAYBE", .mlflow2, .set(["info", "status"], "MAYBE")),
    rejects("negative execution_time_ms", .mlflow2, .set(["info", "execution_time_ms"], -1)),
    accepts("execution_time_ms null", .mlflow2, .set(["info", "execution_time_ms"], .null)),
    rejects("a request_metadata entry with a numeric value", .mlflow2, .set(["info", "request_metadata", 0, "value"], 2)),
    rejects("a request_metadata entry that is a string", .mlflow2, .set(["info", "request_metadata", 0], "k=v")),
    accepts("request_metadata as an object", .mlflow2, .set(["info", "request_metadata"], ["k": "v"])),
    rejects("a tag value that is a boolean", .mlflow2, .set(["info", "tags", "env"], true)),
    rejects("an MLflow 3 member (state) in MLflow 2 info", .mlflow2, .set(["info", "state"], "OK")),
    rejects("a null MLflow 3 member (trace_id) in MLflow 2 info", .mlflow2, .set(["info", "trace_id"], .null)),
    rejects("MLflow 3 info over MLflow 2 spans", .mlflow2,
            .set(["info", "trace_id"], "tr-7f9e2c4b1a3d4e5f8a6b0c1d2e3f4a5b"), .set(["info", "request_time"], 1_717_000_000_123)),
    rejects("data.request a number", .mlflow2, .set(["data", "request"], 5)),
    accepts("data.request absent", .mlflow2, .remove(["data", "request"])),
    rejects("span context missing", .mlflow2, .remove(span0 + ["context"])),
    rejects("span context null", .mlflow2, .set(span0 + ["context"], .null)),
    rejects("context.span_id 0x1a2b", .mlflow2, .set(span0 + ["context", "span_id"], "0x1a2b")),
    rejects("context.span_id missing", .mlflow2, .remove(span0 + ["context", "span_id"])),
    rejects("context.trace_id not hex", .mlflow2, .set(span0 + ["context", "trace_id"], "0xnothex")),
    accepts("context.trace_id absent", .mlflow2, .remove(span0 + ["context", "trace_id"])),
    accepts("parent_id empty", .mlflow2, .set(span1 + ["parent_id"], "")),
    rejects("parent_id not an id", .mlflow2, .set(span1 + ["parent_id"], "0x1a2b")),
    rejects("start_time missing", .mlflow2, .remove(span0 + ["start_time"])),
    accepts("start_time digit string", .mlflow2, .set(span0 + ["start_time"], "1717000000123456789")),
    rejects("status_code FINE", .mlflow2, .set(span0 + ["status_code"], "FINE")),
    accepts("status_code STATUS_CODE_UNSET", .mlflow2, .set(span0 + ["status_code"], "STATUS_CODE_UNSET")),
    rejects("status_message a number", .mlflow2, .set(span0 + ["status_message"], 1)),
    rejects("an event without its timestamp", .mlflow2, .remove(["data", "spans", 2, "events", 0, "timestamp"])),
    rejects("an MLflow 3 event time key in MLflow 2", .mlflow2,
            .set(["data", "spans", 2, "events"], [["name": "e", "time_unix_nano": 1]])),
    rejects("an MLflow 3 span in an MLflow 2 trace", .mlflow2,
            .set(["data", "spans"], [["span_id": "1a2b3c4d5e6f7081", "start_time_unix_nano": 1]])),
]

/// Documents the decoder rejects for rules JSON Schema cannot express; the schema's
/// description lists them. The schema must accept them (it is looser, never stricter).
private let documentedGaps: [TraceSchemaCase] = [
    rejects("a repeated span id", .mlflow3HexIDs, .set(span1 + ["span_id"], "1234567890123456")),
    rejects("a repeated span id in another encoding", .mlflow3HexIDs, .set(span1 + ["span_id"], "EjRWeJASNFY=")),
    rejects("a start time above Int64.max", .mlflow3Sample, .set(span0 + ["start_time_unix_nano"], .number("9223372036854775808"))),
    rejects("a digit-string start time above Int64.max", .mlflow3Sample, .set(span0 + ["start_time_unix_nano"], "9999999999999999999")),
    rejects("a start time in exponent form", .mlflow3Sample, .set(span0 + ["start_time_unix_nano"], .number("1e3"))),
    rejects("digit-string request_time ms overflowing Int64 ns", .mlflow3Sample, .set(["info", "request_time"], "9999999999999")),
    rejects("request_time on February 30", .mlflow3Sample, .set(["info", "request_time"], "2026-02-30T00:00:00Z")),
    rejects("request_time in year 2300", .mlflow3Sample, .set(["info", "request_time"], "2300-01-01T00:00:00Z")),
    rejects("execution_duration overflowing Int64 ns", .mlflow3HexIDs, .set(["info", "execution_duration"], "99999999999s")),
]

// MARK: - Tests

@Suite("schemas/mlflow-trace.schema.json")
struct MLflowTraceSchemaTests {
    @Test func schemaUsesOnlyCheckedKeywordsAndItsExampleIsATrace() throws {
        let schema = try traceSchema()
        let examples = try #require(schema.schema["examples"]?.arrayValue)
        #expect(!examples.isEmpty)
        for example in examples {
            #expect(schema.violations(of: example) == [])
            #expect(decoderAccepts(example), "\(decoderVerdict(example))")
        }
    }

    @Test func everySampleLineValidates() throws {
        let schema = try traceSchema()
        let lines = try Fixtures.lines("mlflow-traces-sample.jsonl")
        #expect(lines.count == 6)
        for (index, line) in lines.enumerated() {
            let document = try parse(line)
            #expect(decoderAccepts(document), "line \(index + 1): \(decoderVerdict(document))")
            #expect(schema.violations(of: document) == [], "line \(index + 1)")
        }
    }

    @Test(arguments: ["mlflow2-trace.json", "mlflow3-hex-ids.json", "mlflow-nul-in-string.json", "mlflow-future-request-time.json"])
    func sampleFileValidates(name: String) throws {
        let schema = try traceSchema()
        let document = try parse(Fixtures.bytes(name))
        #expect(decoderAccepts(document), "\(decoderVerdict(document))")
        #expect(schema.violations(of: document) == [])
    }

    @Test func generatedTracesValidate() throws {
        let schema = try traceSchema()
        var generator = SyntheticTraceGenerator(seed: 7, startNanos: 1_770_123_600_000_000_000)
        generator.errorRate = 0.3
        generator.maxPaddingBytes = 2000
        var kinds: Set<SyntheticTraceGenerator.Kind> = []
        for _ in 0..<60 {
            let generated = generator.next()
            kinds.insert(generated.kind)
            let document = try parse(generated.json)
            #expect(decoderAccepts(document), "\(generated.traceID): \(decoderVerdict(document))")
            #expect(schema.violations(of: document) == [], "\(generated.traceID)")
        }
        #expect(kinds.count == SyntheticTraceGenerator.Kind.allCases.count)
    }

    @Test(arguments: ["wrong-shape-mlflow.json", "wrong-shape-otlp.json"])
    func shippedBrokenFileFails(name: String) throws {
        let schema = try traceSchema()
        let document = try parse(Fixtures.bytes(name))
        #expect(!schema.isValid(document))
        #expect(!decoderAccepts(document))
    }

    /// The schema and the decoder agree on each hand-made case, and both give the expected answer.
    @Test(arguments: traceCases)
    func schemaAgreesWithDecoder(_ traceCase: TraceSchemaCase) throws {
        let schema = try traceSchema()
        let document = try traceCase.document()
        let violations = schema.violations(of: document)
        #expect(decoderAccepts(document) == traceCase.accepted, "decoder: \(decoderVerdict(document))")
        #expect(violations.isEmpty == traceCase.accepted, "schema: \(violations.first?.description ?? "valid")")
    }

    /// What the schema's description says it cannot check: the decoder rejects, the schema accepts.
    @Test(arguments: documentedGaps)
    func documentedGapIsOnlyLooser(_ traceCase: TraceSchemaCase) throws {
        let schema = try traceSchema()
        let document = try traceCase.document()
        #expect(!decoderAccepts(document), "decoder: \(decoderVerdict(document))")
        #expect(schema.violations(of: document) == [])
    }

    /// Random single edits of the samples (a value replaced, a member or element removed, a
    /// member added), none of them in a documented gap: the schema accepts exactly the
    /// documents the decoder decodes.
    @Test(arguments: TraceSchemaSample.allCases)
    func randomEditsAgree(base: TraceSchemaSample) throws {
        let schema = try traceSchema()
        let original = try base.document()
        let paths = allPaths(in: original)
        let objectPaths = [[]] + paths.filter { path in (try? value(in: original, at: path))?.objectValue != nil }
        var random = SplitMix64(seed: 0xA55A_7 &+ UInt64(base.rawValue.utf8.count))
        var accepted = 0
        var rejected = 0
        var disagreements: [String] = []
        for _ in 0..<400 {
            let path: [TraceJSONStep]
            let newValue: JSONValue?
            switch random.next() % 10 {
            case 0..<6:
                path = paths[Int(random.next() % UInt64(paths.count))]
                newValue = Self.valuePool[Int(random.next() % UInt64(Self.valuePool.count))]
            case 6..<8:
                path = paths[Int(random.next() % UInt64(paths.count))]
                newValue = nil
            default:
                let key = Self.keyPool[Int(random.next() % UInt64(Self.keyPool.count))]
                path = objectPaths[Int(random.next() % UInt64(objectPaths.count))] + [.key(key)]
                newValue = Self.valuePool[Int(random.next() % UInt64(Self.valuePool.count))]
            }
            let document = try editing(original, at: path, to: newValue)
            let decoded = decoderAccepts(document)
            let valid = schema.isValid(document)
            if decoded { accepted += 1 } else { rejected += 1 }
            if decoded != valid {
                let edit = newValue.map { "set to \($0.serialized())" } ?? "removed"
                disagreements.append("\(path.map(\.description).joined()) \(edit): decoder \(decoderVerdict(document)), schema \(valid ? "valid" : "invalid")")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements, e.g.\n\(disagreements.prefix(10).joined(separator: "\n"))")
        // Both outcomes must be common, or the comparison says little.
        #expect(accepted >= 40 && rejected >= 40, "accepted \(accepted), rejected \(rejected)")
    }

    /// Values to put anywhere: of every type, near-misses of each format, none in a documented gap.
    /// The ids are new to every sample, so no edit repeats a span id.
    static let valuePool: [JSONValue] = [
        .null, true, false, 0, -1, 7, 1.5, "", "x", "OK", "MAYBE", "ERROR", "STATUS_CODE_ERROR", "UNSET",
        "123", "-0", "-5", "12a", "1.5s", "-1s", "2026-02-03T13:00:53Z", "2026-13-03T13:00:53Z",
        "1234567890abcdef", "0x1234567890ABCDEF", "/ty6mHZUMhA=", "1234567890abcdeg",
        "0123456789abcdef0123456789abcdef", "tr-0123456789abcdef0123456789abcdef", "XRwKjit/TDqebRsPKjxOXQ==",
        [], [:], ["x"], [1], ["k": "v"], ["k": 1], [["key": "k", "value": "v"]], [["key": "k"]],
        ["code": "STATUS_CODE_OK"], ["code": "FINE"], ["time_unix_nano": 1], ["timestamp": "5"],
    ]

    /// Member names to add: unknown ones, and ones the decoder reads somewhere.
    static let keyPool = [
        "zz_extra", "trace_id", "request_time", "state", "request_id", "timestamp_ms", "status",
        "execution_duration", "execution_duration_ms", "execution_time_ms", "spans", "span_id", "context",
        "parent_span_id", "start_time_unix_nano", "start_time", "code", "value", "key", "events", "attributes",
        "request", "response", "tags", "trace_metadata", "request_metadata", "resourceSpans",
    ]
}

/// Every path to a value below the root, in document order.
private func allPaths(in document: JSONValue) -> [[TraceJSONStep]] {
    var paths: [[TraceJSONStep]] = []
    func walk(_ value: JSONValue, _ prefix: [TraceJSONStep]) {
        switch value {
        case .object(let object):
            for (key, child) in object.entries {
                paths.append(prefix + [.key(key)])
                walk(child, prefix + [.key(key)])
            }
        case .array(let elements):
            for (index, child) in elements.enumerated() {
                paths.append(prefix + [.index(index)])
                walk(child, prefix + [.index(index)])
            }
        default:
            break
        }
    }
    walk(document, [])
    return paths
}

private func value(in document: JSONValue, at path: [TraceJSONStep]) throws -> JSONValue {
    var current = document
    for step in path {
        switch step {
        case .key(let key):
            guard let child = current[key] else { throw TraceJSONPathError(path: path) }
            current = child
        case .index(let index):
            guard let child = current[index] else { throw TraceJSONPathError(path: path) }
            current = child
        }
    }
    return current
}

@Suite("Fixture copy of schemas/mlflow-trace.schema.json has not drifted")
struct MLflowTraceSchemaDriftTests {
    @Test(.enabled(if: RepositoryFiles.schemasDirectory != nil, "repository schemas/ not reachable from #filePath"))
    func fixtureCopyEqualsRepositoryFile() throws {
        let repository = try RepositoryFiles.schemaBytes(traceSchemaFile)
        let fixture = try Fixtures.bytes("schemas/\(traceSchemaFile)")
        #expect(!repository.isEmpty)
        let firstDifference = zip(fixture, repository).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? min(fixture.count, repository.count)
        let identical = fixture == repository
        #expect(identical, """
            Tests/AssayCoreTests/Fixtures/schemas/\(traceSchemaFile) differs from schemas/\(traceSchemaFile) at byte \
            \(firstDifference) (\(fixture.count) vs \(repository.count) bytes); copy schemas/\(traceSchemaFile) over the fixture
            """)
    }
}
