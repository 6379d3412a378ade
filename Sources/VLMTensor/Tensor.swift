import CVLM

/// Owner of a 64-byte aligned float buffer. Tensors share storage; ops allocate fresh outputs.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { pointer.initialize(repeating: 0, count: max(count, 1)) }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// A dense row-major float32 tensor. Shapes are documented at each use (`x: [B, T, C]`).
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let shape: [Int]
    public let storage: TensorStorage

    /// Zero-filled tensor of the given shape.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
    }

    /// Uninitialised tensor, for outputs that a kernel overwrites entirely.
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *), zeroed: false)
    }

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "Tensor: \(values.count) values for shape \(shape)")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { storage.pointer.update(from: base, count: values.count) }
        }
    }

    public init(shape: [Int], storage: TensorStorage) {
        precondition(shape.reduce(1, *) <= storage.count)
        self.shape = shape
        self.storage = storage
    }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// The same storage under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "reshape \(shape) -> \(newShape)")
        return Tensor(shape: newShape, storage: storage)
    }

    public func copy() -> Tensor {
        let out = Tensor(uninitialized: shape)
        out.pointer.update(from: pointer, count: count)
        return out
    }

    /// Rows [start, end) along the first axis, copied.
    public func rows(_ range: Range<Int>) -> Tensor {
        let rowSize = count / max(shape[0], 1)
        var newShape = shape
        newShape[0] = range.count
        let out = Tensor(uninitialized: newShape)
        out.pointer.update(from: pointer + range.lowerBound * rowSize, count: range.count * rowSize)
        return out
    }

    public subscript(_ i: Int) -> Float {
        get { pointer[i] }
        nonmutating set { pointer[i] = newValue }
    }

    public var description: String { "Tensor(\(shape))" }
}
