import Foundation
import Testing

@testable import RSTDetective

/// Each incident's cause on the cause lab's captures (Tests/Captures/causes, made by Tests/Lab/cause-lab.py)
/// against the truth each scenario's own logs give: which listener closed when, and when the server's
/// ListenOverflows counter grew.
@Suite struct CauseOnLabCapturesTests {
    static let directory = Fixtures.capturesDirectory.appendingPathComponent("causes")

    /// Every committed capture of the lab.
    static let captures: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".pcap.gz") }.map { String($0.dropLast(".pcap.gz".count)) }.sorted()
    }()

    /// 4-tuple -> true cause, from NAME.truth.csv (the evidence column after the fifth comma is not read).
    static func truth(_ name: String) throws -> [String: String] {
        let text = try String(
            contentsOfFile: directory.appendingPathComponent(name + ".truth.csv").path, encoding: .utf8)
        var causes: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline).dropFirst() {
            let fields = line.split(separator: ",", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
            causes[fields[0...3].joined(separator: ",")] = fields[4]
        }
        return causes
    }

    @Test func theLabHasCaptures() {
        #expect(Self.captures.count >= 20)
    }

    /// Per incident, at least 95% right (the tool's incidents and the truth's counted together), and no
    /// port given a cause none of its incidents had.
    @Test(arguments: captures)
    func causesMatchTheScenario(_ name: String) throws {
        let truth = try Self.truth(name)
        let (result, incidents) = Fixtures.analyze([Self.directory.appendingPathComponent(name + ".pcap.gz").path])
        var found: [String: String] = [:]
        for incident in incidents { found[Fixtures.tuple(incident)] = incident.cause?.name ?? "" }
        let tuples = Set(truth.keys).union(found.keys)
        let right = tuples.filter { truth[$0] != nil && truth[$0] == found[$0] }.count
        if !tuples.isEmpty {
            let accuracy = Double(right) / Double(tuples.count)
            #expect(accuracy >= 0.95, "\(name): \(right) of \(tuples.count) right")
        }
        var truePortCauses: [UInt16: Set<String>] = [:]
        for (tuple, cause) in truth {
            let port = UInt16(tuple.split(separator: ",")[3])!
            truePortCauses[port, default: []].insert(cause)
        }
        for (port, verdict) in result.report.causeVerdicts {
            for cause in IncidentCause.allCases where cause != .unknown && verdict.count(of: cause) > 0 {
                #expect(
                    truePortCauses[port]?.contains(cause.name) == true,
                    "\(name): port \(port) given \(cause.name), which it did not have")
            }
        }
    }
}
