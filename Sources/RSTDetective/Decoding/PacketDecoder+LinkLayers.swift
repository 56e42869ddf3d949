/// The link-layer decoders: one small decoder per link type, and the Ethernet and VLAN layers that tunnels
/// carry too. Adding a link type is a decoder here and a case in `linkLayer`.
extension PacketDecoder {
    /// The first step of a packet of `linkType`.
    @inline(__always)
    static func linkLayer(_ bytes: RawSpan, linkType: LinkType, walk: inout Walk) -> Step {
        switch linkType {
        case .ethernet: ethernet(bytes, at: 0, walk: &walk)
        case .linuxSLL: linuxSLL(bytes, walk: &walk)
        case .linuxSLL2: linuxSLL2(bytes, walk: &walk)
        case .raw: .next(.ip, at: 0)
        case .null: null(bytes)
        case .ppp, .ciscoHDLC, .nflog, .ipOverInfiniBand, .ieee80211, .radiotap, .ppi:
            otherLinkStep(bytes, linkType: linkType, walk: &walk)
        case .other: .skipped(.unknownLinkType)
        }
    }

    /// The first step of a packet of one of the link types of `otherLinkLayer`.
    private static func otherLinkStep(_ bytes: RawSpan, linkType: LinkType, walk: inout Walk) -> Step {
        switch otherLinkLayer(bytes, linkType: linkType) {
        case .etherType(let etherType, let offset, let linkSource):
            walk.linkSource = linkSource
            return etherTypeStep(etherType, at: offset)
        case .ip(let offset):
            return .next(.ip, at: offset)
        case .skipped(let reason):
            return .skipped(reason)
        }
    }

    /// IEEE 802.3: destination(6) source(6) EtherType(2).
    @inline(__always)
    static func ethernet(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount >= offset + 14 else { return .skipped(.truncated) }
        walk.linkSource = offset + 6
        walk.vlanTags = 0
        return etherTypeStep(bytes.uncheckedUInt16(at: offset + 12), at: offset + 14)  // SAFETY: checked above
    }

    /// An 802.1Q tag: TCI(2) then the inner EtherType(2).
    @inline(__always)
    static func vlanTag(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        walk.vlanTags += 1
        guard walk.vlanTags <= maximumVLANTags else { return .skipped(.nonIP) }
        guard bytes.byteCount >= offset + 4 else { return .skipped(.truncated) }
        return etherTypeStep(bytes.uncheckedUInt16(at: offset + 2), at: offset + 4)  // SAFETY: checked above
    }

    /// Linux cooked v1: packet type(2) ARPHRD(2) address length(2) address(8) protocol(2).
    private static func linuxSLL(_ bytes: RawSpan, walk: inout Walk) -> Step {
        guard bytes.byteCount >= 16 else { return .skipped(.truncated) }
        // SAFETY for the loads: byteCount >= 16.
        if bytes.uncheckedUInt16(at: 4) == 6 { walk.linkSource = 6 }
        return etherTypeStep(bytes.uncheckedUInt16(at: 14), at: 16)
    }

    /// Linux cooked v2: protocol(2) reserved(2) ifindex(4) ARPHRD(2) type(1) length(1) address(8).
    private static func linuxSLL2(_ bytes: RawSpan, walk: inout Walk) -> Step {
        guard bytes.byteCount >= 20 else { return .skipped(.truncated) }
        // SAFETY for the loads: byteCount >= 20.
        if bytes.uncheckedUInt8(at: 11) == 6 { walk.linkSource = 12 }
        return etherTypeStep(bytes.uncheckedUInt16(at: 0), at: 20)
    }

    /// BSD loopback: a 4-byte address family in the writer's byte order (DLT_NULL) or network order
    /// (DLT_LOOP). AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 depending on the OS.
    private static func null(_ bytes: RawSpan) -> Step {
        guard bytes.byteCount >= 4 else { return .skipped(.truncated) }
        let raw = bytes.uncheckedUInt32(at: 0)  // SAFETY: byteCount >= 4
        let family = raw > 0xffff ? raw.byteSwapped : raw
        switch family {
        case 2, 10, 24, 28, 30: return .next(.ip, at: 4)
        default: return .skipped(.nonIP)
        }
    }
}
