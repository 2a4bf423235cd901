import AssayCore
import Testing

/// What the first six sample lines must decode to. Values were read from the sample file and
/// its labels with Python (`json`, `base64`), independently of the decoder.
private struct ExpectedSample: Sendable {
    var traceID: String
    var requestTime: String
    var requestTimeMillis: Int64
    var state: TraceState
    var durationMillis: Int64
    var spanTypes: [String]
    var rootName: String
    var rootSpanID: String
    var clientRequestID: String
    var session: String
}

private let expectedSamples: [ExpectedSample] = [
    .init(traceID: "tr-4ef05303124bb70437006242ddc1e3be", requestTime: "2026-02-03T13:00:53.476Z",
          requestTimeMillis: 1_770_123_653_476, state: .ok, durationMillis: 1555,
          spanTypes: ["AGENT", "RETRIEVER", "CHAT_MODEL"], rootName: "hr_policy_agent", rootSpanID: "0f1c58de26b9d4c2",
          clientRequestID: "c1a0b217-aa38-45bc-bb86-fa483788dd62", session: "conv-ffb77832505d"),
    .init(traceID: "tr-a0fd2357f2a9aaeff6b78e9b313feaac", requestTime: "2026-02-03T13:01:11.019Z",
          requestTimeMillis: 1_770_123_671_019, state: .ok, durationMillis: 1915,
          spanTypes: ["AGENT", "CHAT_MODEL", "TOOL", "CHAT_MODEL"], rootName: "hr_agent", rootSpanID: "fd81d13e8d25398d",
          clientRequestID: "0ac8ee7a-391b-428b-9aa2-6719062ed361", session: "conv-f9560c3744f6"),
    .init(traceID: "tr-f0fb1fa1862153dd31d489fe79a22c95", requestTime: "2026-02-03T13:01:22.292Z",
          requestTimeMillis: 1_770_123_682_292, state: .error, durationMillis: 5913,
          spanTypes: ["AGENT", "CHAT_MODEL", "TOOL"], rootName: "hr_agent", rootSpanID: "f0b52d4d581327d5",
          clientRequestID: "520dc733-6a0f-4275-9400-933e56732533", session: "conv-7ec3f7d7c0b9"),
    .init(traceID: "tr-edfedfc0b58424efd518a3bb20140361", requestTime: "2026-02-03T13:02:49.986Z",
          requestTimeMillis: 1_770_123_769_986, state: .ok, durationMillis: 1610,
          spanTypes: ["CHAIN", "CHAT_MODEL"], rootName: "hr_chat", rootSpanID: "bc80d50970635255",
          clientRequestID: "950bb87f-77d1-4b20-b1df-8a7d21e4081a", session: "conv-3b3f004414a4"),
    .init(traceID: "tr-1eb8c91de526fec8c721acc5583312c4", requestTime: "2026-02-03T13:04:22.985Z",
          requestTimeMillis: 1_770_123_862_985, state: .ok, durationMillis: 1059,
          spanTypes: ["CHAIN", "CHAT_MODEL"], rootName: "hr_chat", rootSpanID: "f2073fb26b6d5fc0",
          clientRequestID: "59a1b3e5-a612-48a3-886f-c6ecd3d143bf", session: "conv-3b3f004414a4"),
    .init(traceID: "tr-e6961e8720768bafdcc59a522b46b652", requestTime: "2026-02-03T13:07:22.199Z",
          requestTimeMillis: 1_770_124_042_199, state: .ok, durationMillis: 1319,
          spanTypes: ["CHAIN", "CHAT_MODEL"], rootName: "hr_chat", rootSpanID: "bb47c8b55ddbd986",
          clientRequestID: "6cd56f40-22da-4215-b567-400d0e9b0b41", session: "conv-3b3f004414a4"),
]

@Suite("MLflow trace decoding")
struct TraceDecodingTests {
    @Test func decodesEverySampleLine() throws {
        let lines = try Fixtures.lines("mlflow-traces-sample.jsonl")
        try #require(lines.count == expectedSamples.count)
        for (line, expected) in zip(lines, expectedSamples) {
            let trace = try decoded(line)
            #expect(trace.format == .mlflow3)
            #expect(trace.traceID == expected.traceID)
            #expect(trace.requestTimeNanos == expected.requestTimeMillis * 1_000_000)
            #expect(trace.requestTimeNanos == TimeParsing.rfc3339Nanoseconds(expected.requestTime))
            #expect(trace.state == expected.state)
            #expect(trace.executionDurationMillis == expected.durationMillis)
            #expect(trace.clientRequestID == expected.clientRequestID)
            #expect(trace.metadata["mlflow.trace.session"] == expected.session)
            #expect(trace.metadata["mlflow.trace_schema.version"] == "3")
            #expect(trace.tags["env"] == "prod")
            #expect(trace.tags["app_name"] == "northwind-hr-assistant")
            #expect(trace.requestPreview?.isEmpty == false)
            // The errored sample has no answer, so no response preview.
            #expect((trace.responsePreview == nil) == (expected.state == .error))
            #expect(trace.canonicalTraceID == String(expected.traceID.dropFirst(3)))

            #expect(trace.spans.count == expected.spanTypes.count)
            #expect(trace.spans.map(\.spanType) == expected.spanTypes)
            let root = try #require(trace.rootSpan)
            #expect(root.name == expected.rootName)
            #expect(root.spanID == expected.rootSpanID)
            #expect(root.parentSpanID == nil)
            #expect(trace.spans.filter { $0.parentSpanID == nil }.count == 1)
            for span in trace.spans {
                #expect(isLowercaseHex16(span.spanID), "span id \(span.spanID)")
                if span.spanID != root.spanID {
                    // All sample spans are direct children of the root.
                    #expect(span.parentSpanID == root.spanID)
                }
                #expect(span.endTimeNanos.map { $0 >= span.startTimeNanos } == true)
                #expect(span.startTimeNanos >= trace.requestTimeNanos)
                #expect(span.attributes["mlflow.spanInputs"] == nil)
                #expect(span.attributes["mlflow.spanOutputs"] == nil)
                #expect(span.attributes["mlflow.spanType"] == span.spanType.map(JSONValue.string))
                #expect(span.attributes["mlflow.traceRequestId"] == .string(expected.traceID))
            }
            #expect(root.inputs != nil)
        }
    }

    @Test func decodesRAGTraceDetails() throws {
        let line = try #require(Fixtures.lines("mlflow-traces-sample.jsonl").first)
        let trace = try decoded(line)
        #expect(trace.requestPreview == #"{"question": "Is there a stipend for setting up a home office?"}"#)
        let root = try #require(trace.rootSpan)
        #expect(root.startTimeNanos == 1_770_123_653_476_857_750)
        #expect(root.endTimeNanos == 1_770_123_655_032_810_750)
        #expect(root.status == SpanStatus(code: .ok, message: ""))
        #expect(root.inputs == ["question": "Is there a stipend for setting up a home office?"])
        #expect(root.outputs?.stringValue?.hasPrefix("Hybrid employees can work remotely") == true)
        // Attribute values are JSON-decoded: "20" is the number 20, "\"rag_agent\"" the string.
        #expect(root.attributes["mlflow.spanLogLevel"] == .number("20"))
        #expect(root.attributes["mlflow.spanFunctionName"] == .string("rag_agent"))

        let retrievers = trace.spans.filter { $0.spanType == "RETRIEVER" }
        #expect(retrievers.count == 1)
        let retriever = try #require(retrievers.first)
        #expect(retriever.name == "policy_search")
        #expect(retriever.spanID == "5765539704d5d643")
        let documents = try #require(retriever.outputs?.arrayValue)
        #expect(!documents.isEmpty)
        for document in documents {
            #expect(document["page_content"]?.stringValue?.isEmpty == false)
            #expect(document["metadata"]?["doc_uri"]?.stringValue != nil)
        }
    }

    @Test func decodesErrorTraceWithExceptionEvents() throws {
        let line = try Fixtures.lines("mlflow-traces-sample.jsonl")[2]
        let trace = try decoded(line)
        #expect(trace.state == .error)
        let root = try #require(trace.rootSpan)
        #expect(root.status.code == .error)
        #expect(root.status.message == "TimeoutError: payroll-service did not respond within 5.0 s")
        #expect(root.events.count == 1)
        let event = try #require(root.events.first)
        #expect(event.name == "exception")
        #expect(event.timeNanos == 1_770_123_688_206_509_568)
        // Event attributes are plain values, not JSON-encoded.
        #expect(event.attributes["exception.type"] == .string("TimeoutError"))
        #expect(event.attributes["exception.message"] == .string("payroll-service did not respond within 5.0 s"))
        let tool = try #require(trace.spans.first { $0.spanType == "TOOL" })
        #expect(tool.status.code == .error)
        #expect(trace.spans.filter { $0.status.code == .ok }.count == 1)
    }

    @Test func spanTraceIDsMatchCanonicalTraceID() throws {
        // The sample spans carry the OpenTelemetry trace id in base64; it equals the tr- id's hex.
        #expect(OTelIdentifier.traceIDHex("TvBTAxJLtwQ3AGJC3cHjvg==") == "4ef05303124bb70437006242ddc1e3be")
        let trace = try decoded(try #require(Fixtures.lines("mlflow-traces-sample.jsonl").first))
        #expect(trace.canonicalTraceID == "4ef05303124bb70437006242ddc1e3be")
    }

    @Test func decodesFutureRequestTime() throws {
        let trace = try Fixtures.trace("mlflow-future-request-time.json")
        #expect(trace.traceID == "tr-f0fb1fa1862153dd31d489fe79a22c95")
        // 2099-06-01T12:00:00Z
        #expect(trace.requestTimeNanos == 4_083_998_400_000_000_000)
        #expect(trace.state == .error)
        #expect(trace.executionDurationMillis == 5913)
        #expect(trace.spans.count == 3)
        #expect(trace.rootSpan?.startTimeNanos == 4_083_998_400_000_000_000)
        #expect(trace.spans.map(\.spanID) == ["f0b52d4d581327d5", "71e65b7f5f7f98ee", "d47340ff0113b012"])
    }

    @Test func decodesNULSampleAndSanitises() throws {
        let trace = try Fixtures.trace("mlflow-nul-in-string.json")
        #expect(trace.traceID == "tr-a0fd2357f2a9aaeff6b78e9b313feaac")
        #expect(trace.spans.count == 4)
        let preview = try #require(trace.requestPreview)
        #expect(preview.unicodeScalars.contains("\u{0}"))
        let clean = preview.sanitizedForPostgres
        #expect(!clean.unicodeScalars.contains("\u{0}"))
        #expect(clean.hasPrefix("How many vacation da\u{FFFD}ys do I have left?"))
        for span in trace.spans {
            for value in [span.inputs, span.outputs].compactMap({ $0 }) {
                #expect(!value.serialized().utf8.contains(0))
            }
        }
    }

    @Test func nulInsideJSONEncodedAttributeIsDecodedThenSanitised() throws {
        let payload = #"""
        {"info": {"trace_id": "tr-00000000000000000000000000000001", "request_time": "2026-02-03T13:00:00Z", "state": "OK"},
         "data": {"spans": [{"span_id": "AAAAAAAAAAE=", "parent_span_id": null, "name": "root",
           "start_time_unix_nano": 1, "end_time_unix_nano": 2, "status": {"code": "STATUS_CODE_OK", "message": ""},
           "attributes": {"mlflow.spanInputs": "{\"q\": \"a\\u0000b\"}"}, "events": []}]}}
        """#
        let trace = try decoded(utf8(payload))
        let root = try #require(trace.rootSpan)
        #expect(root.spanID == "0000000000000001")
        #expect(root.inputs == ["q": "a\u{0}b"])
        #expect(root.inputs?.serialized() == "{\"q\":\"a\u{FFFD}b\"}")
    }

    @Test func decodesMLflow2Trace() throws {
        let trace = try Fixtures.trace("mlflow2-trace.json")
        #expect(trace.format == .mlflow2)
        #expect(trace.traceID == "7f9e2c4b1a3d4e5f8a6b0c1d2e3f4a5b")
        #expect(trace.canonicalTraceID == "7f9e2c4b1a3d4e5f8a6b0c1d2e3f4a5b")
        #expect(trace.requestTimeNanos == 1_717_000_000_123_000_000)
        #expect(trace.executionDurationMillis == 842)
        #expect(trace.state == .error)
        #expect(trace.clientRequestID == nil)
        #expect(trace.metadata == [
            "mlflow.trace_schema.version": "2",
            "mlflow.traceInputs": "{\"question\": \"What is MLflow?\"}",
        ])
        #expect(trace.tags == ["mlflow.traceName": "rag_chain", "env": "staging"])
        // Previews fall back to data.request / data.response (null here).
        #expect(trace.requestPreview == "{\"question\": \"What is MLflow?\"}")
        #expect(trace.responsePreview == nil)

        #expect(trace.spans.map(\.spanID) == ["1a2b3c4d5e6f7081", "2b3c4d5e6f708192", "3c4d5e6f708192a3"])
        #expect(trace.spans.map(\.parentSpanID) == [nil, "1a2b3c4d5e6f7081", "1a2b3c4d5e6f7081"])
        #expect(trace.spans.map(\.spanType) == ["CHAIN", "RETRIEVER", "CHAT_MODEL"])
        let root = try #require(trace.rootSpan)
        #expect(root.name == "rag_chain")
        #expect(root.startTimeNanos == 1_717_000_000_123_456_789)
        #expect(root.endTimeNanos == 1_717_000_000_965_456_789)
        #expect(root.status == SpanStatus(code: .error, message: "RateLimitError: 429"))
        #expect(root.inputs == ["question": "What is MLflow?"])
        #expect(root.outputs == .null)
        let retriever = trace.spans[1]
        #expect(retriever.outputs?[0]?["metadata"]?["doc_uri"] == "https://docs.example.com/mlflow")
        let chat = trace.spans[2]
        #expect(chat.attributes["temperature"] == .number("0.2"))
        #expect(chat.events == [SpanEvent(
            name: "exception", timeNanos: 1_717_000_000_959_000_000,
            attributes: ["exception.type": "RateLimitError", "exception.message": "429 Too Many Requests"])])
    }

    @Test func decodesMLflow35HexIDs() throws {
        let trace = try Fixtures.trace("mlflow3-hex-ids.json")
        #expect(trace.format == .mlflow3)
        #expect(trace.traceID == "tr-5d1c0a8e2b7f4c3a9e6d1b0f2a3c4e5d")
        // 14:00:53+01:00 is 13:00:53Z.
        #expect(trace.requestTimeNanos == 1_770_123_653_000_000_000)
        // From execution_duration "2.250s" (no execution_duration_ms).
        #expect(trace.executionDurationMillis == 2250)
        #expect(trace.state == .inProgress)
        #expect(trace.requestPreview == nil)
        #expect(trace.clientRequestID == nil)
        #expect(trace.metadata == ["mlflow.trace_schema.version": "3"])

        // "1234567890123456" is 16 hex digits (and also valid base64): it is hex.
        #expect(trace.spans.map(\.spanID) == ["1234567890123456", "abcdef0123456789"])
        let root = try #require(trace.rootSpan)
        #expect(root.parentSpanID == nil)  // "" marks a root
        #expect(root.startTimeNanos == 1_770_123_653_000_000_000)  // decimal string accepted
        #expect(root.status.code == .unset)
        #expect(root.inputs == ["ticket": 42])
        let tool = trace.spans[1]
        #expect(tool.parentSpanID == "1234567890123456")
        #expect(tool.spanType == "TOOL")
        #expect(tool.endTimeNanos == nil)  // unfinished
        #expect(tool.status.code == .ok)  // short form "OK"
        #expect(tool.attributes["note"] == .string("not json {"))  // not JSON: kept raw
        #expect(tool.events == [SpanEvent(name: "progress", timeNanos: 1_770_123_653_200_000_000, attributes: ["step": 1])])
    }

    @Test func acceptsEpochMillisRequestTimeAndEmptySpans() throws {
        let payload = #"{"info": {"trace_id": "custom-id", "request_time": 1770123653476, "state": "OK", "execution_duration_ms": "15"}, "data": {"spans": []}}"#
        let trace = try decoded(utf8(payload))
        #expect(trace.requestTimeNanos == 1_770_123_653_476_000_000)
        #expect(trace.executionDurationMillis == 15)
        #expect(trace.spans.isEmpty)
        #expect(trace.rootSpan == nil)
        #expect(trace.canonicalTraceID == "custom-id")
        #expect(trace.tags.isEmpty)
    }

    @Test func decodesFromRawBuffer() throws {
        let line = try #require(Fixtures.lines("mlflow-traces-sample.jsonl").first)
        let viaBuffer = line.withUnsafeBytes { MessageDecoding.decode(payload: $0) }
        let viaArray = MessageDecoding.decode(payload: line)
        #expect(viaBuffer == viaArray)
        #expect((try? viaBuffer.get())?.traceID == "tr-4ef05303124bb70437006242ddc1e3be")
    }
}
