import AssayCore
import Foundation
import Testing

/// Access to the copied sample payloads in `Fixtures/` (bundled with `.copy("Fixtures")`).
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

    /// The non-empty lines of a JSON Lines fixture, as bytes (one Kafka message value each).
    static func lines(_ name: String) throws -> [[UInt8]] {
        try bytes(name).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).map(Array.init)
    }

    /// Decodes a fixture that must decode, failing the test with the rejection otherwise.
    static func trace(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Trace {
        try decoded(bytes(name), sourceLocation: sourceLocation)
    }
}

struct UnexpectedRejection: Error, CustomStringConvertible {
    var rejection: TraceRejection
    var description: String { "unexpected rejection: \(rejection)" }
}

struct UnexpectedSuccess: Error {}

/// Decodes `payload`, throwing (and so failing the calling test) when it is rejected.
func decoded(_ payload: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> Trace {
    switch MessageDecoding.decode(payload: payload) {
    case .success(let trace):
        return trace
    case .failure(let rejection):
        Issue.record("rejected: \(rejection)", sourceLocation: sourceLocation)
        throw UnexpectedRejection(rejection: rejection)
    }
}

/// The rejection for `payload`, throwing (and so failing the calling test) when it decodes.
func rejection(
    _ payload: [UInt8]?,
    limits: DecodeLimits = DecodeLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> TraceRejection {
    switch MessageDecoding.decode(payload: payload, limits: limits) {
    case .success(let trace):
        Issue.record("decoded unexpectedly as trace \(trace.traceID)", sourceLocation: sourceLocation)
        throw UnexpectedSuccess()
    case .failure(let rejection):
        return rejection
    }
}

func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Whether `text` is exactly 16 lowercase hex digits.
func isLowercaseHex16(_ text: String) -> Bool {
    text.utf8.count == 16 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
}
