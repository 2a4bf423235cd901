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
        (.safety, [:], ["scorers[2].kind: scorer kind safety needs an LLM judge; build it with makeScorer(_:path:judge:)"]),
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

    static func config(judge: JudgeConfig?, _ scorers: [ScorerConfig]) -> MonitorConfig {
        MonitorConfig(name: "m", destinationSchema: "assay", window: MonitorConfig.demoDefault.window, judge: judge, scorers: scorers)
    }

    static let llmScorers = [
        ScorerConfig(name: "relevance", kind: .relevanceToQuery),
        ScorerConfig(name: "grounded", kind: .retrievalGroundedness),
        ScorerConfig(name: "chunks", kind: .retrievalRelevance),
        ScorerConfig(name: "safe", kind: .safety),
    ]

    @Test func llmScorersUseTheOfflineJudgeWhenConfigured() throws {
        let scorers = try ScorerFactory.makeScorers(Self.config(judge: JudgeConfig(kind: .offline), Self.llmScorers + [ScorerConfig(name: "ok", kind: .noError)]))
        #expect(scorers.map(\.name) == ["relevance", "grounded", "chunks", "safe", "ok"])
        #expect(scorers.map(\.kind) == [.relevanceToQuery, .retrievalGroundedness, .retrievalRelevance, .safety, .noError])
        #expect(scorers.map(\.sourceID) == Array(repeating: "assay/offline-judge@1", count: 4) + ["assay/code/no_error@1"])
        #expect(scorers.map(\.sourceType) == [.llmJudge, .llmJudge, .llmJudge, .llmJudge, .code])
        #expect(scorers[0] is RelevanceToQueryScorer && scorers[1] is RetrievalGroundednessScorer)
        #expect(scorers[2] is RetrievalRelevanceScorer && scorers[3] is SafetyScorer)
        // The same with the two-argument form and no judge.
        #expect(try ScorerFactory.makeScorers(Self.config(judge: JudgeConfig(kind: .offline), Self.llmScorers), judge: nil).count == 4)
    }

    @Test func aGivenJudgeIsUsedAndAllowsGuidelines() throws {
        let judge = ScriptedJudge(sourceID: "openai:gpt-4o-mini") { _ in .success(JudgeVerdict(value: .yes, rationale: "ok")) }
        let openai = JudgeConfig(kind: .openai, baseURL: "https://api.openai.com/v1", model: "gpt-4o-mini", apiKeyEnv: "OPENAI_API_KEY")
        let guidelines = ScorerConfig(name: "policy", kind: .guidelines, guidelines: ["Stay on HR topics.", "Be polite."])
        let scorers = try ScorerFactory.makeScorers(Self.config(judge: openai, Self.llmScorers + [guidelines]), judge: judge)
        #expect(scorers.allSatisfy { $0.sourceID == "openai:gpt-4o-mini" && $0.sourceType == .llmJudge })
        let built = try #require(scorers.last as? GuidelinesScorer)
        #expect(built.name == "policy" && built.guidelines == ["Stay on HR topics.", "Be polite."])
    }

    @Test func withoutAUsableJudgeTheIssueSaysWhere() {
        func issues(_ config: MonitorConfig, judge: (any Judge)? = nil) -> [String] {
            do {
                _ = try ScorerFactory.makeScorers(config, judge: judge)
                return []
            } catch {
                return error.issues.map(\.description)
            }
        }
        let openai = JudgeConfig(kind: .openai, baseURL: "https://api.openai.com/v1", model: "gpt-4o-mini", apiKeyEnv: "OPENAI_API_KEY")
        #expect(issues(Self.config(judge: openai, Self.llmScorers)) == [
            "judge: an openai judge is configured but none was provided (the caller must build the HTTP judge and pass it)",
        ])
        // Code scorers alone need no judge object, whatever the config says.
        #expect(issues(Self.config(judge: openai, [ScorerConfig(name: "ok", kind: .noError)])) == [])
        #expect(issues(Self.config(judge: nil, [ScorerConfig(name: "ok", kind: .noError), ScorerConfig(name: "safe", kind: .safety)])) == [
            "scorers[1].kind: scorer kind safety needs an LLM judge, but the monitor configures none",
        ])
        // guidelines on the offline judge: refused at the scorer's kind, from the config or a passed judge.
        let guidelines = ScorerConfig(name: "policy", kind: .guidelines, guidelines: ["Be polite."])
        let expected = ["scorers[1].kind: guidelines needs an LLM judge; the offline judge cannot judge free-text guidelines — configure judge.kind openai"]
        #expect(issues(Self.config(judge: JudgeConfig(kind: .offline), [ScorerConfig(name: "safe", kind: .safety), guidelines])) == expected)
        #expect(issues(Self.config(judge: openai, [ScorerConfig(name: "safe", kind: .safety), guidelines]), judge: OfflineJudge()) == expected)
        // LLM scorers take no params; guidelines need texts.
        let scripted = ScriptedJudge.constant(.yes)
        #expect(issues(Self.config(judge: openai, [ScorerConfig(name: "safe", kind: .safety, params: ["threshold": 0.5])]), judge: scripted) == [
            "scorers[0].params.threshold: unknown parameter (this scorer takes no parameters)",
        ])
        #expect(issues(Self.config(judge: openai, [ScorerConfig(name: "policy", kind: .guidelines)]), judge: scripted) == [
            "scorers[0].guidelines: is required for scorer kind guidelines (a non-empty list of guideline texts)",
        ])
    }

    @Test func validateNeedsNoJudgeObject() throws {
        let openai = JudgeConfig(kind: .openai, baseURL: "https://api.openai.com/v1", model: "gpt-4o-mini", apiKeyEnv: "OPENAI_API_KEY")
        let guidelines = ScorerConfig(name: "policy", kind: .guidelines, guidelines: ["Be polite."])
        try ScorerFactory.validate(Self.config(judge: openai, Self.llmScorers + [guidelines]))
        try ScorerFactory.validate(MonitorConfig.demoDefault)
        #expect(throws: ScorerConfigError.self) {
            try ScorerFactory.validate(Self.config(judge: JudgeConfig(kind: .offline), [guidelines]))
        }
        do {
            try ScorerFactory.validate(Self.config(judge: openai, [ScorerConfig(name: "slow", kind: .latency, params: ["max_ms": 0]), guidelines]))
            Issue.record("expected an error")
        } catch {
            #expect(error.issues.map(\.path) == ["scorers[0].params.max_ms"])
        }
    }

    @Test func theDemoConfigBuilds() throws {
        let scorers = try ScorerFactory.makeScorers(MonitorConfig.demoDefault)
        #expect(scorers.map(\.name) == MonitorConfig.demoDefault.scorers.map(\.name))
        for scorer in scorers {
            if scorer.kind.usesJudge {
                #expect(scorer.sourceType == .llmJudge && scorer.sourceID == "assay/offline-judge@1", "\(scorer.name)")
            } else {
                #expect(scorer.sourceType == .code && scorer.sourceID == "assay/code/\(scorer.kind.rawValue)@1", "\(scorer.name)")
            }
        }
    }
}
