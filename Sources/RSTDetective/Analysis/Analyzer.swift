import Dispatch
public import Logging

/// What to analyse and how.
public struct AnalysisOptions: Sendable {
    public var tracker: HandshakeTracker.Configuration
    /// A BPF expression (libpcap syntax) that narrows the input, or nil.
    public var filter: String?
    public var bucketModel: ReusePortBucket
    /// Capture files: read ahead on other threads while this one analyses (`-j 2`).
    public var readAhead: Bool
    /// The UDP destination ports read as VXLAN.
    public var vxlanPorts: VXLANPorts

    public init(
        tracker: HandshakeTracker.Configuration = .init(), filter: String? = nil,
        bucketModel: ReusePortBucket = ReusePortBucket(listeners: 1), readAhead: Bool = false,
        vxlanPorts: VXLANPorts = .standard
    ) {
        self.tracker = tracker
        self.filter = filter
        self.bucketModel = bucketModel
        self.readAhead = readAhead
        self.vxlanPorts = vxlanPorts
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
    /// Packets decoded as TCP whose TCP header the snap length cut after the fields the tracker needs.
    public var tcpHeadersCut = 0
    /// Packets skipped, indexed by `SkipReason.rawValue`.
    public var skipped = [Int](repeating: 0, count: SkipReason.allCases.count)
    /// Packets of link types the decoder does not know, by libpcap `DLT_` number: the `unknownLinkType`
    /// skips, told apart so that the summary can name each.
    public var unknownLinkTypes: [Int32: Int] = [:]
    /// The earliest timestamp, or nil without a packet.
    public var firstPacketNanos: Int64? { packets > 0 ? earliestNanos : nil }
    /// The latest timestamp, or nil without a packet.
    public var lastPacketNanos: Int64? { packets > 0 ? latestNanos : nil }
    private var earliestNanos = Int64.max
    private var latestNanos = Int64.min

    public init() {}

    /// Packets skipped for `reason`.
    public func count(of reason: SkipReason) -> Int { skipped[Int(reason.rawValue)] }

    /// Counts one packet that passed the filter: TCP, or skipped for `reason`.
    @inline(__always)
    mutating func count(_ info: PacketInfo, skipped reason: SkipReason?) {
        packets &+= 1
        if let reason {
            skipped[Int(reason.rawValue)] += 1
        } else {
            tcpPackets &+= 1
        }
        earliestNanos = min(earliestNanos, info.timestampNanos)
        latestNanos = max(latestNanos, info.timestampNanos)
    }
}

/// Everything a run found, including the inputs it could not read.
public struct AnalysisResult {
    public var options: AnalysisOptions
    public var report: AnalysisReport
    public var packets: PacketCounts
    public var tracker: TrackerCounters
    /// Captures opened.
    public var filesOpened: Int
    /// Classic pcap files whose header gives a snap length of 0 or above 262144 (libpcap's largest), which
    /// libpcap then reads as 262144.
    public var filesWithInvalidSnapLength = 0
    /// One entry per capture that could not be opened or read to its end, in the order they were met.
    public var errors: [CaptureError]
    /// Whether the run stopped early because a stop was requested (Ctrl-C).
    public var interrupted: Bool
    /// Live capture: the interface and libpcap's counters; nil for capture files.
    public var live: LiveCounters?

    public init(
        options: AnalysisOptions, report: AnalysisReport, packets: PacketCounts, tracker: TrackerCounters,
        filesOpened: Int, filesWithInvalidSnapLength: Int = 0, errors: [CaptureError], interrupted: Bool,
        live: LiveCounters? = nil
    ) {
        self.options = options
        self.report = report
        self.packets = packets
        self.tracker = tracker
        self.filesOpened = filesOpened
        self.filesWithInvalidSnapLength = filesWithInvalidSnapLength
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
    /// Whether the RSTs got the kernel's own reasons.
    public var kernelReasons: KernelReasons
    /// Why saving the packets (`-w`) stopped early: a write failed (the file keeps its whole records), or
    /// the reader went away.
    public var savingStopped: ReportError?

    public init(
        interface: String, elapsedSeconds: Double, openHandshakes: Int, statistics: LiveSource.Statistics?,
        kernelReasons: KernelReasons = .unavailable("not requested"), savingStopped: ReportError? = nil
    ) {
        self.interface = interface
        self.elapsedSeconds = elapsedSeconds
        self.openHandshakes = openHandshakes
        self.statistics = statistics
        self.kernelReasons = kernelReasons
        self.savingStopped = savingStopped
    }
}

/// How the RSTs of a live capture were joined to the kernel's `tcp:tcp_send_reset` events.
public enum KernelReasons: Sendable, Equatable {
    /// Joined: the RSTs of incidents and near misses looked up, and those an event matched; the events read
    /// from the kernel, those it lost (its buffer was full), and those pushed out of the reader's ring before
    /// any RST was joined to them, which tell why a RST found no event.
    case joined(resets: Int, matched: Int, eventsRead: Int, eventsLost: Int, eventsEvicted: Int)
    /// Not joined, and why: the `kernel_reason` column stays empty.
    case unavailable(String)
}

/// Runs captures through the decoder and the tracker.
public enum Analyzer {
    /// Batches in circulation between the reading and the analysing thread.
    private static var batchesInFlight: Int { 4 }
    /// Packets per batch when reading ahead.
    private static var packetsPerBatch: Int { 4096 }
    /// Bytes per block when reading ahead: with the ring of 16 (`rstd_read_ahead`), 4 MiB. A block and the
    /// page cache it is copied from stay within a core's 1 MiB L2 cache here; blocks of 384 KiB or more made
    /// the kernel's copy slower (README "Speed").
    private static var readAheadBlockBytes: Int { 1 << 18 }

    /// Analyses `paths` as one stream in timestamp order, so that a connection split across rotated files
    /// (`tcpdump -C` / `-G`) is followed; a file that fails is reported and the rest goes on.
    ///
    /// Each packet is analysed straight from libpcap's buffer as it is read. With `options.readAhead` and
    /// only regular files, the reading is a pipeline beside this thread instead: a thread per file reads its
    /// bytes ahead in blocks (the kernel's copy out of the page cache, and any decompression), and another
    /// runs libpcap over them and copies the packets' headers into batches of 4096 that this one analyses.
    /// Standard input and pipes are always read on this thread alone, so that each packet is analysed as soon
    /// as it arrives.
    ///
    /// - Parameters:
    ///   - paths: Capture files; `-` is standard input.
    ///   - options: Filter, tracker limits, bucket model and threads.
    ///   - logger: Receives debug messages per file, never per packet.
    ///   - stop: When requested, the run ends after the current packet as if the input had ended.
    ///   - onConnection: Called for each settled attempt, with its listener; an incident as its RST is read.
    ///     Always called on the calling thread.
    ///   - onProgress: Called about every 65,536 packets with how far the reading has got, on the calling
    ///     thread; nil for none.
    public static func run(
        paths: [String], options: AnalysisOptions, logger: Logger, stop: StopRequest? = nil,
        onConnection: @escaping (Connection) -> Void = { _ in }, onProgress: ((AnalysisProgress) -> Void)? = nil
    ) -> AnalysisResult {
        run(
            paths: paths, options: options, logger: logger, stop: stop, packetsPerBatch: packetsPerBatch,
            readAheadBlockBytes: readAheadBlockBytes, onConnection: onConnection, onProgress: onProgress)
    }

    /// `run` with batches of `packetsPerBatch` packets and blocks of `readAheadBlockBytes` bytes when reading
    /// ahead, so that tests can put batch boundaries anywhere, and block boundaries inside records.
    package static func run(
        paths: [String], options: AnalysisOptions, logger: Logger, stop: StopRequest?, packetsPerBatch: Int,
        readAheadBlockBytes: Int, onConnection: @escaping (Connection) -> Void,
        onProgress: ((AnalysisProgress) -> Void)? = nil
    ) -> AnalysisResult {
        var pipeline = PacketPipeline(options: options, onConnection: onConnection)
        let progress = onProgress.map { _ in ReadProgress(paths: paths) }
        if let onProgress, let progress {
            pipeline.onProgress = { counts in
                onProgress(
                    AnalysisProgress(
                        packets: counts.packets, bytesRead: progress.totalBytes.map { _ in progress.bytesRead },
                        totalBytes: progress.totalBytes))
            }
        }
        let totals: CaptureFileReader.Totals
        if options.readAhead, CaptureFileReader.allRegularFiles(paths) {
            totals = readAhead(
                paths: paths, filter: options.filter, vxlanPorts: options.vxlanPorts, logger: logger, stop: stop,
                packetsPerBatch: packetsPerBatch, blockBytes: readAheadBlockBytes, progress: progress,
                into: &pipeline)
        } else {
            var reader = CaptureFileReader(paths: paths, filter: options.filter, logger: logger, progress: progress)
            _ = reader.read(into: &pipeline, stop: stop)
            totals = reader.totals
        }
        pipeline.counts.filteredOut = totals.recordsFiltered
        pipeline.finish(at: pipeline.counts.lastPacketNanos)
        return AnalysisResult(
            options: options, report: pipeline.report, packets: pipeline.counts, tracker: pipeline.tracker.counters,
            filesOpened: totals.filesOpened, filesWithInvalidSnapLength: totals.filesWithInvalidSnapLength,
            // A stop that ended a blocked read shows as the end of that input; it is an interruption all the same.
            errors: totals.errors, interrupted: stop?.isRequested == true)
    }

    /// Reads with libpcap on a thread of its own, each file's bytes read ahead in blocks on another, and
    /// analyses the batches it fills on this one.
    ///
    /// Three threads on two cores: the kernel's copy (or the decompression) and the analysis each take a
    /// part of a core, libpcap and the batching the other (README "Speed").
    private static func readAhead(
        paths: [String], filter: String?, vxlanPorts: VXLANPorts, logger: Logger, stop: StopRequest?,
        packetsPerBatch: Int, blockBytes: Int, progress: ReadProgress?, into pipeline: inout PacketPipeline
    ) -> CaptureFileReader.Totals {
        let channel = BatchChannel(batches: batchesInFlight, capacity: packetsPerBatch, vxlanPorts: vxlanPorts)
        DispatchQueue.global().async {
            var reader = CaptureFileReader(
                paths: paths, filter: filter, logger: logger, progress: progress, readAheadBlockBytes: blockBytes)
            while true {
                var batch = channel.takeEmpty()
                let more = reader.read(into: &batch, stop: stop)
                if !more { batch.totals = reader.totals }
                channel.send()
                if !more { return }
            }
        }
        while true {
            let batch = channel.receive()
            pipeline.process(batch)
            if let totals = batch.totals {
                return totals
            }
            channel.recycle()
        }
    }
}
