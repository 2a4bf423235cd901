import Foundation
import LocalPostgres
import Logging
@testable import Postgres
import Testing

/// The bookkeeping of prepared statements, without a server.
@Suite("Statement cache rules")
struct StatementCacheRuleTests {
    static let one = StatementCache.Key(sql: "SELECT 1", types: [])
    static let two = StatementCache.Key(sql: "SELECT 2", types: [])
    static let three = StatementCache.Key(sql: "SELECT 3", types: [])

    @Test("a statement is prepared at its second use and run by name after that")
    func secondUse() {
        var cache = StatementCache(capacity: 4)
        #expect(cache.decide(Self.one) == .unprepared)
        #expect(cache.decide(Self.one) == .prepare(name: "assay_stmt_1"))
        #expect(cache.decide(Self.one) == .prepared(name: "assay_stmt_1"))
        #expect(cache.preparedCount == 1)
        // The same text with a typed (bytea) parameter is another statement.
        let typed = StatementCache.Key(sql: "SELECT 1", types: [17])
        #expect(cache.decide(typed) == .unprepared)
        #expect(cache.decide(typed) == .prepare(name: "assay_stmt_2"))
        #expect(cache.takeDeallocations().isEmpty)
    }

    @Test("at most capacity statements are kept; the least recently used goes, and its name is deallocated")
    func leastRecentlyUsedGoes() {
        var cache = StatementCache(capacity: 2)
        _ = cache.decide(Self.one)
        _ = cache.decide(Self.one)  // prepared: assay_stmt_1
        _ = cache.decide(Self.two)
        _ = cache.decide(Self.one)  // one is now the most recent
        _ = cache.decide(Self.three)  // evicts two (used once, never prepared)
        #expect(cache.takeDeallocations().isEmpty)
        _ = cache.decide(Self.three)  // prepared: assay_stmt_2
        _ = cache.decide(Self.two)  // evicts one, the least recently used now
        #expect(cache.takeDeallocations() == ["assay_stmt_1"])
        #expect(cache.takeDeallocations().isEmpty)
        #expect(cache.preparedCount == 1)
        #expect(cache.decide(Self.one) == .unprepared)  // forgotten: counted afresh
    }

    @Test("capacity 0 never prepares")
    func off() {
        var cache = StatementCache(capacity: 0)
        for _ in 0..<3 { #expect(cache.decide(Self.one) == .unprepared) }
        #expect(cache.preparedCount == 0)
    }

    @Test("a refused PREPARE leaves no name behind; turning off and invalidating do what they say")
    func failures() {
        var cache = StatementCache(capacity: 4)
        _ = cache.decide(Self.one)
        #expect(cache.decide(Self.one) == .prepare(name: "assay_stmt_1"))
        cache.preparationFailed(Self.one)
        #expect(cache.takeDeallocations().isEmpty)
        #expect(cache.decide(Self.one) == .unprepared)
        #expect(cache.decide(Self.one) == .prepare(name: "assay_stmt_2"))

        cache.invalidate(Self.one)
        #expect(cache.takeDeallocations() == ["assay_stmt_2"])
        #expect(cache.decide(Self.one) == .unprepared)

        _ = cache.decide(Self.two)
        _ = cache.decide(Self.two)
        cache.invalidate(Self.one)
        cache.turnOff()
        #expect(cache.takeDeallocations().isEmpty)  // the server's names are not ours to trust
        for _ in 0..<3 { #expect(cache.decide(Self.two) == .unprepared) }
    }
}

/// Prepared statements against a real server.
@Suite("PostgresConnection prepared statements", .timeLimit(.minutes(2)))
struct PreparedStatementTests {
    /// Runs `body` on a connection with the given statement cache, in a fresh database.
    func withCachedConnection<T: Sendable>(capacity: Int, logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                                           _ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await TestDatabase.withTemporary(prefix: "pgtest") { database in
            let configuration = try PostgresConfiguration(url: database.url, statementCacheCapacity: capacity)
            let pool = try PostgresPool(configuration: configuration, size: 1, logger: logger)
            do {
                let result = try await pool.withConnection(body)
                await pool.shutdown()
                return result
            } catch {
                await pool.shutdown()
                throw error
            }
        }
    }

    /// The statements prepared on `connection`, by their SQL text.
    static func prepared(on connection: PostgresConnection) throws -> [String] {
        try connection.query("SELECT statement FROM pg_prepared_statements ORDER BY statement").map { try $0.string(0) }
    }

    static let addOne = "SELECT $1::int8 + 1, $2::bytea, $3::text"

    @Test("a statement used again is prepared once and gives the same rows; capacity 0 prepares nothing")
    func preparedOnce() async throws {
        for capacity in [0, 8] {
            let (results, prepared) = try await withCachedConnection(capacity: capacity) { connection in
                var results: [String] = []
                for value in 1...4 {
                    let row = try #require(try connection.query(Self.addOne, [.text(String(value)), .bytea([0, 1, UInt8(value)]), .null]).first)
                    results.append("\(try row.int64(0)) \(try row.string(1)) \(try row.isNull(2))")
                }
                return (results, try Self.prepared(on: connection))
            }
            #expect(results == ["2 \\x000101 true", "3 \\x000102 true", "4 \\x000103 true", "5 \\x000104 true"], "capacity \(capacity)")
            #expect(prepared == (capacity == 0 ? [] : [Self.addOne]), "capacity \(capacity)")
        }
    }

    @Test("the server holds at most capacity statements: evicted ones are deallocated")
    func bounded() async throws {
        let statements = (1...6).map { "SELECT \($0) + $1::int" }
        let prepared = try await withCachedConnection(capacity: 3) { connection in
            for sql in statements {
                for _ in 0..<2 { _ = try connection.query(sql, [.text("1")]) }
            }
            return try Self.prepared(on: connection)
        }
        // Six were prepared; the first three were deallocated as they were evicted.
        #expect(prepared == Array(statements.suffix(3)))
    }

    @Test("a statement the server forgot (DISCARD ALL, a pooler) runs unnamed, and preparing stops on that connection")
    func serverForgot() async throws {
        let logs = CapturedLogs()
        let (outside, inside, after, prepared) = try await withCachedConnection(capacity: 8, logger: logs.logger()) { connection in
            for _ in 0..<2 { _ = try connection.query(Self.addOne, [.text("1"), .null, .null]) }
            try connection.executeScript("DEALLOCATE ALL")
            // Outside a transaction the statement had not run, so it runs again unnamed.
            let outside = try connection.query(Self.addOne, [.text("41"), .null, .null]).first.map { try $0.int64(0) }
            // Inside one, the failure fails the transaction: it is thrown, not hidden.
            for _ in 0..<2 { _ = try connection.query("SELECT $1::int", [.text("1")]) }
            try connection.executeScript("DEALLOCATE ALL")
            var inside: String?
            do {
                try connection.transaction { connection in _ = try connection.query("SELECT $1::int", [.text("2")]) }
            } catch let error as PostgresError {
                inside = error.sqlState
            }
            let after = try connection.query("SELECT $1::int", [.text("3")]).first.map { try $0.int(0) }
            for _ in 0..<3 { _ = try connection.query("SELECT $1::int * 2", [.text("3")]) }
            return (outside, inside, after, try Self.prepared(on: connection))
        }
        #expect(outside == 42)
        // The first failure already turned preparing off, so the statement in the transaction
        // ran unnamed: no error at all.
        #expect(inside == nil)
        #expect(after == 3)
        #expect(prepared.isEmpty)
        #expect(logs.all.contains { $0.hasPrefix("warning") && $0.contains("26000") })
    }

    @Test("inside a transaction, a forgotten statement fails the transaction with 26000")
    func serverForgotInsideTransaction() async throws {
        let (failure, after) = try await withCachedConnection(capacity: 8) { connection in
            for _ in 0..<2 { _ = try connection.query("SELECT $1::int", [.text("1")]) }
            try connection.executeScript("DEALLOCATE ALL")
            var failure: String?
            do {
                try connection.transaction { connection in _ = try connection.query("SELECT $1::int", [.text("2")]) }
            } catch let error as PostgresError {
                failure = error.sqlState
            }
            return (failure, try connection.query("SELECT $1::int", [.text("3")]).first.map { try $0.int(0) })
        }
        #expect(failure == "26000")
        #expect(after == 3)
    }

    @Test("a statement whose table changed shape is prepared again")
    func tableChanged() async throws {
        let (columns, prepared) = try await withCachedConnection(capacity: 8) { connection in
            try connection.executeScript("CREATE TABLE shapes (a int); INSERT INTO shapes VALUES (1)")
            for _ in 0..<2 { _ = try connection.query("SELECT * FROM shapes WHERE a = $1::int", [.text("1")]) }
            try connection.executeScript("ALTER TABLE shapes ADD COLUMN b int DEFAULT 7")
            var columns: [Int] = []
            for _ in 0..<3 {
                let row = try #require(try connection.query("SELECT * FROM shapes WHERE a = $1::int", [.text("1")]).first)
                columns.append(try row.int(1))
            }
            return (columns, try Self.prepared(on: connection))
        }
        #expect(columns == [7, 7, 7])
        #expect(prepared == ["SELECT * FROM shapes WHERE a = $1::int"])
    }

    @Test("errors are the same prepared or not: a syntax error at PREPARE, a runtime error at execution")
    func sameErrors() async throws {
        let states = try await withCachedConnection(capacity: 8) { connection in
            var states: [String?] = []
            for _ in 0..<3 {
                do { _ = try connection.query("SELECT FROM WHERE $1", [.text("1")]) } catch let error as PostgresError { states.append(error.sqlState) }
            }
            for divisor in ["1", "1", "0", "0"] {
                do { _ = try connection.query("SELECT 10 / $1::int", [.text(divisor)]) } catch let error as PostgresError { states.append(error.sqlState) }
            }
            try connection.transaction { connection in
                do { _ = try connection.query("SELECT 10 / $1::int", [.text("0")]) } catch let error as PostgresError { states.append(error.sqlState) }
                do { _ = try connection.query("SELECT 10 / $1::int", [.text("1")]) } catch let error as PostgresError { states.append(error.sqlState) }
                try connection.executeScript("ROLLBACK; BEGIN")
            }
            return states
        }
        #expect(states == ["42601", "42601", "42601", "22012", "22012", "22012", "25P02"])
    }
}
