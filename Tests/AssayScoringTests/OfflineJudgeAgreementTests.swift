import AssayCore
import AssayScoring
import Foundation
import Testing

/// How well the offline judge agrees with the sample labels, measured as **balanced accuracy**
/// (DESIGN §4): the mean of the recall on "yes" and the recall on "no". Traces whose label is
/// `null` (ambiguous, or nothing to judge) are skipped. A trace the judge did not answer
/// (not applicable or an error) counts as a miss.
///
/// Label mapping:
/// - `relevance_to_query` ↔ `on_topic`;
/// - `retrieval_groundedness` ↔ `grounded`. The scorer gives one verdict per RETRIEVER span,
///   judged on that span's documents alone; the label is about all retrieved documents. A trace
///   counts as grounded when **any** of its spans says yes: support by one span's documents
///   implies support by all of them, while a second, narrower index (the samples' `hr_faq_search`
///   returns one document) is expected to miss claims the main index supports;
/// - `safety` ↔ `safe`.
///
/// The floors are the measured figures minus 0.03, rounded down: a change to the heuristics
/// that makes them worse fails here. (`retrieval_relevance` has no label; it is tested on
/// constructed cases in ``OfflineJudgeTests``.)
struct JudgeAgreement: CustomStringConvertible {
    var yesTotal = 0
    var yesAgreed = 0
    var noTotal = 0
    var noAgreed = 0

    mutating func add(label: Bool, predicted: Bool?) {
        if label {
            yesTotal += 1
            if predicted == true { yesAgreed += 1 }
        } else {
            noTotal += 1
            if predicted == false { noAgreed += 1 }
        }
    }

    /// Mean of the two recalls; a class without labels counts as recall 0, so an empty or
    /// one-sided set can never look good.
    var balancedAccuracy: Double {
        let yesRecall = yesTotal == 0 ? 0 : Double(yesAgreed) / Double(yesTotal)
        let noRecall = noTotal == 0 ? 0 : Double(noAgreed) / Double(noTotal)
        return (yesRecall + noRecall) / 2
    }

    var description: String {
        let rounded = (balancedAccuracy * 1000).rounded() / 1000
        return "balanced accuracy \(rounded) (yes \(yesAgreed)/\(yesTotal), no \(noAgreed)/\(noTotal))"
    }
}

/// The agreement of one judge, per scorer, on a labelled sample set.
struct AgreementReport: CustomStringConvertible {
    var relevance = JudgeAgreement()
    var groundedness = JudgeAgreement()
    var safety = JudgeAgreement()

    var description: String {
        "relevance_to_query \(relevance); retrieval_groundedness \(groundedness); safety \(safety)"
    }

    static func measure(_ samples: [LabelledTrace], judge: any Judge) async -> AgreementReport {
        let relevanceScorer = RelevanceToQueryScorer(judge: judge)
        let groundednessScorer = RetrievalGroundednessScorer(judge: judge)
        let safetyScorer = SafetyScorer(judge: judge)
        var report = AgreementReport()
        for sample in samples {
            if let label = sample.flag("on_topic") {
                let outcomes = await relevanceScorer.score(sample.trace)
                report.relevance.add(label: label, predicted: verdict(outcomes))
            }
            if let label = sample.flag("grounded") {
                let outcomes = await groundednessScorer.score(sample.trace)
                let verdicts = outcomes.map { verdict([$0]) }
                let predicted: Bool? = verdicts.contains(true) ? true : (verdicts.contains(false) ? false : nil)
                report.groundedness.add(label: label, predicted: predicted)
            }
            if let label = sample.flag("safe") {
                let outcomes = await safetyScorer.score(sample.trace)
                report.safety.add(label: label, predicted: verdict(outcomes))
            }
        }
        return report
    }

    /// yes → true, no → false, anything else (N/A, error, several outcomes) → nil.
    static func verdict(_ outcomes: [ScorerOutcome]) -> Bool? {
        guard outcomes.count == 1, case .value(let value, _) = outcomes[0].result else { return nil }
        if value == .yes { return true }
        if value == .no { return false }
        return nil
    }
}

/// The 60 traces of `mlflow-traces.jsonl`, copied into `Fixtures/`.
enum MLflowTraceFixtures {
    static func all() throws -> [LabelledTrace] {
        try loadLabelledTraces(
            lines: Fixtures.lines(Fixtures.bytes("mlflow-traces.jsonl")),
            labels: Fixtures.bytes("mlflow-traces.labels.json")
        )
    }
}

/// A judge that answers yes to everything.
struct AlwaysYesJudge: Judge {
    var sourceID: String { "test/always-yes" }
    func judge(_ request: JudgeRequest, context: ScoringContext) async -> Result<JudgeVerdict, JudgeFailure> {
        .success(JudgeVerdict(value: .yes, rationale: "always yes"))
    }
}

@Suite("Offline judge agreement with the sample labels (balanced accuracy)")
struct OfflineJudgeAgreementTests {
    @Test func mlflowTracesFixture() async throws {
        let samples = try MLflowTraceFixtures.all()
        #expect(samples.count == 60)
        let report = await AgreementReport.measure(samples, judge: OfflineJudge())
        print("offline judge on mlflow-traces (60): \(report)")
        // The label counts behind the figures (so a changed fixture is noticed).
        #expect((report.relevance.yesTotal, report.relevance.noTotal) == (45, 2))
        #expect((report.groundedness.yesTotal, report.groundedness.noTotal) == (14, 10))
        #expect((report.safety.yesTotal, report.safety.noTotal) == (44, 7))
        // Floors: measured − 0.03, rounded down.
        #expect(report.relevance.balancedAccuracy >= 0.97, "\(report.relevance)")
        #expect(report.groundedness.balancedAccuracy >= 0.97, "\(report.groundedness)")
        #expect(report.safety.balancedAccuracy >= 0.97, "\(report.safety)")
    }

    /// The metric itself: a judge that always says yes scores exactly 0.5, however imbalanced the
    /// labels are; plain agreement would have called it 94 % right on relevance.
    @Test func alwaysYesScoresOneHalf() async throws {
        let report = await AgreementReport.measure(try MLflowTraceFixtures.all(), judge: AlwaysYesJudge())
        #expect(report.relevance.balancedAccuracy == 0.5)
        #expect(report.groundedness.balancedAccuracy == 0.5)
        #expect(report.safety.balancedAccuracy == 0.5)
        #expect(report.relevance.yesAgreed == 45 && report.relevance.noAgreed == 0)
    }

    @Test func balancedAccuracyArithmetic() {
        var agreement = JudgeAgreement()
        for _ in 0..<9 { agreement.add(label: true, predicted: true) }
        agreement.add(label: true, predicted: nil)
        agreement.add(label: false, predicted: false)
        agreement.add(label: false, predicted: true)
        #expect(agreement.balancedAccuracy == (0.9 + 0.5) / 2)
        #expect(JudgeAgreement().balancedAccuracy == 0)
    }
}

@Suite("Offline judge agreement on all shared samples (when /work/shared/samples exists)", .enabled(if: SharedSamples.available, "/work/shared/samples not present"))
struct SharedOfflineJudgeAgreementTests {
    /// The fixtures the floors are pinned on are verbatim copies of the shared samples.
    @Test(arguments: ["mlflow-traces.jsonl", "mlflow-traces.labels.json"])
    func fixtureCopyIsVerbatim(name: String) throws {
        let shared = [UInt8](try Data(contentsOf: SharedSamples.directory.appendingPathComponent(name)))
        #expect(try Fixtures.bytes(name) == shared, "copy ../shared/samples/\(name) over Tests/AssayScoringTests/Fixtures/\(name)")
    }

    @Test func judgeEval() async throws {
        let samples = try SharedSamples.load("judge-eval")
        #expect(samples.count == 300)
        let report = await AgreementReport.measure(samples, judge: OfflineJudge())
        print("offline judge on judge-eval (300): \(report)")
        #expect((report.relevance.yesTotal, report.relevance.noTotal) == (200, 21))
        #expect((report.groundedness.yesTotal, report.groundedness.noTotal) == (90, 40))
        #expect((report.safety.yesTotal, report.safety.noTotal) == (251, 13))
        #expect(report.relevance.balancedAccuracy >= 0.97, "\(report.relevance)")
        #expect(report.groundedness.balancedAccuracy >= 0.95, "\(report.groundedness)")
        #expect(report.safety.balancedAccuracy >= 0.97, "\(report.safety)")
    }
}
