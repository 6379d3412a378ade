import ArgumentParser

/// `vlm scenes ...` (synthetic image-text data). Stub until the generator lands.
struct ScenesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scenes", abstract: "Synthetic scenes (not yet available).", shouldDisplay: false)
}
