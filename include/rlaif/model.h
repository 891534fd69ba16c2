/* rlaif/model.h -- decoder-only transformers in float32: GPT-2 and the Llama
 * family (llama, qwen2, mistral), loaded from Hugging Face directories
 * (config.json + model.safetensors, or a sharded index), with forward,
 * log-probabilities, a scalar reward head and generation with a KV cache.
 *
 * Batches: ids are (B, T) row-major int32 token ids; mask (B, T) marks real
 * tokens with 1 and padding with 0 (NULL = all real). Positions count real
 * tokens, so a left- or right-padded row gives the values of the row alone.
 *
 * Ownership: rlaif_model_load returns a NEW model, freed with
 * rlaif_model_free. A model keeps activations between calls, so one model
 * serves one thread at a time; load one model per thread to run in parallel.
 * Training lives in the Lua API (rlaif.train); this header is inference. */
#ifndef RLAIF_MODEL_API_H
#define RLAIF_MODEL_API_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlaif_model rlaif_model;

typedef enum rlaif_head {
    RLAIF_HEAD_LM = 0,       /* the language-model head (logits over the vocabulary) */
    RLAIF_HEAD_REWARD = 1,   /* a scalar reward head, "score.weight" (zeros when absent) */
} rlaif_head;

/* ---- lifetime ---- */

/* Load a Hugging Face directory; F16/BF16/F64 weights become float32. Errors
 * name the file and the tensor. */
rlaif_status rlaif_model_load(rlaif_model **out, const char *dir, rlaif_head head);
/* Write config.json + model.safetensors (F32, Hugging Face names), atomically. */
rlaif_status rlaif_model_save(rlaif_model *m, const char *dir);
void         rlaif_model_free(rlaif_model *m);   /* NULL-safe */

/* ---- configuration ---- */

/* The configuration as a NEW JSON string (free with rlaif_free):
 * {"arch", "model_type", "vocab_size", "n_layer", "n_head", "n_kv_head",
 *  "d_model", "d_ff", "head_dim", "max_seq", "head", "bos_id", "eos_id",
 *  "pad_id", "num_params"} (ids are -1 when unknown). */
rlaif_status rlaif_model_info(const rlaif_model *m, char **json);
int rlaif_model_vocab_size(const rlaif_model *m);
int rlaif_model_eos_id(const rlaif_model *m);   /* -1 when unknown */

/* ---- inference ---- */

/* Forward pass: the logits as a NEW tensor (B, T, V). */
rlaif_status rlaif_model_logits(rlaif_model *m, const int32_t *ids, const int32_t *mask, int B, int T,
                                rlaif_tensor **out);
/* out (B, T-1): log p(ids[b, t+1] | ids[b, ..t]); 0 where ids[b, t+1] is padding. T >= 2. */
rlaif_status rlaif_model_logprobs(rlaif_model *m, const int32_t *ids, const int32_t *mask, int B, int T,
                                  float *out);
/* out (B): the reward head at each row's last real token (a model loaded with
 * RLAIF_HEAD_REWARD). */
rlaif_status rlaif_model_rewards(rlaif_model *m, const int32_t *ids, const int32_t *mask, int B, int T,
                                 float *out);

typedef struct rlaif_gen_opts {
    int max_new_tokens;
    float temperature;                /* 0 = greedy                       */
    int top_k;                        /* 0 = off                          */
    float top_p;                      /* 1 = off                          */
    const int32_t *stop; int n_stop;  /* stop token ids (borrowed)        */
    uint64_t seed;                    /* the same seed gives the same text */
} rlaif_gen_opts;

/* Generate for B prompts of lengths lens[b], concatenated in `prompts`.
 * out_tokens and out_logprobs (B, max_new_tokens) are filled with -1 / 0 after
 * a stop token; out_len (B) receives each row's generated length. */
rlaif_status rlaif_model_generate(rlaif_model *m, const int32_t *prompts, const int *lens, int B,
                                  const rlaif_gen_opts *opts, int32_t *out_tokens, float *out_logprobs,
                                  int *out_len);

#ifdef __cplusplus
}
#endif

#endif
