import Foundation

/// training_log.json: what a run did, for model cards and for comparing runs.
public struct TrainingLog: Codable, Sendable {
    public var arguments: [String]
    public var seed: UInt64
    public var steps: Int
    public var epochs: Int
    public var batchSize: Int
    public var samplesSeen: Int
    public var skippedSamples: Int
    public var parameters: Int
    public var trainableParameters: Int
    public var seconds: Double
    public var samplesPerSecond: Double
    public var finalLoss: Float?
    /// Mean loss of the last 5% of steps (less noisy than the last step).
    public var finalLossAverage: Float?
    public var finalLogitScale: Float
    public var loss: [Float]
    public var learningRate: [Float]
    /// Per-step loss of an auxiliary target logged apart from `loss` (the scene VLM's patch labels), when the run had one.
    public var auxiliaryLoss: [Float]?

    public init(arguments: [String], seed: UInt64, steps: Int, epochs: Int, batchSize: Int, samplesSeen: Int, skippedSamples: Int,
                parameters: Int, trainableParameters: Int, seconds: Double, finalLogitScale: Float, loss: [Float], learningRate: [Float]) {
        self.arguments = arguments
        self.seed = seed
        self.steps = steps
        self.epochs = epochs
        self.batchSize = batchSize
        self.samplesSeen = samplesSeen
        self.skippedSamples = skippedSamples
        self.parameters = parameters
        self.trainableParameters = trainableParameters
        self.seconds = seconds
        self.samplesPerSecond = seconds > 0 ? Double(samplesSeen) / seconds : 0
        self.finalLogitScale = finalLogitScale
        self.loss = loss
        self.learningRate = learningRate
        finalLoss = loss.last
        let tail = loss.suffix(max(1, loss.count / 20))
        finalLossAverage = tail.isEmpty ? nil : tail.reduce(0, +) / Float(tail.count)
    }
}

/// The loss curve as a standalone SVG (no dependencies): raw per-step loss in light grey, an exponential moving
/// average on top, the learning rate as a dashed line on its own scale, labelled axes.
public enum LossCurveSVG {
    public static func render(loss: [Float], learningRate: [Float] = [], title: String = "training loss") -> String {
        let w = 720.0, h = 420.0, left = 64.0, right = 64.0, top = 40.0, bottom = 48.0
        let pw = w - left - right, ph = h - top - bottom
        let finite = loss.filter { $0.isFinite }
        let maxLoss = Double(finite.max() ?? 1), minLoss = min(0, Double(finite.min() ?? 0))
        let span = max(maxLoss - minLoss, 1e-6)
        let n = max(loss.count - 1, 1)
        func x(_ i: Int) -> Double { left + pw * Double(i) / Double(n) }
        func y(_ v: Double) -> Double { top + ph * (1 - (v - minLoss) / span) }
        func points(_ values: [Double], scale: (Double) -> Double) -> String {
            values.enumerated().map { String(format: "%.1f,%.1f", x($0.offset), scale($0.element)) }.joined(separator: " ")
        }
        var ema: [Double] = []
        var m = Double(loss.first ?? 0)
        let alpha = 2.0 / (Double(min(max(loss.count / 25, 2), 200)) + 1)
        for v in loss where v.isFinite {
            m = alpha * Double(v) + (1 - alpha) * m
            ema.append(m)
        }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(w / 2)" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>
        <line x1="\(left)" y1="\(top + ph)" x2="\(left + pw)" y2="\(top + ph)" stroke="black"/>
        <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(top + ph)" stroke="black"/>

        """
        for k in 0 ... 5 {
            let v = minLoss + span * Double(k) / 5, yy = y(v)
            svg += "<line x1=\"\(left - 4)\" y1=\(q(yy)) x2=\"\(left + pw)\" y2=\(q(yy)) stroke=\"#eee\"/>"
            svg += "<text x=\"\(left - 8)\" y=\(q(yy + 4)) text-anchor=\"end\">\(String(format: "%.2f", v))</text>\n"
            let step = Int((Double(n) * Double(k) / 5).rounded())
            svg += "<text x=\(q(x(step))) y=\(q(top + ph + 18)) text-anchor=\"middle\">\(step)</text>\n"
        }
        svg += "<text x=\(q(left + pw / 2)) y=\(q(h - 8)) text-anchor=\"middle\">step</text>\n"
        svg += "<text x=\"16\" y=\(q(top + ph / 2)) text-anchor=\"middle\" transform=\"rotate(-90 16 \(top + ph / 2))\">loss</text>\n"
        if loss.count > 1 {
            svg += "<polyline fill=\"none\" stroke=\"#bbb\" stroke-width=\"1\" points=\"\(points(loss.map { Double($0) }, scale: y))\"/>\n"
            svg += "<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\" points=\"\(points(ema, scale: y))\"/>\n"
        }
        if learningRate.count > 1, let maxLR = learningRate.max(), maxLR > 0 {
            let lr = learningRate.map { Double($0) }
            svg += "<polyline fill=\"none\" stroke=\"#d07000\" stroke-width=\"1.5\" stroke-dasharray=\"5,4\" points=\"\(points(lr) { top + ph * (1 - $0 / Double(maxLR)) })\"/>\n"
            svg += "<text x=\(q(left + pw + 6)) y=\(q(top + 4))>\(String(format: "%.1e", Double(maxLR)))</text>"
            svg += "<text x=\(q(left + pw + 6)) y=\(q(top + ph))>0</text>\n"
        }
        svg += "<text x=\(q(left + pw - 4)) y=\(q(top + 14)) text-anchor=\"end\" fill=\"#1f5fbf\">loss (EMA)</text>"
        svg += "<text x=\(q(left + pw - 4)) y=\(q(top + 30)) text-anchor=\"end\" fill=\"#d07000\">learning rate</text>\n"
        if let last = ema.last { svg += "<text x=\(q(left + 8)) y=\(q(top + ph - 8))>final \(String(format: "%.3f", last))</text>\n" }
        svg += "</svg>\n"
        return svg
    }

    static func q(_ v: Double) -> String { "\"" + String(format: "%.1f", v) + "\"" }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
