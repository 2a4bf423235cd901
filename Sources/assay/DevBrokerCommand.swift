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
        discussion: "Runs until SIGTERM or SIGINT. Not for production: the mock keeps about 5 MiB per partition."
    )

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
        print(cluster.bootstrapServers)
        fflush(nil)  // the first line must reach a pipe at once
        let waiter = WaitForShutdown()
        let group = ServiceGroup(configuration: .init(services: [.init(service: waiter)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        cluster.shutdown()
    }
}

/// A service that does nothing until graceful shutdown begins.
struct WaitForShutdown: Service {
    func run() async throws {
        try? await gracefulShutdown()
    }
}
