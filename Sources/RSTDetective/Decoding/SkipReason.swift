/// Why a packet was not handed to the tracker. Each reason is counted and reported under `metricName`.
public enum SkipReason: UInt8, CaseIterable, Sendable {
    /// The link layer carried something other than IPv4 or IPv6 (ARP, LLC, ...).
    case nonIP
    /// An IP packet whose transport is not TCP (UDP, ICMP, ESP, ...).
    case nonTCP
    /// An IPv4 fragment, or an IPv6 packet with a non-atomic Fragment header: its TCP header is either
    /// absent or not yet reassembled, so it is never read as TCP.
    case fragment
    /// The captured bytes end before the headers that must be read (snap length too short).
    case truncated
    /// An IP header with a wrong version, header length or total length, or an extension-header chain
    /// that runs past the payload.
    case badIPHeader
    /// A TCP header whose data offset is below 5 words or longer than the IP payload.
    case badTCPHeader
    /// A link type the decoder does not know.
    case unknownLinkType

    /// The name of this reason's counter in summary.csv.
    public var metricName: String {
        switch self {
        case .nonIP: "skipped_non_ip"
        case .nonTCP: "skipped_non_tcp"
        case .fragment: "skipped_fragment"
        case .truncated: "skipped_truncated"
        case .badIPHeader: "skipped_bad_ip_header"
        case .badTCPHeader: "skipped_bad_tcp_header"
        case .unknownLinkType: "skipped_unknown_link_type"
        }
    }
}
