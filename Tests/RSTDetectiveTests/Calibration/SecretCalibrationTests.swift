import Foundation
import Testing

@testable import RSTDetective

/// The search logic on observations made by the model itself with a known secret; the real kernel's own
/// choices are checked in RSTDetectiveCLITests' ReusePortKernelTests.
@Suite struct SecretCalibrationTests {
    static let secret: UInt32 = 0x9152_80f5

    /// `count` IPv4 connections to one server from a few clients, with the listener `model` gives them.
    static func observations(_ model: ReusePortBucket, count: Int, label: (Int) -> String = String.init)
        -> [ListenerObservation]
    {
        let server = IPAddress("10.66.0.1")!
        return (0..<count).map { i in
            let client = IPAddress("10.66.0.\(2 + i % 6)")!
            let clientPort = UInt16(20000 + 37 * i)
            let hash = model.hash(
                client: client, clientPort: clientPort, server: server, serverPort: 8080, isIPv6: false)
            return ListenerObservation(
                listener: label(model.bucket(forHash: hash)), client: client, clientPort: clientPort, server: server,
                serverPort: 8080, line: i + 2)
        }
    }

    /// A window of 2^20 secrets around the true one: the full 2^32 is for release builds.
    static let window = (secret - (1 << 19))...(secret + (1 << 19))

    @Test(arguments: ["6.18", "4.6", "4.4", "3.10.0-1160.el7.x86_64"])
    func findsTheSecretFromListenIndices(release: String) throws {
        let kernel = try #require(KernelVersion(release))
        let truth = ReusePortBucket(kernel: kernel, listeners: 8, secret: Self.secret)
        let calibration = try SecretCalibration(
            observations: Self.observations(truth, count: 16), model: ReusePortBucket(kernel: kernel, listeners: 8),
            labels: false, path: "test")
        #expect(!calibration.usesLabels)
        #expect(calibration.evidenceBits == 48)
        #expect(calibration.explains(Self.secret))
        let result = calibration.search(in: Self.window, threads: 2)
        #expect(result.secrets == [Self.secret])
        #expect(result.count == 1)
        #expect(result.tried == 1 << 20 + 1)
    }

    @Test func findsTheSecretFromLabelsInAnyOrder() throws {
        let truth = ReusePortBucket(listeners: 6, secret: Self.secret)
        let names = ["nginx-4121", "nginx-4125", "nginx-4119", "nginx-4130", "nginx-4122", "nginx-4127"]
        let observations = Self.observations(truth, count: 24) { names[$0] }
        let calibration = try SecretCalibration(
            observations: observations, model: ReusePortBucket(listeners: 6), labels: false, path: "test")
        #expect(calibration.usesLabels)
        #expect(calibration.explains(Self.secret))
        #expect(!calibration.explains(Self.secret &+ 1))
        #expect(calibration.search(in: Self.window, threads: 2).secrets == [Self.secret])
        // Numbers that are not listen() indices, forced to labels: a permutation of the true indices.
        let permuted = Self.observations(truth, count: 24) { String((($0 + 2) % 6)) }
        let forced = try SecretCalibration(
            observations: permuted, model: ReusePortBucket(listeners: 6), labels: true, path: "test")
        #expect(forced.explains(Self.secret))
        let asIndices = try SecretCalibration(
            observations: permuted, model: ReusePortBucket(listeners: 6), labels: false, path: "test")
        #expect(!asIndices.explains(Self.secret))
    }

    @Test func labelsCostTheirPlacement() throws {
        let truth = ReusePortBucket(listeners: 4, secret: Self.secret)
        let calibration = try SecretCalibration(
            observations: Self.observations(truth, count: 10) { "w\($0)" }, model: ReusePortBucket(listeners: 4),
            labels: false, path: "test")
        // 10 observations of 2 bits, less log2(4 * 3 * 2 * 1) for placing 4 labels.
        #expect(abs(calibration.evidenceBits - (20 - log2(24))) < 1e-9)
    }

    @Test func tooFewObservationsLeaveSeveralSecrets() throws {
        let truth = ReusePortBucket(listeners: 2, secret: Self.secret)
        let calibration = try SecretCalibration(
            observations: Self.observations(truth, count: 4), model: ReusePortBucket(listeners: 2), labels: false,
            path: "test")
        let result = calibration.search(in: Self.window, threads: 2, limit: 4)
        #expect(result.count > 1000)
        #expect(result.secrets.count == 4)
        #expect(result.secrets == result.secrets.sorted())
    }

    @Test func observationsThatCannotFitAnySecret() throws {
        let truth = ReusePortBucket(listeners: 4, secret: Self.secret)
        var observations = Self.observations(truth, count: 6)
        var twin = observations[1]
        twin.listener = twin.listener == "0" ? "1" : "0"
        twin.line = 9
        observations.append(twin)
        #expect(throws: CalibrationError.self) {
            try SecretCalibration(
                observations: observations, model: ReusePortBucket(listeners: 4), labels: false, path: "obs.csv")
        }
        let fourLabels = Self.observations(truth, count: 8).enumerated().map { index, observation in
            var observation = observation
            observation.listener = "w\(index % 4)"
            return observation
        }
        #expect(
            throws: CalibrationError.badFile(
                path: "obs.csv", line: 1, reason: "4 different listeners are named, but --listeners is 3")
        ) {
            try SecretCalibration(
                observations: fourLabels, model: ReusePortBucket(listeners: 3), labels: false, path: "obs.csv")
        }
        do {
            _ = try SecretCalibration(
                observations: Self.observations(ReusePortBucket(listeners: 8, secret: Self.secret), count: 20),
                model: ReusePortBucket(listeners: 2), labels: false, path: "obs.csv")
            Issue.record("an index above N was accepted")
        } catch {
            #expect(error.description.hasPrefix("'obs.csv' line "))
            #expect(error.description.contains("is not below --listeners 2"))
        }
    }

    @Test func readsObservationFiles() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("observations-\(getpid()).csv").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text =
            "time,Listener,client_ip,client_port,server_ip,server_port\r\n"
            + "1,\"worker, 1\",10.0.0.2,40000,10.0.0.1,443\r\n\r\n"
            + "2, 3 ,2001:db8::2,40001,2001:db8::1,443\r\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let observations = try ListenerObservation.read(path: path)
        #expect(observations.map(\.listener) == ["worker, 1", "3"])
        #expect(observations.map(\.line) == [2, 4])
        #expect(observations.map(\.isIPv6) == [false, true])
        #expect(observations[0].clientPort == 40000)

        try "listener,client_ip,client_port,server_ip\n0,10.0.0.2,1,10.0.0.1\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        #expect(
            throws: CalibrationError.badFile(
                path: path, line: 1,
                reason: "no 'server_port' column; the header needs listener,client_ip,client_port,server_ip,server_port"
            )
        ) {
            try ListenerObservation.read(path: path)
        }
        try
            "listener,client_ip,client_port,server_ip,server_port\n0,10.0.0.2,1,10.0.0.1,443\n0,10.0.0.2,70000,10.0.0.1,443\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(
            throws: CalibrationError.badFile(path: path, line: 3, reason: "client_port '70000' is not a port (1-65535)")
        ) {
            try ListenerObservation.read(path: path)
        }
        #expect(throws: CalibrationError.cannotRead(path: path + ".missing", reason: "No such file or directory")) {
            try ListenerObservation.read(path: path + ".missing")
        }
    }
}
