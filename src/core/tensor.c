/* src/core/tensor.c -- tensor lifetime, creation, random numbers and views.
 *
 * Ownership: a tensor descriptor is refcounted (rlaif_tensor_retain/release) and
 * holds one reference to its storage; views get their own descriptor and share
 * the storage. Element-wise math, reductions and matmul live in tensor_ops.c;
 * safetensors I/O in safetensors.c. */
#include "tensor_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shapes ---- */

char *rlaif_shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, len - n, "[");
    for (int i = 0; i < ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, i ? ",%" PRId64 : "%" PRId64, shape[i]);
    if (n < len) snprintf(buf + n, len - n, "]");
    return buf;
}

/* i + 1 (a 0-based position shown 1-based) in buf, without overflowing at INT64_MAX. */
static const char *pos1(char *buf, size_t len, int64_t i) {
    if (i >= -1) snprintf(buf, len, "%" PRIu64, (uint64_t)i + 1);
    else snprintf(buf, len, "%" PRId64, i + 1);
    return buf;
}

rlaif_status rlaif_tensor_dim(const char *op, int ndim, int64_t dim, int *out) {
    char p[32];
    int64_t d = dim < 0 ? dim + ndim : dim;
    if (d < 0 || d >= ndim) {   /* shown 1-based, negative dims as given */
        if (dim < 0) snprintf(p, sizeof p, "%" PRId64, dim);
        return rlaif_fail(RLAIF_EINVAL, "%s: dim %s out of range for a %d-d tensor", op,
                          dim < 0 ? p : pos1(p, sizeof p, dim), ndim);
    }
    *out = (int)d;
    return RLAIF_OK;
}

/* Validate a shape and compute numel without overflow. */
static rlaif_status check_shape(const char *op, int ndim, const int64_t *shape, int64_t *numel) {
    char buf[96];
    if (ndim < 0 || ndim > RLAIF_MAX_DIMS)
        return rlaif_fail(RLAIF_EINVAL, "%s: %d dims given, at most %d supported", op, ndim,
                          RLAIF_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return rlaif_fail(RLAIF_EINVAL, "%s: size %" PRId64 " of dim %d is negative", op,
                              shape[i], i + 1);
        if (shape[i] > 0 && n > (INT64_MAX / 8) / shape[i])
            return rlaif_fail(RLAIF_ENOMEM, "%s: shape %s is too large (more than 2^60 elements)", op,
                              rlaif_shape_str(buf, sizeof buf, ndim, shape));
        n *= shape[i];
    }
    *numel = n;
    return RLAIF_OK;
}

static void set_contiguous_strides(rlaif_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = s;
        s *= t->shape[i];
    }
}

int64_t rlaif_tensor_numel(const rlaif_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t rlaif_tensor_nbytes(const rlaif_tensor *t) {
    return (size_t)rlaif_tensor_numel(t) * sizeof(float);
}

int rlaif_tensor_is_contiguous(const rlaif_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

int rlaif_tensor_overlaps(const rlaif_tensor *t) {
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] > 1 && t->stride[i] == 0) return 1;
    return 0;
}

rlaif_status rlaif_tensor_check_writable(const char *op, const rlaif_tensor *t) {
    char a[64];
    if (!rlaif_tensor_overlaps(t)) return RLAIF_OK;
    return rlaif_fail(RLAIF_EINVAL, "%s: cannot write into an expanded view of shape %s (its elements share "
                      "memory); clone() it first", op, SHAPE_STR(a, t));
}

float rlaif_tensor_get(const rlaif_tensor *t, const int64_t *index) {
    const float *p = t->data;
    for (int i = 0; i < t->ndim; i++) p += index[i] * t->stride[i];
    return *p;
}

/* ---- lifetime ---- */

static rlaif_tensor *descriptor_new(rlaif_storage *s, float *data, int ndim, const int64_t *shape) {
    rlaif_tensor *t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    set_contiguous_strides(t);
    t->data = data;
    t->storage = s;
    t->refcount = 1;
    s->refcount++;
    return t;
}

static rlaif_status alloc_tensor(const char *op, rlaif_tensor **out, int ndim, const int64_t *shape,
                                 int zero) {
    int64_t numel;
    *out = NULL;
    rlaif_status st = check_shape(op, ndim, shape, &numel);
    if (st != RLAIF_OK) return st;
    size_t bytes = ((size_t)(numel ? numel : 1) * sizeof(float) + 63) & ~(size_t)63;
    rlaif_meter *meter;   /* an embedding scope's memory limit, if any (scope.c) */
    if ((st = rlaif_mem_charge(bytes, op, &meter)) != RLAIF_OK) return st;
    rlaif_storage *s = calloc(1, sizeof *s);
    float *data = s ? aligned_alloc(64, bytes) : NULL;
    rlaif_tensor *t = data ? descriptor_new(s, data, ndim, shape) : NULL;
    if (t == NULL) {
        free(data);
        free(s);
        rlaif_mem_uncharge(meter, bytes);
        return rlaif_fail(RLAIF_ENOMEM, "%s: cannot allocate %.3g MB", op, (double)bytes / 1e6);
    }
    s->meter = meter;
    s->charged = bytes;
    if (zero) memset(data, 0, bytes);
    s->data = data;
    s->numel = (size_t)numel;
    s->free_data = 1;
    *out = t;
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_new(rlaif_tensor **out, int ndim, const int64_t *shape) {
    return alloc_tensor("tensor", out, ndim, shape, 1);
}

rlaif_status rlaif_tensor_empty(rlaif_tensor **out, int ndim, const int64_t *shape) {
    return alloc_tensor("tensor", out, ndim, shape, 0);
}

rlaif_status rlaif_tensor_wrap(rlaif_tensor **out, float *data, int ndim, const int64_t *shape,
                               const int64_t *stride) {
    int64_t numel;
    *out = NULL;
    rlaif_status st = check_shape("tensor.wrap", ndim, shape, &numel);
    if (st != RLAIF_OK) return st;
    rlaif_storage *s = calloc(1, sizeof *s);
    rlaif_tensor *t = s ? descriptor_new(s, data, ndim, shape) : NULL;
    if (t == NULL) {
        free(s);
        return rlaif_fail(RLAIF_ENOMEM, "tensor.wrap: out of memory");
    }
    if (stride) memcpy(t->stride, stride, (size_t)ndim * sizeof *stride);
    s->data = data;
    s->numel = (size_t)numel;
    *out = t;
    return RLAIF_OK;
}

void rlaif_tensor_retain(rlaif_tensor *t) {
    if (t) t->refcount++;
}

void rlaif_tensor_release(rlaif_tensor *t) {
    if (t == NULL || --t->refcount > 0) return;
    rlaif_storage *s = t->storage;
    if (--s->refcount == 0) {
        if (s->free_data) free(s->data);
        rlaif_mem_uncharge(s->meter, s->charged);
        free(s);
    }
    free(t);
}

/* A new descriptor over t's storage; shape/stride/data set by the caller. */
static rlaif_status view_of(rlaif_tensor **out, rlaif_tensor *t) {
    rlaif_tensor *v = calloc(1, sizeof *v);
    if (v == NULL) return rlaif_fail(RLAIF_ENOMEM, "tensor view: out of memory");
    *v = *t;
    v->refcount = 1;
    v->storage->refcount++;
    *out = v;
    return RLAIF_OK;
}

/* ---- creation ---- */

rlaif_status rlaif_tensor_fill(rlaif_tensor *t, float value) {
    rlaif_status st = rlaif_tensor_check_writable("fill_", t);
    if (st != RLAIF_OK) return st;
    view4 v = view4_of(t);
    for (int64_t i = 0; i < v.shape[0]; i++)
        for (int64_t j = 0; j < v.shape[1]; j++)
            for (int64_t k = 0; k < v.shape[2]; k++) {
                float *p = v.data + i * v.stride[0] + j * v.stride[1] + k * v.stride[2];
                for (int64_t l = 0; l < v.shape[3]; l++) p[l * v.stride[3]] = value;
            }
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_arange(rlaif_tensor **out, double start, double stop, double step) {
    *out = NULL;
    if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step))
        return rlaif_fail(RLAIF_EINVAL, "arange: need finite start/stop and a non-zero step");
    double count = ceil((stop - start) / step);
    if (count < 0) count = 0;
    if (count > 1e12) return rlaif_fail(RLAIF_ENOMEM, "arange: %.0f elements is too many", count);
    int64_t n = (int64_t)count;
    rlaif_status st = rlaif_tensor_empty(out, 1, &n);
    if (st != RLAIF_OK) return st;
    for (int64_t i = 0; i < n; i++) (*out)->data[i] = (float)(start + (double)i * step);
    return RLAIF_OK;
}

/* xoshiro256** by Blackman and Vigna; seeded through splitmix64. */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rlaif_rng_seed(rlaif_rng *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rlaif_rng_next(rlaif_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float rlaif_rng_uniform(rlaif_rng *rng) {
    return (float)(rlaif_rng_next(rng) >> 40) * 0x1.0p-24f;  /* 24 random bits */
}

/* Visit every element of t in row-major order. */
#define FOR_EACH_ELEMENT(t, p, body)                                                      \
    do {                                                                                  \
        view4 v_ = view4_of(t);                                                           \
        for (int64_t i_ = 0; i_ < v_.shape[0]; i_++)                                      \
            for (int64_t j_ = 0; j_ < v_.shape[1]; j_++)                                  \
                for (int64_t k_ = 0; k_ < v_.shape[2]; k_++)                              \
                    for (int64_t l_ = 0; l_ < v_.shape[3]; l_++) {                        \
                        float *p = v_.data + i_ * v_.stride[0] + j_ * v_.stride[1] +      \
                                   k_ * v_.stride[2] + l_ * v_.stride[3];                 \
                        body;                                                             \
                    }                                                                     \
    } while (0)

rlaif_status rlaif_tensor_rand(rlaif_tensor *t, rlaif_rng *rng) {
    FOR_EACH_ELEMENT(t, p, *p = rlaif_rng_uniform(rng));
    return RLAIF_OK;
}

/* Box-Muller, both outputs used in order, so a seed gives the same stream
 * whatever the shape. */
rlaif_status rlaif_tensor_randn(rlaif_tensor *t, rlaif_rng *rng) {
    int have = 0;
    float spare = 0;
    FOR_EACH_ELEMENT(t, p, {
        if (have) {
            *p = spare;
            have = 0;
        } else {
            double u1 = ((double)(rlaif_rng_next(rng) >> 11) + 1.0) * 0x1.0p-53;  /* (0,1] */
            double u2 = (double)(rlaif_rng_next(rng) >> 11) * 0x1.0p-53;
            double r = sqrt(-2.0 * log(u1));
            *p = (float)(r * cos(2 * M_PI * u2));
            spare = (float)(r * sin(2 * M_PI * u2));
            have = 1;
        }
    });
    return RLAIF_OK;
}

/* ---- views ---- */

/* Resolve one -1 and check the element count. */
static rlaif_status infer_shape(const char *op, const rlaif_tensor *t, int ndim, const int64_t *shape,
                                int64_t *resolved) {
    char a[64], b[64];
    if (ndim < 0 || ndim > RLAIF_MAX_DIMS)
        return rlaif_fail(RLAIF_EINVAL, "%s: %d dims given, at most %d supported", op, ndim,
                          RLAIF_MAX_DIMS);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        resolved[i] = shape[i];
        if (shape[i] == -1 && infer < 0) {
            infer = i;
        } else if (shape[i] < 0) {
            return rlaif_fail(RLAIF_EINVAL, "%s: invalid size %" PRId64 " in %s", op, shape[i],
                              rlaif_shape_str(a, sizeof a, ndim, shape));
        } else {
            if (shape[i] > 0 && known > INT64_MAX / 8 / shape[i])
                return rlaif_fail(RLAIF_EINVAL, "%s: shape is too large", op);
            known *= shape[i];
        }
    }
    int64_t numel = rlaif_tensor_numel(t);
    if (infer >= 0) {
        if (known == 0 || numel % known != 0)
            return rlaif_fail(RLAIF_EINVAL, "%s: cannot infer -1 in %s for %" PRId64 " elements", op,
                              rlaif_shape_str(a, sizeof a, ndim, shape), numel);
        resolved[infer] = numel / known;
        known = numel;
    }
    if (known != numel)
        return rlaif_fail(RLAIF_EINVAL, "%s: shape %s is invalid for a tensor of shape %s (%" PRId64
                          " elements)", op, rlaif_shape_str(a, sizeof a, ndim, shape),
                          SHAPE_STR(b, t), numel);
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_view(rlaif_tensor **out, rlaif_tensor *t, int ndim, const int64_t *shape) {
    int64_t resolved[RLAIF_MAX_DIMS];
    char a[64];
    *out = NULL;
    rlaif_status st = infer_shape("view", t, ndim, shape, resolved);
    if (st != RLAIF_OK) return st;
    if (!rlaif_tensor_is_contiguous(t))
        return rlaif_fail(RLAIF_EINVAL, "view: tensor of shape %s is not contiguous; use reshape "
                          "or contiguous() first", SHAPE_STR(a, t));
    if ((st = view_of(out, t)) != RLAIF_OK) return st;
    (*out)->ndim = ndim;
    memcpy((*out)->shape, resolved, (size_t)ndim * sizeof *resolved);
    set_contiguous_strides(*out);
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_reshape(rlaif_tensor **out, rlaif_tensor *t, int ndim, const int64_t *shape) {
    int64_t resolved[RLAIF_MAX_DIMS];
    *out = NULL;
    rlaif_status st = infer_shape("reshape", t, ndim, shape, resolved);
    if (st != RLAIF_OK) return st;
    if (rlaif_tensor_is_contiguous(t)) return rlaif_tensor_view(out, t, ndim, resolved);
    rlaif_tensor *c = NULL;
    if ((st = rlaif_tensor_clone(&c, t)) != RLAIF_OK) return st;
    st = rlaif_tensor_view(out, c, ndim, resolved);
    rlaif_tensor_release(c);
    return st;
}

rlaif_status rlaif_tensor_transpose(rlaif_tensor **out, rlaif_tensor *t, int d0, int d1) {
    *out = NULL;
    rlaif_status st;
    if ((st = rlaif_tensor_dim("transpose", t->ndim, d0, &d0)) != RLAIF_OK) return st;
    if ((st = rlaif_tensor_dim("transpose", t->ndim, d1, &d1)) != RLAIF_OK) return st;
    if ((st = view_of(out, t)) != RLAIF_OK) return st;
    rlaif_tensor *v = *out;
    int64_t s = v->shape[d0], r = v->stride[d0];
    v->shape[d0] = v->shape[d1], v->stride[d0] = v->stride[d1];
    v->shape[d1] = s, v->stride[d1] = r;
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_permute(rlaif_tensor **out, rlaif_tensor *t, const int *perm) {
    int seen[RLAIF_MAX_DIMS] = {0};
    *out = NULL;
    for (int i = 0; i < t->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= t->ndim || seen[perm[i]]++)
            return rlaif_fail(RLAIF_EINVAL, "permute: the dims must be a permutation of 1..%d",
                              t->ndim);
    }
    rlaif_status st = view_of(out, t);
    if (st != RLAIF_OK) return st;
    for (int i = 0; i < t->ndim; i++) {
        (*out)->shape[i] = t->shape[perm[i]];
        (*out)->stride[i] = t->stride[perm[i]];
    }
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_narrow(rlaif_tensor **out, rlaif_tensor *t, int dim, int64_t start,
                                 int64_t length) {
    char p[32];
    *out = NULL;
    rlaif_status st = rlaif_tensor_dim("narrow", t->ndim, dim, &dim);
    if (st != RLAIF_OK) return st;
    if (start < 0 || length < 0 || start > t->shape[dim] || length > t->shape[dim] - start)
        return rlaif_fail(RLAIF_EINVAL, "narrow: %" PRId64 " elements from element %s are outside dim %d of size "
                          "%" PRId64, length, pos1(p, sizeof p, start), dim + 1, t->shape[dim]);
    if ((st = view_of(out, t)) != RLAIF_OK) return st;
    (*out)->shape[dim] = length;
    if (length > 0) (*out)->data += start * t->stride[dim];
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_select(rlaif_tensor **out, rlaif_tensor *t, int dim, int64_t index) {
    char p[32];
    *out = NULL;
    if (t->ndim == 0) return rlaif_fail(RLAIF_EINVAL, "select: cannot index a 0-d tensor");
    rlaif_status st = rlaif_tensor_dim("select", t->ndim, dim, &dim);
    if (st != RLAIF_OK) return st;
    if (index < 0 || index >= t->shape[dim])
        return rlaif_fail(RLAIF_EINVAL, "index %s is out of range for dim %d of size %" PRId64,
                          pos1(p, sizeof p, index), dim + 1, t->shape[dim]);
    if ((st = view_of(out, t)) != RLAIF_OK) return st;
    rlaif_tensor *v = *out;
    v->data += index * t->stride[dim];
    for (int i = dim; i < t->ndim - 1; i++) {
        v->shape[i] = t->shape[i + 1];
        v->stride[i] = t->stride[i + 1];
    }
    v->ndim--;
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_expand(rlaif_tensor **out, rlaif_tensor *t, int ndim, const int64_t *shape) {
    char a[64], b[64];
    *out = NULL;
    if (ndim < t->ndim || ndim > RLAIF_MAX_DIMS)
        return rlaif_fail(RLAIF_EINVAL, "expand: cannot expand %s to %s", SHAPE_STR(a, t),
                          rlaif_shape_str(b, sizeof b, ndim, shape));
    int pad = ndim - t->ndim;
    int64_t stride[RLAIF_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        int64_t have = i < pad ? 1 : t->shape[i - pad];
        stride[i] = i < pad ? 0 : t->stride[i - pad];
        if (have == shape[i]) continue;
        if (have != 1 || shape[i] < 0)
            return rlaif_fail(RLAIF_EINVAL, "expand: cannot expand %s to %s", SHAPE_STR(a, t),
                              rlaif_shape_str(b, sizeof b, ndim, shape));
        stride[i] = 0;
    }
    int64_t numel;   /* a view, but every loop over it runs numel times */
    rlaif_status st = check_shape("expand", ndim, shape, &numel);
    if (st != RLAIF_OK) return st;
    st = view_of(out, t);
    if (st != RLAIF_OK) return st;
    (*out)->ndim = ndim;
    memcpy((*out)->shape, shape, (size_t)ndim * sizeof *shape);
    memcpy((*out)->stride, stride, (size_t)ndim * sizeof *stride);
    return RLAIF_OK;
}

rlaif_status rlaif_tensor_clone(rlaif_tensor **out, const rlaif_tensor *t) {
    rlaif_status st = rlaif_tensor_empty(out, t->ndim, t->shape);
    if (st != RLAIF_OK) return st;
    st = rlaif_tensor_copy_(*out, t);
    if (st != RLAIF_OK) {
        rlaif_tensor_release(*out);
        *out = NULL;
    }
    return st;
}

rlaif_status rlaif_tensor_contiguous(rlaif_tensor **out, rlaif_tensor *t) {
    if (rlaif_tensor_is_contiguous(t)) {
        rlaif_tensor_retain(t);
        *out = t;
        return RLAIF_OK;
    }
    return rlaif_tensor_clone(out, t);
}

rlaif_status rlaif_tensor_copy_(rlaif_tensor *dst, const rlaif_tensor *src) {
    char a[64], b[64];
    rlaif_status st = rlaif_tensor_check_writable("copy_", dst);
    if (st != RLAIF_OK) return st;
    if (src->ndim > dst->ndim) goto bad;
    for (int i = 0; i < src->ndim; i++) {
        int64_t s = src->shape[src->ndim - 1 - i], d = dst->shape[dst->ndim - 1 - i];
        if (s != d && s != 1) goto bad;
    }
    if (TENSOR_FLAT(dst) && TENSOR_FLAT(src) && rlaif_tensor_numel(dst) == rlaif_tensor_numel(src)) {
        memmove(dst->data, src->data, rlaif_tensor_nbytes(dst));
        return RLAIF_OK;
    }
    view4 d = view4_of(dst), s = view4_broadcast(src, d.shape);
    for (int64_t i = 0; i < d.shape[0]; i++)
        for (int64_t j = 0; j < d.shape[1]; j++)
            for (int64_t k = 0; k < d.shape[2]; k++) {
                float *dp = d.data + i * d.stride[0] + j * d.stride[1] + k * d.stride[2];
                const float *sp = s.data + i * s.stride[0] + j * s.stride[1] + k * s.stride[2];
                for (int64_t l = 0; l < d.shape[3]; l++) dp[l * d.stride[3]] = sp[l * s.stride[3]];
            }
    return RLAIF_OK;
bad:
    return rlaif_fail(RLAIF_EINVAL, "copy: cannot broadcast %s to %s", SHAPE_STR(a, src),
                      SHAPE_STR(b, dst));
}
