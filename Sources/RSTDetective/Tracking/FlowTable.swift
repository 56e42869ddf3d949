/// An open-addressing hash table from `FlowKey` to a value, with linear probing and backward-shift
/// deletion, so that a lookup costs a few cache lines and nothing is allocated per packet.
///
/// It starts small and doubles when half full, up to the capacity that `maximumCount` needs at that load,
/// so memory follows the number of open handshakes, not the size of the capture. Linear probing stays
/// short at half load with a seeded hash; probe sequences are still capped so that no lookup can run away:
/// an insert that would probe further, or that finds the table at `maximumCount`, is refused and the
/// caller counts it.
struct FlowTable<Value> {
    private struct Slot {
        var key: FlowKey
        var value: Value
    }

    private var slots: [Slot?]
    private var mask: Int
    private let seed: UInt64
    private let maximumCapacity: Int
    /// The most entries the table holds before inserts are refused.
    let maximumCount: Int
    /// Entries in the table.
    private(set) var count = 0

    /// No entry is ever further than this from its home slot.
    private static var maximumProbe: Int { 1024 }

    /// - Parameters:
    ///   - maximumCount: The most entries held at once.
    ///   - seed: The hash seed; random per run outside tests.
    init(maximumCount: Int, seed: UInt64) {
        precondition(maximumCount > 0, "a flow table must hold at least one entry")
        self.maximumCount = maximumCount
        self.seed = seed
        var capacity = 1024
        while capacity / 2 < maximumCount { capacity *= 2 }
        self.maximumCapacity = capacity
        let initial = min(capacity, 4096)
        self.slots = Array(repeating: nil, count: initial)
        self.mask = initial - 1
    }

    /// The slot holding `key`, or nil.
    func find(_ key: FlowKey) -> Int? {
        var index = Int(truncatingIfNeeded: key.hash(seed: seed)) & mask
        for _ in 0..<Self.maximumProbe {
            guard let slot = slots[index] else { return nil }
            if slot.key == key { return index }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Inserts `value` under `key`, which must not be present.
    ///
    /// - Returns: The slot used, or nil when the table is full or the probe sequence too long.
    mutating func insert(_ key: FlowKey, _ value: Value) -> Int? {
        guard count < maximumCount else { return nil }
        if isAtGrowthThreshold {
            grow()
        }
        var index = Int(truncatingIfNeeded: key.hash(seed: seed)) & mask
        for _ in 0..<Self.maximumProbe {
            if slots[index] == nil {
                slots[index] = Slot(key: key, value: value)
                count += 1
                return index
            }
            index = (index + 1) & mask
        }
        return nil
    }

    /// The value in an occupied slot.
    subscript(slot index: Int) -> Value {
        get { slots[index]!.value }
        _modify { yield &slots[index]!.value }
    }

    /// Empties `index` and shifts later members of its probe run back, so no tombstones are needed.
    mutating func remove(at index: Int) {
        slots[index] = nil
        count -= 1
        var hole = index
        var next = (index + 1) & mask
        while let slot = slots[next] {
            let home = Int(truncatingIfNeeded: slot.key.hash(seed: seed)) & mask
            // Move the entry into the hole unless its home lies cyclically in (hole, next].
            let distanceToNext = (next - home) & mask
            let distanceToHole = (hole - home) & mask
            if distanceToHole <= distanceToNext {
                slots[hole] = slot
                slots[next] = nil
                hole = next
            }
            next = (next + 1) & mask
        }
    }

    /// Whether the next insert doubles the table.
    var isAtGrowthThreshold: Bool { count + 1 > slots.count / 2 && slots.count < maximumCapacity }

    /// Whether the table holds `maximumCount` entries.
    var isFull: Bool { count >= maximumCount }

    /// The key in an occupied slot.
    func key(at index: Int) -> FlowKey { slots[index]!.key }

    /// Empties the table, keeping its capacity.
    mutating func removeAll() {
        for index in slots.indices { slots[index] = nil }
        count = 0
    }

    /// The number of slots, occupied or not, for sweeping with `isOccupied(_:)`.
    var capacity: Int { slots.count }

    /// Whether `index` holds an entry.
    func isOccupied(_ index: Int) -> Bool { slots[index] != nil }

    /// Doubles the slots, unless the table is at its largest.
    mutating func grow() {
        guard slots.count < maximumCapacity else { return }
        let old = slots
        slots = Array(repeating: nil, count: old.count * 2)
        mask = slots.count - 1
        for case let slot? in old {
            var index = Int(truncatingIfNeeded: slot.key.hash(seed: seed)) & mask
            while slots[index] != nil { index = (index + 1) & mask }
            slots[index] = slot
        }
    }
}
