import AssayCore

/// The human-readable output of `assay monitor` (its `--json` output is ``MonitorJSON``'s).
public enum MonitorFormatting {
    /// A version: header lines, then one line per scorer with its kind, rate, filter, cap and params.
    ///
    /// ```
    /// monitor prod-chatbot, version 3 (written 2026-02-03T13:00:53.476Z by api)
    /// effective from: 2026-02-03T13:15:00Z
    /// status:         running
    /// destination:    schema assay
    /// window:         15m (allowed lateness 2m)
    /// sample rate:    1.0
    /// judge:          offline (max 4 concurrent calls, 5000 calls per window)
    /// scorers (2):
    ///   no_pii       pii      rate 0.4  filter: tags.env = 'prod'
    ///   fast_enough  latency  rate 1.0  params: {"max_ms":5000}
    /// ```
    public static func human(_ info: MonitorVersionInfo) -> String {
        let config = info.config
        let document = config.json()
        var lines: [String] = []
        lines.append("monitor \(config.name), version \(info.version) (written \(TimeFormatting.rfc3339(millis: info.createdAtMillis))\(info.note.map { " by \($0)" } ?? ""))")
        lines.append("effective from: \(effectiveFrom(info.effectiveFromNanos))")
        lines.append("status:         \(config.paused ? "PAUSED (traces are stored; nothing is scored)" : "running")")
        lines.append("destination:    schema \(config.destinationSchema)")
        let window = document["window"]?.stringValue ?? "?"
        let lateness = document["allowed_lateness"]?.stringValue ?? "?"
        lines.append("window:         \(window) (allowed lateness \(lateness))")
        lines.append("sample rate:    \(rate(config.sampleRate))")
        lines.append("judge:          \(judge(config.judge))")
        lines.append("scorers (\(config.scorers.count)):")
        var rows: [[String]] = []
        for scorer in config.scorers {
            var details: [String] = []
            details.append(scorer.sampleRate.map { "rate \(rate($0))" } ?? "rate \(rate(config.sampleRate)) (monitor)")
            if let filter = scorer.filter { details.append("filter: \(filter.text)") }
            if let cap = scorer.maxPerWindow { details.append("at most \(cap) per window") }
            if !scorer.params.isEmpty { details.append("params: \(JSONValue.object(scorer.params).serialized())") }
            if !scorer.guidelines.isEmpty { details.append("\(scorer.guidelines.count) guideline\(scorer.guidelines.count == 1 ? "" : "s")") }
            rows.append([scorer.name, scorer.kind.rawValue, details.joined(separator: "  ")])
        }
        lines.append(contentsOf: table(rows, indent: "  "))
        if config.scorers.isEmpty { lines.append("  (none)") }
        return lines.joined(separator: "\n")
    }

    /// The history as a table, newest first.
    public static func human(_ summaries: [MonitorVersionSummary]) -> String {
        guard !summaries.isEmpty else { return "no monitor is configured" }
        var rows = [["VERSION", "CREATED", "EFFECTIVE FROM", "NOTE", "PAUSED", "SCORERS"]]
        for summary in summaries {
            rows.append([
                String(summary.version), TimeFormatting.rfc3339(millis: summary.createdAtMillis), effectiveFrom(summary.effectiveFromNanos),
                summary.note ?? "-", summary.paused ? "yes" : "no", summary.scorers.isEmpty ? "-" : summary.scorers.joined(separator: ", "),
            ])
        }
        return table(rows, indent: "").joined(separator: "\n")
    }

    /// One line about a write: what was stored, or why nothing was.
    public static func human(_ write: MonitorWrite, action: String) -> String {
        let version = write.version
        guard write.created else {
            return "nothing to \(action): version \(version.version) is already \(version.config.paused ? "paused" : "running")"
        }
        return "stored version \(version.version) (effective from \(effectiveFrom(version.effectiveFromNanos)))"
    }

    static func effectiveFrom(_ nanos: Int64?) -> String {
        nanos.map { TimeFormatting.rfc3339(nanos: $0, fraction: .shortestExact) } ?? "the start of history"
    }

    static func rate(_ value: Double) -> String {
        value.description
    }

    static func judge(_ judge: JudgeConfig?) -> String {
        guard let judge else { return "none" }
        var text = judge.kind.rawValue
        if judge.kind == .openai {
            text += " \(judge.model ?? "?") at \(judge.baseURL ?? "?"), key from $\(judge.apiKeyEnv ?? "?")"
        }
        var limits = ["max \(judge.maxConcurrency) concurrent calls", "\(judge.maxCallsPerWindow) calls per window"]
        if let tokens = judge.maxTokensPerWindow { limits.append("\(tokens) tokens per window") }
        return text + " (" + limits.joined(separator: ", ") + ")"
    }

    /// Left-aligned columns separated by two spaces; the last column is not padded.
    static func table(_ rows: [[String]], indent: String) -> [String] {
        ReportFormatting.table(rows, indent: indent, rightAligned: [])
    }
}
