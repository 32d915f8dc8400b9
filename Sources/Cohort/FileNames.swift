/// File names made from identifiers (participant and session ids) that come from manifests.
public enum FileNames {
    /// A file-name-safe form of `text`: ASCII letters, digits, `.`, `-` and `_` kept, anything
    /// else (and leading dots, so nothing is hidden) replaced by `-`; never empty and never
    /// containing `/`, so a hostile id cannot leave its folder.
    public static func safeComponent(_ text: String) -> String {
        let cleaned = text.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "-" }
        let dots = cleaned.prefix { $0 == "." }.count
        let result = String(repeating: "-", count: dots) + String(cleaned.dropFirst(dots))
        return result.isEmpty ? "-" : result
    }
}
