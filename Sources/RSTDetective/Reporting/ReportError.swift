import Glibc

/// Why a report, or another output file, could not be written.
public enum ReportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Creating, writing or renaming the file failed.
    case cannotWrite(path: String, reason: String)
    /// A symlink, FIFO or device at `entry`, on the way to `path` or at it, is owned by `owner`, who is neither
    /// the user running the tool nor the owner of its directory, and that directory is sticky and
    /// world-writable (`/tmp`): the rule of `fs.protected_symlinks`, so the output is refused.
    case untrustedEntry(path: String, entry: String, type: UInt32, owner: UInt32)
    /// Running as root, the symlink at `entry`, on the way to `path` or at it, is owned by another user, who
    /// could point it at any file: root follows only its own symlinks.
    case foreignSymlink(path: String, entry: String, owner: UInt32)
    /// Running as root, the report directory `path`, or `directory` on the way to it, is owned by another
    /// user, who could redirect the files in it.
    case foreignDirectory(path: String, directory: String, owner: UInt32)
    /// The reader of standard output or of a FIFO went away (`EPIPE`): that output stopped there, the others
    /// go on.
    case closedByReader(path: String)

    public var description: String {
        switch self {
        case .cannotWrite(let path, let reason):
            "cannot write '\(path)': \(reason)"
        case .untrustedEntry(let path, let entry, let type, let owner):
            "refusing to write '\(path)': \(entry == path ? "it" : "'\(entry)'") is a \(Self.kind(type)) owned by uid "
                + "\(owner) in a sticky world-writable directory, so another user may have planted it"
        case .foreignSymlink(let path, let entry, let owner):
            "refusing to write '\(path)' as root: \(entry == path ? "it" : "'\(entry)'") is a symlink owned by uid "
                + "\(owner), who could point it at any file"
        case .foreignDirectory(let path, let directory, let owner):
            "refusing to write reports into '\(path)' as root: \(directory == path ? "it" : "'\(directory)'") is "
                + "owned by uid \(owner), who could redirect them"
        case .closedByReader(let path):
            "\(path == "-" ? "standard output" : "'\(path)'") was closed by its reader: stopped writing to it; the "
                + "other reports are still written"
        }
    }

    /// What `stat`'s file type says, in words.
    private static func kind(_ type: UInt32) -> String {
        switch type {
        case S_IFLNK: "symlink"
        case S_IFIFO: "FIFO"
        case S_IFCHR, S_IFBLK: "device"
        default: "special file"
        }
    }
}
