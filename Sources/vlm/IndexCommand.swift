import ArgumentParser

/// `vlm index ...` (visual search). Stub until the index lands.
struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "index", abstract: "Visual search index (not yet available).", shouldDisplay: false)
}
