/* src/core/kernels.h -- forward/backward kernels of the transformer over float*.
 *
 * llm.c signature style: <op>_forward(out..., inp..., weights..., dims) and
 * <op>_backward(dinp..., dweights..., dout, saved..., dims). Backward kernels
 * ACCUMULATE (+=) into every gradient they are given (NULL = not wanted).
 * Dimension letters: B batch, T time, C channels, N = B*T rows, OC output
 * channels, H query heads, KV key/value heads, hd head size, QKV = (H+2KV)*hd,
 * V vocabulary. Internal to the core (model.c, tests); not a public API. */
#ifndef RLAIF_KERNELS_H
#define RLAIF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

void encoder_forward(float *out, const int32_t *ids, const int32_t *pos, const float *wte, const float *wpe,
                     int N, int C);                                   /* out (N,C) */
void encoder_forward_bf16(float *out, const int32_t *ids, const int32_t *pos, const uint16_t *wte,
                          const float *wpe, int N, int C);                  /* wte bf16 */
void encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids, const int32_t *pos,
                      int N, int C);

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                       int N, int C, float eps);
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        const float *mean, const float *rstd, int N, int C);
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps);
void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                      const float *rstd, int N, int C);

/* out (N,OC) = inp (N,C) @ w^T (w: (OC,C)) + bias; accumulate = 1 adds to out. */
void matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,
                    int accumulate);
/* The same with bf16 weights w (OC,C) (frozen models), computed in float32. */
void matmul_forward_bf16(float *out, const float *inp, const uint16_t *w, const float *bias, int N, int C, int OC,
                         int accumulate);
void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                     int N, int C, int OC);

/* LM head with the softmax normaliser fused in: logits (N,V) = inp (N,C) @ w^T
 * (w: (V,C)) computed in vocabulary chunks of LM_CHUNK, each chunk's row maxima
 * and exp-sums taken while it is in cache; lse (N) = log-sum-exp of each row.
 * scratch: lmhead_scratch_floats(N, V) floats. */
#define LM_CHUNK 1024
int lmhead_scratch_floats(int N, int V);
void lmhead_forward(float *logits, float *lse, float *scratch, const float *inp, const float *w, int N, int C,
                    int V);
void lmhead_forward_bf16(float *logits, float *lse, float *scratch, const float *inp, const uint16_t *w, int N,
                         int C, int V);
/* logits (N,V) <- dlogits = wt[n] * (softmax - onehot(target)) (0 rows for target < 0 or wt 0),
 * then dw (V,C) += dlogits^T inp and dinp (N,C) += dlogits w. */
void lmhead_backward(float *dinp, float *dw, float *logits, const float *lse, const int32_t *targets,
                     const float *wt, const float *inp, const float *w, int N, int C, int V);

/* AdamW over n floats: p *= decay; m, v moments; p -= step_size m / (sqrt(v)/bc2_sqrt + eps),
 * in torch.optim.AdamW's float32 operation order (bit-identical to the scalar loop). */
void adamw_update(float *p, const float *g, float *m, float *v, size_t n, float decay, float beta1, float beta2,
                  float step_size, float bc2_sqrt, float eps);

/* bf16 weights: dst (n) = src rounded to nearest even (denormals to zero, NaN quiet),
 * bit-identical on both kernel paths (VCVTNEPS2BF16 where the CPU has AVX512-BF16);
 * and the exact widening back. */
void f32_to_bf16(uint16_t *dst, const float *src, size_t n);
void bf16_to_f32_row(float *dst, const uint16_t *src, size_t n);
/* 1 when f32_to_bf16 uses AVX512-BF16 (the CPU has it and the AVX-512 kernels run). */
int rlaif_kernels_avx512bf16(void);

/* log(sum(exp(x[0..n)))), max-shifted, vectorised. */
float logsumexp_row(const float *x, int n);

/* 1 when the AVX-512 versions of the kernels run: the CPU has them and
 * RLAIF_KERNELS=scalar was not set at start-up (read once, then fixed). */
int rlaif_kernels_avx512(void);

/* Causal self-attention with grouped KV heads and a key padding mask (B,T):
 * query t attends to keys s <= t with mask[b,s] != 0 (none -> zero output).
 * qkv (B,T,QKV), att (B,H,T,T) probabilities, out (B,T,H*hd). */
void attention_forward(float *out, float *att, const float *qkv, const int32_t *mask, int B, int T, int H,
                       int KV, int hd);
/* datt: scratch (B,H,T,T), overwritten. */
void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                        int B, int T, int H, int KV, int hd);

/* RoPE (rotate-half convention) in place on the q and k parts of qkv (B,T,QKV);
 * cos/sin tables (T, hd/2) indexed by pos (B,T). backward rotates dq, dk back. */
void rope_forward(float *qkv, const float *cosb, const float *sinb, const int32_t *pos, int B, int T, int H,
                  int KV, int hd);
void rope_backward(float *dqkv, const float *cosb, const float *sinb, const int32_t *pos, int B, int T, int H,
                   int KV, int hd);

void gelu_forward(float *out, const float *inp, int n);               /* tanh approximation */
void gelu_backward(float *dinp, const float *inp, const float *dout, int n);
/* out (N,F) = silu(inp[:, :F]) * inp[:, F:]  with inp (N, 2F) */
void swiglu_forward(float *out, const float *inp, int N, int F);
void swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int F);

/* losses (N) = lse - logits[target] (0 for target < 0); lse (N) saved. */
void crossentropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets, int N, int V);
/* logits (N,V) <- w[n] * (softmax - onehot) (overwritten, not accumulated: it is scratch). */
void crossentropy_backward(float *logits, const float *lse, const int32_t *targets, const float *w, int N, int V);

void residual_forward(float *out, const float *a, const float *b, int n);

#endif
