// A strict reader of the Prometheus text exposition format (0.0.4), for the tests: every line
// must be a `# HELP`, a `# TYPE` or a sample, or reading fails.

struct ExpositionError: Error, CustomStringConvertible {
    var line: Int
    var text: String
    var problem: String
    var description: String { "line \(line): \(problem): \(text)" }
}

/// One sample line: `name{label="value",…} value`.
struct Sample: Equatable {
    var name: String
    var labels: [String: String]
    var labelNames: [String]
    var value: Double
}

/// A parsed scrape.
struct Exposition {
    var samples: [Sample] = []
    /// `# TYPE` per family name.
    var types: [String: String] = [:]
    /// `# HELP` per family name.
    var help: [String: String] = [:]

    func samples(named name: String) -> [Sample] { samples.filter { $0.name == name } }

    /// The value of the series with exactly these labels (`le` excluded from the match unless given).
    func value(_ name: String, _ labels: [String: String]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    static func parse(_ text: String) throws -> Exposition {
        var result = Exposition()
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            let number = index + 1
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
                guard parts.count >= 3, parts[0] == "#", ["HELP", "TYPE"].contains(parts[1]), isMetricName(parts[2]) else {
                    throw ExpositionError(line: number, text: line, problem: "a comment that is neither HELP nor TYPE")
                }
                if parts[1] == "TYPE" {
                    guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                        throw ExpositionError(line: number, text: line, problem: "bad TYPE")
                    }
                    guard result.types[parts[2]] == nil else { throw ExpositionError(line: number, text: line, problem: "a second TYPE line") }
                    result.types[parts[2]] = parts[3]
                } else {
                    result.help[parts[2]] = parts.count == 4 ? parts[3] : ""
                }
                continue
            }
            result.samples.append(try parseSample(line, number: number))
        }
        return result
    }

    static func isMetricName(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        func isLetter(_ scalar: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_" || scalar == ":"
        }
        guard let first = scalars.first, isLetter(first) else { return false }
        return scalars.allSatisfy { isLetter($0) || ("0"..."9").contains($0) }
    }

    private static func parseSample(_ line: String, number: Int) throws -> Sample {
        func fail(_ problem: String) -> ExpositionError { ExpositionError(line: number, text: line, problem: problem) }
        let characters = Array(line)
        var position = 0
        var name = ""
        while position < characters.count, characters[position] != "{", characters[position] != " " {
            name.append(characters[position])
            position += 1
        }
        guard isMetricName(name) else { throw fail("bad metric name") }
        var labels: [String: String] = [:]
        var labelNames: [String] = []
        if position < characters.count, characters[position] == "{" {
            position += 1
            while position < characters.count, characters[position] != "}" {
                var labelName = ""
                while position < characters.count, characters[position] != "=" {
                    labelName.append(characters[position])
                    position += 1
                }
                guard isMetricName(labelName), !labelName.contains(":") else { throw fail("bad label name") }
                position += 1
                guard position < characters.count, characters[position] == "\"" else { throw fail("label value not quoted") }
                position += 1
                var value = ""
                var closed = false
                while position < characters.count {
                    let character = characters[position]
                    position += 1
                    if character == "\\" {
                        guard position < characters.count else { throw fail("dangling escape") }
                        switch characters[position] {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw fail("bad escape")
                        }
                        position += 1
                    } else if character == "\"" {
                        closed = true
                        break
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { throw fail("unterminated label value") }
                guard labels[labelName] == nil else { throw fail("repeated label") }
                labels[labelName] = value
                labelNames.append(labelName)
                if position < characters.count, characters[position] == "," { position += 1 }
            }
            guard position < characters.count else { throw fail("unterminated label set") }
            position += 1
        }
        guard position < characters.count, characters[position] == " " else { throw fail("no value") }
        let rest = String(characters[(position + 1)...]).split(separator: " ")
        guard (1...2).contains(rest.count) else { throw fail("bad value") }
        let valueText = String(rest[0])
        let value: Double
        switch valueText {
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default:
            guard let parsed = Double(valueText) else { throw fail("value is not a number") }
            value = parsed
        }
        if rest.count == 2, Int64(rest[1]) == nil { throw fail("bad timestamp") }
        return Sample(name: name, labels: labels, labelNames: labelNames, value: value)
    }
}
