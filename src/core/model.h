/* src/core/model.h -- decoder-only transformers (GPT-2 and the Llama family) in
 * float32, forward and backward, over llm.c-style flat buffers.
 *
 * A model owns one allocation per family: parameters, gradients, AdamW first
 * and second moments, activations (and a small int buffer for ids/positions).
 * Pointer structs (rlaif_params, rlaif_acts) point into them; a size table
 * with NUM_PARAMETER_TENSORS entries says how big each tensor is (0 = absent
 * in this architecture). Gradients, optimizer state and activations are
 * allocated lazily, on first use. Every matrix product goes through BLIS.
 *
 * Internal weight layout is (out, in) row-major for every linear layer, for
 * both families; Hugging Face names map onto slices of the flat tensors
 * (GPT-2's Conv1D weights are (in, out) in HF files: they are transposed on
 * load/save and exposed as transposed views by rlaif_model_param_view).
 *
 * Ownership: rlaif_model_new / rlaif_model_load return a new model, freed by
 * rlaif_model_free. Pointers returned into the model (logits, views) are
 * borrowed and valid until the next call that reallocates activations (a
 * forward with a larger B*T) or frees the model.
 * Not here: mixed precision, GPUs, dropout (training is deterministic). */
#ifndef RLAIF_MODEL_H
#define RLAIF_MODEL_H

#include "tensor.h"

/* The public declarations: rlaif_model (opaque there), rlaif_head, rlaif_gen_opts. */
#include <rlaif/model.h>

typedef enum rlaif_arch { RLAIF_ARCH_GPT2 = 0, RLAIF_ARCH_LLAMA = 1 } rlaif_arch;

typedef enum rlaif_rope_type {
    RLAIF_ROPE_DEFAULT = 0,  /* inv_freq = theta^(-2i/hd)                        */
    RLAIF_ROPE_LINEAR,       /* positions divided by factor                       */
    RLAIF_ROPE_LLAMA3,       /* Llama 3.1 frequency-dependent scaling              */
} rlaif_rope_type;


typedef struct rlaif_model_config {
    rlaif_arch arch;
    char model_type[16];     /* "gpt2", "llama", "qwen2", "mistral" (config.json)  */
    int vocab_size;          /* V                                                 */
    int n_layer;             /* L                                                 */
    int n_head;              /* H  query heads                                    */
    int n_kv_head;           /* KV key/value heads (GQA; == H for GPT-2)          */
    int d_model;             /* C                                                 */
    int d_ff;                /* F  MLP hidden size                                */
    int head_dim;            /* hd (C / H unless the config says otherwise)       */
    int max_seq;             /* P  positions (GPT-2 wpe rows; Llama: informative) */
    float norm_eps;          /* LayerNorm / RMSNorm epsilon                       */
    float rope_theta;
    rlaif_rope_type rope_type;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max;       /* original_max_position_embeddings (llama3)         */
    int tie_embeddings;      /* lm_head shares wte                                 */
    int qkv_bias;            /* q/k/v projections have biases (Qwen2, GPT-2)       */
    int o_bias;              /* output projection has a bias (GPT-2, Llama attention_bias) */
    rlaif_head head;         /* LM head (default) or a scalar reward head "score" */
    int bos_id, eos_id, pad_id;  /* -1 when unknown; round-tripped to config.json */
} rlaif_model_config;

/* ---- parameter tensors (the size table indexes these) ---- */

enum {
    P_WTE, P_WPE, P_LN1W, P_LN1B, P_QKVW, P_QKVB, P_ATTPROJW, P_ATTPROJB, P_LN2W, P_LN2B,
    P_FCW, P_FCB, P_FCPROJW, P_FCPROJB, P_LNFW, P_LNFB, P_LMHEAD, P_SCORE,
    NUM_PARAMETER_TENSORS
};

typedef struct rlaif_params {
    float *wte;       /* (V, C)   token embeddings (lm_head when tied)            */
    float *wpe;       /* (P, C)   GPT-2 learned positions                         */
    float *ln1w;      /* (L, C)                                                   */
    float *ln1b;      /* (L, C)   GPT-2                                           */
    float *qkvw;      /* (L, QKV, C)  rows: q (H*hd), k (KV*hd), v (KV*hd)        */
    float *qkvb;      /* (L, QKV) GPT-2 / qkv_bias                                */
    float *attprojw;  /* (L, C, QD)  QD = H*hd                                    */
    float *attprojb;  /* (L, C)   GPT-2 / o_bias                                  */
    float *ln2w;      /* (L, C)                                                   */
    float *ln2b;      /* (L, C)   GPT-2                                           */
    float *fcw;       /* (L, FF, C)  GPT-2: FF = F; Llama: FF = 2F, gate rows then up rows */
    float *fcb;       /* (L, FF)  GPT-2                                           */
    float *fcprojw;   /* (L, C, F)                                                */
    float *fcprojb;   /* (L, C)   GPT-2                                           */
    float *lnfw;      /* (C)                                                      */
    float *lnfb;      /* (C)      GPT-2                                           */
    float *lm_head;   /* (V, C)   untied only                                     */
    float *score;     /* (1, C)   reward head only                                */
} rlaif_params;

/* ---- activations of one training forward (B, T fixed per call) ---- */

enum {
    A_ENCODED, A_LN1, A_LN1_MEAN, A_LN1_RSTD, A_QKV, A_ATT, A_ATTY, A_RES2, A_LN2, A_LN2_MEAN,
    A_LN2_RSTD, A_FCH, A_FCH_ACT, A_RES3, A_LNF, A_LNF_MEAN, A_LNF_RSTD, A_LOGITS, A_LSE,
    A_ROPE_COS, A_ROPE_SIN, A_LM_SCRATCH,
    /* backward scratch, one layer's worth */
    A_DRES, A_DLN, A_DQKV, A_DATTY, A_DATT, A_DFCH, A_DFCH_ACT,
    A_LNF_ROWS,       /* the LM head's selected rows (rlaif_model_forward_rows) */
    NUM_ACTIVATION_TENSORS
};

typedef struct rlaif_acts {
    float *encoded;   /* (B, T, C)                                                */
    float *ln1;       /* (L, B, T, C)                                             */
    float *ln1_mean;  /* (L, B, T)                                                */
    float *ln1_rstd;  /* (L, B, T)                                                */
    float *qkv;       /* (L, B, T, QKV)  after RoPE                               */
    float *att;       /* (L, B, H, T, T) softmax probabilities                    */
    float *atty;      /* (L, B, T, QD)                                            */
    float *res2;      /* (L, B, T, C)    residual after attention                 */
    float *ln2;       /* (L, B, T, C)                                             */
    float *ln2_mean;  /* (L, B, T)                                                */
    float *ln2_rstd;  /* (L, B, T)                                                */
    float *fch;       /* (L, B, T, FF)                                            */
    float *fch_act;   /* (L, B, T, F)    GELU / SwiGLU output                     */
    float *res3;      /* (L, B, T, C)    residual after the MLP                   */
    float *lnf;       /* (B, T, C)                                                */
    float *lnf_mean;  /* (B, T)                                                   */
    float *lnf_rstd;  /* (B, T)                                                   */
    float *logits;    /* (NL, V)  logits rows (NL = B*T, or the selected rows);    */
                      /*          becomes dlogits during a backward               */
    float *lse;       /* (NL)     log-sum-exp of each logits row                  */
    float *rope_cos;  /* (T, hd/2)                                                */
    float *rope_sin;  /* (T, hd/2)                                                */
    float *lm_scratch;/* (2, ceil(V / LM_CHUNK), NL) per-chunk row max / exp-sum  */
    float *dres;      /* (B, T, C)                                                */
    float *dln;       /* (B, T, C)                                                */
    float *dqkv;      /* (B, T, QKV)                                              */
    float *datty;     /* (B, T, QD)                                               */
    float *datt;      /* (B, H, T, T)                                             */
    float *dfch;      /* (B, T, FF)                                               */
    float *dfch_act;  /* (B, T, F)                                                */
    float *lnf_rows;  /* (2, NL, C) gathered lnf rows and their gradient (selected rows only) */
} rlaif_acts;

typedef struct rlaif_model {
    rlaif_model_config cfg;
    size_t param_sizes[NUM_PARAMETER_TENSORS];   /* floats per tensor (0 = absent) */
    size_t num_params;
    float *params_memory;  rlaif_params params;  /* always allocated               */
    float *grads_memory;   rlaif_params grads;   /* lazily                         */
    uint16_t *bf16_memory; /* frozen bf16 weight matrices (rlaif_model_to_bf16)    */
    const uint16_t *w16[NUM_PARAMETER_TENSORS];  /* each matrix in bf16_memory, or NULL (float32) */
    float *m_memory;       /* (num_params) AdamW first moment, lazily              */
    float *v_memory;       /* (num_params) AdamW second moment, lazily             */
    int64_t opt_step;      /* AdamW steps taken                                    */
    size_t act_sizes[NUM_ACTIVATION_TENSORS];
    size_t act_capacity;   /* floats allocated in acts_memory                      */
    float *acts_memory;    rlaif_acts acts;
    int32_t *ids;          /* (B, T) of the last forward                           */
    int32_t *pos;          /* (B, T) positions: real tokens counted from 0         */
    int32_t *mask;         /* (B, T) 1 = real token, 0 = padding                    */
    int32_t *last;         /* (B) index of the last real token                      */
    int32_t *lrows;        /* (NL) position (b*T + t) of each logits row            */
    int32_t *ltargets;     /* (NL) scratch: the targets of the logits rows          */
    int NL;                /* logits rows of the last forward (0 = none)            */
    int rows_selected;     /* the LM head ran on selected rows only                 */
    size_t int_capacity;   /* int32 slots allocated for ids/pos/mask/last          */
    int B, T;              /* shape of the last forward, 0 before any             */
    int have_logits;       /* the last forward computed logits                    */
    float logit_temp;      /* logits (and lse) were divided by this (rlaif_model_temper); 1 after a forward */
    int logits_are_grads;  /* a backward overwrote logits with dlogits            */
    rlaif_meter *meter;    /* an embedding scope's meter paying for the buffers, or NULL */
    size_t charged;        /* bytes charged to it                                 */
} rlaif_model;

/* ---- lifetime ---- */

/* Fill cfg with defaults for `arch` (sizes 0; eps, theta, ids -1). */
void rlaif_model_config_defaults(rlaif_model_config *cfg, rlaif_arch arch);
/* Validate cfg and derive head_dim/d_ff/n_kv_head when 0. Returns RLAIF_EINVAL naming the field. */
rlaif_status rlaif_model_config_check(rlaif_model_config *cfg);
/* A new model with parameters initialised GPT-2 style from seed (N(0, 0.02),
 * residual projections scaled by 1/sqrt(2L), norms 1, biases 0). New model in *out. */
rlaif_status rlaif_model_new(rlaif_model **out, const rlaif_model_config *cfg, uint64_t seed);
void rlaif_model_free(rlaif_model *m);   /* NULL-safe */
/* Free the activations (and ids) of the last forward; the next forward allocates
 * them again. For frozen models between uses (a reference, a value model). */
void rlaif_model_free_acts(rlaif_model *m);
/* A new model with m's configuration and parameters but the given head: the trunk
 * is copied; an LM head is copied when both have one; a reward head is copied from a
 * reward model or starts at zero (a fresh value head on a policy). No gradients,
 * optimizer state or activations. New model in *out. */
rlaif_status rlaif_model_clone(rlaif_model **out, const rlaif_model *m, rlaif_head head);
/* Freeze m into bf16: the weight matrices (embeddings, LM head, attention and
 * MLP projections) are rounded to bf16 (nearest even) and their float32 copies,
 * the gradients and the optimizer state freed; norms, biases, positions and a
 * score head stay float32. Forward and generation then compute in float32 from
 * the bf16 weights (AVX512-BF16 conversion where the CPU has it); training,
 * saving, cloning and parameter views fail with RLAIF_EINVAL. Idempotent. */
rlaif_status rlaif_model_to_bf16(rlaif_model *m);
/* 1 when m holds bf16 weights. */
int rlaif_model_is_bf16(const rlaif_model *m);
/* RLAIF_OK for a float32 model; else RLAIF_EINVAL "<op>: the model holds bf16 weights ...". */
rlaif_status rlaif_model_need_f32(const rlaif_model *m, const char *op);
/* Bytes of parameter memory (float32 and bf16) m holds. */
size_t rlaif_model_param_bytes(const rlaif_model *m);
/* Internal to the core (model.c, generate.c): out (N, OC) (+)= inp (N, C) @ W^T
 * (+ bias), W = layer l's (OC, C) block of parameter tensor t, float32 or bf16;
 * and the token (+ position) embedding of ids into out (N, C). */
void rlaif_model_linear(const rlaif_model *m, int t, int l, float *out, const float *inp, const float *bias, int N,
                        int C, int OC, int accumulate);
void rlaif_model_embed(const rlaif_model *m, float *out, const int32_t *ids, const int32_t *pos, int N);

/* ---- computation ---- */

/* Forward over ids (B, T). mask (B, T) may be NULL (all real); positions count
 * real tokens, so a left- or right-padded row gives the same values as the
 * unpadded sequence. want_logits = 0 skips the LM head (reward models). */
rlaif_status rlaif_model_forward(rlaif_model *m, const int32_t *ids, const int32_t *mask, int B, int T,
                                 int want_logits);
/* The same forward, with the LM head only at the n positions rows[j] = b*T + t
 * (distinct, in [0, B*T)): the logits buffer holds n rows. The head functions
 * below still take targets/weights/outputs shaped (B, T) and use the selected
 * positions only (0 elsewhere). Saves the head's time and memory where only
 * some positions matter (RL: the response tokens). */
rlaif_status rlaif_model_forward_rows(rlaif_model *m, const int32_t *ids, const int32_t *mask, int B, int T,
                                      const int32_t *rows, int n);
/* Cross-entropy of the last forward's logits against targets (B, T); targets < 0
 * are ignored. Mean over counted tokens in *loss (NAN when none), per-token
 * losses into `losses` (B, T) when non-NULL. *count = counted tokens. */
rlaif_status rlaif_model_lm_loss(rlaif_model *m, const int32_t *targets, float *loss, float *losses, int *count);
/* Backward of sum_{b,t} weight[b,t] * CE(b,t) (weights (B, T); NULL = `scale`
 * for every counted token). Gradients accumulate (+=) into the grads buffer.
 * Overwrites the logits with their gradient. */
rlaif_status rlaif_model_backward_ce(rlaif_model *m, const int32_t *targets, const float *weights, float scale);
/* Log-probabilities of targets (B, T) under the last forward's logits into out (B, T);
 * 0 where targets < 0. */
rlaif_status rlaif_model_token_logprobs(rlaif_model *m, const int32_t *targets, float *out);
/* Sampling temperature tau > 0: divide the last forward's logits by tau in place and
 * recompute their log-sum-exp, so token_logprobs gives log_softmax(logits / tau) and
 * backward_ce the gradient through the division (weights are scaled by 1/tau). Once
 * per forward; tau = 1 is a no-op. */
rlaif_status rlaif_model_temper(rlaif_model *m, float tau);
/* Entropy of softmax(logits) (tempered, if so) at rows with targets >= 0 into out (B, T),
 * 0 elsewhere. Needs a forward with logits. */
rlaif_status rlaif_model_entropy(rlaif_model *m, const int32_t *targets, float *out);
/* Reward head: out (B) = score . lnf[b, last real token]. Needs a forward. */
rlaif_status rlaif_model_reward(rlaif_model *m, float *out);
/* Backward of sum_b dr[b] * reward[b]; accumulates gradients. */
rlaif_status rlaif_model_backward_reward(rlaif_model *m, const float *dr);
/* Value head: out (B, T) = score . lnf[b, t] at every position (0 at padding): the
 * reward head applied everywhere. Needs a forward. */
rlaif_status rlaif_model_values(rlaif_model *m, float *out);
/* Backward of sum_{b,t} dv[b,t] * value[b,t] (dv (B, T); padding ignored); accumulates. */
rlaif_status rlaif_model_backward_values(rlaif_model *m, const float *dv);

/* ---- gradients and the optimizer ---- */

rlaif_status rlaif_model_zero_grad(rlaif_model *m);   /* allocates grads if needed */
/* Global L2 norm of all gradients (0 when none allocated). */
double rlaif_model_grad_norm(rlaif_model *m);
void   rlaif_model_scale_grads(rlaif_model *m, float s);
typedef struct rlaif_adamw {
    float lr, beta1, beta2, eps, weight_decay;  /* decay applies to matrices and embeddings only */
} rlaif_adamw;
/* One AdamW step (decoupled decay, bias correction) with opt_step + 1. */
rlaif_status rlaif_model_adamw_step(rlaif_model *m, const rlaif_adamw *opt);
/* 1 when parameter tensor i gets weight decay. */
int rlaif_model_param_decays(int i);

/* ---- names, views and checkpoints (ckpt.c) ---- */

/* One Hugging Face tensor: a (possibly transposed) slice of a flat tensor. */
typedef struct rlaif_hf_entry {
    char name[96];
    int ptensor;          /* index into the size table                              */
    size_t offset;        /* floats from the start of that tensor                    */
    int ndim;             /* 1 or 2                                                  */
    int64_t shape[2];     /* HF shape                                                */
    int transposed;       /* 2-d stored (shape[1], shape[0]) internally (GPT-2 Conv1D) */
} rlaif_hf_entry;

/* Every HF tensor of the model, in save order; *entries owned by the caller (free()). */
rlaif_status rlaif_model_hf_entries(const rlaif_model *m, rlaif_hf_entry **entries, int *count);
/* A non-owning view by HF name into params (grad = 0) or grads (grad = 1, allocated
 * on demand). New tensor reference in *out that never frees the model's memory. */
rlaif_status rlaif_model_param_view(rlaif_model *m, const char *name, int grad, rlaif_tensor **out);
/* Load a Hugging Face directory (config.json + model.safetensors or a sharded
 * model.safetensors.index.json). head = RLAIF_HEAD_REWARD adds a score head
 * (zero-initialised when the files have none). */
rlaif_status rlaif_model_load(rlaif_model **out, const char *dir, rlaif_head head);
/* Load weights from one safetensors file into an existing model; every missing
 * tensor, wrong shape/dtype or truncated entry is an error naming the tensor.
 * allow_missing: tensors absent from this file are skipped (for shards). */
rlaif_status rlaif_model_load_safetensors(rlaif_model *m, const char *path, int allow_missing, int *loaded);
/* Write config.json + model.safetensors (F32, HF names and layouts) into dir. */
rlaif_status rlaif_model_save(rlaif_model *m, const char *dir);
/* Training state (params, AdamW m/v, step, caller's opaque blob) in one file with
 * a magic+version header, written atomically; load restores it bit-exactly. */
rlaif_status rlaif_model_save_state(rlaif_model *m, const char *path, const void *blob, size_t blob_len);
/* blob: malloc'd copy of the saved blob (owned by caller), may be NULL. */
rlaif_status rlaif_model_load_state(rlaif_model *m, const char *path, void **blob, size_t *blob_len);

/* ---- generation with a KV cache (generate.c) ---- */

/* prompts: B rows of lengths lens[b] (concatenated in `prompts`). out_tokens and
 * out_logprobs: (B, max_new_tokens), filled with -1 / 0 after a stop; out_len (B). */
rlaif_status rlaif_model_generate(rlaif_model *m, const int32_t *prompts, const int *lens, int B,
                                  const rlaif_gen_opts *opts, int32_t *out_tokens, float *out_logprobs,
                                  int *out_len);

/* The same with row b sampling from its own stream seeded with row_seeds[b] (B
 * seeds; NULL = one stream seeded with opts->seed), so a row's tokens do not
 * depend on the other rows of the batch (data-parallel RL rollouts). */
rlaif_status rlaif_model_generate_seeded(rlaif_model *m, const int32_t *prompts, const int *lens, int B,
                                         const rlaif_gen_opts *opts, const uint64_t *row_seeds,
                                         int32_t *out_tokens, float *out_logprobs, int *out_len);

/* Internal: RoPE cos/sin tables (T, head_dim/2) for positions 0..T-1. */
void rlaif_model_rope_tables(const rlaif_model_config *cfg, int T, float *cosb, float *sinb);

/* ---- loss heads (kernels.c) ---- */

/* Soft-label pairwise loss over P pairs: d = r1 - r2 - margin,
 * loss = -[p log s(d) + (1-p) log s(-d)] + center * (r1 + r2)^2, mean over P.
 * Returns the mean loss; dr1/dr2 (may be NULL) get d(mean)/dr (overwritten). */
float rlaif_reward_pair_loss(const float *r1, const float *r2, const float *p, int P, float margin,
                             float center, float *dr1, float *dr2);

#endif
