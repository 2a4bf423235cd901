import AssayCore
import AssayOTLP

/// What one Kafka message turned out to be.
public enum DecodedMessage: Sendable {
    /// A whole MLflow trace.
    case trace(Trace)
    /// OTLP spans, grouped by trace, to be assembled with spans from other messages.
    case fragments([TraceFragment])
    /// Not a trace: a dead letter with this reason.
    case rejected(TraceRejection)
}

/// Decodes a trace message in any accepted format: MLflow trace JSON (MLflow 2 or 3), OTLP
/// JSON or OTLP protobuf.
///
/// The `content-type` header decides when it names protobuf or JSON; otherwise the bytes do:
/// binary OTLP starts with 0x0A (field 1, length-delimited), JSON with `{`. A JSON document
/// is parsed once and is OTLP when it has `resourceSpans`, MLflow otherwise.
public enum TraceMessageDecoder {
    /// Decodes one message value (nil: a tombstone).
    ///
    /// `compactPayloads`: MLflow spans hold their inputs and outputs as ``CompactJSON`` (see
    /// ``MessageDecoding/decode(payload:limits:compactPayloads:)``), as ingest wants them.
    public static func decode(payload: [UInt8]?, contentType: String?, limits: DecodeLimits, otlpLimits: OTLPLimits,
                              compactPayloads: Bool = false) -> DecodedMessage {
        guard let payload else { return .rejected(TraceRejection(reason: .tombstone, detail: "message value is null (Kafka tombstone)")) }
        if payload.isEmpty { return .rejected(TraceRejection(reason: .emptyPayload, detail: "message value is 0 bytes")) }
        if payload.count > limits.maxMessageBytes {
            return .rejected(TraceRejection(reason: .tooLarge, detail: "message value is \(payload.count) bytes, over the limit of \(limits.maxMessageBytes)"))
        }
        let declared = contentType.flatMap { OTLPDecoder.wireFormat(contentType: $0) }
        if declared == .protobuf {
            return otlp(OTLPDecoder.decode(payload: payload, contentType: "application/x-protobuf", limits: otlpLimits))
        }
        if declared == nil && payload.first == 0x0A {
            // Protobuf, unless it is JSON after a newline (0x0A is both).
            let protobuf = OTLPDecoder.decode(payload: payload, contentType: "application/x-protobuf", limits: otlpLimits)
            if case .success = protobuf { return otlp(protobuf) }
            if !startsLikeJSON(payload) { return otlp(protobuf) }
        }
        let parser = JSONParser(maxDepth: limits.maxNestingDepth, loneSurrogates: .replace)
        let document: JSONValue
        do throws(JSONParseError) {
            document = try parser.parse(payload)
        } catch {
            return .rejected(MessageDecoding.rejection(parsing: error, maxDepth: limits.maxNestingDepth))
        }
        if OTLPDecoder.isOTLPJSON(document) {
            return otlp(OTLPDecoder.decode(json: document, limits: otlpLimits))
        }
        switch MessageDecoding.decode(json: document, limits: limits, compactPayloads: compactPayloads) {
        case .success(let trace): return .trace(trace)
        case .failure(let rejection): return .rejected(rejection)
        }
    }

    private static func otlp(_ result: Result<[TraceFragment], TraceRejection>) -> DecodedMessage {
        switch result {
        case .success(let fragments): return .fragments(fragments)
        case .failure(let rejection): return .rejected(rejection)
        }
    }

    /// 0x0A is also a newline: a JSON document may start with whitespace then `{`.
    private static func startsLikeJSON(_ payload: [UInt8]) -> Bool {
        for byte in payload.prefix(64) {
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "{"): return true
            default: return false
            }
        }
        return false
    }
}
