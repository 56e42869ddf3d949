internal import CPcap

extension LinkType {
    /// Maps a libpcap `DLT_` value, using the C constants because some (`DLT_RAW`) differ by platform.
    init(dataLinkType value: Int32) {
        switch value {
        case DLT_EN10MB: self = .ethernet
        case DLT_LINUX_SLL: self = .linuxSLL
        case DLT_LINUX_SLL2: self = .linuxSLL2
        case DLT_RAW, DLT_IPV4, DLT_IPV6: self = .raw
        case DLT_NULL, DLT_LOOP: self = .null
        case DLT_PPP, DLT_PPP_SERIAL: self = .ppp
        case DLT_C_HDLC: self = .ciscoHDLC
        case DLT_NFLOG: self = .nflog
        case DLT_IPOIB: self = .ipOverInfiniBand
        case DLT_IEEE802_11: self = .ieee80211
        case DLT_IEEE802_11_RADIO: self = .radiotap
        case DLT_PPI: self = .ppi
        default: self = .other(value)
        }
    }

    /// libpcap's name of a link type number, as tcpdump prints it (`pcap_datalink_val_to_name`, e.g.
    /// `USB_LINUX`), or `DLT_<number>` for a number libpcap does not name.
    public static func name(ofDataLinkType value: Int32) -> String {
        guard let name = unsafe pcap_datalink_val_to_name(value) else { return "DLT_\(value)" }
        return unsafe String(cString: name)
    }
}
