import Testing

@testable import RSTDetective

/// `PacketDecoder.commonTCPFields` is a shortcut past `decode` for the common framings: whenever it answers,
/// `decode` must read the same packet as a TCP segment with the same flags and presence hash. Checked on
/// every packet of every committed capture, and on those packets with header bytes rewritten.
@Suite struct CommonTCPFieldsTests {
    typealias B = PacketBuilder

    /// Checks one packet; returns whether the shortcut answered.
    @discardableResult
    static func agree(_ bytes: [UInt8], linkType: LinkType, wireLength: Int? = nil, _ comment: Comment) -> Bool {
        let info = PacketInfo(timestampNanos: 0, capturedLength: bytes.count, wireLength: wireLength ?? bytes.count)
        return bytes.withUnsafeBytes { raw in
            let span = raw.bytes
            guard let common = PacketDecoder.commonTCPFields(span, info: info, linkType: linkType) else { return false }
            guard case .tcp(let segment) = PacketDecoder.decode(span, info: info, linkType: linkType) else {
                Issue.record("the shortcut answered for a packet decode does not read as TCP: \(comment)")
                return true
            }
            #expect(common.flags == segment.flags, comment)
            let hash = FlowKey.presenceHash(
                segment.source, segment.sourcePort, segment.destination, segment.destinationPort)
            #expect(common.presenceHash == hash, comment)
            return true
        }
    }

    @Test(arguments: GoldenCase.all())
    func agreesWithDecodeOnEveryCapturedPacket(_ golden: GoldenCase) throws {
        for path in golden.inputs {
            guard var source = try? PacketSource(path: path) else { continue }
            while let info = try? source.next() {
                let bytes = source.withCurrentBytes { span in (0..<span.byteCount).map { span.uncheckedUInt8(at: $0) } }
                Self.agree(
                    bytes, linkType: source.linkType, wireLength: info.wireLength, "\(path) #\(source.recordsRead)")
            }
        }
    }

    /// Every header byte of an IPv4 and an IPv6 packet set to values that matter (0, 1, 0x45, 0x50, 0x60,
    /// 0xff...), every length cut, and a zero IP length with every wire length: the shortcut answers only
    /// where decode reads TCP.
    @Test func agreesWithDecodeOnRewrittenHeaders() {
        let packets = [
            B.ethernet(B.ipv4(B.tcp(flags: 0x10, payload: 30))),
            B.ethernet(B.ipv6(B.tcp(flags: 0x18, payload: 30)), etherType: 0x86dd),
        ]
        var answered = 0
        for (number, packet) in packets.enumerated() {
            for offset in 0..<min(packet.count, 80) {
                for value: UInt8 in [
                    0, 1, 4, 5, 6, 0x06, 0x08, 0x10, 0x12, 0x40, 0x44, 0x45, 0x46, 0x50, 0x60, 0x86, 0xdd, 0xf0, 0xff,
                ] {
                    var bytes = packet
                    bytes[offset] = value
                    if Self.agree(bytes, linkType: .ethernet, "packet \(number), byte \(offset) = \(value)") {
                        answered += 1
                    }
                }
            }
            for length in 0...packet.count {
                Self.agree(
                    Array(packet.prefix(length)), linkType: .ethernet, wireLength: packet.count, "cut at \(length)")
            }
            var zeroLength = packet
            zeroLength[number == 0 ? 16 : 18] = 0
            zeroLength[number == 0 ? 17 : 19] = 0
            for wireLength in 0...(packet.count + 8) {
                Self.agree(zeroLength, linkType: .ethernet, wireLength: wireLength, "zero length, wire \(wireLength)")
            }
        }
        #expect(answered > 1000)
        for linkType in [LinkType.linuxSLL, .linuxSLL2, .raw, .null, .other(147)] {
            #expect(!Self.agree(packets[0], linkType: linkType, "link type \(linkType)"))
        }
    }
}
