// The regression rule against hand-computed z statistics, and the alert/v1 document.

import AssayCore
import AssayMetrics
import AssayTestSupport
import Foundation
import Testing

private func counts(_ passed: Int, of scored: Int) -> PassCounts { PassCounts(scored: scored, passed: passed) }

@Suite("Regression rule (one-sided pooled two-proportion z-test)")
struct RegressionRuleTests {
    let rule = RegressionRule()  // K = 6, 30 scored each side, z_crit = 2.33

    @Test("defaults: K = 6, at least 30 scored each side, z ≤ −2.33")
    func defaults() {
        #expect(rule.baselineWindows == 6)
        #expect(rule.minimumScored == 30)
        #expect(rule.zCritical == 2.33)
    }

    @Test("six windows at 95/100 then 60/100: z = −10.8012, a regression")
    func clearDrop() throws {
        // p0 = 570/600 = 0.95, p1 = 0.60, pooled p = 630/700 = 0.9,
        // SE = √(0.9 · 0.1 · (1/100 + 1/600)) = √0.00105 = 0.0324037, z = −0.35 / 0.0324037 = −10.8012.
        let evaluation = rule.evaluate(window: counts(60, of: 100), baseline: Array(repeating: counts(95, of: 100), count: 6))
        #expect(evaluation.decision == .regression)
        #expect(evaluation.baseline == counts(570, of: 600))
        #expect(evaluation.baselineWindows == 6)
        let z = try #require(evaluation.z)
        #expect(abs(z - -10.8012) < 1e-4)
    }

    @Test("baseline 180/200 against 82/100: z = −1.9639, no regression at 2.33, a regression at 1.9")
    func borderlineBelow() throws {
        // p0 = 0.90, p1 = 0.82, p = 262/300 = 0.873333, SE = √(0.873333 · 0.126667 · 0.015) = 0.0407349,
        // z = −0.08 / 0.0407349 = −1.96392.
        let evaluation = rule.evaluate(window: counts(82, of: 100), baseline: [counts(90, of: 100), counts(90, of: 100)])
        #expect(evaluation.decision == .noRegression)
        #expect(abs(try #require(evaluation.z) - -1.96392) < 1e-4)
        let looser = RegressionRule(zCritical: 1.9)
        #expect(looser.evaluate(window: counts(82, of: 100), baseline: [counts(180, of: 200)]).decision == .regression)
    }

    @Test("baseline 180/200 against 78/100: z = −2.8237, a regression")
    func borderlineAbove() throws {
        // p = 258/300 = 0.86, SE = √(0.86 · 0.14 · 0.015) = 0.0424971, z = −0.12 / 0.0424971 = −2.82372.
        let evaluation = rule.evaluate(window: counts(78, of: 100), baseline: [counts(180, of: 200)])
        #expect(evaluation.decision == .regression)
        #expect(abs(try #require(evaluation.z) - -2.82372) < 1e-4)
        #expect(abs(try #require(RegressionRule.zStatistic(window: counts(78, of: 100), baseline: counts(180, of: 200))) - -2.82372) < 1e-4)
    }

    @Test("exactly 30 scored on each side decides (z = −2.5820); 29 on either side does not")
    func minimumCounts() throws {
        // p0 = 28/30, p1 = 20/30, p = 48/60 = 0.8, SE = √(0.8 · 0.2 · 2/30) = 0.103280, z = −0.266667 / 0.103280 = −2.58199.
        let evaluation = rule.evaluate(window: counts(20, of: 30), baseline: [counts(28, of: 30)])
        #expect(evaluation.decision == .regression)
        #expect(abs(try #require(evaluation.z) - -2.58199) < 1e-4)
        #expect(rule.evaluate(window: counts(19, of: 29), baseline: [counts(28, of: 30)]).decision == .insufficientData)
        #expect(rule.evaluate(window: counts(20, of: 30), baseline: [counts(27, of: 29)]).decision == .insufficientData)
        #expect(rule.evaluate(window: counts(20, of: 30), baseline: [counts(10, of: 15), counts(14, of: 15)]).decision != .insufficientData,
                "the baseline minimum is on the pooled count")
        #expect(rule.evaluate(window: counts(0, of: 100), baseline: []).decision == .insufficientData)
    }

    @Test("only the K most recent baseline windows are pooled")
    func onlyKWindows() {
        // Six good windows first (most recent first), then two terrible older ones that K = 6 leaves out.
        let baseline = Array(repeating: counts(95, of: 100), count: 6) + [counts(0, of: 100), counts(0, of: 100)]
        let evaluation = rule.evaluate(window: counts(60, of: 100), baseline: baseline)
        #expect(evaluation.baseline == counts(570, of: 600))
        #expect(evaluation.baselineWindows == 6)
        #expect(evaluation.isRegression)
        let two = RegressionRule(baselineWindows: 2).evaluate(window: counts(60, of: 100), baseline: baseline)
        #expect(two.baseline == counts(190, of: 200))
    }

    @Test("no regression when the rate rises, stays, or SE is zero; impossible counts decide nothing")
    func nonRegressions() {
        #expect(rule.evaluate(window: counts(99, of: 100), baseline: [counts(90, of: 100)]).decision == .noRegression)
        #expect(rule.evaluate(window: counts(90, of: 100), baseline: [counts(90, of: 100)]).decision == .noRegression)
        let allPass = rule.evaluate(window: counts(50, of: 50), baseline: [counts(50, of: 50)])
        #expect(allPass.decision == .noRegression)
        #expect(allPass.z == nil)
        #expect(rule.evaluate(window: counts(0, of: 50), baseline: [counts(0, of: 50)]).z == nil)
        #expect(rule.evaluate(window: counts(60, of: 50), baseline: [counts(50, of: 50)]).decision == .insufficientData)
        #expect(rule.evaluate(window: counts(20, of: 50), baseline: [counts(-1, of: 50)]).decision == .insufficientData)
    }
}

/// schemas/alert.schema.json from the repository (found from this file's path).
func alertSchema() throws -> JSONSchemaChecker {
    let url = repositoryRoot().appendingPathComponent("schemas/alert.schema.json")
    return try JSONSchemaChecker(schemaBytes: Array(try Data(contentsOf: url)))
}

func repositoryRoot() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

@Suite("alert/v1 documents")
struct AlertDocumentTests {
    static func alert(scorer: String = "no_error", start: Int64 = 1_770_000_000_000_000_000) -> RegressionAlert {
        let rule = RegressionRule()
        let evaluation = rule.evaluate(window: PassCounts(scored: 100, passed: 60), baseline: Array(repeating: PassCounts(scored: 100, passed: 95), count: 6))
        return RegressionAlert(windowStartNanos: start, windowEndNanos: start + 10_000_000_000, scorerName: scorer, configVersion: 2,
                               evaluation: evaluation, rule: rule, createdAtMillis: 1_770_000_123_456)
    }

    @Test("the document validates against schemas/alert.schema.json and carries the test's numbers")
    func validates() throws {
        let schema = try alertSchema()
        let document = Self.alert().json()
        #expect(schema.isValid(document), "\(schema.violations(of: document))")
        #expect(document["kind"]?.stringValue == "pass_rate_regression")
        #expect(document["window_start"]?.stringValue == "2026-02-02T02:40:00Z")
        #expect(document["window_end"]?.stringValue == "2026-02-02T02:40:10Z")
        #expect(document["scored"]?.int64Value == 100)
        #expect(document["passed"]?.int64Value == 60)
        #expect(document["baseline_scored"]?.int64Value == 600)
        #expect(document["baseline_passed"]?.int64Value == 570)
        #expect(document["baseline_windows"]?.int64Value == 6)
        #expect(document["pass_rate"]?.doubleValue == 0.6)
        #expect(document["baseline_pass_rate"]?.doubleValue == 0.95)
        #expect(abs((document["z"]?.doubleValue ?? 0) - -10.8012) < 1e-4)
        #expect(document["created_at"]?.stringValue == "2026-02-02T02:42:03.456Z")
        // A broken document does not validate (the schema can fail).
        var broken = try #require(document.objectValue)
        broken["pass_rate"] = .number("1.5")
        #expect(!schema.isValid(.object(broken)))
    }

    @Test("the id is a UUIDv5 of window and scorer: stable, and different for another window or scorer")
    func identifiers() {
        let id = Self.alert().alertID
        #expect(id == RegressionAlert.id(windowStartNanos: 1_770_000_000_000_000_000, scorerName: "no_error"))
        #expect(id == Self.alert().alertID)
        #expect(id != Self.alert(scorer: "fast_enough").alertID)
        #expect(id != Self.alert(start: 1_770_000_010_000_000_000).alertID)
        let utf8 = Array(id.utf8)
        #expect(utf8.count == 36 && utf8[14] == UInt8(ascii: "5"))
        #expect(Self.alert().messageKey == "1770000000000000000/no_error")
        #expect(RegressionAlert.schemaName == "alert/v1")
    }
}
