/// A connection's 4-tuple in canonical order, the lower (address, port) endpoint first, so that both
/// directions of a connection find the same table slot with one lookup; and the tenant of its tunnels.
package struct FlowKey: Hashable {
    var lowerAddress: IPAddress
    var upperAddress: IPAddress
    /// The lower endpoint's port in the high 16 bits, the upper endpoint's in the low 16 bits.
    var ports: UInt32
    /// `TunnelPath.tenant` of the segments: 0 without a tunnel that names a tenant.
    var tenant: UInt64

    /// The key of `segment`'s connection, and whether the segment's source is the lower endpoint.
    init(_ segment: TCPSegment, sourceIsLower: inout Bool) {
        let source = (segment.source.high, segment.source.low, segment.sourcePort)
        let destination = (segment.destination.high, segment.destination.low, segment.destinationPort)
        sourceIsLower = source <= destination
        tenant = segment.tunnel.tenant
        if sourceIsLower {
            lowerAddress = segment.source
            upperAddress = segment.destination
            ports = UInt32(segment.sourcePort) << 16 | UInt32(segment.destinationPort)
        } else {
            lowerAddress = segment.destination
            upperAddress = segment.source
            ports = UInt32(segment.destinationPort) << 16 | UInt32(segment.sourcePort)
        }
    }

    /// The all-zero key, which fills the empty slots of a flow table.
    init() {
        lowerAddress = IPAddress(high: 0, low: 0)
        upperAddress = IPAddress(high: 0, low: 0)
        ports = 0
        tenant = 0
    }

    /// A seeded hash: each of the five words (the tenant shares the ports' word) is mixed with its own part of the seed and multiplied by its
    /// own odd constant, independently, so that the multiplications overlap in the pipeline; the products
    /// are combined and finished with a multiply–xorshift. The seed is random per run, so a hostile capture
    /// cannot aim collisions at the table.
    func hash(seed: UInt64) -> UInt64 {
        let a = (lowerAddress.high ^ seed) &* 0x9e37_79b9_7f4a_7c15
        let b = (lowerAddress.low ^ (seed >> 13 | seed << 51)) &* 0xc2b2_ae3d_27d4_eb4f
        let c = (upperAddress.high ^ (seed >> 29 | seed << 35)) &* 0x1656_67b1_9e37_79f9
        let d = (upperAddress.low ^ (seed >> 41 | seed << 23)) &* 0x85eb_ca77_c2b2_ae63
        let e = (UInt64(ports) ^ tenant ^ (seed >> 53 | seed << 11)) &* 0x27d4_eb2f_1656_67c5
        var hash = (a ^ (b >> 32 | b << 32)) &+ (c ^ (d >> 32 | d << 32)) &+ e
        hash = (hash ^ (hash >> 32)) &* 0xd6e8_feb8_6659_fd93
        return hash ^ (hash >> 32)
    }

    /// A cheap hash of the key that is the same whichever endpoint comes first, so that a segment can be
    /// checked against a flow table's presence filter before its key is put in canonical order and hashed.
    /// The tenant is left out: tenants sharing a 4-tuple cost a lookup, and a plain segment needs no tunnel
    /// decoding to be checked.
    var presenceHash: UInt64 {
        Self.presenceHash(
            lowerAddress, UInt16(truncatingIfNeeded: ports >> 16), upperAddress, UInt16(truncatingIfNeeded: ports))
    }

    /// The presence hash of the flow between two endpoints, in either order. It is unseeded and XOR can
    /// collide; a false positive only costs a full lookup.
    @inline(__always)
    package static func presenceHash(_ a: IPAddress, _ aPort: UInt16, _ b: IPAddress, _ bPort: UInt16) -> UInt64 {
        let words = (a.low ^ b.low) ^ (a.high ^ b.high) ^ UInt64(aPort ^ bPort)
        // The upper half of a product depends on every bit below it: fold first, then take that half.
        return ((words ^ (words >> 32)) &* 0x9e37_79b9_7f4a_7c15) >> 32
    }
}
