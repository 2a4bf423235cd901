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
            stringMapJSON(trace.tags),
            stringMapJSON(trace.metadata),
            String(trace.spans.count),
            trace.rootSpan?.spanID,
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
            JSONValue.array(span.events.map { event in
                .object(JSONObject([
                    (key: "name", value: .string(event.name)),
                    (key: "time_unix_nano", value: JSONValue(event.timeNanos)),
                    (key: "attributes", value: .object(sortedObject(event.attributes))),
                ]))
            }).serialized(),
        ]
    }

    static func stringMapJSON(_ map: [String: String]) -> String {
        JSONValue.object(JSONObject(map.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.string($0.value)) })).serialized()
    }

    static func objectJSON(_ map: [String: JSONValue]) -> String {
        JSONValue.object(sortedObject(map)).serialized()
    }

    private static func sortedObject(_ map: [String: JSONValue]) -> JSONObject {
        JSONObject(map.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) })
    }
}
