/// Why a capture could not be opened or read to its end.
///
/// Each case names the capture and, for read failures, the 1-based number of the record that could not be
/// read, so that a user can find the damage with `tcpdump -r FILE -c N`.
public enum CaptureError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be opened (`open(2)`) or libpcap did not accept it as a capture.
    case cannotOpen(path: String, reason: String)
    /// libpcap failed on a record: a truncated or corrupt file, or a read error.
    case readFailed(path: String, record: Int, reason: String)
    /// A pcapng file whose interfaces have different link types, which libpcap 1.10 cannot read as one.
    case mixedLinkTypes(path: String, record: Int, reason: String)
    /// The BPF filter expression did not compile for this capture's link type.
    case badFilter(path: String, expression: String, reason: String)
    /// Live capture: the interface does not exist; `available` lists those that do.
    case noSuchInterface(interface: String, available: [String])
    /// Live capture: the process may not capture (it lacks CAP_NET_RAW).
    case permissionDenied(interface: String, reason: String)
    /// Live capture: libpcap could not open, list or save the interface for another reason.
    case cannotCapture(interface: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            "cannot open '\(path)': \(reason)"
        case .readFailed(let path, let record, let reason):
            "'\(path)' record \(record): \(reason); results up to the previous record are kept"
        case .mixedLinkTypes(let path, let record, let reason):
            "'\(path)' record \(record): \(reason); libpcap reads one link type per file, so split it per"
                + " interface first, for example `tshark -r '\(path)' -Y 'frame.interface_id == 1' -w part1.pcapng`"
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
