import AssayCore

/// Turns decoded traces into rows for the COPY staging tables (column order of
/// `IngestStore.createStageTables`). Every text value is made NUL-free and every JSON
/// value is written so that `jsonb` accepts it.
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
            stringMapObject(trace.tags).serialized(),
            stringMapObject(trace.metadata).serialized(),
            String(trace.spans.count),
            trace.rootSpan?.spanID.sanitizedForPostgres,
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

    /// ``traceRow(_:source:deliveries:)`` and then ``requestTimeText(_:)``, as one COPY text
    /// row appended to `buffer`: the bytes `CopyTextEncoder.appendRow` makes of those fields,
    /// written straight from the trace, without a string per field (most of the cost of
    /// encoding at ingest, where every trace is encoded once).
    public static func appendTraceRow(_ trace: Trace, source: SourcePosition, deliveries: Int, to buffer: inout [UInt8]) {
        var row = CopyRow()
        swap(&row.buffer, &buffer)  // moved, not shared: a shared buffer is copied on append
        row.text(trace.traceID)
        row.text(trace.canonicalTraceID)
        row.text(trace.format.rawValue)
        row.integer(trace.requestTimeNanos)
        row.integer(trace.executionDurationMillis)
        row.text(trace.state.rawValue)
        row.text(trace.clientRequestID)
        row.text(trace.requestPreview)
        row.text(trace.responsePreview)
        row.json(stringMapObject(trace.tags))
        row.json(stringMapObject(trace.metadata))
        row.integer(trace.spans.count)
        row.text(trace.rootSpan?.spanID)
        row.text(source.partition.topic)
        row.integer(source.partition.partition)
        row.integer(source.offset)
        row.integer(deliveries)
        row.text(String(Sampler.rho(canonicalTraceID: trace.canonicalTraceID)))
        row.text(requestTimeText(trace))
        row.end()
        swap(&row.buffer, &buffer)
    }

    /// ``spanRow(_:traceID:)`` as one COPY text row appended to `buffer` (as
    /// ``appendTraceRow(_:source:deliveries:to:)`` does for traces).
    public static func appendSpanRow(_ span: Span, traceID: String, to buffer: inout [UInt8]) {
        var row = CopyRow()
        swap(&row.buffer, &buffer)  // moved, not shared: a shared buffer is copied on append
        row.text(traceID)
        row.text(span.spanID)
        row.text(span.parentSpanID)
        row.text(span.name)
        row.text(span.spanType)
        row.integer(span.startTimeNanos)
        row.integer(span.endTimeNanos)
        row.text(span.status.code.rawValue)
        row.text(span.status.message)
        row.json(span.inputs)
        row.json(span.outputs)
        row.json(.object(sortedObject(span.attributes)))
        row.json(eventsArray(span.events))
        row.end()
        swap(&row.buffer, &buffer)
    }

    /// One row of COPY text being appended: fields separated by tabs, `\N` for NULL, text
    /// made NUL-free (U+FFFD, as ``Swift/String/sanitizedForPostgres``) and escaped.
    private struct CopyRow {
        var buffer: [UInt8] = []
        var fields = 0

        private mutating func separate() {
            if fields > 0 { buffer.append(UInt8(ascii: "\t")) }
            fields += 1
        }

        private mutating func null() {
            buffer.append(UInt8(ascii: "\\"))
            buffer.append(UInt8(ascii: "N"))
        }

        mutating func text(_ value: String?) {
            separate()
            guard var value else { return null() }
            value.withUTF8 { utf8 in
                var runStart = 0
                for (index, byte) in utf8.enumerated() {
                    let escaped: UInt8
                    switch byte {
                    case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
                    case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
                    case UInt8(ascii: "\r"): escaped = UInt8(ascii: "r")
                    case UInt8(ascii: "\t"): escaped = UInt8(ascii: "t")
                    case 0: escaped = 0
                    default: continue
                    }
                    buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                    if escaped == 0 {
                        buffer.append(contentsOf: [0xEF, 0xBF, 0xBD])  // U+FFFD for NUL
                    } else {
                        buffer.append(UInt8(ascii: "\\"))
                        buffer.append(escaped)
                    }
                    runStart = index + 1
                }
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
            }
        }

        mutating func integer<Value: BinaryInteger>(_ value: Value?) {
            separate()
            guard let value else { return null() }
            buffer.append(contentsOf: String(value).utf8)
        }

        mutating func json(_ value: JSONValue?) {
            separate()
            guard let value else { return null() }
            value.appendCopyText(to: &buffer)
        }

        mutating func end() {
            buffer.append(UInt8(ascii: "\n"))
        }
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
            span.inputs?.serialized(),
            span.outputs?.serialized(),
            objectJSON(span.attributes),
            eventsArray(span.events).serialized(),
        ]
    }

    /// An attribute map as JSON text, keys sorted.
    static func objectJSON(_ map: [String: JSONValue]) -> String {
        JSONValue.object(sortedObject(map)).serialized()
    }

    /// Tags or metadata as a JSON object, keys sorted.
    static func stringMapObject(_ map: [String: String]) -> JSONValue {
        .object(JSONObject(map.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.string($0.value)) }))
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
