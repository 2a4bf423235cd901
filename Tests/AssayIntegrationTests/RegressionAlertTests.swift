// Pass-rate regression alerts (alert/v1): the detection hook on stored window summaries, and
// end to end through ingest, scoring and the outbox, with the metrics scraped from a registry
// of the test's own.

import AssayCore
import AssayMetrics
import AssayPipeline
import AssayStore
import AssayTestSupport
import Foundation
import Kafka
import Postgres
import ServiceLifecycle
import Testing

/// A monitor with one code scorer, `no_error` (passes iff the trace's state is OK), every trace scored.
private func noErrorMonitor() throws -> MonitorConfig {
    try MonitorConfig.parse(Array("""
        {"name": "regression", "destination": {"schema": "assay"}, "sample_rate": 1.0,
         "window": "10s", "allowed_lateness": "1s",
         "scorers": [{"name": "no_error", "kind": "no_error"}],
         "paused": false}
        """.utf8))
}

/// `count` traces inside window number `window` (of `width` from `start`), failing at `errorRate`.
private func windowTraces(count: Int, window: Int, start: Int64, width: Int64, errorRate: Double, seed: UInt64) -> [ProducerMessage] {
    let windowStart = start + Int64(window) * width
    var generator = SyntheticTraceGenerator(seed: seed, startNanos: windowStart, spacingNanos: width / Int64(count + 1))
    generator.errorRate = errorRate
    return (0..<count).map { _ in
        let trace = generator.next()
        precondition(trace.requestTimeNanos >= windowStart && trace.requestTimeNanos < windowStart + width, "test traffic outside its window")
        return ProducerMessage(topic: "traces", key: Array(trace.traceID.utf8), value: trace.json)
    }
}

/// The alert/v1 JSON Schema from the repository.
private func alertSchema() throws -> JSONSchemaChecker {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("schemas/alert.schema.json")
    return try JSONSchemaChecker(schemaBytes: Array(try Data(contentsOf: url)))
}

/// One replica's ingest, scoring and outbox, recording metrics into `metrics`.
private final class MeteredReplica: Sendable {
    let scoring: ScoringService
    private let group: ServiceGroup
    private let task: Task<Void, Error>

    init(env: Environment, metrics: AssayMetrics) {
        var ingestConfiguration = env.ingestConfiguration(replica: "r1")
        ingestConfiguration.metrics = metrics
        var scoringConfiguration = ScoringConfiguration(owner: "r1")
        scoringConfiguration.idleTimeout = .seconds(2)
        scoringConfiguration.tick = .milliseconds(100)
        scoringConfiguration.metrics = metrics
        var outboxConfiguration = OutboxPublisher.Configuration(brokers: env.cluster.bootstrapServers)
        outboxConfiguration.tick = .milliseconds(100)
        outboxConfiguration.backlogInterval = .milliseconds(200)
        outboxConfiguration.metrics = metrics
        scoring = ScoringService(configuration: scoringConfiguration, pool: env.pool, logger: quietLogger)
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: IngestService(configuration: ingestConfiguration, pool: env.pool, logger: quietLogger)),
            .init(service: scoring),
            .init(service: OutboxPublisher(configuration: outboxConfiguration, pool: env.pool, logger: quietLogger)),
        ]
        group = ServiceGroup(configuration: .init(services: services, logger: quietLogger))
        let group = self.group
        task = Task { try await group.run() }
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

/// Parsed `name{labels} value` lines of a Prometheus scrape (comments skipped).
func scrapeValues(_ text: String) -> [(name: String, labels: String, value: Double)] {
    text.split(separator: "\n").compactMap { line -> (String, String, Double)? in
        guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
        let series = line[..<space]
        if let brace = series.firstIndex(of: "{") { return (String(series[..<brace]), String(series[brace...]), value) }
        return (String(series), "", value)
    }
}

@Suite("Regression alerts", .serialized)
struct RegressionAlertTests {
    @Test("the hook alerts once for a significant drop, never twice for the same window, and not for noise or late revisions")
    func hookOnStoredSummaries() async throws {
        try await Environment.with(partitions: 1) { env in
            let width: Int64 = 10_000_000_000
            let start: Int64 = 1_770_000_000_000_000_000
            // Six scored windows: no_error passes 95 of 100, steady passes 90 of 100.
            try await env.pool.withConnection { connection in
                for window in 0..<6 {
                    let windowStart = start + Int64(window) * width
                    _ = try connection.execute("INSERT INTO windows (window_start_ns, window_end_ns, config_version, state) VALUES ($1, $2, 1, 'scored')",
                                               [.text(String(windowStart)), .text(String(windowStart + width))])
                    for (scorer, passed) in [("no_error", 95), ("steady", 90)] {
                        _ = try connection.execute(
                            "INSERT INTO window_summaries (window_start_ns, scorer_name, window_end_ns, config_version, eligible, scored, passed, revision) VALUES ($1, $2, $3, 1, 100, 100, $4, 1)",
                            [.text(String(windowStart)), .text(scorer), .text(String(windowStart + width)), .text(String(passed))])
                    }
                }
            }
            let seventh = start + 6 * width
            @Sendable func summary(_ scorer: String, passed: Int, revision: Int = 1) -> WindowScorerSummary {
                WindowScorerSummary(windowStartNanos: seventh, windowEndNanos: seventh + width, scorerName: scorer, configVersion: 1, revision: revision,
                                    eligible: 100, filteredOut: 0, sampledOut: 0, notApplicable: 0, errored: 0, scored: 100, passed: passed, lateScored: 0)
            }
            let alerts = RegressionAlerts(rule: RegressionRule())
            // no_error drops to 60/100 (z = −10.80); steady stays at 88/100 (noise).
            let drop = [summary("no_error", passed: 60), summary("steady", passed: 88)]
            let first = try await env.pool.withConnection { try alerts.check(drop, nowMillis: 1_770_000_100_000, on: $0) }
            #expect(first.map(\.scorerName) == ["no_error"])
            let alert = try #require(first.first)
            #expect(alert.evaluation.baseline == PassCounts(scored: 600, passed: 570))
            #expect(abs((alert.evaluation.z ?? 0) - -10.8012) < 1e-3)

            // Testing the same window again (a retried pass, another replica): no second alert.
            let repeated = [summary("no_error", passed: 60)]
            let again = try await env.pool.withConnection { try alerts.check(repeated, nowMillis: 1_770_000_200_000, on: $0) }
            #expect(again.isEmpty)
            // A late revision of the window is not tested.
            let revised = [summary("steady", passed: 10, revision: 2)]
            let late = try await env.pool.withConnection { try alerts.check(revised, nowMillis: 1_770_000_300_000, on: $0) }
            #expect(late.isEmpty)

            let rows = try await env.pool.withConnection { connection in
                try connection.query("SELECT message_key, payload FROM outbox WHERE schema_name = 'alert/v1'").map { (try $0.string(0), try $0.string(1)) }
            }
            #expect(rows.count == 1)
            #expect(rows.first?.0 == "\(seventh)/no_error")
            let document = try JSONParser().parse(Array((rows.first?.1 ?? "").utf8))
            #expect(try alertSchema().isValid(document))
            #expect(document["alert_id"]?.stringValue == RegressionAlert.id(windowStartNanos: seventh, scorerName: "no_error"))
            #expect(document["baseline_windows"]?.int64Value == 6)
            #expect(try await env.count("alerts") == 1)
        }
    }

    @Test("7 windows, the 7th with a quality drop (95% → 60% no_error): exactly one alert/v1 on the topic, counted in the metrics")
    func endToEnd() async throws {
        try await Environment.with(partitions: 2) { env in
            try env.cluster.createTopic("assessments", partitions: 2)
            let monitor = try noErrorMonitor()
            _ = try await env.pool.withConnection { try MonitorStore(schema: .default).saveIfChanged(monitor, note: "test", nowNanos: 0, on: $0) }
            let width = monitor.window.widthNanos
            let start = (1_770_000_000_000_000_000 / width) * width
            let perWindow = 120
            var messages: [ProducerMessage] = []
            for window in 0..<7 {
                messages += windowTraces(count: perWindow, window: window, start: start, width: width,
                                         errorRate: window < 6 ? 0.05 : 0.40, seed: 700 + UInt64(window))
            }
            messages.append(ProducerMessage(topic: "traces", key: Array("garbage".utf8), value: Array("{not json".utf8)))

            let (metrics, scrape) = AssayMetrics.isolated()
            let replica = MeteredReplica(env: env, metrics: metrics)
            try await env.publish(messages)
            try await env.waitUntilScored(traces: 7 * perWindow)
            // The alert is inserted just after its window's summaries: wait for the outbox to drain again.
            _ = try await env.waitUntil("the alert published", query: { connection in
                let row = try connection.query("SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM outbox WHERE published_at IS NULL)")[0]
                return [try row.int(0), try row.int(1)]
            }, done: { $0[0] >= 1 && $0[1] == 0 })
            try await Task.sleep(for: .milliseconds(500))  // a refresh of the backlog gauge
            let outboxCount = try await env.count("outbox_messages")
            let statistics = replica.scoring.currentStatistics
            try await replica.stop()

            // The pass rates the generator produced: ~95% in windows 1–6, ~60% in window 7.
            let rates = try await env.pool.withConnection { connection in
                try connection.query("SELECT passed, scored FROM window_summaries WHERE scorer_name = 'no_error' ORDER BY window_start_ns")
                    .map { Double(try $0.int(0)) / Double(max(1, try $0.int(1))) }
            }
            #expect(rates.count == 7)
            #expect(rates.prefix(6).allSatisfy { $0 > 0.88 }, "\(rates)")
            #expect((rates.last ?? 1) < 0.72, "\(rates)")

            // Exactly one alert: in the table, in the outbox, on the topic.
            #expect(try await env.count("alerts") == 1)
            #expect(statistics.regressionAlerts == 1)
            let topic = try await env.readAssessmentsTopic(expected: outboxCount)
            let alerts = topic.filter { $0.header("assay-schema") == "alert/v1" }
            #expect(alerts.count == 1)
            let message = try #require(alerts.first)
            #expect(message.header("content-type") == "application/json")
            let document = try JSONParser().parse(message.value ?? [])
            #expect(try alertSchema().isValid(document))
            #expect(document["scorer_name"]?.stringValue == "no_error")
            #expect(document["window_start"]?.stringValue == TimeFormatting.rfc3339(nanos: start + 6 * width, fraction: .shortestExact))
            #expect((document["z"]?.doubleValue ?? 0) <= -2.33)
            #expect(document["baseline_windows"]?.int64Value == 6)
            #expect(message.key.map { String(decoding: $0, as: UTF8.self) } == "\(start + 6 * width)/no_error")

            // The scrape: the families this pipeline exercises, with plausible values.
            let text = scrape()
            if ProcessInfo.processInfo.environment["ASSAY_TEST_SCRAPE"] != nil { print(text) }
            let values = scrapeValues(text)
            func total(_ name: String, _ labelFilter: String = "") -> Double {
                values.filter { $0.name == name && (labelFilter.isEmpty || $0.labels.contains(labelFilter)) }.reduce(0) { $0 + $1.value }
            }
            #expect(total("assay_messages_consumed_total") == Double(messages.count))
            #expect(total("assay_traces_stored_total") == Double(7 * perWindow))
            #expect(Set(values.filter { $0.name == "assay_traces_stored_total" }.map(\.labels)).count == 2, "one series per partition")
            #expect(total("assay_dead_letters_total", "reason=\"invalid_json\"") == 1)
            #expect(total("assay_batch_write_duration_seconds_count") >= 1)
            #expect(values.contains { $0.name == "assay_consumer_lag_messages" })
            #expect(total("assay_windows_closed_total") == 7)
            #expect(total("assay_assessments_total", "scorer=\"no_error\"") == Double(7 * perWindow))
            #expect(total("assay_window_traces_scored_total", "scorer=\"no_error\"") == Double(7 * perWindow))
            #expect(total("assay_regression_alerts_total", "scorer=\"no_error\"") == 1)
            #expect(total("assay_config_version") == 1)
            #expect(total("assay_outbox_published_total") == Double(outboxCount))
            #expect(values.contains { $0.name == "assay_outbox_backlog_messages" && $0.value == 0 })
        }
    }
}
