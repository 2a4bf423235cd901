import ArgumentParser
import AssayCore
import AssayStore
import DedicatedThreads
import Foundation
import Kafka
import LocalPostgres
import Logging
import Postgres

/// `make bench`: Assay's ingest and scoring measured side by side with the limits of the
/// machine (a plain Kafka consumer, and `psql \copy` of the same rows), in one run.
@main
struct AssayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assay-bench",
        abstract: "Measure Assay's ingest and scoring against the Kafka read and PostgreSQL COPY limits, side by side."
    )

    @Option(help: "Traces per run.")
    var n = 100_000

    @Option(help: "Partitions (default: 64, more when the data would not fit the mock broker's ~5 MiB per partition).")
    var partitions: Int?

    @Option(help: "Repetitions; the median is reported.")
    var repeats = 3

    @Option(help: "Seed of the generated traffic.")
    var seed: UInt64 = 7

    @Option(help: "The assay binary (default: next to this one).")
    var assay: String?

    @Flag(help: "Skip the scoring measurements.")
    var skipScoring = false

    @Flag(help: "Skip the streaming measurement (ingest with the monitor in force, scoring while the window is open).")
    var skipStreaming = false

    @Option(help: "Traces per second the streaming measurement publishes at while Assay runs; 0 publishes them all before it starts.")
    var streamRate = 1000

    @Option(help: "Replicas (assay serve processes) scoring the closed window in (d) side by side.")
    var scoringReplicas = 1

    @Flag(help: "Only measure the replica's per-trace work on one core, without Kafka or PostgreSQL: decoding the messages, encoding their COPY rows and freeing the decoded traces.")
    var decodeOnly = false

    func run() async throws {
        var configured = Logger(label: "bench")
        configured.logLevel = ProcessInfo.processInfo.environment["ASSAY_BENCH_LOG"] == nil ? .warning : .info
        let logger = configured
        if decodeOnly {
            let data = try BenchData.generate(n: n, seed: seed)
            print(try DecodeCost.measure(data.messages.compactMap(\.value), repeats: repeats))
            return
        }
        let assayPath = assay ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("assay").path
        guard FileManager.default.isExecutableFile(atPath: assayPath) else { throw ValidationError("no assay binary at \(assayPath); build it first (make bench does)") }

        // Interrupted (Ctrl-C, a timeout), the bench still stops its serve processes and cluster.
        InterruptCleanup.shared.install(tool: "assay-bench")
        let thread = DedicatedThread(name: "bench-pg")
        let cluster = try await thread.run { try LocalPostgresCluster.start(logger: logger) }
        InterruptCleanup.shared.onInterrupt { cluster.stop() }
        defer {
            cluster.stop()
            thread.shutdown()
        }
        let data = try BenchData.generate(n: n, seed: seed)
        let partitionCount = partitions ?? max(64, MockCluster.partitionsToHold(bytes: data.bytes))
        print("assay-bench: n=\(n), \(String(format: "%.1f", Double(data.bytes) / 1_048_576)) MB of MLflow traces (1–8 KB), \(partitionCount) partitions, \(repeats) repetitions")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; broker, PostgreSQL (fsync off) and Assay share them")

        var results: [RunResult] = []
        for repetition in 1...repeats {
            let result = try await BenchRun(repetition: repetition, data: data, partitions: partitionCount, cluster: cluster,
                                            assayPath: assayPath, scoring: !skipScoring, streaming: !skipStreaming, streamRate: streamRate,
                                            scoringReplicas: scoringReplicas, logger: logger).run()
            print(result.line)
            results.append(result)
        }
        let median = RunResult.median(results)
        print("")
        print(median.table)
        print(median.json.serialized())
    }
}

/// The traces of a run, generated once: messages plus the COPY rows Assay would write (its
/// binary rows, and the general path's text rows of the same values).
struct BenchData: Sendable {
    let messages: [ProducerMessage]
    let bytes: Int
    let binaryRows: DirectCopyRows
    let traceRows: [[String?]]
    let spanRows: [[String?]]
    let windowStartNanos: Int64

    /// All request times fall in one hour-long window that ended a few minutes ago.
    static func generate(n: Int, seed: UInt64) throws -> BenchData {
        let hour: Int64 = 3_600_000_000_000
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        let windowStart = (now / hour) * hour - hour
        var generator = SyntheticTraceGenerator(seed: seed, startNanos: windowStart + 60_000_000_000, spacingNanos: max(1, (50 * 60_000_000_000) / Int64(n)))
        generator.maxPaddingBytes = 1800
        var messages: [ProducerMessage] = []
        var traceRows: [[String?]] = []
        var spanRows: [[String?]] = []
        var binaryRows = DirectCopyRows()
        var bytes = 0
        messages.reserveCapacity(n)
        for index in 0..<n {
            let generated = generator.next()
            bytes += generated.json.count
            messages.append(ProducerMessage(topic: "traces", key: Array(generated.traceID.utf8), value: generated.json,
                                            headers: [(name: "content-type", value: Array("application/json".utf8))]))
            let trace = try MessageDecoding.decode(payload: generated.json).get()
            let source = SourcePosition(partition: PartitionKey(topic: "traces", partition: 0), offset: Int64(index))
            binaryRows.appendTrace(trace, source: source, deliveries: 1)
            traceRows.append(TraceRowEncoder.traceRow(trace, source: source, deliveries: 1) + [TraceRowEncoder.requestTimeText(trace)])
            spanRows += trace.spans.map { TraceRowEncoder.spanRow($0, traceID: trace.traceID) }
        }
        return BenchData(messages: messages, bytes: bytes, binaryRows: binaryRows, traceRows: traceRows, spanRows: spanRows, windowStartNanos: windowStart)
    }
}

/// The figures of one repetition.
struct RunResult: Sendable {
    var n: Int
    var bytes: Int
    var kafkaSeconds: Double
    var copySeconds: Double
    /// (b′) the same values as text COPY rows (what Assay wrote before it wrote binary),
    /// for comparison with (b); not part of the limit.
    var copyTextSeconds = 0.0
    /// CPU time of the PostgreSQL cluster's processes during (b).
    var copyDatabaseCPUSeconds = 0.0
    var ingestSeconds: Double
    var ingestRSSMB: Double
    var scoreSeconds: Double?
    /// From window close to the window's summaries committed (scoring alone, before the
    /// outbox has published everything).
    var scoredSeconds: Double?
    var assessments = 0
    var scoreRSSMB: Double?
    /// CPU time of the scoring serve, and of the PostgreSQL cluster, during (d).
    var scoreCPUSeconds: Double?
    /// With several scoring replicas in (d), each one's CPU time (how the work was shared).
    var scoreReplicaCPUSeconds: [Double] = []
    var scoreDatabaseCPUSeconds: Double?
    /// (d′) `psql \copy` of (d)'s assessment rows into a fresh database: writing (d)'s output
    /// alone, the floor under (d) for any design that stores each assessment as a row.
    var assessmentsCopySeconds: Double?
    var assessmentsCopyDatabaseCPUSeconds: Double?
    /// (e) Streaming: ingest with the monitor in force (scoring the open window meanwhile),
    /// from the window's close to the last assessment published, the share of traces scored
    /// before the close, launch to last published, and the serve's peak RSS.
    var streamingIngestSeconds: Double?
    var streamingCloseSeconds: Double?
    var streamingScoredBeforeClose: Double?
    var streamingTotalSeconds: Double?
    var streamingRSSMB: Double?
    /// The rate (e) published at (0: all before Assay started).
    var streamRate = 0
    /// (a) and (c) after their first batch: messages after it over the time from it to the
    /// end. This leaves out the start-up both pay before anything arrives, mostly the
    /// broker's fixed 3 s group.initial.rebalance.delay.ms for a new group's first join (the
    /// mock cluster's, as a real broker's default), so it is the sustained rate.
    var kafkaSteadyRate = 0.0
    var ingestSteadyRate = 0.0
    /// CPU time (user and system) of the serve process during (c).
    var ingestCPUSeconds = 0.0
    /// CPU time of the PostgreSQL cluster's processes during (c).
    var ingestDatabaseCPUSeconds = 0.0

    var kafkaRate: Double { Double(n) / kafkaSeconds }
    var copyRate: Double { Double(n) / copySeconds }
    var copyTextRate: Double { Double(n) / copyTextSeconds }
    var ingestRate: Double { Double(n) / ingestSeconds }
    var ratio: Double { ingestRate / min(kafkaRate, copyRate) }
    var steadyRatio: Double { ingestSteadyRate / min(kafkaSteadyRate, copyRate) }
    var cpuMicrosPerTrace: Double { 1_000_000 * ingestCPUSeconds / Double(n) }
    var databaseCPUMicrosPerTrace: Double { 1_000_000 * ingestDatabaseCPUSeconds / Double(n) }
    var copyDatabaseCPUMicrosPerTrace: Double { 1_000_000 * copyDatabaseCPUSeconds / Double(n) }
    var megabytes: Double { Double(bytes) / 1_048_576 }
    var peakRSS: Double { max(ingestRSSMB, scoreRSSMB ?? 0, streamingRSSMB ?? 0) }

    var line: String {
        String(format: "  run: kafka %.0f/s, copy %.0f/s (text %.0f/s), assay ingest %.0f/s (%.2f of the limit) in %.1f s, after the first batch %.2f of the limit, %.0f µs CPU per trace (PostgreSQL %.0f µs; %.0f µs in (b)), RSS %.0f MB",
               kafkaRate, copyRate, copyTextRate, ingestRate, ratio, ingestSeconds, steadyRatio, cpuMicrosPerTrace, databaseCPUMicrosPerTrace,
               copyDatabaseCPUMicrosPerTrace, ingestRSSMB)
            + (scoreSeconds.map { String(format: "; scoring %.2f s for %d assessments (%.3f ms each; scored after %.2f s; CPU %.1f s, PostgreSQL %.1f s), RSS %.0f MB", $0, assessments, 1000 * $0 / Double(max(assessments, 1)), scoredSeconds ?? 0, scoreCPUSeconds ?? 0, scoreDatabaseCPUSeconds ?? 0, scoreRSSMB ?? 0) } ?? "")
            + (assessmentsCopySeconds.map { String(format: "; COPY of the assessments alone %.2f s", $0) } ?? "")
            + (scoreReplicaCPUSeconds.count > 1 ? "; CPU per scoring replica " + scoreReplicaCPUSeconds.map { String(format: "%.1f s", $0) }.joined(separator: ", ") : "")
            + (streamingCloseSeconds.map { String(format: "; streaming: ingest %.1f s, %.0f%% scored before the close, close to last published %.2f s, total %.1f s, RSS %.0f MB",
                                                  streamingIngestSeconds ?? 0, 100 * (streamingScoredBeforeClose ?? 0), $0, streamingTotalSeconds ?? 0, streamingRSSMB ?? 0) } ?? "")
    }

    /// Per figure, the median of the repetitions.
    static func median(_ results: [RunResult]) -> RunResult {
        func mid(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        }
        let scores = results.compactMap(\.scoreSeconds)
        let scored = results.compactMap(\.scoredSeconds)
        let scoreRSS = results.compactMap(\.scoreRSSMB)
        func midOptional(_ values: [Double]) -> Double? { values.isEmpty ? nil : mid(values) }
        var median = RunResult(n: results[0].n, bytes: results[0].bytes,
                               kafkaSeconds: mid(results.map(\.kafkaSeconds)), copySeconds: mid(results.map(\.copySeconds)),
                               ingestSeconds: mid(results.map(\.ingestSeconds)), ingestRSSMB: mid(results.map(\.ingestRSSMB)),
                               scoreSeconds: midOptional(scores), scoredSeconds: midOptional(scored), assessments: Int(mid(results.map { Double($0.assessments) })),
                               scoreRSSMB: midOptional(scoreRSS))
        median.streamingIngestSeconds = midOptional(results.compactMap(\.streamingIngestSeconds))
        median.streamingCloseSeconds = midOptional(results.compactMap(\.streamingCloseSeconds))
        median.streamingScoredBeforeClose = midOptional(results.compactMap(\.streamingScoredBeforeClose))
        median.streamingTotalSeconds = midOptional(results.compactMap(\.streamingTotalSeconds))
        median.streamingRSSMB = midOptional(results.compactMap(\.streamingRSSMB))
        median.streamRate = results[0].streamRate
        median.kafkaSteadyRate = mid(results.map(\.kafkaSteadyRate))
        median.ingestSteadyRate = mid(results.map(\.ingestSteadyRate))
        median.ingestCPUSeconds = mid(results.map(\.ingestCPUSeconds))
        median.copyTextSeconds = mid(results.map(\.copyTextSeconds))
        median.scoreCPUSeconds = midOptional(results.compactMap(\.scoreCPUSeconds))
        median.scoreDatabaseCPUSeconds = midOptional(results.compactMap(\.scoreDatabaseCPUSeconds))
        median.assessmentsCopySeconds = midOptional(results.compactMap(\.assessmentsCopySeconds))
        median.assessmentsCopyDatabaseCPUSeconds = midOptional(results.compactMap(\.assessmentsCopyDatabaseCPUSeconds))
        median.ingestDatabaseCPUSeconds = mid(results.map(\.ingestDatabaseCPUSeconds))
        median.copyDatabaseCPUSeconds = mid(results.map(\.copyDatabaseCPUSeconds))
        return median
    }

    var table: String {
        var lines = ["measure                       traces/s     MB/s    seconds"]
        func row(_ name: String, _ rate: Double, _ seconds: Double) {
            lines.append(name.padding(toLength: 28, withPad: " ", startingAt: 0)
                         + String(format: "%10.0f %8.1f %10.2f", rate, megabytes / seconds, seconds))
        }
        row("(a) Kafka read limit", kafkaRate, kafkaSeconds)
        row("(b) PostgreSQL COPY limit", copyRate, copySeconds)
        row("(b') the same rows as text", copyTextRate, copyTextSeconds)
        row("(c) Assay ingest", ingestRate, ingestSeconds)
        lines.append(String(format: "ratio c / min(a, b): %.2f", ratio))
        lines.append(String(format: "after the first batch (without the group's first-join delay): (a) %.0f/s, (c) %.0f/s, ratio %.2f; (c) used %.1f s of CPU, %.0f µs per trace, and PostgreSQL %.0f µs per trace (%.0f µs per trace during (b))",
                            kafkaSteadyRate, ingestSteadyRate, steadyRatio, ingestCPUSeconds, cpuMicrosPerTrace, databaseCPUMicrosPerTrace,
                            copyDatabaseCPUMicrosPerTrace))
        if let scoreSeconds {
            lines.append(String(format: "(d) scoring: %.2f s from window close to the last assessment published, %d assessments, %.3f ms per assessment (%.1f%% of the ingest time); the window's summaries were committed after %.2f s",
                                scoreSeconds, assessments, 1000 * scoreSeconds / Double(max(assessments, 1)), 100 * scoreSeconds / ingestSeconds, scoredSeconds ?? 0))
            if let assessmentsCopySeconds {
                lines.append(String(format: "(d') PostgreSQL COPY of (d)'s assessment rows alone: %.2f s (%.1f%% of the ingest time; PostgreSQL CPU %.1f s); (d) took %.1f× that",
                                    assessmentsCopySeconds, 100 * assessmentsCopySeconds / ingestSeconds, assessmentsCopyDatabaseCPUSeconds ?? 0,
                                    scoreSeconds / assessmentsCopySeconds))
            }
        }
        if let streamingCloseSeconds, let streamingIngestSeconds {
            lines.append(String(format: "(e) streaming (monitor in force while ingesting; published at \(streamRate == 0 ? "once, before" : "\(streamRate)/s, while") Assay ran): ingest %.2f s (%.0f traces/s), %.0f%% of the traces scored before the window closed; close to the last assessment published %.2f s (%.1f%% of (c)'s ingest time); launch to last published %.2f s",
                                streamingIngestSeconds, Double(n) / streamingIngestSeconds, 100 * (streamingScoredBeforeClose ?? 0),
                                streamingCloseSeconds, 100 * streamingCloseSeconds / ingestSeconds, streamingTotalSeconds ?? 0))
        }
        lines.append(String(format: "peak RSS: ingest %.0f MB%@%@", ingestRSSMB, scoreRSSMB.map { String(format: ", scoring %.0f MB", $0) } ?? "",
                            streamingRSSMB.map { String(format: ", streaming %.0f MB", $0) } ?? ""))
        return lines.joined(separator: "\n")
    }

    var json: JSONValue {
        var object = JSONObject()
        object["n"] = JSONValue(n)
        object["megabytes"] = JSONValue((megabytes * 10).rounded() / 10)
        object["ingest_traces_per_s"] = JSONValue(ingestRate.rounded())
        object["kafka_limit_per_s"] = JSONValue(kafkaRate.rounded())
        object["copy_limit_per_s"] = JSONValue(copyRate.rounded())
        object["copy_text_per_s"] = JSONValue(copyTextRate.rounded())
        object["ratio_vs_limit"] = JSONValue((ratio * 1000).rounded() / 1000)
        object["ingest_seconds"] = JSONValue((ingestSeconds * 1000).rounded() / 1000)
        object["kafka_steady_per_s"] = JSONValue(kafkaSteadyRate.rounded())
        object["ingest_steady_per_s"] = JSONValue(ingestSteadyRate.rounded())
        object["steady_ratio_vs_limit"] = JSONValue((steadyRatio * 1000).rounded() / 1000)
        object["ingest_cpu_us_per_trace"] = JSONValue(cpuMicrosPerTrace.rounded())
        object["ingest_db_cpu_us_per_trace"] = JSONValue(databaseCPUMicrosPerTrace.rounded())
        object["copy_db_cpu_us_per_trace"] = JSONValue(copyDatabaseCPUMicrosPerTrace.rounded())
        object["score_seconds"] = scoreSeconds.map { JSONValue(($0 * 1000).rounded() / 1000) } ?? .null
        object["scored_seconds"] = scoredSeconds.map { JSONValue(($0 * 1000).rounded() / 1000) } ?? .null
        object["assessments"] = JSONValue(assessments)
        object["score_cpu_seconds"] = scoreCPUSeconds.map { JSONValue(($0 * 10).rounded() / 10) } ?? .null
        object["score_db_cpu_seconds"] = scoreDatabaseCPUSeconds.map { JSONValue(($0 * 10).rounded() / 10) } ?? .null
        object["assessments_copy_seconds"] = assessmentsCopySeconds.map { JSONValue(($0 * 1000).rounded() / 1000) } ?? .null
        object["per_assessment_ms"] = scoreSeconds.map { JSONValue((1_000_000 * $0 / Double(max(assessments, 1))).rounded() / 1000) } ?? .null
        func seconds(_ value: Double?) -> JSONValue { value.map { JSONValue(($0 * 1000).rounded() / 1000) } ?? .null }
        object["stream_rate_per_s"] = streamingCloseSeconds == nil ? .null : JSONValue(streamRate)
        object["streaming_ingest_seconds"] = seconds(streamingIngestSeconds)
        object["streaming_close_to_published_seconds"] = seconds(streamingCloseSeconds)
        object["streaming_scored_before_close"] = streamingScoredBeforeClose.map { JSONValue(($0 * 1000).rounded() / 1000) } ?? .null
        object["streaming_total_seconds"] = seconds(streamingTotalSeconds)
        object["peak_rss_mb"] = JSONValue(peakRSS.rounded())
        return .object(object)
    }
}

/// `--decode-only`: the replica's CPU per trace outside Kafka and PostgreSQL, on one core:
/// decoding a message into a trace, encoding the trace's COPY rows, freeing the trace.
/// Steadier than the whole-machine figures, for comparing changes to these steps.
enum DecodeCost {
    static func measure(_ payloads: [[UInt8]], repeats: Int) throws -> String {
        var decode: [Double] = []
        var encode: [Double] = []
        var free: [Double] = []
        var bytes = 0
        for _ in 0..<max(1, repeats) {
            let clock = ContinuousClock()
            var traces: [Trace] = []
            traces.reserveCapacity(payloads.count)
            decode.append(try clock.measure {
                for payload in payloads { traces.append(try MessageDecoding.decode(payload: payload, compactPayloads: true).get()) }
            }.seconds)
            // Encoded as ingest encodes a batch (IngestService.decode).
            var batch = IngestBatch()
            for (index, trace) in traces.enumerated() {
                batch.appendTrace(trace, source: SourcePosition(partition: PartitionKey(topic: "traces", partition: 0), offset: Int64(index)))
            }
            let payloadBytes = payloads.reduce(0) { $0 + $1.count }
            encode.append(clock.measure { batch.prepareDirectCopy(payloadBytes: payloadBytes) }.seconds)
            bytes = (batch.directCopy?.traces.count ?? 0) + (batch.directCopy?.spans.count ?? 0)
            batch = IngestBatch()  // its copies of the traces would keep them alive past the free below
            free.append(clock.measure { traces = [] }.seconds)
        }
        func perTrace(_ seconds: [Double]) -> Double { 1_000_000 * seconds.sorted()[seconds.count / 2] / Double(payloads.count) }
        var object = JSONObject()
        object["n"] = JSONValue(payloads.count)
        object["repeats"] = JSONValue(decode.count)
        object["decode_us_per_trace"] = JSONValue((perTrace(decode) * 100).rounded() / 100)
        object["encode_us_per_trace"] = JSONValue((perTrace(encode) * 100).rounded() / 100)
        object["free_us_per_trace"] = JSONValue((perTrace(free) * 100).rounded() / 100)
        object["copy_bytes_per_trace"] = JSONValue(bytes / max(1, payloads.count))
        return JSONValue.object(object).serialized()
    }
}
