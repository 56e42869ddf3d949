/// The listener a set of Linux `SO_REUSEPORT` listeners picks for a connection: the kernel's own arithmetic,
/// era by era, as KERNEL-FACTS.md describes it.
///
/// The kernel hashes the 4-tuple with `inet_ehashfn` (IPv4) or `inet6_ehashfn` (IPv6) over `jhash_3words`,
/// salted with a per-boot, per-namespace secret that packets do not reveal. This model takes the effective
/// secret (the secret plus the namespace mix, one 32-bit number) as a parameter, 0 by default, so its listener
/// numbers are the kernel's exactly when the secret is known (see `SecretCalibration`); without it the
/// grouping of connections by hash still has the kernel's shape.
///
/// Three things changed over the releases:
/// - `jhash_3words` took its present form (lookup3's `hashword`) in 4.1;
/// - up to 4.5 each packet walked the listeners, newest first, with a pseudo-random step seeded by the hash;
///   from 4.6 the listeners form a group and the hash picks `(hash * N) >> 32` (`reciprocal_scale`);
/// - from 6.15 the server port is added to the hash instead of being hashed with the client port.
///
/// Listeners are numbered in listen() order in every era: 0 is the first socket that called listen(). In a
/// 4.6+ group that is the kernel's own `socks[]` index; when a listener closes, the last one moves into its
/// slot.
public struct ReusePortBucket: Sendable {
    /// How the kernel chooses among the listeners.
    public enum Selection: Sendable {
        /// 3.9-4.5: a walk over the listeners, newest first, with a pseudo-random step.
        case walk
        /// 4.6 and later: `(hash * N) >> 32` in the reuseport group.
        case group
    }

    /// The two forms of `jhash_3words`.
    public enum JHashForm: Sendable {
        /// Up to 4.0: `a += K`, `b += K`, `c += initval`.
        case original
        /// From 4.1: `a`, `b` and `c` each get `K + 12 + initval` (lookup3's `hashword` on three words).
        case lookup3
    }

    /// The release whose arithmetic this models.
    public let kernel: KernelVersion
    /// Listeners on the port (N).
    public let listeners: Int
    /// The effective IPv4 secret: the kernel's secret plus its namespace mix.
    public let secret: UInt32
    /// The effective IPv6 secret (`tcpv6_protocol.secret` on 6.9+, plus the namespace mix).
    public let secret6: UInt32
    /// The IPv6 address secret that hashes the client address (`tcpv6_offload.secret` on 6.9+).
    public let addressSecret6: UInt32
    public let jhashForm: JHashForm
    public let selection: Selection
    /// 6.15+: `lport + jhash_3words(laddr, faddr, fport, initval)`.
    public let mixesServerPort: Bool

    /// - Precondition: `listeners` is 1 to 65535 (the kernel's group size is 16 bits), and `kernel` is 3.9 or
    ///   later (there was no `SO_REUSEPORT` for TCP before).
    public init(
        kernel: KernelVersion = .newest, listeners: Int, secret: UInt32 = 0, secret6: UInt32 = 0,
        addressSecret6: UInt32 = 0
    ) {
        precondition((1...65535).contains(listeners), "a reuseport group has 1 to 65535 listeners")
        precondition(kernel >= .firstWithReusePort, "SO_REUSEPORT for TCP arrived in Linux 3.9")
        self.kernel = kernel
        self.listeners = listeners
        self.secret = secret
        self.secret6 = secret6
        self.addressSecret6 = addressSecret6
        jhashForm = kernel.isAtLeast(4, 1) ? .lookup3 : .original
        selection = kernel.isAtLeast(4, 6) ? .group : .walk
        mixesServerPort = kernel.isAtLeast(6, 15)
    }

    /// The era's arithmetic in a few words, as summary.csv and the text summary print it.
    public var modelName: String {
        switch (selection, jhashForm, mixesServerPort) {
        case (.walk, .original, _): "linux 3.9-4.0: listener walk from the newest (jhash before 4.1)"
        case (.walk, .lookup3, _): "linux 4.1-4.5: listener walk from the newest"
        case (.group, _, false): "linux 4.6-6.14: reuseport group (hash * N) >> 32"
        case (.group, _, true): "linux 6.15+: reuseport group (hash * N) >> 32 with the server port added to the hash"
        }
    }

    /// Whether a listener added or removed while a handshake is open makes the kernel reset its ACK: true up
    /// to 4.3, where the half-open connection lives in the chosen listener's own SYN table and the ACK is
    /// steered again through the walk. From 4.4 the half-open connection is found by its 4-tuple.
    public var churnResetsMovedACKs: Bool { !kernel.isAtLeast(4, 4) }

    /// A plain sentence on what moving on churn means in this era.
    public var churnMeaning: String {
        if churnResetsMovedACKs {
            return """
                On Linux 3.9-4.3 the ACK is steered again through the listener walk, and a moved ACK meets a \
                listener with no half-open connection, which resets it: if listener churn caused these resets, \
                nearly every incident moves on churn, at least as often as handshakes in general.
                """
        }
        let migration =
            kernel.isAtLeast(5, 14)
            ? " (with net.ipv4.tcp_migrate_req=1 not even then: the half-open connection moves to another listener)"
            : ""
        return """
            From Linux 4.4 the half-open connection is found by its 4-tuple whichever listener the ACK is steered \
            to, so adding or removing a listener does not reset it; only the close of the listener that owns it \
            does\(migration). Moving on churn only changes where new SYNs go, so it does not explain these incidents.
            """
    }

    // MARK: Hash

    /// The listener-lookup hash of a connection, as `inet_ehashfn` or `inet6_ehashfn` of this era computes it
    /// on a little-endian CPU. The hash follows the packet's family: an IPv4 packet to a dual-stack listener
    /// uses `inet_ehashfn`.
    public func hash(
        client: IPAddress, clientPort: UInt16, server: IPAddress, serverPort: UInt16, isIPv6: Bool
    ) -> UInt32 {
        // The kernel reads addresses and the client port as raw memory words; the server port is already in
        // host order.
        guard isIPv6 else {
            return ipv4Hash(
                serverWord: server.ipv4Value.byteSwapped, clientWord: client.ipv4Value.byteSwapped,
                serverPort: serverPort, clientPort: clientPort, initval: secret)
        }
        let serverWords = server.words
        let clientWords = client.words
        let clientHash = Self.jhash3(
            clientWords.0.byteSwapped ^ clientWords.1.byteSwapped, clientWords.2.byteSwapped,
            clientWords.3.byteSwapped, addressSecret6, form: jhashForm)
        return ipv4Hash(
            serverWord: serverWords.3.byteSwapped, clientWord: clientHash, serverPort: serverPort,
            clientPort: clientPort, initval: secret6)
    }

    /// `inet_ehashfn` over words as the kernel reads them (also the outer hash of `inet6_ehashfn`).
    func ipv4Hash(serverWord: UInt32, clientWord: UInt32, serverPort: UInt16, clientPort: UInt16, initval: UInt32)
        -> UInt32
    {
        Self.ipv4Hash(
            serverWord: serverWord, clientWord: clientWord, serverPort: serverPort, clientPort: clientPort,
            initval: initval, form: jhashForm, mixesServerPort: mixesServerPort)
    }

    /// `inet_ehashfn` as a function of plain values, for loops that must not touch the model's release text.
    @inline(__always)
    static func ipv4Hash(
        serverWord: UInt32, clientWord: UInt32, serverPort: UInt16, clientPort: UInt16, initval: UInt32,
        form: JHashForm, mixesServerPort: Bool
    ) -> UInt32 {
        let clientPortWord = UInt32(clientPort.byteSwapped)
        if mixesServerPort {
            return UInt32(serverPort) &+ jhash3(serverWord, clientWord, clientPortWord, initval, form: form)
        }
        return jhash3(serverWord, clientWord, UInt32(serverPort) << 16 | clientPortWord, initval, form: form)
    }

    /// `jhash_3words(a, b, c, initval)` in either form, ending with `__jhash_final`.
    static func jhash3(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ initval: UInt32, form: JHashForm = .lookup3)
        -> UInt32
    {
        var a = a
        var b = b
        var c = c
        switch form {
        case .original:
            a &+= 0xdead_beef
            b &+= 0xdead_beef
            c &+= initval
        case .lookup3:
            let start = initval &+ 0xdead_beef &+ 12
            a &+= start
            b &+= start
            c &+= start
        }
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

    @inline(__always)
    private static func rotate(_ value: UInt32, _ count: UInt32) -> UInt32 {
        value << count | value >> (32 - count)
    }

    // MARK: Listener choice

    /// The listener `hash` picks among the `listeners`, in listen() order.
    ///
    /// - Complexity: O(1) for a group, O(N) for a walk.
    public func bucket(forHash hash: UInt32) -> Int {
        Self.bucket(forHash: hash, listeners: listeners, selection: selection)
    }

    /// `bucket(forHash:)` as a function of plain values.
    @inline(__always)
    static func bucket(forHash hash: UInt32, listeners: Int, selection: Selection) -> Int {
        switch selection {
        case .group:
            return reciprocalScale(hash, listeners)
        case .walk:
            var chosen = 1
            var x = hash
            var position = 2
            while position <= listeners {
                if reciprocalScale(x, position) == 0 { chosen = position }
                x = nextPseudoRandom(x)
                position += 1
            }
            return listeners - chosen
        }
    }

    /// The listener `hash` picks, and the one it would pick with one listener fewer or one more.
    ///
    /// In a group, one fewer is the group after a close (whose slot the last listener takes) and one more is a
    /// listener appended. In a walk, one fewer is the walk without the newest listener and one more is the walk
    /// with a new listener in front; the old listeners keep their listen() numbers either way.
    ///
    /// - Complexity: O(1) for a group, O(N) for a walk.
    public func choice(forHash hash: UInt32) -> ListenerChoice {
        switch selection {
        case .group:
            return ListenerChoice(
                bucket: Self.reciprocalScale(hash, listeners),
                ifFewer: listeners > 1 ? Self.reciprocalScale(hash, listeners - 1) : nil,
                ifMore: Self.reciprocalScale(hash, listeners + 1))
        case .walk:
            // The walk over N+1 visits the same positions with the same pseudo-random values as the walks over
            // N and N-1, one step further, so one pass gives all three. `chosen` is a 1-based walk position;
            // a walk over M listeners visits listen() number M - position at that position.
            var chosen = 1
            var chosenAmongFewer = 1
            var chosenAmongListeners = 1
            var x = hash
            var position = 2
            while position <= listeners + 1 {
                if Self.reciprocalScale(x, position) == 0 { chosen = position }
                if position == listeners - 1 { chosenAmongFewer = chosen }
                if position == listeners { chosenAmongListeners = chosen }
                x = Self.nextPseudoRandom(x)
                position += 1
            }
            return ListenerChoice(
                bucket: listeners - chosenAmongListeners,
                ifFewer: listeners > 1 ? listeners - 1 - chosenAmongFewer : nil,
                ifMore: listeners + 1 - chosen)
        }
    }

    /// `reciprocal_scale(value, n)`: `value` scaled into 0..<n.
    private static func reciprocalScale(_ value: UInt32, _ n: Int) -> Int {
        Int((UInt64(value) &* UInt64(n)) >> 32)
    }

    /// `next_pseudo_random32`: the walk's step.
    static func nextPseudoRandom(_ value: UInt32) -> UInt32 {
        value &* 1_664_525 &+ 1_013_904_223
    }
}

/// Where a connection goes: the listener its hash picks now, and with one listener fewer or more.
public struct ListenerChoice: Sendable, Equatable {
    /// The listener, in listen() order.
    public var bucket: Int
    /// The listener with one fewer, or nil when there would be none.
    public var ifFewer: Int?
    /// The listener with one more.
    public var ifMore: Int

    /// Whether adding or removing one listener sends this 4-tuple elsewhere (or nowhere).
    public var movesOnChurn: Bool { ifFewer != bucket || ifMore != bucket }
}
