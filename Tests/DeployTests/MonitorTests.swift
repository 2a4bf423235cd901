import AssayCore
import AssayTestSupport
import Foundation
import Testing

/// Reading the monitor documents the deploy files ship.
enum MonitorDocuments {
    static func parse(_ text: String, origin: String) throws -> MonitorConfig {
        do {
            return try MonitorConfig.parse(Array(text.utf8))
        } catch {
            throw DeployTestError("\(origin) is not a valid monitor document:\n\(error.description)")
        }
    }

    /// The variable an `openai` judge reads its key from, nil for no judge or the offline one.
    static func apiKeyEnvironmentVariable(_ text: String, origin: String) throws -> String? {
        let config = try parse(text, origin: origin)
        guard let judge = config.judge, judge.kind == .openai else { return nil }
        return judge.apiKeyEnv
    }

    static func destinationSchema(_ text: String) throws -> String {
        try parse(text, origin: "monitor").destinationSchema
    }

    /// Every monitor document that compose.yaml and deploy/k8s hand to assay serve.
    static func deployed() throws -> [(text: String, origin: String)] {
        var seen: Set<String> = []
        var result: [(text: String, origin: String)] = []
        for command in try DeployedCommands.compose() + DeployedCommands.kubernetes() {
            guard let monitor = command.monitor, seen.insert(monitor.origin).inserted else { continue }
            result.append((monitor.text, monitor.origin))
        }
        return result
    }
}

@Suite("monitor documents in deploy/")
struct MonitorTests {
    @Test("compose.yaml's and the ConfigMap's monitor documents are found")
    func found() throws {
        let origins = try MonitorDocuments.deployed().map(\.origin)
        #expect(origins.contains("deploy/monitor.json"), "compose.yaml should mount deploy/monitor.json; found \(origins)")
        #expect(origins.contains { $0.hasPrefix("deploy/k8s/configmap.yaml") }, "the Deployment should mount the ConfigMap's monitor.json; found \(origins)")
    }

    @Test("each is a valid monitor config (MonitorConfig.parse) and valid against schemas/monitor.schema.json")
    func valid() throws {
        let checker = try JSONSchemaChecker(schemaBytes: Array(try Repository.text("schemas/monitor.schema.json").utf8))
        var problems: [String] = []
        for (text, origin) in try MonitorDocuments.deployed() {
            do {
                let config = try MonitorDocuments.parse(text, origin: origin)
                if config.scorers.isEmpty { problems.append("\(origin): no scorers") }
                if config.paused { problems.append("\(origin): ships paused") }
            } catch {
                problems.append("\(error)")
            }
            do {
                let document = try JSONParser().parse(Array(text.utf8))
                let violations = checker.violations(of: document)
                problems += violations.map { "\(origin): schema: \($0)" }
            } catch {
                problems.append("\(origin): not JSON: \(error)")
            }
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("a monitor's destination schema agrees with ASSAY_SCHEMA where both are set")
    func destinationMatchesSchema() throws {
        var problems: [String] = []
        for command in try DeployedCommands.compose() + DeployedCommands.kubernetes() {
            guard let monitor = command.monitor, case .literal(let schema)? = command.environment["ASSAY_SCHEMA"] else { continue }
            let destination = try MonitorDocuments.destinationSchema(monitor.text)
            if destination != schema {
                problems.append("\(command.invocation.location): ASSAY_SCHEMA=\(schema) but \(monitor.origin) writes to \(destination) (serve refuses this)")
            }
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("a judge that needs an API key gets the variable it names")
    func judgeKeyProvided() throws {
        var problems: [String] = []
        for command in try DeployedCommands.compose() + DeployedCommands.kubernetes() {
            guard let monitor = command.monitor,
                  let variable = try MonitorDocuments.apiKeyEnvironmentVariable(monitor.text, origin: monitor.origin) else { continue }
            if command.environment[variable] == nil {
                problems.append("\(command.invocation.location): \(monitor.origin) reads its judge key from \(variable), which the container does not get")
            }
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }
}
