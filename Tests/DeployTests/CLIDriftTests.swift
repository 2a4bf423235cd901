import Foundation
import Testing

/// The deploy files may only use flags and environment variables the binary has: each test
/// reads both the files and `assay <subcommand> --help`, and lists every unknown one.
@Suite("deploy/ uses only flags and variables assay has")
struct CLIDriftTests {
    @Test("help texts parse: serve lists its flags and Env: variables")
    func helpParses() throws {
        let serve = try CLIHelp.serve
        for flag in ["--brokers", "--database-url", "--group", "--traces-topic", "--http", "--monitor", "--kafka-option", "--session-timeout-ms", "--idle-timeout-seconds"] {
            #expect(serve.longFlags.contains(flag), "`assay serve --help` should list \(flag); parsed: \(serve.longFlags.sorted())")
        }
        for variable in ["ASSAY_KAFKA_BROKERS", "ASSAY_DATABASE_URL", "DATABASE_URL", "ASSAY_SCHEMA", "ASSAY_GROUP", "ASSAY_HTTP", "ASSAY_MONITOR_FILE"] {
            #expect(serve.environmentVariables.contains(variable), "`assay serve --help` should name \(variable); parsed: \(serve.environmentVariables.sorted())")
        }
        #expect(!serve.longFlags.contains("--no-such-flag"))
    }

    @Test("every --flag of every assay command in the Dockerfile, compose.yaml and deploy/k8s exists in that command's --help")
    func flagsExist() throws {
        var unknown: [String] = []
        var checked = 0
        for command in try DeployedCommands.all() {
            let help = try CLIHelp.named(command.invocation.subcommand.joined(separator: " "))
            for flag in command.invocation.longFlags {
                checked += 1
                if !help.longFlags.contains(flag) {
                    unknown.append("\(flag) in \(command.invocation.location) is not an option of `\(help.name)`")
                }
            }
        }
        // Commented-out argument lines (`# - --kafka-option`) are instructions for operators:
        // they must name real flags too.
        let serve = try CLIHelp.serve
        for file in try Repository.files(in: DeployFiles.kubernetesFolder, suffix: ".yaml") + [DeployFiles.compose] {
            let text = try Repository.text(file)
            for flag in allMatches(#"(?m)^\s*#\s*-\s+(--[a-z0-9][a-z0-9-]*)"#, in: text) {
                checked += 1
                if !serve.longFlags.contains(flag) {
                    unknown.append("\(flag) in a commented argument of \(file) is not an option of `assay serve`")
                }
            }
        }
        #expect(checked > 0, "no assay flags found in deploy/: is the extraction broken?")
        #expect(unknown.isEmpty, "unknown flags:\n\(bulleted(unknown))")
    }

    @Test("every ASSAY_* variable in deploy/ (Dockerfile, compose.yaml, *.env, k8s) is one assay serve reads")
    func environmentVariablesExist() throws {
        let known = try serveEnvironmentVariables()
        var files = [DeployFiles.dockerfile, DeployFiles.compose, DeployFiles.collector]
        files += try Repository.files(in: "deploy", suffix: ".env")
        files += try Repository.files(in: DeployFiles.kubernetesFolder, suffix: ".yaml")
        var unknown: [String] = []
        var seen: Set<String> = []
        for file in files {
            let text = try Repository.text(file)
            for name in Set(allMatches(#"\b(ASSAY_[A-Z0-9_]+)\b"#, in: text)).sorted() {
                seen.insert(name)
                if !known.contains(name) {
                    unknown.append("\(name) in \(file) is not read by `assay serve` (its --help names: \(known.sorted().joined(separator: ", ")))")
                }
            }
        }
        // The variables the containers actually get, including DATABASE_URL-style ones.
        for command in try DeployedCommands.all() where command.invocation.subcommand == ["serve"] {
            for name in command.environment.keys.sorted() where name == "DATABASE_URL" && !known.contains(name) {
                unknown.append("\(name) in \(command.invocation.location) is not read by `assay serve`")
            }
        }
        #expect(seen.count >= 5, "found only \(seen.sorted()) in deploy/: is the extraction broken?")
        #expect(unknown.isEmpty, "unknown environment variables:\n\(bulleted(unknown))")
    }

    @Test("every container that runs assay serve gets its brokers, database and admin token, and the admin API listens beyond loopback")
    func serveIsFullyConfigured() throws {
        let serve = try CLIHelp.serve
        var problems: [String] = []
        for command in try DeployedCommands.compose() + DeployedCommands.kubernetes() where command.invocation.subcommand == ["serve"] {
            let location = command.invocation.location
            let arguments = command.invocation.arguments
            func has(_ flag: String, _ variables: [String]) -> Bool {
                arguments.contains(flag) || arguments.contains { $0.hasPrefix(flag + "=") } || variables.contains { command.environment[$0] != nil }
            }
            if !has("--brokers", ["ASSAY_KAFKA_BROKERS"]) { problems.append("\(location): no Kafka brokers (--brokers / ASSAY_KAFKA_BROKERS)") }
            if !has("--database-url", ["ASSAY_DATABASE_URL", "DATABASE_URL"]) { problems.append("\(location): no database (--database-url / ASSAY_DATABASE_URL)") }
            if command.environment["ASSAY_ADMIN_TOKEN"] == nil { problems.append("\(location): no ASSAY_ADMIN_TOKEN: the admin API would refuse every read and change") }
            if case .literal(let token)? = command.environment["ASSAY_ADMIN_TOKEN"] {
                problems.append("\(location): ASSAY_ADMIN_TOKEN is written in the file (\(token.prefix(4))…); take it from a Secret or the shell")
            }
            guard case .literal(let http)? = command.environment["ASSAY_HTTP"] else {
                problems.append("\(location): ASSAY_HTTP is not set: the admin API would listen on 127.0.0.1 only and probes could not reach it")
                continue
            }
            if http.hasPrefix("127.") || http.hasPrefix("localhost") || http.hasPrefix("[::1]") {
                problems.append("\(location): ASSAY_HTTP=\(http) is loopback: probes and other containers cannot reach it")
            }
            if let idle = Int(flagValue("--idle-timeout-seconds", arguments) ?? serve.defaults["--idle-timeout-seconds"] ?? ""),
               let session = Int(flagValue("--session-timeout-ms", arguments) ?? serve.defaults["--session-timeout-ms"] ?? "") {
                if idle * 1000 <= session {
                    problems.append("\(location): --idle-timeout-seconds \(idle) must stay above the session timeout (\(session) ms)")
                }
            } else {
                problems.append("\(location): cannot read the idle and session timeouts (flags or --help defaults)")
            }
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    /// Runs each `serve` and `migrate` of compose.yaml and deploy/k8s with its own arguments and
    /// environment, the monitor file it would mount, and a database URL that refuses at once:
    /// argument parsing, validation and the monitor document must all pass, so the first
    /// thing that fails is the connection.
    @Test("dry run: assay accepts every serve and migrate command line and environment of compose.yaml and deploy/k8s")
    func dryRun() async throws {
        var problems: [String] = []
        var ran = 0
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("deploy-dry-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        for (index, command) in (try DeployedCommands.compose() + DeployedCommands.kubernetes()).enumerated()
        where ["serve", "migrate"].contains(command.invocation.subcommand.first ?? "") {
            if let problem = command.monitorProblem {
                problems.append(problem)
                continue
            }
            var environment = ["PATH": "/usr/bin:/bin", "HOME": scratch.path]
            for (key, value) in command.environment { environment[key] = value.dryRunValue }
            environment["ASSAY_DATABASE_URL"] = refusingDatabaseURL
            environment["DATABASE_URL"] = nil
            var arguments = command.invocation.subcommand + command.invocation.arguments
            if let index = arguments.firstIndex(of: "--database-url"), index + 1 < arguments.count { arguments[index + 1] = refusingDatabaseURL }
            if let monitor = command.monitor {
                let local = scratch.appendingPathComponent("monitor-\(index).json")
                try Data(monitor.text.utf8).write(to: local)
                if environment["ASSAY_MONITOR_FILE"] == monitor.containerPath { environment["ASSAY_MONITOR_FILE"] = local.path }
                if let flag = arguments.firstIndex(of: "--monitor"), flag + 1 < arguments.count { arguments[flag + 1] = local.path }
            }
            ran += 1
            let result = try await runAssay(arguments, environment: environment, timeout: .seconds(60))
            let reachedConnection = result.stderr.contains("could not connect")
            if result.timedOut || result.status == 0 || result.status == 64 || !reachedConnection {
                problems.append("""
                    \(command.invocation) was refused before connecting (status \(result.status)\(result.timedOut ? ", timed out" : "")):
                    \(result.stderr.split(separator: "\n").prefix(6).joined(separator: "\n"))
                    """)
            }
        }
        #expect(ran >= 2, "expected serve in compose.yaml and deploy/k8s; ran \(ran)")
        #expect(problems.isEmpty, "\n\(problems.joined(separator: "\n\n"))")
    }
}

/// The value after `flag` (or of `flag=value`) in an argument list.
func flagValue(_ flag: String, _ arguments: [String]) -> String? {
    if let index = arguments.firstIndex(of: flag), index + 1 < arguments.count { return arguments[index + 1] }
    return arguments.first { $0.hasPrefix(flag + "=") }.map { String($0.dropFirst(flag.count + 1)) }
}
