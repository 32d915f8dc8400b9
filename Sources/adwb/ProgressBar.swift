import Foundation

/// A one-line progress bar on stderr (`label [#####-----] 12/60  0:07 left`), redrawn at most
/// ten times a second. Silent when stderr is not a terminal, so logs and pipes stay clean.
final class ProgressBar {
    private let label: String
    private let total: Int
    private let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast

    init(_ label: String, total: Int, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.total = max(total, 1)
        self.enabled = enabled
    }

    /// Reports `done` of `total` items finished.
    func update(_ done: Int) {
        guard enabled else { return }
        let now = Date()
        guard done >= total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        FileHandle.standardError.write(Data(("\r" + Self.line(label: label, done: done, total: total,
                                                               elapsed: now.timeIntervalSince(start))).utf8))
        if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// The bar's text (no carriage return).
    static func line(label: String, done: Int, total: Int, elapsed: TimeInterval, width: Int = 30) -> String {
        let fraction = min(1, Double(done) / Double(max(total, 1)))
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        var text = "\(label) [\(bar)] \(done)/\(total)"
        if done > 0, done < total {
            let left = Int((elapsed / Double(done) * Double(total - done)).rounded())
            text += String(format: "  %d:%02d left", left / 60, left % 60)
        } else if done >= total {
            text += String(format: "  %.1f s", elapsed)
        }
        return text
    }
}
