import Foundation
import Testing

@testable import RSTDetective

/// pcapng lets a timestamp name any second (64-bit units, `if_tsresol` 10^0); such values must neither
/// crash the arithmetic on times nor stop the analysis.
@Suite struct TimestampRangeTests {
    static func le16(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
    static func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }

    /// A pcapng block: type, total length, body (padded to 4 bytes), total length.
    static func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
        let padded = body + [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
        let length = UInt32(12 + padded.count)
        return le32(type) + le32(length) + padded + le32(length)
    }

    static func capture(timestamps: [UInt64], packets: [[UInt8]]) -> [UInt8] {
        let section = block(0x0a0d_0d0a, le32(0x1a2b_3c4d) + le16(1) + le16(0) + [UInt8](repeating: 0xff, count: 8))
        // Interface: LINKTYPE_RAW, snap length 0 (none), option if_tsresol (9) = 0: whole seconds.
        let interface = block(1, le16(101) + le16(0) + le32(0) + le16(9) + le16(1) + [0, 0, 0, 0] + le16(0) + le16(0))
        var bytes = section + interface
        for (timestamp, packet) in zip(timestamps, packets) {
            let body =
                le32(0) + le32(UInt32(timestamp >> 32)) + le32(UInt32(timestamp & 0xffff_ffff))
                + le32(UInt32(packet.count)) + le32(UInt32(packet.count)) + packet
            bytes += block(6, body)
        }
        return bytes
    }

    @Test func extremeTimestampsAreClampedNotFatal() throws {
        let (syn, synAck, ack, reset) = PacketBuilder.signature()
        let far: UInt64 = 8_000_000_000
        let bytes = Self.capture(
            timestamps: [far, 0 &- far, 0 &- far, UInt64.max], packets: [syn, synAck, ack, reset])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rstd-\(UUID().uuidString).pcapng")
        try Data(bytes).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let (result, incidents) = Fixtures.analyze([path.path])
        #expect(result.errors.isEmpty)
        #expect(result.packets.packets == 4)
        #expect(result.packets.tcpPackets == 4)
        for incident in incidents { _ = incident.incidentCSVFields }
        let summary = Summary.metrics(result)
        #expect(summary.contains { $0.name == "last_packet_time" && $0.value.hasPrefix("2106-") })
    }
}
