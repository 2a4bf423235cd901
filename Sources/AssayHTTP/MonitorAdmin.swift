// The monitor operations of the admin API and of `assay monitor`, with one error type shared
// by the database and the HTTP implementations.

import AssayCore
import AssayScoring
import AssayStore

/// One version of the monitor document as the admin API shows it.
public struct MonitorVersionInfo: Sendable, Equatable {
    /// The version number (1, 2, ...).
    public var version: Int64
    /// When it was written, epoch milliseconds.
    public var createdAtMillis: Int64
    /// The event time (ns) from which windows use it; nil for the first version, which applies
    /// from the start of history.
    public var effectiveFromNanos: Int64?
    /// Who wrote it: `api`, `cli`, `serve --monitor`, ...
    public var note: String?
    /// The document.
    public var config: MonitorConfig

    public init(version: Int64, createdAtMillis: Int64, effectiveFromNanos: Int64?, note: String?, config: MonitorConfig) {
        self.version = version
        self.createdAtMillis = createdAtMillis
        self.effectiveFromNanos = effectiveFromNanos
        self.note = note
        self.config = config
    }

    /// The stored version (`Int64.min` as the effective time means "from the start").
    public init(_ stored: MonitorVersion) {
        self.init(
            version: stored.version, createdAtMillis: stored.createdAtMillis,
            effectiveFromNanos: stored.effectiveFromNanos == Int64.min ? nil : stored.effectiveFromNanos,
            note: stored.note, config: stored.config)
    }

    /// The line of ``MonitorVersionSummary`` for this version.
    public var summary: MonitorVersionSummary {
        MonitorVersionSummary(
            version: version, createdAtMillis: createdAtMillis, effectiveFromNanos: effectiveFromNanos, note: note,
            paused: config.paused, scorers: config.scorers.map(\.name))
    }
}

/// One line of the version history (`GET /api/monitor/versions`).
public struct MonitorVersionSummary: Sendable, Equatable {
    public var version: Int64
    /// When it was written, epoch milliseconds.
    public var createdAtMillis: Int64
    /// nil for the first version (from the start of history).
    public var effectiveFromNanos: Int64?
    public var note: String?
    public var paused: Bool
    /// The scorer names, in document order.
    public var scorers: [String]

    public init(version: Int64, createdAtMillis: Int64, effectiveFromNanos: Int64?, note: String?, paused: Bool, scorers: [String]) {
        self.version = version
        self.createdAtMillis = createdAtMillis
        self.effectiveFromNanos = effectiveFromNanos
        self.note = note
        self.paused = paused
        self.scorers = scorers
    }
}

/// The outcome of a write: the version now in force, and whether this call wrote it.
///
/// Pausing a paused monitor (or resuming a running one) writes nothing: `created` is false and
/// `version` is the current version.
public struct MonitorWrite: Sendable, Equatable {
    public var version: MonitorVersionInfo
    public var created: Bool

    public init(version: MonitorVersionInfo, created: Bool) {
        self.version = version
        self.created = created
    }
}

/// Why a monitor operation was refused or failed, with the HTTP status it is reported with.
///
/// The server turns these into `{"error": ..., "path": ...}` responses and the client turns
/// those responses back into the same cases, so `assay monitor` reports the same errors
/// whether it talks to the database or to the API.
public enum MonitorAdminError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One problem with a document: its JSON path (`scorers[0].sample_rate`; empty for the
    /// whole document) and what is wrong.
    public struct Issue: Sendable, Equatable, CustomStringConvertible {
        public var path: String
        public var message: String

        public init(path: String, message: String) {
            self.path = path
            self.message = message
        }

        public var description: String { path.isEmpty ? message : "\(path): \(message)" }
    }

    /// 404: no monitor is configured (or no such route).
    case notFound(String)
    /// 400: the document is invalid; every issue, in document order (never empty).
    case invalidDocument([Issue])
    /// 400: the request itself is malformed (such as an `If-Match` that is not a version).
    case badRequest(String)
    /// 409: a stale expected version, a change of `destination.schema`, or nothing to pause.
    case conflict(String, path: String?)
    /// 401: a missing or wrong bearer token.
    case unauthorized(String)
    /// 403: the server refuses the operation whatever the token (no token is configured).
    case forbidden(String)
    /// 405: the route exists with other methods.
    case methodNotAllowed(String, allowed: [String])
    /// 413: the request body is larger than the server accepts.
    case payloadTooLarge(String)
    /// 503: the database is unreachable or not migrated.
    case unavailable(String)
    /// Anything else: an unexpected status (nil when the server could not be reached).
    case failed(status: Int?, message: String)

    /// The HTTP status this error is reported with.
    public var status: Int {
        switch self {
        case .notFound: 404
        case .invalidDocument, .badRequest: 400
        case .conflict: 409
        case .unauthorized: 401
        case .forbidden: 403
        case .methodNotAllowed: 405
        case .payloadTooLarge: 413
        case .unavailable: 503
        case .failed(let status, _): status ?? 500
        }
    }

    /// The one-line message (for invalid documents, the first issue's).
    public var message: String {
        switch self {
        case .notFound(let message), .badRequest(let message), .unauthorized(let message), .forbidden(let message),
             .payloadTooLarge(let message), .unavailable(let message):
            message
        case .conflict(let message, _), .methodNotAllowed(let message, _), .failed(_, let message):
            message
        case .invalidDocument(let issues):
            issues.first?.message ?? "invalid monitor document"
        }
    }

    /// The JSON path the error is about, if any.
    public var path: String? {
        switch self {
        case .invalidDocument(let issues):
            issues.first.map(\.path)
        case .conflict(_, let path):
            path
        default:
            nil
        }
    }

    public var description: String {
        switch self {
        case .invalidDocument(let issues):
            let lines = issues.map { "  \($0)" }.joined(separator: "\n")
            return "invalid monitor document (\(issues.count) \(issues.count == 1 ? "issue" : "issues")):\n\(lines)"
        default:
            return message
        }
    }
}

/// Checks a monitor document as `PUT /api/monitor` and `assay monitor update` do.
public enum MonitorDocument {
    /// Parses `bytes` (structure and every field), then checks each scorer's `params`; the
    /// error lists every issue with its JSON path.
    public static func validate(_ bytes: [UInt8]) throws(MonitorAdminError) -> MonitorConfig {
        let config: MonitorConfig
        do {
            config = try MonitorConfig.parse(bytes)
        } catch {
            throw .invalidDocument(error.issues.map { .init(path: $0.path, message: $0.message) })
        }
        try validate(config)
        return config
    }

    /// Checks each scorer's `params` (the structure was checked when `config` was parsed).
    public static func validate(_ config: MonitorConfig) throws(MonitorAdminError) {
        do {
            try ScorerFactory.validate(config)
        } catch {
            throw .invalidDocument(error.issues.map { .init(path: $0.path, message: $0.message) })
        }
    }
}

/// The monitor operations, against the database (``DatabaseMonitorAdmin``) or the admin API
/// (``MonitorAdminClient``). Refusals are thrown as ``MonitorAdminError``.
public protocol MonitorAdmin: Sendable {
    /// The newest version; ``MonitorAdminError/notFound(_:)`` when none was ever written.
    func current() async throws -> MonitorVersionInfo
    /// The newest `limit` versions, newest first.
    func versions(limit: Int) async throws -> [MonitorVersionSummary]
    /// Validates `document` and writes it as version n+1. With `expectedVersion`, refused
    /// (``MonitorAdminError/conflict(_:path:)``) unless that is the current version.
    func update(document: [UInt8], expectedVersion: Int64?) async throws -> MonitorWrite
    /// Writes the current document with `paused` set, unless it is already so.
    func setPaused(_ paused: Bool, expectedVersion: Int64?) async throws -> MonitorWrite
}

/// Messages shared by both implementations.
enum MonitorAdminMessages {
    static let notConfigured = "no monitor is configured"

    static func nothingTo(_ paused: Bool) -> String {
        "no monitor is configured: nothing to \(paused ? "pause" : "resume") (PUT a monitor document first)"
    }
}
