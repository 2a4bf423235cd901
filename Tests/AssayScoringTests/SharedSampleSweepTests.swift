import AssayCore
import AssayScoring
import Testing

/// The same checks as on the fixtures, over all 360 labelled MLflow traces in
/// `/work/shared/samples` (mlflow-traces and judge-eval). Skipped where that directory does not
/// exist (a fresh clone); the fixture tests cover the same cases on 25 of the traces.
@Suite("All shared samples (when /work/shared/samples exists)", .enabled(if: SharedSamples.available, "/work/shared/samples not present"))
struct SharedSampleSweepTests {
    @Test(arguments: ["mlflow-traces", "judge-eval"])
    func extractionAndCodeScorersAgreeWithLabels(stem: String) async throws {
        let samples = try SharedSamples.load(stem)
        #expect(samples.count == (stem == "mlflow-traces" ? 60 : 300))
        let pii = PIIScorer(name: "no_pii")
        let requestPII = PIIScorer(name: "request_pii", field: .request)
        let noError = NoErrorScorer(name: "no_error")
        for sample in samples {
            let id = sample.testDescription
            #expect(TraceText.request(of: sample.trace) == sample.text("request_text"), "\(id)")
            #expect(TraceText.response(of: sample.trace) == sample.text("response_text"), "\(id)")
            let groups = TraceText.documents(of: sample.trace)
            #expect(Int64(groups.count) == sample.integer("num_retriever_spans"), "\(id)")
            #expect(groups.allSatisfy { !$0.documents.isEmpty && $0.documents.allSatisfy { $0.docURI != nil } }, "\(id)")

            let piiOutcome = pii.evaluate(sample.trace)
            if sample.flag("errored") == true {
                #expect(piiOutcome.result.isNotApplicable, "\(id)")
            } else {
                #expect(piiOutcome.result.feedbackValue == (sample.flag("has_pii") == true ? .no : .yes), "\(id): \(piiOutcome.result)")
                let found = Set(piiOutcome.extraMetadata["pii_kinds_found"]?.split(separator: ",").map(String.init) ?? [])
                #expect(found == sample.piiTypes, "\(id)")
            }
            if let requestHasPII = sample.flag("request_has_pii") {
                #expect(requestPII.result(sample.trace).feedbackValue == (requestHasPII ? .no : .yes), "\(id) request")
            }
            #expect(noError.result(sample.trace).feedbackValue == (sample.flag("has_error_span") == true ? .no : .yes), "\(id)")
        }
    }
}
