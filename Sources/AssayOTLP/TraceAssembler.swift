import AssayCore

/// Merges the ``TraceFragment``s of OTLP messages into whole traces, in memory.
///
/// Pure and deterministic (a value type; the caller supplies the clock): for tests, and for an
/// ingest that assembles the fragments of one batch before storing them. Across batches and
/// replicas, the database-backed ingest does the same merge keyed by trace id and span id and
/// builds traces with ``OTLPTraceBuilder``.
///
/// - **Merging**: fragments are grouped by ``TraceFragment/traceIDHex``; a span id seen before in
///   the same trace is ignored (the first copy wins), so a redelivered message changes nothing.
/// - **Completeness**: a trace is complete when exactly one of its spans has no parent and that
///   root has ended (``TraceCompleteness``). Because children may arrive after their root, a
///   caller that streams should wait a little after completeness before taking a trace (see
///   ``takeComplete(lastUpdatedBefore:)``); a caller that has all messages takes them with
///   ``takeComplete()``.
/// - **Timeouts**: a trace whose root never arrives (or never ends) is completed by
///   ``expire(lastUpdatedBefore:)`` or ``forceComplete(traceIDHex:)`` and flagged incomplete
///   (metadata `assay.incomplete = "true"`, state `STATE_UNSPECIFIED`; see ``OTLPTraceBuilder``).
/// - **Limits**: ``add(_:receivedAtNanos:)`` rejects, as a whole, a message whose fragments would
///   take a trace over ``OTLPLimits/maxSpansPerTrace`` distinct spans (`limit_exceeded`); nothing
///   of it is merged, so the caller can dead-letter the message. ``maxPendingTraces`` bounds how
///   many traces are held.
/// - The resource attributes of a trace are those of the fragment that brought its root (else
///   of the fragment with the earliest span), so the result does not depend on arrival order.
///
/// A trace taken out of the assembler is forgotten: spans of it that arrive later start a new,
/// rootless entry. Marking a scored trace as updated is the database-backed ingest's job.
public struct TraceAssembler: Sendable {
    /// What one ``add(_:receivedAtNanos:)`` did.
    public struct AddResult: Sendable, Equatable {
        /// Spans added.
        public var newSpans: Int
        /// Spans ignored because their span id was already in the trace.
        public var duplicateSpans: Int
        /// The traces the fragments belong to, in first-appearance order.
        public var traceIDs: [String]
    }

    /// One trace being assembled.
    struct Pending: Sendable {
        var spans: [Span] = []
        var spanIDs: Set<String> = []
        /// The resource of the fragment that brought the root, else of the earliest span.
        var resource: [String: JSONValue] = [:]
        var resourceRank: (isRoot: Bool, start: Int64, spanID: String)?
        var firstSeenNanos: Int64
        var lastUpdatedNanos: Int64
        var sequence: Int
    }

    /// The limits checked on ``add(_:receivedAtNanos:)`` (``OTLPLimits/maxSpansPerTrace``).
    public let limits: OTLPLimits
    /// The most traces held at once; a message that would open more is rejected
    /// (`limit_exceeded`). Callers should expire or take traces before this is reached.
    public let maxPendingTraces: Int

    private var pending: [String: Pending] = [:]
    private var nextSequence = 0

    /// An empty assembler.
    public init(limits: OTLPLimits = OTLPLimits(), maxPendingTraces: Int = 100_000) {
        self.limits = limits
        self.maxPendingTraces = maxPendingTraces
    }

    /// The ids (32 hex) of the traces being assembled, in first-seen order.
    public var pendingTraceIDs: [String] {
        pending.sorted { $0.value.sequence < $1.value.sequence }.map(\.key)
    }

    /// How complete trace `traceIDHex` is, or nil when the assembler does not hold it.
    public func completeness(of traceIDHex: String) -> TraceCompleteness? {
        pending[traceIDHex].map { OTLPTraceBuilder.completeness(of: $0.spans) }
    }

    /// The distinct spans held for trace `traceIDHex` (0 when unknown).
    public func spanCount(of traceIDHex: String) -> Int {
        pending[traceIDHex]?.spans.count ?? 0
    }

    /// Merges the fragments of one message. All or nothing: when a limit would be broken, nothing
    /// is merged and the rejection says which.
    ///
    /// - Parameter receivedAtNanos: the caller's clock (any monotonic nanosecond count), used by
    ///   ``expire(lastUpdatedBefore:)`` and ``takeComplete(lastUpdatedBefore:)``.
    @discardableResult
    public mutating func add(_ fragments: [TraceFragment], receivedAtNanos: Int64 = 0) -> Result<AddResult, TraceRejection> {
        // Check first: count the distinct new spans per trace.
        var newIDs: [String: Set<String>] = [:]
        var order: [String] = []
        for fragment in fragments {
            if newIDs[fragment.traceIDHex] == nil {
                newIDs[fragment.traceIDHex] = []
                order.append(fragment.traceIDHex)
            }
            let known = pending[fragment.traceIDHex]?.spanIDs ?? []
            for span in fragment.spans where !known.contains(span.spanID) {
                newIDs[fragment.traceIDHex, default: []].insert(span.spanID)
            }
        }
        for traceID in order {
            let total = (pending[traceID]?.spans.count ?? 0) + (newIDs[traceID]?.count ?? 0)
            if total > limits.maxSpansPerTrace {
                return .failure(TraceRejection(
                    reason: .limitExceeded,
                    detail: "trace \(traceID) would have \(total) spans, over the limit of \(limits.maxSpansPerTrace) (maxSpansPerTrace)"))
            }
        }
        let opened = order.filter { pending[$0] == nil }.count
        if opened > 0, pending.count + opened > maxPendingTraces {
            return .failure(TraceRejection(
                reason: .limitExceeded,
                detail: "\(pending.count + opened) traces would be pending, over the limit of \(maxPendingTraces) (maxPendingTraces)"))
        }

        var result = AddResult(newSpans: 0, duplicateSpans: 0, traceIDs: order)
        for fragment in fragments {
            var entry = pending[fragment.traceIDHex] ?? {
                defer { nextSequence += 1 }
                return Pending(firstSeenNanos: receivedAtNanos, lastUpdatedNanos: receivedAtNanos, sequence: nextSequence)
            }()
            for span in fragment.spans {
                guard entry.spanIDs.insert(span.spanID).inserted else {
                    result.duplicateSpans += 1
                    continue
                }
                entry.spans.append(span)
                result.newSpans += 1
                let rank = (isRoot: span.parentSpanID == nil, start: span.startTimeNanos, spanID: span.spanID)
                if Self.ranksHigher(rank, than: entry.resourceRank) {
                    entry.resourceRank = rank
                    entry.resource = fragment.resourceAttributes
                }
            }
            entry.lastUpdatedNanos = max(entry.lastUpdatedNanos, receivedAtNanos)
            pending[fragment.traceIDHex] = entry
        }
        return .success(result)
    }

    /// Takes every complete trace, in first-seen order (for a caller that has all the messages).
    public mutating func takeComplete() -> [Trace] {
        take { OTLPTraceBuilder.completeness(of: $0.spans).isComplete }
    }

    /// Takes the complete traces not updated since `cutoff` (the caller's clock): a trace is
    /// taken only once no span of it has arrived for a while, so late children are included.
    public mutating func takeComplete(lastUpdatedBefore cutoff: Int64) -> [Trace] {
        take { $0.lastUpdatedNanos < cutoff && OTLPTraceBuilder.completeness(of: $0.spans).isComplete }
    }

    /// Completes every trace not updated since `cutoff`: complete ones normally, the others
    /// flagged incomplete (root missing after the timeout).
    public mutating func expire(lastUpdatedBefore cutoff: Int64) -> [Trace] {
        take { $0.lastUpdatedNanos < cutoff }
    }

    /// Completes trace `traceIDHex` now, flagged incomplete unless it is complete; nil when the
    /// assembler does not hold it.
    public mutating func forceComplete(traceIDHex: String) -> Trace? {
        guard let entry = pending.removeValue(forKey: traceIDHex) else { return nil }
        return OTLPTraceBuilder.build(traceIDHex: traceIDHex, spans: entry.spans, resourceAttributes: entry.resource)
    }

    /// Completes every trace held (complete ones normally, the others flagged incomplete), in
    /// first-seen order, and empties the assembler.
    public mutating func takeAll() -> [Trace] {
        take { _ in true }
    }

    private mutating func take(where condition: (Pending) -> Bool) -> [Trace] {
        let chosen = pending.filter { condition($0.value) }.sorted { $0.value.sequence < $1.value.sequence }
        var traces: [Trace] = []
        traces.reserveCapacity(chosen.count)
        for (traceID, entry) in chosen {
            pending.removeValue(forKey: traceID)
            traces.append(OTLPTraceBuilder.build(traceIDHex: traceID, spans: entry.spans, resourceAttributes: entry.resource))
        }
        return traces
    }

    /// Roots first; then the earliest start; then the smallest span id.
    private static func ranksHigher(
        _ candidate: (isRoot: Bool, start: Int64, spanID: String),
        than current: (isRoot: Bool, start: Int64, spanID: String)?
    ) -> Bool {
        guard let current else { return true }
        if candidate.isRoot != current.isRoot { return candidate.isRoot }
        return (candidate.start, candidate.spanID) < (current.start, current.spanID)
    }
}
