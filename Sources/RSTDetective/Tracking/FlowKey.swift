/// A connection's 4-tuple in canonical order: the lower (address, port) endpoint first, so that both
/// directions of a connection find the same table slot with one lookup.
struct FlowKey: Hashable {
    var lowerAddress: IPAddress
    var upperAddress: IPAddress
    /// The lower endpoint's port in the high 16 bits, the upper endpoint's in the low 16 bits.
    var ports: UInt32

    /// The key of `segment`'s connection, and whether the segment's source is the lower endpoint.
    init(_ segment: TCPSegment, sourceIsLower: inout Bool) {
        let source = (segment.source.high, segment.source.low, segment.sourcePort)
        let destination = (segment.destination.high, segment.destination.low, segment.destinationPort)
        sourceIsLower = source <= destination
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

    /// A seeded multiply–xorshift hash over the five words; the seed is random per run, so a hostile
    /// capture cannot aim collisions at the table.
    func hash(seed: UInt64) -> UInt64 {
        var hash = seed
        hash = Self.mix(hash, lowerAddress.high)
        hash = Self.mix(hash, lowerAddress.low)
        hash = Self.mix(hash, upperAddress.high)
        hash = Self.mix(hash, upperAddress.low)
        hash = Self.mix(hash, UInt64(ports))
        hash = (hash ^ (hash >> 32)) &* 0xd6e8_feb8_6659_fd93
        return hash ^ (hash >> 32)
    }

    @inline(__always)
    private static func mix(_ hash: UInt64, _ word: UInt64) -> UInt64 {
        let product = (hash ^ word) &* 0x9e37_79b9_7f4a_7c15
        return product ^ (product >> 29)
    }
}
