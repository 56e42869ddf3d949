import Foundation
import Testing

@testable import RSTDetective

/// Vectors from KERNEL-FACTS.md, computed there by two independent programs and checked against Linux 6.18,
/// and thousands more from `Tests/Lab/ehash-reference.c`, an independent C model of the kernel's arithmetic.
@Suite struct ReusePortBucketTests {
    static let linux39 = KernelVersion(major: 3, minor: 9, release: "3.9")
    static let linux41 = KernelVersion(major: 4, minor: 1, release: "4.1")
    static let linux46 = KernelVersion(major: 4, minor: 6, release: "4.6")
    static let linux615 = KernelVersion(major: 6, minor: 15, release: "6.15")

    @Test func jhash3InBothForms() {
        let vectors: [(UInt32, UInt32, UInt32, UInt32, original: UInt32, lookup3: UInt32)] = [
            (0, 0, 0, 0, 0xc0b0_a2c2, 0x1b68_e557),
            (1, 2, 3, 4, 0x13ed_7f7b, 0x8103_143f),
            (0x0100_007f, 0x0100_007f, 0x1f90_3930, 0, 0xb451_15f6, 0xa823_b5dd),
            (0xdead_beef, 0x0123_4567, 0x89ab_cdef, 0x9e37_79b9, 0xd880_6acc, 0xd05f_fbd7),
        ]
        for vector in vectors {
            #expect(ReusePortBucket.jhash3(vector.0, vector.1, vector.2, vector.3, form: .original) == vector.original)
            #expect(ReusePortBucket.jhash3(vector.0, vector.1, vector.2, vector.3, form: .lookup3) == vector.lookup3)
        }
    }

    @Test(arguments: [
        (linux39, UInt32(0), UInt32(0xd590_817e)), (linux41, 0, 0x4cf0_2783), (linux615, 0, 0x34fc_cb73),
        (linux39, 0x1234_5678, 0xd12f_10f6), (linux41, 0x1234_5678, 0xeea1_f1d2), (linux615, 0x1234_5678, 0xee82_0923),
    ])
    func inetEhashfnByEra(kernel: KernelVersion, secret: UInt32, expected: UInt32) throws {
        let model = ReusePortBucket(kernel: kernel, listeners: 1, secret: secret)
        let hash = model.hash(
            client: try #require(IPAddress("192.168.1.10")), clientPort: 51234,
            server: try #require(IPAddress("10.0.0.1")), serverPort: 443, isIPv6: false)
        #expect(hash == expected)
    }

    @Test(arguments: [(linux39, UInt32(0xb451_15f6)), (linux41, UInt32(0xa823_b5dd)), (linux615, UInt32(0x5261_396a))])
    func loopbackByEra(kernel: KernelVersion, expected: UInt32) throws {
        let loopback = try #require(IPAddress("127.0.0.1"))
        let model = ReusePortBucket(kernel: kernel, listeners: 1)
        #expect(
            model.hash(client: loopback, clientPort: 12345, server: loopback, serverPort: 8080, isIPv6: false)
                == expected)
    }

    @Test(arguments: [(linux39, UInt32(0xc6c8_451f)), (linux41, UInt32(0x195d_9429)), (linux615, UInt32(0x41d2_f4f0))])
    func inet6EhashfnByEra(kernel: KernelVersion, expected: UInt32) throws {
        let model = ReusePortBucket(kernel: kernel, listeners: 1, secret6: 0x1234_5678, addressSecret6: 0x9abc_def0)
        let hash = model.hash(
            client: try #require(IPAddress("2001:db8::2")), clientPort: 51234,
            server: try #require(IPAddress("2001:db8::1")), serverPort: 443, isIPv6: true)
        #expect(hash == expected)
    }

    @Test func nextPseudoRandomSequences() {
        for (seed, sequence) in [
            (UInt32(0), [UInt32(0x3c6e_f35f), 0x4750_2932, 0xd1cc_f6e9, 0xaaf9_5334]),
            (0x1234_5678, [0x7543_2777, 0xcd30_5e6a, 0x25db_fac1, 0x4b5c_952c]),
        ] {
            var x = seed
            var produced: [UInt32] = []
            for _ in 0..<4 {
                x = ReusePortBucket.nextPseudoRandom(x)
                produced.append(x)
            }
            #expect(produced == sequence)
        }
    }

    /// KERNEL-FACTS.md section 4: the walk index counts from the newest listener; listen() order is reversed.
    @Test func walkAndGroupTables() {
        let table: [(UInt32, walk: [Int], group: [Int])] = [
            (0x0000_0000, [0, 1, 2, 2, 2, 2, 2, 2], [0, 0, 0, 0, 0, 0, 0, 0]),
            (0x7fff_ffff, [0, 1, 1, 1, 1, 5, 5, 5], [0, 0, 1, 1, 2, 2, 3, 3]),
            (0x9e37_79b9, [0, 0, 2, 2, 2, 2, 2, 7], [0, 1, 1, 2, 3, 3, 4, 4]),
            (0xffff_fffe, [0, 0, 2, 3, 3, 3, 6, 6], [0, 1, 2, 3, 4, 5, 6, 7]),
        ]
        for row in table {
            let walk = (1...8).map { ReusePortBucket(kernel: Self.linux41, listeners: $0) }
            #expect(walk.map { $0.listeners - 1 - $0.bucket(forHash: row.0) } == row.walk)
            #expect(walk.map { $0.listeners - 1 - $0.choice(forHash: row.0).bucket } == row.walk)
            let groups = (1...8).map { ReusePortBucket(listeners: $0) }
            #expect(groups.map { $0.bucket(forHash: row.0) } == row.group)
            #expect(groups.map { $0.choice(forHash: row.0).bucket } == row.group)
        }
    }

    /// The what-if columns are the choices of the models with one listener fewer and one more: in a walk, the
    /// newest listener removed or a new one in front, in listen() numbers.
    @Test func whatIfMatchesTheNeighbouringModels() {
        for hash: UInt32 in [0, 0x7fff_ffff, 0x9e37_79b9, 0xffff_fffe, 0x1234_5678] {
            for listeners in 1...9 {
                for kernel in [Self.linux41, Self.linux615] {
                    let choice = ReusePortBucket(kernel: kernel, listeners: listeners).choice(forHash: hash)
                    let fewer =
                        listeners > 1
                        ? ReusePortBucket(kernel: kernel, listeners: listeners - 1).bucket(forHash: hash) : nil
                    let more = ReusePortBucket(kernel: kernel, listeners: listeners + 1).bucket(forHash: hash)
                    #expect(choice.ifFewer == fewer)
                    #expect(choice.ifMore == more)
                    #expect(choice.movesOnChurn == (fewer != choice.bucket || more != choice.bucket))
                }
            }
        }
    }

    @Test func kernelReleasesAsUnamePrintsThem() throws {
        let cases: [(String, Int, Int)] = [
            ("3.10.0-1160.el7.x86_64", 3, 10), ("4.4", 4, 4), ("6.18", 6, 18), ("6.18.0-rc3", 6, 18),
            ("5.15.0-91-generic", 5, 15), ("6.8.0+", 6, 8), ("6.18-rc1", 6, 18), ("6.18.44-fc-v669", 6, 18),
        ]
        for (release, major, minor) in cases {
            let version = try #require(KernelVersion(release))
            #expect((version.major, version.minor) == (major, minor))
            #expect(version.release == release)
        }
        for bad in ["", "6", "abc", "6.x", "v6.18", "6..18", "6.18x"] {
            #expect(KernelVersion(bad) == nil, "\(bad)")
        }
    }

    @Test func erasFollowTheRelease() throws {
        let eras: [(String, ReusePortBucket.JHashForm, ReusePortBucket.Selection, Bool, Bool)] = [
            ("3.9", .original, .walk, false, true), ("4.0.5", .original, .walk, false, true),
            ("4.1", .lookup3, .walk, false, true), ("4.3", .lookup3, .walk, false, true),
            ("4.4", .lookup3, .walk, false, false), ("4.5", .lookup3, .walk, false, false),
            ("4.6.2", .lookup3, .group, false, false), ("6.14", .lookup3, .group, false, false),
            ("6.15", .lookup3, .group, true, false), ("7.0", .lookup3, .group, true, false),
        ]
        for (release, form, selection, mixes, resets) in eras {
            let model = ReusePortBucket(kernel: try #require(KernelVersion(release)), listeners: 2)
            #expect(model.jhashForm == form, "\(release)")
            #expect(model.selection == selection, "\(release)")
            #expect(model.mixesServerPort == mixes, "\(release)")
            #expect(model.churnResetsMovedACKs == resets, "\(release)")
        }
    }

    /// Compiles the C reference, checks it reproduces KERNEL-FACTS.md, and compares 4000 random connections
    /// (four eras, both families, random secrets, 1 to 16 listeners) with this model.
    @Test(.enabled(if: CReference.compilerPath != nil, "needs a C compiler (cc)"))
    func agreesWithTheIndependentCModel() throws {
        let binary = try CReference.build()
        #expect(try CReference.run(binary, ["--vectors"]).status == 0)
        let output = try CReference.run(binary, ["4000", "20261125"])
        try #require(output.status == 0)
        let lines = output.text.split(separator: "\n")
        #expect(lines.count == 4000)
        for line in lines {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            try #require(fields.count == 14)
            let kernel = try #require(KernelVersion(fields[0]))
            let secret = { (text: String) in UInt32(text.dropFirst(2), radix: 16)! }
            let model = ReusePortBucket(
                kernel: kernel, listeners: Int(fields[9])!, secret: secret(fields[6]), secret6: secret(fields[7]),
                addressSecret6: secret(fields[8]))
            let hash = model.hash(
                client: try #require(IPAddress(fields[2])), clientPort: UInt16(fields[3])!,
                server: try #require(IPAddress(fields[4])), serverPort: UInt16(fields[5])!, isIPv6: fields[1] == "6")
            let choice = model.choice(forHash: hash)
            #expect(Connection.hex(hash) == fields[10], "\(line)")
            #expect(String(choice.bucket) == fields[11], "\(line)")
            #expect((choice.ifFewer.map(String.init) ?? "") == fields[12], "\(line)")
            #expect(String(choice.ifMore) == fields[13], "\(line)")
            #expect(model.bucket(forHash: hash) == choice.bucket)
        }
    }
}

/// Builds and runs `Tests/Lab/ehash-reference.c`.
enum CReference {
    static let source = Fixtures.capturesDirectory.deletingLastPathComponent()
        .appendingPathComponent("Lab/ehash-reference.c")

    static let compilerPath: String? = ["/usr/bin/cc", "/usr/bin/gcc", "/usr/bin/clang"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static func build() throws -> URL {
        let binary = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ehash-reference-\(getpid())")
        let result = try run(
            URL(fileURLWithPath: compilerPath!),
            ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary.path, source.path])
        try #require(result.status == 0, "cc failed: \(result.text)")
        return binary
    }

    static func run(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, text: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
