// Shared huge-page slabs for the packed weights of reduced-precision formats.
//
// Why: decode streams every weight once per token, and vlm_aligned_alloc gives huge pages only to allocations of
// 4 MB and more (threadpool.c). A small model's int4 / int8 / bf16 weights are mostly below that (SmolLM2-360M int4:
// q|k|v 0.8 MB, o 0.5, gate|up 2.6, down 1.3), so they sat on 4 KB pages: a TLB miss and a hardware-prefetch stop
// every 4 KB. Carving them out of 2 MB-aligned slabs with transparent huge pages streamed the W4A8 GEMV 5-10% faster
// on Zen 4 (1.3 MB weights, 2 threads, from memory: 30.2-30.9 -> 32.4 GB/s; Benchmarks/RESULTS.md, session 29).
// Weights are carved in creation order, layer by layer as the loaders create them, so consecutive layers' weights
// are neighbours in memory.
//
// Lifetime: each slab counts its live weights and is freed with the last one. Space is not reused before that,
// so only formats created once per model load use slabs (not the float32 packs that indexes and training re-create).
#include "kernels_internal.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLAB_BYTES ((size_t)32 << 20)
#define SLAB_MIN ((size_t)64 << 10)   // smaller weights: a separate allocation (few bytes, nothing to stream)
#define SLAB_MAX ((size_t)4 << 20)    // vlm_aligned_alloc gives these their own huge pages

struct vlm_slab {
    char *base;
    size_t used;
    int64_t live;
};

static pthread_mutex_t slab_lock = PTHREAD_MUTEX_INITIALIZER;
static vlm_slab *slab_current;

void *vlm_slab_alloc(size_t bytes, vlm_slab **slab) {
    *slab = NULL;
    size_t size = (bytes + 63) & ~(size_t)63;
    const char *env = getenv("VLM_HUGE_PAGES");  // "none": 4 KB pages (to measure), so no slabs either
    if (size < SLAB_MIN || size >= SLAB_MAX || (env && strcmp(env, "none") == 0)) return vlm_aligned_alloc(bytes);
    pthread_mutex_lock(&slab_lock);
    vlm_slab *s = slab_current;
    if (!s || s->used + size > SLAB_BYTES) {
        s = malloc(sizeof *s);
        // vlm_aligned_alloc starts a 32 MB allocation on a 2 MB boundary with huge pages asked for over all of it.
        char *base = s ? vlm_aligned_alloc(SLAB_BYTES) : NULL;
        if (!base) {
            free(s);
            pthread_mutex_unlock(&slab_lock);
            return vlm_aligned_alloc(bytes);
        }
        *s = (vlm_slab){ .base = base };
        slab_current = s;  // the previous one lives on in its weights (a current slab always has some)
    }
    void *p = s->base + s->used;
    s->used += size;
    s->live++;
    *slab = s;
    pthread_mutex_unlock(&slab_lock);
    return p;
}

void vlm_slab_free(void *p, vlm_slab *slab) {
    if (!slab) { vlm_aligned_free(p); return; }
    pthread_mutex_lock(&slab_lock);
    if (--slab->live == 0) {
        if (slab == slab_current) slab_current = NULL;
        vlm_aligned_free(slab->base);
        free(slab);
    }
    pthread_mutex_unlock(&slab_lock);
}
