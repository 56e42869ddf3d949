import Foundation
import Testing

@testable import RSTDetective

/// Several captures are one stream in timestamp order; equal timestamps keep the order of the arguments,
/// as a merge of all the files at once would.
@Suite struct MergeOrderTests {
    typealias B = PacketBuilder

    /// A little-endian classic pcap of raw IPv4 packets (LINKTYPE_RAW), timestamps in microseconds.
    static func pcap(_ packets: [(micros: UInt32, bytes: [UInt8])]) -> Data {
        func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        var bytes = le32(0xa1b2_c3d4) + [2, 0, 4, 0] + le32(0) + le32(0) + le32(65535) + le32(101)
        for packet in packets {
            bytes += le32(1_700_000_000) + le32(packet.micros) + le32(UInt32(packet.bytes.count))
            bytes += le32(UInt32(packet.bytes.count)) + packet.bytes
        }
        return Data(bytes)
    }

    @Test func equalTimestampsFollowTheArguments() throws {
        let (syn, synAck, ack, reset) = B.signature()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rstd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let resetFile = directory.appendingPathComponent("reset.pcap")
        let handshakeFile = directory.appendingPathComponent("handshake.pcap")
        try Self.pcap([(3, reset)]).write(to: resetFile)
        try Self.pcap([(1, syn), (2, synAck), (3, ack)]).write(to: handshakeFile)
        let resetFirst = Fixtures.analyze([resetFile.path, handshakeFile.path]).result.report
        #expect(resetFirst.count(of: .resetBeforeAck) == 1)
        let handshakeFirst = Fixtures.analyze([handshakeFile.path, resetFile.path]).result.report
        #expect(handshakeFirst.incidents == 1)
    }
}
