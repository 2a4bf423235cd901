import CRdKafka
import DedicatedThreads
import Logging

/// One message read from Kafka, copied out of librdkafka's buffers.
public struct ConsumerMessage: Sendable {
    public var topicPartition: TopicPartition
    public var offset: Int64
    /// nil for a tombstone (null value).
    public var value: [UInt8]?
    public var key: [UInt8]?
    public var headers: [(name: String, value: [UInt8]?)]
    /// Milliseconds since the epoch, if the broker or producer set a timestamp.
    public var timestampMillis: Int64?

    public init(topicPartition: TopicPartition, offset: Int64, value: [UInt8]?, key: [UInt8]? = nil, headers: [(name: String, value: [UInt8]?)] = [], timestampMillis: Int64? = nil) {
        self.topicPartition = topicPartition
        self.offset = offset
        self.value = value
        self.key = key
        self.headers = headers
        self.timestampMillis = timestampMillis
    }

    /// The first header with this name, decoded as UTF-8.
    public func header(_ name: String) -> String? {
        guard let match = headers.first(where: { $0.name == name }), let bytes = match.value else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Something other than a message that a poll observed, in the order it happened.
public enum ConsumerEvent: Sendable, Equatable {
    /// Partitions assigned to this member, with the offsets they start at.
    case assigned([TopicPartition: KafkaOffset])
    /// Partitions taken away from this member.
    case revoked([TopicPartition])
    /// A partition has no valid position (its offset is out of range, e.g. deleted by
    /// retention, or there is no committed offset) and `auto.offset.reset` is `error`.
    /// The partition stays stopped until ``KafkaConsumer/seek(_:to:)``.
    case offsetReset(TopicPartition, offset: Int64, reason: String)
    /// A non-fatal error (broker transport, ...). librdkafka keeps retrying.
    case error(KafkaError)
}

/// The result of one ``KafkaConsumer/poll(maxMessages:timeout:linger:)``.
public struct ConsumerBatch: Sendable {
    public var messages: [ConsumerMessage]
    public var events: [ConsumerEvent]
}

/// Decides where newly assigned partitions start. Called on the consumer's own poll
/// thread during a rebalance, so it may block briefly (e.g. read offsets from PostgreSQL).
public protocol ConsumerRebalanceListener: Sendable {
    /// Returns the start offset for each partition; partitions left out start at `.committed`.
    func startingOffsets(for partitions: [TopicPartition]) throws -> [TopicPartition: KafkaOffset]
    /// Called before the partitions are unassigned.
    func partitionsRevoked(_ partitions: [TopicPartition])
    /// Offsets to commit for partitions about to be revoked (in a rebalance or on close),
    /// committed synchronously while this member still owns them. None by default.
    func offsetsToCommit(revoking partitions: [TopicPartition]) -> [TopicPartition: Int64]
}

extension ConsumerRebalanceListener {
    public func offsetsToCommit(revoking partitions: [TopicPartition]) -> [TopicPartition: Int64] { [:] }
}

/// A group member with explicit offset control, on a poll thread of its own.
///
/// Every librdkafka call on the handle runs on `thread`, so rebalance callbacks (which
/// librdkafka fires inside `rd_kafka_consumer_poll`) run there too.
///
/// `@unchecked Sendable`: the handle is only touched on `thread`; mutable state lives in
/// `ConsumerContext`, which is confined to the same thread.
public final class KafkaConsumer: @unchecked Sendable {
    private let handle: OpaquePointer
    private let thread: DedicatedThread
    private let context: ConsumerContext
    private let logger: Logger
    private var isClosed = false  // only read/written on `thread`

    public init(configuration: KafkaConsumerConfiguration, listener: ConsumerRebalanceListener, logger: Logger) throws(KafkaError) {
        let context = ConsumerContext(logger: logger, listener: listener, commitTimeout: configuration.commitTimeout)
        let conf = try makeRDKafkaConf(configuration.properties, operation: "consumer configuration")
        installCommonCallbacks(conf: conf, context: context)
        rd_kafka_conf_set_rebalance_cb(conf, consumerRebalanceCallback)
        rd_kafka_conf_set_error_cb(conf, consumerErrorCallback)
        let handle = try makeRDKafkaHandle(type: RD_KAFKA_CONSUMER, conf: conf, operation: "create consumer")
        rd_kafka_poll_set_consumer(handle)
        self.handle = handle
        self.context = context
        self.logger = logger
        self.thread = DedicatedThread(name: "kafka-consumer-\(configuration.groupID)")
    }

    deinit {
        // Owners call close() or abandon(); this only frees what is left.
        thread.shutdown()
    }

    /// Joins the group for these topics (assignment arrives through `poll`).
    public func subscribe(topics: [String]) async throws {
        try await thread.run { [self] () throws -> Void in
            let list = RDTopicPartitionList(topics.map { TopicPartition(topic: $0, partition: -1) })
            let err = rd_kafka_subscribe(handle, list.pointer)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "subscribe") }
        }
    }

    /// Waits up to `timeout` for a first message, then collects more for up to `linger`
    /// or until `maxMessages`. Ends early at a rebalance; messages of revoked partitions
    /// are dropped (their new owner reads them).
    public func poll(maxMessages: Int, timeout: Duration, linger: Duration = .milliseconds(10)) async throws -> ConsumerBatch {
        try await thread.run { [self] () throws -> ConsumerBatch in
            try self.pollOnThread(maxMessages: maxMessages, timeout: timeout, linger: linger)
        }
    }

    private func pollOnThread(maxMessages: Int, timeout: Duration, linger: Duration) throws(KafkaError) -> ConsumerBatch {
        guard !isClosed else { throw KafkaError.client("consumer is closed", operation: "poll") }
        var messages: [ConsumerMessage] = []
        messages.reserveCapacity(min(maxMessages, 4096))
        let clock = ContinuousClock()
        var deadline = clock.now.advanced(by: timeout)
        var sawFirst = false
        var eventsSeen = context.pendingEvents.count
        while messages.count < maxMessages {
            let remaining = clock.now.duration(to: deadline)
            let waitMs = max(0, Int32(clamping: remaining.milliseconds))
            let raw = rd_kafka_consumer_poll(handle, waitMs)
            defer { if let raw { rd_kafka_message_destroy(raw) } }
            // A rebalance ran inside the poll: messages read earlier from partitions that
            // were revoked belong to their next owner (who starts from the stored offset).
            let rebalanced = context.pendingEvents.count > eventsSeen
            if rebalanced {
                let revoked = Set(context.pendingEvents[eventsSeen...].flatMap { event -> [TopicPartition] in
                    if case .revoked(let partitions) = event { return partitions }
                    return []
                })
                if !revoked.isEmpty { messages.removeAll { revoked.contains($0.topicPartition) } }
                eventsSeen = context.pendingEvents.count
            }
            if let raw {
                if raw.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    handleMessageError(raw)
                    eventsSeen = context.pendingEvents.count
                } else {
                    let copied = Self.copy(raw)
                    if context.assignment.contains(copied.topicPartition) {
                        messages.append(copied)
                        context.readUpTo[copied.topicPartition] = copied.offset + 1
                    }
                    if !sawFirst {
                        sawFirst = true
                        let lingerDeadline = clock.now.advanced(by: linger)
                        if lingerDeadline < deadline { deadline = lingerDeadline }
                    }
                }
            }
            if rebalanced { break }
            if raw == nil && remaining <= .zero { break }
        }
        let events = context.pendingEvents
        context.pendingEvents.removeAll()
        if let fatal = fatalError(operation: "poll") { throw fatal }
        return ConsumerBatch(messages: messages, events: events)
    }

    /// Whether an offset-reset error describes the partition as it is assigned now. One queued
    /// before the partition was revoked, or restarted at an offset of its own, does not:
    /// acting on it would restart the partition once more. "No committed offset" (reported
    /// with a logical offset) can only happen to a partition started at its committed offset.
    static func resetIsCurrent(offset: Int64, assigned: Bool, start: KafkaOffset?) -> Bool {
        guard assigned else { return false }
        if offset < 0, let start, start != .committed { return false }
        return true
    }

    // librdkafka's message accessors find their internal message from the pointer they
    // handed out, so they must get that pointer, never a pointer to a copy.
    private func handleMessageError(_ raw: UnsafeMutablePointer<rd_kafka_message_t>) {
        let message = raw.pointee
        let topic = message.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let tp = TopicPartition(topic: topic, partition: message.partition)
        let text = rd_kafka_message_errstr(raw).map { String(cString: $0) } ?? ""
        switch message.err {
        case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET, RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
            if Self.resetIsCurrent(offset: message.offset, assigned: context.assignment.contains(tp), start: context.startOffsets[tp]) {
                context.pendingEvents.append(.offsetReset(tp, offset: message.offset, reason: text))
            } else {
                logger.debug("dropping an offset reset queued before its partition was restarted or revoked",
                             metadata: ["kafka.partition": "\(tp)", "kafka.offset": "\(message.offset)"])
            }
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
            // A fetch since the partition was (re)assigned reached the log end at this offset.
            if context.assignment.contains(tp) { context.endReached[tp] = message.offset }
        default:
            context.pendingEvents.append(.error(KafkaError(message.err, operation: "consume", message: text)))
        }
    }

    private static func copy(_ raw: UnsafeMutablePointer<rd_kafka_message_t>) -> ConsumerMessage {
        let message = raw.pointee
        let topic = message.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let value: [UInt8]? = message.payload.map { payload in
            Array(UnsafeRawBufferPointer(start: payload, count: message.len))
        }
        let key: [UInt8]? = message.key.map { Array(UnsafeRawBufferPointer(start: $0, count: message.key_len)) }
        var headers: [(name: String, value: [UInt8]?)] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(raw, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var index = 0
            while true {
                var name: UnsafePointer<CChar>?
                var valuePointer: UnsafeRawPointer?
                var size = 0
                if rd_kafka_header_get_all(hdrs, index, &name, &valuePointer, &size) != RD_KAFKA_RESP_ERR_NO_ERROR { break }
                let headerValue = valuePointer.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
                headers.append((name: name.map { String(cString: $0) } ?? "", value: headerValue))
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(raw, &timestampType)
        return ConsumerMessage(
            topicPartition: TopicPartition(topic: topic, partition: message.partition),
            offset: message.offset,
            value: value,
            key: key,
            headers: headers,
            timestampMillis: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp
        )
    }

    private func fatalError(operation: String) -> KafkaError? {
        var errstr = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(handle, &errstr, errstr.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        let text = String(decoding: errstr.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var error = KafkaError(err, operation: operation, message: text)
        error.isFatal = true
        return error
    }

    /// Commits `next offset` per partition to the group coordinator, synchronously.
    public func commit(_ offsets: [TopicPartition: Int64]) async throws {
        guard !offsets.isEmpty else { return }
        try await thread.run { [self] () throws -> Void in
            let list = RDTopicPartitionList(Array(offsets.keys)) { offsets[$0] ?? Int64(RD_KAFKA_OFFSET_INVALID) }
            let result = commitAwaitingAnswer(handle, list, timeout: context.commitTimeout)
            if result.error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(result.error, operation: "commit") }
            for (tp, partitionErr) in result.partitionErrors {
                throw KafkaError(partitionErr, operation: "commit \(tp)")
            }
            context.revocationCommitFailed = false
        }
    }

    /// Whether the offsets of the last revocation could not be committed and no commit has
    /// succeeded since (see ``ConsumerRebalanceListener/offsetsToCommit(revoking:)``).
    public func revocationCommitPending() async throws -> Bool {
        try await thread.run { [context] in context.revocationCommitFailed }
    }

    /// The group's committed offsets in Kafka (nil where none is committed).
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) async throws -> [TopicPartition: Int64?] {
        try await thread.run { [self] () throws -> [TopicPartition: Int64?] in
            let list = RDTopicPartitionList(partitions)
            let err = rd_kafka_committed(handle, list.pointer, Int32(clamping: timeout.milliseconds))
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "committed") }
            var result: [TopicPartition: Int64?] = [:]
            for (tp, offset, _) in list.elements { result[tp] = offset >= 0 ? offset : nil }
            return result
        }
    }

    /// The oldest and next-to-be-written offsets of a partition, asked of the broker.
    public func watermarks(_ tp: TopicPartition, timeout: Duration = .seconds(10)) async throws -> (low: Int64, high: Int64) {
        try await thread.run { [self] () throws -> (low: Int64, high: Int64) in
            var low: Int64 = 0
            var high: Int64 = 0
            let err = rd_kafka_query_watermark_offsets(handle, tp.topic, tp.partition, &low, &high, Int32(clamping: timeout.milliseconds))
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "query watermarks \(tp)") }
            return (low, high)
        }
    }

    /// How many partitions `topic` has, asked of the broker (a metadata request for that
    /// topic only). Throws when the broker does not answer in time or does not know the topic.
    public func partitionCount(topic: String, timeout: Duration = .seconds(10)) async throws -> Int {
        try await thread.run { [self] () throws -> Int in
            guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else {
                throw KafkaError(rd_kafka_last_error(), operation: "metadata \(topic)")
            }
            defer { rd_kafka_topic_destroy(topicHandle) }
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(handle, 0, topicHandle, &metadata, Int32(clamping: timeout.milliseconds))
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError(err, operation: "metadata \(topic)") }
            defer { rd_kafka_metadata_destroy(metadata) }
            for index in 0..<Int(metadata.pointee.topic_cnt) {
                let entry = metadata.pointee.topics[index]
                guard String(cString: entry.topic) == topic else { continue }
                if entry.err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(entry.err, operation: "metadata \(topic)") }
                return Int(entry.partition_cnt)
            }
            throw KafkaError(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, operation: "metadata \(topic)")
        }
    }

    /// Moves an assigned partition's position (e.g. after ``ConsumerEvent/offsetReset(_:offset:reason:)``).
    public func seek(_ tp: TopicPartition, to offset: KafkaOffset, timeout: Duration = .seconds(10)) async throws {
        try await thread.run { [self] () throws -> Void in
            let list = RDTopicPartitionList([tp]) { _ in offset.cValue }
            if let error = rd_kafka_seek_partitions(handle, list.pointer, Int32(clamping: timeout.milliseconds)) {
                throw KafkaError(consuming: error, operation: "seek \(tp)")
            }
            for (_, _, err) in list.elements where err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(err, operation: "seek \(tp)")
            }
            context.forgetReads(of: [tp])
        }
    }

    /// Restarts an assigned partition at `offset` (see ``restart(_:)``).
    public func restart(_ tp: TopicPartition, at offset: KafkaOffset) async throws {
        try await restart([tp: offset])
    }

    /// Restarts assigned partitions, each at its offset. Unlike ``seek(_:to:)`` this also
    /// works for a partition stopped by ``ConsumerEvent/offsetReset(_:offset:reason:)``:
    /// librdkafka stops fetching such a partition and refuses to seek it, so the whole
    /// assignment is set again (the eager protocol allows nothing finer), every other
    /// partition at its current position and with its pause state kept.
    ///
    /// Restart every partition that needs it in one call. librdkafka 2.0.2 aborts the process
    /// when assignments follow each other while the partitions of the one before are still
    /// stopping (an assertion in `rd_kafka_assignment_partition_stopped`), and a partition
    /// left at ``KafkaOffset/committed`` with nothing committed stops again at once
    /// (see ``partitionsAwaitingPosition()``).
    public func restart(_ starts: [TopicPartition: KafkaOffset]) async throws {
        guard !starts.isEmpty else { return }
        try await thread.run { [self] () throws -> Void in
            for tp in starts.keys where !context.assignment.contains(tp) {
                throw KafkaError.client("\(tp) is not assigned to this consumer", operation: "restart")
            }
            let order: (TopicPartition, TopicPartition) -> Bool = { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
            let others = context.assignment.filter { starts[$0] == nil }.sorted(by: order)
            var offsets: [TopicPartition: Int64] = starts.mapValues(\.cValue)
            for other in others {
                // After the last message read since assignment, else where it was assigned.
                offsets[other] = context.readUpTo[other] ?? (context.startOffsets[other]?.cValue ?? Int64(RD_KAFKA_OFFSET_STORED))
            }
            let restarted = starts.keys.sorted(by: order)
            let list = RDTopicPartitionList(others + restarted) { offsets[$0] ?? Int64(RD_KAFKA_OFFSET_STORED) }
            let assignErr = rd_kafka_assign(handle, list.pointer)
            if assignErr != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(assignErr, operation: "restart \(restarted.map(\.description).joined(separator: ","))")
            }
            for (tp, offset) in starts { context.startOffsets[tp] = offset }
            context.forgetReads(of: restarted)
            let stillPaused = context.paused.subtracting(restarted)
            context.paused.subtract(restarted)
            if !stillPaused.isEmpty {
                let pausedList = RDTopicPartitionList(Array(stillPaused))
                let pauseErr = rd_kafka_pause_partitions(handle, pausedList.pointer)
                if pauseErr != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(pauseErr, operation: "re-pause") }
            }
        }
    }

    /// Assigned partitions that started at ``KafkaOffset/committed`` (the listener gave them no
    /// start) and have delivered nothing since. With nothing committed in Kafka, each of them
    /// stops with an ``ConsumerEvent/offsetReset(_:offset:reason:)`` of its own; restart them
    /// together with the first one reported.
    public func partitionsAwaitingPosition() async throws -> Set<TopicPartition> {
        try await thread.run { [context] in
            context.assignment.filter { context.startOffsets[$0] == .committed && context.readUpTo[$0] == nil }
        }
    }

    /// Stops fetching these partitions until ``resume(_:)``.
    public func pause(_ partitions: [TopicPartition]) async throws {
        try await thread.run { [self] () throws -> Void in
            let list = RDTopicPartitionList(partitions)
            let err = rd_kafka_pause_partitions(handle, list.pointer)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "pause") }
            context.paused.formUnion(partitions)
        }
    }

    /// While on, partitions assigned in a rebalance start paused (and stay paused until
    /// ``resume(_:)``): for a consumer that must not take new messages, e.g. while its
    /// database is down. Pausing after the assignment event instead would race the first fetch.
    public func pauseNewAssignments(_ on: Bool) async throws {
        try await thread.run { [context] in context.pausingNewAssignments = on }
    }

    /// The partitions this consumer has paused (and not resumed).
    public func pausedPartitions() async throws -> Set<TopicPartition> {
        try await thread.run { [context] in context.paused }
    }

    /// Resumes partitions this consumer paused. Partitions that are not paused are left
    /// alone: resuming an unpaused partition can rewind it in librdkafka 2.0.2 (#4636).
    public func resume(_ partitions: [TopicPartition]) async throws {
        try await thread.run { [self] () throws -> Void in
            let toResume = partitions.filter { context.paused.contains($0) }
            guard !toResume.isEmpty else { return }
            let list = RDTopicPartitionList(toResume)
            let err = rd_kafka_resume_partitions(handle, list.pointer)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "resume") }
            context.paused.subtract(toResume)
        }
    }

    /// Messages behind the log end per assigned partition, from librdkafka's cached high
    /// watermarks (updated with every fetch, no broker round trip) and what was read since
    /// the partition was assigned: the offset after the last message delivered, or the log
    /// end an end-of-partition event reported. A partition with neither, or with no cached
    /// watermark, is reported with nil (librdkafka's own position and watermark can outlive a
    /// revocation, so they prove nothing about this assignment).
    public func lag() async throws -> [TopicPartition: Int64?] {
        try await thread.run { [self] () throws -> [TopicPartition: Int64?] in
            var result: [TopicPartition: Int64?] = [:]
            for tp in context.assignment {
                var low: Int64 = 0
                var high: Int64 = 0
                let watermarkErr = rd_kafka_get_watermark_offsets(handle, tp.topic, tp.partition, &low, &high)
                guard watermarkErr == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else {
                    result[tp] = .some(nil)
                    continue
                }
                // Only what this assignment read counts: librdkafka's position and cached high
                // watermark can predate it. A partition with neither a message nor an
                // end-of-partition event since it was assigned is unknown.
                let current: Int64? = [context.readUpTo[tp], context.endReached[tp]].compactMap { $0 }.max()
                result[tp] = current.map { max(0, high - $0) }
            }
            return result
        }
    }

    /// The partitions currently assigned to this member.
    public func assignment() async throws -> Set<TopicPartition> {
        try await thread.run { [context] in context.assignment }
    }

    /// How ``close(timeout:)`` ended.
    public enum CloseOutcome: Sendable, Equatable {
        /// The member left the group (partitions revoked through the listener) and the
        /// handle is freed.
        case left
        /// The group did not finish closing in time (no coordinator answered: the brokers
        /// are unreachable). The broker evicts the member after the session timeout; the
        /// handle is freed in the background once librdkafka gives up.
        case gaveUp
    }

    /// Leaves the group (revoking partitions through the listener) and frees the handle.
    ///
    /// With no coordinator reachable librdkafka keeps trying for up to the session timeout
    /// (45 s by default), longer than a replica's shutdown deadline; after `timeout` this
    /// stops waiting and returns ``CloseOutcome/gaveUp``.
    @discardableResult
    public func close(timeout: Duration = .seconds(30)) async -> CloseOutcome {
        let outcome = (try? await thread.run { [self] () -> CloseOutcome in
            guard !self.isClosed else { return .left }
            self.isClosed = true
            return self.closeOnThread(timeout: timeout)
        }) ?? .left
        switch outcome {
        case .left:
            thread.shutdown()
        case .gaveUp:
            logger.warning("left without leaving the Kafka group: no coordinator answered; the broker evicts this member after the session timeout",
                           metadata: ["kafka.close_timeout": "\(timeout)"])
            // rd_kafka_destroy waits for the group to finish closing; it runs on the
            // consumer's own thread, which the caller does not wait for.
            // The job holds `self`, so the context librdkafka's callbacks reach outlives it.
            thread.submit { [self] in rd_kafka_destroy_flags(handle, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE) }
            thread.shutdownWithoutWaiting()
        }
        return outcome
    }

    /// Runs on `thread`: closes through a queue of our own, serving its callbacks (the
    /// revocation) until librdkafka reports the consumer closed or `timeout` passes.
    private func closeOnThread(timeout: Duration) -> CloseOutcome {
        guard let queue = rd_kafka_queue_new(handle) else {
            rd_kafka_destroy_flags(handle, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE)
            return .left
        }
        if let error = rd_kafka_consumer_close_queue(handle, queue) {
            logger.info("consumer close reported an error", metadata: ["kafka.error": "\(KafkaError(consuming: error, operation: "close"))"])
            rd_kafka_queue_destroy(queue)
            rd_kafka_destroy_flags(handle, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE)
            return .left
        }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while rd_kafka_consumer_closed(handle) == 0 && ContinuousClock.now < deadline {
            _ = rd_kafka_queue_poll_callback(queue, 100)
        }
        let closed = rd_kafka_consumer_closed(handle) != 0
        rd_kafka_queue_destroy(queue)
        guard closed else { return .gaveUp }
        rd_kafka_destroy(handle)
        return .left
    }

    /// Frees the handle without leaving the group or committing: what a crash looks like
    /// to the broker (the member is evicted after the session timeout). For tests.
    public func abandon() async {
        _ = try? await thread.run { [self] in
            guard !self.isClosed else { return }
            self.isClosed = true
            rd_kafka_destroy_flags(self.handle, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE)
        }
        thread.shutdown()
    }
}

/// Consumer state reached from C callbacks.
///
/// `@unchecked Sendable`: `pendingEvents`, `assignment` and `paused` are only accessed on the
/// consumer's poll thread (callbacks fire inside `rd_kafka_consumer_poll`/`close`, which only
/// that thread calls); `listener` is Sendable.
final class ConsumerContext: RDKafkaCallbackContext, @unchecked Sendable {
    let listener: ConsumerRebalanceListener
    var pendingEvents: [ConsumerEvent] = []
    var assignment: Set<TopicPartition> = []
    var paused: Set<TopicPartition> = []
    var startOffsets: [TopicPartition: KafkaOffset] = [:]
    /// Per assigned partition, the log end a fetch reached since assignment (an end-of-partition
    /// event); absent until one arrives.
    var endReached: [TopicPartition: Int64] = [:]
    /// Per assigned partition, the offset after the last message delivered since assignment
    /// (librdkafka's own position can outlive a revocation).
    var readUpTo: [TopicPartition: Int64] = [:]
    /// Partitions assigned while this is set are paused inside the rebalance callback, before
    /// any fetch can deliver from them (see ``KafkaConsumer/pauseNewAssignments(_:)``).
    var pausingNewAssignments = false
    /// How long a commit waits for the group coordinator's answer.
    let commitTimeout: Duration
    /// The listener's offsets could not be committed on the last revocation (the broker
    /// refuses commits while a rebalance completes); cleared by a successful ``KafkaConsumer/commit(_:)``.
    var revocationCommitFailed = false

    /// Forgets what was read from `partitions` since their assignment (after a revocation, a
    /// seek or a restart the next read starts a new record); all partitions when nil.
    func forgetReads(of partitions: [TopicPartition]? = nil) {
        guard let partitions else {
            endReached.removeAll()
            readUpTo.removeAll()
            return
        }
        for tp in partitions {
            endReached[tp] = nil
            readUpTo[tp] = nil
        }
    }

    init(logger: Logger, listener: ConsumerRebalanceListener, commitTimeout: Duration) {
        self.listener = listener
        self.commitTimeout = commitTimeout
        super.init(logger: logger)
    }
}

/// Commits `list` and waits at most `timeout` for the coordinator's answer.
///
/// `rd_kafka_commit`'s synchronous form waits up to the session timeout when no coordinator
/// answers (45 s by default), and a replica stopping while the brokers are down would run
/// past its shutdown deadline (6.4 s with a 6 s session against the mock cluster). The answer that
/// comes after the timeout goes to a queue already destroyed, and librdkafka drops it.
/// Returns `_TIMED_OUT` when no answer came in time, else the commit's error and the
/// partitions that failed.
func commitAwaitingAnswer(_ handle: OpaquePointer, _ list: RDTopicPartitionList, timeout: Duration)
    -> (error: rd_kafka_resp_err_t, partitionErrors: [(TopicPartition, rd_kafka_resp_err_t)])
{
    guard let queue = rd_kafka_queue_new(handle) else { return (RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE, []) }
    defer { rd_kafka_queue_destroy(queue) }
    let err = rd_kafka_commit_queue(handle, list.pointer, queue, nil, nil)
    guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { return (err, []) }
    guard let event = rd_kafka_queue_poll(queue, Int32(clamping: timeout.milliseconds)) else {
        return (RD_KAFKA_RESP_ERR__TIMED_OUT, [])
    }
    defer { rd_kafka_event_destroy(event) }
    let eventErr = rd_kafka_event_error(event)
    guard eventErr == RD_KAFKA_RESP_ERR_NO_ERROR else { return (eventErr, []) }
    let failed = RDTopicPartitionList.elements(of: rd_kafka_event_topic_partition_list(event))
        .filter { $0.2 != RD_KAFKA_RESP_ERR_NO_ERROR }
        .map { ($0.0, $0.2) }
    return (RD_KAFKA_RESP_ERR_NO_ERROR, failed)
}

private let consumerRebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = { handle, err, partitions, opaque in
    guard let handle, let opaque else { return }
    let context = Unmanaged<RDKafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
    guard let consumer = context as? ConsumerContext else { return }
    let elements = RDTopicPartitionList.elements(of: partitions).map { $0.0 }
    switch err {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        var offsets: [TopicPartition: KafkaOffset]
        do {
            offsets = try consumer.listener.startingOffsets(for: elements)
        } catch {
            // Kafka's committed offsets trail the application's own, so starting there
            // re-reads at most what is already stored; the application skips it.
            consumer.logger.warning("could not load starting offsets; starting from Kafka's committed offsets", metadata: ["error": "\(error)"])
            offsets = [:]
        }
        var resolved: [TopicPartition: KafkaOffset] = [:]
        if let partitions, let elems = partitions.pointee.elems {
            for index in 0..<Int(partitions.pointee.cnt) {
                let tp = elements[index]
                let offset = offsets[tp] ?? .committed
                elems[index].offset = offset.cValue
                resolved[tp] = offset
            }
        }
        let assignErr = rd_kafka_assign(handle, partitions)
        if assignErr != RD_KAFKA_RESP_ERR_NO_ERROR {
            consumer.pendingEvents.append(.error(KafkaError(assignErr, operation: "assign")))
        }
        consumer.assignment = Set(elements)
        consumer.startOffsets = resolved
        consumer.forgetReads()
        consumer.paused.subtract(elements)
        if consumer.pausingNewAssignments, assignErr == RD_KAFKA_RESP_ERR_NO_ERROR, let partitions, !elements.isEmpty {
            // Nothing has been fetched for them yet, so nothing from them can be delivered.
            let pauseErr = rd_kafka_pause_partitions(handle, partitions)
            if pauseErr == RD_KAFKA_RESP_ERR_NO_ERROR {
                consumer.paused.formUnion(elements)
            } else {
                consumer.pendingEvents.append(.error(KafkaError(pauseErr, operation: "pause on assignment")))
            }
        }
        consumer.pendingEvents.append(.assigned(resolved))
        consumer.logger.info("partitions assigned", metadata: ["kafka.partitions": "\(elements.map(\.description).sorted())"])
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        consumer.listener.partitionsRevoked(elements)
        let commits = consumer.listener.offsetsToCommit(revoking: elements).filter { $0.value >= 0 }
        if !commits.isEmpty {
            // Still the owner here, so the commit counts (after the revocation it would fail).
            let list = RDTopicPartitionList(Array(commits.keys)) { commits[$0] ?? Int64(RD_KAFKA_OFFSET_INVALID) }
            let commitErr = commitAwaitingAnswer(handle, list, timeout: consumer.commitTimeout).error
            if commitErr != RD_KAFKA_RESP_ERR_NO_ERROR && commitErr != RD_KAFKA_RESP_ERR__NO_OFFSET {
                consumer.revocationCommitFailed = true
                consumer.logger.info("commit on revocation failed", metadata: ["kafka.error": "\(KafkaError(commitErr, operation: "commit"))"])
            }
        }
        rd_kafka_assign(handle, nil)
        consumer.assignment.subtract(elements)
        consumer.paused.subtract(elements)
        consumer.forgetReads(of: elements)
        consumer.pendingEvents.append(.revoked(elements))
        consumer.logger.info("partitions revoked", metadata: ["kafka.partitions": "\(elements.map(\.description).sorted())"])
    default:
        consumer.logger.warning("rebalance error", metadata: ["kafka.error": "\(KafkaError(err, operation: "rebalance"))"])
        rd_kafka_assign(handle, nil)
        consumer.assignment.removeAll()
        consumer.paused.removeAll()
        consumer.forgetReads()
        consumer.pendingEvents.append(.error(KafkaError(err, operation: "rebalance")))
    }
}

private let consumerErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = { _, code, reason, opaque in
    guard let opaque else { return }
    let context = Unmanaged<RDKafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
    let err = rd_kafka_resp_err_t(rawValue: code)
    let error = KafkaError(err, operation: "client", message: reason.map { String(cString: $0) })
    // Called from rd_kafka_consumer_poll on the poll thread (errors are forwarded to the consumer queue).
    (context as? ConsumerContext)?.pendingEvents.append(.error(error))
    context.logger.info("kafka client error", metadata: ["kafka.error": "\(error)"])
}
