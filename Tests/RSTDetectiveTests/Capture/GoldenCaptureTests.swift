import Foundation
import Testing

@testable import RSTDetective

/// One capture (or set of rotated captures) in Tests/Captures with its expected results.
struct GoldenCase: Sendable, CustomTestStringConvertible {
    let name: String
    let inputs: [String]
    var testDescription: String { name }

    /// Every `NAME.expected.csv`, paired with `NAME.pcap` or `NAME.pcapng`, plain or compressed (`.gz`, `.zst`),
    /// or else with the rotated parts `NAME-*.pcap`, which are analysed together.
    static func all() -> [GoldenCase] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.capturesDirectory.path)) ?? []
        return names.filter { $0.hasSuffix(".expected.csv") }.sorted().map { file in
            let name = String(file.dropLast(".expected.csv".count))
            let single = ["pcap", "pcapng"].flatMap { format in ["", ".gz", ".zst"].map { "\(name).\(format)\($0)" } }
                .filter(names.contains)
            let parts = names.filter { $0.hasPrefix("\(name)-") && $0.hasSuffix(".pcap") }.sorted()
            return GoldenCase(name: name, inputs: (single.isEmpty ? parts : single).map(Fixtures.path))
        }
    }
}

@Suite struct GoldenCaptureTests {
    @Test func everyCaptureHasExpectations() throws {
        let cases = GoldenCase.all()
        #expect(cases.count >= 30)
        for golden in cases {
            #expect(!golden.inputs.isEmpty, "no capture for \(golden.name).expected.csv")
        }
    }

    /// The incidents must be exactly the expected 4-tuples, with their tunnels when the expected file has a
    /// `tunnel` column: none missing, none extra, none twice.
    @Test(arguments: GoldenCase.all())
    func incidentsMatchExpectation(_ golden: GoldenCase) throws {
        let path = Fixtures.path("\(golden.name).expected.csv")
        let tunnel = try Fixtures.hasTunnelColumn(path)
        let expected = try Fixtures.readCSV(path).map { Fixtures.tuple($0) }.sorted()
        let (_, incidents) = Fixtures.analyze(golden.inputs)
        #expect(incidents.map { Fixtures.tuple($0, tunnel: tunnel) }.sorted() == expected)
    }

    /// Each metric listed in `NAME.expected-summary.csv` must equal the tool's value.
    @Test(arguments: GoldenCase.all())
    func summaryMatchesExpectation(_ golden: GoldenCase) throws {
        let path = Fixtures.path("\(golden.name).expected-summary.csv")
        guard FileManager.default.fileExists(atPath: path) else { return }
        let expected = try Fixtures.readCSV(path)
        let (result, _) = Fixtures.analyze(golden.inputs)
        let actual = Dictionary(uniqueKeysWithValues: Summary.metrics(result).map { ($0.name, $0.value) })
        for row in expected {
            let metric = try #require(row["metric"])
            #expect(actual[metric] == row["value"], "\(golden.name): \(metric)")
        }
    }

    /// For captures made by the kernel, every expected incident is a connection the client itself saw reset
    /// right after connect() succeeded.
    @Test(arguments: GoldenCase.all())
    func expectedIncidentsAreResetsTheClientSaw(_ golden: GoldenCase) throws {
        let clientLog = Fixtures.path("\(golden.name).client.csv")
        guard FileManager.default.fileExists(atPath: clientLog) else { return }
        let resets = Set(
            try Fixtures.readCSV(clientLog).filter { $0["result"] == "reset_after_connect" }.map { Fixtures.tuple($0) })
        for row in try Fixtures.readCSV(Fixtures.path("\(golden.name).expected.csv")) {
            let tuple = Fixtures.tuple(row, tunnel: false)
            #expect(resets.contains(tuple), "\(golden.name): \(tuple)")
        }
    }

    /// The near misses must be exactly the expected 4-tuples, each of the expected kind.
    @Test(arguments: GoldenCase.all())
    func nearMissesMatchExpectation(_ golden: GoldenCase) throws {
        let path = Fixtures.path("\(golden.name).expected-near-misses.csv")
        guard FileManager.default.fileExists(atPath: path) else { return }
        let tunnel = try Fixtures.hasTunnelColumn(path)
        let expected = try Fixtures.readCSV(path).map { "\(Fixtures.tuple($0)) \($0["kind"] ?? "")" }.sorted()
        let nearMisses = Fixtures.connections(golden.inputs).filter(\.handshake.outcome.isNearMiss)
        #expect(
            nearMisses.map { "\(Fixtures.tuple($0, tunnel: tunnel)) \($0.handshake.outcome.name)" }.sorted() == expected
        )
    }

    /// Each incident's RST origin must be the one its capture's independent view gives (who really sent
    /// it), except that `same-host` is the right answer for the server's stack and for a REJECT on the
    /// server when nothing in the packets tells them apart.
    @Test(arguments: GoldenCase.all())
    func originsMatchExpectation(_ golden: GoldenCase) throws {
        let path = Fixtures.path("\(golden.name).expected-origins.csv")
        guard FileManager.default.fileExists(atPath: path) else { return }
        let tunnel = try Fixtures.hasTunnelColumn(path)
        let expected = Dictionary(
            uniqueKeysWithValues: try Fixtures.readCSV(path).map { (Fixtures.tuple($0), $0["rst_origin"] ?? "") })
        let (_, incidents) = Fixtures.analyze(golden.inputs)
        #expect(incidents.count == expected.count)
        for incident in incidents {
            let truth = expected[Fixtures.tuple(incident, tunnel: tunnel)]
            let verdict = incident.provenance?.origin
            let compatible =
                verdict?.rawValue == truth
                || (verdict == .sameHost
                    && (truth == ResetOrigin.sameStack.rawValue || truth == ResetOrigin.firewallLike.rawValue))
            #expect(
                compatible,
                "\(golden.name): \(Fixtures.tuple(incident)) is \(truth ?? "not expected"), got \(verdict?.rawValue ?? "none")"
            )
        }
    }

    /// The real captures, made by the kernel, show every near-miss kind and every origin verdict.
    @Test func realCapturesShowEveryKindAndVerdict() {
        let real = GoldenCase.all().filter {
            FileManager.default.fileExists(atPath: Fixtures.path("\($0.name).client.csv"))
        }
        let connections = real.flatMap { Fixtures.connections($0.inputs) }
        let kinds = Set(connections.map(\.handshake.outcome).filter(\.isNearMiss))
        let origins = Set(connections.filter(\.isIncident).compactMap { $0.provenance?.origin })
        #expect(kinds == Set(Outcome.allCases.filter(\.isNearMiss)))
        #expect(origins == Set(ResetOrigin.allCases))
    }
}
