/// The link-layer header type of a capture, as libpcap reports it (`pcap_datalink`).
///
/// Only the types the decoder understands have cases; every other type is kept as `other` so that its
/// packets can be counted under a named reason instead of being misread.
public enum LinkType: Sendable, Equatable {
    /// Ethernet II, with any number of 802.1Q / 802.1ad tags (`DLT_EN10MB`).
    case ethernet
    /// Linux cooked capture v1, what `tcpdump -i any` wrote before libpcap 1.10 (`DLT_LINUX_SLL`).
    case linuxSLL
    /// Linux cooked capture v2 (`DLT_LINUX_SLL2`).
    case linuxSLL2
    /// Raw IP: the packet starts with an IPv4 or IPv6 header (`DLT_RAW`, `DLT_IPV4`, `DLT_IPV6`).
    case raw
    /// BSD loopback: a 4-byte address family in the writer's byte order (`DLT_NULL`) or in network order
    /// (`DLT_LOOP`); the decoder accepts either order for both.
    case null
    /// Any other link type, with its libpcap `DLT_` number.
    case other(Int32)
}
