import AssayCore
import Foundation
import Testing

/// The parser, the compact copier and the writer step over plain string bytes 8 at a time
/// (`JSONStringScan`). These tests put every kind of byte that ends such a run at every offset
/// within and across those words, and hold all three to Foundation's `JSONSerialization`, an
/// implementation that shares nothing with them.
@Suite("JSON strings read and written a word at a time")
struct JSONStringScanTests {
    /// What one sequence of bytes inside a string must do.
    enum Outcome {
        /// The string decodes to this text.
        case decodes(String)
        /// Parsing fails at the sequence's first byte, for this reason.
        case fails(JSONParseError.Reason)
    }

    static let sequences: [(bytes: [UInt8], outcome: Outcome)] = [
        (Array("\\n".utf8), .decodes("\n")),
        (Array("\\\"".utf8), .decodes("\"")),
        (Array("\\\\".utf8), .decodes("\\")),
        (Array("\\u00e9".utf8), .decodes("é")),
        (Array("é".utf8), .decodes("é")),
        (Array("東".utf8), .decodes("東")),
        (Array("🙂".utf8), .decodes("🙂")),
        ([0x7F], .decodes("\u{7F}")),
        ([0x20], .decodes(" ")),
        ([0x21], .decodes("!")),
        ([0x1F], .fails(.controlCharacterInString)),
        ([0x00], .fails(.controlCharacterInString)),
        ([0x0A], .fails(.controlCharacterInString)),
        ([0xFF], .fails(.invalidUTF8)),
        ([0x80], .fails(.invalidUTF8)),
        ([0xC3, 0x28], .fails(.invalidUTF8)),
    ]

    @Test func everyKindOfByteAtEveryOffset() throws {
        let parser = JSONParser()
        for before in 0..<20 {
            for after in [0, 1, 7, 8, 9, 15] {
                for (bytes, outcome) in Self.sequences {
                    let prefix = String(repeating: "a", count: before)
                    let suffix = String(repeating: "b", count: after)
                    let document = [UInt8(ascii: "\"")] + Array(prefix.utf8) + bytes + Array(suffix.utf8) + [UInt8(ascii: "\"")]
                    let parsed = Result { () throws(JSONParseError) in try parser.parse(document) }
                    let compacted = Result { () throws(JSONParseError) in try parser.compactUTF8(String(decoding: document, as: UTF8.self)) }
                    switch outcome {
                    case .decodes(let middle):
                        let text = prefix + middle + suffix
                        #expect(try parsed.get() == .string(text), "\(before) + \(bytes) + \(after)")
                        #expect(JSONValue.string(text).serializedUTF8() == Self.referenceEscaped(text), "\(before) + \(bytes) + \(after)")
                        #expect(try compacted.get() == Self.referenceEscaped(text), "\(before) + \(bytes) + \(after)")
                    case .fails(let reason):
                        #expect(throws: JSONParseError(offset: 1 + before, reason: reason), "\(before) + \(bytes) + \(after)") {
                            try parsed.get()
                        }
                    }
                }
            }
        }
    }

    @Test func theClosingQuoteAndAMissingOneAtEveryOffset() throws {
        let parser = JSONParser()
        for length in 0..<34 {
            let text = String(repeating: "x", count: length)
            #expect(try parser.parse("\"\(text)\"") == .string(text))
            #expect(throws: JSONParseError(offset: 0, reason: .unterminatedString)) { try parser.parse("\"\(text)") }
            // With an escape first, the rest is read by the escaped-string loop.
            #expect(try parser.parse("\"\\t\(text)\"") == .string("\t" + text))
            #expect(throws: JSONParseError(offset: 0, reason: .unterminatedString)) { try parser.parse("\"\\t\(text)") }
            // Plain bytes followed by a structural character right after the string.
            #expect(try parser.parse("[\"\(text)\",1]") == .array([.string(text), .number("1")]))
        }
    }

    @Test func randomStringsAgreeWithFoundation() throws {
        let pool: [Character] = ["a", "Q", "7", " ", "~", "\u{7F}", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{1F}",
                                 "é", "ß", "東", "🙂", "\u{2028}", "\u{FFFD}"]
        var random = SplitMix64(seed: 0x5CA7)
        let parser = JSONParser()
        for _ in 0..<3000 {
            let length = Int.random(in: 0..<80, using: &random)
            // Long plain runs, so that whole words are skipped between the other characters.
            let text = String((0..<length).map { _ in
                Int.random(in: 0..<3, using: &random) == 0 ? pool[Int.random(in: 0..<pool.count, using: &random)] : "m"
            })
            let written = JSONValue.array([.string(text)]).serializedUTF8()
            #expect(written == [UInt8(ascii: "[")] + Self.referenceEscaped(text) + [UInt8(ascii: "]")])
            let readByFoundation = try JSONSerialization.jsonObject(with: Data(written)) as? [String]
            #expect(readByFoundation == [text])

            let writtenByFoundation = [UInt8](try JSONSerialization.data(withJSONObject: [text]))
            #expect(try parser.parse(writtenByFoundation) == .array([.string(text)]))
            #expect(try parser.compactUTF8(String(decoding: writtenByFoundation, as: UTF8.self)) == written)
        }
    }

    /// The writer's escaping, spelled out one byte at a time: `"` and `\` and control
    /// characters escaped (`\b \t \n \f \r`, else `\u00xx`), U+0000 written as U+FFFD.
    static func referenceEscaped(_ text: String) -> [UInt8] {
        var output: [UInt8] = [UInt8(ascii: "\"")]
        let hex = Array("0123456789abcdef".utf8)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): output += Array("\\\\".utf8)
            case 0x00: output += [0xEF, 0xBF, 0xBD]
            case 0x08: output += Array("\\b".utf8)
            case 0x09: output += Array("\\t".utf8)
            case 0x0A: output += Array("\\n".utf8)
            case 0x0C: output += Array("\\f".utf8)
            case 0x0D: output += Array("\\r".utf8)
            case 0x01..<0x20: output += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
        return output
    }
}
