// MLflow's predefined LLM-judge scorers (DESIGN §4): relevance_to_query, retrieval_groundedness,
// retrieval_relevance, safety and guidelines, each asking a pluggable ``Judge``.

import AssayCore

/// A scorer that asks a ``Judge``: source type `LLM_JUDGE`, source id the judge's
/// ``Judge/sourceID`` (so offline verdicts say `assay/offline-judge@1`).
///
/// ## Shared rules
/// - **Not applicable** is decided from the trace alone, before any judge call (so it is never
///   billed): no request, no response (an errored trace or an empty answer), no top-level
///   RETRIEVER span, whichever inputs the scorer needs.
/// - **Judge failures**: ``JudgeFailure/failed(code:message:)`` becomes
///   ``ScorerResult/error(code:message:)`` with the judge's code; ``JudgeFailure/budgetExhausted(_:)``
///   becomes a single ``ScorerResult/budgetSkipped(reason:)`` for the whole trace, even when other
///   calls for the same trace succeeded, since partial per-chunk results would give a misleading
///   precision and the trace is counted `budget_skipped`.
/// - A verdict other than yes/no is an error `JUDGE_INVALID_VERDICT`.
/// - **Metadata** of an outcome that corresponds to one judge call: `judge_prompt` (the prompt
///   version), `judge_latency_ms`, `judge_cached` and, when the judge reports them,
///   `judge_input_tokens` / `judge_output_tokens`. Derived outcomes (`…/precision`) carry no call
///   figures, so window summaries never count a call twice. No request, response or document
///   text ever goes into metadata.
/// - Several calls for one trace (per span, per chunk) run concurrently; the judge enforces its
///   own concurrency limit.
public protocol LLMJudgeScorer: Scorer {
    /// Who answers the scorer's questions.
    var judge: any Judge { get }
}

extension LLMJudgeScorer {
    /// `"1"`.
    public var version: String { "1" }
    /// Always `LLM_JUDGE`.
    public var sourceType: AssessmentSourceType { .llmJudge }
    /// The judge's source id.
    public var sourceID: String { judge.sourceID }
}

// MARK: - relevance_to_query

/// `relevance_to_query`: yes when the response addresses the request. One outcome for the trace;
/// not applicable without a request or a response.
public struct RelevanceToQueryScorer: LLMJudgeScorer {
    public let name: String
    public let judge: any Judge
    public var kind: ScorerKind { .relevanceToQuery }

    public init(name: String = "relevance_to_query", judge: any Judge) {
        self.name = name
        self.judge = judge
    }

    public func score(_ trace: Trace, context: ScoringContext) async -> [ScorerOutcome] {
        let inputs = LLMInputs.requestAndResponse(trace)
        guard case .success(let texts) = inputs else {
            return [ScorerOutcome(assessmentName: name, result: inputs.notApplicableResult)]
        }
        let request = JudgePrompts.relevanceToQuery(request: texts.request, response: texts.response)
        let answer = await judge.judge(request, context: context)
        return LLMCalls.single(name: name, spanID: nil, request: request, answer: answer)
    }
}

// MARK: - safety

/// `safety`: yes when the response is free of harmful content, judged on the response alone.
/// One outcome; not applicable when there is no response (e.g. the trace errored).
public struct SafetyScorer: LLMJudgeScorer {
    public let name: String
    public let judge: any Judge
    public var kind: ScorerKind { .safety }

    public init(name: String = "safety", judge: any Judge) {
        self.name = name
        self.judge = judge
    }

    public func score(_ trace: Trace, context: ScoringContext) async -> [ScorerOutcome] {
        switch TextField.response.text(of: trace) {
        case .failure(let reason):
            return [ScorerOutcome(assessmentName: name, result: .notApplicable(reason: reason.reason))]
        case .success(let response):
            let request = JudgePrompts.safety(response: response)
            let answer = await judge.judge(request, context: context)
            return LLMCalls.single(name: name, spanID: nil, request: request, answer: answer)
        }
    }
}

// MARK: - guidelines

/// `guidelines`: yes when the response, given the request, follows every guideline.
///
/// One judge call with all guidelines (as MLflow's `Guidelines` judge does): cheaper than one
/// call per guideline, and the judge names the broken guideline(s) in its rationale. The outcome
/// carries `guidelines_count`. Not applicable without a request or a response.
public struct GuidelinesScorer: LLMJudgeScorer {
    public let name: String
    /// The guideline texts (at least one).
    public let guidelines: [String]
    public let judge: any Judge
    public var kind: ScorerKind { .guidelines }

    public init(name: String, guidelines: [String], judge: any Judge) {
        self.name = name
        self.guidelines = guidelines
        self.judge = judge
    }

    public func score(_ trace: Trace, context: ScoringContext) async -> [ScorerOutcome] {
        let inputs = LLMInputs.requestAndResponse(trace)
        guard case .success(let texts) = inputs else {
            return [ScorerOutcome(assessmentName: name, result: inputs.notApplicableResult)]
        }
        guard !guidelines.isEmpty else {
            return [ScorerOutcome(assessmentName: name, result: .notApplicable(reason: "the scorer has no guidelines to check"))]
        }
        let request = JudgePrompts.guidelines(request: texts.request, response: texts.response, guidelines: guidelines)
        let answer = await judge.judge(request, context: context)
        var outcomes = LLMCalls.single(name: name, spanID: nil, request: request, answer: answer)
        for index in outcomes.indices {
            if case .budgetSkipped = outcomes[index].result { continue }
            outcomes[index].extraMetadata["guidelines_count"] = String(guidelines.count)
        }
        return outcomes
    }
}

// MARK: - retrieval_groundedness

/// `retrieval_groundedness`: yes when the response is supported by the documents of a retriever.
///
/// One outcome per top-level RETRIEVER span (``TraceText/documents(of:)``), with that span's id,
/// judged against that span's documents only (MLflow's semantics). A span that returned no
/// documents is not applicable (with its span id). The trace is not applicable (one outcome, no
/// span) when it has no top-level RETRIEVER span, or no response. Metadata: `retriever_span`
/// (the span name), `documents` (how many).
public struct RetrievalGroundednessScorer: LLMJudgeScorer {
    public let name: String
    public let judge: any Judge
    public var kind: ScorerKind { .retrievalGroundedness }

    public init(name: String = "retrieval_groundedness", judge: any Judge) {
        self.name = name
        self.judge = judge
    }

    public func score(_ trace: Trace, context: ScoringContext) async -> [ScorerOutcome] {
        let groups = TraceText.documents(of: trace)
        guard !groups.isEmpty else {
            return [ScorerOutcome(assessmentName: name, result: .notApplicable(reason: LLMInputs.noRetrieverReason))]
        }
        let response: String
        switch TextField.response.text(of: trace) {
        case .failure(let reason):
            return [ScorerOutcome(assessmentName: name, result: .notApplicable(reason: reason.reason))]
        case .success(let text):
            response = text
        }
        let request = TraceText.request(of: trace)

        var outcomes: [ScorerOutcome?] = Array(repeating: nil, count: groups.count)
        var calls: [(index: Int, request: JudgeRequest)] = []
        for (index, group) in groups.enumerated() {
            let metadata = ["retriever_span": group.spanName, "documents": String(group.documents.count)]
            if group.documents.isEmpty {
                outcomes[index] = ScorerOutcome(
                    assessmentName: name, spanID: group.spanID,
                    result: .notApplicable(reason: "the retriever span \(group.spanName) returned no documents"),
                    extraMetadata: metadata
                )
            } else {
                calls.append((index, JudgePrompts.retrievalGroundedness(request: request, response: response, documents: group.documents.map(\.content))))
            }
        }
        let answers = await LLMCalls.judgeAll(calls.map(\.request), judge: judge, context: context)
        if let skipped = LLMCalls.budgetSkipped(answers, name: name) { return skipped }
        for (call, answer) in zip(calls, answers) {
            let group = groups[call.index]
            var outcome = LLMCalls.outcome(name: name, spanID: group.spanID, request: call.request, answer: answer)
            outcome.extraMetadata["retriever_span"] = group.spanName
            outcome.extraMetadata["documents"] = String(group.documents.count)
            outcomes[call.index] = outcome
        }
        return outcomes.compactMap { $0 }
    }
}

// MARK: - retrieval_relevance

/// `retrieval_relevance`: is each retrieved chunk relevant to the request?
///
/// For every top-level RETRIEVER span (in start order) and every document it returned:
/// - one outcome per chunk, named `<name>/chunk/<index>` (index from 0 within its span), with the
///   span's id and metadata `chunk_index`, `retriever_span` and `doc_uri` (when the document has
///   one). The chunk index is in the name because the assessment id is
///   UUIDv5(trace | span | name | config version): chunks of one span share the span id, so a
///   shared name would give them all the same id. Names built this way are unique per span and
///   stable across re-scoring (the retriever's output order is part of the trace);
/// - then one `<name>/precision` outcome per span: the number relevant ÷ chunks, with a rationale
///   saying how many, and metadata `relevant_chunks`, `chunks`. When some chunk could not be
///   judged, the precision is an error with that chunk's code. A span without documents gets only
///   a not-applicable precision.
///
/// Not applicable (one outcome named `<name>`, no span) when the trace has no top-level RETRIEVER
/// span or no request.
public struct RetrievalRelevanceScorer: LLMJudgeScorer {
    public let name: String
    public let judge: any Judge
    public var kind: ScorerKind { .retrievalRelevance }

    public init(name: String = "retrieval_relevance", judge: any Judge) {
        self.name = name
        self.judge = judge
    }

    /// The assessment name of chunk `index` of a span.
    public func chunkAssessmentName(_ index: Int) -> String {
        "\(name)/chunk/\(index)"
    }

    /// The assessment name of the per-span precision.
    public var precisionAssessmentName: String {
        "\(name)/precision"
    }

    public func score(_ trace: Trace, context: ScoringContext) async -> [ScorerOutcome] {
        let groups = TraceText.documents(of: trace)
        guard !groups.isEmpty else {
            return [ScorerOutcome(assessmentName: name, result: .notApplicable(reason: LLMInputs.noRetrieverReason))]
        }
        let question: String
        switch TextField.request.text(of: trace) {
        case .failure(let reason):
            return [ScorerOutcome(assessmentName: name, result: .notApplicable(reason: reason.reason))]
        case .success(let text):
            question = text
        }

        var calls: [(group: Int, chunk: Int, request: JudgeRequest)] = []
        for (groupIndex, group) in groups.enumerated() {
            for (chunkIndex, document) in group.documents.enumerated() {
                calls.append((groupIndex, chunkIndex, JudgePrompts.retrievalRelevance(request: question, chunk: document.content)))
            }
        }
        let answers = await LLMCalls.judgeAll(calls.map(\.request), judge: judge, context: context)
        if let skipped = LLMCalls.budgetSkipped(answers, name: name) { return skipped }

        var outcomes: [ScorerOutcome] = []
        var next = 0
        for (groupIndex, group) in groups.enumerated() {
            var relevant = 0
            var failures: [(code: String, message: String)] = []
            while next < calls.count, calls[next].group == groupIndex {
                let call = calls[next]
                var outcome = LLMCalls.outcome(name: chunkAssessmentName(call.chunk), spanID: group.spanID, request: call.request, answer: answers[next])
                outcome.extraMetadata["chunk_index"] = String(call.chunk)
                outcome.extraMetadata["retriever_span"] = group.spanName
                if let uri = group.documents[call.chunk].docURI, !uri.isEmpty {
                    outcome.extraMetadata["doc_uri"] = String(uri.prefix(512))
                }
                switch outcome.result {
                case .value(let value, _) where value == .yes: relevant += 1
                case .error(let code, let message): failures.append((code, message))
                default: break
                }
                outcomes.append(outcome)
                next += 1
            }
            outcomes.append(precision(group: group, relevant: relevant, failures: failures))
        }
        return outcomes
    }

    private func precision(group: RetrievedDocumentGroup, relevant: Int, failures: [(code: String, message: String)]) -> ScorerOutcome {
        let total = group.documents.count
        var metadata = ["retriever_span": group.spanName, "chunks": String(total)]
        let result: ScorerResult
        if total == 0 {
            result = .notApplicable(reason: "the retriever span \(group.spanName) returned no documents")
        } else if let first = failures.first {
            result = .error(code: first.code, message: "\(failures.count) of \(total) chunks could not be judged, so the precision is unknown; first failure: \(first.message)")
        } else {
            metadata["relevant_chunks"] = String(relevant)
            let chunks = total == 1 ? "1 chunk" : "\(total) chunks"
            result = .value(
                .number(Double(relevant) / Double(total)),
                rationale: "\(relevant) of the \(chunks) retrieved by \(group.spanName) \(relevant == 1 ? "is" : "are") relevant to the request."
            )
        }
        return ScorerOutcome(assessmentName: precisionAssessmentName, spanID: group.spanID, result: result, extraMetadata: metadata)
    }
}

// MARK: - Shared plumbing

/// Reading a trace's inputs for LLM scorers.
enum LLMInputs {
    static let noRetrieverReason = "the trace has no top-level RETRIEVER span, so there are no retrieved documents"

    /// The request and the response, or why the scorer does not apply (request checked first).
    static func requestAndResponse(_ trace: Trace) -> Result<(request: String, response: String), NotApplicable> {
        switch TextField.request.text(of: trace) {
        case .failure(let reason): return .failure(reason)
        case .success(let request):
            switch TextField.response.text(of: trace) {
            case .failure(let reason): return .failure(reason)
            case .success(let response): return .success((request, response))
            }
        }
    }
}

extension Result where Failure == NotApplicable {
    /// The not-applicable result for a failed input read.
    var notApplicableResult: ScorerResult {
        if case .failure(let reason) = self { return .notApplicable(reason: reason.reason) }
        return .notApplicable(reason: "the scorer's inputs are missing")
    }
}

/// Turning judge answers into outcomes.
enum LLMCalls {
    /// Asks every request concurrently; answers in request order.
    static func judgeAll(_ requests: [JudgeRequest], judge: any Judge, context: ScoringContext) async -> [Result<JudgeVerdict, JudgeFailure>] {
        if requests.isEmpty { return [] }
        if requests.count == 1 { return [await judge.judge(requests[0], context: context)] }
        return await withTaskGroup(of: (Int, Result<JudgeVerdict, JudgeFailure>).self) { group in
            for (index, request) in requests.enumerated() {
                group.addTask { (index, await judge.judge(request, context: context)) }
            }
            var answers: [Result<JudgeVerdict, JudgeFailure>] = Array(repeating: .failure(.failed(code: "JUDGE_NO_ANSWER", message: "no answer")), count: requests.count)
            for await (index, answer) in group {
                answers[index] = answer
            }
            return answers
        }
    }

    /// One `.budgetSkipped` outcome when any answer ran out of budget.
    static func budgetSkipped(_ answers: [Result<JudgeVerdict, JudgeFailure>], name: String) -> [ScorerOutcome]? {
        for answer in answers {
            if case .failure(.budgetExhausted(let reason)) = answer {
                return [ScorerOutcome(assessmentName: name, result: .budgetSkipped(reason: reason))]
            }
        }
        return nil
    }

    /// The outcomes of a scorer with one call: budget-skipped, or the call's outcome.
    static func single(name: String, spanID: String?, request: JudgeRequest, answer: Result<JudgeVerdict, JudgeFailure>) -> [ScorerOutcome] {
        if let skipped = budgetSkipped([answer], name: name) { return skipped }
        return [outcome(name: name, spanID: spanID, request: request, answer: answer)]
    }

    /// The outcome of one call (a budget exhaustion here becomes `.budgetSkipped` too).
    static func outcome(name: String, spanID: String?, request: JudgeRequest, answer: Result<JudgeVerdict, JudgeFailure>) -> ScorerOutcome {
        var metadata = ["judge_prompt": request.promptVersion]
        let result: ScorerResult
        switch answer {
        case .failure(.budgetExhausted(let reason)):
            result = .budgetSkipped(reason: reason)
        case .failure(.failed(let code, let message)):
            result = .error(code: code, message: message)
        case .success(let verdict):
            metadata.merge(callMetadata(verdict)) { _, new in new }
            if verdict.value == .yes || verdict.value == .bool(true) {
                result = .value(.yes, rationale: verdict.rationale)
            } else if verdict.value == .no || verdict.value == .bool(false) {
                result = .value(.no, rationale: verdict.rationale)
            } else {
                result = .error(code: "JUDGE_INVALID_VERDICT", message: "the judge answered \(verdict.value.json().serialized()) instead of yes or no")
            }
        }
        return ScorerOutcome(assessmentName: name, spanID: spanID, result: result, extraMetadata: metadata)
    }

    /// `judge_latency_ms`, `judge_cached` and the token counts the judge reported.
    static func callMetadata(_ verdict: JudgeVerdict) -> [String: String] {
        let latency = verdict.latencyMillis.isFinite ? (max(0, verdict.latencyMillis) * 10).rounded() / 10 : 0
        var metadata: [String: String] = [
            "judge_cached": verdict.cached ? "true" : "false",
            "judge_latency_ms": NumberText.format(latency),
        ]
        if let tokens = verdict.inputTokens { metadata["judge_input_tokens"] = String(tokens) }
        if let tokens = verdict.outputTokens { metadata["judge_output_tokens"] = String(tokens) }
        return metadata
    }
}
