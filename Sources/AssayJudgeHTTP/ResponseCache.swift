// A bounded least-recently-used store of verdicts, keyed by everything that decides them.

import AssayCore
import AssayScoring

/// What decides a verdict: the scorer, the prompt version, the judge (its `sourceID` names the
/// model), the filled prompts, and the fields they were filled from (the offline judge reads
/// those rather than the prose). Kept whole, not hashed, so two different inputs can never
/// share an entry.
struct JudgeCacheKey: Hashable, Sendable {
    var scorerKind: String
    var promptVersion: String
    var judgeSourceID: String
    var systemPrompt: String
    var userPrompt: String
    var fields: JudgeFields

    init(_ request: JudgeRequest, judgeSourceID: String) {
        scorerKind = request.scorerKind.rawValue
        promptVersion = request.promptVersion
        self.judgeSourceID = judgeSourceID
        systemPrompt = request.systemPrompt
        userPrompt = request.userPrompt
        fields = request.fields
    }

    /// Roughly the memory the key holds, for the cache's byte bound.
    var byteCount: Int {
        scorerKind.utf8.count + promptVersion.utf8.count + judgeSourceID.utf8.count + systemPrompt.utf8.count
            + userPrompt.utf8.count + (fields.request?.utf8.count ?? 0) + (fields.response?.utf8.count ?? 0)
            + fields.context.reduce(0) { $0 + $1.utf8.count } + fields.guidelines.reduce(0) { $0 + $1.utf8.count } + 64
    }
}

/// Least-recently-used verdicts, bounded by entry count and by bytes (keys plus rationales).
///
/// Recency is tracked lazily: every touch appends `(key, tick)` to a log, and eviction pops the
/// log from the front, skipping records whose tick is no longer the entry's. The log is
/// compacted when it grows past twice the entries, so every operation is amortised O(1).
struct ResponseCache {
    private struct Entry {
        var verdict: JudgeVerdict
        var tick: UInt64
        var bytes: Int
    }

    let maxEntries: Int
    let maxBytes: Int
    private var entries: [JudgeCacheKey: Entry] = [:]
    private var log: [(key: JudgeCacheKey, tick: UInt64)] = []
    private var logHead = 0
    private var tick: UInt64 = 0
    private(set) var bytes = 0

    init(maxEntries: Int, maxBytes: Int) {
        self.maxEntries = max(0, maxEntries)
        self.maxBytes = max(0, maxBytes)
    }

    var count: Int { entries.count }

    /// The verdict for `key`, marking it recently used.
    mutating func lookup(_ key: JudgeCacheKey) -> JudgeVerdict? {
        guard let entry = entries[key] else { return nil }
        touch(key)
        return entry.verdict
    }

    /// Stores `verdict`, evicting the least recently used entries beyond the bounds. An entry
    /// larger than the whole byte bound is not stored.
    mutating func insert(_ verdict: JudgeVerdict, for key: JudgeCacheKey) {
        let size = key.byteCount + verdict.rationale.utf8.count
        guard maxEntries > 0, size <= maxBytes else { return }
        if let old = entries[key] { bytes -= old.bytes }
        entries[key] = Entry(verdict: verdict, tick: 0, bytes: size)
        bytes += size
        touch(key)
        while entries.count > maxEntries || bytes > maxBytes, logHead < log.count {
            let record = log[logHead]
            logHead += 1
            if let entry = entries[record.key], entry.tick == record.tick {
                entries.removeValue(forKey: record.key)
                bytes -= entry.bytes
            }
        }
        compactIfNeeded()
    }

    private mutating func touch(_ key: JudgeCacheKey) {
        tick &+= 1
        entries[key]?.tick = tick
        log.append((key, tick))
        compactIfNeeded()
    }

    private mutating func compactIfNeeded() {
        guard log.count - logHead > 2 * entries.count + 64 else { return }
        log = log[logHead...].filter { entries[$0.key]?.tick == $0.tick }
        logHead = 0
    }
}
