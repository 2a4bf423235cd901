import AssayCore
import AssayOTLP
import AssayStore
import AssayTestSupport
import Foundation
import Postgres
import Synchronization
import Testing

/// Two replicas storing spans of one OTLP trace at the same time (its messages went to two
/// partitions). Each write stores its spans, then records the trace under assembly; the one
/// that sees the ended root writes the trace row. When the root's write commits first, the
/// row is written before the other write's spans are committed, and that write must then
/// update the count; the other way round, the root's write must count the spans already
/// committed. Either way the row counts every span.
@Suite("OTLP assembly by two replicas at once", .timeLimit(.minutes(2)))
struct AssemblyConcurrencyTests {
    @Test("spans of one trace written by two replicas at once: the trace row counts all of them, whichever commits first",
          arguments: [true, false])
    func concurrentFragmentsCountEverySpan(rootHeld: Bool) async throws {
        try await Environment.with(partitions: 2) { env in
            let trace = try #require(try StoreTests.traces(20, seed: 31).first { $0.spans.count >= 3 && $0.rootSpan != nil })
            let root = try #require(trace.rootSpan)
            let children = trace.spans.filter { $0.spanID != root.spanID }
            let hex = trace.canonicalTraceID
            let withRoot = TraceFragment(traceIDHex: hex, resourceAttributes: [:], spans: [root, children[0]])
            let rest = TraceFragment(traceIDHex: hex, resourceAttributes: [:], spans: Array(children.dropFirst()))
            func batch(_ fragment: TraceFragment, partition: Int32) -> IngestBatch {
                var batch = IngestBatch()
                let source = SourcePosition(partition: PartitionKey(topic: "traces", partition: partition), offset: 0)
                batch.cover(source)
                batch.fragments = [(fragment: fragment, source: source)]
                return batch
            }
            let batchA = batch(withRoot, partition: 0)
            let batchB = batch(rest, partition: 1)

            // A third transaction inserts one of the held write's spans and keeps it
            // uncommitted: that write stops inside its span insert, waiting on the row, while
            // the other write runs to its commit. Then the third transaction rolls back.
            let (held, other) = rootHeld ? (batchA, batchB) : (batchB, batchA)
            let heldSpan = try #require(held.fragments.first?.fragment.spans.first)
            let gate = AssemblyGate()
            let pool = env.pool
            let holder = Thread {
                gate.finish(Result {
                    try pool.withConnectionBlocking { connection in
                        try connection.executeScript("BEGIN")
                        try connection.execute(
                            "INSERT INTO spans (trace_id, span_id, name, start_time_ns, status_code) VALUES ($1, $2, 'held', 0, 'UNSET')",
                            [.text(withRoot.traceID), .text(heldSpan.spanID)])
                        gate.held()
                        gate.waitForRelease()
                        try connection.executeScript("ROLLBACK")
                    }
                })
            }
            holder.start()
            defer { gate.release() }  // never leave the holder blocked, whatever fails below
            try await waitFor("the span row to be held") { gate.isHeld || gate.isFinished }
            #expect(gate.failure == nil, "\(String(describing: gate.failure))")

            let heldWrite = Task { try await pool.withConnection { try IngestStore(groupID: "a").write(held, on: $0) } }
            try await waitFor("the held write to wait inside its span insert") {
                try await pool.withConnection { connection in
                    try connection.query("""
                        SELECT count(*) FROM pg_stat_activity
                        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO spans%'
                        """)[0].int(0)
                } == 1
            }
            let otherResult = try await pool.withConnection { try IngestStore(groupID: "b").write(other, on: $0) }
            gate.release()
            let written = try await heldWrite.value.spansInserted + otherResult.spansInserted
            try await waitFor("the holder to end") { gate.isFinished }
            #expect(gate.failure == nil, "\(String(describing: gate.failure))")

            #expect(written == trace.spans.count)
            let row = try await pool.withConnection { connection in
                try connection.query("""
                    SELECT t.span_count, (SELECT count(*) FROM spans s WHERE s.trace_id = t.trace_id), t.root_span_id,
                           (SELECT completed_at IS NOT NULL FROM trace_assembly a WHERE a.trace_id = t.trace_id)
                    FROM traces t WHERE t.trace_id = $1
                    """, [.text(withRoot.traceID)]).first.map { (try $0.int(0), try $0.int(1), try $0.optionalString(2), try $0.bool(3)) }
            }
            let stored = try #require(row, "the trace row was not written")
            #expect(stored.0 == trace.spans.count, "span_count \(stored.0) of \(trace.spans.count) spans")
            #expect(stored.1 == trace.spans.count)
            #expect(stored.2 == root.spanID)
            #expect(stored.3)
        }
    }

    /// Polls `condition` until it holds, for at most ``waitGuard``.
    private func waitFor(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now.advanced(by: waitGuard)
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// The holding transaction's thread and the test, in step.
private final class AssemblyGate: Sendable {
    private let state = Mutex<(held: Bool, finished: Bool, failure: String?)>((false, false, nil))
    private let released = DispatchSemaphore(value: 0)

    var isHeld: Bool { state.withLock { $0.held } }
    var isFinished: Bool { state.withLock { $0.finished } }
    var failure: String? { state.withLock { $0.failure } }

    func held() { state.withLock { $0.held = true } }
    func waitForRelease() { released.wait() }
    func release() { released.signal() }

    func finish(_ result: Result<Void, any Error>) {
        state.withLock { state in
            state.finished = true
            if case .failure(let error) = result { state.failure = "\(error)" }
        }
    }
}
