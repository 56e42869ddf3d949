/// Why a packet was not handed to the tracker. Each reason is counted and reported under `metricName`.
///
/// The reasons that name a length field are for packets that lie: a field pointing past the end of the
/// packet, or before the start of what follows it. Such a packet is counted, never read beyond its bytes.
public enum SkipReason: UInt8, CaseIterable, Sendable {
    /// The link layer, or a tunnel, carried something other than IPv4 or IPv6 (ARP, LLC, a GRE or Geneve
    /// protocol type, ERSPAN frame type or MPLS payload that is neither, a tunnel header version the decoder
    /// does not know, ...).
    case nonIP
    /// An IP packet whose transport is not TCP (ICMP, ESP, UDP to a port that is not a tunnel's, ...).
    case nonTCP
    /// An IPv4 fragment, or an IPv6 packet with a non-atomic Fragment header: its TCP header is either
    /// absent or not yet reassembled, so it is never read as TCP.
    case fragment
    /// The captured bytes end before the headers that must be read (snap length too short), while the
    /// packet on the wire was long enough to hold them.
    case truncated
    /// An IP version that is not the one the link layer announced (4 or 6), or an IPv6 extension-header
    /// chain that runs past the payload or is longer than eight headers.
    case badIPHeader
    /// A TCP header that does not fit the IP payload: a data offset below 5 words or past the end of the
    /// payload, or a payload (by the IP lengths) too short for any TCP header.
    case tcpDataOffsetInvalid
    /// A link type the decoder does not know.
    case unknownLinkType
    /// An IPv4 header length below 5 words, or past the end of the IP packet's total length.
    case ipHeaderLengthInvalid
    /// An IPv4 total length or IPv6 payload length that points past the end of the packet on the wire.
    case ipLengthInvalid
    /// A record that claims more captured bytes than the packet had on the wire.
    case capturedLengthInvalid
    /// Headers that run past the first `PacketDecoder.maximumHeaderBytes` bytes of the packet (a long chain
    /// of IPv6 extension headers, say): the decoder reads no further, on every read path alike.
    case headersTooLong
    /// More than `TunnelPath.capacity` layers of encapsulation (each MPLS label is one).
    case tooManyTunnelLayers

    /// The name of this reason's counter in summary.csv.
    public var metricName: String {
        switch self {
        case .nonIP: "skipped_non_ip"
        case .nonTCP: "skipped_non_tcp"
        case .fragment: "skipped_fragment"
        case .truncated: "skipped_truncated"
        case .badIPHeader: "skipped_bad_ip_header"
        case .tcpDataOffsetInvalid: "skipped_tcp_data_offset_invalid"
        case .unknownLinkType: "skipped_unknown_link_type"
        case .ipHeaderLengthInvalid: "skipped_ip_header_length_invalid"
        case .ipLengthInvalid: "skipped_ip_length_invalid"
        case .capturedLengthInvalid: "skipped_captured_length_invalid"
        case .headersTooLong: "skipped_headers_too_long"
        case .tooManyTunnelLayers: "skipped_too_many_tunnel_layers"
        }
    }
}
