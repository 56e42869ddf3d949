import Glibc

/// How every output file is opened, so that a run as root in a directory other users can write to never
/// writes where they point it.
///
/// A name that does not exist yet, or is a regular file, is never opened: the output goes to a new file
/// created beside it under a random hidden name with `O_CREAT|O_EXCL|O_NOFOLLOW` (so nothing planted
/// under a guessed name is opened), and is renamed over the name, which replaces a symlink rather than
/// following it. An existing FIFO, device or symlink is written in place instead, never replaced, so that
/// `/dev/null`, `/dev/stderr` and a FIFO's reader get the output.
///
/// A symlink, FIFO or device is used only when it is trusted as the kernel's `fs.protected_symlinks` and
/// `fs.protected_fifos` have it, whatever those settings are: owned by the user running the tool or by the
/// owner of its directory, or in a directory that is not both sticky and world-writable; as root, a symlink
/// only when root owns it. Every symlink on the way to the name is held to the same rule.
package enum OutputPath {
    /// Opens `path` for writing in place when it names an existing FIFO, device or trusted symlink
    /// (`open(2)` without `O_CREAT`); a regular file reached through the symlink is truncated.
    ///
    /// A FIFO is opened as a shell redirection opens it, waiting for its reader.
    ///
    /// - Returns: The descriptor, or nil when `path` does not exist yet or is a regular file: such an output
    ///   is written aside and renamed into place.
    /// - Throws: `ReportError.untrustedEntry` or `.foreignSymlink` for an entry the rule refuses; `.cannotWrite`
    ///   when the path
    ///   cannot be looked at or opened, or changed while it was opened.
    static func openInPlace(_ path: String) throws(ReportError) -> Int32? {
        try checkSymlinks(on: path)
        var entry = stat()
        guard unsafe lstat(path, &entry) == 0 else {
            if errno == ENOENT { return nil }
            throw .cannotWrite(path: path, reason: errorText())
        }
        let type = entry.st_mode & S_IFMT
        if type == S_IFREG { return nil }
        if type == S_IFDIR { throw .cannotWrite(path: path, reason: "it is a directory") }
        let isLink = type == S_IFLNK
        // Checked again on this lstat, links included: the name may have been swapped since checkSymlinks.
        try checkTrusted(entry, at: path, for: path)
        let descriptor = unsafe open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC | (isLink ? 0 : O_NOFOLLOW))
        guard descriptor >= 0 else { throw .cannotWrite(path: path, reason: errorText()) }
        // The entry checked must be the one opened: a link or a FIFO swapped in between is refused.
        var now = stat()
        var opened = stat()
        let looked = unsafe lstat(path, &now) == 0
        let statted = unsafe fstat(descriptor, &opened) == 0
        let sameEntry = now.st_dev == entry.st_dev && now.st_ino == entry.st_ino && now.st_uid == entry.st_uid
        let sameFile = isLink || (opened.st_dev == entry.st_dev && opened.st_ino == entry.st_ino)
        guard looked, statted, sameEntry, sameFile else {
            close(descriptor)
            throw .cannotWrite(path: path, reason: "it changed while it was being opened")
        }
        if opened.st_mode & S_IFMT == S_IFREG, ftruncate(descriptor, 0) != 0 {
            let reason = errorText()
            close(descriptor)
            throw .cannotWrite(path: path, reason: reason)
        }
        return descriptor
    }

    /// Whether an output at `path` is replaced whole, written aside and renamed: it does not exist yet or is a
    /// regular file. Anything else (standard output, a FIFO, a device, a symlink) is written in place, where a
    /// rewrite would append to what a reader already has, and a FIFO's open waits for a reader.
    package static func isReplacedWhole(_ path: String) -> Bool {
        guard path != "-" else { return false }
        var entry = stat()
        guard unsafe lstat(path, &entry) == 0 else { return errno == ENOENT }
        return entry.st_mode & S_IFMT == S_IFREG
    }

    /// Creates an empty file beside `path` under a hidden random name, `.NAME.RANDOM.tmp`, with
    /// `O_CREAT|O_EXCL|O_NOFOLLOW`: a name no one could plant in advance, and nothing already there is
    /// opened. The mode is 0666 less the umask, as `fopen` gives.
    ///
    /// - Returns: The new file's path and its descriptor, open for reading and writing.
    /// - Throws: `ReportError.cannotWrite` naming `path`.
    static func createAside(_ path: String) throws(ReportError) -> (path: String, descriptor: Int32) {
        let (directory, name) = split(path)
        try checkOwners(above: directory.isEmpty ? "." : directory, for: path)
        let random = String(UInt64.random(in: .min ... .max), radix: 16)
        let aside = "\(directory).\(name).\(random).tmp"
        let descriptor = unsafe open(aside, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw .cannotWrite(path: path, reason: errorText()) }
        return (aside, descriptor)
    }

    /// Creates a new, empty file under `name` at once: made aside and renamed, so that it replaces whatever
    /// was there (a stale file, a symlink) without following it.
    ///
    /// - Returns: The descriptor, open for reading and writing.
    /// - Throws: `ReportError.cannotWrite` naming `name`.
    static func create(replacing name: String) throws(ReportError) -> Int32 {
        let (aside, descriptor) = try createAside(name)
        guard unsafe rename(aside, name) == 0 else {
            let reason = errorText()
            unsafe unlink(aside)
            close(descriptor)
            throw .cannotWrite(path: name, reason: reason)
        }
        return descriptor
    }

    /// Refuses, as root, a directory owned by another user on the way to the report directory `path`: its
    /// owner could swap any file under it between two of root's system calls (logrotate refuses such
    /// directories too).
    ///
    /// - Throws: `ReportError.foreignDirectory`, or `.cannotWrite` when `directory` cannot be looked at.
    static func checkOwner(of directory: String, for path: String) throws(ReportError) {
        var status = stat()
        guard unsafe stat(directory, &status) == 0 else { throw .cannotWrite(path: path, reason: errorText()) }
        let user = geteuid()
        if user == 0, status.st_uid != user {
            throw .foreignDirectory(path: path, directory: directory, owner: status.st_uid)
        }
    }

    /// Refuses, as root, a file in a directory another user owns, or below one (`directory` resolved, so the
    /// directories above the current one count too): that user could swap the directory for a symlink
    /// between two of root's system calls and have the file made anywhere.
    ///
    /// - Throws: `ReportError.foreignDirectory`, or `.cannotWrite` when `directory` cannot be resolved.
    static func checkOwners(above directory: String, for path: String) throws(ReportError) {
        guard geteuid() == 0 else { return }
        guard let resolved = unsafe realpath(directory, nil) else {
            throw .cannotWrite(path: path, reason: errorText())
        }
        let real = unsafe String(cString: resolved)
        unsafe free(resolved)
        var prefix = "/"
        try checkOwner(of: prefix, for: path)
        for component in real.split(separator: "/") {
            prefix += component
            try checkOwner(of: prefix, for: path)
            prefix += "/"
        }
    }

    /// Checks every symlink on the way to `path`, the last component included, against the rule.
    ///
    /// - Throws: `ReportError.untrustedEntry` or `.foreignSymlink` for the first one refused.
    static func checkSymlinks(on path: String) throws(ReportError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            var entry = stat()
            // Nothing is followed past a component that does not exist (yet).
            guard unsafe lstat(prefix, &entry) == 0 else { return }
            if entry.st_mode & S_IFMT == S_IFLNK { try checkTrusted(entry, at: prefix, for: path) }
            prefix += "/"
        }
    }

    /// The rule of `fs.protected_symlinks` and `fs.protected_fifos`: `entry`, at `name`, is trusted when it is
    /// owned by the user running the tool or by the owner of its directory, or when that directory is not
    /// both sticky and world-writable. Root is stricter: it follows only symlinks root owns, since any other
    /// user's link could send its writes to any file.
    private static func checkTrusted(_ entry: stat, at name: String, for path: String) throws(ReportError) {
        let user = geteuid()
        if entry.st_uid == user { return }
        guard user != 0 || entry.st_mode & S_IFMT != S_IFLNK else {
            throw .foreignSymlink(path: path, entry: name, owner: entry.st_uid)
        }
        var directory = stat()
        let parent = split(name).directory
        guard unsafe stat(parent.isEmpty ? "." : parent, &directory) == 0 else {
            throw .cannotWrite(path: path, reason: errorText())
        }
        let shared = directory.st_mode & S_ISVTX != 0 && directory.st_mode & S_IWOTH != 0
        if entry.st_uid == directory.st_uid || !shared { return }
        throw .untrustedEntry(path: path, entry: name, type: entry.st_mode & S_IFMT, owner: entry.st_uid)
    }

    /// `path` cut after its last slash: the directory with its slash (empty for a bare name), and the name.
    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[...slash]), String(path[path.index(after: slash)...]))
    }

    /// `strerror(errno)`.
    static func errorText() -> String { unsafe String(cString: strerror(errno)) }
}
