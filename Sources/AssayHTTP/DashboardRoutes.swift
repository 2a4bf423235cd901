import AssayCore
import Foundation
import Hummingbird
import Postgres

/// The dashboard's routes on ``AdminServer``: the page and its assets (public: they hold no
/// data), the read-only JSON endpoints (``AdminAccessPolicy/Access/read``: public on loopback,
/// the bearer token otherwise) and `/metrics`.
extension AdminRoutes {
    func registerDashboard(on router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in DashboardResponse.asset(DashboardAssets.html, contentType: "text/html; charset=utf-8") }
        router.get("/dashboard.js") { _, _ in DashboardResponse.asset(DashboardAssets.script, contentType: "text/javascript; charset=utf-8") }
        router.get("/dashboard.css") { _, _ in DashboardResponse.asset(DashboardAssets.stylesheet, contentType: "text/css; charset=utf-8") }
        router.get("/api/windows") { request, _ in try await self.listWindows(request) }
        router.get("/api/windows/:start") { request, context in try await self.showWindow(request, parameter: context.parameters.get("start")) }
        router.get("/api/traces/:id") { request, context in try await self.showTrace(request, parameter: context.parameters.get("id")) }
        router.get("/api/status") { request, _ in try await self.showStatus(request) }
        router.get("/metrics") { request, _ in try await self.metrics(request) }
    }

    func listWindows(_ request: Request) async throws -> Response {
        try authorize(.read, request)
        let limit = try DashboardQuery.integer(request, "limit", default: DashboardStore.defaultWindows, range: 1...DashboardStore.maxWindows)
        let store = dashboard
        let windows = try await query { try store.windows(limit: limit, on: $0) }
        return AdminResponse.json(DashboardJSON.windows(windows, limit: limit), status: .ok)
    }

    func showWindow(_ request: Request, parameter: String?) async throws -> Response {
        try authorize(.read, request)
        guard let start = DashboardQuery.windowStart(parameter) else {
            throw MonitorAdminError.badRequest("the window start must be an RFC 3339 time (such as 2026-02-03T13:00:00Z) or nanoseconds since the epoch")
        }
        var selection = SampledTraceQuery()
        selection.limit = try DashboardQuery.integer(request, "limit", default: SampledTraceQuery.defaultLimit, range: 1...SampledTraceQuery.maxLimit)
        selection.offset = try DashboardQuery.integer(request, "offset", default: 0, range: 0...1_000_000)
        if let scorer = request.uri.queryParameters.get("scorer"), !scorer.isEmpty { selection.scorer = scorer }
        if let outcome = request.uri.queryParameters.get("outcome"), !outcome.isEmpty {
            guard SampledTraceQuery.outcomes.contains(outcome) else {
                throw MonitorAdminError.badRequest("outcome must be one of \(SampledTraceQuery.outcomes.joined(separator: ", "))")
            }
            selection.outcome = outcome
        }
        let (store, chosen) = (dashboard, selection)
        guard let detail = try await query({ try store.windowDetail(startNanos: start, query: chosen, on: $0) }) else {
            throw MonitorAdminError.notFound("no closed window starts at \(TimeFormatting.rfc3339(nanos: start, fraction: .shortestExact))")
        }
        return AdminResponse.json(DashboardJSON.windowDetail(detail), status: .ok)
    }

    func showTrace(_ request: Request, parameter: String?) async throws -> Response {
        try authorize(.read, request)
        guard let id = DashboardQuery.decodedSegment(parameter), !id.isEmpty else {
            throw MonitorAdminError.badRequest("the trace id is missing or not valid percent-encoded UTF-8")
        }
        let maxSpans = try DashboardQuery.integer(request, "max_spans", default: DashboardStore.defaultMaxSpans, range: 1...DashboardStore.maxSpansLimit)
        let store = dashboard
        guard let trace = try await query({ try store.trace(id: id, maxSpans: maxSpans, on: $0) }) else {
            throw MonitorAdminError.notFound("no stored trace has this id")
        }
        return AdminResponse.json(DashboardJSON.trace(trace), status: .ok)
    }

    func showStatus(_ request: Request) async throws -> Response {
        try authorize(.read, request)
        let lag = await lagProvider?()
        let store = dashboard
        let status = try await query { try store.status(lag: lag, on: $0) }
        return AdminResponse.json(DashboardJSON.status(status), status: .ok)
    }

    func metrics(_ request: Request) async throws -> Response {
        try authorize(.read, request)
        guard let metricsText else { throw MonitorAdminError.notFound("metrics are not enabled on this server") }
        let text = await metricsText()
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// Runs a dashboard query on a pooled connection; an unreachable database or missing
    /// tables become 503.
    private func query<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        do {
            return try await admin.pool.withConnection(body)
        } catch let error as PostgresError {
            if error.isConnectionError || error.kind == .connectionFailed || error.kind == .connectionClosed || error.kind == .poolClosed {
                throw MonitorAdminError.unavailable("PostgreSQL is unavailable: \(error.message)")
            }
            if error.sqlState == "42P01" || error.sqlState == "3F000" {
                throw MonitorAdminError.unavailable("Assay's tables are missing in schema \(dashboard.schema): run `assay migrate` first")
            }
            throw error
        }
    }
}

/// Parsing the dashboard endpoints' parameters.
enum DashboardQuery {
    /// An integer query parameter in `range`, `fallback` when absent; 400 otherwise.
    static func integer(_ request: Request, _ name: String, default fallback: Int, range: ClosedRange<Int>) throws(MonitorAdminError) -> Int {
        guard let text = request.uri.queryParameters.get(name) else { return fallback }
        guard text.count <= 12, let value = Int(text), range.contains(value) else {
            throw .badRequest("\(name) must be an integer between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }

    /// A window start from a path segment: nanoseconds since the epoch (`1770123600000000000`)
    /// or an RFC 3339 time (`2026-02-03T13:00:00Z`, percent-encoded or not).
    static func windowStart(_ segment: String?) -> Int64? {
        guard let text = decodedSegment(segment), !text.isEmpty, text.count <= 64 else { return nil }
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        if !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) { return Int64(text) }
        return TimeParsing.rfc3339Nanoseconds(text)
    }

    /// A path segment with its percent-encoding removed; nil when it is not valid UTF-8 after
    /// decoding.
    static func decodedSegment(_ segment: String?) -> String? {
        guard let segment else { return nil }
        guard segment.contains("%") else { return segment }
        return segment.removingPercentEncoding
    }
}

/// The dashboard's static responses.
enum DashboardResponse {
    /// The page's policy: nothing from anywhere but this server, no inline script, no framing.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static func asset(_ text: String, contentType: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
