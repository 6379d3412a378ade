// Packing linear-layer weights into VLM_NR-row panels (layout: kernels_internal.h), from float32, bf16 or
// fp16 sources, into F32, BF16 or F16 storage.
//
// Why pack straight from the source type: a 7B checkpoint is ~14 GB in bf16 and 28 GB widened to fp32, more
// than this class of machine holds; packing from the memory-mapped 16-bit tensors (row range by row range,
// for fused q|k|v and gate|up) never materialises an fp32 copy.
//
// Conversions: same-type 16-bit values are copied bit for bit; widening is exact (bf16 = upper 16 bits of a
// binary32, every binary16 is a binary32); narrowing rounds to nearest, ties to even (convert.c).
#include "kernels_internal.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// Panels are packed on the pool above this many elements (model loading packs billions of weights).
#define PACK_PARALLEL_MIN 65536.0

static int storage_esize(vlm_weight_dtype d) { return d == VLM_WEIGHT_F32 ? 4 : vlm_dtype_quantized(d) ? 0 : 2; }

vlm_packed_weight *vlm_packed_weight_create_grouped(int64_t N, int64_t K, vlm_weight_dtype storage, int64_t group) {
    if (N <= 0 || K <= 0 || !vlm_weight_format_info(storage)) return NULL;
    int quant = vlm_dtype_quantized(storage);
    if (quant && (group < 32 || group > 4096 || group % 32)) return NULL;
    int64_t npanels = (N + VLM_NR - 1) / VLM_NR;
    // Refuse sizes whose byte count would overflow size_t arithmetic below (a quantized block is at most
    // 4 + 1 + 1 bytes per weight of the padded group).
    if (K + (quant ? group : 0) > (INT64_MAX / 8) / VLM_NR / npanels) return NULL;
    vlm_packed_weight *p = vlm_aligned_alloc(sizeof *p);
    if (!p) return NULL;
    *p = (vlm_packed_weight){ .N = N, .K = K, .npanels = npanels, .dtype = storage, .esize = storage_esize(storage) };
    size_t panel_bytes;
    if (quant) {
        p->group = group;
        p->ngroups = (K + group - 1) / group;
        int64_t row_bytes = storage == VLM_WEIGHT_I4 ? VLM_NR / 2 : VLM_NR;
        p->block_bytes = vlm_qcodes_offset(storage) + group * row_bytes;
        // I4: the last group's rows rounded up to four, so quad order (kernels_internal.h) fits in any block.
        int64_t last_rows = K - (p->ngroups - 1) * group;
        if (storage == VLM_WEIGHT_I4) last_rows = (last_rows + 3) / 4 * 4;
        int64_t last = vlm_qcodes_offset(storage) + last_rows * row_bytes;
        p->panel_bytes = (p->ngroups - 1) * p->block_bytes + (last + 63) / 64 * 64;
        panel_bytes = (size_t)p->panel_bytes;
    } else {
        panel_bytes = (size_t)vlm_panel_k(p) * VLM_NR * (size_t)p->esize;
    }
    // Reduced-precision formats are made once per model load: small ones share huge-page slabs (weight_slabs.c).
    if (storage == VLM_WEIGHT_F32) p->data = vlm_aligned_alloc((size_t)npanels * panel_bytes);
    else p->data = vlm_slab_alloc((size_t)npanels * panel_bytes, &p->slab);
    if (!p->data) { vlm_aligned_free(p); return NULL; }
    // Columns past N must read as zeros (the kernels compute full 32-wide panels); real rows are written by
    // vlm_pack_weight_rows, so only the last panel needs clearing. Quantized blocks are cleared whole: the
    // packer merges nibbles into bytes, and the padding of a short last group must hold zeros.
    // BF16 with odd K: every panel's padding k row must be zero too (the kernels read whole pairs).
    if (quant || vlm_panel_k(p) != K) memset(p->data, 0, (size_t)npanels * panel_bytes);
    else if (N % VLM_NR) memset((char *)p->data + (size_t)(npanels - 1) * panel_bytes, 0, panel_bytes);
    return p;
}

vlm_packed_weight *vlm_packed_weight_create(int64_t N, int64_t K, vlm_weight_dtype storage) {
    return vlm_packed_weight_create_grouped(N, K, storage, VLM_QUANT_GROUP_DEFAULT);
}

int64_t vlm_packed_weight_group(const vlm_packed_weight *w) { return w ? w->group : 0; }

typedef struct {
    vlm_packed_weight *w;
    const void *src;
    vlm_source_dtype stype;
    int64_t row0, rows, p0;
    _Atomic int failed;  // a task could not allocate its row buffer
} pack_job;

static inline uint16_t load_u16(const char *p) { uint16_t h; memcpy(&h, p, 2); return h; }
static inline float load_f32(const char *p) { float f; memcpy(&f, p, 4); return f; }
static inline float bf16_bits_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float source_value(const char *e, vlm_source_dtype t) {
    return t == VLM_SRC_F32 ? load_f32(e) : t == VLM_SRC_BF16 ? bf16_bits_to_f32(load_u16(e)) : vlm_f16_to_f32_scalar(load_u16(e));
}

// Packs the columns of panel p0 + t that come from this job's source rows. Blocks of 16 k keep both the
// reads (source rows) and the writes (panel rows) within a few cache lines.
static void pack_panel(void *ctx, int64_t t, int thread) {
    (void)thread;
    const pack_job *j = ctx;
    const vlm_packed_weight *w = j->w;
    int64_t K = w->K, pn = j->p0 + t, n0 = pn * VLM_NR;
    int64_t c0 = n0 > j->row0 ? n0 : j->row0;
    int64_t c1 = n0 + VLM_NR < j->row0 + j->rows ? n0 + VLM_NR : j->row0 + j->rows;
    size_t ssize = j->stype == VLM_SRC_F32 ? 4 : 2;
    vlm_weight_dtype d = w->dtype;
    int same16 = (d == VLM_WEIGHT_BF16 && j->stype == VLM_SRC_BF16) || (d == VLM_WEIGHT_F16 && j->stype == VLM_SRC_F16);
    if (vlm_dtype_quantized(d)) {
        // Each row is widened to float32 once, then quantized group by group (quant.c).
        float *row = malloc((size_t)K * sizeof(float));
        if (!row) { atomic_store(&((pack_job *)ctx)->failed, 1); return; }
        for (int64_t c = c0; c < c1; c++) {
            const char *s = (const char *)j->src + (size_t)(c - j->row0) * (size_t)K * ssize;
            for (int64_t k = 0; k < K; k++) row[k] = source_value(s + (size_t)k * ssize, j->stype);
            vlm_quant_pack_rows((vlm_packed_weight *)w, pn, c, c + 1, row, K);
        }
        free(row);
        return;
    }
    char *panel = (char *)w->data + (size_t)pn * (size_t)vlm_panel_k(w) * VLM_NR * (size_t)w->esize;
    if (same16) {
        // Bit copies: transpose 32 x 32 tiles through a local buffer so the source rows are read 64 contiguous
        // bytes at a time and each tile's writes stay within its 2 KiB of the panel (~4x the element-wise loop below).
        // k0 is a multiple of 32, so the index of (k0 + kk, col) is that of (kk, col) plus k0 * VLM_NR in both layouts.
        int64_t pos[32][VLM_NR];
        for (int kk = 0; kk < 32; kk++)
            for (int q = 0; q < VLM_NR; q++) pos[kk][q] = vlm_panel_index16(d, kk, q);
        uint16_t tile[VLM_NR][32];
        for (int64_t k0 = 0; k0 < K; k0 += 32) {
            int kn = (int)(K - k0 < 32 ? K - k0 : 32);
            for (int64_t c = c0; c < c1; c++)
                memcpy(tile[c - n0], (const char *)j->src + ((size_t)(c - j->row0) * (size_t)K + (size_t)k0) * 2, (size_t)kn * 2);
            uint16_t *dst = (uint16_t *)panel + (size_t)k0 * VLM_NR;
            for (int kk = 0; kk < kn; kk++)
                for (int64_t c = c0; c < c1; c++) dst[pos[kk][c - n0]] = tile[c - n0][kk];
        }
        return;
    }
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
        int64_t k1 = k0 + 16 < K ? k0 + 16 : K;
        for (int64_t c = c0; c < c1; c++) {
            const char *s = (const char *)j->src + (size_t)(c - j->row0) * (size_t)K * ssize;
            int col = (int)(c - n0);
            if (d == VLM_WEIGHT_F32) {
                float *dst = (float *)panel + col;
                for (int64_t k = k0; k < k1; k++) {
                    const char *e = s + (size_t)k * ssize;
                    dst[k * VLM_NR] = source_value(e, j->stype);
                }
            } else {
                uint16_t *dst = (uint16_t *)panel;
                for (int64_t k = k0; k < k1; k++) {
                    const char *e = s + (size_t)k * ssize;
                    float v = source_value(e, j->stype);
                    dst[vlm_panel_index16(d, k, col)] = d == VLM_WEIGHT_BF16 ? vlm_f32_to_bf16_scalar(v) : vlm_f32_to_f16_scalar(v);
                }
            }
        }
    }
}

int vlm_pack_weight_rows(vlm_packed_weight *w, int64_t row0, const void *W, vlm_source_dtype src, int64_t rows) {
    if (!w || !W || rows <= 0 || row0 < 0 || row0 > w->N - rows) return -1;
    if (src != VLM_SRC_F32 && src != VLM_SRC_BF16 && src != VLM_SRC_F16) return -1;
    pack_job j = {.w = w, .src = W, .stype = src, .row0 = row0, .rows = rows, .p0 = row0 / VLM_NR, .failed = 0};
    int64_t ntasks = (row0 + rows - 1) / VLM_NR - j.p0 + 1;
    // Tasks touch disjoint columns, so a panel shared with the previous/next source is safe across calls.
    if ((double)rows * (double)w->K < PACK_PARALLEL_MIN) for (int64_t t = 0; t < ntasks; t++) pack_panel(&j, t, 0);
    else vlm_parallel_for(ntasks, pack_panel, &j);
    return atomic_load(&j.failed) ? VLM_ERR_NOMEM : 0;
}

vlm_packed_weight *vlm_pack_weight_ex(const void *W, vlm_source_dtype src, int64_t N, int64_t K, vlm_weight_dtype storage) {
    if (!W) return NULL;
    vlm_packed_weight *p = vlm_packed_weight_create(N, K, storage);
    if (!p) return NULL;
    if (vlm_pack_weight_rows(p, 0, W, src, N) != 0) { vlm_packed_weight_free(p); return NULL; }
    return p;
}

vlm_packed_weight *vlm_pack_weight(const float *W, int64_t N, int64_t K, vlm_weight_dtype dtype) {
    return vlm_pack_weight_ex(W, VLM_SRC_F32, N, K, dtype);
}

void vlm_packed_weight_free(vlm_packed_weight *w) {
    if (!w) return;
    vlm_slab_free(w->data, w->slab);
    vlm_aligned_free(w);
}

int vlm_packed_weight_in_slab(const vlm_packed_weight *w) { return w && w->slab ? 1 : 0; }

int64_t vlm_packed_weight_rows(const vlm_packed_weight *w) { return w ? w->N : 0; }
int64_t vlm_packed_weight_cols(const vlm_packed_weight *w) { return w ? w->K : 0; }
vlm_weight_dtype vlm_packed_weight_dtype(const vlm_packed_weight *w) { return w ? w->dtype : VLM_WEIGHT_F32; }
int64_t vlm_packed_weight_bytes(const vlm_packed_weight *w) {
    if (!w) return 0;
    if (vlm_dtype_quantized(w->dtype)) return w->npanels * w->panel_bytes;
    return w->npanels * vlm_panel_k(w) * VLM_NR * (int64_t)w->esize;
}

float vlm_packed_get(const vlm_packed_weight *w, int64_t p, int64_t k, int j) {
    if (vlm_dtype_quantized(w->dtype)) return vlm_quant_get(w, p, k, j);
    size_t panel = (size_t)p * (size_t)vlm_panel_k(w) * VLM_NR;
    if (w->dtype == VLM_WEIGHT_F32) return ((const float *)w->data)[panel + (size_t)k * VLM_NR + (size_t)j];
    uint16_t h = ((const uint16_t *)w->data)[panel + (size_t)vlm_panel_index16(w->dtype, k, j)];
    return w->dtype == VLM_WEIGHT_BF16 ? bf16_bits_to_f32(h) : vlm_f16_to_f32_scalar(h);
}

int vlm_packed_weight_get_row(const vlm_packed_weight *w, int64_t n, float *dst) {
    if (!w || !dst || n < 0 || n >= w->N) return -1;
    int64_t p = n / VLM_NR;
    int j = (int)(n % VLM_NR);
    // One 2-byte read per k, 32 to 64 elements apart: fine for embedding lookups of a few tokens per call.
    if (w->dtype == VLM_WEIGHT_BF16) {
        const uint16_t *s = (const uint16_t *)w->data + (size_t)p * (size_t)vlm_panel_k(w) * VLM_NR;
        for (int64_t k = 0; k < w->K; k++) dst[k] = bf16_bits_to_f32(s[vlm_panel_index16(w->dtype, k, j)]);
    } else {
        for (int64_t k = 0; k < w->K; k++) dst[k] = vlm_packed_get(w, p, k, j);
    }
    return 0;
}

// MARK: Packing a transposed source (training)

typedef struct {
    vlm_packed_weight *w;
    const float *B;
    int64_t ldb;
} tpack_job;

// Panel pn of W = Bᵀ: column j of the panel is B's column pn * NR + j, so each k reads NR contiguous floats of B's
// row k, and a BF16 k pair writes one 64-element run of the panel (kernels_internal.h's layout).
static void pack_panel_transposed(void *ctx, int64_t pn, int thread) {
    (void)thread;
    const tpack_job *t = ctx;
    const vlm_packed_weight *w = t->w;
    int64_t K = w->K, n0 = pn * VLM_NR;
    int cols = (int)(w->N - n0 < VLM_NR ? w->N - n0 : VLM_NR);
    if (w->dtype == VLM_WEIGHT_F32) {
        float *panel = (float *)w->data + (size_t)pn * (size_t)K * VLM_NR;
        for (int64_t k = 0; k < K; k++) {
            const float *src = t->B + k * t->ldb + n0;
            float *dst = panel + k * VLM_NR;
            for (int j = 0; j < cols; j++) dst[j] = src[j];
            for (int j = cols; j < VLM_NR; j++) dst[j] = 0.0f;
        }
        return;
    }
    uint16_t *panel = (uint16_t *)w->data + (size_t)pn * (size_t)vlm_panel_k(w) * VLM_NR;
    const vlm_lowp_kernels *ks = vlm_active_bf16_kernels();
    for (int64_t k = 0; k < K; k += 2) {
        const float *r0 = t->B + k * t->ldb + n0, *r1 = k + 1 < K ? r0 + t->ldb : NULL;
        uint16_t *dst = panel + (k >> 1) * (2 * VLM_NR);
        if (ks && ks->pack_pair_rows) { ks->pack_pair_rows(r0, r1, cols, dst); continue; }
        for (int j = 0; j < VLM_NR; j++) {
            uint16_t lo = j < cols ? vlm_f32_to_bf16_scalar(r0[j]) : 0, hi = j < cols && r1 ? vlm_f32_to_bf16_scalar(r1[j]) : 0;
            int64_t at = (j >> 4) * 32 + (j & 15) * 2;
            dst[at] = lo;
            dst[at + 1] = hi;
        }
    }
}

int vlm_pack_weight_transposed(vlm_packed_weight *w, const float *B, int64_t ldb) {
    if (!w || !B || ldb < w->N || (w->dtype != VLM_WEIGHT_F32 && w->dtype != VLM_WEIGHT_BF16)) return -1;
    tpack_job t = {.w = w, .B = B, .ldb = ldb};
    if ((double)w->N * (double)w->K < PACK_PARALLEL_MIN) for (int64_t p = 0; p < w->npanels; p++) pack_panel_transposed(&t, p, 0);
    else vlm_parallel_for(w->npanels, pack_panel_transposed, &t);
    return 0;
}
