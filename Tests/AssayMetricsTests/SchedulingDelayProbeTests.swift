@testable import AssayMetrics
import AssayTestSupport
import Synchronization
import Testing

@Suite("Scheduling delay probe")
struct SchedulingDelayProbeTests {
    @Test("each wake-up records how much later than its interval it came, never less than zero")
    func recordsLateness() {
        let base = ContinuousClock.now
        #expect(SchedulingDelayProbe.delay(asleep: base, awake: base.advanced(by: .milliseconds(700)), interval: .milliseconds(500)) == .milliseconds(200))
        #expect(SchedulingDelayProbe.delay(asleep: base, awake: base.advanced(by: .milliseconds(500)), interval: .milliseconds(500)) == .zero)
        // A clock that reads a little early (coarse timers) is no negative delay.
        #expect(SchedulingDelayProbe.delay(asleep: base, awake: base.advanced(by: .milliseconds(499)), interval: .milliseconds(500)) == .zero)
    }

    @Test("run: one sample per wake-up with its lateness, until the sleep is cancelled")
    func runRecordsEachWakeUp() async throws {
        let (metrics, text) = AssayMetrics.isolated()
        // A clock that a fake sleep moves on: the interval, plus 0 s, 2 s and 30 ms of lateness.
        let lateness: [Duration] = [.zero, .seconds(2), .milliseconds(30)]
        let state = Mutex((now: ContinuousClock.now, sleeps: 0))
        let probe = SchedulingDelayProbe(
            interval: .milliseconds(500), metrics: metrics,
            sleep: { interval in
                try state.withLock { state in
                    guard state.sleeps < lateness.count else { throw CancellationError() }
                    state.now = state.now.advanced(by: interval + lateness[state.sleeps])
                    state.sleeps += 1
                }
            },
            now: { state.withLock { $0.now } })

        await probe.run()

        let scrape = try Exposition.parse(text())
        #expect(scrape.value("assay_task_scheduling_delay_seconds_count", [:]) == 3)
        #expect(scrape.value("assay_task_scheduling_delay_seconds_sum", [:]).map { abs($0 - 2.03) < 1e-9 } == true)
        #expect(scrape.value("assay_task_scheduling_delay_seconds_bucket", ["le": "0.001"]) == 1)
        #expect(scrape.value("assay_task_scheduling_delay_seconds_bucket", ["le": "0.05"]) == 2)
        #expect(scrape.value("assay_task_scheduling_delay_seconds_bucket", ["le": "5.0"]) == 3)
    }

    @Test("with the real clock it keeps measuring until its task is cancelled")
    func realClock() async throws {
        let (metrics, text) = AssayMetrics.isolated()
        let probe = SchedulingDelayProbe(interval: .milliseconds(5), metrics: metrics)
        let task = Task { await probe.run() }
        func count() throws -> Double { try Exposition.parse(text()).value("assay_task_scheduling_delay_seconds_count", [:]) ?? 0 }
        let deadline = ContinuousClock.now.advanced(by: waitGuard)
        while try count() < 3, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(try count() >= 3)
        task.cancel()
        let returned = await finishes(within: waitGuard) { await task.value }
        #expect(returned, "the probe stopped when cancelled")
        #expect(try Exposition.parse(text()).value("assay_task_scheduling_delay_seconds_sum", [:]).map { $0 >= 0 } == true)
    }
}
