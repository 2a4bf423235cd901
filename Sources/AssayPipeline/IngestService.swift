import AssayCore
import AssayMetrics
import AssayOTLP
import AssayStore
import Foundation
import Kafka
import Logging
import Metrics
import Postgres
import ServiceLifecycle
import Synchronization

/// Counters of one replica, for the demo summary and tests.
public struct IngestStatistics: Sendable, Equatable {
    public var messagesConsumed = 0
    public var tracesInserted = 0
    public var traceRepeats = 0
    public var deadLetters = 0
    public var alreadyDurable = 0
    public var batchesWritten = 0
    public var retentionGaps = 0
    public var writeRetries = 0
    /// Partitions this replica holds right now.
    public var assignedPartitions = 0

    public init() {}
}

/// One ingest replica: reads the traces topic as a member of the consumer group and makes
/// every message durable in PostgreSQL, as a trace or as a dead letter, exactly once.
///
/// Per poll: decode (invalid messages become dead letters), write the batch and the
/// partitions' next offsets in one transaction (`IngestStore`), then commit those offsets
/// to Kafka for lag tools. On assignment, partitions start at the offsets stored in
/// PostgreSQL. When PostgreSQL is unavailable, the assigned partitions are paused and the
/// write is retried with backoff while the consumer stays in the group.
public final class IngestService: Service, Sendable {
    private let configuration: IngestConfiguration
    private let pool: PostgresPool
    private let store: IngestStore
    private let logger: Logger
    private let statistics = Mutex(IngestStatistics())
    private let metrics: IngestMetrics
    private let lastPartitionReport = Mutex<ContinuousClock.Instant?>(nil)
    private let activeConsumer = Mutex<KafkaConsumer?>(nil)
    /// What a revocation commits to Kafka (see ``StoredOffsetsListener``).
    private let durableOffsets = DurableOffsets()
    /// Whether every partition of the traces topic still has to be registered for the
    /// watermark (after an assignment; retried with the partition reports until it works).
    private let topicRegistrationDue = Mutex(true)
    /// Offset resets not handled yet, retried by the main loop: those the outage loop of
    /// ``writeDurably(_:consumer:)`` received, and those whose restart failed because
    /// PostgreSQL or the broker was unavailable. Their partitions read nothing meanwhile.
    private let unhandledResets = Mutex(UnhandledResets())

    public init(configuration: IngestConfiguration, pool: PostgresPool, logger: Logger) {
        self.configuration = configuration
        self.pool = pool
        self.store = IngestStore(groupID: configuration.groupID)
        var logger = logger
        logger[metadataKey: "replica"] = "\(configuration.replicaName)"
        self.logger = logger
        self.metrics = IngestMetrics(topic: configuration.tracesTopic, metrics: configuration.metrics)
    }

    /// A snapshot of this replica's counters.
    public var currentStatistics: IngestStatistics { statistics.withLock { $0 } }

    public func run() async throws {
        let listener = StoredOffsetsListener(pool: pool, store: store, durable: durableOffsets, logger: logger)
        let consumer = try KafkaConsumer(configuration: configuration.consumerConfiguration, listener: listener, logger: logger)
        activeConsumer.withLock { $0 = consumer }
        defer { activeConsumer.withLock { $0 = nil } }
        var writing: InFlightWrite?
        do {
            try await consumer.subscribe(topics: [configuration.tracesTopic])
            logger.info("ingest started", metadata: ["kafka.group": "\(configuration.groupID)", "kafka.topic": "\(configuration.tracesTopic)"])
            // Two batches in flight: while batch N is written (PostgreSQL's CPU and the pool
            // thread's), batch N+1 is polled and decoded (ours). Writes stay one at a time and
            // in order, and each batch's offsets are committed after its own write. Batch
            // N+1's write starts as soon as batch N is durable, before N's offsets go to Kafka:
            // that commit waits for the broker, and PostgreSQL would sit idle meanwhile.
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let batch = try await consumer.poll(maxMessages: configuration.batchSize, timeout: configuration.pollTimeout)
                let earlierResets = unhandledResets.withLock { unhandled in
                    defer { unhandled.resets = PositionResets() }
                    return unhandled.resets
                }
                if !batch.events.isEmpty || !earlierResets.isEmpty, let inFlight = writing {
                    // Rebalances and repositioning see the stored offsets of everything read before.
                    writing = nil
                    guard try await finish(inFlight, consumer: consumer) else { break }
                }
                try await handle(batch.events, after: earlierResets, consumer: consumer)
                let decoded = batch.messages.isEmpty ? nil : await decode(batch.messages)
                var written: (write: InFlightWrite, result: IngestWriteResult)?
                if let inFlight = writing {
                    writing = nil
                    // A write given up at shutdown ends the loop: a later batch's write would move
                    // the stored offsets past the messages of the one not written.
                    guard let result = try await inFlight.task.value else { break }
                    written = (inFlight, result)
                }
                // A partition is reported caught up only once what was read from it is stored:
                // everything before `decoded` is. Reported while no write of ours is open, so the
                // report never waits on the watermark rows a batch in flight has locked.
                try await reportPartitions(consumer, unstored: decoded.map { Set($0.ranges.keys) } ?? [])
                if let decoded { writing = startWrite(decoded, consumer: consumer) }
                if let written { try await acknowledge(written.write, result: written.result, consumer: consumer) }
            }
            if let inFlight = writing {
                writing = nil
                try await finish(inFlight, consumer: consumer)
            }
            await commitBeforeLeaving(consumer)
        } catch {
            logger.error("ingest stopped on an error", metadata: ["error": "\(error)"])
            if let inFlight = writing {
                // Not committed: the partitions' next owner reads the batch again (or finds it stored).
                inFlight.task.cancel()
                _ = try? await inFlight.task.value
            }
            await consumer.close(timeout: configuration.leaveTimeout)
            throw error
        }
        logger.info("ingest shutting down: leaving the group")
        await consumer.close(timeout: configuration.leaveTimeout)
    }

    /// Reports every assigned partition as behind or caught up (at most once a second): only
    /// the owner knows whether a partition whose event time stands still has nothing left to
    /// read, so the watermark treats a partition as idle only on this report, never on silence.
    private func reportPartitions(_ consumer: KafkaConsumer, unstored: Set<PartitionKey>) async throws {
        let now = ContinuousClock.now
        let due = lastPartitionReport.withLock { last -> Bool in
            guard last.map({ $0.duration(to: now) >= .seconds(1) }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return }
        await registerTopicPartitions(consumer)
        let lags = try await consumer.lag()
        metrics.lag(lags)
        let topic = configuration.tracesTopic
        var behind: [Int32] = []
        var caughtUp: [Int32] = []
        for (tp, lag) in lags where tp.topic == topic {
            // Unknown lag (nothing fetched since assignment) counts as behind, and so does a
            // partition whose last messages are read but still being written.
            let stored = !unstored.contains(PartitionKey(topic: tp.topic, partition: tp.partition))
            if let lag, lag == 0, stored { caughtUp.append(tp.partition) } else { behind.append(tp.partition) }
        }
        guard !behind.isEmpty || !caughtUp.isEmpty else { return }
        do {
            try await pool.withConnection { [store, behind, caughtUp] in try store.reportPartitions(topic: topic, behind: behind, caughtUp: caughtUp, on: $0) }
        } catch {
            logger.debug("could not report partition progress", metadata: ["error": "\(error)"])
        }
    }

    /// On graceful shutdown, brings Kafka's committed offsets up to PostgreSQL's for what this
    /// member owns. When another replica leaves at the same moment, the broker refuses commits
    /// while the group rebalances (the last batch's and the revocation's); then this member
    /// serves the rebalance for up to `settle` and commits for its new assignment. Messages read
    /// meanwhile are not written: their partitions' next owner starts from the stored offsets.
    /// Kafka's copy serves lag tools only, so failing here loses nothing.
    private func commitBeforeLeaving(_ consumer: KafkaConsumer, settle: Duration = .seconds(8)) async {
        let deadline = ContinuousClock.now.advanced(by: settle)
        let topic = configuration.tracesTopic
        while true {
            // Only a refusal the group's next generation can lift is worth waiting for; with
            // PostgreSQL or the broker unreachable, leave at once.
            do {
                let owned = try await consumer.assignment().filter { $0.topic == topic }
                if owned.isEmpty {
                    guard try await consumer.revocationCommitPending() else { return }
                } else {
                    try await commitStoredOffsets(of: Array(owned), consumer: consumer)
                    return
                }
            } catch let error as KafkaError where error.isGroupRebalance {
                logger.info("kafka offset commit before leaving refused while the group rebalances; rejoining to commit", metadata: ["error": "\(error)"])
            } catch {
                logger.info("kafka offset commit before leaving failed", metadata: ["error": "\(error)"])
                return
            }
            guard ContinuousClock.now < deadline, !Task.isCancelled else {
                logger.info("leaving with Kafka's committed offsets behind PostgreSQL's; the next owner commits them on assignment")
                return
            }
            _ = try? await consumer.poll(maxMessages: 500, timeout: .milliseconds(200))
        }
    }

    /// Commits to Kafka the offsets PostgreSQL has stored for these partitions (of the traces
    /// topic; others are ignored).
    private func commitStoredOffsets(of partitions: [TopicPartition], consumer: KafkaConsumer) async throws {
        let topic = configuration.tracesTopic
        let numbers = partitions.filter { $0.topic == topic }.map(\.partition)
        guard !numbers.isEmpty else { return }
        let stored = try await pool.withConnection { [store] in try store.storedOffsets(topic: topic, partitions: numbers, on: $0) }
        try await consumer.commit(Dictionary(uniqueKeysWithValues: stored.map { (TopicPartition(topic: topic, partition: $0.key), $0.value) }))
    }

    /// Registers every partition of the traces topic (as the broker lists them) for the
    /// watermark, when due. A partition nobody has registered would not hold windows open:
    /// in the moment between one member's assignment and another's, the watermark would be
    /// the first member's partitions alone. On failure it stays due and is retried.
    private func registerTopicPartitions(_ consumer: KafkaConsumer) async {
        guard topicRegistrationDue.withLock({ $0 }) else { return }
        let topic = configuration.tracesTopic
        do {
            let count = try await consumer.partitionCount(topic: topic, timeout: .seconds(5))
            let partitions = (0..<Int32(clamping: count)).map { $0 }
            try await pool.withConnection { [store] in try store.registerPartitions(topic: topic, partitions: partitions, on: $0) }
            topicRegistrationDue.withLock { $0 = false }
        } catch {
            logger.info("could not register the topic's partitions for the watermark; will retry", metadata: ["kafka.topic": "\(topic)", "error": "\(error)"])
        }
    }

    /// For readiness probes: nil when the broker answers a watermark query for the traces
    /// topic within `timeout`, else why not.
    public func checkKafka(timeout: Duration = .seconds(2)) async -> String? {
        guard let consumer = activeConsumer.withLock({ $0 }) else { return "the consumer is not running" }
        do {
            _ = try await consumer.watermarks(TopicPartition(topic: configuration.tracesTopic, partition: 0), timeout: timeout)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Consumer lag per assigned partition, keyed `"topic/partition"`, for `/api/status`.
    /// Empty while the consumer is not running or the broker does not answer; partitions
    /// with no fetch position yet are left out.
    public func consumerLag() async -> [String: Int64] {
        guard let consumer = activeConsumer.withLock({ $0 }) else { return [:] }
        guard let lags = try? await consumer.lag() else { return [:] }
        var result: [String: Int64] = [:]
        for (tp, lag) in lags {
            if let lag { result["\(tp.topic)/\(tp.partition)"] = lag }
        }
        return result
    }

    // MARK: - One batch

    /// A batch being written by ``startWrite(_:consumer:)``.
    private struct InFlightWrite {
        let batch: IngestBatch
        let task: Task<IngestWriteResult?, Error>
    }

    /// Decodes a batch, in slices on several threads when it is large and the configuration
    /// allows (``IngestConfiguration/decodeConcurrency``).
    private func decode(_ messages: [ConsumerMessage]) async -> IngestBatch {
        let batch = await Self.decode(messages, slices: min(configuration.decodeConcurrency, messages.count / Self.minimumDecodeSlice),
                                      limits: configuration.decodeLimits, otlpLimits: configuration.otlpLimits,
                                      eventTime: configuration.eventTimePolicy, nowNanos: Int64(Date().timeIntervalSince1970 * 1_000_000_000))
        metrics.consumed(messages)
        statistics.withLock { $0.messagesConsumed += messages.count }
        return batch
    }

    /// Starts writing `batch` (until it is durable, see ``writeDurably(_:consumer:)``).
    private func startWrite(_ batch: IngestBatch, consumer: KafkaConsumer) -> InFlightWrite {
        InFlightWrite(batch: batch, task: Task { try await self.writeDurably(batch, consumer: consumer) })
    }

    /// Waits for a write, then acknowledges it (``acknowledge(_:result:consumer:)``).
    /// Returns false when the write was given up at shutdown (nothing to acknowledge).
    @discardableResult
    private func finish(_ write: InFlightWrite, consumer: KafkaConsumer) async throws -> Bool {
        guard let result = try await write.task.value else { return false }
        try await acknowledge(write, result: result, consumer: consumer)
        return true
    }

    /// After a write is durable: counts it and commits its offsets to Kafka.
    private func acknowledge(_ write: InFlightWrite, result: IngestWriteResult, consumer: KafkaConsumer) async throws {
        let batch = write.batch
        let batchesWritten = statistics.withLock { $0.batchesWritten + 1 }
        if let crashAfter = configuration.crashAfterDurableBatches, batchesWritten >= crashAfter {
            logger.critical("fault injection: crashing after a durable batch, before the Kafka commit")
            kill(getpid(), SIGKILL)
        }
        statistics.withLock {
            $0.tracesInserted += result.tracesInserted
            $0.traceRepeats += result.traceRepeats
            $0.deadLetters += result.deadLettersInserted
            $0.alreadyDurable += result.alreadyDurable
            $0.batchesWritten += 1
        }
        metrics.written(result, batch: batch)
        if result.deadLettersInserted > 0 {
            for letter in batch.deadLetters {
                logger.info("dead letter", metadata: [
                    "kafka.partition": "\(letter.source.partition)", "kafka.offset": "\(letter.source.offset)",
                    "reason": "\(letter.reason)", "detail": "\(letter.detail)",
                ])
            }
        }

        let commits = Dictionary(uniqueKeysWithValues: result.nextOffsets.map { (TopicPartition(topic: $0.key.topic, partition: $0.key.partition), $0.value) })
        durableOffsets.record(commits)
        do {
            try await consumer.commit(commits)
        } catch {
            // PostgreSQL holds the offsets that matter; Kafka's copy only serves lag tools.
            logger.info("kafka offset commit failed; will commit with the next batch", metadata: ["error": "\(error)"])
        }
        // A replica that read from behind the stored offsets (Kafka's committed offsets
        // were used, or another replica wrote meanwhile) jumps ahead instead of re-reading.
        for (key, next) in result.nextOffsets {
            if let range = batch.ranges[key], next > range.upperBound {
                try? await consumer.seek(TopicPartition(topic: key.topic, partition: key.partition), to: .exact(next))
            }
        }
    }

    /// Below this many messages per slice, decoding in parallel is not worth a task.
    static let minimumDecodeSlice = 128

    /// ``decode(_:limits:otlpLimits:eventTime:nowNanos:)`` of `slices` contiguous slices at
    /// once, joined in message order: the same batch as decoding them all in one go.
    static func decode(_ messages: [ConsumerMessage], slices: Int, limits: DecodeLimits, otlpLimits: OTLPLimits = OTLPLimits(), eventTime: EventTimePolicy,
                       nowNanos: Int64) async -> IngestBatch {
        guard slices >= 2, messages.count >= slices else {
            var batch = decode(messages, limits: limits, otlpLimits: otlpLimits, eventTime: eventTime, nowNanos: nowNanos)
            batch.prepareDirectCopy(payloadBytes: payloadBytes(messages))
            return batch
        }
        let size = (messages.count + slices - 1) / slices
        return await withTaskGroup(of: (Int, IngestBatch).self) { group in
            for index in 0..<slices {
                let slice = Array(messages[min(messages.count, index * size)..<min(messages.count, (index + 1) * size)])
                group.addTask {
                    var part = decode(slice, limits: limits, otlpLimits: otlpLimits, eventTime: eventTime, nowNanos: nowNanos)
                    part.prepareDirectCopy(payloadBytes: payloadBytes(slice))
                    return (index, part)
                }
            }
            var parts = [IngestBatch](repeating: IngestBatch(), count: slices)
            for await (index, part) in group { parts[index] = part }
            // The first part is moved, not copied; the others are appended to it.
            var joined = IngestBatch()
            swap(&joined, &parts[0])
            for part in parts.dropFirst() { joined.append(part) }
            return joined
        }
    }

    /// The messages' payload sizes, summed.
    private static func payloadBytes(_ messages: [ConsumerMessage]) -> Int {
        messages.reduce(0) { $0 + ($1.value?.count ?? 0) }
    }

    /// Turns messages into traces and dead letters; pure apart from the decoder.
    static func decode(_ messages: [ConsumerMessage], limits: DecodeLimits, otlpLimits: OTLPLimits = OTLPLimits(), eventTime: EventTimePolicy, nowNanos: Int64) -> IngestBatch {
        var batch = IngestBatch()
        for message in messages {
            let source = SourcePosition(partition: PartitionKey(topic: message.topicPartition.topic, partition: message.topicPartition.partition), offset: message.offset)
            batch.cover(source)
            func deadLetter(_ reason: String, _ detail: String) {
                batch.deadLetters.append(DeadLetter(source: source, reason: reason, detail: detail, payload: message.value, key: message.key, headers: message.headers))
            }
            // Spans keep inputs and outputs compact: ingest only writes them to PostgreSQL.
            switch TraceMessageDecoder.decode(payload: message.value, contentType: message.header("content-type"), limits: limits, otlpLimits: otlpLimits,
                                              compactPayloads: true) {
            case .trace(let trace):
                if let rejection = eventTime.check(eventTime: trace.requestTimeNanos, now: nowNanos) {
                    deadLetter("event_time_out_of_range", "trace \(trace.traceID): \(rejection)")
                } else {
                    batch.appendTrace(trace, source: source)
                }
            case .fragments(let fragments):
                // A message is kept or dead-lettered whole.
                if let bad = fragments.lazy.compactMap({ fragment in
                    fragment.earliestStartTimeNanos.flatMap { eventTime.check(eventTime: $0, now: nowNanos) }.map { (fragment, $0) }
                }).first {
                    deadLetter("event_time_out_of_range", "OTLP trace \(bad.0.traceIDHex): \(bad.1)")
                } else {
                    batch.fragments += fragments.map { (fragment: $0, source: source) }
                }
            case .rejected(let rejection):
                deadLetter(rejection.reason.rawValue, rejection.detail)
            }
        }
        return batch
    }

    /// Writes until it succeeds, pausing the partitions while PostgreSQL is unavailable.
    /// Returns nil when shutdown began before the write succeeded (the batch is not
    /// committed, so the partitions' next owner reads it again).
    private func writeDurably(_ batch: IngestBatch, consumer: KafkaConsumer) async throws -> IngestWriteResult? {
        var pending = batch
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
        // Whether this write paused the consumer for a database outage (ended by
        // ``resumeAfterOutage(_:)`` on every way out but shutdown).
        var outage = false
        while true {
            do {
                let toWrite = pending
                let result = try await pool.withConnection { [store, metrics] connection in
                    let started = ContinuousClock.now
                    let result = try store.write(toWrite, on: connection)
                    metrics.batchWritten(started.duration(to: .now))
                    return result
                }
                if outage {
                    try await resumeAfterOutage(consumer)
                    logger.info("PostgreSQL is back; partitions resumed")
                }
                return result
            } catch let error as PostgresError where Self.isDataError(error) {
                // A value PostgreSQL refuses (it passed our decoder): find the culprits one by
                // one and keep them as dead letters, so they cannot stall the partition.
                logger.warning("batch rejected by PostgreSQL; writing its messages one by one", metadata: ["error": "\(error)"])
                let result = try await writeIndividually(pending)
                if outage { try await resumeAfterOutage(consumer) }
                return result
            } catch {
                statistics.withLock { $0.writeRetries += 1 }
                metrics.writeRetry()
                if Task.isShuttingDownGracefully || Task.isCancelled {
                    logger.warning("shutting down with an unwritten batch; it stays uncommitted and will be read again", metadata: ["error": "\(error)"])
                    return nil
                }
                if !outage {
                    // Partitions assigned from now on start paused too, inside the rebalance
                    // callback, before anything is fetched from them.
                    try await consumer.pauseNewAssignments(true)
                    try await consumer.pause(Array(try await consumer.assignment()))
                    outage = true
                    logger.warning("PostgreSQL write failed; partitions paused, retrying with backoff", metadata: ["error": "\(error)"])
                }
                // Wait, but keep serving the group (paused partitions deliver nothing).
                let wait = backoff.next()
                let deadline = ContinuousClock.now.advanced(by: wait)
                while ContinuousClock.now < deadline && !Task.isShuttingDownGracefully {
                    let idle = try await consumer.poll(maxMessages: 1, timeout: min(wait, .milliseconds(200)))
                    for event in idle.events {
                        unhandledResets.withLock { $0.resets.note(event) }
                        switch event {
                        case .revoked(let partitions):
                            pending = pending.dropping(Set(partitions.map { PartitionKey(topic: $0.topic, partition: $0.partition) }))
                        case .assigned:
                            topicRegistrationDue.withLock { $0 = true }
                        default:
                            break
                        }
                    }
                    // Should a message still arrive (one fetched before its partition was
                    // paused), nothing here writes it: pause its partition and rewind it to the
                    // first such message, so on resume it is read again, not skipped.
                    var firstUnwritten: [TopicPartition: Int64] = [:]
                    for message in idle.messages {
                        firstUnwritten[message.topicPartition] = min(firstUnwritten[message.topicPartition] ?? .max, message.offset)
                    }
                    if !firstUnwritten.isEmpty {
                        let alreadyPaused = try await consumer.pausedPartitions()
                        for (tp, offset) in firstUnwritten.sorted(by: { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }) {
                            if !alreadyPaused.contains(tp) { try await consumer.pause([tp]) }
                            try await consumer.seek(tp, to: .exact(offset))
                        }
                    }
                    if pending.isEmpty {
                        // Every partition of the batch moved to another replica.
                        try await resumeAfterOutage(consumer)
                        return IngestWriteResult()
                    }
                }
            }
        }
    }

    /// Ends the pause of a database outage: new assignments start unpaused again, and every
    /// paused partition resumes, also those assigned during the outage (whose assignment
    /// event the main loop may have taken).
    private func resumeAfterOutage(_ consumer: KafkaConsumer) async throws {
        try await consumer.pauseNewAssignments(false)
        try await consumer.resume(Array(try await consumer.pausedPartitions()))
    }

    /// Writes each message of a batch in its own transaction; a message PostgreSQL refuses
    /// becomes a `store_rejected` dead letter.
    private func writeIndividually(_ batch: IngestBatch) async throws -> IngestWriteResult {
        var total = IngestWriteResult()
        var singles: [IngestBatch] = []
        for item in batch.traces {
            var single = IngestBatch()
            single.cover(item.source)
            single.appendTrace(item.trace, source: item.source)
            singles.append(single)
        }
        for letter in batch.deadLetters {
            var single = IngestBatch()
            single.cover(letter.source)
            single.deadLetters = [letter]
            singles.append(single)
        }
        for (source, items) in Dictionary(grouping: batch.fragments, by: \.source) {
            var single = IngestBatch()
            single.cover(source)
            single.fragments = items
            singles.append(single)
        }
        singles.sort { ($0.ranges.first?.value.lowerBound ?? 0) < ($1.ranges.first?.value.lowerBound ?? 0) }
        for single in singles {
            let result: IngestWriteResult
            do {
                result = try await pool.withConnection { [store] connection in try store.write(single, on: connection) }
            } catch let error as PostgresError where Self.isDataError(error) {
                guard let source = single.traces.first?.source ?? single.fragments.first?.source else { throw error }
                let what = single.traces.first.map { "trace \($0.trace.traceID)" } ?? "OTLP message"
                var rejected = IngestBatch()
                rejected.cover(source)
                rejected.deadLetters = [DeadLetter(
                    source: source, reason: "store_rejected",
                    detail: "PostgreSQL refused \(what): \(error.description)",
                    payload: nil)]
                let toWrite = rejected
                result = try await pool.withConnection { [store] connection in try store.write(toWrite, on: connection) }
            }
            total.tracesInserted += result.tracesInserted
            total.traceRepeats += result.traceRepeats
            total.spansInserted += result.spansInserted
            total.deadLettersInserted += result.deadLettersInserted
            total.alreadyDurable += result.alreadyDurable
            total.nextOffsets.merge(result.nextOffsets) { max($0, $1) }
        }
        return total
    }

    /// Errors about the data itself (class 22 data exception, 23 integrity, 54 limits):
    /// retrying cannot help.
    static func isDataError(_ error: PostgresError) -> Bool {
        guard let state = error.sqlState, !error.connectionBroken else { return false }
        return state.hasPrefix("22") || (state.hasPrefix("23") && state != "23505") || state.hasPrefix("54")
    }

    // MARK: - Events

    /// Handles a poll's events in order, after any offset resets taken during an outage. The
    /// partitions that lost their position are restarted together at the end, in one
    /// reassignment (see ``KafkaConsumer/restart(_:)``).
    private func handle(_ events: [ConsumerEvent], after earlierResets: PositionResets, consumer: KafkaConsumer) async throws {
        var resets = earlierResets
        for event in events {
            resets.note(event)
            if case .offsetReset = event { continue }
            try await handle(event, consumer: consumer)
        }
        guard !resets.isEmpty else { return }
        let due = unhandledResets.withLock { $0.retryAt.map { ContinuousClock.now >= $0 } ?? true }
        guard due else {
            unhandledResets.withLock { $0.resets = resets }
            return
        }
        do {
            try await reposition(resets, consumer: consumer)
            unhandledResets.withLock { $0.succeeded() }
        } catch let error where Self.isUnavailable(error) {
            // Not fatal: the partitions stay stopped, and the group keeps being served.
            let wait = unhandledResets.withLock { $0.failed(resets) }
            logger.warning("could not restart partitions that lost their position; will retry", metadata: [
                "kafka.partitions": "\(resets.partitions.map(\.description).sorted())", "retry.in": "\(wait)", "error": "\(error)",
            ])
        }
    }

    /// PostgreSQL or the broker cannot answer right now: retrying later may succeed.
    static func isUnavailable(_ error: any Error) -> Bool {
        if let error = error as? PostgresError { return error.isConnectionError }
        if let error = error as? KafkaError { return !error.isFatal }
        return false
    }

    private func handle(_ event: ConsumerEvent, consumer: KafkaConsumer) async throws {
        switch event {
        case .assigned(let partitions):
            statistics.withLock { $0.assignedPartitions = partitions.count }
            // Before this assignment's first write, so that no window can close on this
            // replica's partitions alone while another member has not registered its own.
            topicRegistrationDue.withLock { $0 = true }
            await registerTopicPartitions(consumer)
            // Bring Kafka's committed offsets (for lag tools) up to the stored ones: the last
            // commit of a partition's previous owner may have failed in the rebalance that
            // moved it, and with nothing new to read nobody would commit it again. Read now,
            // not at assignment: a write in flight then has finished since, and its offsets
            // must not be committed backwards.
            do {
                try await commitStoredOffsets(of: Array(partitions.keys), consumer: consumer)
            } catch {
                logger.info("kafka offset commit after assignment failed; will commit with the next batch", metadata: ["error": "\(error)"])
            }
        case .revoked:
            statistics.withLock { $0.assignedPartitions = 0 }
        case .error(let error):
            if error.isFatal { throw error }
            logger.info("kafka reported an error; librdkafka retries", metadata: ["error": "\(error)"])
        case .offsetReset:
            break  // collected by handle(_:after:consumer:)
        }
    }

    /// Partitions lost their position (an offset out of range, or none). Decide where each
    /// continues, record data that retention deleted before we read it, and restart them in one
    /// reassignment, together with the partitions that started at Kafka's committed offset and
    /// have read nothing yet: with nothing committed they are about to stop the same way.
    private func reposition(_ resets: PositionResets, consumer: KafkaConsumer) async throws {
        let assigned = try await consumer.assignment()
        let awaiting = try await consumer.partitionsAwaitingPosition()
        let partitions = resets.partitions.intersection(assigned).union(awaiting)
            .sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
        guard !partitions.isEmpty else { return }
        let stored = try await pool.withConnection { [store] connection in
            var stored: [TopicPartition: Int64] = [:]
            for (topic, list) in Dictionary(grouping: partitions, by: \.topic) {
                for (partition, offset) in try store.storedOffsets(topic: topic, partitions: list.map(\.partition), on: connection) {
                    stored[TopicPartition(topic: topic, partition: partition)] = offset
                }
            }
            return stored
        }
        var starts: [TopicPartition: KafkaOffset] = [:]
        for tp in partitions {
            let reason = resets.reason(for: tp) ?? "started at Kafka's committed offset and read nothing yet"
            starts[tp] = try await position(after: tp, stored: stored[tp], reason: reason, consumer: consumer)
        }
        try await consumer.restart(starts)
    }

    /// Where a partition that lost its position continues, given the offset PostgreSQL stores
    /// for it (nil: none yet).
    private func position(after tp: TopicPartition, stored: Int64?, reason: String, consumer: KafkaConsumer) async throws -> KafkaOffset {
        let key = PartitionKey(topic: tp.topic, partition: tp.partition)
        let (low, high) = try await consumer.watermarks(tp)
        guard let stored else {
            logger.info("no stored offset; starting at the beginning", metadata: ["kafka.partition": "\(tp)", "kafka.low": "\(low)", "reason": "\(reason)"])
            return .beginning
        }
        if stored < low {
            let recorded = try await pool.withConnection { [store] connection in
                try store.recordRetentionGap(key, from: stored, to: low, on: connection)
            }
            if recorded { durableOffsets.record([tp: low]) }
            statistics.withLock { $0.retentionGaps += 1 }
            metrics.retentionGap(lost: low - stored, recorded: recorded)
            logger.error("data lost to retention before it was read", metadata: [
                "kafka.partition": "\(tp)", "gap.from": "\(stored)", "gap.to": "\(low)",
                "gap.messages": "\(low - stored)", "recorded": "\(recorded)",
            ])
            return .exact(low)
        } else if stored > high {
            logger.error("stored offset is beyond the end of the partition (was the topic recreated?); re-reading it from the beginning", metadata: [
                "kafka.partition": "\(tp)", "stored": "\(stored)", "kafka.low": "\(low)", "kafka.high": "\(high)", "reason": "\(reason)",
            ])
            try await pool.withConnection { [store] connection in try store.resetOffset(key, to: low, on: connection) }
            durableOffsets.assign([tp], stored: [tp: low])
            return .exact(low)
        } else {
            logger.info("partition restarted at its stored offset", metadata: ["kafka.partition": "\(tp)", "offset": "\(stored)", "reason": "\(reason)"])
            return .exact(stored)
        }
    }
}

/// Offset resets waiting for a retry, and when it is due.
struct UnhandledResets: Sendable {
    var resets = PositionResets()
    private(set) var retryAt: ContinuousClock.Instant?
    private var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))

    /// Keeps `resets` for a retry after a backoff; returns the wait.
    mutating func failed(_ resets: PositionResets) -> Duration {
        self.resets = resets
        let wait = backoff.next()
        retryAt = ContinuousClock.now.advanced(by: wait)
        return wait
    }

    mutating func succeeded() {
        retryAt = nil
        backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
    }
}

/// The partitions a consumer reported as having lost their position, in the order reported.
/// A rebalance makes the earlier ones moot: the partitions it assigns get new start offsets.
struct PositionResets: Sendable, Equatable {
    private(set) var reasons: [TopicPartition: String] = [:]

    var isEmpty: Bool { reasons.isEmpty }
    var partitions: Set<TopicPartition> { Set(reasons.keys) }
    func reason(for tp: TopicPartition) -> String? { reasons[tp] }

    mutating func note(_ event: ConsumerEvent) {
        switch event {
        case .offsetReset(let tp, _, let reason): reasons[tp] = reason
        case .assigned, .revoked: reasons.removeAll()
        case .error: break
        }
    }
}

extension IngestBatch {
    /// This batch without the messages of the given partitions.
    func dropping(_ partitions: Set<PartitionKey>) -> IngestBatch {
        var copy = self
        copy.removeTraces { partitions.contains($0.source.partition) }
        copy.fragments.removeAll { partitions.contains($0.source.partition) }
        copy.deadLetters.removeAll { partitions.contains($0.source.partition) }
        for key in partitions { copy.ranges[key] = nil }
        return copy
    }
}

/// Reads start offsets from PostgreSQL when partitions are assigned.
///
/// Runs on the consumer's poll thread (a thread of our own), so it may block on the pool.
/// If PostgreSQL cannot answer, it throws and the consumer falls back to Kafka's committed
/// offsets, which never run ahead of PostgreSQL's; the store skips what is already durable.
struct StoredOffsetsListener: ConsumerRebalanceListener {
    let pool: PostgresPool
    let store: IngestStore
    let durable: DurableOffsets
    let logger: Logger

    func startingOffsets(for partitions: [TopicPartition]) throws -> [TopicPartition: KafkaOffset] {
        var result: [TopicPartition: KafkaOffset] = [:]
        for (topic, list) in Dictionary(grouping: partitions, by: \.topic) {
            let read = { [store] (connection: PostgresConnection) throws -> [Int32: Int64] in
                try store.registerPartitions(topic: topic, partitions: list.map(\.partition), on: connection)
                return try store.storedOffsets(topic: topic, partitions: list.map(\.partition), on: connection)
            }
            let stored: [Int32: Int64]
            do {
                stored = try pool.withConnectionBlocking(read)
            } catch let error as PostgresError where error.connectionBroken {
                // A pooled connection the server closed (e.g. it restarted): the pool drops it,
                // and a new one is likely to work. Without these offsets every partition starts
                // at Kafka's committed offset, and where there is none it stops until restarted.
                logger.info("reading starting offsets again on a new connection", metadata: ["error": "\(error)"])
                stored = try pool.withConnectionBlocking(read)
            }
            for tp in list {
                result[tp] = stored[tp.partition].map { .exact($0) } ?? .beginning
            }
            // What PostgreSQL holds now replaces whatever this replica knew of these partitions.
            durable.assign(list, stored: Dictionary(uniqueKeysWithValues: stored.map { (TopicPartition(topic: topic, partition: $0.key), $0.value) }))
        }
        logger.info("starting offsets from PostgreSQL", metadata: ["offsets": "\(result.map { "\($0.key)@\($0.value)" }.sorted())"])
        return result
    }

    func partitionsRevoked(_ partitions: [TopicPartition]) {}

    /// The offsets this replica knows are durable (read at assignment, or written since), so
    /// Kafka's copy (for lag tools) is current when a partition moves or the replica leaves;
    /// the commit after a batch can fail in a rebalance. Asks nothing of PostgreSQL: during an
    /// outage, a read here would hold up the whole group's rebalance for the connect timeout.
    func offsetsToCommit(revoking partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        durable.take(partitions)
    }
}

/// The next offset this replica knows PostgreSQL holds, per partition: read when the partition
/// was assigned, or made durable by a write of this replica since. Never ahead of PostgreSQL
/// (another replica may have moved it further, which only makes a commit of it stale, and a
/// stale Kafka commit is safe: PostgreSQL's offsets decide where reading starts).
final class DurableOffsets: Sendable {
    private let offsets = Mutex<[TopicPartition: Int64]>([:])

    /// Notes offsets that are durable; an offset never moves back.
    func record(_ durable: [TopicPartition: Int64]) {
        offsets.withLock { offsets in
            for (partition, next) in durable { offsets[partition] = max(next, offsets[partition] ?? next) }
        }
    }

    /// Takes PostgreSQL's offsets of these partitions as they are (absent: none stored), on
    /// assignment or when PostgreSQL's offset was set back (the topic was recreated). Anything
    /// known of them before is stale: a write that finished after their revocation, or an
    /// offset PostgreSQL has since set back.
    func assign(_ partitions: [TopicPartition], stored: [TopicPartition: Int64]) {
        offsets.withLock { offsets in
            for partition in partitions { offsets[partition] = stored[partition] }
        }
    }

    /// The known offsets of `partitions`, forgotten here (they are being revoked).
    func take(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        offsets.withLock { offsets in
            var taken: [TopicPartition: Int64] = [:]
            for partition in partitions { if let next = offsets.removeValue(forKey: partition) { taken[partition] = next } }
            return taken
        }
    }
}

/// Exponential backoff with full jitter.
struct Backoff {
    let initial: Duration
    let maximum: Duration
    private var current: Duration

    init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
        self.current = initial
    }

    mutating func next() -> Duration {
        let ceiling = current
        current = min(current * 2, maximum)
        let fraction = Double.random(in: 0.5...1.0)
        return ceiling * fraction
    }
}

/// The ingest path's metrics (`assay_messages_consumed_total`, `assay_traces_stored_total`,
/// `assay_dead_letters_total`, `assay_consumer_lag_messages`, …; see `MetricFamily`).
final class IngestMetrics: Sendable {
    let topic: String
    let metrics: AssayMetrics
    /// Partitions with a lag series, to remove those this replica no longer holds.
    private let lagPartitions = Mutex(Set<Int32>())

    init(topic: String, metrics: AssayMetrics) {
        self.topic = topic
        self.metrics = metrics
    }

    func consumed(_ messages: [ConsumerMessage]) {
        for (partition, list) in Dictionary(grouping: messages, by: \.topicPartition.partition) {
            metrics.messagesConsumed(topic: topic, partition: partition, count: list.count)
        }
    }

    /// Counts a written batch per partition (trace messages) and per reason (dead letters).
    ///
    /// The store reports totals only, so the split comes from the batch: partitions that moved
    /// to another replica before the write (absent from `nextOffsets`) are left out, and a
    /// batch with messages that were already durable (a replay) counts its traces under
    /// `assay_messages_already_durable_total` only. Dead letters beyond the batch's own (the
    /// one-by-one path turns refused traces into dead letters) count as `store_rejected`.
    func written(_ result: IngestWriteResult, batch: IngestBatch) {
        let written = Set(result.nextOffsets.keys)
        if result.alreadyDurable == 0 {
            var perPartition: [Int32: Int] = [:]
            for item in batch.traces where written.contains(item.source.partition) {
                perPartition[item.source.partition.partition, default: 0] += 1
            }
            for source in Set(batch.fragments.map(\.source)) where written.contains(source.partition) {
                perPartition[source.partition.partition, default: 0] += 1
            }
            for (partition, count) in perPartition {
                metrics.tracesStored(topic: topic, partition: partition, count: count)
            }
        } else {
            metrics.messagesAlreadyDurable(topic: topic, count: result.alreadyDurable)
        }
        var remaining = result.deadLettersInserted
        var perReason: [String: Int] = [:]
        for letter in batch.deadLetters where remaining > 0 && written.contains(letter.source.partition) {
            perReason[letter.reason, default: 0] += 1
            remaining -= 1
        }
        if remaining > 0 { perReason["store_rejected", default: 0] += remaining }
        for (reason, count) in perReason {
            metrics.deadLetters(topic: topic, reason: reason, count: count)
        }
    }

    func batchWritten(_ duration: Duration) {
        metrics.batchWritten(topic: topic, duration: duration)
    }

    /// Sets the lag gauges of the assigned partitions (unknown lag leaves a gauge as it was)
    /// and removes those of partitions no longer assigned.
    func lag(_ lags: [TopicPartition: Int64?]) {
        var current = Set<Int32>()
        for (tp, lag) in lags where tp.topic == topic {
            current.insert(tp.partition)
            if let lag { metrics.consumerLag(topic: topic, partition: tp.partition, messages: lag) }
        }
        let gone = lagPartitions.withLock { known in
            defer { known = current }
            return known.subtracting(current)
        }
        for partition in gone {
            metrics.removeConsumerLag(topic: topic, partition: partition)
        }
    }

    func writeRetry() {
        metrics.batchWriteRetry(topic: topic)
    }

    func retentionGap(lost: Int64, recorded: Bool) {
        metrics.retentionLost(topic: topic, messages: lost)
        if recorded { metrics.deadLetters(topic: topic, reason: "retention_gap", count: 1) }
    }
}
