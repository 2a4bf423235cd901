/// Every Prometheus metric family Assay exports: its name, type, label names and help text.
///
/// This catalog is the single source of the names. ``AssayMetrics`` emits through it (so a
/// family always carries the same labels, in the same order), ``AssayPrometheusFactory`` takes
/// the `# HELP` text and histogram buckets from it, and the tests check that the Grafana
/// dashboard and the alert rules in `deploy/observability/` name only families listed here.
public enum MetricFamily: String, CaseIterable, Sendable {
    // Ingest (IngestService).
    case messagesConsumed = "assay_messages_consumed_total"
    case tracesStored = "assay_traces_stored_total"
    case deadLetters = "assay_dead_letters_total"
    case messagesAlreadyDurable = "assay_messages_already_durable_total"
    case batchWriteRetries = "assay_batch_write_retries_total"
    case retentionLostMessages = "assay_retention_lost_messages_total"
    case consumerLag = "assay_consumer_lag_messages"
    case batchWriteDuration = "assay_batch_write_duration_seconds"

    // Windows and scoring (ScoringService).
    case windowsClosed = "assay_windows_closed_total"
    case assessments = "assay_assessments_total"
    case windowTracesScored = "assay_window_traces_scored_total"
    case windowTracesPassed = "assay_window_traces_passed_total"
    case regressionAlerts = "assay_regression_alerts_total"
    case configVersion = "assay_config_version"

    // Judges (GovernedJudge).
    case judgeCalls = "assay_judge_calls_total"
    case judgeErrors = "assay_judge_errors_total"
    case judgeCallDuration = "assay_judge_call_duration_seconds"
    case judgeTokens = "assay_judge_tokens_total"
    case judgeCacheHits = "assay_judge_cache_hits_total"
    case judgeBudgetSkips = "assay_judge_budget_skips_total"

    // Outbox (OutboxPublisher).
    case outboxBacklog = "assay_outbox_backlog_messages"
    case outboxPublished = "assay_outbox_published_total"

    // The process (SchedulingDelayProbe).
    case taskSchedulingDelay = "assay_task_scheduling_delay_seconds"

    /// The Prometheus metric type.
    public enum Kind: String, Sendable {
        case counter
        case gauge
        case histogram
    }

    /// The exported name (`assay_…`).
    public var name: String { rawValue }

    public var kind: Kind {
        switch self {
        case .consumerLag, .configVersion, .outboxBacklog: return .gauge
        case .batchWriteDuration, .judgeCallDuration, .taskSchedulingDelay: return .histogram
        default: return .counter
        }
    }

    /// Label names, in the order every series of the family carries them.
    public var labelNames: [String] {
        switch self {
        case .messagesConsumed, .tracesStored, .consumerLag: return ["topic", "partition"]
        case .deadLetters: return ["topic", "reason"]
        case .messagesAlreadyDurable, .batchWriteRetries, .retentionLostMessages, .batchWriteDuration: return ["topic"]
        case .windowsClosed, .configVersion, .outboxBacklog, .outboxPublished, .taskSchedulingDelay: return []
        case .assessments: return ["scorer", "outcome"]
        case .windowTracesScored, .windowTracesPassed, .regressionAlerts: return ["scorer"]
        case .judgeCalls, .judgeErrors, .judgeCallDuration, .judgeCacheHits, .judgeBudgetSkips: return ["judge", "scorer_kind"]
        case .judgeTokens: return ["judge", "scorer_kind", "direction"]
        }
    }

    /// The `# HELP` text.
    public var help: String {
        switch self {
        case .messagesConsumed:
            return "Kafka messages read from the traces topic, per partition."
        case .tracesStored:
            return "Messages of the traces topic stored as trace data (an MLflow trace, repeats of an id included, or an OTLP message's spans), per partition."
        case .deadLetters:
            return "Messages stored as dead letters instead of traces, by reason (the decoder's rejection reason, store_rejected, retention_gap)."
        case .messagesAlreadyDurable:
            return "Messages skipped because their offsets were already durable (replays after a crash or rebalance)."
        case .batchWriteRetries:
            return "PostgreSQL batch writes that failed and were retried with backoff."
        case .retentionLostMessages:
            return "Messages the broker deleted by retention before they were read."
        case .consumerLag:
            return "Messages not yet read in each partition this replica is assigned (high watermark minus position)."
        case .batchWriteDuration:
            return "Time to write one ingest batch to PostgreSQL (one transaction, successful writes)."
        case .windowsClosed:
            return "Event-time windows scored for the first time."
        case .assessments:
            return "Assessments stored, by scorer and outcome (pass, fail, value, not_applicable, error)."
        case .windowTracesScored:
            return "Traces scored per scorer in windows at their first summary (the pass-rate denominator)."
        case .windowTracesPassed:
            return "Traces that passed per scorer in windows at their first summary (the pass-rate numerator)."
        case .regressionAlerts:
            return "alert/v1 events published: a window's pass rate significantly below the scorer's trailing baseline."
        case .configVersion:
            return "The monitor config version in force for new windows."
        case .judgeCalls:
            return "Calls made to an LLM judge (after the cache and the budget; retries inside one call count once)."
        case .judgeErrors:
            return "Judge calls that failed after their retries."
        case .judgeCallDuration:
            return "Wall time of one judge call, retries included."
        case .judgeTokens:
            return "Tokens the judge reported, by direction (input, output)."
        case .judgeCacheHits:
            return "Judge requests answered from the response cache or by an identical call in flight."
        case .judgeBudgetSkips:
            return "Judge requests refused because the window's call or token budget was used up."
        case .outboxBacklog:
            return "Outbox messages (assessments, window summaries, alerts) not yet published to Kafka."
        case .outboxPublished:
            return "Outbox messages published to the assessments topic."
        case .taskSchedulingDelay:
            return "How late a task woke from a short sleep: how long ready work waited for a thread of the Swift concurrency pool. Judge deadlines and lease renewals wait as long."
        }
    }

    /// Histogram buckets (seconds) for the histogram families.
    public var durationBuckets: [Duration] {
        switch self {
        case .batchWriteDuration:
            return [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                    .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10)]
        case .judgeCallDuration:
            return [.milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                    .seconds(2), .seconds(5), .seconds(10), .seconds(20), .seconds(30), .seconds(60)]
        case .taskSchedulingDelay:
            return [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
                    .milliseconds(500), .seconds(1), .seconds(5), .seconds(10), .seconds(30)]
        default:
            return []
        }
    }

    /// The names a Prometheus scrape shows for this family: the name itself, or for a
    /// histogram its `_bucket`, `_sum` and `_count` series.
    public var sampleNames: [String] {
        kind == .histogram ? [name + "_bucket", name + "_sum", name + "_count"] : [name]
    }

    /// The family a scraped series name belongs to (`…_bucket`, `…_sum`, `…_count` of a
    /// histogram included), or nil.
    public static func family(ofSample sampleName: String) -> MetricFamily? {
        if let family = MetricFamily(rawValue: sampleName) { return family }
        return allCases.first { $0.kind == .histogram && $0.sampleNames.contains(sampleName) }
    }
}
