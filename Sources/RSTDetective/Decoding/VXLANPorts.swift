/// The UDP destination ports read as VXLAN: IANA's 4789 and Linux's historical 8472 always, and up to
/// six more (`--vxlan-port`). Stored inline, so the decoder checks a port without touching memory elsewhere.
public struct VXLANPorts: Sendable, Equatable {
    /// The most ports, the two standard ones included.
    public static let capacity = 8
    /// 4789 (RFC 7348 §5) and 8472 (the Linux kernel's default before the IANA assignment).
    public static let standard = VXLANPorts()

    /// Four 16-bit ports per word; 0 marks an unused place (UDP port 0 is never a destination).
    private var ports0123: UInt64 = 4789 | 8472 << 16
    private var ports4567: UInt64 = 0

    /// The standard ports.
    public init() {}

    /// The standard ports and `extra`.
    ///
    /// - Returns: nil when `extra` holds port 0, or more ports than fit beside the standard ones.
    public init?(adding extra: [UInt16]) {
        for port in extra {
            guard port != 0 else { return nil }
            guard !contains(port) else { continue }
            guard let place = (0..<Self.capacity).first(where: { self.port(at: $0) == 0 }) else { return nil }
            let shift = UInt64(16 * (place & 3))
            if place < 4 { ports0123 |= UInt64(port) << shift } else { ports4567 |= UInt64(port) << shift }
        }
    }

    private func port(at place: Int) -> UInt16 {
        UInt16(truncatingIfNeeded: (place < 4 ? ports0123 : ports4567) >> UInt64(16 * (place & 3)))
    }

    /// The ports, the standard ones first.
    public var all: [UInt16] { (0..<Self.capacity).map(port(at:)).filter { $0 != 0 } }

    /// Whether UDP datagrams to `port` are read as VXLAN.
    @inline(__always)
    public func contains(_ port: UInt16) -> Bool {
        guard port != 0 else { return false }
        for place in 0..<Self.capacity where self.port(at: place) == port { return true }
        return false
    }
}
