import Testing

@testable import RSTDetective

/// Every encapsulation the decoder sees through, each built by hand from its RFC or draft: the inner TCP
/// segment must come out with its own addresses and ports, and the path must name the layers, outermost
/// first, with the identifiers written into the packet.
@Suite struct TunnelDecodingTests {
    typealias B = PacketBuilder

    /// The inner segment of every tunnel below: 10.1.0.1:40000 -> 10.1.0.2:8080, a SYN with sequence 1000.
    static let innerIPv4 = B.ipv4(B.tcp())
    static let innerIPv6 = B.ipv6(B.tcp())
    /// Outer addresses that differ from the inner ones: 192.168.0.1 -> 192.168.0.2.
    static func outerIPv4(_ payload: [UInt8], protocol: UInt8) -> [UInt8] {
        B.ipv4(payload, source: 0xc0a8_0001, destination: 0xc0a8_0002, protocol: `protocol`)
    }

    /// Decodes `packet` and checks the inner segment; checks that `headerExtent` ends at the inner TCP header
    /// and that decoding only that much gives the same, and that every prefix shorter than the inner TCP's
    /// first 14 bytes is truncated.
    static func inner(
        _ packet: [UInt8], linkType: LinkType = .ethernet, vxlanPorts: VXLANPorts = .standard,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> TCPSegment {
        let segment = try #require(
            B.decode(packet, linkType: linkType, vxlanPorts: vxlanPorts).segment, sourceLocation: sourceLocation)
        #expect(segment.sourcePort == 40000, sourceLocation: sourceLocation)
        #expect(segment.destinationPort == 8080, sourceLocation: sourceLocation)
        #expect(segment.sequenceNumber == 1000, sourceLocation: sourceLocation)
        #expect(segment.flags == .syn, sourceLocation: sourceLocation)
        #expect(segment.window == 65535, sourceLocation: sourceLocation)
        #expect(!segment.isHeaderCut, sourceLocation: sourceLocation)
        if segment.isIPv6 {
            #expect(segment.source.description == "2001:db8::1", sourceLocation: sourceLocation)
            #expect(segment.destination.description == "2001:db8::2", sourceLocation: sourceLocation)
        } else {
            #expect(segment.source.description == "10.1.0.1", sourceLocation: sourceLocation)
            #expect(segment.destination.description == "10.1.0.2", sourceLocation: sourceLocation)
        }
        // The inner TCP header (20 bytes, no options) ends the packet; link-layer padding after it is not kept.
        let padded = packet + [UInt8](repeating: 0x61, count: 100)
        #expect(
            B.headerExtent(padded, linkType: linkType, vxlanPorts: vxlanPorts) == packet.count,
            sourceLocation: sourceLocation)
        #expect(
            B.decode(padded, linkType: linkType, vxlanPorts: vxlanPorts)
                == B.decode(padded, linkType: linkType, capturedLength: packet.count, vxlanPorts: vxlanPorts),
            sourceLocation: sourceLocation)
        for length in 0..<(packet.count - 6) {
            #expect(
                B.decode(packet, linkType: linkType, capturedLength: length, vxlanPorts: vxlanPorts)
                    == .skipped(.truncated), "length \(length)", sourceLocation: sourceLocation)
        }
        return segment
    }

    @Test func vxlanOnTheStandardPortsAndOnesAdded() throws {
        for port: UInt16 in [4789, 8472] {
            let packet = B.ethernet(
                Self.outerIPv4(
                    B.udp(B.vxlan(B.ethernet(Self.innerIPv4), vni: 4242), destinationPort: port), protocol: 17))
            #expect(try Self.inner(packet).tunnel.text == "vxlan vni=4242")
        }
        let other = B.ethernet(
            Self.outerIPv4(
                B.udp(B.vxlan(B.ethernet(Self.innerIPv6, etherType: 0x86dd), vni: 0xff_ffff), destinationPort: 9999),
                protocol: 17))
        #expect(B.decode(other) == .skipped(.nonTCP))
        let ports = try #require(VXLANPorts(adding: [9999]))
        #expect(try Self.inner(other, vxlanPorts: ports).tunnel.text == "vxlan vni=16777215")
        #expect(ports.all == [4789, 8472, 9999])
        // A UDP datagram from the VXLAN port is not VXLAN: the destination port tells.
        let reply = B.ethernet(
            Self.outerIPv4(
                B.udp(B.vxlan(B.ethernet(Self.innerIPv4), vni: 1), sourcePort: 4789, destinationPort: 53), protocol: 17)
        )
        #expect(B.decode(reply) == .skipped(.nonTCP))
    }

    @Test func vxlanPortsAreBounded() {
        #expect(VXLANPorts(adding: [1, 2, 3, 4, 5, 6])?.all == [4789, 8472, 1, 2, 3, 4, 5, 6])
        #expect(VXLANPorts(adding: [1, 2, 3, 4, 5, 6, 7]) == nil)
        #expect(VXLANPorts(adding: [0]) == nil)
        #expect(VXLANPorts(adding: [4789, 8472, 1, 1]) == VXLANPorts(adding: [1]))
        #expect(!VXLANPorts.standard.contains(0))
    }

    @Test func vxlanOverIPv6CarryingIPv6() throws {
        let outer = B.ipv6(
            B.udp(B.vxlan(B.ethernet(Self.innerIPv6, etherType: 0x86dd), vni: 7), destinationPort: 4789),
            nextHeader: 17, source: 0x51, destination: 0x52)
        let segment = try Self.inner(B.ethernet(outer, etherType: 0x86dd))
        #expect(segment.isIPv6)
        #expect(segment.tunnel.text == "vxlan vni=7")
    }

    @Test func geneveWithAndWithoutOptions() throws {
        let option: [UInt8] = [0x01, 0x02, 0x80, 0x01, 0xaa, 0xbb, 0xcc, 0xdd]  // class, type, length 1 word
        for options in [[], option, option + option] {
            let packet = B.ethernet(
                Self.outerIPv4(
                    B.udp(B.geneve(B.ethernet(Self.innerIPv4), vni: 99, options: options), destinationPort: 6081),
                    protocol: 17))
            #expect(try Self.inner(packet).tunnel.text == "geneve vni=99")
        }
        // Geneve carrying IPv4 and IPv6 directly, told by the protocol type.
        let ipv4 = B.udp(B.geneve(Self.innerIPv4, vni: 5, protocolType: 0x0800), destinationPort: 6081)
        #expect(try Self.inner(Self.outerIPv4(ipv4, protocol: 17), linkType: .raw).tunnel.text == "geneve vni=5")
        let ipv6 = B.udp(B.geneve(Self.innerIPv6, vni: 6, protocolType: 0x86dd, options: option), destinationPort: 6081)
        #expect(try Self.inner(Self.outerIPv4(ipv6, protocol: 17), linkType: .raw).tunnel.text == "geneve vni=6")
        // Version 1, and a protocol type that is not IP.
        var version = B.udp(B.geneve(Self.innerIPv4, vni: 5, protocolType: 0x0800), destinationPort: 6081)
        version[8] |= 0x40
        #expect(B.decode(Self.outerIPv4(version, protocol: 17), linkType: .raw) == .skipped(.nonIP))
        let arp = B.udp(B.geneve([0, 1, 8, 0], vni: 5, protocolType: 0x0806), destinationPort: 6081)
        #expect(B.decode(Self.outerIPv4(arp, protocol: 17), linkType: .raw) == .skipped(.nonIP))
    }

    /// Every combination of the checksum, key and sequence-number fields, carrying IPv4, IPv6 and Ethernet.
    @Test func greWithEveryOptionalField() throws {
        for checksum in [false, true] {
            for key: UInt32? in [nil, 5, 0xffff_ffff] {
                for sequence: UInt32? in [nil, 77] {
                    let name = key.map { "gre key=\($0)" } ?? "gre"
                    let payloads: [(UInt16, [UInt8])] = [
                        (0x0800, Self.innerIPv4), (0x86dd, Self.innerIPv6), (0x6558, B.ethernet(Self.innerIPv4)),
                    ]
                    for (protocolType, payload) in payloads {
                        let gre = B.gre(
                            payload, protocolType: protocolType, checksum: checksum, key: key, sequence: sequence)
                        let segment = try Self.inner(B.ethernet(Self.outerIPv4(gre, protocol: 47)))
                        #expect(segment.tunnel.text == name, "\(checksum) \(String(describing: key)) \(protocolType)")
                    }
                }
            }
        }
        // PPTP's enhanced GRE (version 1), and the retired routing field.
        var version = B.gre(Self.innerIPv4, protocolType: 0x0800)
        version[1] = 1
        #expect(B.decode(Self.outerIPv4(version, protocol: 47), linkType: .raw) == .skipped(.nonIP))
        var routing = B.gre(Self.innerIPv4, protocolType: 0x0800)
        routing[0] = 0x40
        #expect(B.decode(Self.outerIPv4(routing, protocol: 47), linkType: .raw) == .skipped(.nonIP))
    }

    @Test func erspanTypesOneTwoAndThree() throws {
        let frame = B.ethernet(Self.innerIPv4, source: 0x33)
        // Type I: GRE without a sequence number, the mirrored frame right after it.
        let typeI = B.gre(frame, protocolType: 0x88be)
        #expect(try Self.inner(B.ethernet(Self.outerIPv4(typeI, protocol: 47))).tunnel.text == "erspan")
        // Type II: GRE with a sequence number, then the ERSPAN header; the session is 10 bits.
        let typeII = B.gre(B.erspanTypeII(frame, session: 0x2a5), protocolType: 0x88be, sequence: 1)
        let second = try Self.inner(B.ethernet(Self.outerIPv4(typeII, protocol: 47)))
        #expect(second.tunnel.text == "erspan session=677")
        // The mirrored frame's source, not the tunnel's.
        #expect(second.fingerprint.sourceMAC == 0x0200_0000_0033)
        // Type III, without and with the platform-specific subheader, and carrying IP (frame type 2).
        for platform in [false, true] {
            let typeIII = B.gre(
                B.erspanTypeIII(frame, session: 1023, platform: platform), protocolType: 0x22eb, sequence: 1)
            #expect(
                try Self.inner(B.ethernet(Self.outerIPv4(typeIII, protocol: 47))).tunnel.text == "erspan session=1023")
        }
        let ip = B.gre(B.erspanTypeIII(Self.innerIPv6, session: 3, frameType: 2), protocolType: 0x22eb)
        #expect(try Self.inner(B.ethernet(Self.outerIPv4(ip, protocol: 47))).tunnel.text == "erspan session=3")
        let other = B.gre(B.erspanTypeIII(frame, session: 3, frameType: 5), protocolType: 0x22eb)
        #expect(B.decode(B.ethernet(Self.outerIPv4(other, protocol: 47))) == .skipped(.nonIP))
    }

    @Test func mplsLabelStacks() throws {
        let two = B.mpls(label: 100, bottom: false) + B.mpls(label: 0xf_ffff, bottom: true) + Self.innerIPv4
        #expect(try Self.inner(B.ethernet(two, etherType: 0x8847)).tunnel.text == "mpls label=100 / mpls label=1048575")
        let one = B.mpls(label: 16, bottom: true) + Self.innerIPv6
        #expect(try Self.inner(B.ethernet(one, etherType: 0x8848)).tunnel.text == "mpls label=16")
        // A pseudowire: the control word (first nibble 0), then an Ethernet frame.
        let pseudowire = B.mpls(label: 17, bottom: true) + [0, 0, 0, 9] + B.ethernet(Self.innerIPv4)
        #expect(try Self.inner(B.ethernet(pseudowire, etherType: 0x8847)).tunnel.text == "mpls label=17")
        let unknown = B.mpls(label: 18, bottom: true) + [0x81] + Self.innerIPv4
        #expect(B.decode(B.ethernet(unknown, etherType: 0x8847)) == .skipped(.nonIP))
        // MPLS inside GRE (RFC 4023).
        let gre = B.gre(B.mpls(label: 19, bottom: true) + Self.innerIPv4, protocolType: 0x8847, key: 2)
        #expect(
            try Self.inner(Self.outerIPv4(gre, protocol: 47), linkType: .raw).tunnel.text == "gre key=2 / mpls label=19"
        )
    }

    @Test func pppoeSessions() throws {
        let ipv4 = B.pppoe(Self.innerIPv4, session: 0xbeef, pppProtocol: 0x0021)
        #expect(try Self.inner(B.ethernet(ipv4, etherType: 0x8864)).tunnel.text == "pppoe session=48879")
        let ipv6 = B.pppoe(Self.innerIPv6, session: 1, pppProtocol: 0x0057)
        #expect(try Self.inner(B.ethernet(ipv6, etherType: 0x8864, tags: [0x8100])).tunnel.text == "pppoe session=1")
        let lcp = B.pppoe([1, 1, 0, 4], session: 1, pppProtocol: 0xc021)
        #expect(B.decode(B.ethernet(lcp, etherType: 0x8864)) == .skipped(.nonIP))
        #expect(B.decode(B.ethernet(lcp, etherType: 0x8863)) == .skipped(.nonIP))
    }

    @Test func ipInIPAndIPv6InIP() throws {
        #expect(try Self.inner(B.ethernet(Self.outerIPv4(Self.innerIPv4, protocol: 4))).tunnel.text == "ip-in-ip")
        #expect(try Self.inner(B.ethernet(Self.outerIPv4(Self.innerIPv6, protocol: 41))).tunnel.text == "ipv6-in-ip")
        let overIPv6 = B.ipv6(Self.innerIPv4, nextHeader: 4, source: 0x61)
        #expect(try Self.inner(overIPv6, linkType: .raw).tunnel.text == "ip-in-ip")
        // Behind an extension header.
        let hopByHop: [UInt8] = [41, 0, 1, 4, 0, 0, 0, 0]
        let sixInSix = B.ipv6(Self.innerIPv6, nextHeader: 0, extensionHeaders: hopByHop, source: 0x61)
        #expect(try Self.inner(sixInSix, linkType: .raw).tunnel.text == "ipv6-in-ip")
    }

    /// VLAN tags at every level: outside the tunnel and in the frame it carries, and not in the path.
    @Test func vlanTagsAtInnerLevels() throws {
        let inner = B.ethernet(Self.innerIPv4, tags: [0x88a8, 0x8100])
        let outer = Self.outerIPv4(B.udp(B.vxlan(inner, vni: 1), destinationPort: 4789), protocol: 17)
        let segment = try Self.inner(B.ethernet(outer, tags: [0x9100]))
        #expect(segment.tunnel.text == "vxlan vni=1")
        // Eight tags per frame, as on the outside; nine are malformed.
        let nine = B.ethernet(Self.innerIPv4, tags: Array(repeating: 0x8100, count: 9))
        let nested = Self.outerIPv4(B.udp(B.vxlan(nine, vni: 1), destinationPort: 4789), protocol: 17)
        #expect(B.decode(B.ethernet(nested, tags: [0x8100])) == .skipped(.nonIP))
    }

    /// The example of the `tunnel` column's contract: VXLAN outermost, then GRE with a key inside it.
    @Test func nestedTunnelsAreNamedOutermostFirst() throws {
        let gre = B.gre(Self.innerIPv4, protocolType: 0x0800, key: 5)
        let frame = B.ethernet(Self.outerIPv4(gre, protocol: 47))
        let packet = B.ethernet(Self.outerIPv4(B.udp(B.vxlan(frame, vni: 4242), destinationPort: 4789), protocol: 17))
        let path = try Self.inner(packet).tunnel
        #expect(path.text == "vxlan vni=4242 / gre key=5")
        #expect(path.count == 2)
        #expect(path[0] == TunnelLayer(kind: .vxlan, identifier: 4242))
        #expect(path[1] == TunnelLayer(kind: .greKey, identifier: 5))
    }

    /// Eight layers of encapsulation are read; a ninth is a skip reason, never a deeper walk.
    @Test func eightLayersAreReadAndNineAreNot() throws {
        func nested(_ depth: Int) -> [UInt8] {
            (0..<depth).reduce(Self.innerIPv4) { packet, _ in Self.outerIPv4(packet, protocol: 4) }
        }
        let eight = try Self.inner(nested(8), linkType: .raw)
        #expect(eight.tunnel.text == Array(repeating: "ip-in-ip", count: 8).joined(separator: " / "))
        #expect(B.decode(nested(9), linkType: .raw) == .skipped(.tooManyTunnelLayers))
        // Nothing is known of a packet skipped: all the bytes the decoder may read are kept.
        #expect(B.headerExtent(nested(9) + [UInt8](repeating: 0, count: 2000), linkType: .raw) == 1024)

        func labels(_ count: Int) -> [UInt8] {
            (0..<count).flatMap { B.mpls(label: UInt32($0), bottom: $0 == count - 1) } + Self.innerIPv4
        }
        #expect(try Self.inner(B.ethernet(labels(8), etherType: 0x8847)).tunnel.count == 8)
        #expect(B.decode(B.ethernet(labels(9), etherType: 0x8847)) == .skipped(.tooManyTunnelLayers))
        // Mixed kinds count alike: seven IP-in-IP inside VXLAN make eight.
        let vxlan = B.udp(B.vxlan(B.ethernet(nested(7)), vni: 1), destinationPort: 4789)
        #expect(try Self.inner(B.ethernet(Self.outerIPv4(vxlan, protocol: 17))).tunnel.count == 8)
        let deeper = B.udp(B.vxlan(B.ethernet(nested(8)), vni: 1), destinationPort: 4789)
        #expect(B.decode(B.ethernet(Self.outerIPv4(deeper, protocol: 17))) == .skipped(.tooManyTunnelLayers))
    }

    /// The fingerprint is the inner packet's: its TTL, IP ID and link-layer source, not the tunnel's.
    @Test func theFingerprintIsTheInnerPacketsOwn() throws {
        var inner = B.ipv4(B.tcp(flags: 0x04))
        inner[8] = 33  // TTL
        inner[4] = 0x12  // IP ID 0x1201
        let packet = B.ethernet(
            Self.outerIPv4(
                B.udp(B.vxlan(B.ethernet(inner, source: 0x77), vni: 1), destinationPort: 4789), protocol: 17),
            source: 0x11)
        let segment = try #require(B.decode(packet).segment)
        #expect(segment.fingerprint.hopLimit == 33)
        #expect(segment.fingerprint.ipID == 0x1201)
        #expect(segment.fingerprint.sourceMAC == 0x0200_0000_0077)
    }

    /// Tenants: the identifiers that name one make the flow key's tenant word, the others leave it 0, so
    /// that plain traffic keys its flows as before.
    @Test func onlyTenantIdentifiersMakeTheTenant() {
        func path(_ layers: [TunnelLayer]) -> TunnelPath {
            var path = TunnelPath()
            for layer in layers {
                let appended = path.append(layer.kind, identifier: layer.identifier)
                #expect(appended)
            }
            return path
        }
        #expect(TunnelPath().tenant == 0)
        let plain = path([.init(kind: .ipInIP), .init(kind: .gre), .init(kind: .erspanTypeI)])
        #expect(plain.text == "ip-in-ip / gre / erspan")
        #expect(plain.tenant == 0)
        let one = path([.init(kind: .vxlan, identifier: 1)])
        let two = path([.init(kind: .vxlan, identifier: 2)])
        let geneve = path([.init(kind: .geneve, identifier: 1)])
        let behindIPinIP = path([.init(kind: .ipInIP), .init(kind: .vxlan, identifier: 1)])
        #expect(one.tenant != 0)
        #expect(Set([one.tenant, two.tenant, geneve.tenant]).count == 3)
        #expect(behindIPinIP.tenant == one.tenant)
    }
}
