import Foundation

#if FUZZING
/// libFuzzer's entry point (Scripts/fuzz.sh builds with -sanitize=fuzzer,address -DFUZZING); the target comes
/// from VLM_FUZZ_TARGET.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    FuzzTargets.run(fuzzTarget, data)
    return 0
}

let fuzzTarget = ProcessInfo.processInfo.environment["VLM_FUZZ_TARGET"] ?? "image"

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links an executable's entry point as `<module>_main` (aliased to `main`), so libFuzzer's own main is
/// not used: this one hands the arguments to libFuzzer's driver with the fuzz target.
@_cdecl("vlm_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { fuzzOne($0, $1) }
}
#else
/// The normal build: `vlm-fuzz TARGET PATH...` replays files or directories (a corpus, crash reproducers)
/// through one fuzz target and prints how many ran; a crash is the failure.
@main struct Replay {
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        guard let target = args.first, FuzzTargets.names.contains(target), args.count >= 2 else {
            FileHandle.standardError.write(Data("usage: vlm-fuzz \(FuzzTargets.names.joined(separator: "|")) PATH...\n".utf8))
            exit(2)
        }
        var count = 0
        let fm = FileManager.default
        for path in args.dropFirst() {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("no such file: \(path)\n".utf8))
                exit(2)
            }
            let files = isDirectory.boolValue
                ? ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted().map { (path as NSString).appendingPathComponent($0) }
                : [path]
            for file in files {
                guard let data = fm.contents(atPath: file) else { continue }
                FuzzTargets.run(target, data)
                count += 1
            }
        }
        print("\(target): \(count) inputs replayed")
    }
}
#endif
