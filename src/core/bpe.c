/* src/core/bpe.c -- the byte-level BPE engine: vocabulary tables, added-token
 * splitting, NFC, the pre-tokenizer pipeline, rank-ordered merging, decoding and
 * threaded batch encoding.
 *
 * Merging follows tiktoken and Hugging Face exactly: repeatedly merge the adjacent
 * pair with the lowest rank, the leftmost on ties. The rank of a pair is the id of
 * the concatenated bytes (tiktoken) or the index of the merge rule (tokenizer.json,
 * by_pair). Short pieces use a flat array (quadratic but tiny); long pieces (runs
 * of 10k spaces) use a linked list and a binary heap with lazy invalidation, so
 * the worst case is O(n log n). Pieces that are whole tokens skip merging when the
 * model allows it (tiktoken, ignore_merges); otherwise a small word cache, taken
 * from a lock-free pool on the tokenizer, remembers recent pieces.
 *
 * Not here: file formats (bpe_load.c), regex scanners (bpe_pretok.c), training.
 * Ownership: the tokenizer owns its tables; encode appends to caller-owned vectors. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "bpe_impl.h"

/* ---- id vectors ---- */

void rlaif_bpe_ids_free(rlaif_bpe_ids *v) {
    if (!v) return;
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

static int ids_push(rlaif_bpe_ids *v, int32_t id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p) return -1;
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return 0;
}

/* ---- GPT-2 byte <-> unicode alphabet ---- */

static int byte_is_printable(int b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

uint32_t bpe_byte_to_cp(int byte) {
    if (byte_is_printable(byte)) return (uint32_t)byte;
    uint32_t k = 0;
    for (int b = 0; b < byte; b++) k += !byte_is_printable(b);
    return 256 + k;
}

long bpe_unbyte(const uint8_t *s, size_t n, uint8_t *dst) {
    static int16_t inv[324];
    static int inited;
    if (!__atomic_load_n(&inited, __ATOMIC_ACQUIRE)) { /* idempotent, benign race */
        int16_t t[324];
        for (int i = 0; i < 324; i++) t[i] = -1;
        for (int b = 0; b < 256; b++) t[bpe_byte_to_cp(b)] = (int16_t)b;
        memcpy(inv, t, sizeof t);
        __atomic_store_n(&inited, 1, __ATOMIC_RELEASE);
    }
    /* the alphabet is U+0021..U+0143: one or two UTF-8 bytes per character */
    size_t i = 0;
    long m = 0;
    while (i < n) {
        uint32_t cp = s[i];
        if (cp >= 0x80) {
            if (cp < 0xC2 || cp > 0xC5 || i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return -1;
            cp = (cp & 0x1Fu) << 6 | (s[i + 1] & 0x3Fu);
            i++;
        }
        i++;
        if (cp >= 324 || inv[cp] < 0) return -1;
        dst[m++] = (uint8_t)inv[cp];
    }
    return m;
}

/* ---- UTF-8 validation (maximal subparts, as WHATWG TextDecoder) ---- */

/* Length of the valid sequence at s[i] (> 0), or minus the length of the
 * maximal invalid subpart to replace with one U+FFFD. */
static inline long utf8_seq(const uint8_t *s, size_t n, size_t i) {
    uint8_t c = s[i];
    if (c < 0x80) return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return -1;
    size_t j = i + 1;
    for (int k = 0; k < need; k++, j++) {
        if (j >= n || s[j] < lo || s[j] > hi) return -(long)(j - i);
        lo = 0x80, hi = 0xBF;
    }
    return need + 1;
}

size_t bpe_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* 8 ASCII bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        long l = utf8_seq(s, n, i);
        if (l < 0) return i;
        i += (size_t)l;
    }
    return n;
}

rlaif_status bpe_utf8_sanitize(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len) {
    uint8_t *d = malloc(3 * n + 1); /* each bad byte becomes at most 3 bytes */
    if (!d) return rlaif_fail(RLAIF_ENOMEM, "tokenizer: out of memory");
    size_t i = 0, m = 0;
    while (i < n) {
        long l = utf8_seq(s, n, i);
        if (l > 0) {
            memcpy(d + m, s + i, (size_t)l);
            m += (size_t)l;
            i += (size_t)l;
        } else {
            memcpy(d + m, "\xEF\xBF\xBD", 3);
            m += 3;
            i += (size_t)-l;
        }
    }
    d[m] = 0;
    *out = d;
    *out_len = m;
    return RLAIF_OK;
}

/* ---- construction helpers (used by loaders) ---- */

rlaif_status bpe_new(rlaif_bpe **out, const char *kind) {
    bpe_classes_init();
    rlaif_bpe *b = calloc(1, sizeof *b);
    if (!b) return rlaif_fail(RLAIF_ENOMEM, "tokenizer: out of memory");
    snprintf(b->kind, sizeof b->kind, "%s", kind);
    for (int i = 0; i < 256; i++) b->byte_id[i] = -1;
    *out = b;
    return RLAIF_OK;
}

static rlaif_status blob_add(rlaif_bpe *b, const uint8_t *s, size_t n, uint32_t *off) {
    if (b->blob_len + n + BPE_BLOB_PAD > b->blob_cap) {
        size_t cap = b->blob_cap ? b->blob_cap : 1 << 16;
        while (cap < b->blob_len + n + BPE_BLOB_PAD) cap *= 2;
        if (cap > UINT32_MAX) return rlaif_fail(RLAIF_ENOMEM, "tokenizer: vocabulary too large");
        uint8_t *p = realloc(b->blob, cap);
        if (!p) return rlaif_fail(RLAIF_ENOMEM, "tokenizer: out of memory");
        b->blob = p;
        b->blob_cap = cap;
    }
    *off = (uint32_t)b->blob_len;
    if (n) memcpy(b->blob + b->blob_len, s, n);
    b->blob_len += n;
    memset(b->blob + b->blob_len, 0, BPE_BLOB_PAD);
    return RLAIF_OK;
}

static rlaif_status ids_reserve(rlaif_bpe *b, int32_t n_ids) {
    if (n_ids <= b->n_ids) return RLAIF_OK;
    int32_t old = b->n_ids;
    bpe_tok *t = realloc(b->tok, (size_t)n_ids * sizeof *t);
    if (t) b->tok = t;
    uint8_t *sp = realloc(b->tok_special, (size_t)n_ids);
    if (sp) b->tok_special = sp;
    if (!t || !sp) return rlaif_fail(RLAIF_ENOMEM, "tokenizer: out of memory");
    for (int32_t i = old; i < n_ids; i++) {
        b->tok[i].off = UINT32_MAX;
        b->tok[i].len = 0;
        b->tok_special[i] = 0;
    }
    b->n_ids = n_ids;
    return RLAIF_OK;
}

rlaif_status bpe_set_token(rlaif_bpe *b, int32_t id, const uint8_t *s, size_t n) {
    if (id < 0 || id >= (1 << 30)) return rlaif_fail(RLAIF_EFORMAT, "token id %d out of range", id);
    if (id >= b->n_ids) {
        int32_t want = b->n_ids ? b->n_ids : 1024;
        while (want <= id) want *= 2;
        rlaif_status st = ids_reserve(b, want);
        if (st) return st;
        /* n_ids tracks the largest id + 1; shrink the logical size back */
    }
    uint32_t off;
    rlaif_status st = blob_add(b, s, n, &off);
    if (st) return st;
    bpe_tok *t = &b->tok[id];
    t->off = off;
    t->len = (uint32_t)n;
    return RLAIF_OK;
}

int32_t bpe_vocab_find(const rlaif_bpe *b, const uint8_t *s, size_t n) {
    if (!b->vocab.slot) return -1;
    uint32_t h = bpe_hash_bytes(s, n);
    size_t i = h & b->vocab.mask;
    for (;;) {
        bpe_vslot e = b->vocab.slot[i];
        if (e.id < 0) return -1;
        if (e.hash == h) {
            const bpe_tok *t = &b->tok[e.id];
            if (t->len == n && memcmp(b->blob + t->off, s, n) == 0)
                return e.id;
        }
        i = (i + 1) & b->vocab.mask;
    }
}

/* n_ids is the array capacity while loading; trim it to the largest used id + 1. */
static int32_t trim_ids(rlaif_bpe *b) {
    int32_t top = b->n_ids;
    while (top > 0 && b->tok[top - 1].off == UINT32_MAX) top--;
    return top;
}

rlaif_status bpe_build_vocab(rlaif_bpe *b, int32_t n_mergeable, const char *what) {
    int32_t top = trim_ids(b);
    if (n_mergeable > top) n_mergeable = top;
    size_t cap = 16;
    while (cap < (size_t)n_mergeable * 2) cap *= 2;
    free(b->vocab.slot);
    b->vocab.slot = malloc(cap * sizeof *b->vocab.slot);
    if (!b->vocab.slot) return rlaif_fail(RLAIF_ENOMEM, "tokenizer: out of memory");
    memset(b->vocab.slot, 0xff, cap * sizeof *b->vocab.slot);
    b->vocab.mask = cap - 1;
    for (int32_t id = 0; id < n_mergeable; id++) {
        if (b->tok[id].off == UINT32_MAX || b->tok_special[id]) continue;
        const uint8_t *s = b->blob + b->tok[id].off;
        size_t n = b->tok[id].len;
        uint32_t h = bpe_hash_bytes(s, n);
        size_t i = h & b->vocab.mask;
        int dup = 0;
        while (b->vocab.slot[i].id >= 0) {
            int32_t o = b->vocab.slot[i].id;
            if (b->vocab.slot[i].hash == h && b->tok[o].len == n &&
                memcmp(b->blob + b->tok[o].off, s, n) == 0) {
                dup = 1; /* keep the lower id (first seen) */
                break;
            }
            i = (i + 1) & b->vocab.mask;
        }
        if (dup) continue;
        b->vocab.slot[i] = (bpe_vslot){h, id};
        if (n == 1 && b->byte_id[s[0]] < 0) b->byte_id[s[0]] = id;
    }
    (void)what;
    return RLAIF_OK;
}

rlaif_status bpe_pairs_reserve(rlaif_bpe *b, size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    free(b->pairs);
    b->pairs = malloc(cap * sizeof *b->pairs);
    if (!b->pairs) return rlaif_fail(RLAIF_ENOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < cap; i++) b->pairs[i].key = UINT64_MAX;
    b->pair_mask = cap - 1;
    b->by_pair = 1;
    return RLAIF_OK;
}

static inline size_t pair_slot(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & mask;
}

void bpe_pairs_put(rlaif_bpe *b, int32_t left, int32_t right, int32_t rank, int32_t id) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = pair_slot(key, b->pair_mask);
    while (b->pairs[i].key != UINT64_MAX) {
        if (b->pairs[i].key == key) return; /* first (lowest rank) rule wins */
        i = (i + 1) & b->pair_mask;
    }
    b->pairs[i].key = key;
    b->pairs[i].rank = rank;
    b->pairs[i].id = id;
}

static inline const bpe_pair *pairs_get(const rlaif_bpe *b, int32_t left, int32_t right) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = pair_slot(key, b->pair_mask);
    for (;;) {
        const bpe_pair *p = &b->pairs[i];
        if (p->key == key) return p;
        if (p->key == UINT64_MAX) return NULL;
        i = (i + 1) & b->pair_mask;
    }
}

rlaif_status bpe_add_added(rlaif_bpe *b, int32_t id, const uint8_t *s, size_t n, int special) {
    if (n == 0) return rlaif_fail(RLAIF_EFORMAT, "added token %d has empty content", id);
    bpe_added *p = realloc(b->added, (b->n_added + 1) * sizeof *p);
    if (!p) return rlaif_fail(RLAIF_ENOMEM, "tokenizer: out of memory");
    b->added = p;
    uint32_t off;
    rlaif_status st = blob_add(b, s, n, &off);
    if (st) return st;
    b->added[b->n_added++] = (bpe_added){off, (uint32_t)n, id, special};
    st = bpe_set_token(b, id, s, n); /* an added token decodes to its content */
    if (st) return st;
    if (special) b->tok_special[id] = 1;
    else b->has_plain_added = 1;
    return RLAIF_OK;
}

static const rlaif_bpe *sort_ctx;
static int added_cmp(const void *x, const void *y) {
    const bpe_added *a = x, *c = y;
    uint8_t fa = sort_ctx->blob[a->off], fc = sort_ctx->blob[c->off];
    if (fa != fc) return fa < fc ? -1 : 1;
    if (a->len != c->len) return a->len > c->len ? -1 : 1; /* longest first */
    return a->id < c->id ? -1 : a->id > c->id;
}

void bpe_index_added(rlaif_bpe *b) {
    b->n_ids = trim_ids(b);
    sort_ctx = b; /* loaders run on one thread per tokenizer; the comparator only reads */
    if (b->n_added) qsort(b->added, b->n_added, sizeof *b->added, added_cmp);
    size_t k = 0;
    for (int c = 0; c < 256; c++) {
        b->added_at[c] = (uint32_t)k;
        while (k < b->n_added && b->blob[b->added[k].off] == c) k++;
    }
    b->added_at[256] = (uint32_t)k;
}

void rlaif_bpe_free(rlaif_bpe *b) {
    if (!b) return;
    for (int i = 0; i < b->n_stages; i++)
        if (b->stages[i].code) bpe_pretok_code_free(b->stages[i].code);
    for (int i = 0; i < BPE_CACHE_POOL; i++) free(b->cache_pool[i]);
    free(b->blob);
    free(b->tok);
    free(b->tok_special);
    free(b->vocab.slot);
    free(b->pairs);
    free(b->added);
    free(b);
}

/* ---- word cache ---- */

#define CACHE_SLOTS 4096
#define CACHE_KEY 22
#define CACHE_IDS 7

typedef struct cache_ent {
    uint32_t hash;
    uint8_t  klen, nids; /* klen 0 = empty */
    uint8_t  key[CACHE_KEY];
    int32_t  ids[CACHE_IDS];
} cache_ent;

typedef struct word_cache { cache_ent e[CACHE_SLOTS]; } word_cache;

static word_cache *cache_take(rlaif_bpe *b) {
    for (int i = 0; i < BPE_CACHE_POOL; i++) {
        void *c = __atomic_exchange_n(&b->cache_pool[i], NULL, __ATOMIC_ACQ_REL);
        if (c) return c;
    }
    return calloc(1, sizeof(word_cache)); /* NULL: run without a cache */
}

static void cache_give(rlaif_bpe *b, word_cache *c) {
    if (!c) return;
    for (int i = 0; i < BPE_CACHE_POOL; i++) {
        void *expected = NULL;
        if (__atomic_compare_exchange_n(&b->cache_pool[i], &expected, c, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return;
    }
    free(c);
}

/* ---- merging ---- */

typedef struct heap_ent { int32_t rank, pos, lid, rid, nid; } heap_ent;

typedef struct enc_ctx {
    const rlaif_bpe *b;
    rlaif_bpe_ids   *out;
    word_cache      *cache;
    rlaif_status     st;
    int              depth;      /* stage whose pieces the callback receives */
    void            *scratch;    /* heap-merge arrays, grown on demand */
    size_t           scratch_cap;
} enc_ctx;

static void push_id(enc_ctx *c, int32_t id) {
    if (id >= 0 && ids_push(c->out, id)) c->st = rlaif_fail(RLAIF_ENOMEM, "tokenizer: out of memory");
}

/* Rank and merged id of parts [a_start, mid) + [mid, end) with ids la, ra. */
static inline int32_t pair_rank(const rlaif_bpe *b, const uint8_t *s, size_t a_start, size_t end,
                                int32_t la, int32_t ra, int32_t *nid) {
    if (b->by_pair) {
        if (la < 0 || ra < 0) return INT32_MAX;
        const bpe_pair *p = pairs_get(b, la, ra);
        if (!p) return INT32_MAX;
        *nid = p->id;
        return p->rank;
    }
    int32_t id = bpe_vocab_find(b, s + a_start, end - a_start);
    if (id < 0) return INT32_MAX;
    *nid = id;
    return id;
}

#define SMALL_WORD 48

/* Flat-array merge for short pieces: out gets the ids, returns their count. */
static size_t merge_small(const rlaif_bpe *b, const uint8_t *s, size_t n, int32_t *out) {
    uint32_t start[SMALL_WORD + 1];
    int32_t id[SMALL_WORD], rank[SMALL_WORD], nid[SMALL_WORD];
    size_t m = n;
    for (size_t i = 0; i < n; i++) {
        start[i] = (uint32_t)i;
        id[i] = b->byte_id[s[i]];
    }
    start[n] = (uint32_t)n;
    for (size_t i = 0; i + 1 < m; i++) rank[i] = pair_rank(b, s, start[i], start[i + 2], id[i], id[i + 1], &nid[i]);
    rank[m - 1] = INT32_MAX;
    while (m > 1) {
        int32_t best = INT32_MAX;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < m; i++)
            if (rank[i] < best) best = rank[i], bi = i;
        if (best == INT32_MAX) break;
        id[bi] = nid[bi];
        size_t tail = m - (bi + 2);
        memmove(&start[bi + 1], &start[bi + 2], (tail + 1) * sizeof *start);
        memmove(&id[bi + 1], &id[bi + 2], tail * sizeof *id);
        memmove(&rank[bi + 1], &rank[bi + 2], tail * sizeof *rank);
        memmove(&nid[bi + 1], &nid[bi + 2], tail * sizeof *nid);
        m--;
        rank[m - 1] = INT32_MAX;
        if (bi + 1 < m) rank[bi] = pair_rank(b, s, start[bi], start[bi + 2], id[bi], id[bi + 1], &nid[bi]);
        else rank[bi] = INT32_MAX;
        if (bi > 0) rank[bi - 1] = pair_rank(b, s, start[bi - 1], start[bi + 1], id[bi - 1], id[bi], &nid[bi - 1]);
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (id[i] >= 0) out[k++] = id[i];
    return k;
}

static inline int heap_less(const heap_ent *x, const heap_ent *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(heap_ent *h, size_t *n, heap_ent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static heap_ent heap_pop(heap_ent *h, size_t *n) {
    heap_ent top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* Linked-list + heap merge for long pieces; pushes ids directly. */
static void merge_large(enc_ctx *c, const uint8_t *s, size_t n) {
    const rlaif_bpe *b = c->b;
    /* per node: start, end, id, prev, next (int32) + heap of up to 3n entries */
    size_t need = n * 5 * sizeof(int32_t) + 3 * n * sizeof(heap_ent);
    if (need > c->scratch_cap) {
        void *p = realloc(c->scratch, need);
        if (!p) {
            c->st = rlaif_fail(RLAIF_ENOMEM, "tokenizer: out of memory");
            return;
        }
        c->scratch = p;
        c->scratch_cap = need;
    }
    int32_t *st = c->scratch, *en = st + n, *id = en + n, *prev = id + n, *next = prev + n;
    heap_ent *h = (heap_ent *)(next + n);
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        st[i] = (int32_t)i;
        en[i] = (int32_t)i + 1;
        id[i] = b->byte_id[s[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t nid;
        int32_t r = pair_rank(b, s, st[i], en[i + 1], id[i], id[i + 1], &nid);
        if (r != INT32_MAX) heap_push(h, &hn, (heap_ent){r, (int32_t)i, id[i], id[i + 1], nid});
    }
    while (hn) {
        heap_ent e = heap_pop(h, &hn);
        int32_t p = e.pos, q = next[p];
        if (st[p] < 0 || q < 0 || id[p] != e.lid || id[q] != e.rid) continue; /* stale */
        id[p] = e.nid;
        en[p] = en[q];
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = p;
        st[q] = -1;
        int32_t nid, r;
        if (prev[p] >= 0) {
            int32_t a = prev[p];
            r = pair_rank(b, s, st[a], en[p], id[a], id[p], &nid);
            if (r != INT32_MAX) heap_push(h, &hn, (heap_ent){r, a, id[a], id[p], nid});
        }
        if (next[p] >= 0) {
            int32_t d = next[p];
            r = pair_rank(b, s, st[p], en[d], id[p], id[d], &nid);
            if (r != INT32_MAX) heap_push(h, &hn, (heap_ent){r, p, id[p], id[d], nid});
        }
    }
    for (int32_t i = 0; i >= 0; i = next[i]) push_id(c, id[i]);
}

/* BPE of one pre-tokenized piece (raw bytes). */
static void encode_word(enc_ctx *c, const uint8_t *s, size_t n) {
    const rlaif_bpe *b = c->b;
    if (n == 1) {
        push_id(c, b->byte_id[s[0]]);
        return;
    }
    if (b->whole_first) {
        int32_t id = bpe_vocab_find(b, s, n);
        if (id >= 0) {
            push_id(c, id);
            return;
        }
    }
    cache_ent *ce = NULL;
    uint32_t h = 0;
    if (c->cache && n <= CACHE_KEY) {
        h = bpe_hash_bytes(s, n);
        ce = &c->cache->e[h & (CACHE_SLOTS - 1)];
        if (ce->klen == n && ce->hash == h && memcmp(ce->key, s, n) == 0) {
            for (int i = 0; i < ce->nids; i++) push_id(c, ce->ids[i]);
            return;
        }
    }
    if (n <= SMALL_WORD) {
        int32_t ids[SMALL_WORD];
        size_t k = merge_small(b, s, n, ids);
        for (size_t i = 0; i < k; i++) push_id(c, ids[i]);
        if (ce && k <= CACHE_IDS) {
            ce->hash = h;
            ce->klen = (uint8_t)n;
            ce->nids = (uint8_t)k;
            memcpy(ce->key, s, n);
            memcpy(ce->ids, ids, k * sizeof *ids);
        }
        return;
    }
    merge_large(c, s, n);
}

/* ---- pipeline: stages, prefix space ---- */

static void feed(enc_ctx *c, int k, const uint8_t *s, size_t n);

static void on_piece(void *vctx, const uint8_t *s, size_t n) {
    enc_ctx *c = vctx;
    if (c->st) return;
    int saved = c->depth;
    feed(c, saved + 1, s, n);
    c->depth = saved;
}

/* Hand s to stage k (or to the merges when k == n_stages). */
static void feed(enc_ctx *c, int k, const uint8_t *s, size_t n) {
    const rlaif_bpe *b = c->b;
    uint8_t *tmp = NULL;
    if (b->prefix_space && k == b->prefix_stage && (n == 0 || s[0] != ' ')) {
        tmp = malloc(n + 1);
        if (!tmp) {
            c->st = rlaif_fail(RLAIF_ENOMEM, "tokenizer: out of memory");
            return;
        }
        tmp[0] = ' ';
        memcpy(tmp + 1, s, n);
        s = tmp;
        n++;
    }
    if (k >= b->n_stages) {
        if (n) encode_word(c, s, n);
    } else {
        c->depth = k;
        rlaif_status st = bpe_pretok_split(&b->stages[k], s, n, on_piece, c);
        if (st && !c->st) c->st = st;
    }
    free(tmp);
}

/* NFC of s[0..n), whose first unstable character is at p, into a NEW buffer:
 * only the runs of unstable characters, each with the stable character in front
 * of it (it may be the first of a composition), go through utf8proc; the text
 * between them is copied. Mostly-NFC text thus costs a copy, not a full
 * normalisation. Returns NULL and sets c->st on failure. */
static uint8_t *nfc_runs(enc_ctx *c, const uint8_t *s, size_t n, size_t p, size_t *out_len) {
    size_t cap = n + n / 4 + 64, m = 0, done = 0;
    uint8_t *d = malloc(cap);
    if (!d) goto nomem;
    while (p < n) {
        size_t a = p, e = bpe_nfc_run_end(s, n, p);
        if (a > done) /* back to the start of the (stable) character before p */
            for (a--; a > done && (s[a] & 0xC0) == 0x80; a--) {}
        utf8proc_uint8_t *run = NULL;
        utf8proc_ssize_t r = utf8proc_map(s + a, (utf8proc_ssize_t)(e - a), &run,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r < 0) {
            free(d);
            c->st = rlaif_fail(RLAIF_EINVAL, "tokenizer: NFC failed: %s", utf8proc_errmsg(r));
            return NULL;
        }
        size_t need = m + (a - done) + (size_t)r + (n - e);
        if (need > cap) {
            cap = need + need / 4;
            uint8_t *q = realloc(d, cap);
            if (!q) {
                free(run);
                goto nomem;
            }
            d = q;
        }
        memcpy(d + m, s + done, a - done);
        m += a - done;
        memcpy(d + m, run, (size_t)r);
        m += (size_t)r;
        free(run);
        done = e;
        p = bpe_nfc_next(s, n, e);
    }
    memcpy(d + m, s + done, n - done);
    *out_len = m + (n - done);
    return d;
nomem:
    free(d);
    c->st = rlaif_fail(RLAIF_ENOMEM, "tokenizer: out of memory");
    return NULL;
}

/* A segment of plain text between added tokens: normalize, then pre-tokenize. */
static void encode_segment(enc_ctx *c, const uint8_t *s, size_t n) {
    if (n == 0 || c->st) return;
    size_t p;
    if (c->b->nfc && (p = bpe_nfc_next(s, n, 0)) < n) {
        size_t m;
        uint8_t *d = nfc_runs(c, s, n, p, &m);
        if (!d) return;
        feed(c, 0, d, m);
        free(d);
        return;
    }
    feed(c, 0, s, n);
}

static int special_allowed(const rlaif_bpe_encode_opts *o, int32_t id) {
    if (!o) return 0;
    if (o->flags & RLAIF_BPE_ALLOW_ALL_SPECIAL) return 1;
    for (size_t i = 0; i < o->n_allowed; i++)
        if (o->allowed[i] == id) return 1;
    return 0;
}

static void encode_text(enc_ctx *c, const uint8_t *s, size_t n, const rlaif_bpe_encode_opts *o) {
    const rlaif_bpe *b = c->b;
    int any_special = o && ((o->flags & RLAIF_BPE_ALLOW_ALL_SPECIAL) || o->n_allowed);
    if (b->n_added == 0 || (!any_special && !b->has_plain_added)) {
        encode_segment(c, s, n);
        return;
    }
    size_t seg = 0, i = 0;
    while (i < n) {
        uint32_t lo = b->added_at[s[i]], hi = b->added_at[s[i] + 1];
        const bpe_added *hit = NULL;
        for (uint32_t k = lo; k < hi; k++) {
            const bpe_added *a = &b->added[k];
            if (a->len <= n - i && memcmp(b->blob + a->off, s + i, a->len) == 0 &&
                (!a->special || special_allowed(o, a->id))) {
                hit = a;
                break;
            }
        }
        if (!hit) {
            i++;
            continue;
        }
        encode_segment(c, s + seg, i - seg);
        push_id(c, hit->id);
        i += hit->len;
        seg = i;
    }
    encode_segment(c, s + seg, n - seg);
}

/* ---- public encode ---- */

static rlaif_status encode_impl(const rlaif_bpe *b, const char *text, size_t len,
                                const rlaif_bpe_encode_opts *o, rlaif_bpe_ids *out,
                                word_cache *cache, enc_ctx *c) {
    if (!b || !out || (!text && len)) return rlaif_fail(RLAIF_EINVAL, "NULL argument");
    if (o && (o->flags & RLAIF_BPE_ADD_SPECIAL) && b->post_error[0])
        return rlaif_fail(RLAIF_EINVAL, "add_special: %s", b->post_error);
    const uint8_t *s = (const uint8_t *)text;
    uint8_t *clean = NULL;
    if (bpe_utf8_valid_prefix(s, len) != len) {
        size_t m;
        rlaif_status st = bpe_utf8_sanitize(s, len, &clean, &m);
        if (st) return st;
        s = clean;
        len = m;
    }
    size_t n0 = out->n;
    c->b = b;
    c->out = out;
    c->cache = cache;
    c->st = RLAIF_OK;
    c->depth = 0;
    if (o && (o->flags & RLAIF_BPE_ADD_SPECIAL))
        for (int i = 0; i < b->n_bos; i++) push_id(c, b->bos[i]);
    encode_text(c, s, len, o);
    if (o && (o->flags & RLAIF_BPE_ADD_SPECIAL))
        for (int i = 0; i < b->n_eos; i++) push_id(c, b->eos[i]);
    free(clean);
    if (c->st) out->n = n0;
    return c->st;
}

rlaif_status rlaif_bpe_encode(const rlaif_bpe *b, const char *text, size_t len,
                              const rlaif_bpe_encode_opts *opts, rlaif_bpe_ids *out) {
    if (!b) return rlaif_fail(RLAIF_EINVAL, "NULL tokenizer");
    rlaif_bpe *mb = (rlaif_bpe *)b; /* the cache pool is the only mutable part, atomic */
    word_cache *cache = b->whole_first ? NULL : cache_take(mb);
    enc_ctx c = {0};
    rlaif_status st = encode_impl(b, text, len, opts, out, cache, &c);
    free(c.scratch);
    cache_give(mb, cache);
    return st;
}

rlaif_status rlaif_bpe_count(const rlaif_bpe *b, const char *text, size_t len,
                             const rlaif_bpe_encode_opts *opts, size_t *count) {
    rlaif_bpe_ids v = {0};
    rlaif_status st = rlaif_bpe_encode(b, text, len, opts, &v);
    *count = st ? 0 : v.n;
    rlaif_bpe_ids_free(&v);
    return st;
}

/* Batch workers share an atomic cursor over the texts. Plain pthreads rather than
 * OpenMP: libgomp's idle pool threads outlive the call and crash when a host
 * interpreter dlclose()s the module at exit. */
typedef struct batch_job {
    const rlaif_bpe *b;
    const char *const *texts;
    const size_t *lens;
    const rlaif_bpe_encode_opts *opts;
    rlaif_bpe_ids *outs;
    size_t n, next;
    int failed;
    rlaif_status first;
    char msg[256];
    pthread_mutex_t mu;
} batch_job;

static void *batch_worker(void *arg) {
    batch_job *j = arg;
    rlaif_bpe *mb = (rlaif_bpe *)j->b;
    word_cache *cache = j->b->whole_first ? NULL : cache_take(mb);
    enc_ctx c = {0};
    for (;;) {
        size_t i0 = __atomic_fetch_add(&j->next, 16, __ATOMIC_RELAXED);
        if (i0 >= j->n) break;
        for (size_t i = i0; i < i0 + 16 && i < j->n; i++) {
            if (__atomic_load_n(&j->failed, __ATOMIC_RELAXED) || rlaif_cancelled()) break;
            rlaif_status st = encode_impl(j->b, j->texts[i], j->lens[i], j->opts, &j->outs[i], cache, &c);
            if (st) {
                pthread_mutex_lock(&j->mu);
                if (!j->failed) {
                    j->first = st;
                    snprintf(j->msg, sizeof j->msg, "%s", rlaif_last_error());
                    __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
                }
                pthread_mutex_unlock(&j->mu);
            }
        }
    }
    free(c.scratch);
    cache_give(mb, cache);
    return NULL;
}

rlaif_status rlaif_bpe_encode_batch(const rlaif_bpe *b, size_t n, const char *const *texts,
                                    const size_t *lens, const rlaif_bpe_encode_opts *opts,
                                    rlaif_bpe_ids *outs, int threads) {
    if (!b || (n && (!texts || !lens || !outs)))
        return rlaif_fail(RLAIF_EINVAL, "NULL argument");
    if (threads <= 0) threads = rlaif_get_threads();
    size_t chunks = (n + 15) / 16;
    if ((size_t)threads > chunks) threads = chunks ? (int)chunks : 1;
    if (threads > 256) threads = 256;
    batch_job j = {.b = b, .texts = texts, .lens = lens, .opts = opts, .outs = outs, .n = n};
    pthread_mutex_init(&j.mu, NULL);
    pthread_t tid[256];
    int started = 0;
    for (int t = 1; t < threads; t++) /* the calling thread is worker 0 */
        if (pthread_create(&tid[started], NULL, batch_worker, &j) == 0) started++;
    batch_worker(&j);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&j.mu);
    if (!j.failed && rlaif_cancelled()) {
        j.first = RLAIF_EINTR;
        snprintf(j.msg, sizeof j.msg, "interrupted");
    }
    if (j.first) {
        for (size_t i = 0; i < n; i++) rlaif_bpe_ids_free(&outs[i]);
        return rlaif_fail(j.first, "%s", j.msg);
    }
    return RLAIF_OK;
}

/* ---- decoding and lookups ---- */

/* One pass: validate each id and copy its bytes while they fit. Short tokens
 * (nearly all) are copied as one 16-byte block, which the blob's zero padding
 * makes safe to read; the bytes past the token are overwritten by the next one
 * or lie beyond *len. Once dst is full, the rest is only measured. */
rlaif_status rlaif_bpe_decode_into(const rlaif_bpe *b, const int32_t *ids, size_t n, char *dst,
                                   size_t cap, size_t *len) {
    const bpe_tok *tok = b->tok;
    const uint8_t *blob = b->blob;
    uint32_t n_ids = (uint32_t)b->n_ids;
    size_t pos = 0, i = 0;
    if (dst) {
        for (; i < n; i++) {
            uint32_t id = (uint32_t)ids[i]; /* negative ids become huge */
            if (id >= n_ids) break;
            const bpe_tok *t = &tok[id];
            uint32_t l = t->len;
            if (t->off == UINT32_MAX) break;
            if (l <= 16 && pos + 16 <= cap) memcpy(dst + pos, blob + t->off, 16);
            else if (l <= cap - pos) memcpy(dst + pos, blob + t->off, l);
            else break;
            pos += l;
        }
    }
    for (; i < n; i++) {
        uint32_t id = (uint32_t)ids[i];
        if (id >= n_ids || tok[id].off == UINT32_MAX)
            return rlaif_fail(RLAIF_EINVAL, "unknown token id %d at position %zu", (int)ids[i], i + 1);
        pos += tok[id].len;
    }
    *len = pos;
    return RLAIF_OK;
}

rlaif_status rlaif_bpe_decode(const rlaif_bpe *b, const int32_t *ids, size_t n, char **out,
                              size_t *out_len) {
    *out = NULL;
    size_t total;
    rlaif_status st = rlaif_bpe_decode_into(b, ids, n, NULL, 0, &total);
    if (st) return st;
    char *p = malloc(total + 1);
    if (!p) return rlaif_fail(RLAIF_ENOMEM, "out of memory");
    rlaif_bpe_decode_into(b, ids, n, p, total + 1, &total);
    p[total] = 0;
    *out = p;
    if (out_len) *out_len = total;
    return RLAIF_OK;
}

int32_t rlaif_bpe_id(const rlaif_bpe *b, const char *tok, size_t len) {
    const uint8_t *s = (const uint8_t *)tok;
    if (len) {
        for (uint32_t k = b->added_at[s[0]]; k < b->added_at[s[0] + 1]; k++) {
            const bpe_added *a = &b->added[k];
            if (a->len == len && memcmp(b->blob + a->off, s, len) == 0) return a->id;
        }
    }
    return bpe_vocab_find(b, s, len);
}

const char *rlaif_bpe_token(const rlaif_bpe *b, int32_t id, size_t *len) {
    if (id < 0 || id >= b->n_ids || b->tok[id].off == UINT32_MAX) return NULL;
    if (len) *len = b->tok[id].len;
    return (const char *)b->blob + b->tok[id].off;
}

int32_t rlaif_bpe_vocab_size(const rlaif_bpe *b) { return b->n_ids; }

int rlaif_bpe_is_special(const rlaif_bpe *b, int32_t id) {
    return id >= 0 && id < b->n_ids && b->tok_special[id];
}

size_t rlaif_bpe_n_special(const rlaif_bpe *b) {
    size_t k = 0;
    for (size_t i = 0; i < b->n_added; i++) k += b->added[i].special != 0;
    return k;
}

int32_t rlaif_bpe_special_id(const rlaif_bpe *b, size_t i) {
    for (size_t k = 0; k < b->n_added; k++)
        if (b->added[k].special && i-- == 0) return b->added[k].id;
    return -1;
}

const char *rlaif_bpe_kind(const rlaif_bpe *b) { return b->kind; }
