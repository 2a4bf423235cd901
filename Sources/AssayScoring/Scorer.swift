// The scorer abstraction: what every scorer (code check or LLM judge) produces, and how its
// outcomes become assessments (DESIGN §2 invariant 7, §4).

import AssayCore

/// Something that looks at a trace and concludes: a deterministic code check, or (later) an LLM judge.
///
/// A scorer decides *not applicable* itself, before any judge call, when its inputs are missing
/// (no response, no RETRIEVER span, no duration…), so such traces are counted and never billed.
public protocol Scorer: Sendable {
    /// The configured name: the `assessment_name` of its main outcome.
    var name: String { get }
    /// The kind of scorer, as in the monitor config.
    var kind: ScorerKind { get }
    /// The scorer's implementation version (changes when its logic changes); written as
    /// `metadata.scorer_version`.
    var version: String { get }
    /// `CODE` for deterministic checks, `LLM_JUDGE` for judges.
    var sourceType: AssessmentSourceType { get }
    /// Who produced the assessment, e.g. `assay/code/latency@1`.
    var sourceID: String { get }

    /// Scores one trace. Code scorers return exactly one outcome; judges may return one per span
    /// or chunk plus aggregates. Never throws: failures are ``ScorerResult/error(code:message:)``.
    func score(_ trace: Trace, context: ScoringContext) async -> [ScorerOutcome]
}

/// Where a scoring call happens, for judges that keep per-window budgets.
public struct ScoringContext: Sendable, Hashable {
    /// Judge budgets (calls, tokens) are counted per key; the pipeline passes the window start,
    /// `assay evaluate` one key for the whole run.
    public var budgetKey: String

    public init(budgetKey: String = "") {
        self.budgetKey = budgetKey
    }
}

extension Scorer {
    /// Scores outside any window (one shared budget).
    public func score(_ trace: Trace) async -> [ScorerOutcome] {
        await score(trace, context: ScoringContext())
    }
}

/// One conclusion of a scorer about a trace (or one span of it), before it becomes an ``Assessment``.
public struct ScorerOutcome: Sendable, Equatable {
    /// The `assessment_name`: usually the scorer's name, e.g. `retrieval_relevance/precision` for
    /// a derived sub-result.
    public var assessmentName: String
    /// The span assessed, for per-span results (e.g. one per RETRIEVER span); nil for the trace.
    public var spanID: String?
    public var result: ScorerResult
    /// Extra context for `metadata` (never matched or sensitive text), e.g. `duration_ms`.
    /// Assay's standard metadata keys take precedence over these.
    public var extraMetadata: [String: String]

    public init(assessmentName: String, spanID: String? = nil, result: ScorerResult, extraMetadata: [String: String] = [:]) {
        self.assessmentName = assessmentName
        self.spanID = spanID
        self.result = result
        self.extraMetadata = extraMetadata
    }
}

/// What a scorer concluded.
public enum ScorerResult: Sendable, Equatable {
    /// A verdict (`yes` is always the passing answer) or a measurement, with its explanation.
    case value(FeedbackValue, rationale: String)
    /// The scorer does not apply to this trace (e.g. there is no response); counted, never judged.
    case notApplicable(reason: String)
    /// The scorer failed (after any retries); written as `feedback.error`.
    case error(code: String, message: String)
    /// The judge's per-window budget (calls or tokens) was used up before this trace: no
    /// assessment is written, and the window summary counts it as `budget_skipped`.
    case budgetSkipped(reason: String)
}

/// Where and when an outcome is recorded: everything an ``Assessment`` needs besides the outcome
/// and the scorer.
public struct AssessmentContext: Sendable, Equatable {
    /// The trace id as stored.
    public var traceID: String
    /// Start of the trace's event-time window.
    public var windowStartNanos: Int64
    /// The monitor config version the scorer ran under.
    public var configVersion: Int64
    /// The scorer's effective sample rate.
    public var sampleRate: Double
    /// Whether the trace arrived after its window closed.
    public var late: Bool
    /// `create_time` (and `last_update_time`) in milliseconds since the epoch.
    public var createTimeMillis: Int64

    public init(traceID: String, windowStartNanos: Int64, configVersion: Int64, sampleRate: Double, late: Bool, createTimeMillis: Int64) {
        self.traceID = traceID
        self.windowStartNanos = windowStartNanos
        self.configVersion = configVersion
        self.sampleRate = sampleRate
        self.late = late
        self.createTimeMillis = createTimeMillis
    }
}

extension ScorerOutcome {
    /// The assessment for this outcome.
    ///
    /// - id: ``Assessment/id(traceID:spanID:name:configVersion:)`` of the trace, span,
    ///   ``assessmentName`` and config version, so re-scoring is idempotent;
    /// - a value keeps its rationale; *not applicable* becomes a `null` value with the reason as
    ///   rationale; an error becomes `feedback.error` without rationale;
    /// - metadata: ``extraMetadata`` overlaid with ``Assessment/standardMetadata(windowStartNanos:configVersion:sampleRate:scorerVersion:late:)``
    ///   (the standard keys win; a `not_applicable` extra key is dropped, it is derived from the value).
    public func assessment(source: AssessmentSource, scorerVersion: String, context: AssessmentContext) -> Assessment {
        let feedback: Feedback
        let rationale: String?
        switch result {
        case .value(let value, let text):
            feedback = .value(value)
            rationale = text
        case .notApplicable(let reason):
            feedback = .value(.notApplicable)
            rationale = reason
        case .error(let code, let message):
            feedback = .error(code: code, message: message)
            rationale = nil
        case .budgetSkipped(let reason):
            // Callers drop these before writing; if one is turned into an assessment anyway,
            // it must not look like a verdict.
            feedback = .error(code: "BUDGET_SKIPPED", message: reason)
            rationale = nil
        }
        var metadata = extraMetadata
        metadata.removeValue(forKey: AssessmentMetadataKey.notApplicable)
        let standard = Assessment.standardMetadata(
            windowStartNanos: context.windowStartNanos, configVersion: context.configVersion,
            sampleRate: context.sampleRate, scorerVersion: scorerVersion, late: context.late
        )
        metadata.merge(standard) { _, standardValue in standardValue }
        return Assessment(
            assessmentID: Assessment.id(traceID: context.traceID, spanID: spanID, name: assessmentName, configVersion: context.configVersion),
            name: assessmentName,
            traceID: context.traceID,
            spanID: spanID,
            source: source,
            createTimeMillis: context.createTimeMillis,
            lastUpdateTimeMillis: context.createTimeMillis,
            feedback: feedback,
            rationale: rationale,
            metadata: metadata
        )
    }
}

extension Scorer {
    /// The scorer's assessment source (``sourceType`` and ``sourceID``).
    public var source: AssessmentSource {
        AssessmentSource(sourceType: sourceType, sourceID: sourceID)
    }

    /// `outcome` as an assessment from this scorer (see ``ScorerOutcome/assessment(source:scorerVersion:context:)``).
    public func assessment(for outcome: ScorerOutcome, context: AssessmentContext) -> Assessment {
        outcome.assessment(source: source, scorerVersion: version, context: context)
    }

    /// Scores `trace` and turns every outcome into an assessment.
    public func assessments(for trace: Trace, context: AssessmentContext) async -> [Assessment] {
        await score(trace).map { assessment(for: $0, context: context) }
    }
}
