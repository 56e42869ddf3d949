import Glibc
import Synchronization

/// Packets copied out of libpcap's buffer, in stream order, so that one thread can read captures while
/// another analyses them (`-j 2`), handing over thousands of packets at a time.
///
/// A batch allocates its storage once and is reused: emptying it keeps the storage. It belongs to one
/// thread at a time: the reader fills it, `BatchChannel` hands it over, the analyser reads it and gives it
/// back; the channel's atomics order those accesses, which is what makes it `Sendable`.
@safe final class PacketBatch: PacketSink, @unchecked Sendable {
    /// One packet: its metadata, where its bytes start in `bytes`, and its link type.
    private struct Record {
        var info: PacketInfo
        var offset: Int
        var linkType: LinkType
    }

    /// Bytes per batch; a record longer than what is left waits for the next batch, and one longer than
    /// this (libpcap's largest snap length is 256 KiB) gets larger storage, once.
    private static var byteCapacity: Int { 1 << 20 }

    private var bytes: UnsafeMutableRawBufferPointer
    private let records: UnsafeMutableBufferPointer<Record>
    /// The most packets the batch holds.
    let capacity: Int
    /// Bytes of storage.
    private var byteCount: Int
    private var used = 0
    /// Packets in the batch.
    private(set) var count = 0
    /// Set on the last batch of a run read ahead: what the reader has to report besides the packets.
    var totals: CaptureFileReader.Totals?

    /// - Parameter capacity: The most packets the batch holds.
    init(capacity: Int) {
        self.capacity = capacity
        byteCount = Self.byteCapacity
        unsafe bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 16)
        unsafe records = UnsafeMutableBufferPointer.allocate(capacity: capacity)
    }

    deinit {
        unsafe bytes.deallocate()
        unsafe records.deallocate()
    }

    /// Whether the batch holds as many packets as it can.
    var isFull: Bool { count == capacity }

    /// Whether a packet of `length` bytes fits; an empty batch takes any packet.
    @inline(__always)
    func hasRoom(for length: Int) -> Bool {
        count < capacity && (count == 0 || used + length <= byteCount)
    }

    /// Copies one packet into the batch, which must have room for it (`hasRoom(for:)`).
    @inline(__always)
    func take(_ info: PacketInfo, _ packet: RawSpan, _ linkType: LinkType) {
        let length = packet.byteCount
        precondition(count < capacity, "a packet for a full batch")
        if _slowPath(used + length > byteCount) {
            // Only an empty batch takes a record that does not fit: the storage grows to it.
            let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
            unsafe bytes.deallocate()
            unsafe bytes = larger
            byteCount = length
        }
        // SAFETY: `count < capacity` and `used + length <= byteCount`, checked above; the span's memory is
        // read only during the call.
        unsafe records.baseAddress!.advanced(by: count).initialize(
            to: Record(info: info, offset: used, linkType: linkType))
        unsafe packet.withUnsafeBytes { source in
            unsafe bytes.baseAddress!.advanced(by: used).copyMemory(from: source.baseAddress!, byteCount: length)
        }
        used += length
        count += 1
    }

    /// Calls `body` for each packet, in order; the bytes are borrowed for the call.
    func forEachPacket(_ body: (PacketInfo, RawSpan, LinkType) -> Void) {
        for index in 0..<count {
            // SAFETY: records below `count` were initialized by `append`, with their bytes in `bytes`.
            let record = unsafe records[index]
            let span = unsafe RawSpan(
                _unsafeStart: bytes.baseAddress!.advanced(by: record.offset), byteCount: record.info.capturedLength)
            body(record.info, span, record.linkType)
        }
    }

    /// Empties the batch, keeping its storage.
    func removeAll() {
        used = 0
        count = 0
        totals = nil
    }
}

/// Hands batches from the reading thread to the analysing one and back, through a ring: a fixed set of
/// batches circulates, so that in the steady state nothing is allocated, and the reader runs at most that
/// many batches ahead.
///
/// One thread fills, one thread analyses. Each side counts the batches it has passed on in an atomic the
/// other side reads; a side with nothing to do yields the processor a few times, then sleeps in short
/// naps. Waking a sleeping thread through the kernel for every batch (a semaphore) cost more than the
/// analysis itself in the benchmark, on a virtual machine where a cross-processor wake-up is slow.
final class BatchChannel: Sendable {
    private let batches: [PacketBatch]
    /// Batches the reader has filled.
    private let filled = Atomic<Int>(0)
    /// Batches the analyser has given back.
    private let recycled = Atomic<Int>(0)

    /// - Parameters:
    ///   - batches: The batches in circulation.
    ///   - capacity: Packets per batch.
    init(batches: Int, capacity: Int) {
        self.batches = (0..<batches).map { _ in PacketBatch(capacity: capacity) }
    }

    /// Waits for an empty batch (reader).
    func takeEmpty() -> PacketBatch {
        let next = filled.load(ordering: .relaxed)
        Self.wait { next - recycled.load(ordering: .acquiring) < batches.count }
        return batches[next % batches.count]
    }

    /// Hands over the batch `takeEmpty` gave, filled (reader).
    func send() {
        filled.wrappingAdd(1, ordering: .releasing)
    }

    /// Waits for a filled batch (analyser).
    func receive() -> PacketBatch {
        let next = recycled.load(ordering: .relaxed)
        Self.wait { filled.load(ordering: .acquiring) > next }
        return batches[next % batches.count]
    }

    /// Gives back the batch `receive` gave, emptied, for reuse (analyser).
    func recycle() {
        let next = recycled.load(ordering: .relaxed)
        batches[next % batches.count].removeAll()
        recycled.wrappingAdd(1, ordering: .releasing)
    }

    /// Yields the processor until `ready` holds, then naps 50 µs at a time: the other side is then slow
    /// (a disk read, a full pipeline), and a nap costs it nothing.
    private static func wait(until ready: () -> Bool) {
        var rounds = 0
        while !ready() {
            rounds += 1
            if rounds < 10 {
                sched_yield()
            } else {
                usleep(50)
            }
        }
    }
}
