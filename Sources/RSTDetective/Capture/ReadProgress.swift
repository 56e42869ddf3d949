import Glibc
import Synchronization

/// How far the reading of capture files has got, for a progress bar; safe to read from any thread.
///
/// The reader registers each file it opens (its descriptor and size) and unregisters it before closing it;
/// the position within an open file is the descriptor's offset (`lseek`), so the per-packet loop does
/// nothing for it. For a gzip file, size and offset are both compressed bytes.
package final class ReadProgress: Sendable {
    private struct State {
        var doneBytes: Int64 = 0
        var open: [Int32: Int64] = [:]
    }

    /// The bytes of all inputs, when every one is a regular file.
    package let totalBytes: Int64?
    private let state = Mutex(State())

    /// Sizes the inputs: `paths` as the reader gets them.
    package init(paths: [String]) {
        var total: Int64 = 0
        for path in paths {
            var status = stat()
            guard PacketSource.isRegularFile(path), unsafe stat(path, &status) == 0 else {
                totalBytes = nil
                return
            }
            total += Int64(status.st_size)
        }
        totalBytes = total
    }

    /// Bytes read so far: the files closed, and the offsets within the open ones.
    package var bytesRead: Int64 {
        state.withLock { state in
            state.open.reduce(state.doneBytes) { sum, file in
                let offset = lseek(file.key, 0, SEEK_CUR)
                return sum + (offset < 0 ? 0 : min(Int64(offset), file.value))
            }
        }
    }

    func opened(descriptor: Int32, size: Int64?) {
        guard let size else { return }
        state.withLock { $0.open[descriptor] = size }
    }

    func closed(descriptor: Int32) {
        state.withLock { state in
            if let size = state.open.removeValue(forKey: descriptor) { state.doneBytes += size }
        }
    }
}

/// Where an analysis stands, as a progress bar shows it.
public struct AnalysisProgress: Sendable {
    /// Packets read so far.
    public var packets: Int
    /// Bytes of the inputs read so far (compressed bytes for gzip), or nil when unknown (standard input).
    public var bytesRead: Int64?
    /// All the bytes of the inputs, or nil when one is not a regular file.
    public var totalBytes: Int64?
}
