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
    /// One entry per capture that could not be opened or read to its end, in input order.
    public var errors: [CaptureError]
}

/// Runs captures through the decoder and the tracker.
public enum Analyzer {
    /// Analyses `paths` as one stream in timestamp order, so that a connection split across rotated files
    /// (`tcpdump -C` / `-G`) is followed; a file that fails is reported and the rest goes on.
    ///
    /// - Parameters:
    ///   - paths: Capture files; `-` is standard input.
    ///   - options: Filter, tracker limits and bucket model.
    ///   - logger: Receives debug messages per file, never per packet.
    ///   - onIncident: Called for each incident as its RST is read.
    public static func run(
        paths: [String], options: AnalysisOptions, logger: Logger,
        onIncident: @escaping (Incident) -> Void = { _ in }
    ) -> AnalysisResult {
        var errors: [CaptureError] = []
        var inputs: [Input] = []
        for path in paths {
            do {
                let input = Input(source: try PacketSource(path: path, filter: options.filter))
                logger.debug("opened capture", metadata: ["path": "\(path)", "link-type": "\(input.source.linkType)"])
                input.advance()
                inputs.append(input)
            } catch {
                errors.append(error)
            }
        }
        var tracker = HandshakeTracker(configuration: options.tracker)
        var report = AnalysisReport(bucketModel: options.bucketModel, onIncident: onIncident)
        var counts = PacketCounts()
        while let input = earliest(inputs), let info = input.head {
            counts.packets += 1
            counts.firstPacketNanos = min(counts.firstPacketNanos ?? .max, info.timestampNanos)
            counts.lastPacketNanos = max(counts.lastPacketNanos ?? .min, info.timestampNanos)
            let linkType = input.source.linkType
            let decoded = input.source.withCurrentBytes { PacketDecoder.decode($0, info: info, linkType: linkType) }
            switch decoded {
            case .tcp(let segment):
                counts.tcpPackets += 1
                tracker.process(segment, observer: &report)
            case .skipped(let reason):
                counts.skipped[Int(reason.rawValue)] += 1
            }
            input.advance()
        }
        tracker.finish(at: counts.lastPacketNanos, observer: &report)
        for input in inputs {
            counts.filteredOut += input.source.recordsFiltered
            if let error = input.error { errors.append(error) }
            logger.debug(
                "closed capture", metadata: ["path": "\(input.source.path)", "records": "\(input.source.recordsRead)"])
        }
        return AnalysisResult(
            options: options, report: report, packets: counts, tracker: tracker.counters, filesOpened: inputs.count,
            errors: errors)
    }

    /// The input whose next packet is earliest; ties go to the input given first.
    private static func earliest(_ inputs: [Input]) -> Input? {
        var best: Input?
        for input in inputs {
            guard let head = input.head else { continue }
            if let current = best?.head, current.timestampNanos <= head.timestampNanos { continue }
            best = input
        }
        return best
    }

    /// One open capture and the packet it holds next.
    private final class Input {
        var source: PacketSource
        var head: PacketInfo?
        var error: CaptureError?

        init(source: consuming PacketSource) {
            self.source = source
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
