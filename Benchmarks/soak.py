"""Soak test of `vlm serve` (issue 15, part 4): an embedding model with an index and a chat model, driven on
loopback for MINUTES with a mix of text and image embeddings, search, index add/delete, streamed chat whose
clients hang up, plain chat, oversized-but-legal images and malformed requests. Records every response
(status, latency), the server's resident memory, open file descriptors and threads (from /proc, every 2 s),
and writes to OUT: requests.csv, samples.csv, summary.json, summary.md and soak.svg (RSS, fds, p99 per minute).

Pass criteria printed at the end: 0 responses 5xx other than 503, 0 crashes (the server is alive at the end
and exits cleanly on SIGTERM), RSS and fds flat after warm-up (last-quarter median vs second-quarter median).

Run through Benchmarks/soak.sh (it picks the binary and the models); needs only the standard library and
Pillow (~/vlmpy). Kept out of CI: the project's tests need no Python.
"""
import argparse
import base64
import http.client
import io
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def png_bytes(img):
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def noise_png(rng, w, h):
    return png_bytes(Image.frombytes("RGB", (w, h), bytes(rng.getrandbits(8) for _ in range(w * h * 3))))


def data_url(data, mime="image/png"):
    return f"data:{mime};base64," + base64.b64encode(data).decode()


class Recorder:
    def __init__(self, start):
        self.start = start
        self.lock = threading.Lock()
        self.rows = []  # (t, op, status, latency_ms)

    def add(self, op, status, latency):
        with self.lock:
            self.rows.append((time.time() - self.start, op, status, latency * 1000))


class Soak:
    def __init__(self, args):
        self.args = args
        self.port = args.port
        self.rng = random.Random(args.seed)
        self.stop = threading.Event()
        self.server = None
        self.crashes = 0
        self.added_ids = []
        self.ids_lock = threading.Lock()
        self.images = [open(os.path.join(ROOT, "Tests/Fixtures/clip/images", n), "rb").read()
                       for n in ("chelsea.jpg", "astronaut.jpg", "coffee.png")]
        # Oversized but legal (below --max-image-pixels): costs memory while in flight; several at once exceed
        # --max-pixels-in-flight and must be refused with 503, not queued into memory.
        self.big = png_bytes(Image.new("RGB", (args.big_side, args.big_side), (120, 30, 200)))
        self.extreme = png_bytes(Image.new("RGB", (60000, 4), (0, 0, 0)))  # extreme aspect, tiny file

    # --- HTTP helpers -----------------------------------------------------------------------------------------
    def request(self, op, method, path, body=None, headers=None, timeout=120):
        t0 = time.time()
        status = "ERR"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            h = {"Content-Type": "application/json"}
            h.update(headers or {})
            payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            conn.request(method, path, body=payload, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            conn.close()
            self.rec.add(op, status, time.time() - t0)
            return status, data
        except Exception:
            self.rec.add(op, status, time.time() - t0)
            return status, b""

    def raw(self, op, payload, read=True, timeout=30):
        """Sends raw bytes (malformed HTTP) and reads the status line, if any."""
        t0 = time.time()
        status = "CLOSED"
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
            s.sendall(payload)
            if read:
                line = s.recv(64).split(b"\r\n")[0].split(b" ")
                if len(line) >= 2 and line[1].isdigit():
                    status = int(line[1])
            s.close()
        except Exception:
            status = "ERR"
        self.rec.add(op, status, time.time() - t0)

    # --- the mix ----------------------------------------------------------------------------------------------
    def op_embed_text(self, rng):
        words = ["a cat", "a red square", "coffee", "an astronaut", "two circles", "blue sky"]
        self.request("embed_text", "POST", "/v1/embeddings",
                     {"model": self.args.embed_id, "input": rng.sample(words, rng.randint(1, 4))})

    def op_embed_image(self, rng):
        img = rng.choice(self.images)
        mime = "image/png" if img[:4] == b"\x89PNG" else "image/jpeg"
        self.request("embed_image", "POST", "/v1/embeddings",
                     {"model": self.args.embed_id, "input": [{"image": data_url(img, mime)}]})

    def op_search(self, rng):
        q = rng.choice(["a cat", "a cup of coffee", "a person in space", "noise"])
        self.request("search", "POST", "/v1/search", {"query": q, "top_k": rng.randint(1, 20)})

    def op_index_add(self, rng):
        status, data = self.request("index_add", "POST", "/v1/index",
                                    {"images": [{"image": data_url(noise_png(rng, 24, 24)), "name": "soak.png"}]})
        if status == 200:
            try:
                ids = [h["id"] for h in json.loads(data)["data"]]
            except Exception:
                ids = []
            with self.ids_lock:
                self.added_ids += ids

    def op_index_delete(self, rng):
        with self.ids_lock:
            if not self.added_ids:
                return
            victim = self.added_ids.pop(rng.randrange(len(self.added_ids)))
        self.request("index_delete", "DELETE", f"/v1/index/{victim}")

    def chat_body(self, rng, stream):
        return {"model": self.args.chat_id, "stream": stream, "max_tokens": rng.randint(4, 24),
                "messages": [{"role": "user", "content": rng.choice(["hello", "tell me a story", "what is 2+2?"])}]}

    def op_chat(self, rng):
        self.request("chat", "POST", "/v1/chat/completions", self.chat_body(rng, False))

    def op_chat_stream_hangup(self, rng):
        """Streamed chat; half the clients hang up after the first event."""
        t0 = time.time()
        status = "ERR"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            conn.request("POST", "/v1/chat/completions", body=json.dumps(self.chat_body(rng, True)).encode(),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            status = resp.status
            if rng.random() < 0.5:
                resp.read(1)  # first bytes, then hang up mid-stream
                conn.sock.shutdown(socket.SHUT_RDWR)
                op = "chat_stream_hangup"
            else:
                resp.read()
                op = "chat_stream"
            conn.close()
        except Exception:
            op = "chat_stream"
        self.rec.add(op, status, time.time() - t0)

    def op_big_image(self, rng):
        self.request("big_image", "POST", "/v1/embeddings",
                     {"model": self.args.embed_id, "input": [{"image": data_url(self.big)}]})

    def op_malformed(self, rng):
        kind = rng.randrange(11)
        if kind == 0:
            self.request("malformed", "POST", "/v1/embeddings", b'{"input": [')
        elif kind == 1:
            self.request("malformed", "POST", "/v1/embeddings", {"input": 42})
        elif kind == 2:
            self.request("malformed", "POST", "/v1/embeddings", {"input": ["data:image/png;base64,!!notbase64"]})
        elif kind == 3:
            self.request("malformed", "POST", "/v1/chat/completions",
                         {"messages": [{"role": "user", "content": "x"}], "max_tokens": 10 ** 12, "temperature": -3})
        elif kind == 4:
            self.request("malformed", "POST", "/v1/search", {"query": {"image": data_url(b"\x89PNG\r\n\x1a\nbroken")}})
        elif kind == 5:
            self.request("malformed", "DELETE", "/v1/index/-1")
        elif kind == 6:
            self.request("malformed", "GET", "/v1/nowhere/" + "x" * 2000)
        elif kind == 7:  # a body shorter than its Content-Length, then hang up
            self.raw("malformed", b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: 1000\r\n\r\n{\"input\": [\"a", read=False)
        elif kind == 8:  # garbage instead of HTTP
            self.raw("malformed", bytes(rng.getrandbits(8) for _ in range(200)) + b"\r\n\r\n")
        elif kind == 9:  # extreme aspect ratio (bounded preprocessing)
            self.request("extreme_image", "POST", "/v1/embeddings",
                         {"model": self.args.embed_id, "input": [{"image": data_url(self.extreme)}]})
        else:  # too many images in one chat request
            img = {"type": "image_url", "image_url": {"url": data_url(self.images[2])}}
            self.request("malformed", "POST", "/v1/chat/completions",
                         {"messages": [{"role": "user", "content": [img] * 40 + [{"type": "text", "text": "hi"}]}],
                          "max_tokens": 4})

    MIX = [("op_embed_text", 20), ("op_embed_image", 15), ("op_search", 15), ("op_index_add", 10),
           ("op_index_delete", 7), ("op_chat", 6), ("op_chat_stream_hangup", 10), ("op_big_image", 5),
           ("op_malformed", 12)]

    def worker(self, seed):
        rng = random.Random(seed)
        names = [n for n, _ in self.MIX]
        override = {"op_big_image": self.args.big_weight, "op_index_delete": self.args.delete_weight}
        weights = [w if override.get(n) is None else override[n] for n, w in self.MIX]
        while not self.stop.is_set():
            getattr(self, rng.choices(names, weights)[0])(rng)

    # --- the server and /proc sampling --------------------------------------------------------------------
    def start_server(self, work):
        a = self.args
        cmd = [a.vlm, "serve", "--model", a.embed_model, "--model", a.chat_model, "--index", os.path.join(work, "index.sqlite"),
               "--host", "127.0.0.1", "--port", str(self.port)] + a.server_args
        if a.mem_limit:
            cmd = ["prlimit", f"--as={a.mem_limit}", "--"] + cmd
        self.log = open(os.path.join(a.out, "server.log"), "w")
        self.server = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    return
            except Exception:
                pass
            if self.server.poll() is not None:
                sys.exit(f"server exited at start: see {a.out}/server.log")
            time.sleep(0.1)
        sys.exit("server did not come up")

    def sampler(self):
        pid = self.server.pid
        while not self.stop.is_set():
            try:
                status = open(f"/proc/{pid}/status").read()
                rss = int(next(l for l in status.splitlines() if l.startswith("VmRSS")).split()[1])
                threads = int(next(l for l in status.splitlines() if l.startswith("Threads")).split()[1])
                self.vm_kb = max(getattr(self, "vm_kb", 0), int(next(l for l in status.splitlines() if l.startswith("VmSize")).split()[1]))
                fds = len(os.listdir(f"/proc/{pid}/fd"))
                load = os.getloadavg()[0]
                self.samples.append((time.time() - self.start, rss, fds, threads, load))
            except Exception:
                pass
            if self.server.poll() is not None:
                self.crashes += 1
                self.stop.set()
                return
            time.sleep(2)

    def run(self):
        a = self.args
        os.makedirs(a.out, exist_ok=True)
        work = tempfile.mkdtemp(prefix="vlm-soak-")
        self.start_server(work)
        self.start = time.time()
        self.rec = Recorder(self.start)
        self.samples = []
        threads = [threading.Thread(target=self.sampler)]
        threads += [threading.Thread(target=self.worker, args=(a.seed * 1000 + i,)) for i in range(a.workers)]
        for t in threads:
            t.start()
        deadline = self.start + a.minutes * 60
        while time.time() < deadline and not self.stop.is_set():
            time.sleep(1)
        self.stop.set()
        for t in threads:
            t.join()
        alive = self.server.poll() is None
        clean_exit = None
        if alive:
            self.server.send_signal(signal.SIGTERM)
            try:
                clean_exit = self.server.wait(timeout=60) == 0
            except subprocess.TimeoutExpired:
                self.server.kill()
                clean_exit = False
        self.report(alive, clean_exit)

    # --- report -------------------------------------------------------------------------------------------
    def report(self, alive, clean_exit):
        a = self.args
        rows = self.rec.rows
        with open(os.path.join(a.out, "requests.csv"), "w") as f:
            f.write("t,op,status,latency_ms\n")
            for r in rows:
                f.write(f"{r[0]:.3f},{r[1]},{r[2]},{r[3]:.1f}\n")
        with open(os.path.join(a.out, "samples.csv"), "w") as f:
            f.write("t,rss_kb,fds,threads,load1\n")
            for s in self.samples:
                f.write(f"{s[0]:.1f},{s[1]},{s[2]},{s[3]},{s[4]:.2f}\n")
        by_status = {}
        for _, op, st, _ in rows:
            by_status.setdefault(op, {}).setdefault(str(st), 0)
            by_status[op][str(st)] += 1
        five = sum(1 for r in rows if isinstance(r[2], int) and r[2] >= 500 and r[2] != 503)
        n503 = sum(1 for r in rows if r[2] == 503)
        minutes = int(a.minutes)
        p99 = []
        for m in range(minutes):
            lat = sorted(r[3] for r in rows if m * 60 <= r[0] < (m + 1) * 60 and r[1] not in ("chat_stream_hangup", "malformed"))
            p99.append(lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None)
        warm = [s for s in self.samples if s[0] >= 60]
        q = max(1, len(warm) // 4)

        def med(xs):
            return statistics.median(xs) if xs else None
        rss_early, rss_late = med([s[1] for s in warm[q:2 * q]]), med([s[1] for s in warm[-q:]])
        fd_early, fd_late = med([s[2] for s in warm[q:2 * q]]), med([s[2] for s in warm[-q:]])
        summary = {
            "minutes": a.minutes, "workers": a.workers, "mem_limit": a.mem_limit, "requests": len(rows),
            "status_by_op": by_status, "responses_5xx_not_503": five, "responses_503": n503,
            "connection_errors": sum(1 for r in rows if r[2] == "ERR"),
            "crashes": self.crashes, "alive_at_end": alive, "clean_exit_on_sigterm": clean_exit,
            "p99_ms_per_minute": p99,
            "rss_kb": {"max": max((s[1] for s in self.samples), default=None), "median_2nd_quarter": rss_early, "median_last_quarter": rss_late},
            "fds": {"max": max((s[2] for s in self.samples), default=None), "median_2nd_quarter": fd_early, "median_last_quarter": fd_late},
            "threads_max": max((s[3] for s in self.samples), default=None),
            "vm_size_kb_max": getattr(self, "vm_kb", None),
            "load1_mean": statistics.mean(s[4] for s in self.samples) if self.samples else None,
            "cpu": open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip(),
        }
        json.dump(summary, open(os.path.join(a.out, "summary.json"), "w"), indent=1)
        self.svg(p99)
        lines = [f"| op | " + " | ".join(["requests", "statuses"]) + " |", "|---|---|---|"]
        for op in sorted(by_status):
            lines.append(f"| {op} | {sum(by_status[op].values())} | " + ", ".join(f"{k}: {v}" for k, v in sorted(by_status[op].items())) + " |")
        open(os.path.join(a.out, "summary.md"), "w").write("\n".join(lines) + "\n")
        print(json.dumps({k: v for k, v in summary.items() if k != "status_by_op"}, indent=1))
        print("\n".join(lines))
        ok = five == 0 and self.crashes == 0 and alive and clean_exit
        print("PASS" if ok else "FAIL")
        sys.exit(0 if ok else 1)

    def svg(self, p99):
        """Three stacked panels (RSS MB, open fds, p99 ms per minute) as a dependency-free SVG."""
        W, H, pad = 900, 220, 50
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{3 * H}" font-family="sans-serif" font-size="12">',
                 f'<rect width="{W}" height="{3 * H}" fill="white"/>']
        span = max(self.args.minutes * 60, max((s[0] for s in self.samples), default=1))

        def panel(i, title, points, color):
            y0 = i * H
            vals = [v for _, v in points if v is not None]
            hi = max(vals) * 1.1 if vals and max(vals) > 0 else 1
            parts.append(f'<text x="{pad}" y="{y0 + 18}" font-weight="bold">{title} (max {max(vals) if vals else 0:.0f})</text>')
            parts.append(f'<line x1="{pad}" y1="{y0 + H - 30}" x2="{W - 10}" y2="{y0 + H - 30}" stroke="#888"/>')
            parts.append(f'<line x1="{pad}" y1="{y0 + 28}" x2="{pad}" y2="{y0 + H - 30}" stroke="#888"/>')
            for frac in (0, 0.5, 1):
                yy = y0 + H - 30 - frac * (H - 60)
                parts.append(f'<text x="4" y="{yy + 4:.0f}">{hi * frac:.0f}</text>')
            for m in range(0, int(span // 60) + 1):
                xx = pad + m * 60 / span * (W - pad - 10)
                parts.append(f'<text x="{xx - 4:.0f}" y="{y0 + H - 14}">{m}</text>')
            pts = " ".join(f"{pad + t / span * (W - pad - 10):.1f},{y0 + H - 30 - v / hi * (H - 60):.1f}" for t, v in points if v is not None)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>')

        panel(0, "resident memory, MB (x: minutes)", [(s[0], s[1] / 1024) for s in self.samples], "#1f77b4")
        panel(1, "open file descriptors", [(s[0], s[2]) for s in self.samples], "#2ca02c")
        panel(2, "p99 latency per minute, ms (completed requests, hang-ups and malformed excluded)",
              [(m * 60 + 30, v) for m, v in enumerate(p99)], "#d62728")
        parts.append("</svg>")
        open(os.path.join(self.args.out, "soak.svg"), "w").write("\n".join(parts))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vlm", default=os.path.join(ROOT, ".build/release/vlm"))
    p.add_argument("--embed-model", default=os.path.join(ROOT, "Models/scenes-clip"))
    p.add_argument("--chat-model", default=os.path.join(ROOT, "Tests/Fixtures/llava/llava-chat"))
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--port", type=int, default=18431)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--big-side", type=int, default=3000, help="side of the oversized-but-legal image (pixels)")
    p.add_argument("--big-weight", type=float, default=5, help="weight of big-image requests in the mix (of ~100)")
    p.add_argument("--delete-weight", type=float, default=None,
                   help="weight of index deletes (default 7, below the adds' 10: the index grows; above 10 it stays small)")
    p.add_argument("--mem-limit", help="address-space limit for the server (prlimit --as), e.g. 2G")
    p.add_argument("--out", required=True)
    p.add_argument("server_args", nargs="*", help="extra `vlm serve` flags (after --)")
    a = p.parse_args()
    a.embed_id = os.path.basename(os.path.normpath(a.embed_model))
    a.chat_id = os.path.basename(os.path.normpath(a.chat_model))
    Soak(a).run()


if __name__ == "__main__":
    main()
