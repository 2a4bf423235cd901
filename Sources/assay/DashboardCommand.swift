import ArgumentParser
import AssayHTTP
import AssayStore
import Foundation
import Logging
import Postgres
import ServiceLifecycle

/// `assay dashboard`: the admin API and the dashboard over a database, without Kafka (to look
/// at what a pipeline stored, such as the `assay_demo` schema a demo leaves behind). Consumer lag
/// is unknown here: only `assay serve` has a consumer.
struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve the dashboard and the admin API over a database, without Kafka.",
        discussion: """
            Reads are public when --http is a loopback address; otherwise they need \
            Authorization: Bearer $ASSAY_ADMIN_TOKEN, which the page asks for. SIGTERM or SIGINT stops it.
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var log: LogOptions

    @Option(name: .customLong("http"), help: ArgumentHelp("Address to listen on. Env: ASSAY_HTTP.", valueName: "addr:port"))
    var http: String?

    @Option(name: .customLong("traces-topic"), help: "Topic whose partitions make the watermark. Env: ASSAY_TRACES_TOPIC.")
    var tracesTopic: String?

    @Option(name: .customLong("idle-timeout-seconds"), help: "The scoring service's idle timeout, for the watermark shown.")
    var idleTimeoutSeconds = 60

    func validate() throws {
        if let http = http ?? environment("ASSAY_HTTP") {
            do { _ = try AdminServer.Configuration.address(parsing: http) } catch { throw ValidationError("--http: \(error)") }
        }
        guard idleTimeoutSeconds >= 1 else { throw ValidationError("--idle-timeout-seconds must be at least 1.") }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "assay.dashboard")
        let schema = try database.schema
        let (host, port) = try AdminServer.Configuration.address(parsing: http ?? environment("ASSAY_HTTP") ?? "127.0.0.1:8080")
        let pool = try PostgresPool(
            configuration: AssayDatabase.configuration(url: database.databaseURL, schema: schema, applicationName: "assay-dashboard"),
            size: 2, name: "pg", logger: logger)
        let server = AdminServer(
            configuration: .init(host: host, port: port, adminToken: environment("ASSAY_ADMIN_TOKEN")),
            pool: pool, schema: schema,
            readiness: { [pool] in ["postgres": await checkPostgres(pool)] },
            logger: logger,
            onServerRunning: { port in
                let shown = host.contains(":") ? "[\(host)]" : host
                FileHandle.standardOutput.write(Data("dashboard at http://\(shown):\(port)/ (schema \(schema))\n".utf8))
            },
            tracesTopic: tracesTopic ?? environment("ASSAY_TRACES_TOPIC") ?? "traces",
            idleTimeout: .seconds(idleTimeoutSeconds))
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await pool.shutdown()
            throw error
        }
        await pool.shutdown()
    }
}
