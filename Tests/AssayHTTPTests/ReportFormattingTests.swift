import AssayCore
import AssayStore
import Testing
@testable import AssayHTTP

/// The text of `assay windows` and `assay trace`, and the pure helpers behind the dashboard.
@Suite struct ReportFormattingTests {
    static let window = DashboardWindow(
        startNanos: Seed.w0, endNanos: Seed.w0 + Seed.width, configVersion: 3, state: "scored", closedAtMillis: 0, scoredAtMillis: 1,
        traces: 512, lateTraces: 3,
        scorers: [
            WindowScorerSummary(windowStartNanos: Seed.w0, windowEndNanos: Seed.w0 + Seed.width, scorerName: "no_error", configVersion: 3,
                                eligible: 512, filteredOut: 0, sampledOut: 0, notApplicable: 0, errored: 0, scored: 512, passed: 480, lateScored: 3),
            WindowScorerSummary(windowStartNanos: Seed.w0, windowEndNanos: Seed.w0 + Seed.width, scorerName: "safety", configVersion: 3,
                                eligible: 512, filteredOut: 10, sampledOut: 400, budgetSkipped: 2, notApplicable: 5, errored: 1, scored: 94,
                                passed: 90, lateScored: 0, judgeLatencyP50Millis: 812.25, tokens: TokenUsage(inputTokens: 9000, outputTokens: 400)),
            WindowScorerSummary(windowStartNanos: Seed.w0, windowEndNanos: Seed.w0 + Seed.width, scorerName: "retrieval", configVersion: 3,
                                eligible: 512, filteredOut: 0, sampledOut: 512, notApplicable: 0, errored: 0, scored: 0, passed: 0, lateScored: 0),
        ])

    @Test func windowsTable() {
        let older = DashboardWindow(startNanos: Seed.w0 - Seed.width, endNanos: Seed.w0, configVersion: 2, state: "closed", closedAtMillis: 0,
                                    scoredAtMillis: nil, traces: 1, lateTraces: 0, scorers: [])
        // Given newest first (as the API lists them), printed oldest first.
        let text = ReportFormatting.windows([Self.window, older])
        let expected = """
            window 2026-02-02T02:39:00Z – 2026-02-02T02:40:00Z  config v2, closed, 1 trace, 0 late
              (no summaries yet)

            window 2026-02-02T02:40:00Z – 2026-02-02T02:41:00Z  config v3, scored, 512 traces, 3 late
              scorer     eligible  sampled out  filtered  budget  N/A  errors  scored  passed  pass rate (Wilson 95%)  late  judge p50, tokens
              no_error        512            0         0       0    0       0     512     480       93.8% (91.3–95.5)     3  –
              safety          512          400        10       2    5       1      94      90       95.7% (89.6–98.3)     0  812.3 ms, 9400 tokens
              retrieval       512          512         0       0    0       0       0       0                       –     0  –
            """
        #expect(text == expected)
        #expect(ReportFormatting.windows([]) == "no window has closed yet")
    }

    @Test func passRatesAndDecimals() {
        #expect(ReportFormatting.passRate(Self.window.scorers[0]) == "93.8% (91.3–95.5)")
        #expect(ReportFormatting.passRate(Self.window.scorers[2]) == "–")
        #expect(ReportFormatting.decimal(93.75, digits: 1) == "93.8")
        #expect(ReportFormatting.decimal(0.04, digits: 1) == "0.0")
        #expect(ReportFormatting.decimal(100, digits: 1) == "100.0")
        #expect(ReportFormatting.decimal(-1.25, digits: 1) == "-1.3")
        #expect(ReportFormatting.decimal(7, digits: 0) == "7")
        #expect(ReportFormatting.decimal(.nan, digits: 1) == "–")
    }

    @Test func terminalTextIsDefanged() {
        #expect(ReportFormatting.line("a\nb\tc\rd") == "a b c d")
        #expect(ReportFormatting.line("\u{1b}[31mred\u{1b}[0m") == "\\u{1b}[31mred\\u{1b}[0m")
        #expect(ReportFormatting.line("abc\u{202E}cba\u{7f}\u{9b}") == "abc\\u{202e}cba\\u{7f}\\u{9b}")
        #expect(ReportFormatting.line("é ✓ 日本") == "é ✓ 日本")
    }

    @Test func traceReport() async throws {
        try await withDashboardAPI { api in
            let trace = try await DashboardReports.trace(databaseURL: api.database.url, schema: .default, id: "tr-b1", maxSpans: 500, logger: quietLogger)
            let text = ReportFormatting.trace(trace, valueWidth: 60)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            #expect(lines[0] == "trace tr-b1 (OK, mlflow3)")
            #expect(lines.contains("  request time:  2026-02-02T02:41:01Z, took 100 ms"))
            #expect(lines.contains("  source:        traces/1@20"))
            #expect(lines.contains("  tags:          env=prod, team=<b>hr</b>"))
            #expect(lines.contains("  request:       " + String(repeating: "q", count: 59) + "…"))
            #expect(lines.contains("assessments (2):"))
            #expect(lines.contains("  fast_enough  pass  (window 2026-02-02T02:41:00Z, config v1, CODE, span 0000000000000003)"))
            #expect(lines.contains("  no_pii  fail  (window 2026-02-02T02:41:00Z, config v1, LLM_JUDGE, 12.5 ms)"))
            // The rationale's escape sequences are shown, not sent to the terminal.
            #expect(lines.contains("      <img src=x onerror=alert(1)> \\u{1b}[31mred\\u{1b}[0m"))
            #expect(!text.unicodeScalars.contains("\u{1b}"))
            #expect(lines.contains("spans (5):"))
            #expect(lines.contains("  agent [AGENT]  99.0 ms  OK"))
            #expect(lines.contains("    \(Seed.hostileName) [TOOL]  8.0 ms  ERROR: tool failed"))
            #expect(lines.contains("        in:  {\"query\": \"" + String(repeating: "é", count: 48) + "…"))
            #expect(lines.contains("        events: exception"))
            #expect(lines.contains("      retrieve [RETRIEVER]  1.0 ms  OK"))
            #expect(lines.contains("    llm [CHAT_MODEL]  85.0 ms  OK"))
            #expect(lines.contains("  lost  unfinished  UNSET"))

            let capped = try await DashboardReports.trace(databaseURL: api.database.url, schema: .default, id: "tr-b1", maxSpans: 1, logger: quietLogger)
            #expect(ReportFormatting.trace(capped).contains("spans (1 of 5):"))
            let quiet = try await DashboardReports.trace(databaseURL: api.database.url, schema: .default, id: "tr-c1", maxSpans: 10, logger: quietLogger)
            #expect(ReportFormatting.trace(quiet).contains("  (none: no scorer sampled this trace)"))
            #expect(ReportFormatting.trace(quiet).contains("  scored:        not yet"))
        }
    }

    @Test func reportsAgainstTheDatabase() async throws {
        try await withDashboardAPI { api in
            let windows = try await DashboardReports.windows(databaseURL: api.database.url, schema: .default, last: 2, logger: quietLogger)
            #expect(windows.map(\.startNanos) == [Seed.w2, Seed.w1])
            // --json prints exactly the API's body.
            #expect(DashboardJSON.windows(windows, limit: 2) == (try await api.json("api/windows", query: "limit=2")))
            let text = ReportFormatting.windows(windows)
            #expect(text.hasPrefix("window 2026-02-02T02:41:00Z – 2026-02-02T02:42:00Z  config v1, scored, 3 traces, 0 late"))
            #expect(text.contains("  no_pii              2            0         0       0    1       0       1       0         0.0% (0.0–79.3)     0  12.5 ms, 120 tokens"))

            let trace = try await DashboardReports.trace(databaseURL: api.database.url, schema: .default, id: "tr-a2", maxSpans: 10, logger: quietLogger)
            #expect(DashboardJSON.trace(trace) == (try await api.json("api/traces/tr-a2")))

            await #expect(throws: ReportError.notFound("no stored trace has the id tr-\\u{1b}x in schema assay")) {
                _ = try await DashboardReports.trace(databaseURL: api.database.url, schema: .default, id: "tr-\u{1b}x", maxSpans: 10, logger: quietLogger)
            }
            let elsewhere = try SchemaName("not_migrated")
            await #expect(throws: ReportError.self) {
                _ = try await DashboardReports.windows(databaseURL: api.database.url, schema: elsewhere, last: 10, logger: quietLogger)
            }
        }
    }

    @Test func truncationKeepsWholeCharacters() {
        let text = "ééé"  // 6 bytes
        #expect(TruncatedText(text, maxBytes: 3) == TruncatedText(text: "é", totalBytes: 6, truncated: true))
        #expect(TruncatedText(text, maxBytes: 4) == TruncatedText(text: "éé", totalBytes: 6, truncated: true))
        #expect(TruncatedText(text, maxBytes: 6) == TruncatedText(text: "ééé", totalBytes: 6, truncated: false))
        #expect(TruncatedText(text, maxBytes: 0) == TruncatedText(text: "", totalBytes: 6, truncated: true))
        #expect(TruncatedText("😀a", maxBytes: 3).text == "")
        // The database may have cut the text already: the whole length says so.
        #expect(TruncatedText("abc", maxBytes: 10, totalBytes: 5000) == TruncatedText(text: "abc", totalBytes: 5000, truncated: true))
    }

    static func span(_ id: String, parent: String?, start: Int64 = 0) -> SpanNode {
        SpanNode(spanID: id, parentSpanID: parent, depth: -1, name: id, spanType: nil, startNanos: start, endNanos: nil, statusCode: "OK",
                 statusMessage: nil, inputs: nil, outputs: nil, attributes: nil, events: [])
    }

    @Test func spanTreesSurviveCyclesOrphansAndDepth() {
        let spans = [Self.span("a", parent: "b"), Self.span("b", parent: "a"), Self.span("root", parent: nil), Self.span("self", parent: "self"),
                     Self.span("child", parent: "root"), Self.span("orphan", parent: "gone")]
        let tree = DashboardStore.tree(spans)
        #expect(tree.map(\.spanID) == ["root", "child", "self", "orphan", "a", "b"])
        #expect(tree.map(\.depth) == [0, 1, 0, 0, 0, 1])
        // A chain deeper than any stack would allow recursion for.
        let chain = (0..<50_000).map { Self.span("s\($0)", parent: $0 == 0 ? nil : "s\($0 - 1)", start: Int64($0)) }
        let deep = DashboardStore.tree(chain)
        #expect(deep.count == 50_000)
        #expect(deep.last?.depth == 49_999)
        #expect(DashboardStore.tree([]).isEmpty)
    }

    @Test func partitionLabelsSortNaturally() {
        #expect(DashboardJSON.sortedPartitionLabels(["traces/10", "traces/9", "other/1", "traces/0", "x"]) == ["other/1", "traces/0", "traces/9", "traces/10", "x"])
        #expect(DashboardJSON.sortedPartitionLabels(["3", "12", "1"]) == ["1", "3", "12"])
    }

    @Test func windowStartsParse() {
        #expect(DashboardQuery.windowStart("1770000000000000000") == 1_770_000_000_000_000_000)
        #expect(DashboardQuery.windowStart("-5") == -5)
        #expect(DashboardQuery.windowStart("2026-02-02T02:40:00Z") == 1_770_000_000_000_000_000)
        #expect(DashboardQuery.windowStart("2026-02-02T02%3A40%3A00Z") == 1_770_000_000_000_000_000)
        #expect(DashboardQuery.windowStart("2026-02-02T03:40:00+01:00") == 1_770_000_000_000_000_000)
        for bad in [nil, "", "-", "99999999999999999999", "now", "%ZZ"] as [String?] {
            #expect(DashboardQuery.windowStart(bad) == nil, "\(bad ?? "nil")")
        }
    }
}
