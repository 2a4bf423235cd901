import AssayCore
import Testing

/// An assessment as the pipeline would build one.
func sampleAssessment(
    feedback: Feedback = .value(.yes),
    spanID: String? = nil,
    rationale: String? = "The response answers the question.",
    name: String = "relevance_to_query",
    late: Bool = false
) -> Assessment {
    let traceID = "tr-0123456789abcdef0123456789abcdef"
    return Assessment(
        assessmentID: Assessment.id(traceID: traceID, spanID: spanID, name: name, configVersion: 3),
        name: name,
        traceID: traceID,
        spanID: spanID,
        source: AssessmentSource(sourceType: .llmJudge, sourceID: "assay-offline-judge/1 (not an LLM)"),
        createTimeMillis: 1_770_123_653_476,
        lastUpdateTimeMillis: 1_770_123_653_476,
        feedback: feedback,
        rationale: rationale,
        metadata: Assessment.standardMetadata(
            windowStartNanos: 1_770_123_600_000_000_000, configVersion: 3, sampleRate: 0.4,
            scorerVersion: "1", late: late
        ),
        valid: true
    )
}

@Suite("Assessments (invariant 7)")
struct AssessmentTests {
    @Test("create and last-update times: each instant written as itself, also when they differ")
    func updateTimeWrittenApart() throws {
        var assessment = sampleAssessment()
        assessment.lastUpdateTimeMillis += 1_000
        guard case .object(let object) = assessment.json() else { throw AssessmentDecodingError(path: "", message: "not an object") }
        #expect(object["create_time"] == .string("2026-02-03T13:00:53.476Z"))
        #expect(object["last_update_time"] == .string("2026-02-03T13:00:54.476Z"))
    }

    /// Expected ids from Python: uuid.uuid5(uuid.UUID("d722b8c3-cd4b-4332-9554-7d676c8ae792"), name).
    @Test func idsMatchPythonUUID5() {
        #expect(Assessment.idNamespace == "d722b8c3-cd4b-4332-9554-7d676c8ae792")
        #expect(Assessment.id(traceID: "tr-0123456789abcdef0123456789abcdef", spanID: nil, name: "safety", configVersion: 1)
            == "737da534-13ce-5d90-9b62-d09b5bae3f86")
        #expect(Assessment.id(traceID: "tr-0123456789abcdef0123456789abcdef", spanID: "00f067aa0ba902b7",
                              name: "retrieval_groundedness", configVersion: 3)
            == "e4921eb6-64a1-5c74-be6b-e34bd914efda")
        #expect(Assessment.id(traceID: "abc", spanID: "", name: "", configVersion: 0) == "4345c180-dc7f-5265-b407-a27446c1420e")
        #expect(Assessment.id(traceID: "tr-x", spanID: nil, name: "guidelines/é", configVersion: 42)
            == "36ae29b2-f068-5f3f-9ea2-84af0ff91060")
    }

    @Test func idsDifferByEveryComponent() {
        let base = Assessment.id(traceID: "t", spanID: "s", name: "n", configVersion: 1)
        #expect(base != Assessment.id(traceID: "u", spanID: "s", name: "n", configVersion: 1))
        #expect(base != Assessment.id(traceID: "t", spanID: nil, name: "n", configVersion: 1))
        #expect(base != Assessment.id(traceID: "t", spanID: "s", name: "m", configVersion: 1))
        #expect(base != Assessment.id(traceID: "t", spanID: "s", name: "n", configVersion: 2))
        #expect(base == Assessment.id(traceID: "t", spanID: "s", name: "n", configVersion: 1))
    }

    @Test func exactSerialisation() {
        let json = sampleAssessment().json().serialized()
        #expect(json == """
            {"assessment_id":"\(Assessment.id(traceID: "tr-0123456789abcdef0123456789abcdef", spanID: nil, name: "relevance_to_query", configVersion: 3))",\
            "assessment_name":"relevance_to_query","trace_id":"tr-0123456789abcdef0123456789abcdef",\
            "source":{"source_type":"LLM_JUDGE","source_id":"assay-offline-judge/1 (not an LLM)"},\
            "create_time":"2026-02-03T13:00:53.476Z","last_update_time":"2026-02-03T13:00:53.476Z",\
            "feedback":{"value":"yes"},"rationale":"The response answers the question.",\
            "metadata":{"config_version":"3","late":"false","sample_rate":"0.4","scorer_version":"1","window_start":"2026-02-03T13:00:00Z"},\
            "valid":true}
            """)
    }

    @Test("document() writes exactly the bytes of json().serialized(): every feedback form, span, rationale, update time, odd characters and metadata", arguments: [
        Feedback.value(.yes), .value(.no), .value(.bool(true)), .value(.bool(false)),
        .value(.number(5)), .value(.number(0.875)), .value(.number(-3)), .value(.number(1e300)),
        .value(.text("maybe \"quoted\" \\ back\nslash é 😀 \u{0}")), .value(.notApplicable),
        .error(code: "JUDGE_TIMEOUT", message: "no answer\tafter \u{1} 3 attempts"),
    ])
    func documentMatchesTree(feedback: Feedback) {
        for spanID in [nil, "00f067aa0ba902b7"] as [String?] {
            for rationale in [nil, "because", "line\nbreak, \"quote\", \u{0}NUL and ü"] as [String?] {
                for late in [false, true] {
                    var assessment = sampleAssessment(feedback: feedback, spanID: spanID, rationale: rationale, name: "guidelines/é", late: late)
                    #expect(assessment.document() == assessment.json().serialized())
                    assessment.lastUpdateTimeMillis += 1_500
                    assessment.valid = false
                    assessment.metadata["zz \"odd\" key"] = "value\u{7f}"
                    assessment.metadata["Aa"] = ""
                    #expect(assessment.document() == assessment.json().serialized())
                }
            }
        }
    }

    @Test func serialisationIsDeterministic() {
        // Dictionary iteration order varies between instances; the bytes must not.
        var metadata: [String: String] = [:]
        for index in 0..<50 { metadata["key\(index)"] = "v\(index)" }
        var first = sampleAssessment()
        first.metadata = metadata
        var second = sampleAssessment()
        second.metadata = Dictionary(uniqueKeysWithValues: metadata.reversed())
        #expect(first.json().serializedUTF8() == second.json().serializedUTF8())
    }

    @Test(arguments: [
        Feedback.value(.yes), .value(.no), .value(.bool(true)), .value(.bool(false)),
        .value(.number(5)), .value(.number(0.875)), .value(.number(-3)), .value(.number(1e300)),
        .value(.text("maybe")), .value(.notApplicable),
        .error(code: "JUDGE_TIMEOUT", message: "no answer after 3 attempts"),
    ])
    func roundTrip(feedback: Feedback) throws {
        for spanID in [nil, "00f067aa0ba902b7"] as [String?] {
            for rationale in [nil, "because"] as [String?] {
                let original = sampleAssessment(feedback: feedback, spanID: spanID, rationale: rationale)
                let bytes = original.json().serializedUTF8()
                let parsed = try Assessment(json: JSONParser().parse(bytes))
                #expect(parsed == original)
                #expect(parsed.json().serializedUTF8() == bytes)
            }
        }
    }

    @Test func feedbackValueForms() {
        #expect(FeedbackValue.yes.json() == "yes")
        #expect(FeedbackValue.no.json() == "no")
        #expect(FeedbackValue.number(5).json() == .number("5"))
        #expect(FeedbackValue.number(-0.0).json() == .number("0"))
        #expect(FeedbackValue.number(9_007_199_254_740_992).json() == .number("9007199254740992"))
        #expect(FeedbackValue.number(0.1).json() == .number("0.1"))
        #expect(FeedbackValue.number(1e300).json() == .number("1e+300"))
        #expect(FeedbackValue.number(.nan).json() == "NaN")
        #expect(FeedbackValue.number(-.infinity).json() == "-Infinity")
        #expect(FeedbackValue.notApplicable.json() == .null)
        #expect(FeedbackValue.text("yes") == .yes)
        #expect(FeedbackValue.text("Yes") != .yes)
        #expect(FeedbackValue.yes.isPass && FeedbackValue.bool(true).isPass && FeedbackValue.text("yes").isPass)
        #expect(!FeedbackValue.no.isPass && !FeedbackValue.notApplicable.isPass && !FeedbackValue.number(1).isPass)
    }

    @Test func notApplicableShape() throws {
        var assessment = sampleAssessment(feedback: .value(.notApplicable), rationale: "No RETRIEVER span in the trace.")
        assessment.metadata["not_applicable"] = "false"  // ignored: the marker is derived from the feedback
        let json = assessment.json()
        #expect(json["feedback"] == .object(["value": .null]))
        #expect(json["metadata"]?["not_applicable"] == "true")
        #expect(json["rationale"] == "No RETRIEVER span in the trace.")
        #expect(assessment.isNotApplicable)
        let parsed = try Assessment(json: json)
        #expect(parsed.metadata["not_applicable"] == nil)
        #expect(parsed.feedback == .value(.notApplicable))
        // A plain value never carries the marker.
        #expect(sampleAssessment().json()["metadata"]?["not_applicable"] == nil)
    }

    @Test func errorShape() {
        let json = sampleAssessment(feedback: .error(code: "RATE_LIMITED", message: "429 after 5 retries"), rationale: nil).json()
        #expect(json["feedback"] == .object(["error": .object(["error_code": "RATE_LIMITED", "error_message": "429 after 5 retries"])]))
        #expect(json["rationale"] == nil)
        #expect(json["span_id"] == nil)
    }

    @Test func standardMetadata() {
        let metadata = Assessment.standardMetadata(
            windowStartNanos: 1_770_123_650_500_000_000, configVersion: 12, sampleRate: 1.0, scorerVersion: "2", late: true
        )
        #expect(metadata == [
            "window_start": "2026-02-03T13:00:50.500Z", "config_version": "12", "sample_rate": "1.0",
            "scorer_version": "2", "late": "true",
        ])
    }

    @Test(arguments: [
        ("not an object", #"[1]"#, ""),
        ("bad id", #"{"assessment_id":"X"}"#, "assessment_id"),
        ("unknown field", #"{"assessment_id":"737da534-13ce-5d90-9b62-d09b5bae3f86","extra":1}"#, "extra"),
    ])
    func rejectsMalformedDocuments(label: String, text: String, path: String) throws {
        let document = try JSONParser().parse(text)
        #expect(throws: AssessmentDecodingError.self, "\(label)") { try Assessment(json: document) }
        do {
            _ = try Assessment(json: document)
        } catch {
            #expect(error.path == path, "\(label): \(error)")
        }
    }

    @Test func rejectsInconsistentNotApplicable() throws {
        var json = try #require(sampleAssessment().json().objectValue)
        // null value without the marker
        json["feedback"] = .object(["value": .null])
        #expect(throws: AssessmentDecodingError(path: "feedback.value", message: "null is allowed only with metadata.not_applicable = \"true\"")) {
            try Assessment(json: .object(json))
        }
        // marker beside a real value
        var metadata = try #require(json["metadata"]?.objectValue)
        metadata["not_applicable"] = "true"
        json["metadata"] = .object(metadata)
        json["feedback"] = .object(["value": "yes"])
        #expect(throws: AssessmentDecodingError.self) { try Assessment(json: .object(json)) }
        // marker beside an error
        json["feedback"] = .object(["error": .object(["error_code": "X", "error_message": "y"])])
        #expect(throws: AssessmentDecodingError.self) { try Assessment(json: .object(json)) }
    }

    @Test func timeFormatting() {
        #expect(TimeFormatting.rfc3339(millis: 0) == "1970-01-01T00:00:00.000Z")
        #expect(TimeFormatting.rfc3339(millis: -1) == "1969-12-31T23:59:59.999Z")
        #expect(TimeFormatting.rfc3339(millis: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(TimeFormatting.rfc3339(nanos: 1_770_123_653_476_857_750, fraction: .milliseconds) == "2026-02-03T13:00:53.476Z")
        #expect(TimeFormatting.rfc3339(nanos: 1_770_123_653_476_857_750, fraction: .shortestExact) == "2026-02-03T13:00:53.476857750Z")
        #expect(TimeFormatting.rfc3339(nanos: 1_770_123_653_476_857_000, fraction: .shortestExact) == "2026-02-03T13:00:53.476857Z")
        #expect(TimeFormatting.rfc3339(nanos: -1, fraction: .shortestExact) == "1969-12-31T23:59:59.999999999Z")
        #expect(TimeFormatting.rfc3339(nanos: .min, fraction: .milliseconds) == "1677-09-21T00:12:43.145Z")
        #expect(TimeFormatting.rfc3339(nanos: .max, fraction: .shortestExact) == "2262-04-11T23:47:16.854775807Z")
        // Round trip through the parser across the range it accepts (from Int64.min + 1 s: the
        // parser cannot represent the first fraction of a second of 1677-09-21T00:12:43Z).
        var nanos: Int64 = .min + 1_000_000_000
        while true {
            let text = TimeFormatting.rfc3339(nanos: nanos, fraction: .shortestExact)
            #expect(TimeParsing.rfc3339Nanoseconds(text) == nanos, "\(text)")
            let (next, overflow) = nanos.addingReportingOverflow(987_654_321_987_654_321 / 37)
            if overflow { break }
            nanos = next
        }
    }
}
