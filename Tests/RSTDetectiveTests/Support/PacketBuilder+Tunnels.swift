/// Tunnel headers, each laid out from its RFC or draft with the fields the decoder skips set to values that
/// are not zero, so that a decoder reading the wrong bytes shows.
extension PacketBuilder {
    /// UDP (RFC 768), checksum zero.
    static func udp(_ payload: [UInt8], sourcePort: UInt16 = 51000, destinationPort: UInt16) -> [UInt8] {
        be16(sourcePort) + be16(destinationPort) + be16(UInt16(8 + payload.count)) + [0, 0] + payload
    }

    /// VXLAN (RFC 7348 §5): flags with I set, reserved bytes, the VNI, a reserved byte.
    static func vxlan(_ frame: [UInt8], vni: UInt32) -> [UInt8] {
        [0x08, 0x11, 0x22, 0x33] + be32(vni << 8 | 0x44) + frame
    }

    /// Geneve (RFC 8926 §3.4): version 0, options length in words, O and C clear, protocol type, VNI.
    static func geneve(_ payload: [UInt8], vni: UInt32, protocolType: UInt16 = 0x6558, options: [UInt8] = [])
        -> [UInt8]
    {
        [UInt8(options.count / 4), 0] + be16(protocolType) + be32(vni << 8 | 0x55) + options + payload
    }

    /// GRE (RFC 2784, RFC 2890) with the checksum, key and sequence number fields when given.
    static func gre(
        _ payload: [UInt8], protocolType: UInt16, checksum: Bool = false, key: UInt32? = nil, sequence: UInt32? = nil
    ) -> [UInt8] {
        var flags: UInt16 = 0
        if checksum { flags |= 0x8000 }
        if key != nil { flags |= 0x2000 }
        if sequence != nil { flags |= 0x1000 }
        var bytes = be16(flags) + be16(protocolType)
        if checksum { bytes += [0xab, 0xcd, 0, 0] }
        if let key { bytes += be32(key) }
        if let sequence { bytes += be32(sequence) }
        return bytes + payload
    }

    /// ERSPAN type II (draft-foschiano-erspan §4.1): version 1, VLAN 100, COS 5, En 3, T set, the session,
    /// index 0x12345.
    static func erspanTypeII(_ frame: [UInt8], session: UInt16) -> [UInt8] {
        be16(0x1064) + be16(0xbc00 | session) + be32(0x0001_2345) + frame
    }

    /// ERSPAN type III (draft-foschiano-erspan §4.2): version 2, VLAN 100, COS 5, BSO 3, T set, the session,
    /// a timestamp, SGT 0x1234, then P, the frame type, hardware ID 0x3f, D and Gra set, O when a
    /// platform-specific subheader follows.
    static func erspanTypeIII(_ frame: [UInt8], session: UInt16, frameType: UInt8 = 0, platform: Bool = false)
        -> [UInt8]
    {
        var bytes = be16(0x2064) + be16(0xbc00 | session) + be32(0xdead_beef) + be16(0x1234)
        bytes += [0x80 | frameType << 2 | 0x03, 0xf6 | (platform ? 1 : 0)]
        if platform { bytes += [0x0c, 0, 0x12, 0x34, 0xfe, 0xed, 0xfa, 0xce] }
        return bytes + frame
    }

    /// One MPLS label stack entry (RFC 3032 §2.1): the label, traffic class 5, the bottom-of-stack bit, TTL 64.
    static func mpls(label: UInt32, bottom: Bool) -> [UInt8] {
        be32(label << 12 | 5 << 9 | (bottom ? 0x100 : 0) | 64)
    }

    /// A PPPoE session header (RFC 2516 §4) and PPP's protocol field.
    static func pppoe(_ payload: [UInt8], session: UInt16, pppProtocol: UInt16) -> [UInt8] {
        [0x11, 0x00] + be16(session) + be16(UInt16(2 + payload.count)) + be16(pppProtocol) + payload
    }
}
