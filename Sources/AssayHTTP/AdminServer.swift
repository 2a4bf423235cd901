import AssayStore
import Hummingbird
import Logging
import Postgres
import ServiceLifecycle

/// The admin HTTP API that `assay serve` runs next to the pipeline: the monitor document
/// (get, replace, history, pause, resume), health probes, the operator dashboard with its JSON
/// endpoints, and `/metrics`.
///
/// ```swift
/// let server = AdminServer(
///     configuration: .init(host: "127.0.0.1", port: 8080, adminToken: environment("ASSAY_ADMIN_TOKEN")),
///     pool: pool, schema: schema,
///     readiness: { ["postgres": await checkPostgres(), "kafka": await checkKafka()] },
///     logger: logger)
/// // a Service: put it in the ServiceGroup with the others
/// ```
///
/// ## Routes (all JSON; errors are `{"error": "...", "path": "..."}`, see ``MonitorJSON``)
/// | route | access | answer |
/// |---|---|---|
/// | `GET /api/monitor` | read | 200 the current version with `ETag: "<version>"`; 404 when none |
/// | `PUT /api/monitor` | mutation | body: the whole document; 201 the new version; 400 invalid (with every issue's path); 409 stale `If-Match` or `destination.schema` changed; 413 body over ``Configuration/maxBodyBytes`` |
/// | `GET /api/monitor/versions[?limit=N]` | read | 200 `{"versions": [...]}`, newest first (N ≤ 1000, default 100) |
/// | `POST /api/monitor/pause`, `/resume` | mutation | 201 a new version with `paused` set; 200 and the current version (nothing written) when already in that state; 409 when no monitor exists |
/// | `GET /healthz` | public | 200 `{"status": "ok"}` while the process serves requests |
/// | `GET /readyz` | public | 200 `{"status": "ready", "checks": {...}}` or 503 `{"status": "not ready", ...}` from the readiness closure |
/// | `GET /api/windows[?limit=N]` | read | 200 the newest N closed windows (default 20, at most 500) with per-scorer summaries |
/// | `GET /api/windows/{start}[?scorer=&outcome=&limit=&offset=]` | read | 200 one window (start as RFC 3339 or epoch ns) with its sampled traces and their assessments; 404 unknown window |
/// | `GET /api/traces/{id}[?max_spans=N]` | read | 200 one trace: span tree (inputs/outputs cut to 2 KB), assessments with rationales; 404 unknown |
/// | `GET /api/status` | read | 200 monitor, windows, watermark, committed offsets, consumer lag (from `lagProvider`), dead letters, outbox |
/// | `GET /metrics` | read | 200 `metricsText()` as `text/plain; version=0.0.4`; 404 when no `metricsText` is configured |
/// | `GET /`, `/dashboard.js`, `/dashboard.css` | public | the dashboard page and its assets (no data; the page reads the `/api` routes, sending a token the operator enters when they need one) |
///
/// The dashboard endpoints and their bodies are in `schemas/openapi.yaml` (``DashboardJSON``).
///
/// Writes honour `If-Match: 3` (also `"3"` or `W/"3"`): refused with 409 unless 3 is the
/// current version. Access rules are ``AdminAccessPolicy``'s: mutations need
/// `Authorization: Bearer $ASSAY_ADMIN_TOKEN` (403 when no token is configured, 401 with
/// `WWW-Authenticate: Bearer` when it is missing or wrong); reads also need it when the server
/// is bound to a non-loopback address. Readiness errors are shown only to callers who could
/// read the monitor. Unknown routes get 404 and known routes with another method 405, both JSON.
///
/// Every request is logged (`http.method`, `http.path`, `http.status`, `http.latency_ms`), never
/// its body or headers. Its description (which ServiceLifecycle logs) never shows the token.
public struct AdminServer: Service, CustomStringConvertible, CustomDebugStringConvertible {
    /// Where to listen and what to accept. Its descriptions redact the token.
    public struct Configuration: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
        /// The address to bind: an IP address or a host name.
        public var host: String
        /// The port; 0 picks a free one (see `onServerRunning`).
        public var port: Int
        /// The bearer token mutations need (`ASSAY_ADMIN_TOKEN`); nil or empty refuses them.
        public var adminToken: String?
        /// Larger request bodies are refused with 413.
        public var maxBodyBytes: Int

        /// The default body cap: 1 MiB.
        public static let defaultMaxBodyBytes = 1 << 20

        public init(host: String = "127.0.0.1", port: Int = 8080, adminToken: String? = nil, maxBodyBytes: Int = Self.defaultMaxBodyBytes) {
            self.host = host
            self.port = port
            self.adminToken = adminToken
            self.maxBodyBytes = maxBodyBytes
        }

        public var description: String {
            "AdminServer.Configuration(host: \(host), port: \(port), adminToken: \(adminToken.map { $0.isEmpty ? "none" : "<redacted>" } ?? "none"), maxBodyBytes: \(maxBodyBytes))"
        }

        public var debugDescription: String { description }

        /// Parses `ADDR:PORT` as `--http` takes it: `127.0.0.1:8080`, `0.0.0.0:9000`,
        /// `localhost:8080`, `[::1]:8080`. The port must be 0–65535.
        public static func address(parsing text: String) throws(AddressError) -> (host: String, port: Int) {
            let host: Substring
            let portText: Substring
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { throw AddressError(text: text) }
                host = text[text.index(after: text.startIndex)..<close]
                let rest = text[text.index(after: close)...]
                guard rest.hasPrefix(":") else { throw AddressError(text: text) }
                portText = rest.dropFirst()
            } else {
                guard let colon = text.lastIndex(of: ":") else { throw AddressError(text: text) }
                host = text[..<colon]
                portText = text[text.index(after: colon)...]
                if host.contains(":") { throw AddressError(text: text) }
            }
            guard !host.isEmpty, !portText.isEmpty, portText.allSatisfy({ ("0"..."9").contains($0) }),
                  portText.count <= 5, let port = Int(portText), (0...65_535).contains(port) else {
                throw AddressError(text: text)
            }
            return (String(host), port)
        }
    }

    /// An `--http` value that is not `ADDR:PORT`.
    public struct AddressError: Error, Sendable, Equatable, CustomStringConvertible {
        public var text: String
        public var description: String {
            "'\(text)' is not ADDR:PORT (such as 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080)"
        }
    }

    /// Checks the dependencies for `/readyz`: component name → nil when healthy, else what is
    /// wrong (such as `["postgres": nil, "kafka": "no broker reachable"]`). Called on every
    /// `/readyz` request; keep it quick (use timeouts).
    public typealias Readiness = @Sendable () async -> [String: String?]

    /// Consumer lag per partition of the traces topic (label such as `traces/3` → messages
    /// behind), as the serving process's Kafka consumer knows it. Shown by `GET /api/status`
    /// and the dashboard; without it they say the lag is unknown (PostgreSQL alone cannot tell).
    public typealias LagProvider = @Sendable () async -> [String: Int64]

    /// The Prometheus text exposition served by `GET /metrics`.
    public typealias MetricsText = @Sendable () async -> String

    public let configuration: Configuration
    private let routes: AdminRoutes
    private let logger: Logger
    private let onServerRunning: @Sendable (Int) async -> Void

    /// - Parameters:
    ///   - pool: the database; the server writes versions with note `api`.
    ///   - schema: the schema of Assay's tables (the monitor's `destination.schema`).
    ///   - readiness: the `/readyz` checks.
    ///   - onServerRunning: called once listening, with the bound port (useful with port 0).
    ///   - tracesTopic: the topic whose partitions make the watermark on `/api/status`.
    ///   - idleTimeout: the scoring service's idle timeout, for the watermark on `/api/status`.
    ///   - lagProvider: consumer lag per partition for `/api/status`; nil shows it as unknown.
    ///   - metricsText: the body of `GET /metrics` (`text/plain; version=0.0.4`); nil answers 404.
    public init(
        configuration: Configuration,
        pool: PostgresPool,
        schema: SchemaName,
        readiness: @escaping Readiness,
        logger: Logger,
        onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in },
        tracesTopic: String = "traces",
        idleTimeout: Duration = .seconds(60),
        lagProvider: LagProvider? = nil,
        metricsText: MetricsText? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.onServerRunning = onServerRunning
        self.routes = AdminRoutes(
            admin: DatabaseMonitorAdmin(pool: pool, schema: schema, note: "api"),
            policy: AdminAccessPolicy(adminToken: configuration.adminToken, bindHost: configuration.host),
            maxBodyBytes: max(0, configuration.maxBodyBytes),
            readiness: readiness,
            logger: logger,
            dashboard: DashboardStore(schema: schema, tracesTopic: tracesTopic, idleTimeoutNanos: Self.nanoseconds(idleTimeout)),
            lagProvider: lagProvider,
            metricsText: metricsText)
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? Int64.max : whole &+ attoseconds / 1_000_000_000
    }

    public var description: String { "AdminServer(\(configuration.host):\(configuration.port))" }

    public var debugDescription: String { "AdminServer(\(configuration))" }

    /// Serves until cancelled or gracefully shut down; throws when the address cannot be bound.
    public func run() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: AdminMiddleware(logger: logger))
        routes.register(on: router)
        let configuration = self.configuration
        let logger = self.logger
        let onServerRunning = self.onServerRunning
        let hasToken = routes.policy.hasToken
        let readsArePublic = routes.policy.readsArePublic
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                logger.info("admin API listening", metadata: [
                    "http.host": "\(configuration.host)", "http.port": "\(port)",
                    "http.mutations": hasToken ? "enabled" : "disabled (no ASSAY_ADMIN_TOKEN)",
                    "http.reads": readsArePublic ? "public (loopback)" : "token required",
                ])
                await onServerRunning(port)
            },
            logger: logger)
        try await application.run()
    }
}
