import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Output of a finished child process.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs server tools (initdb, pg_ctl, psql) and other short-lived commands as child processes.
///
/// This uses `posix_spawn` and `waitpid` rather than Foundation's `Process`: on Linux,
/// `Process` learns that a child exited when a socket it shares with the child closes, and
/// `pg_ctl start` leaves a server running that inherits that socket, so `waitUntilExit()`
/// would wait for the server to stop. Here the child gets stdin from a file, stdout and
/// stderr in temporary files, and every other descriptor closed.
public enum CommandRunner {
    /// Runs `executable` with `arguments`, waits for it (blocking the calling thread) and
    /// returns its output. The child inherits this process's environment, with `environment`
    /// on top.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        input: String? = nil,
        currentDirectory: String? = nil
    ) throws -> CommandResult {
        let stdoutFile = try TemporaryFile()
        let stderrFile = try TemporaryFile()
        let stdinFile: TemporaryFile? = try input.map { text in
            let file = try TemporaryFile()
            try file.write(text)
            return file
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinFile?.path ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutFile.descriptor, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrFile.descriptor, 2)
        GlibcExtensions.closeFrom(3, in: &actions)
        if let currentDirectory {
            GlibcExtensions.changeDirectory(currentDirectory, in: &actions)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The calling thread's signal mask and handlers must not leak into the server.
        var emptySet = sigset_t()
        sigemptyset(&emptySet)
        posix_spawnattr_setsigmask(&attributes, &emptySet)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var environmentValues = ProcessInfo.processInfo.environment
        environmentValues.merge(environment) { _, new in new }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environmentValues.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }

        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            throw LocalPostgresError(
                message: "could not run \(executable): \(String(cString: strerror(spawned)))", output: nil)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else {
                throw LocalPostgresError(message: "waitpid for \(executable) failed (errno \(errno))", output: nil)
            }
        }
        // WIFEXITED / WEXITSTATUS, spelled out (the C macros are not imported).
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return CommandResult(status: exitStatus, stdout: stdoutFile.contents(), stderr: stderrFile.contents())
    }

    /// A command line for messages (arguments are ours: paths, ports, settings; no secrets).
    static func describe(_ executable: String, _ arguments: [String]) -> String {
        ([executable] + arguments).joined(separator: " ")
    }
}

/// A temporary file, removed and closed on release. Opened close-on-exec so that it reaches
/// a child only through an explicit `dup2`.
private final class TemporaryFile {
    let path: String
    let descriptor: Int32

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/assay-cmd-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return mkstemp(base)
        }
        guard descriptor >= 0 else {
            throw LocalPostgresError(message: "could not create a temporary file (errno \(errno))", output: nil)
        }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        self.descriptor = descriptor
        self.path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func write(_ text: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw LocalPostgresError(message: "could not write \(path)", output: nil)
        }
    }

    func contents() -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    deinit {
        close(descriptor)
        unlink(path)
    }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+) and `..._addchdir_np` (2.29+),
/// looked up at run time because Swift's Glibc module does not export these GNU extensions.
/// Without them the child inherits descriptors that are not close-on-exec, or the caller's
/// working directory (which only costs a "could not change directory" warning).
private enum GlibcExtensions {
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    private static func symbol<T>(_ name: String, as type: T.Type) -> T? {
        guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(address, to: type)
    }

    static func closeFrom(_ lowest: Int32, in actions: inout posix_spawn_file_actions_t) {
        if let closeFrom = symbol("posix_spawn_file_actions_addclosefrom_np", as: CloseFrom.self) {
            _ = closeFrom(&actions, lowest)
            return
        }
        // Fallback: close what is open now.
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in open.compactMap({ Int32($0) }) where descriptor >= lowest {
            let flags = fcntl(descriptor, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 {
                posix_spawn_file_actions_addclose(&actions, descriptor)
            }
        }
    }

    static func changeDirectory(_ path: String, in actions: inout posix_spawn_file_actions_t) {
        guard let changeDirectory = symbol("posix_spawn_file_actions_addchdir_np", as: ChangeDirectory.self) else { return }
        _ = changeDirectory(&actions, path)
    }
}
