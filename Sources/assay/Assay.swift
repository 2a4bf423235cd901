import ArgumentParser

/// `assay`: watches the quality of LLM applications from their traces on Kafka.
@main
struct Assay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assay",
        abstract: "Stores every LLM trace from Kafka in PostgreSQL and scores samples of them.",
        version: "0.1.0",
        subcommands: [
            ServeCommand.self,
            MigrateCommand.self,
            DevBrokerCommand.self,
            ProduceCommand.self,
            EvaluateCommand.self,
            BackfillCommand.self,
            MonitorCommand.self,
            DemoCommand.self,
            WindowsCommand.self,
            TraceCommand.self,
            DashboardCommand.self,
        ]
    )
}
