// The monitor configuration: one versioned JSON document (DESIGN §2 invariant 9, §3).

/// What to score, how often, and with which judge: the whole monitor document.
///
/// ```json
/// {"name": "prod-chatbot", "destination": {"schema": "assay"}, "sample_rate": 1.0,
///  "window": "15m", "allowed_lateness": "2m", "judge": {"kind": "offline"},
///  "scorers": [{"name": "no_pii", "kind": "pii", "sample_rate": 0.4, "filter": "tags.env = 'prod'"}],
///  "paused": false}
/// ```
///
/// ## Rules (``parse(_:)`` reports every violation, each with its path)
/// - Unknown or repeated fields are errors everywhere except inside `params` (which the scorer
///   validates).
/// - `name` (required): 1–128 characters of `[A-Za-z0-9_.-]`, starting with a letter or digit.
/// - `destination.schema` (required): `^[a-z_][a-z0-9_]{0,62}$`, not `pg_…` nor
///   `information_schema`. Set once; the store refuses to change it.
/// - `sample_rate` (default 1.0) and every `scorers[].sample_rate`: numbers in [0, 1].
/// - `window` (default `15m`, ≥ 1s) and `allowed_lateness` (default `2m`, may be `0s`):
///   `<digits>s|m|h`, at most 168h.
/// - `judge` (optional): `kind` `offline` or `openai`; `openai` needs `base_url` (http/https),
///   `model` and `api_key_env` — the *name* of the environment variable holding the key, never a
///   key (values that look like keys are refused, and never echoed in messages); these three are
///   refused for `offline`. `max_tokens_per_window` (optional, 1–10^10) caps judge tokens per window.
///   `max_concurrency` 1–1024 (default 4), `max_calls_per_window`
///   1–100,000,000 (default 5000).
/// - `scorers` (required, may be empty): `name` unique, 1–128 characters of `[a-z0-9_/-]`;
///   `kind` one of ``ScorerKind``; LLM kinds need a `judge` (the offline judge stands in for
///   one, except for kind `guidelines`, which needs judge kind `openai`: the offline judge
///   cannot judge free-text guidelines, so that combination is an error at `scorers[i].kind`);
///   `guidelines` only on kind `guidelines`, where it is a non-empty list of distinct,
///   non-empty strings; `filter` must parse as a ``TraceFilter``; `max_per_window` ≥ 1;
///   `params` an object (default `{}`).
/// - `paused` (default false): a boolean.
///
/// `json()` writes the canonical document (every field explicit, fixed key order) and
/// `parse(json())` equals the original for any config `parse` accepted.
public struct MonitorConfig: Sendable, Equatable {
    public var name: String
    /// The PostgreSQL schema results are written to.
    public var destinationSchema: String
    /// The rate for scorers that set none.
    public var sampleRate: Double
    /// Window width and allowed lateness.
    public var window: WindowSpec
    /// The judge for LLM scorers; nil when only code scorers are configured.
    public var judge: JudgeConfig?
    public var scorers: [ScorerConfig]
    /// When true, traces are still stored but nothing is scored.
    public var paused: Bool

    public init(
        name: String,
        destinationSchema: String,
        sampleRate: Double = 1.0,
        window: WindowSpec,
        judge: JudgeConfig?,
        scorers: [ScorerConfig],
        paused: Bool = false
    ) {
        self.name = name
        self.destinationSchema = destinationSchema
        self.sampleRate = sampleRate
        self.window = window
        self.judge = judge
        self.scorers = scorers
        self.paused = paused
    }

    /// The default window when the document sets none.
    public static let defaultWindowNanos: Int64 = WindowSpec.defaultWidthNanos
    /// The default allowed lateness when the document sets none: 2 minutes.
    public static let defaultAllowedLatenessNanos: Int64 = 2 * 60 * 1_000_000_000

    /// The scorer called `name`, if any.
    public func scorer(named name: String) -> ScorerConfig? {
        scorers.first { $0.name == name }
    }

    /// The config `assay demo` starts with: 10 s windows, 2 s lateness, the offline judge and
    /// code scorers at rates 1.0, 0.4 and 0.2, one of them filtered.
    public static let demoDefault = MonitorConfig(
        name: "demo",
        destinationSchema: "assay",
        sampleRate: 1.0,
        window: WindowSpec(uncheckedWidthNanos: 10_000_000_000, allowedLatenessNanos: 2_000_000_000),
        judge: JudgeConfig(kind: .offline),
        scorers: [
            ScorerConfig(name: "no_error", kind: .noError),
            ScorerConfig(name: "fast_enough", kind: .latency, params: ["max_ms": 5000]),
            ScorerConfig(name: "no_pii", kind: .pii, sampleRate: 0.4, filter: try? TraceFilter.parse("tags.env = 'prod'")),
            ScorerConfig(name: "token_budget", kind: .tokenUsage, sampleRate: 0.4, filter: try? TraceFilter.parse("state = 'OK'"), params: ["max_total_tokens": 1200]),
            ScorerConfig(name: "output_length", kind: .outputLength, sampleRate: 0.2, params: ["min_chars": 20, "max_chars": 400]),
            ScorerConfig(name: "relevance_to_query", kind: .relevanceToQuery),
            ScorerConfig(name: "retrieval_groundedness", kind: .retrievalGroundedness, sampleRate: 0.4),
            ScorerConfig(name: "retrieval_relevance", kind: .retrievalRelevance, sampleRate: 0.4),
            ScorerConfig(name: "safety", kind: .safety),
        ],
        paused: false
    )

    // MARK: Parsing

    /// Parses and validates a monitor document (UTF-8 JSON).
    public static func parse(_ bytes: [UInt8]) throws(MonitorConfigError) -> MonitorConfig {
        let document: JSONValue
        do {
            document = try JSONParser().parse(bytes)
        } catch {
            throw MonitorConfigError(issues: [.init(path: "", message: "not valid JSON: \(error)")])
        }
        return try parse(document)
    }

    /// Validates an already parsed monitor document.
    public static func parse(_ document: JSONValue) throws(MonitorConfigError) -> MonitorConfig {
        var validator = MonitorConfigValidator()
        let config = validator.monitor(document)
        guard validator.issues.isEmpty, let config else {
            throw MonitorConfigError(issues: validator.issues)
        }
        return config
    }

    // MARK: Serialisation

    /// The canonical document: every field written, keys in the order of the type's example,
    /// durations in the largest exact unit (`60s` is written `1m`).
    ///
    /// A ``WindowSpec`` built in code with a sub-second part cannot be expressed in the document
    /// format; its durations are written rounded down to the second.
    public func json() -> JSONValue {
        var object = JSONObject()
        object["name"] = .string(name)
        object["destination"] = .object(["schema": .string(destinationSchema)])
        object["sample_rate"] = Self.rateJSON(sampleRate)
        object["window"] = .string(Self.durationText(nanos: window.widthNanos))
        object["allowed_lateness"] = .string(Self.durationText(nanos: window.allowedLatenessNanos))
        if let judge { object["judge"] = judge.json() }
        object["scorers"] = .array(scorers.map { $0.json() })
        object["paused"] = .bool(paused)
        return .object(object)
    }

    static func rateJSON(_ rate: Double) -> JSONValue {
        rate.isFinite ? .number(rate.description) : .null
    }

    /// `nanos` as `Nh`, `Nm` or `Ns`, in the largest unit that divides it exactly.
    static func durationText(nanos: Int64) -> String {
        let seconds = max(0, nanos / 1_000_000_000)
        if seconds > 0, seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds > 0, seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    /// The nanoseconds of a duration `<digits>s|m|h`, or nil when `text` is not one.
    /// At most 9 digits, so the result cannot overflow.
    static func durationNanos(_ text: String) -> Int64? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8.count <= 10, let unit = utf8.last else { return nil }
        let digits = utf8.dropLast()
        guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        let value = digits.reduce(Int64(0)) { $0 * 10 + Int64($1 - UInt8(ascii: "0")) }
        switch unit {
        case UInt8(ascii: "s"): return value * 1_000_000_000
        case UInt8(ascii: "m"): return value * 60 * 1_000_000_000
        case UInt8(ascii: "h"): return value * 3600 * 1_000_000_000
        default: return nil
        }
    }

    /// Why a `guidelines` scorer is refused when `judge.kind` is `offline`.
    public static let offlineGuidelinesMessage =
        "guidelines needs an LLM judge; the offline judge cannot judge free-text guidelines — configure judge.kind openai"

    /// The longest accepted window or lateness: 168 hours.
    public static let maximumDurationNanos: Int64 = 168 * 3600 * 1_000_000_000
}

/// Everything wrong with a monitor document: one issue per problem, in document order.
///
/// `description` lists them one per line, as `scorers[2].sample_rate: must be between 0 and 1`.
public struct MonitorConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One problem: where (`scorers[2].filter`, empty for the whole document) and what.
    public struct Issue: Sendable, Equatable, CustomStringConvertible {
        public var path: String
        public var message: String

        public init(path: String, message: String) {
            self.path = path
            self.message = message
        }

        public var description: String { path.isEmpty ? message : "\(path): \(message)" }
    }

    public var issues: [Issue]

    public init(issues: [Issue]) {
        self.issues = issues
    }

    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// The LLM judge configuration.
public struct JudgeConfig: Sendable, Equatable {
    /// Which judge implementation.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// A deterministic stand-in that needs no network (demo, tests); it says so in `source_id`.
        case offline
        /// An OpenAI-compatible chat-completions endpoint.
        case openai
    }

    public static let defaultMaxConcurrency = 4
    public static let defaultMaxCallsPerWindow = 5000

    public var kind: Kind
    /// Base URL of the OpenAI-compatible API (kind `openai` only).
    public var baseURL: String?
    /// Model name (kind `openai` only).
    public var model: String?
    /// Name of the environment variable holding the API key (kind `openai` only).
    public var apiKeyEnv: String?
    /// Most judge calls in flight at once.
    public var maxConcurrency: Int
    /// Most judge calls per window (the budget); traces past it are not judged.
    public var maxCallsPerWindow: Int
    /// Most judge tokens (input + output) per window; nil for no token budget.
    public var maxTokensPerWindow: Int?
    /// How long one HTTP attempt may take (kind `openai`); nil for the judge's default (60 s).
    public var requestTimeoutSeconds: Int?

    public init(
        kind: Kind,
        baseURL: String? = nil,
        model: String? = nil,
        apiKeyEnv: String? = nil,
        maxConcurrency: Int = JudgeConfig.defaultMaxConcurrency,
        maxCallsPerWindow: Int = JudgeConfig.defaultMaxCallsPerWindow,
        maxTokensPerWindow: Int? = nil,
        requestTimeoutSeconds: Int? = nil
    ) {
        self.maxTokensPerWindow = maxTokensPerWindow
        self.requestTimeoutSeconds = requestTimeoutSeconds
        self.kind = kind
        self.baseURL = baseURL
        self.model = model
        self.apiKeyEnv = apiKeyEnv
        self.maxConcurrency = maxConcurrency
        self.maxCallsPerWindow = maxCallsPerWindow
    }

    func json() -> JSONValue {
        var object = JSONObject()
        object["kind"] = .string(kind.rawValue)
        if let baseURL { object["base_url"] = .string(baseURL) }
        if let model { object["model"] = .string(model) }
        if let apiKeyEnv { object["api_key_env"] = .string(apiKeyEnv) }
        object["max_concurrency"] = JSONValue(maxConcurrency)
        object["max_calls_per_window"] = JSONValue(maxCallsPerWindow)
        if let maxTokensPerWindow { object["max_tokens_per_window"] = JSONValue(maxTokensPerWindow) }
        if let requestTimeoutSeconds { object["request_timeout_seconds"] = JSONValue(requestTimeoutSeconds) }
        return .object(object)
    }
}

/// The scorers a monitor can run: MLflow's predefined LLM scorers, `guidelines`, and code scorers.
public enum ScorerKind: String, Sendable, Equatable, CaseIterable {
    case relevanceToQuery = "relevance_to_query"
    case retrievalGroundedness = "retrieval_groundedness"
    case retrievalRelevance = "retrieval_relevance"
    case safety
    case guidelines
    case latency
    case noError = "no_error"
    case pii
    case regex
    case contains
    case notContains = "not_contains"
    case outputLength = "output_length"
    case validJSON = "valid_json"
    case tokenUsage = "token_usage"

    /// Whether the scorer asks an LLM judge (and so needs `judge` in the config).
    public var usesJudge: Bool {
        switch self {
        case .relevanceToQuery, .retrievalGroundedness, .retrievalRelevance, .safety, .guidelines:
            return true
        case .latency, .noError, .pii, .regex, .contains, .notContains, .outputLength, .validJSON, .tokenUsage:
            return false
        }
    }

    /// Assessment names a scorer of this kind called `name` produces besides `name` itself
    /// (`retrieval_relevance` also writes `<name>/precision`).
    public func derivedAssessmentNames(scorerName name: String) -> [String] {
        self == .retrievalRelevance ? ["\(name)/precision"] : []
    }
}

/// One scorer of a monitor.
public struct ScorerConfig: Sendable, Equatable {
    /// The assessment name (`assessment_name`).
    public var name: String
    public var kind: ScorerKind
    /// This scorer's rate; nil means the monitor's `sample_rate`.
    public var sampleRate: Double?
    /// Which traces the scorer considers; nil means all. Evaluated on sampled traces only (sampling needs only ρ, so it comes first).
    public var filter: TraceFilter?
    /// At most this many traces per window (the lowest ρ are kept); nil means no cap.
    public var maxPerWindow: Int?
    /// Scorer-specific settings, validated by the scorer.
    public var params: JSONObject
    /// The guideline texts (kind `guidelines` only).
    public var guidelines: [String]

    public init(
        name: String,
        kind: ScorerKind,
        sampleRate: Double? = nil,
        filter: TraceFilter? = nil,
        maxPerWindow: Int? = nil,
        params: JSONObject = JSONObject(),
        guidelines: [String] = []
    ) {
        self.name = name
        self.kind = kind
        self.sampleRate = sampleRate
        self.filter = filter
        self.maxPerWindow = maxPerWindow
        self.params = params
        self.guidelines = guidelines
    }

    /// The rate this scorer samples at: its own, else the monitor's `global` rate.
    public func effectiveRate(global: Double) -> Double {
        sampleRate ?? global
    }

    func json() -> JSONValue {
        var object = JSONObject()
        object["name"] = .string(name)
        object["kind"] = .string(kind.rawValue)
        if let sampleRate { object["sample_rate"] = MonitorConfig.rateJSON(sampleRate) }
        if let filter { object["filter"] = .string(filter.text) }
        if let maxPerWindow { object["max_per_window"] = JSONValue(maxPerWindow) }
        object["params"] = .object(params)
        if kind == .guidelines || !guidelines.isEmpty {
            object["guidelines"] = .array(guidelines.map { .string($0) })
        }
        return .object(object)
    }
}

// MARK: - Validation

/// Walks a monitor document, collecting every issue instead of stopping at the first.
private struct MonitorConfigValidator {
    var issues: [MonitorConfigError.Issue] = []

    private mutating func report(_ path: String, _ message: String) {
        issues.append(.init(path: path, message: message))
    }

    private static func join(_ base: String, _ key: String) -> String {
        base.isEmpty ? key : "\(base).\(key)"
    }

    mutating func monitor(_ document: JSONValue) -> MonitorConfig? {
        guard let root = object(document, at: "", allowed: [
            "name", "destination", "sample_rate", "window", "allowed_lateness", "judge", "scorers", "paused",
        ]) else { return nil }

        let name = string(root, "name", at: "", required: true).flatMap { value -> String? in
            guard Self.isMonitorName(value) else {
                report("name", "must be 1–128 characters of letters, digits, '_', '.' or '-', starting with a letter or digit")
                return nil
            }
            return value
        }

        var schema: String?
        if let destinationValue = root["destination"] {
            if let destination = object(destinationValue, at: "destination", allowed: ["schema"]) {
                schema = string(destination, "schema", at: "destination", required: true).flatMap { value -> String? in
                    guard Self.isSchemaName(value) else {
                        report("destination.schema", "must match ^[a-z_][a-z0-9_]{0,62}$ and not be a reserved name (pg_…, information_schema)")
                        return nil
                    }
                    return value
                }
            }
        } else {
            report("destination", "is required")
        }

        let sampleRate = rate(root, "sample_rate", at: "") ?? 1.0
        let width = duration(root, "window", at: "", minimumNanos: WindowSpec.minimumWidthNanos, minimumText: "1s")
        let lateness = duration(root, "allowed_lateness", at: "", minimumNanos: 0, minimumText: "0s")
        let window = WindowSpec(
            uncheckedWidthNanos: width ?? MonitorConfig.defaultWindowNanos,
            allowedLatenessNanos: lateness ?? MonitorConfig.defaultAllowedLatenessNanos
        )

        var judge: JudgeConfig?
        if let judgeValue = root["judge"] {
            judge = self.judge(judgeValue)
        }

        var scorers: [ScorerConfig] = []
        if let scorersValue = root["scorers"] {
            if case .array(let elements) = scorersValue {
                var namesSeen: [String: String] = [:]
                for (index, element) in elements.enumerated() {
                    let path = "scorers[\(index)]"
                    guard let scorer = scorer(element, at: path, hasJudge: root["judge"] != nil, judgeKind: judge?.kind) else { continue }
                    var names = [scorer.name] + scorer.kind.derivedAssessmentNames(scorerName: scorer.name)
                    names = Array(Set(names))
                    for produced in names.sorted() {
                        if let other = namesSeen[produced] {
                            report(Self.join(path, "name"), "assessment name '\(produced)' is already used by \(other)")
                        } else {
                            namesSeen[produced] = path
                        }
                    }
                    scorers.append(scorer)
                }
            } else {
                report("scorers", "must be an array")
            }
        } else {
            report("scorers", "is required")
        }

        let paused = bool(root, "paused", at: "") ?? false

        guard let name, let schema, issues.isEmpty else { return nil }
        return MonitorConfig(
            name: name, destinationSchema: schema, sampleRate: sampleRate, window: window,
            judge: judge, scorers: scorers, paused: paused
        )
    }

    private mutating func judge(_ value: JSONValue) -> JudgeConfig? {
        let path = "judge"
        guard let object = object(value, at: path, allowed: [
            "kind", "base_url", "model", "api_key_env", "max_concurrency", "max_calls_per_window", "max_tokens_per_window",
            "request_timeout_seconds",
        ]) else { return nil }
        var kind: JudgeConfig.Kind?
        if let text = string(object, "kind", at: path, required: true) {
            kind = JudgeConfig.Kind(rawValue: text)
            if kind == nil { report("judge.kind", "must be \"offline\" or \"openai\"") }
        }
        // The endpoint fields (in a fixed order), then the limits.
        let endpointFields = ["base_url", "model", "api_key_env"]
        var endpoint: [String: String] = [:]
        for key in endpointFields {
            let fieldPath = Self.join(path, key)
            guard object[key] != nil else {
                if kind == .openai { report(fieldPath, "is required for judge kind openai") }
                continue
            }
            if kind == .offline {
                report(fieldPath, "applies only to judge kind openai")
                continue
            }
            guard let text = string(object, key, at: path, required: false) else { continue }
            switch key {
            case "base_url":
                guard Self.isHTTPURL(text) else {
                    report(fieldPath, "must be an http:// or https:// URL with a host")
                    continue
                }
            case "model":
                guard !text.isEmpty, text.utf8.count <= 256 else {
                    report(fieldPath, "must be 1–256 characters")
                    continue
                }
            default:
                // Never echo this value: it may be a key pasted by mistake.
                if Self.looksLikeSecret(text) {
                    report(fieldPath, "must be the NAME of an environment variable holding the API key (such as OPENAI_API_KEY), not the key itself; the value was not logged")
                    continue
                }
                guard Self.isEnvironmentVariableName(text) else {
                    report(fieldPath, "must be an environment variable name such as OPENAI_API_KEY (letters, digits, '_'; not starting with a digit)")
                    continue
                }
            }
            endpoint[key] = text
        }
        let maxConcurrency = integer(object, "max_concurrency", at: path, range: 1...1024)
        let maxCalls = integer(object, "max_calls_per_window", at: path, range: 1...100_000_000)
        let maxTokens = integer(object, "max_tokens_per_window", at: path, range: 1...10_000_000_000)
        let requestTimeout = integer(object, "request_timeout_seconds", at: path, range: 1...600)
        let baseURL = endpoint["base_url"]
        let model = endpoint["model"]
        let apiKeyEnv = endpoint["api_key_env"]
        guard let kind else { return nil }
        return JudgeConfig(
            kind: kind, baseURL: baseURL, model: model, apiKeyEnv: apiKeyEnv,
            maxConcurrency: maxConcurrency ?? JudgeConfig.defaultMaxConcurrency,
            maxCallsPerWindow: maxCalls ?? JudgeConfig.defaultMaxCallsPerWindow,
            maxTokensPerWindow: maxTokens,
            requestTimeoutSeconds: requestTimeout
        )
    }

    /// One scorer; `judgeKind` is the monitor's judge kind when its `judge` is valid.
    private mutating func scorer(_ value: JSONValue, at path: String, hasJudge: Bool, judgeKind: JudgeConfig.Kind?) -> ScorerConfig? {
        guard let object = object(value, at: path, allowed: [
            "name", "kind", "sample_rate", "filter", "max_per_window", "params", "guidelines",
        ]) else { return nil }
        let issuesBefore = issues.count

        let name = string(object, "name", at: path, required: true)
        if let name, !Self.isScorerName(name) {
            report(Self.join(path, "name"), "must be 1–128 characters of a-z, 0-9, '_', '-' or '/'")
        }
        var kind: ScorerKind?
        if let text = string(object, "kind", at: path, required: true) {
            kind = ScorerKind(rawValue: text)
            if kind == nil {
                let kinds = ScorerKind.allCases.map(\.rawValue).joined(separator: ", ")
                report(Self.join(path, "kind"), "unknown scorer kind '\(text)' (expected one of \(kinds))")
            }
        }
        if let kind, kind.usesJudge, !hasJudge {
            let example = kind == .guidelines
                ? #"(kind "openai": the offline judge cannot judge guidelines)"#
                : #"(e.g. {"kind": "offline"})"#
            report(Self.join(path, "kind"), "scorer kind \(kind.rawValue) needs an LLM judge: add \"judge\" to the monitor \(example)")
        }
        if kind == .guidelines, judgeKind == .offline {
            report(Self.join(path, "kind"), MonitorConfig.offlineGuidelinesMessage)
        }
        let sampleRate = rate(object, "sample_rate", at: path)

        var filter: TraceFilter?
        if let text = string(object, "filter", at: path, required: false) {
            do {
                filter = try TraceFilter.parse(text)
            } catch {
                report(Self.join(path, "filter"), error.description)
            }
        }
        let maxPerWindow = integer(object, "max_per_window", at: path, range: 1...100_000_000)

        var params = JSONObject()
        if let paramsValue = object["params"] {
            if case .object(let paramsObject) = paramsValue {
                params = paramsObject
            } else {
                report(Self.join(path, "params"), "must be an object")
            }
        }

        var guidelines: [String] = []
        let guidelinesPath = Self.join(path, "guidelines")
        if let guidelinesValue = object["guidelines"] {
            if let kind, kind != .guidelines {
                report(guidelinesPath, "applies only to scorer kind guidelines")
            } else if case .array(let elements) = guidelinesValue {
                if elements.isEmpty { report(guidelinesPath, "must list at least one guideline") }
                var seen: Set<String> = []
                for (index, element) in elements.enumerated() {
                    let elementPath = "\(guidelinesPath)[\(index)]"
                    guard case .string(let text) = element else {
                        report(elementPath, "must be a string")
                        continue
                    }
                    if text.allSatisfy(\.isWhitespace) {
                        report(elementPath, "must not be empty")
                    } else if !seen.insert(text).inserted {
                        report(elementPath, "repeats an earlier guideline")
                    }
                    guidelines.append(text)
                }
            } else {
                report(guidelinesPath, "must be an array of strings")
            }
        } else if kind == .guidelines {
            report(guidelinesPath, "is required for scorer kind guidelines (a non-empty list of guideline texts)")
        }

        guard issues.count == issuesBefore, let name, let kind else { return nil }
        return ScorerConfig(
            name: name, kind: kind, sampleRate: sampleRate, filter: filter, maxPerWindow: maxPerWindow,
            params: params, guidelines: guidelines
        )
    }

    // MARK: Field readers (each reports its own problems and returns nil on any)

    /// `value` as an object whose keys are all in `allowed` and unique; reports otherwise.
    private mutating func object(_ value: JSONValue, at path: String, allowed: Set<String>) -> JSONObject? {
        guard case .object(let object) = value else {
            report(path, "must be an object")
            return nil
        }
        var seen: Set<String> = []
        for key in object.keys {
            if !allowed.contains(key) {
                report(Self.join(path, key), "unknown field")
            } else if !seen.insert(key).inserted {
                report(Self.join(path, key), "appears more than once")
            }
        }
        return object
    }

    private mutating func string(_ object: JSONObject, _ key: String, at path: String, required: Bool) -> String? {
        guard let value = object[key] else {
            if required { report(Self.join(path, key), "is required") }
            return nil
        }
        guard case .string(let text) = value else {
            report(Self.join(path, key), "must be a string")
            return nil
        }
        return text
    }

    private mutating func rate(_ object: JSONObject, _ key: String, at path: String) -> Double? {
        guard let value = object[key] else { return nil }
        guard let rate = value.doubleValue else {
            report(Self.join(path, key), "must be a number between 0 and 1")
            return nil
        }
        guard rate >= 0, rate <= 1 else {
            report(Self.join(path, key), "must be between 0 and 1")
            return nil
        }
        return rate
    }

    private mutating func integer(_ object: JSONObject, _ key: String, at path: String, range: ClosedRange<Int>) -> Int? {
        guard let value = object[key] else { return nil }
        guard case .number = value else {
            report(Self.join(path, key), "must be an integer")
            return nil
        }
        guard let integer = value.int64Value else {
            report(Self.join(path, key), "must be an integer between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        guard integer >= Int64(range.lowerBound), integer <= Int64(range.upperBound) else {
            report(Self.join(path, key), "must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return Int(integer)
    }

    private mutating func bool(_ object: JSONObject, _ key: String, at path: String) -> Bool? {
        guard let value = object[key] else { return nil }
        guard case .bool(let flag) = value else {
            report(Self.join(path, key), "must be true or false")
            return nil
        }
        return flag
    }

    private mutating func duration(
        _ object: JSONObject, _ key: String, at path: String, minimumNanos: Int64, minimumText: String
    ) -> Int64? {
        guard let text = string(object, key, at: path, required: false) else { return nil }
        guard let nanos = MonitorConfig.durationNanos(text) else {
            report(Self.join(path, key), "must be a duration: a whole number followed by s, m or h (such as \"30s\", \"15m\", \"1h\")")
            return nil
        }
        guard nanos >= minimumNanos else {
            report(Self.join(path, key), "must be at least \(minimumText)")
            return nil
        }
        guard nanos <= MonitorConfig.maximumDurationNanos else {
            report(Self.join(path, key), "must be at most 168h")
            return nil
        }
        return nanos
    }

    // MARK: Lexical rules

    private static func isASCIILowerOrDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func isASCIILetterOrDigit(_ byte: UInt8) -> Bool {
        isASCIILowerOrDigit(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    /// `^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`
    static func isMonitorName(_ text: String) -> Bool {
        let utf8 = Array(text.utf8)
        guard let first = utf8.first, utf8.count <= 128, isASCIILetterOrDigit(first) else { return false }
        return utf8.allSatisfy { isASCIILetterOrDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// `^[a-z0-9_\-/]+$`, at most 128 characters.
    static func isScorerName(_ text: String) -> Bool {
        let utf8 = Array(text.utf8)
        guard !utf8.isEmpty, utf8.count <= 128 else { return false }
        return utf8.allSatisfy { isASCIILowerOrDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "/") }
    }

    /// `^[a-z_][a-z0-9_]{0,62}$`, not `pg_…` and not `information_schema`.
    static func isSchemaName(_ text: String) -> Bool {
        let utf8 = Array(text.utf8)
        guard let first = utf8.first, utf8.count <= 63 else { return false }
        guard (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) || first == UInt8(ascii: "_") else { return false }
        guard utf8.allSatisfy({ isASCIILowerOrDigit($0) || $0 == UInt8(ascii: "_") }) else { return false }
        return !text.hasPrefix("pg_") && text != "information_schema"
    }

    /// `^[A-Za-z_][A-Za-z0-9_]{0,127}$`
    static func isEnvironmentVariableName(_ text: String) -> Bool {
        let utf8 = Array(text.utf8)
        guard let first = utf8.first, utf8.count <= 128 else { return false }
        guard isASCIILetterOrDigit(first) || first == UInt8(ascii: "_"),
              !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return utf8.allSatisfy { isASCIILetterOrDigit($0) || $0 == UInt8(ascii: "_") }
    }

    /// Whether `text` looks like an API key or token rather than a variable name: a known key
    /// prefix (`sk-`, `sk_`, `Bearer `, …), or a long run mixing upper case, lower case and digits.
    static func looksLikeSecret(_ text: String) -> Bool {
        let lower = text.lowercased()
        for prefix in ["sk-", "sk_", "bearer ", "ghp_", "github_pat_", "xoxb-", "xoxp-", "hf_", "aiza"] where lower.hasPrefix(prefix) {
            return true
        }
        let utf8 = Array(text.utf8)
        let hasLower = utf8.contains { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }
        let hasUpper = utf8.contains { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
        let hasDigit = utf8.contains { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        return utf8.count >= 24 && hasLower && hasUpper && hasDigit
    }

    /// `http://` or `https://` followed by a non-empty host, with no whitespace or control characters.
    static func isHTTPURL(_ text: String) -> Bool {
        guard text.utf8.count <= 2048, !text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else {
            return false
        }
        let rest: Substring
        if text.hasPrefix("https://") {
            rest = text.dropFirst(8)
        } else if text.hasPrefix("http://") {
            rest = text.dropFirst(7)
        } else {
            return false
        }
        let host = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return !host.isEmpty
    }
}
