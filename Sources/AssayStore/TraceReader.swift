import AssayCore
import AssayOTLP
import Postgres

/// Reads stored traces back into the domain model (for scoring), with their spans.
public enum TraceReader {
    /// A stored trace with what scoring needs besides the trace itself.
    public struct StoredTrace: Sendable {
        public var trace: Trace
        public var rho: Double
        /// Stored after its window closed.
        public var arrivedLate: Bool
    }

    /// Loads the traces with these ids (missing ids are skipped), each with all its spans.
    /// `closedAt` is the window's close time as epoch microseconds, for the late flag.
    public static func load(traceIDs: [String], windowClosedAtMicros: Int64, on connection: PostgresConnection) throws -> [StoredTrace] {
        guard !traceIDs.isEmpty else { return [] }
        let ids = PostgresArray.text(traceIDs)
        let spansByTrace = try loadSpans(traceIDs: traceIDs, on: connection)
        // OTLP traces are rebuilt from all their spans: spans that arrived after the traces row
        // count, and the root's request/response are lifted from its children as at assembly.
        var resources: [String: [String: JSONValue]] = [:]
        for row in try connection.query("SELECT trace_id, resource_attributes::text FROM trace_assembly WHERE trace_id = ANY($1::text[])", [.text(ids)]) {
            resources[try row.string(0)] = objectMap(parseJSON(try row.string(1)))
        }
        var result: [StoredTrace] = []
        for row in try connection.query(
            """
            SELECT trace_id, format, request_time_ns, execution_duration_ms, state, client_request_id,
                   request_preview, response_preview, tags::text, metadata::text, rho,
                   (extract(epoch FROM ingested_at) * 1000000)::bigint > $2
            FROM traces WHERE trace_id = ANY($1::text[])
            """, [.text(ids), .text(String(windowClosedAtMicros))]) {
            let traceID = try row.string(0)
            let format = TraceFormat(rawValue: try row.string(1)) ?? .mlflow3
            var trace: Trace
            if format == .otlp, let resource = resources[traceID] {
                trace = OTLPTraceBuilder.build(traceIDHex: Trace.canonicalTraceID(for: traceID), spans: spansByTrace[traceID] ?? [], resourceAttributes: resource)
                trace.traceID = traceID
            } else {
                trace = Trace(
                    traceID: traceID,
                    format: format,
                    requestTimeNanos: try row.int64(2),
                    executionDurationMillis: try row.optionalInt64(3),
                    state: TraceState(rawValue: try row.string(4)) ?? .unspecified,
                    clientRequestID: try row.optionalString(5),
                    requestPreview: try row.optionalString(6),
                    responsePreview: try row.optionalString(7),
                    tags: stringMap(parseJSON(try row.string(8))),
                    metadata: stringMap(parseJSON(try row.string(9))),
                    spans: spansByTrace[traceID] ?? [])
            }
            result.append(StoredTrace(trace: trace, rho: try row.double(10), arrivedLate: try row.bool(11)))
        }
        return result
    }

    /// The stored spans of these traces, in start order.
    public static func loadSpans(traceIDs: [String], on connection: PostgresConnection) throws -> [String: [Span]] {
        guard !traceIDs.isEmpty else { return [:] }
        var spansByTrace: [String: [Span]] = [:]
        for row in try connection.query(
            """
            SELECT trace_id, span_id, parent_span_id, name, span_type, start_time_ns, end_time_ns, status_code,
                   status_message, inputs::text, outputs::text, attributes::text, events::text
            FROM spans WHERE trace_id = ANY($1::text[]) ORDER BY trace_id, start_time_ns, span_id
            """, [.text(PostgresArray.text(traceIDs))]) {
            let span = Span(
                spanID: try row.string(1),
                parentSpanID: try row.optionalString(2),
                name: try row.string(3),
                spanType: try row.optionalString(4),
                startTimeNanos: try row.int64(5),
                endTimeNanos: try row.optionalInt64(6),
                status: SpanStatus(code: SpanStatus.Code(rawValue: try row.string(7)) ?? .unset, message: try row.string(8)),
                inputs: try row.optionalString(9).map(parseJSON),
                outputs: try row.optionalString(10).map(parseJSON),
                attributes: objectMap(parseJSON(try row.string(11))),
                events: events(parseJSON(try row.string(12))))
            spansByTrace[try row.string(0), default: []].append(span)
        }
        return spansByTrace
    }

    /// JSON written by us into jsonb; PostgreSQL hands it back valid, so a failure here means
    /// the database was edited by hand: keep the text rather than fail the whole window.
    static func parseJSON(_ text: String) -> JSONValue {
        (try? JSONParser().parse(Array(text.utf8))) ?? .string(text)
    }

    static func objectMap(_ value: JSONValue) -> [String: JSONValue] {
        guard case .object(let object) = value else { return [:] }
        var map: [String: JSONValue] = [:]
        for entry in object.entries { map[entry.key] = entry.value }
        return map
    }

    static func stringMap(_ value: JSONValue) -> [String: String] {
        objectMap(value).compactMapValues(\.stringValue)
    }

    static func events(_ value: JSONValue) -> [SpanEvent] {
        guard case .array(let items) = value else { return [] }
        return items.compactMap { item in
            guard let name = item["name"]?.stringValue else { return nil }
            return SpanEvent(name: name, timeNanos: item["time_unix_nano"]?.int64Value ?? 0, attributes: objectMap(item["attributes"] ?? .null))
        }
    }
}

/// PostgreSQL array literals for bound parameters (`$1::text[]`), quoted element by element.
public enum PostgresArray {
    /// `{"a","b"}` with `"` and `\` escaped; NUL is not representable and is replaced.
    public static func text(_ values: [String]) -> String {
        // Built as UTF-8 bytes: appending scalar by scalar to a String was 5% of a scoring
        // replica's CPU (a chunk's ids, several thousand per statement).
        var output: [UInt8] = [UInt8(ascii: "{")]
        output.reserveCapacity(values.reduce(2) { $0 + $1.utf8.count + 3 })
        var element: [UInt8] = []
        for (index, value) in values.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            output.append(UInt8(ascii: "\""))
            element.removeAll(keepingCapacity: true)
            value.appendSanitizedUTF8(to: &element)
            for byte in element {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { output.append(UInt8(ascii: "\\")) }
                output.append(byte)
            }
            output.append(UInt8(ascii: "\""))
        }
        output.append(UInt8(ascii: "}"))
        return String(decoding: output, as: UTF8.self)
    }

    /// `{1,2,3}`.
    public static func integers(_ values: [Int64]) -> String {
        "{" + values.map(String.init).joined(separator: ",") + "}"
    }
}
