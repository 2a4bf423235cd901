import Foundation

/// A value from a manifest's environment: a literal, or one only known at deploy time (a
/// Secret, a field of the pod, a variable of the operator's shell).
enum EnvironmentValue: Equatable, CustomStringConvertible {
    case literal(String)
    case secret(name: String, key: String)
    case field(String)
    case shell(String)

    var description: String {
        switch self {
        case .literal(let value): return value
        case .secret(let name, let key): return "<secret \(name)/\(key)>"
        case .field(let path): return "<field \(path)>"
        case .shell(let name): return "<shell $\(name)>"
        }
    }

    /// A stand-in for the dry run.
    var dryRunValue: String {
        switch self {
        case .literal(let value): return value
        case .secret(_, let key): return "dry-run-\(key)"
        case .field: return "dry-run-replica"
        case .shell(let name): return "dry-run-\(name.lowercased())"
        }
    }
}

/// One way the deploy files run the assay binary, with everything a dry run needs.
struct DeployedCommand {
    var invocation: AssayInvocation
    /// The container's environment (variables the image sets included).
    var environment: [String: EnvironmentValue]
    /// The monitor document the command would read (through ASSAY_MONITOR_FILE or --monitor),
    /// if any: its text and where it comes from.
    var monitor: (text: String, origin: String, containerPath: String)?
    /// Why the monitor file could not be traced to a file of the repository, if it could not.
    var monitorProblem: String?
}

enum DeployedCommands {
    /// The image's own ASSAY_* variables (lower precedence than the container's).
    static func imageEnvironment() throws -> [String: EnvironmentValue] {
        var result: [String: EnvironmentValue] = [:]
        for (key, value) in try Dockerfile.load().environment where key.hasPrefix("ASSAY_") {
            result[key] = .literal(value)
        }
        return result
    }

    /// The Dockerfile's default: ENTRYPOINT + CMD.
    static func dockerfile() throws -> [DeployedCommand] {
        let dockerfile = try Dockerfile.load()
        var words = dockerfile.entrypoint + dockerfile.command
        guard let binary = words.first, AssayInvocation.isBinary(binary) else { return [] }
        words.removeFirst()
        guard let invocation = AssayInvocation.parse(words[...], location: "\(DeployFiles.dockerfile) ENTRYPOINT+CMD") else { return [] }
        return [DeployedCommand(invocation: invocation, environment: try imageEnvironment())]
    }

    /// Every compose service that runs the assay image.
    static func compose() throws -> [DeployedCommand] {
        let compose = try ComposeFile.load()
        let dockerfile = try Dockerfile.load()
        var commands: [DeployedCommand] = []
        for (name, spec) in compose.assayServices {
            var words = ComposeFile.commandWords(spec) ?? dockerfile.command
            if let first = words.first, AssayInvocation.isBinary(first) { words.removeFirst() }
            let location = "\(DeployFiles.compose) service \(name)"
            guard let invocation = AssayInvocation.parse(words[...], location: location) else {
                throw DeployTestError("\(location): command \(words) is not an assay subcommand")
            }
            var environment = try imageEnvironment()
            for (key, value) in try ComposeFile.environment(spec) {
                environment[key] = value.hasPrefix("placeholder-") ? .shell(key) : .literal(value)
            }
            var command = DeployedCommand(invocation: invocation, environment: environment)
            if let path = monitorPath(invocation, environment) {
                if let mount = ComposeFile.bindMounts(spec).first(where: { path == $0.container || path.hasPrefix($0.container + "/") }) {
                    let hostPath = ComposeFile.repositoryPath(mount.host + path.dropFirst(mount.container.count))
                    if let text = try? Repository.text(hostPath) {
                        command.monitor = (text, hostPath, path)
                    } else {
                        command.monitorProblem = "\(location): the monitor file \(path) is mounted from \(hostPath), which does not exist"
                    }
                } else {
                    command.monitorProblem = "\(location): the monitor file \(path) is not provided by any bind mount"
                }
            }
            commands.append(command)
        }
        return commands
    }

    /// Every Kubernetes container that runs the assay image.
    static func kubernetes() throws -> [DeployedCommand] {
        let manifests = try KubernetesManifests.load()
        let dockerfile = try Dockerfile.load()
        var commands: [DeployedCommand] = []
        for (object, container) in manifests.assayContainers() {
            var words = KubernetesManifests.assayArguments(container)
            if words.isEmpty { words = dockerfile.command }
            let location = "\(object.location) container \(container["name"]?.string ?? "?")"
            guard let invocation = AssayInvocation.parse(words[...], location: location) else {
                throw DeployTestError("\(location): arguments \(words) do not start with an assay subcommand")
            }
            var environment = try imageEnvironment()
            for entry in container["env"]?.array ?? [] {
                guard let name = entry["name"]?.string else { continue }
                if let value = entry["value"]?.string {
                    environment[name] = .literal(value)
                } else if let secret = entry.at("valueFrom", "secretKeyRef") {
                    environment[name] = .secret(name: secret["name"]?.string ?? "", key: secret["key"]?.string ?? "")
                } else if let field = entry.at("valueFrom", "fieldRef", "fieldPath")?.string {
                    environment[name] = .field(field)
                } else {
                    environment[name] = .literal("")
                }
            }
            var command = DeployedCommand(invocation: invocation, environment: environment)
            if let path = monitorPath(invocation, environment) {
                let resolved = resolveKubernetesFile(path, container: container, object: object, manifests: manifests)
                switch resolved {
                case .success(let found): command.monitor = (found.text, found.origin, path)
                case .failure(let problem): command.monitorProblem = "\(location): \(problem.description)"
                }
            }
            commands.append(command)
        }
        return commands
    }

    static func all() throws -> [DeployedCommand] {
        try dockerfile() + compose() + kubernetes()
    }

    /// The monitor path: `--monitor FILE` wins over ASSAY_MONITOR_FILE.
    static func monitorPath(_ invocation: AssayInvocation, _ environment: [String: EnvironmentValue]) -> String? {
        if let index = invocation.arguments.firstIndex(of: "--monitor"), index + 1 < invocation.arguments.count {
            return invocation.arguments[index + 1]
        }
        if let flag = invocation.arguments.first(where: { $0.hasPrefix("--monitor=") }) {
            return String(flag.dropFirst("--monitor=".count))
        }
        if case .literal(let path)? = environment["ASSAY_MONITOR_FILE"] { return path }
        return nil
    }

    /// The content of a file a container sees at `path`, through a volumeMount of a ConfigMap
    /// volume whose ConfigMap is in the manifests.
    static func resolveKubernetesFile(_ path: String, container: YAMLValue, object: KubernetesObject,
                                      manifests: KubernetesManifests) -> Result<(text: String, origin: String), DeployTestError> {
        let mounts = container["volumeMounts"]?.array ?? []
        guard let mount = mounts.first(where: { mount in
            guard let mountPath = mount["mountPath"]?.string else { return false }
            return path.hasPrefix(mountPath.hasSuffix("/") ? mountPath : mountPath + "/")
        }), let mountPath = mount["mountPath"]?.string, let volumeName = mount["name"]?.string else {
            return .failure(DeployTestError("the monitor file \(path) is under no volumeMount"))
        }
        let fileName = String(path.dropFirst(mountPath.count).drop { $0 == "/" })
        guard let volume = object.podSpec?["volumes"]?.array?.first(where: { $0["name"]?.string == volumeName }) else {
            return .failure(DeployTestError("the volumeMount \(volumeName) (for \(path)) names no volume"))
        }
        guard let configMapName = volume.at("configMap", "name")?.string else {
            return .failure(DeployTestError("the volume \(volumeName) (for \(path)) is not a ConfigMap volume"))
        }
        guard let configMap = manifests.all("ConfigMap").first(where: { $0.name == configMapName }) else {
            return .failure(DeployTestError("the ConfigMap \(configMapName) (for \(path)) is not in deploy/k8s"))
        }
        guard let text = configMap.document.at("data", fileName)?.string else {
            return .failure(DeployTestError("the ConfigMap \(configMapName) has no key \(fileName) (for \(path))"))
        }
        return .success((text, "\(configMap.file) data.\(fileName)"))
    }
}
