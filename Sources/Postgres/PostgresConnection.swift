import CLibPQ
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libpq connection (`PGconn`), used synchronously by one thread.
///
/// Every method blocks the calling thread on network round trips, so a connection must
/// live on a thread of our own — a `DedicatedThread`, usually a slot of ``PostgresPool`` —
/// and never on Swift's cooperative thread pool. It is deliberately not `Sendable`: create
/// it, use it and close it on the same thread (debug builds assert this).
///
/// Statements run with `PQexecParams`: parameters are bound (``PostgresValue``), never
/// interpolated, and a single call runs a single statement. Results come back in text
/// format and are copied into ``PostgresRows`` before the `PGresult` is freed.
public final class PostgresConnection {
    /// The configuration the connection was opened with.
    public let configuration: PostgresConfiguration
    let logger: Logger
    private var handle: OpaquePointer?
    private let noticeContext: NoticeContext
    private let ownerThread: pthread_t
    /// Set by ``putCopyData(_:)`` when a send fails, so that ``copyFrom(_:_:)`` can tell its
    /// own failure from an error thrown by the caller's closure.
    private var copySendFailure: PostgresError?

    private init(handle: OpaquePointer, configuration: PostgresConfiguration, logger: Logger) {
        self.handle = handle
        self.configuration = configuration
        self.logger = logger
        self.noticeContext = NoticeContext(logger: logger)
        self.ownerThread = pthread_self()
    }

    deinit {
        // Normally closed on its own thread via `close()`; this is the fallback.
        if let handle { PQfinish(handle) }
    }

    /// Opens a connection, then applies ``PostgresConfiguration/searchPath`` if set.
    ///
    /// Blocks until the server answers or the connect timeout passes; call it on a thread of
    /// our own. The connection is then confined to the calling thread.
    ///
    /// - Throws: ``PostgresError`` of kind ``PostgresError/Kind/connectionFailed`` with
    ///   libpq's reason (refused, timeout, authentication, unknown database ...).
    public static func connect(
        _ configuration: PostgresConfiguration,
        logger: Logger = Logger(label: "assay.postgres")
    ) throws -> PostgresConnection {
        // Entries after `dbname` override what the URL says (libpq processes the arrays in
        // order, and a later keyword wins).
        var parameters: [(String, String)] = [("dbname", configuration.url)]
        if let name = configuration.applicationName { parameters.append(("application_name", name)) }
        if let seconds = configuration.connectTimeoutSeconds { parameters.append(("connect_timeout", String(seconds))) }
        // Results are decoded as UTF-8.
        parameters.append(("client_encoding", "UTF8"))

        let keywords = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keywordPointers = keywords.map { UnsafePointer<CChar>($0) } + [nil]
        let valuePointers = values.map { UnsafePointer<CChar>($0) } + [nil]

        guard let handle = PQconnectdbParams(keywordPointers, valuePointers, 1) else {
            throw PostgresError(kind: .connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let reason = Self.trimmed(PQerrorMessage(handle)) ?? "unknown error"
            PQfinish(handle)
            logger.debug(
                "PostgreSQL connection failed",
                metadata: ["postgres.url": "\(configuration.redactedURL)", "postgres.reason": "\(reason)"])
            throw PostgresError(
                kind: .connectionFailed,
                message: "could not connect to \(configuration.redactedURL): \(reason)",
                connectionBroken: true)
        }
        let connection = PostgresConnection(handle: handle, configuration: configuration, logger: logger)
        PQsetNoticeReceiver(
            handle, postgresNoticeReceiver, Unmanaged.passUnretained(connection.noticeContext).toOpaque())

        if let searchPath = configuration.searchPath {
            do {
                let quoted = try searchPath.map { try connection.escapeIdentifier($0) }
                // Identifiers are quoted by PQescapeIdentifier; an empty list is `''`.
                let list = quoted.isEmpty ? "''" : quoted.joined(separator: ", ")
                try connection.runSimple("SET search_path TO " + list, kind: .connectionFailed)
            } catch {
                connection.close()
                throw error
            }
        }
        logger.debug(
            "PostgreSQL connection opened",
            metadata: [
                "postgres.url": "\(configuration.redactedURL)",
                "postgres.backend_pid": "\(PQbackendPID(handle))",
            ])
        return connection
    }

    // MARK: - State

    /// Whether the connection is open and libpq considers it good (`PQstatus`). A connection
    /// the server dropped is only noticed at its next use; see also ``checkAlive()``.
    public var isHealthy: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// The server process id serving this connection (`PQbackendPID`), 0 when closed.
    public var backendPID: Int32 {
        guard let handle else { return 0 }
        return PQbackendPID(handle)
    }

    /// Whether a transaction block is open (including one that has failed).
    public var isInTransaction: Bool {
        guard let handle else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// Reads whatever the server has sent without waiting (`PQconsumeInput`) and reports
    /// whether the connection is still good. Catches a connection the server closed while
    /// it sat idle (for example `pg_terminate_backend`), at the cost of one non-blocking read.
    public func checkAlive() -> Bool {
        assertOwnerThread()
        guard let handle else { return false }
        guard PQconsumeInput(handle) == 1 else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// Closes the connection (`PQfinish`). Later calls throw
    /// ``PostgresError/Kind/connectionClosed``. Calling it twice is harmless.
    public func close() {
        assertOwnerThread()
        guard let handle else { return }
        self.handle = nil
        PQfinish(handle)
        logger.debug("PostgreSQL connection closed", metadata: ["postgres.url": "\(configuration.redactedURL)"])
    }

    // MARK: - Statements

    /// Runs one statement with bound parameters and returns its rows.
    ///
    /// - Throws: ``PostgresError`` of kind ``PostgresError/Kind/queryFailed`` (with the
    ///   server's SQLSTATE), ``PostgresError/Kind/invalidUsage`` (for example a text
    ///   parameter containing NUL, or a `COPY` statement), or
    ///   ``PostgresError/Kind/connectionClosed``.
    public func query(_ sql: String, _ params: [PostgresValue] = []) throws -> PostgresRows {
        let result = try execParams(sql, params, kind: .queryFailed)
        defer { PQclear(result) }
        return Self.copyRows(result)
    }

    /// Runs one statement with bound parameters and returns the number of rows it affected
    /// (`PQcmdTuples`; 0 for statements that report none).
    @discardableResult
    public func execute(_ sql: String, _ params: [PostgresValue] = []) throws -> Int {
        let result = try execParams(sql, params, kind: .queryFailed)
        defer { PQclear(result) }
        return Self.affectedRows(result)
    }

    /// Runs a script of one or more statements separated by semicolons, without
    /// parameters (`PQexec`, the simple query protocol), for example a schema migration.
    /// Unless the script manages transactions itself, the statements run in one implicit
    /// transaction. Never build the script from data.
    public func executeScript(_ sql: String) throws {
        try runSimple(sql, kind: .queryFailed)
    }

    /// Runs `body` inside `BEGIN` ... `COMMIT` and returns its result.
    ///
    /// When `body` throws, the transaction is rolled back and the error is rethrown
    /// unchanged; if the rollback itself fails (for example because the connection broke),
    /// that failure is logged and the original error still wins. When `COMMIT` finds the
    /// transaction had already failed (an error inside `body` was caught and ignored), it
    /// throws ``PostgresError/Kind/transactionRolledBack``.
    ///
    /// - Throws: ``PostgresError/Kind/invalidUsage`` when a transaction is already open.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let handle = try liveHandle()
        guard PQtransactionStatus(handle) == PQTRANS_IDLE else {
            throw PostgresError(kind: .invalidUsage, message: "transaction() called while a transaction is already open")
        }
        try runSimple("BEGIN", kind: .queryFailed)
        let value: T
        do {
            value = try body(self)
        } catch {
            rollbackAfterFailure(error)
            throw error
        }
        let tag = try runSimple("COMMIT", kind: .queryFailed)
        if tag == "ROLLBACK" {
            throw PostgresError(
                kind: .transactionRolledBack,
                message: "COMMIT rolled the transaction back because a statement in it had failed",
                sqlState: "25P02")
        }
        return value
    }

    private func rollbackAfterFailure(_ original: Error) {
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            logger.debug("skipping ROLLBACK: the connection is broken")
            return
        }
        do {
            try runSimple("ROLLBACK", kind: .queryFailed)
        } catch {
            logger.notice(
                "ROLLBACK failed after an error in a transaction; rethrowing the original error",
                metadata: ["postgres.rollback_error": "\(error)", "error.type": "\(type(of: original))"])
        }
    }

    /// Quotes `identifier` for use as an SQL identifier (`PQescapeIdentifier`), for example
    /// a schema or database name that cannot be a bound parameter.
    public func escapeIdentifier(_ identifier: String) throws -> String {
        let handle = try liveHandle()
        let count = identifier.utf8.count
        guard let escaped = PQescapeIdentifier(handle, identifier, count) else {
            throw PostgresError(
                kind: .invalidUsage,
                message: "cannot quote identifier: \(Self.trimmed(PQerrorMessage(handle)) ?? "unknown error")")
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    // MARK: - COPY FROM STDIN

    /// Runs a `COPY ... FROM STDIN` statement and streams the rows that `write` produces.
    ///
    /// Every `PQputCopyData` result is checked. When `write` throws, the COPY is aborted
    /// with `PQputCopyEnd` and an error message (the server rolls the COPY back) and the
    /// error is rethrown unchanged. Afterwards all pending results are drained, so the
    /// connection is usable again unless it broke.
    ///
    /// - Returns: the number of rows the server copied.
    /// - Throws: ``PostgresError`` of kind ``PostgresError/Kind/copyFailed`` when the
    ///   statement, the data or the transfer fails (with the server's SQLSTATE when it
    ///   reported one), or whatever `write` threw.
    public func copyFrom(_ sql: String, _ write: (inout CopyInWriter) throws -> Void) throws -> Int {
        let handle = try liveHandle()
        guard let start = PQexecParams(handle, sql, 0, nil, nil, nil, nil, 0) else {
            throw makeError(kind: .copyFailed, result: nil, query: sql)
        }
        let startStatus = PQresultStatus(start)
        guard startStatus == PGRES_COPY_IN else {
            let error: PostgresError
            if startStatus == PGRES_FATAL_ERROR || startStatus == PGRES_BAD_RESPONSE || startStatus == PGRES_NONFATAL_ERROR {
                error = makeError(kind: .copyFailed, result: start, query: sql)
            } else {
                error = PostgresError(
                    kind: .invalidUsage, message: "copyFrom needs a COPY ... FROM STDIN statement", query: sql)
            }
            PQclear(start)
            _ = drainResults(kind: .copyFailed, query: sql)
            throw error
        }
        PQclear(start)

        copySendFailure = nil
        var writer = CopyInWriter(connection: self)
        do {
            try write(&writer)
            try writer.flush()
        } catch {
            let sendFailure = copySendFailure
            copySendFailure = nil
            let reason = sendFailure == nil ? "COPY aborted by the client" : "COPY aborted: sending data failed"
            if PQputCopyEnd(handle, reason) != 1 {
                logger.debug("PQputCopyEnd failed while aborting COPY", metadata: ["postgres.reason": "\(Self.trimmed(PQerrorMessage(handle)) ?? "")"])
            }
            let serverError = drainResults(kind: .copyFailed, query: sql)
            // A failed send usually means the server already rejected the data: its error
            // names the reason. An error from the caller's closure is rethrown unchanged.
            if let sendFailure { throw serverError ?? sendFailure }
            throw error
        }

        guard PQputCopyEnd(handle, nil) == 1 else {
            let local = makeError(kind: .copyFailed, result: nil, query: sql)
            throw drainResults(kind: .copyFailed, query: sql) ?? local
        }
        var copied = 0
        var firstError: PostgresError?
        drain(kind: .copyFailed, query: sql) { result in
            let status = PQresultStatus(result)
            if status == PGRES_COMMAND_OK {
                copied = Self.affectedRows(result)
            } else if firstError == nil {
                firstError = makeError(kind: .copyFailed, result: result, query: sql)
            }
        } onError: { error in
            if firstError == nil { firstError = error }
        }
        if let firstError { throw firstError }
        return copied
    }

    /// Sends one chunk of COPY data (at most `Int32.max` bytes); called by ``CopyInWriter``.
    func putCopyData(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        let handle = try liveHandle()
        let status = bytes.withMemoryRebound(to: CChar.self) { chars in
            PQputCopyData(handle, chars.baseAddress, Int32(chars.count))
        }
        guard status == 1 else {
            // In blocking mode 0 ("would block") should not happen; treat it as a failure too.
            let reason = status == 0
                ? "PQputCopyData could not queue data"
                : (Self.trimmed(PQerrorMessage(handle)) ?? "PQputCopyData failed")
            let error = PostgresError(
                kind: .copyFailed, message: reason, connectionBroken: PQstatus(handle) == CONNECTION_BAD)
            copySendFailure = error
            throw error
        }
    }

    // MARK: - libpq plumbing

    @inline(__always)
    private func assertOwnerThread() {
        assert(
            pthread_equal(ownerThread, pthread_self()) != 0,
            "PostgresConnection used from a thread other than the one that opened it")
    }

    /// The open handle, for extensions in this module (notifications).
    func notificationHandle() throws -> OpaquePointer { try liveHandle() }

    private func liveHandle() throws -> OpaquePointer {
        assertOwnerThread()
        guard let handle else {
            throw PostgresError(kind: .connectionClosed, message: "the connection was closed")
        }
        return handle
    }

    /// `PQexecParams` with text-format parameters (bytea in binary format, typed `bytea`)
    /// and text-format results. Returns a successful result, which the caller clears.
    private func execParams(_ sql: String, _ params: [PostgresValue], kind: PostgresError.Kind) throws -> OpaquePointer {
        let handle = try liveHandle()
        guard params.count <= Int(UInt16.max) else {
            throw PostgresError(kind: .invalidUsage, message: "too many parameters (\(params.count); at most 65535)")
        }
        // All parameter bytes go into one buffer (each value NUL-terminated); a leading
        // byte keeps the buffer non-empty so that every non-NULL value gets a non-nil pointer.
        var storage: [UInt8] = [0]
        var offsets: [Int] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        var types: [Oid] = []
        offsets.reserveCapacity(params.count)
        for (position, value) in params.enumerated() {
            switch value {
            case .null:
                offsets.append(-1)
                lengths.append(0)
                formats.append(0)
                types.append(0)
            case .text(let text):
                guard !text.utf8.contains(0) else {
                    throw PostgresError(
                        kind: .invalidUsage,
                        message: "parameter $\(position + 1) contains a NUL character, which PostgreSQL text cannot hold",
                        query: sql)
                }
                offsets.append(storage.count)
                storage.append(contentsOf: text.utf8)
                storage.append(0)
                lengths.append(0)
                formats.append(0)
                types.append(0)  // let the server infer the type
            case .bytea(let bytes):
                guard bytes.count <= Int(Int32.max) else {
                    throw PostgresError(kind: .invalidUsage, message: "parameter $\(position + 1) is too large for bytea")
                }
                offsets.append(storage.count)
                storage.append(contentsOf: bytes)
                storage.append(0)
                lengths.append(Int32(bytes.count))
                formats.append(1)
                types.append(17)  // BYTEAOID
            }
        }
        let result: OpaquePointer? = storage.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars -> OpaquePointer? in
                let base = chars.baseAddress
                let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
                    offset < 0 ? nil : base.map { UnsafePointer($0 + offset) }
                }
                return PQexecParams(handle, sql, Int32(params.count), types, pointers, lengths, formats, 0)
            }
        }
        return try checkResult(result, kind: kind, query: sql)
    }

    /// Runs a statement with `PQexec` and returns its command tag.
    @discardableResult
    private func runSimple(_ sql: String, kind: PostgresError.Kind) throws -> String {
        let handle = try liveHandle()
        let result = try checkResult(PQexec(handle, sql), kind: kind, query: sql)
        defer { PQclear(result) }
        return PQcmdStatus(result).map { String(cString: $0) } ?? ""
    }

    /// Passes a successful result through; turns failures into errors (clearing the result)
    /// and gets the connection out of any COPY state a statement unexpectedly started.
    private func checkResult(_ result: OpaquePointer?, kind: PostgresError.Kind, query: String) throws -> OpaquePointer {
        guard let result else { throw makeError(kind: kind, result: nil, query: query) }
        let status = PQresultStatus(result)
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY {
            return result
        }
        if status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
            PQclear(result)
            _ = drainResults(kind: kind, query: query)
            throw PostgresError(
                kind: .invalidUsage,
                message: "COPY statements need copyFrom (COPY ... FROM STDIN); COPY TO STDOUT is not supported",
                query: query)
        }
        let error = makeError(kind: kind, result: result, query: query)
        PQclear(result)
        throw error
    }

    /// Reads and frees results until libpq has none left; returns the first error.
    private func drainResults(kind: PostgresError.Kind, query: String?) -> PostgresError? {
        var firstError: PostgresError?
        drain(kind: kind, query: query) { result in
            let status = PQresultStatus(result)
            if firstError == nil && (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
                firstError = makeError(kind: kind, result: result, query: query)
            }
        } onError: { error in
            if firstError == nil { firstError = error }
        }
        return firstError
    }

    /// Calls `PQgetResult` until it returns NULL, handing each result to `body` before
    /// clearing it. Ends any COPY state it meets; if libpq stays stuck in one, the
    /// connection is closed rather than looping forever.
    private func drain(
        kind: PostgresError.Kind,
        query: String?,
        _ body: (OpaquePointer) -> Void,
        onError: (PostgresError) -> Void
    ) {
        guard let handle else { return }
        var copyEscapes = 0
        while let result = PQgetResult(handle) {
            let status = PQresultStatus(result)
            if status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
                PQclear(result)
                copyEscapes += 1
                if copyEscapes > 2 {
                    onError(PostgresError(
                        kind: kind, message: "the connection is stuck in COPY mode and was closed",
                        query: query, connectionBroken: true))
                    close()
                    return
                }
                if status == PGRES_COPY_IN {
                    _ = PQputCopyEnd(handle, "COPY aborted by the client")
                } else {
                    var buffer: UnsafeMutablePointer<CChar>?
                    while PQgetCopyData(handle, &buffer, 0) > 0 {
                        if let chunk = buffer { PQfreemem(chunk) }
                        buffer = nil
                    }
                }
                continue
            }
            body(result)
            PQclear(result)
        }
    }

    private func makeError(kind: PostgresError.Kind, result: OpaquePointer?, query: String?) -> PostgresError {
        let broken = handle.map { PQstatus($0) == CONNECTION_BAD } ?? true
        guard let result else {
            let message = handle.flatMap { Self.trimmed(PQerrorMessage($0)) } ?? "no result from libpq"
            return PostgresError(kind: kind, message: message, query: query, connectionBroken: broken)
        }
        func field(_ code: Character) -> String? {
            guard let ascii = code.asciiValue, let value = PQresultErrorField(result, Int32(ascii)) else { return nil }
            return String(cString: value)
        }
        let message = field("M") ?? Self.trimmed(PQresultErrorMessage(result))
            ?? handle.flatMap { Self.trimmed(PQerrorMessage($0)) } ?? "unknown error"
        return PostgresError(
            kind: kind,
            message: message,
            sqlState: field("C"),
            detail: field("D"),
            hint: field("H"),
            context: field("W"),
            query: query,
            constraintName: field("n"),
            tableName: field("t"),
            columnName: field("c"),
            connectionBroken: broken)
    }

    private static func copyRows(_ result: OpaquePointer) -> PostgresRows {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [String] = []
        var types: [UInt32] = []
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            columns.append(PQfname(result, Int32(column)).map { String(cString: $0) } ?? "?column?")
            types.append(PQftype(result, Int32(column)))
        }
        var cells: [String?] = []
        cells.reserveCapacity(rowCount * columnCount)
        for row in 0..<rowCount {
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    cells.append(nil)
                    continue
                }
                let length = Int(PQgetlength(result, Int32(row), Int32(column)))
                guard let value = PQgetvalue(result, Int32(row), Int32(column)) else {
                    cells.append(nil)
                    continue
                }
                let text = value.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                    String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
                }
                cells.append(text)
            }
        }
        let tag = PQcmdStatus(result).map { String(cString: $0) } ?? ""
        return PostgresRows(
            columns: columns, columnTypes: types, cells: cells, rowCount: rowCount,
            commandTag: tag, affectedRows: affectedRows(result))
    }

    private static func affectedRows(_ result: OpaquePointer) -> Int {
        guard let text = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: text)) ?? 0
    }

    static func trimmed(_ text: UnsafePointer<CChar>?) -> String? {
        guard let text else { return nil }
        let value = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
        return value.isEmpty ? nil : value
    }
}

/// What the C notice receiver needs; kept alive by its connection.
private final class NoticeContext {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }
}

/// Logs server notices and warnings instead of libpq's default of printing them to stderr.
/// The message can contain data, so it is logged at trace level only.
private let postgresNoticeReceiver: PQnoticeReceiver = { argument, result in
    guard let argument, let result else { return }
    let context = Unmanaged<NoticeContext>.fromOpaque(argument).takeUnretainedValue()
    func field(_ ascii: UInt8) -> String {
        PQresultErrorField(result, Int32(ascii)).map { String(cString: $0) } ?? ""
    }
    let metadata: Logger.Metadata = [
        "postgres.severity": "\(field(UInt8(ascii: "V")))",
        "postgres.sql_state": "\(field(UInt8(ascii: "C")))",
    ]
    context.logger.debug("PostgreSQL notice", metadata: metadata)
    context.logger.trace("PostgreSQL notice text", metadata: ["postgres.message": "\(field(UInt8(ascii: "M")))"])
}
