import AssayCore
@testable import AssayOTLP
import AssayScoring
import Testing

/// The same conversations sent as MLflow JSON and as OTLP give the same scorer inputs and the
/// same code-scorer verdicts. Traces are matched on `client_request_id` (their ids differ).
///
/// The fixture holds the RAG and chat traces of `mlflow-traces.jsonl` (41 of 60, to keep the
/// fixtures small); the tool-agent traces are covered against the labels in ``AssemblyTests``.
@Suite("MLflow JSON and OTLP agree")
struct CrossFormatTests {
    static func pairs() throws -> [(mlflow: Trace, otlp: Trace, label: JSONObject)] {
        let labels = try Fixtures.otlpLabels()
        let otlp = assemble(try Fixtures.otlpMessages().map(\.protobuf))
        var byRequest: [String: (Trace, JSONObject)] = [:]
        for (id, trace) in otlp {
            if let request = trace.clientRequestID, let label = labels[id] { byRequest[request] = (trace, label) }
        }
        var result: [(Trace, Trace, JSONObject)] = []
        for line in try Fixtures.lines("mlflow-traces.rag-chat.jsonl") {
            let mlflow = try MessageDecoding.decode(payload: line).get()
            guard let request = mlflow.clientRequestID, let (trace, label) = byRequest[request] else {
                Issue.record("no OTLP trace for \(mlflow.traceID)")
                continue
            }
            result.append((mlflow, trace, label))
        }
        return result
    }

    @Test func sameRequestResponseAndDocuments() throws {
        let pairs = try Self.pairs()
        #expect(pairs.count == 41)
        #expect(pairs.filter { $0.label["kind"]?.stringValue == "rag" }.count == 26)
        for (mlflow, otlp, _) in pairs {
            let name = mlflow.clientRequestID ?? "?"
            #expect(TraceText.request(of: otlp) == TraceText.request(of: mlflow), "\(name)")
            #expect(TraceText.response(of: otlp) == TraceText.response(of: mlflow), "\(name)")
            let mlflowDocuments = TraceText.documents(of: mlflow).map(\.documents)
            let otlpDocuments = TraceText.documents(of: otlp).map(\.documents)
            #expect(otlpDocuments.map { Set($0.map(\.content)) } == mlflowDocuments.map { Set($0.map(\.content)) }, "\(name)")
            #expect(otlpDocuments.map { Set($0.compactMap(\.docURI)) } == mlflowDocuments.map { Set($0.compactMap(\.docURI)) }, "\(name)")
            #expect(otlp.state == mlflow.state, "\(name)")
            #expect(otlp.requestTimeNanos / 1_000_000 == mlflow.requestTimeNanos / 1_000_000, "\(name)")
            #expect(otlp.metadata["mlflow.trace.session"] == mlflow.metadata["mlflow.trace.session"], "\(name)")
            #expect(otlp.metadata["mlflow.trace.user"] == mlflow.metadata["mlflow.trace.user"], "\(name)")
            #expect(otlp.tags["env"] == mlflow.tags["env"], "\(name)")
            #expect(Trace.canonicalTraceID(for: otlp.traceID).utf8.count == 32)
        }
    }

    /// The verdict of an outcome without its rationale (which quotes durations and counts).
    enum Verdict: Equatable {
        case value(FeedbackValue)
        case notApplicable
        case error
        case skipped
    }

    static func verdict(_ outcome: ScorerOutcome) -> Verdict {
        switch outcome.result {
        case .value(let value, _): return .value(value)
        case .notApplicable: return .notApplicable
        case .error: return .error
        case .budgetSkipped: return .skipped
        }
    }

    @Test func sameCodeScorerVerdicts() async throws {
        let scorers: [any CodeScorer] = [
            PIIScorer(name: "pii"),
            PIIScorer(name: "request_pii", field: .request),
            NoErrorScorer(name: "no_error"),
            NoErrorScorer(name: "no_error_trace_only", checkSpans: false),
            LatencyScorer(name: "fast", maxMillis: 5000),
            OutputLengthScorer(name: "length", minChars: 20, maxChars: 2000),
            ContainsScorer(name: "mentions_hr", text: "HR"),
            ValidJSONScorer(name: "json"),
        ]
        let pairs = try Self.pairs()
        var compared = 0
        var yes = 0
        var no = 0
        var notApplicable = 0
        for (mlflow, otlp, _) in pairs {
            for scorer in scorers {
                let left = Self.verdict(scorer.evaluate(mlflow))
                let right = Self.verdict(scorer.evaluate(otlp))
                #expect(left == right, "\(scorer.name) on \(mlflow.clientRequestID ?? "?"): MLflow \(left), OTLP \(right)")
                compared += 1
                switch left {
                case .value(.yes): yes += 1
                case .value(.no): no += 1
                case .notApplicable: notApplicable += 1
                default: break
                }
            }
        }
        #expect(compared == 41 * scorers.count)
        // The comparison is not vacuous: both verdicts occur, and some scorers do not apply.
        #expect(yes > 0 && no > 0 && notApplicable > 0)
    }

    @Test func tokenUsageIsReported() throws {
        for (mlflow, otlp, label) in try Self.pairs() {
            let name = mlflow.clientRequestID ?? "?"
            let mlflowUsage = TokenUsage.of(mlflow)
            let otlpUsage = TokenUsage.of(otlp)
            // Both apply or neither (an LLM error leaves no usage).
            #expect((mlflowUsage == nil) == (otlpUsage == nil), "\(name)")
            if let otlpUsage {
                #expect(otlpUsage.source == .spans)
                #expect(otlpUsage.totalTokens > 0)
            }
            _ = label
        }
    }
}

/// Records what the LLM scorers ask, and answers with the deterministic offline judge.
actor JudgeRecorder {
    var fields: [JudgeFields] = []
    func record(_ value: JudgeFields) { fields.append(value) }
    func take() -> [JudgeFields] {
        defer { fields = [] }
        return fields
    }
}

struct RecordingJudge: Judge {
    let recorder: JudgeRecorder
    let offline = OfflineJudge()
    var sourceID: String { offline.sourceID }

    func judge(_ request: JudgeRequest, context: ScoringContext) async -> Result<JudgeVerdict, JudgeFailure> {
        await recorder.record(request.fields)
        return await offline.judge(request, context: context)
    }
}

extension CrossFormatTests {
    @Test func sameJudgeInputsAndOfflineJudgeVerdicts() async throws {
        let recorder = JudgeRecorder()
        let judge = RecordingJudge(recorder: recorder)
        let scorers: [any Scorer] = [
            RelevanceToQueryScorer(judge: judge),
            SafetyScorer(judge: judge),
            RetrievalGroundednessScorer(judge: judge),
            RetrievalRelevanceScorer(judge: judge),
        ]
        var judged = 0
        for (mlflow, otlp, _) in try Self.pairs() {
            for scorer in scorers {
                let left = await scorer.score(mlflow).map(Self.verdict)
                let leftFields = await recorder.take()
                let right = await scorer.score(otlp).map(Self.verdict)
                let rightFields = await recorder.take()
                #expect(left == right, "\(scorer.name) on \(mlflow.clientRequestID ?? "?")")
                // Per-chunk calls run concurrently, so compare what was asked, not in which order.
                #expect(leftFields.map { "\($0)" }.sorted() == rightFields.map { "\($0)" }.sorted(),
                        "\(scorer.name) on \(mlflow.clientRequestID ?? "?"): the judge was asked different things")
                judged += leftFields.count
            }
        }
        #expect(judged > 41 * 2)
    }
}
