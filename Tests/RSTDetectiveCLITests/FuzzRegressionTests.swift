import Foundation
import Testing

/// Every input the fuzzer ever crashed on (Tests/Fuzz/regressions) runs again through the fuzz target,
/// built plainly as a replayer, on every test run; so do the committed captures, whole, as capture inputs.
@Suite struct FuzzRegressionTests {
    static let fuzzDirectory = Binary.capturesDirectory.deletingLastPathComponent().appendingPathComponent("Fuzz")
    static let replayer = Binary.url.deletingLastPathComponent().appendingPathComponent("rst-detective-fuzz").path

    @Test func everyRegressionInputRunsClean() throws {
        let regressions = Self.fuzzDirectory.appendingPathComponent("regressions")
        let count = try FileManager.default.contentsOfDirectory(atPath: regressions.path).count
        let run = try Binary.run([regressions.path], executable: Self.replayer)
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardOutput == "ran \(count) inputs\n")
    }

    /// A capture file as the fuzzer's capture input: a 0x80 or 0x81 byte, then the file.
    @Test func everyCaptureRunsAsACaptureInput() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let names = try FileManager.default.contentsOfDirectory(atPath: Binary.capturesDirectory.path)
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") || $0.hasSuffix(".pcap.gz") }
        for name in names {
            let capture = try Data(contentsOf: Binary.capturesDirectory.appendingPathComponent(name))
            for selector: UInt8 in [0x80, 0x81] {
                try (Data([selector]) + capture).write(to: directory.appendingPathComponent("\(name).\(selector)"))
            }
        }
        let run = try Binary.run([directory.path], executable: Self.replayer)
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardOutput == "ran \(names.count * 2) inputs\n")
    }
}
