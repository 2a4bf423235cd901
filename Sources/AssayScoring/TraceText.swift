// Trace field extraction: the request, the response and the retrieved documents of a trace, as
// text, the way MLflow's judges read them (its `extract_request` / `extract_response` and
// `extract_retrieval_context` semantics).

import AssayCore

/// One document a RETRIEVER span returned.
public struct RetrievedDocument: Sendable, Equatable {
    /// The document text: `page_content`, else `content`, else `text`.
    public var content: String
    /// `metadata.doc_uri` (else a top-level `doc_uri`), when present.
    public var docURI: String?

    /// A document with the given text and URI.
    public init(content: String, docURI: String?) {
        self.content = content
        self.docURI = docURI
    }
}

/// The documents of one top-level RETRIEVER span (one group per span, in start-time order).
public struct RetrievedDocumentGroup: Sendable, Equatable {
    /// The RETRIEVER span's id; per-span assessments (`retrieval_groundedness`) carry it.
    public var spanID: String
    /// The span's name, for rationales (e.g. `policy_search`).
    public var spanName: String
    /// The documents with text, in the order the retriever returned them (possibly none).
    public var documents: [RetrievedDocument]

    /// A group for the span `spanID`.
    public init(spanID: String, spanName: String, documents: [RetrievedDocument]) {
        self.spanID = spanID
        self.spanName = spanName
        self.documents = documents
    }
}

/// Turns a trace's request, response and retrieved documents into text for scorers and judges.
///
/// ## Where the values come from
/// - **request** = the root span's `inputs`, **response** = the root span's `outputs` (the root is
///   ``Trace/rootSpan``, the one span without a parent). When the root (or its value) is absent, or
///   is JSON `null`, the trace's `request_preview` / `response_preview` is used instead; MLflow 3
///   writes those JSON-encoded, so a preview that parses as JSON is decoded and read by the same
///   rules, and one that does not (plain or truncated text) is taken as it is. An empty preview
///   counts as absent.
/// - An **errored trace** (state `ERROR`) whose root has no outputs has no response (`nil`): the
///   response preview is not consulted, since there was no answer.
/// - **documents** come from the top-level RETRIEVER spans: spans of type `RETRIEVER` none of
///   whose ancestors is a RETRIEVER (a retriever nested in another is part of its parent's work).
///
/// ## Turning a JSON value into text (the first rule that applies)
/// 1. a string is itself; a number or boolean is its JSON text; `null` is no value;
/// 2. a **chat-message list** (an array of objects at least one of which has a string `role`, or a
///    LangChain-style `type` of `human`/`ai`/`system`/`tool`): for a request, the content of the
///    **last user message** (role `user`/`human`), else of the last message with text; for a
///    response, the content of the **last assistant message** (role `assistant`/`ai`/`model`) with
///    text, and **no response** (`nil`) when there is none, so an echoed user message is never
///    mistaken for an answer. Message `content` is a string or a list of parts: string parts and
///    the `text` of parts typed `text`, `input_text` or `output_text` are joined with `"\n"`; other
///    parts (images, refusals, tool calls) are skipped;
/// 3. `{"messages": [...]}`: the message list inside, as in rule 2;
/// 4. an OpenAI chat completion `{"choices": [...]}`: the first choice's `message.content` (or a
///    legacy completion's `text`);
/// 5. common keys, request side `question`, `query`, `input`, `prompt`, `content`, `text`;
///    response side `output`, `answer`, `response`, `content`, `text`: the first present whose value
///    yields text by these rules (so `{"input": [messages]}` and Responses-API
///    `{"output": [{"role": "assistant", "content": [{"type": "output_text", …}]}]}` work);
/// 6. an object with exactly one entry, or with exactly one string value: that value's text
///    (`{"inputs": {"question": …}}`, `{"question": …, "top_k": 5}` is covered by rule 5);
/// 7. an array of content parts (`[{"type": "text", "text": …}]`): the joined text;
/// 8. anything else: compact JSON text (``JSONValue/serialized()``).
///
/// Rules 5–6 descend at most ``maximumDepth`` levels.
public enum TraceText {
    /// How many nested objects rules 5–6 descend before falling back to JSON text.
    public static let maximumDepth = 8

    /// Which side of the exchange a value is read as.
    enum Side {
        case request
        case response
    }

    // MARK: Trace fields

    /// The request as text, or nil when the trace has none.
    public static func request(of trace: Trace) -> String? {
        if let inputs = trace.rootSpan?.inputs, !inputs.isNull {
            return requestText(from: inputs)
        }
        return previewText(trace.requestPreview, side: .request)
    }

    /// The response as text, or nil when the trace has none (see the type's rules; an errored trace
    /// without root outputs has none).
    public static func response(of trace: Trace) -> String? {
        if let outputs = trace.rootSpan?.outputs, !outputs.isNull {
            return responseText(from: outputs)
        }
        if trace.state == .error { return nil }
        return previewText(trace.responsePreview, side: .response)
    }

    /// One group per top-level RETRIEVER span, ordered by start time (then by position in the trace).
    public static func documents(of trace: Trace) -> [RetrievedDocumentGroup] {
        var byID: [String: Span] = [:]
        for span in trace.spans where byID[span.spanID] == nil { byID[span.spanID] = span }

        var groups: [(start: Int64, index: Int, group: RetrievedDocumentGroup)] = []
        for (index, span) in trace.spans.enumerated() where isRetriever(span) {
            guard !hasRetrieverAncestor(span, byID: byID) else { continue }
            let group = RetrievedDocumentGroup(spanID: span.spanID, spanName: span.name, documents: documents(from: span.outputs))
            groups.append((span.startTimeNanos, index, group))
        }
        return groups.sorted { ($0.start, $0.index) < ($1.start, $1.index) }.map(\.group)
    }

    // MARK: Values

    /// A span input value as request text (rules in the type's documentation); nil for `null`.
    public static func requestText(from value: JSONValue) -> String? {
        text(from: value, side: .request)
    }

    /// A span output value as response text (rules in the type's documentation); nil for `null` or
    /// a message list without an assistant message.
    public static func responseText(from value: JSONValue) -> String? {
        text(from: value, side: .response)
    }

    /// The documents in a RETRIEVER span's outputs: a list of documents, a single document, or
    /// `{"documents": [...]}`. A document is an object with `page_content` (else `content`, else
    /// `text`) and `metadata.doc_uri` (else `doc_uri`), or a plain string. Documents without text
    /// (missing, not a string, or blank) are skipped.
    public static func documents(from outputs: JSONValue?) -> [RetrievedDocument] {
        guard let outputs else { return [] }
        let elements: [JSONValue]
        switch outputs {
        case .array(let array):
            elements = array
        case .object(let object):
            if case .array(let array)? = object["documents"] {
                elements = array
            } else {
                elements = [outputs]
            }
        case .string:
            elements = [outputs]
        default:
            elements = []
        }
        return elements.compactMap(document(from:))
    }

    // MARK: Internals

    /// What a value yields: text, explicitly nothing (a message list without the wanted message),
    /// or no recognised shape (the caller falls back to JSON text).
    private enum Extraction {
        case text(String)
        case nothing
        case unrecognized
    }

    static func text(from value: JSONValue, side: Side) -> String? {
        if value.isNull { return nil }
        switch extract(value, side: side, depth: 0) {
        case .text(let text): return text
        case .nothing: return nil
        case .unrecognized: return value.serialized()
        }
    }

    private static func previewText(_ preview: String?, side: Side) -> String? {
        guard let preview, !preview.isEmpty else { return nil }
        guard let parsed = try? JSONValue(parsing: preview) else { return preview }
        return text(from: parsed, side: side)
    }

    private static let requestKeys = ["question", "query", "input", "prompt", "content", "text"]
    private static let responseKeys = ["output", "answer", "response", "content", "text"]

    private static func extract(_ value: JSONValue, side: Side, depth: Int) -> Extraction {
        switch value {
        case .null:
            return .nothing
        case .string(let text):
            return .text(text)
        case .number(let lexeme):
            return .text(lexeme)
        case .bool(let flag):
            return .text(flag ? "true" : "false")
        case .array(let elements):
            if isMessageList(elements) { return messageText(elements, side: side) }
            if let parts = contentPartsText(elements, requireObjectPart: true) { return .text(parts) }
            return .unrecognized
        case .object(let object):
            return extract(object, side: side, depth: depth)
        }
    }

    private static func extract(_ object: JSONObject, side: Side, depth: Int) -> Extraction {
        if case .array(let messages)? = object["messages"], messages.isEmpty || isMessageList(messages) {
            return messageText(messages, side: side)
        }
        if case .array(let choices)? = object["choices"], let first = choices.first {
            if let content = first["message"]?["content"], let text = contentText(content) { return .text(text) }
            if case .string(let text)? = first["text"] { return .text(text) }
        }
        guard depth < maximumDepth else { return .unrecognized }
        for key in side == .request ? requestKeys : responseKeys {
            guard let member = object[key], !member.isNull else { continue }
            if case .text(let text) = extract(member, side: side, depth: depth + 1) { return .text(text) }
        }
        if object.count == 1, let only = object.first?.value {
            let inner = extract(only, side: side, depth: depth + 1)
            if case .text = inner { return inner }
        }
        let strings = object.entries.compactMap { $0.value.stringValue }
        if strings.count == 1, let only = strings.first { return .text(only) }
        return .unrecognized
    }

    private static let userRoles: Set<String> = ["user", "human"]
    private static let assistantRoles: Set<String> = ["assistant", "ai", "model"]
    private static let langChainTypes: Set<String> = ["human", "ai", "system", "tool", "function", "chat"]

    /// The role of a chat message: `role`, else a LangChain `type`.
    private static func role(of message: JSONValue) -> String? {
        if case .string(let role)? = message["role"] { return role.lowercased() }
        if case .string(let type)? = message["type"], langChainTypes.contains(type.lowercased()) { return type.lowercased() }
        return nil
    }

    /// An array of objects at least one of which has a role.
    private static func isMessageList(_ elements: [JSONValue]) -> Bool {
        guard !elements.isEmpty, elements.allSatisfy({ $0.objectValue != nil }) else { return false }
        return elements.contains { role(of: $0) != nil }
    }

    private static func messageText(_ messages: [JSONValue], side: Side) -> Extraction {
        let wanted = side == .request ? userRoles : assistantRoles
        for message in messages.reversed() {
            guard let role = role(of: message), wanted.contains(role) else { continue }
            if let content = message["content"], let text = contentText(content) { return .text(text) }
        }
        guard side == .request else { return .nothing }
        for message in messages.reversed() {
            if let content = message["content"], let text = contentText(content) { return .text(text) }
        }
        return .nothing
    }

    private static let textPartTypes: Set<String> = ["text", "input_text", "output_text"]

    /// Message content: a string, or the text of a list of parts; nil when neither.
    private static func contentText(_ content: JSONValue) -> String? {
        switch content {
        case .string(let text): return text
        case .array(let parts): return contentPartsText(parts, requireObjectPart: false)
        default: return nil
        }
    }

    /// The joined text of content parts, or nil when no element is a text part. With
    /// `requireObjectPart`, a list of plain strings alone does not count (it is data, not parts).
    private static func contentPartsText(_ parts: [JSONValue], requireObjectPart: Bool) -> String? {
        var texts: [String] = []
        for part in parts {
            switch part {
            case .string(let text):
                texts.append(text)
            case .object(let object):
                guard case .string(let type)? = object["type"], textPartTypes.contains(type),
                      case .string(let text)? = object["text"] else { continue }
                texts.append(text)
            default:
                continue
            }
        }
        guard !texts.isEmpty else { return nil }
        if requireObjectPart, !parts.contains(where: { $0.objectValue != nil }) { return nil }
        return texts.joined(separator: "\n")
    }

    private static func document(from value: JSONValue) -> RetrievedDocument? {
        switch value {
        case .string(let text):
            return isBlank(text) ? nil : RetrievedDocument(content: text, docURI: nil)
        case .object(let object):
            var content: String?
            for key in ["page_content", "content", "text"] {
                if case .string(let text)? = object[key], !isBlank(text) {
                    content = text
                    break
                }
            }
            guard let content else { return nil }
            let uri = object["metadata"]?["doc_uri"]?.stringValue ?? object["doc_uri"]?.stringValue
            return RetrievedDocument(content: content, docURI: uri)
        default:
            return nil
        }
    }

    private static func isBlank(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { $0.properties.isWhitespace }
    }

    static func isRetriever(_ span: Span) -> Bool {
        span.spanType?.uppercased() == "RETRIEVER"
    }

    /// Whether some ancestor of `span` is a RETRIEVER (stops at a missing parent or a cycle).
    private static func hasRetrieverAncestor(_ span: Span, byID: [String: Span]) -> Bool {
        var visited: Set<String> = [span.spanID]
        var parentID = span.parentSpanID
        while let id = parentID, let parent = byID[id], visited.insert(id).inserted {
            if isRetriever(parent) { return true }
            parentID = parent.parentSpanID
        }
        return false
    }
}
