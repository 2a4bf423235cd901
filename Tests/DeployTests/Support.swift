import DedicatedThreads
import Foundation
import Testing

/// A failure raised by the deploy tests themselves (a file missing, a process that hung).
struct DeployTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The repository this test file belongs to: deploy/, docs/, schemas/ and Sources/ are read
/// from the checkout (found from this file's path), never from copies.
enum Repository {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()   // Tests/DeployTests
        .deletingLastPathComponent()   // Tests
        .deletingLastPathComponent()   // <repo>

    static func url(_ relativePath: String) -> URL {
        root.appendingPathComponent(relativePath)
    }

    static func exists(_ relativePath: String) -> Bool {
        FileManager.default.fileExists(atPath: url(relativePath).path)
    }

    static func text(_ relativePath: String) throws -> String {
        let url = url(relativePath)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DeployTestError("cannot read \(relativePath) (looked at \(url.path))")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Files directly in a folder of the repository whose names end with `suffix`, sorted.
    static func files(in relativeFolder: String, suffix: String) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: url(relativeFolder).path)
        return names.filter { $0.hasSuffix(suffix) }.sorted().map { "\(relativeFolder)/\($0)" }
    }
}

/// The `assay` executable that `swift build` put next to the test runner (`make test` builds
/// it before the tests run).
func assayExecutable() throws -> URL {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [directory, directory.deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent("assay")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    throw DeployTestError("the assay executable was not found next to \(CommandLine.arguments[0]); run `swift build` (make test does) before the tests")
}

/// What a finished child process left behind.
struct ProcessResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
    var timedOut: Bool
}

/// Runs a program to completion (or `timeout`), capturing its output in files so that a
/// full pipe can never block it. The wait happens on a thread of its own, not on the
/// cooperative pool (see `Process.exited()`).
func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
                timeout: Duration = .seconds(60)) async throws -> ProcessResult {
    try await runOnOwnThread(name: "run-process") {
        try runProcessBlocking(executable, arguments, environment: environment, timeout: timeout)
    }
}

/// ``runProcess(_:_:environment:timeout:)`` on the calling thread, for the one place that
/// cannot await (a lazily loaded static).
func runProcessBlocking(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
                        timeout: Duration = .seconds(60)) throws -> ProcessResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if let environment { process.environment = environment }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("deploy-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let outURL = directory.appendingPathComponent("stdout")
    let errURL = directory.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = ContinuousClock.now.advanced(by: timeout)
    var timedOut = false
    while process.isRunning {
        if ContinuousClock.now > deadline {
            timedOut = true
            process.terminate()
            process.waitUntilExit()
            break
        }
        Thread.sleep(forTimeInterval: 0.02)
    }
    process.waitUntilExit()
    try out.close()
    try err.close()
    let stdout = String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self)
    let stderr = String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self)
    return ProcessResult(status: process.terminationStatus, stdout: stdout, stderr: stderr, timedOut: timedOut)
}

/// Runs the assay binary.
/// A database URL that refuses at once: a command line assay accepts stops at its first
/// connection, with "could not connect".
let refusingDatabaseURL = "postgres://assay@127.0.0.1:1/assay?connect_timeout=2"

func runAssay(_ arguments: [String], environment: [String: String]? = nil, timeout: Duration = .seconds(60)) async throws -> ProcessResult {
    try await runProcess(try assayExecutable(), arguments, environment: environment, timeout: timeout)
}

/// `text` without the problems' common boilerplate, one per line, for failure messages.
func bulleted(_ items: [String]) -> String {
    items.map { "  - \($0)" }.joined(separator: "\n")
}

/// The first capture group of `pattern` in `text`, if any.
func firstMatch(_ pattern: String, in text: String) -> String? {
    guard let regex = try? NSRegularExpression(pattern: pattern) else { return nil }
    let range = NSRange(text.startIndex..., in: text)
    guard let match = regex.firstMatch(in: text, range: range), match.numberOfRanges > 1,
          let captured = Range(match.range(at: 1), in: text) else { return nil }
    return String(text[captured])
}

/// Every match of `pattern` (capture group 1 when there is one, else the whole match).
func allMatches(_ pattern: String, in text: String) -> [String] {
    guard let regex = try? NSRegularExpression(pattern: pattern) else { return [] }
    let range = NSRange(text.startIndex..., in: text)
    return regex.matches(in: text, range: range).compactMap { match in
        let group = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
        return Range(group, in: text).map { String(text[$0]) }
    }
}
