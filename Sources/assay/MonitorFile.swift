import ArgumentParser
import AssayCore
import AssayScoring
import AssayStore
import Foundation

/// Reading and checking a monitor document given on the command line.
enum MonitorFile {
    /// Parses and validates the file (structure, then each scorer's params); nil for no file.
    static func load(_ path: String?) throws -> MonitorConfig? {
        guard let path else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("Cannot read the monitor file \(path).")
        }
        return try validate(Array(data), source: path)
    }

    static func validate(_ bytes: [UInt8], source: String) throws -> MonitorConfig {
        let config: MonitorConfig
        do {
            config = try MonitorConfig.parse(bytes)
        } catch {
            throw ValidationError("Invalid monitor config \(source):\n\(error.description)")
        }
        do {
            try ScorerFactory.validate(config)
        } catch {
            throw ValidationError("Invalid monitor config \(source):\n\(error)")
        }
        return config
    }

    /// The schema to use: `--schema` if given, else the monitor's destination, else `assay`.
    /// Both given and different is an error rather than a silent choice.
    static func schema(option: String?, monitor: MonitorConfig?) throws -> SchemaName {
        if let option, let monitor, option != monitor.destinationSchema {
            throw ValidationError("--schema \(option) differs from the monitor's destination.schema \(monitor.destinationSchema).")
        }
        do {
            return try SchemaName(option ?? monitor?.destinationSchema ?? "assay")
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
