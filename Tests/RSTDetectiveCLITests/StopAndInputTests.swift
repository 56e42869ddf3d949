import Foundation
import Testing

/// Every way a run ends but SIGKILL writes every report: SIGHUP as Ctrl-C, a reader that closes standard
/// output, a Ctrl-C the parent set to be ignored. The binary is fed through a pipe that stays open, so that
/// only the signal can end the run.
@Suite struct StopSignalTests {
    static let capture = Binary.capture("crafted-pcap-le-usec.pcap")

    /// Starts `analyze -` with the reports in `directory` and the incidents on standard output, and feeds it
    /// the capture up to the first incident's RST (record 5) and then a packet 3 s later that ends the hold of
    /// its cause (`Binary.records(from:only:of:movedLater:)`), returning once that incident's row has come: 6 packets.
    ///
    /// The binary is started as a shell starts it, with SIGPIPE at its default action (the test runner
    /// ignores it, and a child would inherit that), and with `ignored` set to be ignored, as a shell does for
    /// SIGINT in a job started with `&` in a script, or nohup for SIGHUP.
    static func startAtFirstIncident(_ directory: URL, ignoring ignored: Int32? = nil) throws -> Binary.PipedRun {
        let arguments = ["analyze", "-", "--report-dir", directory.path, "--csv", "-", "-q"]
        let program =
            "import os, signal, sys; signal.signal(signal.SIGPIPE, signal.SIG_DFL); "
            + (ignored.map { "signal.signal(\($0), signal.SIG_IGN); " } ?? "") + "os.execv(sys.argv[1], sys.argv[1:])"
        let run = try Binary.PipedRun(
            ["python3", "-c", program, Binary.url.path] + arguments, executable: "/usr/bin/env")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: capture))
        try run.write(
            bytes.prefix(Binary.recordEnds(bytes)[4]) + Binary.records(from: 5, only: true, of: bytes, movedLater: 3))
        #expect(run.readLines(2).split(separator: UInt8(ascii: "\n")).count == 2)
        return run
    }

    /// Waits up to `seconds` for the process to end; false if it is still running.
    static func waitForExit(_ process: Process, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        return !process.isRunning
    }

    /// The reports are all under their final names, none left aside, and summary.csv says how far the run got.
    static func expectEveryReport(in directory: URL, packets: Int, interrupted: Bool) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names == ["by-bucket.csv", "by-server-port.csv", "by-source-port.csv", "incidents.csv", "summary.csv"])
        let summary = try String(contentsOf: directory.appendingPathComponent("summary.csv"), encoding: .utf8)
        #expect(summary.contains("interrupted,\(interrupted ? 1 : 0)\r\n"))
        #expect(summary.contains("packets,\(packets)\r\n"))
    }

    @Test func sighupWritesEveryReportAndExitsZero() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try Self.startAtFirstIncident(directory)
        kill(run.process.processIdentifier, SIGHUP)
        run.process.waitUntilExit()
        #expect(run.process.terminationReason == .exit)
        #expect(run.process.terminationStatus == 0)
        try Self.expectEveryReport(in: directory, packets: 6, interrupted: true)
    }

    /// SIGPIPE is ignored: the incidents written after the reader of standard output went away fail with
    /// EPIPE instead of killing the process, and the run goes on to write every other report.
    @Test func aClosedStandardOutputDoesNotKillTheRun() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try Self.startAtFirstIncident(directory)
        try run.output.fileHandleForReading.close()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.capture))
        try run.write(Binary.records(from: 5, of: bytes, movedLater: 3))
        try run.input.fileHandleForWriting.close()
        run.process.waitUntilExit()
        #expect(run.process.terminationReason == .exit, "killed by signal \(run.process.terminationStatus)")
        try Self.expectEveryReport(in: directory, packets: Binary.recordEnds(bytes).count + 1, interrupted: false)
        let incidents = try String(contentsOf: directory.appendingPathComponent("incidents.csv"), encoding: .utf8)
        #expect(incidents.split(whereSeparator: \.isNewline).count == 3)
    }

    /// A run started with Ctrl-C ignored (a background job of a script) still stops on it, as tcpdump does.
    @Test func aSigintTheParentIgnoredStillStopsTheRun() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try Self.startAtFirstIncident(directory, ignoring: SIGINT)
        kill(run.process.processIdentifier, SIGINT)
        #expect(Self.waitForExit(run.process, seconds: 5), "still running 5 s after SIGINT")
        try run.input.fileHandleForWriting.close()
        run.process.waitUntilExit()
        #expect(run.process.terminationReason == .exit)
        #expect(run.process.terminationStatus == 0)
        try Self.expectEveryReport(in: directory, packets: 6, interrupted: true)
    }

    /// Under nohup (SIGHUP ignored), SIGHUP stays ignored, as tcpdump's does: the run reads to the end.
    @Test func aSighupIgnoredUnderNohupStaysIgnored() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try Self.startAtFirstIncident(directory, ignoring: SIGHUP)
        kill(run.process.processIdentifier, SIGHUP)
        #expect(!Self.waitForExit(run.process, seconds: 0.3))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.capture))
        try run.write(Binary.records(from: 5, of: bytes, movedLater: 3))
        try run.input.fileHandleForWriting.close()
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus == 0)
        try Self.expectEveryReport(in: directory, packets: Binary.recordEnds(bytes).count + 1, interrupted: false)
    }
}

/// `capture -i lo` in a network namespace of its own, stopped by SIGHUP after the reader of its standard
/// output went away: it is not killed, writes every report, and removes its tracefs instance.
@Suite(.serialized) struct CaptureStopTests {
    static let namespace = "rstd-stops-\(getpid())"

    /// The tracefs instances, seen through a tracefs mounted in a private mount namespace (this machine may
    /// have none mounted; the instances are the kernel's, whichever mount shows them).
    static func tracefsInstances() throws -> [String] {
        let list = try Binary.run(
            [
                "--mount", "--propagation", "private", "sh", "-c",
                "mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; ls /sys/kernel/tracing/instances",
            ],
            executable: "/usr/bin/unshare")
        return list.standardOutput.split(whereSeparator: \.isNewline).map(String.init)
    }

    @Test(.enabled(if: ReusePortKernelTests.isRoot, "needs root, to make a network namespace and capture"))
    func sighupAfterStandardOutputClosedWritesEveryReportAndRemovesTheTracefsInstance() throws {
        let ip = "/usr/sbin/ip"
        _ = try? Binary.run(["netns", "delete", Self.namespace], executable: ip)
        try #require(try Binary.run(["netns", "add", Self.namespace], executable: ip).status == 0)
        defer { _ = try? Binary.run(["netns", "delete", Self.namespace], executable: ip) }
        try #require(try Binary.run(["-n", Self.namespace, "link", "set", "lo", "up"], executable: ip).status == 0)
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let reports = directory.appendingPathComponent("reports").path
        let errors = directory.appendingPathComponent("capture.err").path
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        // A private mount namespace with tracefs mounted, and only the network namespace entered, so that the
        // tracepoint reader finds tracefs; SIGPIPE at its default action, as a shell starts a command (the test
        // runner ignores it); `exec` all the way, so that the binary's pid is that of the process started here.
        let command =
            "mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; exec python3 -c 'import os, signal, sys; "
            + "signal.signal(signal.SIGPIPE, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' "
            + "nsenter --net=/run/netns/\(Self.namespace) '\(Binary.url.path)' capture -i lo --report-dir '\(reports)' "
            + "--near-misses - tcp"
        let capture = Process()
        capture.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        capture.arguments = ["--mount", "--propagation", "private", "sh", "-c", command]
        let output = Pipe()
        capture.standardOutput = output
        capture.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        try capture.run()
        let pid = capture.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 30) { kill(pid, SIGKILL) }
        try #require(LiveCaptureTests.waitFor("listening on lo", in: errors, seconds: 10))
        let joined =
            (try? String(contentsOfFile: errors, encoding: .utf8))?.contains("kernel_reason unavailable") == false
        if joined { #expect(try Self.tracefsInstances().contains("rst-detective-\(pid)")) }
        // The near-miss header has been written; the reader goes away, then a refused connection's row is
        // written to the closed pipe.
        try output.fileHandleForReading.close()
        let connect = try Binary.run(
            [
                "netns", "exec", Self.namespace, "python3", "-c",
                "import socket\ntry: socket.create_connection(('127.0.0.1', 1), timeout=2)\nexcept OSError: pass",
            ],
            executable: ip)
        #expect(connect.status == 0, "\(connect.standardError)")
        // Time to read the RST and write its row; the pipe's end is closed, so the write fails at once.
        usleep(1_500_000)
        #expect(capture.isRunning, "the capture ended before the signal")
        kill(pid, SIGHUP)
        capture.waitUntilExit()
        let diagnostics = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(capture.terminationReason == .exit, "killed by signal \(capture.terminationStatus): \(diagnostics)")
        #expect(capture.terminationStatus == 0, "\(diagnostics)")
        let names = try FileManager.default.contentsOfDirectory(atPath: reports).sorted()
        #expect(names == ["by-bucket.csv", "by-server-port.csv", "by-source-port.csv", "incidents.csv", "summary.csv"])
        let summary = try String(contentsOfFile: reports + "/summary.csv", encoding: .utf8)
        #expect(summary.contains("outcome_refused,1\r\n"), "\(summary)")
        #expect(summary.contains("interrupted,1\r\n"))
        #expect(!(try Self.tracefsInstances().contains("rst-detective-\(pid)")))
    }
}

/// Every numeric option has a range, and every file name must be given: outside, one line and exit 64.
@Suite struct OptionRangeTests {
    static let capture = Binary.capture("crafted-base.pcap.gz")

    @Test(arguments: [
        (["analyze", "--max-delay", "1e-10", capture], "--max-delay must be 0.000001 to 3600 seconds, not 1e-10"),
        (["analyze", "--handshake-timeout", "1e-300", capture], "--handshake-timeout must be 0.000001 to 86400"),
        (["analyze", "--max-delay", "inf", capture], "--max-delay must be 0.000001 to 3600 seconds, not inf"),
        (["analyze", "--handshake-timeout", "nan", capture], "--handshake-timeout must be 0.000001 to 86400"),
        (["analyze", "--max-flows", "0", capture], "--max-flows must be 1 to 100000000, not 0"),
        (["analyze", "-j", "100000", capture], "-j must be 1 to 256, not 100000"),
        (["capture", "-i", "lo", "--duration", "1e10"], "--duration must be 0.001 to 31536000 seconds"),
        (["capture", "-i", "lo", "--duration", "inf"], "--duration must be 0.001 to 31536000 seconds, not inf"),
        (["capture", "-i", "lo", "--duration", "nan"], "--duration must be 0.001 to 31536000 seconds, not nan"),
        (["capture", "-i", "lo", "--duration", "1e-300"], "--duration must be 0.001 to 31536000 seconds"),
        // --duration: were the interval taken, the capture must still end.
        (
            ["capture", "-i", "lo", "--report-interval", "inf", "--duration", "3"],
            "--report-interval must be 1 to 86400"
        ),
        (["capture", "-i", "lo", "--metrics-interval", "nan"], "--metrics-interval must be 1 to 86400 seconds"),
        (["calibrate", "--listeners", "2", "--threads", "0", "x.csv"], "--threads must be 1 to 256, not 0"),
        (["analyze", ""], "a capture needs a file name"),
        (["analyze", "--csv", "", capture], "--csv needs a file name"),
        (["analyze", "--report-dir", "", capture], "--report-dir needs a directory"),
        (["analyze", "--connections", "", capture], "--connections needs a file name"),
        (["analyze", "--near-misses", "", capture], "--near-misses needs a file name"),
        (["analyze", "--jsonl", "", capture], "--jsonl needs a file name"),
        (["analyze", "--html", "", capture], "--html needs a file name"),
        (["capture", "-i", "lo", "-w", ""], "-w needs a file name"),
        (["capture", "-i", ""], "-i needs an interface name"),
        (["capture", "-i", "lo", "-Z", ""], "-Z needs a user name"),
        (["calibrate", "--listeners", "2", ""], "the observations needs a file name"),
    ])
    func outOfRangeIsAUsageError(arguments: [String], message: String) throws {
        let run = try Binary.run(arguments)
        #expect(run.status == 64)
        let first = run.standardError.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        #expect(first.hasPrefix("Error: " + message), "\(run.standardError)")
        #expect(run.standardOutput.isEmpty)
    }

    /// The ends of a range are taken, and the shortest delay does not round to 0 ns.
    @Test func theEndsOfARangeAreTaken() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try Binary.run([
            "analyze", "-q", "--max-delay", "0.000001", "--handshake-timeout", "86400", "-j", "256",
            "--report-dir", directory.path, Self.capture,
        ])
        #expect(run.status == 0, "\(run.standardError)")
        let summary = try String(contentsOf: directory.appendingPathComponent("summary.csv"), encoding: .utf8)
        #expect(summary.contains("max_delay_us,1\r\n"), "\(summary)")
        #expect(summary.contains("handshake_timeout_us,86400000000\r\n"))
    }
}

/// The BPF filter is bounded and compiled once per link type.
@Suite struct FilterBoundTests {
    static let capture = Binary.capture("crafted-pcap-le-usec.pcap")

    static func seconds(_ body: () throws -> Binary.Run) rethrows -> (Binary.Run, Double) {
        let start = Date()
        let run = try body()
        return (run, Date().timeIntervalSince(start))
    }

    /// 96 KB of `tcp and ` took libpcap 15 s and 3.8 GB (twice over): now refused before it is compiled,
    /// with a message that does not repeat it.
    @Test func anAbsurdFilterIsRefusedAtOnce() throws {
        let filter = String(repeating: "tcp and ", count: 12_000) + "tcp"
        for arguments in [
            ["analyze", "--filter", filter, Self.capture], ["capture", "-i", "lo", "--duration", "3", filter],
        ] {
            let (run, seconds) = try Self.seconds { try Binary.run(arguments) }
            #expect(run.status == 64)
            #expect(seconds < 2, "took \(seconds) s")
            #expect(
                run.standardError.hasPrefix(
                    "Error: bad filter: the expression is 96003 characters long, more than the 4096 taken"))
            #expect(run.standardError.count < 400)
        }
    }

    /// A filter within the length bound can still compile to more instructions than the kernel takes.
    @Test func aFilterOfTooManyInstructionsIsRefused() throws {
        let filter = (0..<180).map { "(vlan and port \($0))" }.joined(separator: " or ")
        #expect(filter.utf8.count <= 4096)
        let run = try Binary.run(["analyze", "--filter", filter, Self.capture])
        #expect(run.status == 64)
        #expect(run.standardError.contains("': it compiles to 5362 BPF instructions, more than the 4096"))
    }

    /// Twelve Ethernet files cost no more compiling than one: the check of the command line and every
    /// file share one program. (Compiled per file, this filter takes about 0.5 s each.)
    @Test func theFilterIsCompiledOncePerLinkType() throws {
        let filter = "tcp and (" + (0..<150).map { "port \(1000 + $0)" }.joined(separator: " or ") + " or port 8080)"
        let (one, oneSeconds) = try Self.seconds {
            try Binary.run(["analyze", "-q", "--filter", filter, Self.capture])
        }
        let (twelve, twelveSeconds) = try Self.seconds {
            try Binary.run(["analyze", "-q", "--filter", filter] + Array(repeating: Self.capture, count: 12))
        }
        #expect(one.status == 0 && twelve.status == 0, "\(one.standardError) \(twelve.standardError)")
        #expect(twelveSeconds < 3 * oneSeconds, "1 file: \(oneSeconds) s, 12 files: \(twelveSeconds) s")
    }
}

/// A classic pcap's link-type field: the upper 6 bits are the FCS length, which libpcap 1.10 takes aside;
/// bits 16 to 25 are reserved, and a file that sets them names no link type (tcpdump: "unknown data link
/// type 65537").
@Suite struct LinkTypeFieldTests {
    /// `crafted-pcap-le-usec.pcap` with its link-type field (little-endian, offset 20) set to `field`.
    static func withLinkTypeField(_ field: UInt32, in directory: URL) throws -> String {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: Binary.capture("crafted-pcap-le-usec.pcap")))
        withUnsafeBytes(of: field.littleEndian) { bytes.replaceSubrange(20..<24, with: $0) }
        let path = directory.appendingPathComponent(String(format: "linktype-%08x.pcap", field)).path
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func reservedBitsAreRefusedWithTheFileNamed() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try Self.withLinkTypeField(0x0001_0001, in: directory)
        let run = try Binary.run(["analyze", "-q", "--report-dir", directory.path + "/reports", path])
        #expect(run.status == 1)
        #expect(
            run.standardError
                == "rst-detective: cannot open '\(path)': the link-type field gives 65537, which is not a link type: "
                + "its reserved bits (16 to 25) must be 0\n")
        let summary = try String(contentsOfFile: directory.path + "/reports/summary.csv", encoding: .utf8)
        #expect(summary.contains("files_failed_cannot_open,1\r\n"))
    }

    /// An FCS length in the upper bits is valid: the file reads as plain Ethernet.
    @Test func anFCSLengthIsTaken() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try Self.withLinkTypeField(0x1400_0001, in: directory)
        let run = try Binary.run(["analyze", "-q", path])
        let plain = try Binary.run(["analyze", "-q", Binary.capture("crafted-pcap-le-usec.pcap")])
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardOutput == plain.standardOutput)
    }
}

/// SYNs the full flow table could not take are a warning of the terminal summary, not only a summary.csv line.
@Suite struct UntrackedSYNWarningTests {
    @Test func aFullFlowTableIsAWarning() throws {
        let capture = Binary.capture("accept-overflow.pcap")
        let full = try Binary.run(["analyze", "--max-flows", "1", "--csv", "/dev/null", capture])
        #expect(full.status == 0)
        #expect(
            full.standardError.contains(
                "\nwarning: 241 SYN(s) not tracked because the flow table was full (--max-flows 1): their "
                    + "handshakes, and any incidents among them, are in no report"), "\(full.standardError)")
        let roomy = try Binary.run(["analyze", "--csv", "/dev/null", capture])
        #expect(!roomy.standardError.contains("not tracked"))
    }
}
