// Reading the judge's answer out of the model's reply text.

import AssayCore
import AssayScoring

/// Reads `{"rationale": ..., "result": "yes"|"no"}` out of a model reply, tolerantly (code
/// fences, JSON in prose, `Result: yes` lines, yes/no/true/false/pass/fail synonyms): the
/// judges' shared ``JudgeReplyParser``, so the HTTP and offline judges read replies alike.
/// Failures are `JUDGE_UNPARSEABLE`, quoting at most 200 characters of the reply.
func parseReply(_ text: String) -> Result<(value: FeedbackValue, rationale: String), JudgeFailure> {
    JudgeReplyParser.parse(text)
}

/// At most ``quoteLimit`` characters of `text`, line breaks flattened, in quotes, with `…`
/// when cut: how errors quote server text.
func quoteExcerpt(_ text: String) -> String {
    let flattened = String(text.map { $0.isNewline ? " " : $0 })
    if flattened.count <= quoteLimit { return "\"\(flattened)\"" }
    return "\"\(flattened.prefix(quoteLimit))…\""
}

let quoteLimit = 200

extension StringProtocol {
    func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}
