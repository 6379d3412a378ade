import Foundation

/// Dedicated long-lived threads (the server's generator and encoder threads, the index's reader and writer
/// threads) as plain detached pthreads.
///
/// Why not Foundation's `Thread`: these threads end whenever their owner goes (every test server, every reopened
/// index). With the index's threads as Foundation `Thread`s, the server and index suites corrupted the heap in 7
/// of 13 runs (glibc "unaligned tcache chunk" / "corrupted double-linked list", or libdispatch crashing later);
/// with pthreads, 0 of 16. (The mechanism inside Foundation was not pinned down; a bare start/stop churn of
/// `Thread`s alone did not reproduce it.)
public enum DetachedThread {
    /// Starts `body` on a new detached thread named `name` (first 15 bytes) with `stackSize` bytes of stack.
    /// Returns false when the system refuses a thread (the caller decides how to degrade).
    @discardableResult
    public static func start(name: String, stackSize: Int = 4 << 20, _ body: @escaping @Sendable () -> Void) -> Bool {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attr, max(stackSize, 1 << 16))
        let context = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attr, { raw in
            guard let raw else { return nil }
            let start = Unmanaged<Start>.fromOpaque(raw).takeRetainedValue()
            Kernels.nameCurrentThread(start.name)
            start.body()
            return nil
        }, context)
        if rc != 0 { Unmanaged<Start>.fromOpaque(context).release() }
        return rc == 0
    }

    private final class Start {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) { (self.name, self.body) = (name, body) }
    }
}
