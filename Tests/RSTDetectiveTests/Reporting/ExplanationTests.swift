import Testing

@testable import RSTDetective

/// Drives a tracker into an `AnalysisReport`, connections from 10.1.0.1 to 10.1.0.2, times in µs.
private struct Clinic {
    var tracker = HandshakeTracker(seed: 7)
    var report = AnalysisReport(bucketModel: ReusePortBucket(listeners: 1))
    let client = IPAddress(ipv4: 0x0a01_0001)
    let server = IPAddress(ipv4: 0x0a01_0002)

    mutating func send(
        _ micros: Int64, fromClient: Bool, clientPort: UInt16, serverPort: UInt16, _ flags: TCPFlags, seq: UInt32,
        ack: UInt32 = 0, payload: Int = 0, fingerprint: PacketFingerprint = PacketFingerprint()
    ) {
        tracker.process(
            TCPSegment(
                timestampNanos: micros * 1000, source: fromClient ? client : server,
                destination: fromClient ? server : client, sourcePort: fromClient ? clientPort : serverPort,
                destinationPort: fromClient ? serverPort : clientPort, isIPv6: false, sequenceNumber: seq,
                acknowledgmentNumber: ack, flags: flags, window: 0, payloadLength: payload, fingerprint: fingerprint),
            observer: &report)
    }

    /// SYN (ISN 100), SYN-ACK (ISN 5000) and ACK from `start`, 100 µs apart.
    mutating func handshake(at start: Int64, clientPort: UInt16, serverPort: UInt16 = 8080) {
        send(start, fromClient: true, clientPort: clientPort, serverPort: serverPort, .syn, seq: 100)
        send(
            start + 100, fromClient: false, clientPort: clientPort, serverPort: serverPort, [.syn, .ack], seq: 5000,
            ack: 101)
        send(start + 200, fromClient: true, clientPort: clientPort, serverPort: serverPort, .ack, seq: 101, ack: 5001)
    }

    /// The server socket's RST+ACK at `micros`.
    mutating func abort(at micros: Int64, clientPort: UInt16, serverPort: UInt16 = 8080) {
        send(
            micros, fromClient: false, clientPort: clientPort, serverPort: serverPort, [.rst, .ack], seq: 5001, ack: 101
        )
    }

    /// The kernel's no-connection RST at `micros`.
    mutating func reset(at micros: Int64, clientPort: UInt16, serverPort: UInt16 = 8080) {
        send(micros, fromClient: false, clientPort: clientPort, serverPort: serverPort, .rst, seq: 5001)
    }
}

@Suite struct NearMissTests {
    /// RST+ACK aborts of one server port within 1 ms of each other are one listener's close; a lone one, one
    /// on another port, or one 2 ms later is an application abort.
    @Test func abortsInABurstOnOnePortAreAListenerClose() {
        var outcomes: [UInt16: Outcome] = [:]
        var clinic = Clinic()
        clinic.report = AnalysisReport(bucketModel: clinic.report.bucketModel) {
            outcomes[$0.handshake.clientPort] = $0.handshake.outcome
        }
        for port: UInt16 in 40001...40006 { clinic.handshake(at: 0, clientPort: port) }
        clinic.handshake(at: 0, clientPort: 40007, serverPort: 9090)
        // A burst of three 20 µs apart, chained: the third is 40 µs from the first.
        clinic.abort(at: 150_000, clientPort: 40001)
        clinic.abort(at: 150_020, clientPort: 40002)
        clinic.abort(at: 150_040, clientPort: 40003)
        // Alone: 2 ms later on the same port; and 0.3 ms after it on another port.
        clinic.abort(at: 152_100, clientPort: 40004)
        clinic.abort(at: 152_400, clientPort: 40007, serverPort: 9090)
        // An incident does not make a burst of an abort next to it.
        clinic.reset(at: 160_000, clientPort: 40005)
        clinic.abort(at: 160_100, clientPort: 40006)
        clinic.tracker.finish(observer: &clinic.report)
        clinic.report.flush()
        #expect(
            outcomes == [
                40001: .listenerClose, 40002: .listenerClose, 40003: .listenerClose, 40004: .appAbort,
                40005: .resetAfterHandshake, 40006: .appAbort, 40007: .appAbort,
            ])
        #expect(clinic.report.count(of: .listenerClose) == 3)
        #expect(clinic.report.count(of: .appAbort) == 3)
        #expect(Outcome.allCases.filter(\.isNearMiss) == [.wrongAck, .listenerClose, .appAbort, .refused])
    }

    /// Incidents within 5 ms of each other on one port make a burst from the third (summary.csv counts them).
    @Test func incidentBurstsAreCounted() throws {
        var clinic = Clinic()
        for index in 0..<6 { clinic.handshake(at: 0, clientPort: 41000 + UInt16(index)) }
        clinic.handshake(at: 0, clientPort: 41010, serverPort: 9090)
        // Four on 8080 4 ms apart (one burst of 4), then one 6 ms later (a new run), one on 9090 between.
        for (index, time) in [100_000, 104_000, 108_000, 112_000, 118_000].enumerated() {
            clinic.reset(at: Int64(time), clientPort: 41000 + UInt16(index))
        }
        clinic.reset(at: 105_000, clientPort: 41010, serverPort: 9090)
        clinic.tracker.finish(observer: &clinic.report)
        clinic.report.flush()
        let evidence = clinic.report.evidence
        #expect(evidence.bursts == 1)
        #expect(evidence.incidentsInBursts == 4)
        #expect(evidence.largestBurst?.length == 4)
        #expect(evidence.largestBurst?.serverPort == 8080)

        // One incident after a SYN retransmission is no share to speak of.
        var single = Clinic()
        single.send(0, fromClient: true, clientPort: 43000, serverPort: 8080, .syn, seq: 100)
        single.handshake(at: 1_000_000, clientPort: 43000)
        single.reset(at: 1_100_000, clientPort: 43000)
        single.tracker.finish(observer: &single.report)
        #expect(single.report.evidence.incidentsAfterRetransmit == 1)

        var quiet = Clinic()
        quiet.handshake(at: 0, clientPort: 42000)
        quiet.reset(at: 100_000, clientPort: 42000)
        quiet.tracker.finish(observer: &quiet.report)
        #expect(CauseHint.hints(quiet.report).allSatisfy { $0.name == "rst_ip_id_zero" || !$0.holds })
    }
}

extension NearMissTests {
    /// A SYN-ACK that drops the options its SYN offered without timestamps makes the syncookie hint hold.
    @Test func cookieLikeSynAcksMakeTheSyncookieHintHold() throws {
        var clinic = Clinic()
        var syn = PacketFingerprint()
        syn.options = [.maximumSegmentSize, .windowScale, .sackPermitted]
        var cookie = PacketFingerprint()
        cookie.options = .maximumSegmentSize
        clinic.send(0, fromClient: true, clientPort: 44000, serverPort: 8080, .syn, seq: 100, fingerprint: syn)
        clinic.send(
            100, fromClient: false, clientPort: 44000, serverPort: 8080, [.syn, .ack], seq: 5000, ack: 101,
            fingerprint: cookie)
        clinic.handshake(at: 1000, clientPort: 44001)
        clinic.tracker.finish(observer: &clinic.report)
        let hint = try #require(CauseHint.hints(clinic.report).first { $0.name == "syncookies" })
        #expect(hint.holds)
        #expect(hint.evidence.hasPrefix("1 of 2 SYN-ACKs"))
    }
}

extension NearMissTests {
    /// Incidents only on the 4-tuples that move when a listener is added or removed make the churn hint
    /// hold; incidents spread like the handshakes do not.
    @Test func incidentsOnMovingTuplesMakeTheChurnHintHold() throws {
        // The group of 4.6 and later moves about half the 4-tuples; the 3.9–4.3 walk nearly all, which leaves
        // a concentration little room to show.
        let model = ReusePortBucket(listeners: 4, secret: 0x1234_5678)
        func churnHint(incidentOn: (UInt16, Bool) -> Bool) throws -> CauseHint {
            var clinic = Clinic()
            clinic.report = AnalysisReport(bucketModel: model)
            var time: Int64 = 0
            for port: UInt16 in 20000..<20400 {
                let moves = model.choice(
                    forHash: model.hash(
                        client: clinic.client, clientPort: port, server: clinic.server, serverPort: 8080,
                        isIPv6: false)
                ).movesOnChurn
                clinic.handshake(at: time, clientPort: port)
                if incidentOn(port, moves) {
                    clinic.reset(at: time + 300, clientPort: port)
                } else {
                    clinic.send(
                        time + 300, fromClient: false, clientPort: port, serverPort: 8080, [.ack, .psh], seq: 5001,
                        ack: 101, payload: 10)
                }
                time += 10_000
            }
            clinic.tracker.finish(observer: &clinic.report)
            return try #require(CauseHint.hints(clinic.report).first { $0.name == "reuseport_churn" })
        }
        var moving = 0
        let concentrated = try churnHint { _, moves in
            guard moves, moving < 40 else { return false }
            moving += 1
            return true
        }
        #expect(concentrated.holds, "\(concentrated.evidence)")
        #expect(concentrated.evidence.hasPrefix("40 of 40 incidents (100.0%)"))
        let spread = try churnHint { port, _ in port % 10 == 0 }
        #expect(!spread.holds, "\(spread.evidence)")
        #expect(try !churnHint { _, _ in false }.holds)
    }
}

@Suite struct ProvenanceTests {
    /// A record of the signature whose SYN-ACK, ACK and RST carry the given fields.
    static func provenance(
        synAck: PacketFingerprint = PacketFingerprint(), ackTOS: UInt8 = 0, reset: PacketFingerprint,
        isIPv6: Bool = false
    ) throws -> Provenance {
        var records = Collector()
        var tracker = HandshakeTracker(seed: 1)
        let client = IPAddress(ipv4: 1)
        let server = IPAddress(ipv4: 2)
        var ack = PacketFingerprint()
        ack.trafficClass = ackTOS
        let segments: [(Bool, TCPFlags, UInt32, UInt32, PacketFingerprint)] = [
            (true, .syn, 100, 0, PacketFingerprint()), (false, [.syn, .ack], 5000, 101, synAck),
            (true, .ack, 101, 5001, ack), (false, .rst, 5001, 0, reset),
        ]
        for (index, (fromClient, flags, seq, acknowledgment, fingerprint)) in segments.enumerated() {
            tracker.process(
                TCPSegment(
                    timestampNanos: Int64(index) * 1000, source: fromClient ? client : server,
                    destination: fromClient ? server : client, sourcePort: fromClient ? 40000 : 80,
                    destinationPort: fromClient ? 80 : 40000, isIPv6: false, sequenceNumber: seq,
                    acknowledgmentNumber: acknowledgment, flags: flags, window: 0, payloadLength: 0,
                    fingerprint: fingerprint), observer: &records)
        }
        var record = try #require(records.records.first)
        #expect(record.outcome == .resetAfterHandshake)
        record.isIPv6 = isIPv6
        return try #require(Provenance(record))
    }

    static func fingerprint(
        hopLimit: UInt8 = 64, tos: UInt8 = 0, ipID: UInt16 = 0, flowLabel: UInt32 = 0, mac: UInt64? = 0x0200_0000_0002
    ) -> PacketFingerprint {
        var fingerprint = PacketFingerprint()
        fingerprint.hopLimit = hopLimit
        fingerprint.trafficClass = tos
        fingerprint.ipID = ipID
        fingerprint.dontFragment = true
        fingerprint.flowLabel = flowLabel
        fingerprint.sourceMAC = mac
        return fingerprint
    }

    @Test func theServerKernelsOwnReplyIsSameStackWhereItShows() throws {
        // IPv4, DSCP 0, IP ID 0: the stack and a REJECT on the server look the same.
        let plain = try Self.provenance(synAck: Self.fingerprint(ipID: 0), reset: Self.fingerprint())
        #expect(plain.origin == .sameHost)
        #expect(plain.tosEcho == .notVisible)
        #expect(plain.hopLimitDelta == 0)
        #expect(plain.sourceMACDiffers == false)
        // Linux 6.x echoes the DSCP and clears ECN.
        let echoed = try Self.provenance(
            synAck: Self.fingerprint(), ackTOS: 0x22, reset: Self.fingerprint(tos: 0x20))
        #expect(echoed.tosEcho == .echoed)
        #expect(echoed.origin == .sameStack)
        let labelled = try Self.provenance(
            synAck: Self.fingerprint(flowLabel: 0x12345), reset: Self.fingerprint(flowLabel: 0xabcde), isIPv6: true)
        #expect(labelled.origin == .sameStack)
        // No link layer on one side: nothing to compare, nothing concluded from it.
        let cooked = try Self.provenance(synAck: Self.fingerprint(mac: nil), reset: Self.fingerprint(ipID: 9))
        #expect(cooked.sourceMACDiffers == nil)
        #expect(cooked.origin == .sameStack)
        // A non-zero IP ID is a kernel before 4.20, never netfilter.
        let hashed = try Self.provenance(synAck: Self.fingerprint(), reset: Self.fingerprint(ipID: 0x5a5a))
        #expect(hashed.origin == .sameStack)
    }

    @Test func anotherTTLOrMACIsAnotherHost() throws {
        let hop = try Self.provenance(synAck: Self.fingerprint(), reset: Self.fingerprint(hopLimit: 63))
        #expect(hop.hopLimitDelta == 1)
        #expect(hop.origin == .otherHost)
        let mac = try Self.provenance(synAck: Self.fingerprint(), reset: Self.fingerprint(mac: 0x0200_0000_0099))
        #expect(mac.sourceMACDiffers == true)
        #expect(mac.origin == .otherHost)
        // Even with the TOS not echoed, a different TTL is another host first.
        let both = try Self.provenance(
            synAck: Self.fingerprint(), ackTOS: 0x20, reset: Self.fingerprint(hopLimit: 60))
        #expect(both.origin == .otherHost)
        // Not echoed with a non-zero IP ID: neither the modern stack nor netfilter.
        let counted = try Self.provenance(
            synAck: Self.fingerprint(), ackTOS: 0x20, reset: Self.fingerprint(ipID: 4242))
        #expect(counted.origin == .otherHost)
    }

    @Test func aResetThatDropsTheTOSOrFlowLabelIsFirewallLike() throws {
        let reject = try Self.provenance(synAck: Self.fingerprint(), ackTOS: 0x20, reset: Self.fingerprint())
        #expect(reject.tosEcho == .notEchoed)
        #expect(reject.origin == .firewallLike)
        let reject6 = try Self.provenance(
            synAck: Self.fingerprint(flowLabel: 0x12345), reset: Self.fingerprint(flowLabel: 0), isIPv6: true)
        #expect(reject6.flowLabelDropped)
        #expect(reject6.origin == .firewallLike)
        // Without a flow label on the SYN-ACK, none on the RST says nothing.
        let unlabelled = try Self.provenance(synAck: Self.fingerprint(), reset: Self.fingerprint(), isIPv6: true)
        #expect(unlabelled.origin == .sameHost)
    }
}
