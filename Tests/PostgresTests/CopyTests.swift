import Postgres
import Testing

/// `COPY ... FROM STDIN`.
@Suite("PostgresConnection COPY", .timeLimit(.minutes(2)))
struct CopyTests {
    /// Deterministic rows full of characters COPY must escape.
    static func sampleRows(count: Int) -> [(id: Int, a: String?, b: String?, c: [UInt8]?)] {
        let tricky: [String?] = [
            "tab\there", "new\nline", "cr\rhere", "back\\slash", "\\N", "\\.", "", nil, "héllo ✓ 🙂",
            "end\\", "\t\n\r\\", "'quotes' \"double\"", "plain",
        ]
        return (0..<count).map { i in
            let a = tricky[i % tricky.count].map { $0 + (i % 3 == 0 ? "" : " #\(i)") }
            let b: String? = i % 7 == 0 ? nil : "row \(i)\t\(i * 31 % 1000)"
            let c: [UInt8]? = i % 11 == 0 ? nil : [UInt8(i % 256), 0, 92, 10, 9, 13, UInt8((i * 7) % 256)]
            return (i, a, b, c)
        }
    }

    @Test("10,000 rows with tabs, newlines, backslashes and NULLs round-trip exactly")
    func copyRoundTrip() async throws {
        let expected = Self.sampleRows(count: 10_000)
        let (copied, read, written) = try await withConnection { connection in
            try connection.execute("CREATE TABLE copied (id int PRIMARY KEY, a text, b text, c bytea)")
            var written = 0
            let copied = try connection.copyFrom("COPY copied (id, a, b, c) FROM STDIN") { writer in
                for row in Self.sampleRows(count: 10_000) {
                    try writer.writeRow([String(row.id), row.a, row.b, row.c.map(CopyTextEncoder.byteaText)])
                }
                written = writer.rowsWritten
            }
            let rows = try connection.query("SELECT id, a, b, c FROM copied ORDER BY id")
            let read = try rows.map { row in
                (try row.int("id"), try row.optionalString("a"), try row.optionalString("b"), try row.optionalBytes("c"))
            }
            return (copied, read, written)
        }
        #expect(copied == 10_000)
        #expect(written == 10_000)
        try #require(read.count == expected.count)
        var mismatches = 0
        for (got, want) in zip(read, expected)
        where got.0 != want.id || got.1 != want.a || got.2 != want.b || got.3 != want.c {
            mismatches += 1
            if mismatches <= 3 { Issue.record("row \(want.id) differs: got \(got), want \(want)") }
        }
        #expect(mismatches == 0)
    }

    @Test("COPY into a missing column fails with copyFailed and the connection stays usable")
    func copyBadColumn() async throws {
        let (error, usable) = try await withConnection { connection in
            try connection.execute("CREATE TABLE target (id int)")
            var error: PostgresError?
            do {
                _ = try connection.copyFrom("COPY target (no_such_column) FROM STDIN") { writer in
                    try writer.writeRow(["1"])
                }
            } catch let failure as PostgresError {
                error = failure
            }
            return (error, try connection.query("SELECT 41 + 1 AS answer")[0].int("answer"))
        }
        #expect(error?.kind == .copyFailed)
        #expect(error?.sqlState == "42703")
        #expect(usable == 42)
    }

    @Test("bad data mid-stream fails with copyFailed, copies nothing, connection stays usable")
    func copyBadData() async throws {
        let (error, count, usable) = try await withConnection { connection in
            try connection.execute("CREATE TABLE target (id int NOT NULL, note text)")
            var error: PostgresError?
            do {
                _ = try connection.copyFrom("COPY target FROM STDIN") { writer in
                    for i in 0..<50_000 {
                        // Row 20,000 is not an integer; the server notices while we still send.
                        try writer.writeRow([i == 20_000 ? "not-a-number" : String(i), "note \(i)"])
                    }
                }
            } catch let failure as PostgresError {
                error = failure
            }
            let count = try connection.query("SELECT count(*) AS n FROM target")[0].int("n")
            return (error, count, try connection.query("SELECT 42 AS answer")[0].int("answer"))
        }
        #expect(error?.kind == .copyFailed)
        #expect(error?.sqlState == "22P02")
        #expect(count == 0)
        #expect(usable == 42)
    }

    @Test("an error thrown by the writer aborts the COPY and is rethrown unchanged")
    func copyWriterThrows() async throws {
        let (caught, count, usable) = try await withConnection { connection in
            try connection.execute("CREATE TABLE target (id int)")
            var caught: TestFailure?
            do {
                _ = try connection.copyFrom("COPY target FROM STDIN") { writer in
                    for i in 0..<1_000 { try writer.writeRow([String(i)]) }
                    try writer.flush()
                    throw TestFailure("writer gave up")
                }
            } catch let failure as TestFailure {
                caught = failure
            }
            let count = try connection.query("SELECT count(*) AS n FROM target")[0].int("n")
            return (caught, count, try connection.query("SELECT 42 AS answer")[0].int("answer"))
        }
        #expect(caught == TestFailure("writer gave up"))
        #expect(count == 0)
        #expect(usable == 42)
    }

    @Test("COPY through query(), or a non-COPY statement through copyFrom, is refused cleanly")
    func copyMisuse() async throws {
        let (viaQuery, viaCopy, usable) = try await withConnection { connection in
            try connection.execute("CREATE TABLE target (id int)")
            var viaQuery: PostgresError?
            do { _ = try connection.query("COPY target FROM STDIN") } catch let e as PostgresError { viaQuery = e }
            var viaCopy: PostgresError?
            do { _ = try connection.copyFrom("SELECT 1") { _ in } } catch let e as PostgresError { viaCopy = e }
            return (viaQuery, viaCopy, try connection.query("SELECT 42 AS answer")[0].int("answer"))
        }
        #expect(viaQuery?.kind == .invalidUsage)
        #expect(viaCopy?.kind == .invalidUsage)
        #expect(usable == 42)
    }
}
