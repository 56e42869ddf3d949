/// The listener a Linux `SO_REUSEPORT` group picks for a connection: the kernel's own arithmetic, as
/// described in KERNEL-FACTS.md, for Linux 6.15 and later (the kernel of the machines this was built on).
///
/// The kernel hashes the 4-tuple with `inet_ehashfn` (IPv4) or `inet6_ehashfn` (IPv6), over `jhash`,
/// salted with a per-boot, per-namespace secret that packets do not reveal; this model takes that secret
/// as `secret` (0 by default), so its bucket numbers are exact only when the secret is known, but the
/// grouping of connections by hash is always the kernel's shape. The group then picks listener
/// `(hash * N) >> 32` (`reciprocal_scale`), in listen() order.
public struct ReusePortBucket: Sendable {
    /// Listeners in the group (N).
    public var listeners: Int
    /// The effective secret: the kernel's secret plus its namespace mix.
    public var secret: UInt32
    /// The IPv6 address secret (`tcpv6_offload.secret` on 6.9+).
    public var addressSecret: UInt32

    public init(listeners: Int, secret: UInt32 = 0, addressSecret: UInt32 = 0) {
        precondition(listeners > 0, "a reuseport group has at least one listener")
        self.listeners = listeners
        self.secret = secret
        self.addressSecret = addressSecret
    }

    /// The listener-lookup hash of a connection (6.15+: `lport + jhash_3words(laddr, faddr, fport, initval)`).
    ///
    /// The hash follows the packet's family: an IPv4 packet to a dual-stack listener uses `inet_ehashfn`.
    public func hash(
        client: IPAddress, clientPort: UInt16, server: IPAddress, serverPort: UInt16, isIPv6: Bool
    ) -> UInt32 {
        // The kernel reads addresses and the client port as raw memory words, on a little-endian CPU; the
        // server port is already in host order.
        let foreignPort = UInt32(clientPort.byteSwapped)
        if !isIPv6 {
            let local = server.ipv4Value.byteSwapped
            let foreign = client.ipv4Value.byteSwapped
            return UInt32(serverPort) &+ Self.jhash3(local, foreign, foreignPort, secret)
        }
        let serverWords = server.words
        let clientWords = client.words
        let localHash = serverWords.3.byteSwapped
        let foreignHash = Self.jhash3(
            clientWords.0.byteSwapped ^ clientWords.1.byteSwapped, clientWords.2.byteSwapped,
            clientWords.3.byteSwapped, addressSecret)
        return UInt32(serverPort) &+ Self.jhash3(localHash, foreignHash, foreignPort, secret)
    }

    /// The listener index for `hash`: `reciprocal_scale(hash, N)`.
    public func bucket(forHash hash: UInt32) -> Int {
        Int((UInt64(hash) &* UInt64(listeners)) >> 32)
    }

    /// `jhash_3words` as in Linux 4.1 and later (lookup3's `hashword` on three words).
    static func jhash3(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ initval: UInt32) -> UInt32 {
        let start = initval &+ 0xdead_beef &+ 12
        var a = a &+ start
        var b = b &+ start
        var c = c &+ start
        c ^= b
        c &-= rotate(b, 14)
        a ^= c
        a &-= rotate(c, 11)
        b ^= a
        b &-= rotate(a, 25)
        c ^= b
        c &-= rotate(b, 16)
        a ^= c
        a &-= rotate(c, 4)
        b ^= a
        b &-= rotate(a, 14)
        c ^= b
        c &-= rotate(b, 24)
        return c
    }

    private static func rotate(_ value: UInt32, _ count: UInt32) -> UInt32 {
        value << count | value >> (32 - count)
    }
}
