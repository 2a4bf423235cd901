import AssayCore

/// The JSON bodies of the admin API, written by the server and read by the client.
///
/// - A version (`GET /api/monitor`, and the answer to every write):
///   `{"version": 3, "created_at": "2026-02-03T13:00:53.476Z", "effective_from": "2026-02-03T13:15:00Z" | null,
///   "note": "api" | null, "config": {<the monitor document>}}`; `effective_from` is null for the
///   first version, which applies from the start of history.
/// - The history (`GET /api/monitor/versions`), newest first:
///   `{"versions": [{"version", "created_at", "effective_from", "note", "paused", "scorers": ["name", ...]}]}`.
/// - An error: `{"error": "<message>", "path": "<JSON path>"}` (`path` only when the error is about
///   one field); an invalid document adds `"issues": [{"path", "message"}, ...]` with every problem.
public enum MonitorJSON {
    // MARK: Writing

    /// The version object.
    public static func version(_ info: MonitorVersionInfo) -> JSONValue {
        var object = JSONObject()
        object["version"] = JSONValue(info.version)
        object["created_at"] = .string(TimeFormatting.rfc3339(millis: info.createdAtMillis))
        object["effective_from"] = effectiveFrom(info.effectiveFromNanos)
        object["note"] = info.note.map { .string($0) } ?? .null
        object["config"] = info.config.json()
        return .object(object)
    }

    /// The history object.
    public static func versions(_ summaries: [MonitorVersionSummary]) -> JSONValue {
        .object(["versions": .array(summaries.map(summary))])
    }

    /// One line of the history.
    public static func summary(_ summary: MonitorVersionSummary) -> JSONValue {
        var object = JSONObject()
        object["version"] = JSONValue(summary.version)
        object["created_at"] = .string(TimeFormatting.rfc3339(millis: summary.createdAtMillis))
        object["effective_from"] = effectiveFrom(summary.effectiveFromNanos)
        object["note"] = summary.note.map { .string($0) } ?? .null
        object["paused"] = .bool(summary.paused)
        object["scorers"] = .array(summary.scorers.map { .string($0) })
        return .object(object)
    }

    /// The error object.
    public static func error(_ error: MonitorAdminError) -> JSONValue {
        var object = JSONObject()
        object["error"] = .string(error.message)
        if let path = error.path, !path.isEmpty { object["path"] = .string(path) }
        if case .invalidDocument(let issues) = error {
            object["issues"] = .array(issues.map { .object(["path": .string($0.path), "message": .string($0.message)]) })
        }
        return .object(object)
    }

    private static func effectiveFrom(_ nanos: Int64?) -> JSONValue {
        nanos.map { .string(TimeFormatting.rfc3339(nanos: $0, fraction: .shortestExact)) } ?? .null
    }

    // MARK: Reading

    /// Reads a version object (the `config` is validated like any document).
    public static func decodeVersion(_ value: JSONValue) throws(MonitorAdminError) -> MonitorVersionInfo {
        guard case .object(let object) = value else { throw malformed("a version must be an object") }
        let version = try integer(object, "version")
        let createdAt = try time(object, "created_at")
        let effectiveFrom = try optionalTime(object, "effective_from")
        let note = try optionalString(object, "note")
        guard let configValue = object["config"] else { throw malformed("the version has no config") }
        let config: MonitorConfig
        do {
            config = try MonitorConfig.parse(configValue)
        } catch {
            throw malformed("the server sent an invalid config: \(error.description)")
        }
        return MonitorVersionInfo(version: version, createdAtMillis: floorDivide(createdAt, 1_000_000), effectiveFromNanos: effectiveFrom,
                                  note: note, config: config)
    }

    /// Reads a history object.
    public static func decodeVersions(_ value: JSONValue) throws(MonitorAdminError) -> [MonitorVersionSummary] {
        guard case .array(let elements)? = value["versions"] else { throw malformed("expected {\"versions\": [...]}") }
        var summaries: [MonitorVersionSummary] = []
        for element in elements {
            guard case .object(let object) = element else { throw malformed("a version must be an object") }
            guard case .bool(let paused)? = object["paused"] else { throw malformed("a version has no boolean \"paused\"") }
            guard case .array(let names)? = object["scorers"] else { throw malformed("a version has no \"scorers\" list") }
            var scorers: [String] = []
            for name in names {
                guard case .string(let text) = name else { throw malformed("scorer names must be strings") }
                scorers.append(text)
            }
            summaries.append(MonitorVersionSummary(
                version: try integer(object, "version"), createdAtMillis: floorDivide(try time(object, "created_at"), 1_000_000),
                effectiveFromNanos: try optionalTime(object, "effective_from"), note: try optionalString(object, "note"),
                paused: paused, scorers: scorers))
        }
        return summaries
    }

    /// The error an API response with `status` and `body` stands for.
    public static func decodeError(status: Int, body: [UInt8]) -> MonitorAdminError {
        let document = try? JSONParser().parse(body)
        let message = document?["error"]?.stringValue ?? "HTTP status \(status)"
        let path = document?["path"]?.stringValue
        switch status {
        case 400:
            if case .array(let elements)? = document?["issues"] {
                let issues = elements.compactMap { element -> MonitorAdminError.Issue? in
                    guard let message = element["message"]?.stringValue else { return nil }
                    return .init(path: element["path"]?.stringValue ?? "", message: message)
                }
                if !issues.isEmpty { return .invalidDocument(issues) }
            }
            return .badRequest(message)
        case 401: return .unauthorized(message)
        case 403: return .forbidden(message)
        case 404: return .notFound(message)
        case 405: return .methodNotAllowed(message, allowed: [])
        case 409: return .conflict(message, path: path)
        case 413: return .payloadTooLarge(message)
        case 503: return .unavailable(message)
        default: return .failed(status: status, message: message)
        }
    }

    private static func malformed(_ message: String) -> MonitorAdminError {
        .failed(status: nil, message: "unexpected response from the admin API: \(message)")
    }

    private static func integer(_ object: JSONObject, _ key: String) throws(MonitorAdminError) -> Int64 {
        guard let value = object[key]?.int64Value else { throw malformed("\"\(key)\" must be an integer") }
        return value
    }

    private static func time(_ object: JSONObject, _ key: String) throws(MonitorAdminError) -> Int64 {
        guard let text = object[key]?.stringValue, let nanos = TimeParsing.rfc3339Nanoseconds(text) else {
            throw malformed("\"\(key)\" must be an RFC 3339 time")
        }
        return nanos
    }

    private static func optionalTime(_ object: JSONObject, _ key: String) throws(MonitorAdminError) -> Int64? {
        guard let value = object[key], !value.isNull else { return nil }
        return try time(object, key)
    }

    private static func optionalString(_ object: JSONObject, _ key: String) throws(MonitorAdminError) -> String? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let text = value.stringValue else { throw malformed("\"\(key)\" must be a string or null") }
        return text
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return value % divisor < 0 ? quotient - 1 : quotient
    }
}
