import Foundation
import Testing

@Suite("deploy/Dockerfile")
struct DockerfileTests {
    @Test("multi-stage: swift:6.x-bookworm builds assay with librdkafka-dev and libpq-dev; a bookworm runtime gets librdkafka1, libpq5 and libcurl4")
    func stages() throws {
        let dockerfile = try Dockerfile.load()
        let stages = dockerfile.stages
        var problems: [String] = []
        guard stages.count >= 2 else {
            Issue.record("expected a multi-stage build, found \(stages.count) FROM")
            return
        }
        let build = stages[0].image
        if build.range(of: #"^swift:6(\.\d+)*-bookworm$"#, options: .regularExpression) == nil {
            problems.append("the build stage is \(build), expected the official swift:6.x-bookworm")
        }
        let runtime = stages[dockerfile.finalStage].image
        if runtime != "debian:bookworm-slim" && runtime.range(of: #"^swift:6(\.\d+)*-bookworm-slim$"#, options: .regularExpression) == nil {
            problems.append("the runtime stage is \(runtime), expected debian:bookworm-slim or swift:6.x-bookworm-slim (same Debian release as the build)")
        }
        let buildRuns = dockerfile.instructions("RUN", stage: 0).map(\.arguments).joined(separator: "\n")
        for package in ["librdkafka-dev", "libpq-dev"] where !buildRuns.contains(package) {
            problems.append("the build stage does not install \(package)")
        }
        if !buildRuns.contains("swift build -c release --product assay") { problems.append("the build stage does not build the assay product in release mode") }
        let runtimeRuns = dockerfile.instructions("RUN", stage: dockerfile.finalStage).map(\.arguments).joined(separator: "\n")
        for package in ["librdkafka1", "libpq5", "libcurl4", "ca-certificates"] where !runtimeRuns.contains(package) {
            problems.append("the runtime stage does not install \(package)")
        }
        // Without the Swift runtime in the image, the binary must carry it.
        if runtime == "debian:bookworm-slim" && !buildRuns.contains("--static-swift-stdlib") {
            problems.append("debian:bookworm-slim has no Swift runtime: build with --static-swift-stdlib or copy the runtime libraries")
        }
        let copies = dockerfile.instructions("COPY", stage: dockerfile.finalStage).map(\.arguments)
        if !copies.contains(where: { $0.hasPrefix("--from=build") && $0.hasSuffix("/usr/local/bin/assay") }) {
            problems.append("the runtime stage does not copy the binary from the build stage to /usr/local/bin/assay")
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("runs as a non-root numeric user, listens beyond loopback, exposes and health-checks /healthz on that port, runs assay serve")
    func runtime() throws {
        let dockerfile = try Dockerfile.load()
        var problems: [String] = []
        let user = dockerfile.instructions("USER", stage: dockerfile.finalStage).last?.arguments ?? ""
        let uid = user.split(separator: ":").first.flatMap { Int($0) }
        if uid == nil || uid == 0 { problems.append("USER \(user) should be a numeric, non-root uid (Kubernetes runAsNonRoot checks it)") }

        let http = dockerfile.environment["ASSAY_HTTP"] ?? ""
        let port = http.split(separator: ":").last.map(String.init) ?? ""
        if http.isEmpty || http.hasPrefix("127.") { problems.append("ENV ASSAY_HTTP=\(http) should listen on every interface (0.0.0.0:PORT)") }
        let exposed = dockerfile.instructions("EXPOSE", stage: dockerfile.finalStage).flatMap { $0.arguments.split(separator: " ").map(String.init) }
        if !exposed.contains(port) && !exposed.contains("\(port)/tcp") { problems.append("EXPOSE \(exposed) does not include the admin port \(port)") }
        let healthcheck = dockerfile.instructions("HEALTHCHECK", stage: dockerfile.finalStage).last?.arguments ?? ""
        if !healthcheck.contains(":\(port)/healthz") { problems.append("HEALTHCHECK `\(healthcheck)` does not probe /healthz on port \(port)") }
        if healthcheck.contains("curl"), !dockerfile.instructions("RUN", stage: dockerfile.finalStage).contains(where: { $0.arguments.contains(" curl") }) {
            problems.append("HEALTHCHECK uses curl, which the runtime stage does not install")
        }
        if dockerfile.entrypoint != ["assay"] { problems.append("ENTRYPOINT is \(dockerfile.entrypoint), expected [\"assay\"] (compose and Kubernetes pass the subcommand as args)") }
        if dockerfile.command.first != "serve" { problems.append("CMD is \(dockerfile.command), expected serve") }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }

    @Test("Dockerfile.dockerignore keeps the build outputs out and what the build needs in")
    func dockerignore() throws {
        let patterns = try Repository.text("deploy/Dockerfile.dockerignore").split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        var problems: [String] = []
        for needed in ["Package.swift", "Sources", "Tests"] where patterns.contains(where: { $0 == needed || $0 == "\(needed)/" || $0 == "*" }) {
            problems.append("\(needed) is ignored, but the build needs it")
        }
        for unwanted in [".build", ".git"] where !patterns.contains(unwanted) {
            problems.append("\(unwanted) is not ignored: it would be sent as build context")
        }
        #expect(problems.isEmpty, "\(bulleted(problems))")
    }
}
