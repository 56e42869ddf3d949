import Testing

@testable import RSTDetective

/// Flows through tunnels, and packets with cut TCP headers, through the whole pipeline: decoder, tracker and
/// report.
@Suite struct TunnelFlowTests {
    typealias B = PacketBuilder

    /// The settled attempts of a pipeline run.
    final class Collector {
        var connections: [Connection] = []
    }

    /// Runs Ethernet `packets` through a pipeline, 1 ms apart, each captured up to `snapLength` bytes.
    static func run(
        _ packets: [[UInt8]], snapLength: Int = 65535, options: AnalysisOptions = AnalysisOptions()
    ) -> (PacketCounts, [Connection]) {
        let collector = Collector()
        var pipeline = PacketPipeline(options: options) { collector.connections.append($0) }
        for (index, packet) in packets.enumerated() {
            let captured = min(packet.count, snapLength)
            let info = PacketInfo(
                timestampNanos: 1_000_000_000 + Int64(index) * 1_000_000, capturedLength: captured,
                wireLength: packet.count)
            packet.prefix(captured).withUnsafeBytes { pipeline.process(info, bytes: $0.bytes, linkType: .ethernet) }
        }
        pipeline.finish(at: nil)
        return (pipeline.counts, collector.connections)
    }

    /// The signature's four raw IPv4 packets, with the server's ISN `serverISN`.
    static func signature(serverISN: UInt32 = 5000) -> [[UInt8]] {
        let syn = B.ipv4(B.tcp(sourcePort: 40000, destinationPort: 80, sequence: 100, flags: 0x02))
        let synAck = B.ipv4(
            B.tcp(sourcePort: 80, destinationPort: 40000, sequence: serverISN, ack: 101, flags: 0x12),
            source: 0x0a01_0002, destination: 0x0a01_0001)
        let ack = B.ipv4(B.tcp(sourcePort: 40000, destinationPort: 80, sequence: 101, ack: serverISN + 1, flags: 0x10))
        let reset = B.ipv4(
            B.tcp(sourcePort: 80, destinationPort: 40000, sequence: serverISN + 1, flags: 0x04),
            source: 0x0a01_0002, destination: 0x0a01_0001)
        return [syn, synAck, ack, reset]
    }

    /// `inner` in VXLAN with `vni`, between the outer addresses given.
    static func vxlan(_ inner: [UInt8], vni: UInt32, from source: UInt32, to destination: UInt32) -> [UInt8] {
        B.ethernet(
            B.ipv4(
                B.udp(B.vxlan(B.ethernet(inner), vni: vni), destinationPort: 4789), source: source,
                destination: destination, protocol: 17))
    }

    /// Two tenants whose handshakes use the same inner addresses and ports, interleaved, with different
    /// server ISNs: two attempts, two incidents, each named by its own VNI.
    @Test func twoTenantsWithTheSameInnerTupleAreTwoFlows() {
        let first = Self.signature(serverISN: 5000).map { Self.vxlan($0, vni: 1, from: 0xc0a8_0001, to: 0xc0a8_0002) }
        let second = Self.signature(serverISN: 9000).map { Self.vxlan($0, vni: 2, from: 0xc0a8_0001, to: 0xc0a8_0002) }
        let (_, connections) = Self.run(zip(first, second).flatMap { [$0, $1] })
        #expect(connections.count == 2)
        #expect(connections.allSatisfy { $0.isIncident })
        #expect(Set(connections.map(\.handshake.tunnel.text)) == ["vxlan vni=1", "vxlan vni=2"])
        #expect(Set(connections.map(\.handshake.serverISN)) == [5000, 9000])
    }

    /// The analysis options' VXLAN ports reach the decoder.
    @Test func vxlanOnAPortTheOptionsAdd() throws {
        let packets = Self.signature().map {
            B.ethernet(B.ipv4(B.udp(B.vxlan(B.ethernet($0), vni: 3), destinationPort: 9999), protocol: 17))
        }
        let (counts, none) = Self.run(packets)
        #expect(none.isEmpty)
        #expect(counts.count(of: .nonTCP) == 4)
        let ports = try #require(VXLANPorts(adding: [9999]))
        let (_, connections) = Self.run(packets, options: AnalysisOptions(vxlanPorts: ports))
        #expect(connections.count == 1)
        #expect(connections.first?.isIncident == true)
        #expect(connections.first?.handshake.tunnel.text == "vxlan vni=3")
    }

    /// The two directions of one tenant's connection cross different outer addresses (underlay paths): one
    /// flow, one incident.
    @Test func theTwoDirectionsThroughDifferentOuterAddressesAreOneFlow() throws {
        let packets = Self.signature().enumerated().map { index, inner in
            index % 2 == 0
                ? Self.vxlan(inner, vni: 7, from: 0xc0a8_0001, to: 0xc0a8_0002)
                : Self.vxlan(inner, vni: 7, from: 0xac10_0009, to: 0xc0a8_0001)
        }
        let (_, connections) = Self.run(packets)
        let incident = try #require(connections.first)
        #expect(connections.count == 1)
        #expect(incident.isIncident)
        #expect(incident.handshake.client.description == "10.1.0.1")
        #expect(incident.handshake.tunnel.text == "vxlan vni=7")
        let fields = incident.incidentCSVFields
        #expect(fields[Connection.incidentCSVHeader.firstIndex(of: "tunnel")!] == "vxlan vni=7")
        #expect(incident.connectionCSVFields.last == "vxlan vni=7")
    }

    /// A load balancer's direct server return: the client's packets come through IP-in-IP, the server's
    /// answer directly. IP-in-IP names no tenant, so both directions are one flow.
    @Test func aTunnelWithoutATenantDoesNotSplitTheFlow() throws {
        let packets = Self.signature().enumerated().map { index, inner in
            index % 2 == 0
                ? B.ethernet(B.ipv4(inner, source: 0xc0a8_0001, destination: 0xc0a8_0002, protocol: 4))
                : B.ethernet(inner)
        }
        let (_, connections) = Self.run(packets)
        #expect(connections.count == 1)
        #expect(connections.first?.isIncident == true)
        #expect(connections.first?.handshake.tunnel.text == "ip-in-ip")
    }

    /// IPv6 at snap length 68 (Ethernet 14 + IPv6 40 + 14 bytes of TCP): every packet's TCP header is cut,
    /// the incident is still found, and the cut headers are counted.
    @Test func ipv6AtSnapLength68KeepsItsIncidents() throws {
        let packets = Self.signature().map { ipv4 in
            // The same segment over IPv6, client 2001:db8::1, server 2001:db8::2.
            let fromClient = ipv4[12...15].elementsEqual([10, 1, 0, 1])
            return B.ethernet(
                B.ipv6(Array(ipv4[20...]), source: fromClient ? 1 : 2, destination: fromClient ? 2 : 1),
                etherType: 0x86dd)
        }
        let (counts, connections) = Self.run(packets, snapLength: 68)
        let incident = try #require(connections.first)
        #expect(connections.count == 1)
        #expect(incident.isIncident)
        #expect(incident.handshake.client.description == "2001:db8::1")
        #expect(counts.tcpPackets == 4)
        #expect(counts.tcpHeadersCut == 4)
        // The RST's window was cut: its column is empty, not 0.
        let fields = incident.incidentCSVFields
        #expect(fields[Connection.incidentCSVHeader.firstIndex(of: "rst_window")!] == "")
        #expect(fields[Connection.incidentCSVHeader.firstIndex(of: "tunnel")!] == "")
        // Whole headers are not counted.
        #expect(Self.run(packets).0.tcpHeadersCut == 0)
    }
}
