/* src/core/bpe_impl.h -- internals shared by bpe.c (engine), bpe_pretok.c
 * (pre-tokenizer scanners), bpe_load.c (loaders), bpe_json.c (JSON reader) and
 * bpe_train.c. Not installed API: include bpe.h instead.
 *
 * Ownership: a rlaif_bpe owns every buffer reachable from it; bpe_free_internal
 * releases them all. */
#ifndef RLAIF_BPE_IMPL_H
#define RLAIF_BPE_IMPL_H

#include <stdint.h>
#include <stddef.h>

#include "bpe.h"

/* ---- character classes (bpe_pretok.c) ---- */

enum {
    CC_L  = 1,   /* \p{L} */
    CC_N  = 2,   /* \p{N} */
    CC_WS = 4,   /* \s: Unicode White_Space */
    CC_NL = 8,   /* \r or \n */
    CC_A  = 16,  /* o200k [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] */
    CC_B  = 32,  /* o200k [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
    CC_NFC = 64, /* may change under NFC or compose with a neighbour */
};

void    bpe_classes_init(void);  /* idempotent, thread-safe */
uint8_t bpe_class(uint32_t cp);
/* 1 when NFC leaves s[0..n) (valid UTF-8) unchanged for sure: no character
 * decomposes, combines or has a non-zero combining class. */
int bpe_nfc_stable(const uint8_t *s, size_t n);
/* Offset of the first character at or after i that may change under NFC or
 * compose with a neighbour (class CC_NFC), or n. Every other character is a
 * starter that NFC leaves alone and that composes with nothing before it, so
 * text may be split in front of one: NFC(x y) = NFC(x) NFC(y). */
size_t bpe_nfc_next(const uint8_t *s, size_t n, size_t i);
/* End of the run of CC_NFC characters starting at i. */
size_t bpe_nfc_run_end(const uint8_t *s, size_t n, size_t i);

/* ---- pre-tokenizers ---- */

typedef enum bpe_pretok_kind {
    PRETOK_NONE = 0, /* the whole segment is one piece */
    PRETOK_GPT2,     /* r50k/p50k/GPT-2 ByteLevel regex */
    PRETOK_CL100K,   /* cl100k_base and Llama 3: \p{N}{1,3} */
    PRETOK_QWEN,     /* as cl100k with single-digit \p{N} (Qwen2/3) */
    PRETOK_O200K,    /* o200k_base */
    PRETOK_PCRE,     /* any other Split regex, via PCRE2 */
} bpe_pretok_kind;

typedef struct bpe_stage {
    bpe_pretok_kind kind;
    void *code;      /* pcre2_code_8 * for PRETOK_PCRE, else NULL */
} bpe_stage;

#define BPE_MAX_STAGES 4
#define BPE_CACHE_POOL 16

/* Map a regex source to a built-in scanner, or PRETOK_PCRE when unknown. */
bpe_pretok_kind bpe_pretok_known(const char *pattern);
/* The regex source of a built-in scanner (static), or NULL. */
const char *bpe_pretok_regex(bpe_pretok_kind kind);
/* Compile a PCRE2 pattern (UTF + UCP) into *code. */
rlaif_status bpe_pretok_compile(const char *pattern, void **code);
void bpe_pretok_code_free(void *code);

typedef void (*bpe_piece_fn)(void *ctx, const uint8_t *s, size_t n);
/* Split s[0..n) (valid UTF-8) with one stage, calling fn for each piece in order. */
rlaif_status bpe_pretok_split(const bpe_stage *st, const uint8_t *s, size_t n, bpe_piece_fn fn,
                              void *ctx);

/* ---- hash tables ---- */

/* bytes -> id: open addressing over token spans in the blob. The hash and id of
 * a slot share one 8-byte entry, so a probe touches one cache line. */
typedef struct bpe_vslot {
    uint32_t hash;  /* hash of the slot's key */
    int32_t  id;    /* -1 = empty */
} bpe_vslot;

typedef struct bpe_vmap {
    bpe_vslot *slot; /* (mask + 1) */
    size_t     mask;
} bpe_vmap;

/* Where the bytes of one id live: blob[off .. off + len). */
typedef struct bpe_tok {
    uint32_t off;   /* UINT32_MAX = unused id */
    uint32_t len;
} bpe_tok;

/* Bytes of zero padding kept after the last token in the blob, so decoding may
 * copy 16 bytes at a time from any token's start. */
#define BPE_BLOB_PAD 16

/* (left id, right id) -> (rank, merged id) for tokenizer.json merges. */
typedef struct bpe_pair {
    uint64_t key;  /* left << 32 | right; UINT64_MAX = empty */
    int32_t  rank;
    int32_t  id;
} bpe_pair;

typedef struct bpe_added {
    uint32_t off, len;  /* content bytes in the blob */
    int32_t  id;
    int      special;
} bpe_added;

static inline uint32_t bpe_hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        __builtin_memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(h >> 32);
}

/* ---- the tokenizer ---- */

struct rlaif_bpe {
    char     kind[64];       /* "tiktoken:cl100k_base", "tokenizer.json", "gpt2" */
    uint8_t *blob;           /* bytes of every token, then BPE_BLOB_PAD zero bytes */
    size_t   blob_len, blob_cap;
    bpe_tok  *tok;           /* (n_ids) where each id's bytes are in the blob */
    uint8_t  *tok_special;   /* (n_ids) 1 = special added token */
    int32_t  n_ids;          /* vocab size: largest id + 1 */
    int32_t  byte_id[256];   /* single-byte tokens, -1 = missing */

    bpe_vmap vocab;          /* mergeable tokens: bytes -> id (= tiktoken rank) */
    int      by_pair;        /* 1: rank from `pairs` (merges), 0: rank = id of the concatenation */
    bpe_pair *pairs;         /* (pair_mask + 1) */
    size_t   pair_mask;
    int      whole_first;    /* a piece that is a token is emitted as is (tiktoken, ignore_merges) */

    bpe_stage stages[BPE_MAX_STAGES]; /* pre-tokenizer pipeline, applied in order */
    int      n_stages;
    int      prefix_space;   /* ByteLevel add_prefix_space ... */
    int      prefix_stage;   /* ... applied to the input of this stage (n_stages = the merges) */
    int      nfc;            /* NFC normalizer */

    bpe_added *added;        /* (n_added) added tokens, sorted by first byte, longest first */
    size_t   n_added;
    uint32_t added_at[257];  /* added[added_at[c] .. added_at[c+1]) start with byte c */
    int      has_plain_added; /* some added token is not special (always matched) */

    int32_t  bos[4], eos[4]; /* post-processor template */
    int      n_bos, n_eos;
    char     post_error[160]; /* why ADD_SPECIAL is unsupported, or "" */
    void    *cache_pool[BPE_CACHE_POOL]; /* idle word caches, taken/returned atomically */
};

/* Engine helpers used by the loaders (bpe.c). */
rlaif_status bpe_new(rlaif_bpe **out, const char *kind);
/* Set the bytes of id (growing the id arrays). */
rlaif_status bpe_set_token(rlaif_bpe *b, int32_t id, const uint8_t *s, size_t n);
/* Build vocab map + byte ids over ids [0, n_mergeable) that have bytes. */
rlaif_status bpe_build_vocab(rlaif_bpe *b, int32_t n_mergeable, const char *what);
rlaif_status bpe_pairs_reserve(rlaif_bpe *b, size_t n);
void bpe_pairs_put(rlaif_bpe *b, int32_t left, int32_t right, int32_t rank, int32_t id);
rlaif_status bpe_add_added(rlaif_bpe *b, int32_t id, const uint8_t *s, size_t n, int special);
/* Sort the added tokens and index them by first byte; call once after the last add. */
void bpe_index_added(rlaif_bpe *b);
int32_t bpe_vocab_find(const rlaif_bpe *b, const uint8_t *s, size_t n);

/* ---- GPT-2 byte <-> unicode alphabet ---- */

/* The code point that stands for byte b in byte-level vocabularies. */
uint32_t bpe_byte_to_cp(int byte);
/* Convert a byte-level vocabulary string (UTF-8) into raw bytes in dst (capacity
 * >= n). Returns the byte count, or -1 when a character is outside the alphabet. */
long bpe_unbyte(const uint8_t *s, size_t n, uint8_t *dst);

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 prefix of s[0..n). */
size_t bpe_utf8_valid_prefix(const uint8_t *s, size_t n);
/* Copy s with each maximal invalid subpart replaced by U+FFFD; NEW buffer. */
rlaif_status bpe_utf8_sanitize(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len);

/* ---- minimal JSON reader (bpe_json.c) ---- */

typedef enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ } bpe_jtype;

typedef struct bpe_jnode {
    uint8_t  type;
    uint32_t len;     /* string bytes, or member/element count */
    uint32_t first;   /* first child (array element / object key), 0 = none */
    uint32_t next;    /* next sibling, 0 = none */
    uint32_t val;     /* for object keys: the value node */
    union {
        double num;   /* J_NUM */
        char  *str;   /* J_STR: unescaped, NUL-terminated, points into the parse buffer */
    };
} bpe_jnode;

typedef struct bpe_json {
    bpe_jnode *n;     /* node 0 is a dummy; the root is node 1 */
    size_t     count, cap;
    char      *buf;   /* owned copy of the text */
} bpe_json;

/* Parse; `name` is used in error messages ("tokenizer.json: ..."). */
rlaif_status bpe_json_parse(bpe_json *j, const char *text, size_t len, const char *name);
/* The same, taking ownership of `text` (malloc'ed, text[len] == 0), which is
 * unescaped in place rather than copied; it is freed with j (or on failure). */
rlaif_status bpe_json_parse_owned(bpe_json *j, char *text, size_t len, const char *name);
void bpe_json_free(bpe_json *j);
/* Member `key` of object node o, or 0. */
uint32_t bpe_json_get(const bpe_json *j, uint32_t o, const char *key);

#endif
