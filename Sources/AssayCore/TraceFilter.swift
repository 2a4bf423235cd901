// A small, safe filter language for choosing which traces a scorer sees.
// Parsed into an AST and evaluated in Swift; it is never turned into SQL.

/// A parsed per-scorer trace filter, such as `state = 'OK' AND tags.env = 'prod'`.
///
/// ## Grammar (keywords are case-insensitive; field names are lowercase)
/// ```
/// filter     := or
/// or         := and ( OR and )*
/// and        := unary ( AND unary )*
/// unary      := NOT unary | '(' or ')' | comparison
/// comparison := field op value                      op: = != <> < <= > >=
///             | field [NOT] IN '(' value (',' value)* ')'
///             | span_types [NOT] CONTAINS string
/// field      := state | trace_id | execution_duration_ms | span_types (or span_type)
///             | tags.key | metadata.key
/// key        := [A-Za-z0-9_-]+ | "any text" | `any text`   (quote keys that contain dots)
/// value      := 'single-quoted string' ('' is a quote) | number (-?digits[.digits])
/// ```
///
/// ## Fields
/// - `state` — the trace state (`OK`, `ERROR`, `IN_PROGRESS`, `STATE_UNSPECIFIED`; the value is
///   checked when parsing and matched case-insensitively). `=`, `!=`, `IN`, `NOT IN`.
/// - `trace_id` — compared in canonical form (``Trace/canonicalTraceID(for:)``), so
///   `'tr-<32 hex>'` and the bare hex digits match the same trace. `=`, `!=`, `IN`, `NOT IN`.
/// - `tags.<key>`, `metadata.<key>` — string values: `=`, `!=`, `IN`, `NOT IN` only.
///   Example: `metadata."mlflow.trace.user" != 'emp-0001'`.
/// - `execution_duration_ms` — a number: all six comparisons and `IN` / `NOT IN`.
/// - `span_types` (alias `span_type`) — the set of span types present in the trace:
///   `span_types CONTAINS 'RETRIEVER'`, `span_types NOT CONTAINS 'TOOL'` (case-insensitive).
///
/// ## Missing values
/// A comparison whose field is absent (a tag or metadata key the trace does not have, or an
/// unknown duration) is **false whatever the operator, `!=` and `NOT IN` included**, as in SQL
/// and MLflow's trace search. To include traces without a key, negate the positive test:
/// `NOT (tags.env = 'prod')` is true for a trace with no `env` tag, `tags.env != 'prod'` is not.
///
/// ## Limits
/// At most ``maximumLength`` characters, ``maximumDepth`` nested parentheses/`NOT`s and
/// ``maximumListCount`` values in one `IN` list, so a hostile filter cannot exhaust memory or stack.
public struct TraceFilter: Sendable, Equatable, CustomStringConvertible {
    /// The longest accepted filter, in characters.
    public static let maximumLength = 4096
    /// The most parentheses and `NOT`s that may be nested.
    public static let maximumDepth = 32
    /// The most values in one `IN` list.
    public static let maximumListCount = 1000

    /// The filter exactly as written.
    public let text: String
    let expression: FilterExpression

    /// Parses `text`, or throws an error naming the character offset (from 0) of the problem.
    public static func parse(_ text: String) throws(TraceFilterError) -> TraceFilter {
        var parser = FilterParser(text: text)
        let expression = try parser.parseFilter()
        return TraceFilter(text: text, expression: expression)
    }

    /// Whether the trace described by `subject` passes the filter.
    public func matches(_ subject: TraceFilterSubject) -> Bool {
        expression.evaluate(subject)
    }

    /// Whether `trace` passes the filter.
    public func matches(_ trace: Trace) -> Bool {
        matches(TraceFilterSubject(trace: trace))
    }

    public var description: String { text }
}

/// Why a filter does not parse: a message and the character offset (from 0) it refers to.
///
/// `description` reads like `expected a value after '=' at 14`.
public struct TraceFilterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Offset in characters (extended grapheme clusters) from the start of the filter text.
    public var offset: Int
    /// What is wrong, without the offset.
    public var message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(message) at \(offset)" }
}

/// The facts about one trace that a ``TraceFilter`` can test.
///
/// Build it from a decoded ``Trace`` or from the columns stored for one.
public struct TraceFilterSubject: Sendable, Equatable {
    /// The trace id (as sent or canonical; it is canonicalised when compared).
    public var traceID: String
    public var state: TraceState
    public var tags: [String: String]
    public var metadata: [String: String]
    /// The span types present in the trace (compared case-insensitively).
    public var spanTypes: Set<String>
    /// The trace's duration, when known.
    public var executionDurationMillis: Int64?

    public init(
        traceID: String,
        state: TraceState,
        tags: [String: String],
        metadata: [String: String],
        spanTypes: Set<String>,
        executionDurationMillis: Int64?
    ) {
        self.traceID = traceID
        self.state = state
        self.tags = tags
        self.metadata = metadata
        self.spanTypes = spanTypes
        self.executionDurationMillis = executionDurationMillis
    }

    /// The subject for a decoded trace; span types are those of all its spans.
    public init(trace: Trace) {
        self.init(
            traceID: trace.traceID,
            state: trace.state,
            tags: trace.tags,
            metadata: trace.metadata,
            spanTypes: Set(trace.spans.compactMap(\.spanType)),
            executionDurationMillis: trace.executionDurationMillis
        )
    }
}

// MARK: - AST

/// A comparison operator on numbers.
enum FilterComparison: String, Sendable, Equatable {
    case equal = "="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="

    func holds(_ left: Double, _ right: Double) -> Bool {
        switch self {
        case .equal: return left == right
        case .notEqual: return left != right
        case .less: return left < right
        case .lessOrEqual: return left <= right
        case .greater: return left > right
        case .greaterOrEqual: return left >= right
        }
    }
}

/// A string-valued field.
enum FilterStringField: Sendable, Equatable {
    case state
    case traceID
    case tag(String)
    case metadata(String)

    /// The field's value for `subject`, normalised as the parser normalises literals; nil when absent.
    func value(in subject: TraceFilterSubject) -> String? {
        switch self {
        case .state: return subject.state.rawValue
        case .traceID: return Trace.canonicalTraceID(for: subject.traceID)
        case .tag(let key): return subject.tags[key]
        case .metadata(let key): return subject.metadata[key]
        }
    }
}

/// The filter's syntax tree. `and`/`or` are flattened, so evaluation recurses only through
/// parentheses and `NOT`, which the parser bounds.
indirect enum FilterExpression: Sendable, Equatable {
    case and([FilterExpression])
    case or([FilterExpression])
    case not(FilterExpression)
    /// `field = v`, `field != v`, `field IN (...)`, `field NOT IN (...)`: true iff the field is
    /// present and (its value is in `values`) == `member`.
    case stringMembership(FilterStringField, values: [String], member: Bool)
    /// `execution_duration_ms op v`; false when the duration is unknown.
    case duration(FilterComparison, Double)
    /// `execution_duration_ms [NOT] IN (...)`; false when the duration is unknown.
    case durationMembership(values: [Double], member: Bool)
    /// `span_types [NOT] CONTAINS 'T'` with `T` upper-cased.
    case spanTypeContains(String, negated: Bool)

    func evaluate(_ subject: TraceFilterSubject) -> Bool {
        switch self {
        case .and(let operands):
            return operands.allSatisfy { $0.evaluate(subject) }
        case .or(let operands):
            return operands.contains { $0.evaluate(subject) }
        case .not(let operand):
            return !operand.evaluate(subject)
        case .stringMembership(let field, let values, let member):
            guard let value = field.value(in: subject) else { return false }
            return values.contains(value) == member
        case .duration(let comparison, let literal):
            guard let duration = subject.executionDurationMillis else { return false }
            return comparison.holds(Double(duration), literal)
        case .durationMembership(let values, let member):
            guard let duration = subject.executionDurationMillis else { return false }
            return values.contains(Double(duration)) == member
        case .spanTypeContains(let type, let negated):
            let present = subject.spanTypes.contains { $0.uppercased() == type }
            return present != negated
        }
    }
}

// MARK: - Parser

/// One lexical token and where it starts.
private struct FilterToken {
    enum Kind: Equatable {
        case word(String)
        case number(String)
        case string(String)
        case quotedName(String)
        case dot
        case openParen
        case closeParen
        case comma
        case comparison(FilterComparison)
        case end
    }

    var kind: Kind
    var offset: Int
    var endOffset: Int

    /// How the token is named in error messages.
    var display: String {
        switch kind {
        case .word(let word): return "'\(word)'"
        case .number(let lexeme): return "'\(lexeme)'"
        case .string: return "a string"
        case .quotedName: return "a quoted name"
        case .dot: return "'.'"
        case .openParen: return "'('"
        case .closeParen: return "')'"
        case .comma: return "','"
        case .comparison(let comparison): return "'\(comparison.rawValue)'"
        case .end: return "the end of the filter"
        }
    }

    func isKeyword(_ keyword: String) -> Bool {
        if case .word(let word) = kind { return word.uppercased() == keyword }
        return false
    }
}

/// A recursive-descent parser over the filter's characters, lexing on demand.
private struct FilterParser {
    private static let keywords: Set<String> = ["AND", "OR", "NOT", "IN", "CONTAINS"]
    private static let fieldList = "state, trace_id, execution_duration_ms, span_types, tags.<key> or metadata.<key>"

    private let characters: [Character]
    private var position = 0
    private var peeked: FilterToken?
    private var depth = 0

    init(text: String) {
        characters = Array(text)
    }

    mutating func parseFilter() throws(TraceFilterError) -> FilterExpression {
        guard characters.count <= TraceFilter.maximumLength else {
            throw TraceFilterError(
                offset: TraceFilter.maximumLength,
                message: "filter is longer than \(TraceFilter.maximumLength) characters"
            )
        }
        if try peek().kind == .end {
            throw TraceFilterError(offset: 0, message: "empty filter")
        }
        let expression = try parseOr()
        let next = try peek()
        guard next.kind == .end else {
            if next.kind == .closeParen {
                throw TraceFilterError(offset: next.offset, message: "unmatched ')'")
            }
            throw TraceFilterError(offset: next.offset, message: "expected AND, OR or the end of the filter, found \(next.display)")
        }
        return expression
    }

    // MARK: Expressions

    private mutating func parseOr() throws(TraceFilterError) -> FilterExpression {
        var operands = [try parseAnd()]
        while try peek().isKeyword("OR") {
            advance()
            operands.append(try parseAnd())
        }
        return operands.count == 1 ? operands[0] : .or(operands)
    }

    private mutating func parseAnd() throws(TraceFilterError) -> FilterExpression {
        var operands = [try parseUnary()]
        while try peek().isKeyword("AND") {
            advance()
            operands.append(try parseUnary())
        }
        return operands.count == 1 ? operands[0] : .and(operands)
    }

    private mutating func parseUnary() throws(TraceFilterError) -> FilterExpression {
        let token = try peek()
        if token.isKeyword("NOT") {
            advance()
            try enterNesting(at: token.offset)
            defer { depth -= 1 }
            return .not(try parseUnary())
        }
        if token.kind == .openParen {
            advance()
            try enterNesting(at: token.offset)
            defer { depth -= 1 }
            let inner = try parseOr()
            let close = try peek()
            guard close.kind == .closeParen else {
                throw TraceFilterError(
                    offset: close.offset,
                    message: "expected ')' to close the '(' at \(token.offset), found \(close.display)"
                )
            }
            advance()
            return inner
        }
        return try parseComparison()
    }

    private mutating func enterNesting(at offset: Int) throws(TraceFilterError) {
        depth += 1
        guard depth <= TraceFilter.maximumDepth else {
            throw TraceFilterError(offset: offset, message: "filter nests more than \(TraceFilter.maximumDepth) levels deep")
        }
    }

    // MARK: Comparisons

    private enum Field {
        case string(FilterStringField, name: String)
        case duration
        case spanTypes(name: String)
    }

    private mutating func parseField() throws(TraceFilterError) -> Field {
        let token = try peek()
        guard case .word(let word) = token.kind else {
            if token.kind == .end {
                throw TraceFilterError(offset: token.offset, message: "expected a field name (\(Self.fieldList))")
            }
            throw TraceFilterError(offset: token.offset, message: "expected a field name, found \(token.display)")
        }
        if Self.keywords.contains(word.uppercased()) {
            throw TraceFilterError(offset: token.offset, message: "expected a field name, found the keyword \(word.uppercased())")
        }
        advance()
        switch word {
        case "state": return .string(.state, name: word)
        case "trace_id": return .string(.traceID, name: word)
        case "execution_duration_ms": return .duration
        case "span_types", "span_type": return .spanTypes(name: word)
        case "tags", "metadata":
            let key = try parseKey(after: word, at: token.offset)
            return .string(word == "tags" ? .tag(key) : .metadata(key), name: "\(word).\(key)")
        default:
            throw TraceFilterError(offset: token.offset, message: "unknown field '\(word)' (expected \(Self.fieldList))")
        }
    }

    /// The key right after `tags` / `metadata`: `.key`, `."quoted key"` or ``.`quoted key` ``.
    private mutating func parseKey(after field: String, at fieldOffset: Int) throws(TraceFilterError) -> String {
        guard position < characters.count, characters[position] == "." else {
            throw TraceFilterError(offset: position, message: "expected '.' and a key after '\(field)' (as in \(field).env)")
        }
        position += 1
        let keyStart = position
        guard position < characters.count else {
            throw TraceFilterError(offset: keyStart, message: "expected a key after '\(field).'")
        }
        let first = characters[position]
        if first == "\"" || first == "`" {
            let key = try lexQuoted(closing: first)
            guard !key.isEmpty else {
                throw TraceFilterError(offset: keyStart, message: "empty key after '\(field).'")
            }
            return key
        }
        var key = ""
        while position < characters.count, Self.isKeyCharacter(characters[position]) {
            key.append(characters[position])
            position += 1
        }
        guard !key.isEmpty else {
            throw TraceFilterError(offset: keyStart, message: "expected a key after '\(field).' (quote keys with other characters: \(field).\"my key\")")
        }
        if position < characters.count, characters[position] == "." {
            throw TraceFilterError(
                offset: keyStart,
                message: "a key containing '.' must be quoted, as in \(field).\"\(key).…\""
            )
        }
        return key
    }

    private mutating func parseComparison() throws(TraceFilterError) -> FilterExpression {
        let field = try parseField()
        let token = try peek()
        switch token.kind {
        case .comparison(let comparison):
            advance()
            return try comparisonExpression(field, comparison, operatorToken: token)
        case .word(let word):
            switch word.uppercased() {
            case "IN":
                advance()
                return try membershipExpression(field, member: true, operatorText: "IN", at: token.offset)
            case "CONTAINS":
                advance()
                return try containsExpression(field, negated: false, at: token.offset)
            case "NOT":
                advance()
                let next = try peek()
                if next.isKeyword("IN") {
                    advance()
                    return try membershipExpression(field, member: false, operatorText: "NOT IN", at: token.offset)
                }
                if next.isKeyword("CONTAINS") {
                    advance()
                    return try containsExpression(field, negated: true, at: token.offset)
                }
                throw TraceFilterError(offset: next.offset, message: "expected IN or CONTAINS after NOT, found \(next.display)")
            default:
                break
            }
        default:
            break
        }
        throw TraceFilterError(
            offset: token.offset,
            message: "expected an operator (=, !=, <, <=, >, >=, IN, NOT IN, CONTAINS) after '\(fieldName(field))', found \(token.display)"
        )
    }

    private func fieldName(_ field: Field) -> String {
        switch field {
        case .string(_, let name): return name
        case .duration: return "execution_duration_ms"
        case .spanTypes(let name): return name
        }
    }

    private mutating func comparisonExpression(
        _ field: Field, _ comparison: FilterComparison, operatorToken: FilterToken
    ) throws(TraceFilterError) -> FilterExpression {
        let operatorText = comparison.rawValue
        switch field {
        case .spanTypes(let name):
            throw TraceFilterError(
                offset: operatorToken.offset,
                message: "\(name) is a set of span types: use CONTAINS or NOT CONTAINS, not '\(operatorText)'"
            )
        case .duration:
            let value = try parseNumberValue(after: operatorText, field: "execution_duration_ms")
            return .duration(comparison, value)
        case .string(let stringField, let name):
            guard comparison == .equal || comparison == .notEqual else {
                throw TraceFilterError(
                    offset: operatorToken.offset,
                    message: "'\(operatorText)' compares numbers; \(name) is a string (use =, !=, IN or NOT IN)"
                )
            }
            let value = try parseStringValue(after: operatorText, field: stringField, name: name)
            return .stringMembership(stringField, values: [value], member: comparison == .equal)
        }
    }

    private mutating func membershipExpression(
        _ field: Field, member: Bool, operatorText: String, at offset: Int
    ) throws(TraceFilterError) -> FilterExpression {
        if case .spanTypes(let name) = field {
            throw TraceFilterError(offset: offset, message: "\(name) is a set of span types: use CONTAINS or NOT CONTAINS, not \(operatorText)")
        }
        let open = try peek()
        guard open.kind == .openParen else {
            throw TraceFilterError(offset: open.offset, message: "expected '(' and a list of values after \(operatorText), found \(open.display)")
        }
        advance()
        var strings: [String] = []
        var numbers: [Double] = []
        while true {
            switch field {
            case .duration:
                numbers.append(try parseNumberValue(after: numbers.isEmpty ? "\(operatorText) (" : ",", field: "execution_duration_ms"))
            case .string(let stringField, let name):
                strings.append(try parseStringValue(after: strings.isEmpty ? "\(operatorText) (" : ",", field: stringField, name: name))
            case .spanTypes:
                break
            }
            guard strings.count + numbers.count <= TraceFilter.maximumListCount else {
                throw TraceFilterError(offset: open.offset, message: "\(operatorText) list has more than \(TraceFilter.maximumListCount) values")
            }
            let next = try peek()
            advance()
            if next.kind == .comma { continue }
            if next.kind == .closeParen { break }
            throw TraceFilterError(offset: next.offset, message: "expected ',' or ')' in the \(operatorText) list, found \(next.display)")
        }
        switch field {
        case .duration: return .durationMembership(values: numbers, member: member)
        case .string(let stringField, _): return .stringMembership(stringField, values: strings, member: member)
        case .spanTypes: return .and([])
        }
    }

    private mutating func containsExpression(_ field: Field, negated: Bool, at offset: Int) throws(TraceFilterError) -> FilterExpression {
        guard case .spanTypes = field else {
            throw TraceFilterError(offset: offset, message: "CONTAINS applies only to span_types (as in span_types CONTAINS 'RETRIEVER')")
        }
        let token = try peek()
        guard case .string(let type) = token.kind else {
            throw TraceFilterError(offset: token.offset, message: "expected a quoted span type after CONTAINS, found \(token.display)")
        }
        advance()
        guard !type.isEmpty else {
            throw TraceFilterError(offset: token.offset, message: "empty span type")
        }
        return .spanTypeContains(type.uppercased(), negated: negated)
    }

    private mutating func parseStringValue(
        after operatorText: String, field: FilterStringField, name: String
    ) throws(TraceFilterError) -> String {
        let token = try peek()
        switch token.kind {
        case .string(let value):
            advance()
            switch field {
            case .state:
                let upper = value.uppercased()
                guard TraceState(rawValue: upper) != nil else {
                    let states = TraceState.allCases.map(\.rawValue).joined(separator: ", ")
                    throw TraceFilterError(offset: token.offset, message: "unknown state '\(value)' (expected one of \(states))")
                }
                return upper
            case .traceID:
                return Trace.canonicalTraceID(for: value)
            case .tag, .metadata:
                return value
            }
        case .number(let lexeme):
            throw TraceFilterError(offset: token.offset, message: "\(name) holds strings: quote the value ('\(lexeme)')")
        default:
            throw TraceFilterError(offset: token.offset, message: "expected a value after '\(operatorText)', found \(token.display)")
        }
    }

    private mutating func parseNumberValue(after operatorText: String, field: String) throws(TraceFilterError) -> Double {
        let token = try peek()
        switch token.kind {
        case .number(let lexeme):
            advance()
            guard let value = Double(lexeme), value.isFinite else {
                throw TraceFilterError(offset: token.offset, message: "number '\(lexeme)' is out of range")
            }
            return value
        case .string:
            throw TraceFilterError(offset: token.offset, message: "\(field) is a number: write it without quotes")
        default:
            throw TraceFilterError(offset: token.offset, message: "expected a value after '\(operatorText)', found \(token.display)")
        }
    }

    // MARK: Lexer

    private mutating func peek() throws(TraceFilterError) -> FilterToken {
        if let peeked { return peeked }
        let token = try lex()
        peeked = token
        return token
    }

    private mutating func advance() {
        if let peeked {
            position = peeked.endOffset
            self.peeked = nil
        }
    }

    private static func isWordStart(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character == "_")
    }

    private static func isWordCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "_")
    }

    private static func isKeyCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "_" || character == "-")
    }

    private static func isDigit(_ character: Character) -> Bool {
        character.isASCII && character.isNumber
    }

    /// Lexes the token at `position` (after whitespace) without consuming it.
    private mutating func lex() throws(TraceFilterError) -> FilterToken {
        var index = position
        while index < characters.count, characters[index].isWhitespace { index += 1 }
        position = index
        let start = index
        guard index < characters.count else {
            return FilterToken(kind: .end, offset: start, endOffset: start)
        }
        let character = characters[index]
        func single(_ kind: FilterToken.Kind, length: Int = 1) -> FilterToken {
            FilterToken(kind: kind, offset: start, endOffset: start + length)
        }
        func following(_ expected: Character) -> Bool {
            start + 1 < characters.count && characters[start + 1] == expected
        }
        switch character {
        case "(": return single(.openParen)
        case ")": return single(.closeParen)
        case ",": return single(.comma)
        case ".": return single(.dot)
        case "=":
            if following("=") {
                throw TraceFilterError(offset: start, message: "use '=' (not '==') to compare")
            }
            return single(.comparison(.equal))
        case "!":
            guard following("=") else {
                throw TraceFilterError(offset: start, message: "unexpected '!' (did you mean '!=' or NOT?)")
            }
            return single(.comparison(.notEqual), length: 2)
        case "<":
            if following("=") { return single(.comparison(.lessOrEqual), length: 2) }
            if following(">") { return single(.comparison(.notEqual), length: 2) }
            return single(.comparison(.less))
        case ">":
            if following("=") { return single(.comparison(.greaterOrEqual), length: 2) }
            return single(.comparison(.greater))
        case "'":
            let value = try lexQuoted(closing: "'")
            let end = position
            position = start
            return FilterToken(kind: .string(value), offset: start, endOffset: end)
        case "\"", "`":
            let value = try lexQuoted(closing: character)
            let end = position
            position = start
            return FilterToken(kind: .quotedName(value), offset: start, endOffset: end)
        default:
            break
        }
        if Self.isDigit(character) || (character == "-" && start + 1 < characters.count && Self.isDigit(characters[start + 1])) {
            index = start + 1
            while index < characters.count, Self.isDigit(characters[index]) { index += 1 }
            if index + 1 < characters.count, characters[index] == ".", Self.isDigit(characters[index + 1]) {
                index += 2
                while index < characters.count, Self.isDigit(characters[index]) { index += 1 }
            }
            if index < characters.count, Self.isWordCharacter(characters[index]) || characters[index] == "." {
                throw TraceFilterError(offset: start, message: "malformed number")
            }
            return FilterToken(kind: .number(String(characters[start..<index])), offset: start, endOffset: index)
        }
        if Self.isWordStart(character) {
            index = start + 1
            while index < characters.count, Self.isWordCharacter(characters[index]) { index += 1 }
            return FilterToken(kind: .word(String(characters[start..<index])), offset: start, endOffset: index)
        }
        throw TraceFilterError(offset: start, message: "unexpected character '\(character)'")
    }

    /// Reads a quoted run starting at `position` (on the opening quote); a doubled closing quote
    /// stands for one. Leaves `position` after the closing quote.
    private mutating func lexQuoted(closing quote: Character) throws(TraceFilterError) -> String {
        let start = position
        var index = position + 1
        var value = ""
        while index < characters.count {
            let character = characters[index]
            if character == quote {
                if index + 1 < characters.count, characters[index + 1] == quote {
                    value.append(quote)
                    index += 2
                    continue
                }
                position = index + 1
                return value
            }
            value.append(character)
            index += 1
        }
        let what = quote == "'" ? "string" : "quoted key"
        throw TraceFilterError(offset: start, message: "unterminated \(what) (missing closing \(quote))")
    }
}
