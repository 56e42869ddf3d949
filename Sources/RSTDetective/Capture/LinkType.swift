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
    /// PPP (`DLT_PPP`), with or without the HDLC-like address and control bytes, and PPP in HDLC-like
    /// framing (`DLT_PPP_SERIAL`, which some routers fill with Cisco HDLC frames instead).
    case ppp
    /// Cisco HDLC (`DLT_C_HDLC`): address, control, then an EtherType.
    case ciscoHDLC
    /// Linux NFLOG (`DLT_NFLOG`, `tcpdump -i nflog:N`): a header, then type-length-value attributes, one of
    /// which is the packet.
    case nflog
    /// IP over InfiniBand (`DLT_IPOIB`): 20-byte destination and source addresses, an EtherType and 2
    /// reserved bytes.
    case ipOverInfiniBand
    /// IEEE 802.11 frames without a radio header (`DLT_IEEE802_11`).
    case ieee80211
    /// IEEE 802.11 frames after a radiotap header (`DLT_IEEE802_11_RADIO`).
    case radiotap
    /// IEEE 802.11 frames after a Per-Packet Information header (`DLT_PPI`).
    case ppi
    /// Any other link type, with its libpcap `DLT_` number.
    case other(Int32)
}
