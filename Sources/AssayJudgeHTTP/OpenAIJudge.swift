// The OpenAI-compatible chat-completions judge (DESIGN §4): one HTTP call per question, with
// timeouts and retries. Limits, budgets and caching are GovernedJudge's job.

import AssayCore
import AssayScoring
import Foundation
import Logging
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Asks an OpenAI-compatible `/chat/completions` endpoint for yes/no verdicts.
///
/// Each ``judge(_:context:)`` sends
/// `{"model", "temperature": 0, "messages": [system, user], "response_format": {"type": "json_object"}}`
/// with `Authorization: Bearer <key>`, reads `choices[0].message.content` as
/// `{"rationale": ..., "result": "yes"|"no"}` and `usage.prompt_tokens`/`completion_tokens`
/// as the verdict's tokens.
///
/// Failures, after the retries of ``RetryPolicy`` (408, 429, 5xx, timeouts and transport
/// errors, with exponential backoff and full jitter, or the server's `Retry-After`):
/// `JUDGE_HTTP_<status>`, `JUDGE_TIMEOUT`, `JUDGE_TRANSPORT`, `JUDGE_UNPARSEABLE` (not retried),
/// and `JUDGE_CANCELLED` when the calling task is cancelled.
///
/// The API key is sent in the `Authorization` header and nowhere else: it is never logged, and
/// removed from any server text quoted in an error. Prompts and replies are never logged
/// either (at debug, their lengths).
///
/// `sourceID` is `openai:<model>`: the protocol and the model, which is what decides the
/// verdicts; the host is in the logs.
public final class OpenAIJudge: Judge {
    /// What the judge has done since it was made.
    public struct Statistics: Sendable, Equatable {
        /// ``judge(_:context:)`` calls.
        public var calls = 0
        /// HTTP requests sent (first attempts and retries).
        public var httpRequests = 0
        /// Requests that were a retry of an earlier attempt (including the one without
        /// `response_format`).
        public var retries = 0
        /// Calls that ended in a ``JudgeFailure``.
        public var failures = 0
        /// Input and output tokens reported by the server.
        public var inputTokens = 0
        public var outputTokens = 0
    }

    private struct State {
        var sendResponseFormat: Bool
        var statistics = Statistics()
    }

    public let configuration: OpenAIJudgeConfiguration
    public let sourceID: String
    private let session: URLSession
    private let logger: Logger
    private let state: Mutex<State>
    private let unitRandom: @Sendable () -> Double

    /// - Parameters:
    ///   - maxConnections: connections the judge may keep open to the host; at least the
    ///     concurrency limit of the ``GovernedJudge`` around it.
    ///   - logger: where retries (info) and per-request details (debug) go.
    public convenience init(configuration: OpenAIJudgeConfiguration, maxConnections: Int = JudgeConfig.defaultMaxConcurrency, logger: Logger) {
        self.init(configuration: configuration, maxConnections: maxConnections, logger: logger, unitRandom: { Double.random(in: 0...1) })
    }

    init(configuration: OpenAIJudgeConfiguration, maxConnections: Int, logger: Logger, unitRandom: @escaping @Sendable () -> Double) {
        self.configuration = configuration
        self.sourceID = "openai:\(configuration.model)"
        self.unitRandom = unitRandom
        var logger = logger
        logger[metadataKey: "judge.model"] = "\(configuration.model)"
        logger[metadataKey: "judge.host"] = "\(configuration.endpointHost)"
        self.logger = logger
        state = Mutex(State(sendResponseFormat: configuration.useJSONResponseFormat))

        let sessionConfiguration = URLSessionConfiguration.ephemeral
        sessionConfiguration.httpMaximumConnectionsPerHost = max(1, maxConnections)
        let timeoutSeconds = RetryPolicy.seconds(configuration.requestTimeout)
        // The hard per-attempt deadline is enforced in `send`; these only stop a stuck
        // transfer that somehow outlived it.
        sessionConfiguration.timeoutIntervalForRequest = timeoutSeconds + 1
        sessionConfiguration.timeoutIntervalForResource = timeoutSeconds + 1
        sessionConfiguration.requestCachePolicy = .reloadIgnoringLocalCacheData
        sessionConfiguration.urlCache = nil
        sessionConfiguration.httpCookieStorage = nil
        sessionConfiguration.httpShouldSetCookies = false
        session = URLSession(configuration: sessionConfiguration)
    }

    deinit {
        session.finishTasksAndInvalidate()
    }

    /// A snapshot of the counters.
    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// Whether requests still carry `response_format` (false once the server refused it).
    public var sendsJSONResponseFormat: Bool { state.withLock { $0.sendResponseFormat } }

    public func judge(_ request: JudgeRequest, context: ScoringContext) async -> Result<JudgeVerdict, JudgeFailure> {
        state.withLock { $0.statistics.calls += 1 }
        let result = await call(request)
        state.withLock { state in
            switch result {
            case .success(let verdict):
                state.statistics.inputTokens += verdict.inputTokens ?? 0
                state.statistics.outputTokens += verdict.outputTokens ?? 0
            case .failure:
                state.statistics.failures += 1
            }
        }
        return result
    }

    // MARK: The call and its retries

    private func call(_ request: JudgeRequest) async -> Result<JudgeVerdict, JudgeFailure> {
        let clock = ContinuousClock()
        let start = clock.now
        var logger = logger
        logger[metadataKey: "judge.scorer"] = "\(request.scorerKind.rawValue)"
        var attempt = 0
        var triedWithoutResponseFormat = false
        var isRetry = false
        while true {
            attempt += 1
            let sendFormat = state.withLock { state in
                state.statistics.httpRequests += 1
                if isRetry { state.statistics.retries += 1 }
                return state.sendResponseFormat
            }
            isRetry = true
            logger.debug("judge request", metadata: [
                "judge.attempt": "\(attempt)",
                "judge.prompt_chars": "\(request.systemPrompt.count + request.userPrompt.count)",
                "judge.response_format": "\(sendFormat)",
            ])
            let attemptStart = clock.now
            let outcome = await send(urlRequest(for: request, responseFormat: sendFormat))
            let attemptMillis = Self.millis(clock.now - attemptStart)

            let failure: JudgeFailure
            var serverDelay: Duration?
            switch outcome {
            case .cancelled:
                return .failure(.failed(code: "JUDGE_CANCELLED", message: "the judge call was cancelled"))

            case .reply(let status, let rawBody, let retryAfter, let retryAfterMillis):
                // Servers may echo the key (in a 401, say): remove it before any of the body is
                // quoted or cut.
                let body = redacted(rawBody)
                logger.debug("judge response", metadata: [
                    "judge.attempt": "\(attempt)", "judge.status": "\(status)",
                    "judge.latency_ms": "\(Int(attemptMillis))", "judge.reply_bytes": "\(body.count)",
                ])
                if (200...299).contains(status) {
                    return verdict(fromBody: body, latencyMillis: Self.millis(clock.now - start), logger: logger)
                }
                if (status == 400 || status == 422), sendFormat, !triedWithoutResponseFormat, Self.mentionsResponseFormat(body) {
                    triedWithoutResponseFormat = true
                    state.withLock { $0.sendResponseFormat = false }
                    logger.info("judge endpoint refused response_format; retrying without it, and not sending it again", metadata: [
                        "judge.status": "\(status)",
                    ])
                    attempt -= 1  // Not the request's fault: this retry is free.
                    continue
                }
                failure = .failed(code: "JUDGE_HTTP_\(status)", message: httpFailureMessage(status: status, body: body, attempt: attempt))
                guard RetryPolicy.isRetryable(status: status) else {
                    logger.debug("judge call failed, not retryable", metadata: ["judge.status": "\(status)", "judge.error_code": "JUDGE_HTTP_\(status)"])
                    return .failure(failure)
                }
                serverDelay = RetryPolicy.serverRequestedDelay(
                    retryAfter: retryAfter, retryAfterMillis: retryAfterMillis, now: Date(), cap: configuration.retryAfterCap
                )

            case .timeout:
                failure = .failed(
                    code: "JUDGE_TIMEOUT",
                    message: "no complete reply from \(configuration.endpointHost) within \(configuration.requestTimeout) (attempt \(attempt) of \(configuration.maxAttempts))"
                )

            case .transport(let reason):
                failure = .failed(
                    code: "JUDGE_TRANSPORT",
                    message: "could not talk to \(configuration.endpointHost): \(redacted(reason)) (attempt \(attempt) of \(configuration.maxAttempts))"
                )
            }

            guard attempt < configuration.maxAttempts else {
                logger.debug("judge call failed after its last attempt", metadata: ["judge.attempt": "\(attempt)", "judge.error_code": "\(Self.code(of: failure))"])
                return .failure(failure)
            }
            let delay = serverDelay ?? RetryPolicy.backoff(
                retry: attempt, base: configuration.backoffBase, cap: configuration.backoffCap,
                fullJitter: configuration.fullJitter, unitRandom: unitRandom
            )
            logger.info("judge call failed; retrying", metadata: [
                "judge.attempt": "\(attempt)",
                "judge.error_code": "\(Self.code(of: failure))",
                "judge.delay_ms": "\(Int(Self.millis(delay)))",
                "judge.retry_after": "\(serverDelay != nil)",
            ])
            do {
                try await Task.sleep(for: delay)
            } catch {
                return .failure(.failed(code: "JUDGE_CANCELLED", message: "the judge call was cancelled"))
            }
        }
    }

    fileprivate enum AttemptOutcome: Sendable {
        case reply(status: Int, body: [UInt8], retryAfter: String?, retryAfterMillis: String?)
        case timeout
        case transport(String)
        case cancelled
    }

    /// One HTTP exchange, abandoned (and its transfer cancelled) after ``OpenAIJudgeConfiguration/requestTimeout``.
    ///
    /// Returns at the deadline whether or not the transfer has stopped: a task group would
    /// wait for its child, and a transfer that missed its cancellation (seen once on a loaded
    /// machine: an attempt ran to the server's answer, 60 s, past its 250 ms deadline) would
    /// hold the chunk. An abandoned transfer ends in the background.
    private func send(_ request: URLRequest) async -> AttemptOutcome {
        let session = session
        let timeout = configuration.requestTimeout
        let race = AttemptRace()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<AttemptOutcome, Never>) in
                race.wait(with: continuation)
                race.track(Task { race.settle(await Self.exchange(request, on: session)) })
                race.track(Task {
                    guard (try? await Task.sleep(for: timeout)) != nil else { return }
                    race.settle(.timeout)
                })
            }
        } onCancel: {
            race.settle(.cancelled)
        }
    }

    private static func exchange(_ request: URLRequest, on session: URLSession) async -> AttemptOutcome {
        do {
            let (data, response) = try await session.data(for: request)
            guard let http = response as? HTTPURLResponse else {
                return .transport("the reply is not HTTP")
            }
            return .reply(
                status: http.statusCode, body: [UInt8](data),
                retryAfter: http.value(forHTTPHeaderField: "Retry-After"),
                retryAfterMillis: http.value(forHTTPHeaderField: "retry-after-ms")
            )
        } catch {
            if Task.isCancelled { return .cancelled }
            return classify(error)
        }
    }

    private static func classify(_ error: any Error) -> AttemptOutcome {
        if let urlError = error as? URLError {
            switch urlError.code {
            case .timedOut: return .timeout
            case .cancelled: return .cancelled
            default: return .transport("URL error \(urlError.code.rawValue)")
            }
        }
        if error is CancellationError { return .cancelled }
        return .transport("\(type(of: error))")
    }

    private func urlRequest(for request: JudgeRequest, responseFormat: Bool) -> URLRequest {
        var body = JSONObject()
        body["model"] = .string(configuration.model)
        body["temperature"] = .number("0")
        body["messages"] = .array([
            .object(["role": "system", "content": .string(request.systemPrompt)]),
            .object(["role": "user", "content": .string(request.userPrompt)]),
        ])
        if responseFormat {
            body["response_format"] = .object(["type": "json_object"])
        }
        var urlRequest = URLRequest(url: configuration.endpoint)
        urlRequest.httpMethod = "POST"
        urlRequest.timeoutInterval = RetryPolicy.seconds(configuration.requestTimeout) + 1
        urlRequest.setValue("application/json", forHTTPHeaderField: "Content-Type")
        urlRequest.setValue("application/json", forHTTPHeaderField: "Accept")
        urlRequest.setValue("Bearer \(configuration.apiKey.secret)", forHTTPHeaderField: "Authorization")
        urlRequest.httpBody = Data(JSONValue.object(body).serializedUTF8())
        return urlRequest
    }

    // MARK: Reading replies

    private func verdict(fromBody body: [UInt8], latencyMillis: Double, logger: Logger) -> Result<JudgeVerdict, JudgeFailure> {
        let completion: Completion
        switch Self.completion(from: body) {
        case .success(let found): completion = found
        case .failure(let problem):
            logger.debug("judge reply unusable", metadata: ["judge.error_code": "JUDGE_UNPARSEABLE", "judge.reply_bytes": "\(body.count)"])
            return .failure(.failed(code: "JUDGE_UNPARSEABLE", message: redacted(problem.message)))
        }
        switch parseReply(completion.content) {
        case .success(let answer):
            return .success(JudgeVerdict(
                value: answer.value, rationale: answer.rationale,
                inputTokens: completion.inputTokens, outputTokens: completion.outputTokens,
                latencyMillis: latencyMillis, cached: false
            ))
        case .failure(let failure):
            logger.debug("judge reply unparseable", metadata: ["judge.error_code": "JUDGE_UNPARSEABLE", "judge.reply_chars": "\(completion.content.count)"])
            if case .failed(let code, let message) = failure {
                return .failure(.failed(code: code, message: redacted(message)))
            }
            return .failure(failure)
        }
    }

    struct Completion: Equatable {
        var content: String
        var inputTokens: Int?
        var outputTokens: Int?
    }

    struct CompletionProblem: Error {
        var message: String
    }

    /// `choices[0].message.content` (a string, or text parts joined) and `usage` of a
    /// chat-completions reply.
    static func completion(from body: [UInt8]) -> Result<Completion, CompletionProblem> {
        let text = String(decoding: body, as: UTF8.self)
        guard let document = try? JSONParser().parse(body), let object = document.objectValue else {
            return .failure(CompletionProblem(message: "the reply is not a JSON chat completion: \(quoteExcerpt(text))"))
        }
        guard let message = object["choices"]?.arrayValue?.first?["message"]?.objectValue else {
            return .failure(CompletionProblem(message: "the reply has no choices[0].message: \(quoteExcerpt(text))"))
        }
        let content: String?
        switch message["content"] {
        case .string(let string)?:
            content = string
        case .array(let parts)?:
            let texts = parts.compactMap { $0["text"]?.stringValue }
            content = texts.isEmpty ? nil : texts.joined()
        default:
            content = nil
        }
        guard let content else {
            if let refusal = message["refusal"]?.stringValue {
                return .failure(CompletionProblem(message: "the model refused to answer: \(quoteExcerpt(refusal))"))
            }
            return .failure(CompletionProblem(message: "the reply has no choices[0].message.content: \(quoteExcerpt(text))"))
        }
        let usage = object["usage"]
        return .success(Completion(
            content: content,
            inputTokens: usage?["prompt_tokens"]?.int64Value.flatMap { Int(exactly: $0) },
            outputTokens: usage?["completion_tokens"]?.int64Value.flatMap { Int(exactly: $0) }
        ))
    }

    /// Whether an error body is about `response_format` (the server does not support it).
    static func mentionsResponseFormat(_ body: [UInt8]) -> Bool {
        let text = String(decoding: body.prefix(64 * 1024), as: UTF8.self).lowercased()
        return text.contains("response_format") || text.contains("response format")
    }

    /// `HTTP <status> from <host> (attempt n of m): <the server's error message, ≤ 200 characters>`.
    private func httpFailureMessage(status: Int, body: [UInt8], attempt: Int) -> String {
        var message = "HTTP \(status) from \(configuration.endpointHost) (attempt \(attempt) of \(configuration.maxAttempts))"
        let serverText: String
        if let document = try? JSONParser().parse(body),
           let text = document["error"]?["message"]?.stringValue ?? document["error"]?.stringValue
               ?? document["message"]?.stringValue ?? document["detail"]?.stringValue {
            serverText = text
        } else {
            serverText = String(decoding: body.prefix(4096), as: UTF8.self).trimmingWhitespace()
        }
        if !serverText.isEmpty {
            message += ": " + quoteExcerpt(serverText)
        }
        return redacted(message)
    }

    /// `body` with every occurrence of the API key (as UTF-8) replaced by `<redacted>`.
    func redacted(_ body: [UInt8]) -> [UInt8] {
        let secret = Array(configuration.apiKey.secret.utf8)
        guard !secret.isEmpty, body.count >= secret.count, body.firstRange(of: secret) != nil else { return body }
        return Array(body.replacing(secret, with: Array("<redacted>".utf8)))
    }

    /// `text` with every occurrence of the API key replaced by `<redacted>`.
    func redacted(_ text: String) -> String {
        let secret = configuration.apiKey.secret
        guard !secret.isEmpty, text.contains(secret) else { return text }
        return text.replacing(secret, with: "<redacted>")
    }

    private static func code(of failure: JudgeFailure) -> String {
        switch failure {
        case .failed(let code, _): return code
        case .budgetExhausted: return "BUDGET_EXHAUSTED"
        }
    }

    static func millis(_ duration: Duration) -> Double {
        RetryPolicy.seconds(duration) * 1000
    }
}

/// The first of an attempt's outcomes (its reply, its deadline, its caller's cancellation):
/// resumes the waiting attempt once and cancels the tasks still running.
private final class AttemptRace: Sendable {
    private struct State: Sendable {
        var continuation: CheckedContinuation<OpenAIJudge.AttemptOutcome, Never>?
        var outcome: OpenAIJudge.AttemptOutcome?
        var tasks: [Task<Void, Never>] = []
    }

    private let state = Mutex(State())

    func wait(with continuation: CheckedContinuation<OpenAIJudge.AttemptOutcome, Never>) {
        let settled = state.withLock { state -> OpenAIJudge.AttemptOutcome? in
            if state.outcome == nil { state.continuation = continuation }
            return state.outcome
        }
        if let settled { continuation.resume(returning: settled) }
    }

    /// Keeps `task` to cancel when the race is settled (at once if it already is).
    func track(_ task: Task<Void, Never>) {
        let settled = state.withLock { state -> Bool in
            if state.outcome == nil { state.tasks.append(task) }
            return state.outcome != nil
        }
        if settled { task.cancel() }
    }

    /// The first call wins; later ones do nothing.
    func settle(_ outcome: OpenAIJudge.AttemptOutcome) {
        let won = state.withLock { state -> (CheckedContinuation<OpenAIJudge.AttemptOutcome, Never>?, [Task<Void, Never>])? in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            defer {
                state.continuation = nil
                state.tasks = []
            }
            return (state.continuation, state.tasks)
        }
        guard let (continuation, tasks) = won else { return }
        tasks.forEach { $0.cancel() }
        continuation?.resume(returning: outcome)
    }
}
