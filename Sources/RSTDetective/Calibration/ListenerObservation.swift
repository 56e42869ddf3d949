import Glibc

/// One line of a server's evidence: the listener that accepted a connection.
public struct ListenerObservation: Sendable {
    /// The listener as the file names it: an index in listen() order, or any worker label.
    public var listener: String
    public var client: IPAddress
    public var clientPort: UInt16
    public var server: IPAddress
    public var serverPort: UInt16
    /// The line of the file it came from (the header is line 1).
    public var line: Int

    public var isIPv6: Bool { !client.isIPv4 || !server.isIPv4 }

    /// The columns an observations file must have, in any order; others are ignored.
    public static let requiredColumns = ["listener", "client_ip", "client_port", "server_ip", "server_port"]

    /// Reads an observations CSV (RFC 4180; a header row naming `requiredColumns`).
    ///
    /// - Parameter path: The file; `-` is standard input.
    /// - Throws: `CalibrationError` naming the file, the line and the reason.
    public static func read(path: String) throws(CalibrationError) -> [ListenerObservation] {
        let text = try readText(path)
        var rows = CSVRecords(text)
        guard let header = rows.next() else { throw .badFile(path: path, line: 1, reason: "empty file") }
        let names = header.fields.map { $0.trimmed.lowercased() }
        var columns: [Int] = []
        for name in requiredColumns {
            guard let index = names.firstIndex(of: name) else {
                throw .badFile(
                    path: path, line: header.line,
                    reason: "no '\(name)' column; the header needs \(requiredColumns.joined(separator: ","))")
            }
            columns.append(index)
        }
        var observations: [ListenerObservation] = []
        while let row = rows.next() {
            if row.fields.allSatisfy({ $0.trimmed.isEmpty }) { continue }
            func field(_ column: Int) -> String {
                columns[column] < row.fields.count ? row.fields[columns[column]].trimmed : ""
            }
            func address(_ column: Int) throws(CalibrationError) -> IPAddress {
                guard let address = IPAddress(field(column)) else {
                    throw .badFile(
                        path: path, line: row.line,
                        reason: "\(requiredColumns[column]) '\(field(column))' is not an IP address")
                }
                return address
            }
            func port(_ column: Int) throws(CalibrationError) -> UInt16 {
                guard let port = UInt16(field(column)), port > 0 else {
                    throw .badFile(
                        path: path, line: row.line,
                        reason: "\(requiredColumns[column]) '\(field(column))' is not a port (1-65535)")
                }
                return port
            }
            guard !field(0).isEmpty else { throw .badFile(path: path, line: row.line, reason: "no listener") }
            observations.append(
                ListenerObservation(
                    listener: field(0), client: try address(1), clientPort: try port(2), server: try address(3),
                    serverPort: try port(4), line: row.line))
        }
        return observations
    }

    /// Limits what is read into memory: an observations file is a few dozen lines, not a log.
    private static let maximumBytes = 64 << 20

    private static func readText(_ path: String) throws(CalibrationError) -> String {
        let stream = unsafe path == "-" ? fdopen(dup(STDIN_FILENO), "r") : fopen(path, "r")
        guard let stream = unsafe stream else {
            throw .cannotRead(path: path, reason: unsafe String(cString: strerror(errno)))
        }
        defer { unsafe fclose(stream) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count <= maximumBytes {
            let count = unsafe chunk.withUnsafeMutableBytes { unsafe fread($0.baseAddress, 1, $0.count, stream) }
            bytes += chunk[..<count]
            if count < chunk.count { break }
        }
        if unsafe ferror(stream) != 0 {
            throw .cannotRead(path: path, reason: unsafe String(cString: strerror(errno)))
        }
        guard bytes.count <= maximumBytes else {
            throw .cannotRead(path: path, reason: "larger than \(maximumBytes >> 20) MiB")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The records of RFC 4180 CSV text, with the line each starts on: fields are separated by commas, may be
/// quoted with `"` (a quote inside doubled), and records end with LF or CRLF.
struct CSVRecords: IteratorProtocol {
    private let scalars: [Unicode.Scalar]
    private var index = 0
    private var line = 1

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    mutating func next() -> (fields: [String], line: Int)? {
        guard index < scalars.count else { return nil }
        let start = line
        var fields: [String] = []
        var field = String.UnicodeScalarView()
        var quoted = false
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            if quoted {
                if scalar == "\"" {
                    if index < scalars.count, scalars[index] == "\"" {
                        field.append("\"")
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"": quoted = true
            case ",":
                fields.append(String(field))
                field = String.UnicodeScalarView()
            case "\n":
                line += 1
                fields.append(String(field))
                return (fields, start)
            case "\r" where index < scalars.count && scalars[index] == "\n": continue
            default: field.append(scalar)
            }
        }
        fields.append(String(field))
        return (fields, start)
    }
}

extension String {
    fileprivate var trimmed: String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isBlank($0) }), let last = lastIndex(where: { !isBlank($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
