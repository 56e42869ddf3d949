import Foundation
import Testing

/// The reuseport model against the kernel this test runs on: `Tests/Lab/reuseport-accepts.py` opens 8
/// SO_REUSEPORT listeners in a network namespace of its own, records which one accepted each of 40
/// connections, closes listener 2 and records 40 more, while tcpdump captures. `calibrate` must find one
/// secret from each phase (the same one), and `analyze` with it must put every captured connection in the
/// bucket of the listener that accepted it.
@Suite struct ReusePortKernelTests {
    static let isRoot = getuid() == 0

    /// Whether this machine lets root make a network namespace, and has what the lab needs.
    static let labIsPossible: Bool = {
        guard isRoot else { return false }
        let probe = try? Binary.run(["--net", "--", "ip", "link", "show", "lo"], executable: "/usr/bin/unshare")
        let python = try? Binary.run(["python3", "-c", "pass"], executable: "/usr/bin/env")
        let tcpdump = try? Binary.run(["tcpdump", "--version"], executable: "/usr/bin/env")
        return probe?.status == 0 && python?.status == 0 && tcpdump?.status == 0
    }()

    /// The search of all 2^32 secrets takes about 15 s optimized and half an hour unoptimized.
    static let isOptimized: Bool = {
        #if DEBUG
            false
        #else
            true
        #endif
    }()

    static let lab = Binary.capturesDirectory.deletingLastPathComponent().appendingPathComponent(
        "Lab/reuseport-accepts.py")

    @Test(
        .enabled(if: isRoot, "needs root, to make a network namespace"),
        .enabled(if: labIsPossible, "cannot make a network namespace, or python3, ip or tcpdump is missing"),
        .enabled(
            if: isOptimized,
            "searching 2^32 secrets needs an optimized build: swift test -c release -Xswiftc -enable-testing")
    )
    func calibrationAndBucketsMatchTheKernel() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let made = try Binary.run(["python3", Self.lab.path, directory.path], executable: "/usr/bin/env")
        try #require(made.status == 0, "the lab failed: \(made.standardError)")
        let release = try String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var secrets: [String] = []
        for (phase, listeners) in [("phase1", 8), ("phase2", 7)] {
            let calibrate = try Binary.run([
                "calibrate", directory.appendingPathComponent("\(phase).csv").path, "--listeners", String(listeners),
                "--kernel", release,
            ])
            #expect(calibrate.status == 0, "\(phase): \(calibrate.standardError)")
            #expect(calibrate.standardError.contains("exactly one secret explains all 40 observations"))
            let option = calibrate.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            try #require(
                option.hasPrefix("--hash-secret 0x") && option.count == "--hash-secret 0x".count + 8, "\(option)")
            secrets.append(String(option.dropFirst("--hash-secret ".count)))
        }
        #expect(secrets[0] == secrets[1], "the two phases need one secret")
        let capture = directory.appendingPathComponent("lab.pcap").path
        try ReusePortCommandsTests.checkBuckets(
            capture: capture, observations: directory.appendingPathComponent("phase1.csv").path,
            clientPorts: "20000-29999", listeners: 8, secret: secrets[0], kernel: release)
        try ReusePortCommandsTests.checkBuckets(
            capture: capture, observations: directory.appendingPathComponent("phase2.csv").path,
            clientPorts: "40000-49999", listeners: 7, secret: secrets[0], kernel: release)
    }
}
