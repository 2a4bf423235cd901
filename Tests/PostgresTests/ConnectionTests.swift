import Foundation
import LocalPostgres
import Logging
import Postgres
import Testing

/// Integration tests of `PostgresConnection` against a real server, each in a fresh database.
@Suite("PostgresConnection", .timeLimit(.minutes(2)))
struct ConnectionTests {
    @Test("a refused connection gives connectionFailed with libpq's reason and no password")
    func connectFailure() async throws {
        let logs = CapturedLogs()
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let configuration = try PostgresConfiguration(
            url: "postgresql://assay:Sup3rSecretPw@127.0.0.1:1/nowhere", connectTimeout: .seconds(5))
        let pool = try PostgresPool(configuration: configuration, size: 1, logger: logs.logger())
        let error = await #expect(throws: PostgresError.self) {
            try await pool.withConnection { _ in 1 }
        }
        await pool.shutdown()
        let failure = try #require(error)
        #expect(failure.kind == .connectionFailed)
        #expect(failure.isConnectionError)
        #expect(failure.description.contains("127.0.0.1"))
        #expect(failure.description.localizedCaseInsensitiveContains("refused"))
        #expect(failure.description.contains("postgresql://assay:***@127.0.0.1:1/nowhere"))
        #expect(!failure.debugDescription.contains("Sup3rSecretPw"))
        #expect(!logs.all.isEmpty)
        #expect(!logs.all.contains { $0.contains("Sup3rSecretPw") })
        // The slot was given back after the failure.
        #expect(pool.idleSlotCount == 1)
    }

    @Test("an unknown database gives connectionFailed naming it")
    func unknownDatabase() async throws {
        let error = try await TestDatabase.withTemporary(prefix: "pgtest") { database -> PostgresError? in
            var components = try #require(URLComponents(string: database.url))
            components.path = "/assay_no_such_database"
            let configuration = try PostgresConfiguration(url: try #require(components.string))
            let pool = try PostgresPool(configuration: configuration, size: 1)
            let error = await #expect(throws: PostgresError.self) { try await pool.withConnection { _ in 1 } }
            await pool.shutdown()
            return error
        }
        #expect(error?.kind == .connectionFailed)
        #expect(error?.message.contains("assay_no_such_database") == true)
    }

    @Test("every parameter type binds, including NULL and optionals")
    func parameterTypes() async throws {
        let date = Date(timeIntervalSince1970: 1_714_566_896.789012)
        let row = try await withConnection { connection in
            let rows = try connection.query(
                """
                SELECT $1::text AS s, $2::int8 AS i, $3::int4 AS i32, $4::int8 AS i64, $5::float8 AS d,
                       $6::bool AS t, $7::bool AS f, $8::bytea AS y, $9::text AS n, $10::int8 AS oi,
                       $11::text AS os, extract(epoch FROM $12::timestamptz)::float8 AS epoch,
                       $13::float8 AS inf, $14::float8 AS nan, $15::float8 AS tiny, pg_typeof($8)::text AS ytype
                """,
                [
                    "héllo ✓", .int(Int.min), .int32(Int32.max), .int64(Int64.max), .double(Double.pi),
                    true, false, .bytes([0, 1, 254, 255]), nil, PostgresValue(Int?.none),
                    PostgresValue(Optional("some")), PostgresValue(date),
                    .double(-Double.infinity), .double(Double.nan), .double(Double.leastNonzeroMagnitude),
                ])
            #expect(rows.count == 1)
            return rows[0]
        }
        #expect(try row.string("s") == "héllo ✓")
        #expect(try row.int("i") == Int.min)
        #expect(try row.int("i32") == Int(Int32.max))
        #expect(try row.int64("i64") == Int64.max)
        #expect(try row.double("d") == Double.pi)
        #expect(try row.bool("t") == true)
        #expect(try row.bool("f") == false)
        #expect(try row.bytes("y") == [0, 1, 254, 255])
        #expect(try row.string("ytype") == "bytea")
        #expect(try row.isNull("n"))
        #expect(try row.optionalString("n") == nil)
        #expect(try row.optionalInt("oi") == nil)
        #expect(try row.optionalString("os") == "some")
        #expect(abs(try row.double("epoch") - date.timeIntervalSince1970) < 1e-6)
        #expect(try row.double("inf") == -Double.infinity)
        #expect(try row.double("nan").isNaN)
        #expect(try row.double("tiny") == Double.leastNonzeroMagnitude)
        // By index too.
        #expect(try row.string(0) == "héllo ✓")
        #expect(try row.optionalInt64(8) == nil)
    }

    @Test("bytea round-trips all 256 byte values, and empty bytea is not NULL")
    func byteaRoundTrip() async throws {
        let all = (0...255).map { UInt8($0) }
        let (stored, serverChecks, empty) = try await withConnection { connection in
            try connection.execute("CREATE TABLE blobs (id int PRIMARY KEY, data bytea)")
            #expect(try connection.execute("INSERT INTO blobs VALUES (1, $1), (2, $2)", [.bytea(all), .bytea([])]) == 2)
            let stored = try connection.query("SELECT data FROM blobs WHERE id = 1")[0].bytes("data")
            // The server saw exactly the bytes 0...255 in order.
            let checks = try connection.query(
                "SELECT length($1) AS n, (SELECT bool_and(get_byte($1, i) = i) FROM generate_series(0, 255) AS i) AS ok",
                [.bytea(all)])[0]
            let empty = try connection.query("SELECT data IS NULL AS isnull, length(data) AS n, data FROM blobs WHERE id = 2")[0]
            return (stored, [try checks.int("n"), try checks.bool("ok") ? 1 : 0], empty)
        }
        #expect(stored == all)
        #expect(serverChecks == [256, 1])
        #expect(try empty.bool("isnull") == false)
        #expect(try empty.int("n") == 0)
        #expect(try empty.bytes("data") == [])
    }

    @Test("text with quotes, backslashes and SQL is bound, never interpolated")
    func noInterpolation() async throws {
        let nasty = [
            "O'Reilly", "'; DROP TABLE notes; --", "\\", "\\x41", "\"quoted\"", "$1", "E'\\n'", "line\nbreak\ttab",
            "", " leading", "🙂 emoji", "back\\slash'quote\"dq", "%_like", "\r\n",
        ]
        let (read, count, exists) = try await withConnection { connection in
            try connection.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
            for (id, text) in nasty.enumerated() {
                #expect(try connection.execute("INSERT INTO notes (id, body) VALUES ($1, $2)", [.int(id), .string(text)]) == 1)
            }
            let read = try connection.query("SELECT body FROM notes ORDER BY id").map { try $0.string("body") }
            let matches = try connection.query("SELECT count(*) AS n FROM notes WHERE body = $1", ["'; DROP TABLE notes; --"])[0].int("n")
            let exists = try connection.query("SELECT to_regclass('notes') IS NOT NULL AS e")[0].bool("e")
            return (read, matches, exists)
        }
        #expect(read == nasty)
        #expect(count == 1)
        #expect(exists)
    }

    @Test("a NUL character in a text parameter is refused before sending")
    func nulInText() async throws {
        let error = try await withConnection { connection -> PostgresError? in
            defer { #expect((try? connection.query("SELECT 1 AS one")[0].int("one")) == 1) }
            do {
                _ = try connection.query("SELECT $1::text", ["a\u{0}b"])
                return nil
            } catch let error as PostgresError {
                return error
            }
        }
        #expect(error?.kind == .invalidUsage)
    }

    @Test("a duplicate key gives sqlState 23505 and keeps the key out of description")
    func uniqueViolation() async throws {
        let error = try await withConnection { connection -> PostgresError? in
            try connection.execute("CREATE TABLE users (email text PRIMARY KEY)")
            try connection.execute("INSERT INTO users VALUES ($1)", ["alice@example.com"])
            do {
                try connection.execute("INSERT INTO users VALUES ($1)", ["alice@example.com"])
                return nil
            } catch let error as PostgresError {
                // Still usable after the error.
                #expect(try connection.query("SELECT count(*) AS n FROM users")[0].int("n") == 1)
                return error
            }
        }
        let failure = try #require(error)
        #expect(failure.kind == .queryFailed)
        #expect(failure.sqlState == "23505")
        #expect(failure.isUniqueViolation)
        #expect(!failure.isConnectionError)
        #expect(failure.constraintName == "users_pkey")
        #expect(!failure.description.contains("alice@example.com"))
        #expect(failure.debugDescription.contains("alice@example.com"))
    }

    @Test("execute returns affected rows; executeScript runs several statements")
    func affectedRows() async throws {
        let counts = try await withConnection { connection in
            try connection.executeScript(
                "CREATE TABLE items (id int PRIMARY KEY, qty int); CREATE INDEX items_qty ON items (qty);")
            return [
                try connection.execute("INSERT INTO items SELECT i, i % 2 FROM generate_series(1, 5) AS i"),
                try connection.execute("UPDATE items SET qty = qty + 1 WHERE qty = $1", [1]),
                try connection.execute("DELETE FROM items WHERE id > $1", [4]),
                try connection.execute("CREATE TABLE other (id int)"),
                try connection.query("SELECT * FROM items").affectedRows,
            ]
        }
        #expect(counts == [5, 3, 1, 0, 4])
    }

    @Test("decoding failures name the column and keep the value out of description")
    func decodingErrors() async throws {
        let row = try await withConnection { connection in
            try connection.query("SELECT 'secret-word'::text AS word, NULL::int AS nothing, '\\x4'::text AS hex")[0]
        }
        let notInt = #expect(throws: PostgresError.self) { try row.int64("word") }
        #expect(notInt?.kind == .decodingFailed)
        #expect(notInt?.columnName == "word")
        #expect(notInt?.description.contains("word") == true)
        #expect(notInt?.description.contains("secret-word") == false)
        let null = #expect(throws: PostgresError.self) { try row.int("nothing") }
        #expect(null?.kind == .decodingFailed)
        #expect(null?.message.contains("NULL") == true)
        #expect(try row.optionalInt("nothing") == nil)
        let missing = #expect(throws: PostgresError.self) { try row.string("no_such_column") }
        #expect(missing?.kind == .decodingFailed)
        #expect(missing?.columnName == "no_such_column")
        #expect(throws: PostgresError.self) { try row.string(7) }
        #expect(throws: PostgresError.self) { try row.bytes("hex") }
        #expect(throws: PostgresError.self) { try row.bool("word") }
        #expect(throws: PostgresError.self) { try row.double("word") }
    }

    @Test("searchPath is applied with quoted identifiers")
    func searchPath() async throws {
        let schema = "Odd \"Schema\"; x"
        // Create the schema through a first pool, then connect with the search path set.
        try await TestDatabase.withTemporary(prefix: "pgtest") { database in
            let plain = try PostgresPool(configuration: PostgresConfiguration(url: database.url), size: 1)
            try await plain.withConnection { connection in
                let quoted = try connection.escapeIdentifier(schema)
                try connection.executeScript("CREATE SCHEMA \(quoted); CREATE TABLE \(quoted).marker (v int); INSERT INTO \(quoted).marker VALUES (7);")
            }
            await plain.shutdown()
            let configured = try PostgresPool(
                configuration: PostgresConfiguration(url: database.url, searchPath: [schema, "public"]), size: 1)
            let (value, first) = try await configured.withConnection { connection in
                (try connection.query("SELECT v FROM marker")[0].int("v"),
                 try connection.query("SELECT (current_schemas(false))[1] AS s")[0].string("s"))
            }
            await configured.shutdown()
            #expect(value == 7)
            #expect(first == schema)
        }
    }
}

/// Transactions.
@Suite("PostgresConnection transactions", .timeLimit(.minutes(2)))
struct TransactionTests {
    @Test("commit keeps the rows; a throw rolls back and rethrows the same error")
    func commitAndRollback() async throws {
        let (committed, afterRollback, caught, inTransaction) = try await withConnection { connection in
            try connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
            let value = try connection.transaction { tx in
                try tx.execute("INSERT INTO t VALUES (1)")
                return "done"
            }
            #expect(value == "done")
            let committed = try connection.query("SELECT count(*) AS n FROM t WHERE id = 1")[0].int("n")
            var caught: TestFailure?
            do {
                try connection.transaction { tx in
                    try tx.execute("INSERT INTO t VALUES (2)")
                    throw TestFailure("boom")
                }
            } catch let error as TestFailure {
                caught = error
            }
            let afterRollback = try connection.query("SELECT count(*) AS n FROM t WHERE id = 2")[0].int("n")
            return (committed, afterRollback, caught, connection.isInTransaction)
        }
        #expect(committed == 1)
        #expect(afterRollback == 0)
        #expect(caught == TestFailure("boom"))
        #expect(!inTransaction)
    }

    @Test("a swallowed SQL error makes COMMIT report transactionRolledBack; nesting is refused")
    func failedTransaction() async throws {
        let (commitError, nestedError, rows) = try await withConnection { connection in
            try connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
            var commitError: PostgresError?
            do {
                try connection.transaction { tx in
                    try tx.execute("INSERT INTO t VALUES (1)")
                    _ = try? tx.execute("INSERT INTO t VALUES (1)")  // fails; error ignored
                }
            } catch let error as PostgresError {
                commitError = error
            }
            var nestedError: PostgresError?
            do {
                try connection.transaction { tx in try tx.transaction { _ in } }
            } catch let error as PostgresError {
                nestedError = error
            }
            return (commitError, nestedError, try connection.query("SELECT count(*) AS n FROM t")[0].int("n"))
        }
        #expect(commitError?.kind == .transactionRolledBack)
        #expect(nestedError?.kind == .invalidUsage)
        #expect(rows == 0)
    }

    @Test("a failed ROLLBACK on a broken connection does not mask the original error")
    func rollbackOnBrokenConnection() async throws {
        let (caught, healthy) = try await withPool { pool, database in
            try await pool.withConnection { connection in
                try connection.execute("CREATE TABLE t (id int)")
                var caught: Error?
                do {
                    try connection.transaction { tx in
                        try tx.execute("INSERT INTO t VALUES (1)")
                        // Kill this backend from a second connection (same thread), then fail.
                        let admin = try PostgresConnection.connect(PostgresConfiguration(url: database.url))
                        defer { admin.close() }
                        let killed = try admin.query(
                            "SELECT pg_terminate_backend($1::int, 10000) AS ok", [.int32(tx.backendPID)])[0].bool("ok")
                        #expect(killed)
                        throw TestFailure("original")
                    }
                } catch {
                    caught = error
                }
                return ((caught as? TestFailure), connection.isHealthy)
            }
        }
        #expect(caught == TestFailure("original"))
        #expect(!healthy)
    }
}
