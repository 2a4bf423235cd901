import CoreMetrics
import Metrics
import Prometheus
import Synchronization

/// Assay's metrics: typed emitters for every ``MetricFamily`` and the Prometheus export.
///
/// Emitting goes through swift-metrics, so a library records into whatever backend the
/// process bootstrapped (nothing at all until then). ``global`` uses the process-wide
/// `MetricsSystem`; tests make their own with ``init(factory:)`` (a `TestMetrics`, or an
/// ``AssayPrometheusFactory`` on a registry of their own) and never bootstrap the process.
///
/// `assay serve` calls ``bootstrap()`` once at start-up and serves ``prometheusText()`` on
/// `GET /metrics`.
public struct AssayMetrics: Sendable {
    private let factory: (any MetricsFactory)?

    /// Emits into the process-wide `MetricsSystem` (a no-op until it is bootstrapped).
    public static let global = AssayMetrics()

    private init() {
        factory = nil
    }

    /// Emits into `factory` instead of the process-wide `MetricsSystem`.
    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    // MARK: - Export

    /// The registry ``bootstrap()`` installs and ``prometheusText()`` renders.
    public static let registry = PrometheusCollectorRegistry()

    private static let bootstrapped = Mutex(false)

    /// Makes ``registry`` the process's swift-metrics backend. Idempotent: only the first call
    /// bootstraps `MetricsSystem` (which may be bootstrapped only once per process); later
    /// calls return the same registry. Call it before any other code bootstraps metrics.
    @discardableResult
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let first = bootstrapped.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        if first {
            MetricsSystem.bootstrap(AssayPrometheusFactory(registry: registry))
        }
        return registry
    }

    /// The Prometheus text exposition (format 0.0.4) of ``registry``: what `GET /metrics`
    /// returns, with content type `text/plain; version=0.0.4; charset=utf-8`.
    @Sendable
    public static func prometheusText() -> String {
        registry.emitToString()
    }

    /// The content type of ``prometheusText()``.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Metrics recorded into a registry of their own, and its Prometheus text: for tests and
    /// for embedding services without touching the process-wide backend.
    public static func isolated() -> (metrics: AssayMetrics, prometheusText: @Sendable () -> String) {
        let registry = PrometheusCollectorRegistry()
        return (AssayMetrics(factory: AssayPrometheusFactory(registry: registry)), { registry.emitToString() })
    }

    // MARK: - Ingest

    /// Messages read from the traces topic.
    public func messagesConsumed(topic: String, partition: Int32, count: Int) {
        counter(.messagesConsumed, [topic, String(partition)]).increment(by: count)
    }

    /// Messages of a partition stored as trace data.
    public func tracesStored(topic: String, partition: Int32, count: Int) {
        counter(.tracesStored, [topic, String(partition)]).increment(by: count)
    }

    /// Dead letters stored, by reason.
    public func deadLetters(topic: String, reason: String, count: Int) {
        counter(.deadLetters, [topic, reason]).increment(by: count)
    }

    public func messagesAlreadyDurable(topic: String, count: Int) {
        counter(.messagesAlreadyDurable, [topic]).increment(by: count)
    }

    public func batchWriteRetry(topic: String) {
        counter(.batchWriteRetries, [topic]).increment()
    }

    public func retentionLost(topic: String, messages: Int64) {
        counter(.retentionLostMessages, [topic]).increment(by: messages)
    }

    /// One successful ingest batch write and how long it took.
    public func batchWritten(topic: String, duration: Duration) {
        timer(.batchWriteDuration, [topic]).recordNanoseconds(duration.wholeNanoseconds)
    }

    /// The lag of one assigned partition.
    public func consumerLag(topic: String, partition: Int32, messages: Int64) {
        gauge(.consumerLag, [topic, String(partition)]).record(messages)
    }

    /// Removes the lag series of a partition this replica no longer holds.
    public func removeConsumerLag(topic: String, partition: Int32) {
        gauge(.consumerLag, [topic, String(partition)]).destroy()
    }

    // MARK: - Windows and scoring

    public func windowClosed() {
        counter(.windowsClosed, []).increment()
    }

    public func assessment(scorer: String, outcome: String, count: Int = 1) {
        counter(.assessments, [scorer, outcome]).increment(by: count)
    }

    /// A scorer's counts in a window's first summary.
    public func windowSummary(scorer: String, scored: Int, passed: Int) {
        counter(.windowTracesScored, [scorer]).increment(by: scored)
        counter(.windowTracesPassed, [scorer]).increment(by: passed)
    }

    /// Regression alerts published for a scorer (`count` 0 creates the series at zero).
    public func regressionAlerts(scorer: String, count: Int = 1) {
        counter(.regressionAlerts, [scorer]).increment(by: count)
    }

    public func configVersion(_ version: Int64) {
        gauge(.configVersion, []).record(version)
    }

    // MARK: - Judges

    /// One finished judge call: its wall time, whether it failed, and the tokens reported.
    public func judgeCall(judge: String, scorerKind: String, duration: Duration, failed: Bool, inputTokens: Int, outputTokens: Int) {
        let labels = [judge, scorerKind]
        counter(.judgeCalls, labels).increment()
        // Incremented by 0 on success, so the error series exists from the first call.
        counter(.judgeErrors, labels).increment(by: failed ? 1 : 0)
        timer(.judgeCallDuration, labels).recordNanoseconds(duration.wholeNanoseconds)
        counter(.judgeTokens, labels + ["input"]).increment(by: max(0, inputTokens))
        counter(.judgeTokens, labels + ["output"]).increment(by: max(0, outputTokens))
    }

    public func judgeCacheHit(judge: String, scorerKind: String) {
        counter(.judgeCacheHits, [judge, scorerKind]).increment()
    }

    public func judgeBudgetSkip(judge: String, scorerKind: String) {
        counter(.judgeBudgetSkips, [judge, scorerKind]).increment()
    }

    // MARK: - Outbox

    public func outboxBacklog(_ messages: Int) {
        gauge(.outboxBacklog, []).record(messages)
    }

    public func outboxPublished(count: Int) {
        counter(.outboxPublished, []).increment(by: count)
    }

    // MARK: - Process

    /// How late one wake-up of the scheduling probe was (zero or more).
    public func taskSchedulingDelay(_ delay: Duration) {
        timer(.taskSchedulingDelay, []).recordNanoseconds(max(delay, .zero).wholeNanoseconds)
    }

    // MARK: - Instruments

    private func dimensions(_ family: MetricFamily, _ values: [String]) -> [(String, String)] {
        // Every caller above passes one value per label name, in order.
        Array(zip(family.labelNames, values))
    }

    private func counter(_ family: MetricFamily, _ values: [String]) -> CoreMetrics.Counter {
        if let factory {
            return CoreMetrics.Counter(label: family.name, dimensions: dimensions(family, values), factory: factory)
        }
        return CoreMetrics.Counter(label: family.name, dimensions: dimensions(family, values))
    }

    private func gauge(_ family: MetricFamily, _ values: [String]) -> CoreMetrics.Gauge {
        if let factory {
            return CoreMetrics.Gauge(label: family.name, dimensions: dimensions(family, values), factory: factory)
        }
        return CoreMetrics.Gauge(label: family.name, dimensions: dimensions(family, values))
    }

    private func timer(_ family: MetricFamily, _ values: [String]) -> CoreMetrics.Timer {
        if let factory {
            return CoreMetrics.Timer(label: family.name, dimensions: dimensions(family, values), factory: factory)
        }
        return CoreMetrics.Timer(label: family.name, dimensions: dimensions(family, values))
    }
}

extension Duration {
    /// Whole nanoseconds, saturating at the bounds of Int64.
    var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? Int64.min : Int64.max }
        let (sum, sumOverflow) = product.addingReportingOverflow(attoseconds / 1_000_000_000)
        return sumOverflow ? (seconds < 0 ? Int64.min : Int64.max) : sum
    }
}
