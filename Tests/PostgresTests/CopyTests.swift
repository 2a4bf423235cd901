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

    @Test("binary COPY stores int4, int8, float8, timestamptz, text, jsonb and NULL exactly, also from one large raw write")
    func binaryCopyRoundTrip() async throws {
        let texts = ["plain", "tab\there", "back\\slash", "\\N", "héllo ✓ 🙂", "", "new\nline"]
        let count = 6_000  // the tuples together are over 1 MiB: sent directly, in more than one piece
        func expected(_ id: Int) -> (int8: Int64, float8: Double, micros: Int64, text: String?, json: String) {
            let micros: Int64 = id % 2 == 0 ? 1_770_000_000_123_456 + Int64(id) : -1_234_567_890_123 - Int64(id)  // before 1970 too
            return (Int64(id) * -3_000_000_007, Double(id) / 7 - 100, micros, id % 5 == 0 ? nil : texts[id % texts.count] + String(repeating: "x", count: id % 300),
                    "{\"k\": [\(id), \"é\\t\"]}")
        }
        var tuples: [UInt8] = []
        for id in 0..<count {
            let value = expected(id)
            CopyBinaryEncoder.beginTuple(fieldCount: 6, in: &tuples)
            CopyBinaryEncoder.appendInt32(Int32(id), to: &tuples)
            CopyBinaryEncoder.appendInt64(value.int8, to: &tuples)
            CopyBinaryEncoder.appendFloat8(value.float8, to: &tuples)
            CopyBinaryEncoder.appendTimestamp(microsSinceUnixEpoch: value.micros, to: &tuples)
            if let text = value.text {
                CopyBinaryEncoder.appendField(to: &tuples) { $0.append(contentsOf: text.utf8) }
            } else {
                CopyBinaryEncoder.appendNull(to: &tuples)
            }
            CopyBinaryEncoder.appendJSONB(to: &tuples) { $0.append(contentsOf: value.json.utf8) }
        }
        #expect(tuples.count > 8 * CopyInWriter.chunkSize)
        let stream = tuples
        let (copied, rows) = try await withConnection { connection in
            try connection.execute("CREATE TABLE binary_copied (id int4 PRIMARY KEY, i8 int8, f8 float8, at timestamptz, t text, j jsonb)")
            let copied = try connection.copyFrom("COPY binary_copied FROM STDIN WITH (FORMAT binary)") { writer in
                try writer.writeRaw(CopyBinaryEncoder.header)
                try writer.writeRaw(stream)
                try writer.writeRaw(CopyBinaryEncoder.trailer)
            }
            let rows = try connection.query("""
                SELECT id, i8, f8::text, (extract(epoch FROM at) * 1000000)::bigint, t FROM binary_copied ORDER BY id
                """).map { row in
                (try row.int(0), try row.int64(1), try row.string(2), try row.int64(3), try row.optionalString(4))
            }
            let jsonMatches = try connection.query("SELECT count(*) FROM binary_copied WHERE j->'k'->>0 = id::text AND j->'k'->>1 = E'é\\t'")[0].int(0)
            return (copied, (rows, jsonMatches))
        }
        #expect(copied == count)
        try #require(rows.0.count == count)
        #expect(rows.1 == count)
        var mismatches = 0
        for (id, row) in rows.0.enumerated() {
            let want = expected(id)
            if row.0 != id || row.1 != want.int8 || Double(row.2) != want.float8 || row.3 != want.micros || row.4 != want.text {
                mismatches += 1
                if mismatches <= 3 { Issue.record("row \(id) differs: got \(row), want \(want)") }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("the binary header and trailer are PostgreSQL's, and a field's length counts its bytes")
    func binaryLayout() {
        #expect(CopyBinaryEncoder.header == Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [UInt8](repeating: 0, count: 8))
        #expect(CopyBinaryEncoder.trailer == [0xFF, 0xFF])
        var tuple: [UInt8] = []
        CopyBinaryEncoder.beginTuple(fieldCount: 4, in: &tuple)
        CopyBinaryEncoder.appendInt32(-2, to: &tuple)
        CopyBinaryEncoder.appendNull(to: &tuple)
        CopyBinaryEncoder.appendField(to: &tuple) { $0.append(contentsOf: "ab✓".utf8) }
        CopyBinaryEncoder.appendTimestamp(microsSinceUnixEpoch: 946_684_800_000_001, to: &tuple)
        #expect(tuple == [0, 4,
                          0, 0, 0, 4, 0xFF, 0xFF, 0xFF, 0xFE,
                          0xFF, 0xFF, 0xFF, 0xFF,
                          0, 0, 0, 5, 0x61, 0x62, 0xE2, 0x9C, 0x93,
                          0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1])
    }
}
