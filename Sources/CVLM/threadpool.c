// A small persistent thread pool for the kernels.
//
// Why not one thread per call: a transformer layer issues ~10 kernel calls of a few hundred microseconds,
// so thread creation (tens of microseconds) would eat the speed-up. Workers spin briefly after a job (the
// next kernel call usually follows within microseconds) and then sleep on a condition variable so an idle
// process does not burn CPU. The caller always takes part in its own job.
//
// Concurrency: one job at a time. A call made while another thread owns the pool, or from inside a pool
// task, runs inline on its caller (correct, just not parallel), so kernels are safe to call from any thread.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // pthread_setname_np
#endif
#include "kernels_internal.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define VLM_MAX_THREADS 256
// Roughly 50-100 microseconds of spinning before a worker sleeps.
#define SPIN_ITERS 4000

// Job admission word: generation << 17 | closed << 16 | number of workers that joined (< 65536).
// A worker joins a job with a CAS that fails once the caller has closed it, so the caller never waits
// for a worker that was descheduled before it even started (common on a busy machine): it runs the
// remaining tasks itself, closes the job and waits only for the workers that actually joined.
#define JOINED_MASK 0xFFFFull
#define CLOSED_BIT 0x10000ull
#define GEN_SHIFT 17

typedef struct {
    pthread_mutex_t submit;          // held by the thread owning the pool for one job
    pthread_mutex_t sleep_mu;
    pthread_cond_t sleep_cv;
    _Atomic uint64_t state;          // see JOINED_MASK / CLOSED_BIT / GEN_SHIFT
    _Atomic int sleepers;
    _Atomic int finished;            // joined workers that are done with the current job
    _Atomic int64_t next_task;
    int64_t ntasks;
    int max_join;                    // workers allowed to join (thread count - 1)
    vlm_task_fn fn;
    void *ctx;
    int nworkers;                    // started workers (thread ids 1..nworkers)
    _Atomic int nthreads;            // requested thread count (0 = default)
} vlm_pool;

static vlm_pool pool = {
    .submit = PTHREAD_MUTEX_INITIALIZER,
    .sleep_mu = PTHREAD_MUTEX_INITIALIZER,
    .sleep_cv = PTHREAD_COND_INITIALIZER,
};

static _Thread_local int in_pool_task = 0;

// sysconf(_SC_NPROCESSORS_ONLN) reads /sys on every call (~5% of a training step when asked per kernel
// call): ask once.
static _Atomic int cached_default_threads = 0;
static int default_threads(void) {
    int c = atomic_load_explicit(&cached_default_threads, memory_order_relaxed);
    if (c > 0) return c;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > VLM_MAX_THREADS) n = VLM_MAX_THREADS;
    atomic_store_explicit(&cached_default_threads, (int)n, memory_order_relaxed);
    return (int)n;
}

void vlm_set_num_threads(int n) {
    if (n > VLM_MAX_THREADS) n = VLM_MAX_THREADS;
    atomic_store(&pool.nthreads, n <= 0 ? 0 : n);
}

int vlm_get_num_threads(void) {
    int n = atomic_load(&pool.nthreads);
    return n > 0 ? n : default_threads();
}

int vlm_pool_threads(void) { return vlm_get_num_threads(); }

typedef struct { void (*fn)(void *, int64_t); void *ctx; } run_job;

static void run_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const run_job *j = ctx;
    j->fn(j->ctx, task);
}

void vlm_parallel_run(int64_t ntasks, void (*fn)(void *ctx, int64_t task), void *ctx) {
    if (!fn || ntasks <= 0) return;
    run_job j = { .fn = fn, .ctx = ctx };
    vlm_parallel_for(ntasks, run_task, &j);
}

static void run_tasks(int thread) {
    vlm_task_fn fn = pool.fn;
    void *ctx = pool.ctx;
    int64_t n = pool.ntasks;
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&pool.next_task, 1, memory_order_relaxed);
        if (t >= n) break;
        fn(ctx, t, thread);
    }
}

// Tries to join job generation g; returns 1 if joined.
static int try_join(uint64_t g) {
    uint64_t s = atomic_load(&pool.state);
    for (;;) {
        if ((s >> GEN_SHIFT) != g || (s & CLOSED_BIT) || (int)(s & JOINED_MASK) >= pool.max_join) return 0;
        if (atomic_compare_exchange_weak(&pool.state, &s, s + 1)) return 1;
    }
}

typedef struct { int id; uint64_t generation; } worker_start;

static void *worker_main(void *arg) {
    // The generation to wait past is the one current when the worker was created (passed in by the
    // creator): reading pool.state here could already see the first job and skip it.
    worker_start start = *(worker_start *)arg;
    free(arg);
    int id = start.id;
    in_pool_task = 1;
    uint64_t seen = start.generation;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool.state, memory_order_acquire) >> GEN_SHIFT) == seen) {
            if (++spins < SPIN_ITERS) { CPU_RELAX(); continue; }
            // Sleep. sleepers is raised before re-checking the state, and the submitter publishes the
            // state before reading sleepers (both seq_cst), so a wake-up cannot be lost.
            pthread_mutex_lock(&pool.sleep_mu);
            atomic_fetch_add(&pool.sleepers, 1);
            while ((atomic_load(&pool.state) >> GEN_SHIFT) == seen) pthread_cond_wait(&pool.sleep_cv, &pool.sleep_mu);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.sleep_mu);
            spins = 0;
        }
        seen = g;
        if (try_join(g)) {
            run_tasks(id);
            atomic_fetch_add_explicit(&pool.finished, 1, memory_order_release);
        }
    }
    return NULL;
}

// Start workers up to `want - 1`; called with pool.submit held. Returns the number of usable threads.
static int ensure_workers(int want) {
    while (pool.nworkers < want - 1) {
        pthread_t th;
        pthread_attr_t attr;
        worker_start *start = malloc(sizeof *start);
        if (!start) break;
        start->id = pool.nworkers + 1;
        start->generation = atomic_load(&pool.state) >> GEN_SHIFT;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &attr, worker_main, start);
        pthread_attr_destroy(&attr);
        if (rc != 0) { free(start); break; }  // run with what we have
        pool.nworkers++;
    }
    return pool.nworkers + 1 < want ? pool.nworkers + 1 : want;
}

static void run_inline(int64_t ntasks, vlm_task_fn fn, void *ctx) {
    int saved = in_pool_task;
    in_pool_task = 1;
    for (int64_t t = 0; t < ntasks; t++) fn(ctx, t, 0);
    in_pool_task = saved;
}

void vlm_parallel_for(int64_t ntasks, vlm_task_fn fn, void *ctx) {
    if (ntasks <= 0) return;
    int want = vlm_get_num_threads();
    if (ntasks == 1 || want <= 1 || in_pool_task) { run_inline(ntasks, fn, ctx); return; }
    if (pthread_mutex_trylock(&pool.submit) != 0) { run_inline(ntasks, fn, ctx); return; }
    if (want > ntasks) want = (int)ntasks;
    int nused = ensure_workers(want);
    if (nused <= 1) { pthread_mutex_unlock(&pool.submit); run_inline(ntasks, fn, ctx); return; }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.ntasks = ntasks;
    pool.max_join = nused - 1;
    atomic_store_explicit(&pool.next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.finished, 0, memory_order_relaxed);
    uint64_t g = (atomic_load(&pool.state) >> GEN_SHIFT) + 1;
    atomic_store(&pool.state, g << GEN_SHIFT);  // seq_cst: publishes the job fields above, open, 0 joined
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep_mu);
        pthread_cond_broadcast(&pool.sleep_cv);
        pthread_mutex_unlock(&pool.sleep_mu);
    }
    in_pool_task = 1;
    run_tasks(0);
    in_pool_task = 0;
    // Close the job: late workers can no longer join; wait for those that did (they may still be running
    // their last task, and must leave before the next job overwrites the fields).
    uint64_t s = atomic_fetch_or(&pool.state, CLOSED_BIT);
    int joined = (int)(s & JOINED_MASK);
    int spins = 0;
    while (atomic_load_explicit(&pool.finished, memory_order_acquire) < joined) {
        if (++spins < 100000) CPU_RELAX();
        else sched_yield();  // a worker was descheduled mid-task (busy machine): give it the core
    }
    pthread_mutex_unlock(&pool.submit);
}

// MARK: Aligned and per-thread scratch memory

// Allocations of HUGE_MIN bytes or more (packed weights, large activations) start on a 2 MB boundary and ask for
// transparent huge pages over the whole 2 MB extents inside them (madvise: only memory this call owns). Why: decode
// streams every weight once per token, and with 4 KB pages each page is a TLB miss and a stop for the hardware
// prefetchers (they do not cross pages): one core streamed fp32 weights at 36-39 GB/s with them, 43-44 GB/s with
// huge pages (Benchmarks/gemv_formats.c, Zen 5). Where THP is off ("never") the advice is ignored.
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)4 << 20)

void *vlm_aligned_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    size_t size = (bytes + 63) & ~(size_t)63;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const char *env = size >= HUGE_MIN ? getenv("VLM_HUGE_PAGES") : NULL;  // "none": 4 KB pages (to measure)
    if (size >= HUGE_MIN && !(env && strcmp(env, "none") == 0)) {
        if (posix_memalign(&p, HUGE_PAGE, size) != 0) return NULL;
        (void)madvise(p, size / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
        return p;
    }
#endif
    if (posix_memalign(&p, 64, size) != 0) return NULL;
    return p;
}

void vlm_aligned_free(void *p) { free(p); }

#define SCRATCH_SLOTS 9
typedef struct { float *p[SCRATCH_SLOTS]; size_t n[SCRATCH_SLOTS]; } scratch_set;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *arg) {
    scratch_set *s = arg;
    for (int i = 0; i < SCRATCH_SLOTS; i++) free(s->p[i]);
    free(s);
}
static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_destroy); }

// Thread-local (not pool-slot) scratch, so concurrent callers on other threads never share buffers.
float *vlm_scratch(int slot, size_t floats) {
    if (slot < 0 || slot >= SCRATCH_SLOTS) return NULL;
    pthread_once(&scratch_once, scratch_init);
    scratch_set *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        if (pthread_setspecific(scratch_key, s) != 0) { free(s); return NULL; }
    }
    if (s->n[slot] < floats) {
        free(s->p[slot]);
        s->p[slot] = vlm_aligned_alloc(floats * sizeof(float));
        s->n[slot] = s->p[slot] ? floats : 0;
    }
    return s->p[slot];
}

// MARK: Allocator

int vlm_keep_large_buffers(void) {
#if defined(__GLIBC__)
    // glibc maps every block above M_MMAP_THRESHOLD (at most 32 MiB when it adapts by itself) with its own mmap and
    // unmaps it on free, so a large activation allocated per layer is faulted in and zeroed again, page by page,
    // on every call. Serving blocks up to 64 MiB from the heap, and trimming the heap only when 128 MiB are free at
    // its top, reuses them.
    int ok = mallopt(M_MMAP_THRESHOLD, 64 << 20) && mallopt(M_TRIM_THRESHOLD, 128 << 20);
    return ok ? 0 : -1;
#else
    return -1;
#endif
}

// MARK: Thread names

void vlm_set_current_thread_name(const char *name) {
    if (!name) return;
    char buf[16];  // Linux: at most 15 bytes and the NUL
    snprintf(buf, sizeof buf, "%s", name);
#if defined(__linux__)
    pthread_setname_np(pthread_self(), buf);
#endif
}
