/* src/core/bpe.h -- byte-level BPE tokenizer: exact GPT-2 / tiktoken / Hugging Face
 * `tokenizer.json` encoding and decoding, and BPE training.
 *
 * What it is: one engine (bytes -> pre-tokenizer pieces -> rank-ordered merges ->
 * int32 ids) with three loaders:
 *   - tiktoken rank files (`base64(token) rank` per line) for the named encodings
 *     r50k_base (= gpt2), p50k_base, cl100k_base, o200k_base;
 *   - Hugging Face tokenizer.json with model.type "BPE" and a ByteLevel
 *     pre-tokenizer (optionally after Split regexes), NFC normalizer, added tokens
 *     and a TemplateProcessing post-processor;
 *   - GPT-2's original vocab.bpe + encoder.json.
 * What it is not: SentencePiece/Unigram/WordPiece, or BPE without byte-level
 * mapping; such files are refused with RLAIF_EFORMAT and a message naming why.
 *
 * Ids are the model's own 0-based ids (int32_t). Text is UTF-8; invalid UTF-8 is
 * replaced by U+FFFD per maximal subpart (what TextDecoder / from_utf8_lossy do
 * before the reference tokenizers see it), so no input crashes or is rejected.
 *
 * Ownership: loaders return a NEW tokenizer in *out, freed with rlaif_bpe_free
 * (NULL-safe). A loaded tokenizer is immutable: encode/decode/lookups may run
 * concurrently from any number of threads. Every `const char *` input is
 * borrowed. Id vectors are owned by the caller (rlaif_bpe_ids_free). */
#ifndef RLAIF_BPE_H
#define RLAIF_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "rlaif.h"

/* The public declarations: rlaif_bpe, rlaif_bpe_ids, the encode options. */
#include <rlaif/tokenizer.h>

void rlaif_bpe_ids_free(rlaif_bpe_ids *v); /* frees v->ids and zeroes v */

/* ---- loading ---- */

/* Load by sniffing `path`: a directory (tokenizer.json, or vocab.bpe +
 * encoder.json, or a single *.tiktoken), a *.tiktoken file, tokenizer.json,
 * vocab.bpe or encoder.json (the sibling is found next to it). `encoding`
 * (may be NULL) names the tiktoken encoding when the file name does not. */
rlaif_status rlaif_bpe_load(rlaif_bpe **out, const char *path, const char *encoding);

/* tiktoken rank file; `encoding` NULL = derived from the file name. */
rlaif_status rlaif_bpe_load_tiktoken(rlaif_bpe **out, const char *path, const char *encoding);

/* Hugging Face tokenizer.json from a file, or from memory (`name` is used in
 * error messages; `json` is borrowed and need not be NUL-terminated). */
rlaif_status rlaif_bpe_load_hf(rlaif_bpe **out, const char *path);
rlaif_status rlaif_bpe_load_hf_buffer(rlaif_bpe **out, const char *json, size_t len,
                                      const char *name);

/* GPT-2's original files. */
rlaif_status rlaif_bpe_load_gpt2(rlaif_bpe **out, const char *vocab_bpe, const char *encoder_json);

void rlaif_bpe_free(rlaif_bpe *b);

/* ---- encoding ---- */

/* Encode `len` bytes of `text`, appending ids to `out`. opts may be NULL: no
 * specials recognised (they encode as plain text), no BOS/EOS. Non-special added
 * tokens of a tokenizer.json are always recognised, as Hugging Face does. */
rlaif_status rlaif_bpe_encode(const rlaif_bpe *b, const char *text, size_t len,
                              const rlaif_bpe_encode_opts *opts, rlaif_bpe_ids *out);

/* Number of ids encode would produce. */
rlaif_status rlaif_bpe_count(const rlaif_bpe *b, const char *text, size_t len,
                             const rlaif_bpe_encode_opts *opts, size_t *count);

/* Encode n texts on `threads` threads (<= 0: rlaif_get_threads()). outs (n) are
 * zero-initialised by the caller and filled; on failure they are all freed. */
rlaif_status rlaif_bpe_encode_batch(const rlaif_bpe *b, size_t n, const char *const *texts,
                                    const size_t *lens, const rlaif_bpe_encode_opts *opts,
                                    rlaif_bpe_ids *outs, int threads);

/* ---- decoding and vocabulary ---- */

/* Exact bytes of ids. *out is a NEW malloc'ed NUL-terminated buffer the caller
 * frees; fails with RLAIF_EINVAL naming the first unknown id. */
rlaif_status rlaif_bpe_decode(const rlaif_bpe *b, const int32_t *ids, size_t n, char **out,
                              size_t *out_len);

/* Id of the token whose bytes are tok[0..len) (raw bytes, not the byte-level
 * alphabet), or -1. Added/special tokens are found by their text. */
int32_t rlaif_bpe_id(const rlaif_bpe *b, const char *tok, size_t len);

/* Validate ids and set *len to their decoded byte length; when dst is non-NULL,
 * also write the bytes to dst (borrowed, not NUL-terminated). They are all there
 * when cap >= *len; otherwise dst holds a prefix and the caller retries with a
 * buffer of *len bytes. One pass: a reused buffer of the right size (cap > *len
 * leaves room for 16-byte copies) decodes at memory speed. */
rlaif_status rlaif_bpe_decode_into(const rlaif_bpe *b, const int32_t *ids, size_t n, char *dst,
                                   size_t cap, size_t *len);

/* Borrowed bytes of token `id` (valid while b lives), or NULL when id is unused. */
const char *rlaif_bpe_token(const rlaif_bpe *b, int32_t id, size_t *len);

int32_t rlaif_bpe_vocab_size(const rlaif_bpe *b);  /* largest id + 1 */
int     rlaif_bpe_is_special(const rlaif_bpe *b, int32_t id);
size_t  rlaif_bpe_n_special(const rlaif_bpe *b);   /* special tokens, for listing */
int32_t rlaif_bpe_special_id(const rlaif_bpe *b, size_t i);
const char *rlaif_bpe_kind(const rlaif_bpe *b);    /* "tiktoken:cl100k_base", "tokenizer.json", "gpt2" */

/* ---- training ---- */

typedef struct rlaif_bpe_train_opts {
    const char *const *files;   /* (n_files) UTF-8 text files, one document per file */
    size_t      n_files;
    const char *const *texts;   /* (n_texts) in-memory documents, used in addition */
    size_t      n_texts;
    int32_t     vocab_size;     /* 256 bytes + merges + specials */
    const char *pattern;        /* "gpt2", "cl100k", "llama3", "o200k", "qwen" or a regex */
    const char *const *special; /* (n_special) special tokens, ids after the merges */
    size_t      n_special;
    int32_t     min_frequency;  /* pairs rarer than this are not merged (>= 1) */
} rlaif_bpe_train_opts;

/* Learn byte-level BPE merges and write a Hugging Face tokenizer.json to out_path. */
rlaif_status rlaif_bpe_train(const rlaif_bpe_train_opts *opts, const char *out_path);

#endif
