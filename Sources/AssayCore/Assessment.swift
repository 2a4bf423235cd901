// Assessments: what a scorer concluded about a trace (DESIGN §2 invariant 7), in MLflow's
// Feedback JSON shape.

/// One scorer's verdict on one trace (or one span of it), as MLflow's `Feedback` assessment.
///
/// ## JSON (``json()``; `schemas/assessment.schema.json`)
/// ```json
/// {"assessment_id": "…uuid…", "assessment_name": "safety", "trace_id": "tr-…", "span_id": "…",
///  "source": {"source_type": "LLM_JUDGE", "source_id": "offline-judge/1"},
///  "create_time": "2026-02-03T13:00:53.476Z", "last_update_time": "2026-02-03T13:00:53.476Z",
///  "feedback": {"value": "yes"}, "rationale": "…", "metadata": {"config_version": "3", …},
///  "valid": true}
/// ```
/// - Keys are always written in the order above; `span_id` and `rationale` are left out when
///   nil; `metadata` keys are sorted. So one assessment always serialises to the same bytes:
///   downstream never sees two different documents for one `assessment_id`.
/// - Times are RFC 3339 UTC strings with exactly three fraction digits (MLflow's own JSON uses
///   this form for its timestamps); ``createTimeMillis`` keeps the integer.
/// - A failed scorer writes `"feedback": {"error": {"error_code": …, "error_message": …}}` and no value.
///
/// ## Not applicable
/// MLflow has no "not applicable" value. Assay writes `"feedback": {"value": null}`, adds
/// `"not_applicable": "true"` to `metadata`, and puts the reason in `rationale`
/// (``FeedbackValue/notApplicable``). The `not_applicable` metadata entry is always derived from
/// the feedback: ``json()`` ignores any `not_applicable` key in ``metadata``, and ``init(json:)``
/// removes it again. A null value without it, or the key beside a non-null value, is rejected.
public struct Assessment: Sendable, Equatable {
    /// ``id(traceID:spanID:name:configVersion:)``, a lowercase UUID.
    public var assessmentID: String
    /// The scorer's name (`assessment_name`).
    public var name: String
    /// The trace id as stored (as the producer sent it).
    public var traceID: String
    /// The span assessed, for per-span scorers (e.g. one per RETRIEVER span).
    public var spanID: String?
    public var source: AssessmentSource
    public var createTimeMillis: Int64
    public var lastUpdateTimeMillis: Int64
    public var feedback: Feedback
    /// Why the scorer decided so (or why it did not apply).
    public var rationale: String?
    /// Context: see ``AssessmentMetadataKey`` for the entries Assay always writes.
    public var metadata: [String: String]
    /// False when the assessment has been superseded (MLflow's `valid`).
    public var valid: Bool

    public init(
        assessmentID: String,
        name: String,
        traceID: String,
        spanID: String?,
        source: AssessmentSource,
        createTimeMillis: Int64,
        lastUpdateTimeMillis: Int64,
        feedback: Feedback,
        rationale: String?,
        metadata: [String: String],
        valid: Bool = true
    ) {
        self.assessmentID = assessmentID
        self.name = name
        self.traceID = traceID
        self.spanID = spanID
        self.source = source
        self.createTimeMillis = createTimeMillis
        self.lastUpdateTimeMillis = lastUpdateTimeMillis
        self.feedback = feedback
        self.rationale = rationale
        self.metadata = metadata
        self.valid = valid
    }

    /// Whether the scorer did not apply to the trace.
    public var isNotApplicable: Bool {
        feedback == .value(.notApplicable)
    }

    // MARK: Ids

    /// The fixed UUIDv5 namespace of assessment ids. Never change it: every id derives from it.
    public static let idNamespace = "d722b8c3-cd4b-4332-9554-7d676c8ae792"

    private static let idNamespaceBytes: [UInt8] = [
        0xd7, 0x22, 0xb8, 0xc3, 0xcd, 0x4b, 0x43, 0x32, 0x95, 0x54, 0x7d, 0x67, 0x6c, 0x8a, 0xe7, 0x92,
    ]

    /// The assessment id: UUIDv5 (RFC 9562 §5.5, SHA-1) in ``idNamespace`` of the name
    /// `"<traceID>|<spanID or empty>|<name>|<configVersion>"`, lowercase and hyphenated.
    ///
    /// Re-scoring the same trace under the same config version yields the same id, so the
    /// insert is idempotent; a new config version yields new ids.
    public static func id(traceID: String, spanID: String?, name: String, configVersion: Int64) -> String {
        uuidV5(namespace: idNamespaceBytes, name: "\(traceID)|\(spanID ?? "")|\(name)|\(configVersion)")
    }

    /// RFC 9562 name-based UUID, version 5.
    static func uuidV5(namespace: [UInt8], name: String) -> String {
        var hasher = SHA1()
        hasher.update(namespace)
        hasher.update(name.utf8)
        var bytes = Array(hasher.finalize().prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = OTelIdentifier.hexString(bytes)
        let utf8 = Array(hex.utf8)
        func part(_ range: Range<Int>) -> String { String(decoding: utf8[range], as: UTF8.self) }
        return [part(0..<8), part(8..<12), part(12..<16), part(16..<20), part(20..<32)].joined(separator: "-")
    }

    /// Whether `text` is a lowercase hyphenated UUID (`8-4-4-4-12` hex digits).
    static func isLowercaseUUID(_ text: String) -> Bool {
        let utf8 = Array(text.utf8)
        guard utf8.count == 36 else { return false }
        for (index, byte) in utf8.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) else { return false }
            }
        }
        return true
    }

    // MARK: Metadata

    /// The metadata Assay writes on every assessment (DESIGN invariant 7 and 9).
    ///
    /// `window_start` is RFC 3339 UTC (fraction digits only when not a whole second),
    /// `sample_rate` is the effective rate as a JSON-style number (`"0.4"`, `"1.0"`), `late` is
    /// `"true"` or `"false"`.
    public static func standardMetadata(
        windowStartNanos: Int64,
        configVersion: Int64,
        sampleRate: Double,
        scorerVersion: String,
        late: Bool
    ) -> [String: String] {
        [
            AssessmentMetadataKey.windowStart: TimeFormatting.rfc3339(nanos: windowStartNanos, fraction: .shortestExact),
            AssessmentMetadataKey.configVersion: String(configVersion),
            AssessmentMetadataKey.sampleRate: sampleRate.description,
            AssessmentMetadataKey.scorerVersion: scorerVersion,
            AssessmentMetadataKey.late: late ? "true" : "false",
        ]
    }

    // MARK: JSON

    /// The MLflow-shaped JSON, with a fixed key order (see the type's documentation).
    public func json() -> JSONValue {
        var object = JSONObject()
        object["assessment_id"] = .string(assessmentID)
        object["assessment_name"] = .string(name)
        object["trace_id"] = .string(traceID)
        if let spanID { object["span_id"] = .string(spanID) }
        object["source"] = .object([
            "source_type": .string(source.sourceType.rawValue),
            "source_id": .string(source.sourceID),
        ])
        let created = TimeFormatting.rfc3339(millis: createTimeMillis)
        object["create_time"] = .string(created)
        // Usually the same instant (a new assessment): formatted once.
        object["last_update_time"] = .string(lastUpdateTimeMillis == createTimeMillis ? created : TimeFormatting.rfc3339(millis: lastUpdateTimeMillis))
        switch feedback {
        case .value(let value):
            object["feedback"] = .object(["value": value.json()])
        case .error(let code, let message):
            object["feedback"] = .object([
                "error": .object(["error_code": .string(code), "error_message": .string(message)]),
            ])
        }
        if let rationale { object["rationale"] = .string(rationale) }
        var entries = metadata.filter { $0.key != AssessmentMetadataKey.notApplicable }
        if isNotApplicable { entries[AssessmentMetadataKey.notApplicable] = "true" }
        object["metadata"] = .object(JSONObject(entries.sorted { $0.key < $1.key }.map { (key: $0.key, value: .string($0.value)) }))
        object["valid"] = .bool(valid)
        return .object(object)
    }

    /// `json().serialized()`, written straight to UTF-8 without building the tree: the same
    /// bytes (the tests compare them), at a fraction of the allocations. This is the document
    /// stored with every assessment and published as its message.
    public func document() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(320 + (rationale?.utf8.count ?? 0))
        func key(_ name: StaticString, first: Bool = false) {
            if !first { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        }
        func string(_ text: String) { JSONWriter.writeString(text, into: &out) }
        out.append(UInt8(ascii: "{"))
        key("assessment_id", first: true); string(assessmentID)
        key("assessment_name"); string(name)
        key("trace_id"); string(traceID)
        if let spanID { key("span_id"); string(spanID) }
        key("source"); out.append(UInt8(ascii: "{"))
        key("source_type", first: true); string(source.sourceType.rawValue)
        key("source_id"); string(source.sourceID)
        out.append(UInt8(ascii: "}"))
        let created = TimeFormatting.rfc3339(millis: createTimeMillis)
        key("create_time"); string(created)
        key("last_update_time"); string(lastUpdateTimeMillis == createTimeMillis ? created : TimeFormatting.rfc3339(millis: lastUpdateTimeMillis))
        key("feedback"); out.append(UInt8(ascii: "{"))
        switch feedback {
        case .value(let value):
            key("value", first: true); JSONWriter.write(value.json(), into: &out)
        case .error(let code, let message):
            key("error", first: true); out.append(UInt8(ascii: "{"))
            key("error_code", first: true); string(code)
            key("error_message"); string(message)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
        if let rationale { key("rationale"); string(rationale) }
        key("metadata"); out.append(UInt8(ascii: "{"))
        // As json() has them, without building a second dictionary (keys are unique).
        var entries: [(key: String, value: String)] = []
        entries.reserveCapacity(metadata.count + 1)
        for entry in metadata where entry.key != AssessmentMetadataKey.notApplicable { entries.append(entry) }
        if isNotApplicable { entries.append((AssessmentMetadataKey.notApplicable, "true")) }
        entries.sort { $0.key < $1.key }
        for (index, entry) in entries.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            string(entry.key)
            out.append(UInt8(ascii: ":"))
            string(entry.value)
        }
        out.append(UInt8(ascii: "}"))
        key("valid"); JSONWriter.write(.bool(valid), into: &out)
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses the JSON written by ``json()`` (unknown keys are rejected).
    public init(json: JSONValue) throws(AssessmentDecodingError) {
        let object = try Self.object(json, at: "")
        try Self.rejectUnknownKeys(
            object, allowed: ["assessment_id", "assessment_name", "trace_id", "span_id", "source", "create_time",
                              "last_update_time", "feedback", "rationale", "metadata", "valid"], at: "")
        let id = try Self.string(object, "assessment_id", at: "")
        guard Self.isLowercaseUUID(id) else {
            throw AssessmentDecodingError(path: "assessment_id", message: "must be a lowercase UUID")
        }
        let name = try Self.string(object, "assessment_name", at: "")
        guard !name.isEmpty else { throw AssessmentDecodingError(path: "assessment_name", message: "must not be empty") }
        let traceID = try Self.string(object, "trace_id", at: "")
        guard !traceID.isEmpty else { throw AssessmentDecodingError(path: "trace_id", message: "must not be empty") }
        let spanID = try Self.optionalString(object, "span_id", at: "")

        let sourceObject = try Self.object(object["source"], at: "source")
        try Self.rejectUnknownKeys(sourceObject, allowed: ["source_type", "source_id"], at: "source")
        let sourceTypeText = try Self.string(sourceObject, "source_type", at: "source")
        guard let sourceType = AssessmentSourceType(rawValue: sourceTypeText) else {
            throw AssessmentDecodingError(path: "source.source_type", message: "must be LLM_JUDGE, CODE or HUMAN")
        }
        let sourceID = try Self.string(sourceObject, "source_id", at: "source")

        let createTime = try Self.millis(object, "create_time")
        let updateTime = try Self.millis(object, "last_update_time")

        var metadata: [String: String] = [:]
        if let metadataValue = object["metadata"] {
            let metadataObject = try Self.object(metadataValue, at: "metadata")
            for (key, value) in metadataObject.entries {
                guard case .string(let text) = value else {
                    throw AssessmentDecodingError(path: "metadata.\(key)", message: "must be a string")
                }
                metadata[key] = text
            }
        }
        let markedNotApplicable = metadata.removeValue(forKey: AssessmentMetadataKey.notApplicable)
        if let markedNotApplicable, markedNotApplicable != "true" {
            throw AssessmentDecodingError(path: "metadata.not_applicable", message: "must be \"true\" when present")
        }

        let feedbackObject = try Self.object(object["feedback"], at: "feedback")
        let feedback: Feedback
        if let errorValue = feedbackObject["error"] {
            try Self.rejectUnknownKeys(feedbackObject, allowed: ["error"], at: "feedback")
            let errorObject = try Self.object(errorValue, at: "feedback.error")
            try Self.rejectUnknownKeys(errorObject, allowed: ["error_code", "error_message"], at: "feedback.error")
            feedback = .error(
                code: try Self.string(errorObject, "error_code", at: "feedback.error"),
                message: try Self.string(errorObject, "error_message", at: "feedback.error")
            )
            guard markedNotApplicable == nil else {
                throw AssessmentDecodingError(path: "metadata.not_applicable", message: "an error assessment cannot be not applicable")
            }
        } else {
            try Self.rejectUnknownKeys(feedbackObject, allowed: ["value"], at: "feedback")
            guard let value = feedbackObject["value"] else {
                throw AssessmentDecodingError(path: "feedback", message: "needs a value or an error")
            }
            switch value {
            case .null:
                guard markedNotApplicable != nil else {
                    throw AssessmentDecodingError(path: "feedback.value", message: "null is allowed only with metadata.not_applicable = \"true\"")
                }
                feedback = .value(.notApplicable)
            default:
                guard markedNotApplicable == nil else {
                    throw AssessmentDecodingError(path: "metadata.not_applicable", message: "a not-applicable assessment must have a null value")
                }
                guard let parsed = FeedbackValue(json: value) else {
                    throw AssessmentDecodingError(path: "feedback.value", message: "must be a string, number, boolean or null")
                }
                feedback = .value(parsed)
            }
        }

        let rationale = try Self.optionalString(object, "rationale", at: "")
        guard case .bool(let valid)? = object["valid"] else {
            throw AssessmentDecodingError(path: "valid", message: "must be true or false")
        }
        self.init(
            assessmentID: id, name: name, traceID: traceID, spanID: spanID,
            source: AssessmentSource(sourceType: sourceType, sourceID: sourceID),
            createTimeMillis: createTime, lastUpdateTimeMillis: updateTime,
            feedback: feedback, rationale: rationale, metadata: metadata, valid: valid
        )
    }

    private static func join(_ base: String, _ key: String) -> String {
        base.isEmpty ? key : "\(base).\(key)"
    }

    private static func object(_ value: JSONValue?, at path: String) throws(AssessmentDecodingError) -> JSONObject {
        guard case .object(let object)? = value else {
            throw AssessmentDecodingError(path: path, message: value == nil ? "is required" : "must be an object")
        }
        return object
    }

    private static func rejectUnknownKeys(_ object: JSONObject, allowed: Set<String>, at path: String) throws(AssessmentDecodingError) {
        var seen: Set<String> = []
        for key in object.keys {
            guard allowed.contains(key) else {
                throw AssessmentDecodingError(path: join(path, key), message: "unknown field")
            }
            guard seen.insert(key).inserted else {
                throw AssessmentDecodingError(path: join(path, key), message: "appears more than once")
            }
        }
    }

    private static func string(_ object: JSONObject, _ key: String, at path: String) throws(AssessmentDecodingError) -> String {
        guard case .string(let text)? = object[key] else {
            throw AssessmentDecodingError(path: join(path, key), message: object[key] == nil ? "is required" : "must be a string")
        }
        return text
    }

    private static func optionalString(_ object: JSONObject, _ key: String, at path: String) throws(AssessmentDecodingError) -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw AssessmentDecodingError(path: join(path, key), message: "must be a string")
        }
    }

    private static func millis(_ object: JSONObject, _ key: String) throws(AssessmentDecodingError) -> Int64 {
        let text = try string(object, key, at: "")
        guard let nanos = TimeParsing.rfc3339Nanoseconds(text) else {
            throw AssessmentDecodingError(path: key, message: "must be an RFC 3339 timestamp")
        }
        return TimeFormatting.floorDivide(nanos, 1_000_000).quotient
    }
}

/// Why a JSON document is not an ``Assessment``: the path of the offending field and a message.
public struct AssessmentDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Dotted path of the field (`feedback.value`), empty for the document itself.
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Who or what produced an assessment (MLflow's `AssessmentSource`).
public struct AssessmentSource: Sendable, Equatable {
    public var sourceType: AssessmentSourceType
    /// The judge or scorer identity, e.g. `openai:gpt-4o-mini` or `assay/latency@1`. An offline
    /// stand-in judge must say so here.
    public var sourceID: String

    public init(sourceType: AssessmentSourceType, sourceID: String) {
        self.sourceType = sourceType
        self.sourceID = sourceID
    }
}

/// MLflow's assessment source types.
public enum AssessmentSourceType: String, Sendable, Equatable, CaseIterable {
    case llmJudge = "LLM_JUDGE"
    case code = "CODE"
    case human = "HUMAN"
}

/// The outcome carried by an assessment: a value, or the error that prevented one.
public enum Feedback: Sendable, Equatable {
    case value(FeedbackValue)
    /// The scorer failed (after its retries); written as `feedback.error`.
    case error(code: String, message: String)
}

/// A feedback value.
///
/// - ``yes`` / ``no`` are written as the strings `"yes"` / `"no"`, as MLflow's judges do; a
///   ``text(_:)`` of exactly `"yes"` or `"no"` is the same value (it compares equal and parses
///   back as ``yes`` / ``no``).
/// - ``number(_:)`` writes integral values up to 2^53 without a fraction (`5`, not `5.0`), other
///   finite values in Swift's shortest round-trip form; NaN and infinities, which JSON lacks, are
///   written as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (and so parse back as text).
/// - ``notApplicable`` is written as `null` (see ``Assessment``).
public enum FeedbackValue: Sendable, Equatable {
    case yes
    case no
    case bool(Bool)
    case number(Double)
    case text(String)
    /// The scorer does not apply to this trace; the reason goes in the rationale.
    case notApplicable

    /// Whether the value counts as a pass in window summaries: `yes` and `true`.
    public var isPass: Bool {
        switch canonical {
        case .yes, .bool(true): return true
        default: return false
        }
    }

    private var canonical: FeedbackValue {
        switch self {
        case .text("yes"): return .yes
        case .text("no"): return .no
        default: return self
        }
    }

    public static func == (lhs: FeedbackValue, rhs: FeedbackValue) -> Bool {
        switch (lhs.canonical, rhs.canonical) {
        case (.yes, .yes), (.no, .no), (.notApplicable, .notApplicable): return true
        case (.bool(let left), .bool(let right)): return left == right
        case (.number(let left), .number(let right)): return left == right
        case (.text(let left), .text(let right)): return left == right
        default: return false
        }
    }

    /// The JSON form of the value.
    public func json() -> JSONValue {
        switch canonical {
        case .yes: return "yes"
        case .no: return "no"
        case .bool(let flag): return .bool(flag)
        case .number(let number): return Self.numberJSON(number)
        case .text(let text): return .string(text)
        case .notApplicable: return .null
        }
    }

    /// The value of a JSON string, number or boolean (`null` is ``notApplicable`` only together
    /// with the metadata marker, so it is not decoded here).
    init?(json: JSONValue) {
        switch json {
        case .string("yes"): self = .yes
        case .string("no"): self = .no
        case .string(let text): self = .text(text)
        case .bool(let flag): self = .bool(flag)
        case .number(let lexeme):
            guard let number = Double(lexeme), number.isFinite else { return nil }
            self = .number(number)
        default: return nil
        }
    }

    /// A JSON number for `value`: integral values within ±2^53 without a fraction.
    static func numberJSON(_ value: Double) -> JSONValue {
        guard value.isFinite else {
            return .string(value.isNaN ? "NaN" : (value > 0 ? "Infinity" : "-Infinity"))
        }
        if value == value.rounded(), value.magnitude <= 0x1p53 {
            return .number(String(Int64(value)))
        }
        return .number(value.description)
    }
}

/// Metadata keys Assay writes on assessments.
public enum AssessmentMetadataKey {
    /// Start of the trace's event-time window, RFC 3339 UTC.
    public static let windowStart = "window_start"
    /// The monitor config version the scorer ran under.
    public static let configVersion = "config_version"
    /// The effective sample rate of the scorer.
    public static let sampleRate = "sample_rate"
    /// The scorer implementation's version.
    public static let scorerVersion = "scorer_version"
    /// `"true"` when the trace arrived after its window closed.
    public static let late = "late"
    /// `"true"` on not-applicable assessments; derived from the feedback, never set by hand.
    public static let notApplicable = "not_applicable"
}
