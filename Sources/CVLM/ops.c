// Dispatching entry points of the row-wise / elementwise ops (GEMMs: gemm_driver.c, attention: attention.c).
// Big inputs are split into row (or element) chunks across the thread pool; small ones run inline.
#include "kernels_internal.h"

// ~64K elements per task keeps the per-task work (~10-50 us) well above the pool's wake-up cost.
#define CHUNK_ELEMS 65536

const vlm_ops_kernels *vlm_active_ops_kernels(void) {
    switch (vlm_active_isa()) {
    case VLM_ISA_AVX512: return &vlm_ops_kernels_avx512;
    case VLM_ISA_AVX2: return &vlm_ops_kernels_avx2;
    default: return NULL;
    }
}

typedef enum { OP_LAYERNORM, OP_RMSNORM, OP_SOFTMAX, OP_L2, OP_ACTIVATE, OP_ACT_BACKWARD, OP_ADD, OP_ADD_BIAS } op_kind;

typedef struct {
    const vlm_ops_kernels *ks;
    op_kind kind;
    const float *x, *b, *gamma, *beta;
    float *y;
    int64_t rows, dim, rows_per_task;
    float eps;
    vlm_activation act;
} op_job;

static void op_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const op_job *j = ctx;
    int64_t r0 = task * j->rows_per_task;
    int64_t r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    const vlm_ops_kernels *ks = j->ks;
    int64_t d = j->dim;
    switch (j->kind) {
    case OP_LAYERNORM: for (int64_t r = r0; r < r1; r++) ks->layernorm_row(j->x + r * d, j->y + r * d, d, j->gamma, j->beta, j->eps); break;
    case OP_RMSNORM: for (int64_t r = r0; r < r1; r++) ks->rmsnorm_row(j->x + r * d, j->y + r * d, d, j->gamma, j->eps); break;
    case OP_SOFTMAX: for (int64_t r = r0; r < r1; r++) ks->softmax_row(j->y + r * d, d); break;
    case OP_L2: for (int64_t r = r0; r < r1; r++) ks->l2_row(j->y + r * d, d); break;
    // Elementwise ops are viewed as rows of `dim` elements (the last row may be short: see run_op).
    case OP_ACTIVATE: ks->activate(j->y + r0 * d, (r1 - r0) * d, j->act); break;
    case OP_ACT_BACKWARD: ks->act_backward(j->x + r0 * d, j->b + r0 * d, j->y + r0 * d, (r1 - r0) * d, j->act); break;
    case OP_ADD: ks->add(j->x + r0 * d, j->b + r0 * d, j->y + r0 * d, (r1 - r0) * d); break;
    case OP_ADD_BIAS: for (int64_t r = r0; r < r1; r++) ks->add(j->y + r * d, j->b, j->y + r * d, d); break;
    }
}

static void run_rows(op_job *j) {
    int64_t per = CHUNK_ELEMS / (j->dim > 0 ? j->dim : 1);
    if (per < 1) per = 1;
    j->rows_per_task = per;
    vlm_parallel_for((j->rows + per - 1) / per, op_task, j);
}

// Elementwise over n: full chunks of CHUNK_ELEMS in parallel, the remainder inline.
static void run_elementwise(op_job *j, int64_t n) {
    j->dim = CHUNK_ELEMS;
    j->rows = n / CHUNK_ELEMS;
    j->rows_per_task = 1;
    vlm_parallel_for(j->rows, op_task, j);
    int64_t done = j->rows * CHUNK_ELEMS;
    if (done < n) {
        if (j->kind == OP_ACTIVATE) j->ks->activate(j->y + done, n - done, j->act);
        else if (j->kind == OP_ACT_BACKWARD) j->ks->act_backward(j->x + done, j->b + done, j->y + done, n - done, j->act);
        else j->ks->add(j->x + done, j->b + done, j->y + done, n - done);
    }
}

void vlm_layernorm(const float *x, float *y, int64_t rows, int64_t dim, const float *gamma, const float *beta, float eps) {
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (!ks || dim <= 0) { vlm_layernorm_naive(x, y, rows, dim, gamma, beta, eps); return; }
    op_job j = {.ks = ks, .kind = OP_LAYERNORM, .x = x, .y = y, .gamma = gamma, .beta = beta, .rows = rows, .dim = dim, .eps = eps};
    run_rows(&j);
}

void vlm_rmsnorm(const float *x, float *y, int64_t rows, int64_t dim, const float *gamma, float eps) {
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (!ks || dim <= 0) { vlm_rmsnorm_naive(x, y, rows, dim, gamma, eps); return; }
    op_job j = {.ks = ks, .kind = OP_RMSNORM, .x = x, .y = y, .gamma = gamma, .rows = rows, .dim = dim, .eps = eps};
    run_rows(&j);
}

void vlm_softmax(float *x, int64_t rows, int64_t cols) {
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (!ks || cols <= 0) { vlm_softmax_naive(x, rows, cols); return; }
    op_job j = {.ks = ks, .kind = OP_SOFTMAX, .y = x, .rows = rows, .dim = cols};
    run_rows(&j);
}

void vlm_activate(float *x, int64_t n, vlm_activation act) {
    if (act == VLM_ACT_NONE || n <= 0) return;
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (!ks) { vlm_activate_naive(x, n, act); return; }
    op_job j = {.ks = ks, .kind = OP_ACTIVATE, .y = x, .act = act};
    run_elementwise(&j, n);
}

void vlm_activation_backward(const float *dy, const float *z, float *dz, int64_t n, vlm_activation act) {
    if (n <= 0) return;
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (!ks) { vlm_activation_backward_naive(dy, z, dz, n, act); return; }
    op_job j = {.ks = ks, .kind = OP_ACT_BACKWARD, .x = dy, .b = z, .y = dz, .act = act};
    run_elementwise(&j, n);
}

void vlm_add(const float *a, const float *b, float *out, int64_t n) {
    if (n <= 0) return;
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (!ks) { vlm_add_naive(a, b, out, n); return; }
    op_job j = {.ks = ks, .kind = OP_ADD, .x = a, .b = b, .y = out};
    run_elementwise(&j, n);
}

void vlm_add_bias(float *x, const float *bias, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (!ks) { vlm_add_bias_naive(x, bias, rows, cols); return; }
    op_job j = {.ks = ks, .kind = OP_ADD_BIAS, .y = x, .b = bias, .rows = rows, .dim = cols};
    run_rows(&j);
}

void vlm_l2_normalize(float *x, int64_t rows, int64_t dim) {
    if (rows <= 0 || dim <= 0) return;
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (!ks) { vlm_l2_normalize_naive(x, rows, dim); return; }
    op_job j = {.ks = ks, .kind = OP_L2, .y = x, .rows = rows, .dim = dim};
    run_rows(&j);
}
