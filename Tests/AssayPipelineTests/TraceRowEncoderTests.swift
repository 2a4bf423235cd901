import AssayCore
import AssayStore
import Postgres
import Testing

/// The binary COPY rows ingest writes while decoding carry, field by field, the values of the
/// general path's text rows (fields as strings, as the staging tables get them), whatever the
/// text holds. (StoreTests checks that PostgreSQL stores the two alike.)
@Suite("Binary COPY rows written straight from traces")
struct TraceRowEncoderTests {
    /// Text that needs every kind of escaping: COPY's (tab, newline, carriage return,
    /// backslash), JSON's (quote, control characters) and PostgreSQL's (NUL), and non-ASCII.
    static let awkward = ["tab\there", "new\nline", "carriage\rreturn", "back\\slash", "quote\"d", "bell\u{07}", "nul\u{0}byte",
                          "naïve 東京 🙂", "\\N", "", "\u{0}", "ends with \\"]

    static func traces() throws -> [Trace] {
        var generator = SyntheticTraceGenerator(seed: 12, startNanos: 1_770_000_000_000_000_000)
        var traces = try (0..<200).map { _ in try MessageDecoding.decode(payload: generator.next().json).get() }
        for (index, text) in awkward.enumerated() {
            var trace = traces[index]
            trace.requestPreview = text
            trace.responsePreview = text.isEmpty ? nil : text
            trace.clientRequestID = text
            trace.tags[text] = text
            trace.metadata["k\(index)"] = text
            trace.requestTimeNanos = index % 2 == 0 ? -1_234_567_891 - Int64(index) : trace.requestTimeNanos + 999  // before 1970; sub-µs
            if !trace.spans.isEmpty {
                trace.spans[0].spanID += text
                trace.spans[0].name = text
                trace.spans[0].status.message = text
                trace.spans[0].attributes[text] = .string(text)
                trace.spans[0].inputs = .object(JSONObject([(key: text, value: .array([.string(text), .number("1.5e3"), .null, .bool(true)]))]))
                trace.spans[0].outputs = .string(text)
                trace.spans[0].events.append(SpanEvent(name: text, timeNanos: 5, attributes: [text: .string(text)]))
                trace.spans[0].endTimeNanos = nil
            }
            traces.append(trace)
        }
        return traces
    }

    /// The column types of the direct COPY, in order.
    enum Column { case text, int4, int8, float8, timestamptz, jsonb }
    static let traceTypes: [Column] = [.text, .text, .text, .int8, .int8, .text, .text, .text, .text, .jsonb, .jsonb, .int4, .text, .text,
                                       .int4, .int8, .int4, .float8, .timestamptz]
    static let spanTypes: [Column] = [.text, .text, .text, .text, .text, .int8, .int8, .text, .text, .jsonb, .jsonb, .jsonb, .jsonb]

    /// One binary tuple read back as the text each field stands for; throws on a malformed tuple.
    struct TupleReader {
        let bytes: [UInt8]
        var position = 0

        mutating func integer(_ width: Int) throws -> UInt64 {
            guard position + width <= bytes.count else { throw TupleError("truncated at \(position)") }
            var value: UInt64 = 0
            for byte in bytes[position..<(position + width)] { value = value << 8 | UInt64(byte) }
            position += width
            return value
        }

        mutating func tuple(_ types: [Column]) throws -> [String?] {
            let count = Int(Int16(bitPattern: UInt16(try integer(2))))
            guard count == types.count else { throw TupleError("\(count) fields, expected \(types.count)") }
            return try types.map { type throws -> String? in
                let length = Int(Int32(bitPattern: UInt32(try integer(4))))
                if length == -1 { return nil }
                guard length >= 0, position + length <= bytes.count else { throw TupleError("bad length \(length)") }
                let start = position
                switch type {
                case .int4:
                    guard length == 4 else { throw TupleError("int4 of \(length) bytes") }
                    return String(Int32(bitPattern: UInt32(try integer(4))))
                case .int8:
                    guard length == 8 else { throw TupleError("int8 of \(length) bytes") }
                    return String(Int64(bitPattern: try integer(8)))
                case .float8:
                    guard length == 8 else { throw TupleError("float8 of \(length) bytes") }
                    return String(Double(bitPattern: try integer(8)))
                case .timestamptz:
                    guard length == 8 else { throw TupleError("timestamptz of \(length) bytes") }
                    let micros = Int64(bitPattern: try integer(8)) + CopyBinaryEncoder.postgresEpochMicros
                    return TimeFormatting.rfc3339(nanos: micros * 1000, fraction: .shortestExact)
                case .text:
                    position += length
                    return String(decoding: bytes[start..<position], as: UTF8.self)
                case .jsonb:
                    guard length >= 1, bytes[start] == 1 else { throw TupleError("jsonb without version 1") }
                    position += length
                    return String(decoding: bytes[(start + 1)..<position], as: UTF8.self)
                }
            }
        }
    }

    /// A `jsonb` field's text as `jsonb` keeps it: object keys sorted, a repeated key only with
    /// its last value (attributes held compact keep the payload's order; maps are sorted).
    /// Text that is not JSON stays as it is, so it still fails the comparison.
    static func asJSONB(_ text: String?) -> String? {
        // An escaped NUL would be rewritten below; jsonb refuses it, so it must fail as it is.
        guard let text, !text.contains(#"\u0000"#), let value = try? JSONParser().parse(text) else { return text }
        func canonical(_ value: JSONValue) -> JSONValue {
            switch value {
            case .array(let elements): return .array(elements.map(canonical))
            case .object(let object):
                let lastValues = Dictionary(object.entries.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
                return .object(JSONObject(lastValues.sorted { $0.key < $1.key }.map { (key: $0.key, value: canonical($0.value)) }))
            default: return value
            }
        }
        return canonical(value).serialized()
    }

    /// A row's fields with each `jsonb` field as ``asJSONB(_:)`` gives it.
    static func comparable(_ row: [String?], _ types: [Column]) -> [String?] {
        zip(row, types).map { field, type in type == .jsonb ? asJSONB(field) : field }
    }

    @Test("jsonb fields compare as jsonb stores them, and only so")
    func jsonbComparison() {
        #expect(Self.asJSONB(#"{"b":1,"a":{"d":2,"c":3}}"#) == Self.asJSONB(#"{"a":{"c":3,"d":2},"b":1}"#))
        #expect(Self.asJSONB(#"{"a":1,"a":2}"#) == Self.asJSONB(#"{"a":2}"#))
        #expect(Self.asJSONB(#"{"a":2,"a":1}"#) != Self.asJSONB(#"{"a":2}"#))
        #expect(Self.asJSONB(#"[2,1]"#) != Self.asJSONB(#"[1,2]"#))
        #expect(Self.asJSONB(#"{"a":"x"}"#) != Self.asJSONB(#"{"a":"y"}"#))
        #expect(Self.asJSONB("not json") == "not json")
        #expect(Self.asJSONB(#"{"a":"\u0000"}"#) == #"{"a":"\u0000"}"#)
    }

    struct TupleError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    @Test("trace and span tuples hold the general path's field values, and nothing else")
    func sameValues() throws {
        var spans = 0
        for (index, trace) in try Self.traces().enumerated() {
            let source = SourcePosition(partition: PartitionKey(topic: "traces", partition: Int32(index % 5)), offset: Int64(index) * 1_000_003)
            var rows = DirectCopyRows()
            rows.appendTrace(trace, source: source, deliveries: index % 3 + 1)
            var traceReader = TupleReader(bytes: rows.traces)
            let general = TraceRowEncoder.traceRow(trace, source: source, deliveries: index % 3 + 1) + [TraceRowEncoder.requestTimeText(trace)]
            #expect(Self.comparable(try traceReader.tuple(Self.traceTypes), Self.traceTypes) == Self.comparable(general, Self.traceTypes), "trace \(index)")
            #expect(traceReader.position == rows.traces.count)
            var spanReader = TupleReader(bytes: rows.spans)
            for span in trace.spans {
                #expect(Self.comparable(try spanReader.tuple(Self.spanTypes), Self.spanTypes)
                        == Self.comparable(TraceRowEncoder.spanRow(span, traceID: trace.traceID), Self.spanTypes), "a span of trace \(index)")
                spans += 1
            }
            #expect(spanReader.position == rows.spans.count)
            #expect(rows.traceCount == 1 && rows.spanCount == trace.spans.count)
        }
        #expect(spans > 200)
    }

    /// Ingest decodes with compact inputs, outputs and attributes (`compactPayloads`); the rows
    /// it writes must hold what the parsed values give, in both row forms: inputs and outputs
    /// the very bytes, attributes the same `jsonb` (their keys in the payload's order, not the
    /// map's).
    @Test("spans held compact encode to the same rows as parsed ones")
    func compactPayloadsEncodeAlike() throws {
        var generator = SyntheticTraceGenerator(seed: 12, startNanos: 1_770_000_000_000_000_000)
        var compactSpans = 0
        for index in 0..<200 {
            let payload = generator.next().json
            let plain = try MessageDecoding.decode(payload: payload).get()
            let compact = try MessageDecoding.decode(payload: payload, compactPayloads: true).get()
            let source = SourcePosition(partition: PartitionKey(topic: "traces", partition: 0), offset: Int64(index))
            var plainRows = DirectCopyRows()
            plainRows.appendTrace(plain, source: source, deliveries: 1)
            var compactRows = DirectCopyRows()
            compactRows.appendTrace(compact, source: source, deliveries: 1)
            var plainTraces = TupleReader(bytes: plainRows.traces), compactTraces = TupleReader(bytes: compactRows.traces)
            #expect(Self.comparable(try compactTraces.tuple(Self.traceTypes), Self.traceTypes)
                    == Self.comparable(try plainTraces.tuple(Self.traceTypes), Self.traceTypes))
            var plainSpans = TupleReader(bytes: plainRows.spans), compactSpanRows = TupleReader(bytes: compactRows.spans)
            for (compactSpan, plainSpan) in zip(compact.spans, plain.spans) {
                let compactTuple = try compactSpanRows.tuple(Self.spanTypes), plainTuple = try plainSpans.tuple(Self.spanTypes)
                #expect(compactTuple[9] == plainTuple[9] && compactTuple[10] == plainTuple[10], "inputs and outputs byte for byte")
                #expect(Self.comparable(compactTuple, Self.spanTypes) == Self.comparable(plainTuple, Self.spanTypes))
                #expect(Self.comparable(TraceRowEncoder.spanRow(compactSpan, traceID: compact.traceID), Self.spanTypes)
                        == Self.comparable(TraceRowEncoder.spanRow(plainSpan, traceID: plain.traceID), Self.spanTypes))
                if compactSpan.compactInputs != nil && compactSpan.compactAttributes != nil { compactSpans += 1 }
            }
            #expect(compactSpanRows.position == compactRows.spans.count && plainSpans.position == plainRows.spans.count)
        }
        #expect(compactSpans > 200)
    }

    @Test("the sanitized UTF-8 of a string is the UTF-8 of its sanitized form")
    func sanitizedUTF8() {
        for text in Self.awkward + ["\u{0}\u{0}", "a\u{0}", "\u{0}b"] {
            var appended: [UInt8] = [0x41]
            text.appendSanitizedUTF8(to: &appended)
            #expect(appended == [0x41] + Array(text.sanitizedForPostgres.utf8), "\(text.debugDescription)")
            #expect(!appended.contains(0))
        }
    }
}
