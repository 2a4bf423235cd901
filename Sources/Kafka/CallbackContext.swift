import CRdKafka
import Logging

/// State reachable from librdkafka's C callbacks through the handle's opaque pointer.
///
/// `@unchecked Sendable`: `logger` is immutable and Sendable; subclasses document how their
/// own mutable state is confined.
class RDKafkaCallbackContext: @unchecked Sendable {
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    static func from(_ handle: OpaquePointer?) -> RDKafkaCallbackContext? {
        guard let handle, let opaque = rd_kafka_opaque(handle) else { return nil }
        return Unmanaged<RDKafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
    }
}

/// Forwards librdkafka's log lines (from any of its threads) to swift-log.
let rdKafkaLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = { handle, level, facility, buffer in
    guard let context = RDKafkaCallbackContext.from(handle) else { return }
    let text = buffer.map { String(cString: $0) } ?? ""
    let fac = facility.map { String(cString: $0) } ?? ""
    // syslog levels: 0-3 errors, 4 warning, 5-6 notice/info, 7 debug.
    let swiftLevel: Logger.Level = level <= 4 ? .warning : (level <= 6 ? .info : .debug)
    context.logger.log(level: swiftLevel, "\(text)", metadata: ["kafka.facility": "\(fac)", "kafka.syslog_level": "\(level)"])
}

/// Installs the opaque pointer and log callback on a configuration.
func installCommonCallbacks(conf: OpaquePointer, context: RDKafkaCallbackContext) {
    rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
    rd_kafka_conf_set_log_cb(conf, rdKafkaLogCallback)
}
