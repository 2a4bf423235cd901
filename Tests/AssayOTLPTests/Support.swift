import AssayCore
@testable import AssayOTLP
import Foundation
import Testing

/// The copied sample payloads in `Fixtures/` (bundled with `.copy("Fixtures")`), so the tests
/// pass on a fresh clone without /work/shared.
enum Fixtures {
    struct Missing: Error, CustomStringConvertible {
        var name: String
        var description: String { "fixture \(name) not found in the test bundle" }
    }

    static func url(_ name: String) throws -> URL {
        guard let directory = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw Missing(name: "Fixtures/")
        }
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else { throw Missing(name: name) }
        return url
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(name)))
    }

    /// The non-empty lines of a JSON Lines file.
    static func lines(_ name: String) throws -> [[UInt8]] {
        try bytes(name).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).map(Array.init)
    }

    static func json(_ name: String) throws -> JSONValue {
        try JSONParser().parse(bytes(name))
    }

    /// One sample OTLP message in both encodings (`otlp-traces.jsonl` line N ↔ `proto/msg-N.pb`).
    struct Message: Sendable {
        var seq: Int
        var json: [UInt8]
        var protobuf: [UInt8]
        /// The index line (`n_spans`, `trace_ids`, …).
        var index: JSONValue
    }

    /// The 68 sample messages, in export order.
    static func otlpMessages() throws -> [Message] {
        let jsonLines = try lines("otlp-traces.jsonl")
        let indexLines = try lines("otlp-traces.index.jsonl")
        guard jsonLines.count == indexLines.count else { throw Missing(name: "matching index lines") }
        return try jsonLines.enumerated().map { offset, line in
            let seq = offset + 1
            let name = "proto/msg-" + String(repeating: "0", count: 6 - String(seq).count) + String(seq) + ".pb"
            return Message(seq: seq, json: line, protobuf: try bytes(name), index: try JSONParser().parse(indexLines[offset]))
        }
    }

    /// The OTLP labels, keyed by 32-hex trace id.
    static func otlpLabels() throws -> [String: JSONObject] {
        guard case .object(let object) = try json("otlp-traces.labels.json") else { throw Missing(name: "labels object") }
        var result: [String: JSONObject] = [:]
        for (key, value) in object.entries {
            if case .object(let label) = value { result[key] = label }
        }
        return result
    }
}

/// Decodes or records a test failure.
func decodeOrFail(
    _ payload: [UInt8], contentType: String? = nil, limits: OTLPLimits = OTLPLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> [TraceFragment] {
    switch OTLPDecoder.decode(payload: payload, contentType: contentType, limits: limits) {
    case .success(let fragments):
        return fragments
    case .failure(let rejection):
        Issue.record("rejected: \(rejection)", sourceLocation: sourceLocation)
        return []
    }
}

/// The rejection, or a recorded failure when the payload decodes.
func rejection(
    _ payload: [UInt8], contentType: String? = nil, limits: OTLPLimits = OTLPLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> TraceRejection? {
    switch OTLPDecoder.decode(payload: payload, contentType: contentType, limits: limits) {
    case .success(let fragments):
        Issue.record("decoded \(fragments.count) fragments, expected a rejection", sourceLocation: sourceLocation)
        return nil
    case .failure(let rejection):
        return rejection
    }
}

/// Assembles messages in the given order and takes every trace, keyed by 32-hex id.
func assemble(_ payloads: [[UInt8]], sourceLocation: SourceLocation = #_sourceLocation) -> [String: Trace] {
    var assembler = TraceAssembler()
    for payload in payloads {
        let fragments = decodeOrFail(payload, sourceLocation: sourceLocation)
        if case .failure(let rejection) = assembler.add(fragments) {
            Issue.record("assembler rejected a message: \(rejection)", sourceLocation: sourceLocation)
        }
    }
    var result: [String: Trace] = [:]
    for trace in assembler.takeAll() {
        result[trace.canonicalTraceID] = trace
    }
    return result
}

/// A small deterministic PRNG (SplitMix64), so fuzz runs are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
