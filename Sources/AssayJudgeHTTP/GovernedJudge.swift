// Limits around any judge: how many calls at once, how many calls and tokens per window, and
// a cache so identical questions are asked once (DESIGN §4).

import AssayCore
import AssayMetrics
import AssayScoring
import Logging
import Synchronization

/// Wraps a ``Judge`` (the HTTP judge or the offline one) with a concurrency limit, per-window
/// budgets and a response cache.
///
/// For each request, in order:
/// 1. **Cache.** A verdict for the same (scorer kind, prompt version, judge `sourceID`, system
///    prompt, user prompt, fields) is returned with `cached: true`, zero tokens and zero
///    latency, and costs no budget. A request identical to one *in flight* waits for that
///    one's result instead of calling again. Only verdicts are cached, never failures. The
///    cache is an LRU bounded by ``Limits/cacheEntries`` and ``Limits/cacheBytes``.
/// 2. **Budget.** Calls and tokens are counted per `context.budgetKey` (the window). When a
///    window has used ``Limits/maxCallsPerWindow`` calls or at least ``Limits/maxTokensPerWindow``
///    tokens, the request fails with ``JudgeFailure/budgetExhausted(_:)`` without calling, and
///    the caller counts the trace `budget_skipped`. A call is one ``Judge/judge(_:context:)`` of
///    the inner judge, whatever retries it does inside; it is reserved before the call, so
///    concurrent requests never exceed the call budget. Tokens are only known afterwards, so
///    the token budget can be overshot by the calls already in flight when it is reached.
///    What other replicas spent of a window's budget counts as well
///    (``setSharedTotal(budgetKey:calls:tokens:)``); it is as fresh as the scoring service's
///    last report, so replicas scoring one window at once can overshoot it by what they call
///    between two reports (one chunk each).
/// 3. **Concurrency.** At most ``Limits/maxConcurrency`` inner calls run at once; the rest wait
///    in FIFO order, and a waiter whose task is cancelled leaves the queue.
///
/// Budget usage is kept for the most recent ``Limits/maxBudgetKeys`` keys.
public final class GovernedJudge: Judge {
    /// The limits.
    public struct Limits: Sendable, Equatable {
        /// Inner calls in flight at once (≥ 1).
        public var maxConcurrency: Int
        /// Inner calls per budget key; nil for no limit.
        public var maxCallsPerWindow: Int?
        /// Tokens (input + output) per budget key; nil for no limit.
        public var maxTokensPerWindow: Int?
        /// Most cached verdicts; 0 turns the cache off.
        public var cacheEntries: Int
        /// Most bytes of cached keys and rationales.
        public var cacheBytes: Int
        /// Most budget keys remembered; the oldest is forgotten first.
        public var maxBudgetKeys: Int

        public init(
            maxConcurrency: Int = JudgeConfig.defaultMaxConcurrency,
            maxCallsPerWindow: Int? = JudgeConfig.defaultMaxCallsPerWindow,
            maxTokensPerWindow: Int? = nil,
            cacheEntries: Int = 10_000,
            cacheBytes: Int = 64 << 20,
            maxBudgetKeys: Int = 4096
        ) {
            self.maxConcurrency = max(1, maxConcurrency)
            self.maxCallsPerWindow = maxCallsPerWindow
            self.maxTokensPerWindow = maxTokensPerWindow
            self.cacheEntries = cacheEntries
            self.cacheBytes = cacheBytes
            self.maxBudgetKeys = max(1, maxBudgetKeys)
        }

        /// The limits of a monitor's `judge` section (`max_concurrency`, `max_calls_per_window`).
        public init(_ config: JudgeConfig, maxTokensPerWindow: Int? = nil) {
            self.init(maxConcurrency: config.maxConcurrency, maxCallsPerWindow: config.maxCallsPerWindow, maxTokensPerWindow: maxTokensPerWindow)
        }
    }

    /// What the governed judge has done since it was made.
    public struct Statistics: Sendable, Equatable {
        /// Requests received.
        public var requests = 0
        /// Calls passed to the inner judge.
        public var calls = 0
        /// Requests answered from the cache or by an identical call in flight.
        public var cacheHits = 0
        /// Requests refused because their window's budget was used up.
        public var budgetSkips = 0
        /// Requests that ended in a ``JudgeFailure/failed(code:message:)``.
        public var failures = 0
        /// Tokens reported by the inner judge's verdicts.
        public var inputTokens = 0
        public var outputTokens = 0
        /// The most inner calls that were ever in flight at once.
        public var maxInFlight = 0
    }

    /// Budget use of one key (window).
    public struct WindowUsage: Sendable, Equatable {
        public var calls = 0
        public var inputTokens = 0
        public var outputTokens = 0
        public var budgetSkips = 0
        public var tokens: Int { inputTokens + outputTokens }

        public init(calls: Int = 0, inputTokens: Int = 0, outputTokens: Int = 0, budgetSkips: Int = 0) {
            self.calls = calls
            self.inputTokens = inputTokens
            self.outputTokens = outputTokens
            self.budgetSkips = budgetSkips
        }
    }

    private struct State {
        var cache: ResponseCache
        var inFlightCalls: [JudgeCacheKey: SharedCall] = [:]
        var usage: [String: WindowUsage] = [:]
        /// The part of `usage` handed out by ``takeUnreportedUsage(budgetKey:)``.
        var reported: [String: WindowUsage] = [:]
        /// Calls and tokens spent of a key's budget by other replicas (and by this one before a
        /// restart), from ``setSharedTotal(budgetKey:calls:tokens:)``.
        var elsewhere: [String: (calls: Int, tokens: Int)] = [:]
        var usageOrder: [String] = []
        var statistics = Statistics()
        var running = 0
    }

    public let inner: any Judge
    public let limits: Limits
    private let semaphore: AsyncSemaphore
    private let state: Mutex<State>
    private let logger: Logger
    private let metrics: AssayMetrics

    public var sourceID: String { inner.sourceID }

    /// - Parameter metrics: where the `assay_judge_…` metrics go (the process-wide backend by default).
    public init(wrapping inner: any Judge, limits: Limits, logger: Logger, metrics: AssayMetrics = .global) {
        self.inner = inner
        self.limits = limits
        self.metrics = metrics
        semaphore = AsyncSemaphore(permits: limits.maxConcurrency)
        state = Mutex(State(cache: ResponseCache(maxEntries: limits.cacheEntries, maxBytes: limits.cacheBytes)))
        var logger = logger
        logger[metadataKey: "judge.source_id"] = "\(inner.sourceID)"
        self.logger = logger
    }

    /// The OpenAI judge of a monitor's `judge` section (kind `openai`), governed by its limits.
    ///
    /// - Throws: see ``OpenAIJudgeConfiguration/init(judgeConfig:environment:requestTimeout:maxAttempts:)``.
    public static func openAI(
        judgeConfig: JudgeConfig,
        environment: [String: String],
        maxTokensPerWindow: Int? = nil,
        logger: Logger,
        metrics: AssayMetrics = .global
    ) throws(OpenAIJudgeConfigurationError) -> GovernedJudge {
        let configuration = try OpenAIJudgeConfiguration(
            judgeConfig: judgeConfig, environment: environment,
            requestTimeout: judgeConfig.requestTimeoutSeconds.map { .seconds($0) } ?? OpenAIJudgeConfiguration.defaultRequestTimeout)
        let judge = OpenAIJudge(configuration: configuration, maxConnections: judgeConfig.maxConcurrency, logger: logger)
        return GovernedJudge(wrapping: judge, limits: Limits(judgeConfig, maxTokensPerWindow: maxTokensPerWindow), logger: logger, metrics: metrics)
    }

    /// A snapshot of the counters.
    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// The budget use of `budgetKey` so far.
    public func usage(budgetKey: String) -> WindowUsage {
        state.withLock { $0.usage[budgetKey] ?? WindowUsage() }
    }

    /// This judge's use of `budgetKey` since the last call (calls and tokens), now counted as
    /// reported: the scoring service adds it to the window's shared total in the database.
    public func takeUnreportedUsage(budgetKey: String) -> WindowUsage {
        state.withLock { state in
            let usage = state.usage[budgetKey] ?? WindowUsage()
            let reported = state.reported[budgetKey] ?? WindowUsage()
            updateUsage(budgetKey: budgetKey, in: &state) { _ in }
            state.reported[budgetKey] = usage
            return WindowUsage(calls: usage.calls - reported.calls, inputTokens: usage.inputTokens - reported.inputTokens,
                               outputTokens: usage.outputTokens - reported.outputTokens)
        }
    }

    /// Hands back a report that did not reach the database (the call adding it to the shared
    /// total failed): `usage` counts as unreported again, so the next
    /// ``takeUnreportedUsage(budgetKey:)`` includes it instead of losing it from the window's
    /// total, which every replica would then undercount.
    public func restoreUnreportedUsage(budgetKey: String, _ usage: WindowUsage) {
        state.withLock { state in
            guard var reported = state.reported[budgetKey] else { return }
            reported.calls = max(0, reported.calls - usage.calls)
            reported.inputTokens = max(0, reported.inputTokens - usage.inputTokens)
            reported.outputTokens = max(0, reported.outputTokens - usage.outputTokens)
            state.reported[budgetKey] = reported
        }
    }

    /// Sets the window's shared total, as the database holds it after this judge's latest
    /// report: every replica's reported use, this one's included. What others spent (the total
    /// less what this judge reported) then counts against the limits with this judge's own
    /// use, so the replicas scoring one window share its budget. Replaces the total set before.
    public func setSharedTotal(budgetKey: String, calls: Int, tokens: Int) {
        state.withLock { state in
            updateUsage(budgetKey: budgetKey, in: &state) { _ in }
            let reported = state.reported[budgetKey] ?? WindowUsage()
            state.elsewhere[budgetKey] = (max(0, calls - reported.calls), max(0, tokens - reported.tokens))
        }
    }

    /// HTTP retries of the inner judge, when it is an ``OpenAIJudge`` (0 otherwise).
    public var retries: Int { (inner as? OpenAIJudge)?.statistics.retries ?? 0 }

    /// Cached verdicts right now.
    public var cachedVerdicts: Int { state.withLock { $0.cache.count } }

    public func judge(_ request: JudgeRequest, context: ScoringContext) async -> Result<JudgeVerdict, JudgeFailure> {
        let key = JudgeCacheKey(request, judgeSourceID: inner.sourceID)
        state.withLock { $0.statistics.requests += 1 }
        while true {
            let step: Step = state.withLock { state in
                if let verdict = state.cache.lookup(key) {
                    state.statistics.cacheHits += 1
                    return .cached(verdict)
                }
                if let shared = state.inFlightCalls[key] {
                    return .wait(shared)
                }
                let shared = SharedCall(budgetKey: context.budgetKey)
                state.inFlightCalls[key] = shared
                return .lead(shared)
            }
            switch step {
            case .cached(let verdict):
                logger.trace("judge cache hit", metadata: ["judge.scorer": "\(request.scorerKind.rawValue)"])
                metrics.judgeCacheHit(judge: inner.sourceID, scorerKind: request.scorerKind.rawValue)
                return .success(Self.asCached(verdict))

            case .lead(let shared):
                let result = await execute(request, context: context)
                state.withLock { state in
                    if case .success(let verdict) = result {
                        state.cache.insert(verdict, for: key)
                    }
                    state.inFlightCalls.removeValue(forKey: key)
                    record(result, budgetKey: context.budgetKey, in: &state)
                }
                countBudgetSkip(result, request: request)
                shared.finish(result)
                return result

            case .wait(let shared):
                guard let result = await shared.wait() else {
                    return .failure(Self.cancelled)
                }
                switch result {
                case .success(let verdict):
                    state.withLock { $0.statistics.cacheHits += 1 }
                    metrics.judgeCacheHit(judge: inner.sourceID, scorerKind: request.scorerKind.rawValue)
                    return .success(Self.asCached(verdict))
                case .failure(.budgetExhausted) where shared.budgetKey != context.budgetKey:
                    continue  // Another window's budget: ask again under ours.
                case .failure(let failure) where failure == Self.cancelled:
                    if Task.isCancelled { return .failure(failure) }
                    continue  // The leader gave up, not the question: ask again.
                case .failure:
                    state.withLock { record(result, budgetKey: context.budgetKey, in: &$0) }
                    countBudgetSkip(result, request: request)
                    return result
                }
            }
        }
    }

    private enum Step {
        case cached(JudgeVerdict)
        case lead(SharedCall)
        case wait(SharedCall)
    }

    private static let cancelled = JudgeFailure.failed(code: "JUDGE_CANCELLED", message: "the judge call was cancelled")

    private static func asCached(_ verdict: JudgeVerdict) -> JudgeVerdict {
        var copy = verdict
        copy.cached = true
        copy.inputTokens = 0
        copy.outputTokens = 0
        copy.latencyMillis = 0
        return copy
    }

    /// Budget check, a permit, the inner call, and token accounting.
    private func execute(_ request: JudgeRequest, context: ScoringContext) async -> Result<JudgeVerdict, JudgeFailure> {
        // Skip at once, without queueing, when the window is already spent.
        if let reason = state.withLock({ exhaustion(budgetKey: context.budgetKey, in: $0) }) {
            return budgetExhausted(reason, request: request, context: context)
        }
        do {
            try await semaphore.acquire()
        } catch {
            return .failure(Self.cancelled)
        }
        defer { semaphore.release() }
        let reason: String? = state.withLock { state in
            if let reason = exhaustion(budgetKey: context.budgetKey, in: state) { return reason }
            updateUsage(budgetKey: context.budgetKey, in: &state) { $0.calls += 1 }
            state.statistics.calls += 1
            state.running += 1
            state.statistics.maxInFlight = max(state.statistics.maxInFlight, state.running)
            return nil
        }
        if let reason {
            return budgetExhausted(reason, request: request, context: context)
        }
        let started = ContinuousClock.now
        let result = await inner.judge(request, context: context)
        countCall(result, request: request, duration: started.duration(to: .now))
        state.withLock { state in
            state.running -= 1
            if case .success(let verdict) = result {
                let input = verdict.inputTokens ?? 0
                let output = verdict.outputTokens ?? 0
                state.statistics.inputTokens += input
                state.statistics.outputTokens += output
                updateUsage(budgetKey: context.budgetKey, in: &state) {
                    $0.inputTokens += input
                    $0.outputTokens += output
                }
            }
        }
        return result
    }

    private func budgetExhausted(_ reason: String, request: JudgeRequest, context: ScoringContext) -> Result<JudgeVerdict, JudgeFailure> {
        let first = state.withLock { ($0.usage[context.budgetKey]?.budgetSkips ?? 0) == 0 }
        let metadata: Logger.Metadata = ["judge.budget_key": "\(context.budgetKey)", "judge.scorer": "\(request.scorerKind.rawValue)"]
        if first {
            logger.info("judge budget exhausted for this window; further sampled traces are counted budget_skipped", metadata: metadata)
        } else {
            logger.debug("judge budget exhausted; skipping", metadata: metadata)
        }
        return .failure(.budgetExhausted(reason))
    }

    /// Why `budgetKey` may not make another call, or nil.
    private func exhaustion(budgetKey: String, in state: State) -> String? {
        let usage = state.usage[budgetKey] ?? WindowUsage()
        let elsewhere = state.elsewhere[budgetKey] ?? (calls: 0, tokens: 0)
        let calls = usage.calls + elsewhere.calls
        let tokens = usage.tokens + elsewhere.tokens
        if let maxCalls = limits.maxCallsPerWindow, calls >= maxCalls {
            return "\(calls) of \(maxCalls) calls used in this window"
        }
        if let maxTokens = limits.maxTokensPerWindow, tokens >= maxTokens {
            return "\(tokens) of \(maxTokens) tokens used in this window"
        }
        return nil
    }

    /// The `assay_judge_…` metrics of one inner call. A cancelled call (shutdown) is a call
    /// but not an error.
    private func countCall(_ result: Result<JudgeVerdict, JudgeFailure>, request: JudgeRequest, duration: Duration) {
        var failed = false
        var input = 0
        var output = 0
        switch result {
        case .success(let verdict):
            input = verdict.inputTokens ?? 0
            output = verdict.outputTokens ?? 0
        case .failure(let failure):
            failed = failure != Self.cancelled
        }
        metrics.judgeCall(judge: inner.sourceID, scorerKind: request.scorerKind.rawValue, duration: duration,
                          failed: failed, inputTokens: input, outputTokens: output)
    }

    private func countBudgetSkip(_ result: Result<JudgeVerdict, JudgeFailure>, request: JudgeRequest) {
        if case .failure(.budgetExhausted) = result {
            metrics.judgeBudgetSkip(judge: inner.sourceID, scorerKind: request.scorerKind.rawValue)
        }
    }

    /// Counts a finished request's outcome: skips and failures.
    private func record(_ result: Result<JudgeVerdict, JudgeFailure>, budgetKey: String, in state: inout State) {
        switch result {
        case .success: break
        case .failure(.budgetExhausted):
            state.statistics.budgetSkips += 1
            updateUsage(budgetKey: budgetKey, in: &state) { $0.budgetSkips += 1 }
        case .failure(.failed):
            state.statistics.failures += 1
        }
    }

    private func updateUsage(budgetKey: String, in state: inout State, _ change: (inout WindowUsage) -> Void) {
        if state.usage[budgetKey] == nil {
            state.usageOrder.append(budgetKey)
            if state.usageOrder.count > limits.maxBudgetKeys {
                let oldest = state.usageOrder.removeFirst()
                state.usage.removeValue(forKey: oldest)
                state.reported.removeValue(forKey: oldest)
                state.elsewhere.removeValue(forKey: oldest)
            }
        }
        change(&state.usage[budgetKey, default: WindowUsage()])
    }
}

/// One call in flight that identical requests wait for.
///
/// Waiters suspend on continuations; ``finish(_:)`` resumes them all with the result, and a
/// waiter whose task is cancelled is resumed at once with nil.
private final class SharedCall: Sendable {
    private struct State {
        var result: Result<JudgeVerdict, JudgeFailure>?
        var waiters: [UInt64: CheckedContinuation<Result<JudgeVerdict, JudgeFailure>?, Never>] = [:]
        var cancelledBeforeWaiting: Set<UInt64> = []
        var nextID: UInt64 = 0
    }

    let budgetKey: String
    private let state = Mutex(State())

    init(budgetKey: String) {
        self.budgetKey = budgetKey
    }

    /// The leader's result, or nil when the waiting task is cancelled first.
    func wait() async -> Result<JudgeVerdict, JudgeFailure>? {
        let id: UInt64 = state.withLock { state in
            defer { state.nextID &+= 1 }
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<JudgeVerdict, JudgeFailure>?, Never>) in
                let immediate: Result<JudgeVerdict, JudgeFailure>?? = state.withLock { state in
                    if let result = state.result { return .some(result) }
                    if state.cancelledBeforeWaiting.remove(id) != nil { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let continuation = state.withLock { state in
                if let continuation = state.waiters.removeValue(forKey: id) { return Optional(continuation) }
                if state.result == nil { state.cancelledBeforeWaiting.insert(id) }
                return nil
            }
            continuation?.resume(returning: nil)
        }
    }

    /// Hands `result` to every waiter, present and future.
    func finish(_ result: Result<JudgeVerdict, JudgeFailure>) {
        let waiters = state.withLock { state in
            state.result = result
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: result) }
    }
}
