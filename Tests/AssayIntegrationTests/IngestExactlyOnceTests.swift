import AssayCore
import AssayPipeline
import AssayStore
import Foundation
import Kafka
import Postgres
import Testing

@Suite("Ingest: exactly once into PostgreSQL", .serialized)
struct IngestExactlyOnceTests {
    @Test("5,000 traces over 8 partitions, 2 replicas in one group: each stored once; offsets match the log end")
    func twoReplicas() async throws {
        try await Environment.with(partitions: 8) { env in
            let (messages, ids) = syntheticMessages(count: 5000, seed: 7)
            let replicas = RunningReplicas([env.ingestConfiguration(replica: "r1"), env.ingestConfiguration(replica: "r2")], pool: env.pool)
            // Both members hold partitions before traffic starts, so both take part.
            try await waitForAssignments(replicas, total: 8)
            try await env.publish(messages)
            _ = try await env.waitUntil("5000 traces stored", query: { try $0.query("SELECT count(*) FROM traces")[0].int(0) }, done: { $0 >= 5000 })
            let ends = try await env.endOffsets()
            _ = try await env.waitUntil("offsets stored", query: { connection in
                try connection.query("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = 'assay'")[0].int64(0)
            }, done: { $0 == ends.values.reduce(0, +) })
            try await replicas.stop()

            let stored = try await env.storedTraceIDs()
            #expect(stored.count == 5000)
            #expect(Set(stored.keys) == ids)
            #expect(stored.values.allSatisfy { $0 == 1 }, "no trace was written twice")
            #expect(try await env.count("dead_letters") == 0)
            #expect(try await env.storedOffsets(group: "assay") == ends)
            let committed = try await env.kafkaCommittedOffsets(group: "assay")
            for (partition, end) in ends {
                #expect(committed[partition] == .some(end), "Kafka's committed offset of partition \(partition)")
            }
            let stats = replicas.services.map(\.currentStatistics)
            #expect(stats.allSatisfy { $0.tracesInserted > 0 }, "both replicas stored traces: \(stats.map(\.tracesInserted))")
            #expect(stats.reduce(0) { $0 + $1.tracesInserted } == 5000)
            // Spans arrive with their traces.
            let expectedSpans = try messages.reduce(0) { $0 + (try MessageDecoding.decode(payload: $1.value).get().spans.count) }
            let spanCount = try await env.pool.withConnection { try $0.query("SELECT count(*), count(DISTINCT trace_id) FROM spans")[0] }
            #expect(try spanCount.int(1) == 5000)
            #expect(try spanCount.int(0) == expectedSpans)
        }
    }

    @Test("a batch given up at shutdown during a database outage: nothing after it is stored, offsets stay before it")
    func shutdownDuringOutageStopsAtTheUnwrittenBatch() async throws {
        try await Environment.with(partitions: 1) { env in
            let (messages, _) = syntheticMessages(count: 200, seed: 13)
            let poisonOffset = 50
            let poison = String(decoding: messages[poisonOffset].key ?? [], as: UTF8.self)
            // Any write holding this trace fails the way an unavailable database does (not a
            // data error), so its batch is retried until shutdown and then given up. Batches
            // after it would write fine: the replica must not write them.
            try await env.pool.withConnection { connection in
                try connection.executeScript("""
                    CREATE TABLE refused_trace_ids (trace_id text PRIMARY KEY);
                    CREATE FUNCTION refuse_trace() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF EXISTS (SELECT 1 FROM refused_trace_ids r WHERE r.trace_id = NEW.trace_id) THEN
                            RAISE EXCEPTION 'test outage' USING ERRCODE = '57P03';
                        END IF;
                        RETURN NEW;
                    END $$;
                    CREATE TRIGGER refuse_trace BEFORE INSERT ON traces FOR EACH ROW EXECUTE FUNCTION refuse_trace();
                    """)
                try connection.execute("INSERT INTO refused_trace_ids VALUES ($1)", [.text(poison)])
            }
            try await env.publish(messages)
            var configuration = env.ingestConfiguration(replica: "r1")
            configuration.batchSize = 20
            let replicas = RunningReplicas([configuration], pool: env.pool)
            let deadline = ContinuousClock.now.advanced(by: .seconds(60))
            while replicas.services[0].currentStatistics.writeRetries < 2 {
                guard ContinuousClock.now < deadline else {
                    try? await replicas.stop()
                    throw TestFailure("the write holding the refused trace was never retried")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            try await replicas.stop()

            let stored = try await env.storedOffsets(group: "assay")[0] ?? 0
            #expect(stored > 0, "the batches before the refused one were written")
            #expect(stored <= Int64(poisonOffset), "stored next offset \(stored), past the unwritten message at \(poisonOffset)")
            let after = try await env.pool.withConnection { connection in
                try connection.query("SELECT count(*) FROM traces WHERE source_offset > $1", [.text(String(poisonOffset))])[0].int(0)
            }
            #expect(after == 0, "\(after) traces after the unwritten batch were stored")
            #expect(try await env.count("traces") == Int(stored), "everything before the stored offset is stored")
            let committed = try await env.kafkaCommittedOffsets(group: "assay")[0] ?? nil
            #expect((committed ?? 0) <= Int64(poisonOffset), "Kafka's committed offset \(String(describing: committed))")
        }
    }

    @Test("a replica killed after its database commit but before its Kafka commit: the next one resumes from PostgreSQL")
    func crashBetweenDatabaseAndKafkaCommit() async throws {
        try await Environment.with(partitions: 4) { env in
            let (messages, ids) = syntheticMessages(count: 3000, seed: 11)
            try await env.publish(messages)
            let first = try ServeProcess(environment: env, replica: "doomed", extraArguments: ["--debug-crash-after-batches", "3"])
            await first.exited()
            #expect(first.process.terminationReason == .uncaughtSignal)
            #expect(first.process.terminationStatus == SIGKILL)
            let storedBeforeCrash = try await env.count("traces")
            #expect(storedBeforeCrash > 0 && storedBeforeCrash < 3000, "the crash happened mid-stream (\(storedBeforeCrash) stored)")
            // The last batch is durable in PostgreSQL but Kafka never heard of it: PostgreSQL is
            // ahead of Kafka for some partition, so resuming from Kafka would write it twice.
            let committedBefore = try await env.kafkaCommittedOffsets(group: "assay")
            let storedBefore = try await env.storedOffsets(group: "assay")
            let ahead = storedBefore.filter { partition, stored in stored > (committedBefore[partition].flatMap { $0 } ?? 0) }
            #expect(!ahead.isEmpty, "PostgreSQL \(storedBefore) vs Kafka \(committedBefore)")

            let second = try ServeProcess(environment: env, replica: "survivor")
            _ = try await env.waitUntil("all traces stored", query: { try $0.query("SELECT count(*) FROM traces")[0].int(0) }, done: { $0 >= 3000 })
            let ends = try await env.endOffsets()
            _ = try await env.waitUntil("offsets at the end", query: { connection in
                try connection.query("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets")[0].int64(0)
            }, done: { $0 == ends.values.reduce(0, +) })
            await second.terminate()
            #expect(second.process.terminationStatus == 0, "graceful exit on SIGTERM; log:\n\(second.log.suffix(2000))")

            let stored = try await env.storedTraceIDs()
            #expect(Set(stored.keys) == ids)
            #expect(stored.values.allSatisfy { $0 == 1 }, "nothing was written twice")
            #expect(try await env.storedOffsets(group: "assay") == ends)
        }
    }

    @Test("SIGKILL of a replica mid-stream, then another replica: no missing and no duplicate rows")
    func sigkillMidStream() async throws {
        try await Environment.with(partitions: 4) { env in
            let (messages, ids) = syntheticMessages(count: 4000, seed: 13)
            let first = try ServeProcess(environment: env, replica: "victim")
            try await env.publish(Array(messages[0..<2000]))
            _ = try await env.waitUntil("some traces stored", query: { try $0.query("SELECT count(*) FROM traces")[0].int(0) }, done: { $0 >= 500 })
            await first.kill()
            try await env.publish(Array(messages[2000...]))
            let second = try ServeProcess(environment: env, replica: "successor")
            _ = try await env.waitUntil("all traces stored", query: { try $0.query("SELECT count(*) FROM traces")[0].int(0) }, done: { $0 >= 4000 })
            let ends = try await env.endOffsets()
            _ = try await env.waitUntil("offsets at the end", query: { connection in
                try connection.query("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets")[0].int64(0)
            }, done: { $0 == ends.values.reduce(0, +) })
            await second.terminate()

            let stored = try await env.storedTraceIDs()
            #expect(stored.count == 4000)
            #expect(Set(stored.keys) == ids)
            #expect(stored.values.allSatisfy { $0 == 1 })
            #expect(try await env.count("dead_letters") == 0)
            #expect(try await env.storedOffsets(group: "assay") == ends)
            let committed = try await env.kafkaCommittedOffsets(group: "assay")
            for (partition, end) in ends { #expect(committed[partition] == .some(end)) }
        }
    }

    @Test("100 poison messages on one partition become 100 dead letters; the good traces behind them are stored")
    func poisonMessages() async throws {
        try await Environment.with(partitions: 3) { env in
            let invalidJSON = try fixture("invalid-json.json")
            let wrongShape = try fixture("wrong-shape-mlflow.json")
            var random = SplitMix64(seed: 99)
            let garbage = (0..<(2 * 1024 * 1024)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            var poison: [(reason: String, value: [UInt8]?)] = []
            poison += Array(repeating: ("invalid_json", invalidJSON), count: 25)
            poison += Array(repeating: ("invalid_shape", wrongShape), count: 25)
            poison += Array(repeating: ("empty_payload", []), count: 25)
            poison += Array(repeating: ("tombstone", nil), count: 24)
            poison.append(("too_large", garbage))
            // A well-formed trace whose request time is in 2099: its clock is wrong, and it
            // would close every window at once.
            poison[poison.count - 2] = ("event_time_out_of_range", try fixture("mlflow-future-request-time.json"))

            var (good, ids) = syntheticMessages(count: 300, seed: 17)
            // Partition 0 interleaves poison with good traces; the rest go where their keys hash.
            var messages: [ProducerMessage] = []
            for (index, item) in poison.enumerated() {
                messages.append(ProducerMessage(topic: "traces", partition: 0, key: Array("poison-\(index)".utf8), value: item.value))
                var trace = good[index]
                trace.partition = 0
                messages.append(trace)
            }
            good.removeFirst(poison.count)
            messages += good
            try await env.publish(messages, maxMessageBytes: 4 * 1024 * 1024)

            let replicas = RunningReplicas([env.ingestConfiguration(replica: "r1")], pool: env.pool)
            _ = try await env.waitUntil("everything durable", query: { connection in
                try connection.query("SELECT (SELECT count(*) FROM traces) + (SELECT count(*) FROM dead_letters)")[0].int(0)
            }, done: { $0 >= 400 })
            let ends = try await env.endOffsets()
            _ = try await env.waitUntil("offsets at the end", query: { connection in
                try connection.query("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets")[0].int64(0)
            }, done: { $0 == ends.values.reduce(0, +) })
            try await replicas.stop()

            #expect(Set(try await env.storedTraceIDs().keys) == ids)
            let letters = try await env.pool.withConnection { connection in
                try connection.query("SELECT reason, count(*), count(DISTINCT source_offset), min(source_partition), max(source_partition) FROM dead_letters GROUP BY reason ORDER BY reason").map {
                    (try $0.string(0), try $0.int(1), try $0.int(2), try $0.int(3), try $0.int(4))
                }
            }
            let byReason = Dictionary(uniqueKeysWithValues: letters.map { ($0.0, $0.1) })
            #expect(byReason == ["invalid_json": 25, "invalid_shape": 25, "empty_payload": 25, "tombstone": 23, "event_time_out_of_range": 1, "too_large": 1])
            #expect(letters.allSatisfy { $0.1 == $0.2 && $0.3 == 0 && $0.4 == 0 }, "one letter per offset, all on partition 0")
            // The bytes are kept: the garbage blob in full, tombstones as NULL, empty payloads as empty.
            let kept = try await env.pool.withConnection { connection in
                try connection.query("SELECT reason, payload_size, payload IS NULL, md5(payload) FROM dead_letters WHERE reason IN ('too_large', 'tombstone', 'empty_payload', 'invalid_shape')")
                    .map { (try $0.string(0), try $0.optionalInt(1), try $0.bool(2), try $0.optionalString(3)) }
            }
            #expect(kept.first { $0.0 == "too_large" }?.1 == 2 * 1024 * 1024)
            #expect(kept.filter { $0.0 == "tombstone" }.allSatisfy { $0.1 == nil && $0.2 })
            #expect(kept.filter { $0.0 == "empty_payload" }.allSatisfy { $0.1 == 0 && !$0.2 })
            #expect(kept.filter { $0.0 == "invalid_shape" }.allSatisfy { $0.1 == wrongShape.count })
            let detail = try await env.pool.withConnection { try $0.query("SELECT detail FROM dead_letters WHERE reason = 'invalid_shape' LIMIT 1")[0].string(0) }
            #expect(detail.contains("info.trace_id"), "the detail names the JSON path: \(detail)")
            let future = try await env.pool.withConnection { try $0.query("SELECT detail FROM dead_letters WHERE reason = 'event_time_out_of_range'")[0].string(0) }
            #expect(future.contains("2099") && future.contains("after the current time"), "the detail says why: \(future)")
            #expect(try await env.storedOffsets(group: "assay") == ends)
        }
    }
}

/// Waits until the replicas' consumers hold `total` partitions between them, each at least one.
func waitForAssignments(_ replicas: RunningReplicas, total: Int, timeout: Duration = .seconds(60)) async throws {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        let counts = replicas.services.map(\.currentStatistics.assignedPartitions)
        if counts.reduce(0, +) == total && counts.allSatisfy({ $0 > 0 }) { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw TestFailure("replicas did not share \(total) partitions in time: \(replicas.services.map(\.currentStatistics.assignedPartitions))")
}

@Suite("Ingest: the owner's partition reports", .serialized)
struct PartitionReportTests {
    @Test("every partition of the topic holds the watermark, also those of a member that has not registered its share")
    func allPartitionsRegistered() async throws {
        try await Environment.with(partitions: 4) { env in
            // A plain member of the replicas' group: it takes half of the partitions and, like
            // a replica whose assignment has not reached it yet, registers and writes nothing.
            var squatterConfiguration = KafkaConsumerConfiguration(bootstrapServers: env.cluster.bootstrapServers, groupID: "assay")
            squatterConfiguration.sessionTimeout = .seconds(6)
            squatterConfiguration.heartbeatInterval = .milliseconds(500)
            let squatter = try KafkaConsumer(configuration: squatterConfiguration, listener: BeginningListener(), logger: quietLogger)
            try await squatter.subscribe(topics: ["traces"])
            let deadline = ContinuousClock.now.advanced(by: .seconds(60))
            while try await squatter.assignment().isEmpty {
                guard ContinuousClock.now < deadline else { throw TestFailure("the squatter got no assignment") }
                _ = try await squatter.poll(maxMessages: 100, timeout: .milliseconds(100))
            }
            let polling = Task {
                while !Task.isCancelled { _ = try? await squatter.poll(maxMessages: 100, timeout: .milliseconds(100)) }
            }
            let replicas = RunningReplicas([env.ingestConfiguration(replica: "r1")], pool: env.pool)
            let (messages, _) = syntheticMessages(count: 400, seed: 29)
            try await env.publish(messages)
            _ = try await env.waitUntil("the replica's two partitions stored and reported caught up", query: { connection in
                try connection.query("""
                    SELECT count(*) FROM partition_watermarks
                    WHERE topic = 'traces' AND max_event_time_ns IS NOT NULL AND caught_up_at >= advanced_at
                    """)[0].int(0)
            }, done: { $0 == 2 })
            let progress = try await env.pool.withConnection { try ScoringStore(tracesTopic: "traces").partitionProgress(on: $0) }
            #expect(progress.partitions.count == 4, "all four partitions registered")
            #expect(progress.partitions.filter { $0.maxEventTimeNanos == nil }.count == 2, "the squatter's two have seen nothing")
            let watermark = WatermarkCalculator(idleTimeoutNanos: 0).closingWatermark(partitions: progress.partitions, now: progress.nowNanos)
            #expect(watermark == nil, "no window may close while two partitions are unread")
            try await replicas.stop()
            polling.cancel()
            _ = await polling.value
            await squatter.close()
        }
    }

    @Test("partitions are reported caught up once everything read is stored; when the reports stop they count as active again")
    func caughtUpReports() async throws {
        try await Environment.with(partitions: 2) { env in
            let (messages, _) = syntheticMessages(count: 200, seed: 17)
            try await env.publish(messages)
            let replicas = RunningReplicas([env.ingestConfiguration(replica: "r1")], pool: env.pool)
            _ = try await env.waitUntil("200 traces stored and both partitions reported caught up after their last advance", query: { connection in
                let row = try connection.query("""
                    SELECT (SELECT count(*) FROM traces),
                           (SELECT count(*) FROM partition_watermarks WHERE topic = 'traces' AND caught_up_at >= advanced_at)
                    """)[0]
                return [try row.int(0), try row.int(1)]
            }, done: { $0 == [200, 2] })
            let store = ScoringStore(tracesTopic: "traces")
            let reporting = try await env.pool.withConnection { try store.partitionProgress(on: $0) }
            #expect(reporting.partitions.count == 2)
            let live = WatermarkCalculator(idleTimeoutNanos: 0)
            #expect(reporting.partitions.allSatisfy { live.isIdle($0, now: reporting.nowNanos) }, "idle while its owner reports it caught up")
            try await replicas.stop()

            // Nobody owns the partitions now: once the last report is older than the
            // freshness bound they hold windows open again.
            let before = try await env.pool.withConnection { try store.partitionProgress(on: $0) }
            let silent = try await env.waitUntil("the last reports older than a second", query: { try store.partitionProgress(on: $0) }, done: { progress in
                progress.partitions.allSatisfy { ($0.lastCaughtUpWallTimeNanos ?? .max) < progress.nowNanos - 1_000_000_000 }
            })
            #expect(silent.partitions.map(\.lastCaughtUpWallTimeNanos) == before.partitions.map(\.lastCaughtUpWallTimeNanos), "no report after the replica stopped")
            let strict = WatermarkCalculator(idleTimeoutNanos: 0, reportFreshnessNanos: 1_000_000_000)
            #expect(silent.partitions.allSatisfy { !strict.isIdle($0, now: silent.nowNanos) })
        }
    }
}
