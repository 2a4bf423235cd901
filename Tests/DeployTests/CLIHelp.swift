import Foundation

/// What `assay <subcommand> --help` says a command accepts: its long flags, the environment
/// variables it names, and the documented defaults.
struct CLIHelp: Sendable {
    /// `["serve"]`, `["monitor", "get"]`, ...
    let subcommand: [String]
    let text: String
    /// Long flags listed under OPTIONS, with their dashes (`--brokers`).
    let longFlags: Set<String>
    /// Variables named in `Env:` clauses, plus any `ASSAY_*` name the text mentions.
    let environmentVariables: Set<String>
    /// `(default: N)` per flag.
    let defaults: [String: String]

    var name: String { "assay " + subcommand.joined(separator: " ") }

    init(subcommand: [String], text: String) {
        self.subcommand = subcommand
        self.text = text
        var flags: Set<String> = []
        var defaults: [String: String] = [:]
        var inOptions = false
        var currentFlag: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasSuffix(":"), !line.hasPrefix(" ") {
                inOptions = line == "OPTIONS:"
                currentFlag = nil
                continue
            }
            guard inOptions else { continue }
            // "  --brokers <host:port>   Kafka ..." or "  -h, --help  Show ...".
            if let flag = firstMatch(#"^\s{1,4}(?:-[A-Za-z], )?(--[a-z0-9][a-z0-9-]*)"#, in: String(line)) {
                flags.insert(flag)
                currentFlag = flag
            }
            if let flag = currentFlag, let value = firstMatch(#"\(default: ([^)]*)\)"#, in: String(line)) {
                defaults[flag] = value
            }
        }
        self.longFlags = flags
        self.defaults = defaults

        // Wrapped lines joined, so "Env:\n ASSAY_X" and "ASSAY_DATABASE_URL, then\nDATABASE_URL" read whole.
        let flat = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        var variables = Set(allMatches(#"\b(ASSAY_[A-Z0-9_]+)\b"#, in: flat))
        for clause in allMatches(#"Env: ([^.]*)\."#, in: flat) {
            variables.formUnion(allMatches(#"\b([A-Z][A-Z0-9_]{2,})\b"#, in: clause))
        }
        self.environmentVariables = variables
    }

    /// Runs `assay <subcommand> --help`.
    static func load(_ subcommand: [String]) throws -> CLIHelp {
        let result = try runProcessBlocking(try assayExecutable(), subcommand + ["--help"], environment: ["PATH": "/usr/bin:/bin", "COLUMNS": "80"], timeout: .seconds(30))
        guard result.status == 0, !result.stdout.isEmpty else {
            throw DeployTestError("`assay \(subcommand.joined(separator: " ")) --help` failed (status \(result.status)): \(result.stderr)")
        }
        return CLIHelp(subcommand: subcommand, text: result.stdout)
    }

    /// Every subcommand the deploy files and docs may invoke, keyed by its words.
    static let subcommands: [[String]] = [
        ["serve"], ["migrate"], ["produce"], ["dev-broker"], ["evaluate"], ["backfill"], ["demo"],
        ["monitor", "get"], ["monitor", "update"], ["monitor", "versions"], ["monitor", "pause"], ["monitor", "resume"],
    ]

    /// The help of each subcommand, loaded once per test process.
    static let all: Result<[String: CLIHelp], DeployTestError> = {
        var helps: [String: CLIHelp] = [:]
        for words in subcommands {
            do {
                helps[words.joined(separator: " ")] = try load(words)
            } catch let error as DeployTestError {
                return .failure(error)
            } catch {
                return .failure(DeployTestError("\(error)"))
            }
        }
        return .success(helps)
    }()

    static func named(_ words: String) throws -> CLIHelp {
        guard let help = try all.get()[words] else { throw DeployTestError("no help loaded for `assay \(words)`") }
        return help
    }

    static var serve: CLIHelp { get throws { try named("serve") } }

    /// Every environment variable any subcommand's help names.
    static var everyEnvironmentVariable: Set<String> {
        get throws { try all.get().values.reduce(into: Set<String>()) { $0.formUnion($1.environmentVariables) } }
    }
}

/// Environment variables `assay serve` reads that its `--help` does not (yet) name. Each is
/// accepted only while the serve command's source still reads it by that exact name, so a
/// rename cannot slip through; once the help names it, the entry is unnecessary.
enum UndocumentedServeEnvironment {
    static let names: [String: String] = [
        // The admin API's bearer token (AdminServer.Configuration.adminToken).
        "ASSAY_ADMIN_TOKEN": "Sources/assay/ServeCommand.swift",
    ]

    /// Names (from `names`) that the source file still reads with `environment("NAME")`.
    static func verified() -> Set<String> {
        var result: Set<String> = []
        for (name, file) in names {
            if let source = try? Repository.text(file), source.contains("environment(\"\(name)\")") {
                result.insert(name)
            }
        }
        return result
    }
}

/// The environment variables `assay serve` reads: its help's, plus the verified undocumented ones.
func serveEnvironmentVariables() throws -> Set<String> {
    try CLIHelp.serve.environmentVariables.union(UndocumentedServeEnvironment.verified())
}
