import Foundation
import Postgres
import Testing

/// Tests that need no server.
@Suite("Postgres units")
struct UnitTests {
    @Test("redactedURL hides passwords in user info and query")
    func redaction() throws {
        let cases: [(String, String)] = [
            ("postgres://alice:s3cret@db:5432/app", "postgres://alice:***@db:5432/app"),
            ("postgresql://alice@db/app", "postgresql://alice@db/app"),
            ("postgresql://db/app?sslmode=require&password=s3cret", "postgresql://db/app?sslmode=require&password=***"),
            ("postgresql://u:p%40ss@h1:5432,h2:5433/app", "postgresql://u:***@h1:5432,h2:5433/app"),
            ("postgresql://u:pa:ss@host/app#frag", "postgresql://u:***@host/app#frag"),
        ]
        for (url, expected) in cases {
            let configuration = try PostgresConfiguration(url: url)
            #expect(configuration.redactedURL == expected)
            #expect("\(configuration)" == expected)
        }
    }

    @Test("only postgres:// and postgresql:// URLs are accepted")
    func scheme() throws {
        #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "mysql://root@db/app") }
        #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "host=db dbname=app") }
        let error = #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "http://x") }
        #expect(error?.kind == .invalidConfiguration)
        _ = try PostgresConfiguration(url: "POSTGRESQL://db/app")
    }

    @Test("COPY text encoding escapes backslash, newline, CR, tab and writes \\N for NULL")
    func copyEncoding() {
        #expect(CopyTextEncoder.encodeRow(["a", nil, ""]) == "a\t\\N\t\n")
        #expect(CopyTextEncoder.encodeRow(["tab\there", "nl\nx", "cr\rx", "back\\slash"])
            == "tab\\there\tnl\\nx\tcr\\rx\tback\\\\slash\n")
        // A literal "\N" string must not turn into NULL, and "\." must not end the data.
        #expect(CopyTextEncoder.encodeRow(["\\N", "\\."]) == "\\\\N\t\\\\.\n")
        #expect(CopyTextEncoder.encodeRow(["héllo ✓"]) == "héllo ✓\n")
        #expect(CopyTextEncoder.byteaText([0x00, 0x5c, 0xff]) == "\\x005cff")
    }

    @Test("errors keep data out of description")
    func errorDescriptions() {
        let error = PostgresError(
            kind: .queryFailed, message: "duplicate key value violates unique constraint \"t_pkey\"",
            sqlState: "23505", detail: "Key (email)=(alice@example.com) already exists.",
            hint: "some hint", query: "INSERT INTO t VALUES ($1)", constraintName: "t_pkey")
        #expect(error.isUniqueViolation)
        #expect(!error.isSerializationFailure)
        #expect(!error.isConnectionError)
        #expect(!error.description.contains("alice@example.com"))
        #expect(!error.description.contains("INSERT"))
        #expect(error.debugDescription.contains("alice@example.com"))
        #expect(error.debugDescription.contains("INSERT INTO t"))
        #expect(PostgresError(kind: .queryFailed, message: "x", sqlState: "40001").isSerializationFailure)
        #expect(PostgresError(kind: .queryFailed, message: "x", sqlState: "08006").isConnectionError)
        #expect(PostgresError(kind: .queryFailed, message: "x", connectionBroken: true).isConnectionError)
    }

    @Test("Date parameters become UTC timestamptz text with microseconds")
    func timestampText() {
        let date = Date(timeIntervalSince1970: 1_714_566_896.789012)
        #expect(PostgresValue(date) == .text("2024-05-01 12:34:56.789012+00"))
        #expect(PostgresValue(Date(timeIntervalSince1970: 0)) == .text("1970-01-01 00:00:00.000000+00"))
        #expect(PostgresValue(Date(timeIntervalSince1970: -0.5)) == .text("1969-12-31 23:59:59.500000+00"))
    }

    @Test("literals and optionals map to parameter values")
    func literals() {
        let values: [PostgresValue] = [nil, "x", 42, 1.5, true, .bytes([1, 2])]
        #expect(values == [.null, .text("x"), .text("42"), .text("1.5"), .text("true"), .bytea([1, 2])])
        let missing: Int? = nil
        #expect(PostgresValue(missing) == .null)
        #expect(PostgresValue(Int64.min) == .text("-9223372036854775808"))
        #expect(PostgresValue(Double.infinity) == .text("Infinity"))
        #expect(PostgresValue(-Double.infinity) == .text("-Infinity"))
        #expect(PostgresValue(Double.nan) == .text("NaN"))
    }
}
