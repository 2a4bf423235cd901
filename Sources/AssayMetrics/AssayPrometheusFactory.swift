import CoreMetrics
import Metrics
import Prometheus

/// The swift-metrics backend that records into a `PrometheusCollectorRegistry`, like
/// swift-prometheus's `PrometheusMetricsFactory`, but with the `# HELP` text and histogram
/// buckets of Assay's ``MetricFamily`` catalog.
///
/// swift-metrics types map to Prometheus types as in swift-prometheus: counters (integer and
/// floating point) to counters, `Gauge`/`Meter` and non-aggregating `Recorder`s to gauges,
/// `Timer`s to duration histograms (seconds) and aggregating `Recorder`s to value histograms.
/// Metrics of other libraries (names outside the catalog) get no help text and the default
/// buckets.
public struct AssayPrometheusFactory: Sendable {
    /// The registry the metrics are recorded in.
    public let registry: PrometheusCollectorRegistry

    /// Buckets of `Timer`s whose name is not in the catalog.
    public static let defaultDurationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// Buckets of aggregating `Recorder`s.
    public static let defaultValueBuckets: [Double] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// The registry's descriptor for a swift-metrics label: the catalog's help text when the
    /// name is one of Assay's families. (The registry requires one help text per name, so a
    /// name always gets the same one.)
    private func descriptor(_ label: String) -> MetricNameDescriptor {
        let help = MetricFamily(rawValue: label)?.help ?? ""
        return MetricNameDescriptor(metricName: label.isEmpty ? "unnamed" : label, unitName: "", helpText: help)
    }

    private func durationBuckets(_ label: String) -> [Duration] {
        guard let family = MetricFamily(rawValue: label), !family.durationBuckets.isEmpty else { return Self.defaultDurationBuckets }
        return family.durationBuckets
    }
}

extension AssayPrometheusFactory: MetricsFactory {
    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else {
            return registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
        }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: Self.defaultValueBuckets)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: durationBuckets(label))
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        switch handler {
        case let gauge as Prometheus.Gauge: registry.unregisterGauge(gauge)
        case let histogram as ValueHistogram: registry.unregisterValueHistogram(histogram)
        default: break
        }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
