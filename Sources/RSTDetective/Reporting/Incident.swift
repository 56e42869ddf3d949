/// One occurrence of the signature, with the reuseport bucket its 4-tuple falls in.
public struct Incident: Sendable {
    public var handshake: HandshakeRecord
    /// The kernel's listener-lookup hash of the 4-tuple under the chosen model.
    public var hash: UInt32
    /// The listener the hash picks.
    public var bucket: Int

    /// The columns of incidents.csv, in order.
    public static let csvHeader = [
        "syn_time", "ack_time", "rst_time", "client_ip", "client_port", "server_ip", "server_port",
        "ack_payload_bytes", "syn_to_synack_us", "ack_to_rst_us", "syn_retransmits", "synack_retransmits",
        "server_isn", "hash", "bucket", "history",
    ]

    /// This incident's fields, in `csvHeader` order.
    public var csvFields: [String] {
        let record = handshake
        return [
            Timestamp.iso8601(nanos: record.synTimeNanos),
            Timestamp.iso8601(nanos: record.ackTimeNanos),
            Timestamp.iso8601(nanos: record.settledTimeNanos),
            record.client.text(isIPv6: record.isIPv6),
            String(record.clientPort),
            record.server.text(isIPv6: record.isIPv6),
            String(record.serverPort),
            String(record.ackPayloadBytes),
            String((record.synAckTimeNanos - record.synTimeNanos) / 1000),
            String(ackToResetMicros),
            String(record.synRetransmits),
            String(record.synAckRetransmits),
            String(record.serverISN),
            Self.hex(hash),
            String(bucket),
            record.history.description,
        ]
    }

    /// Microseconds from the client's handshake ACK to the server's RST.
    public var ackToResetMicros: Int64 { (handshake.settledTimeNanos - handshake.ackTimeNanos) / 1000 }

    /// `0x` and eight lower-case hex digits.
    public static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}
