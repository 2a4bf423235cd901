// Decoding of MLflow `Trace.to_json()` documents (MLflow 3.x and 2.x shapes) into `Trace`.

/// A shape problem at a JSON path. Paths are built only when an error happens: each level
/// catches and prefixes its own part.
struct ShapeError: Error {
    /// Relative path, e.g. `span_id`, `[3].span_id`, `attributes["mlflow.spanType"]`.
    var path: String
    var message: String

    func prefixed(_ prefix: String) -> ShapeError {
        if path.isEmpty { return ShapeError(path: prefix, message: message) }
        return ShapeError(path: Describe.join(prefix, path), message: message)
    }
}

/// Short, safe renderings of payload values for error messages.
enum Describe {
    static let maxValueCharacters = 32

    /// A short quoted string: truncated, control characters replaced, never the whole payload.
    static func short(_ text: String) -> String {
        var result = ""
        var count = 0
        for character in text.unicodeScalars {
            if count == maxValueCharacters {
                result.append("…")
                break
            }
            if character.value < 0x20 || character.value == 0x7F || character == "\"" || character == "\\" {
                result.append("?")
            } else {
                result.unicodeScalars.append(character)
            }
            count += 1
        }
        return "\"" + result + "\""
    }

    /// The type of `value`, plus its value when that is short and scalar.
    static func value(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return "boolean \(flag)"
        case .number(let lexeme): return "number \(lexeme.count <= maxValueCharacters ? lexeme : String(lexeme.prefix(maxValueCharacters)) + "…")"
        case .string(let text): return "string \(short(text))"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// `parent.child`, or `parent[…]` when the child is a bracketed member.
    static func join(_ parent: String, _ child: String) -> String {
        child.hasPrefix("[") ? parent + child : parent + "." + child
    }

    /// `key` for plain keys, `["key"]` for keys with dots or other characters.
    static func member(_ key: String) -> String {
        let plain = !key.isEmpty && key.utf8.count <= 64 && key.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "_")
        }
        return plain ? key : "[\(short(key))]"
    }
}

// MARK: - Typed field access

extension JSONObject {
    /// A present, non-null member.
    fileprivate func member(_ key: String) -> JSONValue? {
        guard let value = self[key], !value.isNull else { return nil }
        return value
    }

    fileprivate func missing(_ key: String) -> ShapeError {
        ShapeError(path: Describe.member(key), message: "missing")
    }

    fileprivate func wrongType(_ key: String, expected: String, got value: JSONValue) -> ShapeError {
        ShapeError(path: Describe.member(key), message: "expected \(expected), got \(Describe.value(value))")
    }

    /// A string member; absent or null → nil.
    fileprivate func optionalString(_ key: String) throws(ShapeError) -> String? {
        guard let value = member(key) else { return nil }
        guard case .string(let text) = value else { throw wrongType(key, expected: "a string", got: value) }
        return text
    }

    /// A non-empty string member.
    fileprivate func requiredString(_ key: String) throws(ShapeError) -> String {
        guard let text = try optionalString(key) else { throw missing(key) }
        guard !text.isEmpty else { throw ShapeError(path: Describe.member(key), message: "empty") }
        return text
    }

    fileprivate func optionalObject(_ key: String) throws(ShapeError) -> JSONObject? {
        guard let value = member(key) else { return nil }
        guard case .object(let object) = value else { throw wrongType(key, expected: "an object", got: value) }
        return object
    }

    fileprivate func requiredObject(_ key: String) throws(ShapeError) -> JSONObject {
        guard let object = try optionalObject(key) else { throw missing(key) }
        return object
    }

    fileprivate func optionalArray(_ key: String) throws(ShapeError) -> [JSONValue]? {
        guard let value = member(key) else { return nil }
        guard case .array(let elements) = value else { throw wrongType(key, expected: "an array", got: value) }
        return elements
    }

    fileprivate func requiredArray(_ key: String) throws(ShapeError) -> [JSONValue] {
        guard let elements = try optionalArray(key) else { throw missing(key) }
        return elements
    }

    /// An integer given as a JSON number or a decimal string (nanosecond times, durations).
    fileprivate func optionalInteger(_ key: String) throws(ShapeError) -> Int64? {
        guard let value = member(key) else { return nil }
        guard let integer = value.int64AcceptingDecimalString else {
            throw wrongType(key, expected: "an integer (number or decimal string) within Int64", got: value)
        }
        return integer
    }

    fileprivate func requiredInteger(_ key: String) throws(ShapeError) -> Int64 {
        guard let integer = try optionalInteger(key) else { throw missing(key) }
        return integer
    }

    /// A non-negative duration in milliseconds.
    fileprivate func optionalMillis(_ key: String) throws(ShapeError) -> Int64? {
        guard let millis = try optionalInteger(key) else { return nil }
        guard millis >= 0 else { throw ShapeError(path: Describe.member(key), message: "negative duration \(millis)") }
        return millis
    }

    /// A `{string: string}` map, also accepted as a list of `{"key": …, "value": …}` (MLflow 2).
    /// Absent or null → empty. Non-string values are shape errors.
    fileprivate func stringMap(_ key: String) throws(ShapeError) -> [String: String] {
        guard let value = member(key) else { return [:] }
        var map: [String: String] = [:]
        switch value {
        case .object(let object):
            map.reserveCapacity(object.count)
            for (entryKey, entryValue) in object.entries {
                guard case .string(let text) = entryValue else {
                    throw ShapeError(
                        path: Describe.join(Describe.member(key), Describe.member(entryKey)),
                        message: "expected a string value, got \(Describe.value(entryValue))")
                }
                map[entryKey] = text
            }
        case .array(let elements):
            map.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                do throws(ShapeError) {
                    guard case .object(let pair) = element else {
                        throw ShapeError(path: "", message: "expected a {\"key\", \"value\"} object, got \(Describe.value(element))")
                    }
                    let pairKey = try pair.optionalString("key") ?? ""
                    guard let pairValue = pair["value"] else { throw pair.missing("value") }
                    guard case .string(let text) = pairValue else {
                        throw pair.wrongType("value", expected: "a string", got: pairValue)
                    }
                    map[pairKey] = text
                } catch {
                    throw error.prefixed(Describe.member(key) + "[\(index)]")
                }
            }
        default:
            throw wrongType(key, expected: "an object of strings", got: value)
        }
        return map
    }
}

// MARK: - Decoder

/// Decodes parsed MLflow trace JSON. See ``MessageDecoding`` for the rejection order.
struct MLflowTraceDecoder {
    /// Parses JSON-encoded attribute values.
    let attributeParser: JSONParser
    /// Whether spans hold their inputs and outputs as ``CompactJSON`` (for ingest, which only
    /// writes them on) rather than as values.
    var compactPayloads = false

    func decode(_ json: JSONValue) -> Result<Trace, TraceRejection> {
        guard case .object(let root) = json else {
            return .failure(TraceRejection(
                reason: .unsupportedFormat,
                detail: "top-level JSON \(json.typeName); expected an MLflow trace object with info and data"))
        }
        guard root["info"] != nil || root["data"] != nil else {
            if root["resourceSpans"] != nil || root["resource_spans"] != nil {
                return .failure(TraceRejection(
                    reason: .unsupportedFormat,
                    detail: "looks like OTLP JSON (resourceSpans); OTLP decoding is not supported yet (planned in a later issue)"))
            }
            return .failure(TraceRejection(
                reason: .unsupportedFormat,
                detail: "JSON object without info or data; not an MLflow trace"))
        }
        do throws(ShapeError) {
            let info = try root.requiredObject("info")
            let data = try root.requiredObject("data")
            let trace: Trace
            if info["trace_id"] != nil || info["request_time"] != nil || info["state"] != nil {
                trace = try decodeMLflow3(info: info, data: data)
            } else if info["request_id"] != nil || info["timestamp_ms"] != nil || info["status"] != nil {
                trace = try decodeMLflow2(info: info, data: data)
            } else {
                throw ShapeError(path: "info", message: "has neither trace_id (MLflow 3) nor request_id (MLflow 2)")
            }
            return .success(trace)
        } catch {
            return .failure(TraceRejection(reason: .invalidShape, detail: "\(error.path): \(error.message)"))
        }
    }

    // MARK: MLflow 3

    private func decodeMLflow3(info: JSONObject, data: JSONObject) throws(ShapeError) -> Trace {
        let traceID: String
        let requestTime: Int64
        let state: TraceState
        let duration: Int64?
        let clientRequestID: String?
        let requestPreview: String?
        let responsePreview: String?
        let metadata: [String: String]
        let tags: [String: String]
        do throws(ShapeError) {
            traceID = try info.requiredString("trace_id")
            requestTime = try requestTimeNanos(info)
            state = try traceState(info, key: "state")
            if let millis = try info.optionalMillis("execution_duration_ms") {
                duration = millis
            } else {
                duration = try protoDurationMillis(info, key: "execution_duration")
            }
            clientRequestID = try info.optionalString("client_request_id")
            requestPreview = try info.optionalString("request_preview")
            responsePreview = try info.optionalString("response_preview")
            metadata = try info.stringMap("trace_metadata")
            tags = try info.stringMap("tags")
        } catch {
            throw error.prefixed("info")
        }
        let spans = try decodeSpans(data, decodeSpan: decodeMLflow3Span)
        return Trace(
            traceID: traceID,
            format: .mlflow3,
            requestTimeNanos: requestTime,
            executionDurationMillis: duration,
            state: state,
            clientRequestID: clientRequestID,
            requestPreview: requestPreview,
            responsePreview: responsePreview,
            tags: tags,
            metadata: metadata,
            spans: spans)
    }

    /// `request_time`: an RFC 3339 string, or epoch milliseconds (number or decimal string).
    private func requestTimeNanos(_ info: JSONObject) throws(ShapeError) -> Int64 {
        let key = "request_time"
        guard let value = info[key], !value.isNull else { throw info.missing(key) }
        let millis: Int64
        switch value {
        case .string(let text):
            if let nanos = TimeParsing.rfc3339Nanoseconds(text) { return nanos }
            guard let parsed = JSONNumberLexeme.decimalStringInt64(text) else {
                throw ShapeError(path: key, message: "not an RFC 3339 timestamp or epoch milliseconds (\(Describe.short(text)))")
            }
            millis = parsed
        case .number:
            guard let parsed = value.int64Value else {
                throw ShapeError(path: key, message: "expected integer epoch milliseconds, got \(Describe.value(value))")
            }
            millis = parsed
        default:
            throw info.wrongType(key, expected: "an RFC 3339 string or epoch milliseconds", got: value)
        }
        return try millisToNanos(millis, key: key)
    }

    private func millisToNanos(_ millis: Int64, key: String) throws(ShapeError) -> Int64 {
        let (nanos, overflow) = millis.multipliedReportingOverflow(by: 1_000_000)
        guard !overflow else { throw ShapeError(path: key, message: "timestamp out of range (\(millis) ms)") }
        return nanos
    }

    /// `execution_duration` as a protobuf-JSON duration (`"1.555s"`), in whole milliseconds.
    private func protoDurationMillis(_ info: JSONObject, key: String) throws(ShapeError) -> Int64? {
        guard let text = try info.optionalString(key) else { return nil }
        guard let nanos = TimeParsing.protoDurationNanoseconds(text) else {
            throw ShapeError(path: key, message: "not a duration like \"1.5s\" (\(Describe.short(text)))")
        }
        guard nanos >= 0 else { throw ShapeError(path: key, message: "negative duration \(Describe.short(text))") }
        return nanos / 1_000_000
    }

    private func traceState(_ info: JSONObject, key: String) throws(ShapeError) -> TraceState {
        guard let text = try info.optionalString(key) else { return .unspecified }
        switch text {
        case "OK": return .ok
        case "ERROR": return .error
        case "IN_PROGRESS": return .inProgress
        case "STATE_UNSPECIFIED", "TRACE_STATUS_UNSPECIFIED": return .unspecified
        default:
            throw ShapeError(
                path: key,
                message: "unknown value \(Describe.short(text)) (expected OK, ERROR, IN_PROGRESS or STATE_UNSPECIFIED)")
        }
    }

    /// `data.spans`, each decoded by `decodeSpan`, with span ids unique.
    private func decodeSpans(
        _ data: JSONObject,
        decodeSpan: (JSONObject) throws(ShapeError) -> Span
    ) throws(ShapeError) -> [Span] {
        let elements: [JSONValue]
        do throws(ShapeError) {
            elements = try data.requiredArray("spans")
        } catch {
            throw error.prefixed("data")
        }
        var spans: [Span] = []
        spans.reserveCapacity(elements.count)
        var firstIndexByID: [String: Int] = [:]
        firstIndexByID.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            let span: Span
            do throws(ShapeError) {
                guard case .object(let object) = element else {
                    throw ShapeError(path: "", message: "expected a span object, got \(Describe.value(element))")
                }
                span = try decodeSpan(object)
                if let first = firstIndexByID.updateValue(index, forKey: span.spanID) {
                    throw ShapeError(path: "span_id", message: "duplicate span id \(span.spanID) (also data.spans[\(first)])")
                }
            } catch {
                throw error.prefixed("data.spans[\(index)]")
            }
            spans.append(span)
        }
        return spans
    }

    private func decodeMLflow3Span(_ span: JSONObject) throws(ShapeError) -> Span {
        if let traceID = try span.optionalString("trace_id"), !traceID.isEmpty,
           OTelIdentifier.traceIDHex(traceID) == nil {
            throw ShapeError(path: "trace_id", message: "not a 16-byte trace id in hex or base64 (\(Describe.short(traceID)))")
        }
        let spanID = try identifier(span, key: "span_id")
        let parentSpanID = try parentIdentifier(span, key: "parent_span_id")
        let name = try span.optionalString("name") ?? ""
        let start = try span.requiredInteger("start_time_unix_nano")
        let end = try span.optionalInteger("end_time_unix_nano")
        let status = try mlflow3Status(span)
        let attributes = try decodeAttributes(span)
        let events = try decodeEvents(span, timeKey: "time_unix_nano")
        return payloadsShaped(Span(
            spanID: spanID,
            parentSpanID: parentSpanID,
            name: name,
            spanType: attributes.spanType,
            startTimeNanos: start,
            endTimeNanos: end,
            status: status,
            inputs: attributes.inputs,
            outputs: attributes.outputs,
            attributes: attributes.other,
            events: events), with: attributes)
    }

    /// `status`: `{"code": "STATUS_CODE_OK", "message": ""}`; a bare code string is accepted too.
    private func mlflow3Status(_ span: JSONObject) throws(ShapeError) -> SpanStatus {
        guard let value = span["status"], !value.isNull else { return SpanStatus(code: .unset) }
        switch value {
        case .string(let code):
            return SpanStatus(code: try statusCode(code, key: "status"))
        case .object(let object):
            do throws(ShapeError) {
                var code = SpanStatus.Code.unset
                if let text = try object.optionalString("code") {
                    code = try statusCode(text, key: "code")
                }
                let message = try object.optionalString("message") ?? ""
                return SpanStatus(code: code, message: message)
            } catch {
                throw error.prefixed("status")
            }
        default:
            throw span.wrongType("status", expected: "an object", got: value)
        }
    }

    private func statusCode(_ text: String, key: String) throws(ShapeError) -> SpanStatus.Code {
        switch text {
        case "STATUS_CODE_OK", "OK": return .ok
        case "STATUS_CODE_ERROR", "ERROR": return .error
        case "STATUS_CODE_UNSET", "UNSET": return .unset
        default:
            throw ShapeError(
                path: key,
                message: "unknown status code \(Describe.short(text)) (expected STATUS_CODE_OK, STATUS_CODE_ERROR or STATUS_CODE_UNSET)")
        }
    }

    // MARK: MLflow 2

    private func decodeMLflow2(info: JSONObject, data: JSONObject) throws(ShapeError) -> Trace {
        let traceID: String
        let requestTime: Int64
        let state: TraceState
        let duration: Int64?
        let requestPreview: String?
        let responsePreview: String?
        let metadata: [String: String]
        let tags: [String: String]
        do throws(ShapeError) {
            traceID = try info.requiredString("request_id")
            requestTime = try millisToNanos(try info.requiredInteger("timestamp_ms"), key: "timestamp_ms")
            state = try traceState(info, key: "status")
            duration = try info.optionalMillis("execution_time_ms")
            requestPreview = try info.optionalString("request_preview")
            responsePreview = try info.optionalString("response_preview")
            metadata = try info.stringMap("request_metadata")
            tags = try info.stringMap("tags")
        } catch {
            throw error.prefixed("info")
        }
        let dataRequest: String?
        let dataResponse: String?
        do throws(ShapeError) {
            dataRequest = try data.optionalString("request")
            dataResponse = try data.optionalString("response")
        } catch {
            throw error.prefixed("data")
        }
        let spans = try decodeSpans(data, decodeSpan: decodeMLflow2Span)
        return Trace(
            traceID: traceID,
            format: .mlflow2,
            requestTimeNanos: requestTime,
            executionDurationMillis: duration,
            state: state,
            clientRequestID: nil,
            requestPreview: requestPreview ?? dataRequest,
            responsePreview: responsePreview ?? dataResponse,
            tags: tags,
            metadata: metadata,
            spans: spans)
    }

    private func decodeMLflow2Span(_ span: JSONObject) throws(ShapeError) -> Span {
        let context = try span.requiredObject("context")
        let spanID: String
        do throws(ShapeError) {
            spanID = try identifier(context, key: "span_id")
            if let traceID = try context.optionalString("trace_id"), !traceID.isEmpty,
               OTelIdentifier.traceIDHex(traceID) == nil {
                throw ShapeError(path: "trace_id", message: "not a 16-byte trace id in hex (\(Describe.short(traceID)))")
            }
        } catch {
            throw error.prefixed("context")
        }
        let parentSpanID = try parentIdentifier(span, key: "parent_id")
        let name = try span.optionalString("name") ?? ""
        let start = try span.requiredInteger("start_time")
        let end = try span.optionalInteger("end_time")
        var code = SpanStatus.Code.unset
        if let text = try span.optionalString("status_code") {
            code = try statusCode(text, key: "status_code")
        }
        let message = try span.optionalString("status_message") ?? ""
        let attributes = try decodeAttributes(span)
        let events = try decodeEvents(span, timeKey: "timestamp")
        return payloadsShaped(Span(
            spanID: spanID,
            parentSpanID: parentSpanID,
            name: name,
            spanType: attributes.spanType,
            startTimeNanos: start,
            endTimeNanos: end,
            status: SpanStatus(code: code, message: message),
            inputs: attributes.inputs,
            outputs: attributes.outputs,
            attributes: attributes.other,
            events: events), with: attributes)
    }

    // MARK: Shared span parts

    private func identifier(_ object: JSONObject, key: String) throws(ShapeError) -> String {
        let text = try object.requiredString(key)
        guard let hex = OTelIdentifier.spanIDHex(text) else {
            throw ShapeError(
                path: key,
                message: "not an 8-byte span id as 16 hex digits or base64 (\(Describe.short(text)))")
        }
        return hex
    }

    /// A parent span id; null, absent or `""` marks a root span.
    private func parentIdentifier(_ object: JSONObject, key: String) throws(ShapeError) -> String? {
        guard let text = try object.optionalString(key), !text.isEmpty else { return nil }
        guard let hex = OTelIdentifier.spanIDHex(text) else {
            throw ShapeError(
                path: key,
                message: "not an 8-byte span id as 16 hex digits or base64 (\(Describe.short(text)))")
        }
        return hex
    }

    private struct DecodedAttributes {
        var spanType: String?
        var inputs: JSONValue?
        var outputs: JSONValue?
        var compactInputs: CompactJSON?
        var compactOutputs: CompactJSON?
        var other: [String: JSONValue] = [:]
        /// With ``MLflowTraceDecoder/compactPayloads``: the other attributes as one compact
        /// JSON object (`other` stays empty).
        var compactOther: CompactJSON?
    }

    /// A span built from `attributes`' inputs, outputs and other attributes, in the form
    /// ``compactPayloads`` asks for.
    private func payloadsShaped(_ span: Span, with attributes: DecodedAttributes) -> Span {
        guard compactPayloads else { return span }
        var span = span
        span.setCompact(inputs: attributes.compactInputs, outputs: attributes.compactOutputs)
        if let other = attributes.compactOther { span.setCompact(attributes: other) }
        return span
    }

    /// Span attributes. MLflow writes each value as a JSON-encoded string; it is stored decoded
    /// when it parses and as the raw string otherwise. `mlflow.spanInputs`/`mlflow.spanOutputs`
    /// move to the span's inputs/outputs; `mlflow.spanType` is copied to `spanType` and kept.
    ///
    /// With ``compactPayloads`` every value is copied compact, the others into one object in
    /// their order (a repeated key stays repeated: `jsonb` and ``Span/attributes`` keep its
    /// last value, as the map does without).
    private func decodeAttributes(_ span: JSONObject) throws(ShapeError) -> DecodedAttributes {
        var result = DecodedAttributes()
        guard let object = try span.optionalObject("attributes") else { return result }
        var compactOther: [UInt8] = []
        if compactPayloads {
            compactOther.reserveCapacity(128)
            compactOther.append(UInt8(ascii: "{"))
        } else {
            result.other.reserveCapacity(object.count)
        }
        for (key, raw) in object.entries {
            switch key {
            case "mlflow.spanInputs" where compactPayloads: result.compactInputs = compactAttributeValue(raw)
            case "mlflow.spanInputs": result.inputs = decodeAttributeValue(raw)
            case "mlflow.spanOutputs" where compactPayloads: result.compactOutputs = compactAttributeValue(raw)
            case "mlflow.spanOutputs": result.outputs = decodeAttributeValue(raw)
            case _ where compactPayloads:
                if key == "mlflow.spanType" { result.spanType = decodeAttributeValue(raw).stringValue }
                if compactOther.count > 1 { compactOther.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(key, into: &compactOther)
                compactOther.append(UInt8(ascii: ":"))
                appendCompactAttributeValue(raw, to: &compactOther)
            default:
                let value = decodeAttributeValue(raw)
                if key == "mlflow.spanType" { result.spanType = value.stringValue }
                result.other[key] = value
            }
        }
        if compactPayloads {
            compactOther.append(UInt8(ascii: "}"))
            result.compactOther = CompactJSON(compacted: compactOther)
        }
        return result
    }

    /// ``decodeAttributeValue(_:)`` as its compact serialization. The copier accepts exactly
    /// what the parser does, so a string that is not JSON stays a string here too.
    private func compactAttributeValue(_ raw: JSONValue) -> CompactJSON {
        var output: [UInt8] = []
        if case .string(let text) = raw { output.reserveCapacity(text.utf8.count) }
        appendCompactAttributeValue(raw, to: &output)
        return CompactJSON(compacted: output)
    }

    /// Appends ``compactAttributeValue(_:)``'s bytes to `output`.
    private func appendCompactAttributeValue(_ raw: JSONValue, to output: inout [UInt8]) {
        if case .string(let text) = raw, (try? attributeParser.appendCompactUTF8(text, to: &output)) != nil {
            return
        }
        raw.appendSerialized(to: &output)
    }

    private func decodeAttributeValue(_ raw: JSONValue) -> JSONValue {
        guard case .string(let text) = raw else { return raw }
        do throws(JSONParseError) {
            return try attributeParser.parse(text)
        } catch {
            return raw
        }
    }

    /// Span events. Their attributes are plain values (MLflow does not JSON-encode them).
    private func decodeEvents(_ span: JSONObject, timeKey: String) throws(ShapeError) -> [SpanEvent] {
        guard let elements = try span.optionalArray("events") else { return [] }
        var events: [SpanEvent] = []
        events.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            do throws(ShapeError) {
                guard case .object(let event) = element else {
                    throw ShapeError(path: "", message: "expected an event object, got \(Describe.value(element))")
                }
                let name = try event.optionalString("name") ?? ""
                let time = try event.requiredInteger(timeKey)
                var attributes: [String: JSONValue] = [:]
                if let object = try event.optionalObject("attributes") {
                    attributes.reserveCapacity(object.count)
                    for (key, value) in object.entries { attributes[key] = value }
                }
                events.append(SpanEvent(name: name, timeNanos: time, attributes: attributes))
            } catch {
                throw error.prefixed("events[\(index)]")
            }
        }
        return events
    }
}
