import Logging

/// Reads capture files as one stream in timestamp order, so that a connection split across rotated files
/// (`tcpdump -C` / `-G`) is followed; a file that fails is reported and the rest goes on.
///
/// Each file is first opened only to read its first timestamp; files are then opened in that order when
/// the stream reaches them and closed at their end, so a day of `tcpdump -G 60` files keeps only the
/// overlapping few open.
struct CaptureFileReader {
    /// What a reader has to report besides the packets.
    struct Totals: Sendable {
        /// Captures opened.
        var filesOpened = 0
        /// Records the filter rejected, over every capture closed so far.
        var recordsFiltered = 0
        /// Captures whose header gives a snap length libpcap does not take as it is.
        var filesWithInvalidSnapLength = 0
        /// One entry per capture that could not be opened or read to its end, in the order they were met.
        var errors: [CaptureError] = []
    }

    private(set) var totals = Totals()

    private let filter: String?
    private let readAheadBlockBytes: Int?
    private let logger: Logger
    private let progress: ReadProgress?
    private var pending: [Scheduled]
    private var inputs: [Input] = []

    /// Peeks at the first record of each regular file in `paths`; files that cannot be opened are reported
    /// in `errors` at once.
    ///
    /// - Parameters:
    ///   - paths: Capture files; `-` is standard input.
    ///   - filter: A BPF expression, or nil.
    ///   - logger: Receives debug messages per file, never per packet.
    ///   - progress: Told of each file as it is opened and closed, for a progress bar.
    ///   - readAheadBlockBytes: Read each regular file ahead on a thread of its own, in blocks of this
    ///     many bytes (`PacketSource.init(path:filter:readAheadBlockBytes:)`); nil for none.
    init(
        paths: [String], filter: String?, logger: Logger, progress: ReadProgress? = nil,
        readAheadBlockBytes: Int? = nil
    ) {
        self.filter = filter
        self.readAheadBlockBytes = readAheadBlockBytes
        self.logger = logger
        self.progress = progress
        self.pending = []
        self.pending = schedule(paths)
    }

    /// Whether every input is a regular file, which never blocks a read for long: standard input or a pipe
    /// may wait for a writer, and then its packets should not wait in a batch for others.
    static func allRegularFiles(_ paths: [String]) -> Bool {
        paths.allSatisfy(PacketSource.isRegularFile)
    }

    /// Delivers the next packets of the stream to `sink`, in timestamp order, until it is full, the
    /// input ends, or `stop` is requested; ties go to the capture given first, as in a merge of all the
    /// files at once.
    ///
    /// - Returns: Whether there may be more packets: false once every capture has ended or a stop was
    ///   requested (the sink may still have taken the last packets).
    mutating func read<Sink: PacketSink>(into sink: inout Sink, stop: StopRequest?) -> Bool {
        while !sink.isFull {
            // An input whose last record filled a sink reads its next one only now, so that the full sink is
            // handed on without waiting for another read.
            for index in inputs.indices.reversed() where !inputs[index].refill() {
                close(inputs.remove(at: index))
            }
            // Open every file whose first packet is due before the earliest packet at hand.
            while let next = pending.first, inputs.isEmpty || next.firstTimestampNanos <= Self.earliestHead(inputs) {
                pending.removeFirst()
                do {
                    let source = try PacketSource(
                        path: next.path, filter: filter, readAheadBlockBytes: readAheadBlockBytes)
                    progress?.opened(descriptor: source.fileDescriptor, size: source.fileSize)
                    let input = Input(source: source, order: next.order)
                    logger.debug(
                        "opened capture", metadata: ["path": "\(next.path)", "link-type": "\(input.linkType)"])
                    totals.filesOpened += 1
                    if input.snapLengthIsInvalid { totals.filesWithInvalidSnapLength += 1 }
                    if input.head == nil {
                        close(input)
                    } else {
                        inputs.append(input)
                    }
                } catch {
                    totals.errors.append(error)
                }
            }
            guard let index = Self.earliest(inputs), stop?.isRequested != true else {
                for input in inputs { close(input) }
                inputs.removeAll()
                return false
            }
            // The earliest input keeps the stream until another input's packet or a pending file is due, so
            // that the merge costs nothing per packet for one file, nor for rotated files that do not overlap.
            var bound = PacketSource.Bound(nanos: .max, inclusive: true)
            if let other = Self.earliest(inputs, excluding: index), let head = inputs[other].head {
                bound = PacketSource.Bound(
                    nanos: head.timestampNanos, inclusive: inputs[index].order < inputs[other].order)
            }
            if let due = pending.first?.firstTimestampNanos, due <= bound.nanos {
                bound = PacketSource.Bound(nanos: due, inclusive: false)
            }
            if !inputs[index].deliver(to: &sink, before: bound, stop: stop) {
                close(inputs.remove(at: index))
            }
        }
        return true
    }

    /// A capture waiting to be opened, the time of its first record, and its place among the arguments.
    private struct Scheduled {
        var path: String
        var firstTimestampNanos: Int64
        var order: Int
    }

    /// Peeks at each regular file's first record, unfiltered (a lower bound of its first filtered one), and
    /// orders the files by it. Standard input, pipes and other inputs that cannot be read twice, and files
    /// whose first record cannot be read, come first, so they are opened at once (and an error is reported
    /// where it occurs). Files that cannot be opened are reported here.
    private mutating func schedule(_ paths: [String]) -> [Scheduled] {
        var scheduled: [Scheduled] = []
        for (order, path) in paths.enumerated() {
            var first = Int64.min
            if PacketSource.isRegularFile(path) {
                do {
                    var source = try PacketSource(path: path)
                    first = (try? source.next())?.timestampNanos ?? .min
                } catch {
                    totals.errors.append(error)
                    continue
                }
            }
            scheduled.append(Scheduled(path: path, firstTimestampNanos: first, order: order))
        }
        // A stable sort keeps the given order among equal times.
        return scheduled.enumerated().sorted {
            ($0.element.firstTimestampNanos, $0.offset) < ($1.element.firstTimestampNanos, $1.offset)
        }
        .map(\.element)
    }

    private mutating func close(_ input: Input) {
        progress?.closed(descriptor: input.fileDescriptor)
        totals.recordsFiltered += input.recordsFiltered
        if let error = input.error { totals.errors.append(error) }
        logger.debug("closed capture", metadata: ["path": "\(input.path)", "records": "\(input.recordsRead)"])
    }

    /// The index of the input whose next packet is earliest; ties go to the input given first.
    private static func earliest(_ inputs: [Input], excluding excluded: Int? = nil) -> Int? {
        var best: Int?
        var bestKey = (Int64.max, Int.max)
        for (index, input) in inputs.enumerated() where index != excluded {
            guard let head = input.head else { continue }
            let key = (head.timestampNanos, input.order)
            if best == nil || key < bestKey {
                best = index
                bestKey = key
            }
        }
        return best
    }

    /// The earliest timestamp among the packets at hand.
    private static func earliestHead(_ inputs: [Input]) -> Int64 {
        earliest(inputs).flatMap { inputs[$0].head?.timestampNanos } ?? .max
    }

    /// One open capture and the packet it holds next.
    private final class Input {
        /// Nil only while `deliver` has it out, so that the loop works on a local value, free of the dynamic
        /// exclusivity checks that every access to a class's stored property costs.
        private var source: PacketSource?
        /// The capture's place among the arguments, which breaks ties between equal timestamps.
        let order: Int
        let path: String
        let linkType: LinkType
        let snapLengthIsInvalid: Bool
        let fileDescriptor: Int32
        /// The record read and not yet delivered; nil when the last one read was delivered.
        private(set) var head: PacketInfo?
        private(set) var error: CaptureError?
        private(set) var recordsRead = 0
        private(set) var recordsFiltered = 0

        /// Opens the input on its first packet.
        init(source: consuming PacketSource, order: Int) {
            self.order = order
            self.path = source.path
            self.linkType = source.linkType
            self.snapLengthIsInvalid = source.snapLengthIsInvalid
            self.fileDescriptor = source.fileDescriptor
            do {
                head = try source.next()
            } catch {
                self.error = error
            }
            recordsRead = source.recordsRead
            self.source = consume source
        }

        /// Reads the next record if the last one was delivered.
        ///
        /// - Returns: False when the capture has ended or failed.
        func refill() -> Bool {
            guard head == nil else { return true }
            guard var source = source.take() else { return false }
            do {
                head = try source.next()
            } catch {
                self.error = error
            }
            recordsRead = source.recordsRead
            recordsFiltered = source.recordsFiltered
            self.source = consume source
            return head != nil
        }

        /// Delivers the record at hand and those after it within `bound` to `sink`.
        ///
        /// - Returns: False when the capture has ended or failed.
        func deliver<Sink: PacketSink>(to sink: inout Sink, before bound: PacketSource.Bound, stop: StopRequest?)
            -> Bool
        {
            guard var source = source.take() else { return false }
            guard let current = head else {
                self.source = consume source
                return true
            }
            var more = true
            do {
                switch try source.deliver(current, andFollowingTo: &sink, before: bound, stop: stop) {
                case .sinkFull: head = nil
                case .ended: (head, more) = (nil, false)
                case .held(let info): head = info
                }
            } catch {
                self.error = error
                (head, more) = (nil, false)
            }
            recordsRead = source.recordsRead
            recordsFiltered = source.recordsFiltered
            self.source = consume source
            return more
        }
    }
}
