import CRdKafka

/// An error from librdkafka or from our use of it.
///
/// Carries librdkafka's error code and name, and its fatal / retriable flags, so callers can
/// decide whether to retry, back off or give up. `description` names the operation and the
/// error; it never contains message payloads.
public struct KafkaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// librdkafka's `rd_kafka_resp_err_t` value (negative values are client-side errors).
    public var code: Int32
    /// librdkafka's symbolic name for `code`, e.g. `_TRANSPORT` or `OFFSET_OUT_OF_RANGE`.
    public var name: String
    /// Human-readable reason from librdkafka or from the wrapper.
    public var message: String
    /// The operation that failed, e.g. `subscribe` or `commit`.
    public var operation: String
    /// The client instance is unusable and must be recreated.
    public var isFatal: Bool
    /// Retrying the same operation may succeed.
    public var isRetriable: Bool

    public init(code: Int32, name: String, message: String, operation: String, isFatal: Bool = false, isRetriable: Bool = false) {
        self.code = code
        self.name = name
        self.message = message
        self.operation = operation
        self.isFatal = isFatal
        self.isRetriable = isRetriable
    }

    public var description: String {
        var flags: [String] = []
        if isFatal { flags.append("fatal") }
        if isRetriable { flags.append("retriable") }
        let suffix = flags.isEmpty ? "" : " [\(flags.joined(separator: ", "))]"
        return "kafka \(operation) failed: \(name) (\(code)): \(message)\(suffix)"
    }

    /// An error for a response code, without extra flags.
    init(_ err: rd_kafka_resp_err_t, operation: String, message: String? = nil) {
        self.init(
            code: err.rawValue,
            name: String(cString: rd_kafka_err2name(err)),
            message: message ?? String(cString: rd_kafka_err2str(err)),
            operation: operation,
            isFatal: err == RD_KAFKA_RESP_ERR__FATAL,
            isRetriable: KafkaError.retriableCodes.contains(err.rawValue)
        )
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(consuming error: OpaquePointer, operation: String) {
        defer { rd_kafka_error_destroy(error) }
        self.init(
            code: rd_kafka_error_code(error).rawValue,
            name: String(cString: rd_kafka_error_name(error)),
            message: String(cString: rd_kafka_error_string(error)),
            operation: operation,
            isFatal: rd_kafka_error_is_fatal(error) != 0,
            isRetriable: rd_kafka_error_is_retriable(error) != 0
        )
    }

    /// The group coordinator refused because the group is rebalancing or this member's
    /// generation is gone (`REBALANCE_IN_PROGRESS`, `ILLEGAL_GENERATION`, `UNKNOWN_MEMBER_ID`):
    /// the same commit can succeed once the member has rejoined.
    public var isGroupRebalance: Bool {
        [RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION, RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID]
            .map(\.rawValue).contains(code)
    }

    /// A wrapper-level misuse or configuration problem.
    static func client(_ message: String, operation: String) -> KafkaError {
        KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, name: "_INVALID_ARG", message: message, operation: operation)
    }

    /// Transient conditions worth retrying (timeouts, transport, leadership moves, queue full).
    private static let retriableCodes: Set<Int32> = [
        RD_KAFKA_RESP_ERR__TRANSPORT.rawValue,
        RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue,
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue,
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE.rawValue,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR.rawValue,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE.rawValue,
        RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS.rawValue,
        RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS.rawValue,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS.rawValue,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART.rawValue,
    ]
}

/// librdkafka error codes that tests and fault injection refer to by name.
public enum KafkaErrorCode: Sendable {
    case requestTimedOut
    case notLeaderForPartition
    case leaderNotAvailable
    case notCoordinator
    case coordinatorNotAvailable
    case rebalanceInProgress
    case notEnoughReplicas
    case unknownTopicOrPartition
    case offsetOutOfRange
    case topicAuthorizationFailed
    /// Any librdkafka `rd_kafka_resp_err_t` value.
    case raw(Int32)

    var cValue: rd_kafka_resp_err_t {
        switch self {
        case .requestTimedOut: return RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT
        case .notLeaderForPartition: return RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION
        case .leaderNotAvailable: return RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE
        case .notCoordinator: return RD_KAFKA_RESP_ERR_NOT_COORDINATOR
        case .coordinatorNotAvailable: return RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE
        case .rebalanceInProgress: return RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS
        case .notEnoughReplicas: return RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS
        case .unknownTopicOrPartition: return RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
        case .offsetOutOfRange: return RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE
        case .topicAuthorizationFailed: return RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
        case .raw(let value): return rd_kafka_resp_err_t(rawValue: value)
        }
    }
}
