import Foundation
import Synchronization
import Testing

/// Runs the built `rst-detective` binary as a user would.
enum Binary {
    static let capturesDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Captures")

    /// The executable sits beside the test bundle in SwiftPM's build directory.
    static let url: URL = {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !directory.path.isEmpty, directory.path != "/" {
            let candidate = directory.appendingPathComponent("rst-detective")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory.deleteLastPathComponent()
        }
        return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("rst-detective")
    }()

    static func capture(_ name: String) -> String { capturesDirectory.appendingPathComponent(name).path }

    /// Whether the binary runs under a sanitizer (`scripts/test` sets `RST_SANITIZED=1` for those passes):
    /// it is then several times slower and AddressSanitizer's quarantine holds freed memory, so bounds on
    /// time and resident memory are checked only in the optimized pass.
    static let isSanitized = ProcessInfo.processInfo.environment["RST_SANITIZED"] == "1"

    struct Run {
        var status: Int32
        var standardOutput: String
        var standardError: String
        /// Whether a signal ended the process (then `status` is the signal's number).
        var killedBySignal = false
    }

    /// Runs `executable` (the binary by default) with `arguments` and waits for it, reading its standard
    /// output and standard error in full; standard input is `standardInput`'s file, or empty.
    ///
    /// The child is started with `posix_spawn` as Foundation's `Process` starts it (its own process group,
    /// every other descriptor closed), but not by `Process.run()`, which on Linux reads past a buffer while
    /// it lists /proc/self/fd and now and then crashes the test runner with SIGSEGV in a `memcpy`
    /// (swift-corelibs-foundation pull request 5472, not in Swift 6.3.1): the suites start thousands of
    /// children, and CI saw it.
    ///
    /// - Parameters:
    ///   - workingDirectory: The child's current directory, or this process's.
    ///   - environment: The child's environment, or this process's.
    ///   - seconds: Kill the child (SIGKILL) if it still runs after this long, so that a hang fails the test
    ///     as a crash would; nil waits for it however long it takes.
    static func run(
        _ arguments: [String], standardInput: String? = nil, executable: String? = nil,
        workingDirectory: URL? = nil, environment: [String: String]? = nil, killAfter seconds: Double? = nil
    ) throws -> Run {
        let path = executable ?? url.path
        let input = open(standardInput ?? "/dev/null", O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw SpawnFailure(path: standardInput ?? "/dev/null", errorNumber: errno) }
        defer { close(input) }
        // Every other child this process starts closes these (Foundation's `Process` closes all but its own).
        var output: [Int32] = [-1, -1]
        var error: [Int32] = [-1, -1]
        guard pipe(&output) == 0 else { throw SpawnFailure(path: "pipe", errorNumber: errno) }
        guard pipe(&error) == 0 else {
            let failure = SpawnFailure(path: "pipe", errorNumber: errno)
            close(output[0])
            close(output[1])
            throw failure
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input, 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, error[1], 2)
        _ = Spawn.addCloseFrom(&actions, 3)
        if let workingDirectory { _ = Spawn.addChangeDirectory(&actions, workingDirectory.path) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let environment = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") }
        let envp = environment + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in environment { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        close(output[1])
        close(error[1])
        guard spawned == 0 else {
            close(output[0])
            close(error[0])
            throw SpawnFailure(path: path, errorNumber: spawned)
        }
        // Until the child is reaped below, its pid is its own: the watchdog kills nothing else.
        let reaping = Mutex(false)
        if let seconds {
            let child = pid
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
                reaping.withLock { reaped in if !reaped { kill(child, SIGKILL) } }
            }
        }
        // Standard error is read on its own thread, so that neither pipe can fill while the other is read.
        nonisolated(unsafe) var errorData = Data()
        let errorRead = DispatchSemaphore(value: 0)
        let errorDescriptor = error[0]
        DispatchQueue.global().async {
            errorData = readToEnd(errorDescriptor)
            errorRead.signal()
        }
        let outputData = readToEnd(output[0])
        errorRead.wait()
        reaping.withLock { $0 = true }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return Run(
            status: signal == 0 ? status >> 8 & 0xff : signal,
            standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorData, as: UTF8.self), killedBySignal: signal != 0)
    }

    /// Why `run` could not start a child.
    struct SpawnFailure: Error, CustomStringConvertible {
        var path: String
        var errorNumber: Int32
        var description: String { "\(path): \(String(cString: strerror(errorNumber)))" }
    }

    /// Reads `descriptor` to its end, then closes it.
    private static func readToEnd(_ descriptor: Int32) -> Data {
        defer { close(descriptor) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                data.append(contentsOf: buffer[..<count])
            } else if count == 0 || errno != EINTR {
                return data
            }
        }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34) and `posix_spawn_file_actions_addchdir_np`
    /// (2.29), which the Glibc module does not import.
    private enum Spawn {
        typealias Actions = UnsafeMutablePointer<posix_spawn_file_actions_t>
        nonisolated(unsafe) static let addCloseFrom = function(
            "posix_spawn_file_actions_addclosefrom_np", as: (@convention(c) (Actions, Int32) -> Int32).self)
        nonisolated(unsafe) static let addChangeDirectory = function(
            "posix_spawn_file_actions_addchdir_np", as: (@convention(c) (Actions, UnsafePointer<CChar>) -> Int32).self)

        static func function<Function>(_ name: String, as type: Function.Type) -> Function {
            guard let symbol = dlsym(nil, name) else { fatalError("glibc has no \(name)") }
            return unsafeBitCast(symbol, to: type)
        }
    }

    /// A child that exits early must fail the test that feeds it, not kill the test runner with SIGPIPE.
    private static let ignoreBrokenPipes: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// The binary fed through a pipe that the test writes to, its standard output read by the test.
    struct PipedRun {
        let process = Process()
        let input = Pipe()
        let output = Pipe()

        /// Starts the binary; a watchdog kills it after 20 s, so no read of its output can hang a test
        /// (SIGKILL, because a child of the test runner may inherit a mask that blocks SIGTERM).
        init(_ arguments: [String], executable: String? = nil) throws {
            Binary.ignoreBrokenPipes
            process.executableURL = executable.map { URL(fileURLWithPath: $0) } ?? Binary.url
            process.arguments = arguments
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            let process = self.process
            DispatchQueue.global().asyncAfter(deadline: .now() + 20) {
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
        }

        func write(_ data: Data) throws { try input.fileHandleForWriting.write(contentsOf: data) }

        /// Reads standard output until it holds `count` lines, or ends.
        func readLines(_ count: Int) -> Data {
            var received = Data()
            while received.split(separator: UInt8(ascii: "\n")).count < count {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                received += chunk
            }
            return received
        }
    }

    /// The offset after each record of a classic pcap.
    static func recordEnds(_ capture: Data) -> [Int] {
        CorruptionTests.records(capture).map(\.end)
    }

    /// The records from `first` on (or only `first`, with `only`) of a little-endian classic pcap, their
    /// timestamps moved `seconds` later: packets that move capture time past the hold of the incidents before
    /// them (`CauseClassifier.holdNanos`, 2 s), so that their rows are written without the input ending.
    static func records(from first: Int, only: Bool = false, of capture: Data, movedLater seconds: UInt32) -> Data {
        var bytes = Data()
        for record in CorruptionTests.records(capture)[first...].prefix(only ? 1 : .max) {
            var moved = Data(capture[record.offset..<record.end])
            let time = moved.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } + seconds
            moved.replaceSubrange(moved.startIndex..<moved.startIndex + 4, with: withUnsafeBytes(of: time) { Data($0) })
            bytes += moved
        }
        return bytes
    }

    /// Starts a live capture, `executable` with `arguments` (such as `ip netns exec NS rst-detective capture
    /// -i lo ...`), standard output discarded and standard error to a new file `errors`; kills it after
    /// `seconds` if it is still running; waits for its start line, `listening on INTERFACE`.
    static func startCapture(
        _ arguments: [String], executable: String = "/usr/sbin/ip", interface: String, errors: String,
        killAfter seconds: Double = 60
    ) throws -> Process {
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        try process.run()
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try #require(
            LiveCaptureTests.waitFor("listening on \(interface)", in: errors, seconds: 10),
            "no start line: \(String(describing: try? String(contentsOfFile: errors, encoding: .utf8)))")
        return process
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rstd-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

@Suite struct AnalyzeCommandTests {
    @Test func writesEveryReportWithTheDocumentedColumns() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try Binary.run(["analyze", Binary.capture("crafted-base.pcap.gz"), "--report-dir", directory.path])
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardOutput.isEmpty)
        #expect(run.standardError.contains("incidents (SYN, SYN-ACK, ACK, then a server RST answering that ACK): 2"))
        func lines(_ name: String) throws -> [String] {
            try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
                .split(whereSeparator: \.isNewline).map(String.init)
        }
        let incidents = try lines("incidents.csv")
        let header = incidents[0].split(separator: ",").map(String.init)
        for column in [
            "syn_time", "rst_time", "client_ip", "client_port", "server_ip", "server_port", "ack_payload_bytes",
            "ack_to_rst_us", "hash", "bucket", "bucket_if_fewer", "bucket_if_more", "moves_on_churn", "history",
            "rst_seq", "rst_flags", "rst_window", "rst_options", "synack_ttl", "rst_ttl", "ttl_delta", "rst_ip_id",
            "rst_df", "ack_tos", "rst_tos", "tos_echo", "synack_flow_label", "rst_flow_label", "synack_mac",
            "rst_mac", "rst_origin", "kernel_reason", "cause", "tunnel",
        ] {
            #expect(header.contains(column), "incidents.csv lacks \(column)")
        }
        #expect(incidents.count == 3)
        #expect(incidents[1].hasPrefix("2023-11-14T22:13:20.999300Z,"))
        #expect(incidents[2].contains(",2001:db8::1,40004,2001:db8::2,8080,"))
        // The IPv4 kernel RST to a TOS-0 ACK could be a REJECT on the server; the IPv6 one has a flow label.
        #expect(incidents[1].contains(",ShADr,2548702042,R,0,,64,64,0,0,1,0x00,0x00,n/a,,,"))
        // No kernel reason; the cause; no tunnel.
        #expect(incidents[1].hasSuffix(",same-host,,listener_closed,"))
        #expect(
            try String(contentsOf: directory.appendingPathComponent("incidents.csv"), encoding: .utf8)
                .hasSuffix(",same-stack,,listener_closed,\r\n"))
        #expect(try lines("by-source-port.csv").first == "client_port,incidents,handshakes")
        #expect(try lines("by-source-port.csv").contains("40001,1,1"))
        #expect(try lines("by-bucket.csv") == ["bucket,incidents,handshakes,expected_incidents", "0,2,3,2.000"])
        let summary = try lines("summary.csv")
        #expect(summary.first == "metric,value")
        for metric in ["packets,21", "tcp_packets,21", "handshakes_completed,3", "incidents,2", "outcome_refused,1"] {
            #expect(summary.contains(metric), "summary.csv lacks \(metric)")
        }
    }

    @Test func readsStandardInputAndWritesTheCSVToStandardOutput() throws {
        let run = try Binary.run(
            ["analyze", "-", "--quiet"], standardInput: Binary.capture("crafted-pcap-be-nsec.pcap"))
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardError.isEmpty)
        let rows = run.standardOutput.split(whereSeparator: \.isNewline)
        #expect(rows.count == 3)
        #expect(rows.first?.hasPrefix("syn_time,") == true)
    }

    @Test func followsAConnectionAcrossRotatedFiles() throws {
        let run = try Binary.run([
            "analyze", "--quiet", "--csv", "-", Binary.capture("crafted-rotated-b.pcap"),
            Binary.capture("crafted-rotated-a.pcap"),
        ])
        #expect(run.status == 0, "\(run.standardError)")
        let expected = try String(contentsOfFile: Binary.capture("crafted-rotated.expected.csv"), encoding: .utf8)
        #expect(
            run.standardOutput.split(whereSeparator: \.isNewline).count
                == expected.split(whereSeparator: \.isNewline).count)
    }

    @Test func aMissingCaptureExitsOneAfterReportingTheRest() throws {
        let run = try Binary.run([
            "analyze", "--quiet", "/nonexistent.pcap", Binary.capture("crafted-pcap-le-usec.pcap"),
        ])
        #expect(run.status == 1)
        #expect(run.standardError == "rst-detective: cannot open '/nonexistent.pcap': No such file or directory\n")
        #expect(run.standardOutput.split(whereSeparator: \.isNewline).count == 3)
    }

    @Test func aTruncatedCaptureNamesTheRecord() throws {
        let path = Binary.capture("crafted-truncated.pcap")
        let run = try Binary.run(["analyze", "--quiet", path])
        #expect(run.status == 1)
        #expect(run.standardError.hasPrefix("rst-detective: '\(path)' record 22: truncated dump file"))
        #expect(run.standardError.split(whereSeparator: \.isNewline).count == 1)
        #expect(run.standardOutput.split(whereSeparator: \.isNewline).count == 3)
    }

    @Test func usageErrorsExit64() throws {
        #expect(try Binary.run(["analyze"]).status == 64)
        let badFilter = try Binary.run(["analyze", "--filter", "tcp port", Binary.capture("crafted-base.pcap.gz")])
        #expect(badFilter.status == 64)
        #expect(badFilter.standardError.contains("bad filter 'tcp port'"))
        #expect(try Binary.run(["analyze", "--listeners", "0", Binary.capture("crafted-base.pcap.gz")]).status == 64)
        #expect(try Binary.run(["analyze", "-j", "0", Binary.capture("crafted-base.pcap.gz")]).status == 64)
        // Port 0, a port that is not a number, and a seventh port besides 4789 and 8472.
        for ports in [["0"], ["vxlan"], ["1", "2", "3", "4", "5", "6", "7"]] {
            let arguments = ports.flatMap { ["--vxlan-port", $0] }
            let run = try Binary.run(["analyze"] + arguments + [Binary.capture("crafted-base.pcap.gz")])
            #expect(run.status == 64, "\(ports)")
            #expect(run.standardError.contains("--vxlan-port"), "\(run.standardError)")
            #expect(try Binary.run(["capture", "-i", "lo"] + arguments).status == 64, "\(ports)")
        }
        let sixPorts = ["1", "2", "3", "4", "5", "4789"].flatMap { ["--vxlan-port", $0] }
        #expect(try Binary.run(["analyze", "-q"] + sixPorts + [Binary.capture("crafted-base.pcap.gz")]).status == 0)
    }

    /// One thread or two, the reports are the same, rotated files and all.
    @Test func oneThreadAndTwoGiveTheSameReports() throws {
        let captures = [
            "reuseport-churn.pcap", "accept-overflow.pcap", "crafted-rotated-a.pcap", "crafted-rotated-b.pcap",
        ]
        .map(Binary.capture)
        var reports: [[String: String]] = []
        for threads in ["1", "2", "5"] {
            let directory = try Binary.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let run = try Binary.run(["analyze", "-q", "-j", threads, "--report-dir", directory.path] + captures)
            #expect(run.status == 0, "\(run.standardError)")
            var files: [String: String] = [:]
            for name in ["incidents.csv", "by-source-port.csv", "by-server-port.csv", "by-bucket.csv"] {
                files[name] = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            }
            reports.append(files)
        }
        #expect(reports[0]["incidents.csv"]?.split(whereSeparator: \.isNewline).count ?? 0 > 30)
        #expect(reports[1] == reports[0])
        #expect(reports[2] == reports[0])
    }

    /// Two writers of one final path (`--csv` into the report directory) each write a whole file aside.
    /// `--near-misses FILE` lists each near miss with the incident columns and its kind, as the capture's
    /// independent view expects, and the summary counts them.
    @Test func nearMissesGoToTheirOwnFile() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let nearMisses = directory.appendingPathComponent("near.csv").path
        let run = try Binary.run([
            "analyze", Binary.capture("near-misses.pcap"), "--csv", "/dev/null", "--near-misses", nearMisses,
        ])
        #expect(run.status == 0, "\(run.standardError)")
        let text = try String(contentsOfFile: nearMisses, encoding: .utf8)
        let lines = text.split(whereSeparator: \.isNewline)
        let header = try #require(lines.first).split(separator: ",", omittingEmptySubsequences: false)
        #expect(header.count == 40)
        #expect(header.last == "kind")
        #expect(lines.dropFirst().allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 40 })
        let rows = ReusePortCommandsTests.rows(text).map { "\(LiveCaptureTests.tuple($0)) \($0["kind"] ?? "")" }
        let expected = ReusePortCommandsTests.rows(
            try String(contentsOfFile: Binary.capture("near-misses.expected-near-misses.csv"), encoding: .utf8)
        ).map { "\(LiveCaptureTests.tuple($0)) \($0["kind"] ?? "")" }
        #expect(rows.sorted() == expected.sorted())
        #expect(run.standardError.contains("near misses (server RSTs that are not the signature): "))

        let twice = try Binary.run(["analyze", Binary.capture("near-misses.pcap"), "--near-misses", "-"])
        #expect(twice.status == 64)
        #expect(
            twice.standardError.contains(
                "only one of --csv, --connections, --near-misses, --jsonl, --html can be standard output"))
    }

    /// `--jsonl -` writes each incident as a JSON object with the columns of incidents.csv, numbers as
    /// numbers and empty fields as null; the incidents CSV then goes nowhere unless asked for.
    @Test func incidentsAsJSONLines() throws {
        let run = try Binary.run(["analyze", "--quiet", Binary.capture("crafted-provenance.pcap"), "--jsonl", "-"])
        #expect(run.status == 0, "\(run.standardError)")
        let lines = run.standardOutput.split(separator: "\n")
        #expect(lines.count == 13)
        let header = [
            "syn_time", "ack_time", "rst_time", "client_ip", "client_port", "server_ip", "server_port",
            "ack_payload_bytes", "syn_to_synack_us", "ack_to_rst_us", "syn_retransmits", "synack_retransmits",
            "server_isn", "hash", "bucket", "bucket_if_fewer", "bucket_if_more", "moves_on_churn", "history",
            "rst_seq", "rst_flags", "rst_window", "rst_options", "synack_ttl", "rst_ttl", "ttl_delta", "rst_ip_id",
            "rst_df", "ack_tos", "rst_tos", "tos_echo", "synack_flow_label", "rst_flow_label", "synack_mac",
            "rst_mac", "rst_origin", "kernel_reason", "cause", "tunnel",
        ]
        var origins: [String] = []
        for line in lines {
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            #expect(Set(object.keys) == Set(header))
            #expect(object["client_port"] is NSNumber)
            #expect(object["client_ip"] is String)
            #expect(object["kernel_reason"] is NSNull)
            #expect(object["tunnel"] is NSNull)
            origins.append(object["rst_origin"] as? String ?? "")
        }
        let expected = ReusePortCommandsTests.rows(
            try String(contentsOfFile: Binary.capture("crafted-provenance.expected-origins.csv"), encoding: .utf8))
        #expect(origins.sorted() == expected.map { $0["rst_origin"] ?? "" }.sorted())
        // Keys in the order of the CSV columns.
        #expect(lines.first?.hasPrefix("{\"syn_time\":\"2023-") == true)
    }

    /// On a terminal (a pseudo-terminal from `script`), the progress bar shows bytes, packets per second
    /// and time left, and is cleared before the summary; with `--quiet`, or without a terminal, nothing of it.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "needs script (util-linux)"))
    func aProgressBarOnlyOnATerminal() throws {
        // 50 copies of a capture of about 1,600 packets: past the first 65,536, where the bar is first drawn.
        let inputs = [String](repeating: Binary.capture("reuseport-churn.pcap"), count: 50)
        func onTerminal(_ arguments: [String]) throws -> String {
            let command = ([Binary.url.path, "analyze", "--csv", "/dev/null"] + arguments + inputs).joined(
                separator: " ")
            let run = try Binary.run(["-qec", command, "/dev/null"], executable: "/usr/bin/script")
            #expect(run.status == 0, "\(run.standardError)")
            return run.standardOutput
        }
        let shown = try onTerminal([])
        #expect(shown.contains("analyzing ["), "\(shown)")
        let size = try FileManager.default.attributesOfItem(atPath: inputs[0])[.size] as? Int ?? 0
        #expect(shown.contains("of \(String(format: "%.1f", Double(size * 50) / 1e6)) MB"), "\(shown)")
        #expect(shown.contains(" packets/s"))
        #expect(shown.contains("\r\u{1B}[K"))
        let quiet = try onTerminal(["--quiet"])
        #expect(!quiet.contains("analyzing"))
        let piped = try Binary.run(["analyze", "--csv", "/dev/null"] + inputs)
        #expect(!piped.standardError.contains("analyzing"))
        // The summary follows the cleared bar.
        let summary = try #require(piped.standardError.split(separator: "\n").first { $0.hasPrefix("read ") })
        #expect(shown.contains("\u{1B}[K" + summary), "\(shown)")
    }

    @Test func theCSVCanGoIntoTheReportDirectory() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let incidents = directory.appendingPathComponent("incidents.csv")
        let run = try Binary.run([
            "analyze", "--quiet", Binary.capture("crafted-base.pcap.gz"), "--report-dir", directory.path, "--csv",
            incidents.path,
        ])
        #expect(run.status == 0)
        let rows = try String(contentsOf: incidents, encoding: .utf8).split(whereSeparator: \.isNewline)
        #expect(rows.count == 3)
        #expect(rows.allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 39 })
    }

    @Test func anUnwritableReportDirectoryExitsTwo() throws {
        let run = try Binary.run(["analyze", Binary.capture("crafted-base.pcap.gz"), "--report-dir", "/proc/rstd"])
        #expect(run.status == 2)
        #expect(run.standardError.hasPrefix("rst-detective: cannot write '/proc/rstd'"))
    }
}

@Suite struct StandardInputTests {
    @Test func readsCompressedStandardInput() throws {
        let run = try Binary.run(["analyze", "--quiet", "-"], standardInput: Binary.capture("crafted-base.pcap.gz"))
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardOutput.split(whereSeparator: \.isNewline).count == 3)
    }

    /// An incident is on standard output as soon as its RST has been read, while the input is still open,
    /// as `tcpdump -U -w - | rst-detective analyze -` needs.
    @Test func writesEachIncidentBeforeTheInputEnds() throws {
        let capture = try Data(contentsOf: URL(fileURLWithPath: Binary.capture("crafted-pcap-le-usec.pcap")))
        let run = try Binary.PipedRun(["analyze", "--quiet", "-"])
        // The first incident's RST is the 5th record; then a packet 3 s later ends the hold of its cause, and
        // its row must come before the input ends.
        let sent = Binary.recordEnds(capture)[4]
        try run.write(capture.prefix(sent) + Binary.records(from: 5, only: true, of: capture, movedLater: 3))
        let received = run.readLines(2)
        #expect(String(decoding: received, as: UTF8.self).contains(",10.1.0.1,40001,10.1.0.2,8080,"))
        try run.input.fileHandleForWriting.close()
        let rest = run.output.fileHandleForReading.readDataToEndOfFile()
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus == 0)
        #expect((received + rest).split(separator: UInt8(ascii: "\n")).count == 2)
    }
}

@Suite struct InterruptionAndManyFilesTests {
    /// Ctrl-C while reading a pipe: the reports are written with what was read, and the run exits 0.
    @Test func sigintWritesTheReportsAndExitsZero() throws {
        let capture = try Data(contentsOf: URL(fileURLWithPath: Binary.capture("crafted-pcap-le-usec.pcap")))
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try Binary.PipedRun(["analyze", "--quiet", "-", "--report-dir", directory.path, "--csv", "-"])
        // Up to the first incident's RST (record 5), then a packet 3 s later that ends the hold of its cause:
        // its row on standard output says both have been read, and with no further record the tool then
        // waits on the open pipe, where the signal must reach it.
        try run.write(
            capture.prefix(Binary.recordEnds(capture)[4])
                + Binary.records(from: 5, only: true, of: capture, movedLater: 3))
        _ = run.readLines(2)
        kill(run.process.processIdentifier, SIGINT)
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus == 0)
        let summary = try String(contentsOf: directory.appendingPathComponent("summary.csv"), encoding: .utf8)
        #expect(summary.contains("interrupted,1"))
        #expect(summary.contains("packets,6\r\n"))
        let incidents = try String(contentsOf: directory.appendingPathComponent("incidents.csv"), encoding: .utf8)
        #expect(incidents.split(whereSeparator: \.isNewline).count == 2)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty)
    }

    /// A run killed before its end (SIGKILL, no chance to clean up) leaves no report under a final name: only
    /// hidden files aside, never a half-written CSV that looks complete.
    @Test func aKilledRunLeavesNoReportThatLooksComplete() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = try Data(contentsOf: URL(fileURLWithPath: Binary.capture("crafted-pcap-le-usec.pcap")))
        let run = try Binary.PipedRun(["analyze", "-", "--report-dir", directory.path, "--csv", "-", "-q"])
        // Up to the first incident's RST and a packet 3 s later: an incident is reported, and the run waits
        // for more.
        try run.write(
            capture.prefix(Binary.recordEnds(capture)[4])
                + Binary.records(from: 5, only: true, of: capture, movedLater: 3))
        #expect(run.readLines(2).split(separator: UInt8(ascii: "\n")).count == 2)
        kill(run.process.processIdentifier, SIGKILL)
        run.process.waitUntilExit()
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(!names.isEmpty)
        #expect(names.allSatisfy { $0.hasPrefix(".") && $0.hasSuffix(".tmp") }, "\(names)")
    }

    /// Inputs that can be read only once (process substitution, FIFOs) are not peeked at.
    @Test func readsProcessSubstitution() throws {
        let capture = Binary.capture("nanosecond.pcap")
        let gzip = Binary.capture("crafted-base.pcap.gz")
        let command = "exec '\(Binary.url.path)' analyze --quiet <(cat '\(capture)') <(cat '\(gzip)')"
        let run = try Binary.run(["-c", command], executable: "/bin/bash")
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardOutput.split(whereSeparator: \.isNewline).count == 5)
    }

    /// Hundreds of rotated files with a limit of 64 open files: the stream opens each file when it is due
    /// and closes it at its end. The files are given out of order; the first timestamps order them.
    @Test func manyRotatedFilesNeedFewOpenFiles() throws {
        let name = "normal-confounders"
        let capture = try Data(contentsOf: URL(fileURLWithPath: Binary.capture("\(name).pcap")))
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var start = 24
        var paths: [String] = []
        for (index, end) in Binary.recordEnds(capture).enumerated() {
            let path = directory.appendingPathComponent("part\(index).pcap").path
            try (capture.prefix(24) + capture[start..<end]).write(to: URL(fileURLWithPath: path))
            paths.append(path)
            start = end
        }
        #expect(paths.count > 200)
        let command =
            "ulimit -n 64 && exec '\(Binary.url.path)' analyze --quiet " + paths.reversed().joined(separator: " ")
        let run = try Binary.run(["-c", command], executable: "/bin/sh")
        #expect(run.status == 0, "\(run.standardError.prefix(300))")
        let expected = try String(contentsOfFile: Binary.capture("\(name).expected.csv"), encoding: .utf8)
        #expect(
            run.standardOutput.split(whereSeparator: \.isNewline).count
                == expected.split(whereSeparator: \.isNewline).count)
    }
}
