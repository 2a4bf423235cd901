import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure to find, start, stop or use a local PostgreSQL server.
///
/// ``description`` includes the tool's output (initdb/pg_ctl/psql stderr and the server log
/// tail), which holds paths, ports and server messages but no passwords: the local cluster
/// uses trust authentication, and passwords of admin URLs are passed in the environment.
public struct LocalPostgresError: Error, Sendable, CustomStringConvertible {
    /// What failed.
    public var message: String
    /// The tool's stderr (and for a failed start, the end of the server log), if any.
    public var output: String?

    public init(message: String, output: String?) {
        self.message = message
        self.output = output
    }

    public var description: String {
        guard let output, !output.isEmpty else { return "LocalPostgresError: \(message)" }
        return "LocalPostgresError: \(message)\n\(output)"
    }
}

/// A throwaway PostgreSQL cluster in a temporary directory, for `assay demo` and tests.
///
/// ``start(logger:)`` runs `initdb` (trust authentication, superuser `postgres`, UTF8) and
/// `pg_ctl start` on a free port of 127.0.0.1, with durability switched off for speed
/// (`fsync`, `synchronous_commit`, `full_page_writes` off). When the process runs as root
/// the tools run as the `postgres` OS user, since the server refuses to run as root.
/// ``stop()`` kills the server (`pg_ctl stop -m immediate`) and deletes the directory.
/// Nothing in it survives: never point it at data you want to keep.
public final class LocalPostgresCluster: Sendable {
    /// Superuser URL of the cluster's `postgres` database:
    /// `postgresql://postgres@127.0.0.1:PORT/postgres`.
    public let url: String
    /// TCP port on 127.0.0.1.
    public let port: Int
    /// Directory holding the server binaries used.
    public let binDirectory: String
    /// The cluster's data directory (also its Unix socket directory).
    public let dataDirectory: String
    /// The temporary directory that holds the data directory and the server log.
    public let rootDirectory: String
    private let runAsPostgres: Bool
    private let stopped = Mutex(false)
    private let logger: Logger

    private init(
        port: Int, binDirectory: String, dataDirectory: String, rootDirectory: String,
        runAsPostgres: Bool, logger: Logger
    ) {
        self.port = port
        self.url = "postgresql://postgres@127.0.0.1:\(port)/postgres"
        self.binDirectory = binDirectory
        self.dataDirectory = dataDirectory
        self.rootDirectory = rootDirectory
        self.runAsPostgres = runAsPostgres
        self.logger = logger
    }

    /// Creates and starts a new cluster. Blocks for a few seconds (initdb, server start):
    /// from async code, call it on a thread of your own (see ``TestDatabase``).
    ///
    /// The binaries come from `ASSAY_PG_BINDIR` if set, else from the highest
    /// `/usr/lib/postgresql/*/bin` that has `initdb`.
    ///
    /// - Throws: ``LocalPostgresError`` with initdb's or pg_ctl's stderr and the server log.
    public static func start(logger: Logger = Logger(label: "assay.local-postgres")) throws -> LocalPostgresCluster {
        let binDirectory = try findBinDirectory()
        let runAsPostgres = geteuid() == 0
        let root = try makeRootDirectory()
        let data = root + "/data"
        do {
            if runAsPostgres { try chownToPostgres(root) }
            let initdb = [
                "-D", data, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync",
            ]
            try runTool(binDirectory + "/initdb", initdb, asPostgres: runAsPostgres, in: root, what: "initdb")

            var lastError: LocalPostgresError?
            for attempt in 1...5 {
                let port = try freeLocalPort()
                let options = [
                    "-c listen_addresses=127.0.0.1", "-p \(port)", "-k '\(data)'",
                    "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
                    "-c max_connections=200",
                ].joined(separator: " ")
                let arguments = ["-D", data, "-l", root + "/server.log", "-w", "-t", "60", "-o", options, "start"]
                do {
                    try runTool(binDirectory + "/pg_ctl", arguments, asPostgres: runAsPostgres, in: root, what: "pg_ctl start")
                    let cluster = LocalPostgresCluster(
                        port: port, binDirectory: binDirectory, dataDirectory: data, rootDirectory: root,
                        runAsPostgres: runAsPostgres, logger: logger)
                    logger.info(
                        "started local PostgreSQL",
                        metadata: ["postgres.port": "\(port)", "postgres.data_dir": "\(data)", "postgres.bin_dir": "\(binDirectory)"])
                    return cluster
                } catch var error as LocalPostgresError {
                    let log = tail(of: root + "/server.log")
                    error.output = [error.output, log.isEmpty ? nil : "server log:\n" + log]
                        .compactMap { $0 }.joined(separator: "\n")
                    lastError = error
                    // Another process may have taken the port between our probe and the bind.
                    guard log.contains("could not bind") || log.contains("Address already in use") else { throw error }
                    logger.debug("port was taken, retrying", metadata: ["postgres.port": "\(port)", "attempt": "\(attempt)"])
                    // A half-started server would have failed `-w`; make sure none is left.
                    _ = try? runTool(binDirectory + "/pg_ctl", ["-D", data, "-m", "immediate", "stop"], asPostgres: runAsPostgres, in: root, what: "pg_ctl stop")
                }
            }
            throw lastError ?? LocalPostgresError(message: "could not start PostgreSQL", output: nil)
        } catch {
            try? FileManager.default.removeItem(atPath: root)
            throw error
        }
    }

    /// Stops the server immediately and deletes its directory. Safe to call more than once.
    public func stop() {
        let alreadyStopped = stopped.withLock { stopped in
            defer { stopped = true }
            return stopped
        }
        guard !alreadyStopped else { return }
        do {
            try Self.runTool(
                binDirectory + "/pg_ctl", ["-D", dataDirectory, "-m", "immediate", "-w", "stop"],
                asPostgres: runAsPostgres, in: rootDirectory, what: "pg_ctl stop")
        } catch {
            logger.warning("could not stop local PostgreSQL", metadata: ["error": "\(error)"])
        }
        do {
            try FileManager.default.removeItem(atPath: rootDirectory)
        } catch {
            logger.warning("could not remove \(rootDirectory)", metadata: ["error": "\(error)"])
        }
        logger.info("stopped local PostgreSQL", metadata: ["postgres.port": "\(port)"])
    }

    /// Restarts the server (`pg_ctl restart -m fast`, same port and settings): every client
    /// connection is cut, as in a production database failover. For fault-injection runs.
    public func restart() throws {
        try Self.runTool(
            binDirectory + "/pg_ctl", ["-D", dataDirectory, "-l", rootDirectory + "/server.log", "-m", "fast", "-w", "-t", "60", "restart"],
            asPostgres: runAsPostgres, in: rootDirectory, what: "pg_ctl restart")
        logger.info("restarted local PostgreSQL", metadata: ["postgres.port": "\(port)"])
    }

    /// Creates database `name` (quoted as an identifier) and returns its URL.
    public func createDatabase(name: String) throws -> String {
        try DatabaseAdmin.createDatabase(name: name, adminURL: url, psql: binDirectory + "/psql")
    }

    /// Drops database `name` if it exists, disconnecting its sessions (`WITH (FORCE)`).
    public func dropDatabase(name: String) throws {
        try DatabaseAdmin.dropDatabase(name: name, adminURL: url, psql: binDirectory + "/psql")
    }

    // MARK: - Helpers

    /// `ASSAY_PG_BINDIR`, else the highest-versioned `/usr/lib/postgresql/*/bin` with initdb.
    static func findBinDirectory() throws -> String {
        let fileManager = FileManager.default
        if let configured = ProcessInfo.processInfo.environment["ASSAY_PG_BINDIR"], !configured.isEmpty {
            guard fileManager.isExecutableFile(atPath: configured + "/initdb"),
                fileManager.isExecutableFile(atPath: configured + "/pg_ctl")
            else {
                throw LocalPostgresError(
                    message: "ASSAY_PG_BINDIR=\(configured) has no initdb or pg_ctl", output: nil)
            }
            return configured
        }
        let base = "/usr/lib/postgresql"
        let versions = (try? fileManager.contentsOfDirectory(atPath: base)) ?? []
        let candidates = versions
            .filter { fileManager.isExecutableFile(atPath: "\(base)/\($0)/bin/initdb") }
            .sorted { (Double($0) ?? -1, $0) < (Double($1) ?? -1, $1) }
        guard let best = candidates.last else {
            throw LocalPostgresError(
                message: "no PostgreSQL server binaries found: set ASSAY_PG_BINDIR or install postgresql (looked in \(base)/*/bin)",
                output: nil)
        }
        return "\(base)/\(best)/bin"
    }

    private static func makeRootDirectory() throws -> String {
        // Short and fixed-length, so the socket path stays under the 107-byte limit.
        var template = Array("/tmp/assay-pg-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            return mkdtemp(base) != nil
        }
        guard created else {
            throw LocalPostgresError(message: "could not create a temporary directory (errno \(errno))", output: nil)
        }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func chownToPostgres(_ path: String) throws {
        guard let entry = getpwnam("postgres") else {
            throw LocalPostgresError(
                message: "running as root, but there is no 'postgres' OS user to run the server as", output: nil)
        }
        guard chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
            throw LocalPostgresError(message: "could not chown \(path) to postgres (errno \(errno))", output: nil)
        }
    }

    private static func runTool(
        _ tool: String, _ arguments: [String], asPostgres: Bool, in directory: String, what: String
    ) throws {
        let executable = asPostgres ? "/usr/sbin/runuser" : tool
        let fullArguments = asPostgres ? ["-u", "postgres", "--", tool] + arguments : arguments
        let result = try CommandRunner.run(executable, fullArguments, currentDirectory: directory)
        guard result.status == 0 else {
            let output = [result.stderr, result.stdout]
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                .filter { !$0.isEmpty }
                .joined(separator: "\n")
            throw LocalPostgresError(
                message: "\(what) failed with exit status \(result.status): \(CommandRunner.describe(executable, fullArguments))",
                output: output)
        }
    }

    /// Binds 127.0.0.1:0, reads the port the kernel chose and closes the socket.
    private static func freeLocalPort() throws -> Int {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else {
            throw LocalPostgresError(message: "socket() failed (errno \(errno))", output: nil)
        }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else {
            throw LocalPostgresError(message: "bind(127.0.0.1:0) failed (errno \(errno))", output: nil)
        }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else {
            throw LocalPostgresError(message: "getsockname failed (errno \(errno))", output: nil)
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func tail(of path: String, lines: Int = 30) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        let text = String(decoding: data, as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
