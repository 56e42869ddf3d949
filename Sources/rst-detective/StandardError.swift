import Glibc

/// Diagnostics go to standard error, unbuffered, one line per message; data goes to standard output.
enum StandardError {
    static func write(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    /// Writes `rst-detective: MESSAGE` on one line.
    static func report(_ message: String) {
        write("rst-detective: \(message)\n")
    }
}
