internal import CGzip
import Synchronization

/// A request to stop reading captures early, safe to make from a signal handler: it only stores to a
/// lock-free atomic and to a `sig_atomic_t`.
///
/// The request also ends the input of every stream over a pipe, standard input or a gzip file, waking a
/// read blocked on a quiet pipe (`rstd_stream_stop`), so a stop takes effect even while no packet arrives.
/// That part is process-wide.
public final class StopRequest: Sendable {
    private let requested = Atomic<Bool>(false)

    public init() {}

    /// Asks the run to stop after the packet it is on.
    public func request() {
        requested.store(true, ordering: .relaxed)
        rstd_stream_stop()
    }

    /// Whether a stop was requested.
    public var isRequested: Bool { requested.load(ordering: .relaxed) }
}
