import AssayCore
import DedicatedThreads
import Foundation
import Testing

/// Runs the `assay` binary with arguments; returns its exit status and stdout. The reads and the
/// wait happen on a thread of their own, not on the cooperative pool (see `Process.exited()`).
func runAssay(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, stdout: String, stderr: String) {
    let executable = try assayExecutable()
    return try await runOnOwnThread(name: "run-assay") { try runAssayBlocking(executable, arguments, environment: environment) }
}

private func runAssayBlocking(_ executable: URL, _ arguments: [String], environment: [String: String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    var variables = ProcessInfo.processInfo.environment
    variables.merge(environment) { _, new in new }
    process.environment = variables
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read before waiting, so a full pipe cannot block the child.
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

@Suite("assay evaluate")
struct EvaluateCommandTests {
    @Test("on sample traces: retrieval scorers are not applicable exactly on traces without a RETRIEVER span; one line per result plus a summary")
    func applicabilityOnSamples() async throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/mlflow-traces-20.jsonl", withExtension: nil))
        let result = try await runAssay(["evaluate", "--file", url.path, "--json"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { try? JSONParser().parse(Array($0.utf8)) }
        #expect(lines.allSatisfy { $0 != nil }, "every line is JSON")
        let documents = lines.compactMap { $0 }
        let summary = try #require(documents.last?["summary"])
        #expect(summary["traces"]?.int64Value == 20)

        let traces = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try MessageDecoding.decode(payload: Array($0.utf8)).get()
        }
        let withRetriever = Set(traces.filter { $0.spans.contains { $0.spanType == "RETRIEVER" } }.map(\.traceID))
        #expect(!withRetriever.isEmpty && withRetriever.count < 20, "the fixture has both kinds")
        for scorer in ["retrieval_groundedness", "retrieval_relevance"] {
            let results = documents.filter { $0["scorer"]?.stringValue == scorer }
            let notApplicable = Set(results.filter { $0["outcome"]?.stringValue == "not_applicable" && $0["span_id"] == nil }.compactMap { $0["trace_id"]?.stringValue })
            let judged = Set(results.filter { $0["outcome"]?.stringValue == "yes" || $0["outcome"]?.stringValue == "no" }.compactMap { $0["trace_id"]?.stringValue })
            #expect(notApplicable == Set(traces.map(\.traceID)).subtracting(withRetriever), "\(scorer): N/A on exactly the traces without a retriever")
            #expect(judged.isSubset(of: withRetriever), "\(scorer) judged only traces with a retriever")
            #expect(results.allSatisfy { $0["outcome"]?.stringValue != "not_applicable" || !($0["rationale"]?.stringValue ?? "").isEmpty }, "N/A has a reason")
        }
        // Every result names its trace and scorer and has one of the documented outcomes.
        for line in documents.dropLast() {
            #expect(line["trace_id"]?.stringValue != nil && line["scorer"]?.stringValue != nil)
            #expect(["yes", "no", "not_applicable", "error", "value"].contains(line["outcome"]?.stringValue ?? ""))
        }
    }

    @Test("the table names each scorer with its N/A count and reasons, and nothing is written")
    func table() async throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/mlflow-traces-20.jsonl", withExtension: nil))
        let result = try await runAssay(["evaluate", "--file", url.path], environment: ["DATABASE_URL": ""])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("Evaluated 20 traces (nothing was written)."))
        let groundedness = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("retrieval_groundedness") })
        #expect(groundedness.contains("RETRIEVER") || groundedness.lowercased().contains("retriever"), "the N/A reason says why: \(groundedness)")
    }

    @Test("a monitor with a broken filter is refused with its JSON path")
    func invalidMonitor() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("monitor-\(UUID().uuidString).json")
        try #"{"name":"m","destination":{"schema":"assay"},"scorers":[{"name":"x","kind":"no_error","filter":"state = "}]}"#
            .write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let url = try #require(Bundle.module.url(forResource: "Fixtures/mlflow-traces-20.jsonl", withExtension: nil))
        let result = try await runAssay(["evaluate", "--monitor", file.path, "--file", url.path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("scorers[0].filter"), "stderr: \(result.stderr)")
    }
}
