import AssayCore
import Testing

private let prodTrace = TraceFilterSubject(
    traceID: "tr-0123456789abcdef0123456789abcdef",
    state: .ok,
    tags: ["env": "prod", "app_version": "1.8.2", "team-name": "hr", "mlflow.traceName": "agent"],
    metadata: ["mlflow.trace.user": "emp-0001", "app_version": "1.8.2"],
    spanTypes: ["AGENT", "RETRIEVER", "CHAT_MODEL"],
    executionDurationMillis: 6200
)

private let bareTrace = TraceFilterSubject(
    traceID: "4bf92f3577b34da6a3ce929d0e0e4736",
    state: .error,
    tags: [:],
    metadata: [:],
    spanTypes: [],
    executionDurationMillis: nil
)

private func matches(_ text: String, _ subject: TraceFilterSubject) throws -> Bool {
    try TraceFilter.parse(text).matches(subject)
}

private func parseError(_ text: String) -> TraceFilterError? {
    do {
        _ = try TraceFilter.parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite("Trace filters")
struct TraceFilterTests {
    @Test(arguments: [
        ("state = 'OK' AND tags.env = 'prod'", true, false),
        ("state = 'ok'", true, false),
        ("state != 'OK'", false, true),
        ("state IN ('ERROR', 'IN_PROGRESS')", false, true),
        ("span_type CONTAINS 'RETRIEVER'", true, false),
        ("span_types contains 'retriever'", true, false),
        ("span_types NOT CONTAINS 'TOOL'", true, true),
        ("span_types NOT CONTAINS 'AGENT'", false, true),
        ("metadata.\"mlflow.trace.user\" != 'emp-0001'", false, false),
        ("metadata.`mlflow.trace.user` = 'emp-0001'", true, false),
        ("NOT (tags.app_version IN ('1.8.2', '1.9.0'))", false, true),
        ("tags.app_version NOT IN ('1.8.2', '1.9.0')", false, false),
        ("execution_duration_ms > 5000", true, false),
        ("execution_duration_ms >= 6200 and execution_duration_ms <= 6200", true, false),
        ("execution_duration_ms < 6200.5", true, false),
        ("execution_duration_ms <> 6200", false, false),
        ("execution_duration_ms IN (100, 6200)", true, false),
        ("execution_duration_ms > -1", true, false),
        ("tags.team-name = 'hr'", true, false),
        ("tags.\"mlflow.traceName\" = 'agent'", true, false),
        ("trace_id = '0123456789ABCDEF0123456789ABCDEF'", true, false),
        ("trace_id = 'tr-4bf92f3577b34da6a3ce929d0e0e4736'", false, true),
        ("trace_id IN ('x', '4BF92F3577B34DA6A3CE929D0E0E4736')", false, true),
        ("state = 'OK' OR state = 'ERROR' AND tags.env = 'prod'", true, false),  // AND binds tighter
        ("(state = 'OK' OR state = 'ERROR') AND tags.env = 'prod'", true, false),
        ("(state = 'ERROR' OR NOT tags.env = 'prod')", false, true),
        ("NOT NOT state = 'OK'", true, false),
        ("tags.env = 'prod' or span_types contains 'TOOL'", true, false),
    ])
    func evaluation(filter: String, onProd: Bool, onBare: Bool) throws {
        #expect(try matches(filter, prodTrace) == onProd, "\(filter) on prodTrace")
        #expect(try matches(filter, bareTrace) == onBare, "\(filter) on bareTrace")
    }

    /// A comparison on a missing key is false for every operator; NOT flips it.
    @Test func missingKeysAreFalseForEveryOperator() throws {
        #expect(try !matches("tags.env = 'prod'", bareTrace))
        #expect(try !matches("tags.env != 'prod'", bareTrace))
        #expect(try !matches("tags.env IN ('prod')", bareTrace))
        #expect(try !matches("tags.env NOT IN ('prod')", bareTrace))
        #expect(try !matches("metadata.user != 'x'", bareTrace))
        #expect(try matches("NOT (tags.env = 'prod')", bareTrace))
        #expect(try matches("NOT tags.env != 'prod'", bareTrace))
        // Unknown duration: false for every comparison.
        for comparison in ["=", "!=", "<", "<=", ">", ">="] {
            #expect(try !matches("execution_duration_ms \(comparison) 1", bareTrace))
        }
        #expect(try !matches("execution_duration_ms NOT IN (1)", bareTrace))
    }

    @Test func quotesAndEscapes() throws {
        let subject = TraceFilterSubject(
            traceID: "t", state: .ok, tags: ["note": "it's", "we\"ird": "x"], metadata: [:],
            spanTypes: [], executionDurationMillis: 1
        )
        #expect(try matches("tags.note = 'it''s'", subject))
        #expect(try matches("tags.\"we\"\"ird\" = 'x'", subject))
        #expect(try matches("tags.note = ''''", subject) == false)
    }

    @Test func buildsFromATrace() throws {
        let trace = Trace(
            traceID: "tr-0123456789abcdef0123456789abcdef", format: .mlflow3, requestTimeNanos: 0,
            executionDurationMillis: 1200, state: .ok, clientRequestID: nil, requestPreview: nil, responsePreview: nil,
            tags: ["env": "prod"], metadata: ["mlflow.trace.user": "emp-0042"],
            spans: [
                Span(spanID: "0000000000000001", parentSpanID: nil, name: "root", spanType: "AGENT", startTimeNanos: 0,
                     endTimeNanos: 1, status: SpanStatus(code: .ok), inputs: nil, outputs: nil, attributes: [:], events: []),
                Span(spanID: "0000000000000002", parentSpanID: "0000000000000001", name: "r", spanType: "RETRIEVER",
                     startTimeNanos: 0, endTimeNanos: 1, status: SpanStatus(code: .ok), inputs: nil, outputs: nil,
                     attributes: [:], events: []),
            ]
        )
        let subject = TraceFilterSubject(trace: trace)
        #expect(subject.spanTypes == ["AGENT", "RETRIEVER"])
        #expect(subject.executionDurationMillis == 1200)
        let filter = try TraceFilter.parse("span_types CONTAINS 'RETRIEVER' AND metadata.\"mlflow.trace.user\" = 'emp-0042' AND execution_duration_ms < 5000")
        #expect(filter.matches(trace))
        #expect(filter.text == "span_types CONTAINS 'RETRIEVER' AND metadata.\"mlflow.trace.user\" = 'emp-0042' AND execution_duration_ms < 5000")
    }

    @Test func equalityFollowsTheText() throws {
        #expect(try TraceFilter.parse("state = 'OK'") == TraceFilter.parse("state = 'OK'"))
        #expect(try TraceFilter.parse("state = 'OK'") != TraceFilter.parse("state='OK'"))
    }

    @Test(arguments: [
        ("", 0, "empty filter"),
        ("   ", 0, "empty filter"),
        ("state = ", 8, "expected a value after '='"),
        ("tags.env = 'prod' AND state =", 29, "expected a value after '='"),
        ("state = 'SUCCESS'", 8, "unknown state 'SUCCESS'"),
        ("state < 'OK'", 6, "'<' compares numbers; state is a string"),
        ("tags.version > 5", 13, "'>' compares numbers"),
        ("tags.version = 5", 15, "tags.version holds strings: quote the value ('5')"),
        ("execution_duration_ms > '5000'", 24, "execution_duration_ms is a number"),
        ("span_types = 'RETRIEVER'", 11, "use CONTAINS or NOT CONTAINS"),
        ("span_types IN ('RETRIEVER')", 11, "use CONTAINS or NOT CONTAINS"),
        ("tags.env CONTAINS 'prod'", 9, "CONTAINS applies only to span_types"),
        ("foo = 'x'", 0, "unknown field 'foo'"),
        ("State = 'OK'", 0, "unknown field 'State'"),
        ("tags = 'x'", 4, "expected '.' and a key after 'tags'"),
        ("tags. = 'x'", 5, "expected a key after 'tags.'"),
        ("metadata.mlflow.trace.user = 'x'", 9, "a key containing '.' must be quoted"),
        ("tags.\"\" = 'x'", 5, "empty key"),
        ("tags.env = 'prod", 11, "unterminated string"),
        ("tags.\"env = 'prod'", 5, "unterminated quoted key"),
        ("(state = 'OK'", 13, "expected ')' to close the '(' at 0"),
        ("state = 'OK')", 12, "unmatched ')'"),
        ("state = 'OK' state = 'OK'", 13, "expected AND, OR or the end of the filter"),
        ("state == 'OK'", 6, "use '=' (not '==')"),
        ("state ! 'OK'", 6, "unexpected '!'"),
        ("state 'OK'", 6, "expected an operator"),
        ("AND state = 'OK'", 0, "expected a field name, found the keyword AND"),
        ("state = 'OK' AND", 16, "expected a field name"),
        ("tags.env IN 'prod'", 12, "expected '(' and a list of values after IN"),
        ("tags.env IN ()", 13, "expected a value after 'IN ('"),
        ("tags.env IN ('a' 'b')", 17, "expected ',' or ')' in the IN list"),
        ("tags.env NOT LIKE 'x'", 13, "expected IN or CONTAINS after NOT"),
        ("execution_duration_ms > 12abc", 24, "malformed number"),
        ("execution_duration_ms > 1.2.3", 24, "malformed number"),
        ("state = 'OK' ; DROP TABLE traces", 13, "unexpected character ';'"),
        ("span_types CONTAINS ''", 20, "empty span type"),
        ("span_types CONTAINS RETRIEVER", 20, "expected a quoted span type after CONTAINS"),
    ])
    func errors(text: String, offset: Int, messagePart: String) throws {
        let error = try #require(parseError(text), "\(text) should not parse")
        #expect(error.offset == offset, "\(text): \(error)")
        #expect(error.message.contains(messagePart), "\(text): \(error)")
        #expect(error.description == "\(error.message) at \(error.offset)")
    }

    @Test func exactMessageFormat() throws {
        let error = try #require(parseError("tags.env =  "))
        #expect(error.description == "expected a value after '=', found the end of the filter at 12")
    }

    @Test func offsetsCountCharactersNotBytes() throws {
        // "é" and "日本" are one character each / two characters, more bytes.
        let error = try #require(parseError("tags.x = 'é日本' AND ?"))
        #expect(error.offset == 19)
    }

    @Test func limits() throws {
        let deep = String(repeating: "(", count: TraceFilter.maximumDepth) + "state = 'OK'" + String(repeating: ")", count: TraceFilter.maximumDepth)
        #expect(try matches(deep, prodTrace))
        let tooDeep = "(" + deep + ")"
        #expect(parseError(tooDeep)?.message.contains("nests more than 32") == true)
        let notChain = String(repeating: "NOT ", count: 33) + "state = 'OK'"
        #expect(parseError(notChain)?.message.contains("nests more than 32") == true)
        let long = "tags.env = '" + String(repeating: "x", count: TraceFilter.maximumLength) + "'"
        #expect(parseError(long)?.message.contains("longer than 4096") == true)
        let bigList = "execution_duration_ms IN (" + (0...TraceFilter.maximumListCount).map(String.init).joined(separator: ",") + ")"
        #expect(parseError(bigList)?.message.contains("more than 1000 values") == true)
        // A long flat chain of ORs is fine (no recursion per operand).
        let wide = (0..<200).map { "tags.k\($0) = 'v'" }.joined(separator: " OR ")
        #expect(try !matches(wide, prodTrace))
    }
}
