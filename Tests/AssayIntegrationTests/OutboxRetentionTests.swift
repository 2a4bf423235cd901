@testable import AssayPipeline
import AssayStore
import Foundation
import Postgres
import Testing

/// Published outbox rows past their retention are deleted; nothing unpublished ever is.
@Suite("Outbox retention", .serialized)
struct OutboxRetentionTests {
    /// Inserts a window-summary row (a payload of its own) created and published `ago` ago;
    /// unpublished when `published` is false. Returns its id.
    static func insertRow(_ connection: PostgresConnection, key: String, ago: String, published: Bool = true) throws -> Int {
        try connection.query("""
            INSERT INTO outbox (message_key, schema_name, payload, created_at, published_at)
            VALUES ($1, 'window-summary/v1', '{}', now() - $2::interval, CASE WHEN $3 THEN now() - $2::interval END)
            RETURNING id
            """, [.text(key), .text(ago), .bool(published)])[0].int(0)
    }

    static func remainingKeys(_ env: Environment) async throws -> [String] {
        try await env.pool.withConnection { try $0.query("SELECT message_key FROM outbox ORDER BY id").map { try $0.string(0) } }
    }

    @Test("a sweep deletes published rows older than the retention, a batch at a time; recent and unpublished rows stay")
    func sweepDeletesOnlyOldPublishedRows() async throws {
        try await Environment.with(partitions: 1) { env in
            try await env.pool.withConnection { connection in
                _ = try Self.insertRow(connection, key: "old-1", ago: "5 hours")
                _ = try Self.insertRow(connection, key: "unpublished-old", ago: "5 hours", published: false)
                _ = try Self.insertRow(connection, key: "old-2", ago: "3 hours")
                _ = try Self.insertRow(connection, key: "recent", ago: "10 minutes")
                _ = try Self.insertRow(connection, key: "old-3", ago: "2 hours")
            }
            let store = ScoringStore()
            let sweep = { @Sendable in try await env.pool.withConnection { try store.deletePublishedOutbox(olderThanSeconds: 3600, limit: 2, on: $0) } }
            #expect(try await sweep() == 2)
            #expect(try await Self.remainingKeys(env) == ["unpublished-old", "recent", "old-3"], "oldest ids first")
            #expect(try await sweep() == 1)
            #expect(try await sweep() == 0)
            #expect(try await Self.remainingKeys(env) == ["unpublished-old", "recent"])
        }
    }

    @Test("while another replica sweeps (holds the sweep's lock), a sweep deletes nothing and says so")
    func oneReplicaSweepsAtATime() async throws {
        try await Environment.with(partitions: 1) { env in
            try await env.pool.withConnection { _ = try Self.insertRow($0, key: "old", ago: "5 hours") }
            do {
                // Two connections of our own, used without a suspension point between them (a
                // connection stays on the thread that opened it).
                let configuration = try AssayDatabase.configuration(url: env.database.url, schema: .default)
                let other = try PostgresConnection.connect(configuration)
                defer { other.close() }
                let mine = try PostgresConnection.connect(configuration)
                defer { mine.close() }
                let key = "hashtext(current_schema() || '.outbox_retention')"
                _ = try other.query("SELECT pg_advisory_lock(\(key))")
                let store = ScoringStore()
                #expect(try store.deletePublishedOutbox(olderThanSeconds: 3600, limit: 10, on: mine) == nil)
                _ = try other.query("SELECT pg_advisory_unlock(\(key))")
                #expect(try store.deletePublishedOutbox(olderThanSeconds: 3600, limit: 10, on: mine) == 1)
            }
            #expect(try await Self.remainingKeys(env) == [])
        }
    }

    @Test("a sweep runs at most its number of statements; the next sweep goes on where it stopped")
    func sweepIsBounded() async throws {
        try await Environment.with(partitions: 1) { env in
            try env.cluster.createTopic("assessments", partitions: 1)
            try await env.pool.withConnection { connection in
                for index in 0..<5 { _ = try Self.insertRow(connection, key: "old-\(index)", ago: "5 hours") }
            }
            var configuration = OutboxPublisher.Configuration(brokers: env.cluster.bootstrapServers)
            configuration.retentionBatch = 1
            configuration.retentionBatchesPerSweep = 2
            let publisher = OutboxPublisher(configuration: configuration, pool: env.pool, logger: quietLogger)
            await publisher.sweepPublished(olderThan: .seconds(3600))
            #expect(try await Self.remainingKeys(env) == ["old-2", "old-3", "old-4"])
            await publisher.sweepPublished(olderThan: .seconds(3600))
            #expect(try await Self.remainingKeys(env) == ["old-4"])
        }
    }

    @Test("the publisher sweeps when it starts: an old published row goes, a pending one is published and stays")
    func publisherSweeps() async throws {
        try await Environment.with(partitions: 1) { env in
            try env.cluster.createTopic("assessments", partitions: 1)
            try await env.pool.withConnection { connection in
                _ = try Self.insertRow(connection, key: "old", ago: "5 hours")
                _ = try Self.insertRow(connection, key: "pending", ago: "5 hours", published: false)
            }
            var configuration = OutboxPublisher.Configuration(brokers: env.cluster.bootstrapServers)
            configuration.retention = .seconds(3600)
            let publisher = OutboxPublisher(configuration: configuration, pool: env.pool, logger: quietLogger)
            let running = Task { try await publisher.run() }
            _ = try await env.waitUntil("the old row deleted and the pending one published", query: { connection in
                try connection.query("SELECT message_key, published_at IS NOT NULL FROM outbox ORDER BY id").map { "\(try $0.string(0)):\(try $0.bool(1))" }
            }, done: { $0 == ["pending:true"] })
            running.cancel()
            _ = try? await running.value
        }
    }
}
