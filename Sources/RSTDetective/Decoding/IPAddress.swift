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
        var v4 = in_addr()
        if unsafe inet_pton(AF_INET, text, &v4) == 1 {
            self.init(ipv4: UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        guard unsafe inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = unsafe withUnsafeBytes(of: &v6) { unsafe Array($0) }
        let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        self.init(high: high, low: low)
    }
}

extension IPAddress: CustomStringConvertible {
    /// Dotted quad for IPv4, RFC 5952 text for IPv6 (glibc's `inet_ntop` follows RFC 5952).
    public var description: String { text(isIPv6: !isIPv4) }

    /// The address as it appeared in a packet of the given family: an IPv4-mapped address inside an IPv6
    /// packet prints as `::ffff:a.b.c.d`.
    public func text(isIPv6: Bool) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if !isIPv6 {
            var address = in_addr(s_addr: ipv4Value.bigEndian)
            _ = unsafe inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count))
        } else {
            var address = in6_addr()
            unsafe withUnsafeMutableBytes(of: &address) { raw in
                unsafe raw.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
                unsafe raw.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            _ = unsafe inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
        }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
