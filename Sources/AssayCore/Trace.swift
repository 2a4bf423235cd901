/// One LLM-application trace in Assay's canonical form, whatever wire format it came in.
///
/// Times are nanoseconds since the Unix epoch in `Int64` (never `Double`: nanosecond
/// timestamps exceed 2^53).
public struct Trace: Sendable, Equatable {
    /// The id as the producer sent it: `tr-<32 hex>` for MLflow 3, the request id for MLflow 2.
    public var traceID: String
    /// The wire format the trace was decoded from.
    public var format: TraceFormat
    /// When the request started (event time; windows are keyed on it).
    public var requestTimeNanos: Int64
    /// Wall-clock duration of the whole request, when known.
    public var executionDurationMillis: Int64?
    public var state: TraceState
    public var clientRequestID: String?
    /// Short text of the request and response, as the producer summarised them.
    public var requestPreview: String?
    public var responsePreview: String?
    public var tags: [String: String]
    public var metadata: [String: String]
    public var spans: [Span]

    public init(
        traceID: String,
        format: TraceFormat,
        requestTimeNanos: Int64,
        executionDurationMillis: Int64?,
        state: TraceState,
        clientRequestID: String?,
        requestPreview: String?,
        responsePreview: String?,
        tags: [String: String],
        metadata: [String: String],
        spans: [Span]
    ) {
        self.traceID = traceID
        self.format = format
        self.requestTimeNanos = requestTimeNanos
        self.executionDurationMillis = executionDurationMillis
        self.state = state
        self.clientRequestID = clientRequestID
        self.requestPreview = requestPreview
        self.responsePreview = responsePreview
        self.tags = tags
        self.metadata = metadata
        self.spans = spans
    }

    /// The span without a parent, if exactly one such span exists.
    public var rootSpan: Span? {
        rootSpanIndex.map { spans[$0] }
    }

    /// The index in ``spans`` of ``rootSpan``, found without copying spans.
    public var rootSpanIndex: Int? {
        var root: Int?
        for index in spans.indices where spans[index].parentSpanID == nil {
            if root != nil { return nil }
            root = index
        }
        return root
    }
}

/// Wire formats Assay decodes.
public enum TraceFormat: String, Sendable, Equatable, CaseIterable {
    /// MLflow 3 `Trace.to_json()`: `info.trace_id`, RFC 3339 `request_time`, `state`.
    case mlflow3
    /// MLflow 2 `Trace.to_json()`: `info.request_id`, `timestamp_ms`, `status`.
    case mlflow2
    /// OpenTelemetry OTLP trace export (protobuf or JSON), assembled from spans by trace id.
    case otlp
}

/// The outcome of a whole trace.
public enum TraceState: String, Sendable, Equatable, CaseIterable {
    case ok = "OK"
    case error = "ERROR"
    case inProgress = "IN_PROGRESS"
    case unspecified = "STATE_UNSPECIFIED"
}

/// One operation inside a trace.
///
/// Equal spans have equal fields; ``inputs`` and ``outputs`` compare as values, whether they
/// are held as values or as ``CompactJSON``. (`==` is written out: a new field must join it.)
public struct Span: Sendable, Equatable {
    /// 16 lowercase hex digits.
    public var spanID: String
    /// 16 lowercase hex digits, or nil for a root span.
    public var parentSpanID: String?
    public var name: String
    /// MLflow span type (`AGENT`, `CHAIN`, `RETRIEVER`, `CHAT_MODEL`, `TOOL`, ...), if set.
    public var spanType: String?
    public var startTimeNanos: Int64
    public var endTimeNanos: Int64?
    public var status: SpanStatus
    /// The span's inputs and outputs (MLflow `mlflow.spanInputs` / `mlflow.spanOutputs`, JSON-decoded).
    ///
    /// A decoder may hold them as ``compactInputs``/``compactOutputs`` instead (ingest does:
    /// it only writes them to PostgreSQL); reading these then builds the value each time.
    public var inputs: JSONValue? {
        get { compactInputs?.value ?? inputValue }
        set { inputValue = newValue; compactInputs = nil }
    }
    public var outputs: JSONValue? {
        get { compactOutputs?.value ?? outputValue }
        set { outputValue = newValue; compactOutputs = nil }
    }
    /// ``inputs`` as its compact serialization, when the decoder kept it that way.
    public private(set) var compactInputs: CompactJSON?
    /// ``outputs`` as its compact serialization, when the decoder kept it that way.
    public private(set) var compactOutputs: CompactJSON?
    private var inputValue: JSONValue?
    private var outputValue: JSONValue?
    /// Every other attribute. MLflow attribute values are JSON-encoded strings; they are
    /// stored decoded when they parse as JSON and as a plain string otherwise.
    ///
    /// A decoder may hold them as ``compactAttributes`` instead (ingest does); reading this
    /// then builds the map each time (a key that repeats keeps its last value, as `jsonb` does).
    public var attributes: [String: JSONValue] {
        get { compactAttributes.map(Self.attributeMap) ?? attributeValues }
        set { attributeValues = newValue; compactAttributes = nil }
    }
    /// ``attributes`` as the compact serialization of one JSON object, when the decoder kept
    /// them that way.
    public private(set) var compactAttributes: CompactJSON?
    private var attributeValues: [String: JSONValue]
    public var events: [SpanEvent]

    public init(
        spanID: String,
        parentSpanID: String?,
        name: String,
        spanType: String?,
        startTimeNanos: Int64,
        endTimeNanos: Int64?,
        status: SpanStatus,
        inputs: JSONValue?,
        outputs: JSONValue?,
        attributes: [String: JSONValue],
        events: [SpanEvent]
    ) {
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.spanType = spanType
        self.startTimeNanos = startTimeNanos
        self.endTimeNanos = endTimeNanos
        self.status = status
        self.inputValue = inputs
        self.outputValue = outputs
        self.attributeValues = attributes
        self.events = events
    }

    /// Holds the inputs and outputs as their compact serializations (nil: none).
    public mutating func setCompact(inputs: CompactJSON?, outputs: CompactJSON?) {
        inputValue = nil
        outputValue = nil
        compactInputs = inputs
        compactOutputs = outputs
    }

    /// Holds the attributes as the compact serialization of a JSON object (anything else
    /// reads as no attributes).
    public mutating func setCompact(attributes: CompactJSON) {
        attributeValues = [:]
        compactAttributes = attributes
    }

    private static func attributeMap(_ compact: CompactJSON) -> [String: JSONValue] {
        guard case .object(let object) = compact.value else { return [:] }
        return Dictionary(object.entries.lazy.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    public static func == (lhs: Span, rhs: Span) -> Bool {
        lhs.spanID == rhs.spanID && lhs.parentSpanID == rhs.parentSpanID && lhs.name == rhs.name
            && lhs.spanType == rhs.spanType && lhs.startTimeNanos == rhs.startTimeNanos
            && lhs.endTimeNanos == rhs.endTimeNanos && lhs.status == rhs.status
            && Self.sameValue(lhs.inputValue, lhs.compactInputs, rhs.inputValue, rhs.compactInputs)
            && Self.sameValue(lhs.outputValue, lhs.compactOutputs, rhs.outputValue, rhs.compactOutputs)
            && sameAttributes(lhs, rhs) && lhs.events == rhs.events
    }

    /// Equal bytes are equal attributes; otherwise the maps are compared.
    private static func sameAttributes(_ lhs: Span, _ rhs: Span) -> Bool {
        if let left = lhs.compactAttributes, let right = rhs.compactAttributes, left == right { return true }
        return lhs.attributes == rhs.attributes
    }

    private static func sameValue(_ lhsValue: JSONValue?, _ lhsCompact: CompactJSON?, _ rhsValue: JSONValue?, _ rhsCompact: CompactJSON?) -> Bool {
        switch (lhsCompact, rhsCompact) {
        case (nil, nil): return lhsValue == rhsValue
        // Equal bytes are equal values; unequal bytes may still be (Swift compares strings by
        // canonical equivalence).
        case (let lhs?, let rhs?): return lhs == rhs || lhs.value == rhs.value
        case (let lhs?, nil): return lhs.value == rhsValue
        case (nil, let rhs?): return lhsValue == rhs.value
        }
    }
}

/// A span's status (OpenTelemetry codes).
public struct SpanStatus: Sendable, Equatable {
    /// The OpenTelemetry status code (MLflow writes it as `STATUS_CODE_OK` etc.).
    public enum Code: String, Sendable, Equatable, CaseIterable {
        case unset = "UNSET"
        case ok = "OK"
        case error = "ERROR"
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String = "") {
        self.code = code
        self.message = message
    }
}

/// Something that happened at a point in a span (an exception, a log line).
public struct SpanEvent: Sendable, Equatable {
    public var name: String
    public var timeNanos: Int64
    public var attributes: [String: JSONValue]

    public init(name: String, timeNanos: Int64, attributes: [String: JSONValue]) {
        self.name = name
        self.timeNanos = timeNanos
        self.attributes = attributes
    }
}
