import AssayCore

/// Size and abuse limits for OTLP decoding and trace assembly.
///
/// Every limit is checked before or while the data is read, so a hostile message is rejected
/// (``RejectionReason/tooLarge`` for the message size, ``RejectionReason/limitExceeded`` for the
/// others) instead of crashing the decoder or making it allocate without bound. Memory use while
/// decoding is proportional to the message size, which ``maxMessageBytes`` caps.
public struct OTLPLimits: Sendable, Equatable {
    /// Kafka's default maximum message size (`message.max.bytes`), 1 MiB; the Collector's Kafka
    /// exporter defaults to about the same (`producer.max_message_bytes` = 1,000,000).
    public static let defaultMaxMessageBytes = 1_048_576

    /// Larger messages are rejected as `too_large` without being parsed.
    public var maxMessageBytes: Int
    /// The most spans one message may hold (all traces together).
    public var maxSpansPerMessage: Int
    /// The most distinct spans one assembled trace may hold (``TraceAssembler``); a message that
    /// would take a trace over it is rejected whole.
    public var maxSpansPerTrace: Int
    /// The largest attribute value, in bytes: the UTF-8 length of a string (base64 text for
    /// bytes), summed over the keys and elements of a list or map value. Also applies to span
    /// names, event names and status messages.
    public var maxAttributeValueBytes: Int
    /// The deepest nesting of list/map values (`arrayValue`, `kvlistValue`) in one attribute
    /// value; a scalar has depth 0. JSON text inside string attributes (`input.value`,
    /// `mlflow.spanInputs`, `gen_ai.input.messages`) is parsed only up to this depth and kept as
    /// a plain string when deeper.
    public var maxNestingDepth: Int

    /// The defaults: 1 MiB messages, 10,000 spans per message and per trace, 256 KiB attribute
    /// values and 32 levels of nesting.
    public init(
        maxMessageBytes: Int = OTLPLimits.defaultMaxMessageBytes,
        maxSpansPerMessage: Int = 10_000,
        maxSpansPerTrace: Int = 10_000,
        maxAttributeValueBytes: Int = 256 * 1024,
        maxNestingDepth: Int = 32
    ) {
        self.maxMessageBytes = maxMessageBytes
        self.maxSpansPerMessage = maxSpansPerMessage
        self.maxSpansPerTrace = maxSpansPerTrace
        self.maxAttributeValueBytes = maxAttributeValueBytes
        self.maxNestingDepth = maxNestingDepth
    }

    /// Nesting allowed to the whole OTLP/JSON document: the envelope
    /// (`resourceSpans[].scopeSpans[].spans[].events[].attributes[].value`, 12 levels) plus three
    /// JSON levels per AnyValue level (`{"arrayValue": {"values": [ … ]}}`).
    var jsonDocumentDepth: Int { 16 + 3 * max(0, maxNestingDepth) }

    /// The protobuf message nesting allowed: the envelope (request, resource spans, scope spans,
    /// span, event, key/value, value: 7) plus up to three messages per AnyValue level
    /// (`KeyValueList`, `KeyValue`, `AnyValue`).
    var protobufMessageDepth: Int { 10 + 3 * max(0, maxNestingDepth) }
}
