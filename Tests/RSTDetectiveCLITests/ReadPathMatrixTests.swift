import Foundation
import Logging
import RSTDetective
import Testing

/// Every way `analyze` reads captures, at every record size users' captures have, on files of one record
/// and of many MiB: the incidents must be exactly the ones `SyntheticCapture` wrote, and every record must
/// be counted. (A crash on full-size records went unseen while every capture here had small ones.)
///
/// The many-MiB files are `RST_MATRIX_MIB` MiB (16 by default; the sanitizer passes of `scripts/test` set
/// a smaller size, which still spans several batches and more than the 1 MiB that once crashed `-j 2`).
@Suite struct ReadPathMatrixTests {
    /// The record sizes: a bare ACK, an MTU frame, a jumbo frame, a GRO packet, libpcap's largest record;
    /// nil for all of them in turn, with empty records between.
    static let sizes: [Int?] = SyntheticCapture.mixedSizes + [nil]

    enum FileLength: String, CaseIterable, Sendable {
        case oneRecord
        case manyMiB
    }

    static var manyMiB: Int { Int(ProcessInfo.processInfo.environment["RST_MATRIX_MIB"] ?? "") ?? 16 }

    /// A read path: how the capture is given to `analyze`.
    enum ReadPath: String, CaseIterable {
        case oneThread = "-j 1"
        case readAhead = "-j 2"
        case standardInput = "standard input"
        case gzip = "gzip"
        case rotated = "three rotated parts"
    }

    /// A capture whose data records are of `size`, or of every size in turn with empty records between.
    static func capture(size: Int?, minimumBytes: Int, minimumRecords: Int = 0) -> SyntheticCapture {
        SyntheticCapture(
            recordSizes: size.map { [$0] } ?? SyntheticCapture.mixedSizes, emptyRecords: size == nil,
            minimumBytes: minimumBytes, minimumRecords: minimumRecords)
    }

    static func capture(size: Int?, length: FileLength) -> SyntheticCapture {
        switch length {
        case .oneRecord: SyntheticCapture(singleRecordOf: size ?? 1514)
        case .manyMiB: capture(size: size, minimumBytes: manyMiB << 20)
        }
    }

    /// Runs `analyze` on `capture` (written in `directory`) through `path`, which must succeed; returns the
    /// incidents and the summary.
    static func analyze(_ capture: SyntheticCapture, through path: ReadPath, in directory: URL) throws -> (
        incidents: Set<String>, summary: [String: String]
    ) {
        let file = directory.appendingPathComponent("capture.pcap")
        if !FileManager.default.fileExists(atPath: file.path) { try capture.data.write(to: file) }
        let reports = directory.appendingPathComponent("reports-\(path)")
        var arguments = ["analyze", "--report-dir", reports.path, "-q"]
        var standardInput: String?
        switch path {
        case .oneThread: arguments += ["-j", "1", file.path]
        case .readAhead: arguments += ["-j", "2", file.path]
        case .standardInput:
            arguments += ["-"]
            standardInput = file.path
        case .gzip:
            let compressed = directory.appendingPathComponent("capture.pcap.gz")
            let gzip = try Binary.run(["gzip", "-1", "-k", "-f", file.path], executable: "/usr/bin/env")
            try #require(gzip.status == 0, "\(gzip.standardError)")
            arguments += [compressed.path]
        case .rotated:
            // Cut between records, as tcpdump -C does, each part with the file header; given last part first.
            let ranges = capture.recordRanges()
            let header = capture.data.prefix(24)
            var parts: [String] = []
            for part in 0..<3 {
                let slice = ranges[ranges.count * part / 3..<ranges.count * (part + 1) / 3]
                let url = directory.appendingPathComponent("part\(part).pcap")
                var data = Data(header)
                if let first = slice.first, let last = slice.last {
                    data += capture.data[first.lowerBound..<last.upperBound]
                }
                try data.write(to: url)
                parts.insert(url.path, at: 0)
            }
            arguments += parts
        }
        let run = try Binary.run(arguments, standardInput: standardInput)
        try #require(run.status == 0, "\(path.rawValue): exit status \(run.status): \(run.standardError.suffix(400))")
        let incidents = try String(contentsOf: reports.appendingPathComponent("incidents.csv"), encoding: .utf8)
        return (
            Set(ReusePortCommandsTests.rows(incidents).map(LiveCaptureTests.tuple)),
            try LiveCaptureTests.summary(reports.appendingPathComponent("summary.csv").path)
        )
    }

    @Test(arguments: sizes, FileLength.allCases)
    func everyReadPathFindsExactlyTheIncidentsWritten(size: Int?, length: FileLength) throws {
        let capture = Self.capture(size: size, length: length)
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        if length == .manyMiB {
            #expect(capture.data.count >= Self.manyMiB << 20)
            #expect(!capture.incidents.isEmpty)
        }
        for path in ReadPath.allCases {
            let (incidents, summary) = try Self.analyze(capture, through: path, in: directory)
            let label = "\(size.map(String.init) ?? "mixed") bytes, \(length), \(path.rawValue)"
            #expect(incidents == capture.incidents, "\(label): \(incidents.count) of \(capture.incidents.count)")
            #expect(summary["packets"] == "\(capture.records)", "\(label)")
            #expect(summary["incidents"] == "\(capture.incidents.count)", "\(label)")
            // Every data record is decoded as TCP: only the empty records of a mixed capture are not.
            let empty = size == nil ? capture.records - Int(summary["tcp_packets"] ?? "0")! : 0
            #expect(summary["skipped_truncated"] == "\(empty)", "\(label)")
        }
    }

    /// The hand-overs between threads at every record size: batches of 1, 3 and 64 packets put boundaries
    /// inside every handshake, blocks of 7 or 4099 bytes inside records and their headers, and the rings of
    /// batches and of blocks wrap many times.
    @Test(arguments: sizes)
    func batchAndBlockBoundariesChangeNothingAtAnySize(size: Int?) throws {
        let capture = Self.capture(size: size, minimumBytes: 0, minimumRecords: 40 * 64)
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("capture.pcap")
        try capture.data.write(to: file)
        // Blocks of 7 bytes put a boundary inside every header, but on jumbo frames and larger records that is
        // millions of hand-overs; there blocks of 4099 bytes still cut every record several times.
        let fewBytes = (size ?? .max) <= 1514 ? 7 : 4099
        for (readAhead, packetsPerBatch, blockBytes) in [
            (false, 1, fewBytes), (true, 1, fewBytes), (true, 3, 4099), (true, 64, 1 << 18), (true, 4096, fewBytes),
        ] {
            var incidents: Set<String> = []
            let result = Analyzer.run(
                paths: [file.path], options: AnalysisOptions(readAhead: readAhead), logger: Logger(label: "test"),
                stop: nil, packetsPerBatch: packetsPerBatch, readAheadBlockBytes: blockBytes
            ) { connection in
                let record = connection.handshake
                if connection.isIncident {
                    incidents.insert("\(record.client),\(record.clientPort),\(record.server),\(record.serverPort)")
                }
            }
            let label =
                "\(size.map(String.init) ?? "mixed") bytes, read ahead \(readAhead), batch \(packetsPerBatch), block \(blockBytes)"
            #expect(result.errors.isEmpty, "\(label): \(result.errors)")
            #expect(incidents == capture.incidents, "\(label)")
            #expect(result.packets.packets == capture.records, "\(label)")
        }
    }
}

/// Live capture at every record size an interface carries: the frames of a `SyntheticCapture` are sent
/// through a veth pair (MTU 65535) in a network namespace the test makes, and `capture -s 262144` on the
/// other end must report exactly the incidents written, with no packet dropped. (Records beyond 65535
/// bytes and empty ones exist only in files: no interface carries them.)
@Suite(.serialized) struct LiveReadPathTests {
    static let namespace = "rstd-sizes-\(getpid())"

    /// Sends each record of the pcap at `path` as one frame on `interface`, pausing 10 ms after every 256 KiB
    /// or every so many frames (the third argument) so that the capture's buffer never fills.
    static let injector = """
        import socket, struct, sys, time
        data = open(sys.argv[1], "rb").read()
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((sys.argv[2], 0))
        offset, sent, frames = 24, 0, 0
        while offset + 16 <= len(data):
            length = struct.unpack_from("<I", data, offset + 8)[0]
            s.send(data[offset + 16:offset + 16 + length])
            offset, sent, frames = offset + 16 + length, sent + length, frames + 1
            if sent >= 1 << 18 or frames >= int(sys.argv[3]):
                time.sleep(0.01)
                sent, frames = 0, 0
        """

    static func inNamespace(_ arguments: [String]) throws -> Binary.Run {
        try Binary.run(["netns", "exec", namespace] + arguments, executable: "/usr/sbin/ip")
    }

    @Test(
        .enabled(if: ReusePortKernelTests.isRoot, "needs root, to make a network namespace and capture"),
        .enabled(
            if: ReusePortKernelTests.labIsPossible,
            "cannot make a network namespace, or python3, ip or tcpdump is missing"),
        arguments: [[54], [1514], [9014], [65535], [54, 1514, 9014, 65535]]
    )
    func liveCaptureFindsExactlyTheIncidentsSent(sizes: [Int]) throws {
        let add = try Binary.run(["netns", "add", Self.namespace], executable: "/usr/sbin/ip")
        try #require(add.status == 0, "\(add.standardError)")
        defer { _ = try? Binary.run(["netns", "delete", Self.namespace], executable: "/usr/sbin/ip") }
        for command in [
            ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
            ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
            ["ip", "link", "add", "send0", "mtu", "65535", "type", "veth", "peer", "name", "recv0", "mtu", "65535"],
            ["ip", "link", "set", "send0", "up"], ["ip", "link", "set", "recv0", "up"],
        ] {
            let run = try Self.inNamespace(command)
            try #require(run.status == 0, "\(command): \(run.standardError)")
        }
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Under a sanitizer the capture reads several times slower: a smaller file keeps its buffer from filling.
        let capture = SyntheticCapture(recordSizes: sizes, minimumBytes: Binary.isSanitized ? 1 << 19 : 4 << 20)
        let file = directory.appendingPathComponent("sent.pcap")
        try capture.data.write(to: file)
        let reports = directory.appendingPathComponent("reports")
        let errors = directory.appendingPathComponent("capture.err").path
        let process = try Binary.startCapture(
            [
                "netns", "exec", Self.namespace, Binary.url.path, "capture", "-i", "recv0", "-s", "262144", "-B",
                "131072", "-c", "\(capture.records)", "--report-dir", reports.path, "--no-kernel-reason", "tcp", "port",
                "443",
            ], interface: "recv0", errors: errors, killAfter: 120)
        // A capture under ThreadSanitizer handles a few thousand frames a second.
        let framesPerPause = Binary.isSanitized ? 25 : 500
        let send = try Self.inNamespace(["python3", "-c", Self.injector, file.path, "send0", "\(framesPerPause)"])
        try #require(send.status == 0, "\(send.standardError)")
        process.waitUntilExit()
        let diagnostics = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(diagnostics)")
        let incidents = try String(contentsOf: reports.appendingPathComponent("incidents.csv"), encoding: .utf8)
        let summary = try LiveCaptureTests.summary(reports.appendingPathComponent("summary.csv").path)
        #expect(Set(ReusePortCommandsTests.rows(incidents).map(LiveCaptureTests.tuple)) == capture.incidents)
        #expect(summary["packets"] == "\(capture.records)", "\(diagnostics)")
        #expect(summary["tcp_packets"] == "\(capture.records)")
        #expect(summary["packets_dropped_by_kernel"] == "0", "\(summary)")
    }
}
