import AssayCore
import Foundation
import Kafka

/// The known set of messages a chaos run publishes.
struct Traffic: Sendable {
    /// One message, with where it must end up.
    struct Message: Sendable {
        var message: ProducerMessage
        /// The trace it carries (part of), or nil for poison.
        var traceID: String?
        var poisonKind: String?
    }

    var messages: [Message]
    /// Trace ids that must be stored, once each.
    var traceIDs: Set<String>
    var otlpTraces: Int
    var poison: Int
    var firstWindowNanos: Int64

    /// `count` traces over `windows` event-time windows of `width` that ended before now:
    /// about 70% MLflow JSON, 30% OTLP/JSON split over two messages (children, then root,
    /// on different partitions), and 1% poison messages of every kind.
    static func generate(count: Int, windows: Int, width: Int64, partitions: Int, seed: UInt64) -> Traffic {
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        let first = (now / width) * width - Int64(windows + 1) * width
        var generator = SyntheticTraceGenerator(seed: seed, startNanos: first, spacingNanos: Int64(windows) * width / Int64(count + 1))
        generator.maxPaddingBytes = 600
        var random = SplitMix64(seed: seed ^ 0x5EED)
        var messages: [Message] = []
        var ids = Set<String>()
        var otlp = 0
        var poison = 0
        for index in 0..<count {
            let generated = generator.next()
            ids.insert(generated.traceID)
            if random.unitInterval() < 0.3, case .success(let trace) = MessageDecoding.decode(payload: generated.json) {
                otlp += 1
                let parts = OTLPJSON.messages(for: trace)
                let firstPartition = Int32(random.next() % UInt64(partitions))
                for (part, bytes) in parts.enumerated() {
                    messages.append(Message(message: ProducerMessage(
                        topic: "traces", partition: (firstPartition + Int32(part)) % Int32(partitions), value: bytes,
                        headers: [(name: "content-type", value: Array("application/json".utf8))]), traceID: generated.traceID))
                }
            } else {
                messages.append(Message(message: ProducerMessage(topic: "traces", key: Array(generated.traceID.utf8), value: generated.json,
                                                                 headers: [(name: "content-type", value: Array("application/json".utf8))]),
                                        traceID: generated.traceID))
            }
            if index % 100 == 50 {
                let kind = poisonKinds[poison % poisonKinds.count]
                poison += 1
                messages.append(Message(message: ProducerMessage(topic: "traces", partition: Int32(poison % partitions),
                                                                 key: Array("poison-\(poison)".utf8), value: kind.1),
                                        traceID: nil, poisonKind: kind.0))
            }
        }
        return Traffic(messages: messages, traceIDs: ids, otlpTraces: otlp, poison: poison, firstWindowNanos: first)
    }

    static let poisonKinds: [(String, [UInt8]?)] = [
        ("invalid_json", Array(#"{"info": {"trace_id": "tr-"#.utf8)),
        ("tombstone", nil),
        ("empty_payload", []),
        ("invalid_shape", Array(#"{"info": {"trace_id": 12345, "request_time": "yesterday"}, "data": {"spans": "none"}}"#.utf8)),
        ("invalid_protobuf", [0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 0x01, 0x02]),
        ("unsupported_format", Array(#"[1, 2, 3]"#.utf8)),
    ]
}

/// OTLP/JSON for a decoded MLflow trace: MLflow attributes carry type, inputs and outputs, so
/// the OTLP decoder rebuilds the same trace. The root goes in the second message.
enum OTLPJSON {
    static func messages(for trace: Trace) -> [[UInt8]] {
        let hex = trace.canonicalTraceID
        let children = trace.spans.filter { $0.parentSpanID != nil }
        let roots = trace.spans.filter { $0.parentSpanID == nil }
        return [children, roots].filter { !$0.isEmpty }.map { spans in
            let document: JSONValue = .object([
                "resourceSpans": .array([.object([
                    "resource": .object(["attributes": .array([
                        attribute("service.name", .string("northwind-hr-assistant")),
                        attribute("deployment.environment.name", .string(trace.tags["env"] ?? "prod")),
                    ])]),
                    "scopeSpans": .array([.object([
                        "scope": .object(["name": "chaos"]),
                        "spans": .array(spans.map { span($0, traceHex: hex) }),
                    ])]),
                ])]),
            ])
            return document.serializedUTF8()
        }
    }

    static func span(_ span: Span, traceHex: String) -> JSONValue {
        var attributes: [JSONValue] = []
        if let type = span.spanType { attributes.append(attribute("mlflow.spanType", .string(JSONValue.string(type).serialized()))) }
        if let inputs = span.inputs { attributes.append(attribute("mlflow.spanInputs", .string(inputs.serialized()))) }
        if let outputs = span.outputs { attributes.append(attribute("mlflow.spanOutputs", .string(outputs.serialized()))) }
        if let usage = span.attributes["mlflow.chat.tokenUsage"] {
            attributes.append(attribute("mlflow.chat.tokenUsage", .string(usage.serialized())))
        }
        var object = JSONObject([
            (key: "traceId", value: .string(traceHex)),
            (key: "spanId", value: .string(span.spanID)),
            (key: "name", value: .string(span.name)),
            (key: "kind", value: 1),
            (key: "startTimeUnixNano", value: .string(String(span.startTimeNanos))),
            (key: "attributes", value: .array(attributes)),
            (key: "status", value: .object(span.status.code == .error ? ["code": 2, "message": .string(span.status.message)] : ["code": 1])),
        ])
        if let parent = span.parentSpanID { object["parentSpanId"] = .string(parent) }
        if let end = span.endTimeNanos { object["endTimeUnixNano"] = .string(String(end)) }
        return .object(object)
    }

    static func attribute(_ key: String, _ value: JSONValue) -> JSONValue {
        .object(["key": .string(key), "value": .object(["stringValue": value])])
    }
}
