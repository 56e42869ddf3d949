/// The per-record metadata libpcap gives with each packet (`struct pcap_pkthdr`).
public struct PacketInfo: Sendable, Equatable {
    /// Capture time in nanoseconds since the Unix epoch; sources are opened with nanosecond precision.
    public var timestampNanos: Int64
    /// Bytes present in the record (pcap's `caplen`), at most the snap length.
    public var capturedLength: Int
    /// Bytes the packet had on the wire (pcap's `len`).
    public var wireLength: Int

    public init(timestampNanos: Int64, capturedLength: Int, wireLength: Int) {
        self.timestampNanos = timestampNanos
        self.capturedLength = capturedLength
        self.wireLength = wireLength
    }
}
