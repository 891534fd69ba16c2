/* src/core/rl.h -- the per-token arithmetic of RL from AI feedback (issue 9):
 * a padded batch of prompt + response rows, log-probabilities at a sampling
 * temperature, values, KL-shaped rewards, returns, GAE, whitening, and the
 * policy and value losses with their gradients, each as one weighted backward
 * pass through rlaif_model.
 *
 * Layout: row b is prompt_b then response_b, right-padded to T. Every per-token
 * array is (B, T) and aligned with `targets`: position t holds the quantity of
 * the response token ids[b, t+1] that position t predicts (so a value V[b, t]
 * is read at the position that predicts y_{b,t}); targets[b, t] = -1 and the
 * arrays are 0 everywhere else.
 *
 * Conventions (the same names as the Lua trainer; see README "RL"):
 *   k1 = logp_old - logp_ref;  k3 = exp(ref - logp) - (ref - logp) - 1
 *   shaped reward r_t = -beta k1_t, plus reward_scale * s_b on the last token
 *   REINFORCE: loss = sum_t w * (-A_t logp_t)            (w = 1 / token count)
 *   clipped:   loss = sum_t w * max(-A rho, -A clip(rho, 1-eps, 1+eps)) [+ beta k3]
 *   value:     0.5 (V - R)^2, or PPO's max with the clipped value, times w * coef
 * Whole-batch statistics (token counts, means, variances, group statistics) are
 * NOT taken here: the caller sums with rlaif_rl_sum / rlaif_rl_sqdev, reduces
 * (across processes, if any) and applies rlaif_rl_affine, so data-parallel runs
 * can all-reduce the sums in one place (lua/rlaif/rl.lua, `batch_stats`).
 *
 * Ownership: rlaif_rl_batch_new / _select return a new batch freed by
 * rlaif_rl_batch_free; models are borrowed. Not here: sampling (generate.c),
 * optimizers (model.c), orchestration and rewards (lua/rlaif/rl.lua). */
#ifndef RLAIF_RL_H
#define RLAIF_RL_H

#include "model.h"

typedef enum rlaif_rl_field {
    RLAIF_RL_LOGPROBS = 0,   /* current policy, filled by the policy pass      */
    RLAIF_RL_OLD_LOGPROBS,   /* the policy that sampled                        */
    RLAIF_RL_REF_LOGPROBS,   /* the reference (SFT) model                      */
    RLAIF_RL_VALUES,         /* current value model                            */
    RLAIF_RL_OLD_VALUES,     /* value model at rollout (PPO)                   */
    RLAIF_RL_REWARDS,        /* shaped per-token rewards                       */
    RLAIF_RL_ADVANTAGES,
    RLAIF_RL_RETURNS,
    RLAIF_RL_ENTROPY,        /* entropy of the sampling distribution           */
    RLAIF_RL_NUM_FIELDS
} rlaif_rl_field;

typedef struct rlaif_rl_batch {
    int B, T;
    int32_t *ids;       /* (B, T) prompt then response, right-padded       */
    int32_t *mask;      /* (B, T) 1 = real token                           */
    int32_t *targets;   /* (B, T) response token predicted at t, or -1     */
    int *plen, *rlen;   /* (B) prompt and response lengths                 */
    int32_t *rows;      /* (tokens) b*T + t of every response position     */
    int nrows;          /* response tokens                                 */
    float *scores;      /* (B) sequence scores s_b                         */
    float *field[RLAIF_RL_NUM_FIELDS];  /* (B, T) each                     */
    float *grad;        /* (B, T) scratch: d loss / d logp or d value      */
} rlaif_rl_batch;

/* A batch of B rows: prompts and responses concatenated (plen[b], rlen[b] >= 1
 * tokens each), padded with `pad`. Fields start at 0. New batch in *out. */
rlaif_status rlaif_rl_batch_new(rlaif_rl_batch **out, const int32_t *prompts, const int *plen,
                                const int32_t *responses, const int *rlen, int B, int pad);
void rlaif_rl_batch_free(rlaif_rl_batch *bt);   /* NULL-safe */
/* A new batch of rows[0..n) (0-based, repeats allowed) with every field, T trimmed. */
rlaif_status rlaif_rl_batch_select(rlaif_rl_batch **out, const rlaif_rl_batch *bt, const int *rows, int n);
/* Response tokens in the batch. */
int64_t rlaif_rl_batch_tokens(const rlaif_rl_batch *bt);

/* ---- model passes ---- */

/* Forward `m` (an LM) over the batch; log_softmax(logits / tau) of each response
 * token into field f, and the entropy of that distribution into field ent
 * (ent < 0: not computed). */
rlaif_status rlaif_rl_logprobs(rlaif_model *m, rlaif_rl_batch *bt, float tau, int f, int ent);
/* Forward `m` (head = reward) over the batch; its values into field f. */
rlaif_status rlaif_rl_values(rlaif_model *m, rlaif_rl_batch *bt, int f);

/* ---- rewards, returns, advantages ---- */

/* kl_seq (B) = sum_t k1 over each response (k1 = old - ref). */
void rlaif_rl_kl(const rlaif_rl_batch *bt, float *kl_seq);
/* REWARDS = -beta k1, plus reward_scale * scores[b] on each row's last token. */
void rlaif_rl_shaped_rewards(rlaif_rl_batch *bt, float beta, float reward_scale);
/* RETURNS_t = sum_{k >= t} gamma^(k-t) REWARDS_k along each response. */
void rlaif_rl_returns(rlaif_rl_batch *bt, float gamma);
/* GAE over REWARDS and OLD_VALUES (value after the last token = 0): ADVANTAGES,
 * and RETURNS = ADVANTAGES + OLD_VALUES. */
void rlaif_rl_gae(rlaif_rl_batch *bt, float gamma, float lam);
/* ADVANTAGES = RETURNS - VALUES (REINFORCE with a value baseline). */
void rlaif_rl_baseline_advantages(rlaif_rl_batch *bt);
/* ADVANTAGES[b, t] = a[b] on every response token of row b (RLOO, GRPO). */
void rlaif_rl_row_advantages(rlaif_rl_batch *bt, const float *a);

/* Sums over the response tokens of field f (double): *sum, and *ss = sum (x - mean)^2. */
void rlaif_rl_sum(const rlaif_rl_batch *bt, int f, double *sum);
void rlaif_rl_sqdev(const rlaif_rl_batch *bt, int f, double mean, double *ss);
/* x = (x - shift) * scale over the response tokens of field f (whitening). */
void rlaif_rl_affine(rlaif_rl_batch *bt, int f, double shift, double scale);

/* ---- losses ---- */

typedef struct rlaif_rl_loss_opts {
    int clipped;        /* 1: PPO's clipped ratio objective; 0: -A logp (REINFORCE) */
    float tau;          /* sampling temperature of the log-probabilities            */
    float cliprange;    /* eps                                                       */
    float k3_coef;      /* beta of the k3 term in the loss (GRPO), 0 = none          */
    float weight;       /* each token's weight: 1 / (response tokens of the batch)   */
} rlaif_rl_loss_opts;

typedef struct rlaif_rl_stats {
    double loss;        /* the weighted loss (a mean when weight = 1 / tokens)       */
    double clipped;     /* tokens whose clipped term was active                      */
    double k3;          /* sum of k3 over tokens                                     */
    double ratio;       /* sum of rho                                                 */
    double tokens;      /* response tokens seen                                      */
} rlaif_rl_stats;

/* Forward the policy (LOGPROBS at tau), the loss over ADVANTAGES, OLD_LOGPROBS
 * and REF_LOGPROBS, and (backward != 0) its gradient accumulated into the
 * policy's grads in one weighted pass. Stats are sums, except loss. */
rlaif_status rlaif_rl_policy_loss(rlaif_model *policy, rlaif_rl_batch *bt, const rlaif_rl_loss_opts *o,
                                  int backward, rlaif_rl_stats *st);
/* Forward the value model (VALUES), coef * weight * sum 0.5 (V - RETURNS)^2 or,
 * with cliprange_value >= 0, PPO's clipped form against OLD_VALUES; gradients
 * accumulated when backward != 0. st->loss is the weighted loss WITHOUT coef. */
rlaif_status rlaif_rl_value_loss(rlaif_model *value, rlaif_rl_batch *bt, float cliprange_value, float coef,
                                 float weight, int backward, rlaif_rl_stats *st);

#endif
