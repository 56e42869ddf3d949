import Foundation
import Testing

/// How outputs are opened and written, tried as a hostile local user and a hostile reader would: `nobody`
/// plants symlinks for a run as root in a sticky world-writable directory (with `fs.protected_symlinks` 0,
/// as many servers have it, so the kernel does not step in), names are devices, FIFOs and symlinks, a
/// disk fills up during a live capture, and the reader of standard output goes away.
@Suite(.serialized) struct FileSafetyTests {
    static let nobody: UInt32 = 65534

    /// The file root must never write: `nobody`'s symlinks point at it.
    static let precious = "precious, not to be overwritten\n"

    /// Runs `arguments` as nobody:nogroup, with no supplementary groups.
    static func asNobody(_ arguments: [String]) throws -> Binary.Run {
        try Binary.run(
            ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + arguments, executable: "/usr/bin/setpriv")
    }

    /// A directory for the test (0755), holding `victim` (the precious file) and `shared`, sticky and
    /// world-writable as /tmp is, and `fs.protected_symlinks` set to 0 while `body` runs, then restored.
    static func withSharedDirectory(_ body: (_ directory: String, _ victim: String) throws -> Void) throws {
        let setting = "/proc/sys/fs/protected_symlinks"
        let saved = try String(contentsOfFile: setting, encoding: .utf8)
        try "0".write(toFile: setting, atomically: false, encoding: .utf8)
        defer { try? saved.write(toFile: setting, atomically: false, encoding: .utf8) }
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = chmod(directory.path, 0o755)
        let shared = directory.appendingPathComponent("shared").path
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
        _ = chmod(shared, 0o1777)
        let victim = directory.appendingPathComponent("victim").path
        try precious.write(toFile: victim, atomically: false, encoding: .utf8)
        try body(shared, victim)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == precious, "root wrote through a symlink")
    }

    static func fileType(_ path: String) -> mode_t? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return status.st_mode & S_IFMT
    }

    /// Symlinks `nobody` planted at the final names are refused with one line, for every kind of output;
    /// one the running user made there is followed and written in place, as `fs.protected_symlinks` has it.
    @Test(.enabled(if: ReusePortKernelTests.isRoot, "needs root, to be attacked as root by nobody"))
    func symlinksAnotherUserPlantedAreRefused() throws {
        try Self.withSharedDirectory { shared, victim in
            let capture = Binary.capture("crafted-base.pcap.gz")
            let outputs: [(option: String, name: String, command: [String])] = [
                ("--csv", "incidents.csv", ["analyze", capture]),
                ("--connections", "connections.csv", ["analyze", capture]),
                ("--near-misses", "near-misses.csv", ["analyze", capture]),
                ("--jsonl", "incidents.jsonl", ["analyze", capture]),
                ("--html", "page.html", ["analyze", capture]),
                ("--metrics-file", "rst.prom", ["capture", "-i", "lo", "--duration", "0.2", "tcp port 1"]),
                ("-w", "raw.pcap", ["capture", "-i", "lo", "--duration", "0.2", "tcp port 1"]),
            ]
            for output in outputs {
                let path = shared + "/" + output.name
                let planted = try Self.asNobody(["ln", "-s", victim, path])
                try #require(planted.status == 0, "\(planted.standardError)")
                let run = try Binary.run(output.command + ["-q", output.option, path])
                #expect(run.status == 2, "\(output.option): \(run.standardError)")
                #expect(
                    run.standardError
                        == "rst-detective: refusing to write '\(path)' as root: it is a symlink owned by uid "
                        + "\(Self.nobody), who could point it at any file\n")
                #expect(Self.fileType(path) == S_IFLNK)
            }
            // Nor does root follow a link in nobody's own directory, which is neither sticky nor shared.
            let own = shared + "/nobodys"
            let made = try Self.asNobody(["/bin/sh", "-c", "mkdir -m 755 \(own) && ln -s \(victim) \(own)/x.csv"])
            try #require(made.status == 0, "\(made.standardError)")
            let refused = try Binary.run(["analyze", capture, "-q", "--csv", own + "/x.csv"])
            #expect(refused.status == 2, "\(refused.standardError)")
            #expect(refused.standardError.contains("is a symlink owned by uid \(Self.nobody), who could point it"))
            // Nor does it make a new file there: nobody could swap the directory for a symlink meanwhile.
            let inside = try Binary.run(["analyze", capture, "-q", "--csv", own + "/new.csv"])
            #expect(inside.status == 2, "\(inside.standardError)")
            #expect(
                inside.standardError
                    == "rst-detective: refusing to write reports into '\(own)/new.csv' as root: '\(own)' is owned by "
                    + "uid \(Self.nobody), who could redirect them\n")
            #expect(!FileManager.default.fileExists(atPath: own + "/new.csv"))
            // Root's own symlink there is the user's choice: written through, in place, and left a symlink.
            let mine = shared + "/mine.csv"
            let target = shared + "/../mine-target.csv"
            try "old\n".write(toFile: target, atomically: false, encoding: .utf8)
            try FileManager.default.createSymbolicLink(atPath: mine, withDestinationPath: target)
            let run = try Binary.run(["analyze", capture, "-q", "--csv", mine])
            #expect(run.status == 0, "\(run.standardError)")
            #expect(Self.fileType(mine) == S_IFLNK)
            #expect(try String(contentsOfFile: target, encoding: .utf8).split(separator: "\r\n").count == 3)
        }
    }

    /// Before, the file written aside had a name anyone could guess (`.NAME.PID.1.tmp`), opened with
    /// `fopen(…, "w")`: symlinks for the next few thousand process ids made root write through one. Now the
    /// name is random and created exclusively, so none is opened.
    @Test(.enabled(if: ReusePortKernelTests.isRoot, "needs root, to be attacked as root by nobody"))
    func guessedTemporaryNamesAreNeverOpened() throws {
        try Self.withSharedDirectory { shared, victim in
            let next =
                Int(
                    try String(contentsOfFile: "/proc/sys/kernel/ns_last_pid", encoding: .utf8)
                        .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            let plant = """
                import os, sys
                for pid in range(\(next + 1), \(next + 3001)):
                    for name in ("incidents.csv", "page.html"):
                        os.symlink(sys.argv[1], "%s/.%s.%d.1.tmp" % (sys.argv[2], name, pid))
                """
            let planted = try Self.asNobody(["/usr/bin/python3", "-c", plant, victim, shared])
            try #require(planted.status == 0, "\(planted.standardError)")
            let csv = shared + "/incidents.csv"
            let page = shared + "/page.html"
            let run = try Binary.run([
                "analyze", Binary.capture("crafted-base.pcap.gz"), "-q", "--csv", csv, "--html", page,
            ])
            #expect(run.status == 0, "\(run.standardError)")
            for path in [csv, page] {
                #expect(Self.fileType(path) == S_IFREG, "\(path)")
                let owner = try FileManager.default.attributesOfItem(atPath: path)[.ownerAccountName] as? String
                #expect(owner == "root")
            }
            #expect(try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\r\n").count == 3)
            // Nothing of root's is left aside: every hidden name is one nobody planted.
            let names = try FileManager.default.contentsOfDirectory(atPath: shared).filter { $0.hasPrefix(".") }
            #expect(names.count == 6000)
        }
    }

    /// As root, a report directory another user owns is refused, as logrotate refuses one: its owner could
    /// put symlinks in it (`summary.csv`, `incidents.csv.partial`), which the kernel's rule would follow,
    /// since their owner is the directory's. So is one below a directory another user owns.
    @Test(.enabled(if: ReusePortKernelTests.isRoot, "needs root, to be attacked as root by nobody"))
    func aReportDirectoryAnotherUserOwnsIsRefused() throws {
        try Self.withSharedDirectory { shared, victim in
            let reports = shared + "/reports"
            for command in [
                ["mkdir", reports], ["ln", "-s", victim, reports + "/summary.csv"],
                ["ln", "-s", victim, reports + "/incidents.csv.partial"],
            ] {
                let made = try Self.asNobody(command)
                try #require(made.status == 0, "\(made.standardError)")
            }
            let capture = Binary.capture("crafted-base.pcap.gz")
            let run = try Binary.run(["analyze", capture, "-q", "--report-dir", reports])
            #expect(run.status == 2)
            #expect(
                run.standardError
                    == "rst-detective: refusing to write reports into '\(reports)' as root: it is owned by uid "
                    + "\(Self.nobody), who could redirect them\n")
            let below = reports + "/daily"
            let nested = try Binary.run(["analyze", capture, "-q", "--report-dir", below])
            #expect(nested.status == 2)
            #expect(
                nested.standardError
                    == "rst-detective: refusing to write reports into '\(below)' as root: '\(reports)' is owned by "
                    + "uid \(Self.nobody), who could redirect them\n")
        }
    }

    /// `--csv /dev/null` and `--csv /dev/stderr` as root, in a mount namespace of their own with a /dev of
    /// its own (a tmpfs holding a null device and the stderr symlink), so that the test cannot harm the
    /// machine's: the device stays a device and the symlink a symlink, written through, never replaced.
    @Test(.enabled(if: ReusePortKernelTests.isRoot, "needs root, to make a mount namespace and a device"))
    func devicesAndSymlinksNamedAsOutputsAreWrittenInPlace() throws {
        let capture = Binary.capture("crafted-base.pcap.gz")
        let script = """
            mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 && ln -s /proc/self/fd/2 /dev/stderr || exit 99
            "$0" analyze "$1" -q --csv /dev/null --html /dev/null || exit 98
            "$0" analyze "$1" -q --csv /dev/stderr || exit 97
            stat -c '%F %t,%T' /dev/null; stat -c '%F' /dev/stderr
            """
        let run = try Binary.run(
            ["--mount", "--propagation", "private", "/bin/sh", "-c", script, Binary.url.path, capture],
            executable: "/usr/bin/unshare")
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardOutput == "character special file 1,3\nsymbolic link\n")
        #expect(run.standardError.hasPrefix("syn_time,"), "\(run.standardError)")
        #expect(run.standardError.split(separator: "\r\n").count == 3)
    }

    /// A FIFO named as an output is written in place: its reader gets each row while the run goes on.
    @Test func aFIFOsReaderGetsTheRowsWhileTheRunGoes() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let fifo = directory.appendingPathComponent("rows").path
        try #require(mkfifo(fifo, 0o600) == 0)
        // Opened first and without blocking, so the tool's open finds its reader.
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        try #require(reader >= 0)
        defer { close(reader) }
        let capture = try Data(contentsOf: URL(fileURLWithPath: Binary.capture("crafted-pcap-le-usec.pcap")))
        let run = try Binary.PipedRun(["analyze", "--quiet", "-", "--csv", fifo])
        // Up to the first incident's RST (record 5) and a packet 3 s later, past the hold of its cause: the
        // header and its row must come while the input is open.
        try run.write(
            capture.prefix(Binary.recordEnds(capture)[4])
                + Binary.records(from: 5, only: true, of: capture, movedLater: 3))
        var received = Data()
        let deadline = Date().addingTimeInterval(10)
        while received.split(separator: UInt8(ascii: "\n")).count < 2, Date() < deadline {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(reader, &chunk, chunk.count)
            if count > 0 { received += chunk.prefix(count) } else { usleep(20_000) }
        }
        #expect(String(decoding: received, as: UTF8.self).contains(",10.1.0.1,40001,10.1.0.2,8080,"))
        #expect(run.process.isRunning)
        try run.write(Binary.records(from: 6, of: capture, movedLater: 3))
        try run.input.fileHandleForWriting.close()
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus == 0)
        #expect(Self.fileType(fifo) == S_IFIFO)
    }

    /// Runs `capture -i lo` in a network namespace of its own with `output` and `path` (a file on a tmpfs of
    /// 48 KiB the test mounts), makes 600 refused connections (a SYN and a RST each), waits for the disk-full
    /// line and a report interval, and stops it with SIGINT.
    ///
    /// - Returns: The exit status, standard error, and the bytes left in `path` and in `path.partial`.
    static func captureOntoAFullDisk(output: String, file: String) throws -> (
        status: Int32, diagnostics: String, path: String, contents: [String: Data]
    ) {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let full = directory.appendingPathComponent("full").path
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: false)
        let mounted = try Binary.run(["-t", "tmpfs", "-o", "size=48k", "tmpfs", full], executable: "/usr/bin/mount")
        try #require(mounted.status == 0, "\(mounted.standardError)")
        defer { _ = try? Binary.run([full], executable: "/usr/bin/umount") }
        let namespace = "rstd-full-\(getpid())-\(output.filter(\.isLetter))"
        try #require(try Binary.run(["netns", "add", namespace], executable: "/usr/sbin/ip").status == 0)
        defer { _ = try? Binary.run(["netns", "del", namespace], executable: "/usr/sbin/ip") }
        _ = try Binary.run(["netns", "exec", namespace, "ip", "link", "set", "lo", "up"], executable: "/usr/sbin/ip")

        let path = full + "/" + file
        let errors = directory.appendingPathComponent("capture.err").path
        let capture = try Binary.startCapture(
            [
                "netns", "exec", namespace, Binary.url.path, "capture", "-i", "lo", output, path,
                "--report-interval", "1", "tcp port 9",
            ], interface: "lo", errors: errors)
        let refused = """
            import socket
            for _ in range(600):
                s = socket.socket()
                try:
                    s.connect(("127.0.0.1", 9))
                except ConnectionRefusedError:
                    pass
                s.close()
            """
        let traffic = try Binary.run(
            ["netns", "exec", namespace, "python3", "-c", refused], executable: "/usr/sbin/ip")
        try #require(traffic.status == 0, "\(traffic.standardError)")
        // Said while the capture goes on, which then passes a report interval: it tries to publish what it has.
        #expect(LiveCaptureTests.waitFor("No space left on device", in: errors, seconds: 2))
        Thread.sleep(forTimeInterval: 1.5)
        kill(capture.processIdentifier, SIGINT)
        capture.waitUntilExit()
        var contents: [String: Data] = [:]
        for name in [path, path + ".partial"] { contents[name] = FileManager.default.contents(atPath: name) }
        return (capture.terminationStatus, try String(contentsOfFile: errors, encoding: .utf8), path, contents)
    }

    /// What every full-disk run must show: exit 2, one line naming the file and the reason besides the start
    /// line, and the analysis carried on to the end.
    static func expectFullDiskReported(_ run: (status: Int32, diagnostics: String, path: String)) {
        #expect(run.status == 2, "\(run.diagnostics)")
        let complaints = run.diagnostics.split(separator: "\n").filter {
            $0.hasPrefix("rst-detective: ") && !$0.hasPrefix("rst-detective: listening on ")
        }
        #expect(
            complaints == ["rst-detective: cannot write '\(run.path)': No space left on device"], "\(run.diagnostics)")
        #expect(run.diagnostics.contains("600 connection attempts"))
    }

    /// The disk fills up during a live capture (a 48 KiB tmpfs, for about 74 KB of connection rows): one line
    /// names the file and the reason as soon as it happens, the run ends with exit 2, and no file holds a row
    /// cut in half.
    @Test(
        .enabled(if: ReusePortKernelTests.isRoot, "needs root, to mount a tmpfs and make a network namespace"),
        .enabled(if: ReusePortKernelTests.labIsPossible, "cannot make a network namespace, or python3 is missing")
    )
    func aFullDiskEndsTheRunWithOneLineAndNoCutRow() throws {
        let run = try Self.captureOntoAFullDisk(output: "--connections", file: "connections.csv")
        Self.expectFullDiskReported((run.status, run.diagnostics, run.path))
        // Under the final name, if anything, and in NAME.partial: whole rows only, each of 20 fields.
        var rows = 0
        for (path, data) in run.contents {
            let text = String(decoding: data, as: UTF8.self)
            #expect(text.hasSuffix("\r\n"), "\(path) ends in a cut row")
            let lines = text.split(separator: "\r\n")
            #expect(lines.allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 20 })
            rows = max(rows, lines.count - 1)
        }
        #expect(rows > 100 && rows < 600, "\(rows) rows kept")
    }

    /// The same for the packets saved with -w (about 90 KB of them): one line, exit 2, the analysis goes on to
    /// the end, and the file keeps whole records only, which `analyze` reads without an error.
    @Test(
        .enabled(if: ReusePortKernelTests.isRoot, "needs root, to mount a tmpfs and make a network namespace"),
        .enabled(if: ReusePortKernelTests.labIsPossible, "cannot make a network namespace, or python3 is missing")
    )
    func aFullDiskUnderTheSavedPacketsKeepsWholeRecords() throws {
        let run = try Self.captureOntoAFullDisk(output: "-w", file: "raw.pcap")
        Self.expectFullDiskReported((run.status, run.diagnostics, run.path))
        let saved = try #require(run.contents[run.path])
        let ends = Binary.recordEnds(saved)
        #expect(ends.count > 100 && ends.count < 1200, "\(ends.count) records kept")
        #expect(ends.last == saved.count, "the file ends inside a record")
    }

    /// Runs `command` (its executable first) with standard output a pipe whose reader is gone: the run must end
    /// normally, with exit status 0 and only the line that says standard output was closed.
    static func expectStandardOutputEndedAlone(_ command: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let output = Pipe()
        try output.fileHandleForReading.close()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let diagnostics = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit, "\(command): killed by signal \(process.terminationStatus)")
        #expect(process.terminationStatus == 0, "\(command): \(diagnostics)")
        #expect(
            diagnostics
                == "rst-detective: standard output was closed by its reader: stopped writing to it; the other "
                + "reports are still written\n")
    }

    /// The reader of standard output goes away at once (a pipe whose read end is closed, as after
    /// `| head -1`), with SIGPIPE at its default as a shell leaves it: standard output ends there with one
    /// line saying so, every other report is written, and the exit status is 0.
    @Test func aClosedStandardOutputEndsThatOutputAlone() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = Binary.capture("normal-confounders.pcap")
        let reports = directory.appendingPathComponent("reports").path
        let lines = directory.appendingPathComponent("incidents.jsonl").path
        for (standardOutput, others) in [
            ("--csv", ["--report-dir", reports, "--jsonl", lines]), ("--html", ["--report-dir", reports]),
        ] {
            try? FileManager.default.removeItem(atPath: reports)
            try Self.expectStandardOutputEndedAlone(
                [
                    "/usr/bin/env", "--default-signal=PIPE", Binary.url.path, "analyze", capture, "-q", standardOutput,
                    "-",
                ]
                    + others)
            let summary = try String(contentsOfFile: reports + "/summary.csv", encoding: .utf8)
            #expect(summary.contains("incidents,4\r\n"))
        }
        #expect(try String(contentsOfFile: lines, encoding: .utf8).split(separator: "\n").count == 4)
    }

    /// The same for the packets a live capture saves to standard output (`-w - | tcpdump -r - -c 10`): one
    /// line, saving stops, the reports are written, and the exit status is 0.
    @Test(
        .enabled(if: ReusePortKernelTests.isRoot, "needs root, to make a network namespace and capture"),
        .enabled(if: ReusePortKernelTests.labIsPossible, "cannot make a network namespace, or python3 is missing")
    )
    func savedPacketsToAClosedReaderEndThatOutputAlone() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let namespace = "rstd-closed-\(getpid())"
        try #require(try Binary.run(["netns", "add", namespace], executable: "/usr/sbin/ip").status == 0)
        defer { _ = try? Binary.run(["netns", "del", namespace], executable: "/usr/sbin/ip") }
        _ = try Binary.run(["netns", "exec", namespace, "ip", "link", "set", "lo", "up"], executable: "/usr/sbin/ip")
        let reports = directory.appendingPathComponent("reports").path
        try Self.expectStandardOutputEndedAlone([
            "/usr/sbin/ip", "netns", "exec", namespace, "/usr/bin/env", "--default-signal=PIPE", Binary.url.path,
            "capture", "-i", "lo", "-q", "-w", "-", "--report-dir", reports, "--duration", "1.5", "tcp port 9",
        ])
        #expect(FileManager.default.fileExists(atPath: reports + "/summary.csv"))
    }
}
