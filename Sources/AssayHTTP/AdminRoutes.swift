import AssayCore
import Hummingbird
import Logging

/// The route handlers of ``AdminServer``.
struct AdminRoutes: Sendable {
    let admin: DatabaseMonitorAdmin
    let policy: AdminAccessPolicy
    let maxBodyBytes: Int
    let readiness: AdminServer.Readiness
    let logger: Logger
    /// The dashboard's queries (``DashboardRoutes``).
    let dashboard: DashboardStore
    /// Consumer lag per partition from the serving process's Kafka consumer; nil: unknown.
    let lagProvider: AdminServer.LagProvider?
    /// The Prometheus exposition for `GET /metrics`; nil: 404.
    let metricsText: AdminServer.MetricsText?

    /// Every route and its methods (for 405 answers).
    static let routes: [String: [HTTPRequest.Method]] = [
        "/api/monitor": [.get, .put],
        "/api/monitor/versions": [.get],
        "/api/monitor/pause": [.post],
        "/api/monitor/resume": [.post],
        "/healthz": [.get],
        "/readyz": [.get],
        "/": [.get],
        "/dashboard.js": [.get],
        "/dashboard.css": [.get],
        "/api/windows": [.get],
        "/api/status": [.get],
        "/metrics": [.get],
    ]

    /// Routes with a path parameter after these prefixes, and their methods (for 405 answers).
    static let prefixRoutes: [(prefix: String, methods: [HTTPRequest.Method])] = [
        ("/api/windows/", [.get]),
        ("/api/traces/", [.get]),
    ]

    /// The most versions one history request returns.
    static let maxVersionsLimit = 1000

    func register(on router: Router<BasicRequestContext>) {
        router.get("/api/monitor") { request, _ in try await self.getMonitor(request) }
        router.put("/api/monitor") { request, _ in try await self.putMonitor(request) }
        router.get("/api/monitor/versions") { request, _ in try await self.versions(request) }
        router.post("/api/monitor/pause") { request, _ in try await self.setPaused(true, request) }
        router.post("/api/monitor/resume") { request, _ in try await self.setPaused(false, request) }
        router.get("/healthz") { _, _ in AdminResponse.json(.object(["status": "ok"]), status: .ok) }
        router.get("/readyz") { request, _ in await self.ready(request) }
        registerDashboard(on: router)
    }

    // MARK: Handlers

    func getMonitor(_ request: Request) async throws -> Response {
        try authorize(.read, request)
        let current = try await admin.current()
        return AdminResponse.json(MonitorJSON.version(current), status: .ok, etag: current.version)
    }

    func putMonitor(_ request: Request) async throws -> Response {
        try authorize(.mutation, request)
        let expected = try IfMatch.expectedVersion(request.headers[.ifMatch])
        let body = try await AdminResponse.collect(request.body, contentLength: request.headers[.contentLength], limit: maxBodyBytes)
        let write = try await admin.update(document: body, expectedVersion: expected)
        return AdminResponse.json(MonitorJSON.version(write.version), status: .created, etag: write.version.version)
    }

    func versions(_ request: Request) async throws -> Response {
        try authorize(.read, request)
        var limit = 100
        if let text = request.uri.queryParameters["limit"] {
            guard let value = Int(text), (1...Self.maxVersionsLimit).contains(value) else {
                throw MonitorAdminError.badRequest("limit must be an integer between 1 and \(Self.maxVersionsLimit)")
            }
            limit = value
        }
        let summaries = try await admin.versions(limit: limit)
        return AdminResponse.json(MonitorJSON.versions(summaries), status: .ok)
    }

    func setPaused(_ paused: Bool, _ request: Request) async throws -> Response {
        try authorize(.mutation, request)
        let expected = try IfMatch.expectedVersion(request.headers[.ifMatch])
        // No body is expected; one is ignored, but still capped.
        _ = try await AdminResponse.collect(request.body, contentLength: request.headers[.contentLength], limit: maxBodyBytes)
        let write = try await admin.setPaused(paused, expectedVersion: expected)
        return AdminResponse.json(MonitorJSON.version(write.version), status: write.created ? .created : .ok, etag: write.version.version)
    }

    func ready(_ request: Request) async -> Response {
        let results = await readiness()
        // Failure details (host names, errors) only for callers who may read the monitor.
        let detailed = policy.decide(.read, authorization: request.headers[.authorization]) == .allowed
        var checks = JSONObject()
        var ready = true
        for name in results.keys.sorted() {
            if let failure = results[name] ?? nil {
                ready = false
                checks[name] = detailed ? .object(["status": "failing", "error": .string(failure)]) : .object(["status": "failing"])
            } else {
                checks[name] = .object(["status": "ok"])
            }
        }
        let body: JSONValue = .object(["status": .string(ready ? "ready" : "not ready"), "checks": .object(checks)])
        return AdminResponse.json(body, status: ready ? .ok : .serviceUnavailable)
    }

    func authorize(_ access: AdminAccessPolicy.Access, _ request: Request) throws(MonitorAdminError) {
        switch policy.decide(access, authorization: request.headers[.authorization]) {
        case .allowed: return
        case .unauthorized(let message): throw .unauthorized(message)
        case .forbidden(let message): throw .forbidden(message)
        }
    }
}

/// Building JSON responses and reading bodies.
enum AdminResponse {
    static func json(_ value: JSONValue, status: HTTPResponse.Status, etag: Int64? = nil, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        if let etag { headers[.eTag] = IfMatch.etag(etag) }
        var bytes = value.serializedUTF8()
        bytes.append(UInt8(ascii: "\n"))
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The error as a JSON response (401s carry `WWW-Authenticate`, 405s `Allow`).
    static func error(_ error: MonitorAdminError) -> Response {
        var headers = HTTPFields()
        switch error {
        case .unauthorized:
            headers[.wwwAuthenticate] = #"Bearer realm="assay""#
        case .methodNotAllowed(_, let allowed):
            headers[.allow] = allowed.joined(separator: ", ")
        default:
            break
        }
        return json(MonitorJSON.error(error), status: status(error.status), headers: headers)
    }

    /// The status for a code, with its usual reason phrase.
    static func status(_ code: Int) -> HTTPResponse.Status {
        switch code {
        case 400: .badRequest
        case 401: .unauthorized
        case 403: .forbidden
        case 404: .notFound
        case 405: .methodNotAllowed
        case 409: .conflict
        case 413: .contentTooLarge
        case 503: .serviceUnavailable
        case 100...599: HTTPResponse.Status(code: code)
        default: .internalServerError
        }
    }

    /// The whole body, refused with 413 as soon as the declared length or the bytes received
    /// exceed `limit` (the rest is never buffered).
    static func collect(_ body: RequestBody, contentLength: String?, limit: Int) async throws -> [UInt8] {
        try await collect(body.map(\.readableBytesView), contentLength: contentLength, limit: limit)
    }

    /// ``collect(_:contentLength:limit:)`` over any chunks of bytes.
    static func collect<Chunks: AsyncSequence>(_ chunks: Chunks, contentLength: String?, limit: Int) async throws -> [UInt8]
    where Chunks.Element: Collection<UInt8> {
        let tooLarge = MonitorAdminError.payloadTooLarge("the request body is larger than \(limit) bytes")
        if let contentLength, let declared = Int(contentLength), declared > limit { throw tooLarge }
        var bytes: [UInt8] = []
        for try await chunk in chunks {
            guard chunk.count <= limit - bytes.count else { throw tooLarge }
            bytes.append(contentsOf: chunk)
        }
        return bytes
    }
}

/// Turns every error into a JSON response and logs each request (method, path, status and
/// latency; never bodies or headers).
struct AdminMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var response: Response
        var failure: String?
        do {
            response = try await next(request, context)
        } catch let error as MonitorAdminError {
            response = AdminResponse.error(error)
            failure = error.message
        } catch let error as HTTPError where error.status == .notFound {
            let error = Self.routeError(request)
            response = AdminResponse.error(error)
            failure = error.message
        } catch let error as HTTPError {
            response = AdminResponse.error(.failed(status: error.status.code, message: error.body ?? error.status.reasonPhrase))
            failure = error.body ?? error.status.reasonPhrase
        } catch {
            // Details go to the log only.
            response = AdminResponse.error(.failed(status: 500, message: "internal error (see the server log)"))
            failure = "\(error)"
        }
        response.headers[.cacheControl] = "no-store"
        response.headers[.xContentTypeOptions] = "nosniff"
        let elapsed = ContinuousClock.now - start
        var metadata: Logger.Metadata = [
            "http.method": "\(request.method.rawValue)",
            "http.path": "\(request.uri.path)",
            "http.status": "\(response.status.code)",
            "http.latency_ms": "\(Self.milliseconds(elapsed))",
        ]
        if let failure { metadata["error"] = "\(failure)" }
        let quiet = request.method == .get && response.status.code < 400
        logger.log(level: quiet ? .debug : .info, "admin API request", metadata: metadata)
        return response
    }

    /// 405 when the path is a route with other methods, else 404.
    static func routeError(_ request: Request) -> MonitorAdminError {
        var path = request.uri.path
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        let methods = AdminRoutes.routes[path]
            ?? AdminRoutes.prefixRoutes.first { route in
                // One non-empty segment after the prefix, as the route's parameter matches.
                path.hasPrefix(route.prefix) && path.count > route.prefix.count && !path.dropFirst(route.prefix.count).contains("/")
            }?.methods
        if let methods {
            let allowed = methods.map(\.rawValue)
            return .methodNotAllowed("\(request.method.rawValue) is not allowed on \(path) (allowed: \(allowed.joined(separator: ", ")))", allowed: allowed)
        }
        return .notFound("no such route: \(request.method.rawValue) \(path)")
    }

    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        return "\(micros / 1000).\(String(micros % 1000).leftPadded(3))"
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
