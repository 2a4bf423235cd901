/// Size and depth limits applied to each message before and while it is decoded.
public struct DecodeLimits: Sendable, Equatable {
    /// Kafka's default maximum message size (`message.max.bytes`), 1 MiB.
    public static let defaultMaxMessageBytes = 1_048_576

    /// Larger payloads are rejected as ``RejectionReason/tooLarge`` without being parsed.
    public var maxMessageBytes: Int
    /// The deepest nesting of JSON arrays/objects accepted, in the payload and in each
    /// JSON-encoded attribute value.
    public var maxNestingDepth: Int

    public init(
        maxMessageBytes: Int = DecodeLimits.defaultMaxMessageBytes,
        maxNestingDepth: Int = JSONParser.defaultMaxDepth
    ) {
        self.maxMessageBytes = maxMessageBytes
        self.maxNestingDepth = maxNestingDepth
    }
}

/// Why a message did not become a trace. The raw values are stored in the dead-letter table,
/// so they must never change.
public enum RejectionReason: String, Sendable, Equatable, CaseIterable {
    /// The message value was null (a Kafka tombstone).
    case tombstone = "tombstone"
    /// The message value was zero bytes.
    case emptyPayload = "empty_payload"
    /// The message value exceeded ``DecodeLimits/maxMessageBytes``.
    case tooLarge = "too_large"
    /// The message value is not a JSON document.
    case invalidJSON = "invalid_json"
    /// The message is JSON that looks like an MLflow trace but has a missing or mistyped field.
    case invalidShape = "invalid_shape"
    /// The message is JSON, but in no format Assay decodes (yet).
    case unsupportedFormat = "unsupported_format"
    /// The message is not a valid protobuf message of the expected type (OTLP `ExportTraceServiceRequest`).
    case invalidProtobuf = "invalid_protobuf"
    /// The message decodes but breaks a configured abuse limit (spans per message or trace,
    /// attribute bytes, nesting depth); the detail names the limit.
    case limitExceeded = "limit_exceeded"
}

/// A message that could not be decoded into a ``Trace``: the stable reason plus a short,
/// human-readable detail.
///
/// The detail names JSON paths (`info.request_time`, `data.spans[3].span_id`), byte offsets,
/// sizes, and at most short field values (truncated); it never includes whole payload content.
public struct TraceRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: RejectionReason
    public var detail: String

    public init(reason: RejectionReason, detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "\(reason.rawValue): \(detail)" }
}

/// Turns one Kafka message value into a ``Trace``, or says why it cannot.
///
/// Checks run in this order, and the first that fails decides the ``RejectionReason``:
/// 1. null value → `tombstone`;
/// 2. zero bytes → `empty_payload`;
/// 3. more than ``DecodeLimits/maxMessageBytes`` → `too_large`;
/// 4. not a JSON document (see ``JSONParser``) → `invalid_json`;
/// 5. JSON in no known shape (a top-level array, OTLP JSON, an object without `info`/`data`)
///    → `unsupported_format`;
/// 6. an MLflow trace (3.x `info.trace_id` or 2.x `info.request_id` shape) with a missing or
///    mistyped field, a bad id or timestamp, or a repeated span id → `invalid_shape`.
///
/// Decoding is pure and thread-safe.
public enum MessageDecoding {
    /// Decodes a message value; `payload == nil` is a tombstone.
    ///
    /// With `compactPayloads`, spans hold their inputs and outputs as ``CompactJSON`` (see
    /// ``Span/compactInputs``): cheaper when they are only written on, as ingest does.
    public static func decode(payload: [UInt8]?, limits: DecodeLimits = DecodeLimits(), compactPayloads: Bool = false) -> Result<Trace, TraceRejection> {
        guard let payload else { return .failure(tombstone) }
        return payload.withUnsafeBytes { decode(bytes: $0, limits: limits, compactPayloads: compactPayloads) }
    }

    /// Decodes a message value in place (for example librdkafka's payload pointer, with no copy);
    /// `payload == nil` is a tombstone. The buffer is only read during the call.
    public static func decode(payload: UnsafeRawBufferPointer?, limits: DecodeLimits = DecodeLimits(), compactPayloads: Bool = false) -> Result<Trace, TraceRejection> {
        guard let payload else { return .failure(tombstone) }
        return decode(bytes: payload, limits: limits, compactPayloads: compactPayloads)
    }

    /// Decodes an already parsed JSON document (steps 5 and 6 above).
    public static func decode(json: JSONValue, limits: DecodeLimits = DecodeLimits(), compactPayloads: Bool = false) -> Result<Trace, TraceRejection> {
        let attributeParser = JSONParser(maxDepth: limits.maxNestingDepth, loneSurrogates: .replace)
        return MLflowTraceDecoder(attributeParser: attributeParser, compactPayloads: compactPayloads).decode(json)
    }

    private static let tombstone = TraceRejection(
        reason: .tombstone, detail: "message value is null (Kafka tombstone)")

    private static func decode(bytes: UnsafeRawBufferPointer, limits: DecodeLimits, compactPayloads: Bool) -> Result<Trace, TraceRejection> {
        if bytes.isEmpty {
            return .failure(TraceRejection(reason: .emptyPayload, detail: "message value is 0 bytes"))
        }
        if bytes.count > limits.maxMessageBytes {
            return .failure(TraceRejection(
                reason: .tooLarge,
                detail: "message value is \(bytes.count) bytes, over the limit of \(limits.maxMessageBytes)"))
        }
        let parser = JSONParser(maxDepth: limits.maxNestingDepth, loneSurrogates: .replace)
        let json: JSONValue
        do throws(JSONParseError) {
            json = try parser.parse(bytes)
        } catch {
            return .failure(rejection(parsing: error, maxDepth: limits.maxNestingDepth))
        }
        return MLflowTraceDecoder(attributeParser: parser, compactPayloads: compactPayloads).decode(json)
    }

    /// Why a payload that did not parse is refused: valid JSON nested deeper than the limit is
    /// `limit_exceeded` (a size rule, like OTLP's), anything else `invalid_json`.
    public static func rejection(parsing error: JSONParseError, maxDepth: Int) -> TraceRejection {
        if error.reason == .nestingTooDeep {
            return TraceRejection(reason: .limitExceeded, detail: "JSON nested more than \(maxDepth) levels at byte \(error.offset)")
        }
        return TraceRejection(reason: .invalidJSON, detail: "not JSON: \(error.description)")
    }
}
