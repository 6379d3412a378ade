import ArgumentParser

/// `vlm serve` (HTTP server). Stub until the server lands.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "HTTP server (not yet available).", shouldDisplay: false)
}
