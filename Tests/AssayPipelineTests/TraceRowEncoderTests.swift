import AssayCore
import AssayStore
import Postgres
import Testing

/// The COPY rows ingest writes while decoding are byte for byte the rows of the general path
/// (fields as strings, then `CopyTextEncoder`), whatever the text holds.
@Suite("COPY rows written straight from traces")
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
            if !trace.spans.isEmpty {
                trace.spans[0].spanID += text
                trace.spans[0].name = text
                trace.spans[0].status.message = text
                trace.spans[0].attributes[text] = .string(text)
                trace.spans[0].inputs = .object(JSONObject([(key: text, value: .array([.string(text), .number("1.5e3"), .null, .bool(true)]))]))
                trace.spans[0].outputs = .string(text)
                trace.spans[0].events.append(SpanEvent(name: text, timeNanos: 5, attributes: [text: .string(text)]))
            }
            traces.append(trace)
        }
        return traces
    }

    @Test("trace and span rows equal the rows CopyTextEncoder makes of their fields")
    func sameBytes() throws {
        var spans = 0
        for (index, trace) in try Self.traces().enumerated() {
            let source = SourcePosition(partition: PartitionKey(topic: "traces", partition: Int32(index % 5)), offset: Int64(index) * 1_000_003)
            var direct: [UInt8] = Array("previous row\n".utf8)
            TraceRowEncoder.appendTraceRow(trace, source: source, deliveries: index % 3 + 1, to: &direct)
            var general: [UInt8] = Array("previous row\n".utf8)
            CopyTextEncoder.appendRow(TraceRowEncoder.traceRow(trace, source: source, deliveries: index % 3 + 1) + [TraceRowEncoder.requestTimeText(trace)], to: &general)
            #expect(direct.elementsEqual(general), "trace \(index):\n\(String(decoding: direct, as: UTF8.self))\n\(String(decoding: general, as: UTF8.self))")
            for span in trace.spans {
                var directSpan: [UInt8] = []
                TraceRowEncoder.appendSpanRow(span, traceID: trace.traceID, to: &directSpan)
                var generalSpan: [UInt8] = []
                CopyTextEncoder.appendRow(TraceRowEncoder.spanRow(span, traceID: trace.traceID), to: &generalSpan)
                #expect(directSpan.elementsEqual(generalSpan), "a span of trace \(index):\n\(String(decoding: directSpan, as: UTF8.self))\n\(String(decoding: generalSpan, as: UTF8.self))")
                spans += 1
            }
        }
        #expect(spans > 200)
    }

    @Test("JSON as a COPY text field is the serialized JSON with every backslash doubled")
    func jsonCopyText() {
        for text in Self.awkward {
            let value = JSONValue.object(JSONObject([(key: text, value: .array([.string(text), .number("-0.25"), .object(JSONObject())]))]))
            var field: [UInt8] = [0x41]
            value.appendCopyText(to: &field)
            let doubled = value.serializedUTF8().flatMap { $0 == UInt8(ascii: "\\") ? [$0, $0] : [$0] }
            #expect(field.elementsEqual([0x41] + doubled), "\(text.debugDescription): \(String(decoding: field, as: UTF8.self))")
            #expect(!field.contains(UInt8(ascii: "\t")) && !field.contains(UInt8(ascii: "\n")) && !field.contains(0))
        }
    }
}
