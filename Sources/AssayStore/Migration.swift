import Logging
import Postgres

/// One versioned schema change, from `schemas/postgres/NNNN_name.sql`.
public struct Migration: Sendable, Equatable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// FNV-1a 64 of the SQL text, recorded when applied, so an edited migration is noticed.
    public var checksum: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// The name of the PostgreSQL schema that holds Assay's tables (`assay` by default).
///
/// Restricted to lowercase identifiers so it can be quoted safely and reads the same in
/// every tool.
public struct SchemaName: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    public static let `default` = SchemaName(validated: "assay")

    public init(_ text: String) throws(StoreError) {
        let bytes = Array(text.utf8)
        let valid = !bytes.isEmpty && bytes.count <= 63
            && bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
            && !(bytes[0] >= 48 && bytes[0] <= 57)
        guard valid else {
            throw StoreError.invalidSchemaName(text)
        }
        rawValue = text
    }

    private init(validated: String) { rawValue = validated }

    public var description: String { rawValue }
}

/// Errors of the store layer (database errors pass through as `PostgresError`).
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidSchemaName(String)
    /// A migration already applied has different SQL than the one in this binary.
    case migrationChecksumMismatch(version: Int, name: String, applied: String, embedded: String)
    /// The database has migrations this binary does not know (it is older than the schema).
    case databaseNewerThanBinary(databaseVersion: Int, binaryVersion: Int)

    public var description: String {
        switch self {
        case .invalidSchemaName(let name):
            return "invalid schema name '\(name)': use 1-63 characters of a-z, 0-9 and _, not starting with a digit"
        case .migrationChecksumMismatch(let version, let name, let applied, let embedded):
            return "migration \(version) (\(name)) was applied with checksum \(applied) but this binary has \(embedded); migrations must never be edited after release"
        case .databaseNewerThanBinary(let databaseVersion, let binaryVersion):
            return "database schema is at version \(databaseVersion) but this binary knows only up to \(binaryVersion); upgrade assay"
        }
    }
}

/// Applies the embedded migrations, once, even when several replicas start together.
///
/// Holds a session advisory lock for the whole run, so concurrent callers wait and then
/// find nothing left to do. Each migration runs in its own transaction together with its
/// `schema_migrations` row.
public struct Migrator: Sendable {
    public let schema: SchemaName
    public let migrations: [Migration]

    public init(schema: SchemaName = .default, migrations: [Migration] = Migration.all) {
        self.schema = schema
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// The advisory-lock key: a constant namespace plus the schema, hashed by the server.
    static let lockSQL = "SELECT pg_advisory_lock(hashtext('assay.migrate:' || $1))"
    static let unlockSQL = "SELECT pg_advisory_unlock(hashtext('assay.migrate:' || $1))"

    /// Returns the versions applied by this call (empty when the schema was current).
    @discardableResult
    public func migrate(on connection: PostgresConnection, logger: Logger) throws -> [Int] {
        _ = try connection.query(Self.lockSQL, [.text(schema.rawValue)])
        defer { _ = try? connection.query(Self.unlockSQL, [.text(schema.rawValue)]) }

        let quoted = try connection.escapeIdentifier(schema.rawValue)
        // Identifiers cannot be bound as parameters; `quoted` comes from PQescapeIdentifier
        // applied to a name already restricted to [a-z0-9_].
        try connection.executeScript("CREATE SCHEMA IF NOT EXISTS \(quoted)")
        try connection.executeScript("""
            CREATE TABLE IF NOT EXISTS \(quoted).schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let rows = try connection.query("SELECT version, name, checksum FROM \(quoted).schema_migrations ORDER BY version")
        var applied: [Int: String] = [:]
        for row in rows { applied[try row.int(0)] = try row.string(2) }

        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, checksum) in applied {
            if let migration = known[version], migration.checksum != checksum {
                throw StoreError.migrationChecksumMismatch(version: version, name: migration.name, applied: checksum, embedded: migration.checksum)
            }
        }
        let binaryVersion = migrations.last?.version ?? 0
        if let newest = applied.keys.max(), newest > binaryVersion {
            throw StoreError.databaseNewerThanBinary(databaseVersion: newest, binaryVersion: binaryVersion)
        }

        var done: [Int] = []
        for migration in migrations where applied[migration.version] == nil {
            try connection.transaction { connection in
                try connection.executeScript("SET LOCAL search_path TO \(quoted)")
                try connection.executeScript(migration.sql)
                _ = try connection.execute(
                    "INSERT INTO \(quoted).schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    [.text(String(migration.version)), .text(migration.name), .text(migration.checksum)])
            }
            logger.info("applied migration", metadata: ["migration.version": "\(migration.version)", "migration.name": "\(migration.name)", "db.schema": "\(schema)"])
            done.append(migration.version)
        }
        return done
    }
}
