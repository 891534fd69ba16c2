/* src/core/rl.c -- per-token RL arithmetic over a padded prompt + response batch
 * (see rl.h for the layout and the conventions).
 *
 * Every loop here walks each row's response span only: positions
 * [plen - 1, plen - 1 + rlen) of a row, where position t predicts ids[t + 1].
 * The model passes reuse rlaif_model (forward, temper, token_logprobs,
 * backward_ce with per-token weights, values/backward_values), so each loss is
 * one forward and one weighted backward. Sums run in double.
 * Not here: batch statistics across processes, schedules, rewards (rl.lua). */
#include "rl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWSPAN(bt, b, t0, t1) int t0 = (bt)->plen[b] - 1, t1 = t0 + (bt)->rlen[b]

/* ---- batches ---- */

static rlaif_status batch_alloc(rlaif_rl_batch **out, int B, int T) {
    *out = NULL;
    if (B <= 0 || T <= 0) return rlaif_fail(RLAIF_EINVAL, "rl.batch: empty batch (B=%d, T=%d)", B, T);
    if ((int64_t)B * T > (1 << 28))
        return rlaif_fail(RLAIF_ENOMEM, "rl.batch: B=%d x T=%d tokens is too large", B, T);
    size_t n = (size_t)B * T;
    rlaif_rl_batch *bt = calloc(1, sizeof *bt);
    int32_t *ints = malloc(sizeof(int32_t) * (4 * n + 2 * (size_t)B));
    float *fl = calloc((RLAIF_RL_NUM_FIELDS + 1) * n + B, sizeof(float));
    if (bt == NULL || ints == NULL || fl == NULL) {
        free(bt), free(ints), free(fl);
        return rlaif_fail(RLAIF_ENOMEM, "rl.batch: out of memory for B=%d, T=%d", B, T);
    }
    bt->B = B, bt->T = T;
    bt->ids = ints, bt->mask = ints + n, bt->targets = ints + 2 * n;
    bt->plen = ints + 3 * n, bt->rlen = bt->plen + B;
    bt->rows = bt->rlen + B;
    for (int f = 0; f < RLAIF_RL_NUM_FIELDS; f++) bt->field[f] = fl + f * n;
    bt->grad = fl + RLAIF_RL_NUM_FIELDS * n;
    bt->scores = bt->grad + n;
    *out = bt;
    return RLAIF_OK;
}

void rlaif_rl_batch_free(rlaif_rl_batch *bt) {
    if (bt == NULL) return;
    free(bt->ids);
    free(bt->field[0]);
    free(bt);
}

/* the response positions, once the lengths are known */
static void index_rows(rlaif_rl_batch *bt) {
    int k = 0;
    for (int b = 0; b < bt->B; b++)
        for (int t = bt->plen[b] - 1; t < bt->plen[b] - 1 + bt->rlen[b]; t++) bt->rows[k++] = b * bt->T + t;
    bt->nrows = k;
}

/* ids, mask and targets of row b from its lengths and tokens */
static void fill_row(rlaif_rl_batch *bt, int b, const int32_t *p, const int32_t *r, int pad) {
    int T = bt->T, pl = bt->plen[b], rl = bt->rlen[b];
    int32_t *ids = bt->ids + (size_t)b * T, *mk = bt->mask + (size_t)b * T, *tg = bt->targets + (size_t)b * T;
    for (int t = 0; t < T; t++) {
        ids[t] = t < pl ? p[t] : t < pl + rl ? r[t - pl] : pad;
        mk[t] = t < pl + rl;
        tg[t] = (t >= pl - 1 && t < pl - 1 + rl) ? r[t - pl + 1] : -1;
    }
}

rlaif_status rlaif_rl_batch_new(rlaif_rl_batch **out, const int32_t *prompts, const int *plen,
                                const int32_t *responses, const int *rlen, int B, int pad) {
    *out = NULL;
    int T = 0;
    for (int b = 0; b < B; b++) {
        if (plen[b] < 1) return rlaif_fail(RLAIF_EINVAL, "rl.batch: prompt %d is empty", b + 1);
        if (rlen[b] < 1) return rlaif_fail(RLAIF_EINVAL, "rl.batch: response %d is empty", b + 1);
        if (plen[b] > (1 << 24) || rlen[b] > (1 << 24))
            return rlaif_fail(RLAIF_EINVAL, "rl.batch: row %d is too long", b + 1);
        if (plen[b] + rlen[b] > T) T = plen[b] + rlen[b];
    }
    rlaif_rl_batch *bt;
    rlaif_status st = batch_alloc(&bt, B, T);
    if (st != RLAIF_OK) return st;
    size_t po = 0, ro = 0;
    for (int b = 0; b < B; b++) {
        bt->plen[b] = plen[b], bt->rlen[b] = rlen[b];
        fill_row(bt, b, prompts + po, responses + ro, pad);
        po += plen[b], ro += rlen[b];
    }
    index_rows(bt);
    *out = bt;
    return RLAIF_OK;
}

rlaif_status rlaif_rl_batch_select(rlaif_rl_batch **out, const rlaif_rl_batch *bt, const int *rows, int n) {
    *out = NULL;
    int T = 0;
    for (int i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= bt->B)
            return rlaif_fail(RLAIF_EINVAL, "rl.batch: row %d is outside [1, %d]", rows[i] + 1, bt->B);
        int len = bt->plen[rows[i]] + bt->rlen[rows[i]];
        T = len > T ? len : T;
    }
    rlaif_rl_batch *s;
    rlaif_status st = batch_alloc(&s, n, T);
    if (st != RLAIF_OK) return st;
    for (int i = 0; i < n; i++) {
        int b = rows[i];
        s->plen[i] = bt->plen[b], s->rlen[i] = bt->rlen[b], s->scores[i] = bt->scores[b];
        size_t src = (size_t)b * bt->T, dst = (size_t)i * T;
        memcpy(s->ids + dst, bt->ids + src, sizeof(int32_t) * T);
        memcpy(s->mask + dst, bt->mask + src, sizeof(int32_t) * T);
        memcpy(s->targets + dst, bt->targets + src, sizeof(int32_t) * T);
        for (int f = 0; f < RLAIF_RL_NUM_FIELDS; f++) memcpy(s->field[f] + dst, bt->field[f] + src, sizeof(float) * T);
    }
    index_rows(s);
    *out = s;
    return RLAIF_OK;
}

int64_t rlaif_rl_batch_tokens(const rlaif_rl_batch *bt) {
    int64_t n = 0;
    for (int b = 0; b < bt->B; b++) n += bt->rlen[b];
    return n;
}

/* ---- model passes ---- */

static rlaif_status check_field(int f, const char *op) {
    if (f < 0 || f >= RLAIF_RL_NUM_FIELDS) return rlaif_fail(RLAIF_EINVAL, "%s: unknown field %d", op, f);
    return RLAIF_OK;
}

rlaif_status rlaif_rl_logprobs(rlaif_model *m, rlaif_rl_batch *bt, float tau, int f, int ent) {
    rlaif_status st = check_field(f, "rl.logprobs");
    if (st == RLAIF_OK && ent >= 0) st = check_field(ent, "rl.logprobs");
    /* the LM head runs on the response positions only */
    if (st == RLAIF_OK) st = rlaif_model_forward_rows(m, bt->ids, bt->mask, bt->B, bt->T, bt->rows, bt->nrows);
    if (st == RLAIF_OK) st = rlaif_model_temper(m, tau);
    if (st == RLAIF_OK) st = rlaif_model_token_logprobs(m, bt->targets, bt->field[f]);
    if (st == RLAIF_OK && ent >= 0) st = rlaif_model_entropy(m, bt->targets, bt->field[ent]);
    return st;
}

rlaif_status rlaif_rl_values(rlaif_model *m, rlaif_rl_batch *bt, int f) {
    rlaif_status st = check_field(f, "rl.values");
    if (st == RLAIF_OK) st = rlaif_model_forward(m, bt->ids, bt->mask, bt->B, bt->T, 0);
    if (st == RLAIF_OK) st = rlaif_model_values(m, bt->grad);
    if (st != RLAIF_OK) return st;
    float *out = bt->field[f];
    for (size_t i = 0; i < (size_t)bt->B * bt->T; i++) out[i] = bt->targets[i] >= 0 ? bt->grad[i] : 0.0f;
    return RLAIF_OK;
}

/* ---- rewards, returns, advantages ---- */

void rlaif_rl_kl(const rlaif_rl_batch *bt, float *kl_seq) {
    const float *old = bt->field[RLAIF_RL_OLD_LOGPROBS], *ref = bt->field[RLAIF_RL_REF_LOGPROBS];
    for (int b = 0; b < bt->B; b++) {
        ROWSPAN(bt, b, t0, t1);
        double s = 0;
        for (int t = t0; t < t1; t++) s += old[(size_t)b * bt->T + t] - ref[(size_t)b * bt->T + t];
        kl_seq[b] = (float)s;
    }
}

void rlaif_rl_shaped_rewards(rlaif_rl_batch *bt, float beta, float reward_scale) {
    const float *old = bt->field[RLAIF_RL_OLD_LOGPROBS], *ref = bt->field[RLAIF_RL_REF_LOGPROBS];
    float *r = bt->field[RLAIF_RL_REWARDS];
    for (int b = 0; b < bt->B; b++) {
        ROWSPAN(bt, b, t0, t1);
        size_t o = (size_t)b * bt->T;
        for (int t = t0; t < t1; t++) r[o + t] = -beta * (old[o + t] - ref[o + t]);
        r[o + t1 - 1] += reward_scale * bt->scores[b];
    }
}

void rlaif_rl_returns(rlaif_rl_batch *bt, float gamma) {
    const float *r = bt->field[RLAIF_RL_REWARDS];
    float *g = bt->field[RLAIF_RL_RETURNS];
    for (int b = 0; b < bt->B; b++) {
        ROWSPAN(bt, b, t0, t1);
        size_t o = (size_t)b * bt->T;
        float acc = 0;
        for (int t = t1 - 1; t >= t0; t--) g[o + t] = acc = r[o + t] + gamma * acc;
    }
}

void rlaif_rl_gae(rlaif_rl_batch *bt, float gamma, float lam) {
    const float *r = bt->field[RLAIF_RL_REWARDS], *v = bt->field[RLAIF_RL_OLD_VALUES];
    float *adv = bt->field[RLAIF_RL_ADVANTAGES], *ret = bt->field[RLAIF_RL_RETURNS];
    for (int b = 0; b < bt->B; b++) {
        ROWSPAN(bt, b, t0, t1);
        size_t o = (size_t)b * bt->T;
        float last = 0;
        for (int t = t1 - 1; t >= t0; t--) {
            float next = t + 1 < t1 ? v[o + t + 1] : 0.0f;
            float delta = r[o + t] + gamma * next - v[o + t];
            adv[o + t] = last = delta + gamma * lam * last;
            ret[o + t] = adv[o + t] + v[o + t];
        }
    }
}

void rlaif_rl_baseline_advantages(rlaif_rl_batch *bt) {
    const float *g = bt->field[RLAIF_RL_RETURNS], *v = bt->field[RLAIF_RL_VALUES];
    float *a = bt->field[RLAIF_RL_ADVANTAGES];
    for (int b = 0; b < bt->B; b++) {
        ROWSPAN(bt, b, t0, t1);
        size_t o = (size_t)b * bt->T;
        for (int t = t0; t < t1; t++) a[o + t] = g[o + t] - v[o + t];
    }
}

void rlaif_rl_row_advantages(rlaif_rl_batch *bt, const float *ra) {
    float *a = bt->field[RLAIF_RL_ADVANTAGES];
    for (int b = 0; b < bt->B; b++) {
        ROWSPAN(bt, b, t0, t1);
        for (int t = t0; t < t1; t++) a[(size_t)b * bt->T + t] = ra[b];
    }
}

void rlaif_rl_sum(const rlaif_rl_batch *bt, int f, double *sum) {
    const float *x = bt->field[f];
    double s = 0;
    for (int b = 0; b < bt->B; b++) {
        ROWSPAN(bt, b, t0, t1);
        for (int t = t0; t < t1; t++) s += x[(size_t)b * bt->T + t];
    }
    *sum = s;
}

void rlaif_rl_sqdev(const rlaif_rl_batch *bt, int f, double mean, double *ss) {
    const float *x = bt->field[f];
    double s = 0;
    for (int b = 0; b < bt->B; b++) {
        ROWSPAN(bt, b, t0, t1);
        for (int t = t0; t < t1; t++) {
            double d = x[(size_t)b * bt->T + t] - mean;
            s += d * d;
        }
    }
    *ss = s;
}

void rlaif_rl_affine(rlaif_rl_batch *bt, int f, double shift, double scale) {
    float *x = bt->field[f];
    for (int b = 0; b < bt->B; b++) {
        ROWSPAN(bt, b, t0, t1);
        for (int t = t0; t < t1; t++) x[(size_t)b * bt->T + t] = (float)((x[(size_t)b * bt->T + t] - shift) * scale);
    }
}

/* ---- losses ---- */

rlaif_status rlaif_rl_policy_loss(rlaif_model *policy, rlaif_rl_batch *bt, const rlaif_rl_loss_opts *o,
                                  int backward, rlaif_rl_stats *st) {
    memset(st, 0, sizeof *st);
    if (policy->cfg.head != RLAIF_HEAD_LM)
        return rlaif_fail(RLAIF_EINVAL, "rl.policy_loss: the policy needs an LM head");
    rlaif_status s = rlaif_rl_logprobs(policy, bt, o->tau, RLAIF_RL_LOGPROBS, -1);
    if (s != RLAIF_OK) return s;
    const float *lp = bt->field[RLAIF_RL_LOGPROBS], *old = bt->field[RLAIF_RL_OLD_LOGPROBS];
    const float *ref = bt->field[RLAIF_RL_REF_LOGPROBS], *A = bt->field[RLAIF_RL_ADVANTAGES];
    float *w = bt->grad, lo = 1.0f - o->cliprange, hi = 1.0f + o->cliprange;
    memset(w, 0, sizeof(float) * bt->B * bt->T);
    double loss = 0;
    for (int b = 0; b < bt->B; b++) {
        ROWSPAN(bt, b, t0, t1);
        for (int t = t0; t < t1; t++) {
            size_t i = (size_t)b * bt->T + t;
            double term, dl;   /* the token's loss and d term / d logp */
            if (o->clipped) {
                float rho = expf(lp[i] - old[i]), rc = rho < lo ? lo : rho > hi ? hi : rho;
                float u = -A[i] * rho, c = -A[i] * rc;
                term = u >= c ? u : c;
                dl = u >= c ? u : 0.0;   /* d(-A rho)/d logp = -A rho; the clipped branch is flat */
                if (c > u) st->clipped += 1;
                st->ratio += rho;
            } else {
                term = -A[i] * lp[i];
                dl = -A[i];
            }
            if (o->k3_coef != 0.0f) {
                float d = ref[i] - lp[i], e = expf(d);
                float k3 = e - d - 1.0f;
                term += o->k3_coef * k3;
                dl += o->k3_coef * (1.0f - e);
                st->k3 += k3;
            }
            loss += term;
            w[i] = (float)(-dl * o->weight);   /* backward_ce takes weights of -logp */
            st->tokens += 1;
        }
    }
    st->loss = loss * o->weight;
    if (backward) return rlaif_model_backward_ce(policy, bt->targets, w, 0.0f);
    return RLAIF_OK;
}

rlaif_status rlaif_rl_value_loss(rlaif_model *value, rlaif_rl_batch *bt, float cliprange_value, float coef,
                                 float weight, int backward, rlaif_rl_stats *st) {
    memset(st, 0, sizeof *st);
    if (value->cfg.head != RLAIF_HEAD_REWARD)
        return rlaif_fail(RLAIF_EINVAL, "rl.value_loss: the value model needs head = \"reward\"");
    rlaif_status s = rlaif_rl_values(value, bt, RLAIF_RL_VALUES);
    if (s != RLAIF_OK) return s;
    const float *v = bt->field[RLAIF_RL_VALUES], *vold = bt->field[RLAIF_RL_OLD_VALUES];
    const float *R = bt->field[RLAIF_RL_RETURNS];
    float *dv = bt->grad;
    memset(dv, 0, sizeof(float) * bt->B * bt->T);
    double loss = 0;
    for (int b = 0; b < bt->B; b++) {
        ROWSPAN(bt, b, t0, t1);
        for (int t = t0; t < t1; t++) {
            size_t i = (size_t)b * bt->T + t;
            float e = v[i] - R[i], term = e * e, g = e;
            if (cliprange_value >= 0) {
                float dvv = v[i] - vold[i];
                float cl = dvv < -cliprange_value ? -cliprange_value : dvv > cliprange_value ? cliprange_value : dvv;
                float ec = vold[i] + cl - R[i], tc = ec * ec;
                if (tc > term) {
                    term = tc;
                    g = (dvv > -cliprange_value && dvv < cliprange_value) ? ec : 0.0f;
                    st->clipped += 1;
                }
            }
            loss += 0.5 * term;
            dv[i] = g * weight * coef;
            st->tokens += 1;
        }
    }
    st->loss = loss * weight;
    if (backward) return rlaif_model_backward_values(value, dv);
    return RLAIF_OK;
}
