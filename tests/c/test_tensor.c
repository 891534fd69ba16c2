/* tests/c/test_tensor.c -- the tensor core through its C API: creation, views,
 * broadcasting, reductions, norms and matmul against naive loops written here,
 * error statuses and messages, refcounting (ASan/LSan catch leaks) and the
 * cancel flag. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tensor.h"

static rlaif_tensor *make(int ndim, const int64_t *shape, uint64_t seed) {
    rlaif_tensor *t = NULL;
    rlaif_rng rng;
    rlaif_rng_seed(&rng, seed);
    CHECK_OK(rlaif_tensor_empty(&t, ndim, shape));
    rlaif_tensor_randn(t, &rng);
    return t;
}

static void test_lifetime_and_views(void) {
    int64_t shape[] = {2, 3, 4};
    rlaif_tensor *t = NULL, *v = NULL, *w = NULL;
    CHECK_OK(rlaif_tensor_new(&t, 3, shape));
    CHECK(rlaif_tensor_numel(t) == 24 && rlaif_tensor_is_contiguous(t));
    for (int i = 0; i < 24; i++) t->data[i] = (float)i;
    CHECK_OK(rlaif_tensor_transpose(&v, t, 0, 2));             /* [4,3,2] */
    CHECK(v->shape[0] == 4 && v->shape[2] == 2 && !rlaif_tensor_is_contiguous(v));
    int64_t idx[] = {3, 1, 1};                                  /* t[1][1][3] */
    CHECK(rlaif_tensor_get(v, idx) == 1 * 12 + 1 * 4 + 3);
    rlaif_tensor_release(t);                                    /* the view keeps storage alive */
    CHECK(rlaif_tensor_get(v, idx) == 19);
    CHECK_OK(rlaif_tensor_contiguous(&w, v));
    CHECK(rlaif_tensor_is_contiguous(w) && w != v && rlaif_tensor_get(w, idx) == 19);
    rlaif_tensor_release(w);
    int64_t flat[] = {-1};
    CHECK_FAIL(rlaif_tensor_view(&w, v, 1, flat), RLAIF_EINVAL, "not contiguous");
    CHECK_OK(rlaif_tensor_reshape(&w, v, 1, flat));
    CHECK(w->shape[0] == 24 && w->data[1] == 12);               /* v[0][0][1] = t[1][0][0] */
    rlaif_tensor_release(w);
    int64_t bad[] = {5, -1};
    CHECK_FAIL(rlaif_tensor_reshape(&w, v, 2, bad), RLAIF_EINVAL, "cannot infer");
    CHECK_OK(rlaif_tensor_narrow(&w, v, 1, 1, 2));              /* [4,2,2] */
    int64_t i2[] = {0, 0, 1};
    CHECK(w->shape[1] == 2 && rlaif_tensor_get(w, i2) == 12 + 4);
    rlaif_tensor_release(w);
    CHECK_FAIL(rlaif_tensor_narrow(&w, v, 1, 2, 2), RLAIF_EINVAL, "outside dim 2");
    CHECK_OK(rlaif_tensor_select(&w, v, 0, 3));                 /* [3,2] */
    CHECK(w->ndim == 2 && w->data[0] == 3);
    rlaif_tensor_release(w);
    CHECK_FAIL(rlaif_tensor_select(&w, v, 0, 4), RLAIF_EINVAL, "out of range");
    int perm[] = {2, 0, 1};
    CHECK_OK(rlaif_tensor_permute(&w, v, perm));                /* [2,4,3] == t permuted (0,2,1) */
    int64_t i3[] = {1, 2, 0};
    CHECK(rlaif_tensor_get(w, i3) == 12 + 0 * 4 + 2);
    rlaif_tensor_release(w);
    int dup[] = {0, 0, 1};
    CHECK_FAIL(rlaif_tensor_permute(&w, v, dup), RLAIF_EINVAL, "permutation");
    rlaif_tensor_release(v);
}

static void test_bad_shapes(void) {
    rlaif_tensor *t = NULL;
    int64_t neg[] = {2, -3};
    CHECK_FAIL(rlaif_tensor_new(&t, 2, neg), RLAIF_EINVAL, "negative");
    CHECK(t == NULL);
    int64_t five[] = {1, 1, 1, 1, 1};
    CHECK_FAIL(rlaif_tensor_new(&t, 5, five), RLAIF_EINVAL, "at most 4");
    int64_t huge[] = {INT64_MAX / 2, 4};
    CHECK_FAIL(rlaif_tensor_new(&t, 2, huge), RLAIF_ENOMEM, "too large");
    int64_t big[] = {1LL << 40};  /* 4 TB: the allocation fails cleanly */
    CHECK_FAIL(rlaif_tensor_new(&t, 1, big), RLAIF_ENOMEM, "cannot allocate");
    int64_t empty[] = {0, 3};
    CHECK_OK(rlaif_tensor_new(&t, 2, empty));
    CHECK(rlaif_tensor_numel(t) == 0);
    rlaif_tensor *s = NULL;
    CHECK_OK(rlaif_tensor_reduce(&s, RLAIF_SUM, t, -1, 0, 1));
    CHECK(s->ndim == 0 && s->data[0] == 0);
    rlaif_tensor_release(s);
    CHECK_FAIL(rlaif_tensor_reduce(&s, RLAIF_MAX, t, -1, 0, 1), RLAIF_EINVAL, "empty");
    rlaif_tensor_release(t);
}

static void test_broadcast(void) {
    int64_t sa[] = {3, 1, 4}, sb[] = {2, 1};
    rlaif_tensor *a = make(3, sa, 1), *b = make(2, sb, 2), *c = NULL;
    CHECK_OK(rlaif_tensor_binary(&c, RLAIF_SUB, a, b));
    CHECK(c->ndim == 3 && c->shape[0] == 3 && c->shape[1] == 2 && c->shape[2] == 4);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 4; k++)
                CHECK(c->data[(i * 2 + j) * 4 + k] == a->data[i * 4 + k] - b->data[j]);
    rlaif_tensor_release(c);
    int64_t sx[] = {3, 5};
    rlaif_tensor *x = make(2, sx, 3);
    CHECK_FAIL(rlaif_tensor_binary(&c, RLAIF_ADD, a, x), RLAIF_EINVAL, "shapes [3,1,4] and [3,5] cannot be broadcast");
    CHECK_FAIL(rlaif_tensor_binary_(b, RLAIF_ADD, a), RLAIF_EINVAL, "in-place");
    /* scalar first: 1 / a */
    CHECK_OK(rlaif_tensor_binary_scalar(&c, RLAIF_DIV, a, 1.0f, 1));
    CHECK_CLOSE(c->data[5], 1.0 / a->data[5], 1e-6);
    rlaif_tensor_release(c);
    /* strided in-place add over a transposed view */
    rlaif_tensor *xt = NULL, *before = NULL;
    CHECK_OK(rlaif_tensor_clone(&before, x));
    CHECK_OK(rlaif_tensor_transpose(&xt, x, 0, 1));               /* [5,3] */
    int64_t s1[] = {3};
    rlaif_tensor *row = make(1, s1, 4);
    CHECK_OK(rlaif_tensor_binary_(xt, RLAIF_MUL, row));            /* xt[j][i] *= row[i] */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++) CHECK(x->data[i * 5 + j] == before->data[i * 5 + j] * row->data[i]);
    rlaif_tensor_release(xt), rlaif_tensor_release(before), rlaif_tensor_release(row);
    rlaif_tensor_release(a), rlaif_tensor_release(b), rlaif_tensor_release(x);
}

static void test_reductions(void) {
    int64_t s[] = {3, 4, 5};
    rlaif_tensor *t = make(3, s, 5), *r = NULL;
    CHECK_OK(rlaif_tensor_reduce(&r, RLAIF_SUM, t, 1, 0, 1));     /* [3,5] */
    CHECK(r->ndim == 2 && r->shape[0] == 3 && r->shape[1] == 5);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 5; k++) {
            double acc = 0;
            for (int j = 0; j < 4; j++) acc += t->data[(i * 4 + j) * 5 + k];
            CHECK_CLOSE(r->data[i * 5 + k], acc, 1e-5);
        }
    rlaif_tensor_release(r);
    CHECK_OK(rlaif_tensor_reduce(&r, RLAIF_ARGMAX, t, 2, 1, 1));  /* [3,4,1], 0-based */
    CHECK(r->ndim == 3 && r->shape[2] == 1);
    for (int i = 0; i < 12; i++) {
        int best = 0;
        for (int k = 1; k < 5; k++) if (t->data[i * 5 + k] > t->data[i * 5 + best]) best = k;
        CHECK(r->data[i] == best);
    }
    rlaif_tensor_release(r);
    CHECK_OK(rlaif_tensor_reduce(&r, RLAIF_VAR, t, -1, 0, 1));
    double mean = 0, ss = 0;
    for (int i = 0; i < 60; i++) mean += t->data[i];
    mean /= 60;
    for (int i = 0; i < 60; i++) ss += (t->data[i] - mean) * (t->data[i] - mean);
    CHECK_CLOSE(r->data[0], ss / 59, 1e-5);
    rlaif_tensor_release(r);
    /* logsumexp stays finite for large values */
    int64_t two[] = {2};
    rlaif_tensor *big = NULL;
    CHECK_OK(rlaif_tensor_new(&big, 1, two));
    big->data[0] = 1000, big->data[1] = 1000;
    CHECK_OK(rlaif_tensor_reduce(&r, RLAIF_LOGSUMEXP, big, -1, 0, 1));
    CHECK_CLOSE(r->data[0], 1000 + log(2.0), 1e-6);
    rlaif_tensor_release(r), rlaif_tensor_release(big);
    CHECK_FAIL(rlaif_tensor_reduce(&r, RLAIF_SUM, t, 3, 0, 1), RLAIF_EINVAL, "out of range");
    /* softmax rows sum to 1 along a strided dim */
    CHECK_OK(rlaif_tensor_softmax(&r, t, 1, 0));
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 5; k++) {
            double acc = 0;
            for (int j = 0; j < 4; j++) acc += r->data[(i * 4 + j) * 5 + k];
            CHECK_CLOSE(acc, 1.0, 1e-6);
        }
    rlaif_tensor_release(r);
    rlaif_tensor_release(t);
}

static void naive_matmul(float *c, const rlaif_tensor *a, const rlaif_tensor *b, int64_t n, int64_t k, int64_t m) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++) {
                int64_t ia[] = {i, p}, ib[] = {p, j};
                acc += (double)rlaif_tensor_get(a, ia) * rlaif_tensor_get(b, ib);
            }
            c[i * m + j] = (float)acc;
        }
}

static void test_matmul(void) {
    int64_t sa[] = {37, 19}, sb[] = {23, 37};
    rlaif_tensor *a0 = make(2, sa, 6), *b0 = make(2, sb, 7), *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(rlaif_tensor_transpose(&a, a0, 0, 1));   /* [19,37] strided */
    CHECK_OK(rlaif_tensor_transpose(&b, b0, 0, 1));   /* [37,23] strided */
    CHECK_OK(rlaif_tensor_matmul(&c, a, b));
    CHECK(c->shape[0] == 19 && c->shape[1] == 23);
    float *ref = malloc(19 * 23 * sizeof *ref);
    naive_matmul(ref, a, b, 19, 37, 23);
    for (int i = 0; i < 19 * 23; i++) CHECK_CLOSE(c->data[i], ref[i], 1e-4);
    /* into a preallocated out */
    rlaif_tensor *out = c;
    rlaif_tensor_fill(out, 123.0f);
    CHECK_OK(rlaif_tensor_matmul(&out, a, b));
    CHECK(out == c);
    for (int i = 0; i < 19 * 23; i++) CHECK_CLOSE(c->data[i], ref[i], 1e-4);
    free(ref);
    rlaif_tensor *bad = NULL;
    CHECK_FAIL(rlaif_tensor_matmul(&bad, a, a), RLAIF_EINVAL, "shapes [19,37] and [19,37] are incompatible");
    CHECK(bad == NULL);
    rlaif_tensor_release(c);
    /* batched with broadcast: [2,3,4] @ [4,5] and an expanded (stride-0) operand */
    int64_t s3[] = {2, 3, 4}, s2[] = {4, 5}, se[] = {2, 4, 5};
    rlaif_tensor *x = make(3, s3, 8), *w = make(2, s2, 9), *we = NULL, *y1 = NULL, *y2 = NULL;
    CHECK_OK(rlaif_tensor_matmul(&y1, x, w));
    CHECK(y1->ndim == 3 && y1->shape[0] == 2 && y1->shape[2] == 5);
    CHECK_OK(rlaif_tensor_expand(&we, w, 3, se));
    CHECK_OK(rlaif_tensor_matmul(&y2, x, we));
    for (int i = 0; i < 30; i++) CHECK(y1->data[i] == y2->data[i]);
    rlaif_tensor *x1 = NULL;
    CHECK_OK(rlaif_tensor_select(&x1, x, 0, 1));
    float ref2[15];
    naive_matmul(ref2, x1, w, 3, 4, 5);
    for (int i = 0; i < 15; i++) CHECK_CLOSE(y1->data[15 + i], ref2[i], 1e-5);
    rlaif_tensor_release(x1);
    /* the cancel flag stops a batched product */
    rlaif_tensor *y3 = NULL;
    rlaif_cancel_request();
    CHECK_FAIL(rlaif_tensor_matmul(&y3, x, w), RLAIF_EINTR, "interrupted");
    CHECK(y3 == NULL);
    rlaif_cancel_reset();
    rlaif_tensor_release(x), rlaif_tensor_release(w), rlaif_tensor_release(we);
    rlaif_tensor_release(y1), rlaif_tensor_release(y2);
    rlaif_tensor_release(a), rlaif_tensor_release(b), rlaif_tensor_release(a0), rlaif_tensor_release(b0);
}

static void test_norms(void) {
    int64_t s[] = {3, 8}, sw[] = {8};
    rlaif_tensor *x = make(2, s, 10), *w = make(1, sw, 11), *y = NULL;
    CHECK_OK(rlaif_tensor_rms_norm(&y, x, w, 1e-6f));
    for (int r = 0; r < 3; r++) {
        double ms = 0;
        for (int i = 0; i < 8; i++) ms += x->data[r * 8 + i] * x->data[r * 8 + i];
        double inv = 1 / sqrt(ms / 8 + 1e-6);
        for (int i = 0; i < 8; i++) CHECK_CLOSE(y->data[r * 8 + i], x->data[r * 8 + i] * inv * w->data[i], 1e-5);
    }
    rlaif_tensor_release(y);
    int64_t s3[] = {3};
    rlaif_tensor *w3 = make(1, s3, 12);
    CHECK_FAIL(rlaif_tensor_layer_norm(&y, x, w3, NULL, 1e-5f), RLAIF_EINVAL, "weight of shape [3]");
    rlaif_tensor_release(x), rlaif_tensor_release(w), rlaif_tensor_release(w3);
}

static void test_rng(void) {
    int64_t s[] = {10000};
    rlaif_tensor *a = make(1, s, 42), *b = make(1, s, 42), *c = make(1, s, 43);
    CHECK(memcmp(a->data, b->data, 40000) == 0);
    CHECK(memcmp(a->data, c->data, 40000) != 0);
    double mean = 0, var = 0;
    for (int i = 0; i < 10000; i++) mean += a->data[i];
    mean /= 10000;
    for (int i = 0; i < 10000; i++) var += (a->data[i] - mean) * (a->data[i] - mean);
    var /= 9999;
    CHECK(fabs(mean) < 0.05 && fabs(var - 1) < 0.05);
    rlaif_tensor_release(a), rlaif_tensor_release(b), rlaif_tensor_release(c);
}

/* Sizes and indices at the int64 edges (issue 15, item 3): expand to a shape
 * whose element count overflows was accepted (numel wrapped, fill_ looped for
 * ever); narrow, select and dim errors overflowed while formatting. */
static void test_overflow_edges(void) {
    int64_t one[1] = {1}, huge3[3] = {4294967296LL, 4294967296LL, 4294967296LL}, s23[2] = {2, 3};
    rlaif_tensor *t = NULL, *v = NULL;
    CHECK_OK(rlaif_tensor_new(&t, 1, one));
    CHECK_FAIL(rlaif_tensor_expand(&v, t, 3, huge3), RLAIF_ENOMEM,
               "expand: shape [4294967296,4294967296,4294967296] is too large");
    CHECK(v == NULL);
    int64_t big2[2] = {INT64_MAX, 2};
    CHECK_FAIL(rlaif_tensor_expand(&v, t, 2, big2), RLAIF_ENOMEM, "expand: shape");
    int64_t fine[2] = {1 << 20, 1 << 20};   /* 2^40 elements: a valid view of one float */
    CHECK_OK(rlaif_tensor_expand(&v, t, 2, fine));
    CHECK(v && rlaif_tensor_numel(v) == (int64_t)1 << 40);
    rlaif_tensor_release(v), v = NULL;
    rlaif_tensor_release(t);
    CHECK_OK(rlaif_tensor_new(&t, 2, s23));
    CHECK_FAIL(rlaif_tensor_narrow(&v, t, 1, 2, INT64_MAX), RLAIF_EINVAL,
               "narrow: 9223372036854775807 elements from element 3 are outside dim 2 of size 3");
    CHECK_FAIL(rlaif_tensor_narrow(&v, t, 1, INT64_MAX, 1), RLAIF_EINVAL,
               "from element 9223372036854775808 are outside");
    CHECK_FAIL(rlaif_tensor_narrow(&v, t, 1, INT64_MIN, INT64_MAX), RLAIF_EINVAL, "from element -9223372036854775807");
    CHECK_FAIL(rlaif_tensor_select(&v, t, 0, INT64_MAX), RLAIF_EINVAL, "index 9223372036854775808 is out of range");
    CHECK_FAIL(rlaif_tensor_select(&v, t, 0, INT64_MIN), RLAIF_EINVAL, "index -9223372036854775807 is out of range");
    int d;
    CHECK_FAIL(rlaif_tensor_dim("op", 2, INT64_MAX, &d), RLAIF_EINVAL, "op: dim 9223372036854775808 out of range");
    CHECK_FAIL(rlaif_tensor_dim("op", 2, INT64_MIN, &d), RLAIF_EINVAL, "op: dim -9223372036854775808 out of range");
    CHECK(v == NULL);
    rlaif_tensor_release(t);
    /* found by the Lua binding fuzzer: an empty inner dim recursed for ever
     * (the contiguous copy of a [2,0] operand still has a 0 row stride) */
    int64_t s20[2] = {2, 0}, s03[2] = {0, 3};
    rlaif_tensor *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(rlaif_tensor_new(&a, 2, s20));
    CHECK_OK(rlaif_tensor_new(&b, 2, s03));
    CHECK_OK(rlaif_tensor_matmul(&c, a, b));   /* zeros [2,3], like torch.zeros(2,0) @ torch.zeros(0,3) */
    CHECK(c && c->ndim == 2 && c->shape[0] == 2 && c->shape[1] == 3);
    for (int i = 0; c && i < 6; i++) CHECK(c->data[i] == 0.0f);
    rlaif_tensor_release(c), c = NULL;
    CHECK_FAIL(rlaif_tensor_matmul(&c, b, b), RLAIF_EINVAL, "inner dims 3 and 0");
    /* found by the Lua binding fuzzer: fill_ into a broadcast view of 2^40 elements over one float ran for
     * hours; every in-place write into an expanded view is refused, like PyTorch */
    rlaif_tensor *one1 = NULL, *e = NULL, *row = NULL;
    int64_t s1[1] = {1}, wide[2] = {1 << 20, 1 << 20}, s3[1] = {3};
    CHECK_OK(rlaif_tensor_new(&one1, 1, s1));
    CHECK_OK(rlaif_tensor_expand(&e, one1, 2, wide));
    CHECK_FAIL(rlaif_tensor_fill(e, 1.0f), RLAIF_EINVAL, "fill_: cannot write into an expanded view of shape "
               "[1048576,1048576]");
    CHECK_FAIL(rlaif_tensor_binary_scalar_(e, RLAIF_MUL, 2.0f), RLAIF_EINVAL, "mul_: cannot write");
    CHECK_FAIL(rlaif_tensor_unary_(e, RLAIF_EXP), RLAIF_EINVAL, "exp_: cannot write");
    CHECK_FAIL(rlaif_tensor_binary_(e, RLAIF_ADD, one1), RLAIF_EINVAL, "add_: cannot write");
    CHECK_FAIL(rlaif_tensor_copy_(e, one1), RLAIF_EINVAL, "copy_: cannot write");
    CHECK_OK(rlaif_tensor_new(&row, 1, s3));
    rlaif_tensor *e3 = NULL, *prod = e;   /* matmul into an overlapping out */
    int64_t s33[2] = {3, 3};
    CHECK_OK(rlaif_tensor_expand(&e3, one1, 2, s33));
    prod = e3;
    CHECK_FAIL(rlaif_tensor_matmul(&prod, row, row), RLAIF_EINVAL, "matmul: cannot write");
    CHECK(rlaif_tensor_fill(one1, 2.0f) == RLAIF_OK && one1->data[0] == 2.0f);   /* size-1 dims are fine */
    rlaif_tensor_release(e3), rlaif_tensor_release(row), rlaif_tensor_release(e), rlaif_tensor_release(one1);
    rlaif_tensor_release(a), rlaif_tensor_release(b);
}

int main(void) {
    rlaif_init();
    test_lifetime_and_views();
    test_bad_shapes();
    test_broadcast();
    test_reductions();
    test_matmul();
    test_norms();
    test_rng();
    test_overflow_edges();
    return check_report("test_tensor");
}
