import AssayCore
import Foundation
import Testing
@testable import AssayHTTP

/// The `assay` executable next to the test runner (built by `swift build`), if there is one.
func assayExecutable() -> URL? {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [directory, directory.deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent("assay")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    return nil
}

/// Runs `assay` with `arguments`; stdout and stderr go through files (no pipe can fill up).
func runAssay(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, stdout: String, stderr: String) {
    guard let executable = assayExecutable() else { throw TestFailure("the assay executable was not found; run `swift build` first") }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("assay-monitor-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let stdoutURL = directory.appendingPathComponent("stdout")
    let stderrURL = directory.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    var processEnvironment = ProcessInfo.processInfo.environment
    for name in ["ASSAY_ADMIN_TOKEN", "ASSAY_DATABASE_URL", "DATABASE_URL", "ASSAY_SCHEMA"] { processEnvironment[name] = nil }
    processEnvironment.merge(environment) { $1 }
    process.environment = processEnvironment
    process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
    process.standardError = try FileHandle(forWritingTo: stderrURL)
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    let stdout = String(decoding: try Data(contentsOf: stdoutURL), as: UTF8.self)
    let stderr = String(decoding: try Data(contentsOf: stderrURL), as: UTF8.self)
    return (status, stdout, stderr)
}

/// `assay monitor` as a process, against the database and the API.
@Suite(.enabled(if: assayExecutable() != nil, "needs the assay executable next to the tests (swift build)"))
struct MonitorCommandTests {
    @Test func updateFromAFileThenGetJSONAgainstTheDatabase() async throws {
        try await withAPI { api in
            let database = ["--database-url", api.database.url]
            let missing = try await runAssay(["monitor", "get"] + database)
            #expect(missing.status != 0)
            #expect(missing.stderr.contains("no monitor is configured"), "\(missing.stderr)")

            let file = FileManager.default.temporaryDirectory.appendingPathComponent("monitor-\(UUID().uuidString).json")
            try Data(validDocument.utf8).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let update = try await runAssay(["monitor", "update", "--file", file.path] + database)
            #expect(update.status == 0, "\(update.stderr)")
            #expect(update.stdout == "stored version 1 (effective from the start of history)\n")

            let get = try await runAssay(["monitor", "get", "--json"] + database)
            #expect(get.status == 0, "\(get.stderr)")
            let json = try JSONParser().parse(get.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(json["version"]?.int64Value == 1)
            #expect(json["note"]?.stringValue == "cli")
            #expect(json["config"] == (try MonitorConfig.parse(Array(validDocument.utf8))).json())

            let human = try await runAssay(["monitor", "get"] + database)
            #expect(human.stdout.contains("no_pii       pii      rate 0.4  filter: tags.env = 'prod'"), "\(human.stdout)")

            // A stale expected version is refused.
            let stale = try await runAssay(["monitor", "update", "--file", file.path, "--expected-version", "7"] + database)
            #expect(stale.status != 0)
            #expect(stale.stderr.contains("expected version 7, but the current version is 1"), "\(stale.stderr)")
        }
    }

    @Test func invalidFilesListEveryIssueWithItsPath() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("monitor-\(UUID().uuidString).json")
        let document = #"{"name": "m", "destination": {"schema": "assay"}, "colour": 1, "scorers": [{"name": "a", "kind": "latency", "sample_rate": 3}]}"#
        try Data(document.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        // Validation comes first: no database is contacted.
        let result = try await runAssay(["monitor", "update", "--file", file.path, "--database-url", "postgresql://nobody@127.0.0.1:1/none"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("colour: unknown field"), "\(result.stderr)")
        #expect(result.stderr.contains("scorers[0].sample_rate: must be between 0 and 1"), "\(result.stderr)")
    }

    @Test func throughTheAPI() async throws {
        try await withAPI { api in
            let url = ["--url", api.baseURL.absoluteString]
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("monitor-\(UUID().uuidString).json")
            try Data(validDocument.utf8).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }

            let refused = try await runAssay(["monitor", "update", "--file", file.path] + url)
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("bearer token"), "\(refused.stderr)")

            let token = ["ASSAY_ADMIN_TOKEN": testToken]
            let update = try await runAssay(["monitor", "update", "--file", file.path] + url, environment: token)
            #expect(update.status == 0, "\(update.stderr)")
            let pause = try await runAssay(["monitor", "pause"] + url, environment: token)
            #expect(pause.stdout.hasPrefix("stored version 2"), "\(pause.stdout) \(pause.stderr)")
            let again = try await runAssay(["monitor", "pause"] + url, environment: token)
            #expect(again.stdout == "nothing to pause: version 2 is already paused\n", "\(again.stdout) \(again.stderr)")

            let versions = try await runAssay(["monitor", "versions"] + url)
            #expect(versions.status == 0, "\(versions.stderr)")
            let lines = versions.stdout.split(separator: "\n")
            #expect(lines.first?.hasPrefix("VERSION  CREATED") == true)
            #expect(lines.count == 3)
            #expect(lines.dropFirst().first?.contains("yes") == true)

            let get = try await runAssay(["monitor", "get", "--json"] + url)
            let json = try JSONParser().parse(get.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(json["config"]?["paused"] == .bool(true))
        }
    }
}
