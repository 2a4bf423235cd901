import Foundation
import LocalPostgres
import Testing

/// A fenced code block of a Markdown file.
struct CodeBlock {
    var file: String
    var line: Int
    var language: String
    var text: String
}

enum Docs {
    /// The operator pages, each starting with the command it is about.
    static let taskPages = [
        "docs/quick-start.md", "docs/instrumenting.md", "docs/evaluate.md", "docs/monitor.md",
        "docs/results.md", "docs/scaling.md", "docs/failure-modes.md", "docs/security.md",
    ]
    static let otherPages = ["docs/README.md", "deploy/README.md"]
    static var allPages: [String] { taskPages + otherPages }

    static func codeBlocks(_ file: String) throws -> [CodeBlock] {
        var blocks: [CodeBlock] = []
        var current: CodeBlock?
        for (number, line) in try Repository.text(file).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") {
                if let block = current {
                    blocks.append(block)
                    current = nil
                } else {
                    current = CodeBlock(file: file, line: number + 1, language: String(trimmed.dropFirst(3)).trimmingCharacters(in: .whitespaces), text: "")
                }
            } else if current != nil {
                current?.text += line + "\n"
            }
        }
        return blocks
    }

    static func isShell(_ block: CodeBlock) -> Bool {
        ["sh", "bash", "shell", "console", ""].contains(block.language)
    }
}

@Suite("docs/")
struct DocsTests {
    @Test("every task page exists and starts with its command: the first thing after the title is a code block")
    func pagesStartWithTheCommand() throws {
        var problems: [String] = []
        for page in Docs.taskPages {
            guard Repository.exists(page) else {
                problems.append("\(page) does not exist")
                continue
            }
            let lines = try Repository.text(page).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard lines.first?.hasPrefix("# ") == true else {
                problems.append("\(page) does not start with a # title")
                continue
            }
            if !(lines.dropFirst().first?.hasPrefix("```") ?? false) {
                problems.append("\(page): the first thing after the title should be the command (a code block), found: \(lines.dropFirst().first ?? "nothing")")
            }
        }
        for page in Docs.otherPages where !Repository.exists(page) { problems.append("\(page) does not exist") }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("relative links in docs/ and deploy/README.md point at files that exist")
    func linksResolve() throws {
        var problems: [String] = []
        for page in Docs.allPages where Repository.exists(page) {
            let folder = (page as NSString).deletingLastPathComponent
            for target in allMatches(#"\]\(([^)\s]+)\)"#, in: try Repository.text(page)) {
                if target.hasPrefix("http://") || target.hasPrefix("https://") || target.hasPrefix("#") || target.hasPrefix("mailto:") { continue }
                let path = String(target.split(separator: "#", maxSplits: 1)[0])
                let resolved = URL(fileURLWithPath: folder, relativeTo: Repository.root).appendingPathComponent(path).standardizedFileURL.path
                if !FileManager.default.fileExists(atPath: resolved) { problems.append("\(page) links to \(target), which does not exist") }
            }
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("every assay command in the docs' code blocks uses flags its --help lists, and every ASSAY_* variable exists")
    func commandsAndVariablesExist() throws {
        var problems: [String] = []
        var invocations = 0
        let variables = try CLIHelp.everyEnvironmentVariable.union(UndocumentedServeEnvironment.verified())
        for page in Docs.allPages where Repository.exists(page) {
            for block in try Docs.codeBlocks(page) where Docs.isShell(block) {
                for invocation in AssayInvocation.scan(shellText: block.text, location: "\(page):\(block.line)") {
                    invocations += 1
                    let help = try CLIHelp.named(invocation.subcommand.joined(separator: " "))
                    for flag in invocation.longFlags where !help.longFlags.contains(flag) {
                        problems.append("\(invocation.location): \(flag) is not an option of `\(help.name)`")
                    }
                }
            }
            for name in Set(allMatches(#"\b(ASSAY_[A-Z0-9_]+)\b"#, in: try Repository.text(page))).sorted() where !variables.contains(name) {
                problems.append("\(page) mentions \(name), which no assay command reads")
            }
        }
        #expect(invocations >= 10, "found only \(invocations) assay commands in the docs: is the extraction broken?")
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("failure-modes.md states the shutdown deadline")
    func shutdownDeadline() throws {
        let deadline = try DeployFiles.shutdownDeadlineSeconds()
        #expect(deadline > 0 && deadline < 600)
    }

    /// Every ```sql block of the docs runs against a freshly migrated database: table and
    /// column names cannot drift from schemas/postgres.
    @Test("every SQL example in the docs runs against the schema `assay migrate` creates")
    func sqlExamplesRun() async throws {
        var blocks: [CodeBlock] = []
        for page in Docs.allPages where Repository.exists(page) {
            blocks += try Docs.codeBlocks(page).filter { $0.language == "sql" }
        }
        #expect(blocks.count >= 5, "expected SQL examples in docs/results.md and others; found \(blocks.count)")
        let psql = try findPSQL()
        try await TestDatabase.withTemporary(prefix: "assay_docs") { database in
            let migrated = try await runAssay(["migrate", "--database-url", database.url], environment: ["PATH": "/usr/bin:/bin"], timeout: .seconds(120))
            try #require(migrated.status == 0, "assay migrate failed: \(migrated.stderr)")
            for block in blocks {
                let result = try await runProcess(psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database.url, "-c", "BEGIN READ ONLY", "-c", block.text, "-c", "ROLLBACK"],
                                            environment: ["PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "10"], timeout: .seconds(60))
                #expect(result.status == 0, "\(block.file):\(block.line): the SQL example fails on a migrated database:\n\(result.stderr)")
            }
        }
    }
}

/// psql, from PATH or PostgreSQL's usual Debian location.
func findPSQL() throws -> URL {
    var candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/psql" }
    if let versions = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
        candidates += versions.sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin/psql" }
    }
    guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw DeployTestError("psql not found (install postgresql-client; make test does)")
    }
    return URL(fileURLWithPath: path)
}
