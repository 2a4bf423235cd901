import Postgres

/// For `/readyz`: nil when PostgreSQL answers `SELECT 1` through `pool`, else why not.
func checkPostgres(_ pool: PostgresPool) async -> String? {
    do {
        _ = try await pool.withConnection { try $0.query("SELECT 1") }
        return nil
    } catch {
        return "\(error)"
    }
}
