/// One connection attempt whose outcome is settled, as the tracker hands it to its observer.
public struct HandshakeRecord: Sendable {
    public var client: IPAddress
    public var clientPort: UInt16
    public var server: IPAddress
    public var serverPort: UInt16
    public var isIPv6: Bool
    /// The encapsulations of the client's SYN, outermost first; empty without a tunnel.
    public var tunnel: TunnelPath
    public var outcome: Outcome
    /// Whether the client's handshake ACK was seen: the attempt counts in `handshakes_completed`.
    public var handshakeCompleted: Bool
    public var synTimeNanos: Int64
    /// Zero when no SYN-ACK was seen.
    public var synAckTimeNanos: Int64
    /// Zero when no handshake ACK was seen.
    public var ackTimeNanos: Int64
    /// When the outcome was settled: the RST, the server's first data, or the deadline.
    public var settledTimeNanos: Int64
    public var ackPayloadBytes: UInt32
    public var clientISN: UInt32
    public var serverISN: UInt32
    public var synRetransmits: UInt16
    public var synAckRetransmits: UInt16
    public var history: History
    /// The SYN-ACK's IP and link-layer fields; meaningful when `synAckTimeNanos` is not zero.
    public var synAck: PacketFingerprint
    /// Whether the SYN-ACK looks like a syncookie (`HandshakeState.synAckLooksLikeCookie`).
    public var synAckLooksLikeCookie: Bool
    /// The TOS or traffic class of the client's handshake ACK.
    public var ackTrafficClass: UInt8
    /// The server RST of the outcome: the one that settled an incident or a near miss, or for `wrongAck`
    /// the first RST with the wrong sequence number; nil for outcomes without one.
    public var reset: ResetSegment?
    /// Attempts to the same server port whose handshake ACK had been seen and whose server had not spoken
    /// yet (no byte, FIN or RST) when this attempt's handshake ACK came: the accept queue as the packets
    /// show it, since a server answers once it accepts. 0 without a handshake ACK.
    public var awaitingServerAtAck: Int
}

/// Receives every settled attempt. Generic use keeps the call static: no existential per packet.
public protocol HandshakeObserver {
    mutating func record(_ handshake: HandshakeRecord)
    /// A client sent its SYN again before any SYN-ACK: the server dropped the first one (a full accept or
    /// SYN queue drops SYNs), told as the retransmission is seen rather than when the attempt settles, which
    /// may be a handshake timeout later.
    ///
    /// - Parameters:
    ///   - serverPort: The SYN's destination port.
    ///   - firstSYNNanos: When the attempt's first SYN was seen: when the server dropped it.
    mutating func synRetransmitted(serverPort: UInt16, firstSYNNanos: Int64)
}

extension HandshakeObserver {
    /// Observers that only take settled attempts ignore SYN retransmissions.
    public mutating func synRetransmitted(serverPort: UInt16, firstSYNNanos: Int64) {}
}
