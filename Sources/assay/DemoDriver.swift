import AssayCore
import AssayPipeline
import AssayStore
import Foundation
import Kafka
import Logging
import Postgres
import ServiceLifecycle
import Synchronization

/// Drives `assay demo`: publishes traffic, waits for it to be stored and its windows scored,
/// sends a few late traces, checks the assessments topic, and prints the results.
final class DemoDriver: Service, Sendable {
    let traces: Int
    let partitions: Int
    let seed: UInt64
    let brokers: String
    let monitor: MonitorConfig
    let pool: PostgresPool
    let replicas: [DemoReplica]
    let timeout: Duration
    let output: DemoOutput
    let logger: Logger
    private let result = Mutex(DemoOutcome.running)

    init(traces: Int, partitions: Int, seed: UInt64, brokers: String, monitor: MonitorConfig, pool: PostgresPool,
         replicas: [DemoReplica], timeout: Duration, output: DemoOutput, logger: Logger) {
        self.traces = traces
        self.partitions = partitions
        self.seed = seed
        self.brokers = brokers
        self.monitor = monitor
        self.pool = pool
        self.replicas = replicas
        self.timeout = timeout
        self.output = output
        self.logger = logger
    }

    var outcome: DemoOutcome { result.withLock { $0 } }

    func run() async throws {
        do {
            let outcome = try await runDemo()
            result.withLock { $0 = outcome }
        } catch {
            result.withLock { $0 = .failed("\(error)") }
            throw error
        }
    }

    private struct Expired: Error {}

    private func runDemo() async throws -> DemoOutcome {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        let width = monitor.window.widthNanos
        // Traffic: request times spread over four windows that ended a little while ago, so
        // they close as soon as the partitions fall idle.
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        let lastWindowEnd = (now / width) * width - width
        let firstWindowStart = lastWindowEnd - 4 * width
        // N + 1 gaps: the generator jitters each time by up to half a gap either way, and the
        // last trace must still fall inside the fourth window, not alone in a fifth.
        let spacing = max(1, (4 * width) / Int64(traces + 1))
        var generator = SyntheticTraceGenerator(seed: seed, startNanos: firstWindowStart, spacingNanos: spacing)
        generator.maxPaddingBytes = 4000
        var messages: [ProducerMessage] = []
        var kinds: [SyntheticTraceGenerator.Kind: Int] = [:]
        var errored = 0
        for _ in 0..<traces {
            var trace = generator.next()
            if trace.requestTimeNanos >= lastWindowEnd {  // keep the jitter of the last one inside
                trace = generator.next()
            }
            kinds[trace.kind, default: 0] += 1
            if trace.state == .error { errored += 1 }
            messages.append(Self.message(trace))
        }
        // The mock broker deletes the oldest messages of a partition beyond ~5 MiB, read or
        // not: traffic that does not fit would be lost before Assay reads it, and the demo
        // would wait for traces that never arrive.
        let bytes = messages.reduce(0) { $0 + ($1.value?.count ?? 0) }
        let needed = MockCluster.partitionsToHold(bytes: bytes)
        guard needed <= partitions else {
            throw DemoFailure("\(traces) traces (\(bytes / 1_048_576) MiB) do not fit \(partitions) partitions of the mock broker, which keeps about 5 MiB per partition: "
                              + (needed <= 64 ? "use --partitions \(needed) or more, or fewer --traces"
                                 : "use at most about \(traces * 64 * MockCluster.plannedBytesPerPartition / bytes) --traces (with --partitions 64)"))
        }
        let poison: [(String, [UInt8]?)] = [
            ("invalid JSON", Array(#"{"info": {"trace_id": "tr-"#.utf8)),
            ("a tombstone", nil),
            ("an empty value", []),
            ("JSON of the wrong shape", Array(#"{"info": {"trace_id": 12345, "request_time": "yesterday"}, "data": {"spans": "none"}}"#.utf8)),
        ]
        for (index, item) in poison.enumerated() {
            messages.insert(ProducerMessage(topic: "traces", partition: Int32(index % partitions), key: Array("poison-\(index)".utf8), value: item.1),
                            at: min(messages.count, (index + 1) * messages.count / (poison.count + 1)))
        }

        let publishStart = clock.now
        try await publish(messages)
        let kindText = SyntheticTraceGenerator.Kind.allCases.map { "\($0.rawValue) \(kinds[$0, default: 0])" }.joined(separator: ", ")
        output.say("")
        output.say("Published \(traces) traces (\(kindText); \(errored) errored) and \(poison.count) poison messages (\(poison.map(\.0).joined(separator: ", "))) in \(Self.seconds(publishStart.duration(to: clock.now)))")

        // 1. Everything durable.
        let expectedTraces = traces
        let stored = try await waitFor(deadline, "traces stored") { connection -> (Int, Int)? in
            let row = try connection.query("SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM dead_letters)")[0]
            let counts = (try row.int(0), try row.int(1))
            return counts.0 >= expectedTraces && counts.1 >= poison.count ? counts : nil
        }
        let ingestSeconds = publishStart.duration(to: clock.now)
        output.say("Stored \(stored.0) traces and \(stored.1) dead letters \(Self.seconds(ingestSeconds)) after publishing began (the consumer group's first join included)")

        // 2. Every window closed and scored, every assessment published.
        let scored = try await waitFor(deadline, "windows scored") { connection -> Int? in
            let row = try connection.query("""
                SELECT (SELECT count(*) FROM traces WHERE scored_at IS NULL), (SELECT count(*) FROM outbox WHERE published_at IS NULL),
                       (SELECT count(*) FROM windows WHERE state = 'scored'), (SELECT count(*) FROM windows WHERE state IN ('open', 'closed'))
                """)[0]
            // Open windows' traces are scored ahead of the close, so no unscored trace is not enough.
            return try row.int(0) == 0 && row.int(1) == 0 && row.int(2) >= 3 && row.int(3) == 0 ? try row.int(2) : nil
        }
        let latency = try await pool.withConnection { connection in
            try connection.query("SELECT coalesce(max(extract(epoch FROM scored_at - closed_at)), 0) FROM windows").first?.double(0) ?? 0
        }
        output.say("Closed and scored \(scored) windows; the slowest was scored and published \(String(format: "%.2f", latency)) s after it closed")

        // 3. Late traces: request times inside the first window, which is already scored.
        var late = SyntheticTraceGenerator(seed: seed &+ 1, startNanos: firstWindowStart, spacingNanos: width / 40)
        late.maxPaddingBytes = 1000
        let lateMessages = (0..<25).map { _ in Self.message(late.next()) }
        try await publish(lateMessages)
        let expectedWithLate = traces + lateMessages.count
        _ = try await waitFor(deadline, "late traces scored") { connection -> Bool? in
            let row = try connection.query("""
                SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM traces WHERE scored_at IS NULL),
                       (SELECT count(*) FROM outbox WHERE published_at IS NULL)
                """)[0]
            return try row.int(0) >= expectedWithLate && row.int(1) == 0 && row.int(2) == 0 ? true : nil
        }
        output.say("Published \(lateMessages.count) late traces into the first window after it was scored: stored, scored if sampled, flagged late")

        // 4. What the assessments topic holds.
        let expected = try await pool.withConnection { connection in
            try connection.query("SELECT (SELECT coalesce(sum(message_count), 0) FROM outbox WHERE schema_name = 'assessment/v1'), (SELECT coalesce(sum(message_count), 0) FROM outbox)")[0]
        }
        // Everything the outbox holds reaches the topic: assessments, window summaries and
        // any regression alerts.
        let topic = try await readAssessmentsTopic(expected: try expected.int(1), deadline: deadline)

        try await report(topic: topic, ingestSeconds: ingestSeconds, publishedTraces: traces + lateMessages.count)
        guard topic.conflictingIDs == 0, topic.assessments == (try expected.int(0)) else {
            return .failed("the assessments topic does not match PostgreSQL: \(topic)")
        }
        return .succeeded
    }

    static func message(_ trace: SyntheticTraceGenerator.Generated) -> ProducerMessage {
        ProducerMessage(topic: "traces", key: Array(trace.traceID.utf8), value: trace.json,
                        headers: [(name: "content-type", value: Array("application/json".utf8))])
    }

    private func publish(_ messages: [ProducerMessage]) async throws {
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: brokers), logger: logger)
        let tally = DeliveryTally()
        for message in messages {
            try await producer.enqueueWaitingForRoom(message) { tally.record($0) }
        }
        try await producer.flush(timeout: .seconds(60))
        await producer.close()
        let published = tally.snapshot
        guard published.failed == 0 else { throw DemoFailure("\(published.failed) messages were not delivered: \(published.firstError ?? "")") }
    }

    /// Polls the database until `check` returns a value.
    private func waitFor<T: Sendable>(_ deadline: ContinuousClock.Instant, _ what: String, _ check: @escaping @Sendable (PostgresConnection) throws -> T?) async throws -> T {
        while true {
            if let value = try await pool.withConnection(check) { return value }
            if Task.isShuttingDownGracefully { throw DemoFailure("interrupted while waiting for \(what)") }
            if ContinuousClock.now > deadline { throw DemoFailure("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    struct TopicContents: CustomStringConvertible {
        var messages = 0
        var assessments = 0
        var distinctAssessmentIDs = 0
        var conflictingIDs = 0
        var summaries = 0
        var alerts = 0

        var description: String {
            "\(messages) messages: \(assessments) assessments with \(distinctAssessmentIDs) distinct ids (\(conflictingIDs) ids with two values), \(summaries) window summaries, \(alerts) alerts"
        }
    }

    /// Reads the assessments topic from the start, as a downstream consumer would.
    private func readAssessmentsTopic(expected: Int, deadline: ContinuousClock.Instant) async throws -> TopicContents {
        let consumer = try KafkaConsumer(configuration: .init(bootstrapServers: brokers, groupID: "demo-downstream"), listener: FromBeginning(), logger: logger)
        try await consumer.subscribe(topics: ["assessments"])
        var contents = TopicContents()
        var payloads: [String: [UInt8]] = [:]
        while contents.messages < expected && ContinuousClock.now < deadline && !Task.isShuttingDownGracefully {
            let batch = try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(200))
            for message in batch.messages {
                contents.messages += 1
                let value = message.value ?? []
                switch message.header("assay-schema") {
                case "assessment/v1":
                    contents.assessments += 1
                    let id = (try? JSONParser().parse(value))?["assessment_id"]?.stringValue ?? ""
                    if let previous = payloads[id], previous != value { contents.conflictingIDs += 1 }
                    payloads[id] = value
                case "window-summary/v1":
                    contents.summaries += 1
                case "alert/v1":
                    contents.alerts += 1
                default:
                    break
                }
            }
        }
        await consumer.close()
        contents.distinctAssessmentIDs = payloads.count
        return contents
    }

    // MARK: - Report

    private func report(topic: TopicContents, ingestSeconds: Duration, publishedTraces: Int) async throws {
        struct Row {
            var windowStart: Int64
            var scorer: String
            var revision: Int
            var eligible, sampledOut, filteredOut, notApplicable, errored, scored, passed, late: Int
            var budgetSkipped: Int
            /// The summary as published (with judge latency and tokens).
            var document: JSONValue?
        }
        let (rows, windows, letters, totals) = try await pool.withConnection { connection -> ([Row], [(Int64, Int64, Int, Int)], [(String, Int)], (Int, Int, Int)) in
            let rows = try connection.query("""
                SELECT window_start_ns, scorer_name, revision, eligible, sampled_out, filtered_out, not_applicable,
                       errored, scored, passed, late_scored, budget_skipped, document
                FROM window_summaries ORDER BY window_start_ns, scorer_name
                """).map { row in
                Row(windowStart: try row.int64(0), scorer: try row.string(1), revision: try row.int(2), eligible: try row.int(3),
                    sampledOut: try row.int(4), filteredOut: try row.int(5), notApplicable: try row.int(6), errored: try row.int(7),
                    scored: try row.int(8), passed: try row.int(9), late: try row.int(10), budgetSkipped: try row.int(11),
                    document: try row.optionalString(12).flatMap { try? JSONParser().parse(Array($0.utf8)) })
            }
            let windows = try connection.query("""
                SELECT w.window_start_ns, w.config_version, w.late_traces,
                       (SELECT count(*) FROM traces t WHERE t.request_time_ns >= w.window_start_ns AND t.request_time_ns < w.window_end_ns)
                FROM windows w ORDER BY 1
                """).map { (try $0.int64(0), try $0.int64(1), try $0.int(2), try $0.int(3)) }
            let letters = try connection.query("SELECT reason, count(*) FROM dead_letters GROUP BY 1 ORDER BY 1").map { (try $0.string(0), try $0.int(1)) }
            let totals = try connection.query("SELECT count(DISTINCT trace_id), coalesce(sum(deliveries - 1), 0), (SELECT count(*) FROM assessments) FROM traces")[0]
            return (rows, windows, letters, (try totals.int(0), try totals.int(1), try totals.int(2)))
        }

        if output.json {
            var windowItems: [JSONValue] = []
            for window in windows {
                // Exactly the summaries published to the assessments topic.
                let scorers: [JSONValue] = rows.filter { $0.windowStart == window.0 }.compactMap(\.document)
                windowItems.append(.object([
                    "window_start": .string(TimeFormatting.rfc3339(nanos: window.0, fraction: .shortestExact)),
                    "config_version": JSONValue(window.1),
                    "traces": JSONValue(window.3),
                    "late_traces": JSONValue(window.2),
                    "scorers": .array(scorers),
                ]))
            }
            output.document(.object([
                "traces_published": JSONValue(publishedTraces),
                "traces_stored": JSONValue(totals.0),
                "repeated_deliveries": JSONValue(totals.1),
                "dead_letters": .object(JSONObject(letters.map { (key: $0.0, value: JSONValue($0.1)) })),
                "ingest_seconds": JSONValue(ingestSeconds.seconds),
                "assessments_stored": JSONValue(totals.2),
                "topic": .object([
                    "messages": JSONValue(topic.messages), "assessments": JSONValue(topic.assessments),
                    "distinct_assessment_ids": JSONValue(topic.distinctAssessmentIDs),
                    "conflicting_ids": JSONValue(topic.conflictingIDs), "window_summaries": JSONValue(topic.summaries),
                ]),
                "windows": .array(windowItems),
            ]))
            return
        }

        output.say("")
        for window in windows {
            let start = TimeFormatting.rfc3339(nanos: window.0, fraction: .shortestExact)
            let end = TimeFormatting.rfc3339(nanos: window.0 + monitor.window.widthNanos, fraction: .shortestExact)
            output.say("Window \(start) – \(end)   config v\(window.1), \(window.3) traces, \(window.2) late")
            output.say("  " + Self.pad("scorer", 24) + Self.pad("eligible", 10) + Self.pad("sampled out", 13) + Self.pad("filtered", 10)
                       + Self.pad("scored", 8) + Self.pad("N/A", 6) + Self.pad("errors", 8) + Self.pad("late", 6) + Self.pad("pass rate (Wilson 95%)", 25) + "judge p50, tokens")
            for row in rows where row.windowStart == window.0 {
                let passRate: String
                if row.scored > 0, let interval = WilsonInterval.compute(successes: row.passed, trials: row.scored) {
                    passRate = String(format: "%5.1f%% (%.1f–%.1f)", 100 * Double(row.passed) / Double(row.scored), 100 * interval.lower, 100 * interval.upper)
                } else {
                    passRate = "–"
                }
                var judge = ""
                if let p50 = row.document?["judge_latency_p50_ms"]?.doubleValue {
                    judge = String(format: "%.1f ms", p50)
                    if let total = row.document?["tokens"]?["total"]?.int64Value { judge += ", \(total) tokens" }
                }
                if row.budgetSkipped > 0 { judge += " (\(row.budgetSkipped) over budget)" }
                output.say("  " + Self.pad(row.scorer, 24) + Self.pad(String(row.eligible), 10) + Self.pad(String(row.sampledOut), 13)
                           + Self.pad(String(row.filteredOut), 10) + Self.pad(String(row.scored), 8) + Self.pad(String(row.notApplicable), 6)
                           + Self.pad(String(row.errored), 8) + Self.pad(String(row.late), 6) + Self.pad(passRate, 25) + judge)
            }
        }
        output.say("")
        output.say("Dead letters by reason: " + letters.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
        for replica in replicas {
            let ingest = replica.ingest.currentStatistics
            let scoring = replica.scoring.currentStatistics
            output.say("\(replica.name): stored \(ingest.tracesInserted) traces and \(ingest.deadLetters) dead letters; scored \(scoring.windowsScored) windows (+\(scoring.lateWindowPasses) late passes); published \(replica.outbox.publishedCount) messages")
        }
        output.say("Exactly once: \(totals.0) distinct trace ids for \(publishedTraces) published, \(totals.1) repeated deliveries")
        output.say("Assessments topic: \(topic)")
        output.say("Assessments in PostgreSQL: \(totals.2)")
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.1f s", duration.seconds)
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(1, width - text.count))
    }
}

struct DemoFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A downstream reader starts at the beginning of every partition.
struct FromBeginning: ConsumerRebalanceListener {
    func startingOffsets(for partitions: [TopicPartition]) throws -> [TopicPartition: KafkaOffset] {
        Dictionary(uniqueKeysWithValues: partitions.map { ($0, .beginning) })
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {}
}
