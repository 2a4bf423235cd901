import AssayCore
import AssayScoring
import Testing

@Suite("pii scorer")
struct PIIScorerTests {
    let scorer = PIIScorer(name: "no_pii")

    @Test("no exactly on responses labelled has_pii, with the labelled kinds", arguments: Samples.forArguments)
    func matchesLabels(sample: LabelledTrace) throws {
        let result = scorer.result(sample.trace)
        if sample.flag("errored") == true {
            #expect(result.isNotApplicable)
            return
        }
        let hasPII = try #require(sample.flag("has_pii") as Bool?)
        #expect(result.feedbackValue == (hasPII ? .no : .yes))
        let outcome = scorer.evaluate(sample.trace)
        let found = Set(outcome.extraMetadata["pii_kinds_found"]?.split(separator: ",").map(String.init) ?? [])
        #expect(found == sample.piiTypes)
        let rationale = try #require(result.rationale)
        for kind in sample.piiTypes {
            #expect(rationale.contains(kind), "rationale should name \(kind): \(rationale)")
        }
    }

    @Test("the rationale never repeats the PII", arguments: Samples.forArguments.filter { $0.flag("has_pii") == true })
    func rationaleHasNoPII(sample: LabelledTrace) throws {
        let outcome = scorer.evaluate(sample.trace)
        let rationale = try #require(outcome.result.rationale)
        #expect(rationale.hasPrefix("PII found in the response: "))
        #expect(rationale.contains("no = PII present"))
        // Nothing the detector would flag, and no e-mail or digit run from the response.
        #expect(PIIDetector.counts(in: rationale).isEmpty)
        #expect(!rationale.contains("@"))
        #expect(!rationale.contains("555"))
        for value in outcome.extraMetadata.values {
            #expect(PIIDetector.counts(in: value).isEmpty && !value.contains("@"))
        }
    }

    @Test func labelQuirkIsStillThere() throws {
        let sample = try #require(Samples.forArguments.first { LabelQuirks.diners14AlsoLabelledPhone.contains($0.trace.traceID) })
        #expect(sample.labelledPIITypes == ["phone", "credit_card"])
        let response = try #require(TraceText.response(of: sample.trace))
        #expect(PIIDetector.counts(in: response) == [.creditCard: 1])
        // The response's only digit groups are the card's 14 digits and the expiry "11/27".
        #expect(response.filter(\.isNumber).count == 14 + 4)
    }

    @Test func passesOnTheMaskedCard() throws {
        let sample = try Samples.first("tool_agent", "pii_masked")
        let result = scorer.result(sample.trace)
        #expect(result.feedbackValue == .yes)
        #expect(result.rationale?.contains("yes = no PII found") == true)
        // The request carries the full card number.
        #expect(PIIScorer(name: "request_pii", field: .request).result(sample.trace).feedbackValue == .no)
    }

    @Test func onlyConfiguredKindsCount() throws {
        let sample = try Samples.first("chat", "pii") // a card number
        #expect(PIIScorer(name: "x", kinds: [.email, .phone]).result(sample.trace).feedbackValue == .yes)
        #expect(PIIScorer(name: "x", kinds: [.creditCard]).result(sample.trace).feedbackValue == .no)
        let both = PIIScorer(name: "x").evaluate(rootTrace(outputs: "mail x.y@example.com or call (801) 555-0175, 801-555-0104"))
        #expect(both.result.rationale?.contains("1 email, 2 phone") == true)
        #expect(both.extraMetadata["pii_kinds_found"] == "email,phone")
        #expect(both.extraMetadata["pii_kinds_checked"] == "email,phone,credit_card,iban")
    }

    @Test func notApplicableWithoutAResponse() throws {
        let sample = try Samples.first("rag", "llm_error")
        guard case .notApplicable(let reason) = scorer.result(sample.trace) else {
            Issue.record("expected not applicable")
            return
        }
        #expect(reason.contains("errored"))
        #expect(scorer.result(rootTrace(outputs: "   ")).isNotApplicable)
        #expect(scorer.result(rootTrace(outputs: nil)).isNotApplicable)
    }
}

@Suite("no_error scorer")
struct NoErrorScorerTests {
    @Test("checking spans: yes exactly when no span failed", arguments: Samples.forArguments)
    func withSpans(sample: LabelledTrace) throws {
        let result = NoErrorScorer(name: "no_error").result(sample.trace)
        let hasErrorSpan = try #require(sample.flag("has_error_span") as Bool?)
        #expect(result.feedbackValue == (hasErrorSpan ? .no : .yes))
        if hasErrorSpan, let errorType = sample.text("error_type") {
            #expect(result.rationale?.contains(errorType) == true, "\(result)")
        }
    }

    @Test("trace state only: yes exactly when not errored", arguments: Samples.forArguments)
    func stateOnly(sample: LabelledTrace) throws {
        let result = NoErrorScorer(name: "no_error", checkSpans: false).result(sample.trace)
        let errored = try #require(sample.flag("errored") as Bool?)
        #expect(result.feedbackValue == (errored ? .no : .yes))
    }

    @Test func handledToolErrorFailsOnlyWhenSpansAreChecked() throws {
        let sample = try Samples.first("tool_agent", "tool_error_handled")
        let checked = NoErrorScorer(name: "e").evaluate(sample.trace)
        #expect(checked.result.feedbackValue == .no)
        #expect(checked.extraMetadata == ["trace_state": "OK", "error_spans": "1"])
        #expect(NoErrorScorer(name: "e", checkSpans: false).result(sample.trace).feedbackValue == .yes)
    }

    @Test func rationaleNamesSpansAndTypesButNotMessages() {
        var spans = [span("root", name: "agent", status: .error, statusMessage: "ValueError: user said 4111 1111 1111 1111")]
        for index in 0..<7 {
            spans.append(span("t\(index)", parent: "root", name: "tool\(index)", status: .error, statusMessage: "no type here"))
        }
        let result = NoErrorScorer(name: "e").result(trace(spans, state: .error))
        let rationale = result.rationale ?? ""
        #expect(rationale.hasPrefix("The trace state is ERROR; 8 spans have status ERROR: agent (ValueError), tool0, "))
        #expect(rationale.contains("and 3 more"))
        #expect(!rationale.contains("4111"))
        let exceptionEvent = SpanEvent(name: "exception", timeNanos: 1, attributes: ["exception.type": "TimeoutError", "exception.message": "secret"])
        let withEvent = trace([span("root", name: "tool", status: .error, events: [exceptionEvent])])
        #expect(NoErrorScorer(name: "e").result(withEvent).rationale == "1 span has status ERROR: tool (TimeoutError) (no = an error occurred).")
    }

    @Test func inProgressIsNotApplicable() {
        #expect(NoErrorScorer(name: "e").result(trace([span("root")], state: .inProgress)).isNotApplicable)
    }
}

@Suite("latency scorer")
struct LatencyScorerTests {
    @Test("thresholds against the labelled execution_duration_ms", arguments: Samples.forArguments)
    func thresholds(sample: LabelledTrace) throws {
        let duration = try #require(sample.integer("execution_duration_ms"))
        let atLimit = LatencyScorer(name: "fast", maxMillis: Double(duration)).evaluate(sample.trace)
        #expect(atLimit.result.feedbackValue == .yes)
        #expect(atLimit.extraMetadata["duration_ms"] == String(duration))
        #expect(LatencyScorer(name: "fast", maxMillis: Double(duration) - 0.5).result(sample.trace).feedbackValue == .no)
    }

    @Test func rationaleAndFallbackToTheRootSpan() {
        let fast = LatencyScorer(name: "fast", maxMillis: 5000)
        #expect(fast.result(trace([span("root")], durationMillis: 1915)).rationale == "The trace took 1915 ms, within the limit of 5000 ms (yes = fast enough).")
        #expect(fast.result(trace([span("root")], durationMillis: 5913)).rationale == "The trace took 5913 ms, over the limit of 5000 ms (no = too slow).")
        // No execution duration: root span end − start (2.5 s here).
        let fromRoot = trace([span("root", start: 1_000_000_000, end: 3_500_000_000)], durationMillis: nil)
        #expect(LatencyScorer(name: "f", maxMillis: 2500).result(fromRoot).feedbackValue == .yes)
        #expect(LatencyScorer(name: "f", maxMillis: 2499.9).result(fromRoot).feedbackValue == .no)
    }

    @Test func notApplicableWithoutADuration() {
        let scorer = LatencyScorer(name: "f", maxMillis: 100)
        #expect(scorer.result(trace([span("root", end: nil)], durationMillis: nil)).isNotApplicable)
        #expect(scorer.result(trace([span("a"), span("b")], durationMillis: nil)).isNotApplicable)
        #expect(scorer.result(trace([span("root")], state: .inProgress, durationMillis: 10)).isNotApplicable)
    }
}

@Suite("token_usage scorer")
struct TokenUsageScorerTests {
    /// MLflow's own trace-level total, from the raw metadata.
    static func metadataTotal(_ trace: Trace) -> Int64? {
        guard let text = trace.metadata["mlflow.trace.tokenUsage"], let value = try? JSONValue(parsing: text) else { return nil }
        return value["total_tokens"]?.int64Value
    }

    @Test("the sum over LLM spans equals MLflow's mlflow.trace.tokenUsage", arguments: Samples.forArguments)
    func totals(sample: LabelledTrace) throws {
        let outcome = TokenUsageScorer(name: "tokens").evaluate(sample.trace)
        let reporting = sample.trace.spans.filter { $0.attributes["mlflow.chat.tokenUsage"] != nil }
        guard !reporting.isEmpty else {
            // Only a rate-limited first call: no usage anywhere.
            #expect(Self.metadataTotal(sample.trace) == nil)
            #expect(outcome.result.isNotApplicable)
            return
        }
        let expected = try #require(Self.metadataTotal(sample.trace))
        #expect(outcome.result.feedbackValue == .number(Double(expected)))
        #expect(outcome.extraMetadata["total_tokens"] == String(expected))
        #expect(outcome.extraMetadata["usage_source"] == "spans")
        #expect(outcome.extraMetadata["usage_spans"] == String(reporting.count))
    }

    @Test func toolAgentSumsBothCompletions() throws {
        let sample = try Samples.first("tool_agent", "ok")
        let usage = try #require(TokenUsage.of(sample.trace))
        #expect(usage.spanCount == 2)
        #expect(usage.totalTokens == (usage.inputTokens ?? 0) + (usage.outputTokens ?? 0))
        let limit = usage.totalTokens
        #expect(TokenUsageScorer(name: "t", maxTotalTokens: limit).result(sample.trace).feedbackValue == .yes)
        let over = TokenUsageScorer(name: "t", maxTotalTokens: limit - 1).evaluate(sample.trace)
        #expect(over.result.feedbackValue == .no)
        #expect(over.extraMetadata["max_total_tokens"] == String(limit - 1))
    }

    @Test func nestedReportingSpansAreNotCountedTwiceAndOtherConventionsAreRead() {
        let usage: JSONValue = ["input_tokens": 10, "output_tokens": 5, "total_tokens": 15]
        let spans = [
            span("root", type: "AGENT"),
            span("wrapper", parent: "root", type: "LLM", attributes: ["mlflow.chat.tokenUsage": usage]),
            span("client", parent: "wrapper", type: "CHAT_MODEL", attributes: ["mlflow.chat.tokenUsage": usage]),
            span("genai", parent: "root", attributes: ["gen_ai.usage.input_tokens": 7, "gen_ai.usage.output_tokens": "3"]),
            span("openinference", parent: "root", attributes: ["llm.token_count.prompt": 1, "llm.token_count.completion": 2, "llm.token_count.total": 3]),
            span("encoded", parent: "root", attributes: ["mlflow.chat.tokenUsage": .string(#"{"input_tokens": 1, "output_tokens": 1}"#)]),
        ]
        let result = TokenUsage.of(trace(spans))
        #expect(result == TokenUsage(inputTokens: 19, outputTokens: 11, totalTokens: 30, spanCount: 4, source: .spans))
    }

    @Test func fallsBackToTraceMetadataThenNotApplicable() {
        let metadata = ["mlflow.trace.tokenUsage": #"{"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}"#]
        let outcome = TokenUsageScorer(name: "t").evaluate(trace([span("root")], metadata: metadata))
        #expect(outcome.result.feedbackValue == .number(7))
        #expect(outcome.extraMetadata["usage_source"] == "trace_metadata")
        #expect(TokenUsageScorer(name: "t").result(trace([span("root")])).isNotApplicable)
    }
}

@Suite("regex, contains and not_contains scorers")
struct TextMatchScorerTests {
    @Test func regexOnRequestAndResponse() throws {
        let sample = try Samples.first("tool_agent", "ok") // "How many vacation days do I have left? My employee ID is NW-97935."
        #expect(RegexScorer(name: "r", pattern: #"NW-\d{5}"#, field: .request).result(sample.trace).feedbackValue == .yes)
        #expect(RegexScorer(name: "r", pattern: #"NW-\d{5}"#, field: .response).result(sample.trace).feedbackValue == .no)
        #expect(RegexScorer(name: "r", pattern: #"NW-\d{5}"#, field: .request, mustMatch: false).result(sample.trace).feedbackValue == .no)
        #expect(RegexScorer(name: "r", pattern: #"(?i)^as of"#).result(sample.trace).feedbackValue == .yes)
        let outcome = RegexScorer(name: "r", pattern: #"\d+\.\d+ days"#).evaluate(sample.trace)
        #expect(outcome.result == .value(.yes, rationale: "The configured pattern matches the response; it must match (yes)."))
        #expect(outcome.extraMetadata == ["matched": "true", "truncated": "false"])
    }

    @Test func regexRunsOnABoundedPrefix() {
        let long = String(repeating: "a", count: RegexScorer.maximumTextBytes) + "needle"
        let outcome = RegexScorer(name: "r", pattern: "needle").evaluate(rootTrace(outputs: .string(long)))
        #expect(outcome.result.feedbackValue == .no)
        #expect(outcome.extraMetadata["truncated"] == "true")
        #expect(outcome.result.rationale?.contains("first 32 KiB") == true)
        // A multi-byte character straddling the limit is dropped whole.
        let straddling = String(repeating: "a", count: RegexScorer.maximumTextBytes - 1) + "é"
        #expect(RegexScorer(name: "r", pattern: "é").result(rootTrace(outputs: .string(straddling))).feedbackValue == .no)
    }

    @Test func containsAndNotContains() throws {
        let sample = try Samples.first("rag", "ok")
        let response = try #require(TraceText.response(of: sample.trace))
        let word = try #require(response.split(separator: " ").dropFirst(2).first.map(String.init))
        #expect(ContainsScorer(name: "c", text: word.uppercased()).result(sample.trace).feedbackValue == .yes)
        #expect(ContainsScorer(name: "c", text: word.uppercased(), caseSensitive: true).result(sample.trace).feedbackValue == (word == word.uppercased() ? .yes : .no))
        #expect(ContainsScorer(name: "c", text: "zebra crossing").result(sample.trace).feedbackValue == .no)
        #expect(ContainsScorer(name: "nc", text: "zebra crossing", negated: true).result(sample.trace).feedbackValue == .yes)
        #expect(ContainsScorer(name: "nc", text: word, negated: true).result(sample.trace).feedbackValue == .no)
        let request = try #require(sample.text("request_text"))
        let firstRequestWord = try #require(request.split(separator: " ").first.map(String.init))
        #expect(ContainsScorer(name: "c", text: firstRequestWord, field: .request).result(sample.trace).feedbackValue == .yes)
        let outcome = ContainsScorer(name: "nc", text: "secret canary", negated: true).evaluate(rootTrace(outputs: "has the Secret Canary inside"))
        #expect(outcome.result == .value(.no, rationale: "The response contains the configured text (ignoring case); it must not contain it (no)."))
        #expect(outcome.extraMetadata == ["found": "true"])
        #expect(ContainsScorer(name: "nc", text: "x", negated: true).kind == .notContains)
    }

    @Test func notApplicableWithoutTheField() throws {
        let errored = try Samples.first("chat", "llm_error")
        #expect(RegexScorer(name: "r", pattern: "x").result(errored.trace).isNotApplicable)
        #expect(RegexScorer(name: "r", pattern: "Explain", field: .request).result(errored.trace).feedbackValue == .yes)
        #expect(ContainsScorer(name: "c", text: "x", negated: true).result(errored.trace).isNotApplicable)
        #expect(ContainsScorer(name: "c", text: "x", field: .request).result(trace([span("root")])).isNotApplicable)
    }
}

@Suite("output_length and valid_json scorers")
struct ShapeScorerTests {
    @Test func outputLengthBounds() throws {
        let sample = try Samples.first("tool_agent", "pii")
        let length = try #require(sample.text("response_text")).count
        #expect(OutputLengthScorer(name: "l", minChars: length, maxChars: length).result(sample.trace).feedbackValue == .yes)
        #expect(OutputLengthScorer(name: "l", minChars: length + 1, maxChars: nil).result(sample.trace).feedbackValue == .no)
        #expect(OutputLengthScorer(name: "l", minChars: nil, maxChars: length - 1).result(sample.trace).feedbackValue == .no)
        let outcome = OutputLengthScorer(name: "l", minChars: 1, maxChars: 2000).evaluate(sample.trace)
        #expect(outcome.extraMetadata == ["length_chars": String(length)])
        #expect(outcome.result.rationale == "The response has \(length) characters, at least 1 and at most 2000 as required (yes).")
        // Characters, not bytes or scalars.
        #expect(OutputLengthScorer(name: "l", minChars: nil, maxChars: 3).result(rootTrace(outputs: "é🇨🇭e\u{301}")).feedbackValue == .yes)
        // An empty response has length 0; a missing one is not applicable.
        #expect(OutputLengthScorer(name: "l", minChars: 1, maxChars: nil).result(rootTrace(outputs: "")).feedbackValue == .no)
        #expect(OutputLengthScorer(name: "l", minChars: 1, maxChars: nil).result(try Samples.first("rag", "llm_error").trace).isNotApplicable)
    }

    @Test("valid_json", arguments: [
        (#"{"a": 1}"#, true, false, "object"),
        ("  [1, 2, 3]\n", true, false, "array"),
        ("42", true, false, "number"),
        ("```json\n{\"answer\": \"yes\"}\n```", true, true, "object"),
        ("```\n[true]\n```", true, true, "array"),
        ("Sure! Here it is: {\"a\": 1}", false, false, ""),
        ("{\"a\": 1,}", false, false, ""),
        ("```json\n{\"a\": 1}\n``` and more ```", false, false, ""),
    ] as [(String, Bool, Bool, String)])
    func validJSON(text: String, valid: Bool, fenced: Bool, type: String) {
        let outcome = ValidJSONScorer(name: "j").evaluate(rootTrace(outputs: .string(text)))
        #expect(outcome.result.feedbackValue == (valid ? .yes : .no))
        #expect(outcome.extraMetadata["fenced"] == (fenced ? "true" : "false"))
        if valid { #expect(outcome.extraMetadata["json_type"] == type) }
    }

    @Test func validJSONWithoutFenceStripping() {
        let fenced = rootTrace(outputs: "```json\n{\"a\": 1}\n```")
        #expect(ValidJSONScorer(name: "j", stripCodeFence: false).result(fenced).feedbackValue == .no)
        #expect(ValidJSONScorer(name: "j").result(fenced).feedbackValue == .yes)
    }

    @Test func validJSONOnSamples() throws {
        // Plain-text answers are not JSON; a structured root output is JSON text by construction.
        #expect(ValidJSONScorer(name: "j").result(try Samples.first("rag", "ok").trace).feedbackValue == .no)
        #expect(ValidJSONScorer(name: "j").result(rootTrace(outputs: ["answer_id": 7, "ok": true])).feedbackValue == .yes)
        #expect(ValidJSONScorer(name: "j").result(try Samples.first("chat", "llm_error").trace).isNotApplicable)
    }
}
