import ArgumentParser
import AssayHTTP

/// `assay trace ID`: one stored trace with its assessments and span tree. The work is
/// AssayHTTP's (``DashboardReports``, ``ReportFormatting``, ``DashboardJSON``).
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Print one stored trace: its assessments with rationales, and its span tree with inputs and outputs (cut).")

    @Argument(help: "The trace id as the producer sent it (tr-… for MLflow 3).")
    var id: String

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var log: LogOptions

    @Option(name: .customLong("max-spans"), help: "Show at most this many spans, earliest first (1–\(DashboardStore.maxSpansLimit)).")
    var maxSpans = DashboardStore.defaultMaxSpans

    @Flag(help: "Print JSON (the admin API's GET /api/traces/{id} body).")
    var json = false

    func validate() throws {
        guard !id.isEmpty else { throw ValidationError("The trace id must not be empty.") }
        guard (1...DashboardStore.maxSpansLimit).contains(maxSpans) else {
            throw ValidationError("--max-spans must be between 1 and \(DashboardStore.maxSpansLimit).")
        }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "assay.trace")
        let trace = try await DashboardReports.trace(databaseURL: database.databaseURL, schema: try database.schema, id: id, maxSpans: maxSpans, logger: logger)
        print(json ? DashboardJSON.trace(trace).serialized() : ReportFormatting.trace(trace))
    }
}
