import ArgumentParser
import AssayCore
import Foundation
import Kafka
import Logging
import Synchronization

/// `assay produce`: publishes a JSON-lines file, one message per line.
struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Publish one Kafka message per line of a file, keyed by trace id.",
        discussion: "Blank lines are skipped. Lines that are not traces are still published (without a key), so poison messages can be replayed."
    )

    @OptionGroup var kafka: KafkaOptions

    @Option(help: "Topic to publish to.")
    var topic = "traces"

    @Option(help: "File with one message per line (- for stdin).")
    var file: String

    @OptionGroup var log: LogOptions

    func run() async throws {
        let logger = log.bootstrap(label: "assay.produce")
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: file) else {
                throw ValidationError("Cannot read \(file).")
            }
            data = contents
        }
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { Array($0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0[...]) }
            .filter { !$0.allSatisfy { $0 == 32 || $0 == 9 } }

        let producer = try KafkaProducer(configuration: .init(bootstrapServers: kafka.brokers), logger: logger)
        let outcome = DeliveryTally()
        for line in lines {
            let key = traceKey(line)
            let message = ProducerMessage(topic: topic, key: key.map { Array($0.utf8) }, value: line,
                                          headers: [(name: "content-type", value: Array("application/json".utf8))])
            try await producer.enqueueWaitingForRoom(message) { outcome.record($0) }
        }
        try await producer.flush(timeout: .seconds(120))
        await producer.close()
        let result = outcome.snapshot
        print("published \(result.delivered) of \(lines.count) messages to \(topic); \(result.failed) failed")
        if let firstError = result.firstError { print("first failure: \(firstError)") }
        if result.failed > 0 || result.delivered != lines.count { throw ExitCode(1) }
    }

    /// The trace id of an MLflow trace line, or nil when the line is not one.
    private func traceKey(_ line: [UInt8]) -> String? {
        if case .success(let trace) = MessageDecoding.decode(payload: line) { return trace.traceID }
        return nil
    }
}

/// Counts delivery reports, which arrive on the producer's poll thread.
final class DeliveryTally: Sendable {
    struct State {
        var delivered = 0
        var failed = 0
        var firstError: String?
    }

    private let state = Mutex(State())

    func record(_ result: Result<DeliveryReport, KafkaError>) {
        state.withLock { state in
            switch result {
            case .success: state.delivered += 1
            case .failure(let error):
                state.failed += 1
                if state.firstError == nil { state.firstError = "\(error)" }
            }
        }
    }

    var snapshot: State { state.withLock { $0 } }
}
