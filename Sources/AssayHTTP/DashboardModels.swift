// What the dashboard, its JSON endpoints and the `assay windows` / `assay trace` reports show.
// Built by ``DashboardStore`` from PostgreSQL; written as JSON by ``DashboardJSON`` and as text
// by ``ReportFormatting``.

import AssayCore

/// Text cut to a byte budget for display (span inputs and outputs, rationales, previews).
public struct TruncatedText: Sendable, Equatable {
    /// At most the budget's bytes of UTF-8, cut at a character boundary.
    public var text: String
    /// The length of the whole text in UTF-8 bytes.
    public var totalBytes: Int
    /// Whether ``text`` is shorter than the whole.
    public var truncated: Bool

    public init(text: String, totalBytes: Int, truncated: Bool) {
        self.text = text
        self.totalBytes = totalBytes
        self.truncated = truncated
    }

    /// `text` cut to at most `maxBytes` UTF-8 bytes, never inside a character (a Unicode scalar).
    /// `totalBytes` may say the whole was longer than `text` (when the database cut it already).
    public init(_ text: String, maxBytes: Int, totalBytes: Int? = nil) {
        let utf8 = text.utf8
        let whole = max(totalBytes ?? utf8.count, utf8.count)
        guard utf8.count > maxBytes else {
            self.init(text: text, totalBytes: whole, truncated: whole > utf8.count)
            return
        }
        var end = utf8.index(utf8.startIndex, offsetBy: max(0, maxBytes))
        // Back up to the first byte of a scalar (continuation bytes are 0b10xxxxxx).
        while end > utf8.startIndex, (utf8[end] & 0xC0) == 0x80 { end = utf8.index(before: end) }
        let prefix = String(decoding: Array(utf8[utf8.startIndex..<end]), as: UTF8.self)
        self.init(text: prefix, totalBytes: whole, truncated: true)
    }
}

/// One closed window with its per-scorer summaries (the rows of `window_summaries`).
public struct DashboardWindow: Sendable, Equatable {
    public var startNanos: Int64
    public var endNanos: Int64
    /// The monitor version the window was closed (and scored) under.
    public var configVersion: Int64
    /// `closed` (waiting to be scored) or `scored`.
    public var state: String
    /// When the window closed, epoch milliseconds.
    public var closedAtMillis: Int64
    /// When its first scoring pass finished, epoch milliseconds.
    public var scoredAtMillis: Int64?
    /// Traces stored with a request time inside the window (late ones included).
    public var traces: Int
    /// Traces stored after the window closed.
    public var lateTraces: Int
    /// One summary per scorer, by scorer name. Pass rate and Wilson interval follow from the
    /// counts; judge latency and tokens come from the published summary document.
    public var scorers: [WindowScorerSummary]

    public init(startNanos: Int64, endNanos: Int64, configVersion: Int64, state: String, closedAtMillis: Int64, scoredAtMillis: Int64?,
                traces: Int, lateTraces: Int, scorers: [WindowScorerSummary]) {
        self.startNanos = startNanos
        self.endNanos = endNanos
        self.configVersion = configVersion
        self.state = state
        self.closedAtMillis = closedAtMillis
        self.scoredAtMillis = scoredAtMillis
        self.traces = traces
        self.lateTraces = lateTraces
        self.scorers = scorers
    }
}

/// One stored assessment, as the drill-down shows it.
public struct DashboardAssessment: Sendable, Equatable {
    public var assessmentID: String
    public var name: String
    public var scorerName: String
    public var traceID: String
    public var spanID: String?
    public var windowStartNanos: Int64
    public var configVersion: Int64
    /// `CODE`, `LLM_JUDGE`, ...
    public var sourceType: String
    public var sourceID: String?
    /// `pass`, `fail`, `value`, `not_applicable` or `error`.
    public var outcome: String
    /// The feedback value (nil for errors; `null` for not applicable).
    public var value: JSONValue?
    public var rationale: TruncatedText?
    public var errorCode: String?
    public var errorMessage: TruncatedText?
    /// The trace arrived after its window closed.
    public var late: Bool
    public var createdAtMillis: Int64
    public var judgeLatencyMillis: Double?
    public var judgeInputTokens: Int?
    public var judgeOutputTokens: Int?

    public init(assessmentID: String, name: String, scorerName: String, traceID: String, spanID: String?, windowStartNanos: Int64,
                configVersion: Int64, sourceType: String, sourceID: String?, outcome: String, value: JSONValue?, rationale: TruncatedText?,
                errorCode: String?, errorMessage: TruncatedText?, late: Bool, createdAtMillis: Int64,
                judgeLatencyMillis: Double? = nil, judgeInputTokens: Int? = nil, judgeOutputTokens: Int? = nil) {
        self.assessmentID = assessmentID
        self.name = name
        self.scorerName = scorerName
        self.traceID = traceID
        self.spanID = spanID
        self.windowStartNanos = windowStartNanos
        self.configVersion = configVersion
        self.sourceType = sourceType
        self.sourceID = sourceID
        self.outcome = outcome
        self.value = value
        self.rationale = rationale
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.late = late
        self.createdAtMillis = createdAtMillis
        self.judgeLatencyMillis = judgeLatencyMillis
        self.judgeInputTokens = judgeInputTokens
        self.judgeOutputTokens = judgeOutputTokens
    }
}

/// A trace a window sampled (it has at least one assessment of that window), with its assessments.
public struct SampledTrace: Sendable, Equatable {
    public var traceID: String
    public var requestTimeNanos: Int64
    public var state: String
    public var durationMillis: Int64?
    public var requestPreview: TruncatedText?
    public var responsePreview: TruncatedText?
    /// Stored after its window closed.
    public var late: Bool
    public var assessments: [DashboardAssessment]

    public init(traceID: String, requestTimeNanos: Int64, state: String, durationMillis: Int64?, requestPreview: TruncatedText?,
                responsePreview: TruncatedText?, late: Bool, assessments: [DashboardAssessment]) {
        self.traceID = traceID
        self.requestTimeNanos = requestTimeNanos
        self.state = state
        self.durationMillis = durationMillis
        self.requestPreview = requestPreview
        self.responsePreview = responsePreview
        self.late = late
        self.assessments = assessments
    }
}

/// Which of a window's sampled traces to list.
public struct SampledTraceQuery: Sendable, Equatable {
    /// Only traces this scorer assessed.
    public var scorer: String?
    /// Only traces with an assessment of this outcome (of `scorer`, when given).
    public var outcome: String?
    public var limit: Int
    public var offset: Int

    /// The outcomes a filter may name.
    public static let outcomes = ["pass", "fail", "value", "not_applicable", "error"]
    public static let defaultLimit = 100
    public static let maxLimit = 1000

    public init(scorer: String? = nil, outcome: String? = nil, limit: Int = Self.defaultLimit, offset: Int = 0) {
        self.scorer = scorer
        self.outcome = outcome
        self.limit = limit
        self.offset = offset
    }
}

/// One window with the traces it sampled (`GET /api/windows/{start}`).
public struct WindowDetail: Sendable, Equatable {
    public var window: DashboardWindow
    public var query: SampledTraceQuery
    /// Sampled traces matching the query, before `limit` and `offset`.
    public var matchingTraces: Int
    /// Ordered by request time, then trace id.
    public var traces: [SampledTrace]

    public init(window: DashboardWindow, query: SampledTraceQuery, matchingTraces: Int, traces: [SampledTrace]) {
        self.window = window
        self.query = query
        self.matchingTraces = matchingTraces
        self.traces = traces
    }
}

/// One span in the tree of a trace, in depth-first order.
public struct SpanNode: Sendable, Equatable {
    public var spanID: String
    public var parentSpanID: String?
    /// 0 for roots (and for spans whose parent is not stored).
    public var depth: Int
    public var name: String
    public var spanType: String?
    public var startNanos: Int64
    public var endNanos: Int64?
    public var statusCode: String
    public var statusMessage: TruncatedText?
    /// The JSON text of the inputs, outputs and attributes, cut to the byte budget.
    public var inputs: TruncatedText?
    public var outputs: TruncatedText?
    public var attributes: TruncatedText?
    /// Event names (exceptions, logs), at most ``DashboardStore/maxEventNames``.
    public var events: [String]

    public init(spanID: String, parentSpanID: String?, depth: Int, name: String, spanType: String?, startNanos: Int64, endNanos: Int64?,
                statusCode: String, statusMessage: TruncatedText?, inputs: TruncatedText?, outputs: TruncatedText?, attributes: TruncatedText?,
                events: [String]) {
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.depth = depth
        self.name = name
        self.spanType = spanType
        self.startNanos = startNanos
        self.endNanos = endNanos
        self.statusCode = statusCode
        self.statusMessage = statusMessage
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
        self.events = events
    }
}

/// One stored trace with its span tree and every assessment (`GET /api/traces/{id}`).
public struct TraceDetail: Sendable, Equatable {
    public var traceID: String
    public var canonicalTraceID: String
    public var format: String
    public var requestTimeNanos: Int64
    public var durationMillis: Int64?
    public var state: String
    public var clientRequestID: String?
    public var requestPreview: TruncatedText?
    public var responsePreview: TruncatedText?
    /// Tags and metadata, values cut to a budget (at most ``DashboardStore/maxMapEntries`` each).
    public var tags: [(key: String, value: String)]
    public var metadata: [(key: String, value: String)]
    public var spanCount: Int
    public var rootSpanID: String?
    public var sourceTopic: String
    public var sourcePartition: Int
    public var sourceOffset: Int64
    public var deliveries: Int
    public var ingestedAtMillis: Int64
    public var scoredAtMillis: Int64?
    public var late: Bool
    public var updatedAfterScoring: Bool
    /// Spans stored for the trace (``spans`` may hold fewer).
    public var storedSpans: Int
    /// Depth-first: each span is followed by its children, by start time.
    public var spans: [SpanNode]
    /// By window, scorer, span.
    public var assessments: [DashboardAssessment]

    public init(traceID: String, canonicalTraceID: String, format: String, requestTimeNanos: Int64, durationMillis: Int64?, state: String,
                clientRequestID: String?, requestPreview: TruncatedText?, responsePreview: TruncatedText?,
                tags: [(key: String, value: String)], metadata: [(key: String, value: String)], spanCount: Int, rootSpanID: String?,
                sourceTopic: String, sourcePartition: Int, sourceOffset: Int64, deliveries: Int, ingestedAtMillis: Int64,
                scoredAtMillis: Int64?, late: Bool, updatedAfterScoring: Bool, storedSpans: Int, spans: [SpanNode],
                assessments: [DashboardAssessment]) {
        self.traceID = traceID
        self.canonicalTraceID = canonicalTraceID
        self.format = format
        self.requestTimeNanos = requestTimeNanos
        self.durationMillis = durationMillis
        self.state = state
        self.clientRequestID = clientRequestID
        self.requestPreview = requestPreview
        self.responsePreview = responsePreview
        self.tags = tags
        self.metadata = metadata
        self.spanCount = spanCount
        self.rootSpanID = rootSpanID
        self.sourceTopic = sourceTopic
        self.sourcePartition = sourcePartition
        self.sourceOffset = sourceOffset
        self.deliveries = deliveries
        self.ingestedAtMillis = ingestedAtMillis
        self.scoredAtMillis = scoredAtMillis
        self.late = late
        self.updatedAfterScoring = updatedAfterScoring
        self.storedSpans = storedSpans
        self.spans = spans
        self.assessments = assessments
    }

    public static func == (lhs: TraceDetail, rhs: TraceDetail) -> Bool {
        lhs.traceID == rhs.traceID && lhs.canonicalTraceID == rhs.canonicalTraceID && lhs.format == rhs.format
            && lhs.requestTimeNanos == rhs.requestTimeNanos && lhs.durationMillis == rhs.durationMillis && lhs.state == rhs.state
            && lhs.clientRequestID == rhs.clientRequestID && lhs.requestPreview == rhs.requestPreview
            && lhs.responsePreview == rhs.responsePreview
            && lhs.tags.elementsEqual(rhs.tags, by: { $0.key == $1.key && $0.value == $1.value })
            && lhs.metadata.elementsEqual(rhs.metadata, by: { $0.key == $1.key && $0.value == $1.value })
            && lhs.spanCount == rhs.spanCount && lhs.rootSpanID == rhs.rootSpanID && lhs.sourceTopic == rhs.sourceTopic
            && lhs.sourcePartition == rhs.sourcePartition && lhs.sourceOffset == rhs.sourceOffset && lhs.deliveries == rhs.deliveries
            && lhs.ingestedAtMillis == rhs.ingestedAtMillis && lhs.scoredAtMillis == rhs.scoredAtMillis && lhs.late == rhs.late
            && lhs.updatedAfterScoring == rhs.updatedAfterScoring && lhs.storedSpans == rhs.storedSpans && lhs.spans == rhs.spans
            && lhs.assessments == rhs.assessments
    }
}

/// The pipeline's state as PostgreSQL (and the lag hook) know it (`GET /api/status`).
public struct DashboardStatus: Sendable, Equatable {
    /// One partition of the traces topic.
    public struct Partition: Sendable, Equatable {
        public var partition: Int
        /// The newest event time seen on it (nil before its first trace).
        public var maxEventTimeNanos: Int64?
        /// When that last grew, epoch ns.
        public var advancedAtNanos: Int64
        /// Idle under the assumed idle timeout (it no longer holds the watermark back).
        public var idle: Bool

        public init(partition: Int, maxEventTimeNanos: Int64?, advancedAtNanos: Int64, idle: Bool) {
            self.partition = partition
            self.maxEventTimeNanos = maxEventTimeNanos
            self.advancedAtNanos = advancedAtNanos
            self.idle = idle
        }
    }

    /// Where a consumer group will resume on a partition (`consumer_offsets`).
    public struct CommittedOffset: Sendable, Equatable {
        public var group: String
        public var partition: Int
        public var nextOffset: Int64
        public var updatedAtMillis: Int64

        public init(group: String, partition: Int, nextOffset: Int64, updatedAtMillis: Int64) {
            self.group = group
            self.partition = partition
            self.nextOffset = nextOffset
            self.updatedAtMillis = updatedAtMillis
        }
    }

    /// A dead letter, without its payload.
    public struct DeadLetter: Sendable, Equatable {
        public var id: Int64
        public var topic: String
        public var partition: Int
        public var offset: Int64
        public var reason: String
        public var detail: TruncatedText
        public var payloadBytes: Int?
        public var gapEndOffset: Int64?
        public var createdAtMillis: Int64

        public init(id: Int64, topic: String, partition: Int, offset: Int64, reason: String, detail: TruncatedText, payloadBytes: Int?,
                    gapEndOffset: Int64?, createdAtMillis: Int64) {
            self.id = id
            self.topic = topic
            self.partition = partition
            self.offset = offset
            self.reason = reason
            self.detail = detail
            self.payloadBytes = payloadBytes
            self.gapEndOffset = gapEndOffset
            self.createdAtMillis = createdAtMillis
        }
    }

    /// The database clock, epoch ns.
    public var nowNanos: Int64
    /// The current monitor version; nil when none is configured.
    public var monitor: MonitorVersionInfo?
    /// Why the current monitor could not be read (a stored document no longer parses).
    public var monitorError: String?
    public var tracesTopic: String
    public var closedWindows: Int
    public var scoredWindows: Int
    /// The end of the newest scored window.
    public var lastScoredWindowEndNanos: Int64?
    /// Stored traces no window pass has handled yet.
    public var unscoredTraces: Int
    public var partitions: [Partition]
    /// The event-time watermark computed as the scoring service does, under ``idleTimeoutNanos``.
    public var watermarkNanos: Int64?
    public var idleTimeoutNanos: Int64
    public var committedOffsets: [CommittedOffset]
    /// Messages behind, per partition label, from the serving process's Kafka consumer; nil
    /// when this process has none (the dashboard shows "unknown").
    public var consumerLag: [String: Int64]?
    public var deadLetterCount: Int
    public var deadLettersByReason: [(reason: String, count: Int)]
    /// Newest first.
    public var latestDeadLetters: [DeadLetter]
    /// Outbox messages not yet acknowledged by the broker.
    public var outboxBacklog: Int
    public var oldestUnpublishedMillis: Int64?

    public init(nowNanos: Int64, monitor: MonitorVersionInfo?, monitorError: String?, tracesTopic: String, closedWindows: Int, scoredWindows: Int,
                lastScoredWindowEndNanos: Int64?, unscoredTraces: Int, partitions: [Partition], watermarkNanos: Int64?, idleTimeoutNanos: Int64,
                committedOffsets: [CommittedOffset], consumerLag: [String: Int64]?, deadLetterCount: Int,
                deadLettersByReason: [(reason: String, count: Int)], latestDeadLetters: [DeadLetter], outboxBacklog: Int,
                oldestUnpublishedMillis: Int64?) {
        self.nowNanos = nowNanos
        self.monitor = monitor
        self.monitorError = monitorError
        self.tracesTopic = tracesTopic
        self.closedWindows = closedWindows
        self.scoredWindows = scoredWindows
        self.lastScoredWindowEndNanos = lastScoredWindowEndNanos
        self.unscoredTraces = unscoredTraces
        self.partitions = partitions
        self.watermarkNanos = watermarkNanos
        self.idleTimeoutNanos = idleTimeoutNanos
        self.committedOffsets = committedOffsets
        self.consumerLag = consumerLag
        self.deadLetterCount = deadLetterCount
        self.deadLettersByReason = deadLettersByReason
        self.latestDeadLetters = latestDeadLetters
        self.outboxBacklog = outboxBacklog
        self.oldestUnpublishedMillis = oldestUnpublishedMillis
    }

    public static func == (lhs: DashboardStatus, rhs: DashboardStatus) -> Bool {
        lhs.nowNanos == rhs.nowNanos && lhs.monitor == rhs.monitor && lhs.monitorError == rhs.monitorError && lhs.tracesTopic == rhs.tracesTopic
            && lhs.closedWindows == rhs.closedWindows && lhs.scoredWindows == rhs.scoredWindows
            && lhs.lastScoredWindowEndNanos == rhs.lastScoredWindowEndNanos && lhs.unscoredTraces == rhs.unscoredTraces
            && lhs.partitions == rhs.partitions && lhs.watermarkNanos == rhs.watermarkNanos && lhs.idleTimeoutNanos == rhs.idleTimeoutNanos
            && lhs.committedOffsets == rhs.committedOffsets && lhs.consumerLag == rhs.consumerLag && lhs.deadLetterCount == rhs.deadLetterCount
            && lhs.deadLettersByReason.elementsEqual(rhs.deadLettersByReason, by: { $0.reason == $1.reason && $0.count == $1.count })
            && lhs.latestDeadLetters == rhs.latestDeadLetters && lhs.outboxBacklog == rhs.outboxBacklog
            && lhs.oldestUnpublishedMillis == rhs.oldestUnpublishedMillis
    }
}
