/// The tunnel decoders: each reads only its own header, adds its layer to the walk's `TunnelPath` and
/// returns the layer its type field announces. They are kept out of line, so that the plain Ethernet, IP
/// and TCP path stays short.
extension PacketDecoder {
    /// GRE's and Geneve's protocol types: EtherTypes, with 0x6558 (Transparent Ethernet Bridging) for a
    /// whole Ethernet frame.
    @inline(__always)
    private static func payloadStep(_ protocolType: UInt16, at offset: Int) -> Step {
        protocolType == 0x6558 ? .next(.ethernet, at: offset) : etherTypeStep(protocolType, at: offset)
    }

    /// UDP (RFC 768): source port(2) destination port(2) length(2) checksum(2). The destination port tells a
    /// tunnel; any other datagram is not TCP.
    @inline(never)
    static func udp(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount >= offset + 8 else { return .skipped(.truncated) }
        let destinationPort = bytes.uncheckedUInt16(at: offset + 2)  // SAFETY: checked above
        if walk.vxlanPorts.contains(destinationPort) { return .next(.vxlan, at: offset + 8) }
        if destinationPort == 6081 { return .next(.geneve, at: offset + 8) }
        return .skipped(.nonTCP)
    }

    /// VXLAN (RFC 7348 §5): flags(1) reserved(3) VNI(3) reserved(1), then an Ethernet frame.
    @inline(never)
    static func vxlan(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount >= offset + 8 else { return .skipped(.truncated) }
        let vni = bytes.uncheckedUInt32(at: offset + 4) >> 8  // SAFETY: checked above
        return enter(.vxlan, identifier: vni, next: .ethernet, at: offset + 8, walk: &walk)
    }

    /// Geneve (RFC 8926 §3.4): version(2) options length(6, in 4-byte words) O C reserved(6) protocol
    /// type(2) VNI(3) reserved(1), then the options, then the protocol type's payload.
    @inline(never)
    static func geneve(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount >= offset + 8 else { return .skipped(.truncated) }
        // SAFETY for the loads: byteCount >= offset + 8.
        let first = bytes.uncheckedUInt8(at: offset)
        // Version 0 is the only one defined; another may lay its header out otherwise.
        guard first >> 6 == 0 else { return .skipped(.nonIP) }
        let payload = offset + 8 + Int(first & 0x3f) * 4
        let vni = bytes.uncheckedUInt32(at: offset + 4) >> 8
        let step = payloadStep(bytes.uncheckedUInt16(at: offset + 2), at: payload)
        guard case .next(let layer, _) = step else { return step }
        return enter(.geneve, identifier: vni, next: layer, at: payload, walk: &walk)
    }

    /// GRE (RFC 2784, with RFC 2890's key and sequence number): C R K S flags, version(3) in the first two
    /// bytes, protocol type(2), then checksum and reserved(4) if C, key(4) if K, sequence number(4) if S.
    ///
    /// Protocol 0x88BE is ERSPAN, type II with a sequence number and type I (no ERSPAN header, the mirrored
    /// frame right after GRE) without; 0x22EB is ERSPAN type III. The GRE under ERSPAN is not a layer of its
    /// own in the path.
    @inline(never)
    static func gre(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount >= offset + 4 else { return .skipped(.truncated) }
        // SAFETY for the loads: byteCount >= offset + 4.
        let flags = bytes.uncheckedUInt16(at: offset)
        let protocolType = bytes.uncheckedUInt16(at: offset + 2)
        // Version 1 is PPTP's enhanced GRE (PPP inside); the routing bit (RFC 1701) adds entries of its own
        // length, which RFC 2784 retired.
        guard flags & 0x0007 == 0, flags & 0x4000 == 0 else { return .skipped(.nonIP) }
        var position = offset + 4
        if flags & 0x8000 != 0 { position += 4 }
        var key: UInt32?
        if flags & 0x2000 != 0 {
            guard bytes.byteCount >= position + 4 else { return .skipped(.truncated) }
            key = bytes.uncheckedUInt32(at: position)  // SAFETY: checked above
            position += 4
        }
        let hasSequence = flags & 0x1000 != 0
        if hasSequence { position += 4 }
        switch protocolType {
        case 0x88be:
            return hasSequence
                ? .next(.erspanTypeII, at: position) : enter(.erspanTypeI, next: .ethernet, at: position, walk: &walk)
        case 0x22eb:
            return .next(.erspanTypeIII, at: position)
        default:
            let step = payloadStep(protocolType, at: position)
            guard case .next(let layer, _) = step else { return step }
            return key.map { enter(.greKey, identifier: $0, next: layer, at: position, walk: &walk) }
                ?? enter(.gre, next: layer, at: position, walk: &walk)
        }
    }

    /// ERSPAN type II (draft-foschiano-erspan §4.1): version(4) VLAN(12) COS(3) En(2) T(1) session ID(10)
    /// reserved(12) index(20), then the mirrored Ethernet frame.
    @inline(never)
    static func erspanTypeII(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount >= offset + 8 else { return .skipped(.truncated) }
        let session = UInt32(bytes.uncheckedUInt16(at: offset + 2) & 0x03ff)  // SAFETY: checked above
        return enter(.erspan, identifier: session, next: .ethernet, at: offset + 8, walk: &walk)
    }

    /// ERSPAN type III (draft-foschiano-erspan §4.2): as type II in the first 4 bytes, then timestamp(4)
    /// SGT(2) P(1) FT(5) hardware ID(6) D(1) Gra(2) O(1), then an 8-byte platform-specific subheader if O,
    /// then the mirrored frame: Ethernet for frame type 0, IP for 2.
    @inline(never)
    static func erspanTypeIII(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount >= offset + 12 else { return .skipped(.truncated) }
        // SAFETY for the loads: byteCount >= offset + 12.
        let session = UInt32(bytes.uncheckedUInt16(at: offset + 2) & 0x03ff)
        let frameType = bytes.uncheckedUInt8(at: offset + 10) >> 2 & 0x1f
        let payload = offset + 12 + (bytes.uncheckedUInt8(at: offset + 11) & 1 == 1 ? 8 : 0)
        switch frameType {
        case 0: return enter(.erspan, identifier: session, next: .ethernet, at: payload, walk: &walk)
        case 2: return enter(.erspan, identifier: session, next: .ip, at: payload, walk: &walk)
        default: return .skipped(.nonIP)
        }
    }

    /// One MPLS label stack entry (RFC 3032 §2.1): label(20) traffic class(3) bottom of stack(1) TTL(8).
    /// Below the bottom entry the payload is told, as tcpdump does, by its first nibble: 4 for IPv4, 6 for
    /// IPv6, and 0 for a pseudowire control word (RFC 4385) before an Ethernet frame (RFC 4448).
    @inline(never)
    static func mpls(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount >= offset + 4 else { return .skipped(.truncated) }
        let entry = bytes.uncheckedUInt32(at: offset)  // SAFETY: checked above
        let payload = offset + 4
        guard entry & 0x100 != 0 else {
            return enter(.mpls, identifier: entry >> 12, next: .mpls, at: payload, walk: &walk)
        }
        guard bytes.byteCount > payload else { return .skipped(.truncated) }
        switch bytes.uncheckedUInt8(at: payload) >> 4 {  // SAFETY: checked above
        case 4, 6: return enter(.mpls, identifier: entry >> 12, next: .ip, at: payload, walk: &walk)
        case 0: return enter(.mpls, identifier: entry >> 12, next: .ethernet, at: payload + 4, walk: &walk)
        default: return .skipped(.nonIP)
        }
    }

    /// A PPPoE session (RFC 2516 §4): version(4) type(4) code(1) session ID(2) length(2), then PPP's
    /// protocol(2): 0x0021 for IPv4, 0x0057 for IPv6 (RFC 1332, RFC 5072).
    @inline(never)
    static func pppoe(_ bytes: RawSpan, at offset: Int, walk: inout Walk) -> Step {
        guard bytes.byteCount >= offset + 8 else { return .skipped(.truncated) }
        // SAFETY for the loads: byteCount >= offset + 8.
        switch bytes.uncheckedUInt16(at: offset + 6) {
        case 0x0021, 0x0057:
            let session = UInt32(bytes.uncheckedUInt16(at: offset + 2))
            return enter(.pppoe, identifier: session, next: .ip, at: offset + 8, walk: &walk)
        default:
            return .skipped(.nonIP)
        }
    }
}
