import Testing

@testable import RSTDetective

@Suite struct PacketDecoderTests {
    typealias B = PacketBuilder

    @Test func decodesEthernetIPv4TCPFields() throws {
        let packet = B.ethernet(B.ipv4(B.tcp(sequence: 7, ack: 9, flags: 0x12, options: [2, 4, 5, 0xb4], payload: 5)))
        let segment = try #require(B.decode(packet).segment)
        #expect(segment.source.description == "10.1.0.1")
        #expect(segment.destination.description == "10.1.0.2")
        #expect(segment.sourcePort == 40000)
        #expect(segment.destinationPort == 8080)
        #expect(segment.sequenceNumber == 7)
        #expect(segment.acknowledgmentNumber == 9)
        #expect(segment.flags == [.syn, .ack])
        #expect(segment.payloadLength == 5)
        #expect(!segment.isIPv6)
    }

    /// The payload length comes from the IP header, so a snap length that cuts the payload hides nothing.
    @Test func payloadLengthComesFromTheIPHeaderNotTheSnapLength() throws {
        let packet = B.ethernet(B.ipv4(B.tcp(flags: 0x18, payload: 1000)))
        let segment = try #require(B.decode(packet, capturedLength: 14 + 20 + 20).segment)
        #expect(segment.payloadLength == 1000)
    }

    /// Every prefix of a valid packet shorter than its headers and the first 14 bytes of TCP is `truncated`,
    /// never a crash or a misread.
    @Test func everyShortPrefixIsTruncated() {
        let packet = B.ethernet(B.ipv4(B.tcp(options: [1, 1, 1, 1])))
        for length in 0..<(14 + 20 + 14) {
            #expect(B.decode(packet, capturedLength: length) == .skipped(.truncated), "length \(length)")
        }
        #expect(B.decode(packet, capturedLength: 14 + 20 + 14).segment != nil)
    }

    /// Every cut of the TCP header, 0 to 20 bytes and into the options, over IPv4 and IPv6: from 14 bytes on
    /// the segment is decoded with what the tracker needs, and the fields cut are empty, not guessed.
    @Test(arguments: [false, true])
    func everyCutOfTheTCPHeader(ipv6: Bool) throws {
        let options: [UInt8] = [2, 4, 0x05, 0xb4, 4, 2, 1, 1]  // MSS, SACK permitted, two NOPs
        for withOptions in [false, true] {
            let tcp = B.tcp(
                sourcePort: 40001, destinationPort: 443, sequence: 0xa1b2_c3d4, ack: 0x0102_0304,
                flags: 0x12, options: withOptions ? options : [])
            let packet = ipv6 ? B.ethernet(B.ipv6(tcp), etherType: 0x86dd) : B.ethernet(B.ipv4(tcp))
            let tcpOffset = 14 + (ipv6 ? 40 : 20)
            for cut in 0...tcp.count {
                let result = B.decode(packet, capturedLength: tcpOffset + cut)
                guard cut >= 14 else {
                    #expect(result == .skipped(.truncated), "cut \(cut)")
                    continue
                }
                let segment = try #require(result.segment, "cut \(cut)")
                #expect(segment.sourcePort == 40001)
                #expect(segment.destinationPort == 443)
                #expect(segment.sequenceNumber == 0xa1b2_c3d4)
                #expect(segment.acknowledgmentNumber == 0x0102_0304)
                #expect(segment.flags == [.syn, .ack])
                #expect(segment.isIPv6 == ipv6)
                #expect(segment.window == (cut >= 16 ? 65535 : nil), "cut \(cut)")
                #expect(segment.isHeaderCut == (cut < tcp.count), "cut \(cut)")
                let expectedOptions: TCPOptionSet? =
                    !withOptions ? [] : cut < tcp.count ? nil : [.maximumSegmentSize, .sackPermitted]
                #expect(segment.fingerprint.options == expectedOptions, "cut \(cut)")
                #expect(segment.fingerprint.hopLimit == 64)
            }
        }
    }

    @Test func walksVLANAndQinQTags() throws {
        let inner = B.ipv4(B.tcp())
        #expect(B.decode(B.ethernet(inner, tags: [0x8100])).segment != nil)
        #expect(B.decode(B.ethernet(inner, tags: [0x88a8, 0x8100])).segment != nil)
        #expect(B.decode(B.ethernet(inner, tags: Array(repeating: 0x8100, count: 9))) == .skipped(.nonIP))
    }

    @Test func readsIPv4WithOptions() throws {
        let packet = B.ethernet(B.ipv4(B.tcp(payload: 3), options: [0x94, 4, 0, 0, 1, 1, 1, 0]))
        #expect(try #require(B.decode(packet).segment).payloadLength == 3)
    }

    @Test func skipsIPv6ExtensionHeadersAndRejectsFragments() throws {
        let hopByHop: [UInt8] = [60, 0, 1, 4, 0, 0, 0, 0]
        let destination: [UInt8] = [44, 0, 1, 4, 0, 0, 0, 0]
        let atomicFragment: [UInt8] = [6, 0, 0, 0, 0, 0, 0, 1]
        let packet = B.ipv6(B.tcp(payload: 2), nextHeader: 0, extensionHeaders: hopByHop + destination + atomicFragment)
        let segment = try #require(B.decode(B.ethernet(packet, etherType: 0x86dd)).segment)
        #expect(segment.isIPv6)
        #expect(segment.payloadLength == 2)
        #expect(segment.source.description == "2001:db8::1")
        let realFragment: [UInt8] = [6, 0, 0, 1, 0, 0, 0, 1]
        let fragmented = B.ipv6(B.tcp(), nextHeader: 44, extensionHeaders: realFragment)
        #expect(B.decode(B.ethernet(fragmented, etherType: 0x86dd)) == .skipped(.fragment))
        #expect(B.decode(B.ipv6([], nextHeader: 59), linkType: .raw) == .skipped(.nonTCP))
    }

    @Test func countsEachBadHeaderUnderItsReason() {
        #expect(B.decode(B.ethernet(B.ipv4(B.tcp(), fragment: 0x2000))) == .skipped(.fragment))
        #expect(B.decode(B.ethernet(B.ipv4(B.tcp(), fragment: 0x0010))) == .skipped(.fragment))
        #expect(B.decode(B.ethernet(B.ipv4([0, 53, 0, 53, 0, 8, 0, 0], protocol: 17))) == .skipped(.nonTCP))
        #expect(B.decode(B.ethernet(B.ipv4(B.tcp(), totalLength: 12))) == .skipped(.ipHeaderLengthInvalid))
        var badVersion = B.ipv4(B.tcp())
        badVersion[0] = 0x75
        #expect(B.decode(badVersion, linkType: .raw) == .skipped(.badIPHeader))
        var shortHeader = B.ipv4(B.tcp())
        shortHeader[0] = 0x43
        #expect(B.decode(shortHeader, linkType: .raw) == .skipped(.ipHeaderLengthInvalid))
        var badOffset = B.tcp()
        badOffset[12] = 0x30
        #expect(B.decode(B.ipv4(badOffset), linkType: .raw) == .skipped(.tcpDataOffsetInvalid))
        var pastPayload = B.tcp()
        pastPayload[12] = 0xf0
        #expect(B.decode(B.ipv4(pastPayload), linkType: .raw) == .skipped(.tcpDataOffsetInvalid))
        #expect(B.decode(B.ethernet([0, 1, 8, 0], etherType: 0x0806)) == .skipped(.nonIP))
        #expect(B.decode(B.ipv4(B.tcp()), linkType: .other(147)) == .skipped(.unknownLinkType))
    }

    /// Length fields that point past the end of the packet: counted under their own reason, never read.
    @Test func lyingLengthsHaveTheirOwnReasons() {
        let packet = B.ethernet(B.ipv4(B.tcp(payload: 10)))
        // The IPv4 total length says 1000 bytes; the frame on the wire had 64.
        #expect(B.decode(B.ethernet(B.ipv4(B.tcp(payload: 10), totalLength: 1000))) == .skipped(.ipLengthInvalid))
        // The IPv6 payload length says 1000 bytes.
        var ipv6 = B.ethernet(B.ipv6(B.tcp(payload: 10)), etherType: 0x86dd)
        ipv6[18] = 0x03
        ipv6[19] = 0xe8
        #expect(B.decode(ipv6) == .skipped(.ipLengthInvalid))
        // The IPv4 header length says 60 bytes, past the total length of 50.
        var longHeader = packet
        longHeader[14] = 0x4f
        #expect(B.decode(longHeader) == .skipped(.ipHeaderLengthInvalid))
        // The record claims 64 captured bytes of a 40-byte packet.
        let info = PacketInfo(timestampNanos: 0, capturedLength: packet.count, wireLength: 40)
        let result = packet.withUnsafeBytes { PacketDecoder.decode($0.bytes, info: info, linkType: .ethernet) }
        #expect(result == .skipped(.capturedLengthInvalid))
        // A snap length that cuts the TCP header of a packet that was whole on the wire is still truncation.
        #expect(B.decode(packet, capturedLength: 40) == .skipped(.truncated))
    }

    /// Segmentation offload: the sending host captures total length 0; the wire length is used instead.
    @Test func usesWireLengthWhenIPv4TotalLengthIsZero() throws {
        let packet = B.ethernet(B.ipv4(B.tcp(payload: 100), totalLength: 0))
        #expect(try #require(B.decode(packet).segment).payloadLength == 100)
    }

    @Test func decodesCookedAndLoopbackHeaders() throws {
        let ip = B.ipv4(B.tcp())
        let sll: [UInt8] = [0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 8, 0]
        #expect(B.decode(sll + ip, linkType: .linuxSLL).segment != nil)
        let sll2: [UInt8] = [8, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]
        #expect(B.decode(sll2 + ip, linkType: .linuxSLL2).segment != nil)
        #expect(B.decode([2, 0, 0, 0] + ip, linkType: .null).segment != nil)
        #expect(B.decode([0, 0, 0, 2] + ip, linkType: .null).segment != nil)
        #expect(B.decode([0, 0, 0, 30] + B.ipv6(B.tcp()), linkType: .null).segment != nil)
        #expect(B.decode([0, 0, 0, 7] + ip, linkType: .null) == .skipped(.nonIP))
    }
}
