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
            let outbox = try connection.query("SELECT message_key, payload FROM outbox_messages WHERE schema_name = 'assessment/v1' ORDER BY id")
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

    @Test("an assessment's message holds no copy of the document, only the assessment's id")
    func messagesReferenceAssessments() async throws {
        try await Environment.with(partitions: 1) { env in
            let items = (0..<8).map { Self.assessment(trace: "t\($0)", name: "relevance", value: .yes) }
            _ = try await Self.insert(items, env: env)
            let rows = try await env.pool.withConnection { connection in
                try connection.query("SELECT assessment_id::text, payload IS NULL FROM outbox WHERE schema_name = 'assessment/v1' ORDER BY id")
                    .map { (id: try $0.optionalString(0), withoutPayload: try $0.bool(1)) }
            }
            #expect(rows.map(\.id) == items.map(\.assessment.assessmentID).sorted())
            #expect(rows.allSatisfy { $0.withoutPayload })
        }
    }

    @Test("publishing sends each stored document byte for byte in id order; a message of a deleted assessment is marked, not sent, and reported")
    func publishingReadsStoredDocuments() async throws {
        try await Environment.with(partitions: 1) { env in
            // A message queued before schema version 13 carries its payload; it goes out as it is.
            try await env.pool.withConnection {
                _ = try $0.execute("INSERT INTO outbox (message_key, schema_name, payload) VALUES ('legacy', 'assessment/v1', '{\"legacy\":true}')")
            }
            let items = (0..<6).map { Self.assessment(trace: "t\($0)", name: "safety", value: $0 % 2 == 0 ? .yes : .no) }
            _ = try await Self.insert(items, env: env)
            let deleted = items[2].assessment.assessmentID
            try await env.pool.withConnection { _ = try $0.execute("DELETE FROM assessments WHERE assessment_id = $1::uuid", [.text(deleted)]) }

            let store = ScoringStore()
            let (batch, sent) = try await env.pool.withConnection { connection in
                var sent: [OutboxMessage] = []
                let batch = try store.publishPending(limit: 100, on: connection) { sent += $0 }
                return (batch, sent)
            }
            let expected = items.filter { $0.assessment.assessmentID != deleted }.sorted { $0.assessment.assessmentID < $1.assessment.assessmentID }
            #expect(sent.map(\.payload) == [#"{"legacy":true}"#] + expected.map { $0.assessment.json().serialized() })
            #expect(sent.map(\.key) == ["legacy"] + expected.map(\.assessment.traceID))
            #expect(batch.published == 6)
            #expect(batch.unsendable.count == 1)
            let unpublished = try await env.pool.withConnection { try $0.query("SELECT count(*) FROM outbox WHERE published_at IS NULL")[0].int(0) }
            #expect(unpublished == 0, "the unsendable message does not hold up the outbox")
            let again = try await env.pool.withConnection { try store.publishPending(limit: 100, on: $0) { _ in Issue.record("nothing left to send") } }
            #expect(again == OutboxBatch())
        }
    }
}
