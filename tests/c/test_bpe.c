/* tests/c/test_bpe.c -- the BPE tokenizer against committed goldens.
 *
 * tests/fixtures/tokenizer/corpus.jsonl holds synthetic documents (many scripts,
 * emoji, marks, digits, odd whitespace, contractions, 10k-character runs);
 * <name>.golden holds the reference ids (tiktoken encode_ordinary,
 * @huggingface/tokenizers add_special_tokens=false) written by
 * scripts/gen_tokenizer_goldens.mjs, and hh_<name>.hash a count + FNV-1a hash per
 * HH-RLHF document. The real tokenizer files live in ../shared/data/tokenizers;
 * without them only the self-contained tests run (malformed files, a tiny
 * in-memory tokenizer.json, invalid UTF-8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>
#include <zlib.h>

#include "bpe.h"
#include "bpe_impl.h"
#include "check.h"

#define FIX "tests/fixtures/tokenizer/"
#define TOK "../shared/data/tokenizers/"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);
    for (;;) {
        if (n + 1 >= cap) p = realloc(p, cap *= 2);
        size_t r = fread(p + n, 1, cap - n - 1, f);
        if (!r) break;
        n += r;
    }
    fclose(f);
    p[n] = 0;
    *len = n;
    return p;
}

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* ---- corpus ---- */

typedef struct doc { char *s; size_t n; } doc;

static doc *load_jsonl_strings(const char *text, size_t len, size_t *count) {
    size_t cap = 256, n = 0;
    doc *d = malloc(cap * sizeof *d);
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le > p) {
            bpe_json j;
            if (bpe_json_parse(&j, p, (size_t)(le - p), "corpus") == RLAIF_OK) {
                if (n == cap) d = realloc(d, (cap *= 2) * sizeof *d);
                d[n].n = j.n[1].len;
                d[n].s = malloc(d[n].n + 1);
                memcpy(d[n].s, j.n[1].str, d[n].n + 1);
                n++;
                bpe_json_free(&j);
            }
        }
        p = nl ? nl + 1 : end;
    }
    *count = n;
    return d;
}

static void free_docs(doc *d, size_t n) {
    for (size_t i = 0; i < n; i++) free(d[i].s);
    free(d);
}

/* ---- goldens ---- */

static uint32_t fnv(const int32_t *ids, size_t n) {
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint32_t)ids[i]) * 16777619u;
    return h;
}

static int nfc_equal(const char *a, size_t an, const char *b, size_t bn) {
    utf8proc_uint8_t *d = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)a, (utf8proc_ssize_t)an, &d,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    int eq = an == 0 ? bn == 0 : (m >= 0 && (size_t)m == bn && memcmp(d, b, bn) == 0);
    free(d);
    return eq;
}

static void check_golden(const rlaif_bpe *b, const char *name, const doc *docs, size_t ndocs,
                         int allow_special, int nfc) {
    char path[256];
    snprintf(path, sizeof path, FIX "%s.golden", name);
    size_t len;
    char *g = slurp(path, &len);
    CHECK(g != NULL);
    if (!g) return;
    rlaif_bpe_encode_opts o = {allow_special ? RLAIF_BPE_ALLOW_ALL_SPECIAL : 0, NULL, 0};
    char *p = strchr(g, '\n') + 1; /* skip the header */
    size_t matched = 0, compared = 0, mismatched = 0, roundtrip_bad = 0, i = 0;
    for (; i < ndocs && *p; i++) {
        char *nl = strchr(p, '\n');
        *nl = 0;
        if (strcmp(p, "-") != 0) {
            compared++;
            char *q = p;
            long cnt = strtol(q, &q, 10);
            int32_t *want = malloc(((size_t)cnt + 1) * sizeof *want);
            for (long k = 0; k < cnt; k++) want[k] = (int32_t)strtol(q, &q, 10);
            rlaif_bpe_ids got = {0};
            CHECK_OK(rlaif_bpe_encode(b, docs[i].s, docs[i].n, &o, &got));
            int same = got.n == (size_t)cnt && (!cnt || memcmp(got.ids, want, (size_t)cnt * 4) == 0);
            if (same) matched++;
            else if (mismatched++ < 3) {
                size_t k = 0;
                while (k < got.n && k < (size_t)cnt && got.ids[k] == want[k]) k++;
                fprintf(stderr, "%s doc %zu: %zu ids, want %ld; first difference at %zu: got %d want %d\n",
                        name, i + 1, got.n, cnt, k, k < got.n ? got.ids[k] : -1,
                        k < (size_t)cnt ? want[k] : -1);
            }
            char *back = NULL;
            size_t blen = 0;
            CHECK_OK(rlaif_bpe_decode(b, got.ids, got.n, &back, &blen));
            int rt = nfc ? nfc_equal(docs[i].s, docs[i].n, back, blen)
                         : (blen == docs[i].n && memcmp(back, docs[i].s, blen) == 0);
            if (!rt && roundtrip_bad++ < 3) fprintf(stderr, "%s doc %zu: decode(encode(x)) != x\n", name, i + 1);
            free(back);
            rlaif_bpe_ids_free(&got);
            free(want);
        }
        p = nl + 1;
    }
    /* one golden line per corpus document: a short or long file fails */
    if (i != ndocs || *p) fprintf(stderr, "%s.golden: %zu lines for %zu documents%s\n", name, i, ndocs,
                                  *p ? " (and more lines)" : "");
    CHECK(i == ndocs && *p == '\0');
    printf("  %-12s golden: %zu/%zu documents match, %zu round-trip failures\n", name, matched, compared,
           roundtrip_bad);
    CHECK(compared > 0 && matched == compared);
    CHECK(roundtrip_bad == 0);
    free(g);
}

static doc *load_hh(size_t *n) {
    gzFile f = gzopen("../shared/data/hh-rlhf/harmless-base-test.jsonl.gz", "rb");
    *n = 0;
    if (!f) return NULL;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    int r;
    while ((r = gzread(f, buf + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)r;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    gzclose(f);
    size_t cnt = 0, dcap = 8192;
    doc *d = malloc(dcap * sizeof *d);
    char *p = buf, *end = buf + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        bpe_json j;
        if (le > p && bpe_json_parse(&j, p, (size_t)(le - p), "hh") == RLAIF_OK) {
            const char *keys[2] = {"chosen", "rejected"};
            for (int k = 0; k < 2; k++) {
                uint32_t v = bpe_json_get(&j, 1, keys[k]);
                if (cnt == dcap) d = realloc(d, (dcap *= 2) * sizeof *d);
                d[cnt].n = j.n[v].len;
                d[cnt].s = malloc(d[cnt].n + 1);
                memcpy(d[cnt].s, j.n[v].str, d[cnt].n + 1);
                cnt++;
            }
            bpe_json_free(&j);
        }
        p = nl ? nl + 1 : end;
    }
    free(buf);
    *n = cnt;
    return d;
}

static void check_hh(const rlaif_bpe *b, const char *name, const doc *docs, size_t ndocs,
                     int allow_special) {
    char path[256];
    snprintf(path, sizeof path, FIX "hh_%s.hash", name);
    size_t len;
    char *g = slurp(path, &len);
    CHECK(g != NULL);
    if (!g) return;
    rlaif_bpe_encode_opts o = {allow_special ? RLAIF_BPE_ALLOW_ALL_SPECIAL : 0, NULL, 0};
    const char **texts = malloc(ndocs * sizeof *texts);
    size_t *lens = malloc(ndocs * sizeof *lens), bytes = 0;
    for (size_t i = 0; i < ndocs; i++) texts[i] = docs[i].s, lens[i] = docs[i].n, bytes += docs[i].n;
    rlaif_bpe_ids *outs = calloc(ndocs, sizeof *outs);
    double t0 = rlaif_clock();
    CHECK_OK(rlaif_bpe_encode_batch(b, ndocs, texts, lens, &o, outs, 0));
    double dt = rlaif_clock() - t0;
    char *p = strchr(g, '\n') + 1;
    size_t matched = 0, bad = 0, i = 0;
    for (; i < ndocs && *p; i++) {
        unsigned long cnt = strtoul(p, &p, 10), h = strtoul(p, &p, 16);
        if (outs[i].n == cnt && fnv(outs[i].ids, outs[i].n) == h) matched++;
        else if (bad++ < 3) fprintf(stderr, "%s: HH-RLHF document %zu differs (%zu ids, want %lu)\n", name, i + 1,
                                    outs[i].n, cnt);
        p = strchr(p, '\n') + 1;
    }
    if (i != ndocs || *p) fprintf(stderr, "hh_%s.hash: %zu lines for %zu documents\n", name, i, ndocs);
    CHECK(i == ndocs && *p == '\0');
    printf("  %-12s HH-RLHF: %zu/%zu documents match (%.1f MB, batch %.0f ms)\n", name, matched, ndocs,
           bytes / 1e6, dt * 1e3);
    CHECK(matched == ndocs);
    for (size_t k = 0; k < ndocs; k++) rlaif_bpe_ids_free(&outs[k]);
    free(outs);
    free(texts);
    free(lens);
    free(g);
}

/* ---- reference tokenizers (need ../shared) ---- */

static void test_references(void) {
    if (!exists(TOK "tiktoken/cl100k_base.tiktoken")) {
        printf("  ../shared/data/tokenizers absent: reference tests skipped\n");
        return;
    }
    size_t clen, ndocs, nhh;
    char *ctext = slurp(FIX "corpus.jsonl", &clen);
    CHECK(ctext != NULL);
    if (!ctext) return;
    doc *docs = load_jsonl_strings(ctext, clen, &ndocs);
    free(ctext);
    doc *hh = load_hh(&nhh);
    struct {
        const char *path, *golden;
        int allow_special, nfc;
    } cases[] = {
        {TOK "tiktoken/r50k_base.tiktoken", "r50k_base", 0, 0},
        {TOK "tiktoken/cl100k_base.tiktoken", "cl100k_base", 0, 0},
        {TOK "tiktoken/o200k_base.tiktoken", "o200k_base", 0, 0},
        {TOK "gpt2/tokenizer.json", "gpt2_hf", 1, 0},
        {TOK "gpt2/vocab.bpe", "r50k_base", 0, 0},
        {TOK "llama3/tokenizer.json", "llama3", 1, 0},
        {TOK "qwen3/tokenizer.json", "qwen3", 1, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rlaif_bpe *b = NULL;
        double t0 = rlaif_clock();
        CHECK_OK(rlaif_bpe_load(&b, cases[c].path, NULL));
        if (!b) continue;
        printf("  %s: %s, %d ids, loaded in %.0f ms\n", cases[c].path, rlaif_bpe_kind(b),
               rlaif_bpe_vocab_size(b), (rlaif_clock() - t0) * 1e3);
        check_golden(b, cases[c].golden, docs, ndocs, cases[c].allow_special, cases[c].nfc);
        if (hh) check_hh(b, cases[c].golden, hh, nhh, cases[c].allow_special);
        rlaif_bpe_free(b);
    }
    /* the GPT-2 formats agree on ids for the same pieces */
    rlaif_bpe *a = NULL, *t = NULL;
    CHECK_OK(rlaif_bpe_load(&a, TOK "gpt2/encoder.json", NULL));
    CHECK_OK(rlaif_bpe_load_tiktoken(&t, TOK "tiktoken/r50k_base.tiktoken", "gpt2"));
    if (a && t) {
        CHECK(rlaif_bpe_vocab_size(a) == 50257 && rlaif_bpe_vocab_size(t) == 50257);
        CHECK(rlaif_bpe_id(a, " hello", 6) == rlaif_bpe_id(t, " hello", 6));
        CHECK(rlaif_bpe_id(t, "<|endoftext|>", 13) == 50256);
        CHECK(rlaif_bpe_is_special(t, 50256));
    }
    rlaif_bpe_free(a);
    rlaif_bpe_free(t);
    free_docs(docs, ndocs);
    if (hh) free_docs(hh, nhh);
}

/* ---- self-contained ---- */

/* A tiny byte-level tokenizer.json: 256 byte tokens (ids 0..255 in the GPT-2
 * alphabet), merges "h e" -> 256, "l l" -> 257, "he ll" -> 258, and one special. */
static char *tiny_json(const char *model_extra, const char *pre) {
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":259,\"content\":"
                          "\"<|end|>\",\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":%s,"
                          "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":"
                          "{\"id\":\"<|end|>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
                          "\"special_tokens\":{\"<|end|>\":{\"id\":\"<|end|>\",\"ids\":[259],\"tokens\":[\"<|end|>\"]}}},"
                          "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\"%s,\"vocab\":{",
                          pre, model_extra);
    for (int b = 0; b < 256; b++) {
        uint32_t cp = bpe_byte_to_cp(b);
        char u[8];
        int l = 0;
        if (cp == '"' || cp == '\\') u[l++] = '\\', u[l++] = (char)cp;
        else if (cp < 0x80) u[l++] = (char)cp;
        else u[l++] = (char)(0xC0 | cp >> 6), u[l++] = (char)(0x80 | (cp & 0x3F));
        n += (size_t)snprintf(s + n, cap - n, "\"%.*s\":%d,", l, u, b);
    }
    n += (size_t)snprintf(s + n, cap - n, "\"he\":256,\"ll\":257,\"hell\":258},\"merges\":[\"h e\",[\"l\",\"l\"],\"he ll\"]}}");
    return s;
}

static void test_tiny(void) {
    const char *pre = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}";
    char *js = tiny_json("", pre);
    rlaif_bpe *b = NULL;
    CHECK_OK(rlaif_bpe_load_hf_buffer(&b, js, strlen(js), "tiny.json"));
    free(js);
    if (!b) return;
    rlaif_bpe_ids v = {0};
    CHECK_OK(rlaif_bpe_encode(b, "hello", 5, NULL, &v));
    CHECK(v.n == 2 && v.ids[0] == 258 && v.ids[1] == 'o');
    v.n = 0;
    /* specials are text unless allowed; ADD_SPECIAL uses the template */
    CHECK_OK(rlaif_bpe_encode(b, "<|end|>", 7, NULL, &v));
    CHECK(v.n == 7);
    v.n = 0;
    rlaif_bpe_encode_opts o = {RLAIF_BPE_ALLOW_ALL_SPECIAL | RLAIF_BPE_ADD_SPECIAL, NULL, 0};
    CHECK_OK(rlaif_bpe_encode(b, "he<|end|>", 9, &o, &v));
    CHECK(v.n == 3 && v.ids[0] == 259 && v.ids[1] == 256 && v.ids[2] == 259);
    v.n = 0;
    int32_t allowed = 259;
    rlaif_bpe_encode_opts o2 = {0, &allowed, 1};
    CHECK_OK(rlaif_bpe_encode(b, "<|end|>", 7, &o2, &v));
    CHECK(v.n == 1 && v.ids[0] == 259);
    v.n = 0;
    /* invalid UTF-8 becomes U+FFFD per maximal subpart */
    rlaif_bpe_ids w = {0};
    CHECK_OK(rlaif_bpe_encode(b, "a\xff\xe2\x82z\xed\xa0\x80", 8, NULL, &v));
    const char *fixed = "a\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";
    CHECK_OK(rlaif_bpe_encode(b, fixed, strlen(fixed), NULL, &w));
    CHECK(v.n == w.n && memcmp(v.ids, w.ids, v.n * 4) == 0);
    /* decode, lookups */
    char *out = NULL;
    size_t ol;
    int32_t ids[3] = {258, 'o', 259};
    CHECK_OK(rlaif_bpe_decode(b, ids, 3, &out, &ol));
    CHECK(out && ol == 12 && memcmp(out, "hello<|end|>", 12) == 0);
    free(out);
    int32_t bad[1] = {999};
    CHECK_FAIL(rlaif_bpe_decode(b, bad, 1, &out, &ol), RLAIF_EINVAL, "unknown token id 999");
    CHECK(rlaif_bpe_id(b, "hell", 4) == 258 && rlaif_bpe_id(b, "<|end|>", 7) == 259);
    CHECK(rlaif_bpe_id(b, "nope", 4) == -1);
    size_t tl;
    const char *tk = rlaif_bpe_token(b, 256, &tl);
    CHECK(tk && tl == 2 && memcmp(tk, "he", 2) == 0);
    CHECK(rlaif_bpe_token(b, 5000, &tl) == NULL);
    CHECK(rlaif_bpe_vocab_size(b) == 260);
    /* long runs use the heap merge: 10000 'l' -> 5000 "ll" */
    char *run = malloc(10000);
    memset(run, 'l', 10000);
    v.n = 0;
    CHECK_OK(rlaif_bpe_encode(b, run, 10000, NULL, &v));
    CHECK(v.n == 5000 && v.ids[0] == 257 && v.ids[4999] == 257);
    free(run);
    /* batch */
    const char *texts[3] = {"hello", "", "hell hell"};
    size_t lens[3] = {5, 0, 9};
    rlaif_bpe_ids outs[3] = {{0}};
    CHECK_OK(rlaif_bpe_encode_batch(b, 3, texts, lens, NULL, outs, 2));
    CHECK(outs[0].n == 2 && outs[1].n == 0 && outs[2].n == 3);
    for (int i = 0; i < 3; i++) rlaif_bpe_ids_free(&outs[i]);
    rlaif_bpe_ids_free(&v);
    rlaif_bpe_ids_free(&w);
    rlaif_bpe_free(b);

    /* PCRE2 fallback for an unknown Split regex */
    js = tiny_json("", "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
                       "{\"Regex\":\"\\\\d|[a-z]+\"},\"behavior\":\"Isolated\",\"invert\":false},"
                       "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]}");
    CHECK_OK(rlaif_bpe_load_hf_buffer(&b, js, strlen(js), "tiny.json"));
    free(js);
    if (b) {
        rlaif_bpe_ids x = {0};
        CHECK_OK(rlaif_bpe_encode(b, "hell12 he", 9, NULL, &x));
        CHECK(x.n == 5 && x.ids[0] == 258 && x.ids[1] == '1' && x.ids[2] == '2' && x.ids[4] == 256);
        rlaif_bpe_ids_free(&x);
        rlaif_bpe_free(b);
    }
}

/* NFC is applied run by run (only around characters that may change); the
 * result must be exactly utf8proc's NFC of the whole text. Random strings over
 * an alphabet of starters, marks of several classes, precomposed letters,
 * singletons, exclusions and Hangul jamo, plus some fixed cases. */
static void test_nfc_runs(void) {
    const char *pre = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}";
    char *js = tiny_json("", pre), *at = strstr(js, "\"normalizer\":null");
    CHECK(at != NULL);
    if (!at) return;
    size_t jl = strlen(js);
    char *js2 = malloc(jl + 32);
    int k = snprintf(js2, jl + 32, "%.*s\"normalizer\":{\"type\":\"NFC\"}%s", (int)(at - js), js,
                     at + strlen("\"normalizer\":null"));
    rlaif_bpe *b = NULL;
    CHECK_OK(rlaif_bpe_load_hf_buffer(&b, js2, (size_t)k, "nfc.json"));
    free(js);
    free(js2);
    if (!b) return;
    static const char *alpha[] = {
        "a", "e", "A", " ", "x", ".", "\xc3\xa9" /* é */, "\xcc\x81" /* U+0301 */, "\xcc\xa7" /* U+0327 */,
        "\xcc\xa3" /* U+0323 */, "\xcc\x87" /* U+0307 */, "\xcc\x8a" /* U+030A */,
        "\xe1\x84\x80" /* U+1100 */, "\xe1\x85\xa1" /* U+1161 */, "\xe1\x86\xa8" /* U+11A8 */,
        "\xea\xb0\x80" /* U+AC00 */, "\xe2\x84\xab" /* U+212B */, "\xe0\xa5\x98" /* U+0958 */,
        "\xe1\xb8\x8b" /* U+1E0B */, "\xe2\x80\x99" /* U+2019 */, "\xe4\xb8\xad" /* U+4E2D */,
        "\xf0\x9f\x98\x80" /* U+1F600 */, "\xe0\xa4\x95" /* U+0915 */, "\xe0\xa4\xbc" /* U+093C */,
    };
    const char *fixed[] = {"cafe\xcc\x81 ok", "\xcc\x81" "abc", "abc\xcc\x81", "e\xcc\x81 e\xcc\x81",
                           "q\xcc\x87\xcc\xa3", "\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8"};
    uint64_t rng = 12345;
    char text[256];
    rlaif_bpe_ids v = {0};
    int bad = 0;
    for (int t = 0; t < 3000 && !bad; t++) {
        size_t n = 0;
        if (t < (int)(sizeof fixed / sizeof fixed[0])) {
            n = strlen(fixed[t]);
            memcpy(text, fixed[t], n);
        } else {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int len = 1 + (int)(rng >> 59);
            for (int i = 0; i < len; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                const char *c = alpha[(rng >> 33) % (sizeof alpha / sizeof alpha[0])];
                memcpy(text + n, c, strlen(c));
                n += strlen(c);
            }
        }
        utf8proc_uint8_t *want = NULL;
        utf8proc_ssize_t wl = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)n, &want,
                                           UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        v.n = 0;
        char *got = NULL;
        size_t gl = 0;
        CHECK_OK(rlaif_bpe_encode(b, text, n, NULL, &v));
        CHECK_OK(rlaif_bpe_decode(b, v.ids, v.n, &got, &gl));
        if (wl < 0 || !got || (size_t)wl != gl || memcmp(want, got, gl) != 0) {
            fprintf(stderr, "NFC mismatch on case %d: %.*s\n", t, (int)n, text);
            bad = 1;
        }
        free(want);
        free(got);
    }
    CHECK(!bad);
    rlaif_bpe_ids_free(&v);
    rlaif_bpe_free(b);
}

static void expect_bad_json(const char *json, const char *needle) {
    rlaif_bpe *b = (rlaif_bpe *)1;
    CHECK_FAIL(rlaif_bpe_load_hf_buffer(&b, json, strlen(json), "bad.json"), RLAIF_EFORMAT, needle);
    CHECK(b == NULL);
}

static void test_malformed(void) {
    const char *pre = "{\"type\":\"ByteLevel\"}";
    char *js = tiny_json("", pre);
    /* truncated JSON */
    rlaif_bpe *b = NULL;
    CHECK_FAIL(rlaif_bpe_load_hf_buffer(&b, js, strlen(js) / 2, "cut.json"), RLAIF_EFORMAT,
               "cut.json: unexpected end of file (truncated JSON?)");
    free(js);
    expect_bad_json("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []} x",
                    "line 1: invalid JSON at byte");
    expect_bad_json("[1, 2]", "top level is not an object");
    expect_bad_json("{\"version\": \"1.0\"}", "\"model\" is missing");
    expect_bad_json("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "unsupported model type \"Unigram\"");
    expect_bad_json("{\"model\": {\"type\": \"WordPiece\"}}", "unsupported model type \"WordPiece\"");
    expect_bad_json("{\"model\": {\"type\": \"BPE\", \"merges\": []}}", "model.vocab is missing");
    expect_bad_json("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "model.merges is missing");
    expect_bad_json("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}",
                    "model.vocab[\"a\"] is not a valid id");
    expect_bad_json("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}",
                    "merges[0] (\"a b\") uses a token not in the vocab");
    expect_bad_json("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"ab\"]}}",
                    "model.merges[0] is not \"a b\"");
    js = tiny_json("", "{\"type\":\"Metaspace\",\"replacement\":\"_\"}");
    expect_bad_json(js, "unsupported pre_tokenizer \"Metaspace\"");
    free(js);
    js = tiny_json("", "{\"type\":\"Whitespace\"}");
    expect_bad_json(js, "unsupported pre_tokenizer \"Whitespace\"");
    free(js);
    js = tiny_json("", "null");
    expect_bad_json(js, "no ByteLevel pre_tokenizer");
    free(js);
    js = tiny_json("", "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
                       "\"behavior\":\"Isolated\"},{\"type\":\"ByteLevel\"}]}");
    expect_bad_json(js, "pre_tokenizer regex at offset");
    free(js);
    js = tiny_json("", "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},"
                       "\"behavior\":\"Removed\"},{\"type\":\"ByteLevel\"}]}");
    expect_bad_json(js, "Split behavior \"Removed\" is not supported");
    free(js);
    js = tiny_json(",\"continuing_subword_prefix\":\"##\"", pre);
    expect_bad_json(js, "continuing_subword_prefix is not supported");
    free(js);

    /* tiktoken files */
    char dir[] = "/tmp/rlaif_bpe_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/cl100k_base.tiktoken", dir);
    FILE *f = fopen(path, "wb");
    fputs("IQ== 0\nIg== 1\n@@@@ 2\n", f);
    fclose(f);
    CHECK_FAIL(rlaif_bpe_load(&b, path, NULL), RLAIF_EFORMAT, "cl100k_base.tiktoken:3: bad base64 token");
    f = fopen(path, "wb");
    fputs("IQ== 0\nIg== x\n", f);
    fclose(f);
    CHECK_FAIL(rlaif_bpe_load(&b, path, NULL), RLAIF_EFORMAT, ":2: bad rank");
    f = fopen(path, "wb");
    fputs("IQ== 0\nIg== 1\n", f);
    fclose(f);
    CHECK_FAIL(rlaif_bpe_load(&b, path, NULL), RLAIF_EFORMAT, "no token for byte 0x00");
    CHECK_FAIL(rlaif_bpe_load_tiktoken(&b, path, "foo_base"), RLAIF_EINVAL, "unknown tiktoken encoding 'foo_base'");
    remove(path);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    f = fopen(path, "wb");
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {", f);
    fclose(f);
    CHECK_FAIL(rlaif_bpe_load(&b, dir, NULL), RLAIF_EFORMAT, "tokenizer.json: unexpected end of file");
    remove(path);
    CHECK_FAIL(rlaif_bpe_load(&b, dir, NULL), RLAIF_EFORMAT, "no tokenizer.json");
    rmdir(dir);
    CHECK_FAIL(rlaif_bpe_load(&b, "/nonexistent/tokenizer.json", NULL), RLAIF_EIO, "cannot open /nonexistent");
}

/* The rlaif-trained fixture against @huggingface/tokenizers' ids; retraining
 * with the same options reproduces the file byte for byte. Needs no ../shared. */
static void test_trained(void) {
    size_t clen, ndocs;
    char *ctext = slurp(FIX "corpus.jsonl", &clen);
    CHECK(ctext != NULL);
    if (!ctext) return;
    doc *docs = load_jsonl_strings(ctext, clen, &ndocs);
    free(ctext);
    rlaif_bpe *b = NULL;
    CHECK_OK(rlaif_bpe_load(&b, FIX "trained.json", NULL));
    if (b) check_golden(b, "trained", docs, ndocs, 1, 0);
    rlaif_bpe_free(b);
    const char **texts = malloc(ndocs * sizeof *texts);
    for (size_t i = 0; i < ndocs; i++) texts[i] = docs[i].s;
    const char *special[2] = {"<|endoftext|>", "<|pad|>"};
    rlaif_bpe_train_opts o = {.texts = texts, .n_texts = ndocs, .vocab_size = 1000, .pattern = "cl100k",
                              .special = special, .n_special = 2, .min_frequency = 2};
    char out[] = "/tmp/rlaif_trained_XXXXXX";
    int fd = mkstemp(out);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    CHECK_OK(rlaif_bpe_train(&o, out));
    size_t la, lb;
    char *a = slurp(out, &la), *c = slurp(FIX "trained.json", &lb);
    CHECK(a && c && la == lb && memcmp(a, c, la) == 0);
    free(a);
    free(c);
    remove(out);
    o.vocab_size = 100;
    CHECK_FAIL(rlaif_bpe_train(&o, out), RLAIF_EINVAL, "vocab_size 100 is smaller than 256 bytes + 2 special");
    free(texts);
    free_docs(docs, ndocs);
}

int main(void) {
    test_tiny();
    test_nfc_runs();
    test_trained();
    test_malformed();
    test_references();
    return check_report("test_bpe");
}
