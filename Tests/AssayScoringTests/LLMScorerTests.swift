import AssayCore
import AssayScoring
import AssayTestSupport
import Testing

// MARK: - Test judges

/// Records every request a judge receives.
actor CallLog {
    private(set) var requests: [JudgeRequest] = []

    func record(_ request: JudgeRequest) {
        requests.append(request)
    }

    var count: Int { requests.count }
}

/// A judge whose answers come from a closure, counting its calls.
struct ScriptedJudge: Judge {
    let sourceID: String
    let log = CallLog()
    let answer: @Sendable (JudgeRequest) -> Result<JudgeVerdict, JudgeFailure>

    init(sourceID: String = "test/scripted-judge", answer: @escaping @Sendable (JudgeRequest) -> Result<JudgeVerdict, JudgeFailure>) {
        self.sourceID = sourceID
        self.answer = answer
    }

    /// Always `value`, with token counts and a latency.
    static func constant(_ value: FeedbackValue) -> ScriptedJudge {
        ScriptedJudge { _ in .success(JudgeVerdict(value: value, rationale: "scripted \(value.json().serialized())", inputTokens: 120, outputTokens: 30, latencyMillis: 842.25, cached: false)) }
    }

    static func failing(_ failure: JudgeFailure) -> ScriptedJudge {
        ScriptedJudge { _ in .failure(failure) }
    }

    func judge(_ request: JudgeRequest, context: ScoringContext) async -> Result<JudgeVerdict, JudgeFailure> {
        await log.record(request)
        return answer(request)
    }
}

/// Every LLM scorer kind, on one judge.
func allLLMScorers(_ judge: any Judge, guidelines: [String] = ["Answer politely."]) -> [any LLMJudgeScorer] {
    [
        RelevanceToQueryScorer(judge: judge),
        RetrievalGroundednessScorer(judge: judge),
        RetrievalRelevanceScorer(judge: judge),
        SafetyScorer(judge: judge),
        GuidelinesScorer(name: "be_polite", guidelines: guidelines, judge: judge),
    ]
}

/// A RAG trace built by hand: a root CHAIN, `retrievers` top-level RETRIEVER spans (each with the
/// given documents) and a RETRIEVER nested inside the first one (which must be ignored).
func ragTrace(
    question: JSONValue? = "How many paid sick days do we have?",
    answer: JSONValue? = "You have 10 paid sick days per calendar year.",
    retrievers: [[String]] = [["Employees have 10 paid sick days per calendar year.", "Unused sick days do not carry over.", "Meals are covered by a per diem."]],
    state: TraceState = .ok
) -> Trace {
    var spans = [span("root", type: "CHAIN", start: 1_000, inputs: question, outputs: answer)]
    for (index, documents) in retrievers.enumerated() {
        let outputs = JSONValue.array(documents.enumerated().map { chunk, text in
            .object(["page_content": .string(text), "metadata": ["doc_uri": .string("https://docs.example/\(index)/\(chunk)")]])
        })
        spans.append(span("retriever\(index)", parent: "root", name: "search_\(index)", type: "RETRIEVER", start: 2_000 + Int64(index) * 100, outputs: outputs))
    }
    if !retrievers.isEmpty {
        spans.append(span("nested", parent: "retriever0", type: "RETRIEVER", start: 2_050, outputs: ["a nested document"]))
    }
    return trace(spans, state: state)
}

// MARK: - Not applicable

@Suite("LLM scorers decide not applicable before any judge call")
struct LLMScorerApplicabilityTests {
    @Test func erroredTraceWithoutResponse() async throws {
        let sample = try Samples.first("rag", "llm_error")
        let judge = ScriptedJudge.constant(.yes)
        for scorer in allLLMScorers(judge) where scorer.kind != .retrievalRelevance {
            let outcomes = await scorer.score(sample.trace)
            #expect(outcomes.count == 1, "\(scorer.kind)")
            guard case .notApplicable(let reason)? = outcomes.first?.result else {
                Issue.record("\(scorer.kind): \(outcomes)")
                continue
            }
            #expect(reason.contains("errored"), "\(scorer.kind): \(reason)")
            #expect(outcomes.first?.spanID == nil)
            #expect(outcomes.first?.assessmentName == scorer.name)
        }
        #expect(await judge.log.count == 0)
        // retrieval_relevance needs only the request and the documents: it still judges.
        let chunks = await RetrievalRelevanceScorer(judge: judge).score(sample.trace)
        #expect(chunks.count > 1)
        #expect(await judge.log.count == chunks.count - 1)
    }

    @Test func noRetrieverSpan() async throws {
        let sample = try Samples.first("chat", "ok")
        let judge = ScriptedJudge.constant(.yes)
        for scorer in [RetrievalGroundednessScorer(judge: judge), RetrievalRelevanceScorer(judge: judge)] as [any Scorer] {
            let outcomes = await scorer.score(sample.trace)
            #expect(outcomes.count == 1)
            #expect(outcomes.first?.spanID == nil)
            #expect(outcomes.first?.assessmentName == scorer.name)
            guard case .notApplicable(let reason)? = outcomes.first?.result else {
                Issue.record("\(outcomes)")
                continue
            }
            #expect(reason.contains("RETRIEVER"))
        }
        #expect(await judge.log.count == 0)
        // Relevance and safety do apply to it.
        #expect(await RelevanceToQueryScorer(judge: judge).score(sample.trace).first?.result.feedbackValue == .yes)
        #expect(await judge.log.count == 1)
    }

    @Test func missingOrEmptyInputs() async {
        let judge = ScriptedJudge.constant(.yes)
        let noRequest = trace([span("root", type: "CHAIN", inputs: nil, outputs: "An answer.")])
        let emptyResponse = rootTrace(outputs: "   ")
        let noResponse = rootTrace(outputs: nil)
        for scorer in allLLMScorers(judge) {
            // safety reads only the response, so a missing request does not stop it.
            let subjects = [("no request", noRequest), ("empty response", emptyResponse), ("no response", noResponse)].filter { scorer.kind != .safety || $0.0 != "no request" }
            for (label, subject) in subjects {
                let outcomes = await scorer.score(subject)
                #expect(outcomes.count == 1 && outcomes.first?.result.isNotApplicable == true, "\(scorer.kind) \(label): \(outcomes)")
            }
        }
        // A retriever that returned nothing: per-span not applicable, still no call.
        let emptyRetriever = ragTrace(retrievers: [[]])
        let grounded = await RetrievalGroundednessScorer(judge: judge).score(emptyRetriever)
        #expect(grounded.map(\.spanID) == ["retriever0"])
        #expect(grounded.first?.result.isNotApplicable == true)
        let relevance = await RetrievalRelevanceScorer(judge: judge).score(emptyRetriever)
        #expect(relevance.map(\.assessmentName) == ["retrieval_relevance/precision"])
        #expect(relevance.first?.result.isNotApplicable == true)
        #expect(await judge.log.count == 0)
    }
}

// MARK: - Per span and per chunk

@Suite("Per-span and per-chunk outcomes")
struct LLMScorerFanOutTests {
    static let context = AssessmentContext(
        traceID: "tr-0123456789abcdef0123456789abcdef", windowStartNanos: 1_770_123_600_000_000_000,
        configVersion: 7, sampleRate: 1.0, late: false, createTimeMillis: 1_770_123_700_000
    )

    @Test func groundednessOnePerTopLevelRetrieverSpan() async throws {
        let sample = try #require(Samples.forArguments.first { $0.integer("num_retriever_spans") == 2 && $0.variant == "ok" })
        let judge = ScriptedJudge.constant(.yes)
        let scorer = RetrievalGroundednessScorer(judge: judge)
        let outcomes = await scorer.score(sample.trace)
        let groups = TraceText.documents(of: sample.trace)
        #expect(groups.count == 2)
        #expect(outcomes.map(\.spanID) == groups.map(\.spanID))
        #expect(outcomes.allSatisfy { $0.assessmentName == "retrieval_groundedness" })
        #expect(outcomes.map { $0.extraMetadata["retriever_span"] } == groups.map(\.spanName))
        // Each call saw its own span's documents, and the response.
        let requests = await judge.log.requests
        #expect(Set(requests.map(\.fields.context)) == Set(groups.map { $0.documents.map(\.content) }))
        #expect(requests.allSatisfy { $0.fields.response == TraceText.response(of: sample.trace) && $0.scorerKind == .retrievalGroundedness })
        // Distinct, stable assessment ids.
        var context = Self.context
        context.traceID = sample.trace.traceID
        let ids = outcomes.map { scorer.assessment(for: $0, context: context).assessmentID }
        #expect(Set(ids).count == 2)
        let again = await scorer.score(sample.trace).map { scorer.assessment(for: $0, context: context).assessmentID }
        #expect(again == ids)
    }

    @Test func relevanceOnePerChunkPlusPrecisionPerSpan() async throws {
        let subject = ragTrace(retrievers: [
            ["Employees have 10 paid sick days per calendar year.", "Unused sick days do not carry over.", "Meals are covered by a per diem."],
            ["Sick days are recorded in the HR portal.", "Hotels are capped at $220 per night."],
        ])
        // Relevant when the chunk mentions sick days.
        let judge = ScriptedJudge { request in
            let relevant = request.fields.context.first?.lowercased().contains("sick") == true
            return .success(JudgeVerdict(value: relevant ? .yes : .no, rationale: relevant ? "about sick days" : "off subject", inputTokens: 50, outputTokens: 10, latencyMillis: 12))
        }
        let scorer = RetrievalRelevanceScorer(judge: judge)
        let outcomes = await scorer.score(subject)
        #expect(outcomes.map(\.assessmentName) == [
            "retrieval_relevance/chunk/0", "retrieval_relevance/chunk/1", "retrieval_relevance/chunk/2", "retrieval_relevance/precision",
            "retrieval_relevance/chunk/0", "retrieval_relevance/chunk/1", "retrieval_relevance/precision",
        ])
        #expect(outcomes.map(\.spanID) == ["retriever0", "retriever0", "retriever0", "retriever0", "retriever1", "retriever1", "retriever1"])
        #expect(outcomes.map(\.result.feedbackValue) == [.yes, .yes, .no, .number(2.0 / 3.0), .yes, .no, .number(0.5)])
        #expect(outcomes[3].result.rationale == "2 of the 3 chunks retrieved by search_0 are relevant to the request.")
        #expect(outcomes[6].result.rationale == "1 of the 2 chunks retrieved by search_1 is relevant to the request.")
        #expect(outcomes[3].extraMetadata == ["retriever_span": "search_0", "chunks": "3", "relevant_chunks": "2"])
        #expect(outcomes[4].extraMetadata["chunk_index"] == "0" && outcomes[4].extraMetadata["doc_uri"] == "https://docs.example/1/0")
        #expect(outcomes[2].extraMetadata["judge_input_tokens"] == "50")
        // Derived outcomes carry no judge call figures (a window summary would count them twice).
        #expect(outcomes[3].extraMetadata.keys.allSatisfy { !$0.hasPrefix("judge_") })
        #expect(await judge.log.count == 5)
        #expect(await judge.log.requests.allSatisfy { $0.fields.request == "How many paid sick days do we have?" && $0.fields.context.count == 1 })

        // Every assessment id is distinct, and stable across re-scoring.
        let ids = outcomes.map { scorer.assessment(for: $0, context: Self.context).assessmentID }
        #expect(Set(ids).count == outcomes.count)
        let again = await scorer.score(subject).map { scorer.assessment(for: $0, context: Self.context).assessmentID }
        #expect(again == ids)
        #expect(scorer.chunkAssessmentName(4) == "retrieval_relevance/chunk/4" && scorer.precisionAssessmentName == "retrieval_relevance/precision")
    }

    @Test func customNamesCarryThrough() async {
        let judge = ScriptedJudge.constant(.no)
        let outcomes = await RetrievalRelevanceScorer(name: "rr", judge: judge).score(ragTrace())
        #expect(outcomes.map(\.assessmentName) == ["rr/chunk/0", "rr/chunk/1", "rr/chunk/2", "rr/precision"])
        #expect(outcomes.last?.result.feedbackValue == .number(0))
        #expect(outcomes.last?.result.rationale == "0 of the 3 chunks retrieved by search_0 are relevant to the request.")
    }
}

// MARK: - Judge failures and metadata

@Suite("Judge failures, verdicts and metadata")
struct LLMScorerFailureTests {
    @Test func failedBecomesAnErrorWithTheJudgeCode() async {
        let judge = ScriptedJudge.failing(.failed(code: "JUDGE_HTTP_500", message: "server error after 3 attempts"))
        for scorer in allLLMScorers(judge) where scorer.kind != .retrievalRelevance {
            let outcomes = await scorer.score(ragTrace())
            #expect(outcomes.count == 1, "\(scorer.kind)")
            #expect(outcomes.first?.result == .error(code: "JUDGE_HTTP_500", message: "server error after 3 attempts"), "\(scorer.kind)")
            #expect(outcomes.first?.extraMetadata["judge_prompt"] == JudgePrompts.promptVersion(for: scorer.kind))
        }
        let chunks = await RetrievalRelevanceScorer(judge: judge).score(ragTrace())
        #expect(chunks.count == 4)
        #expect(chunks.dropLast().allSatisfy { $0.result == .error(code: "JUDGE_HTTP_500", message: "server error after 3 attempts") })
        guard case .error(let code, let message)? = chunks.last?.result else {
            Issue.record("precision should be an error: \(String(describing: chunks.last))")
            return
        }
        #expect(code == "JUDGE_HTTP_500")
        #expect(message.hasPrefix("3 of 3 chunks could not be judged"))
    }

    @Test func budgetExhaustionSkipsTheWholeTrace() async {
        let judge = ScriptedJudge.failing(.budgetExhausted("5000 calls used in this window"))
        for scorer in allLLMScorers(judge) {
            let outcomes = await scorer.score(ragTrace(retrievers: [["a doc about sick days"], ["another doc"]]))
            #expect(outcomes == [ScorerOutcome(assessmentName: scorer.name, result: .budgetSkipped(reason: "5000 calls used in this window"))], "\(scorer.kind)")
        }
        // One chunk over budget is enough: no partial precision.
        let partial = ScriptedJudge { request in
            request.fields.context.first == "Meals are covered by a per diem."
                ? .failure(.budgetExhausted("over budget"))
                : .success(JudgeVerdict(value: .yes, rationale: "ok"))
        }
        #expect(await RetrievalRelevanceScorer(judge: partial).score(ragTrace()).map(\.result) == [.budgetSkipped(reason: "over budget")])
        #expect(await RetrievalGroundednessScorer(judge: partial).score(ragTrace()).map(\.result.feedbackValue) == [.yes])
    }

    @Test func oneFailedChunkMakesOnlyItsPrecisionAnError() async {
        let judge = ScriptedJudge { request in
            request.fields.context.first == "Unused sick days do not carry over."
                ? .failure(.failed(code: "JUDGE_TIMEOUT", message: "timed out"))
                : .success(JudgeVerdict(value: .yes, rationale: "ok"))
        }
        let outcomes = await RetrievalRelevanceScorer(judge: judge).score(ragTrace(retrievers: [
            ["Employees have 10 paid sick days per calendar year.", "Unused sick days do not carry over."],
            ["Sick days are recorded in the HR portal."],
        ]))
        #expect(outcomes.map(\.result.feedbackValue) == [.yes, nil, nil, .yes, .number(1)])
        #expect(outcomes[1].result == .error(code: "JUDGE_TIMEOUT", message: "timed out"))
        guard case .error(let code, let message) = outcomes[2].result else {
            Issue.record("\(outcomes[2])")
            return
        }
        #expect(code == "JUDGE_TIMEOUT" && message.hasPrefix("1 of 2 chunks could not be judged") && message.hasSuffix("timed out"))
    }

    @Test func aVerdictOtherThanYesOrNoIsAnError() async {
        let judge = ScriptedJudge { _ in .success(JudgeVerdict(value: .text("maybe"), rationale: "unsure")) }
        let outcomes = await SafetyScorer(judge: judge).score(rootTrace(outputs: "Fine."))
        #expect(outcomes.map(\.result) == [.error(code: "JUDGE_INVALID_VERDICT", message: #"the judge answered "maybe" instead of yes or no"#)])
        // Booleans are accepted as yes/no.
        let boolean = ScriptedJudge { _ in .success(JudgeVerdict(value: .bool(false), rationale: "unsafe")) }
        #expect(await SafetyScorer(judge: boolean).score(rootTrace(outputs: "Fine.")).map(\.result) == [.value(.no, rationale: "unsafe")])
    }

    @Test func callFiguresGoIntoMetadataAndNeverText() async throws {
        let sample = try Samples.first("rag", "pii")
        let judge = ScriptedJudge.constant(.yes)
        let outcomes = await RelevanceToQueryScorer(judge: judge).score(sample.trace)
        #expect(outcomes.first?.extraMetadata == [
            "judge_prompt": "relevance_to_query@1", "judge_input_tokens": "120", "judge_output_tokens": "30",
            "judge_latency_ms": "842.3", "judge_cached": "false",
        ])
        let cached = ScriptedJudge { _ in .success(JudgeVerdict(value: .no, rationale: "r", latencyMillis: 0, cached: true)) }
        #expect(await SafetyScorer(judge: cached).score(sample.trace).first?.extraMetadata == [
            "judge_prompt": "safety@1", "judge_latency_ms": "0", "judge_cached": "true",
        ])
        // No metadata value of any scorer repeats the trace's text.
        let response = try #require(TraceText.response(of: sample.trace))
        let request = try #require(TraceText.request(of: sample.trace))
        let documents = TraceText.documents(of: sample.trace).flatMap(\.documents).map(\.content)
        for scorer in allLLMScorers(OfflineJudge()) where scorer.kind != .guidelines {
            for outcome in await scorer.score(sample.trace) {
                for value in outcome.extraMetadata.values {
                    #expect(value.count < 20 || !(response.contains(value) || request.contains(value) || documents.contains { $0.contains(value) }), "\(scorer.kind): \(value)")
                    #expect(PIIDetector.counts(in: value).isEmpty, "\(scorer.kind): \(value)")
                }
            }
        }
    }

    @Test func sourceIsTheJudge() {
        for scorer in allLLMScorers(ScriptedJudge(sourceID: "openai:gpt-4o-mini") { _ in .failure(.failed(code: "X", message: "")) }) {
            #expect(scorer.sourceType == .llmJudge)
            #expect(scorer.sourceID == "openai:gpt-4o-mini")
            #expect(scorer.version == "1")
            #expect(scorer.source == AssessmentSource(sourceType: .llmJudge, sourceID: "openai:gpt-4o-mini"))
        }
        #expect(SafetyScorer(judge: OfflineJudge()).sourceID == "assay/offline-judge@1")
    }

    @Test func guidelinesAskOnceWithEveryGuideline() async throws {
        let judge = ScriptedJudge.constant(.no)
        let guidelines = ["Answer only HR questions.", "Never share another employee's contact details."]
        let scorer = GuidelinesScorer(name: "hr_policy", guidelines: guidelines, judge: judge)
        let sample = try Samples.first("tool_agent", "pii")
        let outcomes = await scorer.score(sample.trace)
        #expect(outcomes.count == 1)
        #expect(outcomes.first?.assessmentName == "hr_policy")
        #expect(outcomes.first?.result.feedbackValue == .no)
        #expect(outcomes.first?.extraMetadata["guidelines_count"] == "2")
        let requests = await judge.log.requests
        #expect(requests.count == 1)
        let request = try #require(requests.first)
        #expect(request.scorerKind == .guidelines && request.promptVersion == "guidelines@1")
        #expect(request.fields.guidelines == guidelines)
        #expect(request.fields.request == TraceText.request(of: sample.trace))
        #expect(request.fields.response == TraceText.response(of: sample.trace))
        #expect(guidelines.allSatisfy { request.userPrompt.contains($0) })
    }

    @Test func safetyIsJudgedOnTheResponseOnly() async throws {
        let judge = ScriptedJudge.constant(.yes)
        let sample = try Samples.first("chat", "refusal")
        _ = await SafetyScorer(judge: judge).score(sample.trace)
        let request = try #require(await judge.log.requests.first)
        #expect(request.fields.request == nil)
        #expect(request.fields.response == TraceText.response(of: sample.trace))
        let question = try #require(TraceText.request(of: sample.trace))
        #expect(!request.userPrompt.contains(question))
    }
}

// MARK: - Assessments

@Suite("LLM scorer outcomes become schema-valid assessments")
struct LLMAssessmentConversionTests {
    @Test("every outcome of every LLM scorer validates", arguments: Samples.forArguments)
    func schemaValid(sample: LabelledTrace) async throws {
        let checker = try AssessmentConversionTests.checker()
        var context = AssessmentConversionTests.context
        context.traceID = sample.trace.traceID
        let judges: [any Judge] = [
            OfflineJudge(),
            ScriptedJudge.constant(.yes),
            ScriptedJudge.failing(.failed(code: "JUDGE_UNPARSEABLE", message: "could not parse \"…\"")),
        ]
        for judge in judges {
            var ids: Set<String> = []
            for scorer in allLLMScorers(judge) {
                for outcome in await scorer.score(sample.trace) {
                    let assessment = scorer.assessment(for: outcome, context: context)
                    let json = assessment.json()
                    #expect(checker.violations(of: json).isEmpty, "\(scorer.kind): \(checker.violations(of: json)) in \(json.serialized())")
                    #expect(try Assessment(json: json) == assessment)
                    #expect(assessment.source.sourceType == .llmJudge)
                    #expect(ids.insert(assessment.assessmentID).inserted, "duplicate id for \(outcome.assessmentName) \(outcome.spanID ?? "-")")
                }
            }
        }
    }
}
