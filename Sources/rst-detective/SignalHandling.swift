import Glibc
import RSTDetective

/// Ctrl-C (SIGINT) and SIGTERM stop the analysis after the current packet, so that every report is still
/// written and the run exits 0; a second signal ends the process at once, as the default action does.
enum SignalHandling {
    private static let stop = StopRequest()

    /// Installs the handlers, without SA_RESTART so that a read blocked on a quiet pipe is interrupted, and
    /// unblocks both signals, which a parent may have blocked. A signal the parent set to be ignored (as
    /// `nohup` does) stays ignored.
    static func install() -> StopRequest {
        // Touch the request before any signal can arrive: a handler must not run its lazy initialisation.
        let stop = Self.stop
        var signals = sigset_t()
        sigemptyset(&signals)
        for number in [SIGINT, SIGTERM] {
            var previous = sigaction()
            sigaction(number, nil, &previous)
            let ignored = unsafeBitCast(SIG_IGN, to: Int.self)
            if unsafeBitCast(previous.__sigaction_handler.sa_handler, to: Int.self) == ignored { continue }
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
