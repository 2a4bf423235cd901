import AssayCore
import AssayScoring
import Testing

@Suite("ScorerFactory builds code scorers and validates their params")
struct ScorerFactoryTests {
    func issues(_ kind: ScorerKind, _ params: JSONObject, path: String = "scorers[2]") -> [String] {
        do {
            _ = try ScorerFactory.makeCodeScorer(ScorerConfig(name: "s", kind: kind, params: params), path: path)
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    func build(_ kind: ScorerKind, _ params: JSONObject = [:]) throws -> any Scorer {
        try ScorerFactory.makeCodeScorer(ScorerConfig(name: "my_scorer", kind: kind, params: params), path: "scorers[0]")
    }

    @Test func buildsEveryCodeKindWithTypedParams() throws {
        let latency = try #require(try build(.latency, ["max_ms": 5000]) as? LatencyScorer)
        #expect(latency.maxMillis == 5000)
        #expect(latency.sourceID == "assay/code/latency@1")
        #expect(latency.sourceType == .code)
        #expect((try build(.noError) as? NoErrorScorer)?.checkSpans == true)
        #expect((try build(.noError, ["check_spans": false]) as? NoErrorScorer)?.checkSpans == false)
        let pii = try #require(try build(.pii) as? PIIScorer)
        #expect(pii.kinds == Set(PIIKind.allCases) && pii.field == .response)
        let piiRequest = try #require(try build(.pii, ["kinds": ["iban", "email"], "field": "request"]) as? PIIScorer)
        #expect(piiRequest.kinds == [.iban, .email] && piiRequest.field == .request)
        let regex = try #require(try build(.regex, ["pattern": #"^\w+"#, "must_match": false]) as? RegexScorer)
        #expect(regex.pattern == #"^\w+"# && !regex.mustMatch && regex.field == .response)
        let contains = try #require(try build(.contains, ["text": "refund", "case_sensitive": true]) as? ContainsScorer)
        #expect(contains.caseSensitive && !contains.negated && contains.kind == .contains)
        let notContains = try #require(try build(.notContains, ["text": "refund", "field": "request"]) as? ContainsScorer)
        #expect(notContains.negated && notContains.field == .request && notContains.sourceID == "assay/code/not_contains@1")
        let length = try #require(try build(.outputLength, ["min_chars": 0, "max_chars": 10]) as? OutputLengthScorer)
        #expect(length.minChars == 0 && length.maxChars == 10)
        #expect((try build(.validJSON) as? ValidJSONScorer)?.stripCodeFence == true)
        #expect((try build(.tokenUsage) as? TokenUsageScorer)?.maxTotalTokens == nil)
        #expect((try build(.tokenUsage, ["max_total_tokens": 4000]) as? TokenUsageScorer)?.maxTotalTokens == 4000)
        #expect(try build(.latency, ["max_ms": 0.5]).name == "my_scorer")
    }

    @Test("invalid params are reported with their JSON path", arguments: [
        (ScorerKind.latency, ["max_ms": 0] as JSONObject, ["scorers[2].params.max_ms: must be a positive number"]),
        (.latency, ["max_ms": "5000"], ["scorers[2].params.max_ms: must be a positive number"]),
        (.latency, ["max_ms": -1], ["scorers[2].params.max_ms: must be a positive number"]),
        (.latency, [:], ["scorers[2].params.max_ms: is required (a positive number)"]),
        (.latency, ["max_ms": 10, "min_ms": 1], ["scorers[2].params.min_ms: unknown parameter (expected max_ms)"]),
        (.noError, ["check_spans": "yes"], ["scorers[2].params.check_spans: must be true or false"]),
        (.pii, ["kinds": []], [#"scorers[2].params.kinds: must list at least one kind ("email", "phone", "credit_card", "iban")"#]),
        (.pii, ["kinds": ["email", "ssn", "email"]], [
            #"scorers[2].params.kinds[1]: must be one of "email", "phone", "credit_card", "iban""#,
            #"scorers[2].params.kinds[2]: repeats "email""#,
        ]),
        (.pii, ["kinds": "email", "field": "body"], [
            #"scorers[2].params.kinds: must be a list of PII kinds ("email", "phone", "credit_card", "iban")"#,
            #"scorers[2].params.field: must be "request" or "response""#,
        ]),
        (.regex, [:], ["scorers[2].params.pattern: is required (a non-empty string)"]),
        (.regex, ["pattern": ""], ["scorers[2].params.pattern: must not be empty"]),
        (.regex, ["pattern": "(unclosed"], ["scorers[2].params.pattern: does not compile"]),
        (.regex, ["pattern": "(a+)+$"], ["scorers[2].params.pattern: nests an unbounded quantifier"]),
        (.regex, ["pattern": .string(String(repeating: "a", count: 513))], ["scorers[2].params.pattern: must be at most 512 characters"]),
        (.regex, ["pattern": "x", "must_match": 1], ["scorers[2].params.must_match: must be true or false"]),
        (.contains, ["text": 5], ["scorers[2].params.text: must be a string"]),
        (.notContains, ["case_sensitive": false], ["scorers[2].params.text: is required (a non-empty string)"]),
        (.outputLength, [:], ["scorers[2].params: needs min_chars, max_chars or both"]),
        (.outputLength, ["min_chars": 10, "max_chars": 5], ["scorers[2].params.min_chars: must not exceed max_chars (10 > 5)"]),
        (.outputLength, ["min_chars": -1], ["scorers[2].params.min_chars: must be a non-negative integer"]),
        (.outputLength, ["max_chars": 2.5], ["scorers[2].params.max_chars: must be a non-negative integer"]),
        (.validJSON, ["strict": true], ["scorers[2].params.strict: unknown parameter (expected strip_code_fence)"]),
        (.tokenUsage, ["max_total_tokens": 0], ["scorers[2].params.max_total_tokens: must be an integer ≥ 1"]),
        (.safety, [:], ["scorers[2].kind: scorer kind safety needs an LLM judge, which this build does not have yet"]),
    ] as [(ScorerKind, JSONObject, [String])])
    func rejects(kind: ScorerKind, params: JSONObject, expected: [String]) {
        let found = issues(kind, params)
        #expect(found.count == expected.count, "\(found)")
        for (issue, prefix) in zip(found, expected) {
            #expect(issue.hasPrefix(prefix), "\(issue) should start with \(prefix)")
        }
    }

    @Test func repeatedParamKeysAreErrors() {
        let params = JSONObject([(key: "max_ms", value: 5), (key: "max_ms", value: 6)])
        #expect(issues(.latency, params) == ["scorers[2].params.max_ms: appears more than once"])
    }

    @Test func nestedQuantifierHeuristic() {
        for pattern in ["(a+)+", "(?:x*y)*", "(a{2,})+", "((ab)+c)*", "(\\d+)*x"] {
            #expect(!issues(.regex, ["pattern": .string(pattern)]).isEmpty, "\(pattern) should be refused")
        }
        for pattern in ["a+b+", "(ab)+", "(a+){2,5}", "[(a+)]+", "\\(a+\\)+", "(?i)^refund", "(a|b)*c", "(x+y)?"] {
            #expect(issues(.regex, ["pattern": .string(pattern)]).isEmpty, "\(pattern) should be accepted")
        }
    }

    @Test func makeScorersReportsEveryScorer() throws {
        let config = MonitorConfig(
            name: "m", destinationSchema: "assay", window: MonitorConfig.demoDefault.window, judge: nil,
            scorers: [
                ScorerConfig(name: "ok", kind: .noError),
                ScorerConfig(name: "slow", kind: .latency, params: ["max_ms": -5]),
                ScorerConfig(name: "len", kind: .outputLength),
                ScorerConfig(name: "judge", kind: .relevanceToQuery),
            ]
        )
        do {
            _ = try ScorerFactory.makeScorers(config)
            Issue.record("expected an error")
        } catch {
            #expect(error.issues.map(\.path) == ["scorers[1].params.max_ms", "scorers[2].params", "scorers[3].kind"])
            #expect(error.description.split(separator: "\n").count == 3)
        }
    }

    @Test func theDemoConfigBuilds() throws {
        let scorers = try ScorerFactory.makeScorers(MonitorConfig.demoDefault)
        #expect(scorers.map(\.name) == MonitorConfig.demoDefault.scorers.map(\.name))
        #expect(scorers.allSatisfy { $0.sourceType == .code && $0.sourceID == "assay/code/\($0.kind.rawValue)@1" })
    }
}
