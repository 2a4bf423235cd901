import AssayCore
import Testing

/// One entry of `schemas/sampling-vectors.json`.
struct SamplingVector: Sendable, CustomTestStringConvertible {
    var traceID: String
    var canonicalID: String
    var bitsHex: String
    var rho: Double

    var testDescription: String { traceID }

    static func load() throws -> [SamplingVector] {
        let document = try JSONParser().parse(Fixtures.bytes("schemas/sampling-vectors.json"))
        let entries = try #require(document["vectors"]?.arrayValue)
        return try entries.map { entry in
            SamplingVector(
                traceID: try #require(entry["trace_id"]?.stringValue),
                canonicalID: try #require(entry["canonical_id"]?.stringValue),
                bitsHex: try #require(entry["rho_u64_hex"]?.stringValue),
                rho: try #require(entry["rho"]?.doubleValue)
            )
        }
    }
}

/// A deterministic stream of distinct MLflow-style trace ids.
func generatedTraceIDs(count: Int, seed: UInt64 = 0x5EED) -> [String] {
    var state = seed
    func next() -> UInt64 {
        // SplitMix64.
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    return (0..<count).map { _ in
        let bytes = (0..<2).flatMap { _ -> [UInt8] in
            let word = next()
            return (0..<8).map { UInt8(truncatingIfNeeded: word >> (56 - 8 * $0)) }
        }
        return "tr-" + OTelIdentifier.hexString(bytes)
    }
}

@Suite("Deterministic nested sampling (invariant 4)")
struct SamplerTests {
    @Test func vectorFileHasTheAgreedCoverage() throws {
        let vectors = try SamplingVector.load()
        #expect(vectors.count >= 20)
        #expect(vectors.contains { $0.traceID.hasPrefix("tr-") && $0.canonicalID.count == 32 })
        #expect(vectors.contains { $0.traceID.count == 32 && $0.traceID != $0.traceID.lowercased() })
        #expect(vectors.contains { $0.traceID == $0.canonicalID && $0.traceID.count != 32 })
    }

    @Test(arguments: try SamplingVector.load())
    func vector(_ vector: SamplingVector) throws {
        #expect(Trace.canonicalTraceID(for: vector.traceID) == vector.canonicalID)
        let bits = Sampler.rhoBits(canonicalTraceID: vector.canonicalID)
        #expect(bits == UInt64(vector.bitsHex, radix: 16))
        #expect(Sampler.rho(canonicalTraceID: vector.canonicalID) == vector.rho)
        #expect(Sampler.rho(bits: bits) == vector.rho)
    }

    @Test func knownValue() {
        // python3: int.from_bytes(hashlib.sha256(b"0123456789abcdef0123456789abcdef").digest()[:8], "big")
        #expect(Sampler.rhoBits(canonicalTraceID: "0123456789abcdef0123456789abcdef") == 0x3eb1_bd43_9947_eb76)
        #expect(Sampler.rho(canonicalTraceID: "0123456789abcdef0123456789abcdef") == 0.24489958668098638)
    }

    @Test func sameTraceSamplesAlikeWhateverTheFormat() {
        let mlflow = Trace.canonicalTraceID(for: "tr-4BF92F3577B34DA6A3CE929D0E0E4736")
        let otlp = Trace.canonicalTraceID(for: "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(mlflow == otlp)
        #expect(Sampler.rho(canonicalTraceID: mlflow) == Sampler.rho(canonicalTraceID: otlp))
    }

    @Test func rateEdges() {
        #expect(Sampler.isSampled(rho: 0, rate: 1))
        #expect(Sampler.isSampled(rho: 1.0, rate: 1))  // ρ can round up to exactly 1.0
        #expect(Sampler.isSampled(rho: 0.999999, rate: 1.5))
        #expect(!Sampler.isSampled(rho: 0, rate: 0))
        #expect(!Sampler.isSampled(rho: 0, rate: -0.1))
        #expect(!Sampler.isSampled(rho: 0, rate: .nan))
        #expect(Sampler.isSampled(rho: 0.19999, rate: 0.2))
        #expect(!Sampler.isSampled(rho: 0.2, rate: 0.2))  // strict: ρ < rate
        #expect(Sampler.rho(bits: .max) == 1.0)
        #expect(Sampler.rho(bits: 0) == 0)
        #expect(Sampler.rho(bits: 1 << 63) == 0.5)
    }

    @Test func nestedAndEmpiricalRates() {
        let ids = generatedTraceIDs(count: 100_000)
        #expect(Set(ids).count == ids.count)
        let rhos = ids.map { Sampler.rho(canonicalTraceID: Trace.canonicalTraceID(for: $0)) }
        let at20 = Set(rhos.indices.filter { Sampler.isSampled(rho: rhos[$0], rate: 0.2) })
        let at40 = Set(rhos.indices.filter { Sampler.isSampled(rho: rhos[$0], rate: 0.4) })
        let at100 = rhos.indices.filter { Sampler.isSampled(rho: rhos[$0], rate: 1.0) }
        #expect(at20.isSubset(of: at40))
        #expect(at20.count < at40.count)
        #expect(at100.count == ids.count)
        let rate20 = Double(at20.count) / Double(ids.count)
        let rate40 = Double(at40.count) / Double(ids.count)
        #expect(abs(rate20 - 0.2) <= 0.01, "empirical rate \(rate20)")
        #expect(abs(rate40 - 0.4) <= 0.01, "empirical rate \(rate40)")
        #expect(rhos.allSatisfy { $0 >= 0 && $0 <= 1 })
    }
}
