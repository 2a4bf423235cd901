/// Deterministic, nested sampling of traces (DESIGN §2 invariant 4).
///
/// Every trace gets a fixed number ρ in [0, 1] computed from its canonical id alone:
///
///     ρ = (first 8 bytes of SHA-256(UTF-8 canonical id), read big-endian) / 2^64
///
/// and a scorer with rate r runs on the trace iff ρ < r. Because ρ depends on nothing but the
/// id, every replica, replay and backfill makes the same choice; and because the test is a
/// threshold, the traces a 20% scorer sees are a subset of those a 40% scorer sees. Changing
/// one scorer's rate never changes another scorer's set.
///
/// Pass ``Trace/canonicalTraceID`` (or ``Trace/canonicalTraceID(for:)``), never the id as sent:
/// `tr-<32 hex>` and the bare 32 hex digits of the same trace must sample identically.
/// Test vectors: `schemas/sampling-vectors.json`.
public enum Sampler {
    /// The first 8 bytes of SHA-256 of the UTF-8 id, as a big-endian integer.
    public static func rhoBits(canonicalTraceID: String) -> UInt64 {
        let digest = SHA256.hash(canonicalTraceID.utf8)
        var bits: UInt64 = 0
        for byte in digest.prefix(8) {
            bits = bits << 8 | UInt64(byte)
        }
        return bits
    }

    /// ρ: ``rhoBits(canonicalTraceID:)`` / 2^64, as the nearest `Double`.
    ///
    /// The result is in [0, 1]. It can be exactly 1.0 (when the integer is within 2^10 of 2^64
    /// and rounds up), which is why ``isSampled(rho:rate:)`` treats rate 1 specially.
    public static func rho(canonicalTraceID: String) -> Double {
        rho(bits: rhoBits(canonicalTraceID: canonicalTraceID))
    }

    /// ρ of precomputed bits: `Double(bits)` (round to nearest) scaled by 2^-64, which is exact.
    /// This equals Python's `int.from_bytes(digest[:8], "big") / 2**64`.
    public static func rho(bits: UInt64) -> Double {
        Double(bits) * 0x1p-64
    }

    /// Whether a trace with this ρ is sampled at `rate`: ρ < rate.
    ///
    /// A rate ≥ 1 always samples (even the rare ρ that rounds to 1.0); a rate ≤ 0 or NaN never does.
    public static func isSampled(rho: Double, rate: Double) -> Bool {
        if rate >= 1 { return true }
        guard rate > 0 else { return false }
        return rho < rate
    }

    /// ``isSampled(rho:rate:)`` for a canonical trace id.
    public static func isSampled(canonicalTraceID: String, rate: Double) -> Bool {
        isSampled(rho: rho(canonicalTraceID: canonicalTraceID), rate: rate)
    }
}
