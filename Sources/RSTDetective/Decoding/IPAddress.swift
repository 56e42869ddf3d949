import Glibc

/// An IPv4 or IPv6 address as two 64-bit halves; IPv4 is mapped into `::ffff:0:0/96` (RFC 4291 §2.5.5.2),
/// as Zeek's connection keys do, so that one fixed-size type serves both families without allocation.
public struct IPAddress: Hashable, Sendable, Comparable {
    /// The first 8 bytes of the IPv6 address, in network order.
    public var high: UInt64
    /// The last 8 bytes of the IPv6 address, in network order.
    public var low: UInt64

    /// An IPv6 address from its two halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address from its 32-bit value in host order (10.0.0.1 is `0x0a000001`).
    public init(ipv4 value: UInt32) {
        self.init(high: 0, low: 0x0000_ffff_0000_0000 | UInt64(value))
    }

    /// Whether this is an IPv4-mapped address.
    public var isIPv4: Bool { high == 0 && low >> 32 == 0xffff }

    /// The IPv4 address in host order; meaningful only when `isIPv4`.
    public var ipv4Value: UInt32 { UInt32(truncatingIfNeeded: low) }

    /// The four 32-bit words of the address in network order, first word first.
    public var words: (UInt32, UInt32, UInt32, UInt32) {
        (
            UInt32(truncatingIfNeeded: high >> 32), UInt32(truncatingIfNeeded: high),
            UInt32(truncatingIfNeeded: low >> 32), UInt32(truncatingIfNeeded: low)
        )
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// Parses dotted IPv4 or IPv6 text (`inet_pton`).
    public init?(_ text: String) {
        // Plain bytes rather than in_addr / in6_addr: those C types belong to whichever module included
        // <netinet/in.h> first, which can be libpcap's.
        var bytes = (UInt64(0), UInt64(0))
        if unsafe inet_pton(AF_INET, text, &bytes) == 1 {
            let octets = unsafe withUnsafeBytes(of: &bytes) { unsafe Array($0.prefix(4)) }
            self.init(ipv4: octets.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            return
        }
        guard unsafe inet_pton(AF_INET6, text, &bytes) == 1 else { return nil }
        let octets = unsafe withUnsafeBytes(of: &bytes) { unsafe Array($0) }
        let high = octets[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = octets[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        self.init(high: high, low: low)
    }
}

extension IPAddress: CustomStringConvertible {
    /// Dotted quad for IPv4, RFC 5952 text for IPv6.
    public var description: String { text(isIPv6: !isIPv4) }

    /// The address as it appeared in a packet of the given family, IPv6 in RFC 5952's canonical form:
    /// lower-case hex without leading zeros, the longest run of two or more zero groups (the first of
    /// equals) as `::`, and an IPv4-mapped address as `::ffff:a.b.c.d` (§5).
    public func text(isIPv6: Bool) -> String {
        let v4 = ipv4Value
        let dotted = "\(v4 >> 24).\(v4 >> 16 & 0xff).\(v4 >> 8 & 0xff).\(v4 & 0xff)"
        guard isIPv6 else { return dotted }
        if isIPv4 { return "::ffff:" + dotted }
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: ($0 < 4 ? high : low) >> (48 - 16 * UInt64($0 % 4))) }
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > bestLength {
                bestStart = index
                bestLength = end - index
            }
            index = max(end, index + 1)
        }
        let hex = groups.map { String($0, radix: 16) }
        guard bestStart >= 0 else { return hex.joined(separator: ":") }
        let head = hex[..<bestStart].joined(separator: ":")
        let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
        return head + "::" + tail
    }
}
