/// Parses the timestamp and duration text found in trace payloads into exact integers.
///
/// No `Foundation` date types are involved: results are nanoseconds (or milliseconds) in
/// `Int64`, and every out-of-range input yields nil instead of wrapping.
public enum TimeParsing {
    /// Nanoseconds since the Unix epoch of an RFC 3339 timestamp, or nil when the text is not one
    /// or falls outside what `Int64` nanoseconds can hold (years 1678–2261).
    ///
    /// Accepts `2026-02-03T13:00:53.476Z`, `2026-02-03T13:00:53Z`, `2026-02-03T14:00:53+01:00`,
    /// `t`/space as the date–time separator, `z` for UTC, and 1–9 fraction digits (further
    /// digits are truncated). Second 60 (a leap second) is accepted and counts as the next
    /// minute's second 0.
    public static func rfc3339Nanoseconds(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { parseRFC3339($0) }
    }

    /// Nanoseconds of a protobuf-JSON `Duration` such as `1.555s`, `-0.5s` or `3s`, or nil.
    public static func protoDurationNanoseconds(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 2, bytes.last == UInt8(ascii: "s") else { return nil }
        var index = 0
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        let body = bytes[index..<(bytes.count - 1)]
        let dot = body.firstIndex(of: UInt8(ascii: "."))
        let secondsDigits = body[..<(dot ?? body.endIndex)]
        guard !secondsDigits.isEmpty, let seconds = digitsValue(secondsDigits) else { return nil }
        var fraction: Int64 = 0
        if let dot {
            let fractionDigits = body[(dot + 1)...]
            guard !fractionDigits.isEmpty, fractionDigits.count <= 9,
                  let value = digitsValue(fractionDigits) else { return nil }
            fraction = value
            for _ in fractionDigits.count..<9 { fraction *= 10 }
        }
        let (scaled, overflow1) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, overflow2) = scaled.addingReportingOverflow(fraction)
        guard !overflow1, !overflow2 else { return nil }
        return negative ? -total : total
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let monthIndex = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2:
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            return leap ? 29 : 28
        case 4, 6, 9, 11:
            return 30
        default:
            return 31
        }
    }

    private static func digitsValue<C: Collection>(_ digits: C) -> Int64? where C.Element == UInt8 {
        var value: Int64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = times10.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = next
        }
        return value
    }

    private static func parseRFC3339(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        // YYYY-MM-DDTHH:MM:SS is 19 bytes; then an optional fraction and a zone.
        guard bytes.count >= 20 else { return nil }
        func number(_ start: Int, _ length: Int) -> Int64? {
            digitsValue(UnsafeBufferPointer(rebasing: bytes[start..<(start + length)]))
        }
        guard let year = number(0, 4), bytes[4] == UInt8(ascii: "-"),
              let month = number(5, 2), bytes[7] == UInt8(ascii: "-"),
              let day = number(8, 2),
              bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") || bytes[10] == UInt8(ascii: " "),
              let hour = number(11, 2), bytes[13] == UInt8(ascii: ":"),
              let minute = number(14, 2), bytes[16] == UInt8(ascii: ":"),
              let second = number(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
              hour <= 23, minute <= 59, second <= 60
        else { return nil }

        var index = 19
        var fractionNanos: Int64 = 0
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            let fractionStart = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                if index - fractionStart < 9 {
                    fractionNanos = fractionNanos * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                }
                index += 1
            }
            let fractionDigits = index - fractionStart
            guard fractionDigits > 0 else { return nil }
            for _ in min(fractionDigits, 9)..<9 { fractionNanos *= 10 }
        }

        guard index < bytes.count else { return nil }
        var offsetSeconds: Int64 = 0
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign: Int64 = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            guard index + 6 == bytes.count,
                  let offsetHours = number(index + 1, 2), bytes[index + 3] == UInt8(ascii: ":"),
                  let offsetMinutes = number(index + 4, 2),
                  offsetHours <= 23, offsetMinutes <= 59
            else { return nil }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
            index += 6
        default:
            return nil
        }
        guard index == bytes.count else { return nil }

        let days = daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        let (scaled, overflow1) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, overflow2) = scaled.addingReportingOverflow(fractionNanos)
        guard !overflow1, !overflow2 else { return nil }
        return total
    }
}
