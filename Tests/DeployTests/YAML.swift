import Foundation
import Yams

/// A YAML document as the tests read it: scalars kept as their text (so `"45000"`, `45000`
/// and `on` are all strings, as Kubernetes and Compose read most of them), aliases resolved,
/// and merge keys (`<<: *anchor`) applied the way Compose applies them.
indirect enum YAMLValue: Sendable, CustomStringConvertible {
    case null
    case scalar(String)
    case sequence([YAMLValue])
    case mapping([(key: String, value: YAMLValue)])

    /// Parses one document.
    static func parse(_ text: String, source: String) throws -> YAMLValue {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw DeployTestError("\(source) is not valid YAML: \(error)")
        }
        return try node.map { try YAMLValue(node: $0, source: source) } ?? .null
    }

    /// Parses every document of a multi-document stream (`---`).
    static func parseAll(_ text: String, source: String) throws -> [YAMLValue] {
        var documents: [YAMLValue] = []
        var sequence: YamlSequence<Node>
        do {
            sequence = try Yams.compose_all(yaml: text)
        } catch {
            throw DeployTestError("\(source) is not valid YAML: \(error)")
        }
        while let node = sequence.next() {
            documents.append(try YAMLValue(node: node, source: source))
        }
        if let error = sequence.error {
            throw DeployTestError("\(source) is not valid YAML: \(error)")
        }
        return documents
    }

    init(node: Node, source: String) throws {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain, ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
                self = .null
            } else {
                self = .scalar(scalar.string)
            }
        case .sequence(let sequence):
            self = .sequence(try sequence.map { try YAMLValue(node: $0, source: source) })
        case .mapping(let mapping):
            var merged: [(key: String, value: YAMLValue)] = []
            var own: [(key: String, value: YAMLValue)] = []
            for (keyNode, valueNode) in mapping {
                guard let key = keyNode.scalar?.string else {
                    throw DeployTestError("\(source): a mapping key is not a scalar")
                }
                let value = try YAMLValue(node: valueNode, source: source)
                if key == "<<", keyNode.scalar?.style == .plain {
                    // Merge keys: a mapping or a list of mappings; explicit keys win.
                    let sources: [YAMLValue]
                    if case .sequence(let items) = value { sources = items } else { sources = [value] }
                    for item in sources {
                        guard case .mapping(let pairs) = item else {
                            throw DeployTestError("\(source): `<<` merges something that is not a mapping")
                        }
                        for pair in pairs where !merged.contains(where: { $0.key == pair.key }) {
                            merged.append(pair)
                        }
                    }
                } else {
                    if own.contains(where: { $0.key == key }) {
                        throw DeployTestError("\(source): the key \(key) appears twice in one mapping")
                    }
                    own.append((key, value))
                }
            }
            let result = merged.filter { pair in !own.contains { $0.key == pair.key } } + own
            self = .mapping(result)
        case .alias:
            throw DeployTestError("\(source): an unresolved YAML alias")
        }
    }

    subscript(key: String) -> YAMLValue? {
        guard case .mapping(let pairs) = self else { return nil }
        return pairs.first { $0.key == key }?.value
    }

    subscript(index: Int) -> YAMLValue? {
        guard case .sequence(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }

    /// The value at a path of keys (`["spec", "template", "spec"]`).
    func at(_ path: String...) -> YAMLValue? {
        var current: YAMLValue? = self
        for key in path { current = current?[key] }
        return current
    }

    var string: String? {
        if case .scalar(let text) = self { return text }
        return nil
    }

    var int: Int? { string.flatMap { Int($0) } }

    var array: [YAMLValue]? {
        if case .sequence(let items) = self { return items }
        return nil
    }

    var pairs: [(key: String, value: YAMLValue)]? {
        if case .mapping(let pairs) = self { return pairs }
        return nil
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A list of scalars, or one scalar as a one-element list.
    var strings: [String]? {
        switch self {
        case .scalar(let text): return [text]
        case .sequence(let items): return items.compactMap(\.string).count == items.count ? items.compactMap(\.string) : nil
        default: return nil
        }
    }

    /// A mapping of scalars to scalars (labels, selectors, env maps).
    var stringMap: [String: String]? {
        guard let pairs else { return nil }
        var result: [String: String] = [:]
        for (key, value) in pairs {
            switch value {
            case .scalar(let text): result[key] = text
            case .null: result[key] = ""
            default: return nil
            }
        }
        return result
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .scalar(let text): return text
        case .sequence(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .mapping(let pairs): return "{" + pairs.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}
