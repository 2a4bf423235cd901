// A strict reader for the YAML subset Prometheus rule files use: block mappings and
// sequences by indentation, `|` literal block scalars, plain and quoted scalars, full-line
// comments. Anything else (flow collections, anchors, tabs, bad indentation, duplicate keys)
// is an error, so a file that reads here is also well-formed YAML.

import AssayCore

struct YAMLError: Error, CustomStringConvertible {
    var line: Int
    var problem: String
    var description: String { "line \(line): \(problem)" }
}

struct MiniYAML {
    private var lines: [String]
    private var index = 0

    /// The document as JSON values (objects, arrays, strings; `null` for empty values).
    static func parse(_ text: String) throws -> JSONValue {
        var reader = MiniYAML(lines: text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        if let tab = reader.lines.firstIndex(where: { $0.contains("\t") }) { throw YAMLError(line: tab + 1, problem: "tab character") }
        reader.skipIgnorable()
        guard reader.index < reader.lines.count else { return .null }
        let indent = reader.indent(of: reader.lines[reader.index])
        guard indent == 0 else { throw YAMLError(line: reader.index + 1, problem: "the document does not start at column 0") }
        let value = try reader.block(indent: 0)
        reader.skipIgnorable()
        guard reader.index == reader.lines.count else { throw YAMLError(line: reader.index + 1, problem: "unexpected indentation") }
        return value
    }

    private init(lines: [String]) {
        self.lines = lines
    }

    private func indent(of line: String) -> Int { line.prefix { $0 == " " }.count }

    private func content(of line: String) -> Substring { line.drop { $0 == " " } }

    private func isIgnorable(_ line: String) -> Bool {
        let body = content(of: line)
        return body.isEmpty || body.hasPrefix("#")
    }

    private mutating func skipIgnorable() {
        while index < lines.count, isIgnorable(lines[index]) { index += 1 }
    }

    private func isSequenceItem(_ body: Substring) -> Bool { body == "-" || body.hasPrefix("- ") }

    private mutating func block(indent: Int) throws -> JSONValue {
        skipIgnorable()
        guard index < lines.count else { return .null }
        return isSequenceItem(content(of: lines[index])) ? try sequence(indent: indent) : try mapping(indent: indent)
    }

    private mutating func sequence(indent: Int) throws -> JSONValue {
        var items: [JSONValue] = []
        while true {
            skipIgnorable()
            guard index < lines.count, self.indent(of: lines[index]) == indent, isSequenceItem(content(of: lines[index])) else { break }
            let body = content(of: lines[index])
            let rest = body.dropFirst(1).drop { $0 == " " }
            if rest.isEmpty {
                index += 1
                skipIgnorable()
                guard index < lines.count, self.indent(of: lines[index]) > indent else { items.append(.null); continue }
                items.append(try block(indent: self.indent(of: lines[index])))
            } else if Self.keyAndValue(rest) != nil {
                // `- key: value …`: a mapping whose first line is the item's line.
                let itemIndent = indent + (body.count - rest.count)
                lines[index] = String(repeating: " ", count: itemIndent) + rest
                items.append(try mapping(indent: itemIndent))
            } else {
                items.append(try scalar(rest))
                index += 1
            }
        }
        return .array(items)
    }

    private mutating func mapping(indent: Int) throws -> JSONValue {
        var object = JSONObject()
        var keys = Set<String>()
        while true {
            skipIgnorable()
            guard index < lines.count else { break }
            let lineIndent = self.indent(of: lines[index])
            if lineIndent < indent { break }
            guard lineIndent == indent else { throw YAMLError(line: index + 1, problem: "unexpected indentation") }
            let body = content(of: lines[index])
            if isSequenceItem(body) { break }
            guard let (key, rest) = Self.keyAndValue(body) else { throw YAMLError(line: index + 1, problem: "expected `key: value`") }
            guard keys.insert(key).inserted else { throw YAMLError(line: index + 1, problem: "duplicate key \(key)") }
            let keyLine = index
            index += 1
            let value: JSONValue
            if rest == "|" || rest == "|-" {
                value = .string(literalBlock(parentIndent: indent, keepFinalNewline: rest == "|"))
            } else if rest.isEmpty {
                skipIgnorable()
                if index < lines.count, self.indent(of: lines[index]) > indent {
                    value = try block(indent: self.indent(of: lines[index]))
                } else if index < lines.count, self.indent(of: lines[index]) == indent, isSequenceItem(content(of: lines[index])) {
                    value = try sequence(indent: indent)
                } else {
                    value = .null
                }
            } else {
                do {
                    value = try scalar(rest)
                } catch let error as YAMLError {
                    throw YAMLError(line: keyLine + 1, problem: error.problem)
                }
            }
            object[key] = value
        }
        return .object(object)
    }

    /// The lines of a `|` block scalar, indented deeper than its key.
    private mutating func literalBlock(parentIndent: Int, keepFinalNewline: Bool) -> String {
        var collected: [String] = []
        var blockIndent: Int?
        while index < lines.count {
            let line = lines[index]
            if content(of: line).isEmpty {
                collected.append("")
                index += 1
                continue
            }
            let lineIndent = indent(of: line)
            guard lineIndent > parentIndent, lineIndent >= (blockIndent ?? lineIndent) else { break }
            if blockIndent == nil { blockIndent = lineIndent }
            collected.append(String(line.dropFirst(blockIndent ?? lineIndent)))
            index += 1
        }
        while collected.last == "" { collected.removeLast() }
        return collected.joined(separator: "\n") + (keepFinalNewline && !collected.isEmpty ? "\n" : "")
    }

    /// `key: rest` or `key:` (the key is a plain word; rest may be empty).
    private static func keyAndValue(_ body: Substring) -> (String, Substring)? {
        guard let colon = body.firstIndex(of: ":") else { return nil }
        let key = body[..<colon]
        let after = body[body.index(after: colon)...]
        guard !key.isEmpty, !key.contains(" "), !key.hasPrefix("\""), !key.hasPrefix("'"), after.isEmpty || after.hasPrefix(" ") else { return nil }
        return (String(key), after.drop { $0 == " " })
    }

    private func scalar(_ text: Substring) throws -> JSONValue {
        let problem = { (what: String) in YAMLError(line: index + 1, problem: what) }
        if text.hasPrefix("\"") {
            var value = ""
            var iterator = text.dropFirst().makeIterator()
            var closed = false
            while let character = iterator.next() {
                if character == "\\" {
                    switch iterator.next() {
                    case "\"": value.append("\"")
                    case "\\": value.append("\\")
                    case "n": value.append("\n")
                    case "t": value.append("\t")
                    default: throw problem("unsupported escape")
                    }
                } else if character == "\"" {
                    closed = true
                    break
                } else {
                    value.append(character)
                }
            }
            let remainder = String(iterator.map { $0 }).drop { $0 == " " }
            guard closed, remainder.isEmpty || remainder.hasPrefix("#") else { throw problem("bad double-quoted scalar") }
            return .string(value)
        }
        if text.hasPrefix("'") {
            let inner = text.dropFirst()
            guard let end = inner.lastIndex(of: "'") else { throw problem("unterminated single-quoted scalar") }
            let rest = inner[inner.index(after: end)...].drop { $0 == " " }
            guard rest.isEmpty || rest.hasPrefix("#") else { throw problem("text after a single-quoted scalar") }
            return .string(String(inner[..<end]).split(separator: "''", omittingEmptySubsequences: false).joined(separator: "'"))
        }
        guard let first = text.first, !"[]{}&*!|>%@`".contains(first) else { throw problem("unsupported YAML (flow, anchor, tag or block indicator)") }
        var plain = text
        if let comment = plain.firstRange(of: " #") { plain = plain[..<comment.lowerBound] }
        while plain.last == " " { plain = plain.dropLast() }
        guard !plain.contains(": ") else { throw problem("a plain scalar with `: ` (quote it)") }
        return .string(String(plain))
    }
}
