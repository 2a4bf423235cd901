import AssayCore
@testable import AssayScoring
import Testing

/// The offline judge reads ASCII text byte by byte and other text by `Character`; both must
/// find the same words and phrase tokens.
@Suite("Offline judge text: the ASCII path reads like the Character path")
struct OfflineTextTests {
    /// Every string value in the sample traces (requests, responses, documents, attributes).
    static func sampleStrings() throws -> [String] {
        var strings: [String] = []
        func collect(_ value: JSONValue) {
            switch value {
            case .string(let text): strings.append(text)
            case .array(let items): items.forEach(collect)
            case .object(let object): object.entries.forEach { collect($0.value) }
            default: break
            }
        }
        for name in ["mlflow-traces.jsonl", "sample-traces.jsonl"] {
            for line in Fixtures.lines(try Fixtures.bytes(name)) { collect(try JSONParser().parse(line)) }
        }
        return strings
    }

    static let edgeCases = [
        "", "'", "-", "'''", "--", "a", "A", "Hello, World!", "1,200 and 2.08", "1,2000", "12,345,678.90", "1,200abc", "a,b",
        "3,00", ".5", "5.", "5..6", "no one", "No-one's here", "--no-one's--", "isn't it", "it's 'quoted'", "x\r\ny", "tab\there",
        "UPPER lower MiXeD 42", "e-mail re-entry", "end.", "v2.0.1", "1,234,567", "1,234a", "$1,200.50!", "(555) 010-9999",
    ]

    @Test("words: the same on every sample string and edge case")
    func wordsAgree() throws {
        var compared = 0
        for text in try Self.sampleStrings() + Self.edgeCases {
            guard let bytes = OfflineText.asciiLowercased(text) else { continue }
            #expect(OfflineText.asciiWords(bytes) == OfflineText.unicodeWords(text), "\(text.prefix(80))")
            compared += 1
        }
        #expect(compared > 500, "the samples are mostly ASCII (\(compared) compared)")
    }

    @Test("phrase tokens: the same on every sample string and edge case")
    func phraseTokensAgree() throws {
        for text in try Self.sampleStrings() + Self.edgeCases {
            guard let bytes = OfflineText.asciiLowercased(text) else { continue }
            #expect(OfflineText.asciiPhraseTokens(bytes) == OfflineText.unicodePhraseTokens(text), "\(text.prefix(80))")
        }
    }

    @Test("non-ASCII text takes the Character path: typographic apostrophes, accents, other scripts")
    func nonASCII() {
        #expect(OfflineText.asciiLowercased("It\u{2019}s") == nil)
        #expect(OfflineText.words("Caf\u{E9} 1,200 \u{2019}s") == ["caf\u{E9}", "1200", "s"])
        // The typographic apostrophe is read as a plain one, so both spellings give one token.
        #expect(OfflineText.phraseTokens("No one\u{2019}s") == ["no", "one's"])
        #expect(OfflineText.phraseTokens("No one\u{2019}s") == OfflineText.phraseTokens("No one's"))
        #expect(OfflineText.phraseTokens("\u{2014}no one\u{2014}") == ["nobody"])
    }
}
