// OTLP/JSON (`otlp_json`), read with Assay's own JSON parser rather than SwiftProtobuf's JSON
// decoder, which expects base64 ids. The OTLP/JSON rules: lowerCamelCase field names (the
// protobuf snake_case names are accepted too), hex trace/span ids, 64-bit integers as decimal
// strings or numbers, enums as integers or names, omitted fields are defaults, `null` is a default.

import AssayCore

/// Reads an `ExportTraceServiceRequest` in OTLP/JSON form from a parsed JSON document.
struct JSONReader {
    let limits: OTLPLimits
    var checker: LimitChecker { LimitChecker(limits: limits) }

    func read(_ document: JSONValue) throws(OTLPReadError) -> [RawResourceSpans] {
        guard case .object(let root) = document else {
            throw OTLPReadError(.invalidShape, "expected a JSON object (ExportTraceServiceRequest), found \(document.typeName)")
        }
        guard let resourceSpansValue = member(root, "resourceSpans", "resource_spans") else {
            if root.isEmpty { return [] }
            throw OTLPReadError(.unsupportedFormat, "a JSON object without resourceSpans is not an OTLP trace export")
        }
        let list = try array(resourceSpansValue, path: "resourceSpans")
        var result: [RawResourceSpans] = []
        result.reserveCapacity(list.count)
        var spanCount = 0
        for (resourceIndex, element) in list.enumerated() {
            try at("resourceSpans[\(resourceIndex)]") { () throws(OTLPReadError) in
                let object = try self.object(element, path: "")
                var raw = RawResourceSpans(resourceAttributes: [], scopes: [])
                if let resource = member(object, "resource") {
                    let resourceObject = try self.object(resource, path: "resource")
                    raw.resourceAttributes = try at("resource") { () throws(OTLPReadError) in
                        try attributes(resourceObject)
                    }
                }
                let scopes = try array(member(object, "scopeSpans", "scope_spans"), path: "scopeSpans")
                for (scopeIndex, scopeElement) in scopes.enumerated() {
                    try at("scopeSpans[\(scopeIndex)]") { () throws(OTLPReadError) in
                        let scopeSpans = try self.object(scopeElement, path: "")
                        var name = ""
                        var version = ""
                        if let scopeValue = member(scopeSpans, "scope") {
                            let scope = try self.object(scopeValue, path: "scope")
                            name = try string(member(scope, "name"), path: "scope.name")
                            version = try string(member(scope, "version"), path: "scope.version")
                            try checker.checkText(name, what: "scope name")
                            try checker.checkText(version, what: "scope version")
                        }
                        let spanValues = try array(member(scopeSpans, "spans"), path: "spans")
                        spanCount += spanValues.count
                        try checker.checkSpanCount(spanCount)
                        var spans: [RawSpan] = []
                        spans.reserveCapacity(spanValues.count)
                        for (spanIndex, spanValue) in spanValues.enumerated() {
                            spans.append(try at("spans[\(spanIndex)]") { () throws(OTLPReadError) in
                                try span(spanValue)
                            })
                        }
                        raw.scopes.append(RawScopeSpans(scopeName: name, scopeVersion: version, spans: spans))
                    }
                }
                result.append(raw)
            }
        }
        return result
    }

    // MARK: Span

    private func span(_ value: JSONValue) throws(OTLPReadError) -> RawSpan {
        let object = try self.object(value, path: "")
        let traceID = try id(member(object, "traceId", "trace_id"), bytes: 16, field: "traceId")
        let spanID = try id(member(object, "spanId", "span_id"), bytes: 8, field: "spanId")
        var parent: String?
        if let parentValue = member(object, "parentSpanId", "parent_span_id"), parentValue.stringValue != "" {
            parent = try id(parentValue, bytes: 8, field: "parentSpanId", allowZero: true)
            if let hex = parent, WireValues.isAllZero(hex) { parent = nil }
        }
        let name = try string(member(object, "name"), path: "name")
        try at("name") { () throws(OTLPReadError) in try checker.checkText(name, what: "span name") }
        let traceState = try string(member(object, "traceState", "trace_state"), path: "traceState")
        try at("traceState") { () throws(OTLPReadError) in try checker.checkText(traceState, what: "trace state") }

        var statusCode = 0
        var statusMessage = ""
        if let statusValue = member(object, "status") {
            let status = try self.object(statusValue, path: "status")
            statusCode = try enumValue(member(status, "code"), names: Self.statusCodeNames, path: "status.code")
            statusMessage = try string(member(status, "message"), path: "status.message")
            try at("status.message") { () throws(OTLPReadError) in try checker.checkText(statusMessage, what: "status message") }
        }

        var events: [RawEvent] = []
        for (index, eventValue) in try array(member(object, "events"), path: "events").enumerated() {
            events.append(try at("events[\(index)]") { () throws(OTLPReadError) in
                let event = try self.object(eventValue, path: "")
                let eventName = try string(member(event, "name"), path: "name")
                try checker.checkText(eventName, what: "event name")
                return RawEvent(
                    timeNanos: try time(member(event, "timeUnixNano", "time_unix_nano"), path: "timeUnixNano"),
                    name: eventName,
                    attributes: try attributes(event))
            })
        }
        var links: [RawLink] = []
        for (index, linkValue) in try array(member(object, "links"), path: "links").enumerated() {
            links.append(try at("links[\(index)]") { () throws(OTLPReadError) in
                let link = try self.object(linkValue, path: "")
                let linkState = try string(member(link, "traceState", "trace_state"), path: "traceState")
                try checker.checkText(linkState, what: "trace state")
                return RawLink(
                    traceIDHex: try id(member(link, "traceId", "trace_id"), bytes: 16, field: "traceId"),
                    spanIDHex: try id(member(link, "spanId", "span_id"), bytes: 8, field: "spanId"),
                    traceState: linkState,
                    attributes: try attributes(link))
            })
        }

        return RawSpan(
            traceIDHex: traceID,
            spanIDHex: spanID,
            parentSpanIDHex: parent,
            traceState: traceState,
            flags: try uint32(member(object, "flags"), path: "flags"),
            name: name,
            kind: try enumValue(member(object, "kind"), names: Self.spanKindNames, path: "kind"),
            startTimeNanos: try time(member(object, "startTimeUnixNano", "start_time_unix_nano"), path: "startTimeUnixNano"),
            endTimeNanos: try time(member(object, "endTimeUnixNano", "end_time_unix_nano"), path: "endTimeUnixNano"),
            attributes: try attributes(object),
            droppedAttributesCount: try uint32(member(object, "droppedAttributesCount", "dropped_attributes_count"), path: "droppedAttributesCount"),
            events: events,
            droppedEventsCount: try uint32(member(object, "droppedEventsCount", "dropped_events_count"), path: "droppedEventsCount"),
            links: links,
            droppedLinksCount: try uint32(member(object, "droppedLinksCount", "dropped_links_count"), path: "droppedLinksCount"),
            statusCode: statusCode,
            statusMessage: statusMessage)
    }

    static let spanKindNames: [String: Int] = [
        "SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
        "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5,
    ]
    static let statusCodeNames: [String: Int] = [
        "STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2,
    ]

    // MARK: Attributes

    /// The `attributes` list of an object (resource, span, event, link).
    private func attributes(_ owner: JSONObject) throws(OTLPReadError) -> [(key: String, value: JSONValue)] {
        let list = try array(member(owner, "attributes"), path: "attributes")
        var result: [(key: String, value: JSONValue)] = []
        result.reserveCapacity(list.count)
        for (index, element) in list.enumerated() {
            result.append(try at("attributes[\(index)]") { () throws(OTLPReadError) in
                let pair = try self.object(element, path: "")
                let key = try string(member(pair, "key"), path: "key")
                try checker.checkText(key, what: "attribute key")
                var used = 0
                let value = try at("value") { () throws(OTLPReadError) in
                    try anyValue(member(pair, "value"), depth: 0, used: &used)
                }
                return (key: key, value: value)
            })
        }
        return result
    }

    /// An OTLP/JSON AnyValue (`{"stringValue": …}` etc.) → JSONValue.
    private func anyValue(_ value: JSONValue?, depth: Int, used: inout Int) throws(OTLPReadError) -> JSONValue {
        guard let value, !value.isNull else { return .null }
        guard case .object(let object) = value else {
            throw OTLPReadError(.invalidShape, "expected an AnyValue object, found \(value.typeName)")
        }
        var chosen: (key: String, value: JSONValue)?
        for entry in object.entries where !entry.value.isNull {
            guard Self.anyValueKeys.contains(entry.key) else { continue }
            if let previous = chosen, previous.key != entry.key {
                throw OTLPReadError(.invalidShape, "AnyValue has both \(previous.key) and \(entry.key)")
            }
            chosen = entry
        }
        guard let (key, inner) = chosen else { return .null }
        switch key {
        case "stringValue", "string_value":
            let text = try string(inner, path: key)
            try checker.charge(text.utf8.count, to: &used)
            return .string(text)
        case "boolValue", "bool_value":
            guard case .bool(let flag) = inner else {
                throw OTLPReadError(.invalidShape, path: key, "expected a boolean, found \(inner.typeName)")
            }
            return .bool(flag)
        case "intValue", "int_value":
            guard let number = inner.int64AcceptingDecimalString else {
                throw OTLPReadError(.invalidShape, path: key, "expected a 64-bit integer (number or decimal string), found \(inner.typeName)")
            }
            return JSONValue(number)
        case "doubleValue", "double_value":
            return WireValues.double(try double(inner, path: key))
        case "bytesValue", "bytes_value":
            let text = try string(inner, path: key)
            guard let bytes = WireValues.decodeBase64(text) else {
                throw OTLPReadError(.invalidShape, path: key, "not base64")
            }
            try checker.charge((bytes.count + 2) / 3 * 4, to: &used)
            return .string(WireValues.base64(bytes))
        case "arrayValue", "array_value":
            try checker.checkDepth(depth + 1)
            let container = try self.object(inner, path: key)
            let values = try array(member(container, "values"), path: "\(key).values")
            var elements: [JSONValue] = []
            elements.reserveCapacity(values.count)
            for (index, element) in values.enumerated() {
                elements.append(try at("\(key).values[\(index)]") { () throws(OTLPReadError) in
                    try anyValue(element, depth: depth + 1, used: &used)
                })
            }
            return .array(elements)
        default: // kvlistValue
            try checker.checkDepth(depth + 1)
            let container = try self.object(inner, path: key)
            let values = try array(member(container, "values"), path: "\(key).values")
            var entries: [JSONObject.Entry] = []
            entries.reserveCapacity(values.count)
            for (index, element) in values.enumerated() {
                entries.append(try at("\(key).values[\(index)]") { () throws(OTLPReadError) in
                    let pair = try self.object(element, path: "")
                    let pairKey = try string(member(pair, "key"), path: "key")
                    try checker.charge(pairKey.utf8.count, to: &used)
                    let pairValue = try at("value") { () throws(OTLPReadError) in
                        try anyValue(member(pair, "value"), depth: depth + 1, used: &used)
                    }
                    return (key: pairKey, value: pairValue)
                })
            }
            return .object(JSONObject(entries))
        }
    }

    private static let anyValueKeys: Set<String> = [
        "stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "bytesValue",
        "string_value", "bool_value", "int_value", "double_value", "array_value", "kvlist_value", "bytes_value",
    ]

    // MARK: Typed access

    /// A present, non-null member under its JSON name or its protobuf name.
    private func member(_ object: JSONObject, _ name: String, _ alternative: String? = nil) -> JSONValue? {
        if let value = object[name], !value.isNull { return value }
        if let alternative, let value = object[alternative], !value.isNull { return value }
        return nil
    }

    private func object(_ value: JSONValue, path: String) throws(OTLPReadError) -> JSONObject {
        guard case .object(let object) = value else {
            throw OTLPReadError(.invalidShape, path: path, "expected an object, found \(value.typeName)")
        }
        return object
    }

    /// An array; a missing member is an empty array.
    private func array(_ value: JSONValue?, path: String) throws(OTLPReadError) -> [JSONValue] {
        guard let value else { return [] }
        guard case .array(let elements) = value else {
            throw OTLPReadError(.invalidShape, path: path, "expected an array, found \(value.typeName)")
        }
        return elements
    }

    /// A string; a missing member is the empty string.
    private func string(_ value: JSONValue?, path: String) throws(OTLPReadError) -> String {
        guard let value else { return "" }
        guard case .string(let text) = value else {
            throw OTLPReadError(.invalidShape, path: path, "expected a string, found \(value.typeName)")
        }
        return text
    }

    /// A trace or span id: hex (OTLP/JSON), also base64 (protobuf JSON) by length.
    private func id(_ value: JSONValue?, bytes: Int, field: String, allowZero: Bool = false) throws(OTLPReadError) -> String {
        guard let value else { throw OTLPReadError(.invalidShape, path: field, "missing") }
        guard case .string(let text) = value else {
            throw OTLPReadError(.invalidShape, path: field, "expected a hex string, found \(value.typeName)")
        }
        let hex = bytes == 16 ? OTelIdentifier.traceIDHex(text) : OTelIdentifier.spanIDHex(text)
        guard let hex else {
            throw OTLPReadError(.invalidShape, path: field, "not a \(bytes)-byte id in hex (\(text.utf8.count) characters)")
        }
        if !allowZero, WireValues.isAllZero(hex) {
            throw OTLPReadError(.invalidShape, path: field, "all zeros (an invalid id)")
        }
        return hex
    }

    /// A fixed64 nanosecond time: a decimal string or an integral number; missing is 0.
    private func time(_ value: JSONValue?, path: String) throws(OTLPReadError) -> Int64 {
        guard let value else { return 0 }
        guard let nanos = value.int64AcceptingDecimalString, nanos >= 0 else {
            throw OTLPReadError(.invalidShape, path: path, "expected unsigned nanoseconds in Int64 range (string or number), found \(value.typeName)")
        }
        return nanos
    }

    private func uint32(_ value: JSONValue?, path: String) throws(OTLPReadError) -> UInt32 {
        guard let value else { return 0 }
        guard let number = value.int64AcceptingDecimalString, let result = UInt32(exactly: number) else {
            throw OTLPReadError(.invalidShape, path: path, "expected an unsigned 32-bit integer, found \(value.typeName)")
        }
        return result
    }

    /// An enum: its number, or its name; missing is 0.
    private func enumValue(_ value: JSONValue?, names: [String: Int], path: String) throws(OTLPReadError) -> Int {
        guard let value else { return 0 }
        if let number = value.int64Value, let result = Int(exactly: number), result >= Int(Int32.min), result <= Int(Int32.max) {
            return result
        }
        if case .string(let name) = value, let number = names[name] {
            return number
        }
        throw OTLPReadError(.invalidShape, path: path, "expected an enum number or name, found \(value.typeName)")
    }

    /// A double: a JSON number, or a string `NaN` / `Infinity` / `-Infinity` / decimal.
    private func double(_ value: JSONValue, path: String) throws(OTLPReadError) -> Double {
        switch value {
        case .number(let lexeme):
            if let number = Double(lexeme) { return number }
        case .string(let text):
            switch text {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            default:
                if text.utf8.count <= 64, let number = Double(text) { return number }
            }
        default:
            break
        }
        throw OTLPReadError(.invalidShape, path: path, "expected a number, found \(value.typeName)")
    }
}
