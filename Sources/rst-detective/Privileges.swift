import Glibc

/// Dropping root after the interface is open (`-Z USER`, as tcpdump does), so that packet parsing and report
/// writing never run as root.
enum Privileges {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Becomes `user`: its supplementary groups, its group, then its user id, and checks that root cannot be
    /// taken back.
    static func drop(to user: String) throws(Failure) {
        guard let entry = getpwnam(user) else { throw Failure(description: "-Z: no such user '\(user)'") }
        let uid = entry.pointee.pw_uid
        let gid = entry.pointee.pw_gid
        guard initgroups(user, gid) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw Failure(description: "-Z \(user): cannot drop privileges: \(String(cString: strerror(errno)))")
        }
        if uid != 0, setuid(0) == 0 {
            throw Failure(description: "-Z \(user): root could be taken back after dropping it")
        }
    }
}
