import AssayCore

/// The JSON bodies of the dashboard endpoints (documented in `schemas/openapi.yaml`), also
/// printed by `assay windows --json` and `assay trace --json`.
///
/// Times are RFC 3339 UTC strings; nanosecond integers that exceed 2^53 (`*_ns`) are written as
/// decimal strings so JavaScript reads them exactly. Text cut to a budget is
/// `{"text": "...", "bytes": <whole length in UTF-8 bytes>, "truncated": true|false}`.
public enum DashboardJSON {
    /// `GET /api/windows`: `{"windows": [...], "limit": N}`, newest first.
    public static func windows(_ windows: [DashboardWindow], limit: Int) -> JSONValue {
        .object(["windows": .array(windows.map(window)), "limit": JSONValue(limit)])
    }

    /// One window with its scorers; each scorer is the window summary document
    /// (`schemas/window-summary.schema.json`).
    public static func window(_ window: DashboardWindow) -> JSONValue {
        var object = JSONObject()
        object["window_start"] = .string(time(window.startNanos))
        object["window_end"] = .string(time(window.endNanos))
        object["window_start_ns"] = .string(String(window.startNanos))
        object["config_version"] = JSONValue(window.configVersion)
        object["state"] = .string(window.state)
        object["closed_at"] = .string(TimeFormatting.rfc3339(millis: window.closedAtMillis))
        object["scored_at"] = window.scoredAtMillis.map { .string(TimeFormatting.rfc3339(millis: $0)) } ?? .null
        object["traces"] = JSONValue(window.traces)
        object["late_traces"] = JSONValue(window.lateTraces)
        object["scorers"] = .array(window.scorers.map { $0.json() })
        return .object(object)
    }

    /// `GET /api/windows/{start}`.
    public static func windowDetail(_ detail: WindowDetail) -> JSONValue {
        var object = JSONObject()
        object["window"] = window(detail.window)
        object["filter"] = .object([
            "scorer": detail.query.scorer.map { .string($0) } ?? .null,
            "outcome": detail.query.outcome.map { .string($0) } ?? .null,
            "limit": JSONValue(detail.query.limit),
            "offset": JSONValue(detail.query.offset),
        ])
        object["matching_traces"] = JSONValue(detail.matchingTraces)
        object["traces"] = .array(detail.traces.map(sampledTrace))
        return .object(object)
    }

    static func sampledTrace(_ trace: SampledTrace) -> JSONValue {
        var object = JSONObject()
        object["trace_id"] = .string(trace.traceID)
        object["request_time"] = .string(time(trace.requestTimeNanos))
        object["state"] = .string(trace.state)
        object["duration_ms"] = trace.durationMillis.map { JSONValue($0) } ?? .null
        object["request_preview"] = text(trace.requestPreview)
        object["response_preview"] = text(trace.responsePreview)
        object["late"] = .bool(trace.late)
        object["assessments"] = .array(trace.assessments.map(assessment))
        return .object(object)
    }

    /// One stored assessment.
    public static func assessment(_ assessment: DashboardAssessment) -> JSONValue {
        var object = JSONObject()
        object["assessment_id"] = .string(assessment.assessmentID)
        object["assessment_name"] = .string(assessment.name)
        object["scorer_name"] = .string(assessment.scorerName)
        object["trace_id"] = .string(assessment.traceID)
        object["span_id"] = assessment.spanID.map { .string($0) } ?? .null
        object["window_start"] = .string(time(assessment.windowStartNanos))
        object["config_version"] = JSONValue(assessment.configVersion)
        object["source_type"] = .string(assessment.sourceType)
        object["source_id"] = assessment.sourceID.map { .string($0) } ?? .null
        object["outcome"] = .string(assessment.outcome)
        object["value"] = assessment.value ?? .null
        object["rationale"] = text(assessment.rationale)
        object["error_code"] = assessment.errorCode.map { .string($0) } ?? .null
        object["error_message"] = text(assessment.errorMessage)
        object["late"] = .bool(assessment.late)
        object["created_at"] = .string(TimeFormatting.rfc3339(millis: assessment.createdAtMillis))
        object["judge_latency_ms"] = assessment.judgeLatencyMillis.map { JSONValue($0) } ?? .null
        object["judge_input_tokens"] = assessment.judgeInputTokens.map { JSONValue($0) } ?? .null
        object["judge_output_tokens"] = assessment.judgeOutputTokens.map { JSONValue($0) } ?? .null
        return .object(object)
    }

    /// `GET /api/traces/{id}`.
    public static func trace(_ trace: TraceDetail) -> JSONValue {
        var object = JSONObject()
        object["trace_id"] = .string(trace.traceID)
        object["canonical_trace_id"] = .string(trace.canonicalTraceID)
        object["format"] = .string(trace.format)
        object["request_time"] = .string(time(trace.requestTimeNanos))
        object["request_time_ns"] = .string(String(trace.requestTimeNanos))
        object["duration_ms"] = trace.durationMillis.map { JSONValue($0) } ?? .null
        object["state"] = .string(trace.state)
        object["client_request_id"] = trace.clientRequestID.map { .string($0) } ?? .null
        object["request_preview"] = text(trace.requestPreview)
        object["response_preview"] = text(trace.responsePreview)
        object["tags"] = .object(JSONObject(trace.tags.map { (key: $0.key, value: .string($0.value)) }))
        object["metadata"] = .object(JSONObject(trace.metadata.map { (key: $0.key, value: .string($0.value)) }))
        object["span_count"] = JSONValue(trace.spanCount)
        object["root_span_id"] = trace.rootSpanID.map { .string($0) } ?? .null
        object["source"] = .object([
            "topic": .string(trace.sourceTopic), "partition": JSONValue(trace.sourcePartition), "offset": JSONValue(trace.sourceOffset),
        ])
        object["deliveries"] = JSONValue(trace.deliveries)
        object["ingested_at"] = .string(TimeFormatting.rfc3339(millis: trace.ingestedAtMillis))
        object["scored_at"] = trace.scoredAtMillis.map { .string(TimeFormatting.rfc3339(millis: $0)) } ?? .null
        object["late"] = .bool(trace.late)
        object["updated_after_scoring"] = .bool(trace.updatedAfterScoring)
        object["spans_stored"] = JSONValue(trace.storedSpans)
        object["spans"] = .array(trace.spans.map(span))
        object["assessments"] = .array(trace.assessments.map(assessment))
        return .object(object)
    }

    static func span(_ span: SpanNode) -> JSONValue {
        var object = JSONObject()
        object["span_id"] = .string(span.spanID)
        object["parent_span_id"] = span.parentSpanID.map { .string($0) } ?? .null
        object["depth"] = JSONValue(span.depth)
        object["name"] = .string(span.name)
        object["span_type"] = span.spanType.map { .string($0) } ?? .null
        object["start_time"] = .string(time(span.startNanos))
        object["duration_ms"] = span.endNanos.map { JSONValue(Double($0 &- span.startNanos) / 1_000_000) } ?? .null
        object["status_code"] = .string(span.statusCode)
        object["status_message"] = text(span.statusMessage)
        object["inputs"] = text(span.inputs)
        object["outputs"] = text(span.outputs)
        object["attributes"] = text(span.attributes)
        object["events"] = .array(span.events.map { .string($0) })
        return .object(object)
    }

    /// `GET /api/status`.
    public static func status(_ status: DashboardStatus) -> JSONValue {
        var object = JSONObject()
        object["now"] = .string(TimeFormatting.rfc3339(nanos: status.nowNanos, fraction: .milliseconds))
        object["monitor"] = status.monitor.map(MonitorJSON.version) ?? .null
        object["monitor_error"] = status.monitorError.map { .string($0) } ?? .null
        object["windows"] = .object([
            "closed": JSONValue(status.closedWindows),
            "scored": JSONValue(status.scoredWindows),
            "last_scored_end": status.lastScoredWindowEndNanos.map { .string(time($0)) } ?? .null,
        ])
        object["unscored_traces"] = JSONValue(status.unscoredTraces)
        object["traces_topic"] = .string(status.tracesTopic)
        object["watermark"] = status.watermarkNanos.map { .string(TimeFormatting.rfc3339(nanos: $0, fraction: .milliseconds)) } ?? .null
        object["idle_timeout_seconds"] = JSONValue(Double(status.idleTimeoutNanos) / 1e9)
        object["partitions"] = .array(status.partitions.map { partition in
            .object([
                "partition": JSONValue(partition.partition),
                "max_event_time": partition.maxEventTimeNanos.map { .string(TimeFormatting.rfc3339(nanos: $0, fraction: .milliseconds)) } ?? .null,
                "advanced_at": .string(TimeFormatting.rfc3339(nanos: partition.advancedAtNanos, fraction: .milliseconds)),
                "idle": .bool(partition.idle),
            ])
        })
        object["committed_offsets"] = .array(status.committedOffsets.map { offset in
            .object([
                "group": .string(offset.group), "partition": JSONValue(offset.partition), "next_offset": JSONValue(offset.nextOffset),
                "updated_at": .string(TimeFormatting.rfc3339(millis: offset.updatedAtMillis)),
            ])
        })
        if let lag = status.consumerLag {
            let ordered = sortedPartitionLabels(Array(lag.keys))
            object["consumer_lag"] = .object([
                "known": true,
                "total": JSONValue(lag.values.reduce(Int64(0)) { $0 &+ max(0, $1) }),
                "partitions": .array(ordered.map { .object(["partition": .string($0), "lag": JSONValue(lag[$0] ?? 0)]) }),
            ])
        } else {
            object["consumer_lag"] = .object(["known": false, "total": .null, "partitions": .array([])])
        }
        object["dead_letters"] = .object([
            "total": JSONValue(status.deadLetterCount),
            "by_reason": .array(status.deadLettersByReason.map { .object(["reason": .string($0.reason), "count": JSONValue($0.count)]) }),
            "latest": .array(status.latestDeadLetters.map { letter in
                .object([
                    "id": JSONValue(letter.id), "topic": .string(letter.topic), "partition": JSONValue(letter.partition),
                    "offset": JSONValue(letter.offset), "reason": .string(letter.reason), "detail": text(letter.detail),
                    "payload_bytes": letter.payloadBytes.map { JSONValue($0) } ?? .null,
                    "gap_end_offset": letter.gapEndOffset.map { JSONValue($0) } ?? .null,
                    "created_at": .string(TimeFormatting.rfc3339(millis: letter.createdAtMillis)),
                ])
            }),
        ])
        object["outbox"] = .object([
            "backlog": JSONValue(status.outboxBacklog),
            "oldest_unpublished_at": status.oldestUnpublishedMillis.map { .string(TimeFormatting.rfc3339(millis: $0)) } ?? .null,
        ])
        return .object(object)
    }

    /// Partition labels such as `traces/2`, `traces/10` in natural order (by the text before
    /// the trailing number, then the number).
    public static func sortedPartitionLabels(_ labels: [String]) -> [String] {
        func split(_ label: String) -> (String, Int64?) {
            let digits = label.reversed().prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 18 else { return (label, nil) }
            return (String(label.dropLast(digits.count)), Int64(String(digits.reversed())))
        }
        return labels.sorted { lhs, rhs in
            let (a, b) = (split(lhs), split(rhs))
            if a.0 != b.0 { return a.0 < b.0 }
            switch (a.1, b.1) {
            case let (x?, y?) where x != y: return x < y
            default: return lhs < rhs
            }
        }
    }

    static func text(_ value: TruncatedText?) -> JSONValue {
        guard let value else { return .null }
        return .object(["text": .string(value.text), "bytes": JSONValue(value.totalBytes), "truncated": .bool(value.truncated)])
    }

    static func time(_ nanos: Int64) -> String {
        TimeFormatting.rfc3339(nanos: nanos, fraction: .shortestExact)
    }
}
