/* src/core/bpe_pretok.c -- pre-tokenizers: hand-written scanners that reproduce the
 * GPT-2, cl100k/Llama 3, Qwen and o200k regexes exactly (leftmost-first, greedy,
 * with the backtracking those patterns imply), and PCRE2 (UTF + UCP) for any other
 * Split regex of a tokenizer.json.
 *
 * Unicode data comes from utf8proc: general categories give \p{L}, \p{N}, \p{M}
 * and the o200k letter subsets; \s is Unicode White_Space, which is exactly the
 * Z* categories plus U+0009..U+000D and U+0085. Input is valid UTF-8 (the engine
 * sanitizes first). Not here: byte-level mapping and merging (bpe.c).
 *
 * Ownership: compiled PCRE2 codes belong to the tokenizer's stages and are freed
 * with bpe_pretok_code_free. The class table is process-wide and immutable after
 * its one-time initialisation. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <string.h>
#include <utf8proc.h>

#include "bpe_impl.h"

/* ---- character classes ---- */

static uint8_t bmp_class[0x10000];
static pthread_once_t classes_once = PTHREAD_ONCE_INIT;

static uint8_t class_compute(uint32_t cp) {
    uint8_t k = 0;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LT: k = CC_L | CC_A; break;
    case UTF8PROC_CATEGORY_LL: k = CC_L | CC_B; break;
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: k = CC_L | CC_A | CC_B; break;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        k = CC_A | CC_B; break;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: k = CC_N; break;
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP: k = CC_WS; break;
    default: break;
    }
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) k |= CC_WS;
    if (cp == '\r' || cp == '\n') k |= CC_NL;
    if (cp >= 0x300) { /* below U+0300 nothing decomposes or composes as a second */
        const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
        if (p->combining_class || (p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0) ||
            p->comb_index != UINT16_MAX ||
            (cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0xAC00 && cp <= 0xD7A3))
            k |= CC_NFC;
    }
    return k;
}

static void classes_build(void) {
    for (uint32_t cp = 0; cp < 0x10000; cp++) bmp_class[cp] = class_compute(cp);
}

void bpe_classes_init(void) { pthread_once(&classes_once, classes_build); }

uint8_t bpe_class(uint32_t cp) { return cp < 0x10000 ? bmp_class[cp] : class_compute(cp); }

/* Class of the (valid UTF-8) character at s[i]; *l = its byte length. */
static inline uint8_t cls_at(const uint8_t *s, size_t i, int *l) {
    uint8_t c = s[i];
    if (c < 0x80) { *l = 1; return bmp_class[c]; }
    if (c < 0xE0) { *l = 2; return bmp_class[((c & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu)]; }
    if (c < 0xF0) {
        *l = 3;
        return bmp_class[((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu)];
    }
    *l = 4;
    return class_compute(((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) |
                         ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3Fu));
}

int bpe_nfc_stable(const uint8_t *s, size_t n) {
    int l;
    for (size_t i = 0; i < n; i += l) {
        if (s[i] < 0xCC) { /* below U+0300 (or a continuation byte: skip it) */
            l = 1;
            continue;
        }
        if (cls_at(s, i, &l) & CC_NFC) return 0;
    }
    return 1;
}

size_t bpe_nfc_next(const uint8_t *s, size_t n, size_t i) {
    int l;
    for (; i < n; i += l) {
        if (s[i] < 0xCC) { /* below U+0300 (or a continuation byte: skip it) */
            l = 1;
            continue;
        }
        if (cls_at(s, i, &l) & CC_NFC) return i;
    }
    return n;
}

size_t bpe_nfc_run_end(const uint8_t *s, size_t n, size_t i) {
    int l;
    while (i < n && s[i] >= 0xCC && (cls_at(s, i, &l) & CC_NFC)) i += l;
    return i;
}

/* End of the run of characters whose class has any bit of `want` (want_any) or
 * none of the bits of `avoid`, starting at i. */
static inline size_t run_any(const uint8_t *s, size_t n, size_t i, uint8_t want) {
    int l;
    while (i < n && (cls_at(s, i, &l) & want)) i += l;
    return i;
}
static inline size_t run_none(const uint8_t *s, size_t n, size_t i, uint8_t avoid) {
    int l;
    while (i < n && !(cls_at(s, i, &l) & avoid)) i += l;
    return i;
}

/* ---- shared pieces of the patterns ---- */

/* `'s|'t|'re|'ve|'m|'ll|'d` at i (s[i] == '\''): byte length, or 0. With ci,
 * case-insensitive by Unicode simple folding (so 'ſ' (U+017F) matches 's'). */
static inline size_t contraction(const uint8_t *s, size_t n, size_t i, int ci) {
    if (i + 1 >= n || s[i] != '\'') return 0;
    uint8_t d = s[i + 1], e = i + 2 < n ? s[i + 2] : 0;
    if (ci) {
        if (d == 0xC5 && e == 0xBF) return 3; /* 'ſ */
        d |= (d >= 'A' && d <= 'Z') ? 0x20 : 0;
        e |= (e >= 'A' && e <= 'Z') ? 0x20 : 0;
    }
    if (d == 's' || d == 't' || d == 'm' || d == 'd') return 2;
    if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) return 3;
    return 0;
}

/* Whitespace at i. With nl, `\s*[\r\n]+` first; then `\s+(?!\S)` and `\s+`. */
static inline size_t ws_piece(const uint8_t *s, size_t n, size_t i, int nl) {
    size_t j = i, last = i, last_nl = SIZE_MAX, chars = 0;
    int l;
    while (j < n) {
        uint8_t k = cls_at(s, j, &l);
        if (!(k & CC_WS)) break;
        if (k & CC_NL) last_nl = j;
        last = j;
        chars++;
        j += l;
    }
    if (chars == 0) return i + 1 + (s[i] >= 0xC0) + (s[i] >= 0xE0) + (s[i] >= 0xF0); /* never */
    if (nl && last_nl != SIZE_MAX) return last_nl + 1;
    if (j == n || chars < 2) return j;
    return last; /* leave the last whitespace character for the next piece */
}

/* ---- GPT-2 ---- */
/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t gpt2_next(const uint8_t *s, size_t n, size_t i) {
    size_t c = contraction(s, n, i, 0);
    if (c) return i + c;
    size_t j = i + (s[i] == ' ');
    if (j < n) {
        int l;
        uint8_t k = cls_at(s, j, &l);
        if (k & CC_L) return run_any(s, n, j + l, CC_L);
        if (k & CC_N) return run_any(s, n, j + l, CC_N);
        if (!(k & CC_WS)) return run_none(s, n, j + l, CC_L | CC_N | CC_WS);
    }
    return ws_piece(s, n, i, 0);
}

/* ---- cl100k / Llama 3 / Qwen ---- */
/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+        (D = 3, or 1 for Qwen) */
static size_t cl100k_next(const uint8_t *s, size_t n, size_t i, int digits) {
    size_t c = contraction(s, n, i, 1);
    if (c) return i + c;
    int l, l2;
    uint8_t k = cls_at(s, i, &l);
    if (k & CC_L) return run_any(s, n, i + l, CC_L);
    if (!(k & (CC_NL | CC_L | CC_N)) && i + l < n && (cls_at(s, i + l, &l2) & CC_L))
        return run_any(s, n, i + l + l2, CC_L);
    if (k & CC_N) {
        size_t j = i + l;
        for (int d = 1; d < digits && j < n && (cls_at(s, j, &l2) & CC_N); d++) j += l2;
        return j;
    }
    size_t j = i + (s[i] == ' ');
    if (j < n && !(cls_at(s, j, &l2) & (CC_L | CC_N | CC_WS))) {
        j = run_none(s, n, j + l2, CC_L | CC_N | CC_WS);
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    return ws_piece(s, n, i, 1);
}

/* ---- o200k ---- */
/* [^\r\n\p{L}\p{N}]?A*B+C?|[^\r\n\p{L}\p{N}]?A+B*C?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+   with A = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}],
 * B = [\p{Ll}\p{Lm}\p{Lo}\p{M}], C = (?i:'s|'t|'re|'ve|'m|'ll|'d). */

/* A*B+C? from j: end, or 0 when it cannot match. A* backtracks into B+ when
 * the run of A ends in characters that are also in B. */
static size_t o200k_alt1(const uint8_t *s, size_t n, size_t j) {
    size_t a = j, last_b_end = 0;
    int l;
    while (a < n) {
        uint8_t k = cls_at(s, a, &l);
        if (!(k & CC_A)) break;
        a += l;
        if (k & CC_B) last_b_end = a;
    }
    size_t e;
    if (a < n && (cls_at(s, a, &l) & CC_B)) e = run_any(s, n, a + l, CC_B);
    else if (last_b_end) e = last_b_end;
    else return 0;
    return e + contraction(s, n, e, 1);
}

/* A+B*C? from j: end, or 0. */
static size_t o200k_alt2(const uint8_t *s, size_t n, size_t j) {
    int l;
    if (j >= n || !(cls_at(s, j, &l) & CC_A)) return 0;
    size_t e = run_any(s, n, j + l, CC_A);
    e = run_any(s, n, e, CC_B);
    return e + contraction(s, n, e, 1);
}

static size_t o200k_next(const uint8_t *s, size_t n, size_t i) {
    int l, l2;
    uint8_t k = cls_at(s, i, &l);
    int prefix = !(k & (CC_NL | CC_L | CC_N)) && i + l < n;
    size_t e;
    if (prefix && (e = o200k_alt1(s, n, i + l))) return e;
    if ((e = o200k_alt1(s, n, i))) return e;
    if (prefix && (e = o200k_alt2(s, n, i + l))) return e;
    if ((e = o200k_alt2(s, n, i))) return e;
    if (k & CC_N) {
        size_t j = i + l;
        for (int d = 1; d < 3 && j < n && (cls_at(s, j, &l2) & CC_N); d++) j += l2;
        return j;
    }
    size_t j = i + (s[i] == ' ');
    if (j < n && !(cls_at(s, j, &l2) & (CC_L | CC_N | CC_WS))) {
        j = run_none(s, n, j + l2, CC_L | CC_N | CC_WS);
        while (j < n && (s[j] == '\r' || s[j] == '\n' || s[j] == '/')) j++;
        return j;
    }
    return ws_piece(s, n, i, 1);
}

/* ---- known patterns ---- */

static const struct { const char *re; bpe_pretok_kind kind; } known[] = {
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
     PRETOK_GPT2},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
     "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     PRETOK_CL100K},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
     "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     PRETOK_QWEN},
    {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
     "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
     "[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     PRETOK_O200K},
};

const char *bpe_pretok_regex(bpe_pretok_kind kind) {
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].kind == kind) return known[i].re;
    return NULL;
}

bpe_pretok_kind bpe_pretok_known(const char *pattern) {
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(pattern, known[i].re) == 0) return known[i].kind;
    return PRETOK_PCRE;
}

/* ---- PCRE2 fallback ---- */

rlaif_status bpe_pretok_compile(const char *pattern, void **code) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return rlaif_fail(RLAIF_EFORMAT, "pre_tokenizer regex at offset %zu: %s", (size_t)off,
                          (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort: the interpreter also works */
    *code = re;
    return RLAIF_OK;
}

void bpe_pretok_code_free(void *code) { pcre2_code_free((pcre2_code *)code); }

/* Split with behavior "Isolated": every match and every gap between matches is
 * a piece; empty matches are skipped. */
static rlaif_status pcre_split(void *code, const uint8_t *s, size_t n, bpe_piece_fn fn,
                               void *ctx) {
    pcre2_code *re = code;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return rlaif_fail(RLAIF_ENOMEM, "pre_tokenizer: out of memory");
    rlaif_status st = RLAIF_OK;
    size_t pos = 0, gap = 0;
    while (pos <= n) {
        int rc = pcre2_match(re, s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            st = rlaif_fail(RLAIF_EINVAL, "pre_tokenizer regex: match error %d", rc);
            goto done;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (b == a) { /* empty match: step one character */
            if (a >= n) break;
            pos = a + 1;
            while (pos < n && (s[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        if (a > gap) fn(ctx, s + gap, a - gap);
        fn(ctx, s + a, b - a);
        gap = pos = b;
    }
    if (gap < n) fn(ctx, s + gap, n - gap);
done:
    pcre2_match_data_free(md);
    return st;
}

/* ---- dispatch ---- */

rlaif_status bpe_pretok_split(const bpe_stage *st, const uint8_t *s, size_t n, bpe_piece_fn fn,
                              void *ctx) {
    size_t i = 0, e;
    switch (st->kind) {
    case PRETOK_NONE:
        if (n) fn(ctx, s, n);
        return RLAIF_OK;
    case PRETOK_PCRE:
        return pcre_split(st->code, s, n, fn, ctx);
    case PRETOK_GPT2:
        for (; i < n; i = e) { e = gpt2_next(s, n, i); fn(ctx, s + i, e - i); }
        return RLAIF_OK;
    case PRETOK_CL100K:
        for (; i < n; i = e) { e = cl100k_next(s, n, i, 3); fn(ctx, s + i, e - i); }
        return RLAIF_OK;
    case PRETOK_QWEN:
        for (; i < n; i = e) { e = cl100k_next(s, n, i, 1); fn(ctx, s + i, e - i); }
        return RLAIF_OK;
    case PRETOK_O200K:
        for (; i < n; i = e) { e = o200k_next(s, n, i); fn(ctx, s + i, e - i); }
        return RLAIF_OK;
    }
    return rlaif_fail(RLAIF_EINVAL, "pre_tokenizer: unknown kind %d", (int)st->kind);
}
