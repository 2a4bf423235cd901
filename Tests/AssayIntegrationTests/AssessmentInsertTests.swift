import AssayCore
import Foundation
import Postgres
import Testing
@testable import AssayStore

/// A chunk's assessments: new ids stored and queued for publishing once, in id order; an id
/// stored before keeps its first value and is not published again.
@Suite("Storing a chunk's assessments")
struct AssessmentInsertTests {
    static let windowStart: Int64 = 1_770_000_000_000_000_000

    static func assessment(trace: String, name: String, value: FeedbackValue, rationale: String? = nil) -> NewAssessment {
        let id = Assessment.id(traceID: trace, spanID: nil, name: name, configVersion: 1)
        let assessment = Assessment(
            assessmentID: id, name: name, traceID: trace, spanID: nil,
            source: AssessmentSource(sourceType: .code, sourceID: "assay/\(name)@1"),
            createTimeMillis: 1_770_000_000_000, lastUpdateTimeMillis: 1_770_000_000_000,
            feedback: .value(value), rationale: rationale, metadata: ["assay.window_start": "x"])
        return NewAssessment(assessment: assessment, scorerName: name, outcome: value.isPass ? .pass : .fail, late: false)
    }

    static func insert(_ items: [NewAssessment], env: Environment) async throws -> Int {
        try await env.pool.withConnection { connection in
            try connection.transaction { connection in
                try ScoringStore.insertAssessments(items, windowStartNanos: windowStart, configVersion: 1, on: connection)
            }
        }
    }

    /// (assessment id, value) of `assessments`, and (message key, payload) of `outbox` in id order.
    static func stored(_ env: Environment) async throws -> (assessments: [String: String], outbox: [(key: String, payload: String)]) {
        try await env.pool.withConnection { connection in
            var assessments: [String: String] = [:]
            for row in try connection.query("SELECT assessment_id::text, value, window_start_ns, config_version FROM assessments") {
                #expect(try row.int64(2) == windowStart)
                #expect(try row.int64(3) == 1)
                assessments[try row.string(0)] = try row.string(1)
            }
            let outbox = try connection.query("SELECT message_key, payload FROM outbox WHERE schema_name = 'assessment/v1' ORDER BY id")
                .map { (key: try $0.string(0), payload: try $0.string(1)) }
            return (assessments, outbox)
        }
    }

    @Test("new ids: every assessment stored with its document, and queued once in id order")
    func newIds() async throws {
        try await Environment.with(partitions: 1) { env in
            let items = (0..<20).map { Self.assessment(trace: "t\($0)", name: "relevance", value: $0 % 3 == 0 ? .no : .yes, rationale: "r\t\($0)\n") }
            #expect(try await Self.insert(items, env: env) == 20)
            let (assessments, outbox) = try await Self.stored(env)
            #expect(assessments.count == 20)
            let ids = items.map(\.assessment.assessmentID).sorted()
            #expect(outbox.map { try? Assessment(json: JSONParser().parse($0.payload)).assessmentID } == ids)
            for item in items {
                let document = item.assessment.json().serialized()
                #expect(outbox.contains { $0.key == item.assessment.traceID && $0.payload == document })
            }
        }
    }

    @Test("ids stored before keep their first value and are not queued again; the new ones are")
    func conflictsMerge() async throws {
        try await Environment.with(partitions: 1) { env in
            let first = (0..<10).map { Self.assessment(trace: "t\($0)", name: "safety", value: .yes) }
            #expect(try await Self.insert(first, env: env) == 10)
            // A second pass: ids 5..<10 again with another value, and 10..<15 new.
            let second = (5..<15).map { Self.assessment(trace: "t\($0)", name: "safety", value: .no) }
            #expect(try await Self.insert(second, env: env) == 5)
            let (assessments, outbox) = try await Self.stored(env)
            #expect(assessments.count == 15)
            for index in 0..<15 {
                let id = Assessment.id(traceID: "t\(index)", spanID: nil, name: "safety", configVersion: 1)
                #expect(assessments[id] == (index < 10 ? FeedbackValue.yes : FeedbackValue.no).json().serialized(), "t\(index)")
            }
            #expect(outbox.count == 15)
            #expect(Set(outbox.map(\.key)).count == 15, "each trace's assessment queued once")
            let secondIDs = (10..<15).map { Assessment.id(traceID: "t\($0)", spanID: nil, name: "safety", configVersion: 1) }.sorted()
            #expect(outbox.suffix(5).map { try? Assessment(json: JSONParser().parse($0.payload)).assessmentID } == secondIDs)
        }
    }
}
