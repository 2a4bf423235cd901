import AssayCore
import Foundation
import Postgres
import Testing
@testable import AssayStore

/// A chunk's assessments: new ids stored and queued for publishing once, in id order, in one
/// outbox row; an id stored before keeps its first value and is not published again.
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

    /// (assessment id, value) of `assessments`, and (message key, payload) of every message in
    /// outbox order.
    static func stored(_ env: Environment) async throws -> (assessments: [String: String], outbox: [(key: String, payload: String)]) {
        try await env.pool.withConnection { connection in
            var assessments: [String: String] = [:]
            for row in try connection.query("SELECT assessment_id::text, value, window_start_ns, config_version FROM assessments") {
                #expect(try row.int64(2) == windowStart)
                #expect(try row.int64(3) == 1)
                assessments[try row.string(0)] = try row.string(1)
            }
            let outbox = try connection.query("SELECT message_key, payload FROM outbox_messages WHERE schema_name = 'assessment/v1' ORDER BY id, position")
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

    @Test("a chunk's messages share one outbox row that names its assessments in id order and copies no document")
    func chunkSharesOneRow() async throws {
        try await Environment.with(partitions: 1) { env in
            let items = (0..<8).map { Self.assessment(trace: "t\($0)", name: "relevance", value: .yes) }
            _ = try await Self.insert(items, env: env)
            let rows = try await env.pool.withConnection { connection in
                try connection.query("""
                    SELECT array_to_string(assessment_ids, ','), message_count, payload = '' AND assessment_id IS NULL AND message_key IS NULL
                    FROM outbox WHERE schema_name = 'assessment/v1'
                    """).map { (ids: try $0.string(0), count: try $0.int(1), onlyTheList: try $0.bool(2)) }
            }
            #expect(rows.count == 1)
            #expect(rows.first?.ids == items.map(\.assessment.assessmentID).sorted().joined(separator: ","))
            #expect(rows.first?.count == 8)
            #expect(rows.first?.onlyTheList == true)
            let backlog = try await env.pool.withConnection { try ScoringStore().outboxBacklog(on: $0) }
            #expect(backlog == 8, "the backlog counts messages, not rows")
        }
    }

    @Test("a publisher from before version 15 fails on a chunk's row (a payload without a key) instead of marking it published unsent")
    func olderPublishersCannotDropAChunk() async throws {
        try await Environment.with(partitions: 1) { env in
            let items = (0..<3).map { Self.assessment(trace: "t\($0)", name: "safety", value: .yes) }
            _ = try await Self.insert(items, env: env)
            try await env.pool.withConnection { connection in
                // The row as the publishers of versions 13 and 14 read it: they mark a row
                // without a payload published unsent, and read the key of a row with one.
                let old = try connection.query("""
                    SELECT o.message_key, coalesce(o.payload, a.document) FROM outbox o
                    LEFT JOIN assessments a ON a.assessment_id = o.assessment_id
                    WHERE o.published_at IS NULL ORDER BY o.id
                    """)
                #expect(old.count == 1)
                #expect(try old[0].optionalString(1) != nil, "a payload: not taken for a deleted assessment")
                #expect(try old[0].optionalString(0) == nil, "no key: reading it fails and the transaction rolls back")
                // Versions before 13 read the payload and the key straight from the row.
                #expect(try connection.query("SELECT message_key FROM outbox")[0].optionalString(0) == nil)
                // And a chunk's row cannot be written without that payload.
                #expect(throws: PostgresError.self) {
                    _ = try connection.execute("UPDATE outbox SET payload = NULL")
                }
            }
        }
    }

    @Test("a batch takes whole rows in id order until it holds the limit, at least one row, and skips rows another replica holds")
    func batchesTakeWholeRows() async throws {
        try await Environment.with(partitions: 1) { env in
            // Four chunks of 3 messages: rows 1-4 in id order.
            var chunks: [[NewAssessment]] = []
            for chunk in 0..<4 {
                let items = (0..<3).map { Self.assessment(trace: "c\(chunk)t\($0)", name: "safety", value: .yes) }
                chunks.append(items)
                _ = try await Self.insert(items, env: env)
            }
            let store = ScoringStore()
            func publish(limit: Int) async throws -> [String] {
                try await env.pool.withConnection { connection in
                    var keys: [String] = []
                    _ = try store.publishPending(limit: limit, on: connection) { keys += $0.map(\.key) }
                    return keys
                }
            }
            func traces(_ chunk: Int) -> [String] {
                chunks[chunk].sorted { $0.assessment.assessmentID < $1.assessment.assessmentID }.map(\.assessment.traceID)
            }
            // Another replica holds the first row: it is skipped, not waited for. Limit 4: the
            // rows starting at message 0 and 3 of those pending (under 4), not the third.
            let database = env.database.url
            let skipping = try await env.pool.withConnection { connection in
                let holder = try PostgresConnection.connect(AssayDatabase.configuration(url: database, schema: .default))
                defer { holder.close() }
                try holder.executeScript("BEGIN")
                _ = try holder.query("SELECT id FROM outbox WHERE id = (SELECT min(id) FROM outbox) FOR UPDATE")
                var keys: [String] = []
                _ = try store.publishPending(limit: 4, on: connection) { keys += $0.map(\.key) }
                try holder.executeScript("ROLLBACK")
                return keys
            }
            #expect(skipping == traces(1) + traces(2))
            // Limit 2: one whole row even though it holds more. While it is being published, the
            // rows beyond it are free for another replica (row 4 is, though sizing the batch
            // looked at it; row 1 is this batch's).
            let (firstRow, freeMeanwhile) = try await env.pool.withConnection { connection in
                let other = try PostgresConnection.connect(AssayDatabase.configuration(url: database, schema: .default))
                defer { other.close() }
                var keys: [String] = []
                var free = -1
                _ = try store.publishPending(limit: 2, on: connection) { messages in
                    keys += messages.map(\.key)
                    free = try other.query("SELECT count(*) FROM (SELECT id FROM outbox WHERE published_at IS NULL FOR UPDATE SKIP LOCKED) f")[0].int(0)
                }
                return (keys, free)
            }
            #expect(firstRow == traces(0))
            #expect(freeMeanwhile == 1)
            #expect(try await publish(limit: 100) == traces(3))
            #expect(try await publish(limit: 100) == [])
        }
    }

    @Test("publishing sends each stored document byte for byte in id order; a message of a deleted assessment is marked, not sent, and reported")
    func publishingReadsStoredDocuments() async throws {
        try await Environment.with(partitions: 1) { env in
            // A message queued before schema version 13 carries its payload; it goes out as it is.
            try await env.pool.withConnection {
                _ = try $0.execute("INSERT INTO outbox (message_key, schema_name, payload) VALUES ('legacy', 'assessment/v1', '{\"legacy\":true}')")
            }
            // One queued under versions 13 and 14 names its one assessment and has its own key.
            let single = Self.assessment(trace: "single", name: "safety", value: .yes)
            _ = try await Self.insert([single], env: env)
            try await env.pool.withConnection {
                _ = try $0.execute("""
                    UPDATE outbox SET assessment_id = assessment_ids[1], assessment_ids = NULL, payload = NULL, message_key = 'single-key'
                    WHERE assessment_ids IS NOT NULL
                    """)
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
            #expect(sent.map(\.payload) == [#"{"legacy":true}"#, single.assessment.json().serialized()] + expected.map { $0.assessment.json().serialized() })
            #expect(sent.map(\.key) == ["legacy", "single-key"] + expected.map(\.assessment.traceID))
            #expect(batch.published == 7)
            #expect(batch.unsendable.map(\.assessmentID) == [deleted])
            let unpublished = try await env.pool.withConnection { try $0.query("SELECT count(*) FROM outbox WHERE published_at IS NULL")[0].int(0) }
            #expect(unpublished == 0, "the unsendable message does not hold up the outbox")
            let again = try await env.pool.withConnection { try store.publishPending(limit: 100, on: $0) { _ in Issue.record("nothing left to send") } }
            #expect(again == OutboxBatch())
        }
    }
}
