/* tests/c/test_dist.c -- the collectives of src/core/dist.c. Run alone (no
 * launcher) every operation must act as on a group of one; `make test-c` also
 * runs it under `mpirun -np 2`, where each rank checks what the other sent:
 * sums, means, extremes, broadcasts from rank 1, gathers of unequal lengths,
 * gradients and whole models, and that a size or root mismatch fails on every
 * rank with a message instead of hanging. Each rank prints its own count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dist.h"

static rlaif_model *tiny(uint64_t seed) {
    rlaif_model_config c;
    rlaif_model_config_defaults(&c, RLAIF_ARCH_GPT2);
    c.vocab_size = 17, c.n_layer = 1, c.n_head = 2, c.d_model = 8, c.max_seq = 16;
    rlaif_model *m = NULL;
    CHECK_OK(rlaif_model_new(&m, &c, seed));
    return m;
}

/* ---- one process: every call is a local one that succeeds ---- */

static void test_alone(void) {
    CHECK(rlaif_dist_rank() == 0 && rlaif_dist_size() == 1);
    CHECK(rlaif_dist_local_size() == 1 && rlaif_dist_active() == 0);
    CHECK_OK(rlaif_dist_barrier());
    float x[3] = {1, -2, 3};
    for (int op = RLAIF_DIST_SUM; op <= RLAIF_DIST_MIN; op++) {
        CHECK_OK(rlaif_dist_allreduce_f32(x, 3, (rlaif_dist_op)op));
        CHECK(x[0] == 1 && x[1] == -2 && x[2] == 3);
    }
    double d[2] = {0.1, 1e300};
    CHECK_OK(rlaif_dist_allreduce_f64(d, 2, RLAIF_DIST_MEAN));
    CHECK(d[0] == 0.1 && d[1] == 1e300);
    CHECK_OK(rlaif_dist_broadcast_f32(x, 3, 0));
    CHECK(x[1] == -2);
    char *out = NULL;
    size_t *lens = NULL;
    CHECK_OK(rlaif_dist_gather_bytes("abc", 3, 0, &out, &lens));
    CHECK(out && lens && lens[0] == 3 && memcmp(out, "abc", 4) == 0);
    free(out), free(lens);
    CHECK_OK(rlaif_dist_gather_bytes("", 0, -1, &out, &lens));
    CHECK(out && lens && lens[0] == 0 && out[0] == '\0');
    free(out), free(lens);
    char *buf = "xyz";
    size_t len = 3;
    CHECK_OK(rlaif_dist_broadcast_bytes(&buf, &len, 0));
    CHECK(len == 3 && strcmp(buf, "xyz") == 0);
    rlaif_model *m = tiny(1);
    CHECK_OK(rlaif_dist_allreduce_grads(m, RLAIF_DIST_MEAN));
    CHECK_OK(rlaif_dist_broadcast_model(m, 0));
    rlaif_model_free(m);
}

/* bad arguments fail the same way alone and in a job */
static void test_bad_arguments(void) {
    float x[1] = {0};
    CHECK_FAIL(rlaif_dist_broadcast_f32(x, 1, rlaif_dist_size()), RLAIF_EINVAL, "root");
    CHECK_FAIL(rlaif_dist_broadcast_f32(x, 1, -1), RLAIF_EINVAL, "root -1");
    CHECK_FAIL(rlaif_dist_allreduce_f32(x, 1, (rlaif_dist_op)9), RLAIF_EINVAL, "unknown reduction 9");
    char *out = NULL;
    size_t *lens = NULL;
    CHECK_FAIL(rlaif_dist_gather_bytes("a", 1, -2, &out, &lens), RLAIF_EINVAL, "root -2");
    CHECK(out == NULL && lens == NULL);
    rlaif_model *m = tiny(1);
    CHECK_FAIL(rlaif_dist_allreduce_grads(m, RLAIF_DIST_MAX), RLAIF_EINVAL, "summed or averaged");
    rlaif_model_free(m);
}

/* ---- two or more processes ---- */

static void test_reductions(int r, int n) {
    float x[4] = {(float)r, (float)(r + 1), -(float)r, 1.0f};
    CHECK_OK(rlaif_dist_allreduce_f32(x, 4, RLAIF_DIST_SUM));
    float s = (float)(n * (n - 1) / 2);
    CHECK(x[0] == s && x[1] == s + n && x[2] == -s && x[3] == (float)n);
    float y[2] = {(float)r, (float)(2 * r)};
    CHECK_OK(rlaif_dist_allreduce_f32(y, 2, RLAIF_DIST_MEAN));
    CHECK_CLOSE(y[0], (n - 1) / 2.0, 1e-7);
    CHECK_CLOSE(y[1], (double)(n - 1), 1e-7);
    float mx[1] = {(float)(r == 1 ? 7 : -3)}, mn[1] = {(float)(r == 1 ? -7 : 3)};
    CHECK_OK(rlaif_dist_allreduce_f32(mx, 1, RLAIF_DIST_MAX));
    CHECK_OK(rlaif_dist_allreduce_f32(mn, 1, RLAIF_DIST_MIN));
    CHECK(mx[0] == 7 && mn[0] == -7);
    /* large buffers take the shared-memory path, in pieces of 16M floats: one and a
     * bit pieces, every element checked against the sum over ranks in rank order */
    size_t big = ((size_t)1 << 24) + 3;
    float *b = malloc(big * sizeof *b);
    CHECK(b != NULL);
    if (b != NULL) {
        for (int op = RLAIF_DIST_SUM; op <= RLAIF_DIST_MIN; op++) {
            for (size_t i = 0; i < big; i++) b[i] = (float)((i * 7 + (size_t)r * 13) % 101) * 0.1f - 5.0f;
            CHECK_OK(rlaif_dist_allreduce_f32(b, big, (rlaif_dist_op)op));
            size_t bad = 0;
            for (size_t i = 0; i < big; i++) {
                float w = (float)((i * 7) % 101) * 0.1f - 5.0f;
                for (int k = 1; k < n; k++) {
                    float v = (float)((i * 7 + (size_t)k * 13) % 101) * 0.1f - 5.0f;
                    w = op == RLAIF_DIST_MAX ? (v > w ? v : w) : op == RLAIF_DIST_MIN ? (v < w ? v : w) : w + v;
                }
                if (op == RLAIF_DIST_MEAN) w *= 1.0f / (float)n;
                if (b[i] != w) bad++;
            }
            CHECK(bad == 0);
        }
        free(b);
    }
    double d[2] = {0.1 * (r + 1), 1.0 / 3.0};
    CHECK_OK(rlaif_dist_allreduce_f64(d, 2, RLAIF_DIST_SUM));
    double want = 0;
    for (int k = 0; k < n; k++) want += 0.1 * (k + 1);
    CHECK_CLOSE(d[0], want, 1e-15);
    CHECK_CLOSE(d[1], n / 3.0, 1e-15);
}

static void test_broadcasts(int r) {
    float x[3] = {(float)r, (float)r, (float)r};
    CHECK_OK(rlaif_dist_broadcast_f32(x, 3, 1));
    CHECK(x[0] == 1 && x[2] == 1);
    char mine[32];
    snprintf(mine, sizeof mine, "from rank %d", r);
    char *buf = mine;
    size_t len = strlen(mine);
    CHECK_OK(rlaif_dist_broadcast_bytes(&buf, &len, 1));
    CHECK(len == 11 && strcmp(buf, "from rank 1") == 0);
    if (r != 1) free(buf);
}

static void test_gathers(int r, int n) {
    char mine[32];
    memset(mine, 'a' + r, sizeof mine);
    size_t len = (size_t)r * 3;   /* rank 0 sends nothing */
    char *out = NULL;
    size_t *lens = NULL;
    CHECK_OK(rlaif_dist_gather_bytes(mine, len, 0, &out, &lens));
    if (r == 0) {
        CHECK(out != NULL && lens != NULL);
        size_t off = 0;
        for (int k = 0; k < n && out && lens; k++) {
            CHECK(lens[k] == (size_t)k * 3);
            for (size_t i = 0; i < lens[k]; i++) CHECK(out[off + i] == 'a' + k);
            off += lens[k];
        }
    } else {
        CHECK(out == NULL && lens == NULL);
    }
    free(out), free(lens);
    CHECK_OK(rlaif_dist_gather_bytes(mine, len, -1, &out, &lens));
    CHECK(out != NULL && lens != NULL && lens[1] == 3 && out[0] == 'b');
    free(out), free(lens);
}

static void test_mismatch(int r) {
    float x[2] = {0, 0};
    CHECK_FAIL(rlaif_dist_allreduce_f32(x, r == 0 ? 1 : 2, RLAIF_DIST_SUM), RLAIF_EINVAL, "different sizes");
    CHECK_FAIL(rlaif_dist_broadcast_f32(x, 1, r), RLAIF_EINVAL, "different roots");
    CHECK_FAIL(rlaif_dist_allreduce_f32(x, 1, r == 0 ? RLAIF_DIST_SUM : RLAIF_DIST_MAX), RLAIF_EINVAL,
               "different operations (");
    char *out = NULL;
    size_t *lens = NULL;
    CHECK_FAIL(rlaif_dist_gather_bytes("a", 1, r == 0 ? 0 : -1, &out, &lens), RLAIF_EINVAL, "different");
    /* the group is still usable afterwards */
    float y[1] = {1};
    CHECK_OK(rlaif_dist_allreduce_f32(y, 1, RLAIF_DIST_SUM));
    CHECK(y[0] == (float)rlaif_dist_size());
}

static void test_models(int r, int n) {
    rlaif_model *m = tiny(10 + (uint64_t)r);   /* different weights on every rank */
    size_t np = m->num_params;
    if (r == 0) {   /* rank 0 has no gradients yet: they count as zeros */
        CHECK_OK(rlaif_dist_allreduce_grads(m, RLAIF_DIST_SUM));
    } else {
        CHECK_OK(rlaif_model_zero_grad(m));
        for (size_t i = 0; i < np; i++) m->grads_memory[i] = (float)r * 0.5f;
        CHECK_OK(rlaif_dist_allreduce_grads(m, RLAIF_DIST_SUM));
    }
    float want = 0;
    for (int k = 1; k < n; k++) want += (float)k * 0.5f;
    CHECK(m->grads_memory && m->grads_memory[0] == want && m->grads_memory[np - 1] == want);
    /* rank 1 takes an optimizer step (AdamW moments, step 1), then sends its model */
    if (r == 1) {
        rlaif_adamw o = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
        CHECK_OK(rlaif_model_adamw_step(m, &o));
    }
    float mine = m->params_memory[5];
    CHECK_OK(rlaif_dist_broadcast_model(m, 1));
    float p[2] = {m->params_memory[5], -m->params_memory[5]};
    CHECK_OK(rlaif_dist_allreduce_f32(p, 2, RLAIF_DIST_MAX));
    CHECK(p[0] == -p[1]);   /* the same value everywhere */
    if (r == 1) CHECK(m->params_memory[5] == mine);
    CHECK(m->opt_step == 1 && m->m_memory != NULL && m->v_memory != NULL);
    /* a model without moments on the sender frees the receivers' */
    rlaif_model *fresh = tiny(3);
    if (r == 0) CHECK_OK(rlaif_dist_broadcast_model(fresh, 0));
    else CHECK_OK(rlaif_dist_broadcast_model(m, 0));
    if (r != 0) CHECK(m->m_memory == NULL && m->opt_step == 0 && m->params_memory[5] == fresh->params_memory[5]);
    rlaif_model_free(fresh);
    rlaif_model_free(m);
}

int main(void) {
    CHECK_OK(rlaif_dist_init());
    int r = rlaif_dist_rank(), n = rlaif_dist_size();
    test_bad_arguments();
    if (n == 1) {
        test_alone();
    } else {
        test_reductions(r, n);
        test_broadcasts(r);
        test_gathers(r, n);
        test_mismatch(r);
        test_models(r, n);
        CHECK_OK(rlaif_dist_barrier());
    }
    char name[64];
    snprintf(name, sizeof name, n == 1 ? "test_dist" : "test_dist (rank %d of %d)", r, n);
    return check_report(name);
}
