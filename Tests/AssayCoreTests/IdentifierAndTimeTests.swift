import AssayCore
import Testing

@Suite("Span and trace ids")
struct IdentifierTests {
    @Test(arguments: [
        // base64 of 8 bytes (MLflow 3): 12 characters ending in "=" (expected hex from Python's base64).
        ("DxxY3ia51MI=", "0f1c58de26b9d4c2"),
        ("/YHRPo0lOY0=", "fd81d13e8d25398d"),
        ("8gc/smttX8A=", "f2073fb26b6d5fc0"),
        ("ASNFZ4mrze8=", "0123456789abcdef"),
        // unpadded and URL-safe base64
        ("DxxY3ia51MI", "0f1c58de26b9d4c2"),
        ("-_8BAv79AwQ=", "fbff0102fefd0304"),
        ("+/8BAv79AwQ=", "fbff0102fefd0304"),
        // 16 hex digits (MLflow 3.5): hex, even though every character is also base64
        ("0123456789abcdef", "0123456789abcdef"),
        ("1234567890123456", "1234567890123456"),
        ("ABCDEF0123456789", "abcdef0123456789"),
        // 0x-prefixed hex (MLflow 2)
        ("0x1A2B3C4D5E6F7081", "1a2b3c4d5e6f7081"),
    ])
    func spanIDs(input: String, expected: String) {
        #expect(OTelIdentifier.spanIDHex(input) == expected)
    }

    @Test(arguments: [
        "", "abc", "0x", "0x123",
        "0123456789abcdeg",  // 16 characters, not all hex: not an id (never "try base64")
        "DxxY3ia51MI==",  // 13 characters
        "DxxY3ia51M==",  // 12 characters but two '=': 7 bytes
        "DxxY3ia5 1M=",  // not base64
        "0123456789abcdef0",  // 17 hex digits
        "0123456789ab",  // 12 hex digits, not base64 of 8 bytes either
        "0x0123456789abcdeg",
    ])
    func invalidSpanIDs(input: String) {
        #expect(OTelIdentifier.spanIDHex(input) == nil)
    }

    @Test func traceIDs() {
        #expect(OTelIdentifier.traceIDHex("TvBTAxJLtwQ3AGJC3cHjvg==") == "4ef05303124bb70437006242ddc1e3be")
        #expect(OTelIdentifier.traceIDHex("TvBTAxJLtwQ3AGJC3cHjvg") == "4ef05303124bb70437006242ddc1e3be")
        #expect(OTelIdentifier.traceIDHex("4EF05303124BB70437006242DDC1E3BE") == "4ef05303124bb70437006242ddc1e3be")
        #expect(OTelIdentifier.traceIDHex("0x0123456789abcdef0123456789abcdef") == "0123456789abcdef0123456789abcdef")
        #expect(OTelIdentifier.traceIDHex("DxxY3ia51MI=") == nil)
        #expect(OTelIdentifier.traceIDHex("tr-4ef05303124bb70437006242ddc1e3be") == nil)
        #expect(OTelIdentifier.hexString([0x00, 0xFF, 0x10, 0xAB]) == "00ff10ab")
    }

    @Test(arguments: [
        ("tr-4ef05303124bb70437006242ddc1e3be", "4ef05303124bb70437006242ddc1e3be"),
        ("tr-4EF05303124BB70437006242DDC1E3BE", "4ef05303124bb70437006242ddc1e3be"),
        ("4EF05303124BB70437006242DDC1E3BE", "4ef05303124bb70437006242ddc1e3be"),
        ("7f9e2c4b1a3d4e5f8a6b0c1d2e3f4a5b", "7f9e2c4b1a3d4e5f8a6b0c1d2e3f4a5b"),
        // Anything else is used as given.
        ("tr-4ef05303124bb70437006242ddc1e3b", "tr-4ef05303124bb70437006242ddc1e3b"),
        ("tr-4ef05303124bb70437006242ddc1e3bz", "tr-4ef05303124bb70437006242ddc1e3bz"),
        ("TR-4ef05303124bb70437006242ddc1e3be", "TR-4ef05303124bb70437006242ddc1e3be"),
        ("Custom-Request-ID", "Custom-Request-ID"),
        ("", ""),
    ])
    func canonicalTraceIDs(input: String, expected: String) {
        #expect(Trace.canonicalTraceID(for: input) == expected)
        let trace = Trace(
            traceID: input, format: .mlflow3, requestTimeNanos: 0, executionDurationMillis: nil, state: .ok,
            clientRequestID: nil, requestPreview: nil, responsePreview: nil, tags: [:], metadata: [:], spans: [])
        #expect(trace.canonicalTraceID == expected)
    }
}

@Suite("Timestamps and durations")
struct TimeParsingTests {
    @Test(arguments: [
        ("2026-02-03T13:00:53.476Z", Int64(1_770_123_653_476_000_000)),
        ("2026-02-03T13:00:53Z", 1_770_123_653_000_000_000),
        ("2026-02-03T14:00:53.476+01:00", 1_770_123_653_476_000_000),
        ("2026-02-03T08:30:53.476-04:30", 1_770_123_653_476_000_000),
        ("2026-02-03t13:00:53.476z", 1_770_123_653_476_000_000),
        ("2026-02-03 13:00:53.476Z", 1_770_123_653_476_000_000),
        ("2026-02-03T13:00:53.476857750Z", 1_770_123_653_476_857_750),
        ("2026-02-03T13:00:53.476857750999Z", 1_770_123_653_476_857_750),  // beyond ns: truncated
        ("2026-02-03T13:00:53.5Z", 1_770_123_653_500_000_000),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.5Z", -500_000_000),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000_000_000),
        ("2000-02-29T00:00:00Z", 951_782_400_000_000_000),
        ("1900-03-01T00:00:00Z", -2_203_891_200_000_000_000),
        ("2099-06-01T12:00:00Z", 4_083_998_400_000_000_000),
        ("2016-12-31T23:59:60Z", 1_483_228_800_000_000_000),  // leap second → next minute
    ])
    func validRFC3339(text: String, nanos: Int64) {
        #expect(TimeParsing.rfc3339Nanoseconds(text) == nanos)
    }

    @Test(arguments: [
        "yesterday", "", "2026-02-03", "2026-02-03T13:00:53", "2026-02-03T13:00:53.Z",
        "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z", "2026-02-03T24:00:00Z", "2026-02-03T13:60:00Z", "2026-02-03T13:00:61Z",
        "2026-02-03T13:00:53+0100", "2026-02-03T13:00:53+01", "2026-02-03T13:00:53+24:00",
        "2026-02-03T13:00:53Zjunk", "2026-2-03T13:00:53Z", "+2026-02-03T13:00:53Z",
        "2300-01-01T00:00:00Z",  // beyond Int64 nanoseconds
        "1600-01-01T00:00:00Z",
    ])
    func invalidRFC3339(text: String) {
        #expect(TimeParsing.rfc3339Nanoseconds(text) == nil)
    }

    @Test func protoDurations() {
        #expect(TimeParsing.protoDurationNanoseconds("1.555s") == 1_555_000_000)
        #expect(TimeParsing.protoDurationNanoseconds("3s") == 3_000_000_000)
        #expect(TimeParsing.protoDurationNanoseconds("-0.5s") == -500_000_000)
        #expect(TimeParsing.protoDurationNanoseconds("0.000000001s") == 1)
        for bad in ["1.5", "s", "1.s", ".5s", "1.0000000001s", "1,5s", "-s", "abc"] {
            #expect(TimeParsing.protoDurationNanoseconds(bad) == nil, "\(bad)")
        }
    }
}
