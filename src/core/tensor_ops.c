/* src/core/tensor_ops.c -- element-wise math with broadcasting, reductions,
 * softmax and norms, and matrix products through BLIS.
 *
 * Every operation allocates its result (a new reference in *out) unless it is an
 * in-place `_` variant. Inputs are borrowed and may be arbitrary strided views.
 * Inner loops work on one row (the last dim) with a stride-1 fast path the
 * compiler vectorises; rows are spread over OpenMP threads when the work is
 * large. Not here: views and creation (tensor.c), autograd (the model code has
 * explicit backward kernels). */
#include "tensor_impl.h"

#include <blis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---- */

const char *rlaif_binop_name(rlaif_binop op) {
    static const char *names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};
    return names[op];
}

const char *rlaif_unop_name(rlaif_unop op) {
    static const char *names[] = {"neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu",
                                  "gelu", "gelu", "abs", "square", "rsqrt"};
    return names[op];
}

const char *rlaif_reduce_name(rlaif_reduce op) {
    static const char *names[] = {"sum", "mean", "max", "min", "argmax", "argmin", "logsumexp", "var"};
    return names[op];
}

/* ---- broadcasting ---- */

rlaif_status rlaif_broadcast_shape(const char *op, const rlaif_tensor *a, const rlaif_tensor *b,
                                   int *ndim, int64_t *shape) {
    char sa[64], sb[64];
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int ia = a->ndim - n + i, ib = b->ndim - n + i;
        int64_t x = ia >= 0 ? a->shape[ia] : 1, y = ib >= 0 ? b->shape[ib] : 1;
        if (x != y && x != 1 && y != 1)
            return rlaif_fail(RLAIF_EINVAL, "%s: shapes %s and %s cannot be broadcast", op,
                              SHAPE_STR(sa, a), SHAPE_STR(sb, b));
        shape[i] = x == 1 ? y : x;
    }
    *ndim = n;
    return RLAIF_OK;
}

/* ---- element-wise kernels over one row ---- */

static inline float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2)); }
static inline float gelu_tanh(float x) {
    const float k = 0.7978845608028654f;  /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}
static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* o[i*so] = EXPR(x = a[i*sa], y = b[i*sb]) with unit-stride fast paths. */
#define ROW_LOOP(EXPR)                                                                  \
    do {                                                                                \
        if (so == 1 && sa == 1 && sb == 1) {                                            \
            for (int64_t i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (EXPR); } \
        } else if (so == 1 && sa == 1 && sb == 0) {                                     \
            const float y = b[0];                                                       \
            for (int64_t i = 0; i < n; i++) { float x = a[i]; o[i] = (EXPR); }          \
        } else {                                                                        \
            for (int64_t i = 0; i < n; i++) {                                           \
                float x = a[i * sa], y = b[i * sb];                                     \
                o[i * so] = (EXPR);                                                     \
            }                                                                           \
        }                                                                               \
    } while (0)

static void binary_row(rlaif_binop op, float *o, int64_t so, const float *a, int64_t sa,
                       const float *b, int64_t sb, int64_t n) {
    switch (op) {
    case RLAIF_ADD: ROW_LOOP(x + y); break;
    case RLAIF_SUB: ROW_LOOP(x - y); break;
    case RLAIF_MUL: ROW_LOOP(x * y); break;
    case RLAIF_DIV: ROW_LOOP(x / y); break;
    case RLAIF_POW: ROW_LOOP(powf(x, y)); break;
    case RLAIF_MAXIMUM: ROW_LOOP((x > y || x != x) ? x : y); break;
    case RLAIF_MINIMUM: ROW_LOOP((x < y || x != x) ? x : y); break;
    }
}

static void unary_row(rlaif_unop op, float *o, int64_t so, const float *a, int64_t sa, int64_t n) {
    const float *b = a;  /* unused operand of ROW_LOOP */
    int64_t sb = sa;
    (void)b;
    switch (op) {
    case RLAIF_NEG: ROW_LOOP(((void)y, -x)); break;
    case RLAIF_EXP: ROW_LOOP(((void)y, expf(x))); break;
    case RLAIF_LOG: ROW_LOOP(((void)y, logf(x))); break;
    case RLAIF_SQRT: ROW_LOOP(((void)y, sqrtf(x))); break;
    case RLAIF_TANH: ROW_LOOP(((void)y, tanhf(x))); break;
    case RLAIF_SIGMOID: ROW_LOOP(((void)y, sigmoidf(x))); break;
    case RLAIF_RELU: ROW_LOOP(((void)y, x > 0 ? x : (x != x ? x : 0.0f))); break;
    case RLAIF_GELU: ROW_LOOP(((void)y, gelu_erf(x))); break;
    case RLAIF_GELU_TANH: ROW_LOOP(((void)y, gelu_tanh(x))); break;
    case RLAIF_ABS: ROW_LOOP(((void)y, fabsf(x))); break;
    case RLAIF_SQUARE: ROW_LOOP(((void)y, x * x)); break;
    case RLAIF_RSQRT: ROW_LOOP(((void)y, 1.0f / sqrtf(x))); break;
    }
}

/* Apply a row kernel over the 4-d views o, a, b (b ignored for unary). */
static void for_rows(int unary, int op, view4 o, view4 a, view4 b) {
    int64_t rows = o.shape[0] * o.shape[1] * o.shape[2], n = o.shape[3];
    int threads = rows * n >= RLAIF_PAR_MIN ? rlaif_get_threads() : 1;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t k = r % o.shape[2], j = (r / o.shape[2]) % o.shape[1], i = r / (o.shape[2] * o.shape[1]);
        float *op_ = o.data + i * o.stride[0] + j * o.stride[1] + k * o.stride[2];
        const float *ap = a.data + i * a.stride[0] + j * a.stride[1] + k * a.stride[2];
        const float *bp = b.data + i * b.stride[0] + j * b.stride[1] + k * b.stride[2];
        if (unary) unary_row((rlaif_unop)op, op_, o.stride[3], ap, a.stride[3], n);
        else binary_row((rlaif_binop)op, op_, o.stride[3], ap, a.stride[3], bp, b.stride[3], n);
    }
}

/* Contiguous operands of equal numel: split the flat range into chunks. */
static void for_flat(int unary, int op, float *o, const float *a, const float *b, int64_t sb, int64_t n) {
    int threads = n >= RLAIF_PAR_MIN ? rlaif_get_threads() : 1;
    const int64_t chunk = 8192;
    int64_t chunks = (n + chunk - 1) / chunk;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * chunk, len = n - lo < chunk ? n - lo : chunk;
        if (unary) unary_row((rlaif_unop)op, o + lo, 1, a + lo, 1, len);
        else binary_row((rlaif_binop)op, o + lo, 1, a + lo, 1, sb ? b + lo : b, sb, len);
    }
}

/* out (shape fixed) = a op b, b broadcast to out; out may alias a. */
static void binary_into(rlaif_tensor *out, rlaif_binop op, const rlaif_tensor *a, const rlaif_tensor *b) {
    int64_t n = rlaif_tensor_numel(out);
    if (TENSOR_FLAT(out) && TENSOR_FLAT(a) && rlaif_tensor_numel(a) == n) {
        if (TENSOR_FLAT(b) && rlaif_tensor_numel(b) == n) {
            for_flat(0, op, out->data, a->data, b->data, 1, n);
            return;
        }
        if (rlaif_tensor_numel(b) == 1) {
            for_flat(0, op, out->data, a->data, b->data, 0, n);
            return;
        }
    }
    view4 o = view4_of(out);
    for_rows(0, op, o, view4_broadcast(a, o.shape), view4_broadcast(b, o.shape));
}

rlaif_status rlaif_tensor_binary(rlaif_tensor **out, rlaif_binop op, const rlaif_tensor *a,
                                 const rlaif_tensor *b) {
    int ndim;
    int64_t shape[RLAIF_MAX_DIMS];
    *out = NULL;
    rlaif_status st = rlaif_broadcast_shape(rlaif_binop_name(op), a, b, &ndim, shape);
    if (st != RLAIF_OK || (st = rlaif_tensor_empty(out, ndim, shape)) != RLAIF_OK) return st;
    binary_into(*out, op, a, b);
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_binary_(rlaif_tensor *a, rlaif_binop op, const rlaif_tensor *b) {
    int ndim;
    int64_t shape[RLAIF_MAX_DIMS];
    char sa[64], sb[64], name[32];
    snprintf(name, sizeof name, "%s_", rlaif_binop_name(op));
    rlaif_status st = rlaif_tensor_check_writable(name, a);
    if (st != RLAIF_OK) return st;
    st = rlaif_broadcast_shape(rlaif_binop_name(op), a, b, &ndim, shape);
    if (st != RLAIF_OK) return st;
    if (ndim != a->ndim || memcmp(shape, a->shape, (size_t)ndim * sizeof *shape) != 0)
        return rlaif_fail(RLAIF_EINVAL, "%s_: in-place result of %s and %s would not have shape %s",
                          rlaif_binop_name(op), SHAPE_STR(sa, a), SHAPE_STR(sb, b), SHAPE_STR(sa, a));
    binary_into(a, op, a, b);
    return RLAIF_OK;
}

/* A 0-d tensor on the stack holding one scalar. */
static rlaif_tensor scalar_tensor(float *value) {
    rlaif_tensor s;
    memset(&s, 0, sizeof s);
    s.data = value;
    return s;
}

rlaif_status rlaif_tensor_binary_scalar(rlaif_tensor **out, rlaif_binop op, const rlaif_tensor *a,
                                        float s, int scalar_first) {
    rlaif_tensor st_ = scalar_tensor(&s);
    rlaif_status st = rlaif_tensor_empty(out, a->ndim, a->shape);
    if (st != RLAIF_OK) return st;
    if (!scalar_first) {
        binary_into(*out, op, a, &st_);
    } else {
        view4 o = view4_of(*out);
        for_rows(0, op, o, view4_broadcast(&st_, o.shape), view4_of(a));
    }
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_binary_scalar_(rlaif_tensor *a, rlaif_binop op, float s) {
    char name[32];
    snprintf(name, sizeof name, "%s_", rlaif_binop_name(op));
    rlaif_status st = rlaif_tensor_check_writable(name, a);
    if (st != RLAIF_OK) return st;
    rlaif_tensor st_ = scalar_tensor(&s);
    binary_into(a, op, a, &st_);
    return RLAIF_OK;
}

static void unary_into(rlaif_tensor *out, rlaif_unop op, const rlaif_tensor *a) {
    if (TENSOR_FLAT(out) && TENSOR_FLAT(a)) {
        for_flat(1, op, out->data, a->data, a->data, 1, rlaif_tensor_numel(a));
        return;
    }
    view4 o = view4_of(out);
    for_rows(1, op, o, view4_of(a), view4_of(a));
}

rlaif_status rlaif_tensor_unary(rlaif_tensor **out, rlaif_unop op, const rlaif_tensor *a) {
    rlaif_status st = rlaif_tensor_empty(out, a->ndim, a->shape);
    if (st != RLAIF_OK) return st;
    unary_into(*out, op, a);
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_unary_(rlaif_tensor *a, rlaif_unop op) {
    char name[32];
    snprintf(name, sizeof name, "%s_", rlaif_unop_name(op));
    rlaif_status st = rlaif_tensor_check_writable(name, a);
    if (st != RLAIF_OK) return st;
    unary_into(a, op, a);
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_clamp(rlaif_tensor **out, const rlaif_tensor *a, float lo, float hi) {
    if (!isnan(lo) && !isnan(hi) && lo > hi)
        return rlaif_fail(RLAIF_EINVAL, "clamp: min %g is greater than max %g", lo, hi);
    rlaif_tensor *t = NULL;
    rlaif_status st = rlaif_tensor_clone(&t, a);
    if (st != RLAIF_OK) return st;
    if (!isnan(lo)) rlaif_tensor_binary_scalar_(t, RLAIF_MAXIMUM, lo);
    if (!isnan(hi)) rlaif_tensor_binary_scalar_(t, RLAIF_MINIMUM, hi);
    *out = t;
    return RLAIF_OK;
}

/* ---- reductions ---- */

/* Reduce one strided row of n elements. *idx gets the 0-based arg index. */
static double reduce_row(rlaif_reduce op, const float *p, int64_t n, int64_t s, int correction,
                         int64_t *idx) {
    double acc = 0;
    switch (op) {
    case RLAIF_SUM:
    case RLAIF_MEAN:
        for (int64_t i = 0; i < n; i++) acc += p[i * s];
        return op == RLAIF_SUM ? acc : acc / (double)n;
    case RLAIF_MAX: case RLAIF_ARGMAX:
    case RLAIF_MIN: case RLAIF_ARGMIN: {
        int want_max = op == RLAIF_MAX || op == RLAIF_ARGMAX;
        float best = p[0];
        int64_t at = 0;
        for (int64_t i = 1; i < n && best == best; i++) {
            float x = p[i * s];
            if (x != x || (want_max ? x > best : x < best)) best = x, at = i;
        }
        *idx = at;
        return (op == RLAIF_ARGMAX || op == RLAIF_ARGMIN) ? (double)at : (double)best;
    }
    case RLAIF_LOGSUMEXP: {
        float m = -INFINITY;
        for (int64_t i = 0; i < n; i++) if (p[i * s] > m || p[i * s] != p[i * s]) m = p[i * s];
        if (m != m) return m;
        if (isinf(m)) return m;  /* all -inf, or +inf present */
        for (int64_t i = 0; i < n; i++) acc += exp((double)p[i * s] - m);
        return (double)m + log(acc);
    }
    case RLAIF_VAR: {
        double mean = 0, ss = 0;
        for (int64_t i = 0; i < n; i++) mean += p[i * s];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++) ss += (p[i * s] - mean) * (p[i * s] - mean);
        return n - correction > 0 ? ss / (double)(n - correction) : NAN;
    }
    }
    return 0;
}

/* A descriptor of t with `dim` moved to the last position (no copy). */
static rlaif_tensor dim_last(const rlaif_tensor *t, int dim) {
    rlaif_tensor v = *t;
    int j = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == dim) continue;
        v.shape[j] = t->shape[i];
        v.stride[j] = t->stride[i];
        j++;
    }
    v.shape[j] = t->shape[dim];
    v.stride[j] = t->stride[dim];
    return v;
}

rlaif_status rlaif_tensor_reduce(rlaif_tensor **out, rlaif_reduce op, const rlaif_tensor *a, int dim,
                                 int keepdim, int correction) {
    const char *name = rlaif_reduce_name(op);
    char sa[64];
    *out = NULL;
    if (dim < 0) {  /* over every element */
        int64_t n = rlaif_tensor_numel(a);
        int needs_one = op == RLAIF_MAX || op == RLAIF_MIN || op == RLAIF_ARGMAX || op == RLAIF_ARGMIN;
        if (n == 0 && needs_one)
            return rlaif_fail(RLAIF_EINVAL, "%s: cannot reduce an empty tensor %s", name, SHAPE_STR(sa, a));
        rlaif_tensor *c = NULL;
        rlaif_status st = rlaif_tensor_contiguous(&c, (rlaif_tensor *)a);
        if (st != RLAIF_OK) return st;
        int64_t idx = 0;
        double v = n == 0 ? (op == RLAIF_LOGSUMEXP ? -INFINITY : op == RLAIF_SUM ? 0 : NAN)
                          : reduce_row(op, c->data, n, 1, correction, &idx);
        rlaif_tensor_release(c);
        if ((st = rlaif_tensor_empty(out, 0, NULL)) != RLAIF_OK) return st;
        (*out)->data[0] = (float)v;
        return RLAIF_OK;
    }
    if (dim >= a->ndim)
        return rlaif_fail(RLAIF_EINVAL, "%s: dim %d out of range for a %d-d tensor", name, dim + 1, a->ndim);
    int64_t n = a->shape[dim];
    if (n == 0 && (op == RLAIF_MAX || op == RLAIF_MIN || op == RLAIF_ARGMAX || op == RLAIF_ARGMIN))
        return rlaif_fail(RLAIF_EINVAL, "%s: cannot reduce dim %d of size 0", name, dim + 1);
    int64_t shape[RLAIF_MAX_DIMS];
    int ndim = 0;
    for (int i = 0; i < a->ndim; i++) {
        if (i != dim) shape[ndim++] = a->shape[i];
        else if (keepdim) shape[ndim++] = 1;
    }
    rlaif_status st = rlaif_tensor_empty(out, ndim, shape);
    if (st != RLAIF_OK) return st;
    rlaif_tensor moved = dim_last(a, dim);
    moved.ndim = a->ndim;
    view4 v = view4_of(&moved);
    int64_t rows = v.shape[0] * v.shape[1] * v.shape[2];
    float *o = (*out)->data;
    int threads = rows * n >= RLAIF_PAR_MIN ? rlaif_get_threads() : 1;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t k = r % v.shape[2], j = (r / v.shape[2]) % v.shape[1], i = r / (v.shape[2] * v.shape[1]);
        const float *p = v.data + i * v.stride[0] + j * v.stride[1] + k * v.stride[2];
        int64_t idx = 0;
        o[r] = n == 0 ? (op == RLAIF_LOGSUMEXP ? -INFINITY : op == RLAIF_SUM ? 0.0f : NAN)
                      : (float)reduce_row(op, p, n, v.stride[3], correction, &idx);
    }
    return RLAIF_OK;
}

/* ---- softmax and norms ---- */

rlaif_status rlaif_tensor_softmax(rlaif_tensor **out, const rlaif_tensor *a, int dim, int log_) {
    int d;
    rlaif_status st = rlaif_tensor_dim(log_ ? "log_softmax" : "softmax", a->ndim, dim, &d);
    *out = NULL;
    if (st != RLAIF_OK) return st;
    if ((st = rlaif_tensor_empty(out, a->ndim, a->shape)) != RLAIF_OK) return st;
    rlaif_tensor in_m = dim_last(a, d), out_m = dim_last(*out, d);
    view4 vi = view4_of(&in_m), vo = view4_of(&out_m);
    int64_t rows = vi.shape[0] * vi.shape[1] * vi.shape[2], n = vi.shape[3];
    int threads = rows * n >= RLAIF_PAR_MIN ? rlaif_get_threads() : 1;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t k = r % vi.shape[2], j = (r / vi.shape[2]) % vi.shape[1], i = r / (vi.shape[2] * vi.shape[1]);
        const float *p = vi.data + i * vi.stride[0] + j * vi.stride[1] + k * vi.stride[2];
        float *q = vo.data + i * vo.stride[0] + j * vo.stride[1] + k * vo.stride[2];
        int64_t si = vi.stride[3], so = vo.stride[3];
        float m = -INFINITY;
        for (int64_t x = 0; x < n; x++) if (p[x * si] > m) m = p[x * si];
        if (isinf(m) && m < 0) m = 0;  /* an all -inf row gives NaN like PyTorch */
        double sum = 0;
        for (int64_t x = 0; x < n; x++) sum += expf(p[x * si] - m);
        if (log_) {  /* (x - m) - log(sum): rounding log(sum) near 0, not m + log(sum) near m */
            float log_sum = (float)log(sum);
            for (int64_t x = 0; x < n; x++) q[x * so] = (p[x * si] - m) - log_sum;
        } else {
            float inv = (float)(1.0 / sum);
            for (int64_t x = 0; x < n; x++) q[x * so] = expf(p[x * si] - m) * inv;
        }
    }
    return RLAIF_OK;
}

static rlaif_status check_norm_param(const char *op, const char *what, const rlaif_tensor *x,
                                     const rlaif_tensor *p) {
    char sx[64], sp[64];
    if (p == NULL) return RLAIF_OK;
    if (x->ndim == 0)
        return rlaif_fail(RLAIF_EINVAL, "%s: input must have at least 1 dim", op);
    if (p->ndim != 1 || p->shape[0] != x->shape[x->ndim - 1])
        return rlaif_fail(RLAIF_EINVAL, "%s: %s of shape %s does not match the last dim of input %s",
                          op, what, SHAPE_STR(sp, p), SHAPE_STR(sx, x));
    return RLAIF_OK;
}

/* Shared body: rms = 1 selects RMSNorm. */
static rlaif_status norm(rlaif_tensor **out, const char *op, const rlaif_tensor *x,
                         const rlaif_tensor *w, const rlaif_tensor *b, float eps, int rms) {
    rlaif_status st;
    *out = NULL;
    if (x->ndim == 0) return rlaif_fail(RLAIF_EINVAL, "%s: input must have at least 1 dim", op);
    if ((st = check_norm_param(op, "weight", x, w)) != RLAIF_OK) return st;
    if ((st = check_norm_param(op, "bias", x, b)) != RLAIF_OK) return st;
    rlaif_tensor *xc = NULL, *wc = NULL, *bc = NULL;
    if ((st = rlaif_tensor_contiguous(&xc, (rlaif_tensor *)x)) != RLAIF_OK) goto done;
    if (w && (st = rlaif_tensor_contiguous(&wc, (rlaif_tensor *)w)) != RLAIF_OK) goto done;
    if (b && (st = rlaif_tensor_contiguous(&bc, (rlaif_tensor *)b)) != RLAIF_OK) goto done;
    if ((st = rlaif_tensor_empty(out, x->ndim, x->shape)) != RLAIF_OK) goto done;
    int64_t C = x->shape[x->ndim - 1], rows = C ? rlaif_tensor_numel(x) / C : 0;
    const float *xp = xc->data, *wp = wc ? wc->data : NULL, *bp = bc ? bc->data : NULL;
    float *yp = (*out)->data;
    int threads = rows * C >= RLAIF_PAR_MIN ? rlaif_get_threads() : 1;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = xp + r * C;
        float *yr = yp + r * C;
        double mean = 0, var = 0;
        if (!rms) {
            for (int64_t i = 0; i < C; i++) mean += xr[i];
            mean /= (double)C;
        }
        for (int64_t i = 0; i < C; i++) var += (xr[i] - mean) * (xr[i] - mean);
        var /= (double)C;
        float rstd = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
        for (int64_t i = 0; i < C; i++) {
            float y = (xr[i] - m) * rstd;
            if (wp) y *= wp[i];
            if (bp) y += bp[i];
            yr[i] = y;
        }
    }
done:
    rlaif_tensor_release(xc);
    rlaif_tensor_release(wc);
    rlaif_tensor_release(bc);
    return st;
}

rlaif_status rlaif_tensor_layer_norm(rlaif_tensor **out, const rlaif_tensor *x, const rlaif_tensor *weight,
                                     const rlaif_tensor *bias, float eps) {
    return norm(out, "layer_norm", x, weight, bias, eps, 0);
}

rlaif_status rlaif_tensor_rms_norm(rlaif_tensor **out, const rlaif_tensor *x, const rlaif_tensor *weight,
                                   float eps) {
    return norm(out, "rms_norm", x, weight, NULL, eps, 1);
}

/* ---- matmul ---- */

/* Strides BLIS accepts for an m x n operand: a size-1 dim gets a stride that
 * keeps the layout non-overlapping. Returns 0 when a broadcast (0) stride
 * forbids handing the memory to BLIS as it is. */
static int blis_strides(int64_t m, int64_t n, int64_t *rs, int64_t *cs) {
    if (m == 1) *rs = n * (*cs ? llabs(*cs) : 1);
    if (n == 1) *cs = 1;
    if (m == 1 && n == 1) *rs = 1, *cs = 1;
    if ((m > 1 && *rs == 0) || (n > 1 && *cs == 0)) return 0;
    return 1;
}

rlaif_status rlaif_tensor_matmul(rlaif_tensor **out, const rlaif_tensor *a_in, const rlaif_tensor *b_in) {
    char sa[64], sb[64], so[64];
    rlaif_tensor a = *a_in, b = *b_in, *ac = NULL, *bc = NULL, *res = NULL;
    rlaif_status st = RLAIF_OK;
    rlaif_init();
    if (a.ndim == 0 || b.ndim == 0)
        return rlaif_fail(RLAIF_EINVAL, "matmul: shapes %s and %s: 0-d tensors cannot be multiplied",
                          SHAPE_STR(sa, a_in), SHAPE_STR(sb, b_in));
    /* Vectors act as a row (left) or a column (right); that dim is dropped after. */
    int vec_a = a.ndim == 1, vec_b = b.ndim == 1;
    if (vec_a) a.ndim = 2, a.shape[1] = a.shape[0], a.stride[1] = a.stride[0], a.shape[0] = 1, a.stride[0] = 0;
    if (vec_b) b.ndim = 2, b.shape[1] = 1, b.stride[1] = 0;
    int64_t n = a.shape[a.ndim - 2], k = a.shape[a.ndim - 1];
    int64_t k2 = b.shape[b.ndim - 2], m = b.shape[b.ndim - 1];
    if (k != k2)
        return rlaif_fail(RLAIF_EINVAL, "matmul: shapes %s and %s are incompatible (inner dims %lld "
                          "and %lld)", SHAPE_STR(sa, a_in), SHAPE_STR(sb, b_in), (long long)k, (long long)k2);
    /* Broadcast the batch dims (all but the last two). */
    rlaif_tensor abatch = a, bbatch = b;
    abatch.ndim -= 2, bbatch.ndim -= 2;
    int bdim;
    int64_t bshape[RLAIF_MAX_DIMS];
    if ((st = rlaif_broadcast_shape("matmul", &abatch, &bbatch, &bdim, bshape)) != RLAIF_OK)
        return rlaif_fail(st, "matmul: batch dims of %s and %s cannot be broadcast", SHAPE_STR(sa, a_in),
                          SHAPE_STR(sb, b_in));
    if (bdim > 2)
        return rlaif_fail(RLAIF_EINVAL, "matmul: shapes %s and %s: at most 2 batch dims", SHAPE_STR(sa, a_in),
                          SHAPE_STR(sb, b_in));
    int64_t oshape[RLAIF_MAX_DIMS];
    int ondim = 0;
    for (int i = 0; i < bdim; i++) oshape[ondim++] = bshape[i];
    if (!vec_a) oshape[ondim++] = n;
    if (!vec_b) oshape[ondim++] = m;
    if (*out != NULL) {
        res = *out;
        if ((st = rlaif_tensor_check_writable("matmul", res)) != RLAIF_OK) return st;
        if (res->ndim != ondim || memcmp(res->shape, oshape, (size_t)ondim * sizeof *oshape) != 0)
            return rlaif_fail(RLAIF_EINVAL, "matmul: out has shape %s, the product has shape %s",
                              SHAPE_STR(so, res), rlaif_shape_str(sa, sizeof sa, ondim, oshape));
    } else if ((st = rlaif_tensor_empty(&res, ondim, oshape)) != RLAIF_OK) {
        return st;
    }
    if (n == 0 || m == 0 || k == 0) {   /* nothing to multiply: an empty sum is 0 (and BLIS */
        rlaif_tensor_fill(res, 0.0f);     /* takes no stride-0 [n, 0] operand, so no copy helps) */
        *out = res;
        return RLAIF_OK;
    }
    /* 4-d batch views of operands and result (result viewed as [.., n, m]). */
    int64_t b4[2] = {1, 1};
    for (int i = 0; i < bdim; i++) b4[2 - bdim + i] = bshape[i];
    int64_t as[2] = {0, 0}, bs[2] = {0, 0}, os[2] = {0, 0};
    for (int i = 0; i < abatch.ndim; i++)
        as[2 - abatch.ndim + i] = abatch.shape[i] == 1 ? 0 : abatch.stride[i];
    for (int i = 0; i < bbatch.ndim; i++)
        bs[2 - bbatch.ndim + i] = bbatch.shape[i] == 1 ? 0 : bbatch.stride[i];
    for (int i = 0; i < bdim; i++) os[2 - bdim + i] = res->stride[i];
    int64_t ars = a.stride[a.ndim - 2], acs = a.stride[a.ndim - 1];
    int64_t brs = b.stride[b.ndim - 2], bcs = b.stride[b.ndim - 1];
    int64_t ors = vec_a ? 0 : res->stride[bdim], ocs = vec_b ? 1 : res->stride[res->ndim - 1];
    int ok_a = blis_strides(n, k, &ars, &acs), ok_b = blis_strides(k, m, &brs, &bcs);
    blis_strides(n, m, &ors, &ocs);
    if (!ok_a || !ok_b) {  /* expanded (stride-0) operands: copy them once */
        if (!ok_a && (st = rlaif_tensor_clone(&ac, a_in)) != RLAIF_OK) goto fail;
        if (!ok_b && (st = rlaif_tensor_clone(&bc, b_in)) != RLAIF_OK) goto fail;
        rlaif_tensor *into = res;  /* non-NULL: the recursion writes into res */
        st = rlaif_tensor_matmul(&into, ac ? ac : a_in, bc ? bc : b_in);
        if (st != RLAIF_OK) goto fail;
        rlaif_tensor_release(ac);
        rlaif_tensor_release(bc);
        *out = res;
        return RLAIF_OK;
    }
    if (n > 0 && m > 0) {
        float one = 1.0f, zero = 0.0f;
        for (int64_t i = 0; i < b4[0]; i++)
            for (int64_t j = 0; j < b4[1]; j++) {
                if (rlaif_cancelled()) {
                    st = rlaif_fail(RLAIF_EINTR, "matmul: interrupted");
                    goto fail;
                }
                float *ap = a.data + i * as[0] + j * as[1];
                float *bp = b.data + i * bs[0] + j * bs[1];
                float *op_ = res->data + i * os[0] + j * os[1];
                bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)n, (dim_t)m, (dim_t)k, &one,
                          ap, (inc_t)ars, (inc_t)acs, bp, (inc_t)brs, (inc_t)bcs, &zero,
                          op_, (inc_t)ors, (inc_t)ocs);
            }
    }
    *out = res;
    return RLAIF_OK;
fail:
    rlaif_tensor_release(ac);
    rlaif_tensor_release(bc);
    if (res != *out) rlaif_tensor_release(res);
    return st;
}

rlaif_status rlaif_blis_sgemm_direct(rlaif_tensor *c, const rlaif_tensor *a, const rlaif_tensor *b) {
    rlaif_init();
    if (a->ndim != 2 || b->ndim != 2 || c->ndim != 2 || !TENSOR_FLAT(a) || !TENSOR_FLAT(b) || !TENSOR_FLAT(c) ||
        a->shape[1] != b->shape[0] || c->shape[0] != a->shape[0] || c->shape[1] != b->shape[1])
        return rlaif_fail(RLAIF_EINVAL, "blis_sgemm: needs contiguous 2-d a [n,k], b [k,m], c [n,m]");
    float one = 1.0f, zero = 0.0f;
    int64_t n = a->shape[0], k = a->shape[1], m = b->shape[1];
    bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)n, (dim_t)m, (dim_t)k, &one, a->data, (inc_t)k, 1,
              b->data, (inc_t)m, 1, &zero, c->data, (inc_t)m, 1);
    return RLAIF_OK;
}
