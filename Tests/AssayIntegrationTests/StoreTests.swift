import AssayCore
import AssayOTLP
import AssayStore
import Foundation
import LocalPostgres
import Postgres
import Testing

/// Store-level rules of exactly-once ingest, against the real server.
@Suite("IngestStore and migrations")
struct StoreTests {
    static func traces(_ count: Int, seed: UInt64) throws -> [Trace] {
        var generator = SyntheticTraceGenerator(seed: seed, startNanos: 1_770_000_000_000_000_000)
        return try (0..<count).map { _ in try MessageDecoding.decode(payload: generator.next().json).get() }
    }

    static func batch(_ traces: [Trace], partition: Int32 = 0, firstOffset: Int64) -> IngestBatch {
        var batch = IngestBatch()
        for (index, trace) in traces.enumerated() {
            let source = SourcePosition(partition: PartitionKey(topic: "traces", partition: partition), offset: firstOffset + Int64(index))
            batch.cover(source)
            batch.appendTrace(trace, source: source)
        }
        return batch
    }

    @Test("writing the same batch twice stores it once and reports the replay as already durable")
    func replayIsSkipped() async throws {
        try await Environment.with(partitions: 1) { env in
            let store = IngestStore(groupID: "g")
            let batch = Self.batch(try Self.traces(50, seed: 1), firstOffset: 0)
            let first = try await env.pool.withConnection { try store.write(batch, on: $0) }
            let second = try await env.pool.withConnection { try store.write(batch, on: $0) }
            #expect(first.tracesInserted == 50)
            #expect(first.nextOffsets[PartitionKey(topic: "traces", partition: 0)] == 50)
            #expect(second.tracesInserted == 0)
            #expect(second.alreadyDurable == 50)
            #expect(second.traceRepeats == 0, "a replay is not a repeat")
            #expect(try await env.count("traces") == 50)
            #expect(try await env.pool.withConnection { try $0.query("SELECT sum(deliveries) FROM traces")[0].int(0) } == 50)
            // The direct COPY writes request_time as the staging merge computes it.
            let mismatched = try await env.pool.withConnection { connection in
                try connection.query("""
                    SELECT count(*) FROM traces WHERE request_time <> timestamptz 'epoch' + (request_time_ns / 1000) * interval '1 microsecond'
                    """)[0].int(0)
            }
            #expect(mismatched == 0)
        }
    }

    @Test("windows needing work: those with unscored traces (found window by window), closed but unfinished, within bounds and limit")
    func windowsNeedingWork() async throws {
        try await Environment.with(partitions: 1) { env in
            let second: Int64 = 1_000_000_000
            let start: Int64 = 1_770_000_000_000_000_000  // a multiple of the 10 s width
            let width = 10 * second
            _ = try await env.pool.withConnection { try IngestStore(groupID: "g").write(Self.batch(try Self.traces(60, seed: 5), firstOffset: 0), on: $0) }
            // One trace a second over 60 s: six windows of ten; window 2 is scored, window 4
            // scored except one trace, and window 2 closed but never finished.
            try await env.pool.withConnection { connection in
                _ = try connection.execute("""
                    UPDATE traces t SET request_time_ns = $1::bigint + (n.i - 1) * 1000000000
                    FROM (SELECT trace_id, row_number() OVER (ORDER BY trace_id) AS i FROM traces) n WHERE t.trace_id = n.trace_id
                    """, [.text(String(start))])
                _ = try connection.execute("UPDATE traces SET scored_at = now() WHERE request_time_ns >= $1::bigint + 20000000000 AND request_time_ns < $1::bigint + 30000000000", [.text(String(start))])
                _ = try connection.execute("UPDATE traces SET scored_at = now() WHERE request_time_ns >= $1::bigint + 40000000000 AND request_time_ns < $1::bigint + 49000000000", [.text(String(start))])
            }
            let store = ScoringStore()
            try await env.pool.withConnection { try store.closeWindows([start + 2 * width], widthNanos: width, configVersion: 1, on: $0) }
            let windows = { (i: Int64) in start + i * width }
            func work(from: Int64 = .min, endingBy: Int64, limit: Int = 100) async throws -> [Int64] {
                try await env.pool.withConnection { try store.windowsNeedingWork(widthNanos: width, from: from, endingBy: endingBy, limit: limit, on: $0) }
            }
            #expect(try await work(endingBy: start + 60 * second) == [0, 1, 2, 3, 4, 5].map(windows))
            #expect(try await work(endingBy: start + 45 * second) == [0, 1, 2, 3].map(windows), "only windows ended by the bound")
            #expect(try await work(from: windows(1), endingBy: start + 60 * second) == [1, 2, 3, 4, 5].map(windows))
            #expect(try await work(endingBy: start + 60 * second, limit: 2) == [0, 1].map(windows))
            try await env.pool.withConnection { connection in
                _ = try connection.execute("UPDATE windows SET state = 'scored'")
                _ = try connection.execute("UPDATE traces SET scored_at = now() WHERE request_time_ns < $1::bigint + 10000000000", [.text(String(start))])
            }
            #expect(try await work(endingBy: start + 60 * second) == [1, 3, 4, 5].map(windows))
        }
    }

    @Test("a stale batch overlapping stored offsets writes only the part above them")
    func staleBatchIsFenced() async throws {
        try await Environment.with(partitions: 1) { env in
            let store = IngestStore(groupID: "g")
            let traces = try Self.traces(200, seed: 2)
            // Another replica made 0..<150 durable.
            _ = try await env.pool.withConnection { try store.write(Self.batch(Array(traces[0..<150]), firstOffset: 0), on: $0) }
            // A replica that lost the partition while paused arrives with 100..<200.
            let stale = try await env.pool.withConnection { try store.write(Self.batch(Array(traces[100..<200]), firstOffset: 100), on: $0) }
            #expect(stale.alreadyDurable == 50)
            #expect(stale.tracesInserted == 50)
            #expect(stale.nextOffsets[PartitionKey(topic: "traces", partition: 0)] == 200)
            // And the offset never moves backwards.
            let old = try await env.pool.withConnection { try store.write(Self.batch(Array(traces[0..<10]), firstOffset: 0), on: $0) }
            #expect(old.nextOffsets[PartitionKey(topic: "traces", partition: 0)] == 200)
            #expect(try await env.count("traces") == 200)
        }
    }

    @Test("a batch with MLflow traces and an OTLP trace completing counts each MLflow trace once")
    func mixedBatchCountsOnce() async throws {
        try await Environment.with(partitions: 1) { env in
            let store = IngestStore(groupID: "g")
            var batch = Self.batch(try Self.traces(5, seed: 4), firstOffset: 0)
            // Message 1 of the OTLP samples holds a whole trace: it completes in this batch.
            let line = String(decoding: try repositoryFile("Tests/AssayOTLPTests/Fixtures/otlp-traces.jsonl"), as: UTF8.self).split(separator: "\n")[0]
            let fragments = try OTLPDecoder.decode(payload: Array(line.utf8), contentType: "application/json").get()
            let source = SourcePosition(partition: PartitionKey(topic: "traces", partition: 0), offset: 5)
            batch.cover(source)
            batch.fragments = fragments.map { (fragment: $0, source: source) }
            let mixed = batch
            let result = try await env.pool.withConnection { try store.write(mixed, on: $0) }
            #expect(result.tracesInserted == 5 + fragments.count)
            #expect(result.traceRepeats == 0)
            let deliveries = try await env.pool.withConnection { connection in
                try connection.query("SELECT format, deliveries FROM traces ORDER BY 1").map { "\(try $0.string(0))=\(try $0.int(1))" }
            }
            #expect(deliveries.filter { $0.hasPrefix("mlflow") } == Array(repeating: "mlflow3=1", count: 5), "\(deliveries)")
            #expect(deliveries.filter { $0.hasPrefix("otlp") }.count == fragments.count)
        }
    }

    @Test("an id published twice is stored once, its spans once, and counted as a repeat")
    func repeatedTraceID() async throws {
        try await Environment.with(partitions: 1) { env in
            let store = IngestStore(groupID: "g")
            let trace = try Self.traces(1, seed: 3)[0]
            let inOneBatch = try await env.pool.withConnection { try store.write(Self.batch([trace, trace], firstOffset: 0), on: $0) }
            #expect(inOneBatch.tracesInserted == 1)
            #expect(inOneBatch.traceRepeats == 1)
            let later = try await env.pool.withConnection { try store.write(Self.batch([trace], firstOffset: 2), on: $0) }
            #expect(later.traceRepeats == 1)
            let row = try await env.pool.withConnection {
                try $0.query("SELECT deliveries, span_count, (SELECT count(*) FROM spans) FROM traces")[0]
            }
            #expect(try row.int(0) == 3)
            #expect(try row.int(1) == trace.spans.count)
            #expect(try row.int(2) == trace.spans.count)
        }
    }

    @Test("binary rows encoded while decoding, or at write time, store what text COPY of the general rows stores")
    func preEncodedRows() async throws {
        try await Environment.with(partitions: 1) { env in
            var traces = try Self.traces(40, seed: 21)
            let awkward = ["tab\tnew\nline \\ back\u{0}nul", "\\N", "naïve 東京 🙂", "", "quote\" \u{07}", "\r"]
            for (index, text) in awkward.enumerated() {
                traces[index].requestPreview = text
                traces[index].clientRequestID = text
                traces[index].tags[text] = text
                traces[index].requestTimeNanos = index % 2 == 0 ? -1_234_567_891_234 : traces[index].requestTimeNanos + 999
                traces[index].spans[0].name = text
                traces[index].spans[0].attributes[text] = .string(text)
                traces[index].spans[0].outputs = .array([.string(text), .number("-1.5e-7"), .null])
                traces[index].spans[0].events.append(SpanEvent(name: text, timeNanos: -5, attributes: [text: .string(text)]))
            }
            /// Every stored column but the ingest time, per trace and per span, in a fixed order.
            @Sendable func dump(_ connection: PostgresConnection) throws -> [String] {
                try connection.query("SELECT (to_jsonb(t) - 'ingested_at')::text FROM traces t ORDER BY trace_id").map { try $0.string(0) }
                    + connection.query("SELECT to_jsonb(s)::text FROM spans s ORDER BY trace_id, span_id").map { try $0.string(0) }
            }
            var prepared = Self.batch(traces, firstOffset: 0)
            prepared.prepareDirectCopy()
            #expect(prepared.directCopy?.traceCount == 40)
            let first = prepared
            let written = try await env.pool.withConnection { try IngestStore(groupID: "a").write(first, on: $0) }
            #expect(written.tracesInserted == 40)
            let fromPrepared = try await env.pool.withConnection { try dump($0) }
            _ = try await env.pool.withConnection { try $0.executeScript("TRUNCATE traces, spans") }

            let plain = Self.batch(traces, firstOffset: 0)
            #expect(plain.directCopy == nil)
            _ = try await env.pool.withConnection { try IngestStore(groupID: "b").write(plain, on: $0) }
            let fromPlain = try await env.pool.withConnection { try dump($0) }
            _ = try await env.pool.withConnection { try $0.executeScript("TRUNCATE traces, spans") }

            // The general rows as text COPY, as the staging tables receive them.
            let traceColumns = (TraceRowEncoder.traceColumns + ["request_time"]).joined(separator: ", ")
            let spanColumns = TraceRowEncoder.spanColumns.joined(separator: ", ")
            let fromText = try await env.pool.withConnection { connection in
                _ = try connection.copyFrom("COPY traces (\(traceColumns)) FROM STDIN") { writer in
                    for item in plain.traces {
                        try writer.writeRow(TraceRowEncoder.traceRow(item.trace, source: item.source, deliveries: 1)
                                            + [TraceRowEncoder.requestTimeText(item.trace)])
                    }
                }
                _ = try connection.copyFrom("COPY spans (\(spanColumns)) FROM STDIN") { writer in
                    for item in plain.traces {
                        for span in item.trace.spans { try writer.writeRow(TraceRowEncoder.spanRow(span, traceID: item.trace.traceID)) }
                    }
                }
                return try dump(connection)
            }
            #expect(fromPrepared.count == 40 + traces.reduce(0) { $0 + $1.spans.count })
            #expect(fromPrepared == fromText)
            #expect(fromPlain == fromText)
        }
    }

    @Test("stored rows keep exact times, sanitised NULs, decoded span inputs and the root span")
    func storedShape() async throws {
        try await Environment.with(partitions: 1) { env in
            let store = IngestStore(groupID: "g")
            var trace = try Self.traces(1, seed: 4)[0]
            trace.requestPreview = "before\u{0}after"
            let withNUL = trace
            _ = try await env.pool.withConnection { try store.write(Self.batch([withNUL], firstOffset: 0), on: $0) }
            let row = try await env.pool.withConnection { connection in
                try connection.query("""
                    SELECT request_time_ns, (extract(epoch FROM request_time) * 1000000)::bigint, request_preview, root_span_id,
                           canonical_trace_id, tags->>'env', state
                    FROM traces
                    """)[0]
            }
            #expect(try row.int64(0) == trace.requestTimeNanos)
            #expect(try row.int64(1) == trace.requestTimeNanos / 1000)
            #expect(try row.string(2) == "before\u{FFFD}after")
            #expect(try row.optionalString(3) == trace.rootSpan?.spanID)
            #expect(try row.string(4) == trace.canonicalTraceID)
            #expect(try row.optionalString(5) == "prod")
            #expect(try row.string(6) == trace.state.rawValue)
            let root = try #require(trace.rootSpan)
            let input = try await env.pool.withConnection { connection in
                try connection.query("SELECT inputs->>'question' FROM spans WHERE span_id = $1", [.text(root.spanID)])[0].optionalString(0)
            }
            #expect(input == root.inputs?["question"]?.stringValue)
        }
    }

    @Test("a retention gap is recorded once, as a dead letter, and moves the stored offset")
    func retentionGap() async throws {
        try await Environment.with(partitions: 1) { env in
            let store = IngestStore(groupID: "g")
            let key = PartitionKey(topic: "traces", partition: 0)
            _ = try await env.pool.withConnection { try store.write(Self.batch(try Self.traces(10, seed: 5), firstOffset: 0), on: $0) }
            let recorded = try await env.pool.withConnection { try store.recordRetentionGap(key, from: 10, to: 500, on: $0) }
            let again = try await env.pool.withConnection { try store.recordRetentionGap(key, from: 10, to: 500, on: $0) }
            #expect(recorded)
            #expect(!again, "a second replica finds the gap already recorded")
            let letter = try await env.pool.withConnection {
                try $0.query("SELECT reason, source_offset, gap_end_offset, detail FROM dead_letters")
            }
            #expect(letter.count == 1)
            #expect(try letter[0].string(0) == "retention_gap")
            #expect(try letter[0].int64(1) == 10)
            #expect(try letter[0].optionalInt64(2) == 500)
            #expect(try letter[0].string(3).contains("490 messages lost"))
            #expect(try await env.pool.withConnection { try store.storedOffsets(topic: "traces", partitions: [0], on: $0) } == [0: 500])
        }
    }

    @Test("migrations run once even when four replicas start together, and record their checksums")
    func concurrentMigrations() async throws {
        try await TestDatabase.withTemporary(prefix: "assay_migrate", logger: quietLogger) { database in
            let schema = try SchemaName("assay_concurrent")
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 {
                    group.addTask { try await AssayDatabase.migrate(url: database.url, schema: schema, logger: quietLogger) }
                }
                return try await group.reduce(into: [[Int]]()) { $0.append($1) }
            }
            #expect(applied.filter { !$0.isEmpty }.count == 1, "exactly one starter applied the migrations: \(applied)")
            #expect(applied.flatMap { $0 } == Migration.all.map(\.version))
            let configuration = try PostgresConfiguration(url: database.url)
            let pool = try PostgresPool(configuration: configuration, size: 1, logger: quietLogger)
            let rows = try await pool.withConnection { try $0.query("SELECT version, checksum FROM assay_concurrent.schema_migrations ORDER BY version") }
            #expect(try rows.map { try $0.int(0) } == Migration.all.map(\.version))
            #expect(try rows.map { try $0.string(1) } == Migration.all.map(\.checksum))
            await pool.shutdown()
        }
    }

    @Test("large span values are compressed with LZ4 when the server has it (migration 12)")
    func spanValuesUseLZ4() async throws {
        try await Environment.with(partitions: 1) { env in
            try await env.pool.withConnection { connection in
                let hasLZ4 = try connection.query("SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals))")[0].bool(0)
                let methods = try connection.query("""
                    SELECT attname, attcompression::text FROM pg_attribute
                    WHERE attrelid = 'spans'::regclass AND attname IN ('inputs', 'outputs', 'attributes', 'events') ORDER BY attname
                    """).map { try "\($0.string(0))=\($0.string(1))" }
                let expected = hasLZ4 ? "l" : ""
                #expect(methods == ["attributes=\(expected)", "events=\(expected)", "inputs=\(expected)", "outputs=\(expected)"])
                _ = try connection.query("""
                    INSERT INTO spans (trace_id, span_id, name, start_time_ns, status_code, inputs)
                    VALUES ('tr-lz4', '0000000000000001', 'big', 0, 'OK', jsonb_build_object('text', repeat('compressible ', 2000)))
                    """)
                let stored = try connection.query("SELECT pg_column_compression(inputs) FROM spans WHERE trace_id = 'tr-lz4'")[0].string(0)
                #expect(stored == (hasLZ4 ? "lz4" : "pglz"))
            }
        }
    }

    @Test("an edited migration is refused with a clear error")
    func editedMigrationIsRefused() async throws {
        try await TestDatabase.withTemporary(prefix: "assay_migrate", logger: quietLogger) { database in
            let schema = try SchemaName("assay_edit")
            _ = try await AssayDatabase.migrate(url: database.url, schema: schema, logger: quietLogger)
            let pool = try PostgresPool(configuration: try PostgresConfiguration(url: database.url), size: 1, logger: quietLogger)
            var edited = Migration.all
            edited[0].sql += "\n-- edited"
            let migrator = Migrator(schema: schema, migrations: edited)
            await #expect(throws: StoreError.self) {
                try await pool.withConnection { try migrator.migrate(on: $0, logger: quietLogger) }
            }
            await pool.shutdown()
        }
    }
}

@Suite("Embedded migrations")
struct EmbeddedMigrationTests {
    @Test("the migrations compiled in are the files in schemas/postgres (run `make migrations` after editing)")
    func embeddedMatchFiles() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = repository.appendingPathComponent("schemas/postgres")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(files.count == Migration.all.count)
        for (file, migration) in zip(files, Migration.all) {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            #expect(file.hasPrefix(String(format: "%04d_", migration.version)))
            #expect(text.trimmingCharacters(in: .newlines) == migration.sql.trimmingCharacters(in: .newlines), "\(file) differs from the embedded copy")
        }
    }
}

@Suite("Monitor notifications")
struct MonitorNotificationTests {
    @Test("new assessments are stored and queued once each; an id stored before keeps its first value and is not queued again")
    func assessmentsNewIdsOnly() async throws {
        try await Environment.with(partitions: 1) { env in
            @Sendable func item(_ trace: String, _ value: FeedbackValue) -> NewAssessment {
                let assessment = Assessment(
                    assessmentID: Assessment.id(traceID: trace, spanID: nil, name: "no_error", configVersion: 1), name: "no_error",
                    traceID: trace, spanID: nil, source: AssessmentSource(sourceType: .code, sourceID: "no_error"),
                    createTimeMillis: 1, lastUpdateTimeMillis: 1, feedback: .value(value), rationale: "r", metadata: [:])
                return NewAssessment(assessment: assessment, scorerName: "no_error", outcome: value.isPass ? .pass : .fail, late: false)
            }
            let store = BackfillStore()
            // All new: the straight COPY.
            let first = try await env.pool.withConnection { try store.storeAssessments([item("t3", .yes), item("t1", .yes), item("t2", .no)], windowStartNanos: 0, configVersion: 1, on: $0) }
            #expect(first == 3)
            // One id stored before (with another value) among new ones: the staging merge.
            let second = try await env.pool.withConnection { try store.storeAssessments([item("t4", .yes), item("t1", .no)], windowStartNanos: 0, configVersion: 1, on: $0) }
            #expect(second == 1)
            // The same id twice in one call: stored once.
            let third = try await env.pool.withConnection { try store.storeAssessments([item("t5", .yes), item("t5", .yes)], windowStartNanos: 0, configVersion: 1, on: $0) }
            #expect(third == 1)
            let rows = try await env.pool.withConnection { connection in
                try connection.query("SELECT trace_id, value FROM assessments ORDER BY trace_id").map { "\(try $0.string(0))=\(try $0.optionalString(1) ?? "")" }
            }
            #expect(rows == [#"t1="yes""#, #"t2="no""#, #"t3="yes""#, #"t4="yes""#, #"t5="yes""#], "t1 keeps its first value")
            let queued = try await env.pool.withConnection { connection in
                try connection.query("SELECT message_key, schema_name, payload FROM outbox_messages ORDER BY id").map { (try $0.string(0), try $0.string(1), try $0.string(2)) }
            }
            #expect(queued.map(\.0).sorted() == ["t1", "t2", "t3", "t4", "t5"], "each new assessment queued once")
            #expect(queued.allSatisfy { $0.1 == "assessment/v1" })
            let stored = try await env.pool.withConnection { connection in
                try Dictionary(uniqueKeysWithValues: connection.query("SELECT trace_id, document FROM assessments").map { (try $0.string(0), try $0.string(1)) })
            }
            #expect(queued.allSatisfy { stored[$0.0] == $0.2 }, "the queued payload is the stored document")
            // Within one call, queued in assessment-id order (as the merge does).
            let firstCall = queued.prefix(3).map { Assessment.id(traceID: $0.0, spanID: nil, name: "no_error", configVersion: 1) }
            #expect(firstCall == firstCall.sorted())
        }
    }

    @Test("a monitor update reaches a LISTENing replica as a NOTIFY on assay_monitor")
    func updateNotifies() async throws {
        try await Environment.with(partitions: 1) { env in
            let listener = PostgresListener(configuration: try AssayDatabase.configuration(url: env.database.url, schema: .default),
                                            channels: [MonitorStore.channel], logger: quietLogger)
            defer { listener.stop() }
            // The listener connects on its own thread, so an early update can go unheard: keep
            // updating until a notification arrives. One task iterates the stream for the whole
            // test, because cancelling a task that awaits an AsyncStream finishes the stream (an
            // earlier version raced a fresh iteration against each update and, once the first
            // race was lost, could never hear anything again).
            let config = try MonitorConfig.parse(Array(#"{"name":"n","destination":{"schema":"assay"},"scorers":[]}"#.utf8))
            let pool = env.pool
            let got = try await withThrowingTaskGroup(of: PostgresNotification?.self) { group in
                group.addTask {
                    for await notification in listener.notifications where !notification.payload.isEmpty { return notification }
                    return nil
                }
                group.addTask {
                    var version: Int64 = 0
                    let deadline = ContinuousClock.now.advanced(by: .seconds(30))
                    while ContinuousClock.now < deadline {
                        var next = config
                        next.sampleRate = Double(version % 10) / 10
                        let toStore = next
                        version = try await pool.withConnection { try MonitorStore(schema: .default).update(toStore, expectedVersion: nil, note: "test", nowNanos: 0, on: $0) }.version
                        try await Task.sleep(for: .milliseconds(300))
                    }
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }
            guard let got else {
                Issue.record("no notification within 30 s")
                return
            }
            #expect(got.channel == MonitorStore.channel)
            #expect(got.payload.hasPrefix("assay:"), "payload names the schema and version: \(got.payload)")
        }
    }
}
