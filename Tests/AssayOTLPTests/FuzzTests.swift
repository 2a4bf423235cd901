import AssayCore
@testable import AssayOTLP
import Foundation
import Testing

/// Random and mutated inputs through the whole decode → assemble → build path: no crash, no
/// hang, every input either decodes or is rejected with a reason.
///
/// The default run uses ``defaultIterations`` inputs. `ASSAY_OTLP_FUZZ_ITERATIONS=100000` (what
/// `make fuzz` sets, in a release build) runs more; `ASSAY_OTLP_FUZZ_SEED` changes the seed.
@Suite("OTLP fuzzing")
struct FuzzTests {
    static let defaultIterations = 5_000

    static var iterations: Int {
        ProcessInfo.processInfo.environment["ASSAY_OTLP_FUZZ_ITERATIONS"].flatMap(Int.init) ?? defaultIterations
    }

    static var seed: UInt64 {
        ProcessInfo.processInfo.environment["ASSAY_OTLP_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x0A55_A7_07_1F
    }

    /// The seed corpus: every sample message in both encodings and the broken samples.
    static func corpus() throws -> [[UInt8]] {
        var corpus: [[UInt8]] = []
        for message in try Fixtures.otlpMessages() {
            corpus.append(message.json)
            corpus.append(message.protobuf)
        }
        for name in ["bad/truncated.pb", "bad/wrong-shape-otlp.json", "bad/garbage-4k.bin"] {
            corpus.append(try Fixtures.bytes(name))
        }
        corpus.append(Array(#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0123456789abcdef0123456789abcdef","spanId":"00000000000000a1","name":"x","attributes":[{"key":"k","value":{"arrayValue":{"values":[{"kvlistValue":{"values":[{"key":"a","value":{"bytesValue":"AAEC"}}]}}]}}}]}]}]}]}"#.utf8))
        return corpus
    }

    static let interestingBytes: [UInt8] = [0x00, 0x01, 0x0A, 0x12, 0x22, 0x7F, 0x80, 0xFF, 0xFE, 0xC0, 0xED,
                                            UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "["), UInt8(ascii: "\""),
                                            UInt8(ascii: "\\"), UInt8(ascii: "0"), UInt8(ascii: "-"), UInt8(ascii: "e")]

    /// Replacement values for structure-aware JSON mutations: wrong types, edge numbers, and
    /// strings holding JSON in the shapes the mapping parses.
    static let replacements: [JSONValue] = [
        .null, true, 0, -1, .number("1e400"), .number("18446744073709551615"), .number("9223372036854775807"), "", "x",
        "0123456789abcdef0123456789abcdef", "00000000000000a1", "0000000000000000", "NaN", [], [:],
        ["stringValue": "v"], ["intValue": "12"], ["doubleValue": "Infinity"], ["bytesValue": "!!"],
        ["arrayValue": ["values": [["stringValue": "a"], ["kvlistValue": ["values": [["key": "k", "value": [:]]]]]]]],
        .string(#"[{"role": "user", "parts": [{"type": "text", "content": "q"}, {"type": "tool_call"}]}, {"parts": 5}]"#),
        .string(#"{"messages": [{"role": "assistant", "content": [{"type": "text", "text": "a"}]}]}"#),
        .string(#"[{"id": 1, "content": 2, "metadata": "{\"doc_uri\": 3}"}, "plain", null]"#),
        .string(#"{"doc_uri": ["x"]}"#), .string("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"),
        "RETRIEVER", "LLM", "AGENT", "invoke_agent", "chat", "execute_tool", "retrieval", "application/json",
        "retrieval.documents.3.document.content", "llm.input_messages.0.message.content", "gen_ai.input.messages",
        "mlflow.spanInputs", "input.value", "openinference.span.kind", "gen_ai.operation.name",
    ]

    /// Replaces one random node of a JSON document (or a key of an object) by a replacement value.
    static func mutateJSON(_ value: JSONValue, target: inout Int, using generator: inout SplitMix64) -> JSONValue {
        if target == 0 {
            target = -1
            return replacements.randomElement(using: &generator) ?? .null
        }
        target -= 1
        switch value {
        case .array(let elements):
            return .array(elements.map { target < 0 ? $0 : mutateJSON($0, target: &target, using: &generator) })
        case .object(let object):
            var entries = object.entries
            for index in entries.indices where target >= 0 {
                if target == 0, Int.random(in: 0..<4, using: &generator) == 0 {
                    target = -1
                    entries[index].key = replacements.randomElement(using: &generator)?.stringValue ?? "key"
                    break
                }
                entries[index].value = mutateJSON(entries[index].value, target: &target, using: &generator)
            }
            return .object(JSONObject(entries))
        default:
            return value
        }
    }

    static func nodeCount(_ value: JSONValue) -> Int {
        switch value {
        case .array(let elements): return 1 + elements.reduce(0) { $0 + nodeCount($1) }
        case .object(let object): return 1 + object.entries.reduce(0) { $0 + nodeCount($1.value) }
        default: return 1
        }
    }

    /// One fuzz input: random bytes, a structure-aware JSON mutation, or a seed mutated one to four
    /// times at the byte level.
    static func input(corpus: [[UInt8]], documents: [JSONValue], using generator: inout SplitMix64) -> (kind: String, bytes: [UInt8]) {
        if Int.random(in: 0..<3, using: &generator) == 0, var document = documents.randomElement(using: &generator) {
            let count = Int.random(in: 1...3, using: &generator)
            for _ in 0..<count {
                var target = Int.random(in: 0..<nodeCount(document), using: &generator)
                document = mutateJSON(document, target: &target, using: &generator)
            }
            return ("json-structure x\(count)", document.serializedUTF8())
        }
        if Int.random(in: 0..<20, using: &generator) == 0 {
            let count = Int.random(in: 0..<512, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if !bytes.isEmpty, Bool.random(using: &generator) { bytes[0] = Bool.random(using: &generator) ? 0x0A : UInt8(ascii: "{") }
            return ("random", bytes)
        }
        var bytes = corpus.randomElement(using: &generator) ?? []
        var kinds: [String] = []
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            guard !bytes.isEmpty else { break }
            switch Int.random(in: 0..<8, using: &generator) {
            case 0, 1:
                kinds.append("bitflip")
                for _ in 0..<Int.random(in: 1...8, using: &generator) {
                    let index = Int.random(in: 0..<bytes.count, using: &generator)
                    bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
                }
            case 2:
                kinds.append("byte")
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                bytes[index] = interestingBytes.randomElement(using: &generator) ?? 0
            case 3:
                kinds.append("truncate")
                bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &generator)))
            case 4:
                kinds.append("splice")
                let other = corpus.randomElement(using: &generator) ?? []
                let cut = Int.random(in: 0...bytes.count, using: &generator)
                let from = other.isEmpty ? 0 : Int.random(in: 0..<other.count, using: &generator)
                bytes = Array(bytes.prefix(cut)) + Array(other.suffix(from: from).prefix(16_384))
            case 5:
                kinds.append("delete")
                let start = Int.random(in: 0..<bytes.count, using: &generator)
                let length = Int.random(in: 1...min(64, bytes.count - start), using: &generator)
                bytes.removeSubrange(start..<(start + length))
            case 6:
                kinds.append("duplicate")
                let start = Int.random(in: 0..<bytes.count, using: &generator)
                let length = Int.random(in: 1...min(256, bytes.count - start), using: &generator)
                let chunk = bytes[start..<(start + length)]
                bytes.insert(contentsOf: chunk, at: Int.random(in: 0...bytes.count, using: &generator))
            default:
                kinds.append("insert")
                let at = Int.random(in: 0...bytes.count, using: &generator)
                let chunk = (0..<Int.random(in: 1...16, using: &generator)).map { _ in
                    Bool.random(using: &generator) ? UInt8.random(in: 0...255, using: &generator) : (interestingBytes.randomElement(using: &generator) ?? 0)
                }
                bytes.insert(contentsOf: chunk, at: at)
            }
        }
        return (kinds.joined(separator: "+"), bytes)
    }

    @Test func randomAndMutatedInputsNeverCrashOrHang() throws {
        let corpus = try Self.corpus()
        let documents = try Fixtures.otlpMessages().map { try JSONParser().parse($0.json) }
        var generator = SplitMix64(seed: Self.seed)
        let clock = ContinuousClock()
        let contentTypes: [String?] = [nil, nil, "application/json", "application/x-protobuf"]
        let limitChoices = [OTLPLimits(), OTLPLimits(maxSpansPerMessage: 5, maxSpansPerTrace: 6, maxAttributeValueBytes: 600, maxNestingDepth: 3)]
        var decoded = 0
        var spans = 0
        var reasons: [RejectionReason: Int] = [:]
        var slowest: (Duration, String) = (.zero, "")
        var assembler = TraceAssembler(limits: limitChoices[1], maxPendingTraces: 1_000)
        let start = clock.now
        for iteration in 0..<Self.iterations {
            let (kind, bytes) = Self.input(corpus: corpus, documents: documents, using: &generator)
            let structured = kind.hasPrefix("json-structure")
            // Structure-aware inputs mostly go through the JSON path with default limits, so the
            // mapping sees many valid-but-odd spans.
            let contentType = structured ? (iteration % 2 == 0 ? nil : "application/json") : contentTypes[iteration % contentTypes.count]
            let limits = structured && iteration % 4 != 0 ? limitChoices[0] : limitChoices[(iteration / 4) % limitChoices.count]
            let began = clock.now
            switch OTLPDecoder.decode(payload: bytes, contentType: contentType, limits: limits) {
            case .success(let fragments):
                decoded += 1
                spans += fragments.reduce(0) { $0 + $1.spans.count }
                #expect(fragments.allSatisfy { $0.traceIDHex.utf8.count == 32 && $0.spans.allSatisfy { $0.spanID.utf8.count == 16 } })
                if case .failure(let rejection) = assembler.add(fragments, receivedAtNanos: Int64(iteration)) {
                    reasons[rejection.reason, default: 0] += 1
                }
                if iteration % 64 == 0 {
                    for trace in assembler.expire(lastUpdatedBefore: Int64(iteration)) {
                        #expect(trace.traceID.hasPrefix("tr-"))
                    }
                }
            case .failure(let rejection):
                reasons[rejection.reason, default: 0] += 1
                #expect(!rejection.detail.isEmpty)
                #expect(rejection.detail.utf8.count < 400, "detail too long for \(kind): \(rejection.detail.prefix(80))")
            }
            let took = clock.now - began
            if took > slowest.0 { slowest = (took, "\(kind), \(bytes.count) bytes") }
        }
        _ = assembler.takeAll()
        let total = clock.now - start
        let summary = reasons.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
        print("OTLP fuzz: \(Self.iterations) inputs in \(total), \(decoded) decoded (\(spans) spans), rejected: \(summary); slowest \(slowest.0) (\(slowest.1))")
        // Both outcomes occur, so the mutations reach past the first byte.
        #expect(decoded > 0)
        #expect(reasons.values.reduce(0, +) > 0)
        #expect(reasons[.invalidProtobuf, default: 0] > 0 && reasons[.invalidJSON, default: 0] > 0)
        // No input takes long: decoding is linear in the (bounded) input.
        #expect(slowest.0 < .seconds(2), "slowest input: \(slowest.1)")
    }

    /// A length-delimited protobuf field.
    static func field(_ number: UInt8, _ body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [number << 3 | 2]
        var length = UInt64(body.count)
        repeat {
            bytes.append(UInt8(length & 0x7F) | (length > 0x7F ? 0x80 : 0))
            length >>= 7
        } while length > 0
        return bytes + body
    }

    /// An ExportTraceServiceRequest with one span whose one attribute is an array value nested
    /// `levels` deep, encoded by hand (the generated encoder would recurse as deep).
    static func deepProtobuf(levels: Int) -> [UInt8] {
        var value = field(1, Array("leaf".utf8)) // AnyValue.string_value
        for _ in 0..<levels {
            value = field(5, field(1, value)) // AnyValue.array_value { values: [value] }
        }
        let attribute = field(1, Array("deep".utf8)) + field(2, value)
        let span = field(1, [UInt8](repeating: 1, count: 16)) + field(2, [UInt8](repeating: 2, count: 8)) + field(9, attribute)
        return field(1, field(2, field(2, span)))
    }

    @Test func hostileSizesAreBounded() throws {
        // A count-heavy protobuf: 500k empty ResourceSpans in 1 MB decode without blowing up and
        // are rejected as empty; more than the message limit is refused unread.
        let many: [UInt8] = (0..<1_000_000).map { $0 % 2 == 0 ? 0x0A : 0x00 }
        #expect(rejection(many)?.reason == .emptyPayload)
        let huge = [UInt8](repeating: 0x0A, count: OTLPLimits.defaultMaxMessageBytes + 1)
        #expect(rejection(huge)?.reason == .tooLarge)
        // A length prefix claiming 2 GB.
        #expect(rejection([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x00])?.reason == .invalidProtobuf)
        // Deep JSON nesting is stopped by the parser's limit, not the stack.
        let deep = Array("{\"resourceSpans\":".utf8) + [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
        #expect(rejection(deep)?.reason == .limitExceeded)
        // Protobuf values nested 5,000 deep (hand-encoded), with the default limits.
        #expect(rejection(Self.deepProtobuf(levels: 5_000))?.reason == .limitExceeded)
        #expect(!decodeOrFail(Self.deepProtobuf(levels: 32)).isEmpty)
        // 2 MiB of the samples' deterministic garbage: too large.
        #expect(rejection([UInt8](repeating: 0x6D, count: 2_097_152))?.reason == .tooLarge)
    }
}
