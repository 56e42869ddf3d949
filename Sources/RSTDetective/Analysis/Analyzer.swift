public import Logging

/// What to analyse and how.
public struct AnalysisOptions: Sendable {
    public var tracker: HandshakeTracker.Configuration
    /// A BPF expression (libpcap syntax) that narrows the input, or nil.
    public var filter: String?
    public var bucketModel: ReusePortBucket

    public init(
        tracker: HandshakeTracker.Configuration = .init(), filter: String? = nil,
        bucketModel: ReusePortBucket = ReusePortBucket(listeners: 1)
    ) {
        self.tracker = tracker
        self.filter = filter
        self.bucketModel = bucketModel
    }
}

/// Packet counts of a run.
public struct PacketCounts: Sendable, Equatable {
    /// Records read that passed the filter.
    public var packets = 0
    /// Records the filter rejected.
    public var filteredOut = 0
    /// Packets decoded as TCP.
    public var tcpPackets = 0
    /// Packets skipped, indexed by `SkipReason.rawValue`.
    public var skipped = [Int](repeating: 0, count: SkipReason.allCases.count)
    public var firstPacketNanos: Int64?
    public var lastPacketNanos: Int64?

    public init() {}

    /// Packets skipped for `reason`.
    public func count(of reason: SkipReason) -> Int { skipped[Int(reason.rawValue)] }
}

/// Everything a run found, including the inputs it could not read.
public struct AnalysisResult {
    public var options: AnalysisOptions
    public var report: AnalysisReport
    public var packets: PacketCounts
    public var tracker: TrackerCounters
    /// Captures opened.
    public var filesOpened: Int
    /// One entry per capture that could not be opened or read to its end, in the order they were met.
    public var errors: [CaptureError]
    /// Whether the run stopped early because a stop was requested (Ctrl-C).
    public var interrupted: Bool
    /// Live capture: the interface and libpcap's counters; nil for capture files.
    public var live: LiveCounters?

    public init(
        options: AnalysisOptions, report: AnalysisReport, packets: PacketCounts, tracker: TrackerCounters,
        filesOpened: Int, errors: [CaptureError], interrupted: Bool, live: LiveCounters? = nil
    ) {
        self.options = options
        self.report = report
        self.packets = packets
        self.tracker = tracker
        self.filesOpened = filesOpened
        self.errors = errors
        self.interrupted = interrupted
        self.live = live
    }
}

/// What a live capture adds to a result: where it listened, for how long, and what libpcap could not deliver.
public struct LiveCounters: Sendable {
    public var interface: String
    /// Seconds since the capture started.
    public var elapsedSeconds: Double
    /// Handshakes being tracked now: at the end of a run they are settled as `open_at_end`.
    public var openHandshakes: Int
    /// libpcap's counters; nil when it could not give them.
    public var statistics: LiveSource.Statistics?

    public init(interface: String, elapsedSeconds: Double, openHandshakes: Int, statistics: LiveSource.Statistics?) {
        self.interface = interface
        self.elapsedSeconds = elapsedSeconds
        self.openHandshakes = openHandshakes
        self.statistics = statistics
    }
}

/// Runs captures through the decoder and the tracker.
public enum Analyzer {
    /// Analyses `paths` as one stream in timestamp order, so that a connection split across rotated files
    /// (`tcpdump -C` / `-G`) is followed; a file that fails is reported and the rest goes on.
    ///
    /// Each file is first opened only to read its first timestamp; files are then opened in that order
    /// when the stream reaches them and closed at their end, so a day of `tcpdump -G 60` files keeps only
    /// the overlapping few open.
    ///
    /// - Parameters:
    ///   - paths: Capture files; `-` is standard input.
    ///   - options: Filter, tracker limits and bucket model.
    ///   - logger: Receives debug messages per file, never per packet.
    ///   - stop: When requested, the run ends after the current packet as if the input had ended.
    ///   - onConnection: Called for each settled attempt, with its listener; an incident as its RST is read.
    public static func run(
        paths: [String], options: AnalysisOptions, logger: Logger, stop: StopRequest? = nil,
        onConnection: @escaping (Connection) -> Void = { _ in }
    ) -> AnalysisResult {
        var errors: [CaptureError] = []
        var pending = schedule(paths, filter: options.filter, errors: &errors)
        var inputs: [Input] = []
        var filesOpened = 0
        var pipeline = PacketPipeline(options: options, onConnection: onConnection)
        while true {
            // Open every file whose first packet is due before the earliest packet at hand.
            while let next = pending.first, inputs.isEmpty || next.firstTimestampNanos <= earliestHead(inputs) {
                pending.removeFirst()
                do {
                    let input = Input(
                        source: try PacketSource(path: next.path, filter: options.filter), order: next.order)
                    logger.debug(
                        "opened capture", metadata: ["path": "\(next.path)", "link-type": "\(input.source.linkType)"])
                    filesOpened += 1
                    input.advance()
                    if input.head == nil {
                        close(input, counts: &pipeline.counts, errors: &errors, logger: logger)
                    } else {
                        inputs.append(input)
                    }
                } catch {
                    errors.append(error)
                }
            }
            guard let index = earliest(inputs), let info = inputs[index].head, stop?.isRequested != true else { break }
            let input = inputs[index]
            let linkType = input.source.linkType
            input.source.withCurrentBytes { pipeline.process(info, bytes: $0, linkType: linkType) }
            input.advance()
            if input.head == nil {
                close(inputs.remove(at: index), counts: &pipeline.counts, errors: &errors, logger: logger)
            }
        }
        for input in inputs {
            close(input, counts: &pipeline.counts, errors: &errors, logger: logger)
        }
        pipeline.finish(at: pipeline.counts.lastPacketNanos)
        return AnalysisResult(
            options: options, report: pipeline.report, packets: pipeline.counts, tracker: pipeline.tracker.counters,
            filesOpened: filesOpened,
            // A stop that ended a blocked read shows as the end of that input; it is an interruption all the same.
            errors: errors, interrupted: stop?.isRequested == true)
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
    private static func schedule(_ paths: [String], filter: String?, errors: inout [CaptureError]) -> [Scheduled] {
        var scheduled: [Scheduled] = []
        for (order, path) in paths.enumerated() {
            var first = Int64.min
            if PacketSource.isRegularFile(path) {
                do {
                    var source = try PacketSource(path: path)
                    first = (try? source.next())?.timestampNanos ?? .min
                } catch {
                    errors.append(error)
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

    private static func close(
        _ input: Input, counts: inout PacketCounts, errors: inout [CaptureError], logger: Logger
    ) {
        counts.filteredOut += input.source.recordsFiltered
        if let error = input.error { errors.append(error) }
        logger.debug(
            "closed capture", metadata: ["path": "\(input.source.path)", "records": "\(input.source.recordsRead)"])
    }

    /// The index of the input whose next packet is earliest; ties go to the input given first, as in a
    /// merge of all the files at once.
    private static func earliest(_ inputs: [Input]) -> Int? {
        var best: Int?
        var bestKey = (Int64.max, Int.max)
        for (index, input) in inputs.enumerated() {
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
        var source: PacketSource
        /// The capture's place among the arguments, which breaks ties between equal timestamps.
        let order: Int
        var head: PacketInfo?
        var error: CaptureError?

        init(source: consuming PacketSource, order: Int) {
            self.source = source
            self.order = order
        }

        func advance() {
            do {
                head = try source.next()
            } catch {
                head = nil
                self.error = error
            }
        }
    }
}
