// Builds scorers from the monitor config, validating each scorer's `params`.

import AssayCore

/// Everything wrong with the scorer settings of a config: one issue per problem, each with the
/// JSON path of the offending field.
///
/// `description` lists them one per line: `scorers[2].params.max_ms: must be a positive number`.
public struct ScorerConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One problem: where (`scorers[2].params.max_ms`) and what.
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

/// Turns ``ScorerConfig``s into ``Scorer``s.
///
/// ## Code scorer parameters (`params`; unknown keys, repeated keys and wrong types are errors)
/// | kind | params |
/// |---|---|
/// | `latency` | `max_ms` (required, number > 0) |
/// | `no_error` | `check_spans` (bool, default `true`) |
/// | `pii` | `kinds` (non-empty list of distinct `email`, `phone`, `credit_card`, `iban`; default all), `field` (`"request"` or `"response"`, default `"response"`) |
/// | `regex` | `pattern` (required, 1–512 characters, compiles as a Swift `Regex`, no nested unbounded quantifiers such as `(a+)+`), `field` (default `"response"`), `must_match` (bool, default `true`) |
/// | `contains`, `not_contains` | `text` (required, 1–1024 characters), `field` (default `"response"`), `case_sensitive` (bool, default `false`) |
/// | `output_length` | `min_chars`, `max_chars` (integers ≥ 0; at least one; `min_chars` ≤ `max_chars`) |
/// | `valid_json` | `strip_code_fence` (bool, default `true`) |
/// | `token_usage` | `max_total_tokens` (optional integer ≥ 1) |
///
/// ## LLM scorers
/// `relevance_to_query`, `retrieval_groundedness`, `retrieval_relevance`, `safety` and
/// `guidelines` take no `params` (any key is an error); `guidelines` takes its texts from the
/// scorer's `guidelines` list. They need a judge: the one passed to
/// ``makeScorers(_:judge:)``, else an ``OfflineJudge`` when the config's `judge.kind` is
/// `offline`. An `openai` judge must be built by the caller (it does I/O) and passed in.
/// `guidelines` is refused with the offline judge, which cannot judge free text.
public enum ScorerFactory {
    /// The code scorer for `config`; `path` locates the scorer in the document (`scorers[2]`) and
    /// prefixes every issue's path.
    public static func makeCodeScorer(_ config: ScorerConfig, path: String) throws(ScorerConfigError) -> any Scorer {
        var reader = ParamReader(params: config.params, path: join(path, "params"))
        let scorer: (any Scorer)?
        switch config.kind {
        case .latency:
            reader.allow(["max_ms"])
            let maxMillis = reader.positiveNumber("max_ms", required: true)
            scorer = maxMillis.map { LatencyScorer(name: config.name, maxMillis: $0) }
        case .noError:
            reader.allow(["check_spans"])
            let checkSpans = reader.bool("check_spans", default: true)
            scorer = NoErrorScorer(name: config.name, checkSpans: checkSpans)
        case .pii:
            reader.allow(["kinds", "field"])
            let kinds = reader.piiKinds("kinds")
            let field = reader.field("field")
            scorer = kinds.map { PIIScorer(name: config.name, kinds: $0, field: field) }
        case .regex:
            reader.allow(["pattern", "field", "must_match"])
            let pattern = reader.pattern("pattern")
            let field = reader.field("field")
            let mustMatch = reader.bool("must_match", default: true)
            scorer = pattern.map { RegexScorer(name: config.name, pattern: $0, field: field, mustMatch: mustMatch) }
        case .contains, .notContains:
            reader.allow(["text", "field", "case_sensitive"])
            let text = reader.string("text", required: true, maxLength: 1024)
            let field = reader.field("field")
            let caseSensitive = reader.bool("case_sensitive", default: false)
            scorer = text.map {
                ContainsScorer(name: config.name, text: $0, field: field, caseSensitive: caseSensitive, negated: config.kind == .notContains)
            }
        case .outputLength:
            reader.allow(["min_chars", "max_chars"])
            let minChars = reader.integer("min_chars", minimum: 0)
            let maxChars = reader.integer("max_chars", minimum: 0)
            let given = config.params["min_chars"] != nil || config.params["max_chars"] != nil
            if !given {
                reader.report("", "needs min_chars, max_chars or both")
            } else if let minChars, let maxChars, minChars > maxChars {
                reader.report("min_chars", "must not exceed max_chars (\(minChars) > \(maxChars))")
            }
            scorer = given ? OutputLengthScorer(name: config.name, minChars: minChars.map(Int.init), maxChars: maxChars.map(Int.init)) : nil
        case .validJSON:
            reader.allow(["strip_code_fence"])
            let strip = reader.bool("strip_code_fence", default: true)
            scorer = ValidJSONScorer(name: config.name, stripCodeFence: strip)
        case .tokenUsage:
            reader.allow(["max_total_tokens"])
            let maximum = reader.integer("max_total_tokens", minimum: 1)
            scorer = TokenUsageScorer(name: config.name, maxTotalTokens: maximum)
        case .relevanceToQuery, .retrievalGroundedness, .retrievalRelevance, .safety, .guidelines:
            throw ScorerConfigError(issues: [.init(
                path: join(path, "kind"),
                message: "scorer kind \(config.kind.rawValue) needs an LLM judge; build it with makeScorer(_:path:judge:) or makeScorers(_:judge:)"
            )])
        }
        guard reader.issues.isEmpty, let scorer else {
            throw ScorerConfigError(issues: reader.issues)
        }
        return scorer
    }

    /// The scorer for `config`, code or LLM; LLM kinds ask `judge`. `path` locates the scorer in
    /// the document (`scorers[2]`) and prefixes every issue's path.
    public static func makeScorer(_ config: ScorerConfig, path: String, judge: any Judge) throws(ScorerConfigError) -> any Scorer {
        guard config.kind.usesJudge else { return try makeCodeScorer(config, path: path) }
        var reader = ParamReader(params: config.params, path: join(path, "params"))
        reader.allow([])
        var issues = reader.issues
        if config.kind == .guidelines {
            if judge is OfflineJudge {
                issues.append(.init(path: join(path, "kind"), message: offlineGuidelinesMessage))
            }
            if config.guidelines.isEmpty {
                issues.append(.init(path: join(path, "guidelines"), message: "is required for scorer kind guidelines (a non-empty list of guideline texts)"))
            }
        }
        guard issues.isEmpty else { throw ScorerConfigError(issues: issues) }
        switch config.kind {
        case .relevanceToQuery: return RelevanceToQueryScorer(name: config.name, judge: judge)
        case .retrievalGroundedness: return RetrievalGroundednessScorer(name: config.name, judge: judge)
        case .retrievalRelevance: return RetrievalRelevanceScorer(name: config.name, judge: judge)
        case .safety: return SafetyScorer(name: config.name, judge: judge)
        case .guidelines: return GuidelinesScorer(name: config.name, guidelines: config.guidelines, judge: judge)
        case .latency, .noError, .pii, .regex, .contains, .notContains, .outputLength, .validJSON, .tokenUsage:
            return try makeCodeScorer(config, path: path)
        }
    }

    /// Why `guidelines` cannot run on the offline judge (the same words as the monitor config's rule).
    public static var offlineGuidelinesMessage: String { MonitorConfig.offlineGuidelinesMessage }

    /// Every scorer of `config`, in order; the error lists the issues of all scorers
    /// (paths `scorers[<index>]…`).
    ///
    /// LLM scorers ask `judge`; when it is nil they ask an ``OfflineJudge`` if `config.judge` is
    /// `offline`. Without a usable judge, the issue is at `judge` (an `openai` judge configured
    /// but none passed) or at each LLM scorer's `kind` (no judge configured at all).
    public static func makeScorers(_ config: MonitorConfig, judge: (any Judge)?) throws(ScorerConfigError) -> [any Scorer] {
        var scorers: [any Scorer] = []
        var issues: [ScorerConfigError.Issue] = []
        let needsJudge = config.scorers.contains { $0.kind.usesJudge }
        var resolved = judge
        if resolved == nil, needsJudge {
            switch config.judge?.kind {
            case .offline?:
                resolved = OfflineJudge()
            case .openai?:
                issues.append(.init(path: "judge", message: "an openai judge is configured but none was provided (the caller must build the HTTP judge and pass it)"))
            case nil:
                break
            }
        }
        for (index, scorerConfig) in config.scorers.enumerated() {
            let path = "scorers[\(index)]"
            do {
                if scorerConfig.kind.usesJudge {
                    guard let resolved else {
                        if config.judge == nil {
                            issues.append(.init(path: join(path, "kind"), message: "scorer kind \(scorerConfig.kind.rawValue) needs an LLM judge, but the monitor configures none"))
                        }
                        continue
                    }
                    scorers.append(try makeScorer(scorerConfig, path: path, judge: resolved))
                } else {
                    scorers.append(try makeCodeScorer(scorerConfig, path: path))
                }
            } catch {
                issues.append(contentsOf: error.issues)
            }
        }
        guard issues.isEmpty else { throw ScorerConfigError(issues: issues) }
        return scorers
    }

    /// ``makeScorers(_:judge:)`` without a judge: code scorers, and LLM scorers on the offline
    /// judge when the config asks for it.
    public static func makeScorers(_ config: MonitorConfig) throws(ScorerConfigError) -> [any Scorer] {
        try makeScorers(config, judge: nil)
    }

    /// Checks every scorer setting of `config` as ``makeScorers(_:judge:)`` would, without
    /// needing the judge object: an `openai` judge is assumed to be available (its own settings
    /// are the monitor config's to check). For validating a document before storing it.
    public static func validate(_ config: MonitorConfig) throws(ScorerConfigError) {
        let standIn: (any Judge)? = config.judge?.kind == .openai ? ValidationStandInJudge() : nil
        _ = try makeScorers(config, judge: standIn)
    }

    static func join(_ path: String, _ key: String) -> String {
        if path.isEmpty { return key }
        if key.isEmpty { return path }
        return "\(path).\(key)"
    }
}

/// Stands in for an HTTP judge while validating; never asked.
private struct ValidationStandInJudge: Judge {
    var sourceID: String { "assay/validation" }

    func judge(_ request: JudgeRequest, context: ScoringContext) async -> Result<JudgeVerdict, JudgeFailure> {
        .failure(.failed(code: "JUDGE_UNAVAILABLE", message: "a validation stand-in cannot judge"))
    }
}

/// Reads and validates one scorer's `params`, collecting issues with their paths.
struct ParamReader {
    let params: JSONObject
    /// The path of `params` itself (`scorers[2].params`).
    let path: String
    private(set) var issues: [ScorerConfigError.Issue] = []

    init(params: JSONObject, path: String) {
        self.params = params
        self.path = path
    }

    mutating func report(_ key: String, _ message: String) {
        issues.append(.init(path: ScorerFactory.join(path, key), message: message))
    }

    /// Reports unknown and repeated keys.
    mutating func allow(_ keys: [String]) {
        var seen: Set<String> = []
        for key in params.keys {
            if !keys.contains(key) {
                let expected = keys.isEmpty ? "this scorer takes no parameters" : "expected \(keys.joined(separator: ", "))"
                report(key, "unknown parameter (\(expected))")
            } else if !seen.insert(key).inserted {
                report(key, "appears more than once")
            }
        }
    }

    mutating func bool(_ key: String, default defaultValue: Bool) -> Bool {
        guard let value = params[key] else { return defaultValue }
        guard case .bool(let flag) = value else {
            report(key, "must be true or false")
            return defaultValue
        }
        return flag
    }

    mutating func positiveNumber(_ key: String, required: Bool) -> Double? {
        guard let value = params[key] else {
            if required { report(key, "is required (a positive number)") }
            return nil
        }
        guard let number = value.doubleValue, number.isFinite, number > 0 else {
            report(key, "must be a positive number")
            return nil
        }
        return number
    }

    mutating func integer(_ key: String, minimum: Int64) -> Int64? {
        guard let value = params[key] else { return nil }
        let limit: Int64 = 1_000_000_000_000
        guard let number = value.int64Value, number >= minimum, number <= limit else {
            report(key, minimum == 0 ? "must be a non-negative integer" : "must be an integer ≥ \(minimum)")
            return nil
        }
        return number
    }

    mutating func string(_ key: String, required: Bool, maxLength: Int) -> String? {
        guard let value = params[key] else {
            if required { report(key, "is required (a non-empty string)") }
            return nil
        }
        guard case .string(let text) = value else {
            report(key, "must be a string")
            return nil
        }
        guard !text.isEmpty else {
            report(key, "must not be empty")
            return nil
        }
        guard text.count <= maxLength else {
            report(key, "must be at most \(maxLength) characters")
            return nil
        }
        return text
    }

    mutating func field(_ key: String) -> TextField {
        guard let value = params[key] else { return .response }
        guard case .string(let text) = value, let field = TextField(rawValue: text) else {
            report(key, "must be \"request\" or \"response\"")
            return .response
        }
        return field
    }

    mutating func piiKinds(_ key: String) -> Set<PIIKind>? {
        guard let value = params[key] else { return Set(PIIKind.allCases) }
        let expected = PIIKind.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard case .array(let elements) = value else {
            report(key, "must be a list of PII kinds (\(expected))")
            return nil
        }
        guard !elements.isEmpty else {
            report(key, "must list at least one kind (\(expected))")
            return nil
        }
        var kinds: Set<PIIKind> = []
        var valid = true
        for (index, element) in elements.enumerated() {
            guard case .string(let text) = element, let kind = PIIKind(rawValue: text) else {
                report("\(key)[\(index)]", "must be one of \(expected)")
                valid = false
                continue
            }
            if !kinds.insert(kind).inserted {
                report("\(key)[\(index)]", "repeats \"\(text)\"")
                valid = false
            }
        }
        return valid ? kinds : nil
    }

    mutating func pattern(_ key: String) -> String? {
        guard let pattern = string(key, required: true, maxLength: RegexScorer.maximumPatternLength) else { return nil }
        do {
            _ = try Regex(pattern)
        } catch {
            report(key, "does not compile as a regular expression: \(error)")
            return nil
        }
        if RegexSafety.hasNestedUnboundedQuantifier(pattern) {
            report(key, "nests an unbounded quantifier inside another (like (a+)+ or (a*)*), which can take exponential time; rewrite it")
            return nil
        }
        return pattern
    }
}

/// A conservative check against catastrophic backtracking.
enum RegexSafety {
    /// Whether a group that contains an unbounded quantifier (`*`, `+`, `{n,}`) is itself
    /// quantified without bound, as in `(a+)+`, `(?:x*y)*`, `(a{2,})+`. A heuristic: it does not
    /// catch every slow pattern (e.g. overlapping alternations), which is why the text a pattern
    /// runs on is also capped.
    static func hasNestedUnboundedQuantifier(_ pattern: String) -> Bool {
        let scalars = Array(pattern.unicodeScalars)
        // One entry per open group: whether it contains an unbounded quantifier so far.
        var stack: [Bool] = [false]
        var index = 0

        /// If a quantifier starts at `at`: its length and whether it is unbounded.
        func quantifier(at start: Int) -> (length: Int, unbounded: Bool)? {
            guard start < scalars.count else { return nil }
            switch scalars[start] {
            case "*", "+": return (1, true)
            case "?": return (1, false)
            case "{":
                var end = start + 1
                var sawComma = false
                var digitsAfterComma = 0
                var digitsBeforeComma = 0
                while end < scalars.count, scalars[end] != "}" {
                    let scalar = scalars[end]
                    if scalar == "," {
                        guard !sawComma else { return nil }
                        sawComma = true
                    } else if ("0"..."9").contains(scalar) {
                        if sawComma { digitsAfterComma += 1 } else { digitsBeforeComma += 1 }
                    } else {
                        return nil
                    }
                    end += 1
                }
                guard end < scalars.count, digitsBeforeComma > 0 || digitsAfterComma > 0 else { return nil }
                return (end - start + 1, sawComma && digitsAfterComma == 0)
            default:
                return nil
            }
        }

        /// Applies a quantifier following an atom; returns true when it nests unboundedness.
        func applyQuantifier(atomContainsUnbounded: Bool) -> Bool {
            guard let found = quantifier(at: index) else { return false }
            index += found.length
            // Lazy or possessive suffix.
            if index < scalars.count, scalars[index] == "?" || scalars[index] == "+" { index += 1 }
            if found.unbounded, atomContainsUnbounded { return true }
            if found.unbounded, let last = stack.indices.last { stack[last] = true }
            return false
        }

        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "\\":
                index += 2
                if applyQuantifier(atomContainsUnbounded: false) { return true }
            case "[":
                // Skip the character class (a leading `]` or `^]` is literal; `\` escapes).
                index += 1
                if index < scalars.count, scalars[index] == "^" { index += 1 }
                if index < scalars.count, scalars[index] == "]" { index += 1 }
                var depth = 1
                while index < scalars.count, depth > 0 {
                    if scalars[index] == "\\" {
                        index += 2
                        continue
                    }
                    if scalars[index] == "[" { depth += 1 }
                    if scalars[index] == "]" { depth -= 1 }
                    index += 1
                }
                if applyQuantifier(atomContainsUnbounded: false) { return true }
            case "(":
                stack.append(false)
                index += 1
            case ")":
                let inner = stack.count > 1 ? stack.removeLast() : false
                index += 1
                if applyQuantifier(atomContainsUnbounded: inner) { return true }
                if inner, let last = stack.indices.last { stack[last] = true }
            default:
                index += 1
                if applyQuantifier(atomContainsUnbounded: false) { return true }
            }
        }
        return false
    }
}
