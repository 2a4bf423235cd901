import AssayCore
import Testing

private let second: Int64 = 1_000_000_000
private let minute: Int64 = 60 * second
private let hour: Int64 = 60 * minute

/// (event time, expected window start) for W = 10 s.
private let windowStartCases: [(Int64, Int64)] = [
    (0, 0),
    (1, 0),
    (10 * second - 1, 0),
    (10 * second, 10 * second),
    (10 * second + 1, 10 * second),
    (-1, -10 * second),  // floor, not truncation towards zero
    (-10 * second, -10 * second),
    (-10 * second - 1, -20 * second),
    (1_770_123_653_476_857_750, 1_770_123_650_000_000_000),
]

@Suite("Event-time windows (invariant 5)")
struct WindowSpecTests {
    let tenSeconds: WindowSpec

    init() throws {
        tenSeconds = try WindowSpec(widthNanos: 10 * second, allowedLatenessNanos: 2 * second)
    }

    @Test func validation() {
        #expect(throws: WindowSpecError.widthTooSmall(widthNanos: second - 1)) {
            try WindowSpec(widthNanos: second - 1, allowedLatenessNanos: 0)
        }
        #expect(throws: WindowSpecError.widthTooSmall(widthNanos: 0)) {
            try WindowSpec(widthNanos: 0, allowedLatenessNanos: 0)
        }
        #expect(throws: WindowSpecError.negativeLateness(allowedLatenessNanos: -1)) {
            try WindowSpec(widthNanos: second, allowedLatenessNanos: -1)
        }
        #expect(throws: Never.self) { try WindowSpec(widthNanos: second, allowedLatenessNanos: 0) }
    }

    @Test(arguments: windowStartCases)
    func windowStart(eventTime: Int64, expected: Int64) {
        #expect(tenSeconds.windowStart(forEventTime: eventTime) == expected)
    }

    @Test func fifteenMinuteWindows() throws {
        let spec = try WindowSpec(widthNanos: WindowSpec.defaultWidthNanos, allowedLatenessNanos: 2 * minute)
        // 2026-02-03T13:00:53.476Z → 13:00:00; end 13:15:00; close 13:17:00.
        let start = spec.windowStart(forEventTime: try #require(TimeParsing.rfc3339Nanoseconds("2026-02-03T13:00:53.476Z")))
        #expect(start == TimeParsing.rfc3339Nanoseconds("2026-02-03T13:00:00Z"))
        #expect(spec.windowEnd(start: start) == TimeParsing.rfc3339Nanoseconds("2026-02-03T13:15:00Z"))
        #expect(spec.closeTime(start: start) == TimeParsing.rfc3339Nanoseconds("2026-02-03T13:17:00Z"))
    }

    @Test func endAndCloseAndSaturation() throws {
        #expect(tenSeconds.windowEnd(start: 20 * second) == 30 * second)
        #expect(tenSeconds.closeTime(start: 20 * second) == 32 * second)
        #expect(tenSeconds.windowEnd(start: .max - 5) == .max)
        #expect(tenSeconds.closeTime(start: .max - 10 * second - 1) == .max)
        // A window that would start before Int64.min saturates rather than trapping.
        #expect(tenSeconds.windowStart(forEventTime: .min) == .min)
        let last = tenSeconds.windowStart(forEventTime: .max)
        #expect(last <= .max && last > .max - 10 * second)
        #expect(last % (10 * second) == 0)
    }

    @Test func closingBoundaryIsInclusive() {
        // Window [0, 10s), lateness 2 s: closable once the watermark reaches 12 s.
        #expect(!tenSeconds.isClosed(start: 0, watermark: 12 * second - 1))
        #expect(tenSeconds.isClosed(start: 0, watermark: 12 * second))
        #expect(tenSeconds.isLate(eventTime: 9 * second, watermark: 12 * second))
        #expect(!tenSeconds.isLate(eventTime: 10 * second, watermark: 12 * second))
        #expect(!tenSeconds.isLate(eventTime: 0, watermark: nil))
    }

    @Test func closableWindows() {
        let open: [Int64] = [30 * second, 0, 10 * second, 20 * second, 10 * second, -10 * second]
        #expect(tenSeconds.closableWindows(openWindowStarts: open, watermark: 22 * second) == [-10 * second, 0, 10 * second])
        #expect(tenSeconds.closableWindows(openWindowStarts: open, watermark: 21 * second) == [-10 * second, 0])
        #expect(tenSeconds.closableWindows(openWindowStarts: open, watermark: nil) == [])
        #expect(tenSeconds.closableWindows(openWindowStarts: open, watermark: .min) == [])
        #expect(tenSeconds.closableWindows(openWindowStarts: open, watermark: .max).count == 5)
    }
}

@Suite("Event-time sanity")
struct EventTimePolicyTests {
    let now: Int64
    let policy = EventTimePolicy()

    init() throws {
        now = try #require(TimeParsing.rfc3339Nanoseconds("2026-02-03T13:00:00Z"))
    }

    @Test func defaults() {
        #expect(policy.maxFutureSkewNanos == hour)
        #expect(policy.minEventTimeNanos == TimeParsing.rfc3339Nanoseconds("2000-01-01T00:00:00Z"))
    }

    @Test func acceptsThePlausible() {
        #expect(policy.check(eventTime: now, now: now) == nil)
        #expect(policy.check(eventTime: now + hour, now: now) == nil)  // inclusive
        #expect(policy.check(eventTime: policy.minEventTimeNanos, now: now) == nil)
        #expect(policy.check(eventTime: now - 24 * hour * 365, now: now) == nil)
    }

    @Test func rejectsFarFuture() throws {
        let rejection = try #require(policy.check(eventTime: now + hour + 1, now: now))
        #expect(rejection == .tooFarInFuture(eventTimeNanos: now + hour + 1, nowNanos: now, maxFutureSkewNanos: hour))
        #expect(rejection.description.contains("3600s"))
        #expect(rejection.description.contains("2026-02-03T14:00:00.000Z"))
        #expect(policy.check(eventTime: .max, now: now) != nil)
    }

    @Test func rejectsAbsurdlyOld() throws {
        #expect(policy.check(eventTime: policy.minEventTimeNanos - 1, now: now)
            == .beforeMinimum(eventTimeNanos: policy.minEventTimeNanos - 1, minimumNanos: policy.minEventTimeNanos))
        #expect(policy.check(eventTime: 0, now: now) != nil)
        #expect(policy.check(eventTime: -5, now: now) != nil)
        #expect(policy.check(eventTime: .min, now: now) != nil)
        let description = try #require(policy.check(eventTime: 0, now: now)).description
        #expect(description == "event time 1970-01-01T00:00:00.000Z is before 2000-01-01T00:00:00Z")
    }

    @Test func nowNearTheEndOfTimeDoesNotOverflow() {
        #expect(policy.check(eventTime: .max, now: .max - 10) == nil)
    }
}

@Suite("Watermark")
struct WatermarkTests {
    let calculator = WatermarkCalculator(idleTimeoutNanos: 30 * second)
    let wall: Int64 = 1_000 * second

    @Test func minimumOverActivePartitions() {
        let partitions = [
            PartitionProgress(maxEventTimeNanos: 50 * second, lastAdvancedWallTimeNanos: wall - second),
            PartitionProgress(maxEventTimeNanos: 42 * second, lastAdvancedWallTimeNanos: wall - 2 * second),
            PartitionProgress(maxEventTimeNanos: 61 * second, lastAdvancedWallTimeNanos: wall),
        ]
        #expect(calculator.watermark(partitions: partitions, now: wall) == 42 * second)
    }

    @Test func idlePartitionStopsHoldingTheWatermarkBack() {
        // Its owner confirmed it caught up just now, 30 s after its event time last grew.
        let stuck = PartitionProgress(maxEventTimeNanos: 10 * second, lastAdvancedWallTimeNanos: wall - 30 * second, lastCaughtUpWallTimeNanos: wall)
        let busy = PartitionProgress(maxEventTimeNanos: 70 * second, lastAdvancedWallTimeNanos: wall)
        // Idle at exactly the timeout.
        #expect(calculator.isIdle(stuck, now: wall))
        #expect(calculator.watermark(partitions: [stuck, busy], now: wall) == 70 * second)
        // Caught up one nanosecond short of the timeout: it still counts.
        var almost = stuck
        almost.lastCaughtUpWallTimeNanos = wall - 1
        #expect(!calculator.isIdle(almost, now: wall))
        #expect(calculator.watermark(partitions: [almost, busy], now: wall) == 10 * second)
    }

    @Test func silenceIsNotIdleness() {
        // Quiet for a long time, but its owner never said it had read everything (a
        // rebalance in progress, or a replica stalled in a slow write): it holds windows.
        let unreported = PartitionProgress(maxEventTimeNanos: 10 * second, lastAdvancedWallTimeNanos: wall - 600 * second)
        let busy = PartitionProgress(maxEventTimeNanos: 70 * second, lastAdvancedWallTimeNanos: wall)
        #expect(!calculator.isIdle(unreported, now: wall))
        #expect(calculator.watermark(partitions: [unreported, busy], now: wall) == 10 * second)
    }

    @Test func aStaleCaughtUpReportDoesNotCount() {
        let freshness = WatermarkCalculator.defaultReportFreshnessNanos
        let reported = PartitionProgress(maxEventTimeNanos: 10 * second, lastAdvancedWallTimeNanos: wall - 100 * second,
                                         lastCaughtUpWallTimeNanos: wall - freshness)
        #expect(calculator.isIdle(reported, now: wall))
        // One nanosecond later the report is too old: its owner may be stalled or gone.
        #expect(!calculator.isIdle(reported, now: wall + 1))
        let strict = WatermarkCalculator(idleTimeoutNanos: 30 * second, reportFreshnessNanos: second)
        #expect(!strict.isIdle(reported, now: wall))
    }

    @Test func allIdleTakesTheMaximum() {
        let partitions = [
            PartitionProgress(maxEventTimeNanos: 10 * second, lastAdvancedWallTimeNanos: 0, lastCaughtUpWallTimeNanos: wall),
            PartitionProgress(maxEventTimeNanos: 90 * second, lastAdvancedWallTimeNanos: 0, lastCaughtUpWallTimeNanos: wall),
            PartitionProgress(maxEventTimeNanos: nil, lastAdvancedWallTimeNanos: 0, lastCaughtUpWallTimeNanos: wall),
        ]
        #expect(calculator.watermark(partitions: partitions, now: wall) == 90 * second)
    }

    @Test func unknownUntilEveryActivePartitionHasSeenATrace() {
        var fresh = PartitionProgress(maxEventTimeNanos: nil, lastAdvancedWallTimeNanos: wall - second)
        let busy = PartitionProgress(maxEventTimeNanos: 70 * second, lastAdvancedWallTimeNanos: wall)
        #expect(calculator.watermark(partitions: [fresh, busy], now: wall) == nil)
        // …until the empty partition has been reported caught up for the timeout.
        fresh.lastCaughtUpWallTimeNanos = wall + 29 * second
        #expect(calculator.watermark(partitions: [fresh, busy], now: wall + 29 * second) == 70 * second)
        #expect(calculator.watermark(partitions: [PartitionProgress](), now: wall) == nil)
        #expect(calculator.watermark(partitions: [PartitionProgress(maxEventTimeNanos: nil, lastAdvancedWallTimeNanos: 0)], now: wall) == nil)
    }

    @Test func negativeAndFarFutureEventTimes() {
        let partitions: [Int32: PartitionProgress] = [
            0: PartitionProgress(maxEventTimeNanos: -5 * second, lastAdvancedWallTimeNanos: wall),
            1: PartitionProgress(maxEventTimeNanos: .max, lastAdvancedWallTimeNanos: wall),
        ]
        #expect(calculator.watermark(partitions: partitions, now: wall) == -5 * second)
        // Wall clocks far apart do not overflow the idle test.
        #expect(calculator.isIdle(PartitionProgress(maxEventTimeNanos: 0, lastAdvancedWallTimeNanos: .min, lastCaughtUpWallTimeNanos: .max), now: .max))
        #expect(!calculator.isIdle(PartitionProgress(maxEventTimeNanos: 0, lastAdvancedWallTimeNanos: .max, lastCaughtUpWallTimeNanos: .min), now: .min))
        #expect(!calculator.isIdle(PartitionProgress(maxEventTimeNanos: 0, lastAdvancedWallTimeNanos: .min, lastCaughtUpWallTimeNanos: .min), now: .max))
    }

    @Test func observingOnlyAdvancesOnANewMaximum() {
        var progress = PartitionProgress(maxEventTimeNanos: nil, lastAdvancedWallTimeNanos: 0)
        progress = progress.observing(eventTime: 20 * second, now: 5)
        #expect(progress == PartitionProgress(maxEventTimeNanos: 20 * second, lastAdvancedWallTimeNanos: 5))
        progress = progress.observing(eventTime: 19 * second, now: 9)
        #expect(progress == PartitionProgress(maxEventTimeNanos: 20 * second, lastAdvancedWallTimeNanos: 5))
        progress = progress.observing(eventTime: 21 * second, now: 11)
        #expect(progress == PartitionProgress(maxEventTimeNanos: 21 * second, lastAdvancedWallTimeNanos: 11))
    }

    @Test func endToEndWithWindows() throws {
        let spec = try WindowSpec(widthNanos: 10 * second, allowedLatenessNanos: 2 * second)
        let partitions = [
            PartitionProgress(maxEventTimeNanos: 25 * second, lastAdvancedWallTimeNanos: wall),
            PartitionProgress(maxEventTimeNanos: 12 * second, lastAdvancedWallTimeNanos: wall),
        ]
        let watermark = calculator.watermark(partitions: partitions, now: wall)
        #expect(spec.closableWindows(openWindowStarts: [0, 10 * second, 20 * second], watermark: watermark) == [0])
    }
}
