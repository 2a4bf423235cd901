import ArgumentParser
import AssayHTTP

/// `assay windows`: the per-window, per-scorer table. The work is AssayHTTP's
/// (``DashboardReports``, ``ReportFormatting``, ``DashboardJSON``); this file parses and prints.
struct WindowsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "windows",
        abstract: "Print the newest closed windows: per scorer, eligible / sampled out / filtered / N/A / errors / scored, pass rate with its Wilson 95% interval, late traces.")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var log: LogOptions

    @Option(help: "How many of the newest windows to show (1–\(DashboardStore.maxWindows)).")
    var last = 10

    @Flag(help: "Print JSON (the admin API's GET /api/windows body) instead of a table.")
    var json = false

    func validate() throws {
        guard (1...DashboardStore.maxWindows).contains(last) else {
            throw ValidationError("--last must be between 1 and \(DashboardStore.maxWindows).")
        }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "assay.windows")
        let windows = try await DashboardReports.windows(databaseURL: database.databaseURL, schema: try database.schema, last: last, logger: logger)
        print(json ? DashboardJSON.windows(windows, limit: last).serialized() : ReportFormatting.windows(windows))
    }
}
