/* rlaif/tokenizer.h -- the exact byte-level BPE tokenizer (rlaif_bpe_*):
 * tiktoken rank files (r50k_base/gpt2, p50k_base, cl100k_base, o200k_base),
 * Hugging Face tokenizer.json (BPE with a ByteLevel pre-tokenizer: GPT-2,
 * Llama 3, Qwen...) and GPT-2's vocab.bpe + encoder.json. The ids are the
 * model's own 0-based ids, token for token the same as the reference
 * tokenizers. Text is UTF-8; invalid UTF-8 is replaced by U+FFFD first.
 *
 * Ownership: loaders return a NEW tokenizer, freed with rlaif_bpe_free. A
 * loaded tokenizer is immutable: encode, decode and lookups may run from any
 * number of threads at once. Id vectors belong to the caller. */
#ifndef RLAIF_TOKENIZER_API_H
#define RLAIF_TOKENIZER_API_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlaif_bpe rlaif_bpe;

/* A growable vector of token ids. Zero-initialise it; encode functions append. */
typedef struct rlaif_bpe_ids {
    int32_t *ids; /* (n) */
    size_t   n, cap;
} rlaif_bpe_ids;

void rlaif_bpe_ids_free(rlaif_bpe_ids *v); /* frees v->ids and zeroes v */

/* ---- loading ---- */

/* Load by sniffing `path`: a directory (tokenizer.json, or vocab.bpe +
 * encoder.json, or a single *.tiktoken), a *.tiktoken file, tokenizer.json,
 * vocab.bpe or encoder.json. `encoding` (may be NULL) names the tiktoken
 * encoding when the file name does not. RLAIF_EIO / RLAIF_EFORMAT name the
 * file and what is wrong (a Unigram model, a truncated file, ...). */
rlaif_status rlaif_bpe_load(rlaif_bpe **out, const char *path, const char *encoding);
/* A Hugging Face tokenizer.json held in memory (`name` is used in messages;
 * json need not be NUL-terminated). */
rlaif_status rlaif_bpe_load_hf_buffer(rlaif_bpe **out, const char *json, size_t len, const char *name);
void rlaif_bpe_free(rlaif_bpe *b);   /* NULL-safe */

/* ---- encoding ---- */

enum {
    RLAIF_BPE_ADD_SPECIAL       = 1, /* add the post-processor's BOS/EOS ids */
    RLAIF_BPE_ALLOW_ALL_SPECIAL = 2, /* every special token in the text is one id */
};

typedef struct rlaif_bpe_encode_opts {
    int            flags;     /* RLAIF_BPE_* */
    const int32_t *allowed;   /* (n_allowed) special ids recognised in the text */
    size_t         n_allowed;
} rlaif_bpe_encode_opts;

/* Encode len bytes of text, appending ids to out. opts may be NULL: special
 * tokens are plain text and no BOS/EOS is added. */
rlaif_status rlaif_bpe_encode(const rlaif_bpe *b, const char *text, size_t len,
                              const rlaif_bpe_encode_opts *opts, rlaif_bpe_ids *out);
/* Number of ids encode would produce. */
rlaif_status rlaif_bpe_count(const rlaif_bpe *b, const char *text, size_t len,
                             const rlaif_bpe_encode_opts *opts, size_t *count);
/* Encode n texts on `threads` threads (<= 0: rlaif_get_threads()). outs (n)
 * are zero-initialised by the caller; on failure they are all freed. */
rlaif_status rlaif_bpe_encode_batch(const rlaif_bpe *b, size_t n, const char *const *texts,
                                    const size_t *lens, const rlaif_bpe_encode_opts *opts,
                                    rlaif_bpe_ids *outs, int threads);

/* ---- decoding and vocabulary ---- */

/* Exact bytes of ids: *out is a NEW NUL-terminated buffer (free with
 * rlaif_free); fails with RLAIF_EINVAL naming the first unknown id. */
rlaif_status rlaif_bpe_decode(const rlaif_bpe *b, const int32_t *ids, size_t n, char **out, size_t *out_len);
/* Id of the token whose raw bytes are tok[0..len), or -1. */
int32_t     rlaif_bpe_id(const rlaif_bpe *b, const char *tok, size_t len);
/* Borrowed bytes of token id (valid while b lives), or NULL when unused. */
const char *rlaif_bpe_token(const rlaif_bpe *b, int32_t id, size_t *len);
int32_t     rlaif_bpe_vocab_size(const rlaif_bpe *b);   /* largest id + 1 */
int         rlaif_bpe_is_special(const rlaif_bpe *b, int32_t id);
/* "tiktoken:cl100k_base", "tokenizer.json", "gpt2". Borrowed. */
const char *rlaif_bpe_kind(const rlaif_bpe *b);

#ifdef __cplusplus
}
#endif

#endif
