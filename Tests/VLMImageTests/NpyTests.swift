import Foundation
import Testing
import VLMTensor
import VLMTestSupport

@Suite struct NpyTests {
    func tempURL(_ name: String) -> URL {
        TestScratch.root.appendingPathComponent("vlm-npy-\(UUID().uuidString)-\(name)")
    }

    @Test func roundTrips() throws {
        let t = Tensor(shape: [2, 3, 1], values: [0, -1.5, 3.25, .infinity, 1e-30, 7])
        let url = tempURL("f4.npy")
        defer { try? FileManager.default.removeItem(at: url) }
        try Npy.write(t, to: url)
        let back = try Npy.read(url)
        #expect(back.dtype == .float32 && back.shape == [2, 3, 1] && back.floats == t.scalars)
        // numpy's layout: 64-byte aligned data, version 1.0.
        let data = try Data(contentsOf: url)
        #expect((data.count - 24) % 64 == 0 && data[6] == 1)

        try Npy.write(int64: [1, -2, 1 << 40], shape: [3], to: url)
        #expect(try Npy.read(url).int64s == [1, -2, 1 << 40])
        try Npy.write(uint8: [1, 2, 255, 0], shape: [2, 2], to: url)
        #expect(try Npy.read(url).uint8s == [1, 2, 255, 0])
        try Npy.write(Tensor(shape: [], values: [42]), to: url)
        #expect(try Npy.read(url).shape == [] && Npy.read(url).floats == [42])
    }

    @Test func readsNumpyFiles() throws {
        // Written by numpy (image_fixtures.py): '<f4' [3, 32, 32] and '|u1' [H, W, 3].
        let pv = try Npy.read(Fixtures.url("images/pixels/siglip32/coffee.jpg.npy"))
        #expect(pv.dtype == .float32 && pv.shape == [3, 32, 32])
        let img = try Npy.read(Fixtures.url("images/decode/coffee.jpg.npy"))
        #expect(img.dtype == .uint8 && img.shape == [400, 600, 3])
        // Version 2.0 header and '<f8'.
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
        header += String(repeating: " ", count: 128 - 12 - header.utf8.count - 1) + "\n"
        var v2 = Data([0x93] + Array("NUMPY".utf8) + [2, 0, UInt8(header.utf8.count), 0, 0, 0] + Array(header.utf8))
        for d in [1.5, -2.25] { withUnsafeBytes(of: d.bitPattern.littleEndian) { v2.append(contentsOf: $0) } }
        let a = try Npy.parse(v2)
        #expect(a.dtype == .float64 && a.floats == [1.5, -2.25])
    }

    @Test func refusesWhatItCannotRead() throws {
        func file(_ header: String, payload: Int = 64) -> Data {
            Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8) + Array(repeating: 0, count: payload))
        }
        let cases: [(Data, String)] = [
            (Data("not numpy".utf8), "magic"),
            (file("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }"), ">f4"),
            (file("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }"), "<i4"),
            (file("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }"), "Fortran"),
            (file("{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }"), "needs 400"),
        ]
        for (data, expected) in cases {
            do {
                _ = try Npy.parse(data, name: "case.npy")
                Issue.record("parsed: \(expected)")
            } catch let error as Npy.FormatError {
                #expect(error.description.contains(expected) && error.description.contains("case.npy"), "\(error)")
            }
        }
    }
}
