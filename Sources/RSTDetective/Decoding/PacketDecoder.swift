/// What decoding one packet gave: a TCP segment, or the reason it was skipped.
public enum DecodeResult: Sendable, Equatable {
    case tcp(TCPSegment)
    case skipped(SkipReason)
}

/// Decodes link, IP and TCP headers in place, reading only the fields the tracker needs.
///
/// Every read is preceded by a length check against the captured bytes; a header that claims more than
/// is there is a skip reason, never an out-of-bounds read. Nothing is allocated.
public enum PacketDecoder {
    private static let etherTypeIPv4: UInt16 = 0x0800
    private static let etherTypeIPv6: UInt16 = 0x86dd
    /// 802.1Q, 802.1ad (QinQ outer tag) and the pre-standard 0x9100 outer tag.
    private static let vlanEtherTypes: (UInt16, UInt16, UInt16) = (0x8100, 0x88a8, 0x9100)
    /// Nested VLAN tags beyond this are treated as a malformed frame rather than walked further.
    private static let maximumVLANTags = 8
    /// Extension headers beyond this are treated as a malformed chain.
    private static let maximumExtensionHeaders = 8

    /// The most bytes of a packet the decoder reads: every header it needs lies in them. A packet whose
    /// headers run past them is skipped as `headersTooLong`, whatever the path it was read by, so that a
    /// reader may hand over only this much of each packet (`PacketBatch`).
    package static let maximumHeaderBytes = 1024

    /// Where a link-layer header ends and what follows it.
    enum LinkLayer {
        /// An EtherType at `offset`, the link-layer source at `linkSource` (-1 for none).
        case etherType(UInt16, offset: Int, linkSource: Int)
        /// An IP header at `offset`, told by its version nibble.
        case ip(offset: Int)
        case skipped(SkipReason)
    }

    /// Decodes one captured packet.
    ///
    /// - Parameters:
    ///   - bytes: The captured bytes, borrowed for the call.
    ///   - info: The record's timestamp and lengths.
    ///   - linkType: The capture's link type.
    @inline(__always)
    public static func decode(_ bytes: RawSpan, info: PacketInfo, linkType: LinkType) -> DecodeResult {
        // A record that claims more captured bytes than were on the wire lies about one of the two.
        guard info.capturedLength <= info.wireLength else { return .skipped(.capturedLengthInvalid) }
        switch linkLayer(bytes, linkType: linkType) {
        case .etherType(let etherType, let offset, let linkSource):
            switch etherType {
            case etherTypeIPv4, etherTypeIPv6: return decodeIP(bytes, at: offset, info: info, linkSource: linkSource)
            default: return .skipped(.nonIP)
            }
        case .ip(let offset):
            return decodeIP(bytes, at: offset, info: info, linkSource: -1)
        case .skipped(let reason):
            return .skipped(reason)
        }
    }

    /// How many leading bytes of a packet `decode` and `commonTCPFields` read: decoding only that many gives
    /// the same result as decoding them all. For TCP over IPv4, or over IPv6 without extension headers,
    /// in any link type, that is where the TCP header ends, so no payload is counted; for anything else,
    /// `maximumHeaderBytes`. Never more than `bytes.byteCount`.
    @inline(__always)
    package static func headerExtent(_ bytes: RawSpan, linkType: LinkType) -> Int {
        let count = bytes.byteCount
        // Ethernet II with IPv4, or IPv6 without extension headers, carrying TCP, most of any capture: a few
        // loads, none of the general walk.
        // SAFETY for the loads: count >= 54, Ethernet(14) + IPv4(20) + TCP(20); for IPv4 the data offset's byte
        // is checked against the IPv4 header length, for IPv6 count >= 74, Ethernet(14) + IPv6(40) + TCP(20).
        if case .ethernet = linkType, count >= 54 {
            let etherType = bytes.uncheckedUInt16(at: 12)
            if etherType == etherTypeIPv4, bytes.uncheckedUInt8(at: 23) == 6 {
                let versionAndLength = bytes.uncheckedUInt8(at: 14)
                let tcpOffset = 14 + max(20, Int(versionAndLength & 0x0f) * 4)
                if versionAndLength >> 4 == 4, count >= tcpOffset + 20 {
                    let tcpLength = max(20, Int(bytes.uncheckedUInt8(at: tcpOffset + 12) >> 4) * 4)
                    return min(count, tcpOffset + tcpLength)
                }
            } else if etherType == etherTypeIPv6, count >= 74, bytes.uncheckedUInt8(at: 20) == 6,
                bytes.uncheckedUInt8(at: 14) >> 4 == 6
            {
                let tcpLength = max(20, Int(bytes.uncheckedUInt8(at: 66) >> 4) * 4)
                return min(count, 54 + tcpLength)
            }
        }
        let fallback = min(count, maximumHeaderBytes)
        let ipOffset: Int
        switch linkLayer(bytes, linkType: linkType) {
        case .etherType(etherTypeIPv4, let offset, _), .etherType(etherTypeIPv6, let offset, _), .ip(let offset):
            ipOffset = offset
        case .etherType, .skipped:
            return fallback
        }
        guard count > ipOffset else { return fallback }
        let tcpOffset: Int
        switch bytes.uncheckedUInt8(at: ipOffset) >> 4 {  // SAFETY: count > ipOffset
        case 4:
            // The decoder reads 20 bytes of IPv4 header even when its length field says less.
            guard count >= ipOffset + 20, bytes.uncheckedUInt8(at: ipOffset + 9) == 6 else { return fallback }
            tcpOffset = ipOffset + max(20, Int(bytes.uncheckedUInt8(at: ipOffset) & 0x0f) * 4)  // SAFETY: checked
        case 6:
            guard count >= ipOffset + 40, bytes.uncheckedUInt8(at: ipOffset + 6) == 6 else { return fallback }
            tcpOffset = ipOffset + 40
        default:
            return fallback
        }
        // The decoder reads 20 bytes of TCP header even when its data offset says less.
        guard count >= tcpOffset + 20 else { return fallback }
        let tcpLength = max(20, Int(bytes.uncheckedUInt8(at: tcpOffset + 12) >> 4) * 4)  // SAFETY: checked above
        return min(fallback, tcpOffset + tcpLength)
    }

    /// The link-layer header of `linkType` at the start of `bytes`.
    @inline(__always)
    private static func linkLayer(_ bytes: RawSpan, linkType: LinkType) -> LinkLayer {
        let count = bytes.byteCount
        var offset: Int
        var etherType: UInt16
        // Where the 6-byte link-layer source is, or -1: 8 bytes are readable there (the MAC and 2 more).
        var linkSource = -1
        switch linkType {
        case .ethernet:
            // IEEE 802.3: destination(6) source(6) EtherType(2).
            guard count >= 14 else { return .skipped(.truncated) }
            etherType = bytes.uncheckedUInt16(at: 12)  // SAFETY: count >= 14
            linkSource = 6
            offset = 14
        case .linuxSLL:
            // Linux cooked v1: packet type(2) ARPHRD(2) address length(2) address(8) protocol(2).
            guard count >= 16 else { return .skipped(.truncated) }
            etherType = bytes.uncheckedUInt16(at: 14)  // SAFETY: count >= 16
            if bytes.uncheckedUInt16(at: 4) == 6 { linkSource = 6 }  // SAFETY: count >= 16
            offset = 16
        case .linuxSLL2:
            // Linux cooked v2: protocol(2) reserved(2) ifindex(4) ARPHRD(2) type(1) length(1) address(8).
            guard count >= 20 else { return .skipped(.truncated) }
            etherType = bytes.uncheckedUInt16(at: 0)  // SAFETY: count >= 20
            if bytes.uncheckedUInt8(at: 11) == 6 { linkSource = 12 }  // SAFETY: count >= 20
            offset = 20
        case .raw:
            return .ip(offset: 0)
        case .null:
            // BSD loopback: a 4-byte address family in the writer's byte order (DLT_NULL) or network order
            // (DLT_LOOP). AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 depending on the OS.
            guard count >= 4 else { return .skipped(.truncated) }
            let raw = bytes.uncheckedUInt32(at: 0)  // SAFETY: count >= 4
            let family = raw > 0xffff ? raw.byteSwapped : raw
            switch family {
            case 2, 10, 24, 28, 30: return .ip(offset: 4)
            default: return .skipped(.nonIP)
            }
        case .ppp, .ciscoHDLC, .nflog, .ipOverInfiniBand, .ieee80211, .radiotap, .ppi:
            let layer = otherLinkLayer(bytes, linkType: linkType)
            guard case .etherType(let type, let start, let source) = layer else { return layer }
            (etherType, offset, linkSource) = (type, start, source)
        case .other:
            return .skipped(.unknownLinkType)
        }
        var tags = 0
        while etherType == vlanEtherTypes.0 || etherType == vlanEtherTypes.1 || etherType == vlanEtherTypes.2 {
            // 802.1Q tag: TCI(2) then the inner EtherType(2).
            tags += 1
            guard tags <= maximumVLANTags else { return .skipped(.nonIP) }
            guard count >= offset + 4 else { return .skipped(.truncated) }
            etherType = bytes.uncheckedUInt16(at: offset + 2)  // SAFETY: count >= offset + 4
            offset += 4
        }
        return .etherType(etherType, offset: offset, linkSource: linkSource)
    }

    /// The flags and `FlowKey.presenceHash` of a packet in the most common framings, Ethernet II with IPv4
    /// without options (not a fragment) or IPv6 without extension headers, then TCP, when `decode` would
    /// read it as a TCP segment; nil for any other packet, which then takes `decode`. With
    /// `HandshakeTracker.processUntracked`, most packets of a busy capture are settled by these few loads.
    @inline(__always)
    package static func commonTCPFields(_ bytes: RawSpan, info: PacketInfo, linkType: LinkType) -> (
        flags: TCPFlags, presenceHash: UInt64
    )? {
        // The checks are decode's for these framings, in its order.
        guard case .ethernet = linkType, bytes.byteCount >= 54, info.capturedLength <= info.wireLength else {
            return nil
        }
        // SAFETY for the loads below: byteCount >= 54, Ethernet(14) + IPv4(20) + TCP(20).
        let etherType = bytes.uncheckedUInt16(at: 12)
        if etherType == etherTypeIPv4 {
            guard bytes.uncheckedUInt8(at: 14) == 0x45 else { return nil }
            var totalLength = Int(bytes.uncheckedUInt16(at: 16))
            if totalLength == 0 { totalLength = info.wireLength - 14 }
            guard totalLength <= info.wireLength - 14, totalLength >= 20, bytes.uncheckedUInt16(at: 20) & 0x3fff == 0,
                bytes.uncheckedUInt8(at: 23) == 6
            else { return nil }
            let tcpHeaderLength = Int(bytes.uncheckedUInt8(at: 46) >> 4) * 4
            guard tcpHeaderLength >= 20, tcpHeaderLength <= totalLength - 20 else { return nil }
            let presenceHash = FlowKey.presenceHash(
                IPAddress(ipv4: bytes.uncheckedUInt32(at: 26)), bytes.uncheckedUInt16(at: 34),
                IPAddress(ipv4: bytes.uncheckedUInt32(at: 30)), bytes.uncheckedUInt16(at: 36))
            return (TCPFlags(rawValue: bytes.uncheckedUInt8(at: 47)), presenceHash)
        }
        // Ethernet(14) + IPv6(40) + TCP(20).
        guard etherType == etherTypeIPv6, bytes.byteCount >= 74, bytes.uncheckedUInt8(at: 14) >> 4 == 6,
            bytes.uncheckedUInt8(at: 20) == 6  // SAFETY: byteCount >= 74
        else { return nil }
        // SAFETY for the loads below: byteCount >= 74.
        var payloadLength = Int(bytes.uncheckedUInt16(at: 18))
        if payloadLength == 0 { payloadLength = info.wireLength - 54 }
        guard payloadLength <= info.wireLength - 54 else { return nil }
        let tcpHeaderLength = Int(bytes.uncheckedUInt8(at: 66) >> 4) * 4
        guard tcpHeaderLength >= 20, tcpHeaderLength <= payloadLength else { return nil }
        let presenceHash = FlowKey.presenceHash(
            IPAddress(high: bytes.uncheckedUInt64(at: 22), low: bytes.uncheckedUInt64(at: 30)),
            bytes.uncheckedUInt16(at: 54),
            IPAddress(high: bytes.uncheckedUInt64(at: 38), low: bytes.uncheckedUInt64(at: 46)),
            bytes.uncheckedUInt16(at: 56))
        return (TCPFlags(rawValue: bytes.uncheckedUInt8(at: 67)), presenceHash)
    }

    /// Dispatches on the IP version nibble, which every link type above agrees with its own type field.
    @inline(__always)
    private static func decodeIP(_ bytes: RawSpan, at offset: Int, info: PacketInfo, linkSource: Int)
        -> DecodeResult
    {
        guard bytes.byteCount > offset else { return .skipped(.truncated) }
        switch bytes.uncheckedUInt8(at: offset) >> 4 {  // SAFETY: byteCount > offset
        case 4: return decodeIPv4(bytes, at: offset, info: info, linkSource: linkSource)
        case 6: return decodeIPv6(bytes, at: offset, info: info, linkSource: linkSource)
        default: return .skipped(.badIPHeader)
        }
    }

    /// RFC 791 §3.1.
    @inline(__always)
    private static func decodeIPv4(
        _ bytes: RawSpan, at offset: Int, info: PacketInfo, linkSource: Int
    ) -> DecodeResult {
        guard bytes.byteCount >= offset + 20 else { return .skipped(.truncated) }
        // SAFETY for the loads below: byteCount >= offset + 20.
        let headerLength = Int(bytes.uncheckedUInt8(at: offset) & 0x0f) * 4
        guard headerLength >= 20 else { return .skipped(.ipHeaderLengthInvalid) }
        var totalLength = Int(bytes.uncheckedUInt16(at: offset + 2))
        if totalLength == 0 {
            // TCP segmentation offload: the capturing host saw the packet before the NIC filled this in.
            totalLength = info.wireLength - offset
        }
        // Longer than the frame on the wire (shorter is link-layer padding, or a trailer).
        guard totalLength <= info.wireLength - offset else { return .skipped(.ipLengthInvalid) }
        guard totalLength >= headerLength else { return .skipped(.ipHeaderLengthInvalid) }
        // Flags and fragment offset: MF (0x2000) or a non-zero offset (0x1fff) makes a fragment.
        guard bytes.uncheckedUInt16(at: offset + 6) & 0x3fff == 0 else { return .skipped(.fragment) }
        guard bytes.uncheckedUInt8(at: offset + 9) == 6 else { return .skipped(.nonTCP) }
        guard bytes.byteCount >= offset + headerLength else { return .skipped(.truncated) }
        return decodeTCP(
            bytes, at: offset + headerLength, payloadLength: totalLength - headerLength, info: info,
            source: IPAddress(ipv4: bytes.uncheckedUInt32(at: offset + 12)),
            destination: IPAddress(ipv4: bytes.uncheckedUInt32(at: offset + 16)), isIPv6: false,
            ipOffset: offset, linkSource: linkSource)
    }

    /// RFC 8200 §3 and §4; the extension headers are skipped, the Fragment header is checked.
    private static func decodeIPv6(
        _ bytes: RawSpan, at offset: Int, info: PacketInfo, linkSource: Int
    ) -> DecodeResult {
        guard bytes.byteCount >= offset + 40 else { return .skipped(.truncated) }
        // SAFETY for the loads below: byteCount >= offset + 40.
        var payloadLength = Int(bytes.uncheckedUInt16(at: offset + 4))
        if payloadLength == 0 {
            // A jumbogram or a segmentation-offload capture: take the length from the wire.
            payloadLength = info.wireLength - offset - 40
        }
        guard payloadLength <= info.wireLength - offset - 40 else { return .skipped(.ipLengthInvalid) }
        var nextHeader = bytes.uncheckedUInt8(at: offset + 6)
        let source = IPAddress(high: bytes.uncheckedUInt64(at: offset + 8), low: bytes.uncheckedUInt64(at: offset + 16))
        let destination = IPAddress(
            high: bytes.uncheckedUInt64(at: offset + 24), low: bytes.uncheckedUInt64(at: offset + 32))
        var position = offset + 40
        for _ in 0...maximumExtensionHeaders {
            let headerLength: Int
            switch nextHeader {
            case 6:
                return decodeTCP(
                    bytes, at: position, payloadLength: payloadLength, info: info, source: source,
                    destination: destination, isIPv6: true, ipOffset: offset, linkSource: linkSource)
            case 0, 43, 60, 135, 139, 140:
                // Hop-by-Hop, Routing, Destination Options, Mobility, HIP, Shim6: length in 8-octet units,
                // not counting the first 8.
                guard bytes.byteCount >= position + 2 else { return .skipped(.truncated) }
                headerLength = (Int(bytes.uncheckedUInt8(at: position + 1)) + 1) * 8  // SAFETY: checked above
            case 44:
                // Fragment header: offset (13 bits) and M flag; offset 0 with M clear is an atomic fragment.
                guard bytes.byteCount >= position + 8 else { return .skipped(.truncated) }
                guard bytes.uncheckedUInt16(at: position + 2) & 0xfff9 == 0 else {  // SAFETY: checked above
                    return .skipped(.fragment)
                }
                headerLength = 8
            case 51:
                // Authentication Header: length in 4-octet units, minus 2 (RFC 4302 §2.2).
                guard bytes.byteCount >= position + 2 else { return .skipped(.truncated) }
                headerLength = (Int(bytes.uncheckedUInt8(at: position + 1)) + 2) * 4  // SAFETY: checked above
            default:
                return .skipped(.nonTCP)
            }
            nextHeader = bytes.uncheckedUInt8(at: position)  // SAFETY: each case checked position + 2
            position += headerLength
            payloadLength -= headerLength
            guard payloadLength >= 0 else { return .skipped(.badIPHeader) }
        }
        return .skipped(.badIPHeader)
    }

    /// RFC 9293 §3.1.
    @inline(__always)
    private static func decodeTCP(
        _ bytes: RawSpan, at offset: Int, payloadLength ipPayloadLength: Int, info: PacketInfo,
        source: IPAddress, destination: IPAddress, isIPv6: Bool, ipOffset: Int, linkSource: Int
    ) -> DecodeResult {
        // A payload too short for any TCP header: the IP lengths leave no room for it.
        guard ipPayloadLength >= 20 else { return .skipped(.tcpDataOffsetInvalid) }
        guard bytes.byteCount >= offset + 20 else { return .skipped(.truncated) }
        // SAFETY for the loads below: byteCount >= offset + 20.
        let headerLength = Int(bytes.uncheckedUInt8(at: offset + 12) >> 4) * 4
        guard headerLength >= 20, headerLength <= ipPayloadLength else { return .skipped(.tcpDataOffsetInvalid) }
        let flags = TCPFlags(rawValue: bytes.uncheckedUInt8(at: offset + 13))
        var fingerprint = PacketFingerprint()
        if flags.isDisjoint(with: [.syn, .rst]) {
            // Of the others only a handshake ACK's traffic class is looked at.
            fingerprint.trafficClass = trafficClass(bytes, ipOffset: ipOffset, isIPv6: isIPv6)
        } else {
            fingerprint = Self.fingerprint(bytes, ipOffset: ipOffset, isIPv6: isIPv6, linkSource: linkSource)
            if headerLength > 20 { fingerprint.options = options(bytes, from: offset + 20, to: offset + headerLength) }
        }
        return .tcp(
            TCPSegment(
                timestampNanos: info.timestampNanos,
                source: source,
                destination: destination,
                sourcePort: bytes.uncheckedUInt16(at: offset),
                destinationPort: bytes.uncheckedUInt16(at: offset + 2),
                isIPv6: isIPv6,
                sequenceNumber: bytes.uncheckedUInt32(at: offset + 4),
                acknowledgmentNumber: bytes.uncheckedUInt32(at: offset + 8),
                flags: flags,
                window: bytes.uncheckedUInt16(at: offset + 14),
                payloadLength: ipPayloadLength - headerLength,
                fingerprint: fingerprint))
    }

    /// The IPv4 TOS or IPv6 traffic class of the IP header at `ipOffset`, whose bytes the caller checked.
    @inline(__always)
    private static func trafficClass(_ bytes: RawSpan, ipOffset: Int, isIPv6: Bool) -> UInt8 {
        // IPv6: version(4) traffic class(8) flow label(20).
        isIPv6
            ? UInt8(truncatingIfNeeded: bytes.uncheckedUInt16(at: ipOffset) >> 4)
            : bytes.uncheckedUInt8(at: ipOffset + 1)
    }

    /// The fields of the IP header at `ipOffset` (whose 20 or 40 bytes the caller checked) and the link-layer
    /// source at `linkSource` (-1 for none) that a RST is compared on with its SYN-ACK.
    private static func fingerprint(_ bytes: RawSpan, ipOffset: Int, isIPv6: Bool, linkSource: Int)
        -> PacketFingerprint
    {
        var fingerprint = PacketFingerprint()
        fingerprint.trafficClass = trafficClass(bytes, ipOffset: ipOffset, isIPv6: isIPv6)
        if isIPv6 {
            fingerprint.flowLabel = bytes.uncheckedUInt32(at: ipOffset) & 0xf_ffff
            fingerprint.hopLimit = bytes.uncheckedUInt8(at: ipOffset + 7)
        } else {
            fingerprint.ipID = bytes.uncheckedUInt16(at: ipOffset + 4)
            fingerprint.dontFragment = bytes.uncheckedUInt16(at: ipOffset + 6) & 0x4000 != 0
            fingerprint.hopLimit = bytes.uncheckedUInt8(at: ipOffset + 8)
        }
        // SAFETY: the link layer checked 8 bytes at `linkSource`: the address and the 2 bytes after it.
        if linkSource >= 0 { fingerprint.sourceMAC = bytes.uncheckedUInt64(at: linkSource) >> 16 }
        return fingerprint
    }

    /// The option kinds in the TCP options from `start` to `end` (RFC 9293 §3.2): End of Option List stops
    /// the walk, No-Operation is one byte, every other option gives its length. Options past the captured
    /// bytes, or a length that does not fit, add `other`.
    private static func options(_ bytes: RawSpan, from start: Int, to end: Int) -> TCPOptionSet {
        // Linux's own SYN and SYN-ACK with timestamps: MSS(4) SACK-permitted(2) timestamps(10) NOP window
        // scale(3), one load each for the kinds and lengths.
        // SAFETY for the two loads: start + 20 == end <= byteCount.
        if end - start == 20, end <= bytes.byteCount,
            bytes.uncheckedUInt64(at: start) & 0xffff_0000_ffff_ffff == 0x0204_0000_0402_080a,
            bytes.uncheckedUInt32(at: start + 16) & 0xffff_ff00 == 0x0103_0300
        {
            return [.maximumSegmentSize, .sackPermitted, .timestamps, .windowScale]
        }
        var set = TCPOptionSet()
        var position = start
        let limit = min(end, bytes.byteCount)
        while position < limit {
            let kind = bytes.uncheckedUInt8(at: position)  // SAFETY: position < byteCount
            if kind == 0 { return set }
            if kind == 1 {
                position += 1
                continue
            }
            guard position + 1 < limit else { break }
            let length = Int(bytes.uncheckedUInt8(at: position + 1))  // SAFETY: position + 1 < byteCount
            guard length >= 2, position + length <= end else { break }
            set.insert(.kind(kind))
            position += length
        }
        if position < end { set.insert(.other) }
        return set
    }
}
