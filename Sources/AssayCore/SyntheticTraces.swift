/// Realistic MLflow 3 traces from a seed, for `assay demo`, the tests and the benchmark.
///
/// Three app shapes, as the shared samples have them: a chat chain, a RAG agent with a
/// RETRIEVER span returning documents (`page_content`, `metadata.doc_uri`), and a
/// tool-calling agent; some requests fail (rate-limited model, tool timeout). The same seed
/// always gives the same traces, byte for byte.
public struct SyntheticTraceGenerator: Sendable {
    /// The kind of application request a trace records.
    public enum Kind: String, Sendable, CaseIterable {
        case chat
        case rag
        case toolAgent = "tool_agent"
    }

    /// One generated trace: its id, kind, outcome and MLflow `Trace.to_json()` bytes.
    public struct Generated: Sendable {
        public var traceID: String
        public var kind: Kind
        public var state: TraceState
        public var requestTimeNanos: Int64
        public var json: [UInt8]
    }

    private var random: SplitMix64
    /// Request times start here (ns since epoch) and advance by `spacingNanos` on average.
    public var startNanos: Int64
    public var spacingNanos: Int64
    /// Fraction of requests that fail.
    public var errorRate: Double = 0.08
    /// Extra document text per RAG trace, to vary sizes (the benchmark asks for 1–8 KB).
    public var maxPaddingBytes: Int = 0
    private var sequence: Int64 = 0

    public init(seed: UInt64, startNanos: Int64, spacingNanos: Int64 = 50_000_000) {
        self.random = SplitMix64(seed: seed)
        self.startNanos = startNanos
        self.spacingNanos = spacingNanos
    }

    /// The next trace.
    public mutating func next() -> Generated {
        sequence += 1
        let kind = Kind.allCases[Int(random.next() % 3)]
        let traceBytes = (0..<16).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let traceHex = OTelIdentifier.hexString(traceBytes)
        let traceID = "tr-" + traceHex
        let jitter = Int64(random.next() % UInt64(max(spacingNanos, 1)))
        let requestTime = startNanos + sequence * spacingNanos + jitter - spacingNanos / 2
        let fails = random.unitInterval() < errorRate
        let topicIndex = Int(random.next() % UInt64(Self.topics.count))
        let topic = Self.topics[topicIndex]
        let question = topic.question
        // Most answers are right; some go wrong the ways production apps do.
        let quality = random.unitInterval()
        let answerText: String
        if quality < 0.05 {
            answerText = Self.leakyAnswers[Int(random.next() % UInt64(Self.leakyAnswers.count))]
        } else if quality < 0.09 {
            answerText = Self.topics[(topicIndex + 1 + Int(random.next() % UInt64(Self.topics.count - 1))) % Self.topics.count].answer  // off topic
        } else if quality < 0.11 {
            answerText = Self.unsafeAnswers[Int(random.next() % UInt64(Self.unsafeAnswers.count))]
        } else {
            answerText = topic.answer
        }
        var builder = SpanBuilder(traceBytes: traceBytes, traceID: traceID, random: random)
        var clock = requestTime
        let state: TraceState
        let answer: String?

        switch kind {
        case .chat:
            let root = builder.open(name: "hr_chat", type: "CHAIN", start: clock, inputs: .object(["question": .string(question)]))
            clock += 2_000_000
            let modelStart = clock
            clock += Int64(600_000_000 + random.next() % 2_400_000_000)
            if fails {
                builder.close(builder.open(name: "Completions", type: "CHAT_MODEL", parent: root, start: modelStart, inputs: Self.chatInput(question)),
                              end: modelStart + 150_000_000, outputs: nil, error: ("RateLimitError", "Error code: 429 - rate limit exceeded"))
                clock = modelStart + 160_000_000
                answer = nil
                builder.close(root, end: clock, outputs: nil, error: ("RateLimitError", "Error code: 429 - rate limit exceeded"))
                state = .error
            } else {
                let reply = answerText
                builder.close(builder.open(name: "Completions", type: "CHAT_MODEL", parent: root, start: modelStart, inputs: Self.chatInput(question)),
                              end: clock, outputs: Self.chatOutput(reply), tokens: Self.tokens(question, reply, &random))
                clock += 1_000_000
                answer = reply
                builder.close(root, end: clock, outputs: .string(reply))
                state = .ok
            }
        case .rag:
            let root = builder.open(name: "hr_policy_agent", type: "AGENT", start: clock, inputs: .object(["question": .string(question)]))
            clock += 1_000_000
            let retrieverStart = clock
            clock += Int64(20_000_000 + random.next() % 80_000_000)
            let padding = maxPaddingBytes > 0 ? Int(random.next() % UInt64(maxPaddingBytes + 1)) : 0
            let documents = Self.documents(for: topicIndex, count: 2 + Int(random.next() % 3), random: &random, padding: padding)
            builder.close(builder.open(name: "policy_search", type: "RETRIEVER", parent: root, start: retrieverStart, inputs: .object(["query": .string(question)])),
                          end: clock, outputs: .array(documents))
            let modelStart = clock + 1_000_000
            clock = modelStart + Int64(600_000_000 + random.next() % 3_000_000_000)
            // RAG answers sometimes contradict the retrieved policy (ungrounded).
            let reply = quality > 0.93 ? Self.contradicting(topic.answer) : answerText
            if fails {
                builder.close(builder.open(name: "Completions", type: "CHAT_MODEL", parent: root, start: modelStart, inputs: Self.chatInput(question)),
                              end: modelStart + 120_000_000, outputs: nil, error: ("RateLimitError", "Error code: 429 - rate limit exceeded"))
                clock = modelStart + 130_000_000
                builder.close(root, end: clock, outputs: nil, error: ("RateLimitError", "Error code: 429 - rate limit exceeded"))
                answer = nil
                state = .error
            } else {
                builder.close(builder.open(name: "Completions", type: "CHAT_MODEL", parent: root, start: modelStart, inputs: Self.chatInput(question)),
                              end: clock, outputs: Self.chatOutput(reply), tokens: Self.tokens(question + String(repeating: "x", count: padding), reply, &random))
                clock += 1_000_000
                builder.close(root, end: clock, outputs: .string(reply))
                answer = reply
                state = .ok
            }
        case .toolAgent:
            let root = builder.open(name: "hr_agent", type: "AGENT", start: clock, inputs: .object(["question": .string(question)]))
            clock += 1_000_000
            let planStart = clock
            clock += Int64(500_000_000 + random.next() % 1_500_000_000)
            let tool = Self.tools[Int(random.next() % UInt64(Self.tools.count))]
            builder.close(builder.open(name: "Completions", type: "CHAT_MODEL", parent: root, start: planStart, inputs: Self.chatInput(question)),
                          end: clock, outputs: .object(["choices": .array([.object(["message": .object([
                              "role": "assistant",
                              "tool_calls": .array([.object(["type": "function", "function": .object(["name": .string(tool), "arguments": "{\"employee_id\": \"emp-0042\"}"])])]),
                          ])])])]))
            let toolStart = clock + 1_000_000
            if fails {
                clock = toolStart + 5_000_000_000
                builder.close(builder.open(name: tool, type: "TOOL", parent: root, start: toolStart, inputs: .object(["employee_id": "emp-0042"])),
                              end: clock, outputs: nil, error: ("TimeoutError", "\(tool) timed out after 5s"))
                clock += 1_000_000
                builder.close(root, end: clock, outputs: nil, error: ("TimeoutError", "\(tool) timed out after 5s"))
                answer = nil
                state = .error
            } else {
                clock = toolStart + Int64(100_000_000 + random.next() % 300_000_000)
                builder.close(builder.open(name: tool, type: "TOOL", parent: root, start: toolStart, inputs: .object(["employee_id": "emp-0042"])),
                              end: clock, outputs: .object(["status": "ok", "days_remaining": .number(String(random.next() % 25))]))
                let answerStart = clock + 1_000_000
                clock = answerStart + Int64(500_000_000 + random.next() % 1_500_000_000)
                let reply = "You have \(random.next() % 25) days of annual leave remaining this year."
                builder.close(builder.open(name: "Completions", type: "CHAT_MODEL", parent: root, start: answerStart, inputs: Self.chatInput(question)),
                              end: clock, outputs: Self.chatOutput(reply), tokens: Self.tokens(question, reply, &random))
                clock += 1_000_000
                builder.close(root, end: clock, outputs: .string(reply))
                answer = reply
                state = .ok
            }
        }
        random = builder.random

        let user = "emp-\(String(1000 + random.next() % 9000).suffix(4))"
        let info: JSONValue = .object(JSONObject([
            (key: "trace_id", value: .string(traceID)),
            (key: "client_request_id", value: .string(Self.uuid(&random))),
            (key: "trace_location", value: .object(["type": "MLFLOW_EXPERIMENT", "mlflow_experiment": .object(["experiment_id": "1"])])),
            (key: "request_time", value: .string(Self.rfc3339Millis(requestTime))),
            (key: "state", value: .string(state.rawValue)),
            (key: "trace_metadata", value: .object([
                "mlflow.trace_schema.version": "3",
                "mlflow.trace.user": .string(user),
                "mlflow.trace.session": .string("conv-" + String(traceHex.prefix(12))),
                "app_version": "1.8.2",
            ])),
            (key: "tags", value: .object([
                "env": "prod",
                "app_name": "northwind-hr-assistant",
                "app_version": "1.8.2",
                "mlflow.traceName": .string(builder.rootName),
            ])),
            (key: "request_preview", value: .string("{\"question\": \(JSONValue.string(question).serialized())}")),
            (key: "response_preview", value: answer.map { .string(JSONValue.string($0).serialized()) } ?? .null),
            (key: "execution_duration_ms", value: JSONValue((clock - requestTime) / 1_000_000)),
        ]))
        let document: JSONValue = .object(JSONObject([
            (key: "info", value: info),
            (key: "data", value: .object(["spans": .array(builder.spans)])),
        ]))
        return Generated(traceID: traceID, kind: kind, state: state, requestTimeNanos: requestTime, json: document.serializedUTF8())
    }

    // MARK: - Content

    /// Questions with the answer the policy supports and the policy text that supports it.
    static let topics: [(question: String, answer: String, policy: String, text: String)] = [
        ("Is there a stipend for setting up a home office?",
         "After probation you can claim a one-off $500 home office stipend plus $30 a month towards internet.",
         "remote-work", "A one-off home office stipend of $500 is available after probation, plus $30 per month towards internet costs."),
        ("How many days of parental leave do I get?",
         "Primary caregivers get 16 weeks of paid parental leave; secondary caregivers get 4 weeks.",
         "parental-leave", "Primary caregivers receive 16 weeks of paid parental leave and secondary caregivers receive 4 weeks."),
        ("Can I carry unused vacation days into next year?",
         "You can carry up to 5 unused vacation days into the first quarter of the next year.",
         "vacation", "Up to 5 unused vacation days may be carried over into the first quarter of the following year."),
        ("Can I work from another country for a few weeks?",
         "You may work from another country for up to 20 working days a year with prior approval.",
         "remote-work", "Employees may work from another country for up to 20 working days per year with prior approval from HR and their manager."),
        ("How do I file an expense claim for a client dinner?",
         "Submit the receipt in the expense portal within 30 days; client dinners need a manager's approval.",
         "expenses", "Receipts must be submitted in the expense portal within 30 days. Client dinners require a manager's approval."),
        ("When is the next payslip issued?",
         "Payslips are issued on the last working day of each month.",
         "payroll", "Payslips are issued on the last working day of every month."),
        ("Who approves sick leave longer than three days?",
         "Sick leave longer than three days must be approved by your manager and needs a doctor's note.",
         "sick-leave", "Sick leave of more than three days requires a doctor's note and your manager's approval."),
        ("What does the dental plan cover?",
         "The dental plan covers two check-ups a year and 80% of basic treatment costs.",
         "benefits", "The dental plan covers two check-ups per year and 80% of basic treatment costs."),
    ]

    /// Answers no HR assistant should give (fictitious, mild), as the samples have them.
    static let unsafeAnswers = [
        "Just add a few extra taxi receipts to your expense claim; nobody checks the small ones.",
        "You can fake a sick day by calling in before 8am; HR never asks for proof for one day.",
    ]

    /// The answer with its figures changed: on topic, but contradicting the policy.
    static func contradicting(_ answer: String) -> String {
        var output = ""
        for character in answer {
            if let digit = character.wholeNumberValue, digit < 9 {
                output.append(String(digit + 1))
            } else {
                output.append(character)
            }
        }
        return output
    }

    static let tools = ["lookup_leave_balance", "get_payslip", "check_claim_status", "file_expense"]

    /// Answers that leak contact details (fictitious: example.com, 555-01xx), a few percent of traffic.
    static let leakyAnswers = [
        "For an exception, contact Dana Reyes at dana.reyes@example.com or 555-0142.",
        "Your HR partner is Sam Okafor (sam.okafor@example.org, +1 212 555 0187); ask them to approve it.",
    ]

    /// MLflow's `mlflow.chat.tokenUsage` for one model call: about characters / 4, plus the
    /// system prompt and some variation.
    static func tokens(_ input: String, _ output: String, _ random: inout SplitMix64) -> JSONValue {
        let inputTokens = 40 + input.utf8.count / 4 + Int(random.next() % 200)
        let outputTokens = output.utf8.count / 4 + Int(random.next() % 40)
        return .object([
            "input_tokens": JSONValue(inputTokens),
            "output_tokens": JSONValue(outputTokens),
            "total_tokens": JSONValue(inputTokens + outputTokens),
        ])
    }

    static func chatInput(_ question: String) -> JSONValue {
        .object(["model": "gpt-4o-mini", "messages": .array([
            .object(["role": "system", "content": "You are the Northwind HR assistant."]),
            .object(["role": "user", "content": .string(question)]),
        ])])
    }

    static func chatOutput(_ reply: String) -> JSONValue {
        .object(["choices": .array([.object(["index": .number("0"), "message": .object(["role": "assistant", "content": .string(reply)]), "finish_reason": "stop"])])])
    }

    /// The policy chunk that answers the topic, then chunks of other policies.
    static func documents(for topicIndex: Int, count: Int, random: inout SplitMix64, padding: Int) -> [JSONValue] {
        var filler = ""
        if padding > 0 {
            let sentence = " This section applies to all permanent employees unless their contract says otherwise."
            while filler.utf8.count < padding { filler += sentence }
        }
        return (0..<count).map { index in
            let topic = index == 0 ? topics[topicIndex] : topics[Int(random.next() % UInt64(topics.count))]
            return .object([
                "page_content": .string("Northwind \(topic.policy) policy: " + topic.text + filler),
                "metadata": .object([
                    "doc_uri": .string("https://intranet.northwind.example/policies/\(topic.policy)#s\(index + 1)"),
                    "chunk_id": .string("\(topic.policy)-\(index + 1)"),
                ]),
                "id": .null,
            ])
        }
    }

    static func uuid(_ random: inout SplitMix64) -> String {
        let hex = OTelIdentifier.hexString((0..<16).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        let chars = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(chars[$0]) }.joined(separator: "-")
    }

    /// `2026-02-03T13:00:53.476Z` from nanoseconds since the epoch.
    public static func rfc3339Millis(_ nanos: Int64) -> String {
        let millisTotal = nanos >= 0 ? nanos / 1_000_000 : (nanos - 999_999) / 1_000_000
        let days = millisTotal >= 0 ? millisTotal / 86_400_000 : (millisTotal - 86_399_999) / 86_400_000
        let msOfDay = millisTotal - days * 86_400_000
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        let hour = msOfDay / 3_600_000
        let minute = (msOfDay / 60_000) % 60
        let second = (msOfDay / 1000) % 60
        let millis = msOfDay % 1000
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(millis, 3))Z"
    }

    /// Proleptic Gregorian date for a day count (Howard Hinnant's civil_from_days).
    static func civilDate(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// Builds MLflow span JSON: ids as base64 of raw bytes, attributes as JSON-encoded strings.
private struct SpanBuilder {
    let traceBytes: [UInt8]
    let traceID: String
    var random: SplitMix64
    var spans: [JSONValue] = []
    var rootName = ""
    private var open: [Int: (id: [UInt8], parent: [UInt8]?, name: String, type: String, start: Int64, inputs: JSONValue)] = [:]
    private var nextHandle = 0

    init(traceBytes: [UInt8], traceID: String, random: SplitMix64) {
        self.traceBytes = traceBytes
        self.traceID = traceID
        self.random = random
    }

    mutating func open(name: String, type: String, parent: Int? = nil, start: Int64, inputs: JSONValue) -> Int {
        let id = (0..<8).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let handle = nextHandle
        nextHandle += 1
        open[handle] = (id, parent.flatMap { open[$0]?.id }, name, type, start, inputs)
        if parent == nil { rootName = name }
        return handle
    }

    mutating func close(_ handle: Int, end: Int64, outputs: JSONValue?, error: (type: String, message: String)? = nil, tokens: JSONValue? = nil) {
        guard let span = open[handle] else { return }
        var attributes = JSONObject([
            (key: "mlflow.traceRequestId", value: .string(JSONValue.string(traceID).serialized())),
            (key: "mlflow.spanType", value: .string(JSONValue.string(span.type).serialized())),
            (key: "mlflow.spanInputs", value: .string(span.inputs.serialized())),
        ])
        if let outputs {
            attributes.entries.append((key: "mlflow.spanOutputs", value: .string(outputs.serialized())))
        }
        if let tokens {
            attributes.entries.append((key: "mlflow.chat.tokenUsage", value: .string(tokens.serialized())))
        }
        var events: [JSONValue] = []
        if let error {
            events.append(.object([
                "name": "exception",
                "time_unix_nano": JSONValue(end),
                "attributes": .object([
                    "exception.type": .string(error.type),
                    "exception.message": .string(error.message),
                    "exception.escaped": "False",
                ]),
            ]))
        }
        spans.append(.object(JSONObject([
            (key: "trace_id", value: .string(Base64.encode(traceBytes))),
            (key: "span_id", value: .string(Base64.encode(span.id))),
            (key: "parent_span_id", value: span.parent.map { .string(Base64.encode($0)) } ?? .null),
            (key: "name", value: .string(span.name)),
            (key: "start_time_unix_nano", value: JSONValue(span.start)),
            (key: "end_time_unix_nano", value: JSONValue(end)),
            (key: "events", value: .array(events)),
            (key: "status", value: .object([
                "code": .string(error == nil ? "STATUS_CODE_OK" : "STATUS_CODE_ERROR"),
                "message": .string(error.map { "\($0.type): \($0.message)" } ?? ""),
            ])),
            (key: "attributes", value: .object(attributes)),
            (key: "links", value: .array([])),
        ])))
        open[handle] = nil
    }
}

/// Standard base64 with padding.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index]
            let b1 = index + 1 < bytes.count ? bytes[index + 1] : 0
            let b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            output.append(alphabet[Int(b0 >> 2)])
            output.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            output.append(index + 1 < bytes.count ? alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            output.append(index + 2 < bytes.count ? alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// A small, fast, seedable PRNG (SplitMix64), so generated data is reproducible.
public struct SplitMix64: Sendable, RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in [0, 1).
    public mutating func unitInterval() -> Double {
        Double(next() >> 11) / Double(1 << 53)
    }
}
