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

static vlm_isa detect_isa(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return VLM_ISA_NAIVE;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return VLM_ISA_NAIVE;
    uint64_t xcr0 = xgetbv0();
    // The OS must save YMM (bits 1,2) and, for AVX-512, opmask + ZMM state (bits 5,6,7).
    int ymm_ok = (xcr0 & 0x6) == 0x6;
    int zmm_ok = (xcr0 & 0xE6) == 0xE6;
    if (__get_cpuid_max(0, 0) < 7) return VLM_ISA_NAIVE;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    if (zmm_ok && ymm_ok && avx512f && avx512dq && avx512bw && avx512vl && fma && f16c && avx2) return VLM_ISA_AVX512;
    if (ymm_ok && avx2 && fma && f16c) return VLM_ISA_AVX2;
    return VLM_ISA_NAIVE;
}
#else
static vlm_isa detect_isa(void) { return VLM_ISA_NAIVE; }
#endif

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
