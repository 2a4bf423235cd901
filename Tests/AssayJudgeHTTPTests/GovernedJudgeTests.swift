// Budgets, the response cache and the concurrency limit, around the HTTP judge and alone.

import AssayCore
import AssayScoring
import AssayTestSupport
import Logging
import Synchronization
import Testing

@testable import AssayJudgeHTTP

@Suite("Governed judge: budgets, cache, concurrency")
struct GovernedJudgeTests {
    @Test("with 3 calls per window, 5 concurrent requests make 3 calls and 2 budget skips; another window has its own budget")
    func callBudget() async throws {
        let server = try LoopbackHTTPServer { _ in yesReply() }
        defer { server.stop() }
        let judge = GovernedJudge(
            wrapping: try makeJudge(server),
            limits: .init(maxConcurrency: 4, maxCallsPerWindow: 3),
            logger: quietLogger
        )

        let results = await withTaskGroup(of: Result<JudgeVerdict, JudgeFailure>.self) { group in
            for n in 0..<5 {
                group.addTask { await judge.judge(sampleRequest(n), context: ScoringContext(budgetKey: "window-1")) }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }

        #expect(results.filter { failureCode($0) == nil }.count == 3)
        let skipped = results.filter { failureCode($0) == "BUDGET_EXHAUSTED" }
        #expect(skipped.count == 2)
        #expect(skipped.allSatisfy { failureMessage($0) == "3 of 3 calls used in this window" })
        #expect(server.requestCount == 3)
        #expect(judge.statistics.budgetSkips == 2)
        #expect(judge.usage(budgetKey: "window-1") == GovernedJudge.WindowUsage(calls: 3, inputTokens: 36, outputTokens: 9, budgetSkips: 2))

        let otherWindow = await judge.judge(sampleRequest(99), context: ScoringContext(budgetKey: "window-2"))

        #expect(failureCode(otherWindow) == nil)
        #expect(server.requestCount == 4)
        #expect(judge.usage(budgetKey: "window-2").calls == 1)
    }

    @Test("the token budget stops calls once a window has used it up")
    func tokenBudget() async throws {
        let server = try LoopbackHTTPServer { _ in yesReply(promptTokens: 40, completionTokens: 20) }
        defer { server.stop() }
        let judge = GovernedJudge(
            wrapping: try makeJudge(server),
            limits: .init(maxConcurrency: 1, maxCallsPerWindow: nil, maxTokensPerWindow: 100),
            logger: quietLogger
        )
        let window = ScoringContext(budgetKey: "window-1")

        let first = await judge.judge(sampleRequest(1), context: window)
        let second = await judge.judge(sampleRequest(2), context: window)
        let third = await judge.judge(sampleRequest(3), context: window)
        let elsewhere = await judge.judge(sampleRequest(4), context: ScoringContext(budgetKey: "window-2"))

        #expect(failureCode(first) == nil)
        #expect(failureCode(second) == nil)
        #expect(failureCode(third) == "BUDGET_EXHAUSTED")
        #expect(failureMessage(third) == "120 of 100 tokens used in this window")
        #expect(failureCode(elsewhere) == nil)
        #expect(server.requestCount == 3)
        #expect(judge.usage(budgetKey: "window-1").tokens == 120)
        #expect(judge.statistics.inputTokens == 120)
        #expect(judge.statistics.outputTokens == 60)
    }

    @Test("an identical request is answered from the cache without a second call")
    func cacheAvoidsSecondCall() async throws {
        let server = try LoopbackHTTPServer { _ in yesReply(promptTokens: 50, completionTokens: 5) }
        defer { server.stop() }
        let judge = GovernedJudge(wrapping: try makeJudge(server), limits: .init(maxCallsPerWindow: 10), logger: quietLogger)

        let first = try await judge.judge(sampleRequest(7), context: ScoringContext(budgetKey: "w")).get()
        let second = try await judge.judge(sampleRequest(7), context: ScoringContext(budgetKey: "w")).get()

        #expect(server.requestCount == 1)
        #expect(first.cached == false)
        #expect(first.inputTokens == 50)
        #expect(second.cached == true)
        #expect(second.value == first.value)
        #expect(second.rationale == first.rationale)
        #expect(second.inputTokens == 0)
        #expect(judge.statistics.cacheHits == 1)
        #expect(judge.usage(budgetKey: "w").calls == 1)

        // A different prompt version is a different question.
        _ = try await judge.judge(sampleRequest(7, promptVersion: "relevance_to_query@2"), context: ScoringContext(budgetKey: "w")).get()
        #expect(server.requestCount == 2)
    }

    @Test("identical requests in flight at once make one call")
    func concurrentIdenticalRequestsCoalesce() async throws {
        let server = try LoopbackHTTPServer { _ in yesReply(delay: .milliseconds(300)) }
        defer { server.stop() }
        let judge = GovernedJudge(wrapping: try makeJudge(server), limits: .init(maxConcurrency: 4), logger: quietLogger)

        let verdicts = try await withThrowingTaskGroup(of: JudgeVerdict.self) { group in
            for _ in 0..<4 {
                group.addTask { try await judge.judge(sampleRequest(5), context: ScoringContext(budgetKey: "w")).get() }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }

        #expect(server.requestCount == 1)
        #expect(verdicts.count == 4)
        #expect(verdicts.filter { !$0.cached }.count == 1)
        #expect(judge.statistics.cacheHits == 3)
    }

    @Test("failures are not cached")
    func failuresNotCached() async throws {
        let server = try LoopbackHTTPServer { request in
            request.sequence == 0 ? .json(errorBody("bad"), status: 400) : yesReply()
        }
        defer { server.stop() }
        let judge = GovernedJudge(wrapping: try makeJudge(server), limits: .init(), logger: quietLogger)

        let first = await judge.judge(sampleRequest(), context: ScoringContext())
        let second = await judge.judge(sampleRequest(), context: ScoringContext())

        #expect(failureCode(first) == "JUDGE_HTTP_400")
        #expect(failureCode(second) == nil)
        #expect(server.requestCount == 2)
        #expect(judge.statistics.failures == 1)
    }

    @Test("with a limit of 2 and a slow server, never more than 2 requests are in flight")
    func concurrencyLimit() async throws {
        let server = try LoopbackHTTPServer { _ in yesReply(delay: .milliseconds(250)) }
        defer { server.stop() }
        let judge = GovernedJudge(
            wrapping: try makeJudge(server, maxConnections: 8),
            limits: .init(maxConcurrency: 2, maxCallsPerWindow: nil),
            logger: quietLogger
        )

        let results = await withTaskGroup(of: Result<JudgeVerdict, JudgeFailure>.self) { group in
            for n in 0..<6 {
                group.addTask { await judge.judge(sampleRequest(n), context: ScoringContext()) }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }

        #expect(results.allSatisfy { failureCode($0) == nil })
        #expect(server.requestCount == 6)
        #expect(server.maxConcurrentRequests == 2)
        #expect(judge.statistics.maxInFlight == 2)
    }

    @Test("the budget and the cache work around any judge")
    func wrapsAnyJudge() async throws {
        let counting = CountingJudge()
        let judge = GovernedJudge(wrapping: counting, limits: .init(maxConcurrency: 1, maxCallsPerWindow: 2), logger: quietLogger)

        let a = await judge.judge(sampleRequest(1), context: ScoringContext(budgetKey: "w"))
        let aAgain = await judge.judge(sampleRequest(1), context: ScoringContext(budgetKey: "w"))
        let b = await judge.judge(sampleRequest(2), context: ScoringContext(budgetKey: "w"))
        let c = await judge.judge(sampleRequest(3), context: ScoringContext(budgetKey: "w"))

        #expect(failureCode(a) == nil)
        #expect((try? aAgain.get())?.cached == true)
        #expect(failureCode(b) == nil)
        #expect(failureCode(c) == "BUDGET_EXHAUSTED")
        #expect(counting.calls == 2)
        #expect(judge.sourceID == "test/counting@1")
    }

    @Test("what other replicas reported of a window's budget counts against it; this judge's own reports are not counted twice")
    func sharedBudget() async throws {
        let counting = CountingJudge()
        let judge = GovernedJudge(wrapping: counting, limits: .init(maxConcurrency: 1, maxCallsPerWindow: 6), logger: quietLogger)
        let window = ScoringContext(budgetKey: "w")
        var n = 0
        func ask(_ context: ScoringContext = window) async -> String? {
            n += 1
            return failureCode(await judge.judge(sampleRequest(n), context: context))
        }

        // Others spent 3 of 6: three calls are left for this judge.
        judge.setSharedTotal(budgetKey: "w", calls: 3, tokens: 0)
        #expect(await ask() == nil)
        #expect(await ask() == nil)
        #expect(judge.takeUnreportedUsage(budgetKey: "w") == GovernedJudge.WindowUsage(calls: 2))
        // The total now holds this judge's 2 as well: others still spent 3, so one call is left.
        judge.setSharedTotal(budgetKey: "w", calls: 5, tokens: 0)
        #expect(await ask() == nil)
        #expect(await ask() == "BUDGET_EXHAUSTED")
        #expect(counting.calls == 3)
        #expect(judge.takeUnreportedUsage(budgetKey: "w") == GovernedJudge.WindowUsage(calls: 1, budgetSkips: 0))
        #expect(judge.takeUnreportedUsage(budgetKey: "w") == GovernedJudge.WindowUsage())
        // Another window has its own budget, and a token total at the limit stops calls too.
        #expect(await ask(ScoringContext(budgetKey: "v")) == nil)
        let tokens = GovernedJudge(wrapping: counting, limits: .init(maxConcurrency: 1, maxCallsPerWindow: nil, maxTokensPerWindow: 100), logger: quietLogger)
        tokens.setSharedTotal(budgetKey: "w", calls: 1, tokens: 100)
        #expect(failureCode(await tokens.judge(sampleRequest(99), context: window)) == "BUDGET_EXHAUSTED")
    }

    @Test("a report that did not reach the database is handed back and goes out with the next one")
    func failedReportIsRestored() async throws {
        let judge = GovernedJudge(wrapping: CountingJudge(), limits: .init(maxConcurrency: 1, maxCallsPerWindow: 10), logger: quietLogger)
        let window = ScoringContext(budgetKey: "w")
        #expect(failureCode(await judge.judge(sampleRequest(1), context: window)) == nil)
        #expect(failureCode(await judge.judge(sampleRequest(2), context: window)) == nil)
        let lost = judge.takeUnreportedUsage(budgetKey: "w")
        #expect(lost.calls == 2)
        judge.restoreUnreportedUsage(budgetKey: "w", lost)
        #expect(failureCode(await judge.judge(sampleRequest(3), context: window)) == nil)
        #expect(judge.takeUnreportedUsage(budgetKey: "w").calls == 3, "the two calls of the failed report and the new one")
        #expect(judge.takeUnreportedUsage(budgetKey: "w") == GovernedJudge.WindowUsage())
        // The shared total then counts others' use as before: 5 in all, 3 of them this judge's.
        judge.setSharedTotal(budgetKey: "w", calls: 5, tokens: 0)
        #expect(judge.usage(budgetKey: "w").calls == 3)
    }

    @Test("the cache evicts the least recently used entry beyond its bound")
    func cacheIsBounded() {
        var cache = ResponseCache(maxEntries: 2, maxBytes: 1 << 20)
        let keys = (0..<3).map { JudgeCacheKey(sampleRequest($0), judgeSourceID: "j") }
        let verdict = JudgeVerdict(value: .yes, rationale: "r")

        cache.insert(verdict, for: keys[0])
        cache.insert(verdict, for: keys[1])
        #expect(cache.lookup(keys[0]) != nil)  // 0 is now more recent than 1
        cache.insert(verdict, for: keys[2])

        #expect(cache.count == 2)
        #expect(cache.lookup(keys[1]) == nil)
        #expect(cache.lookup(keys[0]) != nil)
        #expect(cache.lookup(keys[2]) != nil)

        var small = ResponseCache(maxEntries: 100, maxBytes: keys[0].byteCount + 10)
        small.insert(verdict, for: keys[0])
        small.insert(verdict, for: keys[1])
        #expect(small.count == 1)
        #expect(small.lookup(keys[1]) != nil)
        #expect(small.bytes <= keys[0].byteCount + 10)
    }

    @Test("many touches keep the cache's recency log compact")
    func cacheLogStaysSmall() {
        var cache = ResponseCache(maxEntries: 3, maxBytes: 1 << 20)
        let keys = (0..<5).map { JudgeCacheKey(sampleRequest($0), judgeSourceID: "j") }
        for round in 0..<1000 {
            cache.insert(JudgeVerdict(value: .yes, rationale: "\(round)"), for: keys[round % keys.count])
            _ = cache.lookup(keys[(round * 3) % keys.count])
        }
        #expect(cache.count == 3)
    }
}

/// A judge that says yes and counts its calls.
final class CountingJudge: Judge {
    private let count = Mutex(0)
    var calls: Int { count.withLock { $0 } }
    let sourceID = "test/counting@1"

    func judge(_ request: JudgeRequest, context: ScoringContext) async -> Result<JudgeVerdict, JudgeFailure> {
        count.withLock { $0 += 1 }
        return .success(JudgeVerdict(value: .yes, rationale: "counted"))
    }
}

final class OrderRecorder: Sendable {
    private let storage = Mutex<[Int]>([])
    func append(_ value: Int) { storage.withLock { $0.append(value) } }
    var values: [Int] { storage.withLock { $0 } }
}

@Suite("Async semaphore")
struct AsyncSemaphoreTests {
    @Test("a cancelled waiter leaves the queue and takes no permit")
    func cancelledWaiter() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let waiter = Task { try await semaphore.acquire() }
        for _ in 0..<10_000 where semaphore.waiting == 0 { await Task.yield() }
        try #require(semaphore.waiting == 1)

        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }

        #expect(semaphore.waiting == 0)
        semaphore.release()
        #expect(semaphore.availablePermits == 1)
    }

    @Test("waiters get permits in arrival order")
    func fifo() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let order = OrderRecorder()
        var tasks: [Task<Void, any Error>] = []
        for n in 0..<4 {
            tasks.append(Task {
                try await semaphore.acquire()
                order.append(n)
                semaphore.release()
            })
            for _ in 0..<10_000 where semaphore.waiting < n + 1 { await Task.yield() }
        }
        try #require(semaphore.waiting == 4)

        semaphore.release()
        for task in tasks { try await task.value }

        #expect(order.values == [0, 1, 2, 3])
        #expect(semaphore.availablePermits == 1)
    }

    @Test("an already cancelled task does not wait")
    func alreadyCancelled() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await semaphore.acquire()
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(semaphore.waiting == 0)
    }
}
