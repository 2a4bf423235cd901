/// An error from the PostgreSQL wrapper.
///
/// ``description`` is safe to log: it holds the error kind, the SQLSTATE and the server's
/// primary message, plus schema names (constraint, table, column). The parts that can echo
/// row data — the server's detail and hint, the context and the query text — appear only in
/// ``debugDescription``.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, coarsely; use ``PostgresError/sqlState`` for the server's exact code.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The configuration (URL, options) is invalid; nothing was sent to a server.
        public static let invalidConfiguration = Kind("invalidConfiguration")
        /// Opening the connection failed (unreachable host, refused, authentication, unknown database).
        public static let connectionFailed = Kind("connectionFailed")
        /// The connection was closed by ``PostgresConnection/close()`` before this call.
        public static let connectionClosed = Kind("connectionClosed")
        /// A statement failed, on the server or because the connection broke while running it.
        public static let queryFailed = Kind("queryFailed")
        /// A `COPY ... FROM STDIN` failed (the statement itself, the data, or the transfer).
        public static let copyFailed = Kind("copyFailed")
        /// A result value could not be decoded as the requested Swift type (or was NULL).
        public static let decodingFailed = Kind("decodingFailed")
        /// `COMMIT` found the transaction already failed and rolled it back instead.
        public static let transactionRolledBack = Kind("transactionRolledBack")
        /// The API was used in a way it does not support (for example a NUL byte in a text
        /// parameter, or a nested ``PostgresConnection/transaction(_:)``).
        public static let invalidUsage = Kind("invalidUsage")
        /// The ``PostgresPool`` was shut down.
        public static let poolClosed = Kind("poolClosed")

        public var description: String { name }
    }

    /// What went wrong.
    public var kind: Kind
    /// The five-character SQLSTATE code the server reported (`PG_DIAG_SQLSTATE`), if any.
    public var sqlState: String?
    /// The primary, human-readable message (from the server or from libpq).
    public var message: String
    /// The server's detail message; may contain row data, so it is only in ``debugDescription``.
    public var detail: String?
    /// The server's hint; may contain data, so it is only in ``debugDescription``.
    public var hint: String?
    /// The server's context (for example the COPY line); may contain data.
    public var context: String?
    /// The statement that failed; may contain data, so it is only in ``debugDescription``.
    public var query: String?
    /// Name of the constraint involved, when the server reports one.
    public var constraintName: String?
    /// Name of the table involved, when the server reports one.
    public var tableName: String?
    /// Name of the column involved, when the server (or the decoder) reports one.
    public var columnName: String?
    /// Whether the connection was found unusable (libpq status `CONNECTION_BAD`) when the
    /// error was raised.
    public var connectionBroken: Bool

    /// Creates an error. Most errors are created by this module; the initializer is public
    /// so that callers and tests can build their own.
    public init(
        kind: Kind,
        message: String,
        sqlState: String? = nil,
        detail: String? = nil,
        hint: String? = nil,
        context: String? = nil,
        query: String? = nil,
        constraintName: String? = nil,
        tableName: String? = nil,
        columnName: String? = nil,
        connectionBroken: Bool = false
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.context = context
        self.query = query
        self.constraintName = constraintName
        self.tableName = tableName
        self.columnName = columnName
        self.connectionBroken = connectionBroken
    }

    /// SQLSTATE 23505: a unique or primary-key constraint was violated.
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// SQLSTATE 40001: the transaction could not be serialized; retrying it may succeed.
    public var isSerializationFailure: Bool { sqlState == "40001" }
    /// SQLSTATE 40P01: the transaction was chosen as a deadlock victim; retrying it may succeed.
    public var isDeadlock: Bool { sqlState == "40P01" }
    /// The connection is gone or never came up: a connect failure, SQLSTATE class 08
    /// (connection exception), an administrator/crash shutdown of the backend (57P01–57P03),
    /// or a broken connection detected by libpq.
    public var isConnectionError: Bool {
        if kind == .connectionFailed || kind == .connectionClosed || connectionBroken { return true }
        guard let sqlState else { return false }
        return sqlState.hasPrefix("08") || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03"
    }

    public var description: String {
        var text = "PostgresError.\(kind)"
        if let sqlState { text += " [\(sqlState)]" }
        text += ": \(message)"
        var names: [String] = []
        if let constraintName { names.append("constraint \"\(constraintName)\"") }
        if let tableName { names.append("table \"\(tableName)\"") }
        if let columnName { names.append("column \"\(columnName)\"") }
        if !names.isEmpty { text += " (" + names.joined(separator: ", ") + ")" }
        if connectionBroken { text += " (connection broken)" }
        return text
    }

    public var debugDescription: String {
        var text = description
        if let detail { text += "\nDETAIL: \(detail)" }
        if let hint { text += "\nHINT: \(hint)" }
        if let context { text += "\nCONTEXT: \(context)" }
        if let query { text += "\nQUERY: \(query)" }
        return text
    }
}
