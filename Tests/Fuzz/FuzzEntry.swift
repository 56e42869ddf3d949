import Foundation

/// libFuzzer's entry point: one input, run through everything that reads packet bytes (`FuzzInput`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzInput.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

#if FUZZING
    /// libFuzzer's driver (`-sanitize=fuzzer`), called from our `main` because SwiftPM links an executable's
    /// entry point itself.
    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt
#endif

/// Built with `scripts/fuzz` (libFuzzer), the fuzzer; built plainly, a replayer: it runs the inputs named
/// on the command line, files or directories of files, as libFuzzer runs a corpus, so that any input the
/// fuzzer found is replayed anywhere.
@main struct FuzzMain {
    static func main() throws {
        #if FUZZING
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(runFuzzerDriver(&argc, &argv, fuzzTestOneInput))
        #else
            var count = 0
            for argument in CommandLine.arguments.dropFirst() {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                    throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: argument])
                }
                let paths =
                    isDirectory.boolValue
                    ? try FileManager.default.contentsOfDirectory(atPath: argument).sorted().map {
                        "\(argument)/\($0)"
                    } : [argument]
                for path in paths {
                    let data = try Data(contentsOf: URL(fileURLWithPath: path))
                    data.withUnsafeBytes { FuzzInput.run($0) }
                    count += 1
                }
            }
            print("ran \(count) inputs")
        #endif
    }
}
