// Event-time windows, the event-time sanity rule and the watermark (DESIGN §2 invariant 5).
// All times are Int64 nanoseconds since the Unix epoch.

/// Why a ``WindowSpec`` cannot be built.
public enum WindowSpecError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The width is below ``WindowSpec/minimumWidthNanos`` (1 s).
    case widthTooSmall(widthNanos: Int64)
    /// The allowed lateness is negative.
    case negativeLateness(allowedLatenessNanos: Int64)

    public var description: String {
        switch self {
        case .widthTooSmall(let width):
            return "window width must be at least 1s (got \(width) ns)"
        case .negativeLateness(let lateness):
            return "allowed lateness must not be negative (got \(lateness) ns)"
        }
    }
}

/// Tumbling event-time windows of a fixed width, plus how long a window waits for late data.
///
/// A window covers `[start, start + width)`, where `start = floor(t / width) · width` for event
/// time `t` (floor, so negative times land in the window that contains them). The window may be
/// closed once the watermark reaches ``closeTime(start:)`` = end + allowed lateness.
///
/// Arithmetic saturates at the ends of `Int64`: a window that would start before `Int64.min`
/// starts at `Int64.min`, and ends/close times past `Int64.max` are `Int64.max`. Such times are
/// absurd as event times (see ``EventTimePolicy``); saturation only keeps the functions total.
public struct WindowSpec: Sendable, Equatable {
    /// The smallest allowed width: one second.
    public static let minimumWidthNanos: Int64 = 1_000_000_000
    /// The default width, 15 minutes.
    public static let defaultWidthNanos: Int64 = 15 * 60 * 1_000_000_000

    /// Window width W in nanoseconds (≥ 1 s).
    public let widthNanos: Int64
    /// How long after a window's end late data is still awaited before it closes (≥ 0).
    public let allowedLatenessNanos: Int64

    /// A validated window spec.
    public init(widthNanos: Int64, allowedLatenessNanos: Int64) throws(WindowSpecError) {
        guard widthNanos >= Self.minimumWidthNanos else { throw .widthTooSmall(widthNanos: widthNanos) }
        guard allowedLatenessNanos >= 0 else { throw .negativeLateness(allowedLatenessNanos: allowedLatenessNanos) }
        self.widthNanos = widthNanos
        self.allowedLatenessNanos = allowedLatenessNanos
    }

    /// For constants whose validity is evident in the source; callers guarantee the ranges.
    init(uncheckedWidthNanos widthNanos: Int64, allowedLatenessNanos: Int64) {
        self.widthNanos = widthNanos
        self.allowedLatenessNanos = allowedLatenessNanos
    }

    /// The start of the window containing `eventTime`: `floor(eventTime / W) · W`.
    public func windowStart(forEventTime eventTime: Int64) -> Int64 {
        let (quotient, _) = TimeFormatting.floorDivide(eventTime, widthNanos)
        let (start, overflow) = quotient.multipliedReportingOverflow(by: widthNanos)
        return overflow ? Int64.min : start
    }

    /// The (exclusive) end of the window starting at `start`: `start + W`.
    public func windowEnd(start: Int64) -> Int64 {
        let (end, overflow) = start.addingReportingOverflow(widthNanos)
        return overflow ? Int64.max : end
    }

    /// When the window starting at `start` may close: its end plus the allowed lateness.
    public func closeTime(start: Int64) -> Int64 {
        let (close, overflow) = windowEnd(start: start).addingReportingOverflow(allowedLatenessNanos)
        return overflow ? Int64.max : close
    }

    /// Whether the window starting at `start` is closed at `watermark`: the watermark has reached
    /// its close time (`watermark ≥ end + lateness`).
    ///
    /// "Reached", not "strictly passed": the watermark is the event time of a trace actually seen
    /// on every partition, so once it equals the close time, anything still to come for the
    /// window is more than the allowed lateness behind.
    public func isClosed(start: Int64, watermark: Int64) -> Bool {
        watermark >= closeTime(start: start)
    }

    /// Whether a trace with `eventTime` arriving when the watermark is `watermark` is late: its
    /// window is already closed. (A late trace is still stored and scored, and flagged.)
    public func isLate(eventTime: Int64, watermark: Int64?) -> Bool {
        guard let watermark else { return false }
        return isClosed(start: windowStart(forEventTime: eventTime), watermark: watermark)
    }

    /// The windows among `openWindowStarts` that may close at `watermark`, ascending and without
    /// duplicates. With no watermark yet (`nil`), none may.
    public func closableWindows<Starts: Sequence>(openWindowStarts: Starts, watermark: Int64?) -> [Int64]
    where Starts.Element == Int64 {
        guard let watermark else { return [] }
        return Set(openWindowStarts.filter { isClosed(start: $0, watermark: watermark) }).sorted()
    }
}

/// Why an event time is not believable; the ingest dead-letters such traces with this reason.
public enum EventTimeRejection: Sendable, Equatable, CustomStringConvertible {
    /// The event time is more than the allowed skew ahead of the wall clock.
    case tooFarInFuture(eventTimeNanos: Int64, nowNanos: Int64, maxFutureSkewNanos: Int64)
    /// The event time is before the policy's minimum (by default 2000-01-01).
    case beforeMinimum(eventTimeNanos: Int64, minimumNanos: Int64)

    public var description: String {
        switch self {
        case .tooFarInFuture(let eventTime, let now, let skew):
            return "event time \(TimeFormatting.rfc3339(nanos: eventTime, fraction: .milliseconds)) is more than "
                + "\(skew / 1_000_000_000)s after the current time \(TimeFormatting.rfc3339(nanos: now, fraction: .milliseconds))"
        case .beforeMinimum(let eventTime, let minimum):
            return "event time \(TimeFormatting.rfc3339(nanos: eventTime, fraction: .milliseconds)) is before "
                + "\(TimeFormatting.rfc3339(nanos: minimum, fraction: .shortestExact))"
        }
    }
}

/// The sanity rule for event times: a trace may be at most ``maxFutureSkewNanos`` ahead of the
/// wall clock, and not before ``minEventTimeNanos``.
///
/// Without it one far-future timestamp would drag the watermark ahead and close every open
/// window early; an absurdly old one would open a window nobody will ever close by data.
public struct EventTimePolicy: Sendable, Equatable {
    /// One hour: the default allowed clock skew into the future.
    public static let defaultMaxFutureSkewNanos: Int64 = 3_600 * 1_000_000_000
    /// 2000-01-01T00:00:00Z: the default earliest believable event time.
    public static let defaultMinEventTimeNanos: Int64 = 946_684_800 * 1_000_000_000

    /// How far ahead of `now` an event time may be (inclusive), in nanoseconds.
    public var maxFutureSkewNanos: Int64
    /// The earliest accepted event time (inclusive).
    public var minEventTimeNanos: Int64

    public init(
        maxFutureSkewNanos: Int64 = EventTimePolicy.defaultMaxFutureSkewNanos,
        minEventTimeNanos: Int64 = EventTimePolicy.defaultMinEventTimeNanos
    ) {
        self.maxFutureSkewNanos = maxFutureSkewNanos
        self.minEventTimeNanos = minEventTimeNanos
    }

    /// Nil when `eventTime` is acceptable at wall-clock time `now`, else why not.
    ///
    /// Accepted: `minEventTimeNanos ≤ eventTime ≤ now + maxFutureSkewNanos` (the bound saturates
    /// at `Int64.max`).
    public func check(eventTime: Int64, now: Int64) -> EventTimeRejection? {
        if eventTime < minEventTimeNanos {
            return .beforeMinimum(eventTimeNanos: eventTime, minimumNanos: minEventTimeNanos)
        }
        let (limit, overflow) = now.addingReportingOverflow(max(0, maxFutureSkewNanos))
        if !overflow, eventTime > limit {
            return .tooFarInFuture(eventTimeNanos: eventTime, nowNanos: now, maxFutureSkewNanos: maxFutureSkewNanos)
        }
        return nil
    }
}

/// What the watermark needs to know about one partition.
public struct PartitionProgress: Sendable, Equatable {
    /// The largest event time seen on the partition, or nil before its first trace.
    public var maxEventTimeNanos: Int64?
    /// Wall-clock time when ``maxEventTimeNanos`` last grew, or when the partition's owner
    /// last saw unread messages on it (or when it was assigned, before its first trace).
    public var lastAdvancedWallTimeNanos: Int64
    /// Wall-clock time when the partition's owner last confirmed it had read everything, or
    /// nil while it is behind or nobody has said.
    public var lastCaughtUpWallTimeNanos: Int64?

    public init(maxEventTimeNanos: Int64?, lastAdvancedWallTimeNanos: Int64, lastCaughtUpWallTimeNanos: Int64? = nil) {
        self.maxEventTimeNanos = maxEventTimeNanos
        self.lastAdvancedWallTimeNanos = lastAdvancedWallTimeNanos
        self.lastCaughtUpWallTimeNanos = lastCaughtUpWallTimeNanos
    }

    /// This progress after seeing a trace with `eventTime` at wall-clock time `now`: the maximum
    /// grows (and the advance time moves to `now`) only when `eventTime` exceeds it.
    public func observing(eventTime: Int64, now: Int64) -> PartitionProgress {
        if let current = maxEventTimeNanos, eventTime <= current { return self }
        return PartitionProgress(maxEventTimeNanos: eventTime, lastAdvancedWallTimeNanos: now, lastCaughtUpWallTimeNanos: lastCaughtUpWallTimeNanos)
    }
}

/// Computes the event-time watermark over partitions (pure; the caller keeps the state).
///
/// The watermark is the minimum, over partitions that are not idle, of the largest event time
/// seen on each. Idleness is never inferred from silence: a partition is idle only when its
/// owner confirmed it caught up (everything read) at least ``idleTimeoutNanos`` after its
/// event time last advanced (or it last had a backlog), and that confirmation is at most
/// ``reportFreshnessNanos`` old. Silence (a rebalance in progress, a replica stalled in a slow
/// write or dead) keeps a partition active, so windows wait instead of closing around traces
/// nobody has read. Idle partitions are ignored so a quiet partition cannot hold windows open
/// forever. When every partition is idle the watermark is the maximum over all of them. A
/// non-idle partition that has seen no trace yet holds the watermark back (nil) until it
/// either sees one or goes idle.
public struct WatermarkCalculator: Sendable, Equatable {
    /// How long a caught-up partition's event time must stand still before it stops counting.
    public var idleTimeoutNanos: Int64
    /// How old the owner's last caught-up confirmation may be (owners confirm about once a second).
    public var reportFreshnessNanos: Int64

    public static let defaultReportFreshnessNanos: Int64 = 10_000_000_000

    public init(idleTimeoutNanos: Int64, reportFreshnessNanos: Int64 = Self.defaultReportFreshnessNanos) {
        self.idleTimeoutNanos = idleTimeoutNanos
        self.reportFreshnessNanos = reportFreshnessNanos
    }

    /// Whether `partition` is idle at wall-clock time `now`.
    public func isIdle(_ partition: PartitionProgress, now: Int64) -> Bool {
        guard let caughtUp = partition.lastCaughtUpWallTimeNanos else { return false }
        let (quiet, quietOverflow) = caughtUp.subtractingReportingOverflow(partition.lastAdvancedWallTimeNanos)
        let quietLongEnough = quietOverflow ? caughtUp > partition.lastAdvancedWallTimeNanos : quiet >= idleTimeoutNanos
        let (age, ageOverflow) = now.subtractingReportingOverflow(caughtUp)
        let fresh = ageOverflow ? now < caughtUp : age <= reportFreshnessNanos
        return quietLongEnough && fresh
    }

    /// The watermark at wall-clock time `now`, or nil when it is not known yet (no partitions,
    /// no event seen, or an active partition that has seen nothing).
    public func watermark<Partitions: Collection>(partitions: Partitions, now: Int64) -> Int64?
    where Partitions.Element == PartitionProgress {
        let active = partitions.filter { !isIdle($0, now: now) }
        if active.isEmpty {
            return partitions.compactMap(\.maxEventTimeNanos).max()
        }
        var minimum: Int64?
        for partition in active {
            guard let seen = partition.maxEventTimeNanos else { return nil }
            minimum = min(minimum ?? seen, seen)
        }
        return minimum
    }

    /// The watermark windows close by: ``watermark(partitions:now:)``, except that when every
    /// partition is idle (nothing is arriving, so a trace older than `now - idleTimeout` that
    /// shows up later is late anyway) it follows the clock less the idle timeout; never ahead
    /// of `now`.
    public func closingWatermark(partitions: [PartitionProgress], now: Int64) -> Int64? {
        guard !partitions.isEmpty, var result = watermark(partitions: partitions, now: now) else { return nil }
        if partitions.allSatisfy({ isIdle($0, now: now) }) {
            result = max(result, now &- idleTimeoutNanos)
        }
        return min(result, now)
    }

    /// ``watermark(partitions:now:)`` for partitions keyed by id (e.g. Kafka partition number).
    public func watermark<Key>(partitions: [Key: PartitionProgress], now: Int64) -> Int64? {
        watermark(partitions: Array(partitions.values), now: now)
    }
}
