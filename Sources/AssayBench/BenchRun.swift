import AssayCore
import AssayStore
import Foundation
import Kafka
import LocalPostgres
import Logging
import Postgres
import Synchronization

/// One repetition: a fresh mock cluster and fresh databases, the four measurements.
struct BenchRun {
    let repetition: Int
    let data: BenchData
    let partitions: Int
    let cluster: LocalPostgresCluster
    let assayPath: String
    let scoring: Bool
    let streaming: Bool
    /// Traces per second the streaming measurement publishes at while Assay runs (0: the
    /// whole topic is there before Assay starts, as for (c)).
    let streamRate: Int
    /// `assay serve` processes scoring the closed window in (d), side by side.
    var scoringReplicas = 1
    let logger: Logger

    func run() async throws -> RunResult {
        let mock = try MockCluster(brokers: 1, logger: logger)
        defer { mock.shutdown() }
        try mock.createTopic("traces", partitions: partitions)
        try mock.createTopic("assessments", partitions: partitions)
        try await publish(to: mock)

        let kafka = try await readEverything(from: mock)
        // Which format loads first alternates, so that the order cannot decide the limit (at
        // n = 100,000 the load that came first was the slower in most runs).
        let copyTextFirst = repetition % 2 == 0 ? try copyLimit(binary: false) : nil
        let copy = try copyLimit(binary: true)
        let copyTextSeconds = try (copyTextFirst ?? copyLimit(binary: false)).seconds
        let database = try await BenchDatabase(cluster: cluster, name: "bench_assay_\(repetition)_\(UInt32.random(in: 0...UInt32.max))", logger: logger)
        defer { database.drop() }
        let pool = database.pool

        // (c) ingest: from launch (an empty group) to every trace stored and every offset committed.
        let group = "bench-\(repetition)"
        let databaseCPUBefore = DatabaseCPU.seconds(dataDirectory: cluster.dataDirectory)
        let (ingest, ingestTiming) = try await ingestAll(mock: mock, database: database, group: group)
        let ingestRSS = ingest.peakRSSMegabytes()
        let ingestCPU = ingest.cpuSeconds()
        let databaseCPU = DatabaseCPU.seconds(dataDirectory: cluster.dataDirectory) - databaseCPUBefore
        ingest.stop()

        // (d) scoring: the closed window of all traces, from its close to the last assessment
        // published. Scoring ahead of the close is off here: this is the whole window's pass.
        var result = RunResult(n: data.messages.count, bytes: data.bytes, kafkaSeconds: kafka.seconds, copySeconds: copy.seconds,
                               ingestSeconds: ingestTiming.seconds, ingestRSSMB: ingestRSS)
        result.copyTextSeconds = copyTextSeconds
        result.copyDatabaseCPUSeconds = copy.databaseCPUSeconds
        result.kafkaSteadyRate = kafka.steadyRate
        result.ingestSteadyRate = ingestTiming.steadyRate
        result.ingestCPUSeconds = ingestCPU
        result.ingestDatabaseCPUSeconds = databaseCPU
        if scoring {
            try await database.saveMonitor()
            let databaseCPUBeforeScoring = DatabaseCPU.seconds(dataDirectory: cluster.dataDirectory)
            var scorers: [ServeChild] = []
            do {
                for index in 1...max(1, scoringReplicas) {
                    scorers.append(try ServeChild(assay: assayPath, brokers: mock.bootstrapServers, databaseURL: database.url, group: group,
                                                  replicaName: scoringReplicas > 1 ? "bench-\(index)" : "bench",
                                                  extra: ["--idle-timeout-seconds", "1", "--no-score-open-windows"]))
                }
                try await waitUntilScored(pool: pool, child: scorers[0])
                if let exited = scorers.first(where: { !$0.isRunning }) {
                    throw BenchFailure("a scoring replica exited: \(exited.logTail)")
                }
            } catch {
                scorers.forEach { $0.stop() }
                throw error
            }
            result.scoreRSSMB = scorers.map { $0.peakRSSMegabytes() }.max()
            result.scoreReplicaCPUSeconds = scorers.map { $0.cpuSeconds() }
            result.scoreCPUSeconds = result.scoreReplicaCPUSeconds.reduce(0, +)
            result.scoreDatabaseCPUSeconds = DatabaseCPU.seconds(dataDirectory: cluster.dataDirectory) - databaseCPUBeforeScoring
            scorers.forEach { $0.stop() }
            let figures = try await pool.withConnection { connection in
                try connection.query("""
                    SELECT extract(epoch FROM (SELECT max(published_at) FROM outbox) - (SELECT min(closed_at) FROM windows)),
                           (SELECT count(*) FROM assessments),
                           extract(epoch FROM (SELECT max(scored_at) - min(closed_at) FROM windows))
                    """)[0]
            }
            result.scoreSeconds = try figures.double(0)
            result.assessments = try figures.int(1)
            result.scoredSeconds = try figures.double(2)
            let floor = try assessmentsCopyLimit(from: database)
            result.assessmentsCopySeconds = floor.seconds
            result.assessmentsCopyDatabaseCPUSeconds = floor.databaseCPUSeconds
        }

        // (e) streaming: the monitor is in force from the start, so one serve stores the traces
        // and scores them while their window is open; the window closes once every partition
        // is idle (1 s), and the close has only what was left to do. The traces are published
        // at `streamRate` while the serve runs, on a topic of their own.
        if scoring && streaming {
            let streamed = try await BenchDatabase(cluster: cluster, name: "bench_stream_\(repetition)_\(UInt32.random(in: 0...UInt32.max))", logger: logger)
            defer { streamed.drop() }
            try await streamed.saveMonitor()
            var topic = "traces"
            var producer: Task<Void, Error>?
            if streamRate > 0 {
                topic = "traces-stream"
                try mock.createTopic(topic, partitions: partitions)
                producer = Task { [self] in try await publish(to: mock, topic: topic, perSecond: streamRate) }
            }
            defer { producer?.cancel() }
            let started = ContinuousClock.now
            let (child, timing) = try await ingestAll(mock: mock, database: streamed, group: "bench-stream-\(repetition)",
                                                      topic: topic, extra: ["--idle-timeout-seconds", "1", "--traces-topic", topic])
            do {
                try await producer?.value
                try await waitUntilScored(pool: streamed.pool, child: child)
            } catch {
                child.stop()
                throw error
            }
            result.streamingTotalSeconds = started.duration(to: .now).seconds
            result.streamingRSSMB = child.peakRSSMegabytes()
            child.stop()
            result.streamingIngestSeconds = timing.seconds
            result.streamRate = streamRate
            let figures = try await streamed.pool.withConnection { connection in
                try connection.query("""
                    SELECT extract(epoch FROM (SELECT max(published_at) FROM outbox) - (SELECT min(closed_at) FROM windows)),
                           (SELECT count(*) FROM traces t WHERE t.scored_at < (SELECT min(closed_at) FROM windows))::float8 / (SELECT count(*) FROM traces),
                           (SELECT count(*) FROM assessments)
                    """)[0]
            }
            result.streamingCloseSeconds = try figures.double(0)
            result.streamingScoredBeforeClose = try figures.double(1)
            let assessments = try figures.int(2)
            guard assessments == result.assessments else {
                throw BenchFailure("streaming produced \(assessments) assessments, the pass at the close \(result.assessments)")
            }
        }
        return result
    }

    /// Launch to done, and the rate after the first batch (see ``RunResult/ingestSteadyRate``).
    struct Timing {
        var seconds: Double
        var steadyRate: Double
    }

    /// Starts a serve in `group` and waits until every trace is stored and its offset
    /// committed to Kafka; returns the still running serve and how long it took.
    private func ingestAll(mock: MockCluster, database: BenchDatabase, group: String, topic: String = "traces", extra: [String] = []) async throws -> (ServeChild, Timing) {
        let started = ContinuousClock.now
        let child = try ServeChild(assay: assayPath, brokers: mock.bootstrapServers, databaseURL: database.url, group: group, extra: extra)
        let total = Int64(data.messages.count)
        // Offsets commit in the same transaction as their rows, so the stored offsets reaching
        // the log end means every message is stored. (Polling count(*) of traces instead
        // scanned the whole table every 50 ms and slowed the ingest it measured.) Polled
        // every 20 ms until the first batch is stored, to time it closely.
        do {
            let deadline = started.advanced(by: .seconds(900))
            var first: (at: ContinuousClock.Instant, stored: Int64)?
            while true {
                let stored = try await database.pool.withConnection { try $0.query("SELECT coalesce(sum(next_offset), 0)::int8 FROM consumer_offsets")[0].int64(0) }
                if first == nil, stored > 0 { first = (.now, stored) }
                if stored >= total { break }
                guard child.isRunning else { throw BenchFailure("assay serve exited during ingest: \(child.logTail)") }
                if ContinuousClock.now > deadline { throw BenchFailure("timed out waiting for ingest: \(child.logTail)") }
                try await Task.sleep(for: .milliseconds(first == nil ? 20 : 100))
            }
            try await waitForKafkaCommit(mock: mock, group: group, topic: topic, total: total, child: child)
            let done = ContinuousClock.now
            let stored = try await database.pool.withConnection { try $0.query("SELECT count(*) FROM traces")[0].int64(0) }
            guard stored == total else { throw BenchFailure("\(stored) traces stored of \(total) published") }
            let steady = first.map { Double(total - $0.stored) / $0.at.duration(to: done).seconds } ?? 0
            return (child, Timing(seconds: started.duration(to: done).seconds, steadyRate: steady))
        } catch {
            child.stop()  // a failed measurement leaves no serve behind
            throw error
        }
    }

    /// Waits until a window is scored, no trace is left unscored and the outbox is empty.
    private func waitUntilScored(pool: PostgresPool, child: ServeChild) async throws {
        // Cheapest first, and EXISTS rather than count(*): counting the unpublished outbox
        // every 100 ms walked its partial index (dead entries included) while it was timed,
        // and showed up in 1 of 7 samples of the database's active queries.
        try await waitFor("scoring", pool: pool, timeout: .seconds(1800), child: child) { connection in
            guard try connection.query("SELECT EXISTS (SELECT 1 FROM windows WHERE state = 'scored')")[0].bool(0) else { return false }
            guard try !connection.query("SELECT EXISTS (SELECT 1 FROM traces WHERE scored_at IS NULL)")[0].bool(0) else { return false }
            return try !connection.query("SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)")[0].bool(0)
        }
    }

    /// 5 code scorers at 100% and 5 offline-judge scorers at 20% (the offline judge has four
    /// predefined kinds; safety runs twice under two names).
    static let monitorDocument = """
        {"name": "bench", "destination": {"schema": "assay"}, "window": "1h", "allowed_lateness": "1s",
         "judge": {"kind": "offline", "max_calls_per_window": 100000000},
         "scorers": [
            {"name": "no_error", "kind": "no_error"},
            {"name": "fast_enough", "kind": "latency", "params": {"max_ms": 5000}},
            {"name": "no_pii", "kind": "pii"},
            {"name": "output_length", "kind": "output_length", "params": {"min_chars": 20, "max_chars": 400}},
            {"name": "token_budget", "kind": "token_usage", "params": {"max_total_tokens": 1200}},
            {"name": "relevance_to_query", "kind": "relevance_to_query", "sample_rate": 0.2},
            {"name": "retrieval_groundedness", "kind": "retrieval_groundedness", "sample_rate": 0.2},
            {"name": "retrieval_relevance", "kind": "retrieval_relevance", "sample_rate": 0.2},
            {"name": "safety", "kind": "safety", "sample_rate": 0.2},
            {"name": "safety_second_opinion", "kind": "safety", "sample_rate": 0.2}
         ]}
        """

    /// Publishes every message, to `topic` (default: the messages' own), at most `perSecond`
    /// a second when given.
    private func publish(to mock: MockCluster, topic: String? = nil, perSecond: Int? = nil) async throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: mock.bootstrapServers)
        configuration.linger = .milliseconds(20)
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        let failures = Mutex(0)
        let started = ContinuousClock.now
        for (index, var message) in data.messages.enumerated() {
            if let topic { message.topic = topic }
            if let perSecond, index % 100 == 0 {
                // Paced: message `index` goes out no earlier than index / perSecond seconds in.
                try await Task.sleep(until: started.advanced(by: .seconds(Double(index) / Double(perSecond))), clock: .continuous)
            }
            try await producer.enqueueWaitingForRoom(message) { if case .failure = $0 { failures.withLock { $0 += 1 } } }
        }
        try await producer.flush(timeout: .seconds(300))
        await producer.close()
        guard failures.withLock({ $0 }) == 0 else { throw BenchFailure("publishing failed") }
    }

    /// (a) A plain consumer that only counts, from subscribing to the last message.
    private func readEverything(from mock: MockCluster) async throws -> Timing {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: mock.bootstrapServers, groupID: "bench-raw-\(repetition)")
        configuration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: configuration, listener: FromBeginning(), logger: logger)
        let start = ContinuousClock.now
        try await consumer.subscribe(topics: ["traces"])
        var count = 0
        var first: (at: ContinuousClock.Instant, count: Int)?
        while count < data.messages.count {
            count += try await consumer.poll(maxMessages: 10_000, timeout: .milliseconds(500), linger: .milliseconds(5)).messages.count
            if first == nil, count > 0 { first = (.now, count) }
            if start.duration(to: .now) > .seconds(600) { throw BenchFailure("the raw consumer read only \(count) messages") }
        }
        let done = ContinuousClock.now
        await consumer.close()
        let steady = first.map { Double(count - $0.count) / $0.at.duration(to: done).seconds } ?? 0
        return Timing(seconds: start.duration(to: done).seconds, steadyRate: steady)
    }

    /// (b) `psql \copy` of the rows Assay writes (traces and spans, in PostgreSQL's binary
    /// format), from files, into a fresh database with Assay's tables and indexes. With
    /// `binary` false, (b′): the same values as the general path's text rows. Returns the
    /// load's wall time and the database's CPU time meanwhile.
    private func copyLimit(binary: Bool) throws -> (seconds: Double, databaseCPUSeconds: Double) {
        let name = "bench_copy_\(repetition)_\(UInt32.random(in: 0...UInt32.max))"
        let url = try cluster.createDatabase(name: name)
        defer { try? cluster.dropDatabase(name: name) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("assay-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let traces = directory.appendingPathComponent("traces.copy")
        let spans = directory.appendingPathComponent("spans.copy")
        if binary {
            try Data(CopyBinaryEncoder.header + data.binaryRows.traces + CopyBinaryEncoder.trailer).write(to: traces)
            try Data(CopyBinaryEncoder.header + data.binaryRows.spans + CopyBinaryEncoder.trailer).write(to: spans)
        } else {
            try Self.write(data.traceRows, to: traces)
            try Self.write(data.spanRows, to: spans)
        }
        // Migrate with the assay binary (the same tables and indexes Assay writes into).
        try Self.runTool(assayPath, ["migrate", "--database-url", url, "--log-level", "error"])
        let traceColumns = (TraceRowEncoder.traceColumns + ["request_time"]).joined(separator: ", ")
        let spanColumns = TraceRowEncoder.spanColumns.joined(separator: ", ")
        let format = binary ? " WITH (FORMAT binary)" : ""
        return try timedLoad(into: url, [
            "\\copy assay.traces (\(traceColumns)) FROM '\(traces.path)'\(format)",
            "\\copy assay.spans (\(spanColumns)) FROM '\(spans.path)'\(format)",
        ])
    }

    /// Runs `commands` in one psql session against `url`; returns the wall time and the
    /// database's CPU time meanwhile.
    private func timedLoad(into url: String, _ commands: [String]) throws -> (seconds: Double, databaseCPUSeconds: Double) {
        let databaseCPUBefore = DatabaseCPU.seconds(dataDirectory: cluster.dataDirectory)
        let start = ContinuousClock.now
        let backend = try Self.runTool(cluster.binDirectory + "/psql", [url, "-v", "ON_ERROR_STOP=1", "-q", "-At", "-c", "SELECT pg_backend_pid()"]
                                                                       + commands.flatMap { ["-c", $0] })
        let seconds = start.duration(to: .now).seconds
        // The backend's CPU counts once the postmaster has reaped it (it is then in the
        // postmaster's cutime), a moment after psql has exited.
        if let pid = Int32(backend.split(separator: "\n").first ?? "") { DatabaseCPU.waitUntilReaped(pid) }
        return (seconds, DatabaseCPU.seconds(dataDirectory: cluster.dataDirectory) - databaseCPUBefore)
    }

    /// (d′) `psql \copy` of (d)'s assessment rows, exported from the bench database in
    /// PostgreSQL's binary format, into a fresh database with Assay's tables and indexes: the
    /// cost of writing (d)'s output alone, without reading a trace, scoring or publishing.
    private func assessmentsCopyLimit(from source: BenchDatabase) throws -> (seconds: Double, databaseCPUSeconds: Double) {
        let name = "bench_copy_assessments_\(repetition)_\(UInt32.random(in: 0...UInt32.max))"
        let url = try cluster.createDatabase(name: name)
        defer { try? cluster.dropDatabase(name: name) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("assay-bench-assessments-\(UUID().uuidString).copy")
        defer { try? FileManager.default.removeItem(at: file) }
        let psql = cluster.binDirectory + "/psql"
        _ = try Self.runTool(psql, [source.url, "-v", "ON_ERROR_STOP=1", "-q", "-c", "\\copy assay.assessments TO '\(file.path)' WITH (FORMAT binary)"])
        try Self.runTool(assayPath, ["migrate", "--database-url", url, "--log-level", "error"])
        return try timedLoad(into: url, ["\\copy assay.assessments FROM '\(file.path)' WITH (FORMAT binary)"])
    }

    static func write(_ rows: [[String?]], to url: URL) throws {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(rows.count * 512)
        for row in rows { CopyTextEncoder.appendRow(row, to: &buffer) }
        try Data(buffer).write(to: url)
    }

    /// Runs a tool to its end and returns what it printed; throws with its stderr if it failed.
    @discardableResult
    static func runTool(_ path: String, _ arguments: [String]) throws -> String {
        let result = try CommandRunner.run(path, arguments)
        guard result.status == 0 else {
            throw BenchFailure("\(path) \(arguments.first ?? "") failed: \(result.stderr)")
        }
        return result.stdout
    }

    private func waitFor(_ what: String, pool: PostgresPool, timeout: Duration, child: ServeChild,
                         _ check: @escaping @Sendable (PostgresConnection) throws -> Bool) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            if try await pool.withConnection(check) { return }
            guard child.isRunning else { throw BenchFailure("assay serve exited during \(what): \(child.logTail)") }
            if ContinuousClock.now > deadline { throw BenchFailure("timed out waiting for \(what): \(child.logTail)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private func waitForKafkaCommit(mock: MockCluster, group: String, topic: String, total: Int64, child: ServeChild) async throws {
        let consumer = try KafkaConsumer(configuration: .init(bootstrapServers: mock.bootstrapServers, groupID: group), listener: FromBeginning(), logger: logger)
        defer { Task { await consumer.close() } }
        let partitions = (0..<Int32(self.partitions)).map { TopicPartition(topic: topic, partition: $0) }
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while ContinuousClock.now < deadline {
            let committed = try await consumer.committed(partitions)
            if committed.values.reduce(Int64(0), { $0 + ($1 ?? 0) }) >= total { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchFailure("Kafka offsets were not committed: \(child.logTail)")
    }
}

/// A fresh, migrated database of the bench cluster, with a one-connection pool.
struct BenchDatabase {
    let cluster: LocalPostgresCluster
    let name: String
    let url: String
    let pool: PostgresPool

    init(cluster: LocalPostgresCluster, name: String, logger: Logger) async throws {
        self.cluster = cluster
        self.name = name
        url = try cluster.createDatabase(name: name)
        _ = try await AssayDatabase.migrate(url: url, schema: .default, logger: logger)
        pool = try PostgresPool(configuration: AssayDatabase.configuration(url: url, schema: .default), size: 1, name: "bench", logger: logger)
    }

    /// Stores the bench monitor (``BenchRun/monitorDocument``) as the first version.
    func saveMonitor() async throws {
        let monitor = try MonitorConfig.parse(Array(BenchRun.monitorDocument.utf8))
        _ = try await pool.withConnection { try MonitorStore(schema: .default).saveIfChanged(monitor, note: "bench", nowNanos: 0, on: $0) }
    }

    func drop() {
        pool.shutdown()
        try? cluster.dropDatabase(name: name)
    }
}

/// `assay serve` as a child process, with its peak RSS.
final class ServeChild: @unchecked Sendable {
    // @unchecked: `process` is only started, signalled and read through its thread-safe API.
    let process = Process()
    let log: URL

    init(assay: String, brokers: String, databaseURL: String, group: String, replicaName: String = "bench", extra: [String]) throws {
        process.executableURL = URL(fileURLWithPath: assay)
        process.arguments = ["serve", "--brokers", brokers, "--database-url", databaseURL, "--group", group,
                             "--http", "127.0.0.1:0", "--log-level", "warning", "--replica-name", replicaName] + extra
        log = FileManager.default.temporaryDirectory.appendingPathComponent("assay-bench-serve-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        InterruptCleanup.shared.trackChild { [self] in self.kill() }
    }

    /// SIGKILL, for an interrupted bench (no time for a clean shutdown).
    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    var isRunning: Bool { process.isRunning }

    /// User plus system CPU time the process has used so far, in seconds (0 if unknown).
    func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // After "pid (comm)": state is field 3, utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// VmHWM of the process, in MB.
    func peakRSSMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = line.split(separator: " ").compactMap({ Double($0) }).first else { return 0 }
        return kilobytes / 1024
    }

    var logTail: String {
        String(((try? String(contentsOf: log, encoding: .utf8)) ?? "").suffix(2000))
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: log)
    }
}

struct FromBeginning: ConsumerRebalanceListener {
    func startingOffsets(for partitions: [TopicPartition]) throws -> [TopicPartition: KafkaOffset] {
        Dictionary(uniqueKeysWithValues: partitions.map { ($0, .beginning) })
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {}
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// CPU time of a PostgreSQL cluster's processes, from /proc: the postmaster's own and that
/// of the children it has reaped (the backends that ended), plus its running children's.
enum DatabaseCPU {
    static func seconds(dataDirectory: String) -> Double {
        guard let pidFile = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let postmaster = pidFile.split(separator: "\n").first.flatMap({ Int32($0) }) else { return 0 }
        var ticks = 0.0
        if let own = stat(postmaster) { ticks += own.utime + own.stime + own.cutime + own.cstime }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), pid != postmaster, let child = stat(pid), child.ppid == postmaster else { continue }
            ticks += child.utime + child.stime
        }
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Waits (at most 5 s) until process `pid` is gone: reaped by its parent, whose
    /// cutime and cstime then include its CPU.
    static func waitUntilReaped(_ pid: Int32) {
        let deadline = ContinuousClock.now + .seconds(5)
        while kill(pid, 0) == 0 || errno != ESRCH, ContinuousClock.now < deadline { usleep(10_000) }
    }

    /// Fields of /proc/PID/stat: ppid (4), utime (14), stime (15), cutime (16), cstime (17).
    private static func stat(_ pid: Int32) -> (ppid: Int32, utime: Double, stime: Double, cutime: Double, cstime: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 14, let ppid = Int32(fields[1]), let utime = Double(fields[11]), let stime = Double(fields[12]),
              let cutime = Double(fields[13]), let cstime = Double(fields[14]) else { return nil }
        return (ppid, utime, stime, cutime, cstime)
    }
}
