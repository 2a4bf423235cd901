import AssayCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The monitor operations through the admin API (`assay monitor --url`), over `URLSession`.
///
/// Error responses become the same ``MonitorAdminError``s the server built them from
/// (``MonitorJSON/decodeError(status:body:)``); an unreachable server is
/// ``MonitorAdminError/failed(status:message:)`` with a nil status. The token is sent as
/// `Authorization: Bearer` and never appears in errors.
public struct MonitorAdminClient: MonitorAdmin, CustomStringConvertible, CustomDebugStringConvertible {
    /// The API's base URL, such as `http://127.0.0.1:8080`.
    public let baseURL: URL
    private let token: String?
    private let timeout: TimeInterval

    /// - Parameters:
    ///   - token: `ASSAY_ADMIN_TOKEN`; needed for writes, and for reads from a server bound to a
    ///     non-loopback address. Nil or empty sends no `Authorization` header.
    ///   - timeoutSeconds: per request.
    public init(baseURL: URL, token: String?, timeoutSeconds: Double = 30) {
        self.baseURL = baseURL
        self.token = token.flatMap { $0.isEmpty ? nil : $0 }
        self.timeout = timeoutSeconds
    }

    public var description: String {
        "MonitorAdminClient(\(baseURL.absoluteString), token: \(token == nil ? "none" : "<redacted>"))"
    }

    public var debugDescription: String { description }

    /// Checks a `--url` value: `http` or `https` with a host, and no query or fragment.
    public static func baseURL(parsing text: String) throws(MonitorAdminError) -> URL {
        guard let components = URLComponents(string: text),
              let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty,
              components.query == nil, components.fragment == nil,
              let url = components.url else {
            throw .badRequest("--url must be the admin API's base URL, such as http://127.0.0.1:8080")
        }
        return url
    }

    public func current() async throws -> MonitorVersionInfo {
        try MonitorJSON.decodeVersion(try await exchange("GET", "api/monitor").json())
    }

    public func versions(limit: Int) async throws -> [MonitorVersionSummary] {
        let limit = min(max(1, limit), AdminRoutes.maxVersionsLimit)
        return try MonitorJSON.decodeVersions(try await exchange("GET", "api/monitor/versions", query: "limit=\(limit)").json())
    }

    public func update(document: [UInt8], expectedVersion: Int64?) async throws -> MonitorWrite {
        let response = try await exchange("PUT", "api/monitor", body: document, expectedVersion: expectedVersion)
        return MonitorWrite(version: try MonitorJSON.decodeVersion(try response.json()), created: response.status == 201)
    }

    public func setPaused(_ paused: Bool, expectedVersion: Int64?) async throws -> MonitorWrite {
        let response = try await exchange("POST", paused ? "api/monitor/pause" : "api/monitor/resume", expectedVersion: expectedVersion)
        return MonitorWrite(version: try MonitorJSON.decodeVersion(try response.json()), created: response.status == 201)
    }

    /// One answer of the API.
    public struct Exchange: Sendable {
        public var status: Int
        /// Header names lowercased.
        public var headers: [String: String]
        public var body: [UInt8]

        /// The body as JSON.
        func json() throws(MonitorAdminError) -> JSONValue {
            do {
                return try JSONParser().parse(body)
            } catch {
                throw .failed(status: status, message: "the admin API answered with invalid JSON (\(error))")
            }
        }
    }

    /// Sends one request and returns the answer when its status is 2xx; otherwise throws the
    /// error the answer stands for.
    public func exchange(_ method: String, _ path: String, query: String? = nil, body: [UInt8]? = nil, expectedVersion: Int64? = nil) async throws -> Exchange {
        let response = try await send(method, path, query: query, body: body, headers: expectedVersion.map { ["If-Match": IfMatch.etag($0)] } ?? [:])
        guard (200..<300).contains(response.status) else {
            throw MonitorJSON.decodeError(status: response.status, body: response.body)
        }
        return response
    }

    /// Sends one request and returns the answer whatever its status (for callers and tests that
    /// look at statuses and headers themselves).
    public func send(_ method: String, _ path: String, query: String? = nil, body: [UInt8]? = nil, headers: [String: String] = [:]) async throws -> Exchange {
        var components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false)
        let basePath = components?.path ?? ""
        components?.path = (basePath.hasSuffix("/") ? basePath : basePath + "/") + path
        components?.query = query
        guard let url = components?.url else {
            throw MonitorAdminError.badRequest("cannot build a URL from \(baseURL) and \(path)")
        }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let body {
            request.httpBody = Data(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw MonitorAdminError.failed(status: nil, message: "cannot reach the admin API at \(baseURL.absoluteString): \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else {
            throw MonitorAdminError.failed(status: nil, message: "the admin API at \(baseURL.absoluteString) did not answer over HTTP")
        }
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
        }
        return Exchange(status: http.statusCode, headers: fields, body: Array(data))
    }
}
