import Glibc
import Synchronization

/// The headers of packets copied out of libpcap's buffer, in stream order, so that one thread can read
/// captures while another analyses them (`-j 2`), handing over thousands of packets at a time.
///
/// Of each packet only what the decoder reads is copied (`PacketDecoder.headerExtent`: up to the end of
/// the TCP header, never more than `PacketDecoder.maximumHeaderBytes`), so a full-size packet costs
/// about what a small one does, and the storage, sized for the longest such copy of every packet, can never
/// run out before the batch is full. The batch allocates once and is reused: emptying it keeps the storage.
/// It belongs to one thread at a time: the reader fills it, `BatchChannel` hands it over, the analyser
/// reads it and gives it back; the channel's atomics order those accesses, which is what makes it
/// `Sendable`.
@safe final class PacketBatch: PacketSink, @unchecked Sendable {
    /// One packet: its metadata (with the record's own lengths), where its copied bytes start in `bytes`
    /// and how many there are, and its link type.
    private struct Record {
        var info: PacketInfo
        var offset: Int
        var length: Int
        var linkType: LinkType
    }

    private let bytes: UnsafeMutableRawBufferPointer
    private let records: UnsafeMutableBufferPointer<Record>
    /// The most packets the batch holds.
    let capacity: Int
    /// The ports the analysis reads as VXLAN, so that the headers inside those tunnels are kept too.
    private let vxlanPorts: VXLANPorts
    // The two counters are read and written for every packet. Only one thread has the batch at a time
    // (the channel hands it over), so the dynamic exclusivity checks of a class's stored properties, which
    // cost about 75 instructions a packet on the reading thread (callgrind), are left out.
    @exclusivity(unchecked) private var used = 0
    /// Packets in the batch.
    @exclusivity(unchecked) private(set) var count = 0
    /// Set on the last batch of a run read ahead: what the reader has to report besides the packets.
    var totals: CaptureFileReader.Totals?

    /// - Parameters:
    ///   - capacity: The most packets the batch holds.
    ///   - vxlanPorts: The UDP ports the analysis reads as VXLAN.
    init(capacity: Int, vxlanPorts: VXLANPorts) {
        precondition(capacity > 0, "a batch holds at least one packet")
        self.capacity = capacity
        self.vxlanPorts = vxlanPorts
        // Pages are touched only as copies reach them: small packets leave most of this untouched.
        unsafe bytes = UnsafeMutableRawBufferPointer.allocate(
            byteCount: capacity * PacketDecoder.maximumHeaderBytes, alignment: 16)
        unsafe records = UnsafeMutableBufferPointer.allocate(capacity: capacity)
    }

    deinit {
        unsafe bytes.deallocate()
        unsafe records.deallocate()
    }

    /// Whether the batch holds as many packets as it can.
    var isFull: Bool { unsafe count == capacity }

    /// Copies the headers of one packet into the batch, which must not be full.
    @inline(__always)
    func take(_ info: PacketInfo, _ packet: RawSpan, _ linkType: LinkType) {
        precondition(unsafe count < capacity, "a packet for a full batch")
        let length = PacketDecoder.headerExtent(packet, linkType: linkType, vxlanPorts: vxlanPorts)
        // SAFETY: `count < capacity`, checked above; each of the `count` packets before this one used at
        // most `maximumHeaderBytes`, and so does this one (`headerExtent` is at most that and at most the
        // span's length), so `used + length <= capacity * maximumHeaderBytes`, the storage's size. The span's
        // memory is read only during the call.
        unsafe records.baseAddress!.advanced(by: count).initialize(
            to: Record(info: info, offset: used, length: length, linkType: linkType))
        // An empty record's span may have no address at all.
        if length > 0 {
            unsafe packet.withUnsafeBytes { source in
                unsafe bytes.baseAddress!.advanced(by: used).copyMemory(from: source.baseAddress!, byteCount: length)
            }
        }
        unsafe used += length
        unsafe count += 1
    }

    /// Calls `body` for each packet, in order, with the bytes copied of it; the bytes are borrowed for the
    /// call, and the metadata keeps the record's own captured length.
    func forEachPacket(_ body: (PacketInfo, RawSpan, LinkType) -> Void) {
        for index in unsafe 0..<count {
            // SAFETY: records below `count` were initialized by `take`, with their bytes in `bytes`.
            let record = unsafe records[index]
            let span = unsafe RawSpan(
                _unsafeStart: bytes.baseAddress!.advanced(by: record.offset), byteCount: record.length)
            body(record.info, span, record.linkType)
        }
    }

    /// Empties the batch, keeping its storage.
    func removeAll() {
        unsafe used = 0
        unsafe count = 0
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
    ///   - vxlanPorts: The UDP ports the analysis reads as VXLAN.
    init(batches: Int, capacity: Int, vxlanPorts: VXLANPorts) {
        self.batches = (0..<batches).map { _ in PacketBatch(capacity: capacity, vxlanPorts: vxlanPorts) }
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
