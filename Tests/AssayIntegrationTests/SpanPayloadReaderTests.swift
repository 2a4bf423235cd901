import AssayCore
import AssayStore
import Foundation
import Postgres
import Testing

/// TraceReader with `SpanPayloads.rootAndRetrievers` reads what the Swift rule keeps, and no more.
@Suite("Reading span payloads for scoring")
struct SpanPayloadReaderTests {
    @Test("rootAndRetrievers reads exactly the payloads SpanPayloads keeps (OTLP traces keep all)")
    func readsTheKeptPayloads() async throws {
        try await Environment.with(partitions: 1) { env in
            let traces = try StoreTests.traces(40, seed: 11)
            _ = try await env.pool.withConnection { try IngestStore(groupID: "g").write(StoreTests.batch(traces, firstOffset: 0), on: $0) }
            // One trace read as if it were OTLP: its spans keep every payload.
            let otlpID = traces[0].traceID
            _ = try await env.pool.withConnection { try $0.execute("UPDATE traces SET format = 'otlp' WHERE trace_id = $1", [.text(otlpID)]) }
            let ids = traces.map(\.traceID)
            let all = try await env.pool.withConnection { try TraceReader.load(traceIDs: ids, windowClosedAtMicros: .max, on: $0) }
            let some = try await env.pool.withConnection {
                try TraceReader.load(traceIDs: ids, windowClosedAtMicros: .max, payloads: .rootAndRetrievers, on: $0)
            }
            #expect(all.count == 40)
            #expect(some.count == 40)
            let full = Dictionary(uniqueKeysWithValues: all.map { ($0.trace.traceID, $0.trace) })
            var dropped = 0
            var kept = 0
            for stored in some {
                let trace = try #require(full[stored.trace.traceID])
                #expect(stored.trace == SpanPayloads.rootAndRetrievers.applied(to: trace), "\(stored.trace.traceID)")
                for (a, b) in zip(trace.spans, stored.trace.spans) where a.inputs != nil || a.outputs != nil {
                    if b.inputs == nil && b.outputs == nil { dropped += 1 } else { kept += 1 }
                }
                if stored.trace.traceID == otlpID {
                    #expect(stored.trace == trace, "an OTLP trace keeps every payload")
                }
            }
            #expect(dropped > 0, "the synthetic traces have spans whose payloads are dropped")
            #expect(kept > 0)
        }
    }
}
