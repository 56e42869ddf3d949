/// How a connection attempt ended, as far as the packets show. Every attempt gets exactly one, so each
/// incident has a denominator.
public enum Outcome: UInt8, CaseIterable, Sendable {
    /// The client acknowledged the SYN-ACK and the server then sent data or a FIN, or the maximum delay
    /// passed with neither a reset nor a SYN-ACK retransmission.
    case completed
    /// The signature: after the client's handshake ACK, the server answered with a RST whose sequence
    /// number is that ACK's acknowledgement number and whose ACK flag is clear (RFC 9293 reset generation
    /// for a segment with no connection), having sent no byte since its SYN-ACK, within the maximum delay.
    case resetAfterHandshake
    /// A near miss: after the SYN-ACK and before the server's first byte or FIN, the server side sent a RST
    /// whose sequence number is not the SYN-ACK's + 1, so it answers no ACK of this handshake (an ACK of a
    /// wrong number, or a RST from elsewhere with a guessed sequence number), and the client ignores it;
    /// the attempt did not end as an incident. The connection may have gone on.
    case wrongAck
    /// A near miss: as the signature, but RST+ACK from the server's socket, in a burst with another such
    /// reset on the same server port (`NearMissClassifier`): the children left in a listener's accept queue,
    /// reset together when the listener closes.
    case listenerClose
    /// A near miss: as the signature, but RST+ACK from the server's socket, on its own: an application
    /// abort after accept (SO_LINGER 0, or close() with the request unread), or a lone unaccepted child of
    /// a listener that closed, which looks the same.
    case appAbort
    /// A near miss: the server answered the SYN with RST+ACK acknowledging it.
    case refused
    /// No SYN-ACK came: the handshake timeout passed after the client's last SYN, or the client reset.
    case unanswered
    /// A SYN-ACK came but the client did not acknowledge it: the handshake timeout passed after the last
    /// SYN-ACK, or the client reset.
    case abandoned
    /// The client reset the connection after its handshake ACK, before the outcome was settled.
    case clientReset
    /// The server reset the connection after its SYN-ACK but before any client ACK was seen.
    case resetBeforeAck
    /// The client acknowledged, then the server retransmitted its SYN-ACK and sent nothing else within
    /// the maximum delay: the ACK was dropped (a full accept queue with `tcp_abort_on_overflow=0`).
    case ackDropped
    /// The capture ended before the outcome could be settled.
    case openAtEnd

    /// Whether this outcome is a near miss: a server RST that is not the signature (`--near-misses`).
    public var isNearMiss: Bool {
        switch self {
        case .wrongAck, .listenerClose, .appAbort, .refused: true
        default: false
        }
    }

    /// The name of this outcome's counter in summary.csv.
    public var metricName: String { "outcome_" + name }

    /// The outcome's name in snake case, as reports print it.
    public var name: String {
        switch self {
        case .completed: "completed"
        case .resetAfterHandshake: "reset_after_handshake"
        case .wrongAck: "wrong_ack"
        case .listenerClose: "listener_close"
        case .appAbort: "app_abort"
        case .refused: "refused"
        case .unanswered: "unanswered"
        case .abandoned: "abandoned"
        case .clientReset: "client_reset"
        case .resetBeforeAck: "reset_before_ack"
        case .ackDropped: "ack_dropped"
        case .openAtEnd: "open_at_end"
        }
    }
}
