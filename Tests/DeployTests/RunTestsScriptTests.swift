import AssayTestSupport
import Foundation
import Testing

/// `scripts/run-tests.sh` (what `make test` runs after building), driven with stand-ins for
/// `swift` that record each call.
@Suite("scripts/run-tests.sh")
struct RunTestsScriptTests {
    /// Runs the script with `SWIFT` set to a stand-in whose body is `body`; returns the exit
    /// status and how many times the stand-in was called.
    ///
    /// The stand-in is `bash` reading a script named `test` in the working directory (the
    /// script calls `"$SWIFT" test …`), so no file this process just wrote is executed: a
    /// child forked by another test while the file was open for writing keeps a descriptor to
    /// it, and exec then fails with ETXTBSY (status 126; seen in a fresh-clone run).
    static func run(standIn body: String) async throws -> (status: Int32, calls: Int) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("run-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let calls = folder.appendingPathComponent("calls")
        try """
            echo call >> '\(calls.path)'
            n=$(wc -l < '\(calls.path)')
            \(body)
            """.write(to: folder.appendingPathComponent("test"), atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = Repository.url("scripts/run-tests.sh")
        process.currentDirectoryURL = folder
        process.environment = ProcessInfo.processInfo.environment.merging(["SWIFT": "/bin/bash"]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let status = await process.exited()
        let count = (try? String(contentsOf: calls, encoding: .utf8))?.split(separator: "\n").count ?? 0
        return (status, count)
    }

    @Test("an abort by the mock broker's member_add assertion runs the suite once more, and its result counts")
    func rerunsAfterTheMockBrokerAbort() async throws {
        let crash = #"echo "assayPackageTests.xctest: rdkafka_mock_cgrp.c:567: rd_kafka_mock_cgrp_member_add: Assertion \`!member->resp' failed." >&2; exit 134"#
        let passesSecond = try await Self.run(standIn: "if [ \"$n\" -eq 1 ]; then \(crash); fi; exit 0")
        #expect(passesSecond.status == 0)
        #expect(passesSecond.calls == 2)
        let crashesTwice = try await Self.run(standIn: crash)
        #expect(crashesTwice.status != 0, "a second abort fails")
        #expect(crashesTwice.calls == 2, "only one rerun")
    }

    @Test("an abort by the mock broker's listener assertion (taking a broker down) also runs the suite once more")
    func rerunsAfterTheListenerAbort() async throws {
        // The line as a fresh-clone run printed it.
        let crash = #"echo "assayPackageTests.xctest: rdkafka_mock.c:2100: rd_kafka_mock_broker_cmd: Assertion \`mrkb->listen_s != -1 || !*\"Failed to-create mock broker listener\"' failed." >&2; exit 134"#
        let passesSecond = try await Self.run(standIn: "if [ \"$n\" -eq 1 ]; then \(crash); fi; exit 0")
        #expect(passesSecond.status == 0)
        #expect(passesSecond.calls == 2)
        let failsSecond = try await Self.run(standIn: "if [ \"$n\" -eq 1 ]; then \(crash); fi; echo \"✘ Test run with 3 tests failed\"; exit 1")
        #expect(failsSecond.status == 1, "the rerun's failure counts")
        #expect(failsSecond.calls == 2)
        // Another assertion of the same file is not one of the two.
        let other = #"echo "assayPackageTests.xctest: rdkafka_mock.c:999: rd_kafka_mock_partition_log_append: Assertion \`x' failed." >&2; exit 134"#
        let notRetried = try await Self.run(standIn: other)
        #expect(notRetried.status != 0)
        #expect(notRetried.calls == 1)
    }

    @Test("any other failure fails at once, without a rerun; a pass passes")
    func otherFailuresAreNotRetried() async throws {
        let failed = try await Self.run(standIn: #"echo "✘ Test run with 3 tests failed"; exit 1"#)
        #expect(failed.status == 1)
        #expect(failed.calls == 1)
        let passed = try await Self.run(standIn: "exit 0")
        #expect(passed.status == 0)
        #expect(passed.calls == 1)
    }

    @Test("a run that finished and failed is not rerun, though its output quotes the assertion from another process or test")
    func quotedAbortsAreNotRetried() async throws {
        // The chaos test reports a child `assay dev-broker` dying of the assertion (and survives it).
        let childDied = #"echo "FAILED: the mock Kafka broker died, not an Assay replica: assay: rdkafka_mock_cgrp.c:567: rd_kafka_mock_cgrp_member_add: Assertion \`!member->resp' failed."; "#
        let failed = try await Self.run(standIn: childDied + #"echo "✘ Test run with 603 tests in 123 suites failed after 230.430 seconds with 1 issue."; exit 1"#)
        #expect(failed.status == 1)
        #expect(failed.calls == 1, "a real failure was hidden by a rerun")
        // The test process's own line, but the run went on to its end: a failure like any other.
        let line = #"echo "assayPackageTests.xctest: rdkafka_mock_cgrp.c:567: rd_kafka_mock_cgrp_member_add: Assertion \`!member->resp' failed." >&2; "#
        let finished = try await Self.run(standIn: line + #"echo "✘ Test run with 3 tests in 1 suite failed after 1.0 seconds with 1 issue."; exit 1"#)
        #expect(finished.status == 1)
        #expect(finished.calls == 1)
    }
}
