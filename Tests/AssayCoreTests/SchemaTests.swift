import AssayCore
import AssayTestSupport
import Testing

private func checker(_ name: String) throws -> JSONSchemaChecker {
    try JSONSchemaChecker(schemaBytes: Fixtures.bytes("schemas/\(name)"))
}

private func object(_ value: JSONValue) throws -> JSONObject {
    try #require(value.objectValue)
}

@Suite("JSON Schema checker")
struct JSONSchemaCheckerTests {
    @Test func refusesUnsupportedKeywords() throws {
        for keyword in ["format", "patternProperties", "if", "prefixItems", "unevaluatedProperties", "propertyNames", "minProperties", "dependentRequired"] {
            let schema: JSONValue = .object(["type": "object", "properties": .object(["a": .object([keyword: "x"])])])
            #expect(throws: JSONSchemaError.self, "\(keyword)") { try JSONSchemaChecker(schema: schema) }
        }
        #expect(throws: JSONSchemaError.self) { try JSONSchemaChecker(schema: ["$ref": "#/$defs/missing"]) }
        #expect(throws: JSONSchemaError.self) { try JSONSchemaChecker(schema: ["$ref": "other.json#/x"]) }
        #expect(throws: JSONSchemaError.self) { try JSONSchemaChecker(schema: ["type": "text"]) }
        #expect(throws: JSONSchemaError.self) { try JSONSchemaChecker(schema: ["pattern": "("]) }
        #expect(throws: JSONSchemaError.self) { try JSONSchemaChecker(schema: ["$schema": "http://json-schema.org/draft-07/schema#"]) }
        #expect(throws: JSONSchemaError.self) { try JSONSchemaChecker(schema: ["items": .object(["$defs": .object([:])])]) }
        #expect(throws: JSONSchemaError.self) { try JSONSchemaChecker(schemaBytes: Array("{".utf8)) }
    }

    @Test func keywords() throws {
        let schema = try JSONSchemaChecker(schema: JSONValue(parsing: """
            {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "t",
             "type": "object", "additionalProperties": false, "required": ["n", "s"],
             "properties": {
               "n": {"type": "integer", "minimum": 1, "exclusiveMaximum": 10},
               "x": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1},
               "s": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"},
               "e": {"enum": ["a", 1, {"k": [1, 2]}]},
               "c": {"const": 1},
               "l": {"type": "array", "items": {"$ref": "#/$defs/small"}, "minItems": 1, "maxItems": 3, "uniqueItems": true},
               "o": {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "number", "maximum": 0}]},
               "a": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
               "al": {"allOf": [{"type": "string"}, {"minLength": 3}]},
               "no": {"not": {"const": "forbidden"}},
               "m": {"type": "object", "additionalProperties": {"type": "string"}}
             },
             "$defs": {"small": {"type": "integer", "maximum": 5}}}
            """))
        func valid(_ text: String) throws -> Bool { schema.isValid(try JSONValue(parsing: text)) }
        #expect(try valid(#"{"n": 1, "s": "ab"}"#))
        #expect(try valid(#"{"n": 9.0, "s": "abcd", "x": null, "e": {"k": [1.0, 2]}, "c": 1.0, "l": [1, 5], "o": -1.5, "a": true, "al": "abc", "no": "ok", "m": {"q": "r"}}"#))
        #expect(try !valid(#"{"n": 1}"#))  // required
        #expect(try !valid(#"{"n": 1, "s": "ab", "zz": 1}"#))  // additionalProperties false
        #expect(try !valid(#"{"n": 1.5, "s": "ab"}"#))  // integer
        #expect(try !valid(#"{"n": 0, "s": "ab"}"#))  // minimum
        #expect(try !valid(#"{"n": 10, "s": "ab"}"#))  // exclusiveMaximum
        #expect(try !valid(#"{"n": 1, "s": "ab", "x": 0}"#))  // exclusiveMinimum
        #expect(try !valid(#"{"n": 1, "s": "ab", "x": 1.01}"#))  // maximum
        #expect(try !valid(#"{"n": 1, "s": "a"}"#))  // minLength
        #expect(try !valid(#"{"n": 1, "s": "abcde"}"#))  // maxLength
        #expect(try !valid(#"{"n": 1, "s": "aB"}"#))  // pattern
        #expect(try !valid(#"{"n": 1, "s": "ab", "e": "b"}"#))  // enum
        #expect(try !valid(#"{"n": 1, "s": "ab", "e": {"k": [2, 1]}}"#))  // enum (array order matters)
        #expect(try !valid(#"{"n": 1, "s": "ab", "c": 2}"#))  // const
        #expect(try !valid(#"{"n": 1, "s": "ab", "l": []}"#))  // minItems
        #expect(try !valid(#"{"n": 1, "s": "ab", "l": [1, 2, 3, 4]}"#))  // maxItems
        #expect(try !valid(#"{"n": 1, "s": "ab", "l": [1, 1.0]}"#))  // uniqueItems
        #expect(try !valid(#"{"n": 1, "s": "ab", "l": [6]}"#))  // $ref
        #expect(try !valid(#"{"n": 1, "s": "ab", "o": true}"#))  // oneOf: none
        #expect(try !valid(#"{"n": 1, "s": "ab", "o": 0}"#))  // oneOf: integer and number ≤ 0 both match
        #expect(try !valid(#"{"n": 1, "s": "ab", "a": 1}"#))  // anyOf
        #expect(try !valid(#"{"n": 1, "s": "ab", "al": "ab"}"#))  // allOf
        #expect(try !valid(#"{"n": 1, "s": "ab", "no": "forbidden"}"#))  // not
        #expect(try !valid(#"{"n": 1, "s": "ab", "m": {"q": 1}}"#))  // additionalProperties schema
        #expect(try !valid(#"[]"#))  // type
    }

    @Test func violationsNameThePlace() throws {
        let schema = try JSONSchemaChecker(schema: JSONValue(parsing: #"{"properties": {"a/b": {"items": {"type": "string"}}}}"#))
        let violations = schema.violations(of: try JSONValue(parsing: #"{"a/b": ["x", 2]}"#))
        #expect(violations == [JSONSchemaViolation(instancePath: "/a~1b/1", schemaPath: "/properties/a~1b/items/type", message: "must be of type string, not number")])
    }
}

@Suite("Output documents validate against schemas/")
struct OutputSchemaTests {
    @Test func repositorySchemasAreAccepted() throws {
        for name in ["monitor.schema.json", "assessment.schema.json", "window-summary.schema.json"] {
            _ = try checker(name)
        }
    }

    @Test func assessments() throws {
        let schema = try checker("assessment.schema.json")
        let feedbacks: [Feedback] = [
            .value(.yes), .value(.no), .value(.bool(false)), .value(.number(0.5)), .value(.number(3)),
            .value(.text("free text")), .value(.notApplicable), .error(code: "JUDGE_TIMEOUT", message: "timed out"),
        ]
        for feedback in feedbacks {
            for spanID in [nil, "00f067aa0ba902b7"] as [String?] {
                let json = sampleAssessment(feedback: feedback, spanID: spanID, late: spanID != nil).json()
                #expect(schema.violations(of: json) == [], "\(feedback) \(json.serialized())")
            }
        }
        let human = Assessment(
            assessmentID: Assessment.id(traceID: "t", spanID: nil, name: "label", configVersion: 1), name: "label",
            traceID: "t", spanID: nil, source: AssessmentSource(sourceType: .human, sourceID: "alice"),
            createTimeMillis: 0, lastUpdateTimeMillis: 1, feedback: .value(.no), rationale: nil,
            metadata: Assessment.standardMetadata(windowStartNanos: 0, configVersion: 1, sampleRate: 1e-5, scorerVersion: "h", late: false)
        )
        #expect(schema.violations(of: human.json()) == [])
    }

    @Test func brokenAssessmentsFail() throws {
        let schema = try checker("assessment.schema.json")
        var json = try object(sampleAssessment().json())
        // Each mutation alone must break the document.
        var mutations: [(String, JSONObject)] = []
        var copy = json
        copy["assessment_id"] = "not-a-uuid"
        mutations.append(("id", copy))
        copy = json
        copy["source"] = .object(["source_type": "AI", "source_id": "x"])
        mutations.append(("source type", copy))
        copy = json
        copy["create_time"] = "2026-02-03T13:00:53Z"
        mutations.append(("time without millis", copy))
        copy = json
        copy["feedback"] = .object(["value": "yes", "error": .object(["error_code": "E", "error_message": "m"])])
        mutations.append(("value and error", copy))
        copy = json
        copy["feedback"] = .object(["value": .null])
        mutations.append(("null without marker", copy))
        copy = json
        copy["metadata"] = .object(["late": "false"])
        mutations.append(("metadata missing config_version", copy))
        copy = json
        copy["surprise"] = true
        mutations.append(("unknown field", copy))
        copy = json
        copy["valid"] = nil
        mutations.append(("missing valid", copy))
        for (label, document) in mutations {
            #expect(!schema.isValid(.object(document)), "\(label)")
        }
        json["feedback"] = .object(["value": "yes"])
        #expect(schema.isValid(.object(json)))
    }

    @Test func windowSummaries() throws {
        let schema = try checker("window-summary.schema.json")
        #expect(schema.violations(of: sampleSummary().json()) == [])
        let empty = WindowScorerSummary(
            windowStartNanos: 0, windowEndNanos: 10_000_000_000, scorerName: "x", configVersion: 1,
            eligible: 0, filteredOut: 0, sampledOut: 0, notApplicable: 0, errored: 0, scored: 0, passed: 0, lateScored: 0
        )
        #expect(schema.violations(of: empty.json()) == [])
        var broken = try object(sampleSummary().json())
        broken["passed"] = -1
        #expect(!schema.isValid(.object(broken)))
        broken = try object(sampleSummary().json())
        broken["pass_rate"] = 1.5
        #expect(!schema.isValid(.object(broken)))
        broken = try object(sampleSummary().json())
        broken["tokens"] = nil
        #expect(!schema.isValid(.object(broken)))
    }

    @Test func monitorDocuments() throws {
        let schema = try checker("monitor.schema.json")
        #expect(schema.violations(of: MonitorConfig.demoDefault.json()) == [])
        let design = try MonitorConfig.parse(Array(designExampleMonitor.utf8))
        #expect(schema.violations(of: try JSONValue(parsing: designExampleMonitor)) == [])
        #expect(schema.violations(of: design.json()) == [])
        var openai = MonitorConfig.demoDefault
        openai.judge = JudgeConfig(kind: .openai, baseURL: "https://api.openai.com/v1", model: "gpt-4o-mini", apiKeyEnv: "OPENAI_API_KEY", maxConcurrency: 8, maxCallsPerWindow: 5000)
        openai.scorers.append(ScorerConfig(name: "mlflow_only", kind: .guidelines, guidelines: ["Refuse off-topic requests."]))
        #expect(try MonitorConfig.parse(openai.json().serializedUTF8()) == openai)
        #expect(schema.violations(of: openai.json()) == [])
    }

    /// Documents MonitorConfig.parse rejects for a rule JSON Schema can express must fail the
    /// schema too.
    @Test(arguments: [
        #"{"name":"m","destination":{"schema":"s"},"scorers":[],"extra":1}"#,
        #"{"name":"m","destination":{"schema":"S"},"scorers":[]}"#,
        #"{"name":"m","destination":{"schema":"pg_x"},"scorers":[]}"#,
        #"{"name":"m","destination":{"schema":"s"},"scorers":[],"sample_rate":1.5}"#,
        #"{"name":"m","destination":{"schema":"s"},"scorers":[],"window":"0s"}"#,
        #"{"name":"m","destination":{"schema":"s"},"scorers":[],"window":"15min"}"#,
        #"{"name":"m","destination":{"schema":"s"},"scorers":[],"paused":"no"}"#,
        #"{"name":"m","destination":{"schema":"s"},"scorers":[{"name":"safety","kind":"safety"}]}"#,
        #"{"name":"m","destination":{"schema":"s"},"judge":{"kind":"openai"},"scorers":[]}"#,
        #"{"name":"m","destination":{"schema":"s"},"judge":{"kind":"openai","base_url":"https://x","model":"m","api_key_env":"sk-live"},"scorers":[]}"#,
        #"{"name":"m","destination":{"schema":"s"},"judge":{"kind":"offline","model":"m"},"scorers":[]}"#,
        #"{"name":"m","destination":{"schema":"s"},"judge":{"kind":"offline"},"scorers":[{"name":"g","kind":"guidelines"}]}"#,
        #"{"name":"m","destination":{"schema":"s"},"judge":{"kind":"offline"},"scorers":[{"name":"g","kind":"guidelines","guidelines":["a","a"]}]}"#,
        #"{"name":"m","destination":{"schema":"s"},"scorers":[{"name":"l","kind":"latency","guidelines":["a"]}]}"#,
        #"{"name":"m","destination":{"schema":"s"},"scorers":[{"name":"L","kind":"latency"}]}"#,
        #"{"name":"m","destination":{"schema":"s"},"scorers":[{"name":"l","kind":"telepathy"}]}"#,
        #"{"name":"m","destination":{"schema":"s"},"scorers":[{"name":"l","kind":"latency","max_per_window":0}]}"#,
        #"{"name":"m","destination":{"schema":"s"},"scorers":[{"name":"l","kind":"latency","params":[]}]}"#,
    ])
    func brokenMonitorsFailBothChecks(document: String) throws {
        let schema = try checker("monitor.schema.json")
        #expect(!schema.isValid(try JSONValue(parsing: document)), "schema accepted \(document)")
        #expect(throws: MonitorConfigError.self, "parse accepted \(document)") { try MonitorConfig.parse(Array(document.utf8)) }
    }
}
