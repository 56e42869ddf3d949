/// Where `CaptureFileReader` delivers packets: the analysis itself on one thread, or a batch that carries
/// them to the analysis on another. A generic parameter, so that the reading loop is specialised for each
/// and the per-packet call is static.
protocol PacketSink {
    /// Whether the sink takes no more packets until it is emptied; reading then stops without reading the
    /// next record, so that the packets taken are handed on without waiting for another read.
    var isFull: Bool { get }

    /// Takes one packet; `bytes` are borrowed for the call.
    mutating func take(_ info: PacketInfo, _ bytes: RawSpan, _ linkType: LinkType)
}
