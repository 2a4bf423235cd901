import AssayTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// Issue 9's acceptance: a `/metrics` scrape after the demo has every metric family the issue
/// lists, with values that add up to what the demo did.
@Suite("Metrics after the demo")
struct DemoMetricsTests {
    @Test("assay demo --http: /metrics has every family with plausible values, and the dashboard is served")
    func scrapeAfterDemo() async throws {
        try await Environment.with(partitions: 1) { env in
            try await Self.withAssay(["demo", "--traces", "600", "--database-url", env.database.url, "--http", "127.0.0.1:0", "--timeout-seconds", "240"]) { run in
                let process = run.process
                // The demo keeps serving after its last line (--http); wait for that line.
                let deadline = ContinuousClock.now.advanced(by: .seconds(240))
                var text = ""
                while !text.contains("Assessments in PostgreSQL:") {
                    guard process.isRunning else { Issue.record("the demo ended early:\n\(text.suffix(3000))"); return }
                    guard ContinuousClock.now < deadline else { Issue.record("the demo did not finish in 240 s:\n\(text.suffix(3000))"); return }
                    try await Task.sleep(for: .milliseconds(200))
                    text = run.output
                }
                let port = try #require(firstCapture(#"Dashboard:  http://127\.0\.0\.1:(\d+)/"#, in: text), "no dashboard line:\n\(text)")
                let assessments = try #require(firstCapture(#"Assessments in PostgreSQL: (\d+)"#, in: text).flatMap(Double.init))

                let (body, response) = try await URLSession.shared.data(from: try #require(URL(string: "http://127.0.0.1:\(port)/metrics")))
                #expect((response as? HTTPURLResponse)?.statusCode == 200)
                let samples = scrapeValues(String(decoding: body, as: UTF8.self))
                func total(_ name: String, where filter: (String) -> Bool = { _ in true }) -> Double? {
                    let values = samples.filter { $0.name == name && filter($0.labels) }.map(\.value)
                    return values.isEmpty ? nil : values.reduce(0, +)
                }
                // Messages: 600 traces, 25 late ones and 4 poison messages (more when a rebalance
                // made a replica re-read a batch; a replayed batch's traces are not stored again).
                #expect((total("assay_messages_consumed_total") ?? 0) >= 629)
                #expect((600...625).contains(total("assay_traces_stored_total") ?? 0))
                #expect(total("assay_dead_letters_total") == 4)
                #expect(samples.contains { $0.name == "assay_consumer_lag_messages" }, "lag per partition")
                #expect((total("assay_batch_write_duration_seconds_count") ?? 0) >= 1)
                #expect((total("assay_windows_closed_total") ?? 0) >= 1)
                #expect(total("assay_assessments_total") == assessments, "assessments by scorer and outcome add up to the stored ones")
                #expect((total("assay_judge_calls_total") ?? 0) > 0)
                #expect(samples.contains { $0.name == "assay_judge_call_duration_seconds_count" })
                #expect(samples.contains { $0.name == "assay_judge_errors_total" })
                #expect(total("assay_judge_tokens_total") != nil, "token series (0 with the offline judge, which uses none)")
                #expect(total("assay_outbox_backlog_messages") == 0)
                #expect(total("assay_config_version") == 1)

                let (page, pageResponse) = try await URLSession.shared.data(from: try #require(URL(string: "http://127.0.0.1:\(port)/")))
                #expect((pageResponse as? HTTPURLResponse)?.statusCode == 200)
                #expect(String(decoding: page, as: UTF8.self).contains("<svg") || String(decoding: page, as: UTF8.self).contains("dashboard.js"))

                process.interrupt()  // Ctrl-C ends the demo's serving
                let status = await process.exited()
                #expect(status == 0, "\(text.suffix(2000))")
            }
        }
    }

    @Test("assay demo refuses traffic that would not fit the mock broker's partitions, before publishing it")
    func demoRefusesTrafficThatWouldBeLost() async throws {
        try await Environment.with(partitions: 1) { env in
            try await Self.withAssay(["demo", "--traces", "30000", "--partitions", "8", "--database-url", env.database.url, "--timeout-seconds", "120"]) { run in
                let process = run.process
                for await _ in run.exited { break }
                let text = run.output
                #expect(process.terminationStatus != 0)
                #expect(text.contains("do not fit 8 partitions"), "\(text.suffix(2000))")
                #expect(!text.contains("Published"), "nothing is published: \(text.suffix(2000))")
                let needed = try #require(firstCapture(#"use --partitions (\d+) or more"#, in: text).flatMap(Int.init), "\(text.suffix(2000))")
                #expect((9...64).contains(needed))
            }
        }
    }

    /// `assay` running as a child process, everything it prints going to a file.
    struct AssayRun {
        let process: Process
        let outputURL: URL
        /// Yields once the process has exited.
        let exited: AsyncStream<Void>
        /// What it has printed so far.
        var output: String { (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "" }
    }

    /// Starts `assay arguments` and hands it to `body`; afterwards kills it if it still runs
    /// and removes its output file.
    static func withAssay<T>(_ arguments: [String], _ body: (AssayRun) async throws -> T) async throws -> T {
        let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("assay-demo-\(UUID().uuidString.prefix(8)).out")
        FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outputURL) }
        let output = try FileHandle(forWritingTo: outputURL)
        defer { try? output.close() }
        let process = Process()
        process.executableURL = try assayExecutable()
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        let exited = AsyncStream<Void> { continuation in
            process.terminationHandler = { _ in continuation.yield(); continuation.finish() }
        }
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        return try await body(AssayRun(process: process, outputURL: outputURL, exited: exited))
    }

    func firstCapture(_ pattern: String, in text: String) -> String? {
        guard let regex = try? NSRegularExpression(pattern: pattern),
              let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)), match.numberOfRanges > 1,
              let range = Range(match.range(at: 1), in: text) else { return nil }
        return String(text[range])
    }
}
