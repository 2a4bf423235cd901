import AssayCore
import AssayPipeline
import AssayStore
import AssayTestSupport
import Foundation
import Kafka
import Postgres
import ServiceLifecycle
import Testing

/// The monitor the scoring tests use: rates 1.0, 0.4 and 0.2, no filters, so every sampled
/// trace gets exactly one assessment per scorer (N/A and errors are assessments too).
func scoringTestMonitor(windowSeconds: Int = 10) throws -> MonitorConfig {
    try MonitorConfig.parse(Array("""
        {"name": "it", "destination": {"schema": "assay"}, "sample_rate": 1.0,
         "window": "\(windowSeconds)s", "allowed_lateness": "1s",
         "scorers": [
            {"name": "no_error", "kind": "no_error"},
            {"name": "fast_enough", "kind": "latency", "sample_rate": 0.4, "params": {"max_ms": 4000}},
            {"name": "no_pii", "kind": "pii", "sample_rate": 0.2}
         ],
         "paused": false}
        """.utf8))
}

/// Ingest, scoring and outbox services of in-process replicas.
final class FullReplicas: Sendable {
    let ingest: [IngestService]
    let scoring: [ScoringService]
    let outbox: [OutboxPublisher]
    private let group: ServiceGroup
    private let task: Task<Void, Error>

    init(_ names: [String], env: Environment, idleTimeout: Duration = .seconds(2)) {
        ingest = names.map { IngestService(configuration: env.ingestConfiguration(replica: $0), pool: env.pool, logger: quietLogger) }
        scoring = names.map { name in
            var configuration = ScoringConfiguration(owner: name)
            configuration.idleTimeout = idleTimeout
            configuration.tick = .milliseconds(100)
            configuration.chunkSize = 300
            return ScoringService(configuration: configuration, pool: env.pool, logger: quietLogger)
        }
        outbox = names.map { _ in
            var configuration = OutboxPublisher.Configuration(brokers: env.cluster.bootstrapServers)
            configuration.tick = .milliseconds(100)
            return OutboxPublisher(configuration: configuration, pool: env.pool, logger: quietLogger)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        for index in names.indices {
            services += [.init(service: ingest[index]), .init(service: scoring[index]), .init(service: outbox[index])]
        }
        group = ServiceGroup(configuration: .init(services: services, logger: quietLogger))
        let group = self.group
        task = Task { try await group.run() }
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

/// Traces with request times inside `windows` consecutive windows of `width` from `start`.
/// Spacing leaves room at both ends, so every trace lands inside (about `perWindow` each).
func windowedMessages(perWindow: Int, windows: Int, start: Int64, width: Int64, seed: UInt64) -> [ProducerMessage] {
    let spacing = width / Int64(perWindow + 1)
    var generator = SyntheticTraceGenerator(seed: seed, startNanos: start, spacingNanos: spacing)
    return (0..<(perWindow * windows)).map { _ in
        let trace = generator.next()
        precondition(trace.requestTimeNanos >= start && trace.requestTimeNanos < start + Int64(windows) * width, "test traffic outside its windows")
        return ProducerMessage(topic: "traces", key: Array(trace.traceID.utf8), value: trace.json)
    }
}

extension Environment {
    /// Waits until every stored trace was handled by a window pass and the outbox is empty.
    func waitUntilScored(traces: Int, timeout: Duration = .seconds(180)) async throws {
        _ = try await waitUntil("all \(traces) traces scored and published", timeout: timeout, query: { connection in
            let row = try connection.query("""
                SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM traces WHERE scored_at IS NULL),
                       (SELECT count(*) FROM outbox WHERE published_at IS NULL), (SELECT count(*) FROM windows WHERE state <> 'scored')
                """)[0]
            return [try row.int(0), try row.int(1), try row.int(2), try row.int(3)]
        }, done: { $0[0] >= traces && $0[1] == 0 && $0[2] == 0 && $0[3] == 0 })
    }

    /// Every message on the assessments topic, read from the beginning until `expected` arrived.
    func readAssessmentsTopic(expected: Int, timeout: Duration = .seconds(60)) async throws -> [ConsumerMessage] {
        let consumer = try KafkaConsumer(configuration: .init(bootstrapServers: cluster.bootstrapServers, groupID: "downstream-\(UUID().uuidString)"),
                                         listener: BeginningListener(), logger: quietLogger)
        try await consumer.subscribe(topics: ["assessments"])
        var messages: [ConsumerMessage] = []
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while messages.count < expected && ContinuousClock.now < deadline {
            messages += try await consumer.poll(maxMessages: 2000, timeout: .milliseconds(200)).messages
        }
        // Anything beyond the expected count would be an extra message: look a little longer.
        messages += try await consumer.poll(maxMessages: 2000, timeout: .milliseconds(500)).messages
        await consumer.close()
        return messages
    }

    /// (trace id, rho) of every stored trace.
    func storedRhos() async throws -> [String: Double] {
        try await pool.withConnection { connection in
            var result: [String: Double] = [:]
            for row in try connection.query("SELECT trace_id, rho FROM traces") { result[try row.string(0)] = try row.double(1) }
            return result
        }
    }

    /// (trace id, scorer) → how many assessments, and the ids.
    func storedAssessments() async throws -> (pairs: [String: Int], ids: Set<String>) {
        try await pool.withConnection { connection in
            var pairs: [String: Int] = [:]
            var ids = Set<String>()
            for row in try connection.query("SELECT trace_id, scorer_name, assessment_id::text FROM assessments") {
                pairs["\(try row.string(0))|\(try row.string(1))", default: 0] += 1
                ids.insert(try row.string(2))
            }
            return (pairs, ids)
        }
    }
}

struct BeginningListener: ConsumerRebalanceListener {
    func startingOffsets(for partitions: [TopicPartition]) throws -> [TopicPartition: KafkaOffset] {
        Dictionary(uniqueKeysWithValues: partitions.map { ($0, .beginning) })
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {}
}

/// The assessment JSON Schema from the repository (schemas/ is part of every clone).
func assessmentSchema() throws -> JSONSchemaChecker {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("schemas/assessment.schema.json")
    return try JSONSchemaChecker(schemaBytes: Array(try Data(contentsOf: url)))
}

/// Checks that the topic holds exactly the stored assessments (duplicates allowed only with
/// identical bytes), each valid against the schema, keyed by trace id, with the headers.
func verifyTopic(_ messages: [ConsumerMessage], storedIDs: Set<String>) throws {
    let schema = try assessmentSchema()
    var payloads: [String: [UInt8]] = [:]
    var conflicting = 0
    var invalid = 0
    for message in messages where message.header("assay-schema") == "assessment/v1" {
        #expect(message.header("content-type") == "application/json")
        let document = try JSONParser().parse(message.value ?? [])
        if !schema.isValid(document) { invalid += 1 }
        let id = document["assessment_id"]?.stringValue ?? ""
        #expect(message.key.map { String(decoding: $0, as: UTF8.self) } == document["trace_id"]?.stringValue)
        if let previous = payloads[id], previous != message.value { conflicting += 1 }
        payloads[id] = message.value
    }
    #expect(invalid == 0, "assessments that fail schemas/assessment.schema.json")
    #expect(conflicting == 0, "ids published with two different values")
    #expect(Set(payloads.keys) == storedIDs, "the topic holds exactly the stored assessments")
}

@Suite("Windows, sampling and scoring", .serialized)
struct ScoringPipelineTests {
    @Test("3 windows x 3,000 traces, 8 partitions, 2 replicas, rates 1.0/0.4/0.2: exactly the sampled assessments, nested, summaries add up")
    func threeWindows() async throws {
        try await Environment.with(partitions: 8) { env in
            try env.cluster.createTopic("assessments", partitions: 8)
            let monitor = try scoringTestMonitor()
            _ = try await env.pool.withConnection { try MonitorStore(schema: .default).saveIfChanged(monitor, note: "test", nowNanos: 0, on: $0) }
            let width = monitor.window.widthNanos
            let start = (1_770_000_000_000_000_000 / width) * width
            let messages = windowedMessages(perWindow: 3000, windows: 3, start: start, width: width, seed: 21)
            let replicas = FullReplicas(["r1", "r2"], env: env)
            try await env.publish(messages)
            try await env.waitUntilScored(traces: 9000)
            let outboxCount = try await env.count("outbox_messages")
            try await replicas.stop()

            // PostgreSQL: a trace has an assessment from scorer S iff rho < rate(S), exactly one.
            let rhos = try await env.storedRhos()
            let (pairs, ids) = try await env.storedAssessments()
            let rates = Dictionary(uniqueKeysWithValues: monitor.scorers.map { ($0.name, $0.effectiveRate(global: monitor.sampleRate)) })
            var expected: [String: Int] = [:]
            for (trace, rho) in rhos {
                #expect(rho == Sampler.rho(canonicalTraceID: Trace.canonicalTraceID(for: trace)), "rho stored at ingest")
                for (scorer, rate) in rates where Sampler.isSampled(rho: rho, rate: rate) { expected["\(trace)|\(scorer)"] = 1 }
            }
            #expect(rhos.count == 9000)
            #expect(pairs == expected, "assessments = exactly the sampled (trace, scorer) pairs, once each")
            let sampled = { (scorer: String) in Set(pairs.keys.filter { $0.hasSuffix("|" + scorer) }.map { $0.split(separator: "|")[0] }) }
            #expect(sampled("no_pii").isSubset(of: sampled("fast_enough")), "the 0.2 set is inside the 0.4 set")
            #expect(sampled("fast_enough").isSubset(of: sampled("no_error")))
            let fraction = Double(sampled("fast_enough").count) / 9000
            #expect(abs(fraction - 0.4) < 0.03, "rate 0.4 sampled \(fraction)")

            // Summaries: one row per (window, scorer), adding up, matching the assessments.
            let summaries = try await env.pool.withConnection { connection in
                try connection.query("""
                    SELECT s.window_start_ns, s.scorer_name, s.eligible, s.sampled_out, s.filtered_out, s.not_applicable, s.errored,
                           s.scored, s.passed, s.revision,
                           (SELECT count(*) FROM traces t WHERE t.request_time_ns >= s.window_start_ns AND t.request_time_ns < s.window_end_ns),
                           (SELECT count(*) FROM assessments a WHERE a.window_start_ns = s.window_start_ns AND a.scorer_name = s.scorer_name)
                    FROM window_summaries s ORDER BY 1, 2
                    """).map { row in try (0..<12).map { index in index == 1 ? 0 : try row.int64(index) } + [Int64(try row.string(1).count)] }
            }
            #expect(summaries.count == 3 * 3, "3 windows x 3 scorers")
            for row in summaries {
                #expect(row[2] == row[10], "eligible = traces in the window")
                #expect(row[2] == row[3] + row[4] + row[5] + row[6] + row[7], "eligible = sampled_out + filtered_out + N/A + errored + scored")
                #expect(row[5] + row[6] + row[7] == row[11], "one assessment per selected trace")
                #expect(row[8] <= row[7])
                #expect(row[9] == 1, "summarised once")
            }

            // The topic: the same assessments, valid, no id with two values; plus 9 summaries.
            let topic = try await env.readAssessmentsTopic(expected: outboxCount)
            try verifyTopic(topic, storedIDs: ids)
            #expect(topic.filter { $0.header("assay-schema") == "window-summary/v1" }.count == 9)
            #expect(replicas.scoring.allSatisfy { $0.currentStatistics.configVersion == 1 })
        }
    }

    @Test("traces arriving after their window was scored are stored, scored if sampled, flagged late and counted")
    func lateTraces() async throws {
        try await Environment.with(partitions: 2) { env in
            try env.cluster.createTopic("assessments", partitions: 2)
            let monitor = try scoringTestMonitor()
            _ = try await env.pool.withConnection { try MonitorStore(schema: .default).saveIfChanged(monitor, note: "test", nowNanos: 0, on: $0) }
            let width = monitor.window.widthNanos
            let start = (1_770_000_000_000_000_000 / width) * width
            let replicas = FullReplicas(["r1"], env: env)
            try await env.publish(windowedMessages(perWindow: 300, windows: 1, start: start, width: width, seed: 31))
            try await env.waitUntilScored(traces: 300)
            let late = windowedMessages(perWindow: 120, windows: 1, start: start, width: width, seed: 32)
            try await env.publish(late)
            try await env.waitUntilScored(traces: 420)
            let outboxCount = try await env.count("outbox_messages")
            try await replicas.stop()

            let lateIDs = Set(late.compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } })
            let flagged = try await env.pool.withConnection { connection in
                Set(try connection.query("SELECT trace_id FROM traces WHERE late").map { try $0.string(0) })
            }
            #expect(flagged == lateIDs, "exactly the traces stored after the window closed are late")
            let (pairs, ids) = try await env.storedAssessments()
            let rhos = try await env.storedRhos()
            let lateSampled = lateIDs.filter { Sampler.isSampled(rho: rhos[$0] ?? 1, rate: 0.4) }
            #expect(lateSampled.allSatisfy { pairs["\($0)|fast_enough"] == 1 }, "late traces are scored when sampled")
            let lateAssessments = try await env.pool.withConnection { try $0.query("SELECT count(*) FROM assessments WHERE late")[0].int(0) }
            #expect(lateAssessments == pairs.filter { lateIDs.contains(String($0.key.split(separator: "|")[0])) }.count)
            let summary = try await env.pool.withConnection { connection in
                try connection.query("SELECT eligible, scored, late_scored, revision FROM window_summaries WHERE scorer_name = 'no_error'")[0]
            }
            #expect(try summary.int(0) == 420)
            #expect(try summary.int(1) == 420)
            #expect(try summary.int(2) == 120)
            #expect(try summary.int(3) >= 2, "the summary was published again")
            let windowLate = try await env.pool.withConnection { try $0.query("SELECT late_traces FROM windows")[0].int(0) }
            #expect(windowLate == 120)
            let topic = try await env.readAssessmentsTopic(expected: outboxCount)
            try verifyTopic(topic, storedIDs: ids)
            let summaryRevisions = topic.filter { $0.header("assay-schema") == "window-summary/v1" }
                .compactMap { try? JSONParser().parse($0.value ?? []) }
                .filter { $0["scorer_name"]?.stringValue == "no_error" }
                .compactMap { $0["revision"]?.int64Value }
            #expect(summaryRevisions.sorted().first == 1)
            #expect(Set(summaryRevisions).count == summaryRevisions.count, "each revision once")
        }
    }

    @Test("a window whose last chunk committed but whose summaries were never published is finished by the next replica")
    func windowStoppedBeforeFinishing() async throws {
        try await Environment.with(partitions: 2) { env in
            try env.cluster.createTopic("assessments", partitions: 2)
            let monitor = try scoringTestMonitor()
            _ = try await env.pool.withConnection { try MonitorStore(schema: .default).saveIfChanged(monitor, note: "test", nowNanos: 0, on: $0) }
            let width = monitor.window.widthNanos
            let start = (1_770_000_000_000_000_000 / width) * width
            let first = FullReplicas(["r1"], env: env)
            try await env.publish(windowedMessages(perWindow: 200, windows: 1, start: start, width: width, seed: 41))
            try await env.waitUntilScored(traces: 200)
            try await first.stop()
            let assessments = try await env.count("assessments")

            // As if r1 stopped right after its last chunk: every trace handled, the window
            // still closed and its summaries not published, r1's lease expired.
            try await env.pool.withConnection { connection in
                _ = try connection.execute("UPDATE windows SET state = 'closed', scored_at = NULL, lease_owner = 'r1', lease_until = now() - interval '1 second'")
                _ = try connection.execute("UPDATE window_summaries SET needs_publish = true")
            }
            let revisions = try await env.pool.withConnection { connection in
                Dictionary(uniqueKeysWithValues: try connection.query("SELECT scorer_name, revision FROM window_summaries").map { (try $0.string(0), try $0.int(1)) })
            }
            #expect(revisions.count == 3)

            let second = FullReplicas(["r2"], env: env)
            _ = try await env.waitUntil("the window finished by r2", timeout: .seconds(60), query: { connection in
                let row = try connection.query("""
                    SELECT (SELECT count(*) FROM windows WHERE state <> 'scored'), (SELECT count(*) FROM window_summaries WHERE needs_publish)
                    """)[0]
                return [try row.int(0), try row.int(1)]
            }, done: { $0 == [0, 0] })
            try await second.stop()
            let after = try await env.pool.withConnection { connection in
                Dictionary(uniqueKeysWithValues: try connection.query("SELECT scorer_name, revision FROM window_summaries").map { (try $0.string(0), try $0.int(1)) })
            }
            #expect(after == revisions.mapValues { $0 + 1 }, "each summary published once more")
            #expect(try await env.count("assessments") == assessments, "nothing scored twice")
        }
    }

    @Test("SIGKILL while a window is being scored, then between publishing and marking: every assessment once, no id with two values")
    func crashesDuringScoringAndPublishing() async throws {
        try await Environment.with(partitions: 4) { env in
            try env.cluster.createTopic("assessments", partitions: 4)
            let monitor = try scoringTestMonitor()
            let monitorFile = FileManager.default.temporaryDirectory.appendingPathComponent("monitor-\(UUID().uuidString).json")
            try monitor.json().serialized().write(to: monitorFile, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: monitorFile) }
            let width = monitor.window.widthNanos
            let start = (1_770_000_000_000_000_000 / width) * width
            try await env.publish(windowedMessages(perWindow: 1000, windows: 2, start: start, width: width, seed: 41))
            let common = ["--monitor", monitorFile.path, "--idle-timeout-seconds", "1", "--scoring-chunk-size", "100", "--scoring-lease-seconds", "3"]

            // 1. Dies after three chunks of the first window are committed.
            let first = try ServeProcess(environment: env, replica: "a", extraArguments: common + ["--debug-crash-after-scoring-chunks", "3"])
            await first.exited()
            #expect(first.process.terminationReason == .uncaughtSignal, "log:\n\(first.log.suffix(1500))")
            let partial = try await env.pool.withConnection { try $0.query("SELECT count(*) FROM traces WHERE scored_at IS NOT NULL")[0].int(0) }
            #expect(partial == 300, "three chunks of 100 were committed before the crash")

            // 2. Resumes the window after the lease expires, publishes a batch, dies before marking it.
            let second = try ServeProcess(environment: env, replica: "b", extraArguments: common + ["--debug-crash-after-publish"])
            await second.exited()
            #expect(second.process.terminationReason == .uncaughtSignal, "log:\n\(second.log.suffix(1500))")

            // 3. Finishes everything.
            let third = try ServeProcess(environment: env, replica: "c", extraArguments: common)
            try await env.waitUntilScored(traces: 2000, timeout: .seconds(240))
            let outboxCount = try await env.count("outbox_messages")
            await third.terminate()

            let rhos = try await env.storedRhos()
            let (pairs, ids) = try await env.storedAssessments()
            var expected: [String: Int] = [:]
            for (trace, rho) in rhos {
                for scorer in monitor.scorers where Sampler.isSampled(rho: rho, rate: scorer.effectiveRate(global: 1)) { expected["\(trace)|\(scorer.name)"] = 1 }
            }
            #expect(pairs == expected, "every expected assessment once in PostgreSQL")
            let counts = try await env.pool.withConnection { connection in
                try connection.query("""
                    SELECT s.scored + s.not_applicable + s.errored,
                           (SELECT count(*) FROM assessments a WHERE a.window_start_ns = s.window_start_ns AND a.scorer_name = s.scorer_name),
                           s.eligible, (SELECT count(*) FROM traces t WHERE t.request_time_ns >= s.window_start_ns AND t.request_time_ns < s.window_end_ns)
                    FROM window_summaries s
                    """).map { (try $0.int(0), try $0.int(1), try $0.int(2), try $0.int(3)) }
            }
            #expect(counts.count == 6)
            #expect(counts.allSatisfy { $0.0 == $0.1 && $0.2 == $0.3 }, "no trace counted twice across the crashes: \(counts)")
            let topic = try await env.readAssessmentsTopic(expected: outboxCount)
            try verifyTopic(topic, storedIDs: ids)
            #expect(topic.filter { $0.header("assay-schema") == "assessment/v1" }.count > ids.count, "the crash after publishing left republished duplicates (same bytes)")
        }
    }
}

@Suite("LLM judges in the pipeline", .serialized)
struct JudgePipelineTests {
    /// Saves a monitor of `scorers` with the offline judge capped at 40 calls per window, lets
    /// `prepare` touch the database (given the window's start), then has one replica score a
    /// window of 200 traces. Returns the window's start.
    static func scoreOneWindow(_ env: Environment, scorers: String, prepare: @Sendable (Int64) async throws -> Void = { _ in }) async throws -> Int64 {
        try env.cluster.createTopic("assessments", partitions: 2)
        let monitor = try MonitorConfig.parse(Array("""
            {"name": "budget", "destination": {"schema": "assay"}, "window": "10s", "allowed_lateness": "1s",
             "judge": {"kind": "offline", "max_calls_per_window": 40}, "scorers": \(scorers)}
            """.utf8))
        _ = try await env.pool.withConnection { try MonitorStore(schema: .default).saveIfChanged(monitor, note: "test", nowNanos: 0, on: $0) }
        let width = monitor.window.widthNanos
        let start = (1_770_000_000_000_000_000 / width) * width
        try await prepare(start)
        let replicas = FullReplicas(["r1"], env: env)
        try await env.publish(windowedMessages(perWindow: 200, windows: 1, start: start, width: width, seed: 51))
        try await env.waitUntilScored(traces: 200)
        try await replicas.stop()
        return start
    }

    static func judgeCalls(of start: Int64, env: Environment) async throws -> Int {
        try await env.pool.withConnection { try $0.query("SELECT calls FROM judge_usage WHERE window_start_ns = $1", [.text(String(start))])[0].int(0) }
    }

    @Test("the judge's per-window call budget stops judging; the rest are counted budget_skipped, never dropped")
    func budgetSkipped() async throws {
        try await Environment.with(partitions: 2) { env in
            let start = try await Self.scoreOneWindow(env, scorers: #"[{"name": "safety", "kind": "safety"}, {"name": "no_error", "kind": "no_error"}]"#)
            let rows = try await env.pool.withConnection { connection in
                try connection.query("""
                    SELECT scorer_name, eligible, budget_skipped, not_applicable, errored, scored,
                           (SELECT count(*) FROM assessments a WHERE a.scorer_name = s.scorer_name)
                    FROM window_summaries s ORDER BY scorer_name
                    """).map { row in (try row.string(0), try (1...6).map { index in try row.int(index) }) }
            }
            let safety = try #require(rows.first { $0.0 == "safety" }?.1)
            let noError = try #require(rows.first { $0.0 == "no_error" }?.1)
            // Errored traces have no response: N/A, decided without a call. Each answered trace costs one call.
            #expect(safety[0] == 200)
            #expect(safety[1] > 0, "traces past the budget are counted")
            #expect(safety[0] == safety[1] + safety[2] + safety[3] + safety[4], "eligible = budget_skipped + N/A + errored + scored")
            // 40 calls; identical responses asked at the same time share one call, so a few more
            // traces than calls can get a verdict.
            #expect(safety[4] >= 40 && safety[4] < 60, "the budget bounded the judged traces: \(safety)")
            #expect(safety[5] == safety[2] + safety[3] + safety[4], "no assessment for skipped traces")
            #expect(noError[1] == 0, "code scorers have no budget")
            #expect(noError[4] == 200)
            #expect(try await Self.judgeCalls(of: start, env: env) == 40, "every call is reported to the window's shared total")
        }
    }

    @Test("replicas share a window's call budget: calls another replica reported count against it")
    func budgetShared() async throws {
        try await Environment.with(partitions: 2) { env in
            // Another replica (or this one before a restart) spent 30 of the window's 40 calls.
            let pool = env.pool
            let start = try await Self.scoreOneWindow(env, scorers: #"[{"name": "safety", "kind": "safety"}]"#) { start in
                try await pool.withConnection {
                    _ = try $0.execute("INSERT INTO judge_usage (window_start_ns, calls) VALUES ($1, 30)", [.text(String(start))])
                }
            }
            let (skipped, scored) = try await env.pool.withConnection { connection in
                let row = try connection.query("SELECT budget_skipped, scored FROM window_summaries WHERE scorer_name = 'safety'")[0]
                return (try row.int(0), try row.int(1))
            }
            #expect(try await Self.judgeCalls(of: start, env: env) == 40, "10 calls of its own, then the budget was spent")
            // 10 calls; identical responses asked at the same time share one call.
            #expect(scored >= 10 && scored < 30, "the shared budget bounded the judged traces (40 or more without it): \(scored)")
            #expect(skipped > 100, "traces past the shared budget are counted: \(skipped)")
        }
    }

    @Test("a judge-usage report the database refused is not lost: it goes out with the next one, and the window's total holds every call")
    func refusedReportIsKept() async throws {
        try await Environment.with(partitions: 2) { env in
            // The first write to judge_usage fails (a sequence is not rolled back with it).
            let pool = env.pool
            let start = try await Self.scoreOneWindow(env, scorers: #"[{"name": "safety", "kind": "safety"}]"#) { _ in
                try await pool.withConnection {
                    try $0.executeScript("""
                        CREATE SEQUENCE judge_usage_writes;
                        CREATE FUNCTION refuse_first_judge_usage_write() RETURNS trigger LANGUAGE plpgsql AS $$
                        BEGIN
                            IF nextval('judge_usage_writes') = 1 THEN RAISE EXCEPTION 'injected: judge_usage write refused'; END IF;
                            RETURN NEW;
                        END $$;
                        CREATE TRIGGER refuse_first_write BEFORE INSERT OR UPDATE ON judge_usage
                            FOR EACH ROW EXECUTE FUNCTION refuse_first_judge_usage_write();
                        """)
                }
            }
            let writes = try await env.pool.withConnection { try $0.query("SELECT last_value FROM judge_usage_writes")[0].int(0) }
            #expect(writes >= 2, "the refused write, then at least one that went through")
            #expect(try await Self.judgeCalls(of: start, env: env) == 40, "the refused report's calls reached the total")
            try await env.pool.withConnection {
                try $0.executeScript("DROP TRIGGER refuse_first_write ON judge_usage; DROP FUNCTION refuse_first_judge_usage_write(); DROP SEQUENCE judge_usage_writes")
            }
        }
    }
}

@Suite("Backfill", .serialized)
struct BackfillTests {
    @Test("backfill over 2 past windows produces exactly the live assessments (same ids); a second run adds nothing; an interrupted run resumes")
    func sameIdsAsLive() async throws {
        try await Environment.with(partitions: 2) { env in
            try env.cluster.createTopic("assessments", partitions: 2)
            let monitor = try MonitorConfig.parse(Array("""
                {"name": "bf", "destination": {"schema": "assay"}, "window": "10s", "allowed_lateness": "1s",
                 "judge": {"kind": "offline"},
                 "scorers": [
                    {"name": "no_error", "kind": "no_error"},
                    {"name": "relevance_to_query", "kind": "relevance_to_query", "sample_rate": 0.5},
                    {"name": "retrieval_relevance", "kind": "retrieval_relevance", "sample_rate": 0.3, "max_per_window": 20}
                 ]}
                """.utf8))
            _ = try await env.pool.withConnection { try MonitorStore(schema: .default).saveIfChanged(monitor, note: "test", nowNanos: 0, on: $0) }
            let width = monitor.window.widthNanos
            let start = (1_770_000_000_000_000_000 / width) * width
            let replicas = FullReplicas(["r1"], env: env)
            try await env.publish(windowedMessages(perWindow: 150, windows: 2, start: start, width: width, seed: 61))
            try await env.waitUntilScored(traces: 300)
            try await replicas.stop()
            let live = try await env.storedAssessments().ids
            #expect(live.count > 300)

            // Forget the assessments, then backfill the two windows.
            _ = try await env.pool.withConnection { try $0.executeScript("DELETE FROM assessments; DELETE FROM outbox;") }
            let backfill = Backfill(pool: env.pool, schema: .default, logger: quietLogger)
            let request = BackfillRequest(fromNanos: start, toNanos: start + 2 * width)

            // Interrupted after the first window...
            let first = Task { try await backfill.run(request) { progress in
                if progress.windowsDone == 1 { withUnsafeCurrentTask { $0?.cancel() } }
            } }
            let partial = try await first.value
            #expect(partial.windowsDone == 1)
            // ...and resumed.
            let resumed = try await backfill.run(request) { _ in }
            #expect(resumed.resumed)
            #expect(resumed.windowsDone == 2)
            let backfilled = try await env.storedAssessments().ids
            #expect(backfilled == live, "backfill wrote exactly the assessments live scoring wrote (\(backfilled.count) vs \(live.count))")
            #expect(try await env.count("outbox_messages") == live.count, "each new assessment is queued for publishing once")

            let again = try await backfill.run(request) { _ in }
            #expect(!again.resumed)
            #expect(again.newAssessments == 0, "a second run adds nothing")
            #expect(try await env.storedAssessments().ids == live)
        }
    }
}

@Suite("Monitor updates while replicas run", .serialized)
struct MonitorPropagationTests {
    @Test("2 replicas; the monitor is updated (a rate changed, a scorer added): windows from the next boundary use the new version on both, none mixes versions")
    func updateTakesEffectAtNextWindow() async throws {
        try await Environment.with(partitions: 4) { env in
            try env.cluster.createTopic("assessments", partitions: 4)
            let v1 = try MonitorConfig.parse(Array("""
                {"name": "m", "destination": {"schema": "assay"}, "window": "10s", "allowed_lateness": "1s",
                 "scorers": [{"name": "no_error", "kind": "no_error"}, {"name": "fast_enough", "kind": "latency", "sample_rate": 0.2, "params": {"max_ms": 4000}}]}
                """.utf8))
            let store = MonitorStore(schema: .default)
            _ = try await env.pool.withConnection { try store.saveIfChanged(v1, note: "test", nowNanos: 0, on: $0) }
            let width = v1.window.widthNanos
            let start = (1_770_000_000_000_000_000 / width) * width
            let replicas = FullReplicas(["r1", "r2"], env: env)

            // Two windows under version 1.
            try await env.publish(windowedMessages(perWindow: 200, windows: 2, start: start, width: width, seed: 71))
            try await env.waitUntilScored(traces: 400)

            // Update while both replicas run: fast_enough from 0.2 to 0.6, and a new scorer.
            var v2 = v1
            v2.scorers[1].sampleRate = 0.6
            v2.scorers.append(try MonitorConfig.parse(Array(#"{"name":"x","destination":{"schema":"assay"},"scorers":[{"name":"no_pii","kind":"pii"}]}"#.utf8)).scorers[0])
            // "Now" is inside the third window's predecessor: the next boundary is start + 2W.
            let next = v2
            let updated = try await env.pool.withConnection { try store.update(next, expectedVersion: 1, note: "test", nowNanos: start + width + width / 2, on: $0) }
            #expect(updated.version == 2)
            #expect(updated.effectiveFromNanos == start + 2 * width)

            // Two more windows, after the boundary.
            try await env.publish(windowedMessages(perWindow: 200, windows: 2, start: start + 2 * width, width: width, seed: 72))
            try await env.waitUntilScored(traces: 800)
            try await replicas.stop()

            let windows = try await env.pool.withConnection { connection in
                try connection.query("SELECT window_start_ns, config_version FROM windows ORDER BY 1").map { (try $0.int64(0), try $0.int64(1)) }
            }
            #expect(windows.map(\.1) == [1, 1, 2, 2], "windows: \(windows)")
            // No window mixes versions: every assessment carries its window's version.
            let mixed = try await env.pool.withConnection { connection in
                try connection.query("""
                    SELECT count(*) FROM assessments a JOIN windows w ON w.window_start_ns = a.window_start_ns
                    WHERE a.config_version <> w.config_version
                       OR (a.document::jsonb -> 'metadata' ->> 'config_version')::bigint <> w.config_version
                    """)[0].int(0)
            }
            #expect(mixed == 0)
            let scorersByVersion = try await env.pool.withConnection { connection in
                try connection.query("SELECT config_version, string_agg(DISTINCT scorer_name, ',' ORDER BY scorer_name) FROM assessments GROUP BY 1 ORDER BY 1")
                    .map { (try $0.int64(0), try $0.string(1)) }
            }
            #expect(scorersByVersion.map(\.1) == ["fast_enough,no_error", "fast_enough,no_error,no_pii"])
            // The new rate applies in the new windows.
            let rhos = try await env.storedRhos()
            let fastEnough = try await env.pool.withConnection { connection in
                try connection.query("SELECT a.trace_id, a.config_version FROM assessments a WHERE scorer_name = 'fast_enough'").map { (try $0.string(0), try $0.int64(1)) }
            }
            #expect(fastEnough.allSatisfy { (rhos[$0.0] ?? 1) < ($0.1 == 1 ? 0.2 : 0.6) })
            #expect(fastEnough.filter { $0.1 == 2 }.count > fastEnough.filter { $0.1 == 1 }.count)
            #expect(replicas.scoring.allSatisfy { $0.currentStatistics.configVersion == 2 }, "both replicas switched")
        }
    }
}
