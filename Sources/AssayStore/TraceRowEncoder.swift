import AssayCore
import Postgres

/// Turns decoded traces into COPY rows: text rows for the staging tables (column order of
/// `IngestStore.createStageTables`), and binary tuples for the direct COPY into `traces` and
/// `spans`. Every text value is made NUL-free and every JSON value is written so that
/// `jsonb` accepts it.
public enum TraceRowEncoder {
    /// The trace columns, in order: trace_id, canonical_trace_id, format, request_time_ns,
    /// execution_duration_ms, state, client_request_id, request_preview, response_preview,
    /// tags, metadata, span_count, root_span_id, source_topic, source_partition,
    /// source_offset, deliveries, rho.
    public static let traceColumns = [
        "trace_id", "canonical_trace_id", "format", "request_time_ns", "execution_duration_ms", "state", "client_request_id",
        "request_preview", "response_preview", "tags", "metadata", "span_count", "root_span_id", "source_topic",
        "source_partition", "source_offset", "deliveries", "rho",
    ]
    /// The span columns, in order (as the `spans` table).
    public static let spanColumns = [
        "trace_id", "span_id", "parent_span_id", "name", "span_type", "start_time_ns", "end_time_ns", "status_code",
        "status_message", "inputs", "outputs", "attributes", "events",
    ]

    public static func traceRow(_ trace: Trace, source: SourcePosition, deliveries: Int) -> [String?] {
        [
            trace.traceID.sanitizedForPostgres,
            trace.canonicalTraceID.sanitizedForPostgres,
            trace.format.rawValue,
            String(trace.requestTimeNanos),
            trace.executionDurationMillis.map { String($0) },
            trace.state.rawValue,
            trace.clientRequestID?.sanitizedForPostgres,
            trace.requestPreview?.sanitizedForPostgres,
            trace.responsePreview?.sanitizedForPostgres,
            objectJSON(trace.tags),
            objectJSON(trace.metadata),
            String(trace.spans.count),
            trace.rootSpanIndex.map { trace.spans[$0].spanID.sanitizedForPostgres },
            source.partition.topic,
            String(source.partition.partition),
            String(source.offset),
            String(deliveries),
            String(Sampler.rho(canonicalTraceID: trace.canonicalTraceID)),
        ]
    }

    /// `request_time` of the `traces` table: the event time truncated to microseconds, as
    /// the staging merge computes it (`timestamptz 'epoch' + request_time_ns / 1000 µs`).
    public static func requestTimeText(_ trace: Trace) -> String {
        TimeFormatting.rfc3339(nanos: (trace.requestTimeNanos / 1000) * 1000, fraction: .shortestExact)
    }

    /// ``traceRow(_:source:deliveries:)`` and then `request_time`, as one tuple of PostgreSQL's
    /// binary COPY format (see `CopyBinaryEncoder`) appended to `buffer`, written straight from
    /// the trace. The server stores the same values as from the text rows (a test holds the
    /// two to each other), for less work on both sides: no escaping or field strings here,
    /// no parsing of numbers and times there.
    public static func appendBinaryTraceRow(_ trace: Trace, source: SourcePosition, deliveries: Int, to buffer: inout [UInt8]) {
        typealias Binary = CopyBinaryEncoder
        Binary.beginTuple(fieldCount: Int16(traceColumns.count + 1), in: &buffer)
        appendText(trace.traceID, to: &buffer)
        appendText(trace.canonicalTraceID, to: &buffer)
        appendText(trace.format.rawValue, to: &buffer)
        Binary.appendInt64(trace.requestTimeNanos, to: &buffer)
        if let millis = trace.executionDurationMillis { Binary.appendInt64(millis, to: &buffer) } else { Binary.appendNull(to: &buffer) }
        appendText(trace.state.rawValue, to: &buffer)
        appendText(trace.clientRequestID, to: &buffer)
        appendText(trace.requestPreview, to: &buffer)
        appendText(trace.responsePreview, to: &buffer)
        CopyBinaryEncoder.appendJSONB(to: &buffer) { trace.tags.appendSerializedJSONObject(to: &$0) }
        CopyBinaryEncoder.appendJSONB(to: &buffer) { trace.metadata.appendSerializedJSONObject(to: &$0) }
        // Decode limits keep span counts and deliveries far below Int32.max.
        Binary.appendInt32(Int32(clamping: trace.spans.count), to: &buffer)
        appendText(trace.rootSpanIndex.map { trace.spans[$0].spanID }, to: &buffer)
        appendText(source.partition.topic, to: &buffer)
        Binary.appendInt32(source.partition.partition, to: &buffer)
        Binary.appendInt64(source.offset, to: &buffer)
        Binary.appendInt32(Int32(clamping: deliveries), to: &buffer)
        Binary.appendFloat8(Sampler.rho(canonicalTraceID: trace.canonicalTraceID), to: &buffer)
        // As requestTimeText: the event time truncated to microseconds.
        Binary.appendTimestamp(microsSinceUnixEpoch: trace.requestTimeNanos / 1000, to: &buffer)
    }

    /// ``spanRow(_:traceID:)`` as one binary COPY tuple appended to `buffer` (as
    /// ``appendBinaryTraceRow(_:source:deliveries:to:)`` does for traces).
    public static func appendBinarySpanRow(_ span: Span, traceID: String, to buffer: inout [UInt8]) {
        typealias Binary = CopyBinaryEncoder
        Binary.beginTuple(fieldCount: Int16(spanColumns.count), in: &buffer)
        appendText(traceID, to: &buffer)
        appendText(span.spanID, to: &buffer)
        appendText(span.parentSpanID, to: &buffer)
        appendText(span.name, to: &buffer)
        appendText(span.spanType, to: &buffer)
        Binary.appendInt64(span.startTimeNanos, to: &buffer)
        if let end = span.endTimeNanos { Binary.appendInt64(end, to: &buffer) } else { Binary.appendNull(to: &buffer) }
        appendText(span.status.code.rawValue, to: &buffer)
        appendText(span.status.message, to: &buffer)
        appendJSONB(span.compactInputs, or: span.inputs, to: &buffer)
        appendJSONB(span.compactOutputs, or: span.outputs, to: &buffer)
        if let compact = span.compactAttributes {
            CopyBinaryEncoder.appendJSONB(to: &buffer) { $0.append(contentsOf: compact.utf8) }
        } else {
            CopyBinaryEncoder.appendJSONB(to: &buffer) { span.attributes.appendSerializedJSONObject(to: &$0) }
        }
        appendJSONB(eventsArray(span.events), to: &buffer)
    }

    /// A `text` field, NUL-free (U+FFFD, as ``Swift/String/sanitizedForPostgres``); nil is NULL.
    private static func appendText(_ value: String?, to buffer: inout [UInt8]) {
        guard let value else { return CopyBinaryEncoder.appendNull(to: &buffer) }
        CopyBinaryEncoder.appendField(to: &buffer) { value.appendSanitizedUTF8(to: &$0) }
    }

    /// A `jsonb` field (the writer makes strings and keys NUL-free); nil is NULL.
    private static func appendJSONB(_ value: JSONValue?, to buffer: inout [UInt8]) {
        guard let value else { return CopyBinaryEncoder.appendNull(to: &buffer) }
        CopyBinaryEncoder.appendJSONB(to: &buffer) { value.appendSerialized(to: &$0) }
    }

    /// A `jsonb` field from `compact`'s bytes (already what the writer would write) when the
    /// span holds it so, else from `value`.
    private static func appendJSONB(_ compact: CompactJSON?, or value: @autoclosure () -> JSONValue?, to buffer: inout [UInt8]) {
        guard let compact else { return appendJSONB(value(), to: &buffer) }
        CopyBinaryEncoder.appendJSONB(to: &buffer) { $0.append(contentsOf: compact.utf8) }
    }

    /// A `jsonb` column's text in a text row, as ``appendJSONB(_:or:to:)`` chooses.
    private static func jsonText(_ compact: CompactJSON?, or value: @autoclosure () -> JSONValue?) -> String? {
        guard let compact else { return value()?.serialized() }
        return String(decoding: compact.utf8, as: UTF8.self)
    }

    public static func spanRow(_ span: Span, traceID: String) -> [String?] {
        [
            traceID.sanitizedForPostgres,
            span.spanID.sanitizedForPostgres,
            span.parentSpanID?.sanitizedForPostgres,
            span.name.sanitizedForPostgres,
            span.spanType?.sanitizedForPostgres,
            String(span.startTimeNanos),
            span.endTimeNanos.map { String($0) },
            span.status.code.rawValue,
            span.status.message.sanitizedForPostgres,
            jsonText(span.compactInputs, or: span.inputs),
            jsonText(span.compactOutputs, or: span.outputs),
            span.compactAttributes.map { String(decoding: $0.utf8, as: UTF8.self) } ?? objectJSON(span.attributes),
            eventsArray(span.events).serialized(),
        ]
    }

    /// An attribute map as JSON text, keys sorted (the bytes the binary rows hold).
    static func objectJSON(_ map: [String: JSONValue]) -> String {
        jsonText { map.appendSerializedJSONObject(to: &$0) }
    }

    /// Tags or metadata as JSON text, keys sorted (the bytes the binary rows hold).
    static func objectJSON(_ map: [String: String]) -> String {
        jsonText { map.appendSerializedJSONObject(to: &$0) }
    }

    private static func jsonText(_ write: (inout [UInt8]) -> Void) -> String {
        var bytes: [UInt8] = []
        write(&bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The `events` column: name, time and attributes (keys sorted) per event.
    static func eventsArray(_ events: [SpanEvent]) -> JSONValue {
        .array(events.map { event in
            .object(JSONObject([
                (key: "name", value: .string(event.name)),
                (key: "time_unix_nano", value: JSONValue(event.timeNanos)),
                (key: "attributes", value: .object(sortedObject(event.attributes))),
            ]))
        })
    }

    private static func sortedObject(_ map: [String: JSONValue]) -> JSONObject {
        JSONObject(map.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) })
    }
}
