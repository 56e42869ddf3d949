/// The encapsulations a packet came through, outermost first: up to `capacity` layers, each a kind and a
/// 32-bit identifier, stored inline so that a segment and a tracked attempt carry it without allocating.
///
/// The identifiers that name a tenant (VNI, GRE key, ERSPAN session, MPLS label, PPPoE session) make
/// `tenant`, which is part of a flow's identity: two tenants may use the same inner addresses. The outer
/// addresses are not, since the two directions of a connection may cross different underlay paths.
public struct TunnelPath: Sendable, Hashable {
    /// The most layers of encapsulation the decoder sees through; a packet with more is skipped
    /// (`SkipReason.tooManyTunnelLayers`).
    public static let capacity = 8

    // 36 bytes, so that a `TCPSegment` stays within the 128 bytes that a copy moves without calling memcpy.
    /// The identifiers, two per word: layer `2n` in the low half of word `n`, layer `2n + 1` in the high half.
    private var identifiers01: UInt64 = 0
    private var identifiers23: UInt64 = 0
    private var identifiers45: UInt64 = 0
    private var identifiers67: UInt64 = 0
    /// One kind's raw value per 4 bits, the outermost layer in the lowest; zero past the last layer.
    private var kinds: UInt32 = 0

    /// No encapsulation.
    public init() {}

    /// The number of layers.
    public var count: Int { (32 - kinds.leadingZeroBitCount + 3) / 4 }

    public var isEmpty: Bool { kinds == 0 }

    /// The layer at `index`, 0 being the outermost; `index` must be below `count`.
    public subscript(index: Int) -> TunnelLayer {
        precondition(index >= 0 && index < count, "a tunnel layer past the path")
        let word: UInt64
        switch index >> 1 {
        case 0: word = identifiers01
        case 1: word = identifiers23
        case 2: word = identifiers45
        default: word = identifiers67
        }
        // Every nibble below `count` holds a kind's raw value, set by `append`.
        return TunnelLayer(
            kind: TunnelLayer.Kind(rawValue: UInt8(truncatingIfNeeded: kinds >> (4 * UInt32(index)) & 0xf))!,
            identifier: UInt32(truncatingIfNeeded: word >> (32 * UInt64(index & 1))))
    }

    /// Adds an inner layer.
    ///
    /// - Returns: false, leaving the path as it was, when it already holds `capacity` layers.
    @inline(__always)
    mutating func append(_ kind: TunnelLayer.Kind, identifier: UInt32 = 0) -> Bool {
        let index = count
        guard index < Self.capacity else { return false }
        kinds |= UInt32(kind.rawValue) << (4 * UInt32(index))
        let shifted = UInt64(identifier) << (32 * UInt64(index & 1))
        switch index >> 1 {
        case 0: identifiers01 |= shifted
        case 1: identifiers23 |= shifted
        case 2: identifiers45 |= shifted
        default: identifiers67 |= shifted
        }
        return true
    }

    /// The tenant identifiers of the path (the layers whose kind has one, with their kinds and in order)
    /// mixed into one word; 0 when the path has none, so that traffic without such a tunnel keys its flows
    /// exactly as it would without this word. Two different paths share a word with probability 2^-63.
    @inline(__always)
    var tenant: UInt64 { kinds == 0 ? 0 : mixedTenant() }

    /// `tenant` of a path with at least one layer; out of line, so that a flow key without a tunnel costs one
    /// comparison.
    @inline(never)
    private func mixedTenant() -> UInt64 {
        var mixed: UInt64 = 0
        var hasTenant = false
        for index in 0..<count {
            let layer = self[index]
            guard layer.kind.hasTenantIdentifier else { continue }
            hasTenant = true
            mixed = (mixed ^ (UInt64(layer.kind.rawValue) << 32 | UInt64(layer.identifier))) &* 0x9e37_79b9_7f4a_7c15
            mixed ^= mixed >> 29
        }
        return hasTenant ? mixed | 1 : 0
    }

    /// The `tunnel` column: the layers outermost first, joined by ` / `, as `vxlan vni=4242 / gre key=5`;
    /// empty without encapsulation. Built only for a report row, never per packet.
    public var text: String {
        (0..<count).map { self[$0].text }.joined(separator: " / ")
    }
}

/// One layer of a `TunnelPath`.
public struct TunnelLayer: Sendable, Equatable {
    /// The encapsulations the decoder sees through; the raw values fit in 4 bits.
    public enum Kind: UInt8, Sendable, CaseIterable {
        /// VXLAN (RFC 7348); the identifier is the 24-bit VNI.
        case vxlan = 1
        /// Geneve (RFC 8926); the identifier is the 24-bit VNI.
        case geneve
        /// GRE (RFC 2784) without a key.
        case gre
        /// GRE with a key (RFC 2890 §2.1); the identifier is the key.
        case greKey
        /// ERSPAN type I: GRE without a sequence number, no ERSPAN header, no session.
        case erspanTypeI
        /// ERSPAN type II or III (draft-foschiano-erspan); the identifier is the 10-bit session ID.
        case erspan
        /// One MPLS label stack entry (RFC 3032); the identifier is the 20-bit label.
        case mpls
        /// A PPPoE session (RFC 2516); the identifier is the 16-bit session ID.
        case pppoe
        /// IPv4 in IP (IP protocol 4).
        case ipInIP
        /// IPv6 in IP (IP protocol 41).
        case ipv6InIP

        /// Whether the identifier names a tenant, and so is part of a flow's identity.
        var hasTenantIdentifier: Bool {
            switch self {
            case .vxlan, .geneve, .greKey, .erspan, .mpls, .pppoe: true
            case .gre, .erspanTypeI, .ipInIP, .ipv6InIP: false
            }
        }
    }

    public var kind: Kind
    /// The layer's identifier (`Kind` says which), 0 for a kind without one.
    public var identifier: UInt32

    public init(kind: Kind, identifier: UInt32 = 0) {
        self.kind = kind
        self.identifier = identifier
    }

    /// `vxlan vni=N`, `gre key=N`, `gre`, `erspan session=N`, `erspan`, `mpls label=N`, `pppoe session=N`,
    /// `ip-in-ip` or `ipv6-in-ip`, in decimal.
    public var text: String {
        switch kind {
        case .vxlan: "vxlan vni=\(identifier)"
        case .geneve: "geneve vni=\(identifier)"
        case .gre: "gre"
        case .greKey: "gre key=\(identifier)"
        case .erspanTypeI: "erspan"
        case .erspan: "erspan session=\(identifier)"
        case .mpls: "mpls label=\(identifier)"
        case .pppoe: "pppoe session=\(identifier)"
        case .ipInIP: "ip-in-ip"
        case .ipv6InIP: "ipv6-in-ip"
        }
    }
}
