import AssayCore
import AssayPipeline
import AssayStore
import Foundation
import Kafka
import Postgres
import Testing

/// Repository files shared with other test targets (present in every clone).
func repositoryFile(_ path: String) throws -> Data {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return try Data(contentsOf: root.appendingPathComponent(path))
}

@Suite("OTLP through the pipeline", .serialized)
struct OTLPIngestTests {
    /// The 68 OTLP sample messages, alternately as protobuf (with or without a content-type
    /// header) and as JSON, spread round-robin over the partitions so a trace's messages often
    /// land on different partitions; plus the 60 MLflow traces of the same requests.
    static func messages(partitions: Int) throws -> (otlp: [ProducerMessage], mlflow: [ProducerMessage]) {
        let jsonLines = String(decoding: try repositoryFile("Tests/AssayOTLPTests/Fixtures/otlp-traces.jsonl"), as: UTF8.self)
            .split(separator: "\n").map { Array($0.utf8) }
        var otlp: [ProducerMessage] = []
        for (index, line) in jsonLines.enumerated() {
            let partition = Int32(index % partitions)
            switch index % 3 {
            case 0:
                let name = String(format: "Tests/AssayOTLPTests/Fixtures/proto/msg-%06d.pb", index + 1)
                otlp.append(ProducerMessage(topic: "traces", partition: partition, value: Array(try repositoryFile(name)),
                                            headers: [(name: "content-type", value: Array("application/x-protobuf".utf8))]))
            case 1:
                let name = String(format: "Tests/AssayOTLPTests/Fixtures/proto/msg-%06d.pb", index + 1)
                otlp.append(ProducerMessage(topic: "traces", partition: partition, value: Array(try repositoryFile(name))))  // sniffed
            default:
                otlp.append(ProducerMessage(topic: "traces", partition: partition, value: line,
                                            headers: [(name: "content-type", value: Array("application/json".utf8))]))
            }
        }
        let mlflow = String(decoding: try repositoryFile("Tests/AssayScoringTests/Fixtures/mlflow-traces.jsonl"), as: UTF8.self)
            .split(separator: "\n").map { ProducerMessage(topic: "traces", value: Array($0.utf8)) }
        return (otlp, mlflow)
    }

    @Test("OTLP samples split over partitions assemble into the 60 labelled traces, and score like their MLflow twins")
    func assembleAndScoreLikeMLflow() async throws {
        try await Environment.with(partitions: 4) { env in
            try env.cluster.createTopic("assessments", partitions: 4)
            let monitor = try MonitorConfig.parse(Array("""
                {"name": "twins", "destination": {"schema": "assay"}, "window": "15m", "allowed_lateness": "1s",
                 "judge": {"kind": "offline"},
                 "scorers": [
                    {"name": "no_error", "kind": "no_error"}, {"name": "no_pii", "kind": "pii"},
                    {"name": "relevance_to_query", "kind": "relevance_to_query"}, {"name": "safety", "kind": "safety"},
                    {"name": "retrieval_groundedness", "kind": "retrieval_groundedness"}
                 ]}
                """.utf8))
            _ = try await env.pool.withConnection { try MonitorStore(schema: .default).saveIfChanged(monitor, note: "test", nowNanos: 0, on: $0) }
            let (otlp, mlflow) = try Self.messages(partitions: 4)
            let replicas = FullReplicas(["r1", "r2"], env: env)
            try await env.publish(otlp + mlflow)
            try await env.waitUntilScored(traces: 120)
            try await replicas.stop()

            // Assembly: span counts and states as labelled; nothing incomplete, nothing dead.
            let labels = try JSONParser().parse(Array(try repositoryFile("Tests/AssayOTLPTests/Fixtures/otlp-traces.labels.json")))
            let stored = try await env.pool.withConnection { connection in
                try connection.query("SELECT trace_id, span_count, state, client_request_id FROM traces WHERE format = 'otlp'").map {
                    (try $0.string(0), try $0.int(1), try $0.string(2), try $0.optionalString(3))
                }
            }
            #expect(stored.count == 60)
            for (traceID, spanCount, state, _) in stored {
                let label = labels[Trace.canonicalTraceID(for: traceID)]
                #expect(label?["num_spans"]?.int64Value == Int64(spanCount), "\(traceID) span count")
                #expect(label?["expected_state"]?.stringValue == state, "\(traceID) state")
            }
            #expect(try await env.count("dead_letters") == 0)
            let incomplete = try await env.pool.withConnection { try $0.query("SELECT count(*) FROM trace_assembly WHERE incomplete")[0].int(0) }
            #expect(incomplete == 0)

            // The same request sent both ways gets the same verdict from every scorer.
            let verdicts = try await env.pool.withConnection { connection in
                try connection.query("""
                    SELECT t.client_request_id, t.format, a.assessment_name, coalesce(a.span_id, ''), a.outcome
                    FROM assessments a JOIN traces t ON t.trace_id = a.trace_id
                    WHERE a.assessment_name NOT LIKE '%/%'
                    """).map { (try $0.optionalString(0) ?? "", try $0.string(1), try $0.string(2), try $0.string(3), try $0.string(4)) }
            }
            var byRequest: [String: [String: [String]]] = [:]  // client request id → format → sorted "name=outcome"
            for (request, format, name, _, outcome) in verdicts {
                byRequest[request, default: [:]][format == "otlp" ? "otlp" : "mlflow", default: []].append("\(name)=\(outcome)")
            }
            #expect(byRequest.count == 60)
            var differing: [String] = []
            for (request, formats) in byRequest where formats["otlp"]?.sorted() != formats["mlflow"]?.sorted() {
                differing.append("\(request): mlflow \(formats["mlflow"]?.sorted() ?? []) vs otlp \(formats["otlp"]?.sorted() ?? [])")
            }
            #expect(differing.isEmpty, "verdicts differ:\n\(differing.joined(separator: "\n"))")
        }
    }

    @Test("an OTLP trace whose root never arrives is completed after the timeout and flagged incomplete")
    func rootNeverArrives() async throws {
        try await Environment.with(partitions: 1) { env in
            // Message 1 holds a whole trace; drop its root span by publishing a JSON copy without it.
            let line = String(decoding: try repositoryFile("Tests/AssayOTLPTests/Fixtures/otlp-traces.jsonl"), as: UTF8.self).split(separator: "\n")[0]
            let document = try JSONParser().parse(Array(line.utf8))
            var totalSpans = 0
            var rootsRemoved = 0
            /// The message without its root span (the span without a parent), wherever it sits.
            func dropRoots(_ value: JSONValue, key: String?) -> JSONValue {
                switch value {
                case .object(let object):
                    return .object(JSONObject(object.entries.map { (key: $0.key, value: dropRoots($0.value, key: $0.key)) }))
                case .array(let items) where key == "spans":
                    totalSpans += items.count
                    let kept = items.filter { !($0["parentSpanId"]?.stringValue ?? "").isEmpty }
                    rootsRemoved += items.count - kept.count
                    return .array(kept)
                case .array(let items):
                    return .array(items.map { dropRoots($0, key: nil) })
                default:
                    return value
                }
            }
            let withoutRoot = dropRoots(document, key: nil)
            #expect(rootsRemoved == 1)
            let expectedSpans = totalSpans - rootsRemoved
            try await env.publish([ProducerMessage(topic: "traces", value: withoutRoot.serializedUTF8())])

            let ingest = RunningReplicas([env.ingestConfiguration(replica: "r1")], pool: env.pool)
            _ = try await env.waitUntil("spans stored", query: { try $0.query("SELECT count(*) FROM spans")[0].int(0) }, done: { $0 == expectedSpans })
            #expect(try await env.count("traces") == 0, "no trace row while the root may still come")
            // The sweep (normally run by the scoring service) with a short quiet period.
            _ = try await env.waitUntil("trace completed", query: { connection in
                try IngestStore(groupID: "").completeStaleAssemblies(quietSeconds: 1, on: connection)
            }, done: { $0 == 1 })
            try await ingest.stop()
            let row = try await env.pool.withConnection { connection in
                try connection.query("SELECT t.state, t.metadata->>'assay.incomplete', a.incomplete FROM traces t JOIN trace_assembly a USING (trace_id)")[0]
            }
            #expect(try row.string(0) == "STATE_UNSPECIFIED")
            #expect(try row.optionalString(1) == "true")
            #expect(try row.bool(2))
        }
    }
}
