/// Where a tracked connection attempt stands.
enum HandshakePhase: UInt8 {
    /// The client's SYN was seen.
    case synSent
    /// The server's SYN-ACK acknowledging that SYN was seen.
    case synAckReceived
    /// The client acknowledged the SYN-ACK; the server's answer is awaited until the maximum delay.
    case established
}

/// What a segment did to a tracked attempt.
enum HandshakeTransition {
    /// Still open.
    case unchanged
    /// The outcome is known; the attempt leaves the table.
    case settled(Outcome)
    /// The client sent a SYN with a new sequence number on the same 4-tuple: a new attempt replaces this
    /// one (Zeek's connection reuse).
    case restarted
}

/// The state of one connection attempt, from the client's SYN until its outcome is settled.
struct HandshakeState {
    var phase = HandshakePhase.synSent
    /// Whether the client is the lower endpoint of the flow key.
    var clientIsLower: Bool
    var isIPv6: Bool
    var synAckRetransmittedAfterAck = false
    var clientISN: UInt32
    /// Payload of the SYN (TCP Fast Open data), which a SYN-ACK or a refusal may acknowledge too.
    var synPayloadBytes: UInt32
    var serverISN: UInt32 = 0
    /// Payload bytes of the segment that completed the handshake (0 for a pure ACK).
    var ackPayloadBytes: UInt32 = 0
    var synRetransmits: UInt16 = 0
    var synAckRetransmits: UInt16 = 0
    var synTimeNanos: Int64
    var synAckTimeNanos: Int64 = 0
    var ackTimeNanos: Int64 = 0
    /// Capture time at which the current phase runs out.
    var deadlineNanos: Int64
    var history = History()

    /// A new attempt from the client's SYN.
    init(syn: TCPSegment, clientIsLower: Bool, handshakeTimeoutNanos: Int64) {
        self.clientIsLower = clientIsLower
        self.isIPv6 = syn.isIPv6
        self.clientISN = syn.sequenceNumber
        self.synPayloadBytes = UInt32(clamping: syn.payloadLength)
        self.synTimeNanos = syn.timestampNanos
        self.deadlineNanos = syn.timestampNanos &+ handshakeTimeoutNanos
        history.record(syn.flags, hasPayload: syn.payloadLength > 0, fromClient: true)
    }

    /// The outcome when the deadline passes, or when the attempt is superseded, with nothing else seen.
    var timeoutOutcome: Outcome {
        switch phase {
        case .synSent: .unanswered
        case .synAckReceived: .abandoned
        case .established: synAckRetransmittedAfterAck ? .ackDropped : .completed
        }
    }

    /// Applies one segment of this connection; every transition of the state machine is here.
    ///
    /// Sequence numbers decide: a SYN-ACK must acknowledge the client's SYN, the handshake ACK must
    /// acknowledge the SYN-ACK, and a server RST counts only if its sequence number is the one the client
    /// expects next (server ISN + 1), which is also the only value that resets the client (RFC 5961 §3.2).
    mutating func advance(
        with segment: TCPSegment, fromClient: Bool, configuration: HandshakeTracker.Configuration,
        counters: inout TrackerCounters
    ) -> HandshakeTransition {
        let flags = segment.flags
        let now = segment.timestampNanos
        history.record(flags, hasPayload: segment.payloadLength > 0, fromClient: fromClient)
        if fromClient {
            if flags.contains(.rst) {
                return .settled(phase == .established ? .clientReset : .abandoned)
            }
            if flags.contains(.syn) {
                guard !flags.contains(.ack) else { return .unchanged }
                guard segment.sequenceNumber == clientISN else { return .restarted }
                synRetransmits &+= 1
                counters.synRetransmits += 1
                return .unchanged
            }
            if flags.contains(.ack), phase == .synAckReceived, segment.acknowledgmentNumber == serverISN &+ 1 {
                phase = .established
                ackTimeNanos = now
                ackPayloadBytes = UInt32(clamping: segment.payloadLength)
                deadlineNanos = now &+ configuration.maximumDelayNanos
            }
            return .unchanged
        }
        if flags.contains(.rst) {
            switch phase {
            case .synSent where flags.contains(.ack) && acknowledgesSYN(segment.acknowledgmentNumber):
                return .settled(.refused)
            case .synAckReceived where segment.sequenceNumber == serverISN &+ 1:
                return .settled(.resetBeforeAck)
            case .established where segment.sequenceNumber == serverISN &+ 1:
                return .settled(flags.contains(.ack) ? .abortedAfterHandshake : .resetAfterHandshake)
            default:
                counters.ignoredResets += 1
                return .unchanged
            }
        }
        if flags.contains(.syn) {
            guard flags.contains(.ack), acknowledgesSYN(segment.acknowledgmentNumber) else { return .unchanged }
            if phase == .synSent {
                phase = .synAckReceived
                serverISN = segment.sequenceNumber
                synAckTimeNanos = now
                deadlineNanos = now &+ configuration.handshakeTimeoutNanos
            } else if segment.sequenceNumber == serverISN {
                synAckRetransmits &+= 1
                counters.synAckRetransmits += 1
                if phase == .established { synAckRetransmittedAfterAck = true }
            }
            return .unchanged
        }
        if phase == .established, segment.payloadLength > 0 || flags.contains(.fin) {
            return .settled(.completed)
        }
        return .unchanged
    }

    /// Whether `acknowledgment` acknowledges the client's SYN: its sequence number plus one, or, with TCP
    /// Fast Open data the server accepted, plus the data too (RFC 7413 §4.2).
    private func acknowledgesSYN(_ acknowledgment: UInt32) -> Bool {
        acknowledgment == clientISN &+ 1 || acknowledgment == clientISN &+ 1 &+ synPayloadBytes
    }
}
