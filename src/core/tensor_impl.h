/* src/core/tensor_impl.h -- private helpers shared by tensor*.c: the 4-d
 * normalised view used by every strided loop. Not a public header. */
#ifndef RLAIF_TENSOR_IMPL_H
#define RLAIF_TENSOR_IMPL_H

#include "tensor.h"

/* A tensor seen as exactly 4 dims, padded on the left with size-1 dims. */
typedef struct view4 {
    int64_t shape[4];
    int64_t stride[4];
    float *data;
} view4;

static inline view4 view4_of(const rlaif_tensor *t) {
    view4 v;
    int pad = 4 - t->ndim;
    for (int i = 0; i < 4; i++) {
        v.shape[i] = i < pad ? 1 : t->shape[i - pad];
        v.stride[i] = i < pad ? 0 : t->stride[i - pad];
    }
    v.data = t->data;
    return v;
}

/* Strides of `t` broadcast to the 4-d `shape` (right-aligned); 0 on expanded
 * dims. The caller has already checked compatibility. */
static inline view4 view4_broadcast(const rlaif_tensor *t, const int64_t *shape4) {
    view4 v = view4_of(t);
    for (int i = 0; i < 4; i++) {
        if (v.shape[i] == 1 && shape4[i] != 1) v.stride[i] = 0;
        v.shape[i] = shape4[i];
    }
    return v;
}

/* Every element of a contiguous tensor follows the last (0-size tensors too). */
#define TENSOR_FLAT(t) rlaif_tensor_is_contiguous(t)

/* Work per OpenMP region below which loops stay single-threaded. */
#define RLAIF_PAR_MIN 32768

/* Shape as "[2,3]" in a caller-provided buffer. */
#define SHAPE_STR(buf, t) rlaif_shape_str((buf), sizeof(buf), (t)->ndim, (t)->shape)

rlaif_status rlaif_broadcast_shape(const char *op, const rlaif_tensor *a, const rlaif_tensor *b,
                                   int *ndim, int64_t *shape);

#endif
