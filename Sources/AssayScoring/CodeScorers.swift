// The code scorers (DESIGN §4): deterministic checks that need no LLM judge.
//
// Polarity: `yes` is always the passing answer, as in MLflow's judges (safety: yes = safe). So
// `pii` says yes when NO personal data was found, `no_error` says yes when nothing failed, and so
// on; each rationale spells out what its yes/no means.

import AssayCore

/// A deterministic scorer: one synchronous evaluation, one outcome, source type `CODE`, source id
/// `assay/code/<kind>@<version>`.
public protocol CodeScorer: Scorer {
    /// The check itself: one outcome named ``Scorer/name``, for the whole trace.
    func evaluate(_ trace: Trace) -> ScorerOutcome
}

extension CodeScorer {
    /// `"1"` unless a scorer overrides it.
    public var version: String { "1" }
    /// Always `CODE`.
    public var sourceType: AssessmentSourceType { .code }
    /// `assay/code/<kind>@<version>`, e.g. `assay/code/latency@1`.
    public var sourceID: String { "assay/code/\(kind.rawValue)@\(version)" }

    /// ``evaluate(_:)`` as the only outcome.
    public func score(_ trace: Trace, context: ScoringContext) async -> [ScorerOutcome] {
        [evaluate(trace)]
    }

    func outcome(_ result: ScorerResult, _ metadata: [String: String] = [:]) -> ScorerOutcome {
        ScorerOutcome(assessmentName: name, spanID: nil, result: result, extraMetadata: metadata)
    }
}

/// Which text of a trace a scorer reads (``TraceText/request(of:)`` or ``TraceText/response(of:)``).
public enum TextField: String, Sendable, Equatable, CaseIterable {
    case request
    case response

    /// The field's text, or the reason the scorer does not apply: the field is missing, or empty
    /// (only whitespace) when `allowEmpty` is false.
    func text(of trace: Trace, allowEmpty: Bool = false) -> Result<String, NotApplicable> {
        let value = self == .request ? TraceText.request(of: trace) : TraceText.response(of: trace)
        guard let value else {
            switch self {
            case .request:
                return .failure(NotApplicable(reason: "the trace has no request (the root span has no inputs and there is no request preview)"))
            case .response where trace.state == .error:
                return .failure(NotApplicable(reason: "the trace errored (state ERROR) before producing a response"))
            case .response:
                return .failure(NotApplicable(reason: "the trace has no response (the root span has no outputs and there is no response preview)"))
            }
        }
        if !allowEmpty, value.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) {
            return .failure(NotApplicable(reason: "the \(rawValue) is empty"))
        }
        return .success(value)
    }
}

/// A reason a scorer does not apply (internal plumbing for ``TextField``).
struct NotApplicable: Error {
    var reason: String
}

/// Number formatting for rationales and metadata: integral values without a fraction.
enum NumberText {
    static func format(_ value: Double) -> String {
        if value.isFinite, value == value.rounded(), abs(value) < 9.0e15 { return String(Int64(value)) }
        return value.description
    }
}

// MARK: - latency

/// `latency`: yes when the trace's execution took at most `max_ms` milliseconds.
///
/// The duration is the trace's `execution_duration` (else its root span's end − start). Not
/// applicable when the trace is still in progress or has no duration. Metadata: `duration_ms`, `max_ms`.
public struct LatencyScorer: CodeScorer {
    public let name: String
    /// The largest passing duration, in milliseconds (> 0).
    public let maxMillis: Double
    public var kind: ScorerKind { .latency }

    public init(name: String, maxMillis: Double) {
        self.name = name
        self.maxMillis = maxMillis
    }

    public func evaluate(_ trace: Trace) -> ScorerOutcome {
        if trace.state == .inProgress {
            return outcome(.notApplicable(reason: "the trace is still in progress, so its duration is not known yet"))
        }
        var duration = trace.executionDurationMillis.map(Double.init)
        if duration == nil, let root = trace.rootSpan, let end = root.endTimeNanos, end >= root.startTimeNanos {
            duration = Double(end - root.startTimeNanos) / 1_000_000
        }
        guard let duration else {
            return outcome(.notApplicable(reason: "the trace has no execution duration and its root span has no end time"))
        }
        let took = NumberText.format(duration)
        let limit = NumberText.format(maxMillis)
        let metadata = ["duration_ms": took, "max_ms": limit]
        if duration <= maxMillis {
            return outcome(.value(.yes, rationale: "The trace took \(took) ms, within the limit of \(limit) ms (yes = fast enough)."), metadata)
        }
        return outcome(.value(.no, rationale: "The trace took \(took) ms, over the limit of \(limit) ms (no = too slow)."), metadata)
    }
}

// MARK: - no_error

/// `no_error`: yes when the trace state is not `ERROR` and (with `checkSpans`) no span has status
/// `ERROR`.
///
/// A handled tool failure (tool span ERROR, trace OK) therefore fails when spans are checked and
/// passes when they are not. The rationale names failed spans with their exception type (from the
/// `exception` event's `exception.type`, else the status message's leading `Type:`), never the
/// error message, which may quote user data. Not applicable while the trace is in progress.
/// Metadata: `trace_state`, `error_spans`.
public struct NoErrorScorer: CodeScorer {
    public let name: String
    /// Whether span statuses count, besides the trace state.
    public let checkSpans: Bool
    public var kind: ScorerKind { .noError }

    /// At most this many failed spans are named in the rationale.
    static let namedSpanLimit = 5

    public init(name: String, checkSpans: Bool = true) {
        self.name = name
        self.checkSpans = checkSpans
    }

    public func evaluate(_ trace: Trace) -> ScorerOutcome {
        if trace.state == .inProgress {
            return outcome(.notApplicable(reason: "the trace is still in progress"))
        }
        let failed = checkSpans ? trace.spans.filter { $0.status.code == .error } : []
        var metadata = ["trace_state": trace.state.rawValue]
        if checkSpans { metadata["error_spans"] = String(failed.count) }
        let traceFailed = trace.state == .error
        guard traceFailed || !failed.isEmpty else {
            let spans = checkSpans ? " and no span has status ERROR" : " (span statuses not checked)"
            return outcome(.value(.yes, rationale: "The trace state is \(trace.state.rawValue)\(spans) (yes = no error)."), metadata)
        }
        var parts: [String] = []
        if traceFailed { parts.append("the trace state is ERROR") }
        if !failed.isEmpty {
            let named = failed.prefix(Self.namedSpanLimit).map { span -> String in
                Self.errorType(of: span).map { "\(span.name) (\($0))" } ?? span.name
            }
            var list = named.joined(separator: ", ")
            if failed.count > named.count { list += " and \(failed.count - named.count) more" }
            parts.append("\(failed.count) span\(failed.count == 1 ? " has" : "s have") status ERROR: \(list)")
        }
        let sentence = parts.joined(separator: "; ")
        let capitalised = sentence.prefix(1).uppercased() + sentence.dropFirst()
        return outcome(.value(.no, rationale: "\(capitalised) (no = an error occurred)."), metadata)
    }

    /// The exception type of a failed span: its `exception` event's `exception.type`, else the
    /// leading identifier of its status message when followed by `:` (`TimeoutError: …`).
    static func errorType(of span: Span) -> String? {
        for event in span.events where event.name == "exception" {
            if case .string(let type)? = event.attributes["exception.type"], isIdentifier(type) { return type }
        }
        if let colon = span.status.message.firstIndex(of: ":") {
            let head = String(span.status.message[..<colon])
            if isIdentifier(head) { return head }
        }
        return nil
    }

    private static func isIdentifier(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 100 else { return false }
        return text.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "."
        }
    }
}

// MARK: - pii

/// `pii`: yes when **no** personal data of the configured kinds is found in the field (default
/// the response) — yes = clean, like MLflow's safety (yes = safe).
///
/// Detection is ``PIIDetector``. The rationale and metadata name the kinds found and their counts,
/// never the matched text. Not applicable when the field is missing or empty.
/// Metadata: `pii_kinds_checked`, `pii_kinds_found` (comma-separated, possibly empty).
public struct PIIScorer: CodeScorer {
    public let name: String
    /// The kinds that count (others are still detected, so they are not misread as another kind).
    public let kinds: Set<PIIKind>
    public let field: TextField
    public var kind: ScorerKind { .pii }

    public init(name: String, kinds: Set<PIIKind> = Set(PIIKind.allCases), field: TextField = .response) {
        self.name = name
        self.kinds = kinds
        self.field = field
    }

    public func evaluate(_ trace: Trace) -> ScorerOutcome {
        let text: String
        switch field.text(of: trace) {
        case .success(let value): text = value
        case .failure(let notApplicable): return outcome(.notApplicable(reason: notApplicable.reason))
        }
        let counts = PIIDetector.counts(in: text).filter { kinds.contains($0.key) }
        let checked = kinds.sorted().map(\.rawValue).joined(separator: ", ")
        let found = counts.keys.sorted()
        let metadata = [
            "pii_kinds_checked": kinds.sorted().map(\.rawValue).joined(separator: ","),
            "pii_kinds_found": found.map(\.rawValue).joined(separator: ","),
        ]
        guard !found.isEmpty else {
            return outcome(.value(.yes, rationale: "No PII found in the \(field.rawValue) (checked: \(checked)). yes = no PII found."), metadata)
        }
        let summary = found.map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
        return outcome(.value(.no, rationale: "PII found in the \(field.rawValue): \(summary) (checked: \(checked)). no = PII present; the matched text is not repeated here."), metadata)
    }
}

// MARK: - regex

/// `regex`: with `mustMatch` (the default), yes when the pattern matches somewhere in the field;
/// with `mustMatch == false`, yes when it matches nowhere.
///
/// The pattern is a Swift `Regex` (ICU-like syntax; `(?i)` for case-insensitive), searched
/// unanchored (use `^…$` to match the whole text). It is compiled when the config is loaded
/// (``ScorerFactory``) and again for each trace (Swift's `Regex` is not `Sendable`, so it is not
/// stored). It runs on at most the first ``maximumTextBytes`` of the text; `truncated` in
/// metadata says when the text was cut. Neither the pattern nor the matched text appears in the
/// rationale. Not applicable when the field is missing or empty. Metadata: `matched`, `truncated`.
public struct RegexScorer: CodeScorer {
    public let name: String
    public let pattern: String
    public let field: TextField
    public let mustMatch: Bool
    public var kind: ScorerKind { .regex }

    /// Longest accepted pattern, in characters.
    public static let maximumPatternLength = 512
    /// Patterns run on at most this many UTF-8 bytes of text (32 KiB), cut at a character boundary.
    public static let maximumTextBytes = 32 * 1024

    public init(name: String, pattern: String, field: TextField = .response, mustMatch: Bool = true) {
        self.name = name
        self.pattern = pattern
        self.field = field
        self.mustMatch = mustMatch
    }

    public func evaluate(_ trace: Trace) -> ScorerOutcome {
        let text: String
        switch field.text(of: trace) {
        case .success(let value): text = value
        case .failure(let notApplicable): return outcome(.notApplicable(reason: notApplicable.reason))
        }
        let regex: Regex<AnyRegexOutput>
        do {
            regex = try Regex(pattern)
        } catch {
            return outcome(.error(code: "INVALID_PATTERN", message: "the pattern does not compile: \(error)"))
        }
        let (prefix, truncated) = Self.prefix(of: text, maxBytes: Self.maximumTextBytes)
        let matched = prefix.contains(regex)
        let metadata = ["matched": matched ? "true" : "false", "truncated": truncated ? "true" : "false"]
        let scope = truncated ? "the first \(Self.maximumTextBytes / 1024) KiB of the \(field.rawValue)" : "the \(field.rawValue)"
        let what = matched ? "The configured pattern matches \(scope)" : "The configured pattern does not match \(scope)"
        let passed = matched == mustMatch
        let rule = mustMatch ? "must match" : "must not match"
        return outcome(.value(passed ? .yes : .no, rationale: "\(what); it \(rule) (\(passed ? "yes" : "no"))."), metadata)
    }

    /// The longest prefix of `text` of at most `maxBytes` UTF-8 bytes that ends on a character
    /// boundary, and whether it is shorter than `text`.
    static func prefix(of text: String, maxBytes: Int) -> (Substring, Bool) {
        guard text.utf8.count > maxBytes else { return (text[...], false) }
        var bytes = 0
        var end = text.startIndex
        for index in text.indices {
            let next = text.index(after: index)
            let size = text.utf8.distance(from: index, to: next)
            guard bytes + size <= maxBytes else { break }
            bytes += size
            end = next
        }
        return (text[..<end], true)
    }
}

// MARK: - contains / not_contains

/// `contains` (yes when the field contains the text) and `not_contains` (yes when it does not).
///
/// Comparison is by Swift `Character` (canonically equivalent forms match; `e` does not match
/// inside `é`); case-insensitive by default (both sides lower-cased). The configured text is
/// not repeated in the rationale (it may be a canary or a secret). Not applicable when the field
/// is missing or empty. Metadata: `found`.
public struct ContainsScorer: CodeScorer {
    public let name: String
    public let text: String
    public let field: TextField
    public let caseSensitive: Bool
    /// false for `contains`, true for `not_contains`.
    public let negated: Bool
    public var kind: ScorerKind { negated ? .notContains : .contains }

    public init(name: String, text: String, field: TextField = .response, caseSensitive: Bool = false, negated: Bool = false) {
        self.name = name
        self.text = text
        self.field = field
        self.caseSensitive = caseSensitive
        self.negated = negated
    }

    public func evaluate(_ trace: Trace) -> ScorerOutcome {
        let haystack: String
        switch field.text(of: trace) {
        case .success(let value): haystack = value
        case .failure(let notApplicable): return outcome(.notApplicable(reason: notApplicable.reason))
        }
        let found = caseSensitive ? haystack.contains(text) : haystack.lowercased().contains(text.lowercased())
        let passed = found != negated
        let sensitivity = caseSensitive ? "case-sensitive" : "ignoring case"
        let what = found ? "contains" : "does not contain"
        let rule = negated ? "must not contain it" : "must contain it"
        return outcome(
            .value(passed ? .yes : .no, rationale: "The \(field.rawValue) \(what) the configured text (\(sensitivity)); it \(rule) (\(passed ? "yes" : "no"))."),
            ["found": found ? "true" : "false"]
        )
    }
}

// MARK: - output_length

/// `output_length`: yes when the response length in characters (Swift `Character`s, i.e.
/// user-perceived characters) lies within `[minChars, maxChars]` (either bound optional, at least
/// one set).
///
/// An empty response has length 0 (and fails a positive minimum); a missing response is not
/// applicable. Metadata: `length_chars`.
public struct OutputLengthScorer: CodeScorer {
    public let name: String
    public let minChars: Int?
    public let maxChars: Int?
    public var kind: ScorerKind { .outputLength }

    public init(name: String, minChars: Int?, maxChars: Int?) {
        self.name = name
        self.minChars = minChars
        self.maxChars = maxChars
    }

    public func evaluate(_ trace: Trace) -> ScorerOutcome {
        let text: String
        switch TextField.response.text(of: trace, allowEmpty: true) {
        case .success(let value): text = value
        case .failure(let notApplicable): return outcome(.notApplicable(reason: notApplicable.reason))
        }
        let length = text.count
        let metadata = ["length_chars": String(length)]
        if let minChars, length < minChars {
            return outcome(.value(.no, rationale: "The response has \(length) characters, fewer than the minimum of \(minChars) (no = too short)."), metadata)
        }
        if let maxChars, length > maxChars {
            return outcome(.value(.no, rationale: "The response has \(length) characters, more than the maximum of \(maxChars) (no = too long)."), metadata)
        }
        let bounds = [minChars.map { "at least \($0)" }, maxChars.map { "at most \($0)" }].compactMap { $0 }.joined(separator: " and ")
        return outcome(.value(.yes, rationale: "The response has \(length) characters, \(bounds) as required (yes)."), metadata)
    }
}

// MARK: - valid_json

/// `valid_json`: yes when the response text is one JSON document (RFC 8259: any value, scalars
/// included; surrounding whitespace allowed).
///
/// With `stripCodeFence` (the default), a response that is wholly a Markdown code fence —
/// `` ```json `` (or any info string, or none) on the first line and `` ``` `` on the last — is
/// judged by its content, since LLMs often wrap JSON that way; `fenced` in metadata says so.
/// A root span that returned a structured object has a JSON response by construction
/// (``TraceText``). Not applicable when the response is missing or empty.
/// Metadata: `fenced`, and `json_type` when valid.
public struct ValidJSONScorer: CodeScorer {
    public let name: String
    public let stripCodeFence: Bool
    public var kind: ScorerKind { .validJSON }

    public init(name: String, stripCodeFence: Bool = true) {
        self.name = name
        self.stripCodeFence = stripCodeFence
    }

    public func evaluate(_ trace: Trace) -> ScorerOutcome {
        let text: String
        switch TextField.response.text(of: trace) {
        case .success(let value): text = value
        case .failure(let notApplicable): return outcome(.notApplicable(reason: notApplicable.reason))
        }
        var body = text
        var fenced = false
        if stripCodeFence, let inner = Self.fenceContent(text) {
            body = inner
            fenced = true
        }
        var metadata = ["fenced": fenced ? "true" : "false"]
        let how = fenced ? " (inside a Markdown code fence)" : ""
        do {
            let value = try JSONValue(parsing: body)
            metadata["json_type"] = value.typeName
            return outcome(.value(.yes, rationale: "The response is valid JSON\(how): a JSON \(value.typeName) (yes)."), metadata)
        } catch {
            return outcome(.value(.no, rationale: "The response is not valid JSON\(how): \(error) (no)."), metadata)
        }
    }

    /// The content of a text that is wholly one fenced code block, or nil.
    static func fenceContent(_ text: String) -> String? {
        let trimmed = text.trimmingWhitespace()
        guard trimmed.hasPrefix("```"), trimmed.hasSuffix("```"), trimmed.count >= 6 else { return nil }
        guard let firstNewline = trimmed.firstIndex(where: \.isNewline) else { return nil }
        let infoString = trimmed[trimmed.index(trimmed.startIndex, offsetBy: 3)..<firstNewline]
        guard !infoString.contains("`") else { return nil }
        let contentStart = trimmed.index(after: firstNewline)
        let contentEnd = trimmed.index(trimmed.endIndex, offsetBy: -3)
        guard contentStart <= contentEnd else { return nil }
        let content = trimmed[contentStart..<contentEnd]
        return content.contains("```") ? nil : String(content)
    }
}

extension StringProtocol {
    /// The text without leading and trailing whitespace (Unicode `White_Space`).
    func trimmingWhitespace() -> Substring {
        let scalars = Substring(self).unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else {
            return Substring()
        }
        return Substring(scalars[first...last])
    }
}

// MARK: - token_usage

/// Token counts of a trace.
public struct TokenUsage: Sendable, Equatable {
    public var inputTokens: Int64?
    public var outputTokens: Int64?
    public var totalTokens: Int64
    /// How many spans reported usage (0 when read from trace metadata).
    public var spanCount: Int
    /// Where the counts came from.
    public var source: Source

    /// Where token counts were read.
    public enum Source: String, Sendable, Equatable {
        /// Summed over the spans reporting usage.
        case spans
        /// The trace's `mlflow.trace.tokenUsage` metadata.
        case traceMetadata = "trace_metadata"
    }

    public init(inputTokens: Int64?, outputTokens: Int64?, totalTokens: Int64, spanCount: Int, source: Source) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.totalTokens = totalTokens
        self.spanCount = spanCount
        self.source = source
    }

    /// The trace's token usage: the sum over spans reporting usage, else the trace metadata.
    ///
    /// - A span reports usage in MLflow's `mlflow.chat.tokenUsage` attribute (an object with
    ///   `input_tokens`, `output_tokens`, `total_tokens`; total defaults to input + output), else in
    ///   OpenTelemetry GenAI `gen_ai.usage.input_tokens` / `gen_ai.usage.output_tokens`, else in
    ///   OpenInference `llm.token_count.prompt` / `.completion` / `.total`.
    /// - Only the outermost reporting spans count: a reporting span under another reporting span
    ///   (a wrapper and the client call it made) is the same tokens and is skipped.
    /// - With no reporting span: trace metadata `mlflow.trace.tokenUsage` (same object shape).
    /// - nil when neither exists.
    public static func of(_ trace: Trace) -> TokenUsage? {
        var byID: [String: Span] = [:]
        for span in trace.spans where byID[span.spanID] == nil { byID[span.spanID] = span }
        var input: Int64?
        var output: Int64?
        var total: Int64 = 0
        var count = 0
        for span in trace.spans {
            guard let usage = spanUsage(span), !hasReportingAncestor(span, byID: byID) else { continue }
            count += 1
            total += usage.total
            if let value = usage.input { input = (input ?? 0) + value }
            if let value = usage.output { output = (output ?? 0) + value }
        }
        if count > 0 {
            return TokenUsage(inputTokens: input, outputTokens: output, totalTokens: total, spanCount: count, source: .spans)
        }
        if let text = trace.metadata["mlflow.trace.tokenUsage"], let value = try? JSONValue(parsing: text),
           let usage = usageObject(value) {
            return TokenUsage(inputTokens: usage.input, outputTokens: usage.output, totalTokens: usage.total, spanCount: 0, source: .traceMetadata)
        }
        return nil
    }

    private static func hasReportingAncestor(_ span: Span, byID: [String: Span]) -> Bool {
        var visited: Set<String> = [span.spanID]
        var parentID = span.parentSpanID
        while let id = parentID, let parent = byID[id], visited.insert(id).inserted {
            if spanUsage(parent) != nil { return true }
            parentID = parent.parentSpanID
        }
        return false
    }

    private static func spanUsage(_ span: Span) -> (input: Int64?, output: Int64?, total: Int64)? {
        if var value = span.attributes["mlflow.chat.tokenUsage"] {
            if case .string(let text) = value, let parsed = try? JSONValue(parsing: text) { value = parsed }
            if let usage = usageObject(value) { return usage }
        }
        let genAI = (count(span.attributes["gen_ai.usage.input_tokens"]), count(span.attributes["gen_ai.usage.output_tokens"]))
        if genAI.0 != nil || genAI.1 != nil {
            return (genAI.0, genAI.1, (genAI.0 ?? 0) + (genAI.1 ?? 0))
        }
        let prompt = count(span.attributes["llm.token_count.prompt"])
        let completion = count(span.attributes["llm.token_count.completion"])
        let all = count(span.attributes["llm.token_count.total"])
        if prompt != nil || completion != nil || all != nil {
            return (prompt, completion, all ?? ((prompt ?? 0) + (completion ?? 0)))
        }
        return nil
    }

    private static func usageObject(_ value: JSONValue) -> (input: Int64?, output: Int64?, total: Int64)? {
        guard case .object(let object) = value else { return nil }
        let input = count(object["input_tokens"])
        let output = count(object["output_tokens"])
        guard let total = count(object["total_tokens"]) ?? (input == nil && output == nil ? nil : (input ?? 0) + (output ?? 0)) else {
            return nil
        }
        return (input, output, total)
    }

    /// A non-negative token count: an integral number or a decimal string, at most 10^15.
    private static func count(_ value: JSONValue?) -> Int64? {
        guard let number = value?.int64AcceptingDecimalString, number >= 0, number <= 1_000_000_000_000_000 else { return nil }
        return number
    }
}

/// `token_usage`: the trace's total token count (``TokenUsage/of(_:)``) as a number; with
/// `maxTotalTokens`, yes when the total is at most that instead (the total goes in metadata).
///
/// Not applicable when no span reports usage and the trace metadata has none (e.g. the model
/// call failed). Metadata: `total_tokens`, `input_tokens`, `output_tokens` (when known),
/// `usage_source`, `usage_spans`, and `max_total_tokens` when set.
public struct TokenUsageScorer: CodeScorer {
    public let name: String
    public let maxTotalTokens: Int64?
    public var kind: ScorerKind { .tokenUsage }

    public init(name: String, maxTotalTokens: Int64? = nil) {
        self.name = name
        self.maxTotalTokens = maxTotalTokens
    }

    public func evaluate(_ trace: Trace) -> ScorerOutcome {
        guard let usage = TokenUsage.of(trace) else {
            return outcome(.notApplicable(reason: "no span reports token usage (mlflow.chat.tokenUsage) and the trace has no mlflow.trace.tokenUsage metadata"))
        }
        var metadata = [
            "total_tokens": String(usage.totalTokens),
            "usage_source": usage.source.rawValue,
            "usage_spans": String(usage.spanCount),
        ]
        if let input = usage.inputTokens { metadata["input_tokens"] = String(input) }
        if let output = usage.outputTokens { metadata["output_tokens"] = String(output) }
        var split: [String] = []
        if let input = usage.inputTokens { split.append("input \(input)") }
        if let output = usage.outputTokens { split.append("output \(output)") }
        let detail = split.isEmpty ? "" : " (\(split.joined(separator: ", ")))"
        let origin = usage.source == .spans
            ? "over \(usage.spanCount) LLM span\(usage.spanCount == 1 ? "" : "s")"
            : "from the trace's mlflow.trace.tokenUsage"
        let sentence = "The trace used \(usage.totalTokens) tokens\(detail) \(origin)"
        guard let maxTotalTokens else {
            return outcome(.value(.number(Double(usage.totalTokens)), rationale: "\(sentence)."), metadata)
        }
        metadata["max_total_tokens"] = String(maxTotalTokens)
        if usage.totalTokens <= maxTotalTokens {
            return outcome(.value(.yes, rationale: "\(sentence), within the limit of \(maxTotalTokens) (yes)."), metadata)
        }
        return outcome(.value(.no, rationale: "\(sentence), over the limit of \(maxTotalTokens) (no)."), metadata)
    }
}
