// Binary OTLP (`otlp_proto`): SwiftProtobuf's decoder with a message-depth limit, then a walk
// over the generated types into the raw model, checking ids and limits on the way.

import AssayCore
internal import SwiftProtobuf

#if canImport(FoundationEssentials)
internal import FoundationEssentials
#else
internal import Foundation
#endif

typealias PBRequest = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest
typealias PBAnyValue = Opentelemetry_Proto_Common_V1_AnyValue
typealias PBKeyValue = Opentelemetry_Proto_Common_V1_KeyValue
typealias PBSpan = Opentelemetry_Proto_Trace_V1_Span

/// Reads an `ExportTraceServiceRequest` in protobuf binary form.
struct ProtobufReader {
    let limits: OTLPLimits
    var checker: LimitChecker { LimitChecker(limits: limits) }

    func read(_ payload: [UInt8]) throws(OTLPReadError) -> [RawResourceSpans] {
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = limits.protobufMessageDepth
        options.discardUnknownFields = true
        let request: PBRequest
        do {
            request = try PBRequest(serializedBytes: payload, options: options)
        } catch let error as BinaryDecodingError {
            throw Self.describe(error)
        } catch {
            throw OTLPReadError(.invalidProtobuf, "not an ExportTraceServiceRequest: \(error)")
        }
        return try read(request)
    }

    static func describe(_ error: BinaryDecodingError) -> OTLPReadError {
        switch error {
        case .truncated:
            return OTLPReadError(.invalidProtobuf, "truncated message (a field runs past the end of the data)")
        case .malformedProtobuf:
            return OTLPReadError(.invalidProtobuf, "malformed protobuf (bad tag, wire type or length)")
        case .invalidUTF8:
            return OTLPReadError(.invalidProtobuf, "a string field is not valid UTF-8")
        case .trailingGarbage:
            return OTLPReadError(.invalidProtobuf, "data after the end of the message")
        case .messageDepthLimit:
            return OTLPReadError(.limitExceeded, "messages nested too deeply (maxNestingDepth)")
        default:
            return OTLPReadError(.invalidProtobuf, "not an ExportTraceServiceRequest (\(error))")
        }
    }

    func read(_ request: PBRequest) throws(OTLPReadError) -> [RawResourceSpans] {
        var result: [RawResourceSpans] = []
        result.reserveCapacity(request.resourceSpans.count)
        var spanCount = 0
        for (resourceIndex, resourceSpans) in request.resourceSpans.enumerated() {
            do throws(OTLPReadError) {
                var raw = RawResourceSpans(
                    resourceAttributes: try at("resource") { () throws(OTLPReadError) in try attributes(resourceSpans.resource.attributes) },
                    scopes: [])
                for (scopeIndex, scopeSpans) in resourceSpans.scopeSpans.enumerated() {
                    do throws(OTLPReadError) {
                        spanCount += scopeSpans.spans.count
                        try checker.checkSpanCount(spanCount)
                        let scope = scopeSpans.scope
                        try checker.checkText(scope.name, what: "scope name")
                        try checker.checkText(scope.version, what: "scope version")
                        var spans: [RawSpan] = []
                        spans.reserveCapacity(scopeSpans.spans.count)
                        for (spanIndex, span) in scopeSpans.spans.enumerated() {
                            do throws(OTLPReadError) {
                                spans.append(try read(span))
                            } catch {
                                throw error.prefixed("spans[\(spanIndex)]")
                            }
                        }
                        raw.scopes.append(RawScopeSpans(scopeName: scope.name, scopeVersion: scope.version, spans: spans))
                    } catch {
                        throw error.prefixed("scopeSpans[\(scopeIndex)]")
                    }
                }
                result.append(raw)
            } catch {
                throw error.prefixed("resourceSpans[\(resourceIndex)]")
            }
        }
        return result
    }

    private func read(_ span: PBSpan) throws(OTLPReadError) -> RawSpan {
        let traceID = try id(span.traceID, bytes: 16, field: "traceId")
        let spanID = try id(span.spanID, bytes: 8, field: "spanId")
        var parent: String? = span.parentSpanID.isEmpty ? nil : try id(span.parentSpanID, bytes: 8, field: "parentSpanId", allowZero: true)
        if let hex = parent, WireValues.isAllZero(hex) { parent = nil }
        try at("name") { () throws(OTLPReadError) in try checker.checkText(span.name, what: "span name") }
        try at("traceState") { () throws(OTLPReadError) in try checker.checkText(span.traceState, what: "trace state") }
        try at("status.message") { () throws(OTLPReadError) in try checker.checkText(span.status.message, what: "status message") }
        let start = try time(span.startTimeUnixNano, field: "startTimeUnixNano")
        let end = try time(span.endTimeUnixNano, field: "endTimeUnixNano")
        var events: [RawEvent] = []
        events.reserveCapacity(span.events.count)
        for (index, event) in span.events.enumerated() {
            do throws(OTLPReadError) {
                try checker.checkText(event.name, what: "event name")
                events.append(RawEvent(
                    timeNanos: try time(event.timeUnixNano, field: "timeUnixNano"),
                    name: event.name,
                    attributes: try attributes(event.attributes)))
            } catch {
                throw error.prefixed("events[\(index)]")
            }
        }
        var links: [RawLink] = []
        for (index, link) in span.links.enumerated() {
            do throws(OTLPReadError) {
                try checker.checkText(link.traceState, what: "trace state")
                links.append(RawLink(
                    traceIDHex: try id(link.traceID, bytes: 16, field: "traceId"),
                    spanIDHex: try id(link.spanID, bytes: 8, field: "spanId"),
                    traceState: link.traceState,
                    attributes: try attributes(link.attributes)))
            } catch {
                throw error.prefixed("links[\(index)]")
            }
        }
        return RawSpan(
            traceIDHex: traceID,
            spanIDHex: spanID,
            parentSpanIDHex: parent,
            traceState: span.traceState,
            flags: span.flags,
            name: span.name,
            kind: span.kind.rawValue,
            startTimeNanos: start,
            endTimeNanos: end,
            attributes: try attributes(span.attributes),
            droppedAttributesCount: span.droppedAttributesCount,
            events: events,
            droppedEventsCount: span.droppedEventsCount,
            links: links,
            droppedLinksCount: span.droppedLinksCount,
            statusCode: span.status.code.rawValue,
            statusMessage: span.status.message)
    }

    private func id(_ data: Data, bytes: Int, field: String, allowZero: Bool = false) throws(OTLPReadError) -> String {
        guard data.count == bytes else {
            throw OTLPReadError(.invalidShape, path: field, "\(data.count) bytes, expected \(bytes)")
        }
        let hex = OTelIdentifier.hexString(data)
        if !allowZero, WireValues.isAllZero(hex) {
            throw OTLPReadError(.invalidShape, path: field, "all zeros (an invalid id)")
        }
        return hex
    }

    private func time(_ nanos: UInt64, field: String) throws(OTLPReadError) -> Int64 {
        guard let value = Int64(exactly: nanos) else {
            throw OTLPReadError(.invalidShape, path: field, "\(nanos) is past the year 2262 (over Int64)")
        }
        return value
    }

    private func attributes(_ list: [PBKeyValue]) throws(OTLPReadError) -> [(key: String, value: JSONValue)] {
        var result: [(key: String, value: JSONValue)] = []
        result.reserveCapacity(list.count)
        for (index, pair) in list.enumerated() {
            do throws(OTLPReadError) {
                var used = 0
                try checker.checkText(pair.key, what: "attribute key")
                let value = try convert(pair.value, depth: 0, used: &used)
                result.append((key: pair.key, value: value))
            } catch {
                throw error.prefixed("attributes[\(index)]")
            }
        }
        return result
    }

    /// AnyValue → JSONValue (see ``TraceFragment`` for the mapping), charging string sizes to `used`.
    private func convert(_ value: PBAnyValue, depth: Int, used: inout Int) throws(OTLPReadError) -> JSONValue {
        switch value.value {
        case nil:
            return .null
        case .stringValue(let text)?:
            try checker.charge(text.utf8.count, to: &used)
            return .string(text)
        case .boolValue(let flag)?:
            return .bool(flag)
        case .intValue(let number)?:
            return JSONValue(number)
        case .doubleValue(let number)?:
            return WireValues.double(number)
        case .bytesValue(let data)?:
            try checker.charge((data.count + 2) / 3 * 4, to: &used)
            return .string(WireValues.base64(data))
        case .arrayValue(let array)?:
            try checker.checkDepth(depth + 1)
            var elements: [JSONValue] = []
            elements.reserveCapacity(array.values.count)
            for element in array.values {
                elements.append(try convert(element, depth: depth + 1, used: &used))
            }
            return .array(elements)
        case .kvlistValue(let list)?:
            try checker.checkDepth(depth + 1)
            var entries: [JSONObject.Entry] = []
            entries.reserveCapacity(list.values.count)
            for pair in list.values {
                try checker.charge(pair.key.utf8.count, to: &used)
                entries.append((key: pair.key, value: try convert(pair.value, depth: depth + 1, used: &used)))
            }
            return .object(JSONObject(entries))
        }
    }
}

