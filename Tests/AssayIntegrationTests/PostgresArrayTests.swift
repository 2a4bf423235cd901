import AssayCore
import AssayStore
import Postgres
import Testing

/// Array literals for bound parameters, read back through PostgreSQL's own parser.
@Suite("PostgreSQL array literals")
struct PostgresArrayTests {
    @Test("text elements come back as they were: quotes, backslashes, commas, braces, spaces, NULL-like words, non-ASCII; NUL replaced")
    func textRoundTrip() async throws {
        let values = ["", "plain", "with \"quotes\"", #"back\slash\"#, "a,b", "{braces}", "  spaced  ", "NULL", "null",
                      "naïve ☃ 𝄞", "tab\tand\nnewline", "nul\u{0}inside", String(repeating: "x", count: 3000)]
        try await Environment.with(partitions: 1) { env in
            let (back, empty) = try await env.pool.withConnection { connection in
                let back = try connection.query("SELECT v FROM unnest($1::text[]) WITH ORDINALITY AS u(v, n) ORDER BY n",
                                                [.text(PostgresArray.text(values))]).map { try $0.optionalString(0) }
                let empty = try connection.query("SELECT cardinality($1::text[])", [.text(PostgresArray.text([]))])[0].int(0)
                return (back, empty)
            }
            #expect(back == values.map { Optional($0.sanitizedForPostgres) })
            #expect(back[11] == "nul\u{FFFD}inside")
            #expect(empty == 0)
        }
    }
}
