/// The link types beyond Ethernet, Linux cooked capture, raw IP and BSD loopback: each a small decoder of its
/// own header that says where the network layer starts and what it is, in the words of `LinkLayer`.
extension PacketDecoder {
    /// The network layer of a packet of one of the link types this file decodes.
    @inline(never)
    static func otherLinkLayer(_ bytes: RawSpan, linkType: LinkType) -> LinkLayer {
        switch linkType {
        case .ppp: pppLayer(bytes)
        case .ciscoHDLC: ciscoHDLCLayer(bytes)
        case .nflog: nflogLayer(bytes)
        case .ipOverInfiniBand: ipOverInfiniBandLayer(bytes)
        case .ieee80211: ieee80211Layer(bytes, at: 0, dataPadding: false)
        case .radiotap: radiotapLayer(bytes)
        case .ppi: ppiLayer(bytes)
        case .ethernet, .linuxSLL, .linuxSLL2, .raw, .null, .other: .skipped(.unknownLinkType)
        }
    }

    /// PPP (RFC 1661 §2), optionally after the HDLC-like address 0xff and control 0x03 (RFC 1662 §3.1); a
    /// frame that starts with a Cisco HDLC address instead (`DLT_PPP_SERIAL` from some routers) is read as
    /// Cisco HDLC, as tcpdump does. The PPP protocol is given as the EtherType of the same payload.
    private static func pppLayer(_ bytes: RawSpan) -> LinkLayer {
        let count = bytes.byteCount
        guard count >= 1 else { return .skipped(.truncated) }
        var offset = 0
        switch bytes.uncheckedUInt8(at: 0) {  // SAFETY: count >= 1
        case 0x0f, 0x8f:
            return ciscoHDLCLayer(bytes)
        case 0xff:
            guard count >= 2 else { return .skipped(.truncated) }
            guard bytes.uncheckedUInt8(at: 1) == 0x03 else { return .skipped(.nonIP) }  // SAFETY: count >= 2
            offset = 2
        default:
            break
        }
        guard count > offset else { return .skipped(.truncated) }
        // Protocol-field compression (RFC 1661 §6.5): a protocol whose first byte is odd is that one byte.
        let protocolNumber: UInt16
        if bytes.uncheckedUInt8(at: offset) & 1 == 1 {  // SAFETY: count > offset
            protocolNumber = UInt16(bytes.uncheckedUInt8(at: offset))  // SAFETY: count > offset
            offset += 1
        } else {
            guard count >= offset + 2 else { return .skipped(.truncated) }
            protocolNumber = bytes.uncheckedUInt16(at: offset)  // SAFETY: count >= offset + 2
            offset += 2
        }
        // IANA PPP DLL protocol numbers: IPv4, IPv6, MPLS unicast, MPLS multicast.
        let etherType: UInt16
        switch protocolNumber {
        case 0x0021: etherType = 0x0800
        case 0x0057: etherType = 0x86dd
        case 0x0281: etherType = 0x8847
        case 0x0283: etherType = 0x8848
        default: return .skipped(.nonIP)
        }
        return .etherType(etherType, offset: offset, linkSource: -1)
    }

    /// Cisco HDLC: address (0x0f unicast, 0x8f broadcast), control, then an EtherType.
    private static func ciscoHDLCLayer(_ bytes: RawSpan) -> LinkLayer {
        guard bytes.byteCount >= 4 else { return .skipped(.truncated) }
        return .etherType(bytes.uncheckedUInt16(at: 2), offset: 4, linkSource: -1)  // SAFETY: byteCount >= 4
    }

    /// Linux NFLOG (linux/netfilter/nfnetlink_log.h, as libpcap writes it): family(1) version(1) resource
    /// id(2), then attributes of length(2) and type(2) in this machine's byte order (libpcap swaps a file
    /// written on another), each padded to 4 bytes; the packet is the value of `NFULA_PAYLOAD` (9).
    private static func nflogLayer(_ bytes: RawSpan) -> LinkLayer {
        let count = bytes.byteCount
        guard count >= 4 else { return .skipped(.truncated) }
        guard bytes.uncheckedUInt8(at: 1) == 0 else { return .skipped(.nonIP) }  // SAFETY: count >= 4
        var offset = 4
        // Each attribute takes at least 4 bytes, so the walk ends within the packet's bytes.
        while count >= offset + 4 {
            let length = Int(bytes.uncheckedHostUInt16(at: offset))  // SAFETY: count >= offset + 4
            guard length >= 4 else { return .skipped(.nonIP) }
            if bytes.uncheckedHostUInt16(at: offset + 2) == 9 { return .ip(offset: offset + 4) }  // SAFETY: same
            offset += (length + 3) & ~3
        }
        // No packet among the attributes captured: cut by the snap length, or by the log rule's copy range.
        return .skipped(.truncated)
    }

    /// IP over InfiniBand as libpcap writes it (`DLT_IPOIB`, and tcpdump's print-ipoib.c): destination and
    /// source link-layer addresses (20 bytes each), an EtherType and 2 reserved bytes (RFC 4391 §6).
    private static func ipOverInfiniBandLayer(_ bytes: RawSpan) -> LinkLayer {
        guard bytes.byteCount >= 44 else { return .skipped(.truncated) }
        return .etherType(bytes.uncheckedUInt16(at: 40), offset: 44, linkSource: -1)  // SAFETY: byteCount >= 44
    }

    /// An IEEE 802.11 data frame at `start` (IEEE 802.11-2020 §9.2.4 and §9.3.2.1) carrying LLC/SNAP with an
    /// EtherType (RFC 1042, or 802.1H's bridge tunnel); management, control, null-data and protected frames
    /// carry no IP that can be read. `dataPadding`: radiotap says the header is padded to 4 bytes.
    private static func ieee80211Layer(_ bytes: RawSpan, at start: Int, dataPadding: Bool) -> LinkLayer {
        let count = bytes.byteCount
        guard count >= start + 24 else { return .skipped(.truncated) }
        // SAFETY for the two loads: count >= start + 24.
        // Frame Control: protocol version(2 bits), type(2), subtype(4); then the flags.
        let frameControl = bytes.uncheckedUInt8(at: start)
        let flags = bytes.uncheckedUInt8(at: start + 1)
        let subtype = frameControl >> 4
        // Type 2 is data; subtypes with bit 2 set (null, QoS null) carry no body; flag 0x40 is Protected.
        guard frameControl & 0x0f == 0x08, subtype & 0x04 == 0, flags & 0x40 == 0 else { return .skipped(.nonIP) }
        let toDS = flags & 0x01 != 0
        let fromDS = flags & 0x02 != 0
        // Frame control, duration, three addresses, sequence control; a fourth address between two
        // distribution systems; QoS control in QoS data (subtype bit 3), then HT control when Order is set.
        var length = toDS && fromDS ? 30 : 24
        if subtype & 0x08 != 0 { length += flags & 0x80 != 0 ? 6 : 2 }
        if dataPadding { length = (length + 3) & ~3 }
        // The source address: address 2, or 3 from a distribution system, or 4 between two.
        let source = start + (toDS && fromDS ? 24 : fromDS ? 16 : 10)
        let llc = start + length
        guard count >= llc + 8 else { return .skipped(.truncated) }
        // SAFETY for the loads below: count >= llc + 8. LLC AA-AA-03, OUI 00-00-00 or 00-00-F8, EtherType.
        let organization = bytes.uncheckedUInt16(at: llc + 4)
        guard bytes.uncheckedUInt32(at: llc) == 0xaaaa_0300, organization == 0 || organization == 0x00f8 else {
            return .skipped(.nonIP)
        }
        return .etherType(bytes.uncheckedUInt16(at: llc + 6), offset: llc + 8, linkSource: source)
    }

    /// Radiotap (radiotap.org): version 0, a pad byte, the header's length and the present bitmaps (each with
    /// bit 31 when another follows), little-endian, then the fields, each aligned to its size. Only Flags
    /// (bit 1, after TSFT, bit 0, 8 bytes) matters: 0x20 says the 802.11 header is padded.
    private static func radiotapLayer(_ bytes: RawSpan) -> LinkLayer {
        let count = bytes.byteCount
        guard count >= 8 else { return .skipped(.truncated) }
        // SAFETY for the three loads: count >= 8.
        guard bytes.uncheckedUInt8(at: 0) == 0 else { return .skipped(.nonIP) }
        let length = Int(bytes.uncheckedLittleEndianUInt16(at: 2))
        let present = bytes.uncheckedLittleEndianUInt32(at: 4)
        guard length >= 8 else { return .skipped(.nonIP) }
        var position = 8
        var bitmap = present
        while bitmap & 0x8000_0000 != 0 {
            guard position + 4 <= length else { return .skipped(.nonIP) }
            guard count >= position + 4 else { return .skipped(.truncated) }
            bitmap = bytes.uncheckedLittleEndianUInt32(at: position)  // SAFETY: count >= position + 4
            position += 4
        }
        var dataPadding = false
        if present & 0x02 != 0 {
            if present & 0x01 != 0 { position = ((position + 7) & ~7) + 8 }
            guard position < length else { return .skipped(.nonIP) }
            guard count > position else { return .skipped(.truncated) }
            dataPadding = bytes.uncheckedUInt8(at: position) & 0x20 != 0  // SAFETY: count > position
        }
        return ieee80211Layer(bytes, at: length, dataPadding: dataPadding)
    }

    /// Per-Packet Information (the PPI specification, CACE Technologies): version, flags, the header's
    /// length and the link type of what follows, little-endian; 802.11 (105) is read.
    private static func ppiLayer(_ bytes: RawSpan) -> LinkLayer {
        guard bytes.byteCount >= 8 else { return .skipped(.truncated) }
        // SAFETY for the two loads: byteCount >= 8.
        let length = Int(bytes.uncheckedLittleEndianUInt16(at: 2))
        guard length >= 8, bytes.uncheckedLittleEndianUInt32(at: 4) == 105 else { return .skipped(.nonIP) }
        return ieee80211Layer(bytes, at: length, dataPadding: false)
    }
}
