import AssayCore
import AssayScoring
import Foundation
import Testing

/// Access to the copied sample payloads in `Fixtures/` (bundled with `.copy("Fixtures")`).
enum Fixtures {
    struct Missing: Error, CustomStringConvertible {
        var name: String
        var description: String { "fixture \(name) not found in the test bundle" }
    }

    static func url(_ name: String) throws -> URL {
        guard let directory = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw Missing(name: "Fixtures/")
        }
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else { throw Missing(name: name) }
        return url
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(name)))
    }

    /// The non-empty lines of a JSON Lines file.
    static func lines(_ bytes: [UInt8]) -> [[UInt8]] {
        bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).map(Array.init)
    }
}

/// One labelled sample trace (see the samples README for the label keys).
struct LabelledTrace: CustomTestStringConvertible, Sendable {
    var trace: Trace
    var label: JSONObject

    var testDescription: String { "\(kind)/\(variant) \(trace.traceID.prefix(11))" }

    var kind: String { label["kind"]?.stringValue ?? "?" }
    var variant: String { label["variant"]?.stringValue ?? "?" }
    func flag(_ key: String) -> Bool? { label[key]?.boolValue }
    func text(_ key: String) -> String? { label[key]?.stringValue }
    func integer(_ key: String) -> Int64? { label[key]?.int64Value }
    /// The labelled `pii_types`, as given.
    var labelledPIITypes: Set<String> { Set(label["pii_types"]?.arrayValue?.compactMap(\.stringValue) ?? []) }

    /// The PII kinds Assay should find in the response: the labelled ones, except for the known
    /// label quirks in ``LabelQuirks``.
    var piiTypes: Set<String> {
        LabelQuirks.diners14AlsoLabelledPhone.contains(trace.traceID) ? labelledPIITypes.subtracting(["phone"]) : labelledPIITypes
    }
}

/// Where the sample labels and Assay knowingly disagree.
enum LabelQuirks {
    /// judge-eval traces whose response repeats a 14-digit Diners Club test card
    /// (`3056 930902 5904`, `3852 000002 3237`) and nothing else: the samples' regex cross-check
    /// counted those digits as a phone number as well, so they are labelled `phone` +
    /// `credit_card`. It is one card number; Assay counts it once, as a card (see
    /// `labelQuirkIsStillThere`). The first is in the fixtures, both are in /work/shared.
    static let diners14AlsoLabelledPhone: Set<String> = [
        "tr-118e470162a2021c6876a4566840ef85",
        "tr-0610bcc6d637df5871c938c86687a870",
    ]
}

struct SampleLoadError: Error, CustomStringConvertible {
    var description: String
}

/// Decodes a JSON Lines file of MLflow traces and joins each with its label.
func loadLabelledTraces(lines: [[UInt8]], labels labelBytes: [UInt8]) throws -> [LabelledTrace] {
    guard case .object(let labels) = try JSONParser().parse(labelBytes) else {
        throw SampleLoadError(description: "labels file is not a JSON object")
    }
    var result: [LabelledTrace] = []
    for line in lines {
        switch MessageDecoding.decode(payload: line) {
        case .success(let trace):
            guard case .object(let label)? = labels[trace.traceID] else {
                throw SampleLoadError(description: "no label for \(trace.traceID)")
            }
            result.append(LabelledTrace(trace: trace, label: label))
        case .failure(let rejection):
            throw SampleLoadError(description: "sample rejected: \(rejection)")
        }
    }
    return result
}

/// The fixture samples (25 traces: 18 from mlflow-traces.jsonl, 7 PII cases from judge-eval.jsonl).
enum Samples {
    static func all() throws -> [LabelledTrace] {
        try loadLabelledTraces(
            lines: Fixtures.lines(Fixtures.bytes("sample-traces.jsonl")),
            labels: Fixtures.bytes("sample-traces.labels.json")
        )
    }

    /// For parameterised tests: the samples, or an empty list when they cannot be loaded (then
    /// ``FixtureIntegrityTests`` fails, so a broken fixture never passes silently).
    static let forArguments: [LabelledTrace] = (try? all()) ?? []

    static func first(_ kind: String, _ variant: String) throws -> LabelledTrace {
        guard let sample = try all().first(where: { $0.kind == kind && $0.variant == variant }) else {
            throw SampleLoadError(description: "no \(kind)/\(variant) sample in the fixtures")
        }
        return sample
    }
}

/// The full sample set under `/work/shared/samples`, when present (not on a fresh clone).
enum SharedSamples {
    static let directory = URL(fileURLWithPath: "/work/shared/samples")

    static var available: Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("mlflow-traces.jsonl").path)
    }

    static func load(_ stem: String) throws -> [LabelledTrace] {
        let lines = Fixtures.lines([UInt8](try Data(contentsOf: directory.appendingPathComponent("\(stem).jsonl"))))
        let labels = [UInt8](try Data(contentsOf: directory.appendingPathComponent("\(stem).labels.json")))
        return try loadLabelledTraces(lines: lines, labels: labels)
    }
}

/// The repository's own copy of `schemas/`, found from this source file's path.
enum RepositoryFiles {
    static var schemasDirectory: URL? {
        let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let schemas = testsDirectory.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("schemas")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: schemas.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return nil
        }
        return schemas
    }
}

// MARK: - Building traces by hand

/// A span for hand-built traces; ids are short strings (the model does not check them).
func span(
    _ id: String,
    parent: String? = nil,
    name: String? = nil,
    type: String? = nil,
    start: Int64 = 1_000,
    end: Int64? = 2_000,
    status: SpanStatus.Code = .ok,
    statusMessage: String = "",
    inputs: JSONValue? = nil,
    outputs: JSONValue? = nil,
    attributes: [String: JSONValue] = [:],
    events: [SpanEvent] = []
) -> Span {
    Span(
        spanID: id, parentSpanID: parent, name: name ?? id, spanType: type,
        startTimeNanos: start, endTimeNanos: end, status: SpanStatus(code: status, message: statusMessage),
        inputs: inputs, outputs: outputs, attributes: attributes, events: events
    )
}

/// A trace for hand-built cases.
func trace(
    _ spans: [Span],
    state: TraceState = .ok,
    durationMillis: Int64? = 1_000,
    requestPreview: String? = nil,
    responsePreview: String? = nil,
    metadata: [String: String] = [:]
) -> Trace {
    Trace(
        traceID: "tr-0123456789abcdef0123456789abcdef", format: .mlflow3, requestTimeNanos: 1_770_123_653_476_000_000,
        executionDurationMillis: durationMillis, state: state, clientRequestID: nil,
        requestPreview: requestPreview, responsePreview: responsePreview, tags: [:], metadata: metadata, spans: spans
    )
}

/// A one-span trace whose root has the given inputs and outputs.
func rootTrace(inputs: JSONValue? = "question?", outputs: JSONValue?, state: TraceState = .ok) -> Trace {
    trace([span("root", type: "CHAIN", inputs: inputs, outputs: outputs)], state: state)
}

/// Parses JSON text in a test, failing it on a syntax error.
func json(_ text: String) throws -> JSONValue {
    try JSONValue(parsing: text)
}

extension CodeScorer {
    /// The single outcome's result.
    func result(_ trace: Trace) -> ScorerResult {
        evaluate(trace).result
    }
}

extension ScorerResult {
    var feedbackValue: FeedbackValue? {
        if case .value(let value, _) = self { return value }
        return nil
    }

    var rationale: String? {
        if case .value(_, let rationale) = self { return rationale }
        return nil
    }

    var isNotApplicable: Bool {
        if case .notApplicable = self { return true }
        return false
    }
}
