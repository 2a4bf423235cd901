import ArgumentParser
import AssayCore
import AssayStore
import DedicatedThreads
import Foundation
import Kafka
import LocalPostgres
import Logging
import Postgres
import Synchronization

/// `make chaos`: three `assay serve` replicas, a mock broker process and a real PostgreSQL,
/// fed a known set of traces while faults are injected on a seeded schedule; then checks
/// that nothing was lost or doubled.
@main
struct AssayChaos: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assay-chaos",
        abstract: "Run Assay under injected faults and check exactly-once results."
    )

    @Option(help: "Seed of the traffic and the fault schedule.")
    var seed: UInt64 = 1

    @Option(help: "Traces to publish.")
    var traces = 4000

    @Option(help: "Seconds over which traffic is published (faults happen meanwhile).")
    var seconds = 60

    @Flag(help: "The short form for CI: fewer traces, a shorter run, every fault kind once.")
    var short = false

    @Option(help: "Fault kinds to inject, comma-separated (default: all of them; 'none' for a baseline run).")
    var faults: String?

    @Option(help: "The assay binary (default: next to this one).")
    var assay: String?

    @Option(help: "Keep logs here (default: a temporary folder, removed on success).")
    var logs: String?

    @Option(name: .customLong("kafka-debug"),
            help: "librdkafka debug contexts for the replicas (e.g. consumer,fetch,metadata); their logs then run at debug level.")
    var kafkaDebug: String?

    func run() async throws {
        // A child that died (the broker) must be an error where we write to it, not SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        InterruptCleanup.shared.install(tool: "chaos")
        var configured = Logger(label: "chaos")
        configured.logLevel = .error  // the run's own Kafka clients: broker-down warnings are expected
        let logger = configured
        let assayPath = assay ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("assay").path
        guard FileManager.default.isExecutableFile(atPath: assayPath) else { throw ValidationError("no assay binary at \(assayPath)") }
        let logDirectory = URL(fileURLWithPath: logs ?? FileManager.default.temporaryDirectory.appendingPathComponent("assay-chaos-\(seed)-\(UUID().uuidString.prefix(6))").path)
        try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)

        let count = short ? min(traces, 1500) : traces
        let duration = short ? min(seconds, 30) : seconds
        var kinds = ChaosRun.faultKinds
        if let faults {
            kinds = faults == "none" ? [] : faults.split(separator: ",").map(String.init)
            let unknown = Set(kinds).subtracting(ChaosRun.faultKinds)
            guard unknown.isEmpty else { throw ValidationError("unknown fault kinds: \(unknown.sorted().joined(separator: ", ")); known: \(ChaosRun.faultKinds.joined(separator: ", "))") }
        }
        // In the short form (CI), give up waiting early enough that a stall is reported with
        // its state before ChaosTests' 300 s watchdog kills the run.
        let run = try await ChaosRun(seed: seed, traces: count, seconds: duration, faultKinds: kinds, assay: assayPath, logDirectory: logDirectory,
                                     quietLimit: short ? .seconds(180) : .seconds(300), kafkaDebug: kafkaDebug, logger: logger)
        let report: ChaosReport
        do {
            report = try await run.execute()
        } catch let crash as MockBrokerCrashed {
            say("FAILED: the mock Kafka broker (librdkafka's mock cluster in `assay dev-broker`) died, not an Assay replica: \(crash.description)")
            say("logs: \(logDirectory.path)")
            throw ExitCode(ChaosRun.mockBrokerCrashedStatus)
        }
        say(report.figures)
        if report.ok {
            if logs == nil { try? FileManager.default.removeItem(at: logDirectory) }
        } else {
            say("FAILED: \(report.problems.joined(separator: "; "))")
            say("logs: \(logDirectory.path)")
            throw ExitCode(1)
        }
    }
}

/// What the run found.
struct ChaosReport {
    var traces = 0
    var faults = 0
    var lost = 0
    var duplicated = 0
    var deadLetters = 0
    var poison = 0
    var assessmentsExpected = 0
    var assessmentsPresent = 0
    var mismatched = 0
    var windows = 0
    /// Traces handled by a pass before their window closed (scoring while open).
    var scoredWhileOpen = 0
    var peakRSSMB = 0.0
    var problems: [String] = []

    var ok: Bool { problems.isEmpty }

    var figures: String {
        "traces=\(traces) faults=\(faults) lost=\(lost) duplicated=\(duplicated) dlq=\(deadLetters) assessments_expected=\(assessmentsExpected) present=\(assessmentsPresent) mismatched=\(mismatched) windows=\(windows) peak_rss_mb=\(Int(peakRSSMB)) scored_while_open=\(scoredWhileOpen)"
    }
}

final class ChaosRun: Sendable {
    let seed: UInt64
    let traces: Int
    let seconds: Int
    let assay: String
    let logDirectory: URL
    let logger: Logger
    let partitions = 8
    let width: Int64 = 10_000_000_000
    private let replicas = Mutex<[String: Child]>([:])
    private let faultLog = Mutex<[String]>([])
    private let peakRSS = Mutex(0.0)
    /// Replicas found dead when a fault came to stop them (a fault then restarts them).
    private let exitedBeforeFault = Mutex<[String]>([])
    /// Waiting for a child to exit, and pg_ctl, block: never on the cooperative pool.
    private let blocking = DedicatedThread(name: "chaos-blocking")

    static let faultKinds = ["sigkill", "sigterm", "postgres-restart", "broker-down", "request-errors", "leader-change",
                             "judge-429", "judge-500", "judge-hang", "rebalance-storm"]
    let faultKinds: [String]

    /// The exit status when the mock broker process died: a failure of the test bed (for
    /// example librdkafka 2.0.2's mock asserting `!member->resp` on a repeated JoinGroup), which
    /// ChaosTests tells from a failure of Assay.
    static let mockBrokerCrashedStatus: Int32 = 3

    /// How long to wait for the replicas to finish before checking anyway.
    let quietLimit: Duration
    /// librdkafka debug contexts for the replicas, if any.
    let kafkaDebug: String?

    init(seed: UInt64, traces: Int, seconds: Int, faultKinds: [String], assay: String, logDirectory: URL, quietLimit: Duration,
         kafkaDebug: String? = nil, logger: Logger) async throws {
        self.quietLimit = quietLimit
        self.kafkaDebug = kafkaDebug
        self.faultKinds = faultKinds
        self.seed = seed
        self.traces = traces
        self.seconds = seconds
        self.assay = assay
        self.logDirectory = logDirectory
        self.logger = logger
    }

    /// The monitor: code scorers and judged scorers, each giving exactly one assessment per
    /// sampled trace (N/A and errors included), so expectations follow from rho alone.
    func monitor(judgeURL: String) -> String {
        """
        {"name": "chaos", "destination": {"schema": "assay"}, "window": "10s", "allowed_lateness": "2s",
         "judge": {"kind": "openai", "base_url": "\(judgeURL)", "model": "chaos-judge", "api_key_env": "ASSAY_CHAOS_JUDGE_KEY",
                   "max_concurrency": 8, "max_calls_per_window": 100000, "request_timeout_seconds": 2},
         "scorers": [
            {"name": "no_error", "kind": "no_error"},
            {"name": "fast_enough", "kind": "latency", "sample_rate": 0.5, "params": {"max_ms": 4000}},
            {"name": "no_pii", "kind": "pii", "sample_rate": 0.3},
            {"name": "relevance_to_query", "kind": "relevance_to_query", "sample_rate": 0.4},
            {"name": "safety", "kind": "safety", "sample_rate": 0.2}
         ]}
        """
    }

    func execute() async throws -> ChaosReport {
        let thread = DedicatedThread(name: "chaos-pg")
        defer { thread.shutdown() }
        let postgres = try await thread.run { [logger] in try LocalPostgresCluster.start(logger: logger) }
        defer { postgres.stop() }
        InterruptCleanup.shared.onInterrupt { postgres.stop() }
        let databaseURL = try await thread.run { try postgres.createDatabase(name: "chaos") }
        let broker = try await BrokerProcess(assay: assay, brokers: 3, partitions: partitions, logDirectory: logDirectory)
        defer { broker.stop() }
        // On every way out, no replica outlives the run (the normal end has stopped them).
        defer { for child in replicas.withLock({ Array($0.values) }) { child.kill() } }
        // Whatever failed, a dead broker explains it first.
        let report: ChaosReport
        do {
            report = try await execute(postgres: postgres, databaseURL: databaseURL, broker: broker)
        } catch {
            throw broker.crash.map { MockBrokerCrashed(description: $0) } ?? error
        }
        if !report.ok, let crash = broker.crash { throw MockBrokerCrashed(description: crash) }
        return report
    }

    private func execute(postgres: LocalPostgresCluster, databaseURL: String, broker: BrokerProcess) async throws -> ChaosReport {
        let judge = try JudgeServer()
        defer { judge.stop() }
        let monitorFile = logDirectory.appendingPathComponent("monitor.json")
        try monitor(judgeURL: judge.baseURL).write(to: monitorFile, atomically: true, encoding: .utf8)
        say("chaos: seed \(seed), \(traces) traces over \(seconds) s, PostgreSQL on \(postgres.port), brokers \(broker.bootstrap), judge \(judge.baseURL)")

        // Three replicas.
        var arguments = ["serve", "--brokers", broker.bootstrap, "--database-url", databaseURL, "--monitor", monitorFile.path,
                      "--session-timeout-ms", "6000", "--idle-timeout-seconds", "10", "--http", "127.0.0.1:0",
                      "--scoring-lease-seconds", "8", "--batch-size", "300"]
        if let kafkaDebug {
            arguments += ["--log-level", "debug", "--kafka-option", "debug=\(kafkaDebug)"]
        } else {
            arguments += ["--log-level", "info"]
        }
        let common = arguments
        for name in ["r1", "r2", "r3"] { try startReplica(name, common) }

        // Traffic, paced over `seconds`, with faults on a seeded schedule meanwhile.
        let traffic = Traffic.generate(count: traces, windows: 8, width: width, partitions: partitions, seed: seed)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: broker.bootstrap), logger: logger)
        let deliveries = DeliveryLog()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.runFaults(broker: broker, postgres: postgres, judge: judge, common: common) }
            group.addTask {
                for (index, item) in traffic.messages.enumerated() {
                    let due = start.advanced(by: .seconds(Double(self.seconds) * Double(index) / Double(traffic.messages.count)))
                    let wait = ContinuousClock.now.duration(to: due)
                    if wait > .zero { try await Task.sleep(for: wait) }
                    try await producer.enqueueWaitingForRoom(item.message) { result in
                        switch result {
                        case .success(let report): deliveries.reports.withLock { $0.append((index, report)) }
                        case .failure: deliveries.failed.withLock { $0 += 1 }
                        }
                    }
                }
                try await producer.flush(timeout: .seconds(180))
                await producer.close()
            }
            try await group.waitForAll()
        }
        judge.set(.normal)
        let failures = deliveries.failed.withLock { $0 }
        guard failures == 0 else { throw ChaosFailure("\(failures) messages could not be published") }
        say("chaos: published \(traffic.messages.count) messages (\(traffic.traceIDs.count) traces, \(traffic.otlpTraces) as split OTLP, \(traffic.poison) poison) in \(Int(start.duration(to: .now).components.seconds)) s")

        // Let the replicas finish, then check.
        let pool = try PostgresPool(configuration: AssayDatabase.configuration(url: databaseURL, schema: .default), size: 2, name: "chaos", logger: logger)
        defer { pool.shutdown() }
        try await waitForQuiet(pool: pool, traffic: traffic, limit: quietLimit)
        sampleRSS()
        var report = try await check(pool: pool, broker: broker, traffic: traffic, deliveries: deliveries.reports.withLock { $0 })
        report.problems += exitedBeforeFault.withLock { $0 }
        // The faults restart every replica they stop, so each one should still be running.
        for (name, child) in replicas.withLock({ $0 }).sorted(by: { $0.key < $1.key }) where !child.isRunning {
            report.problems.append("replica \(name) exited on its own (status \(child.exitStatus)); see \(child.logURL.lastPathComponent)")
        }
        let children = replicas.withLock { Array($0.values) }
        try await blocking.run { for child in children { child.terminate() } }
        blocking.shutdown()
        return report
    }

    // MARK: - Replicas

    /// Records a replica that a fault is about to stop but that already exited on its own.
    private func noteIfExited(_ name: String, _ child: Child?) {
        guard let child, !child.isRunning else { return }
        exitedBeforeFault.withLock {
            $0.append("replica \(name) exited on its own before a fault stopped it (status \(child.exitStatus)); see \(child.logURL.lastPathComponent)")
        }
    }

    private func startReplica(_ name: String, _ arguments: [String]) throws {
        let child = try Child(name: name, executable: assay, arguments: arguments + ["--replica-name", name],
                              environment: ["ASSAY_CHAOS_JUDGE_KEY": "chaos-key"], logDirectory: logDirectory)
        replicas.withLock { $0[name] = child }
    }

    private func sampleRSS() {
        let current = replicas.withLock { $0.values.map { $0.peakRSSMegabytes() } }.max() ?? 0
        peakRSS.withLock { $0 = max($0, current) }
    }

    private func note(_ fault: String) {
        faultLog.withLock { $0.append(fault) }
        say("  fault: \(fault)")
    }

    // MARK: - Faults

    /// Every fault kind at least once, in a seeded order, spread over the traffic.
    private func runFaults(broker: BrokerProcess, postgres: LocalPostgresCluster, judge: JudgeServer, common: [String]) async throws {
        var random = SplitMix64(seed: seed)
        var kinds = faultKinds
        for index in stride(from: kinds.count - 1, to: 0, by: -1) where kinds.count > 1 {
            kinds.swapAt(index, Int(random.next() % UInt64(index + 1)))
        }
        let gap = Double(seconds) / Double(kinds.count + 1)
        let start = ContinuousClock.now
        say("chaos: \(kinds.count) faults, one every \(String(format: "%.1f", gap)) s: \(kinds.joined(separator: ", "))")
        for (index, kind) in kinds.enumerated() {
            let wait = ContinuousClock.now.duration(to: start.advanced(by: .seconds(gap * Double(index + 1))))
            if wait > .zero { try await Task.sleep(for: wait) }
            sampleRSS()
            say("  injecting \(kind)")
            switch kind {
            case "sigkill":
                let name = ["r1", "r2", "r3"][Int(random.next() % 3)]
                let victim = replicas.withLock { $0[name] }
                noteIfExited(name, victim)
                try await blocking.run { victim?.kill() }
                note("SIGKILL \(name), restarted")
                try startReplica(name, common)
            case "sigterm":
                let name = ["r1", "r2", "r3"][Int(random.next() % 3)]
                let victim = replicas.withLock { $0[name] }
                noteIfExited(name, victim)
                let status = try await blocking.run { victim?.terminate() ?? -1 }
                note("SIGTERM \(name) (exit status \(status)), restarted")
                try startReplica(name, common)
            case "postgres-restart":
                try await blocking.run { try postgres.restart() }
                note("PostgreSQL restarted (pg_ctl restart -m fast)")
            case "broker-down":
                let id = 1 + Int(random.next() % 3)
                _ = try await broker.send("broker-down \(id)")
                try await Task.sleep(for: .seconds(3))
                _ = try await broker.send("broker-up \(id)")
                note("broker \(id) down for 3 s, then up")
            case "request-errors":
                for api in ["produce", "fetch", "offset-commit"] {
                    let reply = try await broker.send("errors \(api) 5 request-timed-out")
                    guard reply == "ok" else { throw ChaosFailure("broker refused: \(reply)") }
                }
                note("5 request-timed-out errors each on Produce, Fetch and OffsetCommit")
            case "leader-change":
                let partition = Int(random.next() % UInt64(partitions))
                let leader = 1 + Int(random.next() % 3)
                _ = try await broker.send("leader traces \(partition) \(leader)")
                note("leader of traces/\(partition) moved to broker \(leader)")
            case "judge-429":
                judge.set(.rateLimited)
                try await Task.sleep(for: .seconds(4))
                judge.set(.normal)
                note("judge answered 429 + Retry-After for 4 s")
            case "judge-500":
                judge.set(.failing)
                try await Task.sleep(for: .seconds(4))
                judge.set(.normal)
                note("judge answered 500 for 4 s")
            case "judge-hang":
                judge.set(.hanging)
                try await Task.sleep(for: .seconds(5))
                judge.set(.normal)
                note("judge hung for 5 s (past its 2 s timeout)")
            default:  // rebalance storm
                for round in 1...3 {
                    try startReplica("storm-\(round)", common)
                    try await Task.sleep(for: .milliseconds(1500))
                    let leaving = replicas.withLock { $0.removeValue(forKey: "storm-\(round)") }
                    try await blocking.run { leaving?.terminate() }
                }
                note("rebalance storm: 3 replicas joined and left within ~5 s")
            }
        }
    }

    // MARK: - Checks

    private func waitForQuiet(pool: PostgresPool, traffic: Traffic, limit: Duration) async throws {
        let expected = traffic.traceIDs.count
        let deadline = ContinuousClock.now.advanced(by: limit)
        var last = ""
        while ContinuousClock.now < deadline {
            let state = try? await pool.withConnection { connection in
                try connection.query("""
                    SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM dead_letters),
                           (SELECT count(*) FROM traces WHERE scored_at IS NULL), (SELECT count(*) FROM outbox WHERE published_at IS NULL),
                           (SELECT count(*) FROM windows WHERE state <> 'scored')
                    """)[0]
            }
            if let state {
                let values = (0..<5).compactMap { try? state.int($0) }
                last = "\(values)"
                if values.count == 5 && values[0] >= expected && values[1] >= traffic.poison && values[2] == 0 && values[3] == 0 && values[4] == 0 {
                    return
                }
            }
            try await Task.sleep(for: .seconds(1))
        }
        say("chaos: not quiet after \(limit.components.seconds) s (traces, dead letters, unscored, unpublished, open windows) = \(last)")
    }

    private func check(pool: PostgresPool, broker: BrokerProcess, traffic: Traffic, deliveries: [(index: Int, report: DeliveryReport)]) async throws -> ChaosReport {
        var report = ChaosReport()
        report.traces = traffic.traceIDs.count
        report.faults = faultLog.withLock { $0.count }
        report.poison = traffic.poison
        report.peakRSSMB = peakRSS.withLock { $0 }

        // Traces: every published id stored once (the primary key), and its `deliveries` equal
        // to the copies the topic holds: a message re-read after a crash or a rebalance must
        // not count again. OTLP traces arrive in several messages and are counted by assembly.
        let stored = try await pool.withConnection { connection in
            try connection.query("SELECT trace_id, deliveries, rho, format FROM traces").map { (try $0.string(0), try $0.int(1), try $0.double(2), try $0.string(3)) }
        }
        let storedIDs = Set(stored.map(\.0))
        report.lost = traffic.traceIDs.subtracting(storedIDs).count
        let copies = try await countTraceCopies(broker: broker, messages: traffic.messages.count)
        let miscounted = stored.filter { $0.3 != "otlp" && $0.1 != (copies[$0.0] ?? 0) }
        report.duplicated = miscounted.count + storedIDs.subtracting(traffic.traceIDs).count
        if report.lost > 0 { report.problems.append("\(report.lost) traces lost") }
        if report.duplicated > 0 {
            let sample = miscounted.prefix(3).map { "\($0.0) deliveries=\($0.1) on topic=\(copies[$0.0] ?? 0)" }
            report.problems.append("\(report.duplicated) traces counted twice or unexpected (e.g. \(sample.joined(separator: ", ")))")
        }
        let spanDuplicates = try await pool.withConnection { connection in
            try connection.query("SELECT count(*) FROM (SELECT trace_id, span_id FROM spans GROUP BY 1, 2 HAVING count(*) > 1) d")[0].int(0)
        }
        if spanDuplicates > 0 {
            report.duplicated += spanDuplicates
            report.problems.append("\(spanDuplicates) spans stored twice")
        }

        // Poison: one dead letter per poison message, at its offset.
        let poisonPositions = Set(deliveries.filter { traffic.messages[$0.index].poisonKind != nil }
            .map { "\($0.report.topicPartition.partition)/\($0.report.offset)" })
        let letters = try await pool.withConnection { connection in
            try connection.query("SELECT source_partition, source_offset, reason FROM dead_letters").map { ("\(try $0.int(0))/\(try $0.int64(1))", try $0.string(2)) }
        }
        report.deadLetters = letters.count
        if Set(letters.map(\.0)) != poisonPositions || letters.count != traffic.poison {
            report.problems.append("dead letters \(letters.count) at \(Set(letters.map(\.0)).symmetricDifference(poisonPositions).count) unexpected positions, expected \(traffic.poison)")
        }

        // Assessments: exactly one per sampled (trace, scorer).
        // The rates come from the monitor document the replicas run, not from a copy of it.
        let config = try MonitorConfig.parse(Array(monitor(judgeURL: "http://127.0.0.1:1/v1").utf8))
        let rates = Dictionary(uniqueKeysWithValues: config.scorers.map { ($0.name, $0.effectiveRate(global: config.sampleRate)) })
        var expected = Set<String>()
        for (trace, _, rho, _) in stored {
            for (scorer, rate) in rates where Sampler.isSampled(rho: rho, rate: rate) { expected.insert("\(trace)|\(scorer)") }
        }
        let present = try await pool.withConnection { connection in
            try connection.query("SELECT trace_id, scorer_name, count(*) FROM assessments GROUP BY 1, 2").map { ("\(try $0.string(0))|\(try $0.string(1))", try $0.int(2)) }
        }
        report.assessmentsExpected = expected.count
        report.assessmentsPresent = present.count
        let presentSet = Set(present.map(\.0))
        let missing = expected.subtracting(presentSet).count
        let extra = presentSet.subtracting(expected).count + present.filter { $0.1 != 1 }.count
        if missing > 0 || extra > 0 { report.problems.append("assessments: \(missing) missing, \(extra) unexpected or repeated") }

        // The topic: no assessment id with two different values, and every stored id present.
        let ids = try await pool.withConnection { connection in
            Set(try connection.query("SELECT assessment_id::text FROM assessments").map { try $0.string(0) })
        }
        let outboxMessages = try await pool.withConnection { try $0.query("SELECT coalesce(sum(message_count), 0) FROM outbox")[0].int(0) }
        let topic = try await readTopic(broker: broker, atLeast: outboxMessages)
        report.mismatched = topic.conflicting
        if topic.conflicting > 0 { report.problems.append("\(topic.conflicting) assessment ids with two values on the topic") }
        let absent = ids.subtracting(topic.ids).count
        if absent > 0 { report.problems.append("\(absent) stored assessments never reached the topic") }

        // Windows: each summarised once per scorer, adding up to the traces in it.
        let windows = try await pool.withConnection { connection in
            try connection.query("""
                SELECT w.window_start_ns, w.state, (SELECT count(*) FROM window_summaries s WHERE s.window_start_ns = w.window_start_ns),
                       (SELECT count(*) FROM window_summaries s WHERE s.window_start_ns = w.window_start_ns AND s.eligible <>
                            (SELECT count(*) FROM traces t WHERE t.request_time_ns >= w.window_start_ns AND t.request_time_ns < w.window_end_ns)),
                       (SELECT count(*) FROM window_summaries s WHERE s.window_start_ns = w.window_start_ns AND s.eligible <>
                            s.sampled_out + s.filtered_out + s.budget_skipped + s.not_applicable + s.errored + s.scored)
                FROM windows w
                """).map { (try $0.int64(0), try $0.string(1), try $0.int(2), try $0.int(3), try $0.int(4)) }
        }
        report.windows = windows.count
        report.scoredWhileOpen = try await pool.withConnection { connection in
            try connection.query("""
                SELECT count(*) FROM traces t JOIN windows w ON t.request_time_ns >= w.window_start_ns AND t.request_time_ns < w.window_end_ns
                WHERE t.scored_at < w.closed_at
                """)[0].int(0)
        }
        let badWindows = windows.filter { $0.1 != "scored" || $0.2 != rates.count || $0.3 != 0 || $0.4 != 0 }
        if !badWindows.isEmpty { report.problems.append("\(badWindows.count) windows not summarised once and consistently: \(badWindows.prefix(3))") }
        return report
    }

    /// Copies of each keyed (MLflow) trace message on the traces topic, read from the start.
    private func countTraceCopies(broker: BrokerProcess, messages: Int) async throws -> [String: Int] {
        var copies: [String: Int] = [:]
        try await readFromStart(topic: "traces", broker: broker, atLeast: messages) { message in
            guard let key = message.key else { return }
            copies[String(decoding: key, as: UTF8.self), default: 0] += 1
        }
        return copies
    }

    /// Assessment ids on the assessments topic, and how many ids came with two different values.
    private func readTopic(broker: BrokerProcess, atLeast count: Int) async throws -> (ids: Set<String>, conflicting: Int) {
        var payloads: [String: [UInt8]] = [:]
        var conflicting = 0
        try await readFromStart(topic: "assessments", broker: broker, atLeast: count) { message in
            guard message.header("assay-schema") == "assessment/v1" else { return }
            let value = message.value ?? []
            guard let id = (try? JSONParser().parse(value))?["assessment_id"]?.stringValue else { return }
            if let previous = payloads[id], previous != value { conflicting += 1 }
            payloads[id] = value
        }
        return (Set(payloads.keys), conflicting)
    }

    /// Reads `topic` from its beginning as a fresh group, until at least `count` messages came
    /// and the topic has been quiet for 3 s (or 120 s passed).
    private func readFromStart(topic: String, broker: BrokerProcess, atLeast count: Int, _ each: (ConsumerMessage) -> Void) async throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrap, groupID: "chaos-\(topic)-\(seed)")
        configuration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: configuration, listener: Beginning(), logger: logger)
        try await consumer.subscribe(topics: [topic])
        var seen = 0
        var quietSince = ContinuousClock.now
        let deadline = ContinuousClock.now.advanced(by: .seconds(120))
        while ContinuousClock.now < deadline {
            let batch = try await consumer.poll(maxMessages: 5000, timeout: .milliseconds(500))
            if batch.messages.isEmpty {
                if seen >= count && quietSince.duration(to: .now) > .seconds(3) { break }
                continue
            }
            quietSince = .now
            seen += batch.messages.count
            batch.messages.forEach(each)
        }
        await consumer.close()
    }
}

/// Delivery reports of the traffic, by message index.
final class DeliveryLog: Sendable {
    let reports = Mutex<[(index: Int, report: DeliveryReport)]>([])
    let failed = Mutex(0)
}

struct Beginning: ConsumerRebalanceListener {
    func startingOffsets(for partitions: [TopicPartition]) throws -> [TopicPartition: KafkaOffset] {
        Dictionary(uniqueKeysWithValues: partitions.map { ($0, .beginning) })
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {}
}

/// One line on stdout, written at once (print's buffer would hold progress back in a pipe).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
