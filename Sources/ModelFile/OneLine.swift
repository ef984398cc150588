extension String {
    /// The text as an error message quotes a name from a user's file (a case id, a needle label, a key):
    /// on one line (control characters and line or paragraph separators as "?") and at most `limit`
    /// characters, so every error stays one line whatever the file holds.
    public func shownOnOneLine(limit: Int = 80) -> String {
        let one = withoutLineBreaks
        return one.count > limit ? String(one.prefix(limit - 3)) + "..." : one
    }

    /// The text with control characters and line or paragraph separators as "?": what every error
    /// message passes through last, so a message stays one line whatever text from a file it quotes.
    public var withoutLineBreaks: String {
        guard unicodeScalars.contains(where: Self.breaksLine) else { return self }
        return unicodeScalars.map { Self.breaksLine($0) ? "?" : String($0) }.joined()
    }

    static func breaksLine(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: return true
        default: return false
        }
    }
}
