import Glibc
import RSTDetective

/// Ctrl-C (SIGINT), SIGTERM and SIGHUP stop the run after the current packet, so that every report is still
/// written, the tracefs instance removed, and the run exits 0; a second signal ends the process at once, as
/// the default action does. SIGPIPE is ignored, so that a reader that closes a pipe early (`| head`) makes
/// that one write fail with EPIPE instead of killing the process before the other reports are written.
enum SignalHandling {
    private static let stop = StopRequest()

    /// Ignores SIGPIPE and installs the stop handlers, without SA_RESTART so that a read blocked on a quiet
    /// pipe is interrupted, and unblocks the stop signals, which a parent may have blocked.
    ///
    /// SIGINT and SIGTERM are handled even when the parent set them to be ignored, as a shell does for a job
    /// started with `&` in a script: tcpdump does the same, and the run must still be stoppable. SIGHUP keeps
    /// an inherited SIG_IGN, as tcpdump's does, so that `nohup` still keeps the run alive when its terminal
    /// goes away.
    static func install() -> StopRequest {
        // Touch the request before any signal can arrive: a handler must not run its lazy initialisation.
        let stop = Self.stop
        _ = signal(SIGPIPE, SIG_IGN)
        var signals = sigset_t()
        sigemptyset(&signals)
        for number in [SIGINT, SIGTERM, SIGHUP] {
            if number == SIGHUP {
                var previous = sigaction()
                sigaction(number, nil, &previous)
                let ignored = unsafeBitCast(SIG_IGN, to: Int.self)
                if unsafeBitCast(previous.__sigaction_handler.sa_handler, to: Int.self) == ignored { continue }
            }
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { received in
                SignalHandling.stop.request()
                _ = signal(received, SIG_DFL)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(number, &action, nil)
            sigaddset(&signals, number)
        }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        return stop
    }
}
