import AssayCore

/// The terminal output of `assay windows` and `assay trace` (their `--json` output is
/// ``DashboardJSON``'s).
///
/// Text from the database is made safe for a terminal first: control characters (escape
/// sequences included) are shown as `\u{1b}`-style escapes, and line breaks inside one-line
/// fields become spaces.
public enum ReportFormatting {
    // MARK: - Windows

    /// The per-window, per-scorer table, oldest window first.
    ///
    /// ```
    /// window 2026-02-03T13:00:00Z – 2026-02-03T13:00:10Z  config v1, scored, 512 traces, 3 late
    ///   scorer    eligible  sampled out  filtered  budget  N/A  errors  scored  passed  pass rate (Wilson 95%)  late  judge p50, tokens
    ///   no_error       512            0         0       0    0       0     512     480   93.8% (91.3–95.5)        3  –
    /// ```
    public static func windows(_ windows: [DashboardWindow]) -> String {
        guard !windows.isEmpty else { return "no window has closed yet" }
        var lines: [String] = []
        for window in windows.sorted(by: { $0.startNanos < $1.startNanos }) {
            if !lines.isEmpty { lines.append("") }
            lines.append(windowHeader(window))
            guard !window.scorers.isEmpty else {
                lines.append("  (no summaries yet)")
                continue
            }
            var rows: [[String]] = [["scorer", "eligible", "sampled out", "filtered", "budget", "N/A", "errors", "scored", "passed",
                                     "pass rate (Wilson 95%)", "late", "judge p50, tokens"]]
            for summary in window.scorers {
                rows.append([
                    line(summary.scorerName), String(summary.eligible), String(summary.sampledOut), String(summary.filteredOut),
                    String(summary.budgetSkipped), String(summary.notApplicable), String(summary.errored), String(summary.scored),
                    String(summary.passed), passRate(summary), String(summary.lateScored), judge(summary),
                ])
            }
            let rightAligned = Set(1...10)
            lines.append(contentsOf: table(rows, indent: "  ", rightAligned: rightAligned))
        }
        return lines.joined(separator: "\n")
    }

    /// `window START – END  config vN, STATE, T traces, L late`.
    static func windowHeader(_ window: DashboardWindow) -> String {
        "window \(time(window.startNanos)) – \(time(window.endNanos))  config v\(window.configVersion), \(line(window.state)), "
            + "\(window.traces) trace\(window.traces == 1 ? "" : "s"), \(window.lateTraces) late"
    }

    /// `93.8% (91.3–95.5)`, or `–` when nothing was scored.
    public static func passRate(_ summary: WindowScorerSummary) -> String {
        guard let rate = summary.passRate, let interval = summary.wilson95 else { return "–" }
        return "\(percent(rate))% (\(percent(interval.lower))–\(percent(interval.upper)))"
    }

    static func judge(_ summary: WindowScorerSummary) -> String {
        var parts: [String] = []
        if let p50 = summary.judgeLatencyP50Millis { parts.append("\(decimal(p50, digits: 1)) ms") }
        if let tokens = summary.tokens { parts.append("\(tokens.totalTokens) tokens") }
        return parts.isEmpty ? "–" : parts.joined(separator: ", ")
    }

    // MARK: - Trace

    /// One trace: its facts, its assessments with rationales, and its span tree with inputs and
    /// outputs cut to one line each.
    public static func trace(_ trace: TraceDetail, valueWidth: Int = 160) -> String {
        var lines: [String] = []
        lines.append("trace \(line(trace.traceID)) (\(line(trace.state)), \(line(trace.format)))")
        var facts: [[String]] = []
        facts.append(["request time", time(trace.requestTimeNanos) + (trace.durationMillis.map { ", took \($0) ms" } ?? "")])
        var source = "\(line(trace.sourceTopic))/\(trace.sourcePartition)@\(trace.sourceOffset)"
        if trace.deliveries > 1 { source += " (\(trace.deliveries) deliveries)" }
        facts.append(["source", source])
        facts.append(["stored", TimeFormatting.rfc3339(millis: trace.ingestedAtMillis) + (trace.late ? " (late: after its window closed)" : "")])
        facts.append(["scored", trace.scoredAtMillis.map { TimeFormatting.rfc3339(millis: $0) } ?? "not yet"])
        if let client = trace.clientRequestID { facts.append(["client request", line(client)]) }
        if !trace.tags.isEmpty {
            facts.append(["tags", trace.tags.map { "\(line($0.key))=\(line($0.value))" }.joined(separator: ", ")])
        }
        if let request = trace.requestPreview { facts.append(["request", cut(request, valueWidth)]) }
        if let response = trace.responsePreview { facts.append(["response", cut(response, valueWidth)]) }
        lines.append(contentsOf: table(facts.map { [$0[0] + ":", $0[1]] }, indent: "  ", rightAligned: []))

        lines.append("")
        lines.append("assessments (\(trace.assessments.count)):")
        if trace.assessments.isEmpty { lines.append("  (none: no scorer sampled this trace)") }
        for assessment in trace.assessments {
            var head = "  \(line(assessment.scorerName))  \(assessment.outcome)"
            if let value = assessment.value, assessment.outcome != "pass", assessment.outcome != "fail", !value.isNull {
                head += "  " + line(value.stringValue ?? value.serialized())
            }
            var context = ["window \(time(assessment.windowStartNanos))", "config v\(assessment.configVersion)", line(assessment.sourceType)]
            if let span = assessment.spanID { context.append("span \(line(span))") }
            if let latency = assessment.judgeLatencyMillis { context.append("\(decimal(latency, digits: 1)) ms") }
            if assessment.late { context.append("late") }
            lines.append(head + "  (" + context.joined(separator: ", ") + ")")
            if let rationale = assessment.rationale { lines.append("      " + cut(rationale, valueWidth * 2)) }
            if let message = assessment.errorMessage {
                lines.append("      error \(line(assessment.errorCode ?? "")): " + cut(message, valueWidth * 2))
            }
        }

        lines.append("")
        let shown = trace.spans.count < trace.storedSpans ? "\(trace.spans.count) of \(trace.storedSpans)" : "\(trace.spans.count)"
        lines.append("spans (\(shown)):")
        for span in trace.spans {
            let indent = "  " + String(repeating: "  ", count: min(span.depth, 20))
            var head = indent + line(span.name)
            if let type = span.spanType { head += " [\(line(type))]" }
            head += "  " + (span.endNanos.map { "\(decimal(Double($0 &- span.startNanos) / 1_000_000, digits: 1)) ms" } ?? "unfinished")
            head += "  \(line(span.statusCode))"
            if let message = span.statusMessage { head += ": " + cut(message, 120) }
            lines.append(head)
            if let inputs = span.inputs { lines.append(indent + "    in:  " + cut(inputs, valueWidth)) }
            if let outputs = span.outputs { lines.append(indent + "    out: " + cut(outputs, valueWidth)) }
            if !span.events.isEmpty { lines.append(indent + "    events: " + span.events.map(line).joined(separator: ", ")) }
        }
        if trace.spans.isEmpty { lines.append("  (no spans stored)") }
        return lines.joined(separator: "\n")
    }

    // MARK: - Helpers

    /// `text` on one line, safe for a terminal: line breaks and tabs become spaces, other
    /// control characters (C0, DEL, C1, bidirectional overrides) are written as `\u{…}`.
    public static func line(_ text: String) -> String {
        var output = ""
        output.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A, 0x0D, 0x09:
                output.unicodeScalars.append(" ")
            case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069:
                output += "\\u{\(String(scalar.value, radix: 16))}"
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        return output
    }

    /// One line of at most `width` characters; `…` marks text that was cut, here or before.
    static func cut(_ text: TruncatedText, _ width: Int) -> String {
        let flat = line(text.text)
        if flat.count > width { return String(flat.prefix(max(0, width - 1))) + "…" }
        return text.truncated ? flat + "…" : flat
    }

    static func time(_ nanos: Int64) -> String {
        TimeFormatting.rfc3339(nanos: nanos, fraction: .shortestExact)
    }

    /// `value` × 100 with one decimal.
    static func percent(_ value: Double) -> String {
        decimal(value * 100, digits: 1)
    }

    /// Fixed-point text without Foundation: `decimal(93.75, digits: 1)` is `93.8`.
    static func decimal(_ value: Double, digits: Int) -> String {
        guard value.isFinite else { return "–" }
        var scale = 1.0
        for _ in 0..<max(0, digits) { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e15 else { return value.description }
        let integer = Int64(scaled)
        let divisor = Int64(scale)
        var text = String(integer / divisor)
        if digits > 0 {
            let fraction = String(integer % divisor)
            text += "." + String(repeating: "0", count: max(0, digits - fraction.count)) + fraction
        }
        return (value < 0 && integer != 0 ? "-" : "") + text
    }

    /// Columns separated by two spaces; columns in `rightAligned` are padded on the left; the
    /// last column is not padded.
    static func table(_ rows: [[String]], indent: String, rightAligned: Set<Int>) -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return rows.map { row in
            var line = indent
            for (index, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                let isLast = index == row.count - 1
                if rightAligned.contains(index) {
                    line += padding + cell
                } else {
                    line += isLast ? cell : cell + padding
                }
                if !isLast { line += "  " }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }
    }
}
