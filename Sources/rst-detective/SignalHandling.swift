import Glibc
import RSTDetective

/// Ctrl-C (SIGINT) and SIGTERM stop the analysis after the current packet, so that every report is still
/// written and the run exits 0; a second signal ends the process at once, as the default action does.
enum SignalHandling {
    private static let stop = StopRequest()

    /// Installs the handlers and unblocks both signals, which a parent may have blocked.
    static func install() -> StopRequest {
        // Touch the request before any signal can arrive: a handler must not run its lazy initialisation.
        let stop = Self.stop
        for number in [SIGINT, SIGTERM] {
            _ = Glibc.signal(number) { received in
                SignalHandling.stop.request()
                _ = Glibc.signal(received, SIG_DFL)
            }
        }
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        return stop
    }
}
