/// Writes RFC 3339 UTC timestamps from integer epoch times, without `Foundation`.
///
/// The inverse of ``TimeParsing/rfc3339Nanoseconds(_:)`` for years 0000–9999: every string
/// written here parses back to the same instant (at the written precision).
public enum TimeFormatting {
    /// How many fraction-of-second digits to write.
    public enum Fraction: Sendable, Equatable {
        /// Exactly three digits (`2026-02-03T13:00:53.476Z`, `…:53.000Z`), as MLflow writes times.
        case milliseconds
        /// None when the time is a whole second, else 3, 6 or 9 digits, the fewest that are exact
        /// (`2026-02-03T13:00:50Z`, `…:50.5` is written `…:50.500Z`).
        case shortestExact
    }

    /// `nanos` (since the Unix epoch) as `YYYY-MM-DDTHH:MM:SS[.fff]Z`, in UTC.
    ///
    /// With ``Fraction/milliseconds`` the time is rounded down (towards the past) to the
    /// millisecond. Times before year 0 or after 9999 cannot be written as RFC 3339; they are
    /// written with a sign and more year digits (ISO 8601 expanded form), which RFC 3339 parsers
    /// reject — but `Int64` nanoseconds only span 1677–2262, so this cannot happen for them.
    public static func rfc3339(nanos: Int64, fraction: Fraction) -> String {
        let (seconds, nanosOfSecond) = floorDivide(nanos, 1_000_000_000)
        switch fraction {
        case .milliseconds:
            return rfc3339(seconds: seconds, fractionDigits: pad(nanosOfSecond / 1_000_000, 3))
        case .shortestExact:
            if nanosOfSecond == 0 { return rfc3339(seconds: seconds, fractionDigits: "") }
            if nanosOfSecond % 1_000_000 == 0 {
                return rfc3339(seconds: seconds, fractionDigits: pad(nanosOfSecond / 1_000_000, 3))
            }
            if nanosOfSecond % 1000 == 0 {
                return rfc3339(seconds: seconds, fractionDigits: pad(nanosOfSecond / 1000, 6))
            }
            return rfc3339(seconds: seconds, fractionDigits: pad(nanosOfSecond, 9))
        }
    }

    /// `millis` (since the Unix epoch) as `YYYY-MM-DDTHH:MM:SS.fffZ`, in UTC.
    public static func rfc3339(millis: Int64) -> String {
        let (seconds, millisOfSecond) = floorDivide(millis, 1000)
        return rfc3339(seconds: seconds, fractionDigits: pad(millisOfSecond, 3))
    }

    /// Floor division and the matching non-negative remainder (`divisor` > 0).
    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var quotient = value / divisor
        var remainder = value % divisor
        if remainder < 0 {
            quotient -= 1
            remainder += divisor
        }
        return (quotient, remainder)
    }

    private static func rfc3339(seconds: Int64, fractionDigits: String) -> String {
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        let yearText: String
        if (0...9999).contains(year) {
            yearText = pad(year, 4)
        } else {
            yearText = (year < 0 ? "-" : "+") + pad(year.magnitude, 6)
        }
        var text = yearText + "-" + pad(month, 2) + "-" + pad(day, 2)
        text += "T" + pad(secondOfDay / 3600, 2) + ":" + pad(secondOfDay / 60 % 60, 2) + ":" + pad(secondOfDay % 60, 2)
        if !fractionDigits.isEmpty { text += "." + fractionDigits }
        return text + "Z"
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
    /// `civil_from_days`).
    static func civilDate(daysSinceEpoch days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func pad<Value: BinaryInteger>(_ value: Value, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
