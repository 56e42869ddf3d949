import Testing

@testable import RSTDetective

/// The causes and hints on the real captures, against how each scenario was made (Tests/Captures/README.md):
/// the server's sysctls, the listener closes its log records, and its TcpExt counters.
@Suite struct CauseHintsOnRealCapturesTests {
    static func hints(_ capture: String) -> [String: Bool] {
        let (result, _) = Fixtures.analyze([Fixtures.path(capture)])
        return Dictionary(uniqueKeysWithValues: CauseHint.hints(result.report).map { ($0.name, $0.holds) })
    }

    /// Incidents per cause name, and each server port's verdict.
    static func causes(_ capture: String) -> (incidents: [String: Int], ports: [UInt16: String]) {
        let (result, incidents) = Fixtures.analyze([Fixtures.path(capture)])
        var counts: [String: Int] = [:]
        for incident in incidents { counts[incident.cause?.name ?? "none", default: 0] += 1 }
        return (counts, result.report.causeVerdicts.mapValues(\.cause))
    }

    /// tcp_abort_on_overflow=1 with a slow acceptor (ListenOverflows 16, the incidents) and no listener ever
    /// closed.
    @Test func acceptQueueOverflow() {
        let causes = Self.causes("accept-overflow.pcap")
        #expect(causes.incidents == ["accept_queue_overflow": 16])
        #expect(causes.ports == [8080: "accept_queue_overflow"])
        let hints = Self.hints("accept-overflow.pcap")
        #expect(hints["syncookies"] == false)
        #expect(hints["rst_ip_id_zero"] == true)
    }

    /// A churner closing one listener of four every 50-100 ms on Linux 6.18 (tcp_abort_on_overflow=0, so
    /// no overflow resets): each incident was in flight to a listener that closed. At least 95% are named so,
    /// and none an overflow.
    @Test func listenersClosedByTheChurner() {
        let causes = Self.causes("reuseport-churn.pcap")
        #expect(causes.incidents["listener_closed", default: 0] >= 33)
        #expect(causes.incidents["accept_queue_overflow"] == nil)
        #expect(causes.ports == [8080: "listener_closed"])
    }

    /// The same capture modelled as Linux 4.0 with four listeners: the moving 4-tuples are reuseport churn.
    @Test func reusePortChurnOnOldKernels() throws {
        let model = try ReusePortBucket(kernel: #require(KernelVersion("4.0")), listeners: 4)
        let (result, incidents) = Fixtures.analyze(
            [Fixtures.path("reuseport-churn.pcap")], options: AnalysisOptions(bucketModel: model))
        for incident in incidents {
            #expect((incident.cause == .reusePortChurn) == incident.choice.movesOnChurn)
        }
        #expect(result.report.causeVerdicts[8080]?.count(of: .reusePortChurn) ?? 0 > 0)
    }

    /// Listeners closed (or closed and reopened) between SYN-ACK and a deferred ACK on 8086; on 8090 a
    /// netfilter REJECT, and in other-host another host, sent the RSTs: no listener cause for those.
    @Test(
        arguments: [
            (
                "firewall-reject.pcap", ["listener_closed": 4, "unknown": 8],
                [8086: "listener_closed", 8090: "unknown"]
            ),
            ("other-host.pcap", ["listener_closed": 3, "unknown": 8], [8086: "listener_closed", 8080: "unknown"]),
            ("any-sll2.pcap", ["listener_closed": 2], [8086: "listener_closed"]),
            ("nanosecond.pcap", ["listener_closed": 2], [8086: "listener_closed"]),
        ] as [(String, [String: Int], [UInt16: String])])
    func listenerClosed(_ capture: String, _ incidents: [String: Int], _ ports: [UInt16: String]) {
        let causes = Self.causes(capture)
        #expect(causes.incidents == incidents)
        #expect(causes.ports == ports)
    }

    /// tcp_abort_on_overflow=0: the same overload drops handshake ACKs instead of resetting them, and the
    /// port's evidence says so.
    @Test func overflowWithoutResets() {
        let (result, incidents) = Fixtures.analyze([Fixtures.path("syncookie-overflow.pcap")])
        #expect(incidents.isEmpty)
        let verdict = result.report.causeVerdicts[8080]
        #expect(verdict?.cause == "")
        #expect(verdict?.droppedACKs ?? 0 > 0)
        #expect(verdict?.evidence.contains("tcp_abort_on_overflow=0") == true)
    }

    /// Cookies counted by the server (SyncookiesSent 83) show without timestamps, and cannot show with them.
    @Test func syncookies() {
        #expect(Self.hints("syncookie-no-timestamps.pcap")["syncookies"] == true)
        #expect(Self.hints("syncookie-overflow.pcap")["syncookies"] == false)
    }

    /// Near misses only: no incident, so no cause.
    @Test func nearMissesHaveNoCause() {
        #expect(Self.causes("near-misses.pcap").incidents.isEmpty)
    }

    /// Linux 6.18's resets, and netfilter's, carry IP ID 0.
    @Test(arguments: ["firewall-reject.pcap", "other-host.pcap", "normal-confounders.pcap", "reuseport-churn.pcap"])
    func resetsOfThisKernelHaveIPID0(_ capture: String) {
        #expect(Self.hints(capture)["rst_ip_id_zero"] == true)
    }
}
