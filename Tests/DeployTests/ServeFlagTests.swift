import Foundation
import Testing

/// Flags of `assay serve` that only tune it: checked where the command line is read, before
/// any connection is made.
@Suite("assay serve tuning flags")
struct ServeFlagTests {
    static func serve(_ extra: [String]) async throws -> ProcessResult {
        try await runAssay(["serve", "--brokers", "127.0.0.1:1", "--database-url", refusingDatabaseURL] + extra,
                           environment: ["PATH": "/usr/bin:/bin"], timeout: .seconds(60))
    }

    @Test("--decode-threads outside 1...64 is refused with a usage error, before connecting", arguments: ["0", "65", "-1"])
    func decodeThreadsOutOfRange(value: String) async throws {
        let result = try await Self.serve(["--decode-threads=\(value)"])
        #expect(result.status == 64, "status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("--decode-threads must be between 1 and 64."), "\(result.stderr)")
        #expect(!result.stderr.contains("could not connect"), "\(result.stderr)")
    }

    @Test("--outbox-retention-hours outside 0...87600 is refused with a usage error, before connecting", arguments: ["-1", "87601"])
    func outboxRetentionOutOfRange(value: String) async throws {
        let result = try await Self.serve(["--outbox-retention-hours=\(value)"])
        #expect(result.status == 64, "status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("--outbox-retention-hours must be between 0 (keep) and 87600."), "\(result.stderr)")
    }

    @Test("--outbox-retention-hours 0 (keep) and 168 are accepted: the run gets as far as the database", arguments: ["0", "168"])
    func outboxRetentionAccepted(value: String) async throws {
        let result = try await Self.serve(["--outbox-retention-hours", value])
        #expect(result.status != 0 && result.status != 64, "status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("could not connect"), "\(result.stderr)")
    }

    @Test("--decode-threads within range is accepted: the run gets as far as the database", arguments: ["1", "64"])
    func decodeThreadsAccepted(value: String) async throws {
        let result = try await Self.serve(["--decode-threads", value])
        #expect(!result.timedOut)
        #expect(result.status != 0 && result.status != 64, "status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("could not connect"), "\(result.stderr)")
    }
}
