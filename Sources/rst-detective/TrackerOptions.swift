import ArgumentParser
import RSTDetective

/// The handshake tracker's limits: shared by `analyze` and `capture`.
struct TrackerOptions: ParsableArguments {
    @Option(
        name: .customLong("max-delay"),
        help: ArgumentHelp(
            "A RST counts if it comes less than this long after the handshake ACK (0.000001 to 3600).",
            valueName: "seconds"))
    var maximumDelay: Double = 1.0

    @Option(
        name: .customLong("handshake-timeout"),
        help: ArgumentHelp(
            "An attempt with no SYN-ACK, or no ACK, this long after the last SYN or SYN-ACK is unanswered, or abandoned (0.000001 to 86400).",
            valueName: "seconds"))
    var handshakeTimeout: Double = 60

    @Option(
        name: .customLong("max-flows"),
        help: ArgumentHelp(
            "Handshakes tracked at once; further SYNs are counted, not tracked (1 to 100000000).", valueName: "n"))
    var maximumFlows = 1_000_000

    /// The shortest `--max-delay` and `--handshake-timeout`: a microsecond, the resolution of a classic pcap,
    /// so that no value in range rounds to 0 ns.
    static let shortestSeconds = 0.000_001

    func validate() throws {
        try OptionValidation.seconds(maximumDelay, in: Self.shortestSeconds...3600, option: "--max-delay")
        try OptionValidation.seconds(
            handshakeTimeout, in: Self.shortestSeconds...86400, option: "--handshake-timeout")
        guard (1...100_000_000).contains(maximumFlows) else {
            throw ValidationError("--max-flows must be 1 to 100000000, not \(maximumFlows)")
        }
    }

    /// The tracker configuration these options give.
    var configuration: HandshakeTracker.Configuration {
        HandshakeTracker.Configuration(
            maximumDelayNanos: Int64((maximumDelay * 1e9).rounded()),
            handshakeTimeoutNanos: Int64((handshakeTimeout * 1e9).rounded()),
            maximumFlows: maximumFlows)
    }
}
