import AssayCore
import AssayMetrics
import AssayStore
import Foundation
import Logging
import Postgres

/// Pass-rate regression alerts: when a window is first summarised, each scorer's pass rate is
/// tested against its trailing baseline (``RegressionRule``), and a regression becomes an
/// `alert/v1` event (`schemas/alert.schema.json`) in the outbox, published to the assessments
/// topic like the window summaries.
///
/// - Which summaries: revision 1 only (a window's first summary for the scorer), so late
///   passes, which republish with higher revisions, never test a window again.
/// - The baseline: the scorer's previous K windows (by window start) that are fully scored
///   (`windows.state = 'scored'`) and scored something, read from `window_summaries` with
///   their current counts (late traces included), whatever config version they ran under.
/// - Exactly once: the `alerts` table (migration 0007) has one row per (window, scorer,
///   kind), and the alert id is a UUIDv5 of the window and the scorer; the row and the outbox
///   message are inserted in one transaction, only when the row is new.
public struct RegressionAlerts: Sendable {
    public let rule: RegressionRule

    public init(rule: RegressionRule) {
        self.rule = rule
    }

    /// Tests each first summary of `summaries` and records the regressions not recorded
    /// before; returns those newly recorded.
    public func check(_ summaries: [WindowScorerSummary], nowMillis: Int64, on connection: PostgresConnection) throws -> [RegressionAlert] {
        var raised: [RegressionAlert] = []
        for summary in summaries where summary.revision == 1 {
            let baseline = try Self.baseline(scorer: summary.scorerName, before: summary.windowStartNanos, limit: rule.baselineWindows, on: connection)
            let evaluation = rule.evaluate(window: PassCounts(scored: summary.scored, passed: summary.passed), baseline: baseline)
            guard evaluation.isRegression else { continue }
            let alert = RegressionAlert(
                windowStartNanos: summary.windowStartNanos, windowEndNanos: summary.windowEndNanos, scorerName: summary.scorerName,
                configVersion: summary.configVersion, evaluation: evaluation, rule: rule, createdAtMillis: nowMillis)
            if try Self.record(alert, on: connection) { raised.append(alert) }
        }
        return raised
    }

    /// The scorer's counts in its previous `limit` fully scored windows, most recent first.
    static func baseline(scorer: String, before windowStartNanos: Int64, limit: Int, on connection: PostgresConnection) throws -> [PassCounts] {
        try connection.query(
            """
            SELECT s.scored, s.passed FROM window_summaries s JOIN windows w ON w.window_start_ns = s.window_start_ns
            WHERE s.scorer_name = $1 AND s.window_start_ns < $2 AND w.state = 'scored' AND s.scored > 0
            ORDER BY s.window_start_ns DESC LIMIT $3
            """,
            [.text(scorer), .text(String(windowStartNanos)), .text(String(limit))]
        ).map { PassCounts(scored: try $0.int(0), passed: try $0.int(1)) }
    }

    /// Inserts the alert and its outbox message unless the (window, scorer) already has one;
    /// returns whether it was new.
    static func record(_ alert: RegressionAlert, on connection: PostgresConnection) throws -> Bool {
        let document = alert.json().serialized()
        return try connection.transaction { connection in
            let inserted = try connection.query(
                """
                INSERT INTO alerts (alert_id, window_start_ns, scorer_name, kind, document)
                VALUES ($1::uuid, $2, $3, $4, $5)
                ON CONFLICT DO NOTHING RETURNING alert_id
                """,
                [.text(alert.alertID), .text(String(alert.windowStartNanos)), .text(alert.scorerName), .text(RegressionAlert.kind), .text(document)])
            guard !inserted.isEmpty else { return false }
            _ = try connection.execute(
                "INSERT INTO outbox (message_key, schema_name, payload) VALUES ($1, $2, $3)",
                [.text(alert.messageKey), .text(RegressionAlert.schemaName), .text(document)])
            return true
        }
    }
}

extension RegressionAlerts {
    /// After a window pass: counts the first summaries in the pass-rate metrics and raises
    /// regression alerts under `rule` (none when nil); returns how many were raised. A failure
    /// is logged, not thrown: the window is already scored, and its alert is lost rather than
    /// the pass repeated.
    static func afterWindowPass(_ summaries: [WindowScorerSummary], window: ClaimedWindow, rule: RegressionRule?,
                                metrics: AssayMetrics, pool: PostgresPool, logger: Logger) async -> Int {
        let first = summaries.filter { $0.revision == 1 }
        for summary in first {
            metrics.windowSummary(scorer: summary.scorerName, scored: summary.scored, passed: summary.passed)
            metrics.regressionAlerts(scorer: summary.scorerName, count: 0)  // the series exists at zero
        }
        guard let rule, !first.isEmpty else { return 0 }
        let alerts = RegressionAlerts(rule: rule)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        do {
            let raised = try await pool.withConnection { try alerts.check(first, nowMillis: now, on: $0) }
            for alert in raised {
                metrics.regressionAlerts(scorer: alert.scorerName)
                logger.warning("pass-rate regression: alert published", metadata: [
                    "alert.id": "\(alert.alertID)", "scorer": "\(alert.scorerName)",
                    "window.start": "\(TimeFormatting.rfc3339(nanos: alert.windowStartNanos, fraction: .shortestExact))",
                    "pass_rate": "\(alert.evaluation.window.passRate ?? 0)", "baseline": "\(alert.evaluation.baseline.passRate ?? 0)",
                    "z": "\(alert.evaluation.z ?? 0)",
                ])
            }
            return raised.count
        } catch {
            logger.warning("regression check failed; this window raises no alert", metadata: [
                "window.start": "\(TimeFormatting.rfc3339(nanos: window.startNanos, fraction: .shortestExact))", "error": "\(error)",
            ])
            return 0
        }
    }
}
