import AssayCore
import AssayStore
import Kafka
import Testing
@testable import AssayPipeline

/// The pipeline's pure decisions, without servers.
@Suite("Pipeline logic")
struct PipelineLogicTests {
    let second: Int64 = 1_000_000_000

    @Test("the watermark is the slowest active partition; idle partitions do not hold it back")
    func watermarkIgnoresIdlePartitions() {
        let now = 1_000 * second
        let partitions = [
            PartitionProgress(maxEventTimeNanos: 900 * second, lastAdvancedWallTimeNanos: now - 1 * second),
            PartitionProgress(maxEventTimeNanos: 950 * second, lastAdvancedWallTimeNanos: now - 2 * second),
            PartitionProgress(maxEventTimeNanos: 100 * second, lastAdvancedWallTimeNanos: now - 60 * second, lastCaughtUpWallTimeNanos: now),  // idle
            PartitionProgress(maxEventTimeNanos: 800 * second, lastAdvancedWallTimeNanos: now - 60 * second),  // quiet, never reported caught up
        ]
        #expect(ScoringService.watermark(partitions, now: now, idleTimeoutNanos: 30 * second) == 800 * second)
    }

    @Test("when every partition is idle the watermark follows the clock, so the last windows close")
    func watermarkFollowsClockWhenAllIdle() {
        let now = 1_000 * second
        let partitions = [
            PartitionProgress(maxEventTimeNanos: 500 * second, lastAdvancedWallTimeNanos: now - 40 * second, lastCaughtUpWallTimeNanos: now - second),
            PartitionProgress(maxEventTimeNanos: 400 * second, lastAdvancedWallTimeNanos: now - 50 * second, lastCaughtUpWallTimeNanos: now - second),
        ]
        #expect(ScoringService.watermark(partitions, now: now, idleTimeoutNanos: 30 * second) == 970 * second)
        // The same partitions while one replica's reports have stopped (it is stalled): the
        // windows wait for it instead of following the clock.
        var stalled = partitions
        stalled[1].lastCaughtUpWallTimeNanos = now - 60 * second
        #expect(ScoringService.watermark(stalled, now: now, idleTimeoutNanos: 30 * second) == 400 * second)
    }

    @Test("the watermark never runs ahead of the clock, and there is none without partitions")
    func watermarkBounds() {
        let now = 1_000 * second
        let ahead = [PartitionProgress(maxEventTimeNanos: 1_500 * second, lastAdvancedWallTimeNanos: now)]
        #expect(ScoringService.watermark(ahead, now: now, idleTimeoutNanos: 30 * second) == now)
        #expect(ScoringService.watermark([], now: now, idleTimeoutNanos: 30 * second) == nil)
    }

    @Test("a trace's standing for a scorer: any error wins, then all-N/A, else scored and passed only if every verdict passed")
    func traceVerdicts() {
        #expect(ScoringService.traceVerdict([.pass, .error]) == .errored)
        #expect(ScoringService.traceVerdict([.notApplicable, .notApplicable]) == .notApplicable)
        #expect(ScoringService.traceVerdict([]) == .notApplicable)
        #expect(ScoringService.traceVerdict([.pass, .notApplicable]) == .scored(passed: true))
        #expect(ScoringService.traceVerdict([.pass, .fail]) == .scored(passed: false))
        #expect(ScoringService.traceVerdict([.value]) == .scored(passed: false))
        #expect(ScoringService.traceVerdict([.pass, .value]) == .scored(passed: true))
    }

    @Test("per-span and per-chunk scorers: groundedness passes when some span is grounded, relevance when half the chunks are relevant")
    func multiAssessmentVerdicts() {
        #expect(ScoringService.traceVerdict([.pass, .fail], kind: .retrievalGroundedness) == .scored(passed: true))
        #expect(ScoringService.traceVerdict([.fail, .fail], kind: .retrievalGroundedness) == .scored(passed: false))
        #expect(ScoringService.traceVerdict([.pass, .fail, .value], kind: .retrievalRelevance) == .scored(passed: true))
        #expect(ScoringService.traceVerdict([.pass, .fail, .fail, .value], kind: .retrievalRelevance) == .scored(passed: false))
        #expect(ScoringService.traceVerdict([.pass, .fail], kind: .safety) == .scored(passed: false))
        #expect(ScoringService.traceVerdict([.notApplicable], kind: .retrievalRelevance) == .notApplicable)
    }

    @Test("feedback values map to stored outcomes")
    func storedOutcomes() {
        #expect(ScoringService.storedOutcome(.value(.yes, rationale: "")) == .pass)
        #expect(ScoringService.storedOutcome(.value(.no, rationale: "")) == .fail)
        #expect(ScoringService.storedOutcome(.value(.number(3), rationale: "")) == .value)
        #expect(ScoringService.storedOutcome(.notApplicable(reason: "no response")) == .notApplicable)
        #expect(ScoringService.storedOutcome(.error(code: "E", message: "m")) == .error)
    }

    @Test("decoding a poll: traces, dead letters with reasons, far-future request times, and the covered offsets")
    func decodeBatch() throws {
        var generator = SyntheticTraceGenerator(seed: 5, startNanos: 1_770_000_000 * second)
        let good = generator.next()
        let tp = TopicPartition(topic: "traces", partition: 3)
        let messages = [
            ConsumerMessage(topicPartition: tp, offset: 10, value: good.json),
            ConsumerMessage(topicPartition: tp, offset: 11, value: nil),
            ConsumerMessage(topicPartition: tp, offset: 12, value: Array("{".utf8)),
        ]
        let now = 1_770_000_100 * second
        let batch = IngestService.decode(messages, limits: DecodeLimits(), eventTime: EventTimePolicy(), nowNanos: now)
        #expect(batch.traces.map(\.trace.traceID) == [good.traceID])
        #expect(batch.deadLetters.map(\.reason) == ["tombstone", "invalid_json"])
        #expect(batch.ranges[PartitionKey(topic: "traces", partition: 3)] == 10..<13)
        let early = IngestService.decode(Array(messages.prefix(1)), limits: DecodeLimits(), eventTime: EventTimePolicy(), nowNanos: good.requestTimeNanos - 7200 * second)
        #expect(early.traces.isEmpty)
        #expect(early.deadLetters.map(\.reason) == ["event_time_out_of_range"])
    }

    @Test("decoding in slices on several cores gives the batch decoding in one go gives, in message order")
    func decodeInSlices() async throws {
        var generator = SyntheticTraceGenerator(seed: 9, startNanos: 1_770_000_000 * second)
        var messages: [ConsumerMessage] = []
        for index in 0..<700 {
            let partition = Int32(index % 3)
            let offset = Int64(100 + index / 3)
            let value: [UInt8]? = index % 50 == 7 ? Array("{oops".utf8) : generator.next().json
            messages.append(ConsumerMessage(topicPartition: TopicPartition(topic: "traces", partition: partition), offset: offset, value: value))
        }
        let now = 1_770_000_100 * second
        var whole = IngestService.decode(messages, limits: DecodeLimits(), eventTime: EventTimePolicy(), nowNanos: now)
        whole.prepareDirectCopy()
        for slices in [2, 3, 4, 7] {
            let sliced = await IngestService.decode(messages, slices: slices, limits: DecodeLimits(), eventTime: EventTimePolicy(), nowNanos: now)
            // The slices' pre-encoded rows, joined, are the rows of the whole batch.
            #expect(sliced.directCopy != nil && sliced.directCopy == whole.directCopy, "\(slices) slices")
            #expect(sliced.traces.map(\.trace.traceID) == whole.traces.map(\.trace.traceID), "\(slices) slices")
            #expect(sliced.traces.map(\.source) == whole.traces.map(\.source))
            #expect(sliced.deadLetters.map(\.source) == whole.deadLetters.map(\.source))
            #expect(sliced.ranges == whole.ranges)
        }
        #expect(whole.traces.count == 686 && whole.deadLetters.count == 14)
        #expect(whole.ranges[PartitionKey(topic: "traces", partition: 0)] == 100..<334)
    }

    @Test("a batch's pre-encoded COPY rows are dropped whenever its traces change, and kept when nothing is dropped")
    func preEncodedRowsFollowTheTraces() async throws {
        var generator = SyntheticTraceGenerator(seed: 4, startNanos: 1_770_000_000 * second)
        let messages = (0..<300).map { index in
            ConsumerMessage(topicPartition: TopicPartition(topic: "traces", partition: Int32(index % 2)), offset: Int64(index / 2), value: generator.next().json)
        }
        let now = 1_770_000_100 * second
        let batch = await IngestService.decode(messages, slices: 2, limits: DecodeLimits(), eventTime: EventTimePolicy(), nowNanos: now)
        #expect(batch.directCopy?.traceCount == 300)

        var appended = batch
        appended.appendTrace(batch.traces[0].trace, source: SourcePosition(partition: PartitionKey(topic: "traces", partition: 0), offset: 999))
        #expect(appended.directCopy == nil)
        var removed = batch
        removed.removeTraces { $0.source.partition.partition == 1 }
        #expect(removed.traces.count == 150 && removed.directCopy == nil)
        #expect(batch.dropping([PartitionKey(topic: "traces", partition: 0)]).directCopy == nil)
        #expect(batch.dropping([PartitionKey(topic: "other", partition: 0)]).directCopy?.traceCount == 300)
    }
}
