import AssayCore
@testable import AssayOTLP
import AssayScoring
import Testing

/// Mapping rules for conventions the samples do not use (or use only partly), on small spans.
@Suite("Semantic mapping")
struct MappingTests {
    /// A one-span OTLP/JSON request with the given attributes (`key: AnyValue JSON`).
    static func span(
        _ attributes: [(String, String)], name: String = "s", spanID: String = "00000000000000a1",
        parent: String = "", events: String = "[]", start: Int64 = 1_000_000_000, end: Int64 = 3_500_000_000,
        status: String = "{}", traceID: String = "0123456789abcdef0123456789abcdef"
    ) -> String {
        let list = attributes.map { #"{"key":"\#($0.0)","value":\#($0.1)}"# }.joined(separator: ",")
        return #"{"traceId":"\#(traceID)","spanId":"\#(spanID)","parentSpanId":"\#(parent)","name":"\#(name)","kind":1,"startTimeUnixNano":"\#(start)","endTimeUnixNano":"\#(end)","attributes":[\#(list)],"events":\#(events),"status":\#(status)}"#
    }

    static func request(_ spans: [String]) -> [UInt8] {
        Array(#"{"resourceSpans":[{"resource":{"attributes":[{"key":"deployment.environment","value":{"stringValue":"staging"}}]},"scopeSpans":[{"spans":[\#(spans.joined(separator: ","))]}]}]}"#.utf8)
    }

    static func string(_ text: String) -> String {
        JSONValue.string(text).serialized().withStringValueWrapper
    }

    static func decodeSpan(_ attributes: [(String, String)], events: String = "[]", sourceLocation: SourceLocation = #_sourceLocation) throws -> Span {
        try #require(decodeOrFail(request([span(attributes, events: events)]), sourceLocation: sourceLocation).first?.spans.first)
    }

    @Test func mlflowAttributesWin() throws {
        let span = try Self.decodeSpan([
            ("mlflow.spanType", Self.string(#""RETRIEVER""#)),
            ("openinference.span.kind", Self.string("CHAIN")),
            ("mlflow.spanInputs", Self.string(#"{"query": "q"}"#)),
            ("mlflow.spanOutputs", Self.string(#"[{"page_content": "p", "metadata": {"doc_uri": "u"}}]"#)),
            ("input.value", Self.string("ignored")),
            ("mlflow.traceRequestId", Self.string(#""tr-1""#)),
            ("mlflow.notJSON", Self.string("plain")),
        ])
        #expect(span.spanType == "RETRIEVER")
        #expect(span.inputs == ["query": "q"])
        #expect(span.outputs == [["page_content": "p", "metadata": ["doc_uri": "u"]]])
        #expect(span.attributes["mlflow.spanInputs"] == nil)
        #expect(span.attributes["mlflow.spanOutputs"] == nil)
        #expect(span.attributes["mlflow.spanType"] == "RETRIEVER")
        #expect(span.attributes["mlflow.traceRequestId"] == "tr-1")
        #expect(span.attributes["mlflow.notJSON"] == "plain")
        #expect(span.attributes["input.value"] == "ignored")
    }

    @Test(arguments: [
        ("LLM", false, "LLM"), ("LLM", true, "CHAT_MODEL"), ("retriever", false, "RETRIEVER"), ("TOOL", false, "TOOL"),
        ("CHAIN", false, "CHAIN"), ("AGENT", false, "AGENT"), ("EMBEDDING", false, "EMBEDDING"), ("RERANKER", false, "RERANKER"),
    ])
    func openInferenceKinds(kind: String, chatMessages: Bool, expected: String) throws {
        var attributes = [("openinference.span.kind", Self.string(kind))]
        if chatMessages { attributes.append(("llm.input_messages.0.message.role", Self.string("user"))) }
        #expect(try Self.decodeSpan(attributes).spanType == expected)
    }

    @Test(arguments: [
        ("chat", "CHAT_MODEL"), ("generate_content", "CHAT_MODEL"), ("text_completion", "LLM"), ("embeddings", "EMBEDDING"),
        ("execute_tool", "TOOL"), ("invoke_agent", "AGENT"), ("create_agent", "AGENT"), ("retrieval", "RETRIEVER"), ("something_else", "UNKNOWN"),
    ])
    func genAIOperations(operation: String, expected: String) throws {
        #expect(try Self.decodeSpan([("gen_ai.operation.name", Self.string(operation))]).spanType == expected)
    }

    @Test func openInferenceValuesByMimeType() throws {
        let json = try Self.decodeSpan([
            ("input.value", Self.string(#"{"messages": [{"role": "user", "content": "hi"}]}"#)),
            ("input.mime_type", Self.string("application/json")),
            ("output.value", Self.string(#"{"looks": "like json"}"#)),
            ("output.mime_type", Self.string("text/plain")),
        ])
        #expect(json.inputs == ["messages": [["role": "user", "content": "hi"]]])
        #expect(json.outputs == .string(#"{"looks": "like json"}"#))
        let noMime = try Self.decodeSpan([("input.value", Self.string(#"[1, 2]"#)), ("output.value", Self.string("42"))])
        #expect(noMime.inputs == [1, 2])
        #expect(noMime.outputs == "42")
        let broken = try Self.decodeSpan([("input.value", Self.string("{not json")), ("input.mime_type", Self.string("application/json"))])
        #expect(broken.inputs == "{not json")
    }

    @Test func genAIPartsBecomeChatMessages() throws {
        let input = #"[{"role": "user", "parts": [{"type": "text", "content": "Book it"}]}, {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "book", "arguments": {"day": "Fri"}}]}, {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": {"ok": true}}]}, {"role": "user", "parts": [{"type": "text", "content": "And"}, {"type": "text", "content": "thanks"}]}]"#
        let output = #"[{"role": "assistant", "parts": [{"type": "text", "content": "Booked."}], "finish_reason": "stop"}]"#
        let span = try Self.decodeSpan([
            ("gen_ai.operation.name", Self.string("chat")),
            ("gen_ai.system_instructions", Self.string(#"[{"type": "text", "content": "Be brief."}]"#)),
            ("gen_ai.input.messages", Self.string(input)),
            ("gen_ai.output.messages", Self.string(output)),
            ("gen_ai.usage.input_tokens", #"{"intValue":"30"}"#),
            ("gen_ai.usage.output_tokens", #"{"intValue":"4"}"#),
        ])
        let expectedInputs: JSONValue = [
            ["role": "system", "content": "Be brief."],
            ["role": "user", "content": "Book it"],
            ["role": "assistant", "content": nil, "tool_calls": [["type": "function", "id": "c1", "function": ["name": "book", "arguments": #"{"day":"Fri"}"#]]]],
            ["role": "tool", "content": #"{"ok":true}"#, "tool_call_id": "c1"],
            ["role": "user", "content": "And\nthanks"],
        ]
        #expect(span.inputs == expectedInputs)
        #expect(span.outputs == [["role": "assistant", "content": "Booked.", "finish_reason": "stop"]])
        #expect(TraceText.requestText(from: try #require(span.inputs)) == "And\nthanks")
        #expect(TraceText.responseText(from: try #require(span.outputs)) == "Booked.")
        #expect(span.attributes["mlflow.chat.tokenUsage"] == ["input_tokens": 30, "output_tokens": 4, "total_tokens": 34])
        // The original attributes are kept.
        #expect(span.attributes["gen_ai.input.messages"] == .string(input))
    }

    @Test func genAIStructuredMessagesAndToolSpans() throws {
        // Messages as a structured AnyValue instead of JSON text.
        let structured = #"{"arrayValue":{"values":[{"kvlistValue":{"values":[{"key":"role","value":{"stringValue":"user"}},{"key":"parts","value":{"arrayValue":{"values":[{"kvlistValue":{"values":[{"key":"type","value":{"stringValue":"text"}},{"key":"content","value":{"stringValue":"hello"}}]}}]}}}]}}]}}"#
        let span = try Self.decodeSpan([("gen_ai.input.messages", structured)])
        #expect(span.inputs == [["role": "user", "content": "hello"]])
        let tool = try Self.decodeSpan([
            ("gen_ai.operation.name", Self.string("execute_tool")),
            ("gen_ai.tool.call.arguments", Self.string(#"{"id": 7}"#)),
            ("gen_ai.tool.call.result", Self.string("done")),
        ])
        #expect(tool.spanType == "TOOL")
        #expect(tool.inputs == ["id": 7])
        #expect(tool.outputs == "done")
    }

    @Test func openInferenceFlattenedMessagesAndDocuments() throws {
        let llm = try Self.decodeSpan([
            ("openinference.span.kind", Self.string("LLM")),
            ("llm.input_messages.0.message.role", Self.string("system")),
            ("llm.input_messages.0.message.content", Self.string("sys")),
            ("llm.input_messages.1.message.role", Self.string("user")),
            ("llm.input_messages.1.message.content", Self.string("question")),
            ("llm.output_messages.0.message.role", Self.string("assistant")),
            ("llm.output_messages.0.message.tool_calls.0.tool_call.id", Self.string("c1")),
            ("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", Self.string("f")),
            ("llm.token_count.prompt", #"{"intValue":"10"}"#),
            ("llm.token_count.completion", #"{"intValue":"2"}"#),
            ("llm.token_count.total", #"{"intValue":"12"}"#),
        ])
        #expect(llm.spanType == "CHAT_MODEL")
        #expect(llm.inputs == [["role": "system", "content": "sys"], ["role": "user", "content": "question"]])
        #expect(llm.outputs == [["role": "assistant", "content": nil, "tool_calls": [["type": "function", "id": "c1", "function": ["name": "f"]]]]])
        #expect(llm.attributes["mlflow.chat.tokenUsage"] == ["input_tokens": 10, "output_tokens": 2, "total_tokens": 12])

        let retriever = try Self.decodeSpan([
            ("openinference.span.kind", Self.string("RETRIEVER")),
            ("retrieval.documents.10.document.content", Self.string("ten")),
            ("retrieval.documents.2.document.content", Self.string("two")),
            ("retrieval.documents.2.document.id", Self.string("doc-2")),
            ("retrieval.documents.2.document.score", #"{"doubleValue":0.5}"#),
            ("retrieval.documents.10.document.metadata", Self.string(#"{"doc_uri": "https://x/10", "chunk_id": "c10"}"#)),
            ("retrieval.documents.999999999.document.content", Self.string("index too large: ignored")),
        ])
        #expect(retriever.outputs == [
            ["page_content": "two", "metadata": ["doc_uri": "doc-2", "score": 0.5], "id": "doc-2"],
            ["page_content": "ten", "metadata": ["doc_uri": "https://x/10", "chunk_id": "c10"]],
        ])
        let documents = TraceText.documents(from: retriever.outputs)
        #expect(documents == [RetrievedDocument(content: "two", docURI: "doc-2"), RetrievedDocument(content: "ten", docURI: "https://x/10")])
    }

    @Test func olderGenAIEventsAndTraceloopAttributes() throws {
        let events = #"[{"timeUnixNano":"1","name":"gen_ai.system.message","attributes":[{"key":"content","value":{"stringValue":"sys"}}]},{"timeUnixNano":"2","name":"gen_ai.user.message","attributes":[{"key":"content","value":{"stringValue":"Hi there"}}]},{"timeUnixNano":"3","name":"gen_ai.choice","attributes":[{"key":"message","value":{"stringValue":"{\"content\": \"Hello!\"}"}}]}]"#
        let span = try Self.decodeSpan([("gen_ai.request.model", Self.string("m"))], events: events)
        #expect(span.spanType == "LLM")
        #expect(span.inputs == [["role": "system", "content": "sys"], ["role": "user", "content": "Hi there"]])
        #expect(span.outputs == [["content": "Hello!", "role": "assistant"]])
        #expect(span.events.count == 3)

        let traceloop = try Self.decodeSpan([
            ("llm.request.type", Self.string("chat")),
            ("gen_ai.prompt.0.role", Self.string("user")),
            ("gen_ai.prompt.0.content", Self.string("q")),
            ("gen_ai.completion.0.role", Self.string("assistant")),
            ("gen_ai.completion.0.content", Self.string("a")),
        ])
        #expect(traceloop.spanType == "CHAT_MODEL")
        #expect(traceloop.inputs == [["role": "user", "content": "q"]])
        #expect(traceloop.outputs == [["role": "assistant", "content": "a"]])
    }
}

@Suite("Trace building")
struct TraceBuilderTests {
    typealias M = MappingTests

    @Test func wrapperRootLiftsFromTheModelWhenThereIsNoAgent() throws {
        let root = M.span([("http.route", M.string("/ask")), ("http.request.header.x-request-id", #"{"arrayValue":{"values":[{"stringValue":"req-1"}]}}"#)], name: "POST /ask", spanID: "00000000000000a1")
        let first = M.span([("gen_ai.operation.name", M.string("chat")), ("gen_ai.input.messages", M.string(#"[{"role": "user", "parts": [{"type": "text", "content": "Question?"}]}]"#)), ("gen_ai.output.messages", M.string(#"[{"role": "assistant", "parts": [{"type": "tool_call", "id": "1", "name": "f", "arguments": {}}]}]"#))], name: "chat 1", spanID: "00000000000000b1", parent: "00000000000000a1", start: 1_100_000_000, end: 1_500_000_000)
        let second = M.span([("gen_ai.operation.name", M.string("chat")), ("gen_ai.output.messages", M.string(#"[{"role": "assistant", "parts": [{"type": "text", "content": "Answer."}]}]"#)), ("session.id", M.string("conv-9"))], name: "chat 2", spanID: "00000000000000b2", parent: "00000000000000a1", start: 2_000_000_000, end: 3_000_000_000)
        var assembler = TraceAssembler()
        _ = assembler.add(decodeOrFail(M.request([second, root, first])))
        let trace = try #require(assembler.takeComplete().first)
        #expect(trace.traceID == "tr-0123456789abcdef0123456789abcdef")
        #expect(trace.canonicalTraceID == "0123456789abcdef0123456789abcdef")
        #expect(trace.spans.map(\.name) == ["POST /ask", "chat 1", "chat 2"])
        #expect(TraceText.request(of: trace) == "Question?")
        #expect(TraceText.response(of: trace) == "Answer.")
        #expect(trace.rootSpan?.attributes["assay.inputs_from_span_id"] == "00000000000000b1")
        #expect(trace.rootSpan?.attributes["assay.outputs_from_span_id"] == "00000000000000b2")
        #expect(trace.requestPreview == "Question?")
        #expect(trace.responsePreview == "Answer.")
        #expect(trace.clientRequestID == "req-1")
        #expect(trace.metadata["mlflow.trace.session"] == "conv-9")
        #expect(trace.tags["env"] == "staging")
        #expect(trace.metadata["deployment.environment"] == "staging")
        #expect(trace.executionDurationMillis == 2500)
        #expect(trace.requestTimeNanos == 1_000_000_000)
        #expect(trace.state == .ok)
    }

    @Test func errorRootStateAndMultipleRoots() throws {
        let root = M.span([("input.value", M.string("q"))], spanID: "00000000000000a1", status: #"{"code":2,"message":"boom"}"#)
        var assembler = TraceAssembler()
        _ = assembler.add(decodeOrFail(M.request([root])))
        let trace = try #require(assembler.takeComplete().first)
        #expect(trace.state == .error)
        #expect(TraceText.response(of: trace) == nil)

        let other = M.span([], spanID: "00000000000000a2")
        _ = assembler.add(decodeOrFail(M.request([root, other])))
        #expect(assembler.completeness(of: "0123456789abcdef0123456789abcdef") == .multipleRoots(count: 2))
        #expect(assembler.takeComplete().isEmpty)
        let forced = assembler.takeAll()
        #expect(forced.first?.metadata["assay.incomplete_reason"] == "2 root spans")
        #expect(forced.first?.state == .unspecified)

        let notEnded = M.span([], spanID: "00000000000000a3", end: 0)
        _ = assembler.add(decodeOrFail(M.request([notEnded])))
        #expect(assembler.completeness(of: "0123456789abcdef0123456789abcdef") == .rootNotEnded(rootSpanID: "00000000000000a3"))
    }

    @Test func longPreviewsAreTruncated() throws {
        let long = String(repeating: "é", count: 1500)
        let root = M.span([("input.value", M.string(long)), ("output.value", M.string("short"))])
        let trace = OTLPTraceBuilder.build(traceIDHex: "0123456789abcdef0123456789abcdef", spans: try #require(decodeOrFail(M.request([root])).first?.spans), resourceAttributes: [:])
        #expect(trace.requestPreview?.count == OTLPTraceBuilder.previewLength)
        #expect(trace.requestPreview?.hasSuffix("...") == true)
        #expect(trace.responsePreview == "short")
        #expect(TraceText.request(of: trace) == long)
    }
}

extension String {
    /// `"text"` (a JSON string literal) → `{"stringValue":"text"}`.
    var withStringValueWrapper: String { #"{"stringValue":\#(self)}"# }
}
