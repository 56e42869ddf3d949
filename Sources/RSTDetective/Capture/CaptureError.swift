/// Why a capture could not be opened or read to its end.
///
/// Each case names the capture and, for read failures, the 1-based number of the record that could not be
/// read, so that a user can find the damage with `tcpdump -r FILE -c N`.
public enum CaptureError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be opened (`open(2)`) or libpcap did not accept it as a capture.
    case cannotOpen(path: String, reason: String)
    /// libpcap failed on a record: a truncated or corrupt file, or a read error.
    case readFailed(path: String, record: Int, reason: String)
    /// A pcapng file on standard input or a pipe whose interfaces have different link types or snap lengths,
    /// which libpcap 1.10 cannot read as one (a regular file is read on by `PcapngReader`).
    case mixedLinkTypes(path: String, record: Int, reason: String)
    /// The BPF filter expression did not compile for this capture's link type.
    case badFilter(path: String, expression: String, reason: String)
    /// Live capture: the interface does not exist; `available` lists those that do.
    case noSuchInterface(interface: String, available: [String])
    /// Live capture: the process may not capture (it lacks CAP_NET_RAW).
    case permissionDenied(interface: String, reason: String)
    /// Live capture: libpcap could not open, list or save the interface for another reason.
    case cannotCapture(interface: String, reason: String)

    /// Why a capture failed, in the words of summary.csv (`files_failed_<name>`), so that damaged inputs
    /// are counted by kind: libpcap gives only a message, and the kind is read from it.
    public enum Kind: String, CaseIterable, Sendable {
        /// Missing, unreadable, or not a capture libpcap knows.
        case cannotOpen = "cannot_open"
        /// The file ends inside a record or a block.
        case truncated
        /// A pcap record whose captured length is larger than the snap length or libpcap's maximum.
        case badRecordLength = "bad_record_length"
        /// A pcapng block whose length is too short, too long, not a multiple of 4, or not repeated.
        case badBlockLength = "bad_block_length"
        /// Damaged gzip data.
        case corruptGzip = "corrupt_gzip"
        /// Damaged zstd data.
        case corruptZstd = "corrupt_zstd"
        /// A pcapng file with interfaces of different link types.
        case mixedLinkTypes = "mixed_link_types"
        /// A filter that does not compile for this capture's link type.
        case badFilter = "bad_filter"
        /// Any other read failure, and live capture failures.
        case other

        /// The summary.csv metric that counts failures of this kind.
        public var metricName: String { "files_failed_\(rawValue)" }
    }

    /// The kind of failure.
    public var kind: Kind {
        switch self {
        case .cannotOpen: .cannotOpen
        case .mixedLinkTypes: .mixedLinkTypes
        case .badFilter: .badFilter
        case .noSuchInterface, .permissionDenied, .cannotCapture: .other
        case .readFailed(_, _, let reason):
            if reason.hasPrefix("the gzip data is corrupt") {
                .corruptGzip
            } else if reason.hasPrefix("the zstd data is corrupt") {
                .corruptZstd
            } else if reason.contains("truncated") {
                .truncated
            } else if reason.contains("capture length") {
                .badRecordLength
            } else if reason.contains("block") && (reason.contains("length") || reason.contains("size")) {
                .badBlockLength
            } else {
                .other
            }
        }
    }

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            "cannot open '\(path)': \(reason)"
        case .readFailed(let path, let record, let reason):
            "'\(path)' record \(record): \(reason); results up to the previous record are kept"
        case .mixedLinkTypes(let path, let record, let reason):
            "'\(path)' record \(record): \(reason); libpcap reads one link type per file, and standard input or a"
                + " pipe cannot be read again by rst-detective's own pcapng reader, so save it to a file first"
        case .badFilter(let path, let expression, let reason):
            "bad filter '\(expression)' for '\(path)': \(reason)"
        case .noSuchInterface(let interface, let available):
            "no such interface '\(interface)'"
                + (available.isEmpty ? "" : "; interfaces: " + available.joined(separator: ", "))
        case .permissionDenied(let interface, let reason):
            "cannot capture on '\(interface)': \(reason); capturing needs the CAP_NET_RAW capability: run as root, "
                + "or give it to the binary with setcap cap_net_raw,cap_net_admin=eip"
        case .cannotCapture(let interface, let reason):
            interface.isEmpty ? "cannot capture: \(reason)" : "cannot capture on '\(interface)': \(reason)"
        }
    }
}
