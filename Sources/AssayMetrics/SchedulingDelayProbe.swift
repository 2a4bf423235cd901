/// Measures how long ready work waits for a thread of the Swift concurrency pool: it sleeps
/// for ``interval`` again and again and records, as `assay_task_scheduling_delay_seconds`, how
/// much later than asked it woke.
///
/// Every task of a replica shares that pool (as many threads as the machine has cores): ingest's
/// decoding, scoring, and every timer (a judge attempt's deadline, a scoring lease's renewal). When CPU-bound work keeps the threads busy, a timer that has fired waits
/// for one, and so does everything else that became ready. The test suite showed how far this
/// can go (a 250 ms judge deadline fired after 32 s, with 604 tests sharing two threads); this
/// probe shows it in production.
public struct SchedulingDelayProbe: Sendable {
    public let interval: Duration
    private let metrics: AssayMetrics
    private let sleep: @Sendable (Duration) async throws -> Void
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(interval: Duration = .milliseconds(500), metrics: AssayMetrics = .global) {
        self.init(interval: interval, metrics: metrics, sleep: { try await Task.sleep(for: $0) }, now: { .now })
    }

    /// With a sleep and a clock of the caller's (tests).
    init(
        interval: Duration,
        metrics: AssayMetrics,
        sleep: @escaping @Sendable (Duration) async throws -> Void,
        now: @escaping @Sendable () -> ContinuousClock.Instant
    ) {
        self.interval = interval
        self.metrics = metrics
        self.sleep = sleep
        self.now = now
    }

    /// How late a sleep of `interval` that began at `asleep` was when it ended at `awake`
    /// (never negative).
    static func delay(asleep: ContinuousClock.Instant, awake: ContinuousClock.Instant, interval: Duration) -> Duration {
        max(asleep.duration(to: awake) - interval, .zero)
    }

    /// Measures until the task is cancelled.
    public func run() async {
        while !Task.isCancelled {
            let asleep = now()
            do {
                try await sleep(interval)
            } catch {
                return
            }
            metrics.taskSchedulingDelay(Self.delay(asleep: asleep, awake: now(), interval: interval))
        }
    }
}
