import AssayCore
import AssayStore
import Postgres

/// The read-only queries behind the dashboard, its JSON endpoints and the `assay windows` /
/// `assay trace` reports.
///
/// Every method runs on a connection whose `search_path` is Assay's schema (see
/// ``AssayDatabase/configuration(url:schema:applicationName:)``), so table names are unqualified.
/// Text that can be large (span inputs and outputs, rationales, previews, dead-letter details)
/// is cut in SQL and again here to a byte budget, and flagged as truncated.
public struct DashboardStore: Sendable {
    /// The schema of Assay's tables (for the monitor document).
    public let schema: SchemaName
    /// The traces topic, whose partitions make the watermark.
    public let tracesTopic: String
    /// The idle timeout assumed when computing the watermark (the scoring service's
    /// `--idle-timeout-seconds`, 60 s by default).
    public let idleTimeoutNanos: Int64

    /// Most windows one request returns.
    public static let maxWindows = 500
    /// Windows listed when no limit is given.
    public static let defaultWindows = 20
    /// Byte budget for a span's inputs, outputs and attributes (each).
    public static let spanTextBytes = 2048
    /// Byte budget for previews, rationales and error messages.
    public static let shortTextBytes = 1024
    /// Byte budget for one tag or metadata value.
    public static let mapValueBytes = 256
    /// Tags or metadata entries shown per trace.
    public static let maxMapEntries = 64
    /// Event names shown per span.
    public static let maxEventNames = 20
    /// Spans shown per trace by default, and at most.
    public static let defaultMaxSpans = 500
    public static let maxSpansLimit = 5000
    /// Latest dead letters shown.
    public static let latestDeadLetters = 10

    public init(schema: SchemaName, tracesTopic: String = "traces", idleTimeoutNanos: Int64 = 60_000_000_000) {
        self.schema = schema
        self.tracesTopic = tracesTopic
        self.idleTimeoutNanos = idleTimeoutNanos
    }

    // MARK: - Windows

    /// The newest `limit` closed windows, newest first, each with its scorers' summaries.
    public func windows(limit: Int, on connection: PostgresConnection) throws -> [DashboardWindow] {
        let limit = min(max(1, limit), Self.maxWindows)
        let rows = try connection.query("\(Self.windowColumns) WHERE w.state <> 'open' ORDER BY w.window_start_ns DESC LIMIT $1", [.text(String(limit))])
        return try attachSummaries(rows.map(Self.window), on: connection)
    }

    /// One window with its summaries, or nil when no such window was closed.
    public func window(startNanos: Int64, on connection: PostgresConnection) throws -> DashboardWindow? {
        let rows = try connection.query("\(Self.windowColumns) WHERE w.window_start_ns = $1 AND w.state <> 'open'", [.text(String(startNanos))])
        return try attachSummaries(rows.map(Self.window), on: connection).first
    }

    /// One window with the traces it sampled (those with an assessment of the window) that match
    /// `query`, by request time; nil when no such window was closed.
    public func windowDetail(startNanos: Int64, query: SampledTraceQuery, on connection: PostgresConnection) throws -> WindowDetail? {
        guard let window = try window(startNanos: startNanos, on: connection) else { return nil }
        let limit = min(max(1, query.limit), SampledTraceQuery.maxLimit)
        let offset = max(0, query.offset)
        let filter: [PostgresValue] = [
            .text(String(startNanos)),
            query.scorer.map { .text($0.sanitizedForPostgres) } ?? .null,
            query.outcome.map { .text($0.sanitizedForPostgres) } ?? .null,
        ]
        let matching = """
            SELECT DISTINCT trace_id FROM assessments
            WHERE window_start_ns = $1 AND ($2::text IS NULL OR scorer_name = $2) AND ($3::text IS NULL OR outcome = $3)
            """
        let total = try connection.query("SELECT count(*) FROM (\(matching)) m", filter)[0].int(0)
        let traceRows = try connection.query(
            """
            SELECT t.trace_id, t.request_time_ns, t.state, t.execution_duration_ms,
                   left(t.request_preview, 1100), octet_length(t.request_preview),
                   left(t.response_preview, 1100), octet_length(t.response_preview), t.late
            FROM traces t WHERE t.trace_id IN (\(matching))
            ORDER BY t.request_time_ns, t.trace_id LIMIT $4 OFFSET $5
            """, filter + [.text(String(limit)), .text(String(offset))])
        var traces: [SampledTrace] = try traceRows.map { row in
            SampledTrace(
                traceID: try row.string(0), requestTimeNanos: try row.int64(1), state: try row.string(2), durationMillis: try row.optionalInt64(3),
                requestPreview: try Self.truncated(row, text: 4, bytes: 5, budget: Self.shortTextBytes),
                responsePreview: try Self.truncated(row, text: 6, bytes: 7, budget: Self.shortTextBytes),
                late: try row.bool(8), assessments: [])
        }
        if !traces.isEmpty {
            let rows = try connection.query(
                "\(Self.assessmentColumns) WHERE window_start_ns = $1 AND trace_id = ANY($2::text[]) ORDER BY trace_id, scorer_name, span_id NULLS FIRST, assessment_id",
                [.text(String(startNanos)), .text(PostgresArray.text(traces.map(\.traceID)))])
            var byTrace: [String: [DashboardAssessment]] = [:]
            for row in rows {
                let assessment = try Self.assessment(row)
                byTrace[assessment.traceID, default: []].append(assessment)
            }
            for index in traces.indices { traces[index].assessments = byTrace[traces[index].traceID] ?? [] }
        }
        var applied = query
        applied.limit = limit
        applied.offset = offset
        return WindowDetail(window: window, query: applied, matchingTraces: total, traces: traces)
    }

    /// Open windows (rows made by scoring ahead of the close) are not listed: a window is
    /// shown once it has closed.
    static let windowColumns = """
        SELECT w.window_start_ns, w.window_end_ns, w.config_version, w.state, w.late_traces,
               (extract(epoch FROM w.closed_at) * 1000)::bigint, (extract(epoch FROM w.scored_at) * 1000)::bigint,
               (SELECT count(*) FROM traces t WHERE t.request_time_ns >= w.window_start_ns AND t.request_time_ns < w.window_end_ns)
        FROM windows w
        """

    static func window(_ row: PostgresRow) throws -> DashboardWindow {
        DashboardWindow(
            startNanos: try row.int64(0), endNanos: try row.int64(1), configVersion: try row.int64(2), state: try row.string(3),
            closedAtMillis: try row.int64(5), scoredAtMillis: try row.optionalInt64(6), traces: try row.int(7), lateTraces: try row.int(4),
            scorers: [])
    }

    private func attachSummaries(_ windows: [DashboardWindow], on connection: PostgresConnection) throws -> [DashboardWindow] {
        guard !windows.isEmpty else { return [] }
        let rows = try connection.query(
            """
            SELECT window_start_ns, window_end_ns, scorer_name, config_version, revision, eligible, filtered_out, sampled_out,
                   budget_skipped, not_applicable, errored, scored, passed, late_scored, document
            FROM window_summaries WHERE window_start_ns = ANY($1::bigint[]) ORDER BY window_start_ns, scorer_name
            """, [.text(PostgresArray.integers(windows.map(\.startNanos)))])
        var byWindow: [Int64: [WindowScorerSummary]] = [:]
        for row in rows {
            let document = try row.optionalString(14).flatMap { try? JSONParser().parse(Array($0.utf8)) }
            var tokens: TokenUsage?
            if let input = document?["tokens"]?["input"]?.int64Value, let output = document?["tokens"]?["output"]?.int64Value {
                tokens = TokenUsage(inputTokens: input, outputTokens: output)
            }
            let summary = WindowScorerSummary(
                windowStartNanos: try row.int64(0), windowEndNanos: try row.int64(1), scorerName: try row.string(2),
                configVersion: try row.int64(3), revision: try row.int(4), eligible: try row.int(5), filteredOut: try row.int(6),
                sampledOut: try row.int(7), budgetSkipped: try row.int(8), notApplicable: try row.int(9), errored: try row.int(10),
                scored: try row.int(11), passed: try row.int(12), lateScored: try row.int(13),
                judgeLatencyP50Millis: document?["judge_latency_p50_ms"]?.doubleValue,
                judgeLatencyP95Millis: document?["judge_latency_p95_ms"]?.doubleValue,
                tokens: tokens)
            byWindow[summary.windowStartNanos, default: []].append(summary)
        }
        return windows.map { window in
            var window = window
            window.scorers = byWindow[window.startNanos] ?? []
            return window
        }
    }

    // MARK: - Traces

    /// One stored trace with its span tree (at most `maxSpans` spans, earliest first) and all
    /// its assessments; nil when no trace with this id is stored.
    public func trace(id: String, maxSpans: Int = Self.defaultMaxSpans, on connection: PostgresConnection) throws -> TraceDetail? {
        let id = id.sanitizedForPostgres
        let rows = try connection.query(
            """
            SELECT trace_id, canonical_trace_id, format, request_time_ns, execution_duration_ms, state, client_request_id,
                   left(request_preview, 1100), octet_length(request_preview), left(response_preview, 1100), octet_length(response_preview),
                   tags::text, metadata::text, span_count, root_span_id, source_topic, source_partition, source_offset, deliveries,
                   (extract(epoch FROM ingested_at) * 1000)::bigint, (extract(epoch FROM scored_at) * 1000)::bigint, late,
                   updated_after_scoring, (SELECT count(*) FROM spans s WHERE s.trace_id = traces.trace_id)
            FROM traces WHERE trace_id = $1
            """, [.text(id)])
        guard let row = rows.first else { return nil }
        let limit = min(max(1, maxSpans), Self.maxSpansLimit)
        let budget = Self.spanTextBytes + 8
        let spanRows = try connection.query(
            """
            SELECT span_id, parent_span_id, name, span_type, start_time_ns, end_time_ns, status_code, left(status_message, 1100),
                   octet_length(status_message), left(inputs::text, \(budget)), octet_length(inputs::text),
                   left(outputs::text, \(budget)), octet_length(outputs::text), left(attributes::text, \(budget)),
                   octet_length(attributes::text),
                   (SELECT coalesce(array_to_json(array_agg(e->>'name'))::text, '[]')
                    FROM (SELECT e FROM jsonb_array_elements(CASE WHEN jsonb_typeof(events) = 'array' THEN events ELSE '[]'::jsonb END) e
                          LIMIT \(Self.maxEventNames)) x)
            FROM spans WHERE trace_id = $1 ORDER BY start_time_ns, span_id LIMIT $2
            """, [.text(id), .text(String(limit))])
        var flat: [SpanNode] = []
        for span in spanRows {
            let events = (try? JSONParser().parse(Array(try span.string(15).utf8)))?.arrayValue ?? []
            flat.append(SpanNode(
                spanID: try span.string(0), parentSpanID: try span.optionalString(1), depth: 0, name: try span.string(2),
                spanType: try span.optionalString(3), startNanos: try span.int64(4), endNanos: try span.optionalInt64(5),
                statusCode: try span.string(6),
                statusMessage: try Self.truncated(span, text: 7, bytes: 8, budget: Self.shortTextBytes).flatMap { $0.text.isEmpty ? nil : $0 },
                inputs: try Self.truncated(span, text: 9, bytes: 10, budget: Self.spanTextBytes),
                outputs: try Self.truncated(span, text: 11, bytes: 12, budget: Self.spanTextBytes),
                attributes: try Self.truncated(span, text: 13, bytes: 14, budget: Self.spanTextBytes).flatMap { $0.text == "{}" ? nil : $0 },
                events: events.compactMap(\.stringValue).map { TruncatedText($0, maxBytes: 200).text }))
        }
        let assessments = try connection.query(
            "\(Self.assessmentColumns) WHERE trace_id = $1 ORDER BY window_start_ns, scorer_name, span_id NULLS FIRST, assessment_id",
            [.text(id)]).map(Self.assessment)
        return TraceDetail(
            traceID: try row.string(0), canonicalTraceID: try row.string(1), format: try row.string(2), requestTimeNanos: try row.int64(3),
            durationMillis: try row.optionalInt64(4), state: try row.string(5), clientRequestID: try row.optionalString(6),
            requestPreview: try Self.truncated(row, text: 7, bytes: 8, budget: Self.shortTextBytes),
            responsePreview: try Self.truncated(row, text: 9, bytes: 10, budget: Self.shortTextBytes),
            tags: Self.entries(try row.string(11)), metadata: Self.entries(try row.string(12)), spanCount: try row.int(13),
            rootSpanID: try row.optionalString(14), sourceTopic: try row.string(15), sourcePartition: try row.int(16),
            sourceOffset: try row.int64(17), deliveries: try row.int(18), ingestedAtMillis: try row.int64(19),
            scoredAtMillis: try row.optionalInt64(20), late: try row.bool(21), updatedAfterScoring: try row.bool(22),
            storedSpans: try row.int(23), spans: Self.tree(flat), assessments: assessments)
    }

    /// The spans in depth-first order with their depths: roots (no parent, or a parent that is
    /// not among `spans`) by start time, each followed by its children by start time. Spans in a
    /// parent cycle come last, at depth 0. Iterative, so deep chains cannot exhaust the stack.
    static func tree(_ spans: [SpanNode]) -> [SpanNode] {
        var indexByID: [String: Int] = [:]
        for (index, span) in spans.enumerated() where indexByID[span.spanID] == nil { indexByID[span.spanID] = index }
        var children: [Int: [Int]] = [:]
        var roots: [Int] = []
        for (index, span) in spans.enumerated() {
            if let parent = span.parentSpanID, let parentIndex = indexByID[parent], parentIndex != index, indexByID[span.spanID] == index {
                children[parentIndex, default: []].append(index)
            } else {
                roots.append(index)
            }
        }
        var visited = [Bool](repeating: false, count: spans.count)
        var ordered: [SpanNode] = []
        ordered.reserveCapacity(spans.count)
        func walk(from root: Int) {
            var stack: [(index: Int, depth: Int)] = [(root, 0)]
            while let item = stack.popLast() {
                let (index, depth) = (item.index, item.depth)
                guard !visited[index] else { continue }
                visited[index] = true
                var node = spans[index]
                node.depth = depth
                ordered.append(node)
                // Pushed in reverse so the earliest child is visited first (spans come sorted by start).
                for child in (children[index] ?? []).reversed() where !visited[child] { stack.append((child, depth + 1)) }
            }
        }
        for root in roots { walk(from: root) }
        for index in spans.indices where !visited[index] { walk(from: index) }
        return ordered
    }

    // MARK: - Assessments

    static let assessmentColumns = """
        SELECT assessment_id, assessment_name, scorer_name, trace_id, span_id, window_start_ns, config_version, source_type, outcome,
               value, left(rationale, 1100), octet_length(rationale), error_code, late, (extract(epoch FROM created_at) * 1000)::bigint,
               judge_latency_ms, judge_input_tokens, judge_output_tokens, document
        FROM assessments
        """

    static func assessment(_ row: PostgresRow) throws -> DashboardAssessment {
        let document = try row.optionalString(18).flatMap { try? JSONParser().parse(Array($0.utf8)) }
        let value = try row.optionalString(9).map { text in (try? JSONParser().parse(Array(text.utf8))) ?? .string(text) }
        return DashboardAssessment(
            assessmentID: try row.string(0), name: try row.string(1), scorerName: try row.string(2), traceID: try row.string(3),
            spanID: try row.optionalString(4), windowStartNanos: try row.int64(5), configVersion: try row.int64(6),
            sourceType: try row.string(7), sourceID: document?["source"]?["source_id"]?.stringValue, outcome: try row.string(8),
            value: value, rationale: try truncated(row, text: 10, bytes: 11, budget: shortTextBytes), errorCode: try row.optionalString(12),
            errorMessage: document?["feedback"]?["error"]?["error_message"]?.stringValue.map { TruncatedText($0, maxBytes: shortTextBytes) },
            late: try row.bool(13), createdAtMillis: try row.int64(14), judgeLatencyMillis: try row.optionalDouble(15),
            judgeInputTokens: try row.optionalInt(16), judgeOutputTokens: try row.optionalInt(17))
    }

    // MARK: - Status

    /// Monitor, windows, watermark, committed offsets, dead letters and the outbox; `lag` is
    /// what the serving process's consumer reports (nil: unknown).
    public func status(lag: [String: Int64]?, on connection: PostgresConnection) throws -> DashboardStatus {
        let now = try connection.query("SELECT (extract(epoch FROM now()) * 1000000)::bigint * 1000")[0].int64(0)
        var monitor: MonitorVersionInfo?
        var monitorError: String?
        do {
            monitor = try MonitorStore(schema: schema).current(on: connection).map(MonitorVersionInfo.init)
        } catch let error as ScoringStoreError {
            monitorError = error.description
        }
        let windows = try connection.query(
            """
            SELECT count(*) FILTER (WHERE state = 'closed'), count(*) FILTER (WHERE state IN ('scored', 'paused')),
                   max(window_end_ns) FILTER (WHERE state IN ('scored', 'paused'))
            FROM windows
            """)[0]
        let unscored = try connection.query("SELECT count(*) FROM traces WHERE scored_at IS NULL")[0].int(0)
        let calculator = WatermarkCalculator(idleTimeoutNanos: idleTimeoutNanos)
        var progress: [PartitionProgress] = []
        let partitions = try connection.query(
            """
            SELECT partition, max_event_time_ns, (extract(epoch FROM advanced_at) * 1000000)::bigint * 1000,
                   (extract(epoch FROM caught_up_at) * 1000000)::bigint * 1000
            FROM partition_watermarks WHERE topic = $1 ORDER BY partition
            """, [.text(tracesTopic)]).map { row -> DashboardStatus.Partition in
            let item = PartitionProgress(maxEventTimeNanos: try row.optionalInt64(1), lastAdvancedWallTimeNanos: try row.int64(2),
                                         lastCaughtUpWallTimeNanos: try row.optionalInt64(3))
            progress.append(item)
            return DashboardStatus.Partition(partition: try row.int(0), maxEventTimeNanos: item.maxEventTimeNanos,
                                             advancedAtNanos: item.lastAdvancedWallTimeNanos, idle: calculator.isIdle(item, now: now))
        }
        let offsets = try connection.query(
            """
            SELECT group_id, partition, next_offset, (extract(epoch FROM updated_at) * 1000)::bigint
            FROM consumer_offsets WHERE topic = $1 ORDER BY group_id, partition
            """, [.text(tracesTopic)]).map {
            DashboardStatus.CommittedOffset(group: try $0.string(0), partition: try $0.int(1), nextOffset: try $0.int64(2), updatedAtMillis: try $0.int64(3))
        }
        let reasons = try connection.query("SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY 2 DESC, 1")
            .map { (reason: try $0.string(0), count: try $0.int(1)) }
        let latest = try connection.query(
            """
            SELECT id, source_topic, source_partition, source_offset, reason, left(detail, 1100), octet_length(detail), payload_size,
                   gap_end_offset, (extract(epoch FROM created_at) * 1000)::bigint
            FROM dead_letters ORDER BY created_at DESC, id DESC LIMIT \(Self.latestDeadLetters)
            """).map { row in
            DashboardStatus.DeadLetter(
                id: try row.int64(0), topic: try row.string(1), partition: try row.int(2), offset: try row.int64(3), reason: try row.string(4),
                detail: try Self.truncated(row, text: 5, bytes: 6, budget: 512) ?? TruncatedText(text: "", totalBytes: 0, truncated: false),
                payloadBytes: try row.optionalInt(7), gapEndOffset: try row.optionalInt64(8), createdAtMillis: try row.int64(9))
        }
        let outbox = try connection.query(
            "SELECT coalesce(sum(message_count), 0), (extract(epoch FROM min(created_at)) * 1000)::bigint FROM outbox WHERE published_at IS NULL")[0]
        return DashboardStatus(
            nowNanos: now, monitor: monitor, monitorError: monitorError, tracesTopic: tracesTopic, closedWindows: try windows.int(0),
            scoredWindows: try windows.int(1), lastScoredWindowEndNanos: try windows.optionalInt64(2), unscoredTraces: unscored,
            partitions: partitions, watermarkNanos: calculator.closingWatermark(partitions: progress, now: now), idleTimeoutNanos: idleTimeoutNanos,
            committedOffsets: offsets, consumerLag: lag, deadLetterCount: reasons.reduce(0) { $0 + $1.count },
            deadLettersByReason: reasons, latestDeadLetters: latest, outboxBacklog: try outbox.int(0),
            oldestUnpublishedMillis: try outbox.optionalInt64(1))
    }

    // MARK: - Helpers

    /// The text of column `text` (already cut in SQL), cut to `budget` bytes, knowing the whole
    /// was `bytes` long; nil when the column is NULL.
    static func truncated(_ row: PostgresRow, text: Int, bytes: Int, budget: Int) throws -> TruncatedText? {
        guard let value = try row.optionalString(text) else { return nil }
        return TruncatedText(value, maxBytes: budget, totalBytes: try row.optionalInt(bytes))
    }

    /// The entries of a JSON object (tags, metadata), values as text cut to a budget.
    static func entries(_ json: String) -> [(key: String, value: String)] {
        guard case .object(let object)? = try? JSONParser().parse(Array(json.utf8)) else { return [] }
        return object.entries.prefix(maxMapEntries).map { entry in
            let text = entry.value.stringValue ?? entry.value.serialized()
            let cut = TruncatedText(text, maxBytes: mapValueBytes)
            return (key: TruncatedText(entry.key, maxBytes: mapValueBytes).text, value: cut.truncated ? cut.text + "…" : cut.text)
        }
    }
}
