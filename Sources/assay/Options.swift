import ArgumentParser
import AssayStore
import Foundation
import Logging

/// Reads an environment variable, treating an empty value as unset.
func environment(_ name: String) -> String? {
    guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
    return value
}

/// Where Kafka is: `--brokers` or `ASSAY_KAFKA_BROKERS`.
struct KafkaOptions: ParsableArguments {
    @Option(name: .customLong("brokers"), help: ArgumentHelp("Kafka bootstrap servers, host:port[,host:port]. Env: ASSAY_KAFKA_BROKERS.", valueName: "host:port"))
    var brokersFlag: String?

    var brokers: String { brokersFlag ?? environment("ASSAY_KAFKA_BROKERS") ?? "" }

    mutating func validate() throws {
        guard !brokers.isEmpty else {
            throw ValidationError("Kafka brokers are required: pass --brokers host:port or set ASSAY_KAFKA_BROKERS.")
        }
    }
}

/// Where PostgreSQL is: `--database-url`, `ASSAY_DATABASE_URL` or `DATABASE_URL`; and the schema.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: ArgumentHelp("PostgreSQL URL, postgres://user@host:port/db. Env: ASSAY_DATABASE_URL, then DATABASE_URL.", valueName: "url"))
    var databaseURLFlag: String?

    @Option(name: .customLong("schema"), help: "PostgreSQL schema that holds Assay's tables. Env: ASSAY_SCHEMA.")
    var schemaFlag: String?

    var databaseURL: String { databaseURLFlag ?? environment("ASSAY_DATABASE_URL") ?? environment("DATABASE_URL") ?? "" }

    var schema: SchemaName {
        get throws { try SchemaName(schemaFlag ?? environment("ASSAY_SCHEMA") ?? "assay") }
    }

    mutating func validate() throws {
        guard !databaseURL.isEmpty else {
            throw ValidationError("A database is required: pass --database-url or set ASSAY_DATABASE_URL (or DATABASE_URL).")
        }
        do { _ = try schema } catch { throw ValidationError("\(error)") }
    }
}

/// Log verbosity: `--log-level` or `ASSAY_LOG_LEVEL`.
struct LogOptions: ParsableArguments {
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. Env: ASSAY_LOG_LEVEL.")
    var levelFlag: String?

    var level: Logger.Level {
        let text = levelFlag ?? environment("ASSAY_LOG_LEVEL") ?? "info"
        return Logger.Level(rawValue: text.lowercased()) ?? .info
    }

    mutating func validate() throws {
        if let text = levelFlag ?? environment("ASSAY_LOG_LEVEL"), Logger.Level(rawValue: text.lowercased()) == nil {
            throw ValidationError("Unknown log level '\(text)'.")
        }
    }

    /// Sends logs to stderr at the chosen level and returns a logger for `label`.
    func bootstrap(label: String) -> Logger {
        let level = self.level
        LoggingBootstrap.once {
            LoggingSystem.bootstrap { name in
                var handler = StreamLogHandler.standardError(label: name)
                handler.logLevel = level
                return handler
            }
        }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

/// LoggingSystem.bootstrap may run once per process.
enum LoggingBootstrap {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var done = false

    static func once(_ body: () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard !done else { return }
        done = true
        body()
    }
}

/// Nanoseconds since the epoch, from the wall clock.
func wallClockNanos() -> Int64 {
    Int64(Date().timeIntervalSince1970 * 1_000_000_000)
}
