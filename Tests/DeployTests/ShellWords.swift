/// A small shell-words splitter: enough for the command lines in compose files, Dockerfiles
/// and docs (quotes, backslash escapes and line continuations, and the operators that end
/// one command).
enum ShellWords {
    /// The operators that separate commands; they come back as words of their own.
    static let separators: Set<String> = ["|", "||", "&", "&&", ";", ">", ">>", "<", "(", ")", "2>", "2>&1"]

    static func split(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var characters = Array(text)
        // Line continuations join lines.
        var index = 0
        var joined: [Character] = []
        while index < characters.count {
            if characters[index] == "\\", index + 1 < characters.count, characters[index + 1] == "\n" {
                index += 2
                continue
            }
            joined.append(characters[index])
            index += 1
        }
        characters = joined
        func finish() {
            if inWord { words.append(current) }
            current = ""
            inWord = false
        }
        index = 0
        while index < characters.count {
            let character = characters[index]
            if let open = quote {
                if character == open {
                    quote = nil
                } else if open == "\"", character == "\\", index + 1 < characters.count {
                    index += 1
                    current.append(characters[index])
                } else {
                    current.append(character)
                }
                index += 1
                continue
            }
            switch character {
            case "'", "\"":
                quote = character
                inWord = true
            case "\\" where index + 1 < characters.count:
                index += 1
                current.append(characters[index])
                inWord = true
            case " ", "\t":
                finish()
            case "\n":
                finish()
                words.append(";")
            case "|", "&", ";", ">", "<", "(", ")":
                finish()
                var op = String(character)
                if index + 1 < characters.count, (characters[index + 1] == character && (character == "|" || character == "&" || character == ">")) {
                    op.append(characters[index + 1])
                    index += 1
                }
                words.append(op)
            case "#" where !inWord:
                // A comment runs to the end of the line.
                while index + 1 < characters.count, characters[index + 1] != "\n" { index += 1 }
            default:
                current.append(character)
                inWord = true
            }
            index += 1
        }
        finish()
        return words
    }
}

/// One call of the assay binary found in a deploy file or a doc.
struct AssayInvocation: Sendable, CustomStringConvertible {
    /// Where it was found, for messages (`deploy/compose.yaml service assay`).
    var location: String
    /// The subcommand's words (`["serve"]`, `["monitor", "get"]`).
    var subcommand: [String]
    /// The arguments after the subcommand.
    var arguments: [String]

    var description: String { "\(location): assay \((subcommand + arguments).joined(separator: " "))" }

    /// The long flags among the arguments (`--http=0.0.0.0:8080` counts as `--http`).
    var longFlags: [String] {
        arguments.filter { $0.hasPrefix("--") && $0.count > 2 }.map { flag in
            flag.firstIndex(of: "=").map { String(flag[..<$0]) } ?? flag
        }
    }

    /// Parses `words` that start at the subcommand (the binary's name already consumed), up to
    /// the first shell separator. Nil when the first word is not a subcommand of assay.
    static func parse(_ words: ArraySlice<String>, location: String) -> AssayInvocation? {
        guard let first = words.first else { return nil }
        var subcommand: [String]
        var rest = words.dropFirst()
        if first == "monitor" {
            guard let action = rest.first, ["get", "update", "versions", "pause", "resume"].contains(action) else { return nil }
            subcommand = ["monitor", action]
            rest = rest.dropFirst()
        } else if CLIHelp.subcommands.contains([first]) {
            subcommand = [first]
        } else {
            return nil
        }
        var arguments: [String] = []
        for word in rest {
            if ShellWords.separators.contains(word) { break }
            arguments.append(word)
        }
        return AssayInvocation(location: location, subcommand: subcommand, arguments: arguments)
    }

    /// Every invocation in shell text: a word that is the binary (`assay`, or a path ending in
    /// `/assay`) followed by a subcommand.
    static func scan(shellText: String, location: String) -> [AssayInvocation] {
        let words = ShellWords.split(shellText)
        var found: [AssayInvocation] = []
        for index in words.indices where isBinary(words[index]) {
            if let invocation = parse(words[(index + 1)...], location: location) {
                found.append(invocation)
            }
        }
        return found
    }

    static func isBinary(_ word: String) -> Bool {
        word == "assay" || word.hasSuffix("/assay")
    }
}
