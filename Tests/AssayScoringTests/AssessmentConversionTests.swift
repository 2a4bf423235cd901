import AssayCore
import AssayScoring
import AssayTestSupport
import Foundation
import Testing

@Suite("Scorer outcomes become schema-valid assessments")
struct AssessmentConversionTests {
    static let context = AssessmentContext(
        traceID: "tr-4ef05303124bb70437006242ddc1e3be", windowStartNanos: 1_770_123_600_000_000_000,
        configVersion: 3, sampleRate: 0.4, late: false, createTimeMillis: 1_770_123_700_123
    )

    static func checker() throws -> JSONSchemaChecker {
        try JSONSchemaChecker(schemaBytes: Fixtures.bytes("schemas/assessment.schema.json"))
    }

    /// One scorer of every code kind, with settings that exercise yes, no, numbers and N/A.
    static let scorers: [any CodeScorer] = [
        LatencyScorer(name: "fast_enough", maxMillis: 2000),
        NoErrorScorer(name: "no_error"),
        PIIScorer(name: "no_pii"),
        RegexScorer(name: "mentions_portal", pattern: "(?i)hr portal"),
        ContainsScorer(name: "says_days", text: "days"),
        ContainsScorer(name: "no_salary", text: "salary", negated: true),
        OutputLengthScorer(name: "output_length", minChars: 100, maxChars: 280),
        ValidJSONScorer(name: "valid_json_output"),
        TokenUsageScorer(name: "tokens"),
        TokenUsageScorer(name: "token_budget", maxTotalTokens: 500),
    ]

    @Test("every outcome on every sample validates against assessment.schema.json", arguments: Samples.forArguments)
    func schemaValid(sample: LabelledTrace) async throws {
        let checker = try Self.checker()
        var context = Self.context
        context.traceID = sample.trace.traceID
        for scorer in Self.scorers {
            for assessment in await scorer.assessments(for: sample.trace, context: context) {
                let json = assessment.json()
                let violations = checker.violations(of: json)
                #expect(violations.isEmpty, "\(scorer.name): \(violations) in \(json.serialized())")
                // And it reads back as the same assessment.
                #expect(try Assessment(json: json) == assessment)
            }
        }
    }

    @Test func outcomeFieldsMapOntoTheAssessment() throws {
        let checker = try Self.checker()
        let scorer = LatencyScorer(name: "fast_enough", maxMillis: 2000)
        let source = AssessmentSource(sourceType: .code, sourceID: "assay/code/latency@1")

        let value = ScorerOutcome(assessmentName: "fast_enough", result: .value(.no, rationale: "too slow"),
                                  extraMetadata: ["duration_ms": "2500", "late": "spoofed", "not_applicable": "true"])
        let valued = scorer.assessment(for: value, context: Self.context)
        #expect(valued.assessmentID == Assessment.id(traceID: Self.context.traceID, spanID: nil, name: "fast_enough", configVersion: 3))
        #expect(valued.source == source)
        #expect(valued.feedback == .value(.no))
        #expect(valued.rationale == "too slow")
        #expect(valued.createTimeMillis == Self.context.createTimeMillis && valued.lastUpdateTimeMillis == Self.context.createTimeMillis)
        #expect(valued.metadata == [
            "duration_ms": "2500", "late": "false", "config_version": "3", "sample_rate": "0.4",
            "scorer_version": "1", "window_start": "2026-02-03T13:00:00Z",
        ])
        #expect(checker.isValid(valued.json()))

        let notApplicable = scorer.assessment(for: ScorerOutcome(assessmentName: "fast_enough", result: .notApplicable(reason: "no duration")), context: Self.context)
        #expect(notApplicable.isNotApplicable)
        #expect(notApplicable.rationale == "no duration")
        #expect(notApplicable.json()["metadata"]?["not_applicable"] == "true")
        #expect(notApplicable.json()["feedback"]?["value"] == .null)
        #expect(checker.isValid(notApplicable.json()))

        let failed = scorer.assessment(for: ScorerOutcome(assessmentName: "fast_enough", result: .error(code: "TIMEOUT", message: "judge timed out")), context: Self.context)
        #expect(failed.feedback == .error(code: "TIMEOUT", message: "judge timed out"))
        #expect(failed.rationale == nil)
        #expect(checker.isValid(failed.json()))

        let perSpan = scorer.assessment(for: ScorerOutcome(assessmentName: "retrieval_relevance/precision", spanID: "a1b2c3d4e5f60718", result: .value(.number(0.5), rationale: "1 of 2")), context: Self.context)
        #expect(perSpan.spanID == "a1b2c3d4e5f60718")
        #expect(perSpan.name == "retrieval_relevance/precision")
        #expect(perSpan.assessmentID != valued.assessmentID)
        #expect(checker.isValid(perSpan.json()))
    }

    @Test func reScoringGivesTheSameIDsAndANewConfigVersionNewOnes() async throws {
        let sample = try Samples.first("rag", "pii")
        let scorer = PIIScorer(name: "no_pii")
        var context = Self.context
        context.traceID = sample.trace.traceID
        let first = await scorer.assessments(for: sample.trace, context: context)
        let again = await scorer.assessments(for: sample.trace, context: context)
        #expect(first == again)
        context.configVersion = 4
        let bumped = await scorer.assessments(for: sample.trace, context: context)
        #expect(bumped.map(\.assessmentID) != first.map(\.assessmentID))
        #expect(first.first?.feedback == .value(.no))
    }
}

@Suite("The fixture copy of assessment.schema.json has not drifted")
struct SchemaDriftTests {
    @Test(.enabled(if: RepositoryFiles.schemasDirectory != nil, "repository schemas/ not reachable from #filePath"))
    func fixtureCopyEqualsRepositoryFile() throws {
        let directory = try #require(RepositoryFiles.schemasDirectory)
        let repository = [UInt8](try Data(contentsOf: directory.appendingPathComponent("assessment.schema.json")))
        let fixture = try Fixtures.bytes("schemas/assessment.schema.json")
        #expect(!repository.isEmpty)
        #expect(fixture == repository, """
            Tests/AssayScoringTests/Fixtures/schemas/assessment.schema.json differs from schemas/assessment.schema.json \
            (\(fixture.count) vs \(repository.count) bytes); copy schemas/assessment.schema.json over the fixture
            """)
    }
}
