import Foundation
import Testing

/// The short form of `make chaos` (issue 7): three `assay serve` processes, a broker process
/// and PostgreSQL, every fault kind injected once, then exactly-once checks from PostgreSQL
/// and both topics. `assay-chaos` does the checking and exits non-zero on any problem; this
/// test also reads its figures line, so a run that checked nothing cannot pass.
@Suite("Chaos, short form")
struct ChaosTests {
    static let faultNotes = [
        "SIGKILL", "SIGTERM", "PostgreSQL restarted", "broker 1 down", "request-timed-out errors each on Produce, Fetch and OffsetCommit",
        "leader of traces/", "judge answered 429", "judge answered 500", "judge hung", "rebalance storm",
    ]

    /// assay-chaos's exit status when its mock broker process died (ChaosRun.mockBrokerCrashedStatus).
    static let mockBrokerCrashedStatus: Int32 = 3

    @Test("assay-chaos --short: every fault kind injected, nothing lost, nothing counted twice, every window summarised")
    func shortRun() async throws {
        var attempt = try await runChaos()
        if attempt.status == Self.mockBrokerCrashedStatus {
            // librdkafka 2.0.2's mock cluster can abort on a repeated JoinGroup (an assertion
            // in rdkafka_mock_cgrp.c): the test bed died, not Assay. One more run decides.
            print("assay-chaos: the mock broker died; running once more. \(attempt.text.suffix(600))")
            try? FileManager.default.removeItem(at: attempt.logs)
            try? FileManager.default.removeItem(at: attempt.outputURL)
            attempt = try await runChaos()
        }
        let (status, text, logs, outputURL) = attempt

        #expect(status == 0, "assay-chaos failed (logs in \(logs.path)):\n\(text.suffix(4000))")
        let figures = try #require(text.split(separator: "\n").last { $0.hasPrefix("traces=") }.map(String.init), "no figures line:\n\(text.suffix(4000))")
        var values: [String: Int] = [:]
        for pair in figures.split(separator: " ") {
            let parts = pair.split(separator: "=")
            if parts.count == 2, let value = Int(parts[1]) { values[String(parts[0])] = value }
        }
        #expect(values["traces"] == 1500)
        #expect(values["faults"] == 10)
        #expect(values["lost"] == 0)
        #expect(values["duplicated"] == 0)
        #expect(values["mismatched"] == 0)
        #expect(values["dlq"] == 15, "1% poison: one dead letter each")
        #expect((values["assessments_expected"] ?? 0) > 1500 && values["present"] == values["assessments_expected"])
        #expect(values["windows"] == 8)
        #expect((values["scored_while_open"] ?? 0) > 0, "traces scored while their window was open, under the faults")
        for note in Self.faultNotes {
            #expect(text.contains(note), "fault not injected: \(note)")
        }
        if status == 0 {
            try? FileManager.default.removeItem(at: logs)
            try? FileManager.default.removeItem(at: outputURL)
        }
    }

    /// One `assay-chaos --short --seed 1` run: its exit status, its output, and where its logs are.
    private func runChaos() async throws -> (status: Int32, text: String, logs: URL, outputURL: URL) {
        let chaos = try builtExecutable("assay-chaos")
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent("assay-chaos-test-\(UUID().uuidString.prefix(8))")
        let outputURL = logs.appendingPathExtension("out")
        FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputURL)
        defer { try? output.close() }

        let process = Process()
        process.executableURL = chaos
        process.arguments = ["--short", "--seed", "1", "--logs", logs.path]
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = nil  // the run starts its own PostgreSQL
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        let status = try await run(process, deadline: .seconds(300))
        let text = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        return (status, text, logs, outputURL)
    }

    /// Runs `process` to its end; after `deadline` sends SIGTERM (assay-chaos then stops its
    /// replicas, broker and PostgreSQL), and SIGKILL 15 s later. Returns its exit status.
    private func run(_ process: Process, deadline: Duration) async throws -> Int32 {
        let ended = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { ended.continuation.yield($0.terminationStatus); ended.continuation.finish() }
        try process.run()
        let watchdog = Task {
            try await Task.sleep(for: deadline)
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            try await Task.sleep(for: .seconds(15))
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        defer { watchdog.cancel() }
        for await status in ended.stream { return status }
        return -1
    }
}
