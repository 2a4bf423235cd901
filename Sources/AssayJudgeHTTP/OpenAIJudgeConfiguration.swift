// Settings of the OpenAI-compatible judge, built from the monitor's `judge` section and the
// process environment (DESIGN §4).

import AssayCore

import Foundation

/// An API key held so that it is hard to leak: its `description`, `debugDescription` and
/// mirror show `<redacted>`, never the key.
///
/// The key itself is only read where the `Authorization` header is built.
public struct JudgeAPIKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret. Do not log or interpolate it.
    public let secret: String

    public init(_ secret: String) {
        self.secret = secret
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}

/// Why an OpenAI judge could not be configured. Messages name settings and environment
/// variables, never the API key.
public struct OpenAIJudgeConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Everything the OpenAI-compatible judge needs to call a chat-completions endpoint.
///
/// Requests go to ``endpoint``: the base URL's path followed by `/chat/completions` (see
/// ``endpoint(forBaseURL:)`` for how a trailing slash, a bare host, or a base that already
/// names the endpoint are handled). The temperature is always 0.
public struct OpenAIJudgeConfiguration: Sendable, CustomStringConvertible {
    /// The configured base URL, e.g. `https://api.openai.com/v1`.
    public let baseURL: String
    /// The chat-completions URL derived from ``baseURL``.
    public let endpoint: URL
    /// The model name sent in every request.
    public var model: String
    /// The bearer token. Never logged.
    public var apiKey: JudgeAPIKey
    /// The longest one HTTP attempt may take, from sending the request to the last byte of the
    /// reply; an attempt that takes longer is abandoned and counts as a timeout.
    public var requestTimeout: Duration
    /// HTTP attempts per judge call, the first one included (≥ 1).
    public var maxAttempts: Int
    /// The backoff before retry *n* (1-based) is drawn from `0 ... min(backoffCap, backoffBase · 2^(n-1))`.
    public var backoffBase: Duration
    public var backoffCap: Duration
    /// Whether the backoff is drawn at random below its ceiling ("full jitter"); when false the
    /// ceiling itself is used (deterministic, for tests).
    public var fullJitter: Bool
    /// The longest wait a server's `Retry-After` can impose; longer requests are cut to this.
    public var retryAfterCap: Duration
    /// Whether to ask for `response_format: {"type": "json_object"}`. When the server refuses
    /// it (HTTP 400 naming `response_format`), the judge retries once without it and stops
    /// sending it for the rest of its life.
    public var useJSONResponseFormat: Bool
    /// The sampling temperature: always 0, so that identical prompts get identical verdicts.
    public let temperature: Double = 0

    public static let defaultRequestTimeout: Duration = .seconds(60)
    public static let defaultMaxAttempts = 4
    public static let defaultBackoffBase: Duration = .milliseconds(500)
    public static let defaultBackoffCap: Duration = .seconds(20)
    public static let defaultRetryAfterCap: Duration = .seconds(60)

    /// Validates the settings.
    ///
    /// - Throws: when `baseURL` is not an absolute http(s) URL with a host (or carries a user
    ///   name or password), `model` is empty, the key is empty or contains a line break, or a
    ///   duration or count is out of range.
    public init(
        baseURL: String,
        model: String,
        apiKey: JudgeAPIKey,
        requestTimeout: Duration = OpenAIJudgeConfiguration.defaultRequestTimeout,
        maxAttempts: Int = OpenAIJudgeConfiguration.defaultMaxAttempts,
        backoffBase: Duration = OpenAIJudgeConfiguration.defaultBackoffBase,
        backoffCap: Duration = OpenAIJudgeConfiguration.defaultBackoffCap,
        fullJitter: Bool = true,
        retryAfterCap: Duration = OpenAIJudgeConfiguration.defaultRetryAfterCap,
        useJSONResponseFormat: Bool = true
    ) throws(OpenAIJudgeConfigurationError) {
        self.endpoint = try Self.endpoint(forBaseURL: baseURL)
        self.baseURL = baseURL
        let trimmedModel = model.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmedModel.isEmpty else {
            throw OpenAIJudgeConfigurationError("judge.model must not be empty")
        }
        self.model = trimmedModel
        guard !apiKey.secret.isEmpty else {
            throw OpenAIJudgeConfigurationError("the judge API key is empty")
        }
        guard !apiKey.secret.contains(where: { $0.isNewline || $0 == "\0" }) else {
            throw OpenAIJudgeConfigurationError("the judge API key contains a line break or NUL")
        }
        self.apiKey = apiKey
        guard requestTimeout > .zero else {
            throw OpenAIJudgeConfigurationError("the judge request timeout must be positive")
        }
        self.requestTimeout = requestTimeout
        guard maxAttempts >= 1, maxAttempts <= 100 else {
            throw OpenAIJudgeConfigurationError("the judge's max attempts must be between 1 and 100")
        }
        self.maxAttempts = maxAttempts
        guard backoffBase >= .zero, backoffCap >= backoffBase, retryAfterCap >= .zero else {
            throw OpenAIJudgeConfigurationError("the judge's backoff must satisfy 0 ≤ base ≤ cap and retry-after cap ≥ 0")
        }
        self.backoffBase = backoffBase
        self.backoffCap = backoffCap
        self.fullJitter = fullJitter
        self.retryAfterCap = retryAfterCap
        self.useJSONResponseFormat = useJSONResponseFormat
    }

    /// The settings of the monitor's `judge` section (kind `openai`), with the API key read from
    /// the environment variable that `api_key_env` names.
    ///
    /// - Parameter environment: the process environment; tests pass their own.
    /// - Throws: when the section is not of kind `openai`, lacks `base_url`, `model` or
    ///   `api_key_env`, or the variable is unset or empty. Messages name the variable, never
    ///   its value.
    public init(
        judgeConfig: JudgeConfig,
        environment: [String: String],
        requestTimeout: Duration = OpenAIJudgeConfiguration.defaultRequestTimeout,
        maxAttempts: Int = OpenAIJudgeConfiguration.defaultMaxAttempts
    ) throws(OpenAIJudgeConfigurationError) {
        guard judgeConfig.kind == .openai else {
            throw OpenAIJudgeConfigurationError("judge.kind is \(judgeConfig.kind.rawValue), not openai")
        }
        guard let baseURL = judgeConfig.baseURL else {
            throw OpenAIJudgeConfigurationError("judge.base_url is required for kind openai")
        }
        guard let model = judgeConfig.model else {
            throw OpenAIJudgeConfigurationError("judge.model is required for kind openai")
        }
        guard let variable = judgeConfig.apiKeyEnv, !variable.isEmpty else {
            throw OpenAIJudgeConfigurationError("judge.api_key_env is required for kind openai")
        }
        guard let secret = environment[variable] else {
            throw OpenAIJudgeConfigurationError(
                "the environment variable \(variable) (named by judge.api_key_env) is not set; it must hold the judge's API key"
            )
        }
        guard !secret.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw OpenAIJudgeConfigurationError(
                "the environment variable \(variable) (named by judge.api_key_env) is empty; it must hold the judge's API key"
            )
        }
        do {
            try self.init(
                baseURL: baseURL, model: model,
                apiKey: JudgeAPIKey(secret.trimmingCharacters(in: .whitespacesAndNewlines)),
                requestTimeout: requestTimeout, maxAttempts: maxAttempts
            )
        } catch {
            // Name where the key came from; the message itself never contains the key.
            if error.message.contains("API key") {
                throw OpenAIJudgeConfigurationError("\(error.message) (environment variable \(variable))")
            }
            throw error
        }
    }

    /// The chat-completions URL for a base URL:
    ///
    /// - `https://host/v1`, `https://host/v1/` → `https://host/v1/chat/completions`
    /// - `https://host/openai/v1` → `https://host/openai/v1/chat/completions`
    /// - `https://host` or `https://host/` (no path) → `https://host/v1/chat/completions`
    /// - a base already ending in `/chat/completions` is used as it is.
    ///
    /// Query strings are kept. Only `http` and `https` with a host are accepted, and no user
    /// name or password (they would end up in logs and errors).
    public static func endpoint(forBaseURL baseURL: String) throws(OpenAIJudgeConfigurationError) -> URL {
        let trimmed = baseURL.trimmingCharacters(in: .whitespacesAndNewlines)
        guard var components = URLComponents(string: trimmed),
              let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty
        else {
            throw OpenAIJudgeConfigurationError("judge.base_url must be an absolute http or https URL with a host")
        }
        guard components.user == nil, components.password == nil else {
            throw OpenAIJudgeConfigurationError("judge.base_url must not contain a user name or password")
        }
        components.fragment = nil
        var path = components.path
        while path.hasSuffix("/") { path.removeLast() }
        if path.hasSuffix("/chat/completions") {
            // Already the endpoint.
        } else if path.isEmpty {
            path = "/v1/chat/completions"
        } else {
            path += "/chat/completions"
        }
        components.path = path
        guard let url = components.url else {
            throw OpenAIJudgeConfigurationError("judge.base_url must be an absolute http or https URL with a host")
        }
        return url
    }

    /// The host (and port) requests go to, for logs.
    public var endpointHost: String {
        let host = endpoint.host ?? "?"
        if let port = endpoint.port { return "\(host):\(port)" }
        return host
    }

    public var description: String {
        "OpenAIJudgeConfiguration(endpoint: \(endpoint.scheme ?? "http")://\(endpointHost)\(endpoint.path), model: \(model), apiKey: <redacted>, "
            + "requestTimeout: \(requestTimeout), maxAttempts: \(maxAttempts), jsonResponseFormat: \(useJSONResponseFormat))"
    }
}
