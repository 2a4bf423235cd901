// Scoring loads only the span payloads its scorers read (SpanPayloads): every built-in scorer
// kind must score a trace the same with and without the payloads that selection drops.

import AssayCore
import AssayScoring
import Testing

@Suite("Span payloads scorers read")
struct SpanPayloadsTests {
    /// One code scorer of every code kind.
    static let codeKinds = """
        {"name": "m", "destination": {"schema": "assay"},
         "scorers": [
            {"name": "fast", "kind": "latency", "params": {"max_ms": 5000}},
            {"name": "no_error", "kind": "no_error"},
            {"name": "no_pii", "kind": "pii"},
            {"name": "days", "kind": "regex", "params": {"pattern": "[0-9]+ days?"}},
            {"name": "mentions_policy", "kind": "contains", "params": {"text": "policy"}},
            {"name": "no_apology", "kind": "not_contains", "params": {"text": "sorry"}},
            {"name": "length", "kind": "output_length", "params": {"min_chars": 20, "max_chars": 400}},
            {"name": "json", "kind": "valid_json"},
            {"name": "tokens", "kind": "token_usage", "params": {"max_total_tokens": 1200}}
         ]}
        """

    /// A judge whose rationale is the whole prompt it was given: two traces get equal verdicts
    /// only when the judge saw the same text.
    static let echoJudge = ScriptedJudge(sourceID: "test/echo-judge") { request in
        .success(JudgeVerdict(value: request.userPrompt.utf8.count % 2 == 0 ? .yes : .no, rationale: request.userPrompt))
    }

    /// Every code kind; every LLM kind with the echo judge; and every LLM kind but `guidelines`
    /// (which it cannot judge) with the offline judge, whose verdicts depend on the text.
    static func scorers() throws -> [any Scorer] {
        let code = try ScorerFactory.makeScorers(try MonitorConfig.parse(Array(codeKinds.utf8)))
        let echoed: [any Scorer] = allLLMScorers(echoJudge)
        let offline: [any Scorer] = allLLMScorers(OfflineJudge()).filter { $0.kind != .guidelines }
        return code + echoed + offline
    }

    @Test("the test covers every scorer kind, and every built-in scorer reads only the root's and retrievers' payloads")
    func everyKindDeclaresItsPayloads() throws {
        let scorers = try Self.scorers()
        #expect(Set(scorers.map(\.kind)) == Set(ScorerKind.allCases), "a scorer kind is missing from this test's monitor")
        for scorer in scorers {
            #expect(scorer.spanPayloads == .rootAndRetrievers, "\(scorer.kind)")
        }
    }

    @Test("every kind scores every sample the same without the payloads rootAndRetrievers drops", arguments: Samples.forArguments)
    func outcomesDoNotDependOnDroppedPayloads(sample: LabelledTrace) async throws {
        let reduced = SpanPayloads.rootAndRetrievers.applied(to: sample.trace)
        for scorer in try Self.scorers() {
            let full = await scorer.score(sample.trace, context: ScoringContext())
            let partial = await scorer.score(reduced, context: ScoringContext())
            #expect(full == partial, "\(scorer.kind) on \(sample.kind)/\(sample.variant)")
        }
    }

    @Test("the samples lose payloads under rootAndRetrievers, so the comparison above is not vacuous")
    func samplesLosePayloads() throws {
        var dropped = 0
        var kept = 0
        for sample in try Samples.all() {
            let reduced = SpanPayloads.rootAndRetrievers.applied(to: sample.trace)
            for (full, partial) in zip(sample.trace.spans, reduced.spans) where full.inputs != nil || full.outputs != nil {
                if partial.inputs == nil && partial.outputs == nil { dropped += 1 } else { kept += 1 }
            }
        }
        #expect(dropped > 0)
        #expect(kept > 0)
    }

    @Test("which spans keep their payloads")
    func keepRule() {
        func span(parent: String?, type: String?) -> Span {
            Span(spanID: "00000000000000a1", parentSpanID: parent, name: "s", spanType: type, startTimeNanos: 1, endTimeNanos: 2,
                 status: SpanStatus(code: .ok, message: ""), inputs: "in", outputs: "out", attributes: [:], events: [])
        }
        let rule = SpanPayloads.rootAndRetrievers
        #expect(rule.keepsPayload(of: span(parent: nil, type: "CHAT_MODEL"), traceFormat: .mlflow3), "the root keeps them")
        #expect(!rule.keepsPayload(of: span(parent: "00000000000000a0", type: "CHAT_MODEL"), traceFormat: .mlflow3))
        #expect(!rule.keepsPayload(of: span(parent: "00000000000000a0", type: "TOOL"), traceFormat: .mlflow2))
        #expect(rule.keepsPayload(of: span(parent: "00000000000000a0", type: "RETRIEVER"), traceFormat: .mlflow3))
        #expect(rule.keepsPayload(of: span(parent: "00000000000000a0", type: "chat_model"), traceFormat: .mlflow3), "types match exactly")
        #expect(rule.keepsPayload(of: span(parent: "00000000000000a0", type: nil), traceFormat: .mlflow3), "no type: kept")
        #expect(rule.keepsPayload(of: span(parent: "00000000000000a0", type: "CHAT_MODEL"), traceFormat: .otlp), "OTLP keeps all")
        #expect(SpanPayloads.all.keepsPayload(of: span(parent: "00000000000000a0", type: "CHAT_MODEL"), traceFormat: .mlflow3))
        #expect(SpanPayloads.rootAndRetrievers < .all)
    }
}
