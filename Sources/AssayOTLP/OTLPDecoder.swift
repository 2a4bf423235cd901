import AssayCore

/// The two encodings of an OTLP trace export.
public enum OTLPWireFormat: String, Sendable, Equatable, CaseIterable {
    /// Binary protobuf (`application/x-protobuf`; the Collector's Kafka exporter's default `otlp_proto`).
    case protobuf
    /// OTLP/JSON (`application/json`; the Kafka exporter's `otlp_json`).
    case json
}

/// Decodes one OpenTelemetry `ExportTraceServiceRequest` (one Kafka record value) into
/// ``TraceFragment``s, or says why it cannot. Pure and thread-safe; no I/O.
///
/// ## Format
/// From the `content-type` header when it names one (parameters such as `; charset=utf-8` are
/// ignored): `application/x-protobuf`, `application/protobuf`, `application/vnd.google.protobuf`
/// → protobuf; `application/json`, `text/json` or any `…+json` → JSON. Otherwise (no header, or
/// another type such as `application/octet-stream`) the bytes are sniffed: protobuf when the first
/// byte is `0x0A` (field 1, `resource_spans`, length-delimited), JSON when the first byte after
/// JSON whitespace is `{`.
///
/// ## Rejections (the first that applies)
/// 1. zero bytes → `empty_payload`;
/// 2. more than ``OTLPLimits/maxMessageBytes`` → `too_large`, before parsing;
/// 3. no content type and neither sniff matches → `unsupported_format`;
/// 4. JSON that does not parse → `invalid_json` (nesting beyond the limit → `limit_exceeded`);
///    a JSON object without `resourceSpans` → `unsupported_format` (`{}` is an empty request);
/// 5. protobuf that does not parse (truncated, bad tag or length, invalid UTF-8) → `invalid_protobuf`;
/// 6. a field of the wrong type or an invalid id (wrong length, all zeros) → `invalid_shape`;
/// 7. more spans than ``OTLPLimits/maxSpansPerMessage``, an attribute value (or name, message)
///    over ``OTLPLimits/maxAttributeValueBytes``, or values nested deeper than
///    ``OTLPLimits/maxNestingDepth`` → `limit_exceeded`;
/// 8. a request that parses but holds no span (an empty `.pb`'s twin, `{"resourceSpans": []}`)
///    → `empty_payload`: it would otherwise be neither stored nor dead-lettered.
///
/// The detail starts with the format (`protobuf:` / `json:`), names the field path
/// (`resourceSpans[0].scopeSpans[1].spans[3].traceId`) and never quotes payload content.
public enum OTLPDecoder {
    /// Decodes a message value; `contentType` is the record's `content-type` header, if any.
    public static func decode(
        payload: [UInt8], contentType: String?, limits: OTLPLimits = OTLPLimits()
    ) -> Result<[TraceFragment], TraceRejection> {
        if payload.isEmpty {
            return .failure(TraceRejection(reason: .emptyPayload, detail: "message value is 0 bytes"))
        }
        if payload.count > limits.maxMessageBytes {
            return .failure(TraceRejection(
                reason: .tooLarge,
                detail: "message value is \(payload.count) bytes, over the limit of \(limits.maxMessageBytes)"))
        }
        guard let format = wireFormat(contentType: contentType, payload: payload) else {
            let header = contentType.map { " and content type \(describeContentType($0))" } ?? " and no content type"
            return .failure(TraceRejection(
                reason: .unsupportedFormat,
                detail: "neither OTLP protobuf (first byte 0x0A) nor JSON (first byte '{'): first byte 0x\(hexByte(payload[0]))\(header)"))
        }
        switch format {
        case .protobuf:
            let raw: [RawResourceSpans]
            do throws(OTLPReadError) {
                raw = try ProtobufReader(limits: limits).read(payload)
            } catch {
                return .failure(error.rejection(format: "protobuf"))
            }
            return fragments(raw, limits: limits, format: "protobuf")
        case .json:
            let parser = JSONParser(maxDepth: limits.jsonDocumentDepth, loneSurrogates: .replace)
            let document: JSONValue
            do throws(JSONParseError) {
                document = try parser.parse(payload)
            } catch {
                if error.reason == .nestingTooDeep {
                    return .failure(TraceRejection(
                        reason: .limitExceeded,
                        detail: "json: nested more than \(limits.jsonDocumentDepth) levels at byte \(error.offset) (maxNestingDepth \(limits.maxNestingDepth))"))
                }
                return .failure(TraceRejection(reason: .invalidJSON, detail: "json: not JSON: \(error.description)"))
            }
            return decode(json: document, limits: limits)
        }
    }

    /// Decodes an already parsed OTLP/JSON document (for a caller that parsed the payload to tell
    /// MLflow JSON from OTLP JSON; see ``isOTLPJSON(_:)``). The message size is not checked here.
    public static func decode(json document: JSONValue, limits: OTLPLimits = OTLPLimits()) -> Result<[TraceFragment], TraceRejection> {
        let raw: [RawResourceSpans]
        do throws(OTLPReadError) {
            raw = try JSONReader(limits: limits).read(document)
        } catch {
            return .failure(error.rejection(format: "json"))
        }
        return fragments(raw, limits: limits, format: "json")
    }

    /// Whether a JSON document looks like an OTLP trace export: an object with `resourceSpans`
    /// (or `resource_spans`).
    public static func isOTLPJSON(_ document: JSONValue) -> Bool {
        guard case .object(let object) = document else { return false }
        return object["resourceSpans"] != nil || object["resource_spans"] != nil
    }

    /// The wire format named by `contentType`, else sniffed from the first bytes; nil when neither
    /// tells.
    public static func wireFormat(contentType: String?, payload: [UInt8]) -> OTLPWireFormat? {
        if let contentType, let format = wireFormat(contentType: contentType) { return format }
        return sniff(payload)
    }

    /// The wire format a `content-type` value names, or nil for other or malformed types.
    ///
    /// The media type (before any `;`, without spaces and tabs around it) is compared as
    /// ASCII, case-insensitively, on the UTF-8 bytes: this runs for every consumed message,
    /// and trimming into a new string and `lowercased()` allocated each time (about 2% of an
    /// ingest replica's CPU under perf). Media types are ASCII tokens (RFC 9110), so a
    /// name with other bytes matches none.
    public static func wireFormat(contentType: String) -> OTLPWireFormat? {
        let utf8 = contentType.utf8
        var start = utf8.startIndex
        var end = utf8.firstIndex(of: UInt8(ascii: ";")) ?? utf8.endIndex
        func isSpaceOrTab(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
        while start < end, isSpaceOrTab(utf8[start]) { start = utf8.index(after: start) }
        while end > start, isSpaceOrTab(utf8[utf8.index(before: end)]) { end = utf8.index(before: end) }
        let mediaType = utf8[start..<end]
        for (name, format) in namedMediaTypes where asciiCaseInsensitiveEqual(mediaType, name) { return format }
        let prefix = "application/".utf8, suffix = "+json".utf8
        guard mediaType.count >= prefix.count + suffix.count else { return nil }
        let head = mediaType.prefix(prefix.count), tail = mediaType.suffix(suffix.count)
        return asciiCaseInsensitiveEqual(head, prefix) && asciiCaseInsensitiveEqual(tail, suffix) ? .json : nil
    }

    private static let namedMediaTypes: [(name: String.UTF8View, format: OTLPWireFormat)] = [
        ("application/x-protobuf".utf8, .protobuf), ("application/protobuf".utf8, .protobuf),
        ("application/vnd.google.protobuf".utf8, .protobuf), ("application/x-google-protobuf".utf8, .protobuf),
        ("application/json".utf8, .json), ("text/json".utf8, .json),
    ]

    /// Whether `bytes` spell `lowercase` (an ASCII name in lower case) in any ASCII case.
    private static func asciiCaseInsensitiveEqual<Bytes: Collection<UInt8>>(_ bytes: Bytes, _ lowercase: some Collection<UInt8>) -> Bool {
        guard bytes.count == lowercase.count else { return false }
        return zip(bytes, lowercase).allSatisfy { byte, expected in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == expected
        }
    }

    /// The wire format the first bytes suggest, or nil.
    public static func sniff(_ payload: [UInt8]) -> OTLPWireFormat? {
        guard let first = payload.first else { return nil }
        if first == 0x0A { return .protobuf }
        for byte in payload {
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "{"): return .json
            default: return nil
            }
        }
        return nil
    }

    // MARK: Internals

    private static func fragments(_ raw: [RawResourceSpans], limits: OTLPLimits, format: String) -> Result<[TraceFragment], TraceRejection> {
        let mapper = SpanMapper(limits: limits)
        var result: [TraceFragment] = []
        var spanCount = 0
        for resourceSpans in raw {
            var resource: [String: JSONValue] = [:]
            for (key, value) in resourceSpans.resourceAttributes { resource[key] = value }
            var indexByTrace: [String: Int] = [:]
            for scope in resourceSpans.scopes {
                for rawSpan in scope.spans {
                    let span = mapper.map(rawSpan, scope: scope)
                    spanCount += 1
                    if let index = indexByTrace[rawSpan.traceIDHex] {
                        result[index].spans.append(span)
                    } else {
                        indexByTrace[rawSpan.traceIDHex] = result.count
                        result.append(TraceFragment(traceIDHex: rawSpan.traceIDHex, resourceAttributes: resource, spans: [span]))
                    }
                }
            }
        }
        if spanCount == 0 {
            return .failure(TraceRejection(
                reason: .emptyPayload,
                detail: "\(format): the ExportTraceServiceRequest holds no spans (\(raw.count) resourceSpans)"))
        }
        return .success(result)
    }

    private static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }

    /// The content type for a message: printable ASCII only, at most 64 characters.
    private static func describeContentType(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars.prefix(64) {
            result.unicodeScalars.append(scalar.value >= 0x20 && scalar.value < 0x7F && scalar != "\"" ? scalar : "?")
        }
        if text.unicodeScalars.count > 64 { result += "…" }
        return "\"\(result)\""
    }
}

