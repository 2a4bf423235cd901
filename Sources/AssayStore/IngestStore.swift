import AssayCore
import AssayOTLP
import Logging
import Postgres

/// A Kafka partition, named without depending on the Kafka module.
public struct PartitionKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (lhs: PartitionKey, rhs: PartitionKey) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }

    public var description: String { "\(topic)/\(partition)" }
}

/// Where a message came from.
public struct SourcePosition: Hashable, Sendable {
    public var partition: PartitionKey
    public var offset: Int64

    public init(partition: PartitionKey, offset: Int64) {
        self.partition = partition
        self.offset = offset
    }
}

/// A message that is not a trace, kept with everything needed to look at it again.
public struct DeadLetter: Sendable, Equatable {
    public var source: SourcePosition
    /// A `RejectionReason` raw value, or `retention_gap`.
    public var reason: String
    public var detail: String
    public var payload: [UInt8]?
    public var key: [UInt8]?
    public var headers: [(name: String, value: [UInt8]?)]
    /// For retention gaps: the first offset after the lost range.
    public var gapEndOffset: Int64?

    public init(source: SourcePosition, reason: String, detail: String, payload: [UInt8]?, key: [UInt8]? = nil, headers: [(name: String, value: [UInt8]?)] = [], gapEndOffset: Int64? = nil) {
        self.source = source
        self.reason = reason
        self.detail = detail
        self.payload = payload
        self.key = key
        self.headers = headers
        self.gapEndOffset = gapEndOffset
    }

    public static func == (lhs: DeadLetter, rhs: DeadLetter) -> Bool {
        lhs.source == rhs.source && lhs.reason == rhs.reason && lhs.detail == rhs.detail && lhs.payload == rhs.payload
            && lhs.key == rhs.key && lhs.gapEndOffset == rhs.gapEndOffset
            && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }
}

/// Everything decoded from one poll, to be made durable in one transaction.
public struct IngestBatch: Sendable {
    /// Changed only through ``appendTrace(_:source:)`` and ``removeTraces(where:)``, which
    /// drop ``directCopy`` (it described the traces as they were). Not a `didSet`: with an
    /// observer the array was never uniquely referenced while appended to, so appends copied
    /// it (every trace retained, the old copy released): about a tenth of the replica's CPU
    /// per ingested trace (perf and `assay-bench`, 110–120 → 102–104 µs).
    public private(set) var traces: [(trace: Trace, source: SourcePosition)] = []
    /// OTLP spans grouped by trace, to be assembled with spans from other messages.
    public var fragments: [(fragment: TraceFragment, source: SourcePosition)] = []
    public var deadLetters: [DeadLetter] = []
    /// Per partition: the first offset read and the next offset to read (last + 1).
    public var ranges: [PartitionKey: Range<Int64>] = [:]

    public init() {}

    /// Extends the partition's range to cover `offset`.
    public mutating func cover(_ source: SourcePosition) {
        if let range = ranges[source.partition] {
            ranges[source.partition] = min(range.lowerBound, source.offset)..<max(range.upperBound, source.offset + 1)
        } else {
            ranges[source.partition] = source.offset..<(source.offset + 1)
        }
    }

    public var isEmpty: Bool { ranges.isEmpty }

    /// Adds a decoded trace (its message must be covered, see ``cover(_:)``).
    public mutating func appendTrace(_ trace: Trace, source: SourcePosition) {
        traces.append((trace: trace, source: source))
        directCopy = nil
    }

    /// Removes the traces `shouldRemove` picks (``directCopy`` stays if it picks none).
    public mutating func removeTraces(where shouldRemove: ((trace: Trace, source: SourcePosition)) throws -> Bool) rethrows {
        let before = traces.count
        try traces.removeAll(where: shouldRemove)
        if traces.count != before { directCopy = nil }
    }

    /// ``traces`` already encoded as the rows of the direct COPY into `traces` and `spans`
    /// (see ``prepareDirectCopy()``), or nil. Encoding is most of a write's client-side
    /// work; done while decoding, in parallel slices, it is off the one writer connection.
    public private(set) var directCopy: DirectCopyRows?

    /// Binary COPY rows for ``traces`` as they are now (each delivered once); dropped when they
    /// change. The store uses it only when it writes every trace of the batch and no id
    /// repeats within it; otherwise it encodes.
    ///
    /// `payloadBytes`, the size of the messages the traces came from, sizes the row buffers up
    /// front: the rows take less than their messages, and buffers that grow as they fill
    /// copy and fault in their bytes again at each step.
    public mutating func prepareDirectCopy(payloadBytes: Int = 0) {
        var rows = DirectCopyRows()
        rows.spans.reserveCapacity(payloadBytes)
        rows.traces.reserveCapacity(payloadBytes / 4)
        // Borrowed from the buffer: iterating the array would copy each trace.
        traces.withUnsafeBufferPointer { items in
            for index in items.indices { rows.appendTrace(items[index].trace, source: items[index].source, deliveries: 1) }
        }
        directCopy = rows
    }

    /// Appends a batch decoded from the messages that followed this one's.
    public mutating func append(_ other: IngestBatch) {
        // Encoded rows stay valid if both halves have them, or the half without has no traces.
        // Appended in place: a copy of ``directCopy`` to append to would copy its bytes first.
        switch (directCopy != nil, other.directCopy) {
        case (true, let theirs?):
            directCopy?.append(theirs)
        case (false, let theirs) where traces.isEmpty:
            directCopy = theirs
        case (_, nil) where other.traces.isEmpty:
            break
        default:
            directCopy = nil
        }
        traces += other.traces
        fragments += other.fragments
        deadLetters += other.deadLetters
        for (partition, range) in other.ranges {
            if let mine = ranges[partition] {
                ranges[partition] = min(mine.lowerBound, range.lowerBound)..<max(mine.upperBound, range.upperBound)
            } else {
                ranges[partition] = range
            }
        }
    }
}

/// Traces and spans as rows (tuples) of PostgreSQL's binary COPY format, without the
/// format's header and trailer, for ``IngestStore``'s direct COPY.
public struct DirectCopyRows: Sendable, Equatable {
    public var traces: [UInt8] = []
    public var spans: [UInt8] = []
    public var traceCount = 0
    public var spanCount = 0

    public init() {}

    /// Appends the trace's row and its spans' rows.
    public mutating func appendTrace(_ trace: Trace, source: SourcePosition, deliveries: Int) {
        TraceRowEncoder.appendBinaryTraceRow(trace, source: source, deliveries: deliveries, to: &traces)
        // Borrowed from the buffer: iterating the array would copy each span.
        trace.spans.withUnsafeBufferPointer { spanBuffer in
            for index in spanBuffer.indices {
                TraceRowEncoder.appendBinarySpanRow(spanBuffer[index], traceID: trace.traceID, to: &spans)
            }
        }
        traceCount += 1
        spanCount += trace.spans.count
    }

    mutating func append(_ other: DirectCopyRows) {
        traces += other.traces
        spans += other.spans
        traceCount += other.traceCount
        spanCount += other.spanCount
    }
}

/// What one batch write did.
public struct IngestWriteResult: Sendable, Equatable {
    /// Traces inserted for the first time.
    public var tracesInserted = 0
    /// Traces whose id was already stored (the producer published the id again).
    public var traceRepeats = 0
    public var spansInserted = 0
    public var deadLettersInserted = 0
    /// Messages skipped because their offsets were already durable (a replay after a
    /// crash or a stale batch from a fenced replica).
    public var alreadyDurable = 0
    /// The next offset per partition, as stored; commit these to Kafka.
    public var nextOffsets: [PartitionKey: Int64] = [:]

    public init() {}
}

/// Writes ingest batches and owns the per-partition offsets in `consumer_offsets`.
///
/// Exactly-once comes from three rules, all in one transaction per batch:
/// 1. the offset rows of the batch's partitions are locked (`FOR UPDATE`, in partition
///    order, so concurrent writers cannot deadlock on them);
/// 2. messages below the stored next offset are already durable and are skipped, so a
///    replay or a stale batch from a replica that lost its partitions writes nothing twice;
/// 3. the stored offset only moves forward (`GREATEST`), together with the data.
/// Inserts are idempotent besides (trace_id, (trace_id, span_id), (topic, partition, offset)).
public struct IngestStore: Sendable {
    public let groupID: String

    public init(groupID: String) {
        self.groupID = groupID
    }

    /// The stored next offset of each listed partition that has one.
    public func storedOffsets(topic: String, partitions: [Int32], on connection: PostgresConnection) throws -> [Int32: Int64] {
        let rows = try connection.query(
            "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = ANY($3::int[])",
            [.text(groupID), .text(topic), .text(Self.intArray(partitions.map(Int64.init)))])
        var result: [Int32: Int64] = [:]
        for row in rows { result[Int32(try row.int(0))] = try row.int64(1) }
        return result
    }

    /// Makes a batch durable and returns the offsets to commit to Kafka.
    public func write(_ batch: IngestBatch, on connection: PostgresConnection) throws -> IngestWriteResult {
        guard !batch.isEmpty else { return IngestWriteResult() }
        return try connection.transaction { connection in
            var result = IngestWriteResult()
            let stored = try lockOffsets(batch.ranges, on: connection)

            func isNew(_ source: SourcePosition) -> Bool { source.offset >= stored[source.partition, default: Int64.min] }
            // Usually nothing is durable yet: then the batch's own array, not a copy of each trace.
            // Read through the buffer here and below: with the array's own subscript, perf of
            // (c) showed each trace copied in this function (a retain and a release per field);
            // through the buffer it did not. Check perf before relying on this elsewhere: in
            // IngestMetrics.written the same form still copied.
            let allNew = batch.traces.withUnsafeBufferPointer { items in items.indices.allSatisfy { isNew(items[$0].source) } }
            let traces = allNew ? batch.traces : batch.traces.filter { isNew($0.source) }
            let fragments = batch.fragments.filter { isNew($0.source) }
            let deadLetters = batch.deadLetters.filter { isNew($0.source) }
            result.alreadyDurable = (batch.traces.count - traces.count) + (batch.deadLetters.count - deadLetters.count)
                + Set(batch.fragments.map(\.source)).subtracting(fragments.map(\.source)).count

            let traceTimes = traces.withUnsafeBufferPointer { items in
                items.indices.map { (items[$0].source.partition, items[$0].trace.requestTimeNanos) }
            }
            try advanceWatermarks(traceTimes
                + fragments.compactMap { item in item.fragment.earliestStartTimeNanos.map { (item.source.partition, $0) } }, on: connection)
            if !traces.isEmpty {
                // Pre-encoded rows describe the whole batch: usable only when nothing was skipped.
                let encoded = traces.count == batch.traces.count ? batch.directCopy : nil
                let counts = try insertTraces(traces, encoded: encoded, on: connection)
                result.tracesInserted = counts.inserted
                result.traceRepeats = counts.repeats
                result.spansInserted = counts.spans
            }
            if !fragments.isEmpty {
                let assembled = try assemble(fragments, on: connection)
                result.tracesInserted += assembled.tracesCompleted
                result.spansInserted += assembled.spansInserted
            }
            for letter in deadLetters {
                result.deadLettersInserted += try insertDeadLetter(letter, on: connection)
            }
            result.nextOffsets = try advanceOffsets(batch.ranges, on: connection)
            return result
        }
    }

    /// Records that `[from, to)` of a partition was deleted by retention before it was
    /// read, and moves the stored offset to `to`, in one transaction. Returns false when
    /// the stored offset had already moved past `from` (another replica recorded it).
    public func recordRetentionGap(_ partition: PartitionKey, from: Int64, to: Int64, on connection: PostgresConnection) throws -> Bool {
        try connection.transaction { connection in
            let stored = try lockOffsets([partition: from..<from], on: connection)
            guard let current = stored[partition], current == from, to > from else { return false }
            let letter = DeadLetter(
                source: SourcePosition(partition: partition, offset: from),
                reason: "retention_gap",
                detail: "offsets \(from)..<\(to) of \(partition) were deleted by the broker's retention before Assay read them (\(to - from) messages lost)",
                payload: nil,
                gapEndOffset: to)
            _ = try insertDeadLetter(letter, on: connection)
            _ = try connection.execute(
                "UPDATE consumer_offsets SET next_offset = $4, updated_at = now() WHERE group_id = $1 AND topic = $2 AND partition = $3",
                [.text(groupID), .text(partition.topic), .text(String(partition.partition)), .text(String(to))])
            return true
        }
    }

    /// Sets a partition's stored offset unconditionally (e.g. after the topic was recreated).
    public func resetOffset(_ partition: PartitionKey, to offset: Int64, on connection: PostgresConnection) throws {
        _ = try connection.execute(
            """
            INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
            ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
            """,
            [.text(groupID), .text(partition.topic), .text(String(partition.partition)), .text(String(offset))])
    }

    // MARK: - Offsets

    /// Creates missing offset rows at the batch's first offsets, then locks all rows of the
    /// batch in partition order and returns their stored next offsets.
    private func lockOffsets(_ ranges: [PartitionKey: Range<Int64>], on connection: PostgresConnection) throws -> [PartitionKey: Int64] {
        var stored: [PartitionKey: Int64] = [:]
        let byTopic = Dictionary(grouping: ranges.keys, by: \.topic)
        for topic in byTopic.keys.sorted() {
            let keys = byTopic[topic, default: []].sorted()
            let partitions = Self.intArray(keys.map { Int64($0.partition) })
            let firsts = Self.intArray(keys.map { ranges[$0]?.lowerBound ?? 0 })
            _ = try connection.execute(
                """
                INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)
                SELECT $1, $2, p, f FROM unnest($3::int[], $4::bigint[]) AS t(p, f)
                ON CONFLICT (group_id, topic, partition) DO NOTHING
                """,
                [.text(groupID), .text(topic), .text(partitions), .text(firsts)])
            let rows = try connection.query(
                """
                SELECT partition, next_offset FROM consumer_offsets
                WHERE group_id = $1 AND topic = $2 AND partition = ANY($3::int[])
                ORDER BY partition FOR UPDATE
                """,
                [.text(groupID), .text(topic), .text(partitions)])
            for row in rows {
                stored[PartitionKey(topic: topic, partition: Int32(try row.int(0)))] = try row.int64(1)
            }
        }
        return stored
    }

    private func advanceOffsets(_ ranges: [PartitionKey: Range<Int64>], on connection: PostgresConnection) throws -> [PartitionKey: Int64] {
        var next: [PartitionKey: Int64] = [:]
        let byTopic = Dictionary(grouping: ranges.keys, by: \.topic)
        for topic in byTopic.keys.sorted() {
            let keys = byTopic[topic, default: []].sorted()
            let rows = try connection.query(
                """
                UPDATE consumer_offsets c SET next_offset = GREATEST(c.next_offset, v.n), updated_at = now()
                FROM unnest($3::int[], $4::bigint[]) AS v(p, n)
                WHERE c.group_id = $1 AND c.topic = $2 AND c.partition = v.p
                RETURNING c.partition, c.next_offset
                """,
                [.text(groupID), .text(topic),
                 .text(Self.intArray(keys.map { Int64($0.partition) })),
                 .text(Self.intArray(keys.map { ranges[$0]?.upperBound ?? 0 }))])
            for row in rows {
                next[PartitionKey(topic: topic, partition: Int32(try row.int(0)))] = try row.int64(1)
            }
        }
        return next
    }

    // MARK: - Watermarks

    /// Records the newest event time per partition; `advanced_at` moves only when it grows,
    /// so a partition whose event time stands still is recognised as idle.
    private func advanceWatermarks(_ eventTimes: [(PartitionKey, Int64)], on connection: PostgresConnection) throws {
        guard !eventTimes.isEmpty else { return }
        var newest: [PartitionKey: Int64] = [:]
        for (partition, time) in eventTimes {
            newest[partition] = max(newest[partition] ?? Int64.min, time)
        }
        let byTopic = Dictionary(grouping: newest.keys, by: \.topic)
        for topic in byTopic.keys.sorted() {
            let keys = byTopic[topic, default: []].sorted()
            _ = try connection.execute(
                """
                INSERT INTO partition_watermarks AS w (topic, partition, max_event_time_ns)
                SELECT $1, p, t FROM unnest($2::int[], $3::bigint[]) AS v(p, t)
                ON CONFLICT (topic, partition) DO UPDATE
                SET advanced_at = CASE WHEN w.max_event_time_ns IS NULL OR EXCLUDED.max_event_time_ns > w.max_event_time_ns
                                       THEN now() ELSE w.advanced_at END,
                    max_event_time_ns = GREATEST(w.max_event_time_ns, EXCLUDED.max_event_time_ns)
                """,
                [.text(topic), .text(Self.intArray(keys.map { Int64($0.partition) })), .text(Self.intArray(keys.map { newest[$0] ?? 0 }))])
        }
    }

    /// The owner's report on its partitions (about once a second): `behind` have messages left
    /// to read, or nothing is known yet, and count as active (their advance time moves to now
    /// and any earlier caught-up mark is cleared); `caughtUp` were read to the log end. A
    /// partition becomes idle only after caught-up reports for the idle timeout (see
    /// ``WatermarkCalculator``), so a backlog holds windows open instead of making traces late.
    public func reportPartitions(topic: String, behind: [Int32], caughtUp: [Int32], on connection: PostgresConnection) throws {
        if !behind.isEmpty {
            _ = try connection.execute(
                "UPDATE partition_watermarks SET advanced_at = now(), caught_up_at = NULL WHERE topic = $1 AND partition = ANY($2::int[])",
                [.text(topic), .text(Self.intArray(behind.sorted().map(Int64.init)))])
        }
        if !caughtUp.isEmpty {
            _ = try connection.execute(
                "UPDATE partition_watermarks SET caught_up_at = now() WHERE topic = $1 AND partition = ANY($2::int[])",
                [.text(topic), .text(Self.intArray(caughtUp.sorted().map(Int64.init)))])
        }
    }

    /// Registers partitions for the watermark: one not seen before holds it back until it
    /// delivers a trace or its owner reports it idle. Replicas register every partition of
    /// the topic when they get an assignment, not only their own: a window must not close
    /// on the partitions one replica writes while another has not yet registered its share.
    public func registerPartitions(topic: String, partitions: [Int32], on connection: PostgresConnection) throws {
        guard !partitions.isEmpty else { return }
        _ = try connection.execute(
            """
            INSERT INTO partition_watermarks (topic, partition, max_event_time_ns)
            SELECT $1, p, NULL FROM unnest($2::int[]) AS v(p)
            ON CONFLICT (topic, partition) DO NOTHING
            """,
            [.text(topic), .text(Self.intArray(partitions.sorted().map(Int64.init)))])
    }

    // MARK: - Traces

    /// `spansStored`: the traces' spans are already in `spans` (an assembled OTLP trace), so
    /// the direct COPY, which would conflict on them every time, is not tried.
    private func insertTraces(_ traces: [(trace: Trace, source: SourcePosition)], spansStored: Bool = false, encoded: DirectCopyRows? = nil,
                              on connection: PostgresConnection) throws -> (inserted: Int, repeats: Int, spans: Int) {
        // One row per trace id within the batch (the first one wins, like across batches);
        // repeats are counted so `deliveries` says how often an id was published.
        var firstIndex: [String: Int] = [:]
        firstIndex.reserveCapacity(traces.count)
        var occurrences: [Int] = []
        occurrences.reserveCapacity(traces.count)
        var uniqueIndices: [Int] = []
        uniqueIndices.reserveCapacity(traces.count)
        traces.withUnsafeBufferPointer { items in
            for index in items.indices {
                let traceID = items[index].trace.traceID
                if let first = firstIndex[traceID] {
                    occurrences[first] += 1
                } else {
                    firstIndex[traceID] = uniqueIndices.count
                    uniqueIndices.append(index)
                    occurrences.append(1)
                }
            }
        }
        // Without repeats (the usual case) the list itself, not a copy of each trace.
        let unique = uniqueIndices.count == traces.count ? traces : uniqueIndices.map { traces[$0] }
        let repeatsWithinBatch = occurrences.reduce(0) { $0 + $1 - 1 }
        let usable = repeatsWithinBatch == 0 ? encoded : nil
        if !spansStored, let spans = try copyNewTraces(unique, occurrences: occurrences, encoded: usable, on: connection) {
            return (unique.count, repeatsWithinBatch, spans)
        }
        // Empty first: one transaction may stage twice (a batch's MLflow traces, then the OTLP
        // traces it completes), and rows left from the first merge would count as repeats.
        try connection.executeScript(Self.createStageTables)
        try connection.executeScript("DELETE FROM stage_traces; DELETE FROM stage_spans")
        _ = try connection.copyFrom("COPY stage_traces FROM STDIN") { writer in
            for (index, item) in unique.enumerated() {
                try writer.writeRow(TraceRowEncoder.traceRow(item.trace, source: item.source, deliveries: occurrences[index]))
            }
        }
        _ = try connection.copyFrom("COPY stage_spans FROM STDIN") { writer in
            for item in unique {
                for span in item.trace.spans {
                    try writer.writeRow(TraceRowEncoder.spanRow(span, traceID: item.trace.traceID))
                }
            }
        }
        let rows = try connection.query(Self.mergeStagedTraces)
        guard let row = rows.first else { return (0, 0, 0) }
        let inserted = try row.int(0)
        let repeatedIDs = try row.int(1)
        let spans = try row.int(2)
        return (inserted, repeatedIDs + repeatsWithinBatch, spans)
    }

    /// The common case, when none of the ids is stored yet: COPY straight into `traces` and
    /// `spans`, without the staging tables (which cost PostgreSQL about as much again). A
    /// conflict (an id published again, a span id twice) rolls back to the savepoint and
    /// returns nil; the caller then stages and merges, which counts repeats. Returns the
    /// spans inserted.
    private func copyNewTraces(_ unique: [(trace: Trace, source: SourcePosition)], occurrences: [Int], encoded: DirectCopyRows? = nil,
                               on connection: PostgresConnection) throws -> Int? {
        try connection.executeScript("SAVEPOINT copy_new_traces")
        do {
            let rows = encoded ?? Self.binaryRows(unique, occurrences: occurrences)
            _ = try connection.copyFrom(Self.copyTraces) { writer in try Self.writeBinary(rows.traces, to: &writer) }
            _ = try connection.copyFrom(Self.copySpans) { writer in try Self.writeBinary(rows.spans, to: &writer) }
            let spans = rows.spanCount
            try connection.executeScript("RELEASE SAVEPOINT copy_new_traces")
            return spans
        } catch let error as PostgresError where error.isUniqueViolation {
            try connection.executeScript("ROLLBACK TO SAVEPOINT copy_new_traces; RELEASE SAVEPOINT copy_new_traces")
            return nil
        }
    }

    static let copyTraces = "COPY traces (\((TraceRowEncoder.traceColumns + ["request_time"]).joined(separator: ", "))) FROM STDIN WITH (FORMAT binary)"
    static let copySpans = "COPY spans (\(TraceRowEncoder.spanColumns.joined(separator: ", "))) FROM STDIN WITH (FORMAT binary)"

    /// The direct COPY's rows for traces that were not encoded while decoding.
    private static func binaryRows(_ unique: [(trace: Trace, source: SourcePosition)], occurrences: [Int]) -> DirectCopyRows {
        var rows = DirectCopyRows()
        for (index, item) in unique.enumerated() { rows.appendTrace(item.trace, source: item.source, deliveries: occurrences[index]) }
        return rows
    }

    private static func writeBinary(_ tuples: [UInt8], to writer: inout CopyInWriter) throws {
        try writer.writeRaw(CopyBinaryEncoder.header)
        try writer.writeRaw(tuples)
        try writer.writeRaw(CopyBinaryEncoder.trailer)
    }

    /// Session-local staging tables for COPY (COPY cannot do ON CONFLICT), emptied at commit.
    static let createStageTables = """
        CREATE TEMP TABLE IF NOT EXISTS stage_traces (
            trace_id text, canonical_trace_id text, format text, request_time_ns bigint, execution_duration_ms bigint, state text, client_request_id text,
            request_preview text, response_preview text, tags jsonb, metadata jsonb, span_count integer,
            root_span_id text, source_topic text, source_partition integer, source_offset bigint,
            deliveries integer, rho double precision
        ) ON COMMIT DELETE ROWS;
        CREATE TEMP TABLE IF NOT EXISTS stage_spans (
            trace_id text, span_id text, parent_span_id text, name text, span_type text,
            start_time_ns bigint, end_time_ns bigint, status_code text, status_message text,
            inputs jsonb, outputs jsonb, attributes jsonb, events jsonb
        ) ON COMMIT DELETE ROWS;
        """

    /// Inserts new traces, counts repeats of stored ids, and inserts spans of new traces only.
    static let mergeStagedTraces = """
        WITH inserted AS (
            INSERT INTO traces (trace_id, canonical_trace_id, format, request_time, request_time_ns,
                execution_duration_ms, state, client_request_id, request_preview, response_preview,
                tags, metadata, span_count, root_span_id, source_topic, source_partition, source_offset, deliveries, rho)
            SELECT trace_id, canonical_trace_id, format,
                timestamptz 'epoch' + (request_time_ns / 1000) * interval '1 microsecond', request_time_ns,
                execution_duration_ms, state, client_request_id, request_preview, response_preview,
                tags, metadata, span_count, root_span_id, source_topic, source_partition, source_offset, deliveries, rho
            FROM stage_traces
            ON CONFLICT (trace_id) DO NOTHING
            RETURNING trace_id
        ), repeated AS (
            UPDATE traces t SET deliveries = t.deliveries + s.deliveries
            FROM stage_traces s
            WHERE t.trace_id = s.trace_id AND s.trace_id NOT IN (SELECT trace_id FROM inserted)
            RETURNING t.trace_id
        ), spans_inserted AS (
            INSERT INTO spans (trace_id, span_id, parent_span_id, name, span_type, start_time_ns, end_time_ns,
                status_code, status_message, inputs, outputs, attributes, events)
            SELECT s.trace_id, s.span_id, s.parent_span_id, s.name, s.span_type, s.start_time_ns, s.end_time_ns,
                s.status_code, s.status_message, s.inputs, s.outputs, s.attributes, s.events
            FROM stage_spans s
            WHERE s.trace_id IN (SELECT trace_id FROM inserted)
            ON CONFLICT (trace_id, span_id) DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM repeated), (SELECT count(*) FROM spans_inserted)
        """

    // MARK: - OTLP assembly

    /// Stores the fragments' spans (idempotent by span id), records each trace under assembly,
    /// and writes the traces row of every trace whose root span has now ended. Spans that
    /// arrive for a trace already written update its span count, and mark it when it was
    /// already scored.
    private func assemble(_ fragments: [(fragment: TraceFragment, source: SourcePosition)], on connection: PostgresConnection) throws -> (tracesCompleted: Int, spansInserted: Int) {
        try connection.executeScript(Self.createStageTables)
        try connection.executeScript("DELETE FROM stage_spans")
        _ = try connection.copyFrom("COPY stage_spans FROM STDIN") { writer in
            for item in fragments {
                for span in item.fragment.spans {
                    try writer.writeRow(TraceRowEncoder.spanRow(span, traceID: item.fragment.traceID))
                }
            }
        }
        let inserted = try connection.query("""
            INSERT INTO spans (trace_id, span_id, parent_span_id, name, span_type, start_time_ns, end_time_ns,
                status_code, status_message, inputs, outputs, attributes, events)
            SELECT trace_id, span_id, parent_span_id, name, span_type, start_time_ns, end_time_ns,
                status_code, status_message, inputs, outputs, attributes, events
            FROM stage_spans
            ON CONFLICT (trace_id, span_id) DO NOTHING
            RETURNING trace_id
            """).map { try $0.string(0) }
        try connection.executeScript("DELETE FROM stage_spans")

        // One assembly row per trace; the first fragment's resource and position win.
        var firstByTrace: [String: (fragment: TraceFragment, source: SourcePosition)] = [:]
        for item in fragments where firstByTrace[item.fragment.traceID] == nil { firstByTrace[item.fragment.traceID] = item }
        let ids = firstByTrace.keys.sorted()
        let items = ids.compactMap { firstByTrace[$0] }
        _ = try connection.execute(
            """
            INSERT INTO trace_assembly AS a (trace_id, resource_attributes, source_topic, source_partition, source_offset)
            SELECT id, attrs::jsonb, topic, p, o FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[]) AS v(id, attrs, topic, p, o)
            ON CONFLICT (trace_id) DO UPDATE SET last_span_at = now()
            """,
            [.text(PostgresArray.text(ids)),
             .text(PostgresArray.text(items.map { TraceRowEncoder.objectJSON($0.fragment.resourceAttributes) })),
             .text(PostgresArray.text(items.map(\.source.partition.topic))),
             .text(Self.intArray(items.map { Int64($0.source.partition.partition) })),
             .text(Self.intArray(items.map(\.source.offset)))])

        // Traces already written: new spans update the count, and say so if already scored.
        let grown = Set(inserted)
        if !grown.isEmpty {
            _ = try connection.execute(
                """
                UPDATE traces t SET span_count = (SELECT count(*) FROM spans s WHERE s.trace_id = t.trace_id),
                    updated_after_scoring = t.updated_after_scoring OR t.scored_at IS NOT NULL
                WHERE t.trace_id = ANY($1::text[])
                """, [.text(PostgresArray.text(grown.sorted()))])
        }

        // Traces still being assembled whose root has ended now get their row.
        let pending = try connection.query(
            "SELECT trace_id, resource_attributes::text, source_topic, source_partition, source_offset FROM trace_assembly WHERE trace_id = ANY($1::text[]) AND completed_at IS NULL ORDER BY trace_id FOR UPDATE",
            [.text(PostgresArray.text(ids))])
        let completed = try completeAssemblies(pending, force: false, on: connection)
        return (completed, inserted.count)
    }

    /// Builds and writes the traces of assembly rows (`trace_id, resource_attributes, source_*`);
    /// with `force`, also those without an ended root (flagged incomplete). Returns how many.
    private func completeAssemblies(_ rows: PostgresRows, force: Bool, on connection: PostgresConnection) throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let ids = try rows.map { try $0.string(0) }
        let spans = try TraceReader.loadSpans(traceIDs: ids, on: connection)
        var ready: [(trace: Trace, source: SourcePosition)] = []
        var incomplete: [String] = []
        for row in rows {
            let traceID = try row.string(0)
            let traceSpans = spans[traceID] ?? []
            let completeness = OTLPTraceBuilder.completeness(of: traceSpans)
            guard completeness.isComplete || force else { continue }
            if !completeness.isComplete { incomplete.append(traceID) }
            let trace = OTLPTraceBuilder.build(
                traceIDHex: Trace.canonicalTraceID(for: traceID), spans: traceSpans,
                resourceAttributes: TraceReader.objectMap(TraceReader.parseJSON(try row.string(1))))
            let source = SourcePosition(partition: PartitionKey(topic: try row.string(2), partition: Int32(try row.int(3))), offset: try row.int64(4))
            ready.append((trace, source))
        }
        guard !ready.isEmpty else { return 0 }
        let counts = try insertTraces(ready, spansStored: true, on: connection)
        _ = try connection.execute(
            """
            UPDATE trace_assembly SET completed_at = now(), incomplete = trace_id = ANY($2::text[])
            WHERE trace_id = ANY($1::text[])
            """, [.text(PostgresArray.text(ready.map(\.trace.traceID))), .text(PostgresArray.text(incomplete))])
        return counts.inserted
    }

    /// Writes, flagged incomplete, the OTLP traces whose root never arrived: assemblies that
    /// received no span for `quietSeconds`. Safe to run on every replica at once.
    public func completeStaleAssemblies(quietSeconds: Int, limit: Int = 500, on connection: PostgresConnection) throws -> Int {
        try connection.transaction { connection in
            let rows = try connection.query(
                """
                SELECT trace_id, resource_attributes::text, source_topic, source_partition, source_offset FROM trace_assembly
                WHERE completed_at IS NULL AND last_span_at < now() - make_interval(secs => $1)
                ORDER BY trace_id LIMIT $2 FOR UPDATE SKIP LOCKED
                """, [.text(String(quietSeconds)), .text(String(limit))])
            return try completeAssemblies(rows, force: true, on: connection)
        }
    }

    // MARK: - Dead letters

    private func insertDeadLetter(_ letter: DeadLetter, on connection: PostgresConnection) throws -> Int {
        let headers: PostgresValue = letter.headers.isEmpty ? .null : .text(Self.headersJSON(letter.headers))
        return try connection.execute(
            """
            INSERT INTO dead_letters (source_topic, source_partition, source_offset, reason, detail,
                payload, payload_size, message_key, headers, gap_end_offset)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)
            ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING
            """,
            [
                .text(letter.source.partition.topic),
                .text(String(letter.source.partition.partition)),
                .text(String(letter.source.offset)),
                .text(letter.reason),
                .text(letter.detail.sanitizedForPostgres),
                letter.payload.map { .bytea($0) } ?? .null,
                letter.payload.map { .text(String($0.count)) } ?? .null,
                letter.key.map { .bytea($0) } ?? .null,
                headers,
                letter.gapEndOffset.map { .text(String($0)) } ?? .null,
            ])
    }

    /// Headers as a JSON array of {name, value}; values as UTF-8 text when valid, else hex.
    static func headersJSON(_ headers: [(name: String, value: [UInt8]?)]) -> String {
        let items: [JSONValue] = headers.map { header in
            var fields: [(key: String, value: JSONValue)] = [(key: "name", value: .string(header.name))]
            if let value = header.value {
                if let text = String(validating: value, as: UTF8.self) {
                    fields.append((key: "value", value: .string(text)))
                } else {
                    fields.append((key: "value_hex", value: .string(OTelIdentifier.hexString(value))))
                }
            } else {
                fields.append((key: "value", value: .null))
            }
            return .object(JSONObject(fields))
        }
        return JSONValue.array(items).serialized()
    }

    /// `{1,2,3}`: a PostgreSQL array literal of integers (no quoting needed).
    static func intArray(_ values: [Int64]) -> String {
        "{" + values.map(String.init).joined(separator: ",") + "}"
    }
}
