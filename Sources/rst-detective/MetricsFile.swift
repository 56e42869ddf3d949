import Glibc

/// `--metrics-file`: the metrics text written to `PATH.partial` and renamed over `PATH`, so that a reader
/// (node_exporter's textfile collector) always finds a whole file under the final name.
struct MetricsFile {
    struct Failure: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String { "cannot write metrics to '\(path)': \(reason)" }
    }

    let path: String

    /// Where the text is written before the rename: same directory, so the rename is atomic.
    var asidePath: String { path + ".partial" }

    /// Writes `text` aside and renames it into place; on failure the previous file stays as it was.
    func write(_ text: String) throws(Failure) {
        let aside = asidePath
        let descriptor = open(aside, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure() }
        var bytes = Array(text.utf8)
        var written = 0
        let complete = bytes.withUnsafeMutableBytes { buffer in
            while written < buffer.count {
                let result = Glibc.write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if result < 0, errno == EINTR { continue }
                guard result > 0 else { return false }
                written += result
            }
            return true
        }
        let error = complete ? failureIfClosed(descriptor) : failureClosing(descriptor)
        if let error {
            unlink(aside)
            throw error
        }
        guard rename(aside, path) == 0 else {
            let error = failure()
            unlink(aside)
            throw error
        }
    }

    private func failure() -> Failure {
        Failure(path: path, reason: String(cString: strerror(errno)))
    }

    private func failureIfClosed(_ descriptor: Int32) -> Failure? {
        close(descriptor) == 0 ? nil : failure()
    }

    private func failureClosing(_ descriptor: Int32) -> Failure {
        let error = failure()
        close(descriptor)
        return error
    }
}
