import Glibc

/// Formats capture timestamps as ISO 8601 UTC with microseconds and a `Z`: `2026-11-25T21:25:03.123456Z`.
enum Timestamp {
    static func iso8601(nanos: Int64) -> String {
        let (seconds, remainder) = nanos.quotientAndRemainder(dividingBy: 1_000_000_000)
        // Floor, so that times before 1970 still print a non-negative fraction.
        let wholeSeconds = remainder < 0 ? seconds - 1 : seconds
        let micros = (remainder < 0 ? remainder + 1_000_000_000 : remainder) / 1000
        var time = time_t(wholeSeconds)
        var parts = unsafe tm()
        guard unsafe gmtime_r(&time, &parts) != nil else { return "" }
        return
            unsafe "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))"
            + "T\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2))"
            + ".\(pad(Int(micros), 6))Z"
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
