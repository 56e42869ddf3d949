import Testing

@testable import RSTDetective

/// SplitMix64, a seedable generator so that the random operations repeat exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

@Suite struct FlowTableTests {
    static func key(_ number: Int) -> FlowKey {
        var lower = false
        let segment = TCPSegment(
            timestampNanos: 0, source: IPAddress(ipv4: UInt32(number / 1000)), destination: IPAddress(ipv4: 7),
            sourcePort: UInt16(number % 1000), destinationPort: 80, isIPv6: false, sequenceNumber: 0,
            acknowledgmentNumber: 0, flags: .syn, window: 0, payloadLength: 0)
        return FlowKey(segment, sourceIsLower: &lower)
    }

    /// Random inserts and removals, checked against Dictionary after every step, through several growths and
    /// many backward-shift deletions.
    @Test(arguments: [1 as UInt64, 2, 3])
    func behavesLikeADictionary(seed: UInt64) {
        var random = SplitMix64(state: seed)
        var table = FlowTable<Int>(maximumCount: 50_000, seed: seed)
        var model: [Int: Int] = [:]
        for step in 0..<60_000 {
            let number = Int.random(in: 0..<20_000, using: &random)
            if let slot = table.find(Self.key(number)) {
                #expect(table[slot: slot] == model[number])
                if Bool.random(using: &random) {
                    table.remove(at: slot)
                    model[number] = nil
                } else {
                    table[slot: slot] = step
                    model[number] = step
                }
            } else {
                #expect(model[number] == nil)
                #expect(table.insert(Self.key(number), step) != nil)
                model[number] = step
            }
            #expect(table.count == model.count)
        }
        for (number, value) in model {
            let slot = table.find(Self.key(number))
            #expect(slot.map { table[slot: $0] } == value)
        }
    }

    @Test func refusesInsertsBeyondItsMaximum() {
        var table = FlowTable<Int>(maximumCount: 3, seed: 9)
        for number in 0..<3 { #expect(table.insert(Self.key(number), number) != nil) }
        #expect(table.insert(Self.key(3), 3) == nil)
        #expect(table.count == 3)
    }

    @Test func bothDirectionsShareAKey() {
        let a = IPAddress(ipv4: 0x0a00_0001)
        let b = IPAddress(ipv4: 0x0a00_0002)
        var forwardIsLower = false
        var backwardIsLower = false
        let forward = FlowKey(
            TCPSegment(
                timestampNanos: 0, source: a, destination: b, sourcePort: 5000, destinationPort: 80, isIPv6: false,
                sequenceNumber: 0, acknowledgmentNumber: 0, flags: .syn, window: 0, payloadLength: 0),
            sourceIsLower: &forwardIsLower)
        let backward = FlowKey(
            TCPSegment(
                timestampNanos: 0, source: b, destination: a, sourcePort: 80, destinationPort: 5000, isIPv6: false,
                sequenceNumber: 0, acknowledgmentNumber: 0, flags: .syn, window: 0, payloadLength: 0),
            sourceIsLower: &backwardIsLower)
        #expect(forward == backward)
        #expect(forwardIsLower != backwardIsLower)
    }
}
