import Glibc
import Synchronization

/// A report being written: standard output, or a file written aside and renamed into place by `commit`,
/// so that a reader never sees a half-written report under the final name, whether the run ends, fails or
/// is killed.
///
/// A streaming report (a live capture) grows in `NAME.partial`, flushed record by record for `tail -f`;
/// `publish` puts a copy of what it holds so far under the final name, atomically, and `commit` renames it
/// into place. A run that is killed leaves the last published copy under the final name and every record
/// in `NAME.partial`, whose name says it is not complete.
@safe public final class ReportFile {
    /// The final path, or `-` for standard output.
    public let path: String
    /// Where the report is written until `commit`: a hidden file aside, or `NAME.partial` when streaming.
    private let temporaryPath: String?
    private let streaming: Bool
    private var stream: UnsafeMutablePointer<FILE>?
    private var failure: ReportError?
    private static let sequence = Atomic<Int>(0)

    /// Opens `path` (`-` is standard output) for writing.
    ///
    /// - Parameters:
    ///   - path: The report's final path, or `-`.
    ///   - streaming: Write to `NAME.partial` from the start, for a report that grows while a live capture
    ///     runs and is read with `tail -f` (each record is flushed whole), and publish it with `publish`.
    ///     Otherwise the report is written to a hidden file aside and appears under its name at `commit`.
    /// - Throws: `ReportError.cannotWrite` when the file cannot be created.
    public init(path: String, streaming: Bool = false) throws(ReportError) {
        self.path = path
        self.streaming = streaming && path != "-"
        if path == "-" {
            temporaryPath = nil
            unsafe stream = unsafe fdopen(dup(STDOUT_FILENO), "w")
            return
        }
        let aside = streaming ? path + ".partial" : Self.asidePath(path)
        guard let opened = unsafe fopen(aside, "w") else {
            throw .cannotWrite(path: path, reason: unsafe String(cString: strerror(errno)))
        }
        temporaryPath = aside
        unsafe stream = opened
    }

    deinit {
        // A report never committed (an error) is removed, not left half written; a streaming one keeps its
        // records in NAME.partial.
        if let stream = unsafe stream {
            unsafe fclose(stream)
            if let temporaryPath, !streaming { unsafe unlink(temporaryPath) }
        }
    }

    /// Writes `text` as the whole report at `path`, aside and renamed into place, so that a reader finds the
    /// previous version or this one, never part of it (`-` is standard output).
    ///
    /// - Throws: `ReportError.cannotWrite`; a file already at `path` then stays as it was.
    public static func replace(_ path: String, with text: String) throws(ReportError) {
        let file = try ReportFile(path: path)
        file.write(text)
        try file.commit()
    }

    /// A hidden name beside `path`, unique per process and per file, so that two reports with one final
    /// path never share a file.
    private static func asidePath(_ path: String) -> String {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return "\(directory).\(name).\(getpid()).\(Self.sequence.add(1, ordering: .relaxed).newValue).tmp"
    }

    /// A streaming report: puts a copy of every record written so far under the final name, written aside
    /// and renamed, so that the final name always holds whole records and a header. Does nothing for
    /// other reports, which appear at `commit`.
    ///
    /// - Throws: `ReportError.cannotWrite` when the copy cannot be written; the report goes on.
    public func publish() throws(ReportError) {
        guard streaming, let stream = unsafe stream, let temporaryPath, failure == nil else { return }
        unsafe fflush(stream)
        let copyPath = Self.asidePath(path)
        guard let source = unsafe fopen(temporaryPath, "r") else {
            throw .cannotWrite(path: path, reason: unsafe String(cString: strerror(errno)))
        }
        defer { unsafe fclose(source) }
        guard let copy = unsafe fopen(copyPath, "w") else {
            throw .cannotWrite(path: path, reason: unsafe String(cString: strerror(errno)))
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var failed = false
        while !failed {
            let count = unsafe buffer.withUnsafeMutableBytes { unsafe fread($0.baseAddress, 1, $0.count, source) }
            if count == 0 { break }
            failed = unsafe buffer.withUnsafeBytes { unsafe fwrite($0.baseAddress, 1, count, copy) } != count
        }
        let closed = unsafe fclose(copy) == 0
        let readFailed = unsafe ferror(source) != 0
        if unsafe failed || !closed || readFailed || rename(copyPath, path) != 0 {
            let reason = unsafe String(cString: strerror(errno))
            unsafe unlink(copyPath)
            throw .cannotWrite(path: path, reason: reason)
        }
    }

    /// Appends `text`; the first failure is kept and reported by `commit`.
    public func write(_ text: String) {
        guard failure == nil, let stream = unsafe stream else { return }
        var text = text
        let written = text.withUTF8 { unsafe fwrite($0.baseAddress, 1, $0.count, stream) }
        if written != text.utf8.count {
            failure = .cannotWrite(path: path, reason: unsafe String(cString: strerror(errno)))
        }
    }

    /// Writes one CSV record as RFC 4180 §2 has it: fields with commas, quotes or line breaks are quoted,
    /// quotes doubled, and the record ends in CRLF.
    public func writeRecord(_ fields: [String]) {
        // Field by field into the stream's buffer: no joined copy of the record.
        for (index, field) in fields.enumerated() {
            if index > 0 { write(",") }
            write(Self.escape(field))
        }
        write("\r\n")
    }

    /// Flushes buffered output, e.g. after each incident on a pipe.
    public func flush() {
        guard let stream = unsafe stream else { return }
        unsafe fflush(stream)
    }

    /// Finishes the report: flushes it and, for a file, renames it into place.
    ///
    /// - Throws: `ReportError.cannotWrite` for the first write, flush or rename failure.
    public func commit() throws(ReportError) {
        guard let stream = unsafe stream else { return }
        unsafe self.stream = nil
        if let temporaryPath {
            if unsafe fclose(stream) != 0, failure == nil {
                failure = .cannotWrite(path: path, reason: unsafe String(cString: strerror(errno)))
            }
            if failure == nil, unsafe rename(temporaryPath, path) != 0 {
                failure = .cannotWrite(path: path, reason: unsafe String(cString: strerror(errno)))
            }
            if failure != nil { unsafe unlink(temporaryPath) }
        } else if unsafe fclose(stream) != 0, failure == nil {
            // Standard output's stream is a dup of descriptor 1, so closing it leaves descriptor 1 open.
            failure = .cannotWrite(path: path, reason: unsafe String(cString: strerror(errno)))
        }
        if let failure { throw failure }
    }

    /// Quotes a field that holds a comma, a quote or a line break, doubling its quotes. The test is on
    /// Unicode scalars, because Swift's characters join CRLF, or a quote and a combining mark, into one.
    private static func escape(_ field: String) -> String {
        guard field.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else {
            return field
        }
        var quoted = String.UnicodeScalarView()
        quoted.append("\"")
        for scalar in field.unicodeScalars {
            if scalar == "\"" { quoted.append("\"") }
            quoted.append(scalar)
        }
        quoted.append("\"")
        return String(quoted)
    }
}
