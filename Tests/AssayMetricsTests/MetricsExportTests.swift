// The metric catalog, the typed emitters and the Prometheus export. No test bootstraps the
// process-wide MetricsSystem: each records into a TestMetrics or a registry of its own.

import AssayMetrics
import CoreMetrics
import Metrics
import MetricsTestKit
import Prometheus
import Testing

/// Calls every emitter once or more, with known values.
func exerciseEveryFamily(_ metrics: AssayMetrics) {
    metrics.messagesConsumed(topic: "traces", partition: 0, count: 7)
    metrics.messagesConsumed(topic: "traces", partition: 1, count: 3)
    metrics.tracesStored(topic: "traces", partition: 0, count: 6)
    metrics.deadLetters(topic: "traces", reason: "invalid_json", count: 1)
    metrics.messagesAlreadyDurable(topic: "traces", count: 2)
    metrics.batchWriteRetry(topic: "traces")
    metrics.retentionLost(topic: "traces", messages: 5)
    metrics.batchWritten(topic: "traces", duration: .milliseconds(12))
    metrics.consumerLag(topic: "traces", partition: 0, messages: 42)
    metrics.windowClosed()
    metrics.assessment(scorer: "no_error", outcome: "pass", count: 9)
    metrics.assessment(scorer: "no_error", outcome: "fail")
    metrics.windowSummary(scorer: "no_error", scored: 10, passed: 9)
    metrics.regressionAlerts(scorer: "no_error")
    metrics.configVersion(3)
    metrics.judgeCall(judge: "openai:gpt-4o-mini", scorerKind: "safety", duration: .milliseconds(800), failed: false, inputTokens: 120, outputTokens: 8)
    metrics.judgeCall(judge: "openai:gpt-4o-mini", scorerKind: "safety", duration: .seconds(3), failed: true, inputTokens: 0, outputTokens: 0)
    metrics.judgeCacheHit(judge: "openai:gpt-4o-mini", scorerKind: "safety")
    metrics.judgeBudgetSkip(judge: "openai:gpt-4o-mini", scorerKind: "safety")
    metrics.outboxBacklog(17)
    metrics.outboxPublished(count: 11)
    metrics.taskSchedulingDelay(.milliseconds(3))
}

@Suite("Metric catalog")
struct MetricCatalogTests {
    @Test("every family is named assay_…, counters end in _total, histograms in _seconds, names are unique")
    func names() {
        let names = MetricFamily.allCases.map(\.name)
        #expect(Set(names).count == names.count)
        for family in MetricFamily.allCases {
            #expect(family.name.hasPrefix("assay_"), "\(family.name)")
            #expect(Exposition.isMetricName(family.name))
            #expect(!family.help.isEmpty)
            switch family.kind {
            case .counter: #expect(family.name.hasSuffix("_total"), "\(family.name)")
            case .histogram:
                #expect(family.name.hasSuffix("_seconds"), "\(family.name)")
                #expect(!family.durationBuckets.isEmpty)
            case .gauge: #expect(!family.name.hasSuffix("_total"), "\(family.name)")
            }
            #expect(Set(family.labelNames).count == family.labelNames.count)
            #expect(!family.labelNames.contains("le"))
        }
    }

    @Test("the issue's families are all in the catalog")
    func issueFamilies() {
        let required: [MetricFamily] = [
            .messagesConsumed, .tracesStored, .deadLetters, .consumerLag, .batchWriteDuration, .windowsClosed, .assessments,
            .judgeCalls, .judgeCallDuration, .judgeErrors, .judgeTokens, .outboxBacklog, .configVersion, .regressionAlerts,
        ]
        #expect(required.map(\.kind) == [.counter, .counter, .counter, .gauge, .histogram, .counter, .counter,
                                         .counter, .histogram, .counter, .counter, .gauge, .gauge, .counter])
        #expect(MetricFamily.messagesConsumed.labelNames.contains("partition"))
        #expect(MetricFamily.tracesStored.labelNames.contains("partition"))
        #expect(MetricFamily.consumerLag.labelNames.contains("partition"))
        #expect(MetricFamily.deadLetters.labelNames.contains("reason"))
        #expect(MetricFamily.assessments.labelNames == ["scorer", "outcome"])
        #expect(MetricFamily.regressionAlerts.labelNames == ["scorer"])
    }

    @Test("scraped series names map back to their family")
    func sampleNames() {
        #expect(MetricFamily.family(ofSample: "assay_judge_call_duration_seconds_bucket") == .judgeCallDuration)
        #expect(MetricFamily.family(ofSample: "assay_batch_write_duration_seconds_count") == .batchWriteDuration)
        #expect(MetricFamily.family(ofSample: "assay_messages_consumed_total") == .messagesConsumed)
        #expect(MetricFamily.family(ofSample: "assay_messages_consumed_total_bucket") == nil)
        #expect(MetricFamily.family(ofSample: "assay_nonexistent_total") == nil)
    }
}

@Suite("Emitters (MetricsTestKit)")
struct EmitterTests {
    @Test("emitters record the values with the catalog's labels, in order")
    func labelsAndValues() throws {
        let test = TestMetrics()
        exerciseEveryFamily(AssayMetrics(factory: test))

        #expect(try test.expectCounter("assay_messages_consumed_total", [("topic", "traces"), ("partition", "0")]).totalValue == 7)
        #expect(try test.expectCounter("assay_messages_consumed_total", [("topic", "traces"), ("partition", "1")]).totalValue == 3)
        #expect(try test.expectCounter("assay_traces_stored_total", [("topic", "traces"), ("partition", "0")]).totalValue == 6)
        #expect(try test.expectCounter("assay_dead_letters_total", [("topic", "traces"), ("reason", "invalid_json")]).totalValue == 1)
        #expect(try test.expectGauge("assay_consumer_lag_messages", [("topic", "traces"), ("partition", "0")]).lastValue == 42)
        #expect(try test.expectTimer("assay_batch_write_duration_seconds", [("topic", "traces")]).lastValue == 12_000_000)
        #expect(try test.expectCounter("assay_windows_closed_total").totalValue == 1)
        #expect(try test.expectCounter("assay_assessments_total", [("scorer", "no_error"), ("outcome", "pass")]).totalValue == 9)
        #expect(try test.expectCounter("assay_window_traces_scored_total", [("scorer", "no_error")]).totalValue == 10)
        #expect(try test.expectCounter("assay_window_traces_passed_total", [("scorer", "no_error")]).totalValue == 9)
        #expect(try test.expectCounter("assay_regression_alerts_total", [("scorer", "no_error")]).totalValue == 1)
        #expect(try test.expectGauge("assay_config_version").lastValue == 3)
        let judge = [("judge", "openai:gpt-4o-mini"), ("scorer_kind", "safety")]
        #expect(try test.expectCounter("assay_judge_calls_total", judge).totalValue == 2)
        #expect(try test.expectCounter("assay_judge_errors_total", judge).totalValue == 1)
        #expect(try test.expectCounter("assay_judge_tokens_total", judge + [("direction", "input")]).totalValue == 120)
        #expect(try test.expectCounter("assay_judge_tokens_total", judge + [("direction", "output")]).totalValue == 8)
        #expect(try test.expectTimer("assay_judge_call_duration_seconds", judge).values == [800_000_000, 3_000_000_000])
        #expect(try test.expectCounter("assay_judge_cache_hits_total", judge).totalValue == 1)
        #expect(try test.expectCounter("assay_judge_budget_skips_total", judge).totalValue == 1)
        #expect(try test.expectGauge("assay_outbox_backlog_messages").lastValue == 17)
        #expect(try test.expectCounter("assay_outbox_published_total").totalValue == 11)

        // Every family was emitted, with exactly its catalog labels.
        var seen: [String: [[String]]] = [:]
        for counter in test.counters { seen[counter.label, default: []].append(counter.dimensions.map(\.0)) }
        for recorder in test.recorders { seen[recorder.label, default: []].append(recorder.dimensions.map(\.0)) }
        for timer in test.timers { seen[timer.label, default: []].append(timer.dimensions.map(\.0)) }
        for family in MetricFamily.allCases {
            let labelSets = seen[family.name] ?? []
            #expect(!labelSets.isEmpty, "\(family.name) was not emitted")
            #expect(labelSets.allSatisfy { $0 == family.labelNames }, "\(family.name) labels \(labelSets)")
        }
        #expect(Set(seen.keys) == Set(MetricFamily.allCases.map(\.name)))
    }

    @Test("a successful judge call creates the error series at zero")
    func errorSeriesAtZero() throws {
        let test = TestMetrics()
        AssayMetrics(factory: test).judgeCall(judge: "j", scorerKind: "safety", duration: .seconds(1), failed: false, inputTokens: 1, outputTokens: 1)
        #expect(try test.expectCounter("assay_judge_errors_total", [("judge", "j"), ("scorer_kind", "safety")]).totalValue == 0)
    }
}

@Suite("Prometheus export")
struct PrometheusExportTests {
    @Test("a scrape has every family with its TYPE, HELP and labels, and plausible values; every line parses")
    func everyFamily() throws {
        let registry = PrometheusCollectorRegistry()
        exerciseEveryFamily(AssayMetrics(factory: AssayPrometheusFactory(registry: registry)))
        let text = registry.emitToString()
        let scrape = try Exposition.parse(text)

        for family in MetricFamily.allCases {
            #expect(scrape.types[family.name] == family.kind.rawValue, "TYPE of \(family.name)")
            #expect(scrape.help[family.name] == family.help, "HELP of \(family.name)")
            let samples = family.sampleNames.flatMap { scrape.samples(named: $0) }
            #expect(!samples.isEmpty, "no samples of \(family.name)")
            for sample in samples {
                let expected = sample.name.hasSuffix("_bucket") ? family.labelNames + ["le"] : family.labelNames
                #expect(Set(sample.labelNames) == Set(expected), "labels of \(sample.name): \(sample.labelNames)")
                #expect(sample.value.isFinite && sample.value >= 0, "\(sample.name) = \(sample.value)")
            }
        }
        // Nothing outside the catalog.
        #expect(scrape.samples.allSatisfy { MetricFamily.family(ofSample: $0.name) != nil })

        #expect(scrape.value("assay_messages_consumed_total", ["topic": "traces", "partition": "0"]) == 7)
        #expect(scrape.value("assay_consumer_lag_messages", ["topic": "traces", "partition": "0"]) == 42)
        #expect(scrape.value("assay_dead_letters_total", ["topic": "traces", "reason": "invalid_json"]) == 1)
        #expect(scrape.value("assay_config_version", [:]) == 3)
        #expect(scrape.value("assay_outbox_backlog_messages", [:]) == 17)
        #expect(scrape.value("assay_regression_alerts_total", ["scorer": "no_error"]) == 1)
        #expect(scrape.value("assay_judge_tokens_total", ["judge": "openai:gpt-4o-mini", "scorer_kind": "safety", "direction": "input"]) == 120)

        // Histograms: seconds, cumulative buckets, +Inf equal to the count.
        let judge = ["judge": "openai:gpt-4o-mini", "scorer_kind": "safety"]
        #expect(scrape.value("assay_judge_call_duration_seconds_count", judge) == 2)
        #expect(scrape.value("assay_judge_call_duration_seconds_sum", judge).map { abs($0 - 3.8) < 1e-9 } == true)
        #expect(scrape.value("assay_judge_call_duration_seconds_bucket", judge.merging(["le": "1.0"]) { $1 }) == 1)
        #expect(scrape.value("assay_judge_call_duration_seconds_bucket", judge.merging(["le": "+Inf"]) { $1 }) == 2)
        let writeBuckets = scrape.samples(named: "assay_batch_write_duration_seconds_bucket")
        #expect(writeBuckets.count == MetricFamily.batchWriteDuration.durationBuckets.count + 1)
        #expect(scrape.value("assay_batch_write_duration_seconds_bucket", ["topic": "traces", "le": "0.01"]) == 0)
        #expect(scrape.value("assay_batch_write_duration_seconds_bucket", ["topic": "traces", "le": "0.025"]) == 1)
    }

    @Test("the reader rejects lines that are not exposition format")
    func readerIsStrict() {
        #expect(throws: ExpositionError.self) { try Exposition.parse("assay_x_total{a=\"1\" 3\n") }
        #expect(throws: ExpositionError.self) { try Exposition.parse("# random comment\n") }
        #expect(throws: ExpositionError.self) { try Exposition.parse("assay_x_total three\n") }
        #expect(throws: ExpositionError.self) { try Exposition.parse("# TYPE assay_x_total counter\n# TYPE assay_x_total counter\n") }
        #expect(throws: Never.self) { try Exposition.parse("# TYPE assay_x_total counter\nassay_x_total{a=\"q\\\"\"} 3\n") }
    }

    @Test("a partition's lag series can be removed when the partition moves away")
    func lagRemoval() throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = AssayMetrics(factory: AssayPrometheusFactory(registry: registry))
        metrics.consumerLag(topic: "traces", partition: 0, messages: 5)
        metrics.consumerLag(topic: "traces", partition: 1, messages: 9)
        metrics.removeConsumerLag(topic: "traces", partition: 0)
        let scrape = try Exposition.parse(registry.emitToString())
        #expect(scrape.value("assay_consumer_lag_messages", ["topic": "traces", "partition": "0"]) == nil)
        #expect(scrape.value("assay_consumer_lag_messages", ["topic": "traces", "partition": "1"]) == 9)
    }

    @Test("prometheusText() renders the shared registry (recorded here without bootstrapping the process)")
    func sharedRegistryText() throws {
        let metrics = AssayMetrics(factory: AssayPrometheusFactory(registry: AssayMetrics.registry))
        metrics.outboxPublished(count: 2)
        let scrape = try Exposition.parse(AssayMetrics.prometheusText())
        #expect((scrape.value("assay_outbox_published_total", [:]) ?? 0) >= 2)
        #expect(AssayMetrics.contentType.hasPrefix("text/plain; version=0.0.4"))
    }

    @Test("metrics of other libraries go to the registry without help text, with default buckets")
    func foreignMetrics() throws {
        let registry = PrometheusCollectorRegistry()
        let factory = AssayPrometheusFactory(registry: registry)
        CoreMetrics.Counter(label: "other_requests_total", dimensions: [("code", "200")], factory: factory).increment()
        CoreMetrics.Timer(label: "other_seconds", factory: factory).recordMilliseconds(7)
        let scrape = try Exposition.parse(registry.emitToString())
        #expect(scrape.value("other_requests_total", ["code": "200"]) == 1)
        #expect(scrape.help["other_requests_total"] == nil)
        #expect(scrape.samples(named: "other_seconds_bucket").count == AssayPrometheusFactory.defaultDurationBuckets.count + 1)
    }
}
