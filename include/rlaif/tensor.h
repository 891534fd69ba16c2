/* rlaif/tensor.h -- float32 tensors of 0 to 4 dimensions over refcounted
 * storage: the values that cross the API (model logits, state arguments,
 * safetensors files).
 *
 * A tensor is an opaque descriptor (shape, element strides, first element)
 * sharing its storage with every view taken from it. Dimensions are 0-based
 * here (the Lua API is 1-based). Element (i0, i1, ...) of t lives at
 * rlaif_tensor_data(t)[i0 * stride(t, 0) + i1 * stride(t, 1) + ...].
 *
 * Ownership: every function producing a tensor through `rlaif_tensor **out`
 * hands over a NEW reference; drop it with rlaif_tensor_release (NULL-safe).
 * Functions taking `const rlaif_tensor *` borrow. Reference counts are not
 * atomic: share a tensor between threads only while none of them retains,
 * releases or writes it. */
#ifndef RLAIF_TENSOR_API_H
#define RLAIF_TENSOR_API_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RLAIF_MAX_DIMS 4

typedef struct rlaif_tensor rlaif_tensor;

/* ---- lifetime ---- */

/* New contiguous tensor of `shape` (ndim entries, each >= 0) filled with zeros. */
rlaif_status rlaif_tensor_new(rlaif_tensor **out, int ndim, const int64_t *shape);
/* New contiguous tensor holding a copy of `data` (row-major, numel floats). */
rlaif_status rlaif_tensor_from_data(rlaif_tensor **out, int ndim, const int64_t *shape, const float *data);
void rlaif_tensor_retain(rlaif_tensor *t);
void rlaif_tensor_release(rlaif_tensor *t);   /* NULL-safe */

/* ---- inspection ---- */

int     rlaif_tensor_ndim(const rlaif_tensor *t);
int64_t rlaif_tensor_size(const rlaif_tensor *t, int dim);     /* 0 when dim is out of range */
int64_t rlaif_tensor_stride(const rlaif_tensor *t, int dim);   /* in elements; 0 when out of range */
int64_t rlaif_tensor_numel(const rlaif_tensor *t);
int     rlaif_tensor_is_contiguous(const rlaif_tensor *t);
/* The first element (borrowed; valid while a reference to t's storage lives).
 * Writes through it are seen by every view of the storage. */
float  *rlaif_tensor_data(rlaif_tensor *t);
/* Element at a full 0-based index (ndim entries, unchecked). */
float   rlaif_tensor_get(const rlaif_tensor *t, const int64_t *index);
/* Copy t's elements in row-major order into dst (room for n floats; any
 * strides). RLAIF_EINVAL when n < numel. */
rlaif_status rlaif_tensor_to_data(const rlaif_tensor *t, float *dst, size_t n);

/* ---- creation and views ---- */

rlaif_status rlaif_tensor_fill(rlaif_tensor *t, float value);   /* in place */
/* Any shape with the same numel; one -1 is inferred. Shares storage when the
 * strides allow it, else copies. */
rlaif_status rlaif_tensor_reshape(rlaif_tensor **out, rlaif_tensor *t, int ndim, const int64_t *shape);
rlaif_status rlaif_tensor_transpose(rlaif_tensor **out, rlaif_tensor *t, int d0, int d1);
/* Elements start .. start+length-1 of dim `dim` (a view). */
rlaif_status rlaif_tensor_narrow(rlaif_tensor **out, rlaif_tensor *t, int dim, int64_t start, int64_t length);
/* Index `index` of `dim`, which is removed (a view). */
rlaif_status rlaif_tensor_select(rlaif_tensor **out, rlaif_tensor *t, int dim, int64_t index);
/* t itself (retained) when contiguous, else a contiguous copy. */
rlaif_status rlaif_tensor_contiguous(rlaif_tensor **out, rlaif_tensor *t);
rlaif_status rlaif_tensor_clone(rlaif_tensor **out, const rlaif_tensor *t);

/* ---- math ---- */

/* a @ b for 2-d operands, or batched (..., n, k) @ (..., k, m) with up to two
 * broadcast batch dims, through BLIS. *out must be NULL (a new tensor is
 * returned) or a tensor of the result's shape, which is overwritten. */
rlaif_status rlaif_tensor_matmul(rlaif_tensor **out, const rlaif_tensor *a, const rlaif_tensor *b);
/* Softmax (log = 0) or log-softmax (log = 1) along dim. New tensor. */
rlaif_status rlaif_tensor_softmax(rlaif_tensor **out, const rlaif_tensor *a, int dim, int log);

/* ---- safetensors files ---- */

typedef struct rlaif_named_tensor {
    char *name;            /* owned, NUL-terminated */
    rlaif_tensor *tensor;  /* owned reference       */
} rlaif_named_tensor;

/* Read every tensor of a .safetensors file (F32, F16, BF16, F64 become
 * float32). *items (free with rlaif_safetensors_free) holds *count entries in
 * file order. Errors name the file and the tensor. */
rlaif_status rlaif_safetensors_load(const char *path, rlaif_named_tensor **items, int *count);
void         rlaif_safetensors_free(rlaif_named_tensor *items, int count);
/* Write tensors (borrowed) as F32 in the given order, atomically (temporary
 * file, fsync, rename): a crash never leaves a half-written file. */
rlaif_status rlaif_safetensors_save(const char *path, const rlaif_named_tensor *items, int count);

#ifdef __cplusplus
}
#endif

#endif
