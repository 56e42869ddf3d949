import Testing

@testable import RSTDetective

/// Vectors from KERNEL-FACTS.md, computed there by two independent programs and checked against Linux 6.18.
@Suite struct ReusePortBucketTests {
    @Test func jhash3MatchesTheKernelFrom4_1() {
        #expect(ReusePortBucket.jhash3(0, 0, 0, 0) == 0x1b68_e557)
        #expect(ReusePortBucket.jhash3(1, 2, 3, 4) == 0x8103_143f)
        #expect(ReusePortBucket.jhash3(0x0100_007f, 0x0100_007f, 0x1f90_3930, 0) == 0xa823_b5dd)
        #expect(ReusePortBucket.jhash3(0xdead_beef, 0x0123_4567, 0x89ab_cdef, 0x9e37_79b9) == 0xd05f_fbd7)
    }

    @Test func inetEhashfnMatchesLinux6_15() throws {
        let server = try #require(IPAddress("10.0.0.1"))
        let client = try #require(IPAddress("192.168.1.10"))
        #expect(
            ReusePortBucket(listeners: 1).hash(
                client: client, clientPort: 51234, server: server, serverPort: 443, isIPv6: false)
                == 0x34fc_cb73)
        #expect(
            ReusePortBucket(listeners: 1, secret: 0x1234_5678).hash(
                client: client, clientPort: 51234, server: server, serverPort: 443, isIPv6: false) == 0xee82_0923)
        let loopback = try #require(IPAddress("127.0.0.1"))
        #expect(
            ReusePortBucket(listeners: 1).hash(
                client: loopback, clientPort: 12345, server: loopback, serverPort: 8080, isIPv6: false)
                == 0x5261_396a)
    }

    @Test func inet6EhashfnMatchesLinux6_15() throws {
        let model = ReusePortBucket(listeners: 1, secret: 0x1234_5678, addressSecret: 0x9abc_def0)
        let hash = model.hash(
            client: try #require(IPAddress("2001:db8::2")), clientPort: 51234,
            server: try #require(IPAddress("2001:db8::1")), serverPort: 443, isIPv6: true)
        #expect(hash == 0x41d2_f4f0)
    }

    @Test func groupChoiceIsReciprocalScale() {
        let table: [(UInt32, [Int])] = [
            (0x0000_0000, [0, 0, 0, 0, 0, 0, 0, 0]),
            (0x7fff_ffff, [0, 0, 1, 1, 2, 2, 3, 3]),
            (0x9e37_79b9, [0, 1, 1, 2, 3, 3, 4, 4]),
            (0xffff_fffe, [0, 1, 2, 3, 4, 5, 6, 7]),
        ]
        for (hash, buckets) in table {
            #expect((1...8).map { ReusePortBucket(listeners: $0).bucket(forHash: hash) } == buckets)
        }
    }
}
