// deploy/observability/: the Grafana dashboard and the Prometheus rules parse, have the
// expected shape, and name only metric families that Assay exports.

import AssayCore
import AssayMetrics
import Foundation
import Testing

private func observabilityFile(_ name: String) throws -> String {
    let url = repositoryRoot().appendingPathComponent("deploy/observability/\(name)")
    return try String(contentsOf: url, encoding: .utf8)
}

/// Every `assay_[a-z_]+` in `text`.
private func metricNames(in text: String) -> Set<String> {
    Set(text.matches(of: /assay_[a-z_]+/).map { String($0.output) })
}

/// The families behind a set of scraped series names; fails on a name Assay does not export.
private func families(of names: Set<String>, file: String) -> Set<MetricFamily> {
    var result = Set<MetricFamily>()
    for name in names.sorted() {
        let family = MetricFamily.family(ofSample: name)
        #expect(family != nil, "\(file) names \(name), which no MetricFamily declares")
        if let family { result.insert(family) }
    }
    return result
}

@Suite("Observability files")
struct ObservabilityFilesTests {
    @Test("grafana-dashboard.json parses, its panels query Assay's families, and it covers the issue's panels")
    func dashboard() throws {
        let text = try observabilityFile("grafana-dashboard.json")
        let dashboard = try JSONParser().parse(Array(text.utf8))
        #expect(dashboard["title"]?.stringValue == "Assay")
        let panels = try #require(dashboard["panels"]?.arrayValue)
        #expect(panels.count >= 10)
        var ids = Set<Int64>()
        var expressions: [String] = []
        for panel in panels {
            let id = try #require(panel["id"]?.int64Value)
            #expect(ids.insert(id).inserted, "panel id \(id) repeats")
            #expect(panel["gridPos"]?["w"]?.int64Value != nil)
            if panel["type"]?.stringValue == "row" { continue }
            let targets = try #require(panel["targets"]?.arrayValue, "panel \(panel["title"]?.stringValue ?? "?") has no targets")
            #expect(!targets.isEmpty)
            for target in targets {
                let expr = try #require(target["expr"]?.stringValue)
                #expect(expr.contains("assay_"), "a query that reads no Assay metric: \(expr)")
                expressions.append(expr)
            }
        }
        let names = metricNames(in: text)
        let used = families(of: names, file: "grafana-dashboard.json")
        #expect(metricNames(in: expressions.joined(separator: "\n")).isSubset(of: names))
        let required: Set<MetricFamily> = [
            .consumerLag, .messagesConsumed, .tracesStored, .deadLetters, .batchWriteDuration, .windowTracesPassed, .windowTracesScored,
            .assessments, .regressionAlerts, .judgeCallDuration, .judgeErrors, .judgeCalls, .judgeTokens, .outboxBacklog, .configVersion,
        ]
        #expect(required.subtracting(used).isEmpty, "families without a panel: \(required.subtracting(used).map(\.name).sorted())")
    }

    @Test("alerts.yaml parses as Prometheus rule groups with the four required alerts, naming only Assay's families")
    func alertRules() throws {
        let text = try observabilityFile("alerts.yaml")
        let document = try MiniYAML.parse(text)
        let groups = try #require(document["groups"]?.arrayValue)
        #expect(!groups.isEmpty)
        var alerts: [String: String] = [:]
        var records: [String: String] = [:]
        for group in groups {
            let groupName = group["name"]?.stringValue ?? ""
            #expect(!groupName.isEmpty)
            let rules = try #require(group["rules"]?.arrayValue)
            for rule in rules {
                let expr = try #require(rule["expr"]?.stringValue)
                #expect(!expr.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
                #expect(expr.filter { $0 == "(" }.count == expr.filter { $0 == ")" }.count, "unbalanced parentheses: \(expr)")
                if let name = rule["alert"]?.stringValue {
                    #expect(rule["record"] == nil)
                    #expect(alerts.updateValue(expr, forKey: name) == nil, "alert \(name) twice")
                    #expect(rule["labels"]?["severity"]?.stringValue != nil, "\(name) has no severity")
                    #expect(rule["annotations"]?["summary"]?.stringValue != nil, "\(name) has no summary")
                    if let duration = rule["for"]?.stringValue {
                        #expect(duration.wholeMatch(of: /[0-9]+[smhd]/) != nil, "\(name): for \(duration)")
                    }
                } else {
                    let name = try #require(rule["record"]?.stringValue)
                    #expect(name.wholeMatch(of: /[a-z_]+:[a-z0-9_]+:[a-z0-9_]+/) != nil, "recording rule name \(name)")
                    records[name] = expr
                }
            }
        }
        // Every recording rule an expression uses is defined here.
        for expr in Array(alerts.values) + Array(records.values) {
            for match in expr.matches(of: /assay:[a-z0-9_:]+/) {
                #expect(records[String(match.output)] != nil, "\(match.output) is not recorded")
            }
        }
        func mentions(_ alert: String, _ family: MetricFamily) -> Bool {
            guard let expr = alerts[alert] else { return false }
            let expanded = records.reduce(expr) { $0.split(separator: $1.key, omittingEmptySubsequences: false).joined(separator: $1.value) }
            return expanded.contains(family.name)
        }
        #expect(mentions("AssayConsumerLagGrowing", .consumerLag))
        #expect(mentions("AssayJudgeErrorRateHigh", .judgeErrors) && mentions("AssayJudgeErrorRateHigh", .judgeCalls))
        #expect(mentions("AssayDeadLetterRateHigh", .deadLetters))
        #expect(mentions("AssayPassRateRegression", .regressionAlerts))
        #expect(mentions("AssayPassRateDropVsBaseline", .windowTracesPassed))
        #expect(mentions("AssayTaskSchedulingDelayHigh", .taskSchedulingDelay))
        _ = families(of: metricNames(in: text), file: "alerts.yaml")
    }

    @Test("the YAML reader is strict: bad indentation, duplicate keys and flow syntax fail")
    func yamlReaderIsStrict() throws {
        #expect(throws: YAMLError.self) { try MiniYAML.parse("a: 1\n  b: 2\n") }
        #expect(throws: YAMLError.self) { try MiniYAML.parse("a: 1\na: 2\n") }
        #expect(throws: YAMLError.self) { try MiniYAML.parse("a: [1, 2]\n") }
        #expect(throws: YAMLError.self) { try MiniYAML.parse("a: \"open\n") }
        let value = try MiniYAML.parse("groups:\n  - name: g\n    rules:\n      - record: x\n        expr: |\n          sum(a)\n            / 2\n# note\n")
        #expect(value["groups"]?[0]?["rules"]?[0]?["expr"]?.stringValue == "sum(a)\n  / 2\n")
        #expect(value["groups"]?[0]?["name"]?.stringValue == "g")
    }

    @Test("name extraction finds exactly the assay_ names")
    func extraction() {
        #expect(metricNames(in: "rate(assay_a_total[5m]) / assay:b:c + assay_judge_call_duration_seconds_bucket") ==
                ["assay_a_total", "assay_judge_call_duration_seconds_bucket"])
    }
}
