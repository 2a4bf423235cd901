import CLibPQ

/// Which statements of one connection are prepared on the server, and under what names.
///
/// Pure bookkeeping (no libpq calls), so its rules are tested without a server:
/// - A statement is keyed by its SQL text and parameter types (a parameter bound as `bytea`
///   is typed, the others are left to the server to infer, so the same text can need two
///   plans).
/// - It is prepared at its **second** use: a statement run once (a migration, a one-off
///   query) costs no extra round trip and takes no server memory.
/// - At most ``capacity`` statements are remembered, used once or prepared. The least
///   recently used is forgotten first; if it was prepared, its name is queued for
///   `DEALLOCATE` (``takeDeallocations()``), which the connection runs when it can.
/// - Capacity 0 turns preparing off: every statement runs unnamed (`PQexecParams`).
struct StatementCache {
    struct Key: Hashable {
        let sql: String
        let types: [Oid]
    }

    enum Decision: Equatable {
        /// Run it unnamed (`PQexecParams`).
        case unprepared
        /// Prepare it under this name (`PQprepare`), then run it (`PQexecPrepared`).
        case prepare(name: String)
        /// It is prepared under this name: run it (`PQexecPrepared`).
        case prepared(name: String)
    }

    private struct Entry {
        var name: String?
        var lastUse: UInt64
    }

    private(set) var capacity: Int
    private var entries: [Key: Entry] = [:]
    private var clock: UInt64 = 0
    private var nextNumber = 1
    private var deallocations: [String] = []

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// How many statements are prepared (named) now.
    var preparedCount: Int { entries.values.count { $0.name != nil } }

    /// What to do to run `key` now. A `.prepare` decision must be followed by
    /// ``preparationFailed(_:)`` if the `PQprepare` fails.
    mutating func decide(_ key: Key) -> Decision {
        guard capacity > 0 else { return .unprepared }
        clock += 1
        if var entry = entries[key] {
            entry.lastUse = clock
            if let name = entry.name {
                entries[key] = entry
                return .prepared(name: name)
            }
            let name = "assay_stmt_\(nextNumber)"
            nextNumber += 1
            entry.name = name
            entries[key] = entry
            return .prepare(name: name)
        }
        if entries.count >= capacity { evictLeastRecentlyUsed() }
        entries[key] = Entry(name: nil, lastUse: clock)
        return .unprepared
    }

    /// The server refused to prepare `key`: it has no such name, so nothing to deallocate.
    mutating func preparationFailed(_ key: Key) {
        entries[key] = nil
    }

    /// The server says a prepared statement of ours does not exist or clashes with one of the
    /// same name (a pooler that moves sessions between server connections, or `DISCARD ALL`):
    /// names are not reliable on this connection, so preparing stops for it.
    mutating func turnOff() {
        entries.removeAll()
        deallocations.removeAll()
        capacity = 0
    }

    /// The statement `key` must be prepared again (its cached plan no longer fits, for
    /// example after its table's columns changed): forget it and deallocate its name.
    mutating func invalidate(_ key: Key) {
        if let name = entries.removeValue(forKey: key)?.name { deallocations.append(name) }
    }

    /// Names to `DEALLOCATE`; the caller owns them from now on.
    mutating func takeDeallocations() -> [String] {
        defer { deallocations.removeAll() }
        return deallocations
    }

    private mutating func evictLeastRecentlyUsed() {
        guard let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) else { return }
        entries[oldest.key] = nil
        if let name = oldest.value.name { deallocations.append(name) }
    }
}
