import Testing

@testable import RSTDetective

/// The link types beyond Ethernet, each with frames built here from its specification: the packet inside
/// must come out exactly, the variants of each header must be walked, and what carries no IP must be
/// skipped under a reason, never misread.
@Suite struct LinkTypeDecodingTests {
    typealias B = PacketBuilder

    static let ipv4 = B.ipv4(B.tcp(sourcePort: 40001, destinationPort: 443, sequence: 77, flags: 0x02))
    static let ipv6 = B.ipv6(B.tcp(sourcePort: 40002, destinationPort: 8443, sequence: 78, flags: 0x12))

    /// The ports and sequence number of what `bytes` decodes to, or the reason it was skipped.
    static func decoded(_ bytes: [UInt8], _ linkType: LinkType) -> String {
        switch B.decode(bytes, linkType: linkType) {
        case .tcp(let segment): "\(segment.sourcePort)>\(segment.destinationPort) seq \(segment.sequenceNumber)"
        case .skipped(let reason): reason.metricName
        }
    }

    static let expectedIPv4 = "40001>443 seq 77"
    static let expectedIPv6 = "40002>8443 seq 78"

    @Test func pppWithAndWithoutAddressAndControlAndWithACompressedProtocol() {
        #expect(Self.decoded([0xff, 0x03, 0x00, 0x21] + Self.ipv4, .ppp) == Self.expectedIPv4)
        #expect(Self.decoded([0x00, 0x21] + Self.ipv4, .ppp) == Self.expectedIPv4)
        #expect(Self.decoded([0x00, 0x57] + Self.ipv6, .ppp) == Self.expectedIPv6)
        // RFC 1661 §6.5: 0x21 alone is IPv4.
        #expect(Self.decoded([0xff, 0x03, 0x21] + Self.ipv4, .ppp) == Self.expectedIPv4)
        // LCP (0xc021) carries no IP; a control byte other than 0x03 is not PPP in HDLC-like framing.
        #expect(Self.decoded([0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4], .ppp) == "skipped_non_ip")
        #expect(Self.decoded([0xff, 0x13, 0x00, 0x21] + Self.ipv4, .ppp) == "skipped_non_ip")
        // DLT_PPP_SERIAL holding Cisco HDLC frames.
        #expect(Self.decoded([0x0f, 0x00, 0x08, 0x00] + Self.ipv4, .ppp) == Self.expectedIPv4)
        for length in 0..<4 {
            #expect(Self.decoded(Array([0xff, 0x03, 0x00, 0x21].prefix(length)), .ppp) == "skipped_truncated")
        }
    }

    @Test func ciscoHDLCUnicastAndBroadcast() {
        #expect(Self.decoded([0x0f, 0x00, 0x08, 0x00] + Self.ipv4, .ciscoHDLC) == Self.expectedIPv4)
        #expect(Self.decoded([0x8f, 0x00, 0x86, 0xdd] + Self.ipv6, .ciscoHDLC) == Self.expectedIPv6)
        // SLARP keepalives (0x8035) are not IP.
        #expect(Self.decoded([0x8f, 0x00, 0x80, 0x35, 0, 0, 0, 2], .ciscoHDLC) == "skipped_non_ip")
        #expect(Self.decoded([0x0f, 0x00, 0x08], .ciscoHDLC) == "skipped_truncated")
    }

    /// NFLOG attributes in this machine's byte order, each padded to 4 bytes; the packet is NFULA_PAYLOAD (9).
    static func nflog(_ attributes: [(type: UInt16, value: [UInt8])]) -> [UInt8] {
        var bytes: [UInt8] = [2, 0, 0, 5]
        for attribute in attributes {
            let length = UInt16(4 + attribute.value.count)
            bytes += withUnsafeBytes(of: length) { Array($0) } + withUnsafeBytes(of: attribute.type) { Array($0) }
            bytes += attribute.value + [UInt8](repeating: 0, count: (4 - attribute.value.count % 4) % 4)
        }
        return bytes
    }

    @Test func nflogFindsThePayloadAmongTheAttributes() {
        // Hardware protocol (1), a 3-byte prefix (10) padded to 4, then the payload.
        let packet = Self.nflog([(1, [0x08, 0x00, 1, 0]), (10, [0x61, 0x62, 0]), (9, Self.ipv4)])
        #expect(Self.decoded(packet, .nflog) == Self.expectedIPv4)
        #expect(Self.decoded(Self.nflog([(9, Self.ipv6)]), .nflog) == Self.expectedIPv6)
        // No payload attribute (a log rule with copy range 0); an attribute shorter than its own header;
        // version 1.
        #expect(Self.decoded(Self.nflog([(1, [0x08, 0x00, 1, 0])]), .nflog) == "skipped_truncated")
        #expect(Self.decoded([2, 0, 0, 5, 0, 0, 9, 0] + Self.ipv4, .nflog) == "skipped_non_ip")
        #expect(Self.decoded([2, 1, 0, 5] + Array(packet.dropFirst(4)), .nflog) == "skipped_non_ip")
        // Cut inside the prefix attribute: the packet is not there.
        #expect(B.decode(packet, linkType: .nflog, capturedLength: 14) == .skipped(.truncated))
    }

    @Test func ipOverInfiniBand() {
        let addresses = [UInt8](repeating: 0xfe, count: 40)
        #expect(Self.decoded(addresses + [0x08, 0x00, 0, 0] + Self.ipv4, .ipOverInfiniBand) == Self.expectedIPv4)
        #expect(Self.decoded(addresses + [0x86, 0xdd, 0, 0] + Self.ipv6, .ipOverInfiniBand) == Self.expectedIPv6)
        #expect(Self.decoded(addresses + [0x08, 0x06, 0, 0], .ipOverInfiniBand) == "skipped_non_ip")
        #expect(Self.decoded(addresses + [0x08, 0x00, 0], .ipOverInfiniBand) == "skipped_truncated")
    }

    static let station: [UInt8] = [2, 0, 0, 0, 0xc0, 1]
    static let accessPoint: [UInt8] = [2, 0, 0, 0, 0xa0, 1]
    static let snap: [UInt8] = [0xaa, 0xaa, 0x03, 0, 0, 0]

    /// An 802.11 data frame: frame control, duration, addresses, sequence control, then `extra` (QoS, HT
    /// control, padding), LLC/SNAP and the EtherType.
    static func wlan(
        frameControl: UInt8 = 0x08, flags: UInt8 = 0x01, fourthAddress: Bool = false, extra: [UInt8] = [],
        snap: [UInt8] = snap, etherType: UInt16 = 0x0800, packet: [UInt8] = ipv4
    ) -> [UInt8] {
        var bytes: [UInt8] = [frameControl, flags, 0x2c, 0] + accessPoint + station + [2, 0, 0, 0, 0xc0, 2] + [0x10, 0]
        if fourthAddress { bytes += [2, 0, 0, 0, 0xd0, 4] }
        return bytes + extra + snap + B.be16(etherType) + packet
    }

    @Test func ieee80211DataFramesAndWhatIsNotRead() throws {
        #expect(Self.decoded(Self.wlan(), .ieee80211) == Self.expectedIPv4)
        // QoS data (subtype 8): 2 bytes of QoS control; with Order set, 4 more of HT control.
        #expect(Self.decoded(Self.wlan(frameControl: 0x88, extra: [0, 0]), .ieee80211) == Self.expectedIPv4)
        #expect(
            Self.decoded(Self.wlan(frameControl: 0x88, flags: 0x81, extra: [0, 0, 0, 0, 0, 0]), .ieee80211)
                == Self.expectedIPv4)
        // Between two distribution systems: a fourth address.
        #expect(Self.decoded(Self.wlan(flags: 0x03, fourthAddress: true), .ieee80211) == Self.expectedIPv4)
        #expect(
            Self.decoded(Self.wlan(etherType: 0x86dd, packet: Self.ipv6), .ieee80211) == Self.expectedIPv6)
        // 802.1H bridge tunnel encapsulation (OUI 00-00-F8).
        #expect(Self.decoded(Self.wlan(snap: [0xaa, 0xaa, 0x03, 0, 0, 0xf8]), .ieee80211) == Self.expectedIPv4)
        // Protected, null data, a beacon (management), and LLC that is not SNAP.
        #expect(Self.decoded(Self.wlan(flags: 0x41), .ieee80211) == "skipped_non_ip")
        #expect(Self.decoded(Self.wlan(frameControl: 0x48), .ieee80211) == "skipped_non_ip")
        #expect(Self.decoded(Self.wlan(frameControl: 0x80), .ieee80211) == "skipped_non_ip")
        #expect(Self.decoded(Self.wlan(snap: [0x42, 0x42, 0x03, 0, 0, 0]), .ieee80211) == "skipped_non_ip")
        // The source address is the station's (address 2 going to the distribution system).
        let segment = try #require(B.decode(Self.wlan(flags: 0x01, packet: B.ipv4(B.tcp(flags: 0x04))), linkType: .ieee80211).segment)
        #expect(segment.fingerprint.sourceMAC == 0x0200_0000_c001)
    }

    @Test func radiotapWithTSFTFlagsAndPaddingAndExtendedBitmaps() {
        // Version 0, length 8, nothing present.
        #expect(Self.decoded([0, 0, 8, 0, 0, 0, 0, 0] + Self.wlan(), .radiotap) == Self.expectedIPv4)
        // TSFT (8 bytes, aligned to 8) and Flags 0x20: the 802.11 header (26 bytes for QoS data) is padded to 28.
        let padded: [UInt8] = [0, 0, 17, 0, 0x03, 0, 0, 0] + [UInt8](repeating: 0, count: 8) + [0x20]
        #expect(
            Self.decoded(padded + Self.wlan(frameControl: 0x88, extra: [0, 0, 0xee, 0xee]), .radiotap)
                == Self.expectedIPv4)
        // A second present word (bit 31 of the first): Flags then sit after it.
        let extended: [UInt8] = [0, 0, 13, 0, 0x02, 0, 0, 0x80, 0, 0, 0, 0, 0x10]
        #expect(Self.decoded(extended + Self.wlan(), .radiotap) == Self.expectedIPv4)
        #expect(Self.decoded([1, 0, 8, 0, 0, 0, 0, 0] + Self.wlan(), .radiotap) == "skipped_non_ip")
        #expect(Self.decoded([0, 0, 8, 0, 0, 0, 0], .radiotap) == "skipped_truncated")
    }

    @Test func ppiCarrying80211() {
        #expect(Self.decoded([0, 0, 8, 0, 105, 0, 0, 0] + Self.wlan(), .ppi) == Self.expectedIPv4)
        // PPI before Ethernet (DLT 1) is not read.
        #expect(Self.decoded([0, 0, 8, 0, 1, 0, 0, 0] + B.ethernet(Self.ipv4), .ppi) == "skipped_non_ip")
    }

    /// No prefix of any of these frames is read out of bounds or as something else: each is truncated until
    /// it holds the first 14 bytes of TCP, and from there it is the packet, its header cut until the whole
    /// frame.
    @Test func everyPrefixIsTruncatedOrThePacket() {
        let frames: [(LinkType, [UInt8])] = [
            (.ppp, [0xff, 0x03, 0x00, 0x21] + Self.ipv4), (.ciscoHDLC, [0x0f, 0, 0x08, 0] + Self.ipv4),
            (.nflog, Self.nflog([(1, [8, 0, 1, 0]), (9, Self.ipv4)])),
            (.ipOverInfiniBand, [UInt8](repeating: 0, count: 40) + [0x08, 0, 0, 0] + Self.ipv4),
            (.ieee80211, Self.wlan()), (.radiotap, [0, 0, 8, 0, 0, 0, 0, 0] + Self.wlan()),
            (.ppi, [0, 0, 8, 0, 105, 0, 0, 0] + Self.wlan()),
        ]
        for (linkType, frame) in frames {
            // The segment has no payload and a 20-byte TCP header: every byte is a header the decoder reads.
            for length in 0..<(frame.count - 6) {
                let result = B.decode(frame, linkType: linkType, capturedLength: length)
                #expect(result == .skipped(.truncated), "\(linkType), \(length) of \(frame.count) bytes")
            }
            for length in (frame.count - 6)..<frame.count {
                let segment = B.decode(frame, linkType: linkType, capturedLength: length).segment
                #expect(segment?.isHeaderCut == true, "\(linkType), \(length) of \(frame.count) bytes")
            }
            #expect(B.decode(frame, linkType: linkType).segment?.isHeaderCut == false, "\(linkType)")
        }
    }
}
