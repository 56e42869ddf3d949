import Glibc
import RSTDetective

/// The one-line progress of `analyze` on a terminal: a bar, bytes read of the total, packets per second and
/// the time left, redrawn at most ten times a second on standard error and cleared at the end.
final class ProgressBar {
    private let started = ProgressBar.now()
    private var lastDrawn: Double = 0
    private var drawn = false

    /// Draws `progress` if a tenth of a second has passed since the last time.
    func update(_ progress: AnalysisProgress) {
        let now = Self.now()
        guard now - lastDrawn >= 0.1 else { return }
        lastDrawn = now
        drawn = true
        StandardError.write("\r\u{1B}[K" + Self.line(progress, elapsed: now - started))
    }

    /// Removes the line, before the summary is written.
    func clear() {
        if drawn { StandardError.write("\r\u{1B}[K") }
    }

    /// The text of the line: `[#######-------]  45%  553 MB of 1.2 GB  4.5 M packets  20.1 M packets/s
    /// 0:03 left`; without the total (standard input), the bytes, packets and rate only.
    static func line(_ progress: AnalysisProgress, elapsed: Double) -> String {
        let rate = elapsed > 0 ? Double(progress.packets) / elapsed : 0
        var parts: [String] = []
        if let read = progress.bytesRead, let total = progress.totalBytes, total > 0 {
            let fraction = min(1, Double(read) / Double(total))
            let width = 24
            let filled = Int(fraction * Double(width))
            parts.append(
                "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]")
            parts.append(Summary.fixed(fraction * 100, digits: 0) + "%")
            parts.append("\(bytes(read)) of \(bytes(total))")
            parts.append("\(count(progress.packets)) packets")
            parts.append("\(count(Int(rate))) packets/s")
            if fraction > 0, elapsed > 0.5 {
                parts.append(duration(elapsed / fraction - elapsed) + " left")
            }
        } else {
            if let read = progress.bytesRead { parts.append(bytes(read)) }
            parts.append("\(count(progress.packets)) packets")
            parts.append("\(count(Int(rate))) packets/s")
        }
        return "analyzing " + parts.joined(separator: "  ")
    }

    /// `553 MB`, `1.2 GB` (decimal units, as `ls -h --si`).
    static func bytes(_ value: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var scaled = Double(value)
        var unit = 0
        while scaled >= 1000, unit < units.count - 1 {
            scaled /= 1000
            unit += 1
        }
        return Summary.fixed(scaled, digits: scaled < 10 && unit > 0 ? 1 : 0) + " " + units[unit]
    }

    /// `950`, `12.3 k`, `4.5 M`.
    static func count(_ value: Int) -> String {
        switch value {
        case ..<1000: return String(value)
        case ..<1_000_000: return Summary.fixed(Double(value) / 1e3, digits: 1) + " k"
        default: return Summary.fixed(Double(value) / 1e6, digits: 1) + " M"
        }
    }

    /// `0:07`, `12:34`, `1:02:03`.
    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded(.up))
        let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60)
        let two = { (value: Int) in value < 10 ? "0\(value)" : "\(value)" }
        return hours > 0 ? "\(hours):\(two(minutes)):\(two(secs))" : "\(minutes):\(two(secs))"
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
