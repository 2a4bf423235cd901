@testable import AssayCore
import Testing

/// FIPS 180 example messages (NIST "Examples with intermediate values" / FIPS 180-2 appendices).
private enum NISTMessages {
    static let empty: [UInt8] = []
    static let abc = Array("abc".utf8)
    static let bits448 = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
    static let bits896 = Array(
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8
    )
    static let millionA = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
}

private func hex(_ bytes: [UInt8]) -> String { OTelIdentifier.hexString(bytes) }

@Suite("SHA-256 and SHA-1 against the FIPS/NIST vectors")
struct HashTests {
    @Test func sha256Vectors() {
        #expect(hex(SHA256.hash(NISTMessages.empty)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(SHA256.hash(NISTMessages.abc)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(SHA256.hash(NISTMessages.bits448)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(SHA256.hash(NISTMessages.bits896)) == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        #expect(hex(SHA256.hash(NISTMessages.millionA)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func sha1Vectors() {
        #expect(hex(SHA1.hash(NISTMessages.empty)) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(hex(SHA1.hash(NISTMessages.abc)) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex(SHA1.hash(NISTMessages.bits448)) == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(hex(SHA1.hash(NISTMessages.bits896)) == "a49b2446a02c645bf419f995b67091253a04a259")
        #expect(hex(SHA1.hash(NISTMessages.millionA)) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    /// Lengths around the padding boundaries (55/56 bytes: length field fits or needs a block),
    /// expected values from Python's hashlib.
    @Test(arguments: [
        (55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072", "cef734ba81a024479e09eb5a75b6ddae62e6abf1"),
        (56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e", "901305367c259952f4e7af8323f480d59f81335b"),
        (57, "ae14a2563ccf969d99aca69ce6bb74981f734bbf9f655f73b8f06db68cab5217", "025ecbd5d70f8fb3c5457cd96bab13fda305dc59"),
        (63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2", "0ddc4e0cccd9a12850deb5abb0853a4425559fec"),
        (64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c", "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163"),
        (65, "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9", "78c741ddc482e4cdf8c474a0876347a0905b6233"),
        (119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c", "4300320394f7ee239bcdce7d3b8bcee173a0cd5c"),
        (120, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98", "ceb2821639c4b6dcb10bce0e522ca2e608ce056d"),
        (128, "24da1b81d0b16df6428eee73c69fcb2a93c76bc6df706f0c6670fe6bfe800464", "150fa3fbdc899bd0b8f95a9fb6027f564d953762"),
    ])
    func paddingBoundaries(length: Int, sha256: String, sha1: String) {
        let message = [UInt8](repeating: UInt8(ascii: "x"), count: length)
        #expect(hex(SHA256.hash(message)) == sha256)
        #expect(hex(SHA1.hash(message)) == sha1)
    }

    @Test func incrementalUpdatesEqualOneShot() {
        var sha256 = SHA256()
        var sha1 = SHA1()
        for chunk in stride(from: 0, to: NISTMessages.bits896.count, by: 7) {
            let piece = NISTMessages.bits896[chunk..<min(chunk + 7, NISTMessages.bits896.count)]
            sha256.update(piece)
            sha1.update(piece)
        }
        #expect(hex(sha256.finalize()) == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        #expect(hex(sha1.finalize()) == "a49b2446a02c645bf419f995b67091253a04a259")
    }
}
