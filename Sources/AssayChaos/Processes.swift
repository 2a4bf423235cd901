import DedicatedThreads
import Foundation
import LocalPostgres
import Synchronization

/// A child process of the chaos run (a broker, a replica), with its log in a file.
final class Child: @unchecked Sendable {
    // @unchecked: `process` is started, signalled and read only through its thread-safe API;
    // `name` and `logURL` are immutable.
    let name: String
    let process = Process()
    let logURL: URL

    init(name: String, executable: String, arguments: [String], environment: [String: String] = [:],
         standardInput: Pipe? = nil, standardOutput: Pipe? = nil, logDirectory: URL) throws {
        self.name = name
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var variables = ProcessInfo.processInfo.environment
        variables["DATABASE_URL"] = nil
        variables.merge(environment) { _, new in new }
        process.environment = variables
        logURL = logDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8)).log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        process.standardError = log
        process.standardOutput = standardOutput ?? log
        if let standardInput { process.standardInput = standardInput }
        try process.run()
        InterruptCleanup.shared.trackChild { [self] in self.kill() }
    }

    /// Reaped by ``reapIfExited()`` where Foundation did not notice the exit: `wait(2)`'s status.
    private let reapedStatus = Mutex<Int32?>(nil)

    var isRunning: Bool { process.isRunning && reapIfExited() == nil }
    var pid: Int32 { process.processIdentifier }
    /// The exit status (or the signal that ended it); only meaningful once it has exited.
    var exitStatus: Int32 {
        if let status = reapIfExited() { return Self.describedStatus(status) }
        return process.isRunning ? 0 : process.terminationStatus
    }

    /// Foundation's `Process` on Linux learns of an exit when a socket the child inherited
    /// closes. A child that crashed leaves `swift-backtrace` behind holding that socket (it
    /// can hang after printing), so Foundation keeps reporting it running and `waitUntilExit`
    /// never returns. Reaps such a child itself (it is a zombie by then) and returns its raw
    /// `wait(2)` status; nil while it runs, or when Foundation reaps it.
    private func reapIfExited() -> Int32? {
        reapedStatus.withLock { reaped in
            if let reaped { return reaped }
            guard process.isRunning else { return nil }
            guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")"),
                  stat[stat.index(after: close)...].split(separator: " ").first == "Z" else { return nil }
            var status: Int32 = 0
            guard waitpid(process.processIdentifier, &status, WNOHANG) == process.processIdentifier else { return nil }
            reaped = status
            return status
        }
    }

    /// Foundation's convention: the exit code, or the number of the signal that ended it.
    private static func describedStatus(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : signal
    }

    /// Waits for the exit, whichever of Foundation or ``reapIfExited()`` sees it.
    private func waitForExit() {
        while isRunning { usleep(20_000) }
    }

    func kill() {
        guard isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        waitForExit()
    }

    /// SIGTERM, then waits up to `deadline` for a clean exit, else SIGKILL. Returns the exit status.
    @discardableResult
    func terminate(deadline: Duration = .seconds(30)) -> Int32 {
        guard isRunning else { return exitStatus }
        process.terminate()
        let end = ContinuousClock.now.advanced(by: deadline)
        while isRunning && ContinuousClock.now < end { usleep(20_000) }
        if isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
        }
        waitForExit()
        return exitStatus
    }

    /// VmHWM in MB (0 once exited).
    func peakRSSMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = line.split(separator: " ").compactMap({ Double($0) }).first else { return 0 }
        return kilobytes / 1024
    }

    var logTail: String { String(((try? String(contentsOf: logURL, encoding: .utf8)) ?? "").suffix(3000)) }
}

/// `assay dev-broker --control`: the mock cluster in its own process, driven over stdin.
final class BrokerProcess: Sendable {
    let child: Child
    let bootstrap: String
    private let input: Pipe
    private let replies: LineQueue
    private let readerThread: DedicatedThread

    init(assay: String, brokers: Int, partitions: Int, logDirectory: URL) async throws {
        let input = Pipe()
        let output = Pipe()
        child = try Child(name: "dev-broker", executable: assay,
                          arguments: ["dev-broker", "--brokers", String(brokers), "--partitions", String(partitions),
                                      "--topic", "traces", "--topic", "assessments", "--control", "--log-level", "warning"],
                          standardInput: input, standardOutput: output, logDirectory: logDirectory)
        self.input = input
        let queue = LineQueue()
        let handle = output.fileHandleForReading
        // Blocking reads belong on a thread of our own.
        let reader = DedicatedThread(name: "broker-stdout")
        reader.submit {
            var pending: [UInt8] = []
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                pending += data
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    queue.push(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            queue.finish()
        }
        readerThread = reader
        replies = queue
        guard let first = await replies.next() else { throw ChaosFailure("dev-broker printed nothing: \(child.logTail)") }
        bootstrap = first
    }

    /// Sends one control command and returns the broker's reply.
    func send(_ command: String) async throws -> String {
        if let crash { throw MockBrokerCrashed(description: crash) }
        try input.fileHandleForWriting.write(contentsOf: Data((command + "\n").utf8))
        guard let reply = await replies.next() else { throw crash.map { MockBrokerCrashed(description: $0) } ?? ChaosFailure("dev-broker stopped answering") }
        return reply
    }

    /// Why the broker process is gone (its assertion or status and the end of its log), or nil
    /// while it runs.
    var crash: String? {
        guard !child.isRunning else { return nil }
        let log = (try? String(contentsOf: child.logURL, encoding: .utf8)) ?? ""
        if let assertion = log.split(separator: "\n").first(where: { $0.contains("Assertion") || $0.contains("assert") }) {
            return String(assertion)
        }
        return "exited (status \(child.exitStatus)): \(child.logTail.suffix(600))"
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        child.terminate(deadline: .seconds(10))
        readerThread.shutdown()  // the pipe closed with the process, so the read loop has ended
    }
}

/// Lines read on one thread, awaited one at a time by the sender of commands.
final class LineQueue: Sendable {
    private struct State {
        var lines: [String] = []
        var waiter: CheckedContinuation<String?, Never>?
        var finished = false
    }

    private let state = Mutex(State())

    func push(_ line: String) {
        let waiter = state.withLock { state -> CheckedContinuation<String?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.lines.append(line)
            return nil
        }
        waiter?.resume(returning: line)
    }

    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<String?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The next line, or nil once the stream ended.
    func next() async -> String? {
        await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            let ready = state.withLock { state -> String?? in
                if !state.lines.isEmpty { return .some(state.lines.removeFirst()) }
                if state.finished { return .some(nil) }
                state.waiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// The mock broker process died during the run.
struct MockBrokerCrashed: Error, CustomStringConvertible {
    let description: String
}

struct ChaosFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

