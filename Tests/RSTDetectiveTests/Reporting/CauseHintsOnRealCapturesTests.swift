import Testing

@testable import RSTDetective

/// The cause hints on the real captures, against how each scenario was made (Tests/Captures/README.md): the
/// server's sysctls, the listener closes its log records, and its TcpExt counters.
@Suite struct CauseHintsOnRealCapturesTests {
    static func hints(_ capture: String) -> [String: Bool] {
        let (result, _) = Fixtures.analyze([Fixtures.path(capture)])
        return Dictionary(uniqueKeysWithValues: CauseHint.hints(result.report).map { ($0.name, $0.holds) })
    }

    /// tcp_abort_on_overflow=1 with a slow acceptor (ListenOverflows counted) and no listener ever closed.
    @Test func acceptQueueOverflow() {
        let hints = Self.hints("accept-overflow.pcap")
        #expect(hints["accept_queue_overflow"] == true)
        #expect(hints["listener_closed"] == false)
        #expect(hints["syncookies"] == false)
        #expect(hints["rst_ip_id_zero"] == true)
    }

    /// Cookies counted by the server (SyncookiesSent 83) show without timestamps, and cannot show with them.
    @Test func syncookies() {
        #expect(Self.hints("syncookie-no-timestamps.pcap")["syncookies"] == true)
        #expect(Self.hints("syncookie-overflow.pcap")["syncookies"] == false)
    }

    /// Listeners closed with two and three children in their accept queues.
    @Test func listenerClosed() {
        let hints = Self.hints("near-misses.pcap")
        #expect(hints["listener_closed"] == true)
        #expect(hints["accept_queue_overflow"] == false)
    }

    /// Linux 6.18's resets, and netfilter's, carry IP ID 0.
    @Test(arguments: ["firewall-reject.pcap", "other-host.pcap", "normal-confounders.pcap", "reuseport-churn.pcap"])
    func resetsOfThisKernelHaveIPID0(_ capture: String) {
        #expect(Self.hints(capture)["rst_ip_id_zero"] == true)
        #expect(Self.hints(capture)["accept_queue_overflow"] == false)
    }
}
