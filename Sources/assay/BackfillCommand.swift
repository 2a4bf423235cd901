import ArgumentParser
import AssayCore
import AssayPipeline
import AssayStore
import Foundation
import Postgres
import Synchronization

/// `assay backfill`: scores past windows with the current monitor config.
struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Score the stored traces of past windows with the current monitor config.",
        discussion: """
            Runs the same scoring code as live windows, so assessments get the same ids: what is
            already scored is not written again, and a second run adds nothing. New assessments are
            published to the assessments topic by the running replicas' outboxes. Interrupt it at any
            time; the same command resumes at the window it was working on.
            """
    )

    @Option(help: ArgumentHelp("Start of the range: RFC 3339 (2026-11-01T00:00Z) or a date (2026-11-01, UTC).", valueName: "time"))
    var from: String

    @Option(help: ArgumentHelp("End of the range (exclusive), same formats.", valueName: "time"))
    var to: String

    @Option(name: .customLong("scorer"), help: "Only this scorer (repeatable; default: every scorer of the current config).")
    var scorers: [String] = []

    @Option(name: .customLong("sample-rate"), help: "Use this sample rate for every selected scorer instead of the configured ones.")
    var sampleRate: Double?

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard let start = Self.parseTime(from) else { throw ValidationError("--from: cannot read '\(from)' as a time (e.g. 2026-11-01T00:00Z).") }
        guard let end = Self.parseTime(to) else { throw ValidationError("--to: cannot read '\(to)' as a time (e.g. 2026-11-02T00:00Z).") }
        guard end > start else { throw ValidationError("--to must be after --from.") }
        if let sampleRate, !(0...1).contains(sampleRate) { throw ValidationError("--sample-rate must be between 0 and 1.") }
    }

    func run() async throws {
        var log = self.log
        if log.levelFlag == nil && environment("ASSAY_LOG_LEVEL") == nil { log.levelFlag = "warning" }
        let logger = log.bootstrap(label: "assay.backfill")
        guard let start = Self.parseTime(from), let end = Self.parseTime(to) else { throw ValidationError("Bad time range.") }
        let schema = try database.schema
        _ = try await AssayDatabase.migrate(url: database.databaseURL, schema: schema, logger: logger)
        let pool = try PostgresPool(configuration: AssayDatabase.configuration(url: database.databaseURL, schema: schema, applicationName: "assay-backfill"),
                                    size: 2, name: "backfill", logger: logger)
        let interactive = isatty(STDOUT_FILENO) == 1
        let reporter = ProgressReporter(interactive: interactive)
        do {
            let backfill = Backfill(pool: pool, schema: schema, logger: logger)
            let done = try await backfill.run(BackfillRequest(fromNanos: start, toNanos: end, scorers: scorers, sampleRate: sampleRate)) {
                reporter.report($0)
            }
            reporter.finish(done)
            await pool.shutdown()
        } catch let error as BackfillError {
            await pool.shutdown()
            throw ValidationError(error.description)
        } catch {
            await pool.shutdown()
            throw error
        }
    }

    /// RFC 3339 with optional seconds, or a bare date (midnight UTC).
    static func parseTime(_ text: String) -> Int64? {
        if let nanos = TimeParsing.rfc3339Nanoseconds(text) { return nanos }
        // "2026-11-01T00:00Z" → insert the seconds.
        if let t = text.firstIndex(of: "T") {
            let time = text[text.index(after: t)...]
            let zoneStart = time.firstIndex { $0 == "Z" || $0 == "z" || $0 == "+" || $0 == "-" } ?? time.endIndex
            if time[..<zoneStart].count == 5 {
                return TimeParsing.rfc3339Nanoseconds(String(text[...t]) + time[..<zoneStart] + ":00" + time[zoneStart...])
            }
            return nil
        }
        return TimeParsing.rfc3339Nanoseconds(text + "T00:00:00Z")
    }
}

/// Progress on a terminal (one redrawn bar) or as plain lines (one per window).
final class ProgressReporter: Sendable {
    let interactive: Bool
    private let lastWindows = Mutex(-1)

    init(interactive: Bool) {
        self.interactive = interactive
    }

    func report(_ progress: BackfillProgress) {
        let fraction = progress.windowsTotal > 0 ? Double(progress.windowsDone) / Double(progress.windowsTotal) : 1
        if interactive {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let line = "\r\(bar) \(progress.windowsDone)/\(progress.windowsTotal) windows, \(progress.tracesRead) traces, \(progress.newAssessments) new assessments"
            FileHandle.standardOutput.write(Data(line.utf8))
        } else {
            let changed = lastWindows.withLock { last -> Bool in
                defer { last = progress.windowsDone }
                return last != progress.windowsDone
            }
            guard changed else { return }
            print("window \(progress.windowsDone)/\(progress.windowsTotal) (\(TimeFormatting.rfc3339(nanos: progress.currentWindowNanos, fraction: .shortestExact))): \(progress.tracesRead) traces read, \(progress.newAssessments) new assessments")
        }
    }

    func finish(_ progress: BackfillProgress) {
        if interactive { print("") }
        print("backfill done\(progress.resumed ? " (resumed)" : ""): \(progress.windowsDone) of \(progress.windowsTotal) windows, \(progress.tracesRead) traces read, \(progress.newAssessments) new assessments")
    }
}
