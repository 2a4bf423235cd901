import AssayCore

/// A schema document that uses something this checker does not implement, or is malformed.
///
/// Refusing unknown keywords matters: a checker that silently ignored, say, `format` or
/// `patternProperties` would let tests pass against rules it never checked.
public struct JSONSchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// JSON Pointer of the offending place in the schema (`/properties/name/format`).
    public var schemaPath: String
    public var message: String

    public init(schemaPath: String, message: String) {
        self.schemaPath = schemaPath
        self.message = message
    }

    public var description: String { "schema \(schemaPath.isEmpty ? "/" : schemaPath): \(message)" }
}

/// One way an instance fails its schema.
public struct JSONSchemaViolation: Sendable, Equatable, CustomStringConvertible {
    /// JSON Pointer of the offending value in the instance (`/scorers/2/sample_rate`, `` for the root).
    public var instancePath: String
    /// JSON Pointer of the schema keyword that failed.
    public var schemaPath: String
    public var message: String

    public init(instancePath: String, schemaPath: String, message: String) {
        self.instancePath = instancePath
        self.schemaPath = schemaPath
        self.message = message
    }

    public var description: String {
        "\(instancePath.isEmpty ? "/" : instancePath): \(message) (schema \(schemaPath))"
    }
}

/// A small JSON Schema (draft 2020-12) validator for the subset Assay's `schemas/*.json` use.
///
/// Supported keywords: `type` (a name or a list of names; `integer` is any number with an
/// integral value), `enum`, `const`, `properties`, `required`, `additionalProperties` (boolean
/// or schema), `items` (a schema), `minItems`, `maxItems`, `uniqueItems`, `minimum`, `maximum`,
/// `exclusiveMinimum`, `exclusiveMaximum` (numbers), `minLength`, `maxLength` (counted in Unicode
/// scalars), `pattern` (a Swift `Regex`, searched unanchored as ECMA-262 does), `oneOf`,
/// `anyOf`, `allOf`, `not`, `$ref` (only `#/$defs/<name>`) and `$defs`, plus boolean schemas.
/// Annotations (`$schema`, `$id`, `$comment`, `title`, `description`, `default`, `examples`) are
/// allowed and ignored. **Any other keyword makes ``init(schema:)`` throw**, so a schema cannot
/// rely on a rule this checker would silently skip.
///
/// Values compare as JSON Schema says: numbers by value (`1` equals `1.0`), objects regardless
/// of key order.
public struct JSONSchemaChecker: Sendable {
    /// The schema document.
    public let schema: JSONValue
    private let definitions: [String: JSONValue]

    private static let annotationKeywords: Set<String> = [
        "$schema", "$id", "$comment", "title", "description", "default", "examples",
    ]
    private static let typeNames: Set<String> = ["null", "boolean", "object", "array", "number", "integer", "string"]
    private static let maximumReferenceDepth = 64

    /// Checks that `schema` uses only supported keywords, well formed, and that every `$ref`
    /// resolves and every `pattern` compiles.
    public init(schema: JSONValue) throws(JSONSchemaError) {
        var definitions: [String: JSONValue] = [:]
        if case .object(let root) = schema, let defs = root["$defs"] {
            guard case .object(let defsObject) = defs else {
                throw JSONSchemaError(schemaPath: "/$defs", message: "$defs must be an object")
            }
            for (name, definition) in defsObject.entries { definitions[name] = definition }
        }
        if case .object(let root) = schema, let dialect = root["$schema"],
           dialect != .string("https://json-schema.org/draft/2020-12/schema") {
            throw JSONSchemaError(schemaPath: "/$schema", message: "only draft 2020-12 is supported")
        }
        self.schema = schema
        self.definitions = definitions
        try Self.check(schema, at: "", isRoot: true, definitions: definitions)
    }

    /// Parses `bytes` as JSON and builds a checker for it.
    public init(schemaBytes: [UInt8]) throws(JSONSchemaError) {
        let document: JSONValue
        do {
            document = try JSONParser().parse(schemaBytes)
        } catch {
            throw JSONSchemaError(schemaPath: "", message: "schema is not valid JSON: \(error)")
        }
        try self.init(schema: document)
    }

    /// Every violation of the schema by `instance`; empty when it is valid.
    public func violations(of instance: JSONValue) -> [JSONSchemaViolation] {
        var output: [JSONSchemaViolation] = []
        validate(instance, against: schema, instancePath: "", schemaPath: "", depth: 0, into: &output)
        return output
    }

    /// Whether `instance` is valid against the schema.
    public func isValid(_ instance: JSONValue) -> Bool {
        violations(of: instance).isEmpty
    }

    // MARK: - Schema checking

    private static func check(
        _ schema: JSONValue, at path: String, isRoot: Bool, definitions: [String: JSONValue]
    ) throws(JSONSchemaError) {
        if case .bool = schema { return }
        guard case .object(let object) = schema else {
            throw JSONSchemaError(schemaPath: path, message: "a schema must be an object or a boolean")
        }
        for (keyword, value) in object.entries {
            let here = "\(path)/\(escape(keyword))"
            switch keyword {
            case _ where annotationKeywords.contains(keyword):
                continue
            case "$defs":
                guard isRoot, case .object(let defs) = value else {
                    throw JSONSchemaError(schemaPath: here, message: "$defs is supported only at the root, as an object")
                }
                for (name, definition) in defs.entries {
                    try check(definition, at: "\(here)/\(escape(name))", isRoot: false, definitions: definitions)
                }
            case "$ref":
                guard case .string(let reference) = value, reference.hasPrefix("#/$defs/") else {
                    throw JSONSchemaError(schemaPath: here, message: "only \"#/$defs/<name>\" references are supported")
                }
                let name = String(reference.dropFirst("#/$defs/".count))
                guard definitions[name] != nil else {
                    throw JSONSchemaError(schemaPath: here, message: "unresolved reference \(reference)")
                }
            case "type":
                let names: [JSONValue]
                if case .array(let list) = value { names = list } else { names = [value] }
                guard !names.isEmpty else { throw JSONSchemaError(schemaPath: here, message: "type list is empty") }
                for name in names {
                    guard case .string(let text) = name, typeNames.contains(text) else {
                        throw JSONSchemaError(schemaPath: here, message: "unknown type \(name.serialized())")
                    }
                }
            case "enum":
                guard case .array(let values) = value, !values.isEmpty else {
                    throw JSONSchemaError(schemaPath: here, message: "enum must be a non-empty array")
                }
            case "const":
                continue
            case "properties":
                guard case .object(let properties) = value else {
                    throw JSONSchemaError(schemaPath: here, message: "properties must be an object")
                }
                for (name, subschema) in properties.entries {
                    try check(subschema, at: "\(here)/\(escape(name))", isRoot: false, definitions: definitions)
                }
            case "required":
                guard case .array(let names) = value, names.allSatisfy({ $0.stringValue != nil }) else {
                    throw JSONSchemaError(schemaPath: here, message: "required must be an array of strings")
                }
            case "additionalProperties", "items", "not":
                try check(value, at: here, isRoot: false, definitions: definitions)
            case "oneOf", "anyOf", "allOf":
                guard case .array(let subschemas) = value, !subschemas.isEmpty else {
                    throw JSONSchemaError(schemaPath: here, message: "\(keyword) must be a non-empty array of schemas")
                }
                for (index, subschema) in subschemas.enumerated() {
                    try check(subschema, at: "\(here)/\(index)", isRoot: false, definitions: definitions)
                }
            case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
                guard value.doubleValue != nil else {
                    throw JSONSchemaError(schemaPath: here, message: "\(keyword) must be a number")
                }
            case "minLength", "maxLength", "minItems", "maxItems":
                guard let count = value.int64Value, count >= 0 else {
                    throw JSONSchemaError(schemaPath: here, message: "\(keyword) must be a non-negative integer")
                }
            case "uniqueItems":
                guard value.boolValue != nil else {
                    throw JSONSchemaError(schemaPath: here, message: "uniqueItems must be a boolean")
                }
            case "pattern":
                guard case .string(let pattern) = value else {
                    throw JSONSchemaError(schemaPath: here, message: "pattern must be a string")
                }
                do {
                    _ = try Regex(pattern)
                } catch {
                    throw JSONSchemaError(schemaPath: here, message: "pattern does not compile: \(error)")
                }
            default:
                throw JSONSchemaError(schemaPath: here, message: "unsupported keyword \"\(keyword)\"")
            }
        }
    }

    /// JSON Pointer escaping of one reference token.
    private static func escape(_ token: String) -> String {
        var escaped = ""
        for character in token {
            switch character {
            case "~": escaped += "~0"
            case "/": escaped += "~1"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    // MARK: - Validation

    private func validate(
        _ instance: JSONValue, against schema: JSONValue, instancePath: String, schemaPath: String,
        depth: Int, into output: inout [JSONSchemaViolation]
    ) {
        func fail(_ keyword: String, _ message: String) {
            output.append(JSONSchemaViolation(instancePath: instancePath, schemaPath: "\(schemaPath)/\(keyword)", message: message))
        }
        switch schema {
        case .bool(true):
            return
        case .bool(false):
            output.append(JSONSchemaViolation(instancePath: instancePath, schemaPath: schemaPath, message: "no value is allowed here"))
            return
        case .object(let object):
            for (keyword, value) in object.entries {
                switch keyword {
                case "$ref":
                    guard depth < Self.maximumReferenceDepth else {
                        fail(keyword, "reference nesting deeper than \(Self.maximumReferenceDepth)")
                        continue
                    }
                    let name = String((value.stringValue ?? "").dropFirst("#/$defs/".count))
                    if let definition = definitions[name] {
                        validate(instance, against: definition, instancePath: instancePath,
                                 schemaPath: "/$defs/\(Self.escape(name))", depth: depth + 1, into: &output)
                    }
                case "type":
                    let names: [String]
                    if case .array(let list) = value { names = list.compactMap(\.stringValue) } else { names = [value.stringValue ?? ""] }
                    if !names.contains(where: { Self.hasType(instance, $0) }) {
                        fail(keyword, "must be of type \(names.joined(separator: " or ")), not \(instance.typeName)")
                    }
                case "enum":
                    let allowed = value.arrayValue ?? []
                    if !allowed.contains(where: { Self.jsonEqual($0, instance) }) {
                        fail(keyword, "must be one of \(allowed.map { $0.serialized() }.joined(separator: ", "))")
                    }
                case "const":
                    if !Self.jsonEqual(value, instance) {
                        fail(keyword, "must be \(value.serialized())")
                    }
                case "properties":
                    guard case .object(let members) = instance, case .object(let properties) = value else { continue }
                    for (name, subschema) in properties.entries {
                        guard let member = members[name] else { continue }
                        validate(member, against: subschema, instancePath: "\(instancePath)/\(Self.escape(name))",
                                 schemaPath: "\(schemaPath)/properties/\(Self.escape(name))", depth: depth, into: &output)
                    }
                case "required":
                    guard case .object(let members) = instance else { continue }
                    for name in (value.arrayValue ?? []).compactMap(\.stringValue) where members[name] == nil {
                        fail(keyword, "is missing required property \"\(name)\"")
                    }
                case "additionalProperties":
                    guard case .object(let members) = instance else { continue }
                    let declared = Set(object["properties"]?.objectValue?.keys ?? [])
                    for (name, member) in members.entries where !declared.contains(name) {
                        if value == .bool(false) {
                            output.append(JSONSchemaViolation(
                                instancePath: "\(instancePath)/\(Self.escape(name))",
                                schemaPath: "\(schemaPath)/additionalProperties",
                                message: "property \"\(name)\" is not allowed"
                            ))
                        } else {
                            validate(member, against: value, instancePath: "\(instancePath)/\(Self.escape(name))",
                                     schemaPath: "\(schemaPath)/additionalProperties", depth: depth, into: &output)
                        }
                    }
                case "items":
                    guard case .array(let elements) = instance else { continue }
                    for (index, element) in elements.enumerated() {
                        validate(element, against: value, instancePath: "\(instancePath)/\(index)",
                                 schemaPath: "\(schemaPath)/items", depth: depth, into: &output)
                    }
                case "minItems", "maxItems":
                    guard case .array(let elements) = instance, let bound = value.int64Value else { continue }
                    if keyword == "minItems", Int64(elements.count) < bound { fail(keyword, "must have at least \(bound) items") }
                    if keyword == "maxItems", Int64(elements.count) > bound { fail(keyword, "must have at most \(bound) items") }
                case "uniqueItems":
                    guard value == .bool(true), case .array(let elements) = instance else { continue }
                    outer: for first in elements.indices {
                        for second in elements.indices where second > first && Self.jsonEqual(elements[first], elements[second]) {
                            fail(keyword, "items \(first) and \(second) are equal")
                            break outer
                        }
                    }
                case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
                    guard let number = instance.doubleValue, let bound = value.doubleValue else { continue }
                    switch keyword {
                    case "minimum" where number < bound: fail(keyword, "must be ≥ \(bound)")
                    case "maximum" where number > bound: fail(keyword, "must be ≤ \(bound)")
                    case "exclusiveMinimum" where number <= bound: fail(keyword, "must be > \(bound)")
                    case "exclusiveMaximum" where number >= bound: fail(keyword, "must be < \(bound)")
                    default: break
                    }
                case "minLength", "maxLength":
                    guard case .string(let text) = instance, let bound = value.int64Value else { continue }
                    let length = Int64(text.unicodeScalars.count)
                    if keyword == "minLength", length < bound { fail(keyword, "must be at least \(bound) characters long") }
                    if keyword == "maxLength", length > bound { fail(keyword, "must be at most \(bound) characters long") }
                case "pattern":
                    guard case .string(let text) = instance, let pattern = value.stringValue else { continue }
                    let matched: Bool
                    do {
                        matched = try Regex(pattern).firstMatch(in: text) != nil
                    } catch {
                        matched = false
                    }
                    if !matched { fail(keyword, "must match the pattern \(pattern)") }
                case "oneOf", "anyOf", "allOf":
                    let subschemas = value.arrayValue ?? []
                    var failures: [[JSONSchemaViolation]] = []
                    for (index, subschema) in subschemas.enumerated() {
                        var branch: [JSONSchemaViolation] = []
                        validate(instance, against: subschema, instancePath: instancePath,
                                 schemaPath: "\(schemaPath)/\(keyword)/\(index)", depth: depth, into: &branch)
                        failures.append(branch)
                    }
                    let passing = failures.filter(\.isEmpty).count
                    switch keyword {
                    case "allOf":
                        output.append(contentsOf: failures.flatMap { $0 })
                    case "anyOf" where passing == 0:
                        fail(keyword, "matches none of the alternatives (\(Self.summary(failures)))")
                    case "oneOf" where passing != 1:
                        fail(keyword, passing == 0
                            ? "matches none of the alternatives (\(Self.summary(failures)))"
                            : "matches \(passing) of the alternatives, not exactly one")
                    default:
                        break
                    }
                case "not":
                    var branch: [JSONSchemaViolation] = []
                    validate(instance, against: value, instancePath: instancePath,
                             schemaPath: "\(schemaPath)/not", depth: depth, into: &branch)
                    if branch.isEmpty { fail(keyword, "must not match the schema at \(schemaPath)/not") }
                default:
                    continue  // annotations and $defs; unsupported keywords were refused by init
                }
            }
        default:
            output.append(JSONSchemaViolation(instancePath: instancePath, schemaPath: schemaPath, message: "invalid schema"))
        }
    }

    private static func summary(_ failures: [[JSONSchemaViolation]]) -> String {
        failures.enumerated().map { index, branch in
            "#\(index): " + (branch.first.map(\.description) ?? "ok")
        }.joined(separator: "; ")
    }

    private static func hasType(_ value: JSONValue, _ type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("object", .object), ("array", .array),
             ("number", .number), ("string", .string):
            return true
        case ("integer", .number(let lexeme)):
            if value.int64Value != nil { return true }
            guard let number = Double(lexeme), number.isFinite else { return false }
            return number == number.rounded()
        default:
            return false
        }
    }

    /// JSON Schema equality: numbers by value, objects ignoring key order, arrays in order.
    static func jsonEqual(_ left: JSONValue, _ right: JSONValue) -> Bool {
        switch (left, right) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.number(let a), .number(let b)):
            if a == b { return true }
            guard let x = Double(a), let y = Double(b) else { return false }
            return x == y
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { jsonEqual($0, $1) }
        case (.object(let a), .object(let b)):
            let keysA = Set(a.keys)
            guard keysA.count == Set(b.keys).count, keysA == Set(b.keys) else { return false }
            return keysA.allSatisfy { key in
                guard let x = a[key], let y = b[key] else { return false }
                return jsonEqual(x, y)
            }
        default:
            return false
        }
    }
}
