/* tests/c/test_rl.c -- the per-token RL arithmetic of src/core/rl.c: returns,
 * GAE, whitening sums, row selection, bad input, and the policy and value
 * losses' gradients against finite differences of the losses themselves
 * (tempered log-probabilities, clipped ratios, k3, clipped values). The PyTorch
 * comparison of whole losses is tests/spec/rl_spec.lua. Small models only: this
 * runs under ASan+UBSan. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rl.h"

static rlaif_model *tiny(rlaif_head head, uint64_t seed) {
    rlaif_model_config c;
    rlaif_model_config_defaults(&c, RLAIF_ARCH_GPT2);
    c.vocab_size = 17, c.n_layer = 1, c.n_head = 2, c.d_model = 8, c.max_seq = 16, c.head = head;
    rlaif_model *m = NULL;
    CHECK_OK(rlaif_model_new(&m, &c, seed));
    return m;
}

static rlaif_rl_batch *toy_batch(void) {
    int32_t p[] = {1, 2, 3, 4, 5, 6}, r[] = {7, 8, 9, 10, 11, 12};
    int plen[] = {2, 3, 1}, rlen[] = {3, 1, 2};
    rlaif_rl_batch *bt = NULL;
    CHECK_OK(rlaif_rl_batch_new(&bt, p, plen, r, rlen, 3, 0));
    return bt;
}

static float at(const rlaif_rl_batch *bt, int f, int b, int k) {   /* response token k of row b */
    return bt->field[f][(size_t)b * bt->T + bt->plen[b] - 1 + k];
}
static void set(rlaif_rl_batch *bt, int f, int b, int k, float v) {
    bt->field[f][(size_t)b * bt->T + bt->plen[b] - 1 + k] = v;
}

static void test_layout_and_returns(void) {
    rlaif_rl_batch *bt = toy_batch();
    CHECK(bt->B == 3 && bt->T == 5);
    CHECK(rlaif_rl_batch_tokens(bt) == 6);
    /* row 0: ids 1 2 | 7 8 9; position 1 predicts 7 */
    CHECK(bt->targets[0] == -1 && bt->targets[1] == 7 && bt->targets[3] == 9 && bt->targets[4] == -1);
    CHECK(bt->mask[5 + 4] == 0 && bt->ids[5 + 4] == 0);   /* row 1 padded */
    /* rewards 1, 2, 3 on row 0: gamma 0.5 returns 1 + 0.5 (2 + 0.5 * 3) = 2.75, 3.5, 3 */
    for (int k = 0; k < 3; k++) set(bt, RLAIF_RL_REWARDS, 0, k, (float)(k + 1));
    set(bt, RLAIF_RL_REWARDS, 1, 0, 5.0f);
    rlaif_rl_returns(bt, 0.5f);
    CHECK_CLOSE(at(bt, RLAIF_RL_RETURNS, 0, 0), 2.75, 1e-6);
    CHECK_CLOSE(at(bt, RLAIF_RL_RETURNS, 0, 1), 3.5, 1e-6);
    CHECK_CLOSE(at(bt, RLAIF_RL_RETURNS, 1, 0), 5.0, 1e-6);
    /* GAE with values 1 everywhere, gamma 1, lambda 0.5, row 0:
     * delta = (1 + 1 - 1, 2 + 1 - 1, 3 + 0 - 1) = (1, 2, 2); A = (1 + 0.5 (2 + 0.5 * 2), 3, 2) */
    for (int b = 0; b < 3; b++)
        for (int k = 0; k < bt->rlen[b]; k++) set(bt, RLAIF_RL_OLD_VALUES, b, k, 1.0f);
    rlaif_rl_gae(bt, 1.0f, 0.5f);
    CHECK_CLOSE(at(bt, RLAIF_RL_ADVANTAGES, 0, 0), 2.5, 1e-6);
    CHECK_CLOSE(at(bt, RLAIF_RL_ADVANTAGES, 0, 1), 3.0, 1e-6);
    CHECK_CLOSE(at(bt, RLAIF_RL_RETURNS, 0, 2), 3.0, 1e-6);
    /* sums and whitening touch response tokens only */
    double s, ss;
    rlaif_rl_sum(bt, RLAIF_RL_OLD_VALUES, &s);
    CHECK_CLOSE(s, 6.0, 1e-12);
    rlaif_rl_affine(bt, RLAIF_RL_OLD_VALUES, 1.0, 2.0);
    rlaif_rl_sqdev(bt, RLAIF_RL_OLD_VALUES, 0.0, &ss);
    CHECK_CLOSE(ss, 0.0, 1e-12);
    for (int i = 0; i < bt->B * bt->T; i++)
        if (bt->targets[i] < 0) CHECK(bt->field[RLAIF_RL_ADVANTAGES][i] == 0.0f);
    /* shaped rewards and KL sums */
    for (int b = 0; b < 3; b++)
        for (int k = 0; k < bt->rlen[b]; k++) {
            set(bt, RLAIF_RL_OLD_LOGPROBS, b, k, -1.0f);
            set(bt, RLAIF_RL_REF_LOGPROBS, b, k, -1.5f);
        }
    bt->scores[0] = 2, bt->scores[1] = -1, bt->scores[2] = 0;
    rlaif_rl_shaped_rewards(bt, 0.1f, 0.5f);
    CHECK_CLOSE(at(bt, RLAIF_RL_REWARDS, 0, 0), -0.05, 1e-6);
    CHECK_CLOSE(at(bt, RLAIF_RL_REWARDS, 0, 2), -0.05 + 1.0, 1e-6);
    float kl[3];
    rlaif_rl_kl(bt, kl);
    CHECK_CLOSE(kl[0], 1.5, 1e-6);
    CHECK_CLOSE(kl[1], 0.5, 1e-6);
    /* select: rows 3, 1 */
    int rows[] = {2, 0};
    rlaif_rl_batch *s2 = NULL;
    CHECK_OK(rlaif_rl_batch_select(&s2, bt, rows, 2));
    CHECK(s2->B == 2 && s2->T == 5 && s2->plen[0] == 1 && s2->rlen[1] == 3);
    CHECK_CLOSE(at(s2, RLAIF_RL_REWARDS, 1, 2), at(bt, RLAIF_RL_REWARDS, 0, 2), 0);
    rlaif_rl_batch_free(s2);
    rlaif_rl_batch_free(bt);
}

static void test_bad_input(void) {
    int32_t p[] = {1}, r[] = {2};
    int one[] = {1}, zero[] = {0};
    rlaif_rl_batch *bt = NULL;
    CHECK(rlaif_rl_batch_new(&bt, p, one, r, zero, 1, 0) == RLAIF_EINVAL && bt == NULL);
    CHECK(strstr(rlaif_last_error(), "response 1 is empty") != NULL);
    CHECK(rlaif_rl_batch_new(&bt, p, zero, r, one, 1, 0) == RLAIF_EINVAL);
    CHECK(rlaif_rl_batch_new(&bt, p, one, r, one, 0, 0) == RLAIF_EINVAL);
    CHECK_OK(rlaif_rl_batch_new(&bt, p, one, r, one, 1, 0));
    int rows[] = {1};
    rlaif_rl_batch *s = NULL;
    CHECK(rlaif_rl_batch_select(&s, bt, rows, 1) == RLAIF_EINVAL && s == NULL);
    rlaif_model *lm = tiny(RLAIF_HEAD_LM, 1), *vm = tiny(RLAIF_HEAD_REWARD, 1);
    CHECK(rlaif_rl_logprobs(lm, bt, 1.0f, RLAIF_RL_NUM_FIELDS, -1) == RLAIF_EINVAL);
    CHECK(rlaif_rl_logprobs(lm, bt, 0.0f, RLAIF_RL_LOGPROBS, -1) == RLAIF_EINVAL);
    CHECK(strstr(rlaif_last_error(), "temperature") != NULL);
    CHECK(rlaif_rl_values(lm, bt, RLAIF_RL_VALUES) == RLAIF_EINVAL);
    CHECK(rlaif_rl_logprobs(vm, bt, 1.0f, RLAIF_RL_LOGPROBS, -1) == RLAIF_EINVAL);
    int32_t big[] = {99};
    rlaif_rl_batch *b2 = NULL;
    CHECK_OK(rlaif_rl_batch_new(&b2, p, one, big, one, 1, 0));
    CHECK(rlaif_rl_logprobs(lm, b2, 1.0f, RLAIF_RL_LOGPROBS, -1) == RLAIF_EINVAL);   /* out of vocabulary */
    rlaif_rl_batch_free(b2);
    rlaif_model_free(lm);
    rlaif_model_free(vm);
    rlaif_rl_batch_free(bt);
}

/* ---- gradients against finite differences of the loss ---- */

typedef struct { rlaif_model *m; rlaif_rl_batch *bt; int policy; rlaif_rl_loss_opts po; float clip_v, coef; } loss_ctx;

static double loss_of(loss_ctx *c) {
    rlaif_rl_stats st;
    if (c->policy) CHECK_OK(rlaif_rl_policy_loss(c->m, c->bt, &c->po, 0, &st));
    else CHECK_OK(rlaif_rl_value_loss(c->m, c->bt, c->clip_v, c->coef, c->po.weight, 0, &st));
    return c->policy ? st.loss : c->coef * st.loss;
}

static void fd_params(const char *what, loss_ctx *c) {
    rlaif_model *m = c->m;
    rlaif_rl_stats st;
    CHECK_OK(rlaif_model_zero_grad(m));
    if (c->policy) CHECK_OK(rlaif_rl_policy_loss(m, c->bt, &c->po, 1, &st));
    else CHECK_OK(rlaif_rl_value_loss(m, c->bt, c->clip_v, c->coef, c->po.weight, 1, &st));
    /* the largest gradients are the informative ones: check the 12 largest */
    int n = (int)m->num_params, idx[12];
    for (int k = 0; k < 12; k++) {
        idx[k] = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= idx[j] == i;
            if (!taken && (idx[k] < 0 || fabsf(m->grads_memory[i]) > fabsf(m->grads_memory[idx[k]]))) idx[k] = i;
        }
    }
    int bad = 0;
    for (int k = 0; k < 12; k++) {
        float *p = m->params_memory + idx[k], keep = *p, eps = 1e-3f;
        *p = keep + eps;
        double lp = loss_of(c);
        *p = keep - eps;
        double lm = loss_of(c);
        *p = keep;
        double fd = (lp - lm) / (2.0 * eps), g = m->grads_memory[idx[k]];
        if (!(fabs(fd - g) <= 3e-2 * fabs(g) + 1e-4)) {
            if (bad++ < 3) fprintf(stderr, "  %s param %d: analytic %.6g, finite difference %.6g\n", what, idx[k], g, fd);
        }
    }
    check_count++;
    if (bad) {
        check_failures++;
        fprintf(stderr, "%s: %d of 12 gradients differ from finite differences\n", what, bad);
    }
}

static void test_gradients(void) {
    rlaif_rl_batch *bt = toy_batch();
    rlaif_model *pol = tiny(RLAIF_HEAD_LM, 3), *val = tiny(RLAIF_HEAD_REWARD, 4);
    for (int i = 0; i < val->cfg.d_model; i++) val->params.score[i] = 0.3f * (i % 3 - 1);
    /* old log-probs: the policy's at tau 0.7, shifted so some ratios clip and some do not */
    CHECK_OK(rlaif_rl_logprobs(pol, bt, 0.7f, RLAIF_RL_OLD_LOGPROBS, -1));
    CHECK_OK(rlaif_rl_values(val, bt, RLAIF_RL_OLD_VALUES));
    float shift[] = {0.05f, -0.6f, 0.1f, 0.7f, -0.02f, 0.4f}, adv[] = {1.0f, 0.5f, 2.0f, -0.8f, -1.5f, 0.3f};
    for (int b = 0, i = 0; b < bt->B; b++)
        for (int k = 0; k < bt->rlen[b]; k++, i++) {
            set(bt, RLAIF_RL_OLD_LOGPROBS, b, k, at(bt, RLAIF_RL_OLD_LOGPROBS, b, k) + shift[i]);
            set(bt, RLAIF_RL_REF_LOGPROBS, b, k, at(bt, RLAIF_RL_OLD_LOGPROBS, b, k) - 0.3f * shift[i]);
            set(bt, RLAIF_RL_ADVANTAGES, b, k, adv[i]);
            set(bt, RLAIF_RL_RETURNS, b, k, at(bt, RLAIF_RL_OLD_VALUES, b, k) + shift[i]);
            set(bt, RLAIF_RL_OLD_VALUES, b, k, at(bt, RLAIF_RL_OLD_VALUES, b, k) + (i % 2 ? 0.5f : -0.05f));
        }
    loss_ctx c = {pol, bt, 1, {0, 0.7f, 0.2f, 0.0f, 1.0f / 6}, -1, 1};
    fd_params("reinforce policy loss (tau 0.7)", &c);
    c.po.clipped = 1;
    fd_params("clipped policy loss", &c);
    rlaif_rl_stats st;
    CHECK_OK(rlaif_rl_policy_loss(pol, bt, &c.po, 0, &st));
    CHECK(st.clipped > 0 && st.clipped < st.tokens);
    c.po.k3_coef = 0.3f;
    fd_params("clipped policy loss + k3", &c);
    loss_ctx v = {val, bt, 0, {0, 1, 0.2f, 0, 1.0f / 6}, -1, 0.1f};
    fd_params("value loss", &v);
    v.clip_v = 0.2f;
    fd_params("clipped value loss", &v);
    CHECK_OK(rlaif_rl_value_loss(val, bt, 0.2f, 0.1f, 1.0f / 6, 0, &st));
    CHECK(st.clipped > 0);
    rlaif_model_free(pol);
    rlaif_model_free(val);
    rlaif_rl_batch_free(bt);
}

/* the LM head on selected rows gives the full forward's log-probs, entropies and gradients */
static void test_selected_rows(void) {
    rlaif_rl_batch *bt = toy_batch();
    rlaif_model *m = tiny(RLAIF_HEAD_LM, 5);
    size_t N = (size_t)bt->B * bt->T;
    float *lp_full = calloc(N, sizeof(float)), *lp_rows = calloc(N, sizeof(float)), *w = calloc(N, sizeof(float));
    float *ent_full = calloc(N, sizeof(float)), *ent_rows = calloc(N, sizeof(float));
    float *g_full = malloc(sizeof(float) * m->num_params);
    for (size_t i = 0; i < N; i++) w[i] = bt->targets[i] >= 0 ? 0.1f * (float)(i % 5) - 0.2f : 0.0f;
    CHECK_OK(rlaif_model_zero_grad(m));
    CHECK_OK(rlaif_model_forward(m, bt->ids, bt->mask, bt->B, bt->T, 1));
    CHECK_OK(rlaif_model_temper(m, 0.8f));
    CHECK_OK(rlaif_model_token_logprobs(m, bt->targets, lp_full));
    CHECK_OK(rlaif_model_entropy(m, bt->targets, ent_full));
    CHECK_OK(rlaif_model_backward_ce(m, bt->targets, w, 0));
    memcpy(g_full, m->grads_memory, sizeof(float) * m->num_params);
    CHECK_OK(rlaif_model_zero_grad(m));
    CHECK_OK(rlaif_model_forward_rows(m, bt->ids, bt->mask, bt->B, bt->T, bt->rows, bt->nrows));
    CHECK(m->NL == 6);
    CHECK_OK(rlaif_model_temper(m, 0.8f));
    CHECK_OK(rlaif_model_token_logprobs(m, bt->targets, lp_rows));
    CHECK_OK(rlaif_model_entropy(m, bt->targets, ent_rows));
    CHECK_OK(rlaif_model_backward_ce(m, bt->targets, w, 0));
    double dl = 0, de = 0, dg = 0, gmax = 0;
    for (size_t i = 0; i < N; i++) {
        dl = fmax(dl, fabs(lp_full[i] - lp_rows[i]));
        de = fmax(de, fabs(ent_full[i] - ent_rows[i]));
    }
    for (size_t i = 0; i < m->num_params; i++) {
        dg = fmax(dg, fabs(g_full[i] - m->grads_memory[i]));
        gmax = fmax(gmax, fabs(g_full[i]));
    }
    CHECK(dl < 1e-5 && de < 1e-5);
    CHECK(gmax > 1e-3 && dg < 1e-5 * (1 + gmax));
    int bad_row = 99;
    CHECK(rlaif_model_forward_rows(m, bt->ids, bt->mask, bt->B, bt->T, &bad_row, 1) == RLAIF_EINVAL);
    CHECK(rlaif_model_forward_rows(m, bt->ids, bt->mask, bt->B, bt->T, bt->rows, 0) == RLAIF_EINVAL);
    free(lp_full), free(lp_rows), free(w), free(ent_full), free(ent_rows), free(g_full);
    rlaif_model_free(m);
    rlaif_rl_batch_free(bt);
}

int main(void) {
    test_selected_rows();
    test_layout_and_returns();
    test_bad_input();
    test_gradients();
    return check_report("test_rl");
}
