import AssayCore
@testable import AssayOTLP
import Testing

@Suite("OTLP decoding")
struct DecoderTests {
    @Test func everySampleMessageDecodesInBothEncodings() throws {
        let messages = try Fixtures.otlpMessages()
        #expect(messages.count == 68)
        var totalSpans = 0
        for message in messages {
            let fromJSON = decodeOrFail(message.json)
            let fromProtobuf = decodeOrFail(message.protobuf)
            let spans = fromJSON.reduce(0) { $0 + $1.spans.count }
            totalSpans += spans
            #expect(spans == message.index["n_spans"]?.int64Value.map(Int.init), "message \(message.seq)")
            let expectedIDs = message.index["trace_ids"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(Set(fromJSON.map(\.traceIDHex)) == Set(expectedIDs), "message \(message.seq)")
            #expect(fromJSON == fromProtobuf, "message \(message.seq): JSON and protobuf decode differently")
        }
        #expect(totalSpans == 214)
    }

    @Test func protobufAndJSONFormsAreEqualSpanBySpan() throws {
        // A finer-grained check than fragment equality, so a difference is easy to locate.
        let message = try #require(try Fixtures.otlpMessages().first { $0.index["n_spans"]?.int64Value ?? 0 > 3 })
        let json = decodeOrFail(message.json)
        let protobuf = decodeOrFail(message.protobuf)
        try #require(json.count == protobuf.count)
        for (left, right) in zip(json, protobuf) {
            #expect(left.resourceAttributes == right.resourceAttributes)
            for (a, b) in zip(left.spans, right.spans) {
                #expect(a.attributes == b.attributes, "span \(a.name)")
                #expect(a == b, "span \(a.name)")
            }
        }
    }

    /// `wireFormat(contentType:)` as it was written with String operations (trim, then
    /// `lowercased()`), kept as the reference for the byte-wise version.
    private static func referenceWireFormat(_ contentType: String) -> OTLPWireFormat? {
        let trimmed = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        var scalars = Substring(trimmed).unicodeScalars[...]
        while let first = scalars.first, first == " " || first == "\t" { scalars = scalars.dropFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars = scalars.dropLast() }
        let mediaType = String(String.UnicodeScalarView(scalars)).lowercased()
        switch mediaType {
        case "application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf", "application/x-google-protobuf":
            return .protobuf
        case "application/json", "text/json":
            return .json
        default:
            return mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json") ? .json : nil
        }
    }

    @Test func contentTypeMatchesTheStringReference() {
        let names = ["application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf", "application/x-google-protobuf",
                     "application/json", "text/json", "application/otlp+json", "application/+json", "application/json+", "application/jsonx",
                     "text/plain", "application/octet-stream", "", "json", "+json", "application/", "text/json+json",
                     "applicatión/json", "application/x-protobu\u{212A}", "application/ｊson"]
        let cases: [(String) -> String] = [
            { $0 }, { $0.uppercased() },
            { String($0.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : $0.element }) },
        ]
        let pads = ["", " ", "\t", " \t ", "\n"]
        let parameters = ["", ";", "; charset=utf-8", " ;proto=opentelemetry", ";application/json"]
        var checked = 0
        for name in names {
            for spelling in cases {
                for before in pads {
                    for after in pads {
                        for parameter in parameters {
                            let value = before + spelling(name) + after + parameter
                            #expect(OTLPDecoder.wireFormat(contentType: value) == Self.referenceWireFormat(value), "\(value.debugDescription)")
                            checked += 1
                        }
                    }
                }
            }
        }
        #expect(checked == names.count * 3 * 25 * parameters.count)
        // Both read the same values as before the change.
        #expect(OTLPDecoder.wireFormat(contentType: " APPLICATION/OTLP+JSON\t; charset=utf-8") == .json)
        #expect(OTLPDecoder.wireFormat(contentType: "\napplication/json") == nil)
    }

    @Test func contentTypeSelectsTheFormat() throws {
        let message = try #require(try Fixtures.otlpMessages().first)
        #expect(OTLPDecoder.wireFormat(contentType: "application/x-protobuf") == .protobuf)
        #expect(OTLPDecoder.wireFormat(contentType: "application/protobuf") == .protobuf)
        #expect(OTLPDecoder.wireFormat(contentType: " Application/X-Protobuf ; proto=opentelemetry") == .protobuf)
        #expect(OTLPDecoder.wireFormat(contentType: "application/json; charset=utf-8") == .json)
        #expect(OTLPDecoder.wireFormat(contentType: "application/otlp+json") == .json)
        #expect(OTLPDecoder.wireFormat(contentType: "application/octet-stream") == nil)
        #expect(OTLPDecoder.wireFormat(contentType: "") == nil)

        // With the right header, both decode.
        #expect(!decodeOrFail(message.protobuf, contentType: "application/x-protobuf").isEmpty)
        #expect(!decodeOrFail(message.json, contentType: "application/json").isEmpty)
        // The header wins over sniffing: JSON bytes labelled protobuf fail as protobuf …
        let asProtobuf = rejection(message.json, contentType: "application/x-protobuf")
        #expect(asProtobuf?.reason == .invalidProtobuf)
        #expect(asProtobuf?.detail.hasPrefix("protobuf:") == true)
        // … and protobuf bytes labelled JSON fail as JSON.
        #expect(rejection(message.protobuf, contentType: "application/json")?.reason == .invalidJSON)
        // An unknown header falls back to sniffing.
        #expect(!decodeOrFail(message.protobuf, contentType: "application/octet-stream").isEmpty)
        #expect(!decodeOrFail(message.json, contentType: "text/plain").isEmpty)
    }

    @Test func sniffingWithoutContentType() throws {
        let message = try #require(try Fixtures.otlpMessages().first)
        #expect(OTLPDecoder.sniff(message.protobuf) == .protobuf)
        #expect(OTLPDecoder.sniff(message.json) == .json)
        #expect(OTLPDecoder.sniff(Array(" \r\n\t{}".utf8)) == .json)
        #expect(OTLPDecoder.sniff(Array("[]".utf8)) == nil)
        #expect(OTLPDecoder.sniff([]) == nil)
        // Leading JSON whitespace before `{` still sniffs as JSON and decodes.
        let padded = Array("  \n".utf8) + message.json
        #expect(decodeOrFail(padded) == decodeOrFail(message.json))
        #expect(rejection(Array("[1,2]".utf8))?.reason == .unsupportedFormat)
    }

    @Test func brokenSamplesAreRejectedWithTheRightReason() throws {
        let truncated = try #require(rejection(try Fixtures.bytes("bad/truncated.pb")))
        #expect(truncated.reason == .invalidProtobuf)
        #expect(truncated.detail.contains("truncated"), "\(truncated)")

        let wrongShape = try #require(rejection(try Fixtures.bytes("bad/wrong-shape-otlp.json")))
        #expect(wrongShape.reason == .invalidShape)
        #expect(wrongShape.detail == "json: resourceSpans: expected an array, found object")

        let empty = try #require(rejection(try Fixtures.bytes("bad/empty.pb")))
        #expect(empty.reason == .emptyPayload)
        #expect(rejection([], contentType: "application/x-protobuf")?.reason == .emptyPayload)

        let garbage = try Fixtures.bytes("bad/garbage-4k.bin")
        #expect(rejection(garbage)?.reason == .unsupportedFormat)
        #expect(rejection(garbage, contentType: "application/x-protobuf")?.reason == .invalidProtobuf)
        #expect(rejection(garbage, contentType: "application/json")?.reason == .invalidJSON)
    }

    @Test func requestsWithoutSpansAreEmptyPayloads() {
        // An empty request parses (protobuf: zero bytes; here, an empty ResourceSpans) but would be
        // neither stored nor dead-lettered, so it is rejected.
        #expect(rejection([0x0A, 0x00])?.reason == .emptyPayload)
        #expect(rejection(Array("{}".utf8))?.reason == .emptyPayload)
        #expect(rejection(Array(#"{"resourceSpans":[]}"#.utf8))?.reason == .emptyPayload)
        #expect(rejection(Array(#"{"resourceSpans":[{"scopeSpans":[{"spans":[]}]}]}"#.utf8))?.reason == .emptyPayload)
        #expect(rejection(Array(#"{"info":{"trace_id":"tr-1"}}"#.utf8))?.reason == .unsupportedFormat)
    }

    @Test func oversizedMessagesAreRejectedBeforeParsing() throws {
        let message = try #require(try Fixtures.otlpMessages().first)
        let limits = OTLPLimits(maxMessageBytes: 1000)
        let tooLarge = rejection(message.protobuf, limits: limits)
        #expect(tooLarge?.reason == .tooLarge)
        #expect(tooLarge?.detail == "message value is \(message.protobuf.count) bytes, over the limit of 1000")
        #expect(rejection(message.json, limits: limits)?.reason == .tooLarge)
    }
}

/// OTLP/JSON details, on small hand-written requests.
@Suite("OTLP/JSON rules")
struct JSONRuleTests {
    static func request(span: String, resource: String = #"{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]}"#) -> [UInt8] {
        Array(#"{"resourceSpans":[{"resource":\#(resource),"scopeSpans":[{"scope":{"name":"s","version":"1"},"spans":[\#(span)]}]}]}"#.utf8)
    }

    static let ids = #""traceId":"0123456789ABCDEF0123456789abcdef","spanId":"00000000000000A1""#

    @Test func numbersAsStringsOrNumbersEnumsAsNumbersOrNames() throws {
        let asStrings = Self.request(span: #"{\#(Self.ids),"parentSpanId":"","name":"a","kind":2,"startTimeUnixNano":"1770123653476857750","endTimeUnixNano":"1770123655032810750","status":{},"attributes":[{"key":"n","value":{"intValue":"9007199254740993"}}]}"#)
        let asNumbers = Self.request(span: #"{\#(Self.ids),"name":"a","kind":"SPAN_KIND_SERVER","startTimeUnixNano":1770123653476857750,"endTimeUnixNano":1770123655032810750,"status":{"code":"STATUS_CODE_UNSET"},"attributes":[{"key":"n","value":{"intValue":9007199254740993}}]}"#)
        let first = decodeOrFail(asStrings)
        #expect(first == decodeOrFail(asNumbers))
        let span = try #require(first.first?.spans.first)
        #expect(first.first?.traceIDHex == "0123456789abcdef0123456789abcdef")
        #expect(span.spanID == "00000000000000a1")
        #expect(span.parentSpanID == nil)
        #expect(span.startTimeNanos == 1_770_123_653_476_857_750)
        #expect(span.endTimeNanos == 1_770_123_655_032_810_750)
        #expect(span.status == SpanStatus(code: .unset))
        #expect(span.attributes["n"] == .number("9007199254740993"))
        #expect(span.attributes["otel.span.kind"] == "SERVER")
        #expect(span.attributes["otel.scope.name"] == "s")
        #expect(span.spanType == "UNKNOWN")
    }

    @Test func anyValuesBecomeJSON() throws {
        let attributes = #"""
        [{"key":"s","value":{"stringValue":"x"}},{"key":"b","value":{"boolValue":true}},
         {"key":"d","value":{"doubleValue":0.25}},{"key":"nan","value":{"doubleValue":"NaN"}},
         {"key":"bytes","value":{"bytesValue":"3q2+7w=="}},{"key":"empty","value":{}},
         {"key":"list","value":{"arrayValue":{"values":[{"intValue":"1"},{"stringValue":"two"}]}}},
         {"key":"map","value":{"kvlistValue":{"values":[{"key":"k","value":{"arrayValue":{}}}]}}}]
        """#
        let fragments = decodeOrFail(Self.request(span: #"{\#(Self.ids),"name":"a","attributes":\#(attributes)}"#))
        let span = try #require(fragments.first?.spans.first)
        #expect(span.attributes["s"] == "x")
        #expect(span.attributes["b"] == true)
        #expect(span.attributes["d"] == .number("0.25"))
        #expect(span.attributes["nan"] == "NaN")
        #expect(span.attributes["bytes"] == "3q2+7w==")
        #expect(span.attributes["empty"] == .null)
        #expect(span.attributes["list"] == [1, "two"])
        #expect(span.attributes["map"] == ["k": []])
        #expect(span.endTimeNanos == nil)
        #expect(fragments.first?.resourceAttributes == ["service.name": "svc"])
    }

    @Test func statusEventsAndLinks() throws {
        let span = #"{\#(Self.ids),"parentSpanId":"00000000000000b2","name":"a","status":{"code":2,"message":"TimeoutError: slow"},"events":[{"timeUnixNano":"5","name":"exception","attributes":[{"key":"exception.type","value":{"stringValue":"TimeoutError"}}]}],"links":[{"traceId":"0123456789abcdef0123456789abcdef","spanId":"00000000000000c3"}]}"#
        let decoded = try #require(decodeOrFail(Self.request(span: span)).first?.spans.first)
        #expect(decoded.parentSpanID == "00000000000000b2")
        #expect(decoded.status == SpanStatus(code: .error, message: "TimeoutError: slow"))
        #expect(decoded.events == [SpanEvent(name: "exception", timeNanos: 5, attributes: ["exception.type": "TimeoutError"])])
        #expect(decoded.attributes["otel.links"] == [["trace_id": "0123456789abcdef0123456789abcdef", "span_id": "00000000000000c3"]])
    }

    @Test func snakeCaseFieldNamesAreAccepted() throws {
        let request = Array(#"{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"0123456789abcdef0123456789abcdef","span_id":"00000000000000a1","parent_span_id":"","name":"a","start_time_unix_nano":"7","attributes":[{"key":"k","value":{"string_value":"v"}}]}]}]}]}"#.utf8)
        let span = try #require(decodeOrFail(request).first?.spans.first)
        #expect(span.startTimeNanos == 7)
        #expect(span.attributes["k"] == "v")
    }

    @Test(arguments: [
        (#""traceId":"0123","spanId":"00000000000000a1""#, "resourceSpans[0].scopeSpans[0].spans[0].traceId: not a 16-byte id in hex (4 characters)"),
        (#""traceId":"00000000000000000000000000000000","spanId":"00000000000000a1""#, "resourceSpans[0].scopeSpans[0].spans[0].traceId: all zeros (an invalid id)"),
        (#""traceId":"0123456789abcdef0123456789abcdef""#, "resourceSpans[0].scopeSpans[0].spans[0].spanId: missing"),
        (#""traceId":"0123456789abcdef0123456789abcdef","spanId":"00000000000000a1","startTimeUnixNano":"soon""#, "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: expected unsigned nanoseconds in Int64 range (string or number), found string"),
        (#""traceId":"0123456789abcdef0123456789abcdef","spanId":"00000000000000a1","kind":"SIDEWAYS""#, "resourceSpans[0].scopeSpans[0].spans[0].kind: expected an enum number or name, found string"),
        (#""traceId":"0123456789abcdef0123456789abcdef","spanId":"00000000000000a1","attributes":[{"key":"k","value":{"intValue":"1.5"}}]"#, "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.intValue: expected a 64-bit integer (number or decimal string), found string"),
        (#""traceId":"0123456789abcdef0123456789abcdef","spanId":"00000000000000a1","attributes":[{"key":"k","value":{"stringValue":"a","intValue":"1"}}]"#, "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value: AnyValue has both stringValue and intValue"),
    ])
    func wrongShapesNameTheField(fields: String, detail: String) throws {
        let rejected = try #require(rejection(Self.request(span: "{\(fields)}")))
        #expect(rejected.reason == .invalidShape)
        #expect(rejected.detail == "json: " + detail)
    }
}

@Suite("OTLP limits")
struct LimitTests {
    @Test func spansPerMessage() throws {
        let message = try #require(try Fixtures.otlpMessages().first { $0.index["n_spans"]?.int64Value == 4 })
        let limits = OTLPLimits(maxSpansPerMessage: 3)
        for payload in [message.json, message.protobuf] {
            let rejected = try #require(rejection(payload, limits: limits))
            #expect(rejected.reason == .limitExceeded)
            #expect(rejected.detail.contains("more than 3 spans (maxSpansPerMessage)"), "\(rejected)")
        }
        #expect(!decodeOrFail(message.protobuf, limits: OTLPLimits(maxSpansPerMessage: 4)).isEmpty)
    }

    @Test func attributeValueBytes() throws {
        let messages = try Fixtures.otlpMessages()
        let limits = OTLPLimits(maxAttributeValueBytes: 1000)
        // Some sample attribute (an LLM request body) is longer than 1000 bytes.
        var rejectedBoth = 0
        for message in messages {
            let json = OTLPDecoder.decode(payload: message.json, contentType: nil, limits: limits)
            let protobuf = OTLPDecoder.decode(payload: message.protobuf, contentType: nil, limits: limits)
            if case .failure(let a) = json, case .failure(let b) = protobuf {
                #expect(a.reason == .limitExceeded && b.reason == .limitExceeded)
                #expect(a.detail.contains("maxAttributeValueBytes"), "\(a)")
                #expect(b.detail.contains("maxAttributeValueBytes"), "\(b)")
                rejectedBoth += 1
            } else {
                #expect(json.isSuccess == protobuf.isSuccess, "message \(message.seq)")
            }
        }
        #expect(rejectedBoth > 0)
        #expect(rejectedBoth < messages.count)
    }

    static func nested(depth: Int) -> [UInt8] {
        var value = #"{"stringValue":"leaf"}"#
        for _ in 0..<depth { value = #"{"arrayValue":{"values":[\#(value)]}}"# }
        return JSONRuleTests.request(span: #"{\#(JSONRuleTests.ids),"name":"a","attributes":[{"key":"deep","value":\#(value)}]}"#)
    }

    @Test func nestingDepthInJSON() throws {
        let limits = OTLPLimits(maxNestingDepth: 5)
        #expect(!decodeOrFail(Self.nested(depth: 5), limits: limits).isEmpty)
        let rejected = try #require(rejection(Self.nested(depth: 6), limits: limits))
        #expect(rejected.reason == .limitExceeded)
        #expect(rejected.detail.contains("maxNestingDepth"), "\(rejected)")
        // Far deeper than the document limit: the parser stops early.
        let hostile = try #require(rejection(Self.nested(depth: 5000), limits: limits))
        #expect(hostile.reason == .limitExceeded)
    }

    @Test func nestingDepthInProtobuf() throws {
        // Build the same nested value as protobuf with the generated types.
        func request(depth: Int) throws -> [UInt8] {
            var value = PBAnyValue()
            value.stringValue = "leaf"
            for _ in 0..<depth {
                var array = Opentelemetry_Proto_Common_V1_ArrayValue()
                array.values = [value]
                var outer = PBAnyValue()
                outer.arrayValue = array
                value = outer
            }
            var attribute = PBKeyValue()
            attribute.key = "deep"
            attribute.value = value
            var span = PBSpan()
            span.traceID = .init(repeating: 1, count: 16)
            span.spanID = .init(repeating: 2, count: 8)
            span.name = "a"
            span.attributes = [attribute]
            var scopeSpans = Opentelemetry_Proto_Trace_V1_ScopeSpans()
            scopeSpans.spans = [span]
            var resourceSpans = Opentelemetry_Proto_Trace_V1_ResourceSpans()
            resourceSpans.scopeSpans = [scopeSpans]
            var message = PBRequest()
            message.resourceSpans = [resourceSpans]
            return try message.serializedBytes()
        }
        let limits = OTLPLimits(maxNestingDepth: 5)
        #expect(decodeOrFail(try request(depth: 5), limits: limits).first?.spans.first?.attributes["deep"] == [[[[["leaf"]]]]])
        #expect(rejection(try request(depth: 6), limits: limits)?.reason == .limitExceeded)
        // Deeper than SwiftProtobuf's message depth limit derived from maxNestingDepth.
        let deep = try #require(rejection(try request(depth: 200), limits: limits))
        #expect(deep.reason == .limitExceeded)
        #expect(deep.detail.contains("maxNestingDepth"), "\(deep)")
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
