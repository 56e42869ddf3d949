import ArgumentParser
import RSTDetective

/// The handshake tracker's limits: shared by `analyze` and `capture`.
struct TrackerOptions: ParsableArguments {
    @Option(
        name: .customLong("max-delay"),
        help: ArgumentHelp(
            "A RST counts if it comes less than this long after the handshake ACK.", valueName: "seconds"))
    var maximumDelay: Double = 1.0

    @Option(
        name: .customLong("handshake-timeout"),
        help: ArgumentHelp(
            "An attempt with no SYN-ACK, or no ACK, this long after the last SYN or SYN-ACK is unanswered, or abandoned.",
            valueName: "seconds"))
    var handshakeTimeout: Double = 60

    @Option(
        name: .customLong("max-flows"),
        help: ArgumentHelp("Handshakes tracked at once; further SYNs are counted, not tracked.", valueName: "n"))
    var maximumFlows = 1_000_000

    func validate() throws {
        guard maximumDelay > 0, maximumDelay <= 3600 else {
            throw ValidationError("--max-delay must be above 0 and at most 3600")
        }
        guard handshakeTimeout > 0, handshakeTimeout <= 86400 else {
            throw ValidationError("--handshake-timeout must be above 0 and at most 86400")
        }
        guard maximumFlows > 0, maximumFlows <= 100_000_000 else {
            throw ValidationError("--max-flows must be 1 to 100000000")
        }
    }

    /// The tracker configuration these options give.
    var configuration: HandshakeTracker.Configuration {
        HandshakeTracker.Configuration(
            maximumDelayNanos: Int64(maximumDelay * 1e9), handshakeTimeoutNanos: Int64(handshakeTimeout * 1e9),
            maximumFlows: maximumFlows)
    }
}
