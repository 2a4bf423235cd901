import AssayCore
import Testing

private func issues(_ text: String) -> [MonitorConfigError.Issue] {
    do {
        _ = try MonitorConfig.parse(Array(text.utf8))
        return []
    } catch {
        return error.issues
    }
}

private func paths(_ text: String) -> [String] {
    issues(text).map(\.path)
}

/// The example document of DESIGN.md §3, verbatim. Its `guidelines` scorer runs on the offline
/// judge, which cannot judge free-text guidelines, so the document is refused (see
/// `guidelinesNeedAnLLMJudge`); ``designExampleMonitor`` is the same document with an OpenAI judge.
let designExampleVerbatim = """
    {
      "name": "prod-chatbot",
      "destination": {"schema": "assay"},
      "sample_rate": 1.0,
      "window": "15m",
      "allowed_lateness": "2m",
      "judge": {"kind": "offline"},
      "scorers": [
        {"name": "safety", "kind": "safety"},
        {"name": "relevance_to_query", "kind": "relevance_to_query", "sample_rate": 0.4},
        {"name": "retrieval_groundedness", "kind": "retrieval_groundedness", "sample_rate": 0.2, "max_per_window": 1000},
        {"name": "mlflow_only", "kind": "guidelines", "guidelines": ["If the request is unrelated to MLflow, the response must refuse to answer."]},
        {"name": "fast_enough", "kind": "latency", "params": {"max_ms": 5000}},
        {"name": "no_pii", "kind": "pii", "filter": "tags.env = 'prod'"}
      ],
      "paused": false
    }
    """

/// The DESIGN.md §3 example with an OpenAI-compatible judge, which its guidelines scorer needs.
let designExampleMonitor = designExampleVerbatim.replacing(
    #""judge": {"kind": "offline"}"#,
    with: #""judge": {"kind": "openai", "base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"}"#
)

@Suite("Monitor config (DESIGN §3, invariant 9)")
struct MonitorConfigTests {
    @Test func parsesTheDesignExample() throws {
        let config = try MonitorConfig.parse(Array(designExampleMonitor.utf8))
        #expect(config.name == "prod-chatbot")
        #expect(config.destinationSchema == "assay")
        #expect(config.sampleRate == 1.0)
        #expect(config.window == (try WindowSpec(widthNanos: 900_000_000_000, allowedLatenessNanos: 120_000_000_000)))
        #expect(designExampleMonitor != designExampleVerbatim)
        #expect(config.judge == JudgeConfig(
            kind: .openai, baseURL: "https://api.openai.com/v1", model: "gpt-4o-mini", apiKeyEnv: "OPENAI_API_KEY",
            maxConcurrency: 4, maxCallsPerWindow: 5000
        ))
        #expect(config.scorers.map(\.name) == ["safety", "relevance_to_query", "retrieval_groundedness", "mlflow_only", "fast_enough", "no_pii"])
        #expect(config.scorers.map(\.kind) == [.safety, .relevanceToQuery, .retrievalGroundedness, .guidelines, .latency, .pii])
        #expect(config.scorers.map { $0.effectiveRate(global: config.sampleRate) } == [1.0, 0.4, 0.2, 1.0, 1.0, 1.0])
        #expect(config.scorer(named: "retrieval_groundedness")?.maxPerWindow == 1000)
        #expect(config.scorer(named: "mlflow_only")?.guidelines == ["If the request is unrelated to MLflow, the response must refuse to answer."])
        #expect(config.scorer(named: "fast_enough")?.params == ["max_ms": 5000])
        #expect(config.scorer(named: "no_pii")?.filter?.text == "tags.env = 'prod'")
        #expect(config.paused == false)
    }

    @Test func defaults() throws {
        let config = try MonitorConfig.parse(Array(#"{"name": "m", "destination": {"schema": "s"}, "scorers": []}"#.utf8))
        #expect(config.sampleRate == 1.0)
        #expect(config.window.widthNanos == 15 * 60 * 1_000_000_000)
        #expect(config.window.allowedLatenessNanos == 2 * 60 * 1_000_000_000)
        #expect(config.judge == nil)
        #expect(config.scorers.isEmpty)
        #expect(config.paused == false)
    }

    @Test func canonicalRoundTrip() throws {
        let config = try MonitorConfig.parse(Array(designExampleMonitor.utf8))
        let canonical = config.json().serializedUTF8()
        let reparsed = try MonitorConfig.parse(canonical)
        #expect(reparsed == config)
        #expect(reparsed.json().serializedUTF8() == canonical)
        #expect(String(decoding: canonical, as: UTF8.self).hasPrefix(
            #"{"name":"prod-chatbot","destination":{"schema":"assay"},"sample_rate":1.0,"window":"15m","allowed_lateness":"2m","judge":{"kind":"openai","base_url":"https://api.openai.com/v1","model":"gpt-4o-mini","api_key_env":"OPENAI_API_KEY","max_concurrency":4,"max_calls_per_window":5000},"scorers":[{"name":"safety","kind":"safety","params":{}}"#
        ))
    }

    @Test func demoDefault() throws {
        let demo = MonitorConfig.demoDefault
        #expect(demo.window.widthNanos == 10_000_000_000)
        #expect(demo.window.allowedLatenessNanos == 2_000_000_000)
        #expect(demo.judge?.kind == .offline)
        #expect(Set(demo.scorers.map { $0.effectiveRate(global: demo.sampleRate) }) == [1.0, 0.4, 0.2])
        #expect(demo.scorers.contains { $0.filter != nil })
        // The four predefined scorers the offline judge can run, next to the code scorers.
        #expect(Set(demo.scorers.filter(\.kind.usesJudge).map(\.kind)) == [.relevanceToQuery, .retrievalGroundedness, .retrievalRelevance, .safety])
        #expect(demo.scorers.contains { !$0.kind.usesJudge })
        #expect(try MonitorConfig.parse(demo.json().serializedUTF8()) == demo)
    }

    @Test func durations() throws {
        func window(_ text: String) throws -> Int64 {
            try MonitorConfig.parse(Array(#"{"name":"m","destination":{"schema":"s"},"scorers":[],"window":"\#(text)","allowed_lateness":"0s"}"#.utf8)).window.widthNanos
        }
        #expect(try window("1s") == 1_000_000_000)
        #expect(try window("90s") == 90_000_000_000)
        #expect(try window("15m") == 900_000_000_000)
        #expect(try window("2h") == 7_200_000_000_000)
        #expect(try window("168h") == 604_800_000_000_000)
        let config = try MonitorConfig.parse(Array(#"{"name":"m","destination":{"schema":"s"},"scorers":[],"window":"60s","allowed_lateness":"0s"}"#.utf8))
        #expect(config.json()["window"] == "1m")
        #expect(config.json()["allowed_lateness"] == "0s")
        for bad in ["0s", "1.5s", "-5s", "5", "5d", "5 m", "m", "", "169h", "1000000000s", "+5s", "5S"] {
            let found = issues(#"{"name":"m","destination":{"schema":"s"},"scorers":[],"window":"\#(bad)"}"#)
            #expect(found.map(\.path) == ["window"], "window \(bad): \(found)")
        }
    }

    /// Every problem is reported, each with its path, in document order.
    @Test func reportsEveryProblem() {
        let document = """
            {
              "name": "bad name!",
              "destination": {"schema": "Assay", "table": "x"},
              "sample_rate": 1.5,
              "window": "0s",
              "allowed_lateness": "soon",
              "judge": {"kind": "openai", "api_key_env": "sk-abc123"},
              "scorers": [
                {"name": "ok_scorer", "kind": "latency"},
                {"name": "Bad Name", "kind": "telepathy"},
                {"name": "rate", "kind": "pii", "sample_rate": -0.1, "max_per_window": 0, "params": [], "colour": "red"},
                {"name": "ok_scorer", "kind": "no_error"},
                {"name": "g", "kind": "guidelines", "guidelines": ["be nice", "", "be nice"]},
                {"name": "g2", "kind": "guidelines"},
                {"name": "f", "kind": "latency", "filter": "state = ", "guidelines": ["x"]},
                "not an object"
              ],
              "paused": "no",
              "owner": "me"
            }
            """
        let found = issues(document)
        let described = found.map(\.description)
        #expect(found.map(\.path) == [
            "owner",
            "name",
            "destination.table",
            "destination.schema",
            "sample_rate",
            "window",
            "allowed_lateness",
            "judge.base_url",
            "judge.model",
            "judge.api_key_env",
            "scorers[1].name",
            "scorers[1].kind",
            "scorers[2].colour",
            "scorers[2].sample_rate",
            "scorers[2].max_per_window",
            "scorers[2].params",
            "scorers[3].name",
            "scorers[4].guidelines[1]",
            "scorers[4].guidelines[2]",
            "scorers[5].guidelines",
            "scorers[6].filter",
            "scorers[6].guidelines",
            "scorers[7]",
            "paused",
        ], "\(described)")
        #expect(described.contains("scorers[2].sample_rate: must be between 0 and 1"))
        #expect(described.contains("sample_rate: must be between 0 and 1"))
        #expect(described.contains("scorers[6].filter: expected a value after '=', found the end of the filter at 8"))
        #expect(described.contains("scorers[3].name: assessment name 'ok_scorer' is already used by scorers[0]"))
        #expect(described.contains("owner: unknown field"))
        // The key-like value is refused and never echoed.
        #expect(described.contains { $0.hasPrefix("judge.api_key_env: must be the NAME of an environment variable") })
        #expect(!described.joined().contains("sk-abc123"))
    }

    @Test func judgeRules() {
        let base = #"{"name":"m","destination":{"schema":"s"},"scorers":[{"name":"safety","kind":"safety"}],"judge":"#
        #expect(paths(base + #"{"kind":"openai","base_url":"https://api.openai.com/v1","model":"gpt-4o-mini","api_key_env":"OPENAI_API_KEY","max_concurrency":8,"max_calls_per_window":5000}}"#) == [])
        #expect(paths(base + #"{"kind":"openai","base_url":"ftp://x","model":"","api_key_env":"1ABC"}}"#)
            == ["judge.base_url", "judge.model", "judge.api_key_env"])
        #expect(paths(base + #"{"kind":"openai","base_url":"http://localhost:8080","model":"m","api_key_env":"Abcdefghijklmnop1234567890XYZ"}}"#)
            == ["judge.api_key_env"])
        #expect(paths(base + #"{"kind":"offline","model":"m","max_concurrency":0,"max_calls_per_window":1.5}}"#)
            == ["judge.model", "judge.max_concurrency", "judge.max_calls_per_window"])
        #expect(paths(base + #"{"kind":"magic"}}"#) == ["judge.kind"])
        #expect(paths(base + #"{}}"#) == ["judge.kind"])
        #expect(paths(base + #"[]}"#) == ["judge"])
        // An LLM scorer without any judge.
        #expect(issues(#"{"name":"m","destination":{"schema":"s"},"scorers":[{"name":"safety","kind":"safety"},{"name":"l","kind":"latency"}]}"#).map(\.description)
            == [#"scorers[0].kind: scorer kind safety needs an LLM judge: add "judge" to the monitor (e.g. {"kind": "offline"})"#])
        #expect(paths(#"{"name":"m","destination":{"schema":"s"},"scorers":[{"name":"g","kind":"guidelines","guidelines":["x"]}]}"#)
            == ["scorers[0].kind"])
    }

    /// The offline judge cannot judge free-text guidelines: a `guidelines` scorer needs judge kind
    /// `openai`, and the refusal points at the scorer's `kind`.
    @Test func guidelinesNeedAnLLMJudge() throws {
        let verbatim = issues(designExampleVerbatim)
        #expect(verbatim.map(\.description) == [
            "scorers[3].kind: guidelines needs an LLM judge; the offline judge cannot judge free-text guidelines — configure judge.kind openai",
        ])
        #expect(verbatim.first?.message == MonitorConfig.offlineGuidelinesMessage)

        let offline = #"{"name":"m","destination":{"schema":"s"},"judge":{"kind":"offline"},"scorers":["#
        // Every other LLM kind is fine on the offline judge.
        #expect(paths(offline + #"{"name":"a","kind":"relevance_to_query"},{"name":"b","kind":"retrieval_groundedness"},{"name":"c","kind":"retrieval_relevance"},{"name":"d","kind":"safety"}]}"#) == [])
        #expect(paths(offline + #"{"name":"a","kind":"safety"},{"name":"g","kind":"guidelines","guidelines":["Be polite."]}]}"#) == ["scorers[1].kind"])
        // With an OpenAI judge the same scorer is accepted.
        let openai = #"{"name":"m","destination":{"schema":"s"},"judge":{"kind":"openai","base_url":"http://localhost:8080/v1","model":"m","api_key_env":"KEY"},"scorers":[{"name":"g","kind":"guidelines","guidelines":["Be polite."]}]}"#
        #expect(try MonitorConfig.parse(Array(openai.utf8)).scorers.first?.guidelines == ["Be polite."])
        // An invalid judge reports only the judge; a missing judge only "needs an LLM judge".
        #expect(paths(#"{"name":"m","destination":{"schema":"s"},"judge":{"kind":"magic"},"scorers":[{"name":"g","kind":"guidelines","guidelines":["x"]}]}"#) == ["judge.kind"])
        #expect(issues(#"{"name":"m","destination":{"schema":"s"},"scorers":[{"name":"g","kind":"guidelines","guidelines":["x"]}]}"#).map(\.message)
            == [#"scorer kind guidelines needs an LLM judge: add "judge" to the monitor (kind "openai": the offline judge cannot judge guidelines)"#])
    }

    @Test func namesAndSchemas() {
        func schemaIssues(_ schema: String) -> [String] {
            paths(#"{"name":"m","destination":{"schema":"\#(schema)"},"scorers":[]}"#)
        }
        #expect(schemaIssues("assay") == [])
        #expect(schemaIssues("_x9") == [])
        #expect(schemaIssues(String(repeating: "a", count: 63)) == [])
        #expect(schemaIssues(String(repeating: "a", count: 64)) == ["destination.schema"])
        #expect(schemaIssues("9lives") == ["destination.schema"])
        #expect(schemaIssues("pg_catalog") == ["destination.schema"])
        #expect(schemaIssues("information_schema") == ["destination.schema"])
        #expect(schemaIssues("a-b") == ["destination.schema"])
        #expect(schemaIssues("") == ["destination.schema"])
        #expect(paths(#"{"name":"m","scorers":[]}"#) == ["destination"])
        #expect(paths(#"{"destination":{"schema":"s"}}"#) == ["name", "scorers"])
        func scorerNameIssues(_ name: String) -> [String] {
            paths(#"{"name":"m","destination":{"schema":"s"},"scorers":[{"name":"\#(name)","kind":"latency"}]}"#)
        }
        #expect(scorerNameIssues("fast/enough-2_x") == [])
        #expect(scorerNameIssues("Fast") == ["scorers[0].name"])
        #expect(scorerNameIssues("") == ["scorers[0].name"])
        #expect(scorerNameIssues("a b") == ["scorers[0].name"])
        // retrieval_relevance also writes "<name>/precision".
        #expect(paths(#"{"name":"m","destination":{"schema":"s"},"judge":{"kind":"offline"},"scorers":[{"name":"rr/precision","kind":"latency"},{"name":"rr","kind":"retrieval_relevance"}]}"#)
            == ["scorers[1].name"])
    }

    @Test func notJSONOrNotAnObject() {
        #expect(issues("{").map(\.path) == [""])
        #expect(issues("{").first?.message.hasPrefix("not valid JSON") == true)
        #expect(issues("[]").map(\.description) == ["must be an object"])
        #expect(paths(#"{"name":"m","name":"n","destination":{"schema":"s"},"scorers":[]}"#) == ["name"])
    }

    @Test func rateBoundaries() throws {
        for rate in ["0", "1", "0.0", "1.0", "0.5", "1e-3"] {
            #expect(paths(#"{"name":"m","destination":{"schema":"s"},"scorers":[],"sample_rate":\#(rate)}"#) == [], "\(rate)")
        }
        for rate in ["1.0000001", "-0.0001", "1e999", "\"0.5\"", "true", "null"] {
            #expect(paths(#"{"name":"m","destination":{"schema":"s"},"scorers":[],"sample_rate":\#(rate)}"#) == ["sample_rate"], "\(rate)")
        }
    }

    @Test func errorDescriptionListsIssuesOnePerLine() {
        let error = MonitorConfigError(issues: [
            .init(path: "scorers[2].sample_rate", message: "must be between 0 and 1"),
            .init(path: "", message: "must be an object"),
        ])
        #expect(error.description == "scorers[2].sample_rate: must be between 0 and 1\nmust be an object")
    }
}

@Suite("Scoring ahead of a window's close")
struct OpenWindowPlanTests {
    static func config(_ scorers: String, paused: Bool = false) throws -> MonitorConfig {
        try MonitorConfig.parse(Array(#"{"name": "m", "destination": {"schema": "assay"}, "paused": \#(paused), "scorers": [\#(scorers)]}"#.utf8))
    }

    @Test("open windows are scored unless the monitor is paused, has no scorer, or caps a scorer per window")
    func scoresOpenWindows() throws {
        let plain = #"{"name": "a", "kind": "no_error"}, {"name": "b", "kind": "pii", "sample_rate": 0.2}"#
        #expect(ScoringPlan(config: try Self.config(plain)).scoresOpenWindows)
        #expect(!ScoringPlan(config: try Self.config(plain, paused: true)).scoresOpenWindows)
        #expect(!ScoringPlan(config: try Self.config("")).scoresOpenWindows)
        let capped = #"{"name": "a", "kind": "no_error"}, {"name": "b", "kind": "pii", "max_per_window": 10}"#
        #expect(!ScoringPlan(config: try Self.config(capped)).scoresOpenWindows, "the cap keeps the lowest-ρ traces of the whole window")
    }
}
