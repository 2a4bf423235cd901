import Foundation
import Testing

@Suite("deploy/compose.yaml")
struct ComposeTests {
    @Test("every service has an image or a build whose Dockerfile exists; images built here are built by some service")
    func imagesExist() throws {
        let compose = try ComposeFile.load()
        var problems: [String] = []
        var built: Set<String> = []
        for (name, spec) in compose.services {
            if let build = spec["build"] {
                let context = ComposeFile.repositoryPath(build.string ?? build["context"]?.string ?? ".")
                let dockerfile = build["dockerfile"]?.string ?? "Dockerfile"
                let dockerfilePath = context.isEmpty ? dockerfile : "\(context)/\(dockerfile)"
                if !Repository.exists(dockerfilePath) { problems.append("\(name): build.dockerfile \(dockerfilePath) does not exist") }
                if !Repository.exists(context.isEmpty ? "." : context) { problems.append("\(name): build.context \(context) does not exist") }
                if let image = spec["image"]?.string { built.insert(image) }
            } else if spec["image"]?.string?.isEmpty ?? true {
                problems.append("\(name): neither image nor build")
            }
        }
        for (name, spec) in compose.services where spec["build"] == nil {
            guard let image = spec["image"]?.string else { continue }
            let repositoryAndTag = image.split(separator: "@")[0]
            if image == DeployFiles.localImage || repositoryAndTag.hasSuffix(":local") {
                if !built.contains(image) { problems.append("\(name): image \(image) is local but no service builds it") }
            } else if !repositoryAndTag.contains(":") || repositoryAndTag.hasSuffix(":latest") {
                problems.append("\(name): image \(image) is not pinned to a version tag")
            }
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("env files, bind-mounted files and named volumes exist; depends_on targets exist with valid conditions")
    func referencesResolve() throws {
        let compose = try ComposeFile.load()
        let declaredVolumes = Set((compose.document["volumes"]?.pairs ?? []).map(\.key))
        var problems: [String] = []
        for (name, spec) in compose.services {
            for file in ComposeFile.envFiles(spec) {
                let path = ComposeFile.repositoryPath(file)
                if !Repository.exists(path) {
                    problems.append("\(name): env_file \(path) does not exist")
                } else {
                    do { _ = try parseEnvFile(try Repository.text(path), source: path) } catch { problems.append("\(name): \(error)") }
                }
            }
            for mount in ComposeFile.bindMounts(spec) where mount.host.hasPrefix(".") {
                let path = ComposeFile.repositoryPath(mount.host)
                if !Repository.exists(path) { problems.append("\(name): bind mount source \(path) does not exist") }
            }
            for volume in ComposeFile.namedVolumes(spec) where !declaredVolumes.contains(volume) {
                problems.append("\(name): volume \(volume) is not declared under top-level volumes")
            }
            for (target, condition) in ComposeFile.dependencies(spec) {
                guard let targetSpec = compose.service(target) else {
                    problems.append("\(name): depends_on \(target), which is not a service")
                    continue
                }
                switch condition {
                case "service_started": break
                case "service_healthy":
                    if targetSpec.at("healthcheck", "test") == nil {
                        problems.append("\(name): waits for \(target) to be healthy, but \(target) has no healthcheck")
                    }
                case "service_completed_successfully":
                    if !ComposeFile.isOneShot(targetSpec) {
                        problems.append("\(name): waits for \(target) to complete, but \(target) is not a one-shot (restart: \"no\")")
                    }
                default:
                    problems.append("\(name): depends_on \(target) with unknown condition \(condition)")
                }
            }
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("every long-running service has a healthcheck (or says why it cannot); assay's probes /healthz on its admin port")
    func healthchecks() throws {
        let compose = try ComposeFile.load()
        var problems: [String] = []
        for (name, spec) in compose.services where !ComposeFile.isOneShot(spec) {
            let test = spec.at("healthcheck", "test")?.strings ?? []
            let disabled = spec.at("healthcheck", "disable")?.string == "true" || test.first == "NONE"
            let reason = spec.at("labels", "assay.healthcheck")?.string
            if test.isEmpty || disabled {
                if !(reason?.hasPrefix("none:") ?? false) {
                    problems.append("\(name): no healthcheck, and no label assay.healthcheck: \"none: <why>\"")
                }
            }
        }
        for command in try DeployedCommands.compose() where command.invocation.subcommand == ["serve"] {
            let serviceName = command.invocation.location.components(separatedBy: "service ").last ?? ""
            let spec = try #require(compose.service(serviceName))
            let test = (spec.at("healthcheck", "test")?.strings ?? []).joined(separator: " ")
            guard case .literal(let http)? = command.environment["ASSAY_HTTP"], let port = http.split(separator: ":").last else {
                problems.append("\(serviceName): ASSAY_HTTP is not set")
                continue
            }
            if !test.contains(":\(port)/healthz") {
                problems.append("\(serviceName): healthcheck `\(test)` does not probe /healthz on the admin port \(port) (ASSAY_HTTP=\(http))")
            }
            if !(spec["ports"]?.strings ?? []).contains(where: { $0.hasSuffix(":\(port)") }) {
                problems.append("\(serviceName): the admin port \(port) is not published")
            }
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("three assay replicas in one group, stopped with a grace period longer than the shutdown deadline")
    func replicas() throws {
        let compose = try ComposeFile.load()
        let deadline = try DeployFiles.shutdownDeadlineSeconds()
        let serving = try DeployedCommands.compose().filter { $0.invocation.subcommand == ["serve"] }
        #expect(serving.count == 1, "one scalable serve service expected, found \(serving.map(\.invocation.location))")
        for command in serving {
            let name = command.invocation.location.components(separatedBy: "service ").last ?? ""
            let spec = try #require(compose.service(name))
            #expect(spec.at("deploy", "replicas")?.int == 3, "\(name): deploy.replicas should be 3")
            let grace = try #require(spec["stop_grace_period"]?.string, "\(name): no stop_grace_period (Compose's default is 10 s)")
            let seconds = try #require(durationSeconds(grace), "\(name): stop_grace_period \(grace) is not a duration")
            #expect(seconds > deadline, "\(name): stop_grace_period \(grace) must exceed the shutdown deadline of \(deadline) s")
            if let own = try serveShutdownDeadline(command.invocation.arguments) {
                #expect(own <= deadline, "\(name): --shutdown-deadline-seconds is \(own): the replica may take longer to stop than the documented deadline of \(deadline) s")
            }
            #expect(spec["container_name"] == nil, "\(name): container_name prevents --scale")
            #expect(spec["restart"]?.string == "unless-stopped" || spec["restart"]?.string == "always", "\(name): replicas should restart")
        }
    }

    @Test("brokers, database URL, topics and the Collector agree with the Kafka and PostgreSQL services")
    func wiring() throws {
        let compose = try ComposeFile.load()
        let serve = try #require(try DeployedCommands.compose().first { $0.invocation.subcommand == ["serve"] })
        var problems: [String] = []
        func literal(_ name: String) -> String? {
            if case .literal(let value)? = serve.environment[name] { return value }
            return nil
        }
        // Kafka: the brokers are an advertised listener of the kafka service.
        let brokers = literal("ASSAY_KAFKA_BROKERS") ?? ""
        let advertised = compose.service("kafka")?.at("environment", "KAFKA_ADVERTISED_LISTENERS")?.string ?? ""
        for broker in brokers.split(separator: ",") where !advertised.contains("//\(broker)") {
            problems.append("ASSAY_KAFKA_BROKERS \(broker) is not among the kafka service's advertised listeners (\(advertised))")
        }
        // PostgreSQL: user, password, database and host of the URL match the postgres service.
        let url = literal("ASSAY_DATABASE_URL") ?? ""
        var postgres: [String: String] = [:]
        for file in ComposeFile.envFiles(compose.service("postgres") ?? .null) {
            let path = ComposeFile.repositoryPath(file)
            for (key, value) in try parseEnvFile(try Repository.text(path), source: path) { postgres[key] = value }
        }
        let user = postgres["POSTGRES_USER"] ?? "postgres"
        let expected = "postgres://\(user):\(postgres["POSTGRES_PASSWORD"] ?? "")@postgres:5432/\(postgres["POSTGRES_DB"] ?? user)"
        if !url.hasPrefix(expected) {
            problems.append("ASSAY_DATABASE_URL (\(PostgresURL.redacted(url))) does not match the postgres service (\(PostgresURL.redacted(expected))…)")
        }
        // Topics: created by kafka-init with enough partitions, and the Collector writes the traces topic.
        let tracesTopic = literal("ASSAY_TRACES_TOPIC") ?? "traces"
        let assessmentsTopic = literal("ASSAY_ASSESSMENTS_TOPIC") ?? "assessments"
        let initScript = (ComposeFile.commandWords(compose.service("kafka-init") ?? .null) ?? []).joined(separator: " ")
        for topic in [tracesTopic, assessmentsTopic] where !initScript.contains("--create --if-not-exists --topic \(topic) ") {
            problems.append("kafka-init does not create the topic \(topic)")
        }
        let partitions = Int(firstMatch("--topic \(tracesTopic) --partitions (\\d+)", in: initScript) ?? "") ?? 0
        let replicas = compose.service("assay")?.at("deploy", "replicas")?.int ?? 0
        if partitions < replicas {
            problems.append("the \(tracesTopic) topic has \(partitions) partitions for \(replicas) replicas: the extra replicas would idle")
        }
        if compose.service("kafka")?.at("environment", "KAFKA_AUTO_CREATE_TOPICS_ENABLE")?.string != "false" {
            problems.append("the broker may auto-create topics (with 1 partition) before kafka-init runs: set KAFKA_AUTO_CREATE_TOPICS_ENABLE=false")
        }
        let collector = try YAMLValue.parse(try Repository.text(DeployFiles.collector), source: DeployFiles.collector)
        let kafkaExporter = collector.at("exporters", "kafka")
        if kafkaExporter?.at("traces", "topic")?.string != tracesTopic {
            problems.append("the Collector's Kafka exporter does not publish to \(tracesTopic) (traces::topic)")
        }
        if kafkaExporter?.at("traces", "encoding")?.string != "otlp_proto" {
            problems.append("the Collector's Kafka exporter should encode traces as otlp_proto")
        }
        if !(kafkaExporter?["brokers"]?.strings ?? []).contains(where: { brokers.split(separator: ",").contains(Substring($0)) }) {
            problems.append("the Collector's Kafka exporter brokers \(kafkaExporter?["brokers"]?.description ?? "none") are not ASSAY_KAFKA_BROKERS \(brokers)")
        }
        if !(collector.at("service", "pipelines", "traces", "exporters")?.strings ?? []).contains("kafka") {
            problems.append("the Collector's traces pipeline does not use the kafka exporter")
        }
        let maxMessage = Int(try CLIHelp.serve.defaults["--max-message-bytes"] ?? "") ?? 0
        if let producerMax = kafkaExporter?.at("producer", "max_message_bytes")?.int, producerMax > maxMessage {
            problems.append("the Collector may write records of \(producerMax) bytes; assay serve dead-letters those over --max-message-bytes (\(maxMessage))")
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }
}

/// `100s`, `1m30s`, `2m` as seconds.
func durationSeconds(_ text: String) -> Int? {
    var total = 0
    var number = ""
    var sawUnit = false
    for character in text {
        if character.isNumber {
            number.append(character)
        } else {
            guard let value = Int(number) else { return nil }
            switch character {
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            default: return nil
            }
            number = ""
            sawUnit = true
        }
    }
    if !number.isEmpty { return sawUnit ? nil : Int(number) }
    return total
}

enum PostgresURL {
    /// The URL with its password replaced, for messages.
    static func redacted(_ url: String) -> String {
        url.replacingOccurrences(of: #"(//[^:/@]+):[^@]*@"#, with: "$1:***@", options: .regularExpression)
    }
}
