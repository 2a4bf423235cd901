import AssayCore
import AssayPipeline
import AssayStore
import Foundation
import Postgres
import Testing

/// Scoring a window's traces before it closes: the window's row, its version, and the pass
/// at the close that finishes it.
@Suite("Scoring open windows", .serialized)
struct OpenWindowTests {
    static let second: Int64 = 1_000_000_000
    static let width = 10 * second
    static let start: Int64 = 1_770_000_000_000_000_000  // a multiple of the 10 s width

    static func windowState(_ start: Int64, env: Environment) async throws -> (state: String, version: Int64, closed: Bool) {
        try await env.pool.withConnection { connection in
            let row = try connection.query("SELECT state, config_version, closed_at IS NOT NULL FROM windows WHERE window_start_ns = $1", [.text(String(start))])[0]
            return (try row.string(0), try row.int64(1), try row.bool(2))
        }
    }

    @Test("an open window is made only under the newest version in force; an update takes effect after it; closing keeps its version")
    func openWindowKeepsItsVersion() async throws {
        try await Environment.with(partitions: 1) { env in
            let store = ScoringStore()
            let monitors = MonitorStore(schema: .default)
            let (start, width) = (Self.start, Self.width)
            let monitor = try scoringTestMonitor()
            _ = try await env.pool.withConnection { try monitors.saveIfChanged(monitor, note: "v1", nowNanos: 0, on: $0) }
            func open(_ start: Int64, width: Int64 = width, version: Int64) async throws -> Bool {
                try await env.pool.withConnection { try store.openWindow(startNanos: start, widthNanos: width, configVersion: version, on: $0) }
            }

            #expect(try await open(start, version: 1))
            #expect(try await open(start, version: 1), "already open")
            let opened = try await Self.windowState(start, env: env)
            #expect(opened.state == "open" && opened.version == 1 && !opened.closed)
            #expect(try await !open(start + width, width: 2 * width, version: 1), "not under another width")
            #expect(try await !open(start + width, version: 2), "not under a version that does not exist yet")
            let claimed = try await env.pool.withConnection { try store.claimWindow(startNanos: start, owner: "r1", leaseSeconds: 30, on: $0) }
            #expect(claimed?.isOpen == true && claimed?.wasScored == false && claimed?.closedAtMicros == Int64.max)
            try await env.pool.withConnection { connection in
                if let claimed { try store.releaseLease(claimed, owner: "r1", on: connection) }
            }

            // An update made "at" the open window's start takes effect at its end, not its start.
            var next = monitor
            next.sampleRate = 0.5
            let toStore = next
            let v2 = try await env.pool.withConnection { try monitors.update(toStore, expectedVersion: 1, note: "v2", nowNanos: start, on: $0) }
            #expect(v2.version == 2)
            #expect(v2.effectiveFromNanos == start + width)
            #expect(try await !open(start + 2 * width, version: 1), "version 1 is no longer the newest")
            #expect(try await open(start + width, version: 2))
            #expect(try await !open(start, version: 2), "the first window is before version 2 is in force")
            #expect(try await Self.windowState(start, env: env).version == 1)

            // Once they can close, open windows count as work even with nothing left to score
            // and no summary counts (here: no traces at all), so they are always closed.
            let work = try await env.pool.withConnection { try store.windowsNeedingWork(widthNanos: width, endingBy: start + 2 * width, on: $0) }
            #expect(work == [start, start + width])

            // Closing turns the open rows closed, now, with the version they were opened under.
            try await env.pool.withConnection { try store.closeWindows([start, start + width], widthNanos: width, configVersion: 7, on: $0) }
            let first = try await Self.windowState(start, env: env)
            let second = try await Self.windowState(start + width, env: env)
            #expect(first.state == "closed" && first.version == 1 && first.closed)
            #expect(second.state == "closed" && second.version == 2 && second.closed)
            let reclaimed = try await env.pool.withConnection { try store.claimWindow(startNanos: start, owner: "r1", leaseSeconds: 30, on: $0) }
            #expect(reclaimed?.isOpen == false && reclaimed?.wasScored == false)
            #expect((reclaimed?.closedAtMicros ?? Int64.max) < Int64.max)
            #expect(try await !open(start, version: 2), "a closed window is not reopened")
        }
    }

    @Test("a pass over an open window leaves OTLP traces; a trace stored after the close is late even for a pass begun while open")
    func openPassLeavesOTLPAndSeesTheClose() async throws {
        try await Environment.with(partitions: 1) { env in
            let store = ScoringStore()
            let (start, width) = (Self.start, Self.width)
            _ = try await env.pool.withConnection { try MonitorStore(schema: .default).saveIfChanged(try scoringTestMonitor(), note: "v1", nowNanos: 0, on: $0) }
            _ = try await env.pool.withConnection { try IngestStore(groupID: "g").write(StoreTests.batch(try StoreTests.traces(10, seed: 9), firstOffset: 0), on: $0) }
            let otlp = try await env.pool.withConnection { connection in
                _ = try connection.execute("UPDATE traces SET request_time_ns = $1::bigint + 1000000000", [.text(String(start))])
                return try connection.query("UPDATE traces SET format = 'otlp' WHERE trace_id IN (SELECT trace_id FROM traces ORDER BY trace_id LIMIT 2) RETURNING trace_id")
                    .map { try $0.string(0) }
            }
            #expect(try await env.pool.withConnection { try store.openWindow(startNanos: start, widthNanos: width, configVersion: 1, on: $0) })
            guard let window = try await env.pool.withConnection({ try store.claimWindow(startNanos: start, owner: "r1", leaseSeconds: 30, on: $0) }) else {
                Issue.record("the open window could not be claimed")
                return
            }
            let whileOpen = try await env.pool.withConnection { try store.unhandledTraces(of: window, excludingOTLP: true, limit: 100, on: $0) }
            #expect(whileOpen.count == 8)
            #expect(Set(whileOpen.map(\.traceID)).isDisjoint(with: otlp))
            #expect(whileOpen.allSatisfy { !$0.late })
            #expect(try await env.pool.withConnection { try store.unhandledTraces(of: window, limit: 100, on: $0) }.count == 10)

            // The window closes while this pass still holds the open window; a trace stored
            // after that is late for it too.
            try await env.pool.withConnection { try store.closeWindows([start], widthNanos: width, configVersion: 1, on: $0) }
            let lateID = try await env.pool.withConnection { connection in
                try connection.query("UPDATE traces SET ingested_at = now() + interval '1 hour' WHERE trace_id = $1 RETURNING trace_id", [.text(whileOpen[0].traceID)])[0].string(0)
            }
            let afterClose = try await env.pool.withConnection { try store.unhandledTraces(of: window, excludingOTLP: true, limit: 100, on: $0) }
            #expect(afterClose.filter(\.late).map(\.traceID) == [lateID])
        }
    }

    @Test("a window's traces are scored while it is open; its close publishes the summaries, and each trace counts once")
    func scoredWhileOpen() async throws {
        try await Environment.with(partitions: 2) { env in
            try env.cluster.createTopic("assessments", partitions: 2)
            let monitor = try scoringTestMonitor()
            _ = try await env.pool.withConnection { try MonitorStore(schema: .default).saveIfChanged(monitor, note: "test", nowNanos: 0, on: $0) }
            let width = monitor.window.widthNanos
            let start = (1_770_000_000_000_000_000 / width) * width
            // No partition counts as idle during the test, so window A can close only when
            // later traffic moves every partition's event time past its end.
            let replicas = FullReplicas(["r1", "r2"], env: env, idleTimeout: .seconds(600))
            try await env.publish(windowedMessages(perWindow: 300, windows: 1, start: start, width: width, seed: 41))
            let whileOpen = try await env.waitUntil("window A's traces scored while it is open", timeout: .seconds(90), query: { connection in
                let row = try connection.query("""
                    SELECT (SELECT count(*) FROM traces WHERE scored_at IS NOT NULL),
                           (SELECT count(*) FROM windows WHERE window_start_ns = $1 AND state = 'open' AND closed_at IS NULL),
                           (SELECT count(*) FROM windows WHERE state <> 'open'),
                           (SELECT count(*) FROM outbox WHERE schema_name = 'window-summary/v1')
                    """, [.text(String(start))])[0]
                return [try row.int(0), try row.int(1), try row.int(2), try row.int(3)]
            }, done: { $0[0] == 300 })
            #expect(whileOpen[1] == 1, "window A is still open")
            #expect(whileOpen[2] == 0, "no window has closed")
            #expect(whileOpen[3] == 0, "no summary is published before the close")

            // Traffic two windows later moves every partition past A's end and lateness.
            try await env.publish(windowedMessages(perWindow: 40, windows: 1, start: start + 2 * width, width: width, seed: 42))
            // Every trace handled (the later window's too, while it stays open), so no scoring
            // is left to race the shutdown, and everything published.
            _ = try await env.waitUntil("window A scored, every trace handled, everything published", query: { connection in
                let row = try connection.query("""
                    SELECT (SELECT count(*) FROM windows WHERE window_start_ns = $1 AND state = 'scored'),
                           (SELECT count(*) FROM traces WHERE scored_at IS NULL), (SELECT count(*) FROM traces),
                           (SELECT count(*) FROM outbox WHERE published_at IS NULL)
                    """, [.text(String(start))])[0]
                return [try row.int(0), try row.int(1), try row.int(2), try row.int(3)]
            }, done: { $0[0] == 1 && $0[1] == 0 && $0[2] == 340 && $0[3] == 0 })
            try await replicas.stop()
            #expect(replicas.scoring.map { $0.currentStatistics.tracesHandledWhileOpen }.reduce(0, +) >= 300)

            let rhos = try await env.storedRhos()
            let inA = try await env.pool.withConnection { connection in
                Set(try connection.query("SELECT trace_id FROM traces WHERE request_time_ns < $1", [.text(String(start + width))]).map { try $0.string(0) })
            }
            #expect(inA.count == 300)
            let (pairs, ids) = try await env.storedAssessments()
            for (scorer, rate) in [("no_error", 1.0), ("fast_enough", 0.4), ("no_pii", 0.2)] {
                let sampled = inA.filter { Sampler.isSampled(rho: rhos[$0] ?? 1, rate: rate) }
                #expect(sampled.allSatisfy { pairs["\($0)|\(scorer)"] == 1 }, "\(scorer): each sampled trace of A assessed once")
                #expect(inA.subtracting(sampled).allSatisfy { pairs["\($0)|\(scorer)"] == nil }, "\(scorer): nothing else")
                let summary = try await env.pool.withConnection { connection in
                    try connection.query("""
                        SELECT eligible, scored + not_applicable + errored, sampled_out, late_scored, revision FROM window_summaries
                        WHERE window_start_ns = $1 AND scorer_name = $2
                        """, [.text(String(start)), .text(scorer)])[0]
                }
                #expect(try summary.int(0) == 300, "\(scorer): every trace of A eligible once")
                #expect(try summary.int(1) == sampled.count, "\(scorer): every sampled trace counted once")
                #expect(try summary.int(2) == 300 - sampled.count)
                #expect(try summary.int(3) == 0)
                #expect(try summary.int(4) == 1, "\(scorer): published once, at the close")
            }
            #expect(try await env.pool.withConnection { try $0.query("SELECT count(*) FROM traces WHERE late")[0].int(0) } == 0)
            let outboxCount = try await env.count("outbox_messages")
            let topic = try await env.readAssessmentsTopic(expected: outboxCount)
            try verifyTopic(topic, storedIDs: ids)
            let summaries = topic.filter { $0.header("assay-schema") == "window-summary/v1" }
                .compactMap { try? JSONParser().parse($0.value ?? []) }
                .filter { $0["window_start"]?.stringValue == TimeFormatting.rfc3339(nanos: start, fraction: .shortestExact) }
            #expect(summaries.count == 3, "one summary per scorer for A")
        }
    }
}
