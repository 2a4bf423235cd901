import ArgumentParser
import Foundation
import Kafka
import Logging
import ServiceLifecycle

/// `assay dev-broker`: librdkafka's mock cluster as a process, for development and tests.
struct DevBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-broker",
        abstract: "Run an in-process Kafka mock cluster; prints its bootstrap servers on the first line of stdout.",
        discussion: """
            Runs until SIGTERM or SIGINT. Not for production: the mock keeps about 5 MiB per partition.
            With --control, fault-injection commands are read from stdin, one per line, each answered
            with "ok" or "error: ..." on stdout:
              broker-down ID | broker-up ID | leader TOPIC PARTITION BROKER
              errors API COUNT ERROR   (API: produce, fetch, offset-commit, ...; ERROR: request-timed-out,
                                        not-leader, not-coordinator, leader-not-available, ...)
              create-topic NAME PARTITIONS
            """
    )

    @Flag(help: "Read fault-injection commands from stdin (see the discussion).")
    var control = false

    @Option(help: "Number of mock brokers.")
    var brokers = 1

    @Option(help: "Partitions of each topic.")
    var partitions = 8

    @Option(name: .customLong("topic"), help: "A topic to create (repeatable; default: traces and assessments).")
    var topics: [String] = []

    @OptionGroup var log: LogOptions

    func validate() throws {
        guard (1...16).contains(brokers) else { throw ValidationError("--brokers must be between 1 and 16.") }
        guard (1...1024).contains(partitions) else { throw ValidationError("--partitions must be between 1 and 1024.") }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "assay.dev-broker")
        let cluster = try MockCluster(brokers: brokers, logger: logger)
        for topic in topics.isEmpty ? ["traces", "assessments"] : topics {
            try cluster.createTopic(topic, partitions: partitions, replicationFactor: min(brokers, 3))
        }
        // write(2), not print: the line must reach a pipe at once, and fflush would contend
        // for stdin's lock with the --control reader blocked in read.
        FileHandle.standardOutput.write(Data((cluster.bootstrapServers + "\n").utf8))
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: WaitForShutdown())]
        if control {
            services.append(.init(service: MockControl(cluster: cluster, brokers: brokers, partitions: partitions),
                                  successTerminationBehavior: .gracefullyShutdownGroup))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        cluster.shutdown()
    }
}

/// Reads fault-injection commands from stdin and applies them to the mock cluster. Ends
/// (shutting the broker down) when stdin closes.
struct MockControl: Service {
    let cluster: MockCluster
    let brokers: Int
    let partitions: Int

    func run() async throws {
        for await line in Self.standardInputLines().cancelOnGracefulShutdown() {
            let reply: String
            do {
                try apply(line.split(separator: " ").map(String.init))
                reply = "ok"
            } catch {
                reply = "error: \(error)"
            }
            // Not print + fflush(nil): flushing every stream takes stdin's lock, which the
            // reader thread holds while blocked in read, and the reply would never come.
            FileHandle.standardOutput.write(Data((reply + "\n").utf8))
        }
    }

    /// Lines of stdin, read by a plain thread because `readLine` blocks; the stream ends when
    /// stdin closes. Iteration stops on cancellation even while that thread is still blocked.
    static func standardInputLines() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let reader = Thread {
            while let line = readLine() { continuation.yield(line) }
            continuation.finish()
        }
        reader.name = "dev-broker-stdin"
        reader.start()
        return stream
    }

    struct CommandError: Error, CustomStringConvertible {
        let description: String
    }

    func apply(_ words: [String]) throws {
        func int(_ index: Int) throws -> Int32 {
            guard index < words.count, let value = Int32(words[index]) else { throw CommandError(description: "expected a number at word \(index + 1)") }
            return value
        }
        switch words.first {
        case "broker-down": try cluster.setBrokerDown(try int(1))
        case "broker-up": try cluster.setBrokerUp(try int(1))
        case "leader":
            guard words.count == 4 else { throw CommandError(description: "usage: leader TOPIC PARTITION BROKER") }
            try cluster.setPartitionLeader(topic: words[1], partition: try int(2), brokerID: try int(3))
        case "errors":
            guard words.count == 4, let api = Self.apis[words[1]], let error = Self.errors[words[3]] else {
                throw CommandError(description: "usage: errors API COUNT ERROR (API: \(Self.apis.keys.sorted().joined(separator: ", ")); ERROR: \(Self.errors.keys.sorted().joined(separator: ", ")))")
            }
            cluster.pushRequestErrors(api, Array(repeating: error, count: Int(try int(2))))
        case "create-topic":
            guard words.count == 3 else { throw CommandError(description: "usage: create-topic NAME PARTITIONS") }
            try cluster.createTopic(words[1], partitions: Int(try int(2)), replicationFactor: min(brokers, 3))
        default:
            throw CommandError(description: "unknown command '\(words.joined(separator: " "))'")
        }
    }

    static let apis: [String: KafkaAPIKey] = [
        "produce": .produce, "fetch": .fetch, "list-offsets": .listOffsets, "metadata": .metadata,
        "offset-commit": .offsetCommit, "offset-fetch": .offsetFetch, "find-coordinator": .findCoordinator,
        "join-group": .joinGroup, "heartbeat": .heartbeat, "sync-group": .syncGroup,
    ]

    static let errors: [String: KafkaErrorCode] = [
        "request-timed-out": .requestTimedOut, "not-leader": .notLeaderForPartition, "leader-not-available": .leaderNotAvailable,
        "not-coordinator": .notCoordinator, "coordinator-not-available": .coordinatorNotAvailable,
        "rebalance-in-progress": .rebalanceInProgress, "not-enough-replicas": .notEnoughReplicas,
    ]
}

/// A service that does nothing until graceful shutdown begins.
struct WaitForShutdown: Service {
    func run() async throws {
        try? await gracefulShutdown()
    }
}
