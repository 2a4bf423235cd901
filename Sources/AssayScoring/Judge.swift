// The judge abstraction behind the predefined LLM scorers (DESIGN §4): an OpenAI-compatible
// HTTP judge, or the deterministic offline judge.

import AssayCore

/// What an LLM scorer asks a judge: the filled prompt (for real LLMs) and the structured
/// fields it was filled from (for the offline judge, which never reads prose).
public struct JudgeRequest: Sendable, Hashable {
    /// Which predefined scorer asks (`relevance_to_query`, `retrieval_groundedness`, ...).
    public var scorerKind: ScorerKind
    /// Identifies the prompt template, e.g. `relevance_to_query@1`; part of the cache key.
    public var promptVersion: String
    /// The system message.
    public var systemPrompt: String
    /// The user message: the template filled with the trace's fields.
    public var userPrompt: String
    /// The inputs the prompt was filled from.
    public var fields: JudgeFields

    public init(scorerKind: ScorerKind, promptVersion: String, systemPrompt: String, userPrompt: String, fields: JudgeFields) {
        self.scorerKind = scorerKind
        self.promptVersion = promptVersion
        self.systemPrompt = systemPrompt
        self.userPrompt = userPrompt
        self.fields = fields
    }
}

/// Structured judge inputs.
public struct JudgeFields: Sendable, Hashable {
    /// The user's request (root span inputs as text).
    public var request: String?
    /// The application's response (root span outputs as text).
    public var response: String?
    /// Retrieved context: documents of one retriever span (groundedness), or one chunk (chunk relevance).
    public var context: [String]
    /// Guideline texts (guidelines scorer).
    public var guidelines: [String]

    public init(request: String? = nil, response: String? = nil, context: [String] = [], guidelines: [String] = []) {
        self.request = request
        self.response = response
        self.context = context
        self.guidelines = guidelines
    }
}

/// A judge's yes/no answer.
public struct JudgeVerdict: Sendable, Equatable {
    /// `.yes` or `.no`.
    public var value: FeedbackValue
    public var rationale: String
    /// Tokens the call used (nil when unknown, e.g. the offline judge).
    public var inputTokens: Int?
    public var outputTokens: Int?
    /// Wall time of the call, including retries.
    public var latencyMillis: Double
    /// Answered from the response cache without a call.
    public var cached: Bool

    public init(value: FeedbackValue, rationale: String, inputTokens: Int? = nil, outputTokens: Int? = nil, latencyMillis: Double = 0, cached: Bool = false) {
        self.value = value
        self.rationale = rationale
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.latencyMillis = latencyMillis
        self.cached = cached
    }
}

/// Why a judge gave no verdict.
public enum JudgeFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The per-window budget (calls or tokens) is used up: the trace is counted
    /// `budget_skipped`, not an error.
    case budgetExhausted(String)
    /// The judge failed after its retries; `code` goes into `feedback.error.error_code`
    /// (e.g. `JUDGE_TIMEOUT`, `JUDGE_HTTP_500`, `JUDGE_UNPARSEABLE`, `JUDGE_TRANSPORT`).
    case failed(code: String, message: String)

    public var description: String {
        switch self {
        case .budgetExhausted(let reason): return "judge budget exhausted: \(reason)"
        case .failed(let code, let message): return "\(code): \(message)"
        }
    }
}

/// Something that answers yes/no questions about traces.
///
/// Implementations are safe to call concurrently. They never throw: every failure is a
/// ``JudgeFailure``, after whatever retries the implementation does.
public protocol Judge: Sendable {
    /// Written as the assessments' `source_id`, e.g. `assay/offline-judge@1` or `openai:gpt-4o-mini`.
    var sourceID: String { get }

    /// Answers one request. `context.budgetKey` scopes per-window budgets.
    func judge(_ request: JudgeRequest, context: ScoringContext) async -> Result<JudgeVerdict, JudgeFailure>
}
