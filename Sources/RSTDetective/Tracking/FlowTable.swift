/// An open-addressing hash table from `FlowKey` to a value, with linear probing and backward-shift
/// deletion, so that a lookup costs a few cache lines and nothing is allocated per packet.
///
/// Each slot has a one-byte tag: zero when empty, otherwise seven bits of the key's hash. A probe reads
/// the tags first and compares a key only when its tag matches, so a lookup for a flow that is not in the
/// table (most packets of a busy link belong to connections whose handshake settled long ago) usually
/// touches one byte of a compact array. Keys and values live in arrays of their own for the same reason.
/// Before even that, a presence filter, counts of entries per bucket of a symmetric hash, answers "not
/// here" for most such flows without putting the key in canonical order or hashing it.
///
/// It starts small and doubles when half full, up to the capacity that `maximumCount` needs at that load,
/// so memory follows the number of open handshakes, not the size of the capture. Linear probing stays
/// short at half load with a seeded hash; probe sequences are still capped so that no lookup can run away:
/// an insert that would probe further, or that finds the table at `maximumCount`, is refused and the
/// caller counts it.
struct FlowTable<Value> {
    private var tags: [UInt8]
    private var keys: [FlowKey]
    private var values: [Value?]
    /// One bit per slot, set when the slot holds an entry, so that a sweep skips empty slots 64 at a time.
    private var occupied: [UInt64]
    /// Entries per bucket of `FlowKey.presenceHash`, with as many buckets as slots. One byte each, so that
    /// the filter stays in the first-level cache while packets stream through it; a count that reaches 255
    /// stays there (a false positive costs a lookup, never a wrong answer) until the table grows.
    private var presence: [UInt8]
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
        self.tags = Array(repeating: 0, count: initial)
        self.keys = Array(repeating: FlowKey(), count: initial)
        self.values = Array(repeating: nil, count: initial)
        self.presence = Array(repeating: 0, count: initial)
        self.occupied = Array(repeating: 0, count: initial / 64)
        self.mask = initial - 1
    }

    /// The tag of a key with `hash`: its top seven bits, with the high bit set so that it is never zero.
    @inline(__always)
    private static func tag(_ hash: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: hash >> 57) | 0x80 }

    /// Whether a key with this `FlowKey.presenceHash` may be in the table; false means it is not.
    @inline(__always)
    func mayContain(presenceHash: UInt64) -> Bool {
        presence[Int(truncatingIfNeeded: presenceHash) & mask] != 0
    }

    /// The slot holding `key`, or nil.
    func find(_ key: FlowKey) -> Int? {
        let hash = key.hash(seed: seed)
        let tag = Self.tag(hash)
        var index = Int(truncatingIfNeeded: hash) & mask
        for _ in 0..<Self.maximumProbe {
            let slotTag = tags[index]
            if slotTag == 0 { return nil }
            if slotTag == tag, keys[index] == key { return index }
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
        let hash = key.hash(seed: seed)
        var index = Int(truncatingIfNeeded: hash) & mask
        for _ in 0..<Self.maximumProbe {
            if tags[index] == 0 {
                tags[index] = Self.tag(hash)
                keys[index] = key
                values[index] = value
                occupied[index >> 6] |= 1 << UInt64(index & 63)
                addPresence(of: key)
                count += 1
                return index
            }
            index = (index + 1) & mask
        }
        return nil
    }

    /// The value in an occupied slot.
    subscript(slot index: Int) -> Value {
        get { values[index]! }
        _modify { yield &values[index]! }
    }

    /// Empties `index` and shifts later members of its probe run back, so no tombstones are needed.
    mutating func remove(at index: Int) {
        tags[index] = 0
        values[index] = nil
        occupied[index >> 6] &= ~(1 << UInt64(index & 63))
        let bucket = Int(truncatingIfNeeded: keys[index].presenceHash) & mask
        if presence[bucket] < .max { presence[bucket] -= 1 }
        count -= 1
        var hole = index
        var next = (index + 1) & mask
        while tags[next] != 0 {
            let home = Int(truncatingIfNeeded: keys[next].hash(seed: seed)) & mask
            // Move the entry into the hole unless its home lies cyclically in (hole, next].
            let distanceToNext = (next - home) & mask
            let distanceToHole = (hole - home) & mask
            if distanceToHole <= distanceToNext {
                tags[hole] = tags[next]
                keys[hole] = keys[next]
                values[hole] = values[next].take()
                tags[next] = 0
                occupied[hole >> 6] |= 1 << UInt64(hole & 63)
                occupied[next >> 6] &= ~(1 << UInt64(next & 63))
                hole = next
            }
            next = (next + 1) & mask
        }
    }

    /// Whether the next insert doubles the table.
    var isAtGrowthThreshold: Bool { count + 1 > tags.count / 2 && tags.count < maximumCapacity }

    /// Whether the table holds `maximumCount` entries.
    var isFull: Bool { count >= maximumCount }

    /// The key in an occupied slot.
    func key(at index: Int) -> FlowKey { keys[index] }

    /// Empties the table, keeping its capacity.
    mutating func removeAll() {
        for index in tags.indices {
            tags[index] = 0
            values[index] = nil
            presence[index] = 0
        }
        for index in occupied.indices { occupied[index] = 0 }
        count = 0
    }

    /// The number of slots, occupied or not, for sweeping with `isOccupied(_:)`; a power of two.
    var capacity: Int { tags.count }

    /// Whether `index` holds an entry.
    func isOccupied(_ index: Int) -> Bool { tags[index] != 0 }

    /// The first occupied slot among the `count` slots from `start` on, wrapping around the end, or nil.
    func firstOccupied(from start: Int, within count: Int) -> Int? {
        var position = start
        var left = count
        while left > 0 {
            let bit = position & 63
            let word = occupied[(position & mask) >> 6] >> UInt64(bit)
            if word != 0 {
                let offset = word.trailingZeroBitCount
                return offset < left ? (position + offset) & mask : nil
            }
            left -= 64 - bit
            position += 64 - bit
        }
        return nil
    }

    /// Doubles the slots, unless the table is at its largest.
    mutating func grow() {
        guard tags.count < maximumCapacity else { return }
        let oldTags = tags
        let oldKeys = keys
        var oldValues = values
        let capacity = oldTags.count * 2
        tags = Array(repeating: 0, count: capacity)
        keys = Array(repeating: FlowKey(), count: capacity)
        values = Array(repeating: nil, count: capacity)
        presence = Array(repeating: 0, count: capacity)
        occupied = Array(repeating: 0, count: capacity / 64)
        mask = capacity - 1
        for old in oldTags.indices where oldTags[old] != 0 {
            var index = Int(truncatingIfNeeded: oldKeys[old].hash(seed: seed)) & mask
            while tags[index] != 0 { index = (index + 1) & mask }
            tags[index] = oldTags[old]
            keys[index] = oldKeys[old]
            values[index] = oldValues[old].take()
            occupied[index >> 6] |= 1 << UInt64(index & 63)
            addPresence(of: keys[index])
        }
    }

    private mutating func addPresence(of key: FlowKey) {
        let bucket = Int(truncatingIfNeeded: key.presenceHash) & mask
        if presence[bucket] < .max { presence[bucket] += 1 }
    }
}
