#!/usr/bin/env python3
"""Visual-search index benchmark: faiss-cpu side, and the data both sides share.

  python Benchmarks/index_bench.py gen     --out /tmp/vlm_index_bench [--sizes 100000,1000000]
  python Benchmarks/index_bench.py faiss   --out /tmp/vlm_index_bench [--threads 1,2]
  vlm index bench --data /tmp/vlm_index_bench [--threads 1,2]       (the Swift side; writes swift.json)
  python Benchmarks/index_bench.py compare --out /tmp/vlm_index_bench

`gen` writes, with a fixed seed, random unit-norm float32 vectors (uniform on the sphere, or with
--kind clustered around 1000 random centres, closer to real image embeddings) (base_<n>.npy, n x 512), 1000
unit-norm queries (queries.npy) and the exact top-10 per query (gt_<n>.npy, int64, computed with
faiss IndexFlatIP in float32; the score gap between rank 10 and 11 is checked so the reference
is unambiguous). Both sides read these files: same vectors, same queries, same ground truth.

Measured per size and thread count (faiss.omp_set_num_threads / Kernels.threads + as many
search workers): exact search QPS (IndexFlatIP, all 1000 queries in one call, and one query
per call), HNSW build time (IndexHNSWFlat, same M and efConstruction as ours), and HNSW QPS +
recall@10 for an efSearch sweep; the headline is the fastest efSearch with recall@10 >= 0.95.
Needs numpy and faiss-cpu (pip install faiss-cpu) in the benchmark venv, not in the repo.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

DIM = 512
NQ = 1000
K = 10
SEED = 20260101
M = 16
EF_CONSTRUCTION = 100
EF_SWEEP = [16, 32, 64, 128, 256, 512, 1024, 2048]
SINGLE_QUERIES = 200  # queries timed one per call


def unit_rows(rng, n, dim, chunk=100_000):
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        x = rng.standard_normal((e - s, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:e] = x
    return out


def clustered_rows(rng, centers, n, sigma, chunk=100_000):
    """Unit vectors around random centres: x = normalise(c + sigma * g / sqrt(dim)), g ~ N(0, I).
    Closer to real embeddings (neighbours are much nearer than random pairs) than uniform vectors,
    on which every graph index degrades towards brute force."""
    dim = centers.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        c = centers[rng.integers(0, len(centers), e - s)]
        x = c + (sigma / np.sqrt(dim)) * rng.standard_normal((e - s, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:e] = x
    return out


def exact_top(b, queries, k):
    """Exact top-k by inner product with numpy (used when faiss is not installed)."""
    scores = queries @ b.T
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, ids, axis=1), ids


def gen(args):
    try:
        import faiss
    except ImportError:
        faiss = None
    os.makedirs(args.out, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    largest = max(sizes)
    rng = np.random.default_rng(SEED)
    if args.kind == "uniform":
        base = unit_rows(rng, largest, args.dim)
        queries = unit_rows(np.random.default_rng(SEED + 1), NQ, args.dim)
    else:
        centers = unit_rows(np.random.default_rng(SEED + 2), args.clusters, args.dim)
        base = clustered_rows(rng, centers, largest, args.sigma)
        queries = clustered_rows(np.random.default_rng(SEED + 1), centers, NQ, args.sigma)
    np.save(os.path.join(args.out, "queries.npy"), queries)
    for n in sizes:
        # Each size is a prefix of the largest set, so the 100k set is the first 100k of the 1M set.
        b = np.ascontiguousarray(base[:n])
        np.save(os.path.join(args.out, f"base_{n}.npy"), b)
        if faiss is not None:
            index = faiss.IndexFlatIP(args.dim)
            index.add(b)
            scores, ids = index.search(queries, K + 1)
        else:
            scores, ids = exact_top(b, queries, K + 1)
        gap = scores[:, K - 1] - scores[:, K]
        print(f"gen n={n}: min gap between rank {K} and {K + 1} = {gap.min():.2e}", flush=True)
        np.save(os.path.join(args.out, f"gt_{n}.npy"), ids[:, :K].astype(np.int64))
    print(f"wrote {args.out}")


def recall(found, gt):
    hits = 0
    for f, g in zip(found, gt):
        hits += len(set(int(x) for x in f[:K] if x >= 0) & set(int(x) for x in g))
    return hits / (len(gt) * K)


def timed(fn, min_seconds=1.0):
    """Runs fn repeatedly for at least min_seconds; returns (seconds per call, last result)."""
    result = fn()  # warm-up
    calls, start = 0, time.perf_counter()
    while True:
        result = fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls, result


def faiss_side(args):
    import faiss
    threads = [int(t) for t in args.threads.split(",")]
    queries = np.load(os.path.join(args.out, "queries.npy"))
    sizes = sorted(int(f[5:-4]) for f in os.listdir(args.out) if f.startswith("base_") and f.endswith(".npy"))
    if args.sizes_only:
        sizes = [n for n in sizes if n in {int(s) for s in args.sizes_only.split(",")}]
    report = {"side": "faiss", "faiss": faiss.__version__, "machine": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "M": M, "efConstruction": EF_CONSTRUCTION, "sizes": {}}
    for n in sizes:
        base = np.load(os.path.join(args.out, f"base_{n}.npy"), mmap_mode="r")
        base = np.ascontiguousarray(base)
        gt = np.load(os.path.join(args.out, f"gt_{n}.npy"))
        entry = {"exact": {}, "hnsw": {}}
        flat = faiss.IndexFlatIP(base.shape[1])
        flat.add(base)
        for t in threads:
            faiss.omp_set_num_threads(t)
            sec, (_, ids) = timed(lambda: flat.search(queries, K), args.min_seconds)
            single = queries[:SINGLE_QUERIES]
            sec1, _ = timed(lambda: [flat.search(single[i:i + 1], K) for i in range(len(single))], args.min_seconds)
            entry["exact"][str(t)] = {"batch_qps": NQ / sec, "single_qps": len(single) / sec1, "recall": recall(ids, gt)}
            print(f"faiss n={n} t={t} exact: batch {NQ / sec:.1f} QPS, single {len(single) / sec1:.1f} QPS, "
                  f"recall {entry['exact'][str(t)]['recall']:.4f}", flush=True)
        del flat
        if n > args.hnsw_max_n:
            report["sizes"][str(n)] = entry
            continue
        faiss.omp_set_num_threads(max(threads))
        hnsw = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = EF_CONSTRUCTION
        start = time.perf_counter()
        hnsw.add(base)
        build = time.perf_counter() - start
        entry["hnsw_build_seconds"] = build
        entry["hnsw_build_threads"] = max(threads)
        print(f"faiss n={n} HNSW build (M={M}, efC={EF_CONSTRUCTION}, {max(threads)} threads): {build:.1f} s", flush=True)
        for t in threads:
            faiss.omp_set_num_threads(t)
            rows = []
            for ef in EF_SWEEP:
                hnsw.hnsw.efSearch = ef
                sec, (_, ids) = timed(lambda: hnsw.search(queries, K), args.min_seconds)
                r = recall(ids, gt)
                rows.append({"efSearch": ef, "qps": NQ / sec, "recall": r})
                print(f"faiss n={n} t={t} HNSW ef={ef}: {NQ / sec:.1f} QPS, recall@10 {r:.4f}", flush=True)
                if r >= 0.99:
                    break
            entry["hnsw"][str(t)] = rows
        report["sizes"][str(n)] = entry
        del hnsw
    with open(os.path.join(args.out, "faiss.json"), "w") as f:
        json.dump(report, f, indent=1)


def headline(rows, target=0.95):
    ok = [r for r in rows if r["recall"] >= target]
    return max(ok, key=lambda r: r["qps"]) if ok else None


def compare(args):
    sides = {}
    for name in ("faiss", "swift"):
        p = os.path.join(args.out, f"{name}.json")
        if os.path.exists(p):
            with open(p) as f:
                sides[name] = json.load(f)
    if len(sides) < 2:
        sys.exit(f"need faiss.json and swift.json in {args.out}")
    sizes = sorted(set(sides["faiss"]["sizes"]) & set(sides["swift"]["sizes"]), key=int)
    print(f"| n | threads | exact batch QPS ours / faiss | exact 1-query QPS ours / faiss | "
          f"HNSW QPS @R10>=0.95 ours (ef, R) / faiss (ef, R) | HNSW build s ours / faiss |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        a, b = sides["swift"]["sizes"][n], sides["faiss"]["sizes"][n]
        for t in sorted(set(a["exact"]) & set(b["exact"]), key=int):
            ea, eb = a["exact"][t], b["exact"][t]
            ha, hb = headline(a.get("hnsw", {}).get(t, [])), headline(b["hnsw"].get(t, []))
            def fmt(h, rows):
                if h:
                    return f"{h['qps']:.0f} (ef {h['efSearch']}, {h['recall']:.3f})"
                if not rows:
                    return "not run"
                best = max(rows, key=lambda r: r["recall"])
                return f"none; best R {best['recall']:.3f} at ef {best['efSearch']} ({best['qps']:.0f} QPS)"
            build = f"{a.get('hnsw_build_seconds', float('nan')):.0f} ({a.get('hnsw_build_threads', '?')}t) / " \
                    f"{b.get('hnsw_build_seconds', float('nan')):.0f} ({b.get('hnsw_build_threads', '?')}t)"
            print(f"| {int(n):,} | {t} | {ea['batch_qps']:.0f} / {eb['batch_qps']:.0f} | {ea['single_qps']:.0f} / {eb['single_qps']:.0f} "
                  f"| {fmt(ha, a.get('hnsw', {}).get(t, []))} / {fmt(hb, b['hnsw'].get(t, []))} | {build} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["gen", "faiss", "compare"])
    p.add_argument("--out", default="/tmp/vlm_index_bench")
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--sizes-only", default="", help="faiss: only these sizes of the data directory")
    p.add_argument("--hnsw-max-n", type=int, default=10**12, help="faiss: skip HNSW above this size")
    p.add_argument("--dim", type=int, default=DIM, help="gen: vector dimension (the embedding size of the model that will serve them)")
    p.add_argument("--kind", choices=["uniform", "clustered"], default="uniform", help="gen: vector distribution")
    p.add_argument("--clusters", type=int, default=1000, help="gen --kind clustered: number of centres")
    p.add_argument("--sigma", type=float, default=0.8, help="gen --kind clustered: noise scale")
    args = p.parse_args()
    {"gen": gen, "faiss": faiss_side, "compare": compare}[args.command](args)


if __name__ == "__main__":
    main()
