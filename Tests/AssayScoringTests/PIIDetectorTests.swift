import AssayScoring
import Testing

@Suite("PII detection")
struct PIIDetectorTests {
    // MARK: Checksums

    @Test("Luhn-valid numbers", arguments: [
        "4111 1111 1111 1111", "4012888888881881", "5555-5555-5555-4444", "3782 822463 10005", "3714 496353 98431",
        "6011 0009 9013 9424", "3566 0020 2036 0505", "3056 930902 5904", "3852 000002 3237", "79927398713", "0000000000000000",
    ])
    func luhnValid(number: String) {
        #expect(PIIDetector.isLuhnValid(number))
    }

    @Test("Luhn-invalid numbers", arguments: [
        "4111 1111 1111 1112", "79927398710", "3782 822463 10006", "1234567812345678", "4", "", "4111x1111111111111",
    ])
    func luhnInvalid(number: String) {
        #expect(!PIIDetector.isLuhnValid(number))
    }

    @Test("mod-97-valid IBANs", arguments: [
        "DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432", "FR14 2004 1010 0505 0001 3M02 606",
        "NL91 ABNA 0417 1643 00", "CH93 0076 2011 6238 5295 7", "be71 0961 2345 6769",
    ])
    func ibanValid(iban: String) {
        #expect(PIIDetector.isValidIBAN(iban))
    }

    @Test("invalid IBANs", arguments: [
        "DE89 3704 0044 0532 0130 01", "GB82 WEST 1234 5698 7654 33", "GB00 WEST 1234 5698 7654 32", "DE89", "1234 3704 0044 0532 0130 00",
        "DE89-3704-0044-0532-0130-00", "XX82 WEST 1234 5698 7654 32 1234 5678 9012 3456",
    ])
    func ibanInvalid(iban: String) {
        #expect(!PIIDetector.isValidIBAN(iban))
    }

    // MARK: Detection in text

    @Test("text with PII", arguments: [
        ("Write to mei.tanaka@example.org today.", [PIIKind.email: 1]),
        ("Mail a@b.co or first.last+tag@sub.example.net.", [.email: 2]),
        ("Call (801) 555-0175 now", [.phone: 1]),
        ("Call 801-555-0104, or 801.555.0104, or 801 555 0104.", [.phone: 3]),
        ("Reach +1 404 555 0166 or +1-801-555-0156.", [.phone: 2]),
        ("London: +44 20 7946 0958; Berlin +49 (0)30 1234567", [.phone: 2]),
        ("US: 1-801-555-0104 and (303)555-0137", [.phone: 2]),
        ("Card 3566 0020 2036 0505 please", [.creditCard: 1]),
        ("Amex 3782-822463-10005 and Visa 4111111111111111.", [.creditCard: 2]),
        ("Diners 3056 930902 5904", [.creditCard: 1]),
        ("Pay to DE89 3704 0044 0532 0130 00 by Friday", [.iban: 1]),
        ("IBAN GB82WEST12345698765432.", [.iban: 1]),
        ("Signature: Sam Lee, sam.lee@example.com, (503) 555-0121, card 5555 5555 5555 4444",
         [.email: 1, .phone: 1, .creditCard: 1]),
    ] as [(String, [PIIKind: Int])])
    func detects(text: String, expected: [PIIKind: Int]) {
        #expect(PIIDetector.counts(in: text) == expected)
    }

    @Test("text without PII", arguments: [
        "As of February 2, 2026 you have 1.08 days of annual leave available: 2.08 accrued.",
        "Open enrollment runs November 1-30 and changes take effect on January 1.",
        "Your net pay for January 2026 was $4,729.01 (gross $7,100.00), paid on January 23.",
        "Claim EXP-2026-0913 was approved; employee NW-26462 was notified.",
        "Your card ending in 0005 (expires 11/27) is registered.",
        "The meeting is on 2026-02-03 at 13:00; call extension 5550.",
        "Order 4111111111111112 shipped.", // 16 digits, not Luhn-valid
        "Timestamp 1770124149000123 is not a card (issuer prefix 1).",
        "Pi is 3.4111111111111111 roughly", // a decimal fraction
        "Reference ID4111111111111111 is glued to letters.",
        "Numbers 100-200-3000 and 123-456-7890 have area or exchange codes starting with 0 or 1.",
        "Local 555-0100 without an area code is not matched.",
        "user at example dot com, @handle, a@b, x@y.z",
        "DE00 3704 0044 0532 0130 00 has a bad check digit.",
        "",
    ])
    func ignores(text: String) {
        #expect(PIIDetector.counts(in: text).isEmpty)
    }

    @Test func anEmailIsNotAlsoCountedAsAPhone() {
        #expect(PIIDetector.counts(in: "801-555-0104@example.com") == [.email: 1])
    }

    @Test func adversarialTextStaysLinear() {
        // Long runs of digit groups, IBAN-like groups, '@'s and '+' signs: each scanner must do
        // bounded work per character (a window search over all groups would be cubic here).
        let pieces = [
            String(repeating: "4 ", count: 20_000),
            String(repeating: "AB12 ", count: 10_000),
            String(repeating: "a@b.", count: 10_000),
            String(repeating: "+1 2 ", count: 10_000),
            String(repeating: "(801) ", count: 10_000),
        ]
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for piece in pieces { _ = PIIDetector.counts(in: piece) }
        }
        #expect(elapsed < .seconds(10), "took \(elapsed)")
    }

    @Test func kindsSortInDeclarationOrder() {
        #expect([PIIKind.iban, .email, .creditCard, .phone].sorted() == [.email, .phone, .creditCard, .iban])
    }
}
