import CRdKafka
import DedicatedThreads
import Foundation
import Logging

/// A message to publish.
public struct ProducerMessage: Sendable {
    public var topic: String
    /// nil lets the partitioner choose (murmur2 of the key, like the Java client).
    public var partition: Int32?
    public var key: [UInt8]?
    /// nil publishes a tombstone (null value); an empty array publishes an empty value.
    public var value: [UInt8]?
    public var headers: [(name: String, value: [UInt8])]

    public init(topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?, headers: [(name: String, value: [UInt8])] = []) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// Where the broker stored a message.
public struct DeliveryReport: Sendable, Equatable {
    public var topicPartition: TopicPartition
    public var offset: Int64
}

/// An idempotent producer. Delivery reports are served by a poll thread of its own.
///
/// `@unchecked Sendable`: librdkafka's produce and flush calls are thread-safe on one
/// handle; the handle is destroyed only in ``close(timeout:)`` after both threads stopped
/// polling; `isStopping` is guarded by `lock`.
public final class KafkaProducer: @unchecked Sendable {
    private let handle: OpaquePointer
    private let context: RDKafkaCallbackContext
    private let pollThread: DedicatedThread
    private let flushThread: DedicatedThread
    private let lock = NSLock()
    private var isStopping = false
    private var isClosed = false

    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaError) {
        let context = RDKafkaCallbackContext(logger: logger)
        let conf = try makeRDKafkaConf(configuration.properties, operation: "producer configuration")
        installCommonCallbacks(conf: conf, context: context)
        rd_kafka_conf_set_dr_msg_cb(conf, producerDeliveryCallback)
        self.handle = try makeRDKafkaHandle(type: RD_KAFKA_PRODUCER, conf: conf, operation: "create producer")
        self.context = context
        self.pollThread = DedicatedThread(name: "kafka-producer-poll")
        self.flushThread = DedicatedThread(name: "kafka-producer-flush")
        pollThread.submit { [self] in self.pollLoop() }
    }

    deinit {
        stopPolling()
        pollThread.shutdown()
        flushThread.shutdown()
        if !isClosed { rd_kafka_destroy(handle) }
    }

    private func pollLoop() {
        while !stopping {
            rd_kafka_poll(handle, 50)
        }
    }

    private var stopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return isStopping
    }

    private func stopPolling() {
        lock.lock()
        isStopping = true
        lock.unlock()
    }

    /// Queues a message; `onDelivery` runs on the poll thread once the broker has it (or
    /// delivery failed for good). Throws at once if it cannot be queued (e.g. queue full:
    /// `isRetriable` is set).
    public func enqueue(_ message: ProducerMessage, onDelivery: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void) throws(KafkaError) {
        let box = Unmanaged.passRetained(DeliveryBox(onDelivery)).toOpaque()
        if let error = produce(message, opaque: box) {
            Unmanaged<DeliveryBox>.fromOpaque(box).release()
            throw error
        }
    }

    /// Like ``enqueue(_:onDelivery:)``, but when the local queue is full it waits for
    /// room (the poll thread drains it) instead of failing.
    public func enqueueWaitingForRoom(_ message: ProducerMessage, onDelivery: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void) async throws {
        while true {
            do {
                try enqueue(message, onDelivery: onDelivery)
                return
            } catch {
                guard error.code == RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue else { throw error }
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Publishes messages and blocks the calling thread until every one is acknowledged (or
    /// any fails, or `timeout` passes). For callers on a thread of their own, e.g. inside a
    /// PostgreSQL transaction on a pool thread; never call it from async code.
    public func sendAndWait(_ messages: [ProducerMessage], timeout: Duration) throws -> [DeliveryReport] {
        guard !messages.isEmpty else { return [] }
        let collector = DeliveryCollector(count: messages.count)
        for (index, message) in messages.enumerated() {
            while true {
                do {
                    try enqueue(message) { collector.record(index, $0) }
                    break
                } catch {
                    guard error.code == RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue else {
                        collector.abandon(from: index, error)
                        throw error
                    }
                    Thread.sleep(forTimeInterval: 0.005)  // our own thread: wait for the queue to drain
                }
            }
        }
        return try collector.wait(timeout: timeout)
    }

    /// Publishes a message and waits for its delivery report.
    public func send(_ message: ProducerMessage) async throws -> DeliveryReport {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<DeliveryReport, Error>) in
            do {
                try enqueue(message) { result in continuation.resume(with: result.mapError { $0 as Error }) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    private func produce(_ message: ProducerMessage, opaque: UnsafeMutableRawPointer) -> KafkaError? {
        var owned: [UnsafeMutablePointer<CChar>] = []
        defer { owned.forEach { free($0) } }
        func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
            let pointer = strdup(text)!
            owned.append(pointer)
            return pointer
        }
        var vus: [rd_kafka_vu_t] = []
        var topic = rd_kafka_vu_t()
        topic.vtype = RD_KAFKA_VTYPE_TOPIC
        topic.u.cstr = UnsafePointer(cString(message.topic))
        vus.append(topic)
        if let partition = message.partition {
            var vu = rd_kafka_vu_t()
            vu.vtype = RD_KAFKA_VTYPE_PARTITION
            vu.u.i32 = partition
            vus.append(vu)
        }
        var flags = rd_kafka_vu_t()
        flags.vtype = RD_KAFKA_VTYPE_MSGFLAGS
        flags.u.i = RD_KAFKA_MSG_F_COPY
        vus.append(flags)
        var opaqueVU = rd_kafka_vu_t()
        opaqueVU.vtype = RD_KAFKA_VTYPE_OPAQUE
        opaqueVU.u.ptr = opaque
        vus.append(opaqueVU)

        // Buffers must stay valid until rd_kafka_produceva returns (it copies with F_COPY).
        return withOptionalBytes(message.value) { valuePointer, valueCount in
            withOptionalBytes(message.key) { keyPointer, keyCount in
                var all = vus
                var value = rd_kafka_vu_t()
                value.vtype = RD_KAFKA_VTYPE_VALUE
                value.u.mem.ptr = valuePointer
                value.u.mem.size = valueCount
                all.append(value)
                if message.key != nil {
                    var key = rd_kafka_vu_t()
                    key.vtype = RD_KAFKA_VTYPE_KEY
                    key.u.mem.ptr = keyPointer
                    key.u.mem.size = keyCount
                    all.append(key)
                }
                var headerBuffers: [UnsafeMutableRawPointer] = []
                defer { headerBuffers.forEach { free($0) } }
                for header in message.headers {
                    var vu = rd_kafka_vu_t()
                    vu.vtype = RD_KAFKA_VTYPE_HEADER
                    vu.u.header.name = UnsafePointer(cString(header.name))
                    let buffer = malloc(max(header.value.count, 1))!
                    header.value.withUnsafeBytes { bytes in
                        if let base = bytes.baseAddress { buffer.copyMemory(from: base, byteCount: bytes.count) }
                    }
                    headerBuffers.append(buffer)
                    vu.u.header.val = UnsafeRawPointer(buffer)
                    vu.u.header.size = header.value.count
                    all.append(vu)
                }
                guard let error = rd_kafka_produceva(handle, all, all.count) else { return nil }
                return KafkaError(consuming: error, operation: "produce to \(message.topic)")
            }
        }
    }

    /// Waits until every queued message is delivered or failed.
    public func flush(timeout: Duration) async throws {
        try await flushThread.run { [self] () throws -> Void in
            let err = rd_kafka_flush(handle, Int32(clamping: timeout.milliseconds))
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "flush") }
        }
    }

    /// Messages queued or in flight.
    public var outstandingMessages: Int { Int(rd_kafka_outq_len(handle)) }

    /// Flushes for up to `timeout`, then frees the handle. Undelivered messages fail.
    public func close(timeout: Duration = .seconds(10)) async {
        try? await flush(timeout: timeout)
        // Joining the poll thread (it polls in 50 ms steps) and destroying the handle (it
        // waits for librdkafka's own threads) block: they run on the flush thread, off Swift's
        // cooperative pool. Then only the idle flush thread is joined here.
        _ = try? await flushThread.run { [self] in
            stopPolling()
            pollThread.shutdown()
            if markClosed() { rd_kafka_destroy(handle) }
        }
        flushThread.shutdown()
    }

    /// Returns true the first time only.
    private func markClosed() -> Bool {
        lock.withLock {
            defer { isClosed = true }
            return !isClosed
        }
    }
}

/// Calls `body` with a pointer to the bytes (nil for nil, a valid empty pointer for []).
private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeMutableRawPointer?, Int) -> R) -> R {
    guard let bytes else { return body(nil, 0) }
    if bytes.isEmpty {
        var placeholder: UInt8 = 0
        return withUnsafeMutableBytes(of: &placeholder) { body($0.baseAddress, 0) }
    }
    var copy = bytes
    return copy.withUnsafeMutableBytes { body($0.baseAddress, $0.count) }
}

/// The completion for one message, retained through librdkafka's per-message opaque.
private final class DeliveryBox {
    let completion: @Sendable (Result<DeliveryReport, KafkaError>) -> Void
    init(_ completion: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void) { self.completion = completion }
}

private let producerDeliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = { _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    let box = Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue()
    let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
    if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        box.completion(.success(DeliveryReport(topicPartition: TopicPartition(topic: topic, partition: message.pointee.partition), offset: message.pointee.offset)))
    } else {
        box.completion(.failure(KafkaError(message.pointee.err, operation: "deliver to \(topic)")))
    }
}

/// Gathers the delivery reports of one `sendAndWait` call.
private final class DeliveryCollector: @unchecked Sendable {
    // @unchecked: all state is guarded by `lock`; `done` is a semaphore.
    private let lock = NSLock()
    private let done = DispatchSemaphore(value: 0)
    private var reports: [DeliveryReport?]
    private var remaining: Int
    private var firstError: KafkaError?

    init(count: Int) {
        reports = Array(repeating: nil, count: count)
        remaining = count
    }

    func record(_ index: Int, _ result: Result<DeliveryReport, KafkaError>) {
        lock.lock()
        switch result {
        case .success(let report): reports[index] = report
        case .failure(let error): if firstError == nil { firstError = error }
        }
        remaining -= 1
        let finished = remaining == 0
        lock.unlock()
        if finished { done.signal() }
    }

    /// Messages from `index` on were never queued.
    func abandon(from index: Int, _ error: KafkaError) {
        lock.lock()
        if firstError == nil { firstError = error }
        remaining -= reports.count - index
        let finished = remaining <= 0
        lock.unlock()
        if finished { done.signal() }
    }

    func wait(timeout: Duration) throws -> [DeliveryReport] {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        guard done.wait(timeout: .now() + seconds) == .success else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, name: "_TIMED_OUT", message: "delivery reports did not arrive in time", operation: "send", isRetriable: true)
        }
        lock.lock()
        defer { lock.unlock() }
        if let firstError { throw firstError }
        return reports.compactMap { $0 }
    }
}
