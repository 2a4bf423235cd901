/// How to reach a PostgreSQL server: a libpq connection URI plus typed options.
///
/// The URL is handed to libpq as is (`postgres://` or `postgresql://`, see the libpq
/// "Connection URIs" documentation), so everything libpq accepts in a URI works, including
/// query parameters such as `sslmode`. The typed options, when set, override the same
/// settings given in the URL. Never log ``url``: it may carry a password. Log
/// ``redactedURL`` (which ``description`` also returns).
public struct PostgresConfiguration: Sendable, CustomStringConvertible {
    /// The connection URI as given. May contain a password.
    public let url: String
    /// Sent as `application_name`; shows up in `pg_stat_activity`.
    public var applicationName: String?
    /// How long to wait for the connection to come up (libpq `connect_timeout`, whole
    /// seconds, rounded up; libpq treats values below 2 s as 2 s). `nil` waits indefinitely.
    public var connectTimeout: Duration?
    /// Schemas for `SET search_path TO ...`, applied right after connecting. Each name is
    /// quoted with `PQescapeIdentifier`, so it is matched exactly (case-sensitively).
    /// `nil` leaves the server's default; an empty array sets an empty search path.
    public var searchPath: [String]?

    /// Validates the URL's scheme and stores the options.
    ///
    /// - Throws: ``PostgresError`` of kind ``PostgresError/Kind/invalidConfiguration`` when
    ///   the URL does not start with `postgres://` or `postgresql://`.
    public init(
        url: String,
        applicationName: String? = nil,
        connectTimeout: Duration? = .seconds(10),
        searchPath: [String]? = nil
    ) throws {
        let lowered = url.lowercased()
        guard lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://") else {
            throw PostgresError(
                kind: .invalidConfiguration,
                message: "database URL must start with postgres:// or postgresql://")
        }
        if let connectTimeout, connectTimeout < .zero {
            throw PostgresError(kind: .invalidConfiguration, message: "connect timeout must not be negative")
        }
        self.url = url
        self.applicationName = applicationName
        self.connectTimeout = connectTimeout
        self.searchPath = searchPath
    }

    /// ``url`` with any password (in the user-info part or a `password=` query parameter)
    /// replaced by `***`. Safe for logs and error messages.
    public var redactedURL: String { Self.redact(url) }

    public var description: String { redactedURL }

    /// `connect_timeout` in whole seconds, rounded up, as libpq wants it.
    var connectTimeoutSeconds: Int? {
        guard let connectTimeout else { return nil }
        let (seconds, attoseconds) = connectTimeout.components
        return Int(seconds) + (attoseconds > 0 ? 1 : 0)
    }

    /// Replaces passwords in a libpq URI with `***`. Works on the text (not `URLComponents`)
    /// because libpq URIs may list several `host:port` pairs, which `URLComponents` rejects.
    static func redact(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let afterScheme = url[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        var result = String(url[..<schemeEnd.upperBound])
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            if let colon = userInfo.firstIndex(of: ":") {
                result += userInfo[..<colon] + ":***"
            } else {
                result += userInfo
            }
            result += authority[at...]
        } else {
            result += authority
        }
        let rest = afterScheme[authorityEnd...]
        guard let question = rest.firstIndex(of: "?") else { return result + rest }
        result += rest[...question]
        let queryAndFragment = rest[rest.index(after: question)...]
        let fragmentStart = queryAndFragment.firstIndex(of: "#") ?? queryAndFragment.endIndex
        let pairs = queryAndFragment[..<fragmentStart].split(separator: "&", omittingEmptySubsequences: false)
        result += pairs.map { pair -> String in
            let key = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            return key.lowercased() == "password" ? "\(key)=***" : String(pair)
        }.joined(separator: "&")
        result += queryAndFragment[fragmentStart...]
        return result
    }
}
