/// The TCP control bits (RFC 9293 §3.1, byte 13 of the header).
public struct TCPFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
}

extension TCPFlags {
    /// The flags set, as letters in bit order: `F` `S` `R` `P` `A` `U` `E` `C` (RST+ACK is `RA`).
    public var text: String {
        String(zip("FSRPAUEC", 0..<8).compactMap { rawValue & (1 << $0.1) != 0 ? $0.0 : nil })
    }
}
