import Foundation
import Testing

/// Every committed capture, damaged: cut at record boundaries and inside records, and with bytes flipped
/// (a fixed seed). The binary must never crash or hang, must exit 0 or 1, must name the file and the
/// record of any damage in one line, and must still report the incidents whose RST came before the damage.
@Suite(.serialized) struct CorruptionTests {
    /// What one run of the binary on a damaged file gave.
    struct Outcome {
        var status: Int32
        var crashed: Bool
        var errorLines: [String]
        /// `client_ip,client_port,server_ip,server_port,rst_time` of each incident.
        var incidents: Set<String>
    }

    /// SplitMix64, so that the flips are the same on every run.
    struct Random {
        var state: UInt64
        mutating func next(below bound: Int) -> Int {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    static let captures: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Binary.capturesDirectory.path)) ?? []
        let suffixes = [".pcap", ".pcapng", ".pcap.gz", ".pcap.zst", ".pcapng.zst"]
        return names.filter { name in suffixes.contains { name.hasSuffix($0) } }.sorted()
    }()

    /// Runs `analyze` on `path`, killing it after 20 s (a hang fails the test as a crash would).
    static func analyze(_ path: String) throws -> Outcome {
        let run = try Binary.run(["analyze", "-q", "--csv", "-", path], killAfter: 20)
        var incidents = Set<String>()
        let rows = run.standardOutput.split(whereSeparator: \.isNewline)
        if let header = rows.first?.split(separator: ",").map(String.init) {
            let columns = ["client_ip", "client_port", "server_ip", "server_port", "rst_time"].compactMap {
                header.firstIndex(of: $0)
            }
            for row in rows.dropFirst() {
                let fields = row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                incidents.insert(columns.map { fields[$0] }.joined(separator: ","))
            }
        }
        return Outcome(
            status: run.status, crashed: run.killedBySignal,
            errorLines: run.standardError.split(whereSeparator: \.isNewline).map(String.init), incidents: incidents)
    }

    /// Where each record of a classic pcap starts (after the 24-byte file header) and ends, and its
    /// timestamp in microseconds; empty for other formats.
    static func records(_ data: Data) -> [(offset: Int, end: Int, micros: Int64)] {
        guard data.count >= 24 else { return [] }
        let magic = data.prefix(4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        let swapped: Bool
        let nanos: Bool
        switch magic {
        case 0xa1b2_c3d4: (swapped, nanos) = (false, false)
        case 0xa1b2_3c4d: (swapped, nanos) = (false, true)
        case 0xd4c3_b2a1: (swapped, nanos) = (true, false)
        case 0x4d3c_b2a1: (swapped, nanos) = (true, true)
        default: return []
        }
        func word(_ offset: Int) -> Int64 {
            let value = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
            return Int64(swapped ? value.byteSwapped : value)
        }
        var records: [(Int, Int, Int64)] = []
        var offset = 24
        while offset + 16 <= data.count {
            let end = offset + 16 + Int(word(offset + 8))
            records.append(
                (offset, end, word(offset) * 1_000_000 + (nanos ? word(offset + 4) / 1000 : word(offset + 4))))
            offset = end
        }
        return records
    }

    /// The damage must be reported as the documented exit status and one line naming the file.
    static func expectReported(_ outcome: Outcome, path: String, _ comment: Comment) {
        #expect(!outcome.crashed, comment)
        #expect(outcome.status == 0 || outcome.status == 1, comment)
        if outcome.status == 1 {
            #expect(outcome.errorLines.count == 1, comment)
            let line = outcome.errorLines.first ?? ""
            #expect(
                line.hasPrefix("rst-detective: '\(path)' record ")
                    || line.hasPrefix("rst-detective: cannot open '\(path)'"),
                "\(comment): \(line)")
        } else {
            #expect(outcome.errorLines.isEmpty, comment)
        }
    }

    /// Cut at about 8 record boundaries and inside as many records (and at a few offsets of the file
    /// header and of compressed files): the incidents whose RST is in an intact record are all reported,
    /// and none after the cut.
    @Test func cutCapturesKeepTheIncidentsBeforeTheCut() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var variants = 0
        var incidentsChecked = 0
        for name in Self.captures {
            let data = try Data(contentsOf: Binary.capturesDirectory.appendingPathComponent(name))
            let full = try Self.analyze(Binary.capture(name))
            let records = Self.records(data)
            var cuts: [(offset: Int, intact: Int)] = [0, 10, 23].map { ($0, 0) }
            if records.isEmpty {
                cuts += (1...12).map { (data.count * $0 / 13, -1) }
            } else {
                let step = max(1, records.count / 8)
                for index in stride(from: 1, to: records.count, by: step) {
                    cuts.append((records[index].offset, index))
                    cuts.append((records[index].offset + 7, index))
                    cuts.append((records[index].offset + 19, index))
                }
            }
            for (offset, intact) in cuts where offset < data.count {
                let path = directory.appendingPathComponent("\(variants)-\(name)").path
                try data.prefix(offset).write(to: URL(fileURLWithPath: path))
                let outcome = try Self.analyze(path)
                variants += 1
                Self.expectReported(outcome, path: path, "\(name) cut at \(offset)")
                #expect(outcome.incidents.isSubset(of: full.incidents), "\(name) cut at \(offset)")
                guard intact > 0 else { continue }
                let first = records[intact].micros
                let last = records[intact - 1].micros
                for incident in full.incidents {
                    let rst = Self.micros(incident)
                    if rst < min(first, last) {
                        incidentsChecked += 1
                        #expect(outcome.incidents.contains(incident), "\(name) cut at \(offset) lost \(incident)")
                    } else if rst > max(first, last) {
                        #expect(!outcome.incidents.contains(incident), "\(name) cut at \(offset) kept \(incident)")
                    }
                }
                try FileManager.default.removeItem(atPath: path)
            }
        }
        #expect(variants > 1000)
        #expect(incidentsChecked > 500)
    }

    /// 400 variants with 1 to 16 bytes set to random values (seed 2026): no crash, no hang, the documented
    /// exit status, one line for the damage.
    @Test func flippedBytesNeverCrash() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var random = Random(state: 2026)
        let originals = try Self.captures.map {
            ($0, try Data(contentsOf: Binary.capturesDirectory.appendingPathComponent($0)))
        }
        var failures = 0
        for variant in 0..<400 {
            let (name, original) = originals[random.next(below: originals.count)]
            var data = original
            for _ in 0...random.next(below: 16) {
                data[random.next(below: data.count)] = UInt8(random.next(below: 256))
            }
            let path = directory.appendingPathComponent("\(variant)-\(name)").path
            try data.write(to: URL(fileURLWithPath: path))
            let outcome = try Self.analyze(path)
            Self.expectReported(outcome, path: path, "variant \(variant) of \(name)")
            if outcome.status == 1 { failures += 1 }
            try FileManager.default.removeItem(atPath: path)
        }
        // Most flips land in packet bytes, which are data, not damage; some break the file's structure.
        #expect(failures > 10)
    }

    /// The RST time of an incident key, in microseconds since the epoch.
    static func micros(_ incident: String) -> Int64 {
        let time = incident.split(separator: ",").last.map(String.init) ?? ""
        // 2023-11-14T22:13:20.999300Z
        var components = DateComponents()
        let parts = time.split(whereSeparator: { "-T:.Z".contains($0) }).compactMap { Int($0) }
        guard parts.count == 7 else { return 0 }
        components.year = parts[0]
        components.month = parts[1]
        components.day = parts[2]
        components.hour = parts[3]
        components.minute = parts[4]
        components.second = parts[5]
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let seconds = Int64(calendar.date(from: components)?.timeIntervalSince1970 ?? 0)
        return seconds * 1_000_000 + Int64(parts[6])
    }
}
