/// The header fields of a segment that tell which stack sent it, beyond the 4-tuple and sequence numbers:
/// what a RST is compared on against the SYN-ACK of the same connection (see `ResetOrigin`).
public struct PacketFingerprint: Sendable, Equatable {
    /// The IPv4 TTL or the IPv6 hop limit.
    public var hopLimit: UInt8 = 0
    /// The IPv4 TOS byte or the IPv6 traffic class, ECN bits included.
    public var trafficClass: UInt8 = 0
    /// The IPv4 identification; 0 for IPv6.
    public var ipID: UInt16 = 0
    /// The IPv4 Don't Fragment flag; false for IPv6.
    public var dontFragment = false
    /// The IPv6 flow label (20 bits); 0 for IPv4.
    public var flowLabel: UInt32 = 0
    /// The TCP options present, read only on segments with SYN or RST (the ones compared); nil when the snap
    /// length cut them.
    public var options: TCPOptionSet? = TCPOptionSet()
    /// The link-layer source address with bit 63 set, or 0 when the link layer has none.
    private var taggedSourceMAC: UInt64 = 0

    public init() {}

    /// The 48-bit link-layer source address (Ethernet, or Linux cooked captures with a 6-byte address).
    public var sourceMAC: UInt64? {
        get { taggedSourceMAC == 0 ? nil : taggedSourceMAC & 0xffff_ffff_ffff }
        set { taggedSourceMAC = newValue.map { $0 & 0xffff_ffff_ffff | 1 << 63 } ?? 0 }
    }

    /// The traffic class without its two ECN bits: the DSCP a reply can echo (Linux 6.x clears ECN in a reset).
    public var dscp: UInt8 { Self.dscp(trafficClass) }

    /// `trafficClass` without its ECN bits.
    static func dscp(_ trafficClass: UInt8) -> UInt8 { trafficClass & 0xfc }

    /// `aa:bb:cc:dd:ee:ff`.
    public static func macText(_ address: UInt64) -> String {
        (0..<6).map { index in
            let byte = UInt8(truncatingIfNeeded: address >> (8 * (5 - UInt64(index))))
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined(separator: ":")
    }
}

/// The TCP option kinds (RFC 9293 §3.2 and the IANA registry) a segment carries, as a bit set.
public struct TCPOptionSet: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let maximumSegmentSize = TCPOptionSet(rawValue: 1 << 0)
    public static let windowScale = TCPOptionSet(rawValue: 1 << 1)
    public static let sackPermitted = TCPOptionSet(rawValue: 1 << 2)
    public static let sack = TCPOptionSet(rawValue: 1 << 3)
    public static let timestamps = TCPOptionSet(rawValue: 1 << 4)
    /// TCP MD5 signature (RFC 2385).
    public static let md5 = TCPOptionSet(rawValue: 1 << 5)
    /// TCP Authentication Option (RFC 5925).
    public static let authentication = TCPOptionSet(rawValue: 1 << 6)
    /// Multipath TCP (RFC 8684).
    public static let multipath = TCPOptionSet(rawValue: 1 << 7)
    /// Any other kind, or an option whose length runs past the header.
    public static let other = TCPOptionSet(rawValue: 1 << 8)

    private static let names: [(TCPOptionSet, String)] = [
        (.maximumSegmentSize, "MSS"), (.windowScale, "WS"), (.sackPermitted, "SACK_PERM"), (.sack, "SACK"),
        (.timestamps, "TS"), (.md5, "MD5"), (.authentication, "AO"), (.multipath, "MPTCP"), (.other, "OTHER"),
    ]

    /// The bit for an option kind.
    static func kind(_ kind: UInt8) -> TCPOptionSet {
        switch kind {
        case 2: .maximumSegmentSize
        case 3: .windowScale
        case 4: .sackPermitted
        case 5: .sack
        case 8: .timestamps
        case 19: .md5
        case 29: .authentication
        case 30: .multipath
        default: .other
        }
    }

    /// The kinds present as `MSS+WS+TS`, in kind order; empty for none.
    public var text: String {
        var text = ""
        for (option, name) in Self.names where contains(option) {
            if !text.isEmpty { text += "+" }
            text += name
        }
        return text
    }
}
