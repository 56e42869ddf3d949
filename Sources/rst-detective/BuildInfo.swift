import CBuildInfo

/// What `rst-detective --version` prints: the release and the commit the binary was built from.
enum BuildInfo {
    /// The release; scripts/package names the Debian package and the tarball after it.
    static let version = "0.1.0"

    /// The commit, `git describe --always --dirty --abbrev=12` at build time as `scripts/package` passes it in
    /// (see CBuildInfo); "unknown" in a development build.
    static let commit = String(cString: rst_detective_commit())

    /// `0.1.0 (commit 0123456789ab)`.
    static let versionLine = "\(version) (commit \(commit))"
}
