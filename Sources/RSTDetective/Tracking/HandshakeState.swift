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
    /// Still open, but the segment is the first server RST with the wrong sequence number, which the
    /// reports show if the attempt ends as `wrongAck`.
    case strayReset
}

/// The SYN-ACK's fields a RST is compared with, kept small: the flow table holds one per open handshake.
struct SynAckFields {
    /// The link-layer source with bit 63 set, or 0 for none (an optional would take 8 bytes more).
    private var taggedSourceMAC: UInt64 = 0
    private var flowLabel: UInt32 = 0
    private var hopLimit: UInt8 = 0

    init() {}

    init(_ fingerprint: PacketFingerprint) {
        taggedSourceMAC = fingerprint.sourceMAC.map { $0 | 1 << 63 } ?? 0
        flowLabel = fingerprint.flowLabel
        hopLimit = fingerprint.hopLimit
    }

    /// A fingerprint with these fields, the others zero.
    var fingerprint: PacketFingerprint {
        var fingerprint = PacketFingerprint()
        fingerprint.sourceMAC = taggedSourceMAC == 0 ? nil : taggedSourceMAC & 0xffff_ffff_ffff
        fingerprint.flowLabel = flowLabel
        fingerprint.hopLimit = hopLimit
        return fingerprint
    }
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
    /// One past the last sequence number the client has been seen to use: a client RST is believed only
    /// at or below it.
    var clientNextSequence: UInt32
    var serverISN: UInt32 = 0
    /// A second server ISN, when another SYN-ACK with a new sequence number answered the same SYN (a
    /// retransmitted SYN answered by another listener, or a syncookie); the client's ACK decides which.
    var alternateServerISN: UInt32?
    /// Payload bytes of the segment that completed the handshake (0 for a pure ACK).
    var ackPayloadBytes: UInt32 = 0
    /// The TCP options of the client's SYN; nil when the snap length cut them.
    var synOptions: TCPOptionSet?
    /// Whether the SYN-ACK looks like a Linux syncookie: one without timestamps cannot carry the window
    /// scale or SACK-permitted option the SYN offered, because the cookie in the sequence number has no
    /// room for them (with timestamps, the cookie encodes them in the timestamp and nothing shows).
    var synAckLooksLikeCookie = false
    /// The SYN-ACK's fields that its connection's RST is compared with (`Provenance`).
    var synAck = SynAckFields()
    /// The TOS or traffic class of the client's handshake ACK, which the kernel's RST echoes.
    var ackTrafficClass: UInt8 = 0
    /// Attempts of the same server port that were waiting for the server when the handshake ACK came.
    var awaitingServerAtAck: UInt32 = 0
    /// This attempt's place in the tracker's `AcceptQueueGauge`.
    var acceptQueueToken: UInt32 = 0
    /// Whether a server RST with a sequence number other than the SYN-ACK's + 1 came, which makes the attempt
    /// `wrongAck` unless it ends as an incident; the tracker keeps that RST aside (it is rare, and the state
    /// stays small).
    var hasStrayReset = false
    var synRetransmits: UInt16 = 0
    var synAckRetransmits: UInt16 = 0
    var synTimeNanos: Int64
    var synAckTimeNanos: Int64 = 0
    var ackTimeNanos: Int64 = 0
    /// Capture time at which the current phase runs out: the handshake timeout after the last SYN or
    /// SYN-ACK (an inactivity timeout, so that a client still retransmitting is not given up on), or the
    /// maximum delay after the handshake ACK.
    var deadlineNanos: Int64
    var history = History()
    /// Whether the client's SYN came through a tunnel, whose path the tracker keeps aside (it is rare, and the
    /// state stays small); the flow key holds the tunnel's tenant.
    var hasTunnel: Bool

    /// A new attempt from the client's SYN.
    init(syn: TCPSegment, clientIsLower: Bool, handshakeTimeoutNanos: Int64) {
        self.clientIsLower = clientIsLower
        self.isIPv6 = syn.isIPv6
        self.clientISN = syn.sequenceNumber
        self.synPayloadBytes = UInt32(clamping: syn.payloadLength)
        self.synOptions = syn.fingerprint.options
        self.clientNextSequence = syn.sequenceNumber &+ 1 &+ UInt32(clamping: syn.payloadLength)
        self.synTimeNanos = syn.timestampNanos
        self.hasTunnel = !syn.tunnel.isEmpty
        self.deadlineNanos = syn.timestampNanos &+ handshakeTimeoutNanos
        history.record(syn.flags, hasPayload: syn.payloadLength > 0, fromClient: true)
    }

    /// The outcome when the deadline passes, or when the attempt is superseded, with nothing else seen.
    var timeoutOutcome: Outcome {
        if hasStrayReset { return .wrongAck }
        switch phase {
        case .synSent: return .unanswered
        case .synAckReceived: return .abandoned
        case .established: return synAckRetransmittedAfterAck ? .ackDropped : .completed
        }
    }

    /// The outcome when the capture ends before the deadline.
    var openAtEndOutcome: Outcome { hasStrayReset ? .wrongAck : .openAtEnd }

    /// `synAckLooksLikeCookie` for a SYN-ACK with `options` answering a SYN with `synOptions`.
    private func looksLikeCookie(_ options: TCPOptionSet?) -> Bool {
        // Options the snap length cut tell nothing either way.
        guard let synOptions, let options else { return false }
        let offered: TCPOptionSet = [.windowScale, .sackPermitted]
        return synOptions.isSuperset(of: offered) && !synOptions.contains(.timestamps)
            && options.isDisjoint(with: offered.union(.timestamps)) && options.contains(.maximumSegmentSize)
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
                // RFC 9293 §3.10.7.4: a RST outside what the client has sent is not this connection's.
                guard isWithinClientSequence(segment.sequenceNumber) else {
                    counters.ignoredResets += 1
                    return .unchanged
                }
                if hasStrayReset { return .settled(.wrongAck) }
                switch phase {
                case .synSent: return .settled(.unanswered)
                case .synAckReceived: return .settled(.abandoned)
                case .established: return .settled(.clientReset)
                }
            }
            if flags.contains(.syn) {
                guard !flags.contains(.ack) else { return .unchanged }
                guard segment.sequenceNumber == clientISN else { return .restarted }
                synRetransmits &+= 1
                counters.synRetransmits += 1
                if phase != .established { deadlineNanos = now &+ configuration.handshakeTimeoutNanos }
                return .unchanged
            }
            if isWithinClientSequence(segment.sequenceNumber) {
                let end =
                    segment.sequenceNumber &+ UInt32(clamping: segment.payloadLength)
                    &+ (flags.contains(.fin) ? 1 : 0)
                if Int32(bitPattern: end &- clientNextSequence) > 0 { clientNextSequence = end }
            }
            if flags.contains(.ack), phase == .synAckReceived {
                if segment.acknowledgmentNumber != serverISN &+ 1, let alternate = alternateServerISN,
                    segment.acknowledgmentNumber == alternate &+ 1
                {
                    serverISN = alternate
                }
                if segment.acknowledgmentNumber == serverISN &+ 1 {
                    phase = .established
                    ackTimeNanos = now
                    ackPayloadBytes = UInt32(clamping: segment.payloadLength)
                    ackTrafficClass = segment.fingerprint.trafficClass
                    deadlineNanos = now &+ configuration.maximumDelayNanos
                }
            }
            return .unchanged
        }
        if flags.contains(.ack), phase == .established {
            // What the server acknowledges the client has sent, even if the capture missed that segment.
            let acknowledged = segment.acknowledgmentNumber
            let ahead = acknowledged &- clientNextSequence
            if Int32(bitPattern: ahead) > 0, ahead < 1 << 30 { clientNextSequence = acknowledged }
        }
        if flags.contains(.rst) {
            switch phase {
            case .synSent where flags.contains(.ack) && acknowledgesSYN(segment.acknowledgmentNumber):
                return .settled(.refused)
            case .synAckReceived where segment.sequenceNumber == serverISN &+ 1:
                return .settled(.resetBeforeAck)
            case .established where segment.sequenceNumber == serverISN &+ 1:
                return .settled(flags.contains(.ack) ? .appAbort : .resetAfterHandshake)
            case .synAckReceived, .established:
                // Not the reply to the handshake ACK (RFC 9293 §3.10.7.1 would give it that ACK's number):
                // the answer to an ACK of something else, or a RST from elsewhere. The client ignores it.
                counters.ignoredResets += 1
                guard !hasStrayReset else { return .unchanged }
                hasStrayReset = true
                return .strayReset
            case .synSent:
                counters.ignoredResets += 1
                return .unchanged
            }
        }
        if flags.contains(.syn) {
            guard flags.contains(.ack), acknowledgesSYN(segment.acknowledgmentNumber) else { return .unchanged }
            let sequence = segment.sequenceNumber
            switch phase {
            case .synSent:
                phase = .synAckReceived
                serverISN = sequence
                synAckTimeNanos = now
                synAck = SynAckFields(segment.fingerprint)
                synAckLooksLikeCookie = looksLikeCookie(segment.fingerprint.options)
                deadlineNanos = now &+ configuration.handshakeTimeoutNanos
            case .synAckReceived:
                if sequence != serverISN, sequence != alternateServerISN {
                    alternateServerISN = sequence
                } else {
                    synAckRetransmits &+= 1
                    counters.synAckRetransmits += 1
                }
                deadlineNanos = now &+ configuration.handshakeTimeoutNanos
            case .established:
                guard sequence == serverISN else { return .unchanged }
                synAckRetransmits &+= 1
                counters.synAckRetransmits += 1
                synAckRetransmittedAfterAck = true
            }
            return .unchanged
        }
        if phase == .established, segment.payloadLength > 0 || flags.contains(.fin) {
            return .settled(hasStrayReset ? .wrongAck : .completed)
        }
        return .unchanged
    }

    /// Whether `acknowledgment` acknowledges the client's SYN: its sequence number plus one, or, with TCP
    /// Fast Open data the server accepted, plus the data too (RFC 7413 §4.2).
    private func acknowledgesSYN(_ acknowledgment: UInt32) -> Bool {
        acknowledgment == clientISN &+ 1 || acknowledgment == clientISN &+ 1 &+ synPayloadBytes
    }

    /// Whether `sequence` lies in [client ISN + 1, the client's next sequence number], modulo 2^32.
    private func isWithinClientSequence(_ sequence: UInt32) -> Bool {
        let first = clientISN &+ 1
        return sequence &- first <= clientNextSequence &- first
    }
}

/// A server RST as the reports describe it.
public struct ResetSegment: Sendable, Equatable {
    public var timeNanos: Int64
    public var sequenceNumber: UInt32
    public var acknowledgmentNumber: UInt32
    public var flags: TCPFlags
    /// nil when the snap length cut the header before it.
    public var window: UInt16?
    public var fingerprint: PacketFingerprint

    public init(_ segment: TCPSegment) {
        timeNanos = segment.timestampNanos
        sequenceNumber = segment.sequenceNumber
        acknowledgmentNumber = segment.acknowledgmentNumber
        flags = segment.flags
        window = segment.window
        fingerprint = segment.fingerprint
    }
}
