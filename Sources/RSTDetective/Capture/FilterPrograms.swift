internal import CPcap
import Synchronization

/// BPF programs for capture files, compiled at most once per expression and link type in the life of the
/// process (`pcap_compile` on a `pcap_open_dead` handle), so that the check of the command line and every
/// file of that link type share one program: a day of rotated files compiles its filter once.
///
/// An expression longer than `PacketSource.maximumFilterLength` is refused before libpcap sees it, and a
/// program longer than `PacketSource.maximumFilterInstructions` after. The programs are never freed: there
/// is one per expression and link type met, at most 32 KiB each.
enum FilterPrograms {
    /// A compiled program, or why the expression does not compile for that link type.
    @safe private enum Compiled {
        case program(bpf_program)
        case failed(String)
    }

    private struct Key: Hashable {
        var expression: String
        var dataLinkType: Int32
    }

    private static let compiled = Mutex<[Key: Compiled]>([:])

    /// The program of `expression` for `dataLinkType`, compiled now if it has not been yet.
    ///
    /// The lock is held while libpcap compiles, so that two threads never compile the same program.
    ///
    /// - Returns: The program, or libpcap's message (or the bound that was passed) when it does not compile.
    static func program(_ expression: String, dataLinkType: Int32) -> Result<bpf_program, FilterFailure> {
        if let tooLong = lengthError(expression) { return unsafe .failure(FilterFailure(reason: tooLong)) }
        return unsafe compiled.withLock { programs in
            let key = Key(expression: expression, dataLinkType: dataLinkType)
            let entry = programs[key] ?? compile(expression, dataLinkType: dataLinkType)
            programs[key] = entry
            switch entry {
            case .program(let program): return unsafe .success(program)
            case .failed(let reason): return unsafe .failure(FilterFailure(reason: reason))
            }
        }
    }

    /// Why `expression` is refused before compiling, or nil: its length is bounded because libpcap's
    /// optimiser needs far more time and memory than the text would suggest.
    static func lengthError(_ expression: String) -> String? {
        let length = expression.utf8.count
        guard length > PacketSource.maximumFilterLength else { return nil }
        return "the expression is \(length) characters long, more than the \(PacketSource.maximumFilterLength) "
            + "taken (libpcap's optimiser needs minutes and gigabytes for such expressions)"
    }

    /// Why a compiled program is refused, or nil: the Linux kernel takes at most
    /// `PacketSource.maximumFilterInstructions` instructions in a socket filter.
    static func instructionsError(_ count: Int) -> String? {
        guard count > PacketSource.maximumFilterInstructions else { return nil }
        return "it compiles to \(count) BPF instructions, more than the \(PacketSource.maximumFilterInstructions) "
            + "the kernel takes in a socket filter"
    }

    private static func compile(_ expression: String, dataLinkType: Int32) -> Compiled {
        guard let handle = unsafe pcap_open_dead(dataLinkType, 262_144) else {
            return .failed("cannot create a pcap handle")
        }
        defer { unsafe pcap_close(handle) }
        var program = unsafe bpf_program()
        guard unsafe pcap_compile(handle, &program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            return .failed(unsafe String(cString: pcap_geterr(handle)))
        }
        if let tooMany = instructionsError(Int(unsafe program.bf_len)) {
            unsafe pcap_freecode(&program)
            return .failed(tooMany)
        }
        return unsafe .program(program)
    }
}

/// Why a filter expression was refused: libpcap's message, or the bound it passed.
struct FilterFailure: Error {
    var reason: String
}
