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
        default: self = .other(value)
        }
    }
}
