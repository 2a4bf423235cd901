import AssayCore
import AssayScoring
import Testing

@Suite("Fixture samples load and cover the cases the tests rely on")
struct FixtureIntegrityTests {
    @Test func samplesDecodeAndCoverEveryCase() throws {
        let samples = try Samples.all()
        #expect(samples.count == 25)
        #expect(Samples.forArguments.count == samples.count)
        let variants = Set(samples.map { "\($0.kind)/\($0.variant)" })
        for needed in ["rag/ok", "rag/ungrounded", "rag/pii", "rag/llm_error", "chat/pii", "chat/out_of_scope", "chat/llm_error",
                       "tool_agent/ok", "tool_agent/tool_error", "tool_agent/tool_error_handled", "tool_agent/pii",
                       "tool_agent/pii_masked", "tool_agent/llm_error"] {
            #expect(variants.contains(needed), "missing \(needed)")
        }
        #expect(samples.contains { $0.integer("num_retriever_spans") == 2 })
        #expect(samples.filter { $0.flag("has_pii") == true }.count >= 10)
        #expect(samples.contains { $0.piiTypes.contains("credit_card") })
    }
}

@Suite("TraceText on the sample traces")
struct TraceTextSampleTests {
    @Test("request equals the label's request_text", arguments: Samples.forArguments)
    func request(sample: LabelledTrace) throws {
        let expected = try #require(sample.text("request_text"))
        #expect(TraceText.request(of: sample.trace) == expected)
    }

    @Test("response equals the label's response_text (nil when errored)", arguments: Samples.forArguments)
    func response(sample: LabelledTrace) {
        let expected = sample.text("response_text")
        #expect(TraceText.response(of: sample.trace) == expected)
        if sample.flag("errored") == true {
            #expect(TraceText.response(of: sample.trace) == nil)
        }
    }

    @Test("documents exactly when has_retriever, one group per RETRIEVER span", arguments: Samples.forArguments)
    func documents(sample: LabelledTrace) throws {
        let groups = TraceText.documents(of: sample.trace)
        let hasRetriever = try #require(sample.flag("has_retriever") as Bool?)
        #expect(groups.isEmpty == !hasRetriever)
        #expect(Int64(groups.count) == (sample.integer("num_retriever_spans") ?? -1))
        let retrieverIDs = Set(sample.trace.spans.filter { $0.spanType == "RETRIEVER" }.map(\.spanID))
        for group in groups {
            #expect(retrieverIDs.contains(group.spanID))
            #expect(!group.documents.isEmpty, "retriever \(group.spanName) returned no documents")
            for document in group.documents {
                #expect(!document.content.isEmpty)
                #expect(document.docURI?.hasPrefix("https://") == true)
            }
        }
    }

    @Test func twoRetrieverGroupsAreInStartOrderWithTheirOwnDocuments() throws {
        let sample = try #require(Samples.forArguments.first { $0.integer("num_retriever_spans") == 2 })
        let groups = TraceText.documents(of: sample.trace)
        #expect(groups.map(\.spanName) == ["policy_search", "hr_faq_search"])
        let faq = try #require(groups.last)
        #expect(faq.documents.allSatisfy { $0.docURI?.contains("/hr/faq/") == true })
    }
}

@Suite("TraceText on odd shapes")
struct TraceTextShapeTests {
    @Test func plainStringsNumbersAndNull() throws {
        #expect(TraceText.requestText(from: "hello") == "hello")
        #expect(TraceText.responseText(from: "") == "")
        #expect(TraceText.responseText(from: 42) == "42")
        #expect(TraceText.responseText(from: true) == "true")
        #expect(TraceText.responseText(from: .null) == nil)
    }

    @Test func chatMessageListPicksLastUserForRequestsAndLastAssistantForResponses() throws {
        let messages = try json("""
            [{"role": "system", "content": "be nice"},
             {"role": "user", "content": "first"},
             {"role": "assistant", "content": "answer one"},
             {"role": "user", "content": "second"},
             {"role": "assistant", "content": null, "tool_calls": [{"id": "c1"}]},
             {"role": "tool", "content": "tool says"},
             {"role": "assistant", "content": "final answer"}]
            """)
        #expect(TraceText.requestText(from: messages) == "second")
        #expect(TraceText.responseText(from: messages) == "final answer")
    }

    @Test func messagesWrapperAndContentParts() throws {
        let request = try json("""
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "part one"},
                                                        {"type": "image_url", "image_url": {"url": "x"}},
                                                        {"type": "text", "text": "part two"}]}]}
            """)
        #expect(TraceText.requestText(from: request) == "part one\npart two")
        let response = try json(#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "output_text", "text": "a"}]}]}"#)
        #expect(TraceText.responseText(from: response) == "a")
    }

    @Test func aMessageListWithoutAnAssistantHasNoResponse() throws {
        let echoed = try json(#"{"messages": [{"role": "user", "content": "my card is 4111 1111 1111 1111"}]}"#)
        #expect(TraceText.responseText(from: echoed) == nil)
        #expect(TraceText.requestText(from: echoed) == "my card is 4111 1111 1111 1111")
        // A request without a user message falls back to the last message with text.
        let systemOnly = try json(#"[{"role": "system", "content": "only system"}]"#)
        #expect(TraceText.requestText(from: systemOnly) == "only system")
        #expect(TraceText.requestText(from: try json(#"{"messages": []}"#)) == nil)
    }

    @Test func langChainStyleTypes() throws {
        let messages = try json(#"[{"type": "human", "content": "hi there"}, {"type": "ai", "content": "hello"}]"#)
        #expect(TraceText.requestText(from: messages) == "hi there")
        #expect(TraceText.responseText(from: messages) == "hello")
    }

    @Test func openAIChatCompletionUsesTheFirstChoice() throws {
        let completion = try json("""
            {"id": "chatcmpl-1", "object": "chat.completion",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "first choice"}},
                         {"index": 1, "message": {"role": "assistant", "content": "second choice"}}],
             "usage": {"total_tokens": 3}}
            """)
        #expect(TraceText.responseText(from: completion) == "first choice")
        let legacy = try json(#"{"choices": [{"text": "legacy completion"}]}"#)
        #expect(TraceText.responseText(from: legacy) == "legacy completion")
        // A tool-call-only completion has no content: its JSON text stands in.
        let toolCall = try json(#"{"choices": [{"message": {"role": "assistant", "content": null}}]}"#)
        #expect(TraceText.responseText(from: toolCall) == #"{"choices":[{"message":{"role":"assistant","content":null}}]}"#)
    }

    @Test func commonKeysSingleValuesAndFallbackJSON() throws {
        #expect(TraceText.requestText(from: try json(#"{"question": "q?", "top_k": 5}"#)) == "q?")
        #expect(TraceText.requestText(from: try json(#"{"top_k": 5, "query": "search me"}"#)) == "search me")
        #expect(TraceText.requestText(from: try json(#"{"user_question": "only string", "n": 1}"#)) == "only string")
        #expect(TraceText.responseText(from: try json(#"{"input": "the question", "output": "the answer"}"#)) == "the answer")
        #expect(TraceText.requestText(from: try json(#"{"input": "the question", "output": "the answer"}"#)) == "the question")
        #expect(TraceText.responseText(from: try json(#"{"answer": "yes", "sources": ["a", "b"]}"#)) == "yes")
        #expect(TraceText.requestText(from: try json(#"{"inputs": {"question": "nested"}}"#)) == "nested")
        #expect(TraceText.requestText(from: try json(#"{"input": [{"role": "user", "content": "responses api"}]}"#)) == "responses api")
        let responsesOutput = try json("""
            {"output": [{"type": "reasoning", "summary": []},
                        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "from responses"}]}]}
            """)
        #expect(TraceText.responseText(from: responsesOutput) == "from responses")
        #expect(TraceText.responseText(from: try json(#"{"a": 1, "b": [true, null]}"#)) == #"{"a":1,"b":[true,null]}"#)
        #expect(TraceText.responseText(from: try json(#"["x", "y"]"#)) == #"["x","y"]"#)
    }

    @Test func rootInputsOutputsThenPreviews() throws {
        // Root values win.
        let withRoot = trace([span("root", inputs: "from root", outputs: "root answer")], requestPreview: "preview q", responsePreview: "preview a")
        #expect(TraceText.request(of: withRoot) == "from root")
        #expect(TraceText.response(of: withRoot) == "root answer")
        // No root values: MLflow 3 previews are JSON-encoded and decoded when they parse.
        let previews = trace([span("root")], requestPreview: #"{"question": "decoded?"}"#, responsePreview: #""a quoted answer""#)
        #expect(TraceText.request(of: previews) == "decoded?")
        #expect(TraceText.response(of: previews) == "a quoted answer")
        // A preview that is not JSON (plain or truncated) is taken as it is; an empty one is absent.
        let plain = trace([span("root")], requestPreview: #"{"question": "trunc"#, responsePreview: "")
        #expect(TraceText.request(of: plain) == #"{"question": "trunc"#)
        #expect(TraceText.response(of: plain) == nil)
        // Two roots: no root span, previews are used.
        let twoRoots = trace([span("a", outputs: "x"), span("b", outputs: "y")], responsePreview: "preview")
        #expect(TraceText.response(of: twoRoots) == "preview")
        // A JSON null output counts as absent.
        let nullOutput = trace([span("root", outputs: .null)], responsePreview: "from preview")
        #expect(TraceText.response(of: nullOutput) == "from preview")
    }

    @Test func anErroredTraceWithoutOutputsHasNoResponseEvenWithAPreview() {
        let errored = trace([span("root", status: .error, inputs: "q")], state: .error, responsePreview: "partial")
        #expect(TraceText.response(of: errored) == nil)
        let erroredWithOutputs = trace([span("root", status: .error, inputs: "q", outputs: "partial answer")], state: .error)
        #expect(TraceText.response(of: erroredWithOutputs) == "partial answer")
    }

    @Test func onlyTopLevelRetrieversCountAndDocumentShapesAreRead() throws {
        let docsA = try json("""
            [{"page_content": "alpha", "metadata": {"doc_uri": "https://a/1", "chunk_id": "1"}},
             {"content": "beta", "doc_uri": "https://a/2"},
             {"text": "gamma"},
             {"page_content": "   "},
             {"metadata": {"doc_uri": "https://a/none"}},
             "plain string doc"]
            """)
        let inner = try json(#"[{"page_content": "inner doc", "metadata": {"doc_uri": "https://inner"}}]"#)
        let docsB = try json(#"{"documents": [{"page_content": "wrapped", "metadata": {"doc_uri": "https://b"}}]}"#)
        let spans = [
            span("root", type: "AGENT", start: 0, outputs: "answer"),
            span("r1", parent: "root", type: "RETRIEVER", start: 10, outputs: docsA),
            span("r1-inner", parent: "r1", type: "RETRIEVER", start: 11, outputs: inner),
            span("tool", parent: "root", type: "TOOL", start: 20),
            span("deep", parent: "tool", type: "RETRIEVER", start: 5, outputs: docsB),
            span("deeper", parent: "deep", type: "CHAIN", start: 6),
            span("deepest", parent: "deeper", type: "RETRIEVER", start: 7, outputs: inner),
            span("failed", parent: "root", type: "RETRIEVER", start: 30, status: .error),
        ]
        let groups = TraceText.documents(of: trace(spans))
        // Start order: deep (5), r1 (10), failed (30); r1-inner and deepest are nested under retrievers.
        #expect(groups.map(\.spanID) == ["deep", "r1", "failed"])
        #expect(groups[0].documents == [RetrievedDocument(content: "wrapped", docURI: "https://b")])
        #expect(groups[1].documents == [
            RetrievedDocument(content: "alpha", docURI: "https://a/1"),
            RetrievedDocument(content: "beta", docURI: "https://a/2"),
            RetrievedDocument(content: "gamma", docURI: nil),
            RetrievedDocument(content: "plain string doc", docURI: nil),
        ])
        #expect(groups[2].documents.isEmpty)
        #expect(TraceText.documents(of: trace([span("root", type: "CHAIN")])).isEmpty)
    }

    @Test func aParentCycleDoesNotHang() {
        let spans = [
            span("a", parent: "b", type: "RETRIEVER", outputs: ["doc a"]),
            span("b", parent: "a", type: "CHAIN"),
        ]
        #expect(TraceText.documents(of: trace(spans)).map(\.spanID) == ["a"])
    }
}
