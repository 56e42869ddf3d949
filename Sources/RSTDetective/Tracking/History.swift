/// A connection's packets in Zeek's connection-history letters: upper case from the client (originator),
/// lower case from the server (responder); `S` SYN, `H` SYN+ACK, `A` pure ACK, `D` payload, `F` FIN,
/// `R` RST. As in Zeek, each letter is recorded the first time it occurs in its direction, so an incident
/// reads `ShAr` or `ShADr`.
public struct History: Sendable, Equatable {
    private static let letters: [Character] = ["S", "H", "A", "D", "F", "R", "s", "h", "a", "d", "f", "r"]
    /// Letter codes (index + 1 into `letters`) in order, four bits each, first letter lowest.
    private var codes: UInt64 = 0
    private var length: UInt8 = 0
    /// One bit per letter already recorded.
    private var seen: UInt16 = 0

    public init() {}

    /// Records the letters for one segment, as Zeek does: a segment with SYN, FIN or RST gives those
    /// letters only; any other gives `D` if it carries payload, else `A` if it has the ACK flag.
    mutating func record(_ flags: TCPFlags, hasPayload: Bool, fromClient: Bool) {
        let base = fromClient ? 0 : 6
        guard !flags.isDisjoint(with: [.syn, .fin, .rst]) else {
            if hasPayload {
                append(base + 3)
            } else if flags.contains(.ack) {
                append(base + 2)
            }
            return
        }
        if flags.contains(.syn) { append(base + (flags.contains(.ack) ? 1 : 0)) }
        if flags.contains(.fin) { append(base + 4) }
        if flags.contains(.rst) { append(base + 5) }
    }

    private mutating func append(_ letter: Int) {
        let bit = UInt16(1) << letter
        guard seen & bit == 0, length < 16 else { return }
        seen |= bit
        codes |= UInt64(letter + 1) << (4 * UInt64(length))
        length += 1
    }
}

extension History: CustomStringConvertible {
    public var description: String {
        var text = ""
        for position in 0..<Int(length) {
            let code = Int((codes >> (4 * UInt64(position))) & 0xf)
            text.append(Self.letters[code - 1])
        }
        return text
    }
}
