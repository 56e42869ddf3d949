/// The fields of one decoded TCP segment that the handshake tracker needs; a trivial value, copied out of
/// the packet bytes, so nothing refers to libpcap's buffer after decoding.
public struct TCPSegment: Sendable, Equatable {
    // The stored properties go from the widest alignment to the narrowest, so that no padding is left between
    // them and the segment stays within 128 bytes: a copy of it (or of a `DecodeResult`) then moves inline,
    // while at 129 or more the compiler calls memcpy for every copy, which cost 15 instructions per packet
    // (callgrind, `analyze -j 1` of scripts/bench's traffic).
    public var timestampNanos: Int64
    public var source: IPAddress
    public var destination: IPAddress
    /// Payload bytes the segment carried on the wire, from the IP length fields, not from the captured
    /// bytes, so a short snap length does not hide data.
    public var payloadLength: Int
    /// The IP and link-layer fields compared between a RST and its SYN-ACK.
    public var fingerprint: PacketFingerprint
    /// The encapsulations the segment came through, outermost first.
    public var tunnel: TunnelPath
    public var sequenceNumber: UInt32
    public var acknowledgmentNumber: UInt32
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// nil when the snap length cut the header before it.
    public var window: UInt16?
    public var flags: TCPFlags
    /// Whether the segment came in an IPv6 packet (an IPv4-mapped address alone does not tell).
    public var isIPv6: Bool
    /// Whether the snap length cut the TCP header (after the 14 bytes the tracker needs): the fields it cut
    /// are empty, not guessed.
    public var isHeaderCut: Bool

    public init(
        timestampNanos: Int64, source: IPAddress, destination: IPAddress, sourcePort: UInt16,
        destinationPort: UInt16, isIPv6: Bool, sequenceNumber: UInt32, acknowledgmentNumber: UInt32,
        flags: TCPFlags, window: UInt16?, payloadLength: Int, fingerprint: PacketFingerprint = PacketFingerprint(),
        tunnel: TunnelPath = TunnelPath(), isHeaderCut: Bool = false
    ) {
        self.timestampNanos = timestampNanos
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.isIPv6 = isIPv6
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.payloadLength = payloadLength
        self.fingerprint = fingerprint
        self.tunnel = tunnel
        self.isHeaderCut = isHeaderCut
    }
}
