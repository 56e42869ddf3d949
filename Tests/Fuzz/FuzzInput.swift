import Glibc
import Logging
import RSTDetective

/// One fuzzing input, run through everything that reads packet bytes.
///
/// The first byte chooses what the rest is:
/// - below 0x80, a sequence of packets of one link type (the byte modulo 13), each a 2-byte big-endian
///   length, a byte of extra wire length and a byte of time step (milliseconds), then its bytes. Each
///   packet goes through `PacketDecoder.decode`, the `commonTCPFields` shortcut and the decoding of only
///   the bytes a batch keeps (`headerExtent`), which must all agree, and the whole pipeline: counts,
///   tracker and reports.
/// - from 0x80, a capture file: it is written to a file in memory and analysed as `analyze` would, through
///   libpcap, the gzip and zstd stream, the pcapng block reader (for the files libpcap refuses) and the merge
///   of inputs. Bit 0 set reads ahead on other threads, in batches of 1 + bits 1 to 4 packets and blocks
///   of 7, 509, 4099 or 262144 bytes (bits 5 and 6), so that the rings wrap, the threads hand over often
///   and block boundaries fall inside records.
enum FuzzInput {
    static let linkTypes: [LinkType] = [
        .ethernet, .linuxSLL, .linuxSLL2, .raw, .null, .other(147), .ppp, .ciscoHDLC, .nflog, .ipOverInfiniBand,
        .ieee80211, .radiotap, .ppi,
    ]

    static func run(_ input: UnsafeRawBufferPointer) {
        guard let selector = input.first else { return }
        let rest = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        if selector < 0x80 {
            runPackets(rest, linkType: linkTypes[Int(selector) % linkTypes.count])
        } else {
            runCapture(
                rest, readAhead: selector & 1 == 1, packetsPerBatch: 1 + Int(selector >> 1 & 0x0f),
                blockBytes: [7, 509, 4099, 262_144][Int(selector >> 5 & 0x03)])
        }
    }

    static func runPackets(_ input: UnsafeRawBufferPointer, linkType: LinkType) {
        var options = AnalysisOptions(bucketModel: ReusePortBucket(listeners: 3))
        options.tracker.maximumFlows = 16
        options.tracker.handshakeTimeoutNanos = 50_000_000
        options.tracker.maximumDelayNanos = 10_000_000
        var pipeline = PacketPipeline(options: options, onConnection: { _ = $0.incidentCSVFields })
        var position = 0
        var nanos: Int64 = 1_700_000_000_000_000_000
        while position + 4 <= input.count {
            let length = Int(input[position]) << 8 | Int(input[position + 1])
            let extraWire = Int(input[position + 2])
            nanos += Int64(input[position + 3]) * 1_000_000
            position += 4
            let packet = UnsafeRawBufferPointer(rebasing: input[position..<min(input.count, position + length)])
            position += packet.count
            let info = PacketInfo(
                timestampNanos: nanos, capturedLength: packet.count, wireLength: packet.count + extraWire)
            let bytes = packet.bytes
            // What every read path decodes: the first maximumHeaderBytes; what a batch keeps of them.
            let visible = bytes.extracting(first: PacketDecoder.maximumHeaderBytes)
            let kept = bytes.extracting(first: PacketDecoder.headerExtent(bytes, linkType: linkType))
            let decoded = PacketDecoder.decode(visible, info: info, linkType: linkType)
            let decodedKept = PacketDecoder.decode(kept, info: info, linkType: linkType)
            guard decodedKept == decoded else {
                fatalError("decoding the header extent disagrees with decode: \(decodedKept), \(decoded)")
            }
            if let common = PacketDecoder.commonTCPFields(bytes, info: info, linkType: linkType) {
                guard case .tcp(let segment) = decoded, segment.flags == common.flags,
                    FlowKey.presenceHash(
                        segment.source, segment.sourcePort, segment.destination, segment.destinationPort)
                        == common.presenceHash,
                    let commonKept = PacketDecoder.commonTCPFields(kept, info: info, linkType: linkType),
                    commonKept.flags == common.flags, commonKept.presenceHash == common.presenceHash
                else { fatalError("commonTCPFields disagrees with decode: \(decoded)") }
            }
            pipeline.process(info, bytes: bytes, linkType: linkType)
        }
        pipeline.finish(at: nil)
        _ = Summary.metrics(
            AnalysisResult(
                options: options, report: pipeline.report, packets: pipeline.counts,
                tracker: pipeline.tracker.counters, filesOpened: 1, errors: [], interrupted: false))
    }

    static func runCapture(_ input: UnsafeRawBufferPointer, readAhead: Bool, packetsPerBatch: Int, blockBytes: Int) {
        // A file with no name, in memory where /dev/shm is: the capture is opened as /proc/self/fd/N.
        var template = Array("/dev/shm/rstd-fuzz-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { fatalError("mkstemp: \(errno)") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        defer { close(fd) }
        var written = 0
        while written < input.count {
            let count = write(fd, input.baseAddress! + written, input.count - written)
            guard count > 0 else { fatalError("write: \(errno)") }
            written += count
        }
        let options = AnalysisOptions(bucketModel: ReusePortBucket(listeners: 2), readAhead: readAhead)
        let result = Analyzer.run(
            paths: ["/proc/self/fd/\(fd)"], options: options, logger: Logger(label: "fuzz"), stop: nil,
            packetsPerBatch: packetsPerBatch, readAheadBlockBytes: blockBytes,
            onConnection: { _ = $0.incidentCSVFields })
        _ = Summary.metrics(result)
        _ = result.errors.map { $0.description }
    }
}
