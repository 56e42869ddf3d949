/// What decoding one packet gave: a TCP segment, or the reason it was skipped.
public enum DecodeResult: Sendable, Equatable {
    case tcp(TCPSegment)
    case skipped(SkipReason)
}

/// Decodes link, tunnel, IP and TCP headers in place, reading only the fields the tracker needs.
///
/// The decoder is a dispatch, as Zeek's packet analysis and gopacket's `DecodingLayerParser` are: each layer
/// has one small decoder (here, `PacketDecoder+LinkLayers.swift` and `PacketDecoder+Tunnels.swift`) that
/// reads only its own header and returns the next layer, told by its type field, and where it starts, or a
/// skip reason; one loop (`walkToTCP`) follows those steps to the TCP header. Every read is preceded by a
/// length check against the captured bytes; a header that claims more than is there is a skip reason, never
/// an out-of-bounds read. Nothing is allocated.
public enum PacketDecoder {
    static let etherTypeIPv4: UInt16 = 0x0800
    static let etherTypeIPv6: UInt16 = 0x86dd
    /// Nested VLAN tags in one Ethernet frame beyond this are treated as a malformed frame.
    static let maximumVLANTags = 8
    /// Extension headers beyond this are treated as a malformed chain.
    private static let maximumExtensionHeaders = 8

    /// The most bytes of a packet the decoder reads: every header it needs lies in them. A packet whose
    /// headers run past them is skipped as `headersTooLong`, whatever the path it was read by, so that a
    /// reader may hand over only this much of each packet (`PacketBatch`).
    package static let maximumHeaderBytes = 1024

    /// A layer the decoder can be at; `decodeLayer` dispatches each to its decoder.
    enum Layer {
        case ethernet
        /// An 802.1Q, 802.1ad or 0x9100 tag, after an EtherType that announced it.
        case vlan
        /// IPv4 or IPv6, told by the version nibble.
        case ip
        case udp
        case vxlan
        case geneve
        case gre
        case erspanTypeII
        case erspanTypeIII
        /// One MPLS label stack entry.
        case mpls
        case pppoe
    }

    /// What one layer decoder found.
    enum Step {
        /// The next layer and the offset where it starts.
        case next(Layer, at: Int)
        /// The TCP header starts at this offset.
        case tcp(at: Int)
        case skipped(SkipReason)
    }

    /// Where a link-layer header ends and what follows it, as the decoders of `otherLinkLayer` say it;
    /// `linkLayer` turns it into a `Step`.
    enum LinkLayer {
        /// An EtherType at `offset`, the link-layer source at `linkSource` (-1 for none).
        case etherType(UInt16, offset: Int, linkSource: Int)
        /// An IP header at `offset`, told by its version nibble.
        case ip(offset: Int)
        case skipped(SkipReason)
    }

    /// Where the walk found the TCP header, or why it stopped.
    enum TCPLocation {
        case at(Int)
        case skipped(SkipReason)
    }

    /// What the walk keeps of the layers it passed: the innermost link-layer source and IP header, and the
    /// tunnels.
    struct Walk {
        /// The wire length of the packet, which the IP length fields are checked against.
        let wireLength: Int
        let vxlanPorts: VXLANPorts
        /// Where the innermost 6-byte link-layer source is, or -1: 8 bytes are readable there (the address
        /// and 2 more).
        var linkSource = -1
        /// VLAN tags since the innermost Ethernet header.
        var vlanTags = 0
        var tunnel = TunnelPath()
        /// The innermost IP header: where it starts, its version, addresses, and the bytes after its
        /// headers by its length fields.
        var ipOffset = 0
        var isIPv6 = false
        var source = IPAddress(high: 0, low: 0)
        var destination = IPAddress(high: 0, low: 0)
        var ipPayloadLength = 0

        init(wireLength: Int, vxlanPorts: VXLANPorts) {
            self.wireLength = wireLength
            self.vxlanPorts = vxlanPorts
        }
    }

    /// Decodes one captured packet.
    ///
    /// - Parameters:
    ///   - bytes: The captured bytes, borrowed for the call.
    ///   - info: The record's timestamp and lengths.
    ///   - linkType: The capture's link type.
    ///   - vxlanPorts: The UDP ports read as VXLAN.
    @inline(__always)
    public static func decode(
        _ bytes: RawSpan, info: PacketInfo, linkType: LinkType, vxlanPorts: VXLANPorts = .standard
    ) -> DecodeResult {
        // A record that claims more captured bytes than were on the wire lies about one of the two.
        guard info.capturedLength <= info.wireLength else { return .skipped(.capturedLengthInvalid) }
        var walk = Walk(wireLength: info.wireLength, vxlanPorts: vxlanPorts)
        switch walkToTCP(bytes, linkType: linkType, walk: &walk) {
        case .at(let offset): return decodeTCP(bytes, at: offset, walk: walk, timestampNanos: info.timestampNanos)
        case .skipped(let reason): return .skipped(reason)
        }
    }

    /// Follows the layers from the link layer to the TCP header.
    ///
    /// Every layer starts past the start of the one before it, so the loop ends within the captured bytes;
    /// the tunnel path holds at most `TunnelPath.capacity` encapsulations, and VLAN tags and IPv6 extension
    /// headers have bounds of their own.
    @inline(__always)
    static func walkToTCP(_ bytes: RawSpan, linkType: LinkType, walk: inout Walk) -> TCPLocation {
        var step = linkLayer(bytes, linkType: linkType, walk: &walk)
        while true {
            switch step {
            case .next(let layer, let offset): step = decodeLayer(layer, bytes, at: offset, walk: &walk)
            case .tcp(let offset): return .at(offset)
            case .skipped(let reason): return .skipped(reason)
            }
        }
    }

    /// The dispatch from a layer to its decoder.
    @inline(__always)
    private static func decodeLayer(_ layer: Layer, _ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        switch layer {
        case .ethernet: ethernet(bytes, at: offset, walk: &walk)
        case .vlan: vlanTag(bytes, at: offset, walk: &walk)
        case .ip: ip(bytes, at: offset, walk: &walk)
        case .udp: udp(bytes, at: offset, walk: &walk)
        case .vxlan: vxlan(bytes, at: offset, walk: &walk)
        case .geneve: geneve(bytes, at: offset, walk: &walk)
        case .gre: gre(bytes, at: offset, walk: &walk)
        case .erspanTypeII: erspanTypeII(bytes, at: offset, walk: &walk)
        case .erspanTypeIII: erspanTypeIII(bytes, at: offset, walk: &walk)
        case .mpls: mpls(bytes, at: offset, walk: &walk)
        case .pppoe: pppoe(bytes, at: offset, walk: &walk)
        }
    }

    /// The layer an EtherType announces (IEEE 802 numbers), after Ethernet, a VLAN tag or a cooked header.
    @inline(__always)
    static func etherTypeStep(_ etherType: UInt16, at offset: Int) -> Step {
        switch etherType {
        case etherTypeIPv4, etherTypeIPv6: .next(.ip, at: offset)
        // 802.1Q, 802.1ad (QinQ outer tag) and the pre-standard 0x9100 outer tag.
        case 0x8100, 0x88a8, 0x9100: .next(.vlan, at: offset)
        // MPLS unicast and multicast.
        case 0x8847, 0x8848: .next(.mpls, at: offset)
        // PPPoE session stage (the discovery stage, 0x8863, carries no IP).
        case 0x8864: .next(.pppoe, at: offset)
        default: .skipped(.nonIP)
        }
    }

    /// The layer an IP protocol number (IPv4 protocol, IPv6 next header) announces.
    @inline(__always)
    static func ipProtocolStep(_ ipProtocol: UInt8, at offset: Int, walk: inout Walk) -> Step {
        switch ipProtocol {
        case 6: .tcp(at: offset)
        case 17: .next(.udp, at: offset)
        case 47: .next(.gre, at: offset)
        case 4: enter(.ipInIP, next: .ip, at: offset, walk: &walk)
        case 41: enter(.ipv6InIP, next: .ip, at: offset, walk: &walk)
        default: .skipped(.nonTCP)
        }
    }

    /// Adds a tunnel layer to the walk's path and goes on to `next`, unless the path is full.
    @inline(__always)
    static func enter(
        _ kind: TunnelLayer.Kind, identifier: UInt32 = 0, next: Layer, at offset: Int, walk: inout Walk
    ) -> Step {
        walk.tunnel.append(kind, identifier: identifier) ? .next(next, at: offset) : .skipped(.tooManyTunnelLayers)
    }

    /// How many leading bytes of a packet `decode` and `commonTCPFields` read: decoding only that many gives
    /// the same result as decoding them all. For a packet whose layers lead to a TCP header, in any link
    /// type and through any tunnel, that is where the TCP header ends, so no payload is counted; for
    /// anything else, `maximumHeaderBytes`. Never more than `bytes.byteCount`.
    @inline(__always)
    package static func headerExtent(
        _ bytes: RawSpan, linkType: LinkType, vxlanPorts: VXLANPorts = .standard
    ) -> Int {
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
        let visible = bytes.extracting(first: maximumHeaderBytes)
        let fallback = visible.byteCount
        // Where the headers are does not depend on the wire length: with the longest a record can have, the
        // walk stops only where `decode` stops too, having read no byte that `decode` does not read.
        var walk = Walk(wireLength: Int(UInt32.max), vxlanPorts: vxlanPorts)
        guard case .at(let tcpOffset) = walkToTCP(visible, linkType: linkType, walk: &walk),
            fallback >= tcpOffset + 14
        else { return fallback }
        // The decoder reads 20 bytes of TCP header, if they are there, even when its data offset says less.
        let tcpLength = max(20, Int(visible.uncheckedUInt8(at: tcpOffset + 12) >> 4) * 4)  // SAFETY: checked above
        return min(fallback, tcpOffset + tcpLength)
    }

    /// The flags and `FlowKey.presenceHash` of a packet in the most common framings, Ethernet II with IPv4
    /// without options (not a fragment) or IPv6 without extension headers, then TCP, when `decode` would
    /// read it as a TCP segment with its whole header captured; nil for any other packet, which then takes
    /// `decode`. With `HandshakeTracker.processUntracked`, most packets of a busy capture are settled by these
    /// few loads.
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
            // A header the snap length cut takes `decode`, which counts it.
            guard tcpHeaderLength >= 20, tcpHeaderLength <= totalLength - 20,
                tcpHeaderLength <= bytes.byteCount - 34
            else { return nil }
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
        guard tcpHeaderLength >= 20, tcpHeaderLength <= payloadLength, tcpHeaderLength <= bytes.byteCount - 54
        else { return nil }
        let presenceHash = FlowKey.presenceHash(
            IPAddress(high: bytes.uncheckedUInt64(at: 22), low: bytes.uncheckedUInt64(at: 30)),
            bytes.uncheckedUInt16(at: 54),
            IPAddress(high: bytes.uncheckedUInt64(at: 38), low: bytes.uncheckedUInt64(at: 46)),
            bytes.uncheckedUInt16(at: 56))
        return (TCPFlags(rawValue: bytes.uncheckedUInt8(at: 67)), presenceHash)
    }

    /// IPv4 or IPv6, told by the version nibble, which every layer that announces IP agrees with its own
    /// type field.
    @inline(__always)
    static func ip(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount > offset else { return .skipped(.truncated) }
        switch bytes.uncheckedUInt8(at: offset) >> 4 {  // SAFETY: byteCount > offset
        case 4: return ipv4(bytes, at: offset, walk: &walk)
        case 6: return ipv6(bytes, at: offset, walk: &walk)
        default: return .skipped(.badIPHeader)
        }
    }

    /// RFC 791 §3.1.
    @inline(__always)
    private static func ipv4(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount >= offset + 20 else { return .skipped(.truncated) }
        // SAFETY for the loads below: byteCount >= offset + 20.
        let headerLength = Int(bytes.uncheckedUInt8(at: offset) & 0x0f) * 4
        guard headerLength >= 20 else { return .skipped(.ipHeaderLengthInvalid) }
        var totalLength = Int(bytes.uncheckedUInt16(at: offset + 2))
        if totalLength == 0 {
            // TCP segmentation offload: the capturing host saw the packet before the NIC filled this in.
            totalLength = walk.wireLength - offset
        }
        // Longer than the frame on the wire (shorter is link-layer padding, or a trailer).
        guard totalLength <= walk.wireLength - offset else { return .skipped(.ipLengthInvalid) }
        guard totalLength >= headerLength else { return .skipped(.ipHeaderLengthInvalid) }
        // Flags and fragment offset: MF (0x2000) or a non-zero offset (0x1fff) makes a fragment.
        guard bytes.uncheckedUInt16(at: offset + 6) & 0x3fff == 0 else { return .skipped(.fragment) }
        let next = ipProtocolStep(bytes.uncheckedUInt8(at: offset + 9), at: offset + headerLength, walk: &walk)
        if case .skipped = next { return next }
        guard bytes.byteCount >= offset + headerLength else { return .skipped(.truncated) }
        walk.ipOffset = offset
        walk.isIPv6 = false
        walk.source = IPAddress(ipv4: bytes.uncheckedUInt32(at: offset + 12))
        walk.destination = IPAddress(ipv4: bytes.uncheckedUInt32(at: offset + 16))
        walk.ipPayloadLength = totalLength - headerLength
        return next
    }

    /// RFC 8200 §3 and §4; the extension headers are skipped, the Fragment header is checked.
    private static func ipv6(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount >= offset + 40 else { return .skipped(.truncated) }
        // SAFETY for the loads below: byteCount >= offset + 40.
        var payloadLength = Int(bytes.uncheckedUInt16(at: offset + 4))
        if payloadLength == 0 {
            // A jumbogram or a segmentation-offload capture: take the length from the wire.
            payloadLength = walk.wireLength - offset - 40
        }
        guard payloadLength <= walk.wireLength - offset - 40 else { return .skipped(.ipLengthInvalid) }
        var nextHeader = bytes.uncheckedUInt8(at: offset + 6)
        walk.ipOffset = offset
        walk.isIPv6 = true
        walk.source = IPAddress(
            high: bytes.uncheckedUInt64(at: offset + 8), low: bytes.uncheckedUInt64(at: offset + 16))
        walk.destination = IPAddress(
            high: bytes.uncheckedUInt64(at: offset + 24), low: bytes.uncheckedUInt64(at: offset + 32))
        var position = offset + 40
        for _ in 0...maximumExtensionHeaders {
            let headerLength: Int
            switch nextHeader {
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
                walk.ipPayloadLength = payloadLength
                return ipProtocolStep(nextHeader, at: position, walk: &walk)
            }
            nextHeader = bytes.uncheckedUInt8(at: position)  // SAFETY: each case checked position + 2
            position += headerLength
            payloadLength -= headerLength
            guard payloadLength >= 0 else { return .skipped(.badIPHeader) }
        }
        return .skipped(.badIPHeader)
    }

    /// RFC 9293 §3.1. The first 14 bytes (ports, sequence and acknowledgment numbers, data offset and
    /// flags) are all the tracker needs; when the snap length cuts the header after them, the fields it cut
    /// (window, options) are left empty and the segment says so (`isHeaderCut`).
    @inline(__always)
    private static func decodeTCP(_ bytes: RawSpan, at offset: Int, walk: Walk, timestampNanos: Int64)
        -> DecodeResult
    {
        let ipPayloadLength = walk.ipPayloadLength
        // A payload too short for any TCP header: the IP lengths leave no room for it.
        guard ipPayloadLength >= 20 else { return .skipped(.tcpDataOffsetInvalid) }
        guard bytes.byteCount >= offset + 14 else { return .skipped(.truncated) }
        // SAFETY for the loads below: byteCount >= offset + 14.
        let headerLength = Int(bytes.uncheckedUInt8(at: offset + 12) >> 4) * 4
        guard headerLength >= 20, headerLength <= ipPayloadLength else { return .skipped(.tcpDataOffsetInvalid) }
        let flags = TCPFlags(rawValue: bytes.uncheckedUInt8(at: offset + 13))
        let isHeaderCut = bytes.byteCount < offset + headerLength
        var fingerprint = PacketFingerprint()
        if flags.isDisjoint(with: [.syn, .rst]) {
            // Of the others only a handshake ACK's traffic class is looked at.
            fingerprint.trafficClass = trafficClass(bytes, ipOffset: walk.ipOffset, isIPv6: walk.isIPv6)
        } else {
            fingerprint = Self.fingerprint(
                bytes, ipOffset: walk.ipOffset, isIPv6: walk.isIPv6, linkSource: walk.linkSource)
            if headerLength > 20 {
                fingerprint.options =
                    isHeaderCut ? nil : options(bytes, from: offset + 20, to: offset + headerLength)
            }
        }
        return .tcp(
            TCPSegment(
                timestampNanos: timestampNanos,
                source: walk.source,
                destination: walk.destination,
                sourcePort: bytes.uncheckedUInt16(at: offset),
                destinationPort: bytes.uncheckedUInt16(at: offset + 2),
                isIPv6: walk.isIPv6,
                sequenceNumber: bytes.uncheckedUInt32(at: offset + 4),
                acknowledgmentNumber: bytes.uncheckedUInt32(at: offset + 8),
                flags: flags,
                // SAFETY: checked by the condition.
                window: bytes.byteCount >= offset + 16 ? bytes.uncheckedUInt16(at: offset + 14) : nil,
                payloadLength: ipPayloadLength - headerLength,
                fingerprint: fingerprint,
                tunnel: walk.tunnel,
                isHeaderCut: isHeaderCut))
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

    /// The option kinds in the TCP options from `start` to `end`, which the caller checked are captured
    /// (RFC 9293 §3.2): End of Option List stops the walk, No-Operation is one byte, every other option gives
    /// its length. A length that does not fit the header adds `other`.
    private static func options(_ bytes: RawSpan, from start: Int, to end: Int) -> TCPOptionSet {
        // SAFETY for every load below: it lies before `end`, and end <= byteCount (the caller's check).
        // Linux's own SYN and SYN-ACK with timestamps: MSS(4) SACK-permitted(2) timestamps(10) NOP window
        // scale(3), one load each for the kinds and lengths.
        if end - start == 20,
            bytes.uncheckedUInt64(at: start) & 0xffff_0000_ffff_ffff == 0x0204_0000_0402_080a,
            bytes.uncheckedUInt32(at: start + 16) & 0xffff_ff00 == 0x0103_0300
        {
            return [.maximumSegmentSize, .sackPermitted, .timestamps, .windowScale]
        }
        var set = TCPOptionSet()
        var position = start
        while position < end {
            let kind = bytes.uncheckedUInt8(at: position)
            if kind == 0 { return set }
            if kind == 1 {
                position += 1
                continue
            }
            guard position + 1 < end else { break }
            let length = Int(bytes.uncheckedUInt8(at: position + 1))
            guard length >= 2, position + length <= end else { break }
            set.insert(.kind(kind))
            position += length
        }
        if position < end { set.insert(.other) }
        return set
    }
}
