/* tests/c/test_model.c -- transformer kernels and models against finite
 * differences and PyTorch goldens (tests/fixtures/model, written by
 * scripts/gen_model_fixtures.py), checkpoint round trips and bad-file errors.
 * Small configurations only: this runs under ASan+UBSan. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "kernels.h"
#include "model.h"

#define FIX "tests/fixtures/model/"

/* ---- helpers ---- */

static rlaif_rng rng;

static float *randv(int n, float scale) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (int i = 0; i < n; i++) v[i] = scale * (2.0f * rlaif_rng_uniform(&rng) - 1.0f);
    return v;
}
static float *zeros(int n) { return calloc(n ? n : 1, sizeof(float)); }
static double dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Compare n values; print the first few mismatches and the max diff. */
static int close_arrays(const char *what, const float *got, const float *want, int64_t n, double rtol, double atol) {
    double maxd = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > maxd) maxd = d;
        if (!(d <= atol + rtol * fabs(want[i]))) {
            if (bad < 3) fprintf(stderr, "  %s[%lld]: got %.7g want %.7g\n", what, (long long)i, got[i], want[i]);
            bad++;
        }
    }
    check_count++;
    if (bad) {
        check_failures++;
        fprintf(stderr, "%s: %d of %lld differ, max |diff| %.3g\n", what, bad, (long long)n, maxd);
    }
    return bad == 0;
}

/* Finite-difference check of d(sum(R * f(x)))/dx against an analytic gradient. */
typedef void (*fwd_fn)(void *ctx, float *out);
static void fd_check(const char *what, float *x, int nx, const float *grad, fwd_fn f, void *ctx, const float *R,
                     int nout, float eps, double tol) {
    float *out = zeros(nout);
    double maxerr = 0;
    int bad = 0;
    int step = nx > 200 ? nx / 200 : 1;   /* sample large inputs */
    for (int i = 0; i < nx; i += step) {
        float x0 = x[i];
        x[i] = x0 + eps;
        f(ctx, out);
        double lp = dot(out, R, nout);
        x[i] = x0 - eps;
        f(ctx, out);
        double lm = dot(out, R, nout);
        x[i] = x0;
        double num = (lp - lm) / (2 * eps), err = fabs(num - grad[i]) / (1e-2 + fabs(num) + fabs(grad[i]));
        if (err > maxerr) maxerr = err;
        if (err > tol && bad++ < 3) fprintf(stderr, "  %s[%d]: numeric %.6g analytic %.6g\n", what, i, num, grad[i]);
    }
    check_count++;
    if (bad) {
        check_failures++;
        fprintf(stderr, "%s: finite differences disagree (max rel err %.3g)\n", what, maxerr);
    }
    free(out);
}

/* ---- kernel gradient checks ---- */

enum { N_ = 6, C_ = 8 };

typedef struct { float *inp, *w, *b, *mean, *rstd; int N, C, rms; } norm_ctx;
static void norm_f(void *p, float *out) {
    norm_ctx *c = p;
    if (c->rms) rmsnorm_forward(out, c->rstd, c->inp, c->w, c->N, c->C, 1e-5f);
    else layernorm_forward(out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, 1e-5f);
}

static void test_norms(void) {
    for (int rms = 0; rms < 2; rms++) {
        norm_ctx c = {randv(N_ * C_, 2), randv(C_, 1), randv(C_, 1), zeros(N_), zeros(N_), N_, C_, rms};
        float *R = randv(N_ * C_, 1), *out = zeros(N_ * C_), *dx = zeros(N_ * C_), *dw = zeros(C_), *db = zeros(C_);
        norm_f(&c, out);
        if (rms) rmsnorm_backward(dx, dw, R, c.inp, c.w, c.rstd, N_, C_);
        else layernorm_backward(dx, dw, db, R, c.inp, c.w, c.mean, c.rstd, N_, C_);
        const char *nm = rms ? "rmsnorm" : "layernorm";
        char what[64];
        snprintf(what, sizeof what, "%s dinp", nm), fd_check(what, c.inp, N_ * C_, dx, norm_f, &c, R, N_ * C_, 1e-2f, 2e-2);
        snprintf(what, sizeof what, "%s dw", nm), fd_check(what, c.w, C_, dw, norm_f, &c, R, N_ * C_, 1e-2f, 2e-2);
        if (!rms) fd_check("layernorm db", c.b, C_, db, norm_f, &c, R, N_ * C_, 1e-2f, 2e-2);
        free(c.inp), free(c.w), free(c.b), free(c.mean), free(c.rstd), free(R), free(out), free(dx), free(dw), free(db);
    }
}

typedef struct { float *inp, *w, *b; int N, C, OC; } mm_ctx;
static void mm_f(void *p, float *out) {
    mm_ctx *c = p;
    matmul_forward(out, c->inp, c->w, c->b, c->N, c->C, c->OC, 0);
}

static void test_matmul(void) {
    int OC = 5;
    mm_ctx c = {randv(N_ * C_, 1), randv(OC * C_, 1), randv(OC, 1), N_, C_, OC};
    float *R = randv(N_ * OC, 1), *dx = zeros(N_ * C_), *dw = zeros(OC * C_), *db = zeros(OC);
    /* accumulate twice: backward must add, not overwrite */
    matmul_backward(dx, dw, db, R, c.inp, c.w, N_, C_, OC);
    for (int i = 0; i < N_ * C_; i++) dx[i] *= 0.5f;
    matmul_backward(dx, NULL, NULL, R, c.inp, c.w, N_, C_, OC);
    for (int i = 0; i < N_ * C_; i++) dx[i] /= 1.5f;
    fd_check("matmul dinp", c.inp, N_ * C_, dx, mm_f, &c, R, N_ * OC, 1e-2f, 1e-2);
    fd_check("matmul dw", c.w, OC * C_, dw, mm_f, &c, R, N_ * OC, 1e-2f, 1e-2);
    fd_check("matmul dbias", c.b, OC, db, mm_f, &c, R, N_ * OC, 1e-2f, 1e-2);
    free(c.inp), free(c.w), free(c.b), free(R), free(dx), free(dw), free(db);
}

typedef struct { float *qkv, *att, *cosb, *sinb; int32_t *mask, *pos; int B, T, H, KV, hd, rope; } att_ctx;
static void att_f(void *p, float *out) {
    att_ctx *c = p;
    int QKV = (c->H + 2 * c->KV) * c->hd, n = c->B * c->T * QKV;
    float *tmp = malloc(sizeof(float) * n);
    memcpy(tmp, c->qkv, sizeof(float) * n);
    if (c->rope) rope_forward(tmp, c->cosb, c->sinb, c->pos, c->B, c->T, c->H, c->KV, c->hd);
    attention_forward(out, c->att, tmp, c->mask, c->B, c->T, c->H, c->KV, c->hd);
    free(tmp);
}

static void test_attention(void) {
    int B = 2, T = 5, H = 4, KV = 2, hd = 4, QKV = (H + 2 * KV) * hd, QD = H * hd;
    int32_t mask[10] = {1, 1, 1, 1, 1, 0, 0, 1, 1, 1}, pos[10] = {0, 1, 2, 3, 4, 0, 0, 0, 1, 2};
    for (int rp = 0; rp < 2; rp++) {
        att_ctx c = {randv(B * T * QKV, 1), zeros(B * H * T * T), randv(T * hd / 2, 1), randv(T * hd / 2, 1), mask,
                     pos, B, T, H, KV, hd, rp};
        float *R = randv(B * T * QD, 1), *out = zeros(B * T * QD), *dq = zeros(B * T * QKV),
              *datt = zeros(B * H * T * T);
        /* forward with the rotation applied, keep the rotated qkv for backward */
        float *rot = malloc(sizeof(float) * B * T * QKV);
        memcpy(rot, c.qkv, sizeof(float) * B * T * QKV);
        if (rp) rope_forward(rot, c.cosb, c.sinb, pos, B, T, H, KV, hd);
        attention_forward(out, c.att, rot, mask, B, T, H, KV, hd);
        attention_backward(dq, datt, R, rot, c.att, B, T, H, KV, hd);
        if (rp) rope_backward(dq, c.cosb, c.sinb, pos, B, T, H, KV, hd);
        fd_check(rp ? "rope+attention dqkv" : "attention dqkv (GQA, padded)", c.qkv, B * T * QKV, dq, att_f, &c, R,
                 B * T * QD, 1e-2f, 2e-2);
        /* row b=1, t=0 is a left pad with no key: zero output */
        CHECK(out[(1 * T + 0) * QD] == 0.0f);
        free(c.qkv), free(c.att), free(c.cosb), free(c.sinb), free(R), free(out), free(dq), free(datt), free(rot);
    }
}

typedef struct { float *inp; int n, swi; } act_ctx;
static void act_f(void *p, float *out) {
    act_ctx *c = p;
    if (c->swi) swiglu_forward(out, c->inp, c->n, C_);
    else gelu_forward(out, c->inp, c->n);
}

static void test_activations(void) {
    act_ctx g = {randv(N_ * C_, 3), N_ * C_, 0};
    float *R = randv(N_ * C_, 1), *dx = zeros(N_ * C_);
    gelu_backward(dx, g.inp, R, N_ * C_);
    fd_check("gelu", g.inp, N_ * C_, dx, act_f, &g, R, N_ * C_, 1e-3f, 1e-2);
    act_ctx s = {randv(N_ * 2 * C_, 3), N_, 1};
    float *dx2 = zeros(N_ * 2 * C_);
    swiglu_backward(dx2, s.inp, R, N_, C_);
    fd_check("swiglu", s.inp, N_ * 2 * C_, dx2, act_f, &s, R, N_ * C_, 1e-3f, 1e-2);
    free(g.inp), free(R), free(dx), free(s.inp), free(dx2);
}

typedef struct { const int32_t *ids, *pos; float *wte, *wpe; } enc_ctx;
/* The tiled BLIS path (N > 16 rows), the decoding GEMV path (N <= 16) and the
 * fused LM head against double-precision references, at ragged sizes (C and
 * OC not multiples of 16; V spanning several LM_CHUNKs with a short last one). */
static void test_linear_paths(void) {
    int C = 37, OC = 203, Ns[] = {40, 16, 5, 1};
    float *w = randv(OC * C, 1), *b = randv(OC, 1), *inp = randv(40 * C, 1), *out = zeros(40 * OC);
    for (int k = 0; k < 4; k++) {
        int N = Ns[k];
        for (int i = 0; i < N * OC; i++) out[i] = 0.25f;
        matmul_forward(out, inp, w, b, N, C, OC, 1);
        int bad = 0;
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double ref = 0.25 + b[o] + dot(inp + n * C, w + o * C, C);
                if (fabs(out[n * OC + o] - ref) > 1e-4 * (1 + fabs(ref)) && bad++ < 3)
                    fprintf(stderr, "  matmul N=%d [%d,%d]: %g vs %g\n", N, n, o, out[n * OC + o], ref);
            }
        CHECK(bad == 0);
    }
    /* fused LM head vs matmul + crossentropy kernels */
    int N = 5, V = 2 * LM_CHUNK + 77;
    float *wte = randv(V * C, 1), *x = randv(N * C, 1), *lg = zeros(N * V), *lg2 = zeros(N * V);
    float *lse = zeros(N), *lse2 = zeros(N), *scr = zeros(lmhead_scratch_floats(N, V));
    int32_t t[5] = {3, -1, V - 1, LM_CHUNK, 0};
    float wt[5] = {0.5f, 1.0f, 0.25f, 1.0f, 0.0f};
    lmhead_forward(lg, lse, scr, x, wte, N, C, V);
    matmul_forward(lg2, x, wte, NULL, N, C, V, 0);
    crossentropy_forward(NULL, lse2, lg2, NULL, N, V);
    close_arrays("lmhead logits", lg, lg2, (int64_t)N * V, 1e-5, 1e-5);
    close_arrays("lmhead lse", lse, lse2, N, 1e-6, 1e-5);
    float *dx = zeros(N * C), *dw = zeros(V * C), *dx2 = zeros(N * C), *dw2 = zeros(V * C);
    lmhead_backward(dx, dw, lg, lse, t, wt, x, wte, N, C, V);
    crossentropy_backward(lg2, lse2, t, wt, N, V);
    matmul_backward(dx2, dw2, NULL, lg2, x, wte, N, C, V);
    close_arrays("lmhead dlogits", lg, lg2, (int64_t)N * V, 1e-5, 1e-7);
    close_arrays("lmhead dinp", dx, dx2, N * C, 1e-4, 1e-6);
    close_arrays("lmhead dw", dw, dw2, V * C, 1e-4, 1e-7);
    free(w), free(b), free(inp), free(out), free(wte), free(x), free(lg), free(lg2), free(lse), free(lse2), free(scr),
        free(dx), free(dw), free(dx2), free(dw2);
}

static void enc_f(void *p, float *out) {
    enc_ctx *c = p;
    encoder_forward(out, c->ids, c->pos, c->wte, c->wpe, N_, C_);
}

typedef struct { float *logits, *lse; int32_t *t; int N, V; } ce_ctx;
static void ce_f(void *p, float *out) {
    ce_ctx *c = p;
    crossentropy_forward(out, c->lse, c->logits, c->t, c->N, c->V);
}

static void test_encoder_ce(void) {
    int32_t ids[N_] = {3, 1, 3, 0, 4, 1}, pos[N_] = {0, 1, 2, 0, 1, 2};
    enc_ctx e = {ids, pos, randv(5 * C_, 1), randv(3 * C_, 1)};
    float *R = randv(N_ * C_, 1), *dwte = zeros(5 * C_), *dwpe = zeros(3 * C_);
    encoder_backward(dwte, dwpe, R, ids, pos, N_, C_);
    fd_check("encoder dwte", e.wte, 5 * C_, dwte, enc_f, &e, R, N_ * C_, 1e-2f, 1e-2);
    fd_check("encoder dwpe", e.wpe, 3 * C_, dwpe, enc_f, &e, R, N_ * C_, 1e-2f, 1e-2);
    int V = 7;
    int32_t t[N_] = {1, -1, 6, 0, 3, 3};
    ce_ctx c = {randv(N_ * V, 3), zeros(N_), t, N_, V};
    float *w = randv(N_, 1), *losses = zeros(N_), *g = malloc(sizeof(float) * N_ * V);
    crossentropy_forward(losses, c.lse, c.logits, t, N_, V);
    memcpy(g, c.logits, sizeof(float) * N_ * V);
    crossentropy_backward(g, c.lse, t, w, N_, V);
    fd_check("crossentropy", c.logits, N_ * V, g, ce_f, &c, w, N_, 1e-3f, 1e-2);
    CHECK(losses[1] == 0.0f);
    free(e.wte), free(e.wpe), free(R), free(dwte), free(dwpe), free(c.logits), free(c.lse), free(w), free(losses),
        free(g);
}

typedef struct { float *r1, *r2, *p; } pair_ctx;
static void pair_f(void *q, float *out) {
    pair_ctx *c = q;
    out[0] = rlaif_reward_pair_loss(c->r1, c->r2, c->p, 4, 0.1f, 0.05f, NULL, NULL);
}

static void test_pair_loss(void) {
    float r1[4] = {0.3f, -1.2f, 2.0f, 0.1f}, r2[4] = {0.5f, 0.4f, -1.0f, 0.1f}, p[4] = {1, 0, 0.7f, 0.5f};
    float d1[4], d2[4], one = 1;
    pair_ctx c = {r1, r2, p};
    rlaif_reward_pair_loss(r1, r2, p, 4, 0.1f, 0.05f, d1, d2);
    fd_check("reward pair loss dr1", r1, 4, d1, pair_f, &c, &one, 1, 1e-3f, 1e-3);
    fd_check("reward pair loss dr2", r2, 4, d2, pair_f, &c, &one, 1, 1e-3f, 1e-3);
    /* p = 1, no margin/centre: Bradley-Terry -log sigmoid(r1 - r2) */
    float a = 2, b = 0.5f, q = 1;
    CHECK_CLOSE(rlaif_reward_pair_loss(&a, &b, &q, 1, 0, 0, NULL, NULL), log1p(exp(-1.5)), 1e-6);
}

/* ---- PyTorch goldens ---- */

typedef struct { rlaif_named_tensor *items; int n; } golden;

static const rlaif_tensor *gget(const golden *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->items[i].name, name) == 0) return g->items[i].tensor;
    fprintf(stderr, "golden tensor %s missing\n", name);
    return NULL;
}

static void to_ints(const rlaif_tensor *t, int32_t *out) {
    for (int64_t i = 0; i < rlaif_tensor_numel(t); i++) out[i] = (int32_t)t->data[i];
}

/* every parameter view against golden "<prefix><name>" */
/* For "final." values, elements whose golden gradient is ~0 (e.g. key biases, to
 * which softmax is invariant) are skipped: AdamW turns their rounding noise into
 * full-size steps of arbitrary sign. */
static void compare_params(rlaif_model *m, const golden *g, const char *prefix, int grad, double rtol, double atol) {
    rlaif_hf_entry *e;
    int n;
    CHECK_OK(rlaif_model_hf_entries(m, &e, &n));
    for (int i = 0; i < n; i++) {
        char key[160];
        snprintf(key, sizeof key, "%s%s", prefix, e[i].name);
        const rlaif_tensor *want = gget(g, key);
        rlaif_tensor *v = NULL, *c = NULL;
        CHECK(want != NULL);
        if (want == NULL) continue;
        CHECK_OK(rlaif_model_param_view(m, e[i].name, grad, &v));
        CHECK(v != NULL && rlaif_tensor_numel(v) == rlaif_tensor_numel(want));
        if (v && rlaif_tensor_numel(v) == rlaif_tensor_numel(want)) {
            CHECK_OK(rlaif_tensor_contiguous(&c, v));
            int64_t nn = rlaif_tensor_numel(want);
            float *ref = malloc(sizeof(float) * nn);
            memcpy(ref, want->data, sizeof(float) * nn);
            char gkey[160];
            snprintf(gkey, sizeof gkey, "grad.%s", e[i].name);
            const rlaif_tensor *gg = strcmp(prefix, "final.") == 0 ? gget(g, gkey) : NULL;
            for (int64_t k = 0; gg && k < nn; k++)
                if (fabsf(gg->data[k]) < 1e-6f) ref[k] = c->data[k];
            close_arrays(key, c->data, ref, nn, rtol, atol);
            free(ref);
        }
        rlaif_tensor_release(c);
        rlaif_tensor_release(v);
    }
    free(e);
}

static void test_golden_lm(const char *name) {
    char dir[256], path[300];
    snprintf(dir, sizeof dir, FIX "%s", name);
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    golden g = {0};
    rlaif_model *m = NULL;
    CHECK_OK(rlaif_safetensors_load(path, &g.items, &g.n));
    CHECK_OK(rlaif_model_load(&m, dir, RLAIF_HEAD_LM));
    if (m == NULL || g.items == NULL) return;
    const rlaif_tensor *ids_t = gget(&g, "ids");
    int B = (int)ids_t->shape[0], T = (int)ids_t->shape[1], V = m->cfg.vocab_size;
    int32_t ids[64], mask[64], targets[64];
    to_ints(ids_t, ids), to_ints(gget(&g, "mask"), mask), to_ints(gget(&g, "targets"), targets);
    CHECK_OK(rlaif_model_forward(m, ids, mask, B, T, 1));
    char what[128];
    snprintf(what, sizeof what, "%s logits", name);
    close_arrays(what, m->acts.logits, gget(&g, "logits")->data, (int64_t)B * T * V, 1e-4, 1e-4);
    float loss;
    int count;
    CHECK_OK(rlaif_model_lm_loss(m, targets, &loss, NULL, &count));
    CHECK_CLOSE(loss, gget(&g, "loss")->data[0], 1e-5);
    CHECK_OK(rlaif_model_zero_grad(m));
    CHECK_OK(rlaif_model_backward_ce(m, targets, NULL, 1.0f / count));
    compare_params(m, &g, "grad.", 1, 1e-3, 1e-5);
    /* three AdamW steps on the same batch */
    rlaif_adamw opt = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f};
    rlaif_model_free(m);
    m = NULL;
    CHECK_OK(rlaif_model_load(&m, dir, RLAIF_HEAD_LM));
    for (int s = 0; s < 3 && m; s++) {
        CHECK_OK(rlaif_model_zero_grad(m));
        CHECK_OK(rlaif_model_forward(m, ids, mask, B, T, 1));
        CHECK_OK(rlaif_model_lm_loss(m, targets, &loss, NULL, &count));
        CHECK_CLOSE(loss, gget(&g, "step_loss")->data[s], 1e-4);
        CHECK_OK(rlaif_model_backward_ce(m, targets, NULL, 1.0f / count));
        CHECK_OK(rlaif_model_adamw_step(m, &opt));
    }
    if (m) compare_params(m, &g, "final.", 0, 1e-4, 1e-5);
    /* a padded row gives the same logits as the row alone (row 3 is left-padded by 3) */
    int32_t row[4];
    float *padded = malloc(sizeof(float) * 4 * V);
    CHECK_OK(rlaif_model_forward(m, ids, mask, B, T, 1));
    memcpy(padded, m->acts.logits + ((size_t)2 * T + 3) * V, sizeof(float) * 4 * V);
    memcpy(row, ids + 2 * T + 3, sizeof row);
    CHECK_OK(rlaif_model_forward(m, row, NULL, 1, 4, 1));
    snprintf(what, sizeof what, "%s left-padded row vs alone", name);
    close_arrays(what, m->acts.logits, padded, 4 * V, 1e-5, 1e-5);
    free(padded);
    rlaif_model_free(m);
    rlaif_safetensors_free(g.items, g.n);
}

static void test_golden_reward(void) {
    golden g = {0};
    rlaif_model *m = NULL;
    CHECK_OK(rlaif_safetensors_load(FIX "gpt2_reward/golden.safetensors", &g.items, &g.n));
    CHECK_OK(rlaif_model_load(&m, FIX "gpt2_reward", RLAIF_HEAD_REWARD));
    if (m == NULL || g.items == NULL) return;
    int32_t ids[21], mask[21];
    to_ints(gget(&g, "ids"), ids), to_ints(gget(&g, "mask"), mask);
    CHECK_OK(rlaif_model_forward(m, ids, mask, 3, 7, 0));
    CHECK_FAIL(rlaif_model_forward(m, ids, mask, 3, 7, 1), RLAIF_EINVAL, "no LM head");
    CHECK_OK(rlaif_model_forward(m, ids, mask, 3, 7, 0));
    float r[3], d1[2], d2[2], dr[3] = {0};
    CHECK_OK(rlaif_model_reward(m, r));
    close_arrays("reward", r, gget(&g, "reward")->data, 3, 1e-4, 1e-5);
    float r1[2] = {r[0], r[2]}, r2[2] = {r[1], r[0]};
    float loss = rlaif_reward_pair_loss(r1, r2, gget(&g, "pair_p")->data, 2, 0.1f, 0.01f, d1, d2);
    CHECK_CLOSE(loss, gget(&g, "pair_loss")->data[0], 1e-5);
    dr[0] += d1[0], dr[2] += d1[1], dr[1] += d2[0], dr[0] += d2[1];
    CHECK_OK(rlaif_model_zero_grad(m));
    CHECK_OK(rlaif_model_backward_reward(m, dr));
    compare_params(m, &g, "grad.", 1, 1e-3, 1e-6);
    rlaif_model_free(m);
    rlaif_safetensors_free(g.items, g.n);
}

/* ---- checkpoints ---- */

static void test_roundtrip(void) {
    char dir[] = "/tmp/rlaif_model_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    rlaif_model *a = NULL, *b = NULL;
    CHECK_OK(rlaif_model_load(&a, FIX "llama_gqa", RLAIF_HEAD_LM));
    CHECK_OK(rlaif_model_save(a, dir));
    CHECK_OK(rlaif_model_load(&b, dir, RLAIF_HEAD_LM));
    if (a && b) {
        CHECK(a->num_params == b->num_params);
        CHECK(memcmp(a->params_memory, b->params_memory, a->num_params * 4) == 0);
        CHECK(b->cfg.rope_type == RLAIF_ROPE_LLAMA3 && b->cfg.n_kv_head == 2 && !b->cfg.tie_embeddings);
    }
    rlaif_model_free(b);
    b = NULL;
    /* GPT-2 keeps Conv1D [in, out] layouts */
    rlaif_model *g = NULL;
    CHECK_OK(rlaif_model_load(&g, FIX "gpt2", RLAIF_HEAD_LM));
    CHECK_OK(rlaif_model_save(g, dir));
    CHECK_OK(rlaif_model_load(&b, dir, RLAIF_HEAD_LM));
    if (g && b) CHECK(memcmp(g->params_memory, b->params_memory, g->num_params * 4) == 0);
    rlaif_named_tensor *items = NULL;
    int n = 0;
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(rlaif_safetensors_load(path, &items, &n));
    for (int i = 0; i < n; i++)
        if (strcmp(items[i].name, "transformer.h.0.mlp.c_fc.weight") == 0)
            CHECK(items[i].tensor->shape[0] == 32 && items[i].tensor->shape[1] == 128);
    /* training state: bit-exact */
    rlaif_adamw opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
    int32_t ids[5] = {1, 2, 3, 4, 5}, tg[5] = {2, 3, 4, 5, -100};
    float l;
    int c;
    CHECK_OK(rlaif_model_forward(g, ids, NULL, 1, 5, 1));
    CHECK_OK(rlaif_model_lm_loss(g, tg, &l, NULL, &c));
    CHECK_OK(rlaif_model_backward_ce(g, tg, NULL, 1.0f / c));
    CHECK_OK(rlaif_model_adamw_step(g, &opt));
    snprintf(path, sizeof path, "%s/state.bin", dir);
    CHECK_OK(rlaif_model_save_state(g, path, "pos=7", 5));
    void *blob = NULL;
    size_t blen = 0;
    CHECK_OK(rlaif_model_load_state(b, path, &blob, &blen));
    CHECK(blen == 5 && blob && memcmp(blob, "pos=7", 5) == 0);
    CHECK(b->opt_step == 1 && memcmp(b->m_memory, g->m_memory, g->num_params * 4) == 0);
    CHECK(memcmp(b->params_memory, g->params_memory, g->num_params * 4) == 0);
    free(blob);
    CHECK_FAIL(rlaif_model_load_state(a, path, NULL, NULL), RLAIF_EFORMAT, "different model");
    rlaif_safetensors_free(items, n);
    rlaif_model_free(a), rlaif_model_free(b), rlaif_model_free(g);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* a safetensors file with one tensor's header entry replaced */
static void write_bad(const char *path, const char *victim, const char *how) {
    rlaif_named_tensor *items = NULL;
    int n = 0;
    CHECK_OK(rlaif_safetensors_load(FIX "gpt2/model.safetensors", &items, &n));
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(items[i].name, victim) == 0 && strcmp(how, "missing") == 0) {
            free(items[i].name), rlaif_tensor_release(items[i].tensor);
            continue;
        }
        if (strcmp(items[i].name, victim) == 0 && strcmp(how, "shape") == 0) {
            rlaif_tensor *v = NULL;
            int64_t shp[2] = {items[i].tensor->shape[1], items[i].tensor->shape[0]};
            CHECK_OK(rlaif_tensor_reshape(&v, items[i].tensor, 2, shp));
            rlaif_tensor_release(items[i].tensor);
            items[i].tensor = v;
        }
        items[k++] = items[i];
    }
    CHECK_OK(rlaif_safetensors_save(path, items, k));
    rlaif_safetensors_free(items, k);
}

static void test_bad_files(void) {
    char dir[] = "/tmp/rlaif_model_bad_XXXXXX", path[128], cmd[600];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cmd, sizeof cmd, "cp " FIX "gpt2/config.json %s/", dir);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rlaif_model *m = NULL;
    write_bad(path, "transformer.h.1.attn.c_proj.bias", "missing");
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EFORMAT,
               "tensor 'transformer.h.1.attn.c_proj.bias' is missing");
    write_bad(path, "transformer.h.0.mlp.c_fc.weight", "shape");
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EFORMAT,
               "tensor 'transformer.h.0.mlp.c_fc.weight' has shape [128,32], expected [32,128]");
    /* truncated: drop the last 100 bytes of a good file */
    snprintf(cmd, sizeof cmd, "head -c -100 " FIX "gpt2/model.safetensors > %s", path);
    CHECK(system(cmd) == 0);
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EFORMAT, "truncated file");
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EFORMAT, "tensor '");
    /* wrong dtype: rewrite one dtype string in place (same length) */
    snprintf(cmd, sizeof cmd,
             "cp " FIX "gpt2/model.safetensors %s && python3 -c \"import sys;p=sys.argv[1];b=open(p,'rb').read();"
             "i=b.index(b'transformer.ln_f.bias');j=b.index(b'F32',i);open(p,'wb').write(b[:j]+b'I32'+b[j+3:])\" %s",
             path, path);
    if (system(cmd) == 0)
        CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EFORMAT,
                   "tensor 'transformer.ln_f.bias' has dtype I32");
    CHECK(m == NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    CHECK_FAIL(rlaif_model_load(&m, "/nonexistent/dir", RLAIF_HEAD_LM), RLAIF_EIO, "config.json");
}

static void test_new_and_errors(void) {
    rlaif_model_config c;
    rlaif_model_config_defaults(&c, RLAIF_ARCH_LLAMA);
    c.vocab_size = 11, c.n_layer = 1, c.n_head = 3, c.n_kv_head = 2, c.d_model = 12;
    rlaif_model *m = NULL;
    CHECK_FAIL(rlaif_model_new(&m, &c, 1), RLAIF_EINVAL, "n_head 3 is not a multiple of n_kv_head 2");
    c.n_kv_head = 1;
    CHECK_OK(rlaif_model_new(&m, &c, 1));
    int32_t ids[3] = {1, 11, 2};
    CHECK_FAIL(rlaif_model_forward(m, ids, NULL, 1, 3, 1), RLAIF_EINVAL, "token id 11 at row 1, position 2");
    float loss;
    int32_t t[3] = {0, 0, 0};
    CHECK_FAIL(rlaif_model_lm_loss(m, t, &loss, NULL, NULL), RLAIF_EINVAL, "needs a forward");
    rlaif_model_free(m);
}

/* Crafted config.json and batch sizes (issue 15, item 2): every field passes
 * its own bound while the products overflow size_t (the allocation was small
 * and the initialiser wrote past it), floats were cast into ints, B*T and
 * Tp + max_new_tokens overflowed an int. Each is refused naming the fields. */
static void write_config_json(const char *dir, const char *json) {
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(json, f);
    fclose(f);
}

/* rlaif.model.load of a safetensors file whose wte offsets wrap around 2^64
 * (issue 15, item 1): the model reader used to copy 2048 bytes from before the
 * mapping into the embedding. */
static void test_crafted_offsets_load(void) {
    char dir[] = "/tmp/rlaif_model_off_XXXXXX", path[256], cmd[300];
    CHECK(mkdtemp(dir) != NULL);
    write_config_json(dir, "{\"model_type\": \"gpt2\", \"vocab_size\": 64, \"n_embd\": 8, \"n_layer\": 1, "
                      "\"n_head\": 1, \"n_positions\": 4}");
    const char *h = "{\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[64,8],"
                    "\"data_offsets\":[18446744073709549568,18446744073709551616]}}";
    unsigned char len8[8];
    uint64_t hl = strlen(h);
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    fwrite(len8, 1, 8, f);
    fwrite(h, 1, hl, f);
    static const float zero[512];
    fwrite(zero, 1, sizeof zero, f);
    fclose(f);
    rlaif_model *m = NULL;
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EFORMAT,
               "header number '18446744073709549568' at byte 80 is not an unsigned integer");
    CHECK(m == NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* A checkpoint save killed by SIGKILL before its rename leaves a temporary as
 * big as the checkpoint (issue 15, item 10); the next save of the same path
 * removes it, and only it: live writers' temporaries, other names and other
 * targets stay. */
static rlaif_status fill_then_die(FILE *f, void *ud) {
    static const char junk[65536];
    for (int i = 0; i < 16; i++) fwrite(junk, 1, sizeof junk, f);
    fflush(f);
    raise(SIGKILL);
    return RLAIF_OK;
}

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void test_stale_temporaries(void) {
    char dir[] = "/tmp/rlaif_model_tmp_XXXXXX", path[256], left[300], live[300], other[300], foreign[300], cmd[300];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/state.bin", dir);
    pid_t child = fork();
    if (child == 0) {
        rlaif_write_file_atomic(path, "test", 0644, fill_then_die, NULL);
        _exit(0);
    }
    int ws = 0;
    waitpid(child, &ws, 0);
    CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    char prefix[64];   /* the serial number is whatever the child's counter was */
    snprintf(prefix, sizeof prefix, "state.bin.tmp.%ld.", (long)child);
    left[0] = '\0';
    DIR *dd = opendir(dir);
    for (struct dirent *de; dd && (de = readdir(dd)) != NULL;)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) snprintf(left, sizeof left, "%s/%s", dir, de->d_name);
    if (dd) closedir(dd);
    struct stat lsb;
    CHECK(left[0] && stat(left, &lsb) == 0 && lsb.st_size == 16 * 65536);   /* what a killed save leaves */
    snprintf(live, sizeof live, "%s/state.bin.tmp.%ld.3", dir, (long)getppid());   /* a live writer's */
    snprintf(other, sizeof other, "%s/other.bin.tmp.%ld.0", dir, (long)child);       /* another target's */
    snprintf(foreign, sizeof foreign, "%s/state.bin.tmp.%ld.x", dir, (long)child);   /* not our pattern */
    FILE *f;
    if ((f = fopen(live, "w")) != NULL) fclose(f);
    if ((f = fopen(other, "w")) != NULL) fclose(f);
    if ((f = fopen(foreign, "w")) != NULL) fclose(f);
    rlaif_model_config c;
    rlaif_model_config_defaults(&c, RLAIF_ARCH_GPT2);
    c.vocab_size = 8, c.n_layer = 1, c.n_head = 1, c.d_model = 4, c.max_seq = 4;
    rlaif_model *m = NULL;
    CHECK_OK(rlaif_model_new(&m, &c, 1));
    CHECK_OK(rlaif_model_save_state(m, path, NULL, 0));
    CHECK(!exists(left));
    CHECK(exists(live) && exists(other) && exists(foreign) && exists(path));
    rlaif_model_free(m);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static void test_crafted_config(void) {
    char dir[] = "/tmp/rlaif_model_cfg_XXXXXX", cmd[300];
    CHECK(mkdtemp(dir) != NULL);
    rlaif_model *m = NULL;
    /* L * QKV * C = 2^24 * 3*2^20 * 2^20 wraps around 2^64 */
    write_config_json(dir, "{\"model_type\": \"llama\", \"vocab_size\": 16777216, \"hidden_size\": 1048576, "
                      "\"intermediate_size\": 16777216, \"num_hidden_layers\": 16777216, "
                      "\"num_attention_heads\": 8, \"tie_word_embeddings\": false}");
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_ENOMEM,
               "vocab_size 16777216, d_model 1048576, n_layer 16777216, n_head 8, n_kv_head 8, head_dim 131072, "
               "d_ff 16777216, max_seq 2048 (untied) make more than 2^40 parameters");
    CHECK(strstr(rlaif_last_error(), "config.json") != NULL);
    /* no overflow, but 2^41 embedding floats */
    write_config_json(dir, "{\"model_type\": \"gpt2\", \"vocab_size\": 16777216, \"n_embd\": 131072, "
                      "\"n_layer\": 1, \"n_head\": 1}");
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_ENOMEM, "make more than 2^40 parameters");
    /* the int width of QKV */
    write_config_json(dir, "{\"model_type\": \"llama\", \"vocab_size\": 8, \"hidden_size\": 16777216, "
                      "\"num_attention_heads\": 1, \"num_hidden_layers\": 1}");
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EINVAL,
               "(n_head 1 + 2 n_kv_head 1) x head_dim 16777216 = 50331648 is too large");
    /* numbers that are not ints */
    write_config_json(dir, "{\"model_type\": \"gpt2\", \"vocab_size\": 8, \"n_embd\": 4, \"n_head\": 1, "
                      "\"n_layer\": 1e40}");
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EFORMAT,
               "n_layer = 1e+40 is not an integer");
    write_config_json(dir, "{\"model_type\": \"gpt2\", \"vocab_size\": 8, \"n_embd\": 4.5, \"n_head\": 1}");
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EFORMAT, "n_embd = 4.5 is not an integer");
    write_config_json(dir, "{\"model_type\": \"gpt2\", \"vocab_size\": \"many\", \"n_embd\": 4}");
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EFORMAT, "vocab_size = a string is not an integer");
    write_config_json(dir, "{\"model_type\": \"llama\", \"vocab_size\": 8, \"hidden_size\": 4, "
                      "\"num_attention_heads\": 1, \"rms_norm_eps\": 1e300}");
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EFORMAT, "rms_norm_eps = 1e+300 is not a number");
    /* n_inner defaults to 4 * n_embd only once n_embd is known to be sane */
    write_config_json(dir, "{\"model_type\": \"gpt2\", \"vocab_size\": 8, \"n_embd\": 2147483647, \"n_head\": 1}");
    CHECK_FAIL(rlaif_model_load(&m, dir, RLAIF_HEAD_LM), RLAIF_EINVAL, "d_model must be positive (got 2147483647)");
    CHECK(m == NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);

    /* batch sizes whose element counts overflow an int */
    rlaif_model_config c;
    rlaif_model_config_defaults(&c, RLAIF_ARCH_LLAMA);
    c.vocab_size = 11, c.n_layer = 1, c.n_head = 1, c.d_model = 4, c.max_seq = 65536;
    CHECK_OK(rlaif_model_new(&m, &c, 1));
    int32_t ids[4] = {1, 2, 3, 4}, lens[1] = {4}, toks[4];
    float lps[4];
    int outlen[1];
    CHECK_FAIL(rlaif_model_forward(m, ids, NULL, 65536, 65536, 1), RLAIF_ENOMEM, "B=65536 x T=65536 is too large");
    rlaif_gen_opts go = {.max_new_tokens = 2147483647, .temperature = 0, .top_p = 1};
    CHECK_FAIL(rlaif_model_generate(m, ids, lens, 1, &go, toks, lps, outlen), RLAIF_EINVAL,
               "prompt length 4 + max_new_tokens 2147483647 is too long");
    rlaif_model_free(m);
}

/* ---- bf16 frozen weights ---- */

/* The reference rounding, written independently of the kernels: of the two bf16
 * values around x (truncated, one ulp up) take the nearer in double precision,
 * the even one on a tie; denormals flush to signed zero, NaN stays NaN. */
static uint16_t ref_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u & 0x80000000u) >> 16);
    if (isnan(x)) return 0x7fc0;   /* checked only for NaN-ness below */
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    uint32_t ul = (uint32_t)lo << 16, uh = (uint32_t)hi << 16;
    float fl, fh;
    memcpy(&fl, &ul, sizeof fl);
    memcpy(&fh, &uh, sizeof fh);
    double dl = fabs((double)x - fl), dh = isinf(fh) ? fabs((double)x - copysign(0x1p128, x)) : fabs((double)x - fh);
    if (dl < dh) return lo;
    if (dh < dl) return hi;
    return (lo & 1) ? hi : lo;
}

static float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_bf16_rounding(void) {
    enum { NV = 4099 };   /* not a multiple of 16: the masked tail runs */
    float *x = malloc(NV * sizeof(float));
    uint16_t *h = malloc(NV * sizeof(uint16_t));
    for (int i = 0; i < NV; i++) {
        uint32_t u = (uint32_t)(rlaif_rng_uniform(&rng) * 4294967295.0);
        if (i % 3 == 0) u = (u & 0xffff0000u) | 0x8000u;    /* exact ties */
        memcpy(&x[i], &u, sizeof u);
    }
    float special[] = {0.0f, -0.0f, 1e-40f, -1e-40f, INFINITY, -INFINITY, NAN, 3.4028235e38f, 1.0f, 1.00390625f,
                       1.01171875f, -2.5f, 65504.0f};
    memcpy(x, special, sizeof special);
    f32_to_bf16(h, x, NV);
    int bad = 0;
    for (int i = 0; i < NV; i++) {
        int ok = isnan(x[i]) ? isnan(from_bf16(h[i])) : h[i] == ref_bf16(x[i]);
        if (!ok && bad++ < 3) fprintf(stderr, "  bf16(%a) = 0x%04x, expected 0x%04x\n", x[i], h[i], ref_bf16(x[i]));
    }
    CHECK(bad == 0);
    CHECK(h[7] == 0x7f80);   /* FLT_MAX rounds up to infinity, as the instruction does */
    free(x);
    free(h);
}

/* A bf16 model computes as a float32 model whose matrices were rounded to
 * bf16 (the reference), through both linear paths (GEMM for a prompt, the GEMV
 * of decoding) and the LM head; it stays within the documented tolerance of
 * the float32 logits; and everything that needs float32 weights is refused. */
static void round_matrix(float *w, size_t n) {
    for (size_t i = 0; i < n; i++) w[i] = from_bf16(ref_bf16(w[i]));
}

static void test_bf16_model(rlaif_arch arch) {
    rlaif_model_config c;
    rlaif_model_config_defaults(&c, arch);
    c.vocab_size = 301, c.n_layer = 2, c.n_head = 4, c.d_model = 64, c.max_seq = 64;
    if (arch == RLAIF_ARCH_LLAMA) c.n_kv_head = 2, c.tie_embeddings = 0;
    rlaif_model *m = NULL, *ref = NULL, *h = NULL;
    CHECK_OK(rlaif_model_new(&m, &c, 5));
    CHECK_OK(rlaif_model_clone(&ref, m, RLAIF_HEAD_LM));
    CHECK_OK(rlaif_model_clone(&h, m, RLAIF_HEAD_LM));
    if (!m || !ref || !h) return;
    int mats[] = {P_WTE, P_QKVW, P_ATTPROJW, P_FCW, P_FCPROJW, P_LMHEAD};
    float *refw[] = {ref->params.wte, ref->params.qkvw, ref->params.attprojw, ref->params.fcw, ref->params.fcprojw,
                     ref->params.lm_head};
    for (int i = 0; i < 6; i++)
        if (refw[i]) round_matrix(refw[i], ref->param_sizes[mats[i]]);
    size_t f32_bytes = rlaif_model_param_bytes(h);
    CHECK_OK(rlaif_model_to_bf16(h));
    CHECK_OK(rlaif_model_to_bf16(h));   /* idempotent */
    CHECK(rlaif_model_is_bf16(h) && !rlaif_model_is_bf16(m));
    CHECK(rlaif_model_param_bytes(h) < f32_bytes * 0.55);
    enum { B = 2, T = 24 };
    int32_t ids[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 37 + 11) % c.vocab_size;
    CHECK_OK(rlaif_model_forward(m, ids, NULL, B, T, 1));
    CHECK_OK(rlaif_model_forward(ref, ids, NULL, B, T, 1));
    CHECK_OK(rlaif_model_forward(h, ids, NULL, B, T, 1));
    int64_t n = (int64_t)B * T * c.vocab_size;
    close_arrays("bf16 logits vs rounded-weight float32", h->acts.logits, ref->acts.logits, n, 1e-4, 1e-5);
    close_arrays("bf16 lse vs rounded-weight float32", h->acts.lse, ref->acts.lse, B * T, 1e-4, 1e-5);
    /* the documented tolerance against the float32 model: |d logit| <= 0.02 (1 + |logit|) */
    close_arrays("bf16 logits vs float32", h->acts.logits, m->acts.logits, n, 0.02, 0.02);
    /* decoding (GEMV path, one row per step) */
    rlaif_gen_opts go = {.max_new_tokens = 6, .temperature = 0, .top_p = 1};
    int lens[B] = {T, 9};
    int32_t tr[B * 6], th[B * 6];
    float lr[B * 6], lh[B * 6];
    int nr[B], nh[B];
    CHECK_OK(rlaif_model_generate(ref, ids, lens, B, &go, tr, lr, nr));
    CHECK_OK(rlaif_model_generate(h, ids, lens, B, &go, th, lh, nh));
    CHECK(memcmp(tr, th, sizeof tr) == 0);
    close_arrays("bf16 generate logprobs", lh, lr, B * 6, 1e-3, 1e-4);
    /* frozen */
    int32_t tg[B * T];
    for (int i = 0; i < B * T; i++) tg[i] = ids[(i + 1) % (B * T)];
    CHECK_FAIL(rlaif_model_backward_ce(h, tg, NULL, 1.0f), RLAIF_EINVAL, "model.backward: the model holds bf16");
    rlaif_adamw o = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    CHECK_FAIL(rlaif_model_adamw_step(h, &o), RLAIF_EINVAL, "model.adamw_step: the model holds bf16");
    rlaif_model *cl = NULL;
    CHECK_FAIL(rlaif_model_clone(&cl, h, RLAIF_HEAD_LM), RLAIF_EINVAL, "model.clone: the model holds bf16");
    CHECK_FAIL(rlaif_model_save(h, "build/tests/bf16_never_written"), RLAIF_EINVAL, "model.save: the model holds bf16");
    rlaif_tensor *view = NULL;
    CHECK_FAIL(rlaif_model_param_view(h, "model.norm.weight", 0, &view), RLAIF_EINVAL, "bf16");
    rlaif_model_free(m);
    rlaif_model_free(ref);
    rlaif_model_free(h);
}

int main(void) {
    rlaif_init();
    rlaif_rng_seed(&rng, 42);
    /* `make test` runs this twice: the CPU's kernels, then RLAIF_KERNELS=scalar */
    const char *want = getenv("RLAIF_KERNELS");
    printf("test_model: %s kernels\n", rlaif_kernels_name());
    if (want && strcmp(want, "scalar") == 0) CHECK(strcmp(rlaif_kernels_name(), "scalar") == 0);
    test_norms();
    test_matmul();
    test_linear_paths();
    test_attention();
    test_activations();
    test_encoder_ce();
    test_pair_loss();
    test_golden_lm("gpt2");
    test_golden_lm("llama_gqa");
    test_golden_lm("qwen2_tied");
    test_golden_reward();
    test_roundtrip();
    test_bad_files();
    test_new_and_errors();
    test_crafted_config();
    test_crafted_offsets_load();
    test_stale_temporaries();
    test_bf16_rounding();
    test_bf16_model(RLAIF_ARCH_GPT2);
    test_bf16_model(RLAIF_ARCH_LLAMA);
    return check_report("test_model");
}
