// The semantic mapping of one OTLP span onto AssayCore's `Span`: span type, inputs, outputs,
// retrieved documents and token usage from MLflow, OpenInference and OpenTelemetry GenAI
// attributes. The rules are documented on `TraceFragment`.

import AssayCore

/// Maps raw OTLP spans onto ``Span``.
struct SpanMapper {
    /// Parses JSON text found inside string attributes, at most `maxNestingDepth` deep.
    let parser: JSONParser

    init(limits: OTLPLimits) {
        parser = JSONParser(maxDepth: max(1, limits.maxNestingDepth), loneSurrogates: .replace)
    }

    func map(_ raw: RawSpan, scope: RawScopeSpans) -> Span {
        var attributes: [String: JSONValue] = [:]
        attributes.reserveCapacity(raw.attributes.count + 4)
        for (key, value) in raw.attributes { attributes[key] = value }

        // MLflow writes its span attributes JSON-encoded (`"mlflow.spanType": "\"AGENT\""`); decode
        // them as the MLflow decoder does, so both formats store the same values.
        let mlflowKeys = attributes.keys.filter { $0.hasPrefix("mlflow.") }
        for key in mlflowKeys {
            if case .string(let text)? = attributes[key], let parsed = parseJSON(text) { attributes[key] = parsed }
        }

        let events = raw.events.map { event -> SpanEvent in
            var eventAttributes: [String: JSONValue] = [:]
            for (key, value) in event.attributes { eventAttributes[key] = value }
            return SpanEvent(name: event.name, timeNanos: event.timeNanos, attributes: eventAttributes)
        }

        let spanType = Self.spanType(attributes)
        let inputs = attributes.removeValue(forKey: "mlflow.spanInputs") ?? derivedInputs(attributes, events: events, spanType: spanType)
        let outputs = attributes.removeValue(forKey: "mlflow.spanOutputs") ?? derivedOutputs(attributes, events: events, spanType: spanType)
        if attributes["mlflow.chat.tokenUsage"] == nil, let usage = Self.tokenUsage(attributes) {
            attributes["mlflow.chat.tokenUsage"] = usage
        }

        // OTLP fields the canonical span has no place for, under the OpenTelemetry names for
        // non-OTLP formats (`otel.scope.name`, …). Producer attributes of the same name win.
        func add(_ key: String, _ value: JSONValue) {
            if attributes[key] == nil { attributes[key] = value }
        }
        if !scope.scopeName.isEmpty { add("otel.scope.name", .string(scope.scopeName)) }
        if !scope.scopeVersion.isEmpty { add("otel.scope.version", .string(scope.scopeVersion)) }
        if let kind = Self.spanKindNames[raw.kind] { add("otel.span.kind", .string(kind)) }
        if !raw.traceState.isEmpty { add("otel.trace_state", .string(raw.traceState)) }
        if raw.droppedAttributesCount > 0 { add("otel.dropped_attributes_count", JSONValue(Int64(raw.droppedAttributesCount))) }
        if raw.droppedEventsCount > 0 { add("otel.dropped_events_count", JSONValue(Int64(raw.droppedEventsCount))) }
        if raw.droppedLinksCount > 0 { add("otel.dropped_links_count", JSONValue(Int64(raw.droppedLinksCount))) }
        if !raw.links.isEmpty {
            add("otel.links", .array(raw.links.map { link in
                var object: JSONObject = ["trace_id": .string(link.traceIDHex), "span_id": .string(link.spanIDHex)]
                if !link.traceState.isEmpty { object["trace_state"] = .string(link.traceState) }
                if !link.attributes.isEmpty { object["attributes"] = .object(JSONObject(link.attributes)) }
                return .object(object)
            }))
        }

        let status: SpanStatus.Code
        switch raw.statusCode {
        case 1: status = .ok
        case 2: status = .error
        default: status = .unset
        }
        return Span(
            spanID: raw.spanIDHex,
            parentSpanID: raw.parentSpanIDHex,
            name: raw.name,
            spanType: spanType,
            startTimeNanos: raw.startTimeNanos,
            endTimeNanos: raw.endTimeNanos == 0 ? nil : raw.endTimeNanos,
            status: SpanStatus(code: status, message: raw.statusMessage),
            inputs: inputs,
            outputs: outputs,
            attributes: attributes,
            events: events)
    }

    static let spanKindNames: [Int: String] = [1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"]

    // MARK: Span type

    /// `mlflow.spanType` > `openinference.span.kind` > `gen_ai.operation.name` > Traceloop's
    /// `traceloop.span.kind` / `llm.request.type` > `UNKNOWN`.
    static func spanType(_ attributes: [String: JSONValue]) -> String {
        if let type = attributes["mlflow.spanType"]?.stringValue, !type.isEmpty { return type }
        if let kind = attributes["openinference.span.kind"]?.stringValue, !kind.isEmpty {
            switch kind.uppercased() {
            case "LLM":
                let chat = attributes.keys.contains { $0.hasPrefix("llm.input_messages.") || $0.hasPrefix("llm.output_messages.") }
                return chat ? "CHAT_MODEL" : "LLM"
            case let other:
                return other
            }
        }
        if let operation = attributes["gen_ai.operation.name"]?.stringValue {
            switch operation.lowercased() {
            case "chat", "generate_content": return "CHAT_MODEL"
            case "text_completion": return "LLM"
            case "embeddings": return "EMBEDDING"
            case "execute_tool": return "TOOL"
            case "invoke_agent", "create_agent": return "AGENT"
            case "retrieval", "retrieve": return "RETRIEVER"
            default: break
            }
        }
        if let kind = attributes["traceloop.span.kind"]?.stringValue {
            switch kind.lowercased() {
            case "workflow", "task": return "CHAIN"
            case "agent": return "AGENT"
            case "tool": return "TOOL"
            default: break
            }
        }
        if let requestType = attributes["llm.request.type"]?.stringValue {
            switch requestType.lowercased() {
            case "chat": return "CHAT_MODEL"
            case "completion": return "LLM"
            case "embedding": return "EMBEDDING"
            case "rerank": return "RERANKER"
            default: break
            }
        }
        if attributes["gen_ai.request.model"] != nil, attributes["gen_ai.operation.name"] == nil { return "LLM" }
        return "UNKNOWN"
    }

    // MARK: Inputs and outputs

    private func derivedInputs(_ attributes: [String: JSONValue], events: [SpanEvent], spanType: String) -> JSONValue? {
        if let value = attributes["input.value"] {
            return openInferenceValue(value, mimeType: attributes["input.mime_type"])
        }
        if let messages = genAIMessages(attributes["gen_ai.input.messages"], systemInstructions: attributes["gen_ai.system_instructions"]) {
            return messages
        }
        if let arguments = attributes["gen_ai.tool.call.arguments"] {
            return decodedIfJSON(arguments)
        }
        if let query = attributes["gen_ai.retrieval.query.text"] {
            return .object(["query": query])
        }
        if let messages = indexedMessages(attributes, prefix: "llm.input_messages.", field: "message.")
            ?? indexedMessages(attributes, prefix: "gen_ai.prompt.", field: "") {
            return messages
        }
        return eventInputMessages(events)
    }

    private func derivedOutputs(_ attributes: [String: JSONValue], events: [SpanEvent], spanType: String) -> JSONValue? {
        let documents = retrievedDocuments(attributes)
        if spanType == "RETRIEVER", let documents { return documents }
        if let value = attributes["output.value"] {
            return openInferenceValue(value, mimeType: attributes["output.mime_type"])
        }
        if let messages = genAIMessages(attributes["gen_ai.output.messages"], systemInstructions: nil) {
            return messages
        }
        if let result = attributes["gen_ai.tool.call.result"] {
            return decodedIfJSON(result)
        }
        if let documents { return documents }
        if let messages = indexedMessages(attributes, prefix: "llm.output_messages.", field: "message.")
            ?? indexedMessages(attributes, prefix: "gen_ai.completion.", field: "") {
            return messages
        }
        return eventOutputMessages(events)
    }

    /// OpenInference `input.value` / `output.value`: JSON when the mime type says so (or, with no
    /// mime type, when it is a JSON object or array); otherwise the string.
    private func openInferenceValue(_ value: JSONValue, mimeType: JSONValue?) -> JSONValue {
        guard case .string(let text) = value else { return value }
        let mime = mimeType?.stringValue?.lowercased()
        if let mime, mime.hasPrefix("application/json") || mime.hasSuffix("+json") {
            return parseJSON(text) ?? value
        }
        if mime == nil, let first = text.utf8.first(where: { !Self.isJSONSpace($0) }),
           first == UInt8(ascii: "{") || first == UInt8(ascii: "["), let parsed = parseJSON(text) {
            return parsed
        }
        return value
    }

    /// A string that parses as a JSON object or array becomes that JSON; anything else stays.
    private func decodedIfJSON(_ value: JSONValue) -> JSONValue {
        guard case .string(let text) = value else { return value }
        if let first = text.utf8.first(where: { !Self.isJSONSpace($0) }),
           first == UInt8(ascii: "{") || first == UInt8(ascii: "["), let parsed = parseJSON(text) {
            return parsed
        }
        return value
    }

    func parseJSON(_ text: String) -> JSONValue? {
        do throws(JSONParseError) {
            return try parser.parse(text)
        } catch {
            return nil
        }
    }

    private static func isJSONSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    // MARK: GenAI messages

    /// `gen_ai.input.messages` / `gen_ai.output.messages` (JSON text or a structured value) in the
    /// "parts" format → chat messages `[{role, content, …}]`, with `gen_ai.system_instructions`
    /// first as a system message.
    private func genAIMessages(_ value: JSONValue?, systemInstructions: JSONValue?) -> JSONValue? {
        guard let value, case .array(let messages)? = structured(value) else { return nil }
        var result: [JSONValue] = []
        if let systemInstructions, let parts = structured(systemInstructions) {
            let text: String?
            switch parts {
            case .string(let plain): text = plain
            case .array(let list): text = Self.partsText(list)
            default: text = nil
            }
            if let text { result.append(.object(["role": "system", "content": .string(text)])) }
        }
        for message in messages {
            result.append(Self.chatMessage(fromParts: message))
        }
        return .array(result)
    }

    /// A value as JSON: strings that hold JSON are parsed, other values are taken as they are.
    private func structured(_ value: JSONValue) -> JSONValue? {
        if case .string(let text) = value { return parseJSON(text) }
        return value
    }

    /// One GenAI message (`{role, parts: [...], finish_reason}`) as an OpenAI-style chat message.
    static func chatMessage(fromParts message: JSONValue) -> JSONValue {
        guard case .object(let object) = message, case .array(let parts)? = object["parts"] else { return message }
        var result = JSONObject()
        result["role"] = object["role"] ?? .null
        var texts: [String] = []
        var toolCalls: [JSONValue] = []
        var toolCallID: JSONValue?
        var toolResponse: JSONValue?
        for part in parts {
            guard case .object(let partObject) = part, let type = partObject["type"]?.stringValue else { continue }
            switch type {
            case "text":
                if let text = partObject["content"]?.stringValue ?? partObject["text"]?.stringValue { texts.append(text) }
            case "tool_call":
                var function = JSONObject()
                function["name"] = partObject["name"] ?? .null
                if let arguments = partObject["arguments"] {
                    function["arguments"] = arguments.stringValue.map(JSONValue.string) ?? .string(arguments.serialized())
                }
                var call: JSONObject = ["type": "function"]
                if let id = partObject["id"] { call["id"] = id }
                call["function"] = .object(function)
                toolCalls.append(.object(call))
            case "tool_call_response":
                toolCallID = partObject["id"]
                toolResponse = partObject["response"]
            default:
                continue
            }
        }
        if !texts.isEmpty {
            result["content"] = .string(texts.joined(separator: "\n"))
        } else if let toolResponse {
            result["content"] = toolResponse.stringValue.map(JSONValue.string) ?? .string(toolResponse.serialized())
        } else {
            result["content"] = .null
        }
        if !toolCalls.isEmpty { result["tool_calls"] = .array(toolCalls) }
        if let toolCallID { result["tool_call_id"] = toolCallID }
        for key in ["finish_reason", "name"] {
            if let value = object[key] { result[key] = value }
        }
        return .object(result)
    }

    /// The joined text of GenAI `text` parts, or nil when there is none.
    static func partsText(_ parts: [JSONValue]) -> String? {
        let texts = parts.compactMap { part -> String? in
            if case .string(let text) = part { return text }
            guard part["type"]?.stringValue == "text" else { return nil }
            return part["content"]?.stringValue ?? part["text"]?.stringValue
        }
        return texts.isEmpty ? nil : texts.joined(separator: "\n")
    }

    /// Flattened, indexed messages: OpenInference `llm.input_messages.N.message.role/content`
    /// (with `tool_calls.K.tool_call.{id,function.name,function.arguments}` and `tool_call_id`), or
    /// Traceloop's `gen_ai.prompt.N.role/content`.
    private func indexedMessages(_ attributes: [String: JSONValue], prefix: String, field: String) -> JSONValue? {
        // Collected per index, then written in a fixed key order (attribute iteration order is
        // not stable across processes).
        var messages: [Int: [String: JSONValue]] = [:]
        var toolCalls: [Int: [Int: [String: JSONValue]]] = [:]
        for (key, value) in attributes where key.hasPrefix(prefix) {
            let rest = key.dropFirst(prefix.count)
            guard let dot = rest.firstIndex(of: "."), let index = Self.smallIndex(rest[..<dot]) else { continue }
            var name = rest[rest.index(after: dot)...]
            guard name.hasPrefix(field) else { continue }
            name = name.dropFirst(field.count)
            switch name {
            case "role", "content", "tool_call_id", "name":
                messages[index, default: [:]][String(name)] = value
            default:
                let callPrefix = "tool_calls."
                guard name.hasPrefix(callPrefix) else { continue }
                let callRest = name.dropFirst(callPrefix.count)
                guard let callDot = callRest.firstIndex(of: "."), let callIndex = Self.smallIndex(callRest[..<callDot]) else { continue }
                var callField = callRest[callRest.index(after: callDot)...]
                if callField.hasPrefix("tool_call.") { callField = callField.dropFirst("tool_call.".count) }
                switch callField {
                case "id": toolCalls[index, default: [:]][callIndex, default: [:]]["id"] = value
                case "function.name", "name": toolCalls[index, default: [:]][callIndex, default: [:]]["name"] = value
                case "function.arguments", "arguments": toolCalls[index, default: [:]][callIndex, default: [:]]["arguments"] = value
                default: continue
                }
                if messages[index] == nil { messages[index] = [:] }
            }
        }
        guard !messages.isEmpty else { return nil }
        return .array(messages.keys.sorted().map { index in
            var message = JSONObject()
            let fields = messages[index] ?? [:]
            message["role"] = fields["role"] ?? .null
            message["content"] = fields["content"] ?? .null
            for key in ["tool_call_id", "name"] {
                if let value = fields[key] { message[key] = value }
            }
            if let calls = toolCalls[index], !calls.isEmpty {
                message["tool_calls"] = .array(calls.keys.sorted().compactMap { calls[$0] }.map { parts in
                    var call: JSONObject = ["type": "function"]
                    if let id = parts["id"] { call["id"] = id }
                    var function = JSONObject()
                    if let name = parts["name"] { function["name"] = name }
                    if let arguments = parts["arguments"] { function["arguments"] = arguments }
                    call["function"] = .object(function)
                    return .object(call)
                })
            }
            return .object(message)
        })
    }

    /// A small decimal index (at most 6 digits), or nil.
    static func smallIndex(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 6, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)
    }

    /// Older GenAI conventions put messages in span events: `gen_ai.system.message`,
    /// `gen_ai.user.message`, `gen_ai.assistant.message`, `gen_ai.tool.message` (attribute
    /// `content`), or one `gen_ai.content.prompt` event with `gen_ai.prompt` (JSON messages).
    private func eventInputMessages(_ events: [SpanEvent]) -> JSONValue? {
        var messages: [JSONValue] = []
        for event in events {
            switch event.name {
            case "gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message", "gen_ai.tool.message":
                let role = event.attributes["role"]?.stringValue
                    ?? String(event.name.dropFirst("gen_ai.".count).dropLast(".message".count))
                var message: JSONObject = ["role": .string(role)]
                message["content"] = event.attributes["content"].map(decodedIfJSON) ?? .null
                if let calls = event.attributes["tool_calls"] { message["tool_calls"] = decodedIfJSON(calls) }
                if let id = event.attributes["id"] { message["tool_call_id"] = id }
                messages.append(.object(message))
            case "gen_ai.content.prompt":
                if let prompt = event.attributes["gen_ai.prompt"], let parsed = structured(prompt) { return parsed }
            default:
                continue
            }
        }
        return messages.isEmpty ? nil : .array(messages)
    }

    /// Older GenAI conventions: `gen_ai.choice` events (attribute `message`, an object or JSON
    /// text, or `content`), or one `gen_ai.content.completion` event with `gen_ai.completion`.
    private func eventOutputMessages(_ events: [SpanEvent]) -> JSONValue? {
        var messages: [JSONValue] = []
        for event in events {
            switch event.name {
            case "gen_ai.choice":
                if let message = event.attributes["message"].map(decodedIfJSON), case .object(var object) = message {
                    if object["role"] == nil { object["role"] = "assistant" }
                    messages.append(.object(object))
                } else if let content = event.attributes["content"] {
                    messages.append(.object(["role": "assistant", "content": decodedIfJSON(content)]))
                }
            case "gen_ai.content.completion":
                if let completion = event.attributes["gen_ai.completion"], let parsed = structured(completion) { return parsed }
            default:
                continue
            }
        }
        return messages.isEmpty ? nil : .array(messages)
    }

    // MARK: Retrieved documents

    /// OpenInference `retrieval.documents.N.document.{content,id,score,metadata}` or GenAI
    /// `gen_ai.retrieval.documents` → MLflow documents `[{page_content, metadata: {doc_uri, …}, id}]`.
    private func retrievedDocuments(_ attributes: [String: JSONValue]) -> JSONValue? {
        let prefix = "retrieval.documents."
        var byIndex: [Int: JSONObject] = [:]
        for (key, value) in attributes where key.hasPrefix(prefix) {
            let rest = key.dropFirst(prefix.count)
            guard let dot = rest.firstIndex(of: "."), let index = Self.smallIndex(rest[..<dot]) else { continue }
            let field = rest[rest.index(after: dot)...]
            guard field.hasPrefix("document.") else { continue }
            byIndex[index, default: JSONObject()][String(field.dropFirst("document.".count))] = value
        }
        if !byIndex.isEmpty {
            return .array(byIndex.keys.sorted().compactMap { byIndex[$0].map(document) })
        }
        for key in ["gen_ai.retrieval.documents", "retrieval.documents"] {
            if let value = attributes[key], case .array(let list)? = structured(value) {
                return .array(list.map { element in
                    if case .object(let object) = element { return document(object) }
                    return element
                })
            }
        }
        return nil
    }

    /// One document in MLflow's shape: `page_content` (from `content`, `page_content` or `text`),
    /// `metadata` (the producer's, JSON-decoded, plus `doc_uri` from `uri`/`url`/`source` or the
    /// document id when absent, and `score`), and `id`.
    private func document(_ fields: JSONObject) -> JSONValue {
        var metadata = JSONObject()
        if let raw = fields["metadata"] {
            switch structured(raw) {
            case .object(let object)?: metadata = object
            case let other?: metadata["value"] = other
            case nil: metadata["value"] = raw
            }
        }
        let id = fields["id"]
        if metadata["doc_uri"] == nil {
            if let uri = fields["doc_uri"] ?? metadata["uri"] ?? metadata["url"] ?? metadata["source"] ?? fields["uri"] {
                metadata["doc_uri"] = uri
            } else if let id {
                metadata["doc_uri"] = id.stringValue.map(JSONValue.string) ?? .string(id.serialized())
            }
        }
        if metadata["score"] == nil, let score = fields["score"] { metadata["score"] = score }
        var document = JSONObject()
        document["page_content"] = fields["page_content"] ?? fields["content"] ?? fields["text"] ?? .null
        document["metadata"] = .object(metadata)
        if let id { document["id"] = id }
        return .object(document)
    }

    // MARK: Token usage

    /// `{input_tokens, output_tokens, total_tokens}` from GenAI `gen_ai.usage.*` or OpenInference
    /// `llm.token_count.*`, or nil when the span reports none.
    static func tokenUsage(_ attributes: [String: JSONValue]) -> JSONValue? {
        func count(_ keys: String...) -> Int64? {
            for key in keys {
                if let number = attributes[key]?.int64AcceptingDecimalString, number >= 0 { return number }
            }
            return nil
        }
        var input = count("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
        var output = count("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
        var total: Int64?
        if input == nil, output == nil {
            input = count("llm.token_count.prompt")
            output = count("llm.token_count.completion")
            total = count("llm.token_count.total")
        }
        guard input != nil || output != nil || total != nil else { return nil }
        let sum = (input ?? 0).addingReportingOverflow(output ?? 0)
        var usage = JSONObject()
        if let input { usage["input_tokens"] = JSONValue(input) }
        if let output { usage["output_tokens"] = JSONValue(output) }
        if let value = total ?? (sum.overflow ? nil : sum.partialValue) { usage["total_tokens"] = JSONValue(value) }
        return .object(usage)
    }
}
