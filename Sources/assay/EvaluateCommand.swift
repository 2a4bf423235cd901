import ArgumentParser
import AssayCore
import AssayPipeline
import AssayScoring
import AssayStore
import Foundation
import Logging
import Postgres

/// `assay evaluate`: runs a monitor's scorers on past traces without writing anything.
struct EvaluateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Run scorers on stored or saved traces and show what they conclude, writing nothing.",
        discussion: """
            Answers "why did this scorer not show up for my traces?" before a monitor is enabled:
            for each scorer, how many traces its filter excluded, how many it did not apply to (with
            the reasons), and its verdicts. Sample rates are reported, not applied, unless --apply-sampling.
            Traces come from --file (one MLflow trace JSON per line) or from PostgreSQL (--database-url).
            """
    )

    @Option(help: ArgumentHelp("Monitor config whose scorers to run (default: every predefined scorer with the offline judge, plus the demo's code scorers).", valueName: "file"))
    var monitor: String?

    @Option(help: ArgumentHelp("Traces to evaluate, one MLflow trace JSON per line.", valueName: "traces.jsonl"))
    var file: String?

    @Option(name: .customLong("database-url"), help: "Read the newest stored traces from this PostgreSQL instead. Env: ASSAY_DATABASE_URL, DATABASE_URL.")
    var databaseURL: String?

    @Option(help: "Schema of the stored traces.")
    var schema = "assay"

    @Option(help: "How many traces to evaluate (newest first from the database; first lines of a file).")
    var limit: Int?

    @Option(help: ArgumentHelp("Only traces matching this filter, e.g. \"state = 'OK' AND tags.env = 'prod'\".", valueName: "expression"))
    var filter: String?

    @Flag(name: .customLong("apply-sampling"), help: "Skip traces the scorers' sample rates would skip, as the live monitor does.")
    var applySampling = false

    @Flag(help: "One JSON object per (trace, scorer) result, then a summary line.")
    var json = false

    @OptionGroup var log: LogOptions

    func validate() throws {
        if file != nil && databaseURL != nil { throw ValidationError("Use --file or --database-url, not both.") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1.") }
        if let filter {
            do { _ = try TraceFilter.parse(filter) } catch { throw ValidationError("--filter: \(error)") }
        }
    }

    func run() async throws {
        var log = self.log
        if log.levelFlag == nil && environment("ASSAY_LOG_LEVEL") == nil { log.levelFlag = "warning" }
        let logger = log.bootstrap(label: "assay.evaluate")
        let config = try monitor.map { try MonitorFile.load($0) } ?? Self.defaultMonitor
        guard let config else { throw ValidationError("No monitor config.") }
        let scorers = try JudgeWiring.makeScorers(config, logger: logger)
        let traceFilter = try filter.map { try TraceFilter.parse($0) }
        let traces = try await loadTraces(filter: traceFilter, logger: logger)
        guard !traces.isEmpty else {
            throw ValidationError("No traces to evaluate\(filter == nil ? "" : " match the filter").")
        }
        let plan = ScoringPlan(config: config)
        var report = EvaluationReport(scorers: config.scorers)
        let context = ScoringContext(budgetKey: "evaluate")
        for trace in traces {
            let rho = Sampler.rho(canonicalTraceID: trace.canonicalTraceID)
            for (scorerConfig, scorer) in zip(config.scorers, scorers) {
                let rate = plan.rate(of: scorerConfig)
                if let filter = scorerConfig.filter, !filter.matches(trace) {
                    report.add(scorer: scorerConfig.name, filteredOut: true)
                    continue
                }
                let sampled = Sampler.isSampled(rho: rho, rate: rate)
                if !sampled {
                    report.add(scorer: scorerConfig.name, wouldBeSampledOut: true)
                    if applySampling { continue }
                }
                for outcome in await scorer.score(trace, context: context) {
                    let line = EvaluationLine(traceID: trace.traceID, scorer: scorerConfig.name, outcome: outcome)
                    report.add(line)
                    if json { print(line.json().serialized()) }
                }
            }
        }
        if json {
            print(JSONValue.object(["summary": report.summaryJSON(traces: traces.count)]).serialized())
        } else {
            report.printTable(traces: traces.count, applySampling: applySampling)
        }
    }

    /// Every predefined scorer the offline judge can run, plus code scorers.
    static var defaultMonitor: MonitorConfig? {
        try? MonitorConfig.parse(Array("""
            {"name": "evaluate", "destination": {"schema": "assay"}, "judge": {"kind": "offline"},
             "scorers": [
                {"name": "relevance_to_query", "kind": "relevance_to_query"},
                {"name": "retrieval_groundedness", "kind": "retrieval_groundedness"},
                {"name": "retrieval_relevance", "kind": "retrieval_relevance"},
                {"name": "safety", "kind": "safety"},
                {"name": "no_error", "kind": "no_error"},
                {"name": "fast_enough", "kind": "latency", "params": {"max_ms": 5000}},
                {"name": "no_pii", "kind": "pii"}
             ]}
            """.utf8))
    }

    private func loadTraces(filter: TraceFilter?, logger: Logger) async throws -> [Trace] {
        if let databaseURL = databaseURL ?? (file == nil ? environment("ASSAY_DATABASE_URL") ?? environment("DATABASE_URL") : nil) {
            return try await loadFromDatabase(url: databaseURL, filter: filter, logger: logger)
        }
        guard let file else { throw ValidationError("Give --file traces.jsonl or --database-url.") }
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("Cannot read \(file).") }
        var traces: [Trace] = []
        var rejected = 0
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) {
            switch MessageDecoding.decode(payload: Array(line)) {
            case .success(let trace):
                if filter?.matches(trace) ?? true { traces.append(trace) }
            case .failure(let rejection):
                rejected += 1
                logger.warning("skipping a line that is not a trace", metadata: ["reason": "\(rejection)"])
            }
            if let limit, traces.count >= limit { break }
        }
        if rejected > 0 && !json { print("(\(rejected) lines of \(file) are not traces and were skipped)") }
        return traces
    }

    private func loadFromDatabase(url: String, filter: TraceFilter?, logger: Logger) async throws -> [Trace] {
        let schemaName = try SchemaName(schema)
        let pool = try PostgresPool(configuration: AssayDatabase.configuration(url: url, schema: schemaName, applicationName: "assay-evaluate"),
                                    size: 1, name: "evaluate", logger: logger)
        let wanted = limit ?? 10
        do {
            var traces: [Trace] = []
            var offset = 0
            // Newest first, a page at a time, until enough match the filter (or 10,000 were read).
            while traces.count < wanted && offset < 10_000 {
                let page = offset
                let loaded = try await pool.withConnection { connection -> [Trace] in
                    let ids = try connection.query("SELECT trace_id FROM traces ORDER BY request_time DESC, trace_id LIMIT 200 OFFSET $1",
                                                   [.text(String(page))]).map { try $0.string(0) }
                    let stored = try TraceReader.load(traceIDs: ids, windowClosedAtMicros: Int64.max, on: connection)
                    let byID = Dictionary(uniqueKeysWithValues: stored.map { ($0.trace.traceID, $0.trace) })
                    return ids.compactMap { byID[$0] }
                }
                if loaded.isEmpty { break }
                traces += loaded.filter { filter?.matches($0) ?? true }
                offset += 200
            }
            await pool.shutdown()
            return Array(traces.prefix(wanted))
        } catch {
            await pool.shutdown()
            throw error
        }
    }
}

/// One (trace, scorer) result.
struct EvaluationLine {
    let traceID: String
    let scorer: String
    let outcome: ScorerOutcome

    var outcomeName: String {
        switch outcome.result {
        case .value(let value, _):
            switch value {
            case .yes, .bool(true): return "yes"
            case .no, .bool(false): return "no"
            case .notApplicable: return "not_applicable"
            case .number, .text: return "value"
            }
        case .notApplicable: return "not_applicable"
        case .error: return "error"
        case .budgetSkipped: return "budget_skipped"
        }
    }

    func json() -> JSONValue {
        var object = JSONObject()
        object["trace_id"] = .string(traceID)
        object["scorer"] = .string(scorer)
        if outcome.assessmentName != scorer { object["assessment_name"] = .string(outcome.assessmentName) }
        object["outcome"] = .string(outcomeName)
        switch outcome.result {
        case .value(let value, let rationale):
            object["value"] = value.json()
            object["rationale"] = .string(rationale)
        case .notApplicable(let reason), .budgetSkipped(let reason):
            object["value"] = .null
            object["rationale"] = .string(reason)
        case .error(let code, let message):
            object["value"] = .null
            object["rationale"] = .string("\(code): \(message)")
        }
        if let spanID = outcome.spanID { object["span_id"] = .string(spanID) }
        return .object(object)
    }
}

/// Per-scorer tallies of an evaluation.
struct EvaluationReport {
    struct Tally {
        var filteredOut = 0
        var wouldBeSampledOut = 0
        var tracesRun = Set<String>()
        var outcomes: [String: Int] = [:]
        var reasons: [String: Int] = [:]
    }

    let scorers: [ScorerConfig]
    var tallies: [String: Tally] = [:]

    init(scorers: [ScorerConfig]) {
        self.scorers = scorers
    }

    mutating func add(scorer: String, filteredOut: Bool = false, wouldBeSampledOut: Bool = false) {
        if filteredOut { tallies[scorer, default: Tally()].filteredOut += 1 }
        if wouldBeSampledOut { tallies[scorer, default: Tally()].wouldBeSampledOut += 1 }
    }

    mutating func add(_ line: EvaluationLine) {
        var tally = tallies[line.scorer, default: Tally()]
        tally.tracesRun.insert(line.traceID)
        tally.outcomes[line.outcomeName, default: 0] += 1
        switch line.outcome.result {
        case .notApplicable(let reason): tally.reasons[reason, default: 0] += 1
        case .error(let code, _): tally.reasons["error \(code)", default: 0] += 1
        default: break
        }
        tallies[line.scorer] = tally
    }

    func summaryJSON(traces: Int) -> JSONValue {
        var scorerItems = JSONObject()
        for scorer in scorers {
            let tally = tallies[scorer.name] ?? Tally()
            var item = JSONObject()
            item["kind"] = .string(scorer.kind.rawValue)
            item["traces_run"] = JSONValue(tally.tracesRun.count)
            item["filtered_out"] = JSONValue(tally.filteredOut)
            item["would_be_sampled_out"] = JSONValue(tally.wouldBeSampledOut)
            for name in ["yes", "no", "value", "not_applicable", "error", "budget_skipped"] {
                item[name] = JSONValue(tally.outcomes[name, default: 0])
            }
            item["not_applicable_reasons"] = .object(JSONObject(tally.reasons.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { (key: $0.key, value: JSONValue($0.value)) }))
            scorerItems[scorer.name] = .object(item)
        }
        return .object(["traces": JSONValue(traces), "scorers": .object(scorerItems)])
    }

    func printTable(traces: Int, applySampling: Bool) {
        print("Evaluated \(traces) traces (nothing was written).")
        print("")
        let header = Self.pad("scorer", 24) + Self.pad("ran on", 8) + Self.pad("filtered", 10) + Self.pad(applySampling ? "sampled out" : "rate would skip", 17)
            + Self.pad("N/A", 6) + Self.pad("yes", 6) + Self.pad("no", 6) + Self.pad("value", 7) + Self.pad("errors", 8) + "top reasons for N/A / errors"
        print(header)
        for scorer in scorers {
            let tally = tallies[scorer.name] ?? Tally()
            let reasons = tally.reasons.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.prefix(2).map { "\($0.key) (\($0.value))" }.joined(separator: "; ")
            print(Self.pad(scorer.name, 24) + Self.pad(String(tally.tracesRun.count), 8) + Self.pad(String(tally.filteredOut), 10)
                  + Self.pad(String(tally.wouldBeSampledOut), 17) + Self.pad(String(tally.outcomes["not_applicable", default: 0]), 6)
                  + Self.pad(String(tally.outcomes["yes", default: 0]), 6) + Self.pad(String(tally.outcomes["no", default: 0]), 6)
                  + Self.pad(String(tally.outcomes["value", default: 0]), 7) + Self.pad(String(tally.outcomes["error", default: 0]), 8) + reasons)
        }
        print("")
        print("Counts are assessments: per-span scorers give one per retriever span (and per chunk).")
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(1, width - text.count))
    }
}
