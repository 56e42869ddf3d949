import Dispatch
import Glibc
import Synchronization

/// Recovers the effective secret of a server's listener hash (the kernel's secret plus its namespace mix, one
/// 32-bit number) from observations of which listener accepted which IPv4 connection, by trying all 2^32
/// values: the only way, since jhash cannot be inverted from the few bits a listener index reveals.
///
/// Each observation of N listeners carries about log2(N) bits, so about 32 bits of observations single out
/// one secret, and every further one checks it. Listener labels whose listen() order is unknown (worker
/// names, process ids) work too: a secret must then map every label to one listener and different labels to
/// different listeners, which costs log2(N!/(N-L)!) bits for L labels.
///
/// IPv6 cannot be calibrated this way: `inet6_ehashfn` hashes the client address with a second secret before
/// the outer hash, so 64 unknown bits would have to be searched.
public struct SecretCalibration: Sendable {
    /// The model whose arithmetic is searched; its own secret is ignored.
    public let model: ReusePortBucket
    /// Whether listener values are labels with an unknown order rather than listen() indices.
    public let usesLabels: Bool
    /// The distinct listener labels, in the order first seen.
    public let labels: [String]
    /// Observations used, IPv4 only.
    public let observationCount: Int
    /// Observations in the order the search checks them: labels seen more than once first, so that a wrong
    /// secret fails at the second observation with probability 1 - 1/N.
    private let checks: [Check]
    // The model's arithmetic as plain values: the search loop then copies no reference-counted field.
    private let listeners: Int
    private let jhashForm: ReusePortBucket.JHashForm
    private let selection: ReusePortBucket.Selection
    private let mixesServerPort: Bool

    private struct Check: Sendable {
        var serverWord: UInt32
        var clientWord: UInt32
        var serverPort: UInt16
        var clientPort: UInt16
        /// The listener index, or the label's number in label mode.
        var listener: Int
    }

    /// - Parameters:
    ///   - observations: IPv4 observations, at least one (the caller sets IPv6 aside).
    ///   - model: The kernel era and listener count to search under.
    ///   - labels: Read the listener column as labels even when every value is a number below N.
    /// - Throws: `CalibrationError.badFile` when the observations cannot fit any secret: an index not below
    ///   N, more labels than listeners, or one connection seen at two listeners.
    public init(
        observations: [ListenerObservation], model: ReusePortBucket, labels forceLabels: Bool, path: String
    ) throws(CalibrationError) {
        precondition(!observations.isEmpty, "calibration needs observations")
        precondition(observations.allSatisfy { !$0.isIPv6 }, "only IPv4 observations can be calibrated")
        self.model = model
        listeners = model.listeners
        jhashForm = model.jhashForm
        selection = model.selection
        mixesServerPort = model.mixesServerPort
        observationCount = observations.count
        let indices = observations.map { Int($0.listener) }
        usesLabels = forceLabels || indices.contains { $0 == nil || $0! < 0 }
        var labelNumbers: [String: Int] = [:]
        var labels: [String] = []
        var seen: [String: ListenerObservation] = [:]
        var checks: [Check] = []
        for observation in observations {
            let key = "\(observation.client):\(observation.clientPort)-\(observation.server):\(observation.serverPort)"
            if let earlier = seen[key], earlier.listener != observation.listener {
                throw .badFile(
                    path: path, line: observation.line,
                    reason: "this connection is also seen at listener '\(earlier.listener)' on line \(earlier.line)")
            }
            seen[key] = observation
            let listener: Int
            if usesLabels {
                if let number = labelNumbers[observation.listener] {
                    listener = number
                } else {
                    listener = labels.count
                    labelNumbers[observation.listener] = listener
                    labels.append(observation.listener)
                }
            } else {
                listener = Int(observation.listener)!
                guard listener < model.listeners else {
                    throw .badFile(
                        path: path, line: observation.line,
                        reason:
                            "listener \(listener) is not below --listeners \(model.listeners) (use --labels if the values are not listen() indices)"
                    )
                }
            }
            checks.append(
                Check(
                    serverWord: observation.server.ipv4Value.byteSwapped,
                    clientWord: observation.client.ipv4Value.byteSwapped, serverPort: observation.serverPort,
                    clientPort: observation.clientPort, listener: listener))
        }
        if usesLabels, labels.count > model.listeners {
            throw .badFile(
                path: path, line: 1,
                reason: "\(labels.count) different listeners are named, but --listeners is \(model.listeners)")
        }
        self.labels = labels
        if usesLabels {
            // Group observations by label, the most observed first: after a label's first observation, each
            // further one is a full check.
            let counts = Dictionary(grouping: checks, by: \.listener).mapValues(\.count)
            checks.sort { (counts[$0.listener]!, -$0.listener) > (counts[$1.listener]!, -$1.listener) }
        }
        self.checks = checks
    }

    /// How much the observations tell, in bits: about 32 are needed to single out one secret.
    public var evidenceBits: Double {
        let perObservation = log2(Double(model.listeners))
        guard usesLabels else { return Double(observationCount) * perObservation }
        // The labels' own placement is free: N!/(N-L)! ways.
        var placements = 0.0
        for taken in 0..<labels.count { placements += log2(Double(model.listeners - taken)) }
        return Double(observationCount) * perObservation - placements
    }

    /// Whether `secret` puts every observation at its listener (labels: consistently).
    public func explains(_ secret: UInt32) -> Bool {
        var state = LabelState(labels: labels.count, listeners: model.listeners)
        return explains(secret, state: &state)
    }

    /// What a search found.
    public struct Result: Sendable {
        /// Secrets that explain every observation, ascending, at most the search's limit.
        public var secrets: [UInt32]
        /// How many secrets explain every observation.
        public var count: Int
        /// Secrets tried: 2^32 unless stopped.
        public var tried: UInt64
    }

    /// Tries every secret in `range` (all 2^32 by default) on `threads` threads.
    ///
    /// - Parameters:
    ///   - range: The secrets to try; a part of the space lets several machines share a search.
    ///   - threads: Threads to search on.
    ///   - limit: Secrets kept in `Result.secrets`; all are counted.
    ///   - progress: Called after each 1/256 of the range with the share done, from any thread.
    /// - Complexity: One hash per secret, rarely more; all 2^32 take about 13 s on two cores of this project's
    ///   CI machine (release build).
    public func search(
        in range: ClosedRange<UInt32> = 0...UInt32.max, threads: Int, limit: Int = 16,
        progress: (@Sendable (Double) -> Void)? = nil
    ) -> Result {
        let total = UInt64(range.upperBound) - UInt64(range.lowerBound) + 1
        let chunks = UInt64(256)
        let nextChunk = Atomic<Int>(0)
        let tried = Atomic<UInt64>(0)
        let workers = (0..<max(1, threads)).map { _ in WorkerResult() }
        let group = DispatchGroup()
        for worker in workers {
            DispatchQueue.global().async(group: group) {
                var state = LabelState(labels: labels.count, listeners: model.listeners)
                while true {
                    let chunk = UInt64(nextChunk.add(1, ordering: .relaxed).oldValue)
                    guard chunk < chunks else { return }
                    let first = total * chunk / chunks
                    let end = total * (chunk + 1) / chunks
                    var secret = UInt32(truncatingIfNeeded: UInt64(range.lowerBound) + first)
                    for _ in first..<end {
                        if explains(secret, state: &state) {
                            worker.count += 1
                            if worker.secrets.count < limit { worker.secrets.append(secret) }
                        }
                        secret &+= 1
                    }
                    let done = tried.add(end - first, ordering: .relaxed).newValue
                    progress?(Double(done) / Double(total))
                }
            }
        }
        group.wait()
        let secrets = workers.flatMap(\.secrets).sorted().prefix(limit)
        return Result(
            secrets: Array(secrets), count: workers.map(\.count).reduce(0, +), tried: tried.load(ordering: .relaxed))
    }

    /// What one search thread found. Only its thread writes it, and only after `DispatchGroup.wait` is it
    /// read: a hand-over that ThreadSanitizer can see, unlike a lock of the Synchronization module, whose
    /// futex it does not know (it reported a race under such a lock here).
    private final class WorkerResult: @unchecked Sendable {
        var secrets: [UInt32] = []
        var count = 0
    }

    /// The label-to-listener assignment under trial, reset after each secret by undoing what it set.
    private struct LabelState {
        var listenerOfLabel: [Int]
        var labelOfListener: [Int]
        var assigned: [Int] = []

        init(labels: Int, listeners: Int) {
            listenerOfLabel = [Int](repeating: -1, count: labels)
            labelOfListener = [Int](repeating: -1, count: listeners)
            assigned.reserveCapacity(labels)
        }
    }

    private func explains(_ secret: UInt32, state: inout LabelState) -> Bool {
        guard usesLabels else {
            for check in checks where listener(of: check, secret: secret) != check.listener {
                return false
            }
            return true
        }
        // The checks start with the most observed label: its observations must share one listener, which
        // rejects most secrets before any assignment is recorded.
        let firstListener = listener(of: checks[0], secret: secret)
        var index = 1
        while index < checks.count, checks[index].listener == checks[0].listener {
            if listener(of: checks[index], secret: secret) != firstListener { return false }
            index += 1
        }
        defer {
            for label in state.assigned {
                state.labelOfListener[state.listenerOfLabel[label]] = -1
                state.listenerOfLabel[label] = -1
            }
            state.assigned.removeAll(keepingCapacity: true)
        }
        for check in checks {
            let listener = listener(of: check, secret: secret)
            let label = check.listener
            let current = state.listenerOfLabel[label]
            if current == listener { continue }
            guard current == -1, state.labelOfListener[listener] == -1 else { return false }
            state.listenerOfLabel[label] = listener
            state.labelOfListener[listener] = label
            state.assigned.append(label)
        }
        return true
    }

    @inline(__always)
    private func listener(of check: Check, secret: UInt32) -> Int {
        ReusePortBucket.bucket(
            forHash: ReusePortBucket.ipv4Hash(
                serverWord: check.serverWord, clientWord: check.clientWord, serverPort: check.serverPort,
                clientPort: check.clientPort, initval: secret, form: jhashForm, mixesServerPort: mixesServerPort),
            listeners: listeners, selection: selection)
    }
}
