import Testing

@testable import RSTDetective

@Suite struct PacketFingerprintTests {
    /// MSS, NOP, WS, SACK-permitted, timestamps: a Linux SYN's options.
    static let synOptions: [UInt8] = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0]

    @Test func ipv4FieldsAndTheEthernetSource() throws {
        var ip = PacketBuilder.ipv4(PacketBuilder.tcp(flags: 0x02, options: Self.synOptions))
        ip[1] = 0x22  // TOS: DSCP 0x20, ECN 2
        ip[4] = 0x12  // ID 0x1234
        ip[5] = 0x34
        ip[8] = 57  // TTL
        let segment = try #require(PacketBuilder.decode(PacketBuilder.ethernet(ip)).segment)
        let fingerprint = segment.fingerprint
        #expect(fingerprint.hopLimit == 57)
        #expect(fingerprint.trafficClass == 0x22)
        #expect(fingerprint.dscp == 0x20)
        #expect(fingerprint.ipID == 0x1234)
        #expect(fingerprint.dontFragment)
        #expect(fingerprint.flowLabel == 0)
        #expect(fingerprint.sourceMAC == 0x0200_0000_0001)
        #expect(fingerprint.options == [.maximumSegmentSize, .windowScale, .sackPermitted, .timestamps])
        #expect(fingerprint.options?.text == "MSS+WS+SACK_PERM+TS")
        #expect(PacketFingerprint.macText(0x0200_0000_0001) == "02:00:00:00:00:01")

        let withoutDF = PacketBuilder.ipv4(PacketBuilder.tcp(flags: 0x04), fragment: 0)
        let reset = try #require(PacketBuilder.decode(withoutDF, linkType: .raw).segment)
        #expect(!reset.fingerprint.dontFragment)
        #expect(reset.fingerprint.sourceMAC == nil)
        #expect(reset.fingerprint.options == [])
    }

    @Test func ipv6TrafficClassFlowLabelAndHopLimit() throws {
        var ip = PacketBuilder.ipv6(PacketBuilder.tcp(flags: 0x04))
        ip[0] = 0x62  // version 6, traffic class 0x2_
        ip[1] = 0x01  // traffic class 0x20, flow label 0x1....
        ip[2] = 0x23
        ip[3] = 0x45
        ip[7] = 63
        let segment = try #require(PacketBuilder.decode(PacketBuilder.ethernet(ip, etherType: 0x86dd)).segment)
        #expect(segment.fingerprint.trafficClass == 0x20)
        #expect(segment.fingerprint.flowLabel == 0x12345)
        #expect(segment.fingerprint.hopLimit == 63)
        #expect(segment.fingerprint.ipID == 0)
    }

    /// Linux cooked captures carry the sender's address when its length is 6.
    @Test func cookedCapturesGiveTheSourceAddress() throws {
        let ip = PacketBuilder.ipv4(PacketBuilder.tcp(flags: 0x04))
        let address: [UInt8] = [0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0, 0]
        let sll: [UInt8] = [0, 0, 0, 1, 0, 6] + address + [0x08, 0x00]
        let sll2: [UInt8] = [0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6] + address
        let one = try #require(PacketBuilder.decode(sll + ip, linkType: .linuxSLL).segment)
        let two = try #require(PacketBuilder.decode(sll2 + ip, linkType: .linuxSLL2).segment)
        #expect(one.fingerprint.sourceMAC == 0x0a0b_0c0d_0e0f)
        #expect(two.fingerprint.sourceMAC == 0x0a0b_0c0d_0e0f)
        var noAddress = sll
        noAddress[5] = 0
        #expect(
            try #require(PacketBuilder.decode(noAddress + ip, linkType: .linuxSLL).segment).fingerprint.sourceMAC == nil
        )
    }

    /// Options are read on SYN and RST segments only; a list that runs past the header adds `other`, and
    /// one that the snap length cut is absent rather than guessed from its first options.
    @Test func optionsAreReadWithinTheHeaderAndTheCapture() throws {
        let data = PacketBuilder.ethernet(PacketBuilder.ipv4(PacketBuilder.tcp(flags: 0x10, options: Self.synOptions)))
        #expect(try #require(PacketBuilder.decode(data).segment).fingerprint.options == [])

        let syn = PacketBuilder.ethernet(PacketBuilder.ipv4(PacketBuilder.tcp(flags: 0x02, options: Self.synOptions)))
        let cut = try #require(PacketBuilder.decode(syn, capturedLength: 14 + 20 + 20 + 6).segment)
        #expect(cut.fingerprint.options == nil)
        #expect(cut.isHeaderCut)

        // A length that runs past the header (kind 8, length 40 in a 4-byte option space).
        let overrun = PacketBuilder.ethernet(
            PacketBuilder.ipv4(PacketBuilder.tcp(flags: 0x04, options: [8, 40, 1, 1])))
        #expect(try #require(PacketBuilder.decode(overrun).segment).fingerprint.options == .other)
        // End of option list stops the walk; an unknown kind is `other`; MD5 is named.
        let mixed = PacketBuilder.ethernet(
            PacketBuilder.ipv4(
                PacketBuilder.tcp(flags: 0x04, options: [19, 18] + [UInt8](repeating: 0, count: 16) + [0, 9])))
        #expect(try #require(PacketBuilder.decode(mixed).segment).fingerprint.options == .md5)
        let unknown = PacketBuilder.ethernet(
            PacketBuilder.ipv4(PacketBuilder.tcp(flags: 0x04, options: [99, 4, 0, 0])))
        #expect(try #require(PacketBuilder.decode(unknown).segment).fingerprint.options?.text == "OTHER")
        #expect(TCPFlags([.rst, .ack]).text == "RA")
    }
}
