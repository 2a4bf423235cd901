import AssayCore
import Foundation
import Testing
@testable import AssayHTTP

/// The dashboard's JSON endpoints over loopback HTTP, against rows inserted directly
/// (``Seed``): three windows, two scorers, seven assessments, a span tree, dead letters.
@Suite struct DashboardAPITests {
    @Test func windowsAreListedNewestFirstWithTheirSummaries() async throws {
        try await withDashboardAPI { api in
            let body = try await api.json("api/windows")
            #expect(body["limit"]?.int64Value == Int64(DashboardStore.defaultWindows))
            let windows = try #require(body["windows"]?.arrayValue)
            #expect(windows.map { $0["window_start"]?.stringValue } == ["2026-02-02T02:42:00Z", "2026-02-02T02:41:00Z", "2026-02-02T02:40:00Z"])
            #expect(windows.map { $0["window_start_ns"]?.stringValue } == [String(Seed.w2), String(Seed.w1), String(Seed.w0)])
            #expect(windows.map { $0["state"]?.stringValue } == ["closed", "scored", "scored"])
            #expect(windows.map { $0["traces"]?.int64Value } == [1, 3, 3])
            #expect(windows[2]["late_traces"]?.int64Value == 1)
            #expect(windows[2]["closed_at"]?.stringValue == "2026-02-02T02:41:05.000Z")
            #expect(windows[0]["scored_at"]?.isNull == true)
            #expect(windows[0]["scorers"]?.arrayValue?.isEmpty == true)

            // The scorers of a window are window summary documents, by scorer name.
            let oldest = try #require(windows[2]["scorers"]?.arrayValue)
            #expect(oldest.map { $0["scorer_name"]?.stringValue } == ["fast_enough", "no_pii"])
            let fast = oldest[0]
            #expect(fast["eligible"]?.int64Value == 3)
            #expect(fast["errored"]?.int64Value == 1)
            #expect(fast["scored"]?.int64Value == 2)
            #expect(fast["passed"]?.int64Value == 1)
            #expect(fast["revision"]?.int64Value == 2)
            #expect(fast["pass_rate"]?.doubleValue == 0.5)
            let interval = try #require(WilsonInterval.compute(successes: 1, trials: 2))
            #expect(fast["wilson_lower"]?.doubleValue == interval.lower)
            #expect(fast["wilson_upper"]?.doubleValue == interval.upper)
            #expect(fast["window_start"]?.stringValue == "2026-02-02T02:40:00Z")
            #expect(fast["judge_latency_p50_ms"]?.isNull == true)
            #expect(fast["tokens"]?.isNull == true)
            // Judge latency and tokens come from the stored summary document.
            let judged = try #require(windows[1]["scorers"]?.arrayValue?.first { $0["scorer_name"]?.stringValue == "no_pii" })
            #expect(judged["judge_latency_p50_ms"]?.doubleValue == 12.5)
            #expect(judged["tokens"]?["total"]?.int64Value == 120)
            #expect(judged["not_applicable"]?.int64Value == 1)
            #expect(judged["pass_rate"]?.doubleValue == 0)

            let limited = try await api.json("api/windows", query: "limit=2")
            #expect(limited["windows"]?.arrayValue?.count == 2)
            #expect(limited["limit"]?.int64Value == 2)
            for bad in ["limit=0", "limit=501", "limit=ten", "limit=-1"] {
                let response = try await api.get("api/windows", query: bad)
                #expect(response.status == 400, "\(bad)")
                #expect(response.errorMessage?.contains("limit") == true)
            }
        }
    }

    @Test func aWindowListsItsSampledTracesWithAssessments() async throws {
        try await withDashboardAPI { api in
            // By RFC 3339 time, by nanoseconds, and percent-encoded: the same window.
            let byTime = try await api.json("api/windows/2026-02-02T02:40:00Z")
            let byNanos = try await api.json("api/windows/\(Seed.w0)")
            #expect(byTime == byNanos)
            #expect(byTime["window"]?["window_start"]?.stringValue == "2026-02-02T02:40:00Z")
            #expect(byTime["matching_traces"]?.int64Value == 3)
            #expect(byTime["filter"]?["limit"]?.int64Value == Int64(SampledTraceQuery.defaultLimit))
            let traces = try #require(byTime["traces"]?.arrayValue)
            #expect(traces.map { $0["trace_id"]?.stringValue } == ["tr-a1", "tr-a2", "tr-a3"])
            #expect(traces[0]["assessments"]?.arrayValue?.map { $0["scorer_name"]?.stringValue } == ["fast_enough", "no_pii"])
            #expect(traces[0]["request_preview"]?["text"]?.stringValue == "What is the leave policy?")
            #expect(traces[0]["request_preview"]?["truncated"]?.boolValue == false)
            let failed = try #require(traces[1]["assessments"]?[0])
            #expect(failed["outcome"]?.stringValue == "fail")
            #expect(failed["value"]?.stringValue == "no")
            #expect(failed["rationale"]?["text"]?.stringValue == "took 9000 ms, over 5000")
            let errored = try #require(traces[2]["assessments"]?[0])
            #expect(errored["outcome"]?.stringValue == "error")
            #expect(errored["error_code"]?.stringValue == "TIMEOUT")
            #expect(errored["error_message"]?["text"]?.stringValue == "the judge did not answer in 30 s")
            #expect(errored["late"]?.boolValue == true)
            #expect(traces[2]["late"]?.boolValue == true)

            // Filters: a scorer, an outcome, both; paging.
            let pii = try await api.json("api/windows/\(Seed.w0)", query: "scorer=no_pii")
            #expect(pii["traces"]?.arrayValue?.map { $0["trace_id"]?.stringValue } == ["tr-a1"])
            let failures = try await api.json("api/windows/\(Seed.w0)", query: "outcome=fail")
            #expect(failures["traces"]?.arrayValue?.map { $0["trace_id"]?.stringValue } == ["tr-a2"])
            #expect(failures["filter"]?["outcome"]?.stringValue == "fail")
            let none = try await api.json("api/windows/\(Seed.w0)", query: "scorer=no_pii&outcome=fail")
            #expect(none["matching_traces"]?.int64Value == 0)
            #expect(none["traces"]?.arrayValue?.isEmpty == true)
            let page = try await api.json("api/windows/\(Seed.w0)", query: "limit=1&offset=1")
            #expect(page["traces"]?.arrayValue?.map { $0["trace_id"]?.stringValue } == ["tr-a2"])
            #expect(page["matching_traces"]?.int64Value == 3)

            // A long preview is cut and flagged.
            let second = try await api.json("api/windows/2026-02-02T02:41:00Z")
            let long = try #require(second["traces"]?.arrayValue?.first { $0["trace_id"]?.stringValue == "tr-b1" })
            #expect(long["request_preview"]?["truncated"]?.boolValue == true)
            #expect(long["request_preview"]?["bytes"]?.int64Value == 3000)
            #expect(long["request_preview"]?["text"]?.stringValue?.utf8.count == DashboardStore.shortTextBytes)

            let encoded = try await api.rawGet("/api/windows/2026-02-02T02%3A40%3A00Z")
            #expect(encoded.status == 200)

            let missing = try await api.get("api/windows/\(Seed.w0 + 1)")
            #expect(missing.status == 404)
            #expect(missing.errorMessage?.contains("no closed window") == true)
            for bad in ["yesterday", "2026-13-01T00:00:00Z", "12a"] {
                #expect(try await api.get("api/windows/\(bad)").status == 400, "\(bad)")
            }
            #expect(try await api.get("api/windows/\(Seed.w0)", query: "outcome=maybe").status == 400)
            #expect(try await api.get("api/windows/\(Seed.w0)", query: "limit=5000").status == 400)
        }
    }

    @Test func aTraceShowsItsSpanTreeAndAssessments() async throws {
        try await withDashboardAPI { api in
            let trace = try await api.json("api/traces/tr-b1")
            #expect(trace["trace_id"]?.stringValue == "tr-b1")
            #expect(trace["state"]?.stringValue == "OK")
            #expect(trace["request_time"]?.stringValue == "2026-02-02T02:41:01Z")
            #expect(trace["request_time_ns"]?.stringValue == String(Seed.w1 + 1_000_000_000))
            #expect(trace["source"]?["partition"]?.int64Value == 1)
            #expect(trace["source"]?["offset"]?.int64Value == 20)
            #expect(trace["tags"]?["team"]?.stringValue == "<b>hr</b>")
            #expect(trace["spans_stored"]?.int64Value == 5)

            // Depth-first: the root, its children by start time (each followed by its own),
            // then the span whose parent is not stored, as a root.
            let spans = try #require(trace["spans"]?.arrayValue)
            #expect(spans.map { $0["name"]?.stringValue } == ["agent", Seed.hostileName, "retrieve", "llm", "lost"])
            #expect(spans.map { $0["depth"]?.int64Value } == [0, 1, 2, 1, 0])
            #expect(spans[0]["duration_ms"]?.doubleValue == 99)
            #expect(spans[4]["duration_ms"]?.isNull == true)
            #expect(spans[0]["inputs"]?["text"]?.stringValue == #"{"question": "leave?"}"#)
            #expect(spans[0]["inputs"]?["truncated"]?.boolValue == false)
            #expect(spans[0]["outputs"]?["text"]?.stringValue == #""Twenty days.""#)
            #expect(spans[0]["attributes"]?.isNull == true)

            // Inputs over the budget are cut at a character boundary (é is two bytes) and flagged.
            let tool = spans[1]
            let inputs = try #require(tool["inputs"]?["text"]?.stringValue)
            #expect(tool["inputs"]?["truncated"]?.boolValue == true)
            #expect(inputs.utf8.count <= DashboardStore.spanTextBytes)
            #expect(inputs.utf8.count >= DashboardStore.spanTextBytes - 1)
            #expect(inputs.hasPrefix(#"{"query": "éé"#))
            #expect(tool["inputs"]?["bytes"]?.int64Value == Int64(#"{"query": ""}"#.utf8.count + 6000))
            #expect(tool["outputs"]?.isNull == true)
            #expect(tool["status_code"]?.stringValue == "ERROR")
            #expect(tool["status_message"]?["text"]?.stringValue == "tool failed")
            #expect(tool["events"]?.arrayValue == [.string("exception")])
            #expect(tool["attributes"]?["text"]?.stringValue == #"{"tool": "lookup"}"#)

            let assessments = try #require(trace["assessments"]?.arrayValue)
            #expect(assessments.map { $0["scorer_name"]?.stringValue } == ["fast_enough", "no_pii"])
            #expect(assessments[0]["span_id"]?.stringValue == "0000000000000003")
            let judged = assessments[1]
            #expect(judged["rationale"]?["text"]?.stringValue == Seed.hostileRationale)
            #expect(judged["source_type"]?.stringValue == "LLM_JUDGE")
            #expect(judged["source_id"]?.stringValue == "offline-judge/1")
            #expect(judged["judge_latency_ms"]?.doubleValue == 12.5)
            #expect(judged["judge_input_tokens"]?.int64Value == 100)
            #expect(judged["window_start"]?.stringValue == "2026-02-02T02:41:00Z")

            let capped = try await api.json("api/traces/tr-b1", query: "max_spans=2")
            #expect(capped["spans"]?.arrayValue?.count == 2)
            #expect(capped["spans_stored"]?.int64Value == 5)

            let unknown = try await api.get("api/traces/tr-nope")
            #expect(unknown.status == 404)
            #expect(unknown.headers["content-type"] == "application/json")
            #expect(try await api.get("api/traces/tr-b1", query: "max_spans=0").status == 400)
            #expect(try await api.rawGet("/api/traces/%FF%FE").status == 400)
        }
    }

    @Test func statusShowsMonitorPipelineDeadLettersAndOutbox() async throws {
        try await withDashboardAPI { api in
            let status = try await api.json("api/status")
            #expect(status["monitor"]?["version"]?.int64Value == 1)
            #expect(status["monitor"]?["config"]?["name"]?.stringValue == "prod-chatbot")
            #expect(status["monitor"]?["note"]?.stringValue == "test")
            #expect(status["monitor_error"]?.isNull == true)
            #expect(status["windows"]?["closed"]?.int64Value == 1)
            #expect(status["windows"]?["scored"]?.int64Value == 2)
            #expect(status["windows"]?["last_scored_end"]?.stringValue == "2026-02-02T02:42:00Z")
            #expect(status["unscored_traces"]?.int64Value == 1)
            #expect(status["traces_topic"]?.stringValue == "traces")
            // Both partitions advanced just now: the watermark is the slower one's event time.
            #expect(status["watermark"]?.stringValue == "2026-02-02T02:42:01.000Z")
            #expect(status["partitions"]?.arrayValue?.map { $0["partition"]?.int64Value } == [0, 1])
            #expect(status["partitions"]?[0]?["idle"]?.boolValue == false)
            #expect(status["committed_offsets"]?.arrayValue?.map { $0["next_offset"]?.int64Value } == [23, 31])
            // No lag hook: unknown, never guessed from PostgreSQL.
            #expect(status["consumer_lag"]?["known"]?.boolValue == false)
            #expect(status["consumer_lag"]?["total"]?.isNull == true)
            #expect(status["dead_letters"]?["total"]?.int64Value == 3)
            #expect(status["dead_letters"]?["by_reason"]?.arrayValue?.map { $0["reason"]?.stringValue } == ["invalid_json", "tombstone"])
            #expect(status["dead_letters"]?["by_reason"]?[0]?["count"]?.int64Value == 2)
            let latest = try #require(status["dead_letters"]?["latest"]?.arrayValue)
            #expect(latest.map { $0["offset"]?.int64Value } == [7, 6, 5])
            #expect(latest[2]["detail"]?["text"]?.stringValue == "unexpected end of input <b>")
            #expect(latest[2]["payload_bytes"]?.int64Value == 1)
            #expect(status["outbox"]?["backlog"]?.int64Value == 1)
            #expect(status["outbox"]?["oldest_unpublished_at"]?.stringValue != nil)
        }
    }

    @Test func statusReportsLagFromTheHookInPartitionOrder() async throws {
        let lag: [String: Int64] = ["traces/10": 5, "traces/2": 40, "traces/0": 0]
        try await withDashboardAPI(lagProvider: { lag }) { api in
            let status = try await api.json("api/status")
            #expect(status["consumer_lag"]?["known"]?.boolValue == true)
            #expect(status["consumer_lag"]?["total"]?.int64Value == 45)
            #expect(status["consumer_lag"]?["partitions"]?.arrayValue?.map { $0["partition"]?.stringValue } == ["traces/0", "traces/2", "traces/10"])
            #expect(status["consumer_lag"]?["partitions"]?[1]?["lag"]?.int64Value == 40)
        }
    }

    @Test func emptyDatabaseAnswersWithEmptyListsAndNoMonitor() async throws {
        try await withDashboardAPI(seed: false) { api in
            #expect(try await api.json("api/windows")["windows"]?.arrayValue?.isEmpty == true)
            let status = try await api.json("api/status")
            #expect(status["monitor"]?.isNull == true)
            #expect(status["watermark"]?.isNull == true)
            #expect(status["dead_letters"]?["total"]?.int64Value == 0)
            #expect(try await api.get("api/windows/\(Seed.w0)").status == 404)
        }
    }

    @Test func metricsAreServedFromTheHookOr404() async throws {
        try await withDashboardAPI(seed: false) { api in
            let response = try await api.get("metrics")
            #expect(response.status == 404)
            #expect(response.headers["content-type"] == "application/json")
        }
        let exposition = "# TYPE assay_traces_stored_total counter\nassay_traces_stored_total 42\n"
        try await withDashboardAPI(seed: false, metricsText: { exposition }) { api in
            let response = try await api.get("metrics")
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "text/plain; version=0.0.4")
            #expect(String(decoding: response.body, as: UTF8.self) == exposition)
        }
    }

    @Test func readRoutesNeedTheTokenOffLoopbackButThePageDoesNot() async throws {
        let readRoutes = ["api/windows", "api/windows/\(Seed.w0)", "api/traces/tr-a1", "api/status", "metrics"]
        try await withDashboardAPI(host: "0.0.0.0", metricsText: { "up 1\n" }) { api in
            for path in readRoutes {
                let anonymous = try await api.get(path)
                #expect(anonymous.status == 401, "\(path)")
                #expect(anonymous.headers["www-authenticate"]?.hasPrefix("Bearer") == true, "\(path)")
                #expect(try await api.get(path, token: "wrong").status == 401, "\(path)")
                #expect(try await api.get(path, token: testToken).status == 200, "\(path)")
            }
            // The page and its assets carry no data: public, so the page can ask for the token.
            for path in ["", "dashboard.js", "dashboard.css"] {
                #expect(try await api.get(path).status == 200, "/\(path)")
            }
        }
        try await withDashboardAPI(host: "0.0.0.0", token: nil) { api in
            for path in readRoutes.dropLast() {
                let status = try await api.get(path, token: "anything").status
                #expect(status == 403, "\(path)")
            }
        }
        // On loopback, reads are public.
        try await withDashboardAPI { api in
            for path in readRoutes.dropLast() {
                let status = try await api.get(path).status
                #expect(status == 200, "\(path)")
            }
        }
    }

    @Test func otherMethodsOnDashboardRoutesAre405() async throws {
        try await withDashboardAPI(seed: false) { api in
            for (method, path) in [("POST", "api/windows"), ("DELETE", "api/status"), ("POST", "api/windows/123"), ("PUT", "api/traces/tr-1"), ("POST", "")] {
                let response = try await api.client(token: testToken).send(method, path)
                #expect(response.status == 405, "\(method) /\(path)")
                #expect(response.headers["allow"] == "GET", "\(method) /\(path)")
            }
            // Deeper paths are no route at all, whatever the method.
            #expect(try await api.get("api/windows/1/2").status == 404)
            #expect(try await api.get("api/traces/").status == 404)
        }
    }
}
