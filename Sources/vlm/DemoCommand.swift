import ArgumentParser
import Foundation
import SwiftVLM

/// Where the embedded default model lives. Not a SwiftPM resource (that would copy ~10 MB into every build
/// bundle): the files are committed under Models/scenes-clip in the package, found by
///   1. `--model DIR` when given,
///   2. the `VLM_MODEL_DIR` environment variable,
///   3. Models/scenes-clip next to the package root this executable was built from (#filePath, build time),
///   4. Models/scenes-clip beside the executable or two levels up (an installed copy, `.build/<config>/vlm`).
enum DefaultModel {
    static let relativePath = "Models/scenes-clip"

    /// The committed model in the source tree this binary was built from.
    static var packageDirectory: URL {
        // Sources/vlm/DemoCommand.swift -> package root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(relativePath)
    }

    static var candidates: [URL] {
        var out: [URL] = []
        if let env = ProcessInfo.processInfo.environment["VLM_MODEL_DIR"], !env.isEmpty { return [expand(env)] }
        out.append(packageDirectory)
        if let exe = CommandLine.arguments.first {
            let dir = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
            out.append(dir.appendingPathComponent(relativePath))
            out.append(dir.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(relativePath))
        }
        return out
    }

    /// `path` if given, else the first default location holding a config.json.
    static func resolve(_ path: String?) throws -> URL {
        if let path { return expand(path) }
        let list = candidates
        if let found = list.first(where: { FileManager.default.fileExists(atPath: $0.appendingPathComponent("config.json").path) }) {
            return found
        }
        throw ValidationError("no --model given and no default model found (looked in \(list.map(\.path).joined(separator: ", "))); pass --model DIR or set VLM_MODEL_DIR")
    }
}

/// `vlm demo`: the embedded model on a few fresh scenes, with no arguments.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo", abstract: "Classify a few synthetic scenes and search them by text with the embedded model.")
    @Option(help: "Checkpoint directory (default: the embedded scenes model).") var model: String?
    func run() throws { throw ValidationError("demo: available once the scenes generator lands") }
}
