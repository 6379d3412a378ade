// CPU feature detection (CPUID + XGETBV) and the forced-ISA switch the tests use.
#include "kernels_internal.h"
#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static uint64_t detect_features(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx || __get_cpuid_max(0, 0) < 7) return 0;
    uint64_t xcr0 = xgetbv0();
    // The OS must save YMM (bits 1,2), for AVX-512 also opmask + ZMM state (bits 5,6,7), for AMX the tile
    // configuration and data (bits 17,18).
    int ymm_ok = (xcr0 & 0x6) == 0x6, zmm_ok = (xcr0 & 0xE6) == 0xE6, amx_ok = (xcr0 & 0x60000) == 0x60000;
    unsigned b7, c7, d7, a71 = 0, b71, c71, d71;
    __cpuid_count(7, 0, a, b7, c7, d7);
    unsigned max7 = a;
    if (max7 >= 1) __cpuid_count(7, 1, a71, b71, c71, d71);
    uint64_t f = 0;
    if (ymm_ok) {
        if ((b7 >> 5) & 1) f |= VLM_CPU_AVX2;
        if (fma) f |= VLM_CPU_FMA;
        if (f16c) f |= VLM_CPU_F16C;
        if ((a71 >> 4) & 1) f |= VLM_CPU_AVX_VNNI;
    }
    if (ymm_ok && zmm_ok) {
        if ((b7 >> 16) & 1) f |= VLM_CPU_AVX512F;
        if ((b7 >> 17) & 1) f |= VLM_CPU_AVX512DQ;
        if ((b7 >> 30) & 1) f |= VLM_CPU_AVX512BW;
        if ((b7 >> 31) & 1) f |= VLM_CPU_AVX512VL;
        if ((c7 >> 11) & 1) f |= VLM_CPU_AVX512_VNNI;
        if ((c7 >> 1) & 1) f |= VLM_CPU_AVX512_VBMI;
        if ((a71 >> 5) & 1) f |= VLM_CPU_AVX512_BF16;
    }
    if (amx_ok) {
        if ((d7 >> 24) & 1) f |= VLM_CPU_AMX_TILE;
        if ((d7 >> 22) & 1) f |= VLM_CPU_AMX_BF16;
        if ((d7 >> 25) & 1) f |= VLM_CPU_AMX_INT8;
    }
    return f;
}
#else
static uint64_t detect_features(void) { return 0; }
#endif

// The GEMM paths need these sets (the AVX-512 kernels also use AVX2/FMA/F16C instructions).
#define NEED_AVX2 (VLM_CPU_AVX2 | VLM_CPU_FMA | VLM_CPU_F16C)
#define NEED_AVX512 (NEED_AVX2 | VLM_CPU_AVX512F | VLM_CPU_AVX512DQ | VLM_CPU_AVX512BW | VLM_CPU_AVX512VL)

static uint64_t detected_features(void);

static vlm_isa detect_isa(void) {
    uint64_t f = detected_features();  // hidden features do not lower the ISA (that is vlm_force_isa's job)
    if ((f & NEED_AVX512) == NEED_AVX512) return VLM_ISA_AVX512;
    if ((f & NEED_AVX2) == NEED_AVX2) return VLM_ISA_AVX2;
    return VLM_ISA_NAIVE;
}

static _Atomic int64_t cpu_features_cache = -1;
static _Atomic uint64_t hidden_features = 0;

static uint64_t detected_features(void) {
    int64_t v = atomic_load_explicit(&cpu_features_cache, memory_order_relaxed);
    if (v < 0) {
        v = (int64_t)detect_features();
        atomic_store_explicit(&cpu_features_cache, v, memory_order_relaxed);
    }
    return (uint64_t)v;
}

uint64_t vlm_cpu_features(void) {
    return detected_features() & ~atomic_load_explicit(&hidden_features, memory_order_relaxed);
}

uint64_t vlm_hide_cpu_features(uint64_t mask) {
    return atomic_exchange_explicit(&hidden_features, mask, memory_order_relaxed);
}

const char *vlm_cpu_feature_name(uint64_t feature) {
    static const char *const names[VLM_CPU_FEATURE_COUNT] = {
        "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16", "avx512_vnni",
        "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "avx512_vbmi",
    };
    for (int i = 0; i < VLM_CPU_FEATURE_COUNT; i++)
        if (feature == (1ull << i)) return names[i];
    return NULL;
}

static _Atomic int cpu_isa_cache = -1;
static _Atomic int forced_isa = VLM_ISA_AVX512;

vlm_isa vlm_cpu_isa(void) {
    int v = atomic_load_explicit(&cpu_isa_cache, memory_order_relaxed);
    if (v < 0) {
        v = (int)detect_isa();
        atomic_store_explicit(&cpu_isa_cache, v, memory_order_relaxed);
    }
    return (vlm_isa)v;
}

vlm_isa vlm_active_isa(void) {
    int cpu = (int)vlm_cpu_isa();
    int f = atomic_load_explicit(&forced_isa, memory_order_relaxed);
    return (vlm_isa)(f < cpu ? f : cpu);
}

vlm_isa vlm_force_isa(vlm_isa isa) {
    int v = (int)isa;
    if (v < VLM_ISA_NAIVE) v = VLM_ISA_NAIVE;
    if (v > VLM_ISA_AVX512) v = VLM_ISA_AVX512;
    atomic_store_explicit(&forced_isa, v, memory_order_relaxed);
    return vlm_active_isa();
}

const char *vlm_isa_name(vlm_isa isa) {
    switch (isa) {
    case VLM_ISA_NAIVE: return "naive";
    case VLM_ISA_AVX2: return "avx2";
    case VLM_ISA_AVX512: return "avx512";
    }
    return "unknown";
}
