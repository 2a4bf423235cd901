import Foundation
import Testing

@Suite("deploy/k8s")
struct KubernetesTests {
    /// The kinds we ship, with their apiVersions and required fields (paths of keys).
    static let required: [String: (apiVersion: String, fields: [[String]])] = [
        "Deployment": ("apps/v1", [["spec", "selector", "matchLabels"], ["spec", "template", "metadata", "labels"], ["spec", "template", "spec", "containers"], ["spec", "replicas"]]),
        "Service": ("v1", [["spec", "selector"], ["spec", "ports"]]),
        "ConfigMap": ("v1", [["data"]]),
        "Secret": ("v1", [["type"], ["stringData"]]),
        "PodDisruptionBudget": ("policy/v1", [["spec", "selector", "matchLabels"]]),
        "ScaledObject": ("keda.sh/v1alpha1", [["spec", "scaleTargetRef", "name"], ["spec", "triggers"], ["spec", "minReplicaCount"], ["spec", "maxReplicaCount"]]),
        "Job": ("batch/v1", [["spec", "template", "spec", "containers"], ["spec", "template", "spec", "restartPolicy"]]),
        "Kustomization": ("kustomize.config.k8s.io/v1beta1", [["resources"]]),
    ]

    @Test("every manifest parses, has a known kind, its apiVersion, a name and the kind's required fields")
    func kindsAndFields() throws {
        let manifests = try KubernetesManifests.load()
        var problems: [String] = []
        for object in manifests.objects {
            guard let rule = Self.required[object.kind] else {
                problems.append("\(object.file): unknown kind \(object.kind.isEmpty ? "(none)" : object.kind)")
                continue
            }
            if object.apiVersion != rule.apiVersion { problems.append("\(object.location): apiVersion \(object.apiVersion), expected \(rule.apiVersion)") }
            if object.kind != "Kustomization", object.name.isEmpty { problems.append("\(object.file) \(object.kind): no metadata.name") }
            for path in rule.fields {
                var value: YAMLValue? = object.document
                for key in path { value = value?[key] }
                if value == nil || value?.isNull == true { problems.append("\(object.location): missing \(path.joined(separator: "."))") }
            }
        }
        for kind in ["Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "ScaledObject", "Job", "Kustomization"] where manifests.all(kind).isEmpty {
            problems.append("no \(kind) in deploy/k8s")
        }
        // kustomization.yaml lists files that exist, and never the example Secret.
        for resource in (try manifests.one("Kustomization")).document["resources"]?.strings ?? [] {
            if !Repository.exists("\(DeployFiles.kubernetesFolder)/\(resource)") { problems.append("kustomization.yaml lists \(resource), which does not exist") }
            if resource.contains("secret") { problems.append("kustomization.yaml must not apply \(resource): its values are placeholders") }
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("Deployment: selector matches the pod labels, probes hit /healthz and /readyz on the admin port, grace period exceeds the shutdown deadline")
    func deployment() throws {
        let manifests = try KubernetesManifests.load()
        let deployment = try manifests.one("Deployment")
        let spec = try #require(deployment.document["spec"])
        var problems: [String] = []

        let selector = spec.at("selector", "matchLabels")?.stringMap ?? [:]
        let labels = spec.at("template", "metadata", "labels")?.stringMap ?? [:]
        if selector.isEmpty || !selector.allSatisfy({ labels[$0.key] == $0.value }) {
            problems.append("spec.selector.matchLabels \(selector) does not match the template labels \(labels)")
        }
        if (spec["replicas"]?.int ?? 0) < 3 { problems.append("spec.replicas should be at least 3") }

        let deadline = try DeployFiles.shutdownDeadlineSeconds()
        let grace = spec.at("template", "spec", "terminationGracePeriodSeconds")?.int ?? 30
        if grace <= deadline { problems.append("terminationGracePeriodSeconds \(grace) must exceed the shutdown deadline of \(deadline) s (docs/failure-modes.md)") }

        let commands = try DeployedCommands.kubernetes().filter { $0.invocation.location.hasPrefix(deployment.file) }
        let container = try #require(spec.at("template", "spec", "containers")?.array?.first { ($0["image"]?.string ?? "").contains("assay") })
        let command = try #require(commands.first)
        if command.invocation.subcommand != ["serve"] { problems.append("the container runs \(command.invocation.subcommand), not serve") }
        if let own = try serveShutdownDeadline(command.invocation.arguments), own > deadline {
            problems.append("--shutdown-deadline-seconds is \(own): the replica may take longer to stop than the documented deadline of \(deadline) s")
        }

        // The admin port: ASSAY_HTTP's port is the containerPort the probes and the Service use.
        guard case .literal(let http)? = command.environment["ASSAY_HTTP"], let port = Int(http.split(separator: ":").last ?? "") else {
            Issue.record("ASSAY_HTTP is not a literal ADDR:PORT in the Deployment")
            return
        }
        let ports = container["ports"]?.array ?? []
        guard let portEntry = ports.first(where: { $0["containerPort"]?.int == port }) else {
            Issue.record("no containerPort \(port) (ASSAY_HTTP=\(http)); ports: \(ports)")
            return
        }
        let portName = portEntry["name"]?.string
        func resolves(_ value: YAMLValue?) -> Bool {
            value?.int == port || (portName != nil && value?.string == portName)
        }
        for (probe, path) in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            guard let get = container.at(probe, "httpGet") else {
                problems.append("no \(probe) with httpGet")
                continue
            }
            if get["path"]?.string != path { problems.append("\(probe) probes \(get["path"]?.string ?? "nothing"), expected \(path)") }
            if !resolves(get["port"]) { problems.append("\(probe) port \(get["port"]?.description ?? "none") is not the admin port \(port)") }
        }
        for (kind, path) in [("requests", "cpu"), ("requests", "memory"), ("limits", "memory")] where container.at("resources", kind, path) == nil {
            problems.append("resources.\(kind).\(path) is not set")
        }

        // The image's user: Dockerfile USER, runAsNonRoot.
        let user = try Dockerfile.load().instructions("USER", stage: try Dockerfile.load().finalStage).last?.arguments ?? ""
        let uid = user.split(separator: ":").first.map(String.init) ?? ""
        let podSecurity = spec.at("template", "spec", "securityContext")
        if podSecurity?["runAsNonRoot"]?.string != "true" { problems.append("securityContext.runAsNonRoot is not true") }
        if podSecurity?["runAsUser"]?.string != uid { problems.append("securityContext.runAsUser \(podSecurity?["runAsUser"]?.string ?? "unset") is not the image's USER \(uid)") }

        // Volumes: every mount names a volume; ConfigMap volumes name a ConfigMap here, or are optional.
        let volumes = spec.at("template", "spec", "volumes")?.array ?? []
        for mount in container["volumeMounts"]?.array ?? [] {
            let name = mount["name"]?.string ?? ""
            guard let volume = volumes.first(where: { $0["name"]?.string == name }) else {
                problems.append("volumeMount \(name) names no volume")
                continue
            }
            if let configMap = volume.at("configMap", "name")?.string, volume.at("configMap", "optional")?.string != "true",
               !manifests.all("ConfigMap").contains(where: { $0.name == configMap }) {
                problems.append("volume \(name) needs ConfigMap \(configMap), which is not in deploy/k8s")
            }
        }
        if let problem = command.monitorProblem { problems.append(problem) }
        if command.monitor == nil { problems.append("the replicas get no monitor document (ASSAY_MONITOR_FILE from the ConfigMap)") }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("Secret references resolve to keys of secret.example.yaml, and the judge's api_key_env is in the environment")
    func secrets() throws {
        let manifests = try KubernetesManifests.load()
        let secrets = manifests.all("Secret")
        var problems: [String] = []
        for command in try DeployedCommands.kubernetes() {
            for (name, value) in command.environment.sorted(by: { $0.key < $1.key }) {
                guard case .secret(let secretName, let key) = value else { continue }
                guard let secret = secrets.first(where: { $0.name == secretName }) else {
                    problems.append("\(command.invocation.location): \(name) reads Secret \(secretName), which deploy/k8s does not describe")
                    continue
                }
                if secret.document.at("stringData", key) == nil && secret.document.at("data", key) == nil {
                    problems.append("\(command.invocation.location): \(name) reads key \(key) of Secret \(secretName), which has no such key")
                }
            }
            for name in ["ASSAY_DATABASE_URL", "ASSAY_ADMIN_TOKEN"] {
                if case .literal? = command.environment[name], command.invocation.subcommand == ["serve"] {
                    problems.append("\(command.invocation.location): \(name) should come from the Secret, not a literal")
                }
            }
            if let monitor = command.monitor, let apiKeyEnv = try MonitorDocuments.apiKeyEnvironmentVariable(monitor.text, origin: monitor.origin) {
                guard case .secret? = command.environment[apiKeyEnv] else {
                    problems.append("\(command.invocation.location): the monitor's judge reads its key from \(apiKeyEnv), which the container does not get from a Secret")
                    continue
                }
            }
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("Service, PodDisruptionBudget and ScaledObject select the Deployment's pods and agree with its settings")
    func companions() throws {
        let manifests = try KubernetesManifests.load()
        let deployment = try manifests.one("Deployment")
        let labels = deployment.document.at("spec", "template", "metadata", "labels")?.stringMap ?? [:]
        let container = try #require(deployment.podSpec?["containers"]?.array?.first)
        let portNames = Set((container["ports"]?.array ?? []).compactMap { $0["name"]?.string })
        let portNumbers = Set((container["ports"]?.array ?? []).compactMap { $0["containerPort"]?.int })
        var problems: [String] = []

        let service = try manifests.one("Service")
        let serviceSelector = service.document.at("spec", "selector")?.stringMap ?? [:]
        if serviceSelector.isEmpty || !serviceSelector.allSatisfy({ labels[$0.key] == $0.value }) {
            problems.append("Service selector \(serviceSelector) does not select the Deployment's pods \(labels)")
        }
        for port in service.document.at("spec", "ports")?.array ?? [] {
            let target = port["targetPort"]
            if !(target?.string.map { portNames.contains($0) } ?? false) && !(target?.int.map { portNumbers.contains($0) } ?? false) {
                problems.append("Service targetPort \(target?.description ?? "none") is not a container port")
            }
        }

        let pdb = try manifests.one("PodDisruptionBudget")
        let pdbSelector = pdb.document.at("spec", "selector", "matchLabels")?.stringMap ?? [:]
        if pdbSelector.isEmpty || !pdbSelector.allSatisfy({ labels[$0.key] == $0.value }) {
            problems.append("PodDisruptionBudget selector \(pdbSelector) does not select the Deployment's pods")
        }
        if pdb.document.at("spec", "maxUnavailable") == nil && pdb.document.at("spec", "minAvailable") == nil {
            problems.append("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
        }

        let scaled = try manifests.one("ScaledObject")
        if scaled.document.at("spec", "scaleTargetRef", "name")?.string != deployment.name {
            problems.append("ScaledObject targets \(scaled.document.at("spec", "scaleTargetRef", "name")?.description ?? "nothing"), not Deployment \(deployment.name)")
        }
        let serve = try #require(try DeployedCommands.kubernetes().first { $0.invocation.location.hasPrefix(deployment.file) })
        func literal(_ name: String, default value: String) -> String {
            if case .literal(let text)? = serve.environment[name] { return text }
            return value
        }
        let triggers = scaled.document.at("spec", "triggers")?.array ?? []
        guard let kafka = triggers.first(where: { $0["type"]?.string == "kafka" }) else {
            Issue.record("the ScaledObject has no kafka trigger")
            return
        }
        let expectations = [
            ("consumerGroup", literal("ASSAY_GROUP", default: "assay")),
            ("topic", literal("ASSAY_TRACES_TOPIC", default: "traces")),
            ("bootstrapServers", literal("ASSAY_KAFKA_BROKERS", default: "")),
            ("allowIdleConsumers", "false"),
        ]
        for (key, expected) in expectations where kafka.at("metadata", key)?.string != expected {
            problems.append("the kafka trigger's \(key) is \(kafka.at("metadata", key)?.description ?? "unset"), expected \(expected)")
        }
        let minimum = scaled.document.at("spec", "minReplicaCount")?.int ?? 0
        let maximum = scaled.document.at("spec", "maxReplicaCount")?.int ?? 0
        let partitions = try plannedTracesPartitions()
        if minimum < 1 || minimum > maximum { problems.append("ScaledObject min \(minimum) / max \(maximum) replicas are inconsistent") }
        if maximum > partitions { problems.append("ScaledObject maxReplicaCount \(maximum) exceeds the planned \(partitions) partitions: the extra replicas would idle") }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("the migration Job runs assay migrate on the same database Secret and schema")
    func migrationJob() throws {
        let manifests = try KubernetesManifests.load()
        let job = try manifests.one("Job")
        var problems: [String] = []
        let command = try #require(try DeployedCommands.kubernetes().first { $0.invocation.location.hasPrefix(job.file) })
        if command.invocation.subcommand != ["migrate"] { problems.append("the Job runs \(command.invocation.subcommand), not migrate") }
        let restart = job.podSpec?["restartPolicy"]?.string ?? ""
        if !["OnFailure", "Never"].contains(restart) { problems.append("the Job's restartPolicy is \(restart)") }
        let serve = try #require(try DeployedCommands.kubernetes().first { $0.invocation.subcommand == ["serve"] })
        if command.environment["ASSAY_DATABASE_URL"] != serve.environment["ASSAY_DATABASE_URL"] {
            problems.append("the Job's ASSAY_DATABASE_URL (\(command.environment["ASSAY_DATABASE_URL"]?.description ?? "unset")) is not the replicas' (\(serve.environment["ASSAY_DATABASE_URL"]?.description ?? "unset"))")
        }
        let schema = command.environment["ASSAY_SCHEMA"]?.description ?? "assay"
        let monitorSchema = serve.monitor.flatMap { try? MonitorDocuments.destinationSchema($0.text) } ?? "assay"
        if schema != monitorSchema { problems.append("the Job migrates schema \(schema), the monitor writes to \(monitorSchema)") }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }
}

/// The traces partitions the docs and compose.yaml plan for (compose's default).
func plannedTracesPartitions() throws -> Int {
    let compose = try ComposeFile.load()
    let script = (ComposeFile.commandWords(compose.service("kafka-init") ?? .null) ?? []).joined(separator: " ")
    guard let text = firstMatch(#"--topic traces --partitions (\d+)"#, in: script), let partitions = Int(text) else {
        throw DeployTestError("kafka-init in compose.yaml does not create the traces topic with a partition count")
    }
    return partitions
}
