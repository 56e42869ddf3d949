/// A settled connection attempt with the listener its 4-tuple is steered to: a row of connections.csv, and of
/// incidents.csv when its outcome is the signature.
public struct Connection: Sendable {
    public var handshake: HandshakeRecord
    /// The kernel's listener-lookup hash of the 4-tuple under the chosen model.
    public var hash: UInt32
    /// The listener the hash picks, and the ones it would pick with one listener fewer or more.
    public var choice: ListenerChoice

    /// Whether this attempt is an incident (`reset_after_handshake`).
    public var isIncident: Bool { handshake.outcome == .resetAfterHandshake }

    /// The columns of incidents.csv, in order.
    public static let incidentCSVHeader = [
        "syn_time", "ack_time", "rst_time", "client_ip", "client_port", "server_ip", "server_port",
        "ack_payload_bytes", "syn_to_synack_us", "ack_to_rst_us", "syn_retransmits", "synack_retransmits",
        "server_isn", "hash", "bucket", "bucket_if_fewer", "bucket_if_more", "moves_on_churn", "history",
    ]

    /// This incident's fields, in `incidentCSVHeader` order.
    public var incidentCSVFields: [String] {
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
        ] + listenerFields + [record.history.description]
    }

    /// The columns of connections.csv (every settled attempt), in order.
    public static let connectionCSVHeader = [
        "syn_time", "synack_time", "ack_time", "end_time", "client_ip", "client_port", "server_ip", "server_port",
        "outcome", "ack_payload_bytes", "syn_retransmits", "synack_retransmits", "server_isn", "hash", "bucket",
        "bucket_if_fewer", "bucket_if_more", "moves_on_churn", "history",
    ]

    /// This attempt's fields, in `connectionCSVHeader` order; times not reached are empty.
    public var connectionCSVFields: [String] {
        let record = handshake
        let reachedSynAck = record.synAckTimeNanos != 0
        return [
            Timestamp.iso8601(nanos: record.synTimeNanos),
            reachedSynAck ? Timestamp.iso8601(nanos: record.synAckTimeNanos) : "",
            record.handshakeCompleted ? Timestamp.iso8601(nanos: record.ackTimeNanos) : "",
            Timestamp.iso8601(nanos: record.settledTimeNanos),
            record.client.text(isIPv6: record.isIPv6),
            String(record.clientPort),
            record.server.text(isIPv6: record.isIPv6),
            String(record.serverPort),
            record.outcome.name,
            String(record.ackPayloadBytes),
            String(record.synRetransmits),
            String(record.synAckRetransmits),
            reachedSynAck ? String(record.serverISN) : "",
        ] + listenerFields + [record.history.description]
    }

    private var listenerFields: [String] {
        [
            Self.hex(hash), String(choice.bucket), choice.ifFewer.map(String.init) ?? "", String(choice.ifMore),
            choice.movesOnChurn ? "1" : "0",
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
