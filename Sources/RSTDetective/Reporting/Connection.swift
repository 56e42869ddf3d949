/// A settled connection attempt with the listener its 4-tuple is steered to: a row of connections.csv, and of
/// incidents.csv when its outcome is the signature.
public struct Connection: Sendable {
    public var handshake: HandshakeRecord
    /// The kernel's listener-lookup hash of the 4-tuple under the chosen model.
    public var hash: UInt32
    /// The listener the hash picks, and the ones it would pick with one listener fewer or more.
    public var choice: ListenerChoice

    /// The kernel's own reason for the RST, from the `tcp:tcp_send_reset` tracepoint in a live capture.
    public var kernelReason: String?

    /// Why the kernel reset this incident's ACK (`CauseClassifier`); nil for other attempts, and for an
    /// incident not yet judged.
    public var cause: IncidentCause?

    public init(handshake: HandshakeRecord, hash: UInt32, choice: ListenerChoice, kernelReason: String? = nil) {
        self.handshake = handshake
        self.hash = hash
        self.choice = choice
        self.kernelReason = kernelReason
    }

    /// Whether this attempt is an incident (`reset_after_handshake`).
    public var isIncident: Bool { handshake.outcome == .resetAfterHandshake }

    /// The RST compared with the SYN-ACK, when the attempt has both.
    public var provenance: Provenance? { Provenance(handshake) }

    /// The columns of incidents.csv, in order.
    public static let incidentCSVHeader = [
        "syn_time", "ack_time", "rst_time", "client_ip", "client_port", "server_ip", "server_port",
        "ack_payload_bytes", "syn_to_synack_us", "ack_to_rst_us", "syn_retransmits", "synack_retransmits",
        "server_isn", "hash", "bucket", "bucket_if_fewer", "bucket_if_more", "moves_on_churn", "history",
        "rst_seq", "rst_flags", "rst_window", "rst_options", "synack_ttl", "rst_ttl", "ttl_delta", "rst_ip_id",
        "rst_df", "ack_tos", "rst_tos", "tos_echo", "synack_flow_label", "rst_flow_label", "synack_mac", "rst_mac",
        "rst_origin", "kernel_reason", "cause", "tunnel",
    ]

    /// The columns of the near-miss CSV: the incident columns and the near miss's class.
    public static let nearMissCSVHeader = incidentCSVHeader + ["kind"]

    /// This incident's fields, in `incidentCSVHeader` order. For a near miss, the times and comparisons it
    /// did not reach (no SYN-ACK for a refusal, no handshake ACK for some `wrong_ack`) are empty.
    public var incidentCSVFields: [String] {
        let record = handshake
        let reachedSynAck = record.synAckTimeNanos != 0
        let resetTime = record.reset?.timeNanos ?? record.settledTimeNanos
        var fields = [
            Timestamp.iso8601(nanos: record.synTimeNanos),
            record.handshakeCompleted ? Timestamp.iso8601(nanos: record.ackTimeNanos) : "",
            Timestamp.iso8601(nanos: resetTime),
            record.client.text(isIPv6: record.isIPv6),
            String(record.clientPort),
            record.server.text(isIPv6: record.isIPv6),
            String(record.serverPort),
            String(record.ackPayloadBytes),
            reachedSynAck ? String((record.synAckTimeNanos - record.synTimeNanos) / 1000) : "",
            record.handshakeCompleted ? String((resetTime - record.ackTimeNanos) / 1000) : "",
            String(record.synRetransmits),
            String(record.synAckRetransmits),
            reachedSynAck ? String(record.serverISN) : "",
        ]
        fields += listenerFields
        fields.append(record.history.description)
        fields += resetFields
        fields.append(kernelReason ?? "")
        fields.append(cause?.name ?? "")
        fields.append(record.tunnel.text)
        return fields
    }

    /// The incidents.csv columns that JSON Lines gives as numbers; the others are strings, and empty fields
    /// are null.
    static let numericColumns: Set<String> = [
        "client_port", "server_port", "ack_payload_bytes", "syn_to_synack_us", "ack_to_rst_us", "syn_retransmits",
        "synack_retransmits", "server_isn", "bucket", "bucket_if_fewer", "bucket_if_more", "moves_on_churn",
        "rst_seq", "rst_window", "synack_ttl", "rst_ttl", "ttl_delta", "rst_ip_id", "rst_df",
    ]

    /// An incident as one JSON object on one line (JSON Lines), with the names of incidents.csv.
    ///
    /// - Parameter fields: The incident's `incidentCSVFields`, made once for every report that takes them.
    public static func incidentJSON(_ fields: [String]) -> String {
        var json = "{"
        for (index, (name, value)) in zip(incidentCSVHeader, fields).enumerated() {
            if index > 0 { json += "," }
            json += "\"" + name + "\":"
            if value.isEmpty {
                json += "null"
            } else if numericColumns.contains(name) {
                json += value
            } else {
                json += jsonString(value)
            }
        }
        return json + "}"
    }

    /// `text` as a JSON string (RFC 8259 §7): quotes, backslashes and control characters escaped.
    static func jsonString(_ text: String) -> String {
        var escaped = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x20:
                let digits = String(scalar.value, radix: 16)
                escaped += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }

    /// This near miss's fields, in `nearMissCSVHeader` order.
    public var nearMissCSVFields: [String] { incidentCSVFields + [handshake.outcome.name] }

    /// The RST's own fields and its comparison with the SYN-ACK, from `rst_seq` to `rst_origin`.
    private var resetFields: [String] {
        guard let reset = handshake.reset else { return [String](repeating: "", count: 17) }
        let isIPv6 = handshake.isIPv6
        let fingerprint = reset.fingerprint
        var fields = [
            String(reset.sequenceNumber), reset.flags.text, reset.window.map { String($0) } ?? "",
            fingerprint.options?.text ?? "",
        ]
        let comparison = provenance
        fields += [
            comparison.map { String($0.synAck.hopLimit) } ?? "",
            String(fingerprint.hopLimit),
            comparison.map { String($0.hopLimitDelta) } ?? "",
            isIPv6 ? "" : String(fingerprint.ipID),
            isIPv6 ? "" : (fingerprint.dontFragment ? "1" : "0"),
            handshake.handshakeCompleted ? Self.hex(handshake.ackTrafficClass, digits: 2) : "",
            Self.hex(fingerprint.trafficClass, digits: 2),
            handshake.handshakeCompleted ? comparison.map(\.tosEcho.rawValue) ?? "" : "",
            isIPv6 ? comparison.map { Self.hex($0.synAck.flowLabel, digits: 5) } ?? "" : "",
            isIPv6 ? Self.hex(fingerprint.flowLabel, digits: 5) : "",
            comparison.flatMap { $0.synAck.sourceMAC.map(PacketFingerprint.macText) } ?? "",
            fingerprint.sourceMAC.map(PacketFingerprint.macText) ?? "",
            comparison.map(\.origin.rawValue) ?? "",
        ]
        return fields
    }

    /// The columns of connections.csv (every settled attempt), in order.
    public static let connectionCSVHeader = [
        "syn_time", "synack_time", "ack_time", "end_time", "client_ip", "client_port", "server_ip", "server_port",
        "outcome", "ack_payload_bytes", "syn_retransmits", "synack_retransmits", "server_isn", "hash", "bucket",
        "bucket_if_fewer", "bucket_if_more", "moves_on_churn", "history", "tunnel",
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
        ] + listenerFields + [record.history.description, record.tunnel.text]
    }

    private var listenerFields: [String] {
        [
            Self.hex(hash), String(choice.bucket), choice.ifFewer.map(String.init) ?? "", String(choice.ifMore),
            choice.movesOnChurn ? "1" : "0",
        ]
    }

    /// `0x` and eight lower-case hex digits.
    public static func hex(_ value: UInt32) -> String { hex(value, digits: 8) }

    /// `0x` and at least `digits` lower-case hex digits.
    static func hex<Value: BinaryInteger>(_ value: Value, digits: Int) -> String {
        let text = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
