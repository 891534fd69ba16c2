/* src/core/bpe_gguf.c -- byte-level BPE tokenizers <-> GGUF's tokenizer.ggml.* keys.
 *
 * What llama.cpp reads (src/llama-vocab.cpp): tokenizer.ggml.model "gpt2" (BPE);
 * tokenizer.ggml.tokens, every id's text: mergeable tokens in the GPT-2
 * byte-level alphabet (as tokenizer.json spells them), added tokens as their
 * raw content; tokenizer.ggml.token_type (1 normal, 3 control = special, 4
 * user-defined = non-special added, 5 unused = an id without a token, written
 * "[PAD<id>]"); tokenizer.ggml.merges ("a b" in rank order; tiktoken files have
 * none, so each token's merge is recovered from the ranks as llama.cpp's
 * converter does); the special ids and add_bos/add_eos; and
 * tokenizer.ggml.pre, the name that selects llama.cpp's pre-tokenizer regex:
 *   GPT-2 regex -> "gpt-2"; cl100k / Llama 3 regex -> "llama-bpe" when whole
 *   words in the vocabulary skip the merges (tiktoken, ignore_merges), else
 *   "dbrx" (the same regex without that rule); Qwen2 -> "qwen2"; o200k -> "gpt-4o".
 * Token texts must be unique (llama.cpp aborts otherwise): duplicates are an error.
 * Not covered: NFC normalization (llama.cpp's BPE does not normalize), other
 * regexes (pass `pre` explicitly), SentencePiece vocabularies.
 * Not here: the GGUF byte format (gguf.c), models (gguf_model.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe_impl.h"
#include "gguf.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* ---- export ---- */

/* Byte-level alphabet text of raw bytes: at most 2 UTF-8 bytes per byte. */
static size_t byte_level(const uint8_t *s, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = bpe_byte_to_cp(s[i]);
        if (cp < 0x80) out[k++] = (char)cp;
        else out[k++] = (char)(0xc0 | (cp >> 6)), out[k++] = (char)(0x80 | (cp & 0x3f));
    }
    return k;
}

static int is_plain_added(const rlaif_bpe *b, int32_t id) {
    for (size_t i = 0; i < b->n_added; i++)
        if (b->added[i].id == id && !b->added[i].special) return 1;
    return 0;
}

static const char *pre_name(const rlaif_bpe *b) {
    if (b->n_stages != 1) return NULL;
    switch (b->stages[0].kind) {
    case PRETOK_GPT2: return "gpt-2";
    case PRETOK_CL100K: return b->whole_first ? "llama-bpe" : "dbrx";
    case PRETOK_QWEN: return "qwen2";
    case PRETOK_O200K: return "gpt-4o";
    default: return NULL;
    }
}

typedef struct merge { int32_t rank, left, right; } merge;

static int merge_cmp(const void *x, const void *y) {
    const merge *a = x, *c = y;
    return a->rank < c->rank ? -1 : a->rank > c->rank;
}

/* The merge that makes mergeable token t of a rank-ordered (tiktoken) vocabulary:
 * run BPE on its bytes with ranks below t until two parts remain. */
static int derive_merge(const rlaif_bpe *b, int32_t t, int32_t *left, int32_t *right) {
    const uint8_t *s = b->blob + b->tok[t].off;
    size_t n = b->tok[t].len;
    size_t st[256], ln[256];   /* part spans; tokens longer than 256 bytes are not split here */
    if (n < 2 || n > 256) return 0;
    size_t k = n;
    for (size_t i = 0; i < n; i++) st[i] = i, ln[i] = 1;
    while (k > 2) {
        int32_t best = -1;
        size_t at = 0;
        for (size_t i = 0; i + 1 < k; i++) {
            int32_t r = bpe_vocab_find(b, s + st[i], ln[i] + ln[i + 1]);
            if (r >= 0 && r < t && (best < 0 || r < best)) best = r, at = i;
        }
        if (best < 0) return 0;
        ln[at] += ln[at + 1];
        memmove(st + at + 1, st + at + 2, (k - at - 2) * sizeof *st);
        memmove(ln + at + 1, ln + at + 2, (k - at - 2) * sizeof *ln);
        k--;
    }
    *left = bpe_vocab_find(b, s + st[0], ln[0]);
    *right = bpe_vocab_find(b, s + st[1], ln[1]);
    return *left >= 0 && *right >= 0;
}

/* A string set for the uniqueness check (open addressing over indexes). */
typedef struct sset { int32_t *slot; size_t mask; } sset;

rlaif_status rlaif_bpe_gguf_put(const rlaif_bpe *b, rlaif_gguf_writer *w, int32_t n_vocab, const char *pre,
                                int32_t bos, int32_t eos, int32_t pad) {
    if (n_vocab <= 0) n_vocab = b->n_ids;
    if (n_vocab < b->n_ids)
        return rlaif_fail(RLAIF_EINVAL, "gguf: the tokenizer has %d tokens, the model's vocabulary only %d",
                          (int)b->n_ids, (int)n_vocab);
    if (pre == NULL) pre = pre_name(b);
    if (pre == NULL)
        return rlaif_fail(RLAIF_EINVAL, "gguf: the tokenizer's pre-tokenizer has no llama.cpp name (known: GPT-2, "
                          "cl100k/Llama 3, Qwen2, o200k regexes); pass pre = NAME (llama.cpp's tokenizer.ggml.pre)");
    rlaif_status st = RLAIF_OK;
    char **text = calloc((size_t)n_vocab, sizeof *text);
    size_t *lens = calloc((size_t)n_vocab, sizeof *lens);
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    merge *mg = NULL;
    char **mtext = NULL;
    size_t *mlens = NULL, nm = 0;
    sset set = {NULL, 0};
    if (!text || !lens || !types) goto nomem;
    for (int32_t id = 0; id < n_vocab; id++) {
        char buf[32];
        if (id < b->n_ids && b->tok[id].off != UINT32_MAX) {
            const uint8_t *s = b->blob + b->tok[id].off;
            size_t n = b->tok[id].len;
            if (b->tok_special[id] || is_plain_added(b, id)) {
                types[id] = b->tok_special[id] ? TT_CONTROL : TT_USER;
                text[id] = malloc(n + 1);
                if (!text[id]) goto nomem;
                memcpy(text[id], s, n);
                lens[id] = n;
            } else {
                types[id] = TT_NORMAL;
                text[id] = malloc(2 * n + 1);
                if (!text[id]) goto nomem;
                lens[id] = byte_level(s, n, text[id]);
            }
        } else {
            types[id] = TT_UNUSED;
            lens[id] = (size_t)snprintf(buf, sizeof buf, "[PAD%d]", (int)id);
            if (!(text[id] = strdup(buf))) goto nomem;
        }
    }
    /* unique texts */
    size_t cap = 16;
    while (cap < (size_t)n_vocab * 2) cap *= 2;
    if (!(set.slot = malloc(cap * sizeof *set.slot))) goto nomem;
    memset(set.slot, 0xff, cap * sizeof *set.slot);
    set.mask = cap - 1;
    for (int32_t id = 0; id < n_vocab; id++) {
        size_t i = bpe_hash_bytes((const uint8_t *)text[id], lens[id]) & set.mask;
        while (set.slot[i] >= 0) {
            int32_t o = set.slot[i];
            if (lens[o] == lens[id] && memcmp(text[o], text[id], lens[id]) == 0) {
                st = rlaif_fail(RLAIF_EINVAL, "gguf: tokens %d and %d have the same text '%.*s' (llama.cpp needs "
                                "unique token texts)", (int)o, (int)id, (int)(lens[id] > 40 ? 40 : lens[id]), text[id]);
                goto done;
            }
            i = (i + 1) & set.mask;
        }
        set.slot[i] = id;
    }
    /* merges in rank order */
    if (b->by_pair) {
        size_t total = 0;
        for (size_t i = 0; i <= b->pair_mask; i++) total += b->pairs[i].key != UINT64_MAX;
        if (!(mg = malloc((total + 1) * sizeof *mg))) goto nomem;
        for (size_t i = 0; i <= b->pair_mask; i++)
            if (b->pairs[i].key != UINT64_MAX)
                mg[nm++] = (merge){b->pairs[i].rank, (int32_t)(b->pairs[i].key >> 32),
                                   (int32_t)(b->pairs[i].key & 0xffffffffu)};
    } else {
        if (!(mg = malloc(((size_t)b->n_ids + 1) * sizeof *mg))) goto nomem;
        for (int32_t t = 0; t < b->n_ids; t++) {
            if (b->tok[t].off == UINT32_MAX || b->tok_special[t] || b->tok[t].len < 2) continue;
            if (bpe_vocab_find(b, b->blob + b->tok[t].off, b->tok[t].len) != t) continue;   /* a duplicate */
            int32_t l, r;
            if (!derive_merge(b, t, &l, &r)) {
                st = rlaif_fail(RLAIF_EINVAL, "gguf: cannot recover the merge that makes token %d", (int)t);
                goto done;
            }
            mg[nm++] = (merge){t, l, r};
        }
    }
    qsort(mg, nm, sizeof *mg, merge_cmp);
    mtext = calloc(nm + 1, sizeof *mtext);
    mlens = calloc(nm + 1, sizeof *mlens);
    if (!mtext || !mlens) goto nomem;
    for (size_t i = 0; i < nm; i++) {
        int32_t l = mg[i].left, r = mg[i].right;
        if (l < 0 || r < 0 || l >= n_vocab || r >= n_vocab || types[l] != TT_NORMAL || types[r] != TT_NORMAL) {
            st = rlaif_fail(RLAIF_EINVAL, "gguf: merge %zu joins tokens %d and %d that are not plain tokens", i,
                            (int)l, (int)r);
            goto done;
        }
        size_t n = lens[l] + 1 + lens[r];
        if (!(mtext[i] = malloc(n + 1))) goto nomem;
        memcpy(mtext[i], text[l], lens[l]);
        mtext[i][lens[l]] = ' ';
        memcpy(mtext[i] + lens[l] + 1, text[r], lens[r]);
        mlens[i] = n;
    }
    if ((st = rlaif_gguf_set_str(w, "tokenizer.ggml.model", "gpt2"))) goto done;
    if ((st = rlaif_gguf_set_str(w, "tokenizer.ggml.pre", pre))) goto done;
    if ((st = rlaif_gguf_set_strs(w, "tokenizer.ggml.tokens", (const char *const *)text, lens, (size_t)n_vocab)))
        goto done;
    if ((st = rlaif_gguf_set_i32s(w, "tokenizer.ggml.token_type", types, (size_t)n_vocab))) goto done;
    if ((st = rlaif_gguf_set_strs(w, "tokenizer.ggml.merges", (const char *const *)mtext, mlens, nm))) goto done;
    if (b->n_bos > 0) bos = b->bos[0];
    if (b->n_eos > 0 && eos < 0) eos = b->eos[0];
    if (bos >= 0 && bos < n_vocab && (st = rlaif_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos)))
        goto done;
    if (eos >= 0 && eos < n_vocab && (st = rlaif_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos)))
        goto done;
    if (pad >= 0 && pad < n_vocab && (st = rlaif_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad)))
        goto done;
    if ((st = rlaif_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", b->n_bos > 0))) goto done;
    if ((st = rlaif_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", b->n_eos > 0))) goto done;
    if (b->prefix_space && (st = rlaif_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", 1))) goto done;
    goto done;
nomem:
    st = rlaif_fail(RLAIF_ENOMEM, "gguf: out of memory");
done:
    for (int32_t id = 0; text && id < n_vocab; id++) free(text[id]);
    for (size_t i = 0; mtext && i < nm; i++) free(mtext[i]);
    free(text), free(lens), free(types), free(mg), free(mtext), free(mlens), free(set.slot);
    return st;
}

rlaif_status rlaif_bpe_save_gguf(const rlaif_bpe *b, const char *path, const char *pre) {
    rlaif_gguf_writer *w = NULL;
    rlaif_status st = rlaif_gguf_writer_new(&w);
    if (st == RLAIF_OK) st = rlaif_gguf_set_str(w, "general.architecture", "llama");
    if (st == RLAIF_OK) st = rlaif_gguf_set_str(w, "general.name", "rlaif tokenizer");
    /* llama.cpp reads these hyperparameters even for vocab_only loading (no tensors follow) */
    static const char *const keys[] = {"llama.context_length", "llama.embedding_length", "llama.block_count",
                                       "llama.feed_forward_length", "llama.attention.head_count"};
    static const uint32_t vals[] = {4096, 64, 1, 64, 1};
    for (int i = 0; i < 5 && st == RLAIF_OK; i++) st = rlaif_gguf_set_u32(w, keys[i], vals[i]);
    if (st == RLAIF_OK) st = rlaif_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    if (st == RLAIF_OK) st = rlaif_gguf_set_u32(w, "llama.vocab_size", (uint32_t)b->n_ids);
    if (st == RLAIF_OK) st = rlaif_bpe_gguf_put(b, w, 0, pre, -1, -1, -1);
    if (st == RLAIF_OK) st = rlaif_gguf_write(w, path);
    rlaif_gguf_writer_free(w);
    return st;
}

/* ---- import ---- */

rlaif_status rlaif_bpe_from_gguf(rlaif_bpe **out, const rlaif_gguf_file *f) {
    *out = NULL;
    const char *name = f->path, *s;
    size_t n;
    if (!rlaif_gguf_get_str(f, "tokenizer.ggml.model", &s, &n))
        return rlaif_fail(RLAIF_EFORMAT, "%s: no tokenizer (tokenizer.ggml.model is missing)", name);
    if (!(n == 4 && memcmp(s, "gpt2", 4) == 0))
        return rlaif_fail(RLAIF_EFORMAT, "%s: tokenizer '%.*s' is not supported (only byte-level BPE, \"gpt2\"; "
                          "SentencePiece \"llama\" vocabularies are not)", name, (int)(n > 32 ? 32 : n), s);
    bpe_pretok_kind kind;
    int whole_first = 0;
    if (!rlaif_gguf_get_str(f, "tokenizer.ggml.pre", &s, &n))
        return rlaif_fail(RLAIF_EFORMAT, "%s: tokenizer.ggml.pre is missing", name);
#define PRE(lit) (n == sizeof(lit) - 1 && memcmp(s, lit, n) == 0)
    if (PRE("gpt-2")) kind = PRETOK_GPT2;
    else if (PRE("llama-bpe") || PRE("llama3") || PRE("llama-v3")) kind = PRETOK_CL100K, whole_first = 1;
    else if (PRE("dbrx") || PRE("smaug-bpe")) kind = PRETOK_CL100K;
    else if (PRE("qwen2") || PRE("deepseek-r1-qwen")) kind = PRETOK_QWEN;
    else if (PRE("gpt-4o") || PRE("llama4")) kind = PRETOK_O200K;
    else
        return rlaif_fail(RLAIF_EFORMAT, "%s: pre-tokenizer '%.*s' is not supported (gpt-2, llama-bpe, dbrx, "
                          "smaug-bpe, qwen2, gpt-4o)", name, (int)(n > 32 ? 32 : n), s);
#undef PRE
    const rlaif_gguf_kv *tk = rlaif_gguf_find(f, "tokenizer.ggml.tokens");
    const rlaif_gguf_kv *tt = rlaif_gguf_find(f, "tokenizer.ggml.token_type");
    const rlaif_gguf_kv *mk = rlaif_gguf_find(f, "tokenizer.ggml.merges");
    if (!tk || tk->type != RLAIF_GGUF_ARRAY || tk->arr_type != RLAIF_GGUF_STRING || tk->n == 0 || tk->n > (1u << 24))
        return rlaif_fail(RLAIF_EFORMAT, "%s: tokenizer.ggml.tokens is missing or not a list of strings", name);
    if (tt && (tt->type != RLAIF_GGUF_ARRAY || tt->arr_type != RLAIF_GGUF_I32 || tt->n < tk->n))
        return rlaif_fail(RLAIF_EFORMAT, "%s: tokenizer.ggml.token_type is not an int32 list per token", name);
    if (!mk || mk->type != RLAIF_GGUF_ARRAY || mk->arr_type != RLAIF_GGUF_STRING)
        return rlaif_fail(RLAIF_EFORMAT, "%s: tokenizer.ggml.merges is missing or not a list of strings", name);
    rlaif_bpe *b = NULL;
    uint8_t *tmp = NULL;
    rlaif_status st = bpe_new(&b, "gguf");
    if (st) return st;
    b->prefix_stage = -1;
    int32_t nt = (int32_t)tk->n;
    const unsigned char *end = tk->data + tk->size, *p = tk->data;
    size_t cap = 0;
    /* pass 1: the mergeable tokens */
    for (int32_t id = 0; id < nt; id++) {
        if (!rlaif_gguf_next_str(&p, end, &s, &n)) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: tokenizer.ggml.tokens[%d] is cut off", name, (int)id);
            goto done;
        }
        int32_t type = tt ? (int32_t)(tt->data[4 * id] | tt->data[4 * id + 1] << 8 | tt->data[4 * id + 2] << 16 |
                                      (uint32_t)tt->data[4 * id + 3] << 24)
                          : TT_NORMAL;
        if (type != TT_NORMAL) continue;
        if (n + 1 > cap) {
            uint8_t *q = realloc(tmp, cap = 2 * n + 64);
            if (!q) {
                st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", name);
                goto done;
            }
            tmp = q;
        }
        long m = bpe_unbyte((const uint8_t *)s, n, tmp);
        if (m <= 0) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: token %d ('%.*s') is not in the byte-level alphabet", name, (int)id,
                            (int)(n > 40 ? 40 : n), s);
            goto done;
        }
        if ((st = bpe_set_token(b, id, tmp, (size_t)m))) goto done;
    }
    if ((st = bpe_build_vocab(b, nt, name))) goto done;
    for (int i = 0; i < 256; i++)
        if (b->byte_id[i] < 0) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: the vocabulary has no token for byte 0x%02x", name, i);
            goto done;
        }
    /* merges, in rank order */
    if ((st = bpe_pairs_reserve(b, (size_t)mk->n + 1))) goto done;
    p = mk->data, end = mk->data + mk->size;
    for (uint64_t r = 0; r < mk->n; r++) {
        if (!rlaif_gguf_next_str(&p, end, &s, &n)) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: tokenizer.ggml.merges[%d] is cut off", name, (int)r);
            goto done;
        }
        const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;   /* llama.cpp: find(' ', 1) */
        if (!sp || sp + 1 == s + n) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: tokenizer.ggml.merges[%d] is not \"a b\"", name, (int)r);
            goto done;
        }
        size_t an = (size_t)(sp - s), cn = n - an - 1;
        if (n + 1 > cap) {
            uint8_t *q = realloc(tmp, cap = 2 * n + 64);
            if (!q) {
                st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", name);
                goto done;
            }
            tmp = q;
        }
        long ma = bpe_unbyte((const uint8_t *)s, an, tmp), mc = ma > 0 ? bpe_unbyte((const uint8_t *)sp + 1, cn, tmp + ma) : -1;
        int32_t ia = ma > 0 ? bpe_vocab_find(b, tmp, (size_t)ma) : -1, ic = mc > 0 ? bpe_vocab_find(b, tmp + ma, (size_t)mc) : -1;
        int32_t in = ia >= 0 && ic >= 0 ? bpe_vocab_find(b, tmp, (size_t)(ma + mc)) : -1;
        if (in < 0) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: tokenizer.ggml.merges[%d] ('%.*s') uses a token not in the vocabulary",
                            name, (int)r, (int)(n > 40 ? 40 : n), s);
            goto done;
        }
        bpe_pairs_put(b, ia, ic, (int32_t)r, in);
    }
    /* pass 2: added tokens (control = special, user-defined = always matched) */
    p = tk->data, end = tk->data + tk->size;
    for (int32_t id = 0; id < nt; id++) {
        rlaif_gguf_next_str(&p, end, &s, &n);
        int32_t type = tt ? (int32_t)(tt->data[4 * id] | tt->data[4 * id + 1] << 8 | tt->data[4 * id + 2] << 16 |
                                      (uint32_t)tt->data[4 * id + 3] << 24)
                          : TT_NORMAL;
        if ((type == TT_CONTROL || type == TT_USER) && n > 0 &&
            (st = bpe_add_added(b, id, (const uint8_t *)s, n, type == TT_CONTROL)))
            goto done;
    }
    bpe_index_added(b);
    b->stages[0].kind = kind;
    b->n_stages = 1;
    b->whole_first = whole_first;
    int on;
    uint32_t v;
    if (rlaif_gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &on) && on &&
        rlaif_gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &v) && v < (uint32_t)nt)
        b->bos[b->n_bos++] = (int32_t)v;
    if (rlaif_gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &on) && on &&
        rlaif_gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &v) && v < (uint32_t)nt)
        b->eos[b->n_eos++] = (int32_t)v;
    if (rlaif_gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &on) && on) b->prefix_space = 1, b->prefix_stage = 0;
done:
    free(tmp);
    if (st) rlaif_bpe_free(b);
    else *out = b;
    return st;
}

rlaif_status rlaif_bpe_load_gguf(rlaif_bpe **out, const char *path) {
    *out = NULL;
    rlaif_gguf_file *f = NULL;
    rlaif_status st = rlaif_gguf_open(path, &f);
    if (st == RLAIF_OK) st = rlaif_bpe_from_gguf(out, f);
    rlaif_gguf_close(f);
    return st;
}
