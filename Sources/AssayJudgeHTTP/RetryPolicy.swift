// When and how long the HTTP judge waits before trying again.

import Foundation

/// The retry rules of the OpenAI judge.
///
/// Retried: HTTP 408, 429 and 500–599, timeouts, and transport errors (connection refused or
/// reset, DNS failure…). Not retried: other 4xx (the request itself is wrong, or the key is),
/// and replies that arrive but cannot be understood (at temperature 0 the model would most
/// likely say the same again, and each retry costs a call). A 400 that names
/// `response_format` is the one exception: it is retried at once without that field.
enum RetryPolicy {
    /// Whether a reply with this status is worth trying again.
    static func isRetryable(status: Int) -> Bool {
        status == 408 || status == 429 || (500...599).contains(status)
    }

    /// The wait before retry number `retry` (1 for the first retry): a value in
    /// `0 ... min(cap, base · 2^(retry-1))`, drawn uniformly when `fullJitter`, else the ceiling.
    static func backoff(retry: Int, base: Duration, cap: Duration, fullJitter: Bool, unitRandom: () -> Double) -> Duration {
        let exponent = min(max(retry - 1, 0), 30)
        let baseSeconds = seconds(base)
        let ceiling = min(seconds(cap), baseSeconds * Double(1 << exponent))
        guard ceiling > 0 else { return .zero }
        let value = fullJitter ? ceiling * min(max(unitRandom(), 0), 1) : ceiling
        return .milliseconds(Int64((value * 1000).rounded()))
    }

    /// The wait a server asks for, from `retry-after-ms` (OpenAI's millisecond header) or
    /// `Retry-After` (delay-seconds or an HTTP date), capped at `cap`. Nil when neither header
    /// is present or readable.
    static func serverRequestedDelay(retryAfter: String?, retryAfterMillis: String?, now: Date, cap: Duration) -> Duration? {
        if let text = retryAfterMillis?.trimmingCharacters(in: .whitespaces), let millis = Double(text), millis.isFinite, millis >= 0 {
            return min(.milliseconds(Int64(min(millis, 1e12))), cap)
        }
        guard let text = retryAfter?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        if let secondsValue = Double(text), secondsValue.isFinite, secondsValue >= 0 {
            return min(.milliseconds(Int64(min(secondsValue, 1e9) * 1000)), cap)
        }
        if let date = httpDate(text) {
            let delta = max(0, date.timeIntervalSince(now))
            return min(.milliseconds(Int64(min(delta, 1e9) * 1000)), cap)
        }
        return nil
    }

    /// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), and the obsolete RFC 850 and
    /// asctime forms HTTP still allows.
    static func httpDate(_ text: String) -> Date? {
        let formats = ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"]
        for format in formats {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
