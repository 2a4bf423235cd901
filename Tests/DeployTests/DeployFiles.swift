import Foundation

/// The files under deploy/ and what the tests need from them.
enum DeployFiles {
    static let compose = "deploy/compose.yaml"
    static let dockerfile = "deploy/Dockerfile"
    static let collector = "deploy/otel-collector.yaml"
    static let kubernetesFolder = "deploy/k8s"

    /// The image name compose gives the image it builds from deploy/Dockerfile.
    static let localImage = "assay:local"

    /// The shutdown deadline the docs promise (docs/failure-modes.md: "Shutdown deadline: N s").
    static func shutdownDeadlineSeconds() throws -> Int {
        let text = try Repository.text("docs/failure-modes.md")
        guard let value = firstMatch(#"Shutdown deadline: \*{0,2}(\d+) s\b"#, in: text), let seconds = Int(value) else {
            throw DeployTestError("docs/failure-modes.md does not state \"Shutdown deadline: N s\"")
        }
        return seconds
    }
}

/// When `assay serve` has `--shutdown-deadline-seconds` (after which it cancels what is left),
/// the value a command line sets, or the flag's default; nil when the binary has no such flag.
func serveShutdownDeadline(_ arguments: [String]) throws -> Int? {
    let serve = try CLIHelp.serve
    guard serve.longFlags.contains("--shutdown-deadline-seconds") else { return nil }
    let text = flagValue("--shutdown-deadline-seconds", arguments) ?? serve.defaults["--shutdown-deadline-seconds"] ?? ""
    guard let seconds = Int(text) else { throw DeployTestError("cannot read --shutdown-deadline-seconds (\(text))") }
    return seconds
}

// MARK: - env files

/// `KEY=VALUE` lines as Compose's env_file reads them (comments and blank lines skipped).
func parseEnvFile(_ text: String, source: String) throws -> [(key: String, value: String)] {
    var result: [(key: String, value: String)] = []
    for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = rawLine.trimmingCharacters(in: .whitespaces)
        if line.isEmpty || line.hasPrefix("#") { continue }
        guard let equals = line.firstIndex(of: "="), equals != line.startIndex else {
            throw DeployTestError("\(source):\(number + 1) is not KEY=VALUE: \(line)")
        }
        let key = String(line[..<equals]).trimmingCharacters(in: .whitespaces)
        var value = String(line[line.index(after: equals)...])
        if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
            value = String(value.dropFirst().dropLast())
        }
        guard key.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
            throw DeployTestError("\(source):\(number + 1): \(key) is not a variable name")
        }
        result.append((key, value))
    }
    return result
}

/// Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}` and `$$`, with
/// every variable unset: defaults are used, required variables get `placeholder`.
func interpolateCompose(_ text: String, placeholder: (String) -> String = { "placeholder-\($0.lowercased())" }) -> String {
    var output = ""
    var index = text.startIndex
    while index < text.endIndex {
        let character = text[index]
        guard character == "$" else {
            output.append(character)
            index = text.index(after: index)
            continue
        }
        let next = text.index(after: index)
        if next < text.endIndex, text[next] == "$" {
            output.append("$")
            index = text.index(after: next)
            continue
        }
        if next < text.endIndex, text[next] == "{", let close = text[next...].firstIndex(of: "}") {
            let body = String(text[text.index(after: next)..<close])
            let name = String(body.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
            let rest = body.dropFirst(name.count)
            if rest.hasPrefix(":-") {
                output += rest.dropFirst(2)
            } else if rest.hasPrefix("-") {
                output += rest.dropFirst()
            } else if rest.hasPrefix(":+") || rest.hasPrefix("+") {
                // Set-only alternative: empty when unset.
            } else {
                output += placeholder(name)
            }
            index = text.index(after: close)
            continue
        }
        output.append(character)
        index = next
    }
    return output
}

// MARK: - Compose

/// deploy/compose.yaml, read.
struct ComposeFile {
    let document: YAMLValue
    let services: [(name: String, spec: YAMLValue)]

    static func load() throws -> ComposeFile {
        let text = try Repository.text(DeployFiles.compose)
        let document = try YAMLValue.parse(text, source: DeployFiles.compose)
        guard let pairs = document["services"]?.pairs, !pairs.isEmpty else {
            throw DeployTestError("\(DeployFiles.compose) has no services")
        }
        return ComposeFile(document: document, services: pairs.map { ($0.key, $0.value) })
    }

    func service(_ name: String) -> YAMLValue? { services.first { $0.name == name }?.spec }

    /// The services that run the assay image (built here, or the image built here).
    var assayServices: [(name: String, spec: YAMLValue)] {
        services.filter { $0.spec["build"] != nil || $0.spec["image"]?.string == DeployFiles.localImage }
    }

    /// A path in a compose file, relative to the file's folder, as a repository path.
    static func repositoryPath(_ path: String) -> String {
        var components = ["deploy"]
        for part in path.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": if !components.isEmpty { components.removeLast() }
            default: components.append(String(part))
            }
        }
        return components.joined(separator: "/")
    }

    /// The `command` of a service as words (a list, or a string split like a shell would).
    static func commandWords(_ spec: YAMLValue) -> [String]? {
        guard let command = spec["command"] else { return nil }
        if let text = command.string { return ShellWords.split(interpolateCompose(text)) }
        return command.strings?.map { interpolateCompose($0) }
    }

    /// The environment a service's container gets: its env_file entries, then `environment`
    /// (which wins), interpolated as Compose does with nothing set in the shell.
    static func environment(_ spec: YAMLValue) throws -> [String: String] {
        var result: [String: String] = [:]
        for file in envFiles(spec) {
            let path = repositoryPath(file)
            for (key, value) in try parseEnvFile(try Repository.text(path), source: path) {
                result[key] = value
            }
        }
        if let map = spec["environment"]?.stringMap {
            for (key, value) in map { result[key] = interpolateCompose(value) }
        } else if let list = spec["environment"]?.strings {
            for item in list {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                result[parts[0]] = parts.count > 1 ? interpolateCompose(parts[1]) : ""
            }
        }
        return result
    }

    /// env_file entries (strings, or `{path: ...}` mappings).
    static func envFiles(_ spec: YAMLValue) -> [String] {
        guard let value = spec["env_file"] else { return [] }
        if let text = value.string { return [text] }
        return (value.array ?? []).compactMap { $0.string ?? $0["path"]?.string }
    }

    /// Bind mounts `host:container[:mode]` (short syntax) of a service.
    static func bindMounts(_ spec: YAMLValue) -> [(host: String, container: String)] {
        (spec["volumes"]?.array ?? []).compactMap { item -> (String, String)? in
            if let text = item.string {
                let parts = text.split(separator: ":").map(String.init)
                guard parts.count >= 2, parts[0].hasPrefix(".") || parts[0].hasPrefix("/") else { return nil }
                return (parts[0], parts[1])
            }
            if item["type"]?.string == "bind", let source = item["source"]?.string, let target = item["target"]?.string {
                return (source, target)
            }
            return nil
        }
    }

    /// Named volumes (short syntax `name:/path`) of a service.
    static func namedVolumes(_ spec: YAMLValue) -> [String] {
        (spec["volumes"]?.array ?? []).compactMap { item -> String? in
            if let text = item.string {
                let parts = text.split(separator: ":").map(String.init)
                guard parts.count >= 2, !parts[0].hasPrefix("."), !parts[0].hasPrefix("/") else { return nil }
                return parts[0]
            }
            if item["type"]?.string == "volume" { return item["source"]?.string }
            return nil
        }
    }

    /// depends_on targets with their conditions (list form means service_started).
    static func dependencies(_ spec: YAMLValue) -> [(service: String, condition: String)] {
        guard let value = spec["depends_on"] else { return [] }
        if let list = value.strings { return list.map { ($0, "service_started") } }
        return (value.pairs ?? []).map { ($0.key, $0.value["condition"]?.string ?? "service_started") }
    }

    /// Whether a service runs once and exits.
    static func isOneShot(_ spec: YAMLValue) -> Bool {
        spec["restart"]?.string == "no"
    }
}

// MARK: - Dockerfile

/// One instruction of the Dockerfile (continuation lines joined).
struct DockerInstruction {
    var keyword: String
    var arguments: String
    var stage: Int
}

/// deploy/Dockerfile, read.
struct Dockerfile {
    let instructions: [DockerInstruction]
    /// `ARG NAME=default` before the first FROM.
    let globalArguments: [String: String]

    static func load() throws -> Dockerfile {
        try parse(try Repository.text(DeployFiles.dockerfile))
    }

    static func parse(_ text: String) throws -> Dockerfile {
        var logical: [String] = []
        var pending = ""
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(rawLine)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("#") { continue }
            if trimmed.hasSuffix("\\") {
                pending += String(trimmed.dropLast()) + " "
                continue
            }
            pending += trimmed
            if !pending.trimmingCharacters(in: .whitespaces).isEmpty { logical.append(pending) }
            pending = ""
        }
        var instructions: [DockerInstruction] = []
        var globals: [String: String] = [:]
        var stage = -1
        for line in logical {
            let keyword = String(line.prefix { !$0.isWhitespace }).uppercased()
            let arguments = line.dropFirst(keyword.count).trimmingCharacters(in: .whitespaces)
            if keyword == "FROM" { stage += 1 }
            if keyword == "ARG", stage < 0 {
                let parts = arguments.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { globals[parts[0]] = parts[1] }
            }
            instructions.append(DockerInstruction(keyword: keyword, arguments: arguments, stage: stage))
        }
        return Dockerfile(instructions: instructions, globalArguments: globals)
    }

    /// `FROM` images with `${ARG}` defaults substituted, and their stage names.
    var stages: [(image: String, name: String?)] {
        instructions.filter { $0.keyword == "FROM" }.map { instruction in
            let words = instruction.arguments.split(separator: " ").map(String.init)
                .filter { !$0.hasPrefix("--platform") }
            var image = words.first ?? ""
            for (name, value) in globalArguments {
                image = image.replacingOccurrences(of: "${\(name)}", with: value).replacingOccurrences(of: "$\(name)", with: value)
            }
            let name = words.count >= 3 && words[1].uppercased() == "AS" ? words[2] : nil
            return (image, name)
        }
    }

    func instructions(_ keyword: String, stage: Int? = nil) -> [DockerInstruction] {
        instructions.filter { $0.keyword == keyword && (stage == nil || $0.stage == stage) }
    }

    var finalStage: Int { stages.count - 1 }

    /// `ENV` of the final stage (both `ENV K=V` and `ENV K V`).
    var environment: [String: String] {
        var result: [String: String] = [:]
        for instruction in instructions("ENV", stage: finalStage) {
            let text = instruction.arguments
            if let equals = text.firstIndex(of: "="), !text[..<equals].contains(" ") {
                for word in ShellWords.split(text) {
                    let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
                    if parts.count == 2 { result[parts[0]] = parts[1] }
                }
            } else {
                let parts = text.split(separator: " ", maxSplits: 1).map(String.init)
                if parts.count == 2 { result[parts[0]] = parts[1] }
            }
        }
        return result
    }

    /// The JSON (exec) form of an instruction's arguments, or its words.
    static func words(_ arguments: String) -> [String] {
        let trimmed = arguments.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("["), let data = trimmed.data(using: .utf8),
           let array = try? JSONSerialization.jsonObject(with: data) as? [String] {
            return array
        }
        return ShellWords.split(trimmed)
    }

    var entrypoint: [String] { instructions("ENTRYPOINT", stage: finalStage).last.map { Self.words($0.arguments) } ?? [] }
    var command: [String] { instructions("CMD", stage: finalStage).last.map { Self.words($0.arguments) } ?? [] }
}

// MARK: - Kubernetes

/// One object of deploy/k8s.
struct KubernetesObject {
    let file: String
    let document: YAMLValue

    var kind: String { document["kind"]?.string ?? "" }
    var apiVersion: String { document["apiVersion"]?.string ?? "" }
    var name: String { document.at("metadata", "name")?.string ?? document.at("metadata", "generateName")?.string ?? "" }
    var location: String { "\(file) \(kind) \(name)" }

    /// The pod template's spec (Deployment, Job), if any.
    var podSpec: YAMLValue? { document.at("spec", "template", "spec") }
}

/// Every object in deploy/k8s/*.yaml.
struct KubernetesManifests {
    let objects: [KubernetesObject]

    static func load() throws -> KubernetesManifests {
        var objects: [KubernetesObject] = []
        for file in try Repository.files(in: DeployFiles.kubernetesFolder, suffix: ".yaml") {
            for document in try YAMLValue.parseAll(try Repository.text(file), source: file) where !document.isNull {
                objects.append(KubernetesObject(file: file, document: document))
            }
        }
        return KubernetesManifests(objects: objects)
    }

    func all(_ kind: String) -> [KubernetesObject] { objects.filter { $0.kind == kind } }

    func one(_ kind: String) throws -> KubernetesObject {
        let found = all(kind)
        guard found.count == 1 else { throw DeployTestError("expected one \(kind) in deploy/k8s, found \(found.count)") }
        return found[0]
    }

    /// Containers that run the assay image (repository basename `assay`).
    func assayContainers() -> [(object: KubernetesObject, container: YAMLValue)] {
        objects.flatMap { object in
            (object.podSpec?["containers"]?.array ?? []).filter { container in
                guard let image = container["image"]?.string else { return false }
                let repository = image.split(separator: "@")[0].split(separator: ":")[0]
                return repository.split(separator: "/").last == "assay"
            }.map { (object, $0) }
        }
    }

    /// The arguments after the binary: `command` (minus the binary) + `args`, or the image's
    /// ENTRYPOINT's arguments + `args` (the Dockerfile's ENTRYPOINT is the binary alone).
    static func assayArguments(_ container: YAMLValue) -> [String] {
        var words: [String] = []
        if let command = container["command"]?.strings {
            words = command.first.map { AssayInvocation.isBinary($0) } == true ? Array(command.dropFirst()) : command
        }
        return words + (container["args"]?.strings ?? [])
    }
}
