// STREAM-like triad: a[i] = b[i] + s * c[i] over three arrays of doubles far larger than the caches, split
// across T threads (pthreads, one contiguous chunk each, first-touched by its thread), best of R repetitions.
// Bandwidth counts 24 bytes per element (read b, read c, write a) as STREAM does (write-allocate traffic is not
// counted, so the bus moves up to 4/3 of this).
//
//   gcc -O3 -march=native -pthread Benchmarks/stream_triad.c -o /tmp/stream_triad && /tmp/stream_triad 2 [MiB per array]
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct { double *a, *b, *c; size_t begin, end; int init; } Chunk;

static void *work(void *p) {
    Chunk *k = p;
    if (k->init) {
        for (size_t i = k->begin; i < k->end; i++) { k->a[i] = 0; k->b[i] = 1; k->c[i] = 2; }
    } else {
        const double s = 3.0;
        for (size_t i = k->begin; i < k->end; i++) k->a[i] = k->b[i] + s * k->c[i];
    }
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void run(Chunk *chunks, int threads) {
    pthread_t ids[64];
    for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, work, &chunks[t]);
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 256;
    if (threads < 1 || threads > 64 || mib < 1) { fprintf(stderr, "usage: stream_triad THREADS [MiB per array]\n"); return 1; }
    size_t n = mib * 1024 * 1024 / sizeof(double);
    double *a = aligned_alloc(64, n * sizeof(double)), *b = aligned_alloc(64, n * sizeof(double)), *c = aligned_alloc(64, n * sizeof(double));
    if (!a || !b || !c) { fprintf(stderr, "out of memory\n"); return 1; }
    Chunk chunks[64];
    for (int t = 0; t < threads; t++) {
        chunks[t] = (Chunk){a, b, c, n * t / threads, n * (t + 1) / threads, 1};
    }
    run(chunks, threads);
    for (int t = 0; t < threads; t++) chunks[t].init = 0;
    double best = 1e30;
    for (int r = 0; r < 10; r++) {
        double t0 = now();
        run(chunks, threads);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    double check = a[n / 2];
    printf("{\"method\": \"triad a=b+s*c, doubles, best of 10\", \"threads\": %d, \"mib_per_array\": %zu, "
           "\"triad_gb_s\": %.2f, \"check\": %.1f}\n", threads, mib, 24.0 * n / best / 1e9, check);
    free(a); free(b); free(c);
    return 0;
}
