/// Where a RST came from, judged from its headers against the SYN-ACK of the same connection.
public enum ResetOrigin: String, CaseIterable, Sendable {
    /// The server kernel's own reply: same TTL or hop limit and link-layer source as the SYN-ACK, and a
    /// mark netfilter never leaves: the client's DSCP echoed, an IPv6 flow label, or a non-zero IPv4 ID.
    case sameStack = "same-stack"
    /// The server host, its stack or a netfilter REJECT on it: same TTL and link-layer source, and
    /// nothing to tell the two apart (an IPv4 RST with IP ID 0 answering an ACK with DSCP 0, or IPv6
    /// without flow labels or DSCP).
    case sameHost = "same-host"
    /// Another machine sent it: the TTL or hop limit, or the link-layer source, differs from the SYN-ACK's
    /// (a load balancer or another ECMP path answered the ACK, or a middlebox).
    case otherHost = "other-host"
    /// A netfilter REJECT `tcp-reset` on the path or on the server: it sends TOS 0 (IPv4: IP ID 0 and DF)
    /// and no IPv6 flow label, where the kernel echoes the client's DSCP and labels its flows.
    case firewallLike = "firewall-like"

    /// The name of this verdict's counter in summary.csv.
    public var metricName: String { "rst_origin_" + String(rawValue.map { $0 == "-" ? "_" : $0 }) }
}

/// Whether a RST carries the DSCP of the segment it answers, as the Linux stack's reply does.
public enum TOSEcho: String, Sendable {
    case echoed = "yes"
    case notEchoed = "no"
    /// The client's ACK had DSCP 0, so an echo and a zero look the same.
    case notVisible = "n/a"
}

/// A server RST compared with the SYN-ACK of its connection: the provenance fingerprint of an incident.
///
/// The rules, in order (the README gives them with the kernel facts behind them):
/// 1. `other-host` when the RST's TTL or hop limit differs from the SYN-ACK's, or both frames carry a
///    link-layer source and they differ; also when the client's DSCP is not echoed and an IPv4 RST has a
///    non-zero IP ID, which neither the modern stack nor netfilter sends.
/// 2. `firewall-like` when the client's DSCP is not echoed, or an IPv6 RST has no flow label where the
///    SYN-ACK had one.
/// 3. `same-stack` when the client's DSCP is echoed, the IPv6 RST has a flow label, or the IPv4 RST a
///    non-zero IP ID (a kernel before 4.20).
/// 4. `same-host` otherwise: a REJECT on the server itself would look the same.
public struct Provenance: Sendable, Equatable {
    public var synAck: PacketFingerprint
    public var reset: ResetSegment
    public var isIPv6: Bool
    public var ackTrafficClass: UInt8

    /// The comparison for an attempt with both a SYN-ACK and a server RST, or nil.
    public init?(_ record: HandshakeRecord) {
        guard let reset = record.reset, record.synAckTimeNanos != 0 else { return nil }
        self.synAck = record.synAck
        self.reset = reset
        self.isIPv6 = record.isIPv6
        self.ackTrafficClass = record.ackTrafficClass
    }

    /// The SYN-ACK's TTL or hop limit minus the RST's: hops more on the RST's path when positive.
    public var hopLimitDelta: Int { Int(synAck.hopLimit) - Int(reset.fingerprint.hopLimit) }

    /// Whether both frames carry a link-layer source and they differ; nil when one has none.
    public var sourceMACDiffers: Bool? {
        guard let first = synAck.sourceMAC, let second = reset.fingerprint.sourceMAC else { return nil }
        return first != second
    }

    public var tosEcho: TOSEcho {
        let client = PacketFingerprint.dscp(ackTrafficClass)
        guard client != 0 else { return .notVisible }
        return reset.fingerprint.dscp == client ? .echoed : .notEchoed
    }

    /// An IPv6 RST without a flow label after a SYN-ACK with one.
    public var flowLabelDropped: Bool { isIPv6 && synAck.flowLabel != 0 && reset.fingerprint.flowLabel == 0 }

    public var origin: ResetOrigin {
        if hopLimitDelta != 0 || sourceMACDiffers == true { return .otherHost }
        let notEchoed = tosEcho == .notEchoed
        if notEchoed, !isIPv6, reset.fingerprint.ipID != 0 { return .otherHost }
        if notEchoed || flowLabelDropped { return .firewallLike }
        let fingerprint = reset.fingerprint
        if tosEcho == .echoed || (isIPv6 ? fingerprint.flowLabel != 0 : fingerprint.ipID != 0) { return .sameStack }
        return .sameHost
    }
}
