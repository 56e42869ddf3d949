import Testing

@testable import RSTDetective

/// Collects settled attempts.
struct Collector: HandshakeObserver {
    var records: [HandshakeRecord] = []
    mutating func record(_ handshake: HandshakeRecord) { records.append(handshake) }
    var outcomes: [Outcome] { records.map(\.outcome) }
}

/// Drives the tracker with segments of one connection, 10.1.0.1:40000 -> 10.1.0.2:8080, times in µs.
struct Conversation {
    var tracker = HandshakeTracker(configuration: .init(maximumDelayNanos: 1_000_000_000), seed: 42)
    var collector = Collector()
    var clientPort: UInt16 = 40000
    let client = IPAddress(ipv4: 0x0a01_0001)
    let server = IPAddress(ipv4: 0x0a01_0002)

    mutating func client(
        _ micros: Int64, _ flags: TCPFlags, seq: UInt32, ack: UInt32 = 0, payload: Int = 0,
        fingerprint: PacketFingerprint = PacketFingerprint()
    ) {
        tracker.process(
            TCPSegment(
                timestampNanos: micros * 1000, source: client, destination: server, sourcePort: clientPort,
                destinationPort: 8080, isIPv6: false, sequenceNumber: seq, acknowledgmentNumber: ack, flags: flags,
                window: 100, payloadLength: payload, fingerprint: fingerprint), observer: &collector)
    }

    mutating func server(
        _ micros: Int64, _ flags: TCPFlags, seq: UInt32, ack: UInt32 = 0, payload: Int = 0,
        fingerprint: PacketFingerprint = PacketFingerprint()
    ) {
        tracker.process(
            TCPSegment(
                timestampNanos: micros * 1000, source: server, destination: client, sourcePort: 8080,
                destinationPort: clientPort, isIPv6: false, sequenceNumber: seq, acknowledgmentNumber: ack,
                flags: flags, window: 0, payloadLength: payload, fingerprint: fingerprint), observer: &collector)
    }

    /// SYN (ISN 100) at 0, SYN-ACK (ISN 5000) at 100 µs, ACK at 200 µs.
    mutating func handshake(payload: Int = 0) {
        client(0, .syn, seq: 100)
        server(100, [.syn, .ack], seq: 5000, ack: 101)
        client(200, .ack, seq: 101, ack: 5001, payload: payload)
    }

    mutating func finish() -> [Outcome] {
        tracker.finish(observer: &collector)
        return collector.outcomes
    }
}

@Suite struct HandshakeTrackerTests {
    /// A SYN from `source`:`port` to 0.0.0.2:80 at `nanos`.
    static func syn(from source: UInt32, port: UInt16, at nanos: Int64) -> TCPSegment {
        TCPSegment(
            timestampNanos: nanos, source: IPAddress(ipv4: source), destination: IPAddress(ipv4: 2), sourcePort: port,
            destinationPort: 80, isIPv6: false, sequenceNumber: 1, acknowledgmentNumber: 0, flags: .syn, window: 0,
            payloadLength: 0)
    }

    @Test func theSignatureIsAnIncident() throws {
        var conversation = Conversation()
        conversation.handshake(payload: 40)
        conversation.server(250, .ack, seq: 5001, ack: 141)
        conversation.server(300, .rst, seq: 5001)
        let record = try #require(conversation.collector.records.first)
        #expect(conversation.finish() == [.resetAfterHandshake])
        #expect(record.ackPayloadBytes == 40)
        #expect(record.settledTimeNanos - record.ackTimeNanos == 100_000)
        #expect(record.history.description == "ShDar")
        #expect(record.handshakeCompleted)
    }

    @Test func aResetWithTheAckFlagIsAnAbort() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.server(300, [.rst, .ack], seq: 5001, ack: 101)
        #expect(conversation.finish() == [.appAbort])
        #expect(conversation.collector.records.first?.reset?.flags == [.rst, .ack])
    }

    /// A server RST with another sequence number than the SYN-ACK's + 1, and then silence, is `wrongAck`,
    /// with that RST in the record; the client ignored it.
    @Test func aWrongSequenceResetAndSilenceIsWrongAck() throws {
        var conversation = Conversation()
        conversation.handshake()
        conversation.server(300, .rst, seq: 9999)
        #expect(conversation.finish() == [.wrongAck])
        let reset = try #require(conversation.collector.records.first?.reset)
        #expect(reset.sequenceNumber == 9999)
        #expect(reset.timeNanos == 300_000)

        // The server answering an ACK of a wrong number, before any valid ACK: wrongAck at the timeout.
        var wrongAck = Conversation()
        wrongAck.client(0, .syn, seq: 100)
        wrongAck.server(100, [.syn, .ack], seq: 5000, ack: 101)
        wrongAck.client(200, .ack, seq: 101, ack: 10001)
        wrongAck.server(210, .rst, seq: 10001)
        wrongAck.client(61_000_000, .syn, seq: 7)
        #expect(wrongAck.collector.outcomes == [.wrongAck])

        // The proper RST after a stray one is still the incident.
        var incident = Conversation()
        incident.handshake()
        incident.server(300, .rst, seq: 9999)
        incident.server(400, .rst, seq: 5001)
        #expect(incident.finish() == [.resetAfterHandshake])
        #expect(incident.collector.records.first?.reset?.sequenceNumber == 5001)
    }

    /// A SYN-ACK without timestamps that drops the window scale and SACK-permitted its SYN offered looks
    /// like a syncookie; one that keeps them, or a SYN with timestamps, does not.
    @Test func syncookieLikeSynAcks() {
        func synAckLooksLikeCookie(syn: TCPOptionSet, synAck: TCPOptionSet) -> Bool {
            var conversation = Conversation()
            var synFingerprint = PacketFingerprint()
            synFingerprint.options = syn
            var synAckFingerprint = PacketFingerprint()
            synAckFingerprint.options = synAck
            conversation.client(0, .syn, seq: 100, fingerprint: synFingerprint)
            conversation.server(100, [.syn, .ack], seq: 5000, ack: 101, fingerprint: synAckFingerprint)
            _ = conversation.finish()
            return conversation.collector.records.first?.synAckLooksLikeCookie ?? false
        }
        let offered: TCPOptionSet = [.maximumSegmentSize, .windowScale, .sackPermitted]
        #expect(synAckLooksLikeCookie(syn: offered, synAck: .maximumSegmentSize))
        #expect(!synAckLooksLikeCookie(syn: offered, synAck: offered))
        #expect(!synAckLooksLikeCookie(syn: offered.union(.timestamps), synAck: .maximumSegmentSize))
        #expect(!synAckLooksLikeCookie(syn: .maximumSegmentSize, synAck: .maximumSegmentSize))
    }

    /// `awaitingServerAtAck` counts the earlier attempts to the port whose ACK came and whose server has
    /// not spoken: two waiting, then one answered, then the fourth sees two again.
    @Test func handshakesWaitingForTheServerAreCounted() {
        var conversation = Conversation()
        for port: UInt16 in 40001...40003 {
            conversation.clientPort = port
            conversation.handshake()
        }
        conversation.clientPort = 40001
        conversation.server(300, [.ack, .psh], seq: 5001, ack: 101, payload: 10)
        conversation.clientPort = 40004
        conversation.handshake()
        _ = conversation.finish()
        let waiting = Dictionary(
            uniqueKeysWithValues: conversation.collector.records.map { ($0.clientPort, $0.awaitingServerAtAck) })
        #expect(waiting == [40001: 0, 40002: 1, 40003: 2, 40004: 2])
    }

    /// The client ignores it and the connection goes on; the attempt is still a `wrongAck` near miss.
    @Test func aResetWithAnotherSequenceNumberIsIgnored() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.server(300, .rst, seq: 9999)
        conversation.server(400, [.ack, .psh], seq: 5001, ack: 101, payload: 10)
        #expect(conversation.finish() == [.wrongAck])
        #expect(conversation.tracker.counters.ignoredResets == 1)
    }

    @Test func aResetAfterServerDataIsNotAnIncident() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.server(300, .ack, seq: 5001, ack: 101, payload: 10)
        conversation.server(400, .rst, seq: 5011)
        #expect(conversation.finish() == [.completed])
        #expect(conversation.tracker.counters.untrackedResets == 1)
    }

    /// A RST exactly at the maximum delay is late: the attempt completed when the delay ran out.
    @Test func aResetAtTheMaximumDelayIsLate() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.server(200 + 1_000_000, .rst, seq: 5001)
        #expect(conversation.finish() == [.completed])
        var early = Conversation()
        early.handshake()
        early.server(200 + 999_999, .rst, seq: 5001)
        #expect(early.finish() == [.resetAfterHandshake])
    }

    @Test func refusedUnansweredAndAbandoned() {
        var refused = Conversation()
        refused.client(0, .syn, seq: 100)
        refused.server(10, [.rst, .ack], seq: 0, ack: 999)
        refused.server(20, [.rst, .ack], seq: 0, ack: 101)
        #expect(refused.finish() == [.refused])

        var unanswered = Conversation()
        unanswered.client(0, .syn, seq: 100)
        unanswered.client(1_000_000, .syn, seq: 100)
        #expect(unanswered.tracker.counters.synRetransmits == 1)
        unanswered.clientPort = 40001
        unanswered.client(61_000_000, .syn, seq: 7)
        #expect(Set(unanswered.finish()) == [.unanswered, .openAtEnd])

        var abandoned = Conversation()
        abandoned.client(0, .syn, seq: 100)
        abandoned.server(100, [.syn, .ack], seq: 5000, ack: 101)
        abandoned.client(200, .rst, seq: 101)
        #expect(abandoned.finish() == [.abandoned])
    }

    @Test func clientResetResetBeforeAckAndAckDropped() {
        var clientReset = Conversation()
        clientReset.handshake()
        clientReset.client(300, .rst, seq: 101)
        #expect(clientReset.finish() == [.clientReset])

        var beforeAck = Conversation()
        beforeAck.client(0, .syn, seq: 100)
        beforeAck.server(100, [.syn, .ack], seq: 5000, ack: 101)
        beforeAck.server(200, .rst, seq: 5001)
        #expect(beforeAck.finish() == [.resetBeforeAck])

        var dropped = Conversation()
        dropped.handshake()
        dropped.server(500_000, [.syn, .ack], seq: 5000, ack: 101)
        dropped.tracker.finish(at: 2_000_000_000, observer: &dropped.collector)
        #expect(dropped.collector.outcomes == [.ackDropped])
        #expect(dropped.tracker.counters.synAckRetransmits == 1)
    }

    /// A new SYN with a new ISN on the same 4-tuple settles the old attempt; a late RST in the old sequence
    /// space does not touch the new one.
    @Test func aNewISNStartsANewAttempt() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.client(300, .syn, seq: 90_000)
        conversation.server(400, [.syn, .ack], seq: 70_000, ack: 90_001)
        conversation.client(500, .ack, seq: 90_001, ack: 70_001)
        conversation.server(600, .rst, seq: 5001)
        conversation.server(700, .rst, seq: 70_001)
        #expect(conversation.finish() == [.completed, .resetAfterHandshake])
    }

    @Test func sequenceNumbersWrap() {
        var conversation = Conversation()
        conversation.client(0, .syn, seq: .max)
        conversation.server(100, [.syn, .ack], seq: .max, ack: 0)
        conversation.client(200, .ack, seq: 0, ack: 0)
        conversation.server(300, .rst, seq: 0)
        #expect(conversation.finish() == [.resetAfterHandshake])
    }

    /// A Fast Open SYN carries data; the SYN-ACK acknowledges it when the server accepts the cookie.
    @Test func fastOpenSYNAcksAreRecognised() {
        var accepted = Conversation()
        accepted.client(0, .syn, seq: 100, payload: 20)
        accepted.server(100, [.syn, .ack], seq: 5000, ack: 121)
        accepted.client(200, .ack, seq: 121, ack: 5001)
        accepted.server(300, .rst, seq: 5001)
        #expect(accepted.finish() == [.resetAfterHandshake])
        var declined = Conversation()
        declined.client(0, .syn, seq: 100, payload: 20)
        declined.server(100, [.syn, .ack], seq: 5000, ack: 101)
        declined.client(200, .ack, seq: 101, ack: 5001, payload: 20)
        declined.server(300, [.ack], seq: 5001, ack: 121, payload: 5)
        #expect(declined.finish() == [.completed])
    }

    /// A client RST whose sequence number the client never used (a stale RST of an older connection) is
    /// not the client giving up.
    @Test func aClientResetOutsideItsSequenceIsIgnored() {
        var conversation = Conversation()
        conversation.handshake(payload: 10)
        conversation.client(250, .rst, seq: 999_999)
        conversation.server(300, .rst, seq: 5001)
        #expect(conversation.finish() == [.resetAfterHandshake])
        #expect(conversation.tracker.counters.ignoredResets == 1)
        var inWindow = Conversation()
        inWindow.handshake(payload: 10)
        inWindow.client(250, .rst, seq: 111)
        #expect(inWindow.finish() == [.clientReset])
    }

    /// A client segment the capture missed still counts once the server acknowledges it: a client RST after
    /// it is the client's.
    @Test func theServersAckExtendsTheClientsSequence() {
        var conversation = Conversation()
        conversation.handshake(payload: 10)
        conversation.server(250, .ack, seq: 5001, ack: 1111)
        conversation.client(300, .rst, seq: 1111)
        #expect(conversation.finish() == [.clientReset])
    }

    /// Expiry follows the latest timestamp seen, whichever slot the flow sits in: with a timestamp that goes
    /// backwards, every hash seed gives the same outcome.
    @Test func backwardTimestampsGiveOneResultForEverySeed() {
        for seed in UInt64(1)...40 {
            var conversation = Conversation()
            conversation.tracker = HandshakeTracker(configuration: .init(maximumDelayNanos: 1_000_000_000), seed: seed)
            conversation.handshake()
            conversation.clientPort = 40001
            conversation.client(2_000_000, .syn, seq: 1)
            conversation.clientPort = 40000
            conversation.server(500_000, .rst, seq: 5001)
            #expect(conversation.finish().sorted { $0.rawValue < $1.rawValue } == [.completed, .openAtEnd])
        }
    }

    /// A retransmitted SYN answered with a new server ISN: the client's ACK picks the SYN-ACK it answers.
    @Test func theClientsAckChoosesBetweenTwoServerISNs() {
        var conversation = Conversation()
        conversation.client(0, .syn, seq: 100)
        conversation.server(100, [.syn, .ack], seq: 5000, ack: 101)
        conversation.client(1_000_000, .syn, seq: 100)
        conversation.server(1_000_100, [.syn, .ack], seq: 7000, ack: 101)
        conversation.client(1_000_200, .ack, seq: 101, ack: 7001)
        conversation.server(1_000_300, .rst, seq: 7001)
        #expect(conversation.finish() == [.resetAfterHandshake])
        #expect(conversation.collector.records.first?.serverISN == 7000)
    }

    /// Linux retransmits a SYN at 1, 3, 7, 15, 31 and 63 s: the timeout runs from the last one, so the
    /// attempt stays one attempt.
    @Test func synRetransmissionsKeepTheAttemptOpen() {
        var conversation = Conversation()
        for second: Int64 in [0, 1, 3, 7, 15, 31, 63] {
            conversation.client(second * 1_000_000, .syn, seq: 100)
        }
        conversation.server(63_000_100, [.syn, .ack], seq: 5000, ack: 101)
        conversation.client(63_000_200, .ack, seq: 101, ack: 5001)
        conversation.server(63_000_300, .rst, seq: 5001)
        #expect(conversation.finish() == [.resetAfterHandshake])
        #expect(conversation.collector.records.first?.synRetransmits == 6)
    }

    @Test func aFullTableCountsSYNsItCannotTrack() {
        var tracker = HandshakeTracker(configuration: .init(maximumFlows: 2), seed: 1)
        var collector = Collector()
        for port in UInt16(1)...5 {
            tracker.process(Self.syn(from: 1, port: port, at: Int64(port)), observer: &collector)
        }
        #expect(tracker.openHandshakes == 2)
        #expect(tracker.counters.untrackedSYNs == 3)
        #expect(tracker.counters.peakOpenHandshakes == 2)
    }

    /// A full table reclaims expired attempts before it refuses a SYN.
    @Test func aFullTableSweepsBeforeRefusing() {
        var tracker = HandshakeTracker(configuration: .init(handshakeTimeoutNanos: 1_000, maximumFlows: 1), seed: 3)
        var collector = Collector()
        for (index, time) in [Int64(0), 5_000].enumerated() {
            tracker.process(Self.syn(from: 1, port: UInt16(index + 1), at: time), observer: &collector)
        }
        #expect(tracker.counters.untrackedSYNs == 0)
        #expect(collector.outcomes == [.unanswered])
    }

    /// Attempts nobody speaks on again are settled by the sweep as capture time passes, so memory follows
    /// the open handshakes.
    @Test func expiredAttemptsLeaveTheTableWithoutFurtherPackets() {
        var tracker = HandshakeTracker(configuration: .init(handshakeTimeoutNanos: 1_000), seed: 7)
        var collector = Collector()
        for index in 0..<200_000 {
            tracker.process(Self.syn(from: UInt32(index), port: 1, at: Int64(index) * 100), observer: &collector)
        }
        #expect(tracker.tableCapacity == 4096)
        // A SYN every 100 ns, each expiring 1 µs later: ten are open at once, and the sweep, four slots a
        // packet, reaches an expired one within a quarter of the table's 4096 slots in packets.
        #expect((10...1034).contains(tracker.counters.peakOpenHandshakes))
        tracker.finish(observer: &collector)
        #expect(collector.records.count == 200_000)
    }
}
