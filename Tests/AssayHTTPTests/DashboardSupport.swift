import AssayCore
import AssayStore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LocalPostgres
import Logging
import Postgres
import Testing
@testable import AssayHTTP

/// Times of the seeded windows: three one-minute windows from 2026-02-02T02:40:00Z.
enum Seed {
    static let width: Int64 = 60_000_000_000
    static let w0: Int64 = 1_770_000_000_000_000_000
    static let w1: Int64 = w0 + width
    static let w2: Int64 = w1 + width
    static let hostileName = "<script>alert('span')</script>"
    static let hostileRationale = "<img src=x onerror=alert(1)> \u{1b}[31mred\u{1b}[0m"
    static let hostileTraceID = "tr-<b>bold<i>&\"quoted\" é"

    /// Rows for every table the dashboard reads, inserted directly (no pipeline involved).
    static let sql = """
        INSERT INTO windows (window_start_ns, window_end_ns, config_version, closed_at, state, scored_at, late_traces) VALUES
          (\(w0), \(w0 + width), 1, '2026-02-02T02:41:05Z', 'scored', '2026-02-02T02:41:06Z', 1),
          (\(w1), \(w1 + width), 1, '2026-02-02T02:42:05Z', 'scored', '2026-02-02T02:42:06Z', 0),
          (\(w2), \(w2 + width), 1, '2026-02-02T02:43:05Z', 'closed', NULL, 0);

        INSERT INTO traces (trace_id, canonical_trace_id, format, request_time, request_time_ns, execution_duration_ms, state,
                            request_preview, response_preview, tags, span_count, root_span_id, source_topic, source_partition,
                            source_offset, rho, scored_at, late) VALUES
          ('tr-a1', 'a1', 'mlflow3', '2026-02-02T02:40:01Z', \(w0 + 1_000_000_000), 120, 'OK', 'What is the leave policy?', 'Twenty days.',
           '{"env": "prod"}', 1, NULL, 'traces', 0, 10, 0.1, now(), false),
          ('tr-a2', 'a2', 'mlflow3', '2026-02-02T02:40:02Z', \(w0 + 2_000_000_000), 9000, 'ERROR', 'Slow one', NULL,
           '{}', 0, NULL, 'traces', 1, 11, 0.2, now(), false),
          ('tr-a3', 'a3', 'mlflow3', '2026-02-02T02:40:03Z', \(w0 + 3_000_000_000), 50, 'OK', 'Late one', 'ok', '{}', 0, NULL,
           'traces', 0, 12, 0.3, now(), true),
          ('tr-b1', 'b1', 'mlflow3', '2026-02-02T02:41:01Z', \(w1 + 1_000_000_000), 100, 'OK', repeat('q', 3000), 'answer',
           '{"env": "prod", "team": "<b>hr</b>"}', 5, '0000000000000001', 'traces', 1, 20, 0.4, now(), false),
          ('tr-b2', 'b2', 'mlflow3', '2026-02-02T02:41:02Z', \(w1 + 2_000_000_000), 80, 'OK', 'Second', 'fine', '{}', 0, NULL,
           'traces', 0, 21, 0.5, now(), false),
          ('tr-c1', 'c1', 'mlflow3', '2026-02-02T02:42:01Z', \(w2 + 1_000_000_000), 70, 'OK', 'Waiting', 'x', '{}', 0, NULL,
           'traces', 1, 30, 0.6, NULL, false),
          ('\(hostileTraceID.replacingOccurrences(of: "'", with: "''"))', 'ff', 'mlflow3', '2026-02-02T02:41:03Z', \(w1 + 3_000_000_000), 1,
           'OK', '<script>alert(1)</script>', NULL, '{}', 0, NULL, 'traces', 0, 22, 0.9, now(), false);

        INSERT INTO spans (trace_id, span_id, parent_span_id, name, span_type, start_time_ns, end_time_ns, status_code, status_message,
                           inputs, outputs, attributes, events) VALUES
          ('tr-b1', '0000000000000001', NULL, 'agent', 'AGENT', \(w1 + 1_001_000_000), \(w1 + 1_100_000_000), 'OK', '',
           '{"question": "leave?"}', '"Twenty days."', '{}', '[]'),
          ('tr-b1', '0000000000000002', '0000000000000001', '\(hostileName.replacingOccurrences(of: "'", with: "''"))', 'TOOL',
           \(w1 + 1_002_000_000), \(w1 + 1_010_000_000), 'ERROR', 'tool failed',
           jsonb_build_object('query', repeat('é', 3000)), NULL, '{"tool": "lookup"}', '[{"name": "exception", "time_unix_nano": 1}]'),
          ('tr-b1', '0000000000000003', '0000000000000002', 'retrieve', 'RETRIEVER', \(w1 + 1_003_000_000), \(w1 + 1_004_000_000), 'OK', '',
           NULL, '[{"doc": "policy"}]', '{}', '[]'),
          ('tr-b1', '0000000000000004', 'ffffffffffffffff', 'lost', NULL, \(w1 + 1_004_500_000), NULL, 'UNSET', '', NULL, NULL, '{}', '[]'),
          ('tr-b1', '0000000000000005', '0000000000000001', 'llm', 'CHAT_MODEL', \(w1 + 1_005_000_000), \(w1 + 1_090_000_000), 'OK', '',
           '{"messages": []}', '{"content": "Twenty days."}', '{}', '[]');

        INSERT INTO assessments (assessment_id, trace_id, span_id, assessment_name, scorer_name, window_start_ns, config_version,
                                 source_type, outcome, value, rationale, error_code, late, document, judge_latency_ms,
                                 judge_input_tokens, judge_output_tokens) VALUES
          ('00000000-0000-0000-0000-000000000001', 'tr-a1', NULL, 'no_pii', 'no_pii', \(w0), 1, 'CODE', 'pass', '"yes"', 'no PII found',
           NULL, false, '{"source": {"source_type": "CODE", "source_id": "assay/pii"}}', NULL, NULL, NULL),
          ('00000000-0000-0000-0000-000000000002', 'tr-a1', NULL, 'fast_enough', 'fast_enough', \(w0), 1, 'CODE', 'pass', '"yes"',
           'took 120 ms', NULL, false, '{}', NULL, NULL, NULL),
          ('00000000-0000-0000-0000-000000000003', 'tr-a2', NULL, 'fast_enough', 'fast_enough', \(w0), 1, 'CODE', 'fail', '"no"',
           'took 9000 ms, over 5000', NULL, false, '{}', NULL, NULL, NULL),
          ('00000000-0000-0000-0000-000000000004', 'tr-a3', NULL, 'fast_enough', 'fast_enough', \(w0), 1, 'LLM_JUDGE', 'error', NULL, NULL,
           'TIMEOUT', true, '{"feedback": {"error": {"error_code": "TIMEOUT", "error_message": "the judge did not answer in 30 s"}}}',
           NULL, NULL, NULL),
          ('00000000-0000-0000-0000-000000000005', 'tr-b1', NULL, 'no_pii', 'no_pii', \(w1), 1, 'LLM_JUDGE', 'fail', '"no"',
           '\(hostileRationale.replacingOccurrences(of: "'", with: "''"))', NULL, false,
           '{"source": {"source_type": "LLM_JUDGE", "source_id": "offline-judge/1"}}', 12.5, 100, 20),
          ('00000000-0000-0000-0000-000000000006', 'tr-b1', '0000000000000003', 'fast_enough', 'fast_enough', \(w1), 1, 'CODE', 'pass',
           '"yes"', 'took 100 ms', NULL, false, '{}', NULL, NULL, NULL),
          ('00000000-0000-0000-0000-000000000007', 'tr-b2', NULL, 'no_pii', 'no_pii', \(w1), 1, 'CODE', 'not_applicable', 'null',
           'no output to check', NULL, false, '{}', NULL, NULL, NULL);

        INSERT INTO window_summaries (window_start_ns, scorer_name, window_end_ns, config_version, eligible, filtered_out, sampled_out,
                                      budget_skipped, not_applicable, errored, scored, passed, late_scored, revision, document) VALUES
          (\(w0), 'no_pii', \(w0 + width), 1, 3, 0, 2, 0, 0, 0, 1, 1, 0, 1, '{}'),
          (\(w0), 'fast_enough', \(w0 + width), 1, 3, 0, 0, 0, 0, 1, 2, 1, 0, 2, '{}'),
          (\(w1), 'no_pii', \(w1 + width), 1, 2, 0, 0, 0, 1, 0, 1, 0, 0, 1,
           '{"judge_latency_p50_ms": 12.5, "judge_latency_p95_ms": 12.5, "tokens": {"input": 100, "output": 20, "total": 120}}'),
          (\(w1), 'fast_enough', \(w1 + width), 1, 2, 0, 1, 0, 0, 0, 1, 1, 0, 1, NULL);

        INSERT INTO dead_letters (source_topic, source_partition, source_offset, reason, detail, payload, payload_size, created_at) VALUES
          ('traces', 0, 5, 'invalid_json', 'unexpected end of input <b>', '\\x7b', 1, '2026-02-02T02:40:30Z'),
          ('traces', 1, 6, 'tombstone', 'no value', NULL, NULL, '2026-02-02T02:40:40Z'),
          ('traces', 1, 7, 'invalid_json', 'bad', '\\x7b', 1, '2026-02-02T02:40:50Z');

        INSERT INTO partition_watermarks (topic, partition, max_event_time_ns, advanced_at) VALUES
          ('traces', 0, \(w2 + 1_000_000_000), now()),
          ('traces', 1, \(w2 + 5_000_000_000), now());

        INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES
          ('assay', 'traces', 0, 23), ('assay', 'traces', 1, 31);

        INSERT INTO outbox (message_key, schema_name, payload) VALUES ('tr-b2', 'assessment/v1', '{}');
        """
}

/// A running admin API with the dashboard hooks over a fresh, migrated database, seeded with
/// ``Seed/sql`` and a monitor (version 1) unless `seed` is false.
func withDashboardAPI<T: Sendable>(
    host: String = "127.0.0.1",
    token: String? = testToken,
    seed: Bool = true,
    lagProvider: AdminServer.LagProvider? = nil,
    metricsText: AdminServer.MetricsText? = nil,
    _ body: (APIHarness) async throws -> T
) async throws -> T {
    try await TestDatabase.withTemporary(prefix: "assay_dash", logger: quietLogger) { database in
        _ = try await AssayDatabase.migrate(url: database.url, schema: .default, logger: quietLogger)
        let pool = try PostgresPool(
            configuration: AssayDatabase.configuration(url: database.url, schema: .default), size: 2, name: "dash-test", logger: quietLogger)
        do {
            if seed {
                let config = try MonitorConfig.parse(Array(validDocument.utf8))
                try await pool.withConnection { connection in
                    _ = try MonitorStore(schema: .default).update(config, expectedVersion: nil, note: "test", nowNanos: Seed.w0, on: connection)
                    try connection.executeScript(Seed.sql)
                }
            }
        } catch {
            await pool.shutdown()
            throw error
        }
        return try await serving(pool: pool, database: database, body) { onServerRunning in
            AdminServer(
                configuration: .init(host: host, port: 0, adminToken: token),
                pool: pool, schema: .default, readiness: { ["postgres": nil] }, logger: quietLogger,
                onServerRunning: onServerRunning, lagProvider: lagProvider, metricsText: metricsText)
        }
    }
}

extension APIHarness {
    /// GET `path` (with `query`), with the token when given.
    func get(_ path: String, query: String? = nil, token: String? = nil) async throws -> MonitorAdminClient.Exchange {
        try await client(token: token).send("GET", path, query: query)
    }

    /// GET a path given exactly as it goes on the wire (already percent-encoded).
    func rawGet(_ percentEncodedPath: String) async throws -> (status: Int, headers: [String: String], body: [UInt8]) {
        guard let url = URL(string: "http://127.0.0.1:\(port)\(percentEncodedPath)") else { throw TestFailure("bad path \(percentEncodedPath)") }
        let (data, response) = try await URLSession.shared.data(for: URLRequest(url: url, timeoutInterval: 30))
        guard let http = response as? HTTPURLResponse else { throw TestFailure("not HTTP") }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
        }
        return (http.statusCode, headers, Array(data))
    }

    /// GET `path` and parse the JSON body, expecting 200.
    func json(_ path: String, query: String? = nil, token: String? = nil) async throws -> JSONValue {
        let response = try await get(path, query: query, token: token)
        guard response.status == 200 else {
            throw TestFailure("GET \(path) answered \(response.status): \(String(decoding: response.body, as: UTF8.self))")
        }
        #expect(response.headers["content-type"] == "application/json")
        return try response.parsed()
    }
}
