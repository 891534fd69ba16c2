/* src/core/tensor.h -- float32 strided tensors (0 to 4 dims) over refcounted storage.
 *
 * A tensor is a descriptor (shape, element strides, data pointer) that shares a
 * storage with every view taken from it. Ownership: every function that produces
 * a tensor through `rlaif_tensor **out` hands over a NEW reference; release it with
 * rlaif_tensor_release (NULL-safe). Functions taking `const rlaif_tensor *` borrow.
 * Dimensions are 0-based here; the Lua binding converts from 1-based.
 *
 * Not here: dtypes other than float32 (the one element type), autograd, devices. */
#ifndef RLAIF_TENSOR_H
#define RLAIF_TENSOR_H

#include "rlaif.h"

/* The public declarations (opaque in the API; defined below for the core). */
#include <rlaif/tensor.h>

typedef struct rlaif_storage {
    float *data;        /* owned when free_data is set, else borrowed       */
    size_t numel;       /* floats in data                                    */
    int refcount;       /* tensors that point into this storage              */
    int free_data;      /* 1: free(data) with the storage                    */
    rlaif_meter *meter; /* the scope's meter that paid for data, or NULL     */
    size_t charged;     /* bytes charged to it                               */
} rlaif_storage;

typedef struct rlaif_tensor {
    int ndim;                         /* 0..RLAIF_MAX_DIMS; 0 = a scalar      */
    int64_t shape[RLAIF_MAX_DIMS];    /* sizes, >= 0                         */
    int64_t stride[RLAIF_MAX_DIMS];   /* element strides (may be 0 or any sign) */
    float *data;                      /* first element, inside storage->data */
    rlaif_storage *storage;           /* shared, refcounted                  */
    int refcount;                     /* references to this descriptor       */
} rlaif_tensor;

/* ---- lifetime ---- */

/* New contiguous tensor filled with zeros. Returns a new reference. */
rlaif_status rlaif_tensor_new(rlaif_tensor **out, int ndim, const int64_t *shape);
/* Same, contents left uninitialised (for outputs that are fully overwritten). */
rlaif_status rlaif_tensor_empty(rlaif_tensor **out, int ndim, const int64_t *shape);
/* Wrap memory the caller keeps alive (e.g. a model's flat parameter buffer);
 * the tensor never frees `data`. Returns a new reference. */
rlaif_status rlaif_tensor_wrap(rlaif_tensor **out, float *data, int ndim,
                               const int64_t *shape, const int64_t *stride);
void   rlaif_tensor_retain(rlaif_tensor *t);
void   rlaif_tensor_release(rlaif_tensor *t);      /* NULL-safe */

/* ---- inspection ---- */

int64_t rlaif_tensor_numel(const rlaif_tensor *t);
size_t  rlaif_tensor_nbytes(const rlaif_tensor *t);     /* numel * 4 */
int     rlaif_tensor_is_contiguous(const rlaif_tensor *t);
/* 1 when several elements share memory (a stride-0 dim of size > 1, from
 * expand). In-place operations refuse such a target (RLAIF_EINVAL), like
 * PyTorch: writing it would be ambiguous, and a broadcast view of 2^60
 * elements over one float would take for ever to fill. */
int     rlaif_tensor_overlaps(const rlaif_tensor *t);
/* RLAIF_EINVAL "<op>: cannot write into an expanded view ..." when t overlaps. */
rlaif_status rlaif_tensor_check_writable(const char *op, const rlaif_tensor *t);
/* "[2,3]" into buf (always NUL-terminated); returns buf. */
char   *rlaif_shape_str(char *buf, size_t len, int ndim, const int64_t *shape);
/* Normalise a possibly negative dim (-1 = last) against ndim; RLAIF_EINVAL with
 * a message naming `op` when out of range. */
rlaif_status rlaif_tensor_dim(const char *op, int ndim, int64_t dim, int *out);
/* Element at a full 0-based index (ndim entries). */
float   rlaif_tensor_get(const rlaif_tensor *t, const int64_t *index);

/* ---- creation ---- */

rlaif_status rlaif_tensor_fill(rlaif_tensor *t, float value);            /* in place; not into an expanded view */
/* 1-d [start, start+step, ...) stopping before `stop`. */
rlaif_status rlaif_tensor_arange(rlaif_tensor **out, double start, double stop, double step);

/* xoshiro256** generator: fast, reproducible, independent of thread count. */
typedef struct rlaif_rng { uint64_t s[4]; } rlaif_rng;
void     rlaif_rng_seed(rlaif_rng *rng, uint64_t seed);
uint64_t rlaif_rng_next(rlaif_rng *rng);
float    rlaif_rng_uniform(rlaif_rng *rng);                  /* [0, 1) */
/* Fill t (any strides) in row-major order: uniform [0,1) / standard normal. */
rlaif_status rlaif_tensor_rand(rlaif_tensor *t, rlaif_rng *rng);
rlaif_status rlaif_tensor_randn(rlaif_tensor *t, rlaif_rng *rng);

/* ---- views (share storage; new references) ---- */

/* Any shape with the same numel; -1 in one place is inferred. `view` fails when
 * the strides do not allow it; `reshape` copies in that case. */
rlaif_status rlaif_tensor_view(rlaif_tensor **out, rlaif_tensor *t, int ndim, const int64_t *shape);
rlaif_status rlaif_tensor_reshape(rlaif_tensor **out, rlaif_tensor *t, int ndim, const int64_t *shape);
rlaif_status rlaif_tensor_transpose(rlaif_tensor **out, rlaif_tensor *t, int d0, int d1);
rlaif_status rlaif_tensor_permute(rlaif_tensor **out, rlaif_tensor *t, const int *perm);
/* Elements start .. start+length-1 of `dim`. */
rlaif_status rlaif_tensor_narrow(rlaif_tensor **out, rlaif_tensor *t, int dim, int64_t start, int64_t length);
/* Index `index` of `dim`, which is removed. */
rlaif_status rlaif_tensor_select(rlaif_tensor **out, rlaif_tensor *t, int dim, int64_t index);
/* Broadcast view to `shape` (stride 0 on expanded dims). */
rlaif_status rlaif_tensor_expand(rlaif_tensor **out, rlaif_tensor *t, int ndim, const int64_t *shape);
/* t itself (retained) when contiguous, else a contiguous copy. */
rlaif_status rlaif_tensor_contiguous(rlaif_tensor **out, rlaif_tensor *t);
rlaif_status rlaif_tensor_clone(rlaif_tensor **out, const rlaif_tensor *t);
/* dst <- src, src broadcast to dst's shape. */
rlaif_status rlaif_tensor_copy_(rlaif_tensor *dst, const rlaif_tensor *src);

/* ---- element-wise math ---- */

typedef enum rlaif_binop {
    RLAIF_ADD, RLAIF_SUB, RLAIF_MUL, RLAIF_DIV, RLAIF_POW, RLAIF_MAXIMUM, RLAIF_MINIMUM,
} rlaif_binop;

typedef enum rlaif_unop {
    RLAIF_NEG, RLAIF_EXP, RLAIF_LOG, RLAIF_SQRT, RLAIF_TANH, RLAIF_SIGMOID, RLAIF_RELU,
    RLAIF_GELU, RLAIF_GELU_TANH, RLAIF_ABS, RLAIF_SQUARE, RLAIF_RSQRT,
} rlaif_unop;

const char *rlaif_binop_name(rlaif_binop op);
const char *rlaif_unop_name(rlaif_unop op);

/* out = a op b with NumPy/PyTorch broadcasting. New reference in *out. */
rlaif_status rlaif_tensor_binary(rlaif_tensor **out, rlaif_binop op, const rlaif_tensor *a, const rlaif_tensor *b);
/* out = a op s  (or s op a when scalar_first). */
rlaif_status rlaif_tensor_binary_scalar(rlaif_tensor **out, rlaif_binop op, const rlaif_tensor *a,
                                        float s, int scalar_first);
/* a = a op b in place; b broadcasts to a's shape (a's shape never changes). */
rlaif_status rlaif_tensor_binary_(rlaif_tensor *a, rlaif_binop op, const rlaif_tensor *b);
rlaif_status rlaif_tensor_binary_scalar_(rlaif_tensor *a, rlaif_binop op, float s);
rlaif_status rlaif_tensor_unary(rlaif_tensor **out, rlaif_unop op, const rlaif_tensor *a);
rlaif_status rlaif_tensor_unary_(rlaif_tensor *a, rlaif_unop op);
/* Clamp to [lo, hi]; NAN bounds mean "no bound". */
rlaif_status rlaif_tensor_clamp(rlaif_tensor **out, const rlaif_tensor *a, float lo, float hi);

/* ---- reductions ---- */

typedef enum rlaif_reduce {
    RLAIF_SUM, RLAIF_MEAN, RLAIF_MAX, RLAIF_MIN, RLAIF_ARGMAX, RLAIF_ARGMIN,
    RLAIF_LOGSUMEXP, RLAIF_VAR,
} rlaif_reduce;

const char *rlaif_reduce_name(rlaif_reduce op);

/* Reduce along `dim` (keepdim keeps it with size 1), or over every element when
 * dim < 0 (a 0-d result). Arg-reductions give 0-based float indices (flat index
 * for whole-tensor). VAR uses `correction` (1 = unbiased, like PyTorch). */
rlaif_status rlaif_tensor_reduce(rlaif_tensor **out, rlaif_reduce op, const rlaif_tensor *a,
                                 int dim, int keepdim, int correction);

/* ---- neural-net primitives (along `dim`, or the last dim for the norms) ---- */

rlaif_status rlaif_tensor_softmax(rlaif_tensor **out, const rlaif_tensor *a, int dim, int log);
/* y = (x - mean) / sqrt(var + eps) * weight + bias over the last dim; weight and
 * bias may be NULL, else 1-d of the last dim's size. */
rlaif_status rlaif_tensor_layer_norm(rlaif_tensor **out, const rlaif_tensor *x, const rlaif_tensor *weight,
                                     const rlaif_tensor *bias, float eps);
/* y = x / sqrt(mean(x^2) + eps) * weight over the last dim; weight may be NULL. */
rlaif_status rlaif_tensor_rms_norm(rlaif_tensor **out, const rlaif_tensor *x, const rlaif_tensor *weight, float eps);

/* ---- matrix products (BLIS) ---- */

/* a @ b for a: (..., n, k), b: (..., k, m) with up to 2 broadcast batch dims, or
 * 2-d @ 2-d. Strided operands (e.g. transposed views) go to BLIS without a copy.
 * When *out is non-NULL it must have the result's shape and is overwritten in
 * place (borrowed); otherwise a new tensor is returned in *out. */
rlaif_status rlaif_tensor_matmul(rlaif_tensor **out, const rlaif_tensor *a, const rlaif_tensor *b);

/* Reference for benchmarks: c = a @ b by one direct bli_sgemm call on the
 * buffers of contiguous 2-d tensors, with no other work. */
rlaif_status rlaif_blis_sgemm_direct(rlaif_tensor *c, const rlaif_tensor *a, const rlaif_tensor *b);

/* ---- safetensors I/O ---- */

/* Read every tensor of a .safetensors file (F32, F16, BF16 and F64 are converted
 * to float32). On success *items (owned; free with rlaif_safetensors_free) holds
 * *count entries in file order. Errors name the file and the tensor. */
rlaif_status rlaif_safetensors_load(const char *path, rlaif_named_tensor **items, int *count);
void         rlaif_safetensors_free(rlaif_named_tensor *items, int count);
/* Write tensors (borrowed) as F32 in the given order, atomically
 * (rlaif_write_file_atomic: temporary file, fsync, rename). */
rlaif_status rlaif_safetensors_save(const char *path, const rlaif_named_tensor *items, int count);

/* ---- safetensors, lower level: a mapped, checked view (ckpt.c reads models with it) ---- */

typedef enum rlaif_dtype {
    RLAIF_DTYPE_F32,
    RLAIF_DTYPE_F16,
    RLAIF_DTYPE_BF16,
    RLAIF_DTYPE_F64,
} rlaif_dtype;

/* The first thing wrong with an entry, in the order the checks run. */
typedef enum rlaif_st_problem {
    RLAIF_ST_OK = 0,
    RLAIF_ST_FIELDS,    /* not an object with dtype, shape and data_offsets [begin, end] */
    RLAIF_ST_DTYPE,     /* dtype (dtype_name) is not F32, F16, BF16 or F64 */
    RLAIF_ST_NDIM,      /* more than RLAIF_MAX_DIMS dims */
    RLAIF_ST_SHAPE,     /* shape entry bad_dim (1-based) is not a non-negative integer; 0: too large */
    RLAIF_ST_OFFSETS,   /* data_offsets are not numbers with 0 <= begin <= end */
    RLAIF_ST_PAST_END,  /* end lies past the data section: a truncated file */
    RLAIF_ST_SIZE,      /* end - begin is not numel * elem_size */
} rlaif_st_problem;

/* One header entry. Fields are valid up to the check that failed: dtype and
 * elem_size after DTYPE, ndim after FIELDS, shape/numel after SHAPE,
 * begin/end/nbytes after OFFSETS, data only when problem is RLAIF_ST_OK. */
typedef struct rlaif_safetensors_entry {
    const char *name;               /* borrowed from the file            */
    const char *dtype_name;         /* as written ("F32", "I32"); borrowed */
    rlaif_dtype dtype;
    int elem_size;                  /* bytes per element                 */
    int ndim;
    int64_t shape[RLAIF_MAX_DIMS];  /* (ndim)                            */
    int64_t numel;
    uint64_t begin, end, nbytes;    /* data_offsets, in the data section */
    const void *data;               /* borrowed: nbytes mapped bytes     */
    rlaif_st_problem problem;
    int bad_dim;                    /* for RLAIF_ST_SHAPE                */
} rlaif_safetensors_entry;

typedef struct rlaif_safetensors_file {
    char *path;                         /* owned copy, named in messages       */
    int count;
    rlaif_safetensors_entry *entries;   /* (count) header order, no __metadata__ */
    uint64_t data_len;                  /* bytes after the header              */
    void *map_, *header_;               /* private: the mapping, parsed header */
    size_t map_size_;
} rlaif_safetensors_file;

/* Map `path` read-only and parse its header. A missing, short or non-regular
 * file, a bad header length or a header that is not a JSON object fail here
 * (RLAIF_EIO / RLAIF_EFORMAT, naming the file). Each entry is checked too, but
 * its problem is only recorded, so a reader may skip entries it does not need.
 * *out is new: close it with rlaif_safetensors_close. */
rlaif_status rlaif_safetensors_open(const char *path, rlaif_safetensors_file **out);
/* Unmap and free f (NULL-safe); every entry, name and data pointer dies with it. */
void         rlaif_safetensors_close(rlaif_safetensors_file *f);
/* The first entry named `name`, or NULL. Borrowed from f. */
const rlaif_safetensors_entry *rlaif_safetensors_find(const rlaif_safetensors_file *f, const char *name);
/* RLAIF_OK when e has no problem, else RLAIF_EFORMAT with a message naming the
 * file and the tensor ("<path>: tensor 'w': data ends at byte ..."). */
rlaif_status rlaif_safetensors_check(const rlaif_safetensors_file *f, const rlaif_safetensors_entry *e);
/* dst[i * dst_stride] = src[i] as float32, for i < n; src holds n little-endian
 * elements of dt at any alignment. Borrows both. */
void         rlaif_safetensors_convert(float *dst, int64_t dst_stride, const void *src, int64_t n,
                                       rlaif_dtype dt);

#endif
