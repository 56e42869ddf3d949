@testable import RSTDetective

/// Builds packet bytes by hand for decoder edge cases (checksums are not checked by the decoder, so they
/// are left zero).
enum PacketBuilder {
    static func tcp(
        sourcePort: UInt16 = 40000, destinationPort: UInt16 = 8080, sequence: UInt32 = 1000, ack: UInt32 = 0,
        flags: UInt8 = 0x02, options: [UInt8] = [], payload: Int = 0
    ) -> [UInt8] {
        let dataOffset = UInt8((20 + options.count) / 4)
        var bytes = be16(sourcePort) + be16(destinationPort) + be32(sequence) + be32(ack)
        bytes += [dataOffset << 4, flags] + be16(65535) + [0, 0, 0, 0] + options
        return bytes + [UInt8](repeating: 0x61, count: payload)
    }

    static func ipv4(
        _ payload: [UInt8], source: UInt32 = 0x0a01_0001, destination: UInt32 = 0x0a01_0002, protocol: UInt8 = 6,
        options: [UInt8] = [], fragment: UInt16 = 0x4000, totalLength: UInt16? = nil
    ) -> [UInt8] {
        let headerLength = 20 + options.count
        let length = totalLength ?? UInt16(headerLength + payload.count)
        var bytes: [UInt8] = [0x40 | UInt8(headerLength / 4), 0] + be16(length) + [0, 1] + be16(fragment)
        bytes += [64, `protocol`, 0, 0] + be32(source) + be32(destination) + options
        return bytes + payload
    }

    /// IPv6 from 2001:db8::`source` to 2001:db8::`destination`.
    static func ipv6(
        _ payload: [UInt8], nextHeader: UInt8 = 6, extensionHeaders: [UInt8] = [], source: UInt8 = 1,
        destination: UInt8 = 2
    ) -> [UInt8] {
        let source: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [source]
        let destination: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [destination]
        let length = UInt16(extensionHeaders.count + payload.count)
        return [0x60, 0, 0, 0] + be16(length) + [nextHeader, 64] + source + destination + extensionHeaders + payload
    }

    /// Ethernet from 02:00:00:00:00:`source` to 02:00:00:00:00:02.
    static func ethernet(
        _ payload: [UInt8], etherType: UInt16 = 0x0800, tags: [UInt16] = [], source: UInt8 = 1
    ) -> [UInt8] {
        var bytes: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, source]
        for tag in tags { bytes += be16(tag) + [0, 10] }
        return bytes + be16(etherType) + payload
    }

    /// The signature as raw IPv4 packets, 10.1.0.1:40000 -> 10.1.0.2:80: SYN, SYN-ACK, ACK, then the
    /// server's RST with sequence number = server ISN + 1 and no ACK flag.
    static func signature() -> (syn: [UInt8], synAck: [UInt8], ack: [UInt8], reset: [UInt8]) {
        let syn = ipv4(tcp(sourcePort: 40000, destinationPort: 80, sequence: 100, flags: 0x02))
        let synAck = ipv4(
            tcp(sourcePort: 80, destinationPort: 40000, sequence: 5000, ack: 101, flags: 0x12),
            source: 0x0a01_0002, destination: 0x0a01_0001)
        let ack = ipv4(tcp(sourcePort: 40000, destinationPort: 80, sequence: 101, ack: 5001, flags: 0x10))
        let reset = ipv4(
            tcp(sourcePort: 80, destinationPort: 40000, sequence: 5001, flags: 0x04),
            source: 0x0a01_0002, destination: 0x0a01_0001)
        return (syn, synAck, ack, reset)
    }

    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
    static func be32(_ value: UInt32) -> [UInt8] { be16(UInt16(value >> 16)) + be16(UInt16(value & 0xffff)) }

    /// Decodes `bytes` as a full packet captured with `capturedLength` bytes (all of them by default).
    static func decode(
        _ bytes: [UInt8], linkType: LinkType = .ethernet, capturedLength: Int? = nil,
        vxlanPorts: VXLANPorts = .standard
    ) -> DecodeResult {
        let captured = capturedLength ?? bytes.count
        let info = PacketInfo(timestampNanos: 0, capturedLength: captured, wireLength: bytes.count)
        return bytes.prefix(captured).withUnsafeBytes { raw in
            PacketDecoder.decode(raw.bytes, info: info, linkType: linkType, vxlanPorts: vxlanPorts)
        }
    }

    /// `PacketDecoder.headerExtent` of `bytes`.
    static func headerExtent(
        _ bytes: [UInt8], linkType: LinkType = .ethernet, vxlanPorts: VXLANPorts = .standard
    ) -> Int {
        bytes.withUnsafeBytes { PacketDecoder.headerExtent($0.bytes, linkType: linkType, vxlanPorts: vxlanPorts) }
    }
}

extension DecodeResult {
    var segment: TCPSegment? {
        if case .tcp(let segment) = self { return segment }
        return nil
    }
}
