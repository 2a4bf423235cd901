// Deterministic PII detection for the `pii` code scorer: e-mail addresses, phone numbers,
// payment card numbers (Luhn) and IBANs (mod 97). Linear-time scanners, no regular expressions.

/// The kinds of personal data the `pii` scorer looks for.
public enum PIIKind: String, Sendable, Equatable, Hashable, CaseIterable, Comparable {
    case email
    case phone
    case creditCard = "credit_card"
    case iban

    /// Declaration order (email, phone, credit_card, iban), used for stable rationales.
    public static func < (lhs: PIIKind, rhs: PIIKind) -> Bool {
        let order = allCases
        return (order.firstIndex(of: lhs) ?? 0) < (order.firstIndex(of: rhs) ?? 0)
    }
}

/// Finds personal data in text and reports **only counts per kind**: the API never returns the
/// matched text, so a caller cannot leak it into a rationale or a log by accident.
///
/// ## What counts (ASCII forms; each match is counted once, and its characters are not reused)
/// - **email**: `local@domain.tld`; local part of letters, digits and `._%+-` (not starting or
///   ending with `.`); a domain of at least two dot-separated labels of letters, digits and `-`,
///   the last one two or more letters. A trailing sentence `.` is not part of the address.
/// - **credit_card**: 13–19 digits written as one run or as groups separated by single spaces or
///   dashes (`4111 1111 1111 1111`, `3782-822463-10005`), whose first digit is 3, 4, 5 or 6 or whose
///   first four are 2221–2720 (the issuer ranges of the major networks), not all the same digit,
///   and **Luhn-valid**. Within a longer run of groups, any consecutive groups totalling 13–19
///   digits may match. A run glued to letters, or part of a decimal (`0.4111…`), is not a card.
///   So `ending in 0005` is not a card.
/// - **iban**: two upper-case letters (country), two check digits 02–98 and an upper-case
///   alphanumeric BBAN, 15–34 characters in all, compact or in space-separated groups, that is
///   **mod-97 valid** (ISO 13616). Per-country lengths are not checked.
/// - **phone**:
///   - international: `+` then 8–15 digits in groups separated by single spaces, dashes or dots,
///     a group possibly in parentheses (`+1 404 555 0166`, `+44 (0)20 7946 0958`, `+14045550166`);
///   - North American: an optional `1` prefix, a 3-digit area code (2–9 first) either in
///     parentheses (`(801) 555-0175`) or followed by a separator, a 3-digit exchange (2–9 first)
///     and 4 digits: `801-555-0104`, `801.555.0104`, `801 555 0104` (the two separators equal),
///     `1-801-555-0104`, `(801)555-0175`.
///   Numbers glued to letters or to a preceding `-`, `_`, `/` (`EXP-2026-0913`, `NW-26462`) are
///   ids, not phones; 7-digit local numbers without area code, plain years, dates
///   (`2026-02-03`), ranges (`1-30`) and amounts (`$4,729.01`) do not match.
///
/// E-mail addresses are found first, then IBANs (whose digits could otherwise pass for a card),
/// cards and phones, each skipping text already matched, so one string is never counted twice.
public enum PIIDetector {
    /// How many matches of each kind `text` contains (kinds with no match are absent).
    public static func counts(in text: String) -> [PIIKind: Int] {
        var scanner = Scanner(text)
        var result: [PIIKind: Int] = [:]
        for (kind, count) in [
            (PIIKind.email, scanner.scanEmails()),
            (.iban, scanner.scanIBANs()),
            (.creditCard, scanner.scanCards()),
            (.phone, scanner.scanPhones()),
        ] where count > 0 {
            result[kind] = count
        }
        return result
    }

    /// Whether `digits` (ASCII digits, spaces and dashes ignored) passes the Luhn checksum; false
    /// for fewer than two digits or any other character.
    public static func isLuhnValid(_ digits: String) -> Bool {
        var values: [Int] = []
        for byte in digits.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(Int(byte - UInt8(ascii: "0")))
            case UInt8(ascii: " "), UInt8(ascii: "-"): continue
            default: return false
            }
        }
        return luhn(values)
    }

    /// Whether `text` (spaces ignored, letters of either case) is a well-formed, mod-97-valid IBAN:
    /// country letters, check digits, 15–34 alphanumerics in all.
    public static func isValidIBAN(_ text: String) -> Bool {
        var characters: [UInt8] = []
        for byte in text.utf8 where byte != UInt8(ascii: " ") {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): characters.append(byte - 32)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): characters.append(byte)
            default: return false
            }
        }
        return ibanChecksumValid(characters)
    }

    // MARK: Checksums

    static func luhn(_ digits: [Int]) -> Bool {
        guard digits.count >= 2 else { return false }
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            if offset % 2 == 1 {
                let doubled = digit * 2
                sum += doubled > 9 ? doubled - 9 : doubled
            } else {
                sum += digit
            }
        }
        return sum % 10 == 0
    }

    /// `characters`: upper-case ASCII letters and digits only.
    static func ibanChecksumValid(_ characters: [UInt8]) -> Bool {
        guard characters.count >= 15, characters.count <= 34 else { return false }
        func isUpper(_ byte: UInt8) -> Bool { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) }
        func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
        guard isUpper(characters[0]), isUpper(characters[1]), isDigit(characters[2]), isDigit(characters[3]) else { return false }
        let check = Int(characters[2] - UInt8(ascii: "0")) * 10 + Int(characters[3] - UInt8(ascii: "0"))
        guard check >= 2, check <= 98 else { return false }
        // Move the first four characters to the end, letters become 10…35, then mod 97 == 1.
        var remainder = 0
        for byte in characters[4...] + characters[..<4] {
            if isDigit(byte) {
                remainder = (remainder * 10 + Int(byte - UInt8(ascii: "0"))) % 97
            } else if isUpper(byte) {
                remainder = (remainder * 100 + Int(byte - UInt8(ascii: "A")) + 10) % 97
            } else {
                return false
            }
        }
        return remainder == 1
    }

    static func plausibleCardPrefix(_ digits: [Int]) -> Bool {
        guard let first = digits.first else { return false }
        if (3...6).contains(first) { return true }
        guard first == 2, digits.count >= 4 else { return false }
        let prefix = digits[0] * 1000 + digits[1] * 100 + digits[2] * 10 + digits[3]
        return (2221...2720).contains(prefix)
    }

    // MARK: Scanner

    /// The text as Unicode scalars; matched ranges are overwritten with U+0000, which no scanner
    /// accepts, so later scanners skip them and treat them as a boundary.
    struct Scanner {
        var s: [Unicode.Scalar]
        static let masked: Unicode.Scalar = "\u{0}"

        init(_ text: String) {
            s = Array(text.unicodeScalars)
            // A real U+0000 in the text would read as "already matched"; make it a plain space.
            for index in s.indices where s[index] == Self.masked { s[index] = " " }
        }

        // Character classes (ASCII, except that any alphabetic scalar counts as a letter for boundaries).
        func at(_ index: Int) -> Unicode.Scalar? { s.indices.contains(index) ? s[index] : nil }
        func isDigit(_ index: Int) -> Bool { at(index).map { ("0"..."9").contains($0) } ?? false }
        func isUpper(_ index: Int) -> Bool { at(index).map { ("A"..."Z").contains($0) } ?? false }
        func isASCIILetterOrDigit(_ index: Int) -> Bool {
            at(index).map { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) } ?? false
        }
        func isWordCharacter(_ index: Int) -> Bool {
            guard let scalar = at(index) else { return false }
            return isDigit(index) || scalar.properties.isAlphabetic || scalar == "_"
        }
        func isOneOf(_ index: Int, _ set: String) -> Bool {
            at(index).map { set.unicodeScalars.contains($0) } ?? false
        }
        func digit(_ index: Int) -> Int { Int(s[index].value) - 0x30 }

        mutating func mask(_ range: Range<Int>) {
            for index in range { s[index] = Self.masked }
        }

        // MARK: E-mail

        mutating func scanEmails() -> Int {
            var count = 0
            var index = 0
            while index < s.count {
                defer { index += 1 }
                guard s[index] == "@" else { continue }
                var start = index
                while start > 0, isASCIILetterOrDigit(start - 1) || isOneOf(start - 1, "._%+-") { start -= 1 }
                while start < index, s[start] == "." { start += 1 }
                guard start < index, s[index - 1] != "." else { continue }
                var end = index + 1
                while end < s.count, isASCIILetterOrDigit(end) || isOneOf(end, ".-") { end += 1 }
                while end > index + 1, isOneOf(end - 1, ".-") { end -= 1 }
                guard isDomain(index + 1..<end) else { continue }
                count += 1
                mask(start..<end)
                index = end - 1
            }
            return count
        }

        func isDomain(_ range: Range<Int>) -> Bool {
            let labels = s[range].split(separator: ".", omittingEmptySubsequences: false)
            guard labels.count >= 2 else { return false }
            for label in labels {
                guard !label.isEmpty, label.count <= 63, label.first != "-", label.last != "-" else { return false }
            }
            guard let tld = labels.last else { return false }
            return tld.count >= 2 && tld.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) }
        }

        // MARK: Cards

        /// Whether a number may start at `index`: not glued to a word, nor the fraction of a decimal.
        func numberMayStart(at index: Int) -> Bool {
            if isWordCharacter(index - 1) { return false }
            if isOneOf(index - 1, ".,"), isDigit(index - 2) { return false }
            return true
        }

        /// Whether a number may end just before `index`: not glued to a word, nor followed by a
        /// decimal part.
        func numberMayEnd(at index: Int) -> Bool {
            if isWordCharacter(index) { return false }
            if isOneOf(index, ".,"), isDigit(index + 1) { return false }
            return true
        }

        mutating func scanCards() -> Int {
            var count = 0
            var index = 0
            while index < s.count {
                guard isDigit(index), numberMayStart(at: index) else {
                    index += 1
                    continue
                }
                // Digit groups separated by single spaces or dashes.
                var groups: [Range<Int>] = []
                var position = index
                while true {
                    let groupStart = position
                    while isDigit(position) { position += 1 }
                    groups.append(groupStart..<position)
                    if isOneOf(position, " -"), isDigit(position + 1) {
                        position += 1
                    } else {
                        break
                    }
                }
                let runEnd = position
                if numberMayEnd(at: runEnd) {
                    var first = 0
                    while first < groups.count {
                        // The longest window of whole groups starting at `first` with at most 19
                        // digits, then shorter ones (so the work per group is bounded).
                        var digits: [Int] = []
                        var ends: [(last: Int, count: Int)] = []
                        var last = first
                        while last < groups.count, digits.count + groups[last].count <= 19 {
                            digits.append(contentsOf: groups[last].map(digit))
                            ends.append((last, digits.count))
                            last += 1
                        }
                        var matchedLast: Int?
                        for end in ends.reversed() where end.count >= 13 {
                            if isCard(Array(digits[..<end.count])) {
                                matchedLast = end.last
                                break
                            }
                        }
                        if let matchedLast {
                            count += 1
                            mask(groups[first].lowerBound..<groups[matchedLast].upperBound)
                            first = matchedLast + 1
                        } else {
                            first += 1
                        }
                    }
                }
                index = max(runEnd, index + 1)
            }
            return count
        }

        func isCard(_ digits: [Int]) -> Bool {
            guard PIIDetector.plausibleCardPrefix(digits), let first = digits.first,
                  digits.contains(where: { $0 != first }) else { return false }
            return PIIDetector.luhn(digits)
        }

        // MARK: IBAN

        mutating func scanIBANs() -> Int {
            var count = 0
            var index = 0
            while index < s.count {
                guard isUpper(index), isUpper(index + 1), isDigit(index + 2), isDigit(index + 3),
                      !isWordCharacter(index - 1) else {
                    index += 1
                    continue
                }
                // Upper-case alphanumeric groups separated by single spaces; remember where each ends.
                var compact: [UInt8] = []
                var groupEnds: [(position: Int, length: Int)] = []
                var position = index
                while true {
                    while isUpper(position) || isDigit(position) {
                        compact.append(UInt8(truncatingIfNeeded: s[position].value))
                        position += 1
                    }
                    groupEnds.append((position, compact.count))
                    // An IBAN has at most 34 characters: look no further (bounds the work).
                    if compact.count < 34, isOneOf(position, " "), isUpper(position + 1) || isDigit(position + 1) {
                        position += 1
                    } else {
                        break
                    }
                }
                var matchedEnd: Int?
                for (offset, end) in groupEnds.enumerated().reversed() {
                    // The whole run must not be glued to a following word.
                    if offset == groupEnds.count - 1, isWordCharacter(end.position) { continue }
                    if PIIDetector.ibanChecksumValid(Array(compact[..<end.length])) {
                        matchedEnd = end.position
                        break
                    }
                }
                if let matchedEnd {
                    count += 1
                    mask(index..<matchedEnd)
                    index = matchedEnd
                } else {
                    index += 1
                }
            }
            return count
        }

        // MARK: Phones

        mutating func scanPhones() -> Int {
            var count = 0
            var index = 0
            while index < s.count {
                let startsNumber = isDigit(index) || isOneOf(index, "+(")
                guard startsNumber, !isWordCharacter(index - 1), !isOneOf(index - 1, "-_/+@") else {
                    index += 1
                    continue
                }
                if isOneOf(index - 1, ".,"), isDigit(index - 2) {
                    index += 1
                    continue
                }
                if let end = international(from: index) ?? northAmerican(from: index) {
                    count += 1
                    mask(index..<end)
                    index = end
                } else {
                    index += 1
                }
            }
            return count
        }

        /// A digit run starting at `index`: its end and length.
        func digits(from index: Int) -> (end: Int, count: Int) {
            var end = index
            while isDigit(end) { end += 1 }
            return (end, end - index)
        }

        /// `+` then groups (digits or `(digits)`) separated by one space, dash or dot (or nothing
        /// next to a parenthesis), 8–15 digits in all. Returns the end.
        func international(from start: Int) -> Int? {
            guard at(start) == "+", isDigit(start + 1) else { return nil }
            var position = start + 1
            var total = 0
            var previousWasParenthesised = false
            while true {
                var parenthesised = false
                if at(position) == "(" {
                    let run = digits(from: position + 1)
                    guard run.count > 0, at(run.end) == ")" else { break }
                    total += run.count
                    position = run.end + 1
                    parenthesised = true
                } else {
                    let run = digits(from: position)
                    guard run.count > 0 else { break }
                    total += run.count
                    position = run.end
                }
                guard total <= 15 else { return nil }
                previousWasParenthesised = parenthesised
                // Next group: after one separator, or directly after/before a parenthesis.
                if isOneOf(position, " -."), isDigit(position + 1) || at(position + 1) == "(" {
                    position += 1
                } else if at(position) == "(" || (previousWasParenthesised && isDigit(position)) {
                    continue
                } else {
                    break
                }
            }
            guard (8...15).contains(total), numberMayEnd(at: position), !isOneOf(position, "-") || !isDigit(position + 1) else { return nil }
            return position
        }

        /// North American numbers (see the type's documentation). Returns the end.
        func northAmerican(from start: Int) -> Int? {
            var position = start
            var prefixSeparator: Unicode.Scalar?
            // Optional country code 1 and a separator.
            if at(position) == "1", isOneOf(position + 1, " -."), isDigit(position + 2) || at(position + 2) == "(" {
                prefixSeparator = at(position + 1)
                position += 2
            }
            let areaStart: Int
            let separator: Unicode.Scalar?
            if at(position) == "(" {
                areaStart = position + 1
                guard digits(from: areaStart).count == 3, at(areaStart + 3) == ")" else { return nil }
                position = areaStart + 4
                if at(position) == " " { position += 1 }
                separator = nil
            } else {
                areaStart = position
                guard digits(from: areaStart).count == 3, isOneOf(areaStart + 3, " -.") else { return nil }
                separator = at(areaStart + 3)
                if let prefixSeparator, prefixSeparator != separator { return nil }
                position = areaStart + 4
            }
            let exchangeStart = position
            guard digits(from: exchangeStart).count == 3, isOneOf(exchangeStart + 3, " -.") else { return nil }
            if let separator, at(exchangeStart + 3) != separator { return nil }
            let lineStart = exchangeStart + 4
            guard digits(from: lineStart).count == 4 else { return nil }
            guard digit(areaStart) >= 2, digit(exchangeStart) >= 2 else { return nil }
            let end = lineStart + 4
            guard numberMayEnd(at: end), !(isOneOf(end, "-") && isDigit(end + 1)) else { return nil }
            return end
        }
    }
}
