import ArgumentParser

/// `vlm train` / `vlm eval` (contrastive training). Stubs until the training CLI lands.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Training (not yet available).", shouldDisplay: false)
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluation (not yet available).", shouldDisplay: false)
}
