/* src/core/bpe_load.c -- loaders: tiktoken rank files, Hugging Face tokenizer.json
 * (byte-level BPE only), GPT-2's vocab.bpe + encoder.json, and path sniffing.
 *
 * Each loader fills a fresh rlaif_bpe and refuses, with a message naming the file
 * and the field, anything it cannot tokenize exactly (Unigram/WordPiece models,
 * Metaspace or other non-byte-level pre-tokenizers, unknown normalizers, Split
 * behaviors other than Isolated). Nothing here calls exit/abort.
 *
 * Ownership: on success *out is a NEW tokenizer; on failure nothing is leaked and
 * *out is NULL. Paths are borrowed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bpe_impl.h"
#include "gguf.h"

/* ---- files ---- */

static rlaif_status read_file(const char *path, char **buf, size_t *len) {
    *buf = NULL;
    char gate[RLAIF_PATH_MAX];   /* an embedding sandbox's file policy (scope.c) */
    rlaif_status gst = rlaif_path_gate(&path, gate, RLAIF_PATH_READ, "tokenizer.load");
    if (gst != RLAIF_OK) return gst;
    FILE *f = fopen(path, "rb");
    if (!f) return rlaif_fail(RLAIF_EIO, "cannot open %s: %s", path, strerror(errno));
    rlaif_status st = RLAIF_OK;
    char *p = NULL;
    size_t n = 0, cap = 0;
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode)) cap = (size_t)sb.st_size + 1;
    if (cap < 4096) cap = 4096;
    p = malloc(cap);
    if (!p) {
        st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *q = realloc(p, cap * 2);
            if (!q) {
                st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", path);
                goto done;
            }
            p = q;
            cap *= 2;
        }
        size_t r = fread(p + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        st = rlaif_fail(RLAIF_EIO, "cannot read %s: %s", path, strerror(errno));
        goto done;
    }
    p[n] = 0;
    *buf = p;
    *len = n;
    p = NULL;
done:
    free(p);
    fclose(f);
    return st;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int is_file(const char *path) {
    struct stat sb;
    char gate[RLAIF_PATH_MAX];   /* a probe: outside a sandbox's root nothing exists */
    if (rlaif_path_gate(&path, gate, RLAIF_PATH_READ, "tokenizer.load") != RLAIF_OK) return 0;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* ---- byte-level strings ---- */

/* Raw bytes of a vocabulary string; strings outside the byte-level alphabet keep
 * their UTF-8 bytes. dst has room for n bytes. */
static size_t vocab_bytes(const char *s, size_t n, uint8_t *dst) {
    long m = bpe_unbyte((const uint8_t *)s, n, dst);
    if (m >= 0) return (size_t)m;
    memcpy(dst, s, n);
    return n;
}

/* ---- tiktoken ---- */

static int b64val(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decode standard base64 (with '=' padding) of s[0..n) into dst; -1 on error. */
static long b64decode(const char *s, size_t n, uint8_t *dst) {
    if (n % 4) return -1;
    long m = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64val((unsigned char)s[i + k])) < 0) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        dst[m++] = (uint8_t)(w >> 16);
        if (pad < 2) dst[m++] = (uint8_t)(w >> 8);
        if (pad < 1) dst[m++] = (uint8_t)w;
    }
    return m;
}

typedef struct tt_special { const char *text; int32_t id; } tt_special;

static const struct {
    const char     *name;
    bpe_pretok_kind kind;
    tt_special      special[6];
} tt_encodings[] = {
    {"r50k_base", PRETOK_GPT2, {{"<|endoftext|>", 50256}}},
    {"gpt2", PRETOK_GPT2, {{"<|endoftext|>", 50256}}},
    {"p50k_base", PRETOK_GPT2, {{"<|endoftext|>", 50256}}},
    {"cl100k_base", PRETOK_CL100K,
     {{"<|endoftext|>", 100257}, {"<|fim_prefix|>", 100258}, {"<|fim_middle|>", 100259},
      {"<|fim_suffix|>", 100260}, {"<|endofprompt|>", 100276}}},
    {"o200k_base", PRETOK_O200K, {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}},
};

rlaif_status rlaif_bpe_load_tiktoken(rlaif_bpe **out, const char *path, const char *encoding) {
    *out = NULL;
    char name[64];
    if (encoding && *encoding) {
        snprintf(name, sizeof name, "%s", encoding);
    } else {
        snprintf(name, sizeof name, "%s", base_name(path));
        char *dot = strstr(name, ".tiktoken");
        if (dot) *dot = 0;
    }
    int e = -1;
    for (size_t i = 0; i < sizeof tt_encodings / sizeof tt_encodings[0]; i++)
        if (strcmp(name, tt_encodings[i].name) == 0) e = (int)i;
    if (e < 0)
        return rlaif_fail(RLAIF_EINVAL,
                          "%s: unknown tiktoken encoding '%s' (name the file or pass an encoding: "
                          "r50k_base, gpt2, p50k_base, cl100k_base, o200k_base)",
                          path, name);
    char *text = NULL, kind[80];
    size_t len;
    rlaif_bpe *b = NULL;
    rlaif_status st = read_file(path, &text, &len);
    if (st) return st;
    snprintf(kind, sizeof kind, "tiktoken:%s", name);
    if ((st = bpe_new(&b, kind))) goto done;
    size_t line = 0, count = 0;
    int32_t max_rank = -1;
    uint8_t tok[512];
    for (char *p = text, *end = text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        line++;
        if (le > p && le[-1] == '\r') le--;
        if (le == p) { /* blank line */
            p = nl ? nl + 1 : end;
            continue;
        }
        char *sp = memchr(p, ' ', (size_t)(le - p));
        if (!sp) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s:%zu: expected 'base64 rank'", path, line);
            goto done;
        }
        long m = (size_t)(sp - p) <= 4 * (sizeof tok / 3) ? b64decode(p, (size_t)(sp - p), tok) : -1;
        if (m <= 0) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s:%zu: bad base64 token", path, line);
            goto done;
        }
        char *re;
        errno = 0;
        long rank = strtol(sp + 1, &re, 10);
        if (re != le || errno || rank < 0 || rank >= (1L << 30)) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s:%zu: bad rank", path, line);
            goto done;
        }
        if (rank < b->n_ids && b->tok[rank].off != UINT32_MAX) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s:%zu: duplicate rank %ld", path, line, rank);
            goto done;
        }
        if ((st = bpe_set_token(b, (int32_t)rank, tok, (size_t)m))) goto done;
        if (rank > max_rank) max_rank = (int32_t)rank;
        count++;
        p = nl ? nl + 1 : end;
    }
    if (count == 0) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: no tokens (empty or not a tiktoken file)", path);
        goto done;
    }
    if ((st = bpe_build_vocab(b, max_rank + 1, path))) goto done;
    for (int i = 0; i < 256; i++)
        if (b->byte_id[i] < 0) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: no token for byte 0x%02x", path, i);
            goto done;
        }
    for (const tt_special *s = tt_encodings[e].special; s->text; s++)
        if ((st = bpe_add_added(b, s->id, (const uint8_t *)s->text, strlen(s->text), 1))) goto done;
    bpe_index_added(b);
    b->whole_first = 1;
    b->stages[0].kind = tt_encodings[e].kind;
    b->n_stages = 1;
    b->prefix_stage = -1;
done:
    free(text);
    if (st) rlaif_bpe_free(b);
    else *out = b;
    return st;
}

/* ---- shared: vocabulary object and merges ---- */

/* model.vocab (object string -> id) into b. */
static rlaif_status load_vocab_object(rlaif_bpe *b, const bpe_json *j, uint32_t vocab,
                                      const char *file, const char *field, int32_t *n_vocab) {
    if (!vocab || j->n[vocab].type != J_OBJ)
        return rlaif_fail(RLAIF_EFORMAT, "%s: %s is missing or not an object", file, field);
    uint8_t *tmp = NULL;
    size_t tmp_cap = 0;
    int32_t top = -1;
    rlaif_status st = RLAIF_OK;
    for (uint32_t k = j->n[vocab].first; k; k = j->n[k].next) {
        const bpe_jnode *key = &j->n[k], *v = &j->n[key->val];
        if (v->type != J_NUM || v->num < 0 || v->num >= (1 << 30) || v->num != (double)(int32_t)v->num) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: %s[\"%.40s\"] is not a valid id", file, field, key->str);
            goto done;
        }
        if (key->len > tmp_cap) {
            free(tmp);
            tmp_cap = key->len * 2 + 64;
            if (!(tmp = malloc(tmp_cap))) {
                st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", file);
                goto done;
            }
        }
        if (!tmp && !(tmp = malloc(tmp_cap = 64))) {
            st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", file);
            goto done;
        }
        size_t m = vocab_bytes(key->str, key->len, tmp);
        int32_t id = (int32_t)v->num;
        if ((st = bpe_set_token(b, id, tmp, m))) goto done;
        if (id > top) top = id;
    }
    if (top < 0) st = rlaif_fail(RLAIF_EFORMAT, "%s: %s is empty", file, field);
    *n_vocab = top + 1;
done:
    free(tmp);
    return st;
}

/* One merge rule: the two parts (byte-level strings) at rank r. */
static rlaif_status add_merge(rlaif_bpe *b, const char *a, size_t an, const char *c, size_t cn,
                              int32_t rank, const char *file) {
    uint8_t small[1024], *buf = small;
    if (an + cn > sizeof small && !(buf = malloc(an + cn)))
        return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", file);
    size_t ma = vocab_bytes(a, an, buf), mc = vocab_bytes(c, cn, buf + ma);
    int32_t ia = bpe_vocab_find(b, buf, ma), ic = bpe_vocab_find(b, buf + ma, mc),
            in = bpe_vocab_find(b, buf, ma + mc);
    if (buf != small) free(buf);
    if (ia < 0 || ic < 0 || in < 0)
        return rlaif_fail(RLAIF_EFORMAT, "%s: merges[%d] (\"%.*s %.*s\") uses a token not in the vocab",
                          file, (int)rank, (int)(an > 40 ? 40 : an), a, (int)(cn > 40 ? 40 : cn), c);
    bpe_pairs_put(b, ia, ic, rank, in);
    return RLAIF_OK;
}

/* ---- Hugging Face tokenizer.json ---- */

static const char *jstr(const bpe_json *j, uint32_t o, const char *key) {
    uint32_t v = bpe_json_get(j, o, key);
    return v && j->n[v].type == J_STR ? j->n[v].str : NULL;
}

static int jbool(const bpe_json *j, uint32_t o, const char *key, int dflt) {
    uint32_t v = bpe_json_get(j, o, key);
    if (!v) return dflt;
    if (j->n[v].type == J_TRUE) return 1;
    if (j->n[v].type == J_FALSE) return 0;
    return dflt;
}

static rlaif_status hf_normalizer(rlaif_bpe *b, const bpe_json *j, uint32_t n, const char *file) {
    if (!n || j->n[n].type == J_NULL) return RLAIF_OK;
    const char *type = jstr(j, n, "type");
    if (!type) return rlaif_fail(RLAIF_EFORMAT, "%s: normalizer has no \"type\"", file);
    if (strcmp(type, "NFC") == 0) {
        b->nfc = 1;
        return RLAIF_OK;
    }
    if (strcmp(type, "Sequence") == 0) {
        uint32_t list = bpe_json_get(j, n, "normalizers");
        if (!list || j->n[list].type != J_ARR)
            return rlaif_fail(RLAIF_EFORMAT, "%s: normalizer.normalizers is missing", file);
        for (uint32_t k = j->n[list].first; k; k = j->n[k].next) {
            rlaif_status st = hf_normalizer(b, j, k, file);
            if (st) return st;
        }
        return RLAIF_OK;
    }
    return rlaif_fail(RLAIF_EFORMAT, "%s: unsupported normalizer \"%s\" (supported: NFC)", file, type);
}

static rlaif_status add_stage(rlaif_bpe *b, bpe_pretok_kind kind, const char *re, const char *file) {
    if (b->n_stages >= BPE_MAX_STAGES)
        return rlaif_fail(RLAIF_EFORMAT, "%s: more than %d pre-tokenizer stages", file, BPE_MAX_STAGES);
    bpe_stage *s = &b->stages[b->n_stages];
    s->kind = kind;
    s->code = NULL;
    if (kind == PRETOK_PCRE) {
        rlaif_status st = bpe_pretok_compile(re, &s->code);
        if (st) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", rlaif_last_error()); /* the buffer is reused below */
            return rlaif_fail(st, "%s: %s", file, msg);
        }
    }
    b->n_stages++;
    return RLAIF_OK;
}

static rlaif_status hf_pretok(rlaif_bpe *b, const bpe_json *j, uint32_t n, const char *file,
                              int *byte_level) {
    if (!n || j->n[n].type == J_NULL) return RLAIF_OK;
    const char *type = jstr(j, n, "type");
    if (!type) return rlaif_fail(RLAIF_EFORMAT, "%s: pre_tokenizer has no \"type\"", file);
    if (strcmp(type, "Sequence") == 0) {
        uint32_t list = bpe_json_get(j, n, "pretokenizers");
        if (!list || j->n[list].type != J_ARR)
            return rlaif_fail(RLAIF_EFORMAT, "%s: pre_tokenizer.pretokenizers is missing", file);
        for (uint32_t k = j->n[list].first; k; k = j->n[k].next) {
            rlaif_status st = hf_pretok(b, j, k, file, byte_level);
            if (st) return st;
        }
        return RLAIF_OK;
    }
    if (*byte_level)
        return rlaif_fail(RLAIF_EFORMAT, "%s: pre_tokenizer \"%s\" after ByteLevel is not supported",
                          file, type);
    if (strcmp(type, "ByteLevel") == 0) {
        *byte_level = 1;
        b->prefix_space = jbool(j, n, "add_prefix_space", 0);
        b->prefix_stage = b->n_stages;
        if (jbool(j, n, "use_regex", 1)) return add_stage(b, PRETOK_GPT2, NULL, file);
        return RLAIF_OK;
    }
    if (strcmp(type, "Split") == 0) {
        const char *behavior = jstr(j, n, "behavior");
        if (!behavior || strcmp(behavior, "Isolated") != 0)
            return rlaif_fail(RLAIF_EFORMAT, "%s: pre_tokenizer Split behavior \"%s\" is not supported "
                              "(only Isolated)", file, behavior ? behavior : "(missing)");
        if (jbool(j, n, "invert", 0))
            return rlaif_fail(RLAIF_EFORMAT, "%s: pre_tokenizer Split with invert=true is not supported",
                              file);
        uint32_t pat = bpe_json_get(j, n, "pattern");
        const char *re = jstr(j, pat, "Regex");
        if (re) return add_stage(b, bpe_pretok_known(re), re, file);
        const char *lit = jstr(j, pat, "String");
        if (!lit) return rlaif_fail(RLAIF_EFORMAT, "%s: pre_tokenizer Split has no pattern", file);
        /* a literal: quote it for PCRE2 */
        size_t l = strlen(lit);
        char *q = malloc(l + 5);
        if (!q) return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", file);
        snprintf(q, l + 5, "\\Q%s\\E", lit);
        rlaif_status st = strstr(lit, "\\E") ? rlaif_fail(RLAIF_EFORMAT, "%s: unsupported Split string", file)
                                             : add_stage(b, PRETOK_PCRE, q, file);
        free(q);
        return st;
    }
    return rlaif_fail(RLAIF_EFORMAT, "%s: unsupported pre_tokenizer \"%s\" (supported: ByteLevel, "
                      "Split, Sequence; only byte-level BPE)", file, type);
}

/* Ids of a TemplateProcessing special token name. */
static int template_ids(const bpe_json *j, uint32_t specials, const char *name, int32_t *ids, int max) {
    uint32_t e = bpe_json_get(j, specials, name), list = bpe_json_get(j, e, "ids");
    int n = 0;
    if (!list || j->n[list].type != J_ARR) return -1;
    for (uint32_t k = j->n[list].first; k; k = j->n[k].next) {
        if (j->n[k].type != J_NUM || n >= max) return -1;
        ids[n++] = (int32_t)j->n[k].num;
    }
    return n;
}

static void hf_post(rlaif_bpe *b, const bpe_json *j, uint32_t n, const char *file) {
    if (!n || j->n[n].type == J_NULL) return;
    const char *type = jstr(j, n, "type");
    if (!type) type = "(no type)";
    if (strcmp(type, "ByteLevel") == 0) return;
    if (strcmp(type, "Sequence") == 0) {
        uint32_t list = bpe_json_get(j, n, "processors");
        for (uint32_t k = list ? j->n[list].first : 0; k; k = j->n[k].next) hf_post(b, j, k, file);
        return;
    }
    if (strcmp(type, "TemplateProcessing") == 0) {
        uint32_t single = bpe_json_get(j, n, "single"), specials = bpe_json_get(j, n, "special_tokens");
        int after = 0;
        for (uint32_t k = single ? j->n[single].first : 0; k; k = j->n[k].next) {
            uint32_t sp = bpe_json_get(j, k, "SpecialToken");
            if (bpe_json_get(j, k, "Sequence")) {
                after = 1;
                continue;
            }
            const char *id = jstr(j, sp, "id");
            int32_t *dst = after ? b->eos + b->n_eos : b->bos + b->n_bos;
            int room = 4 - (after ? b->n_eos : b->n_bos);
            int got = id ? template_ids(j, specials, id, dst, room) : -1;
            if (got < 0) {
                snprintf(b->post_error, sizeof b->post_error,
                         "%s: post_processor template token \"%s\" is malformed", file, id ? id : "?");
                return;
            }
            if (after) b->n_eos += got;
            else b->n_bos += got;
        }
        return;
    }
    if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        uint32_t cls = bpe_json_get(j, n, "cls"), sep = bpe_json_get(j, n, "sep");
        uint32_t ci = cls ? j->n[cls].first : 0, si = sep ? j->n[sep].first : 0;
        ci = ci ? j->n[ci].next : 0;
        si = si ? j->n[si].next : 0;
        if (ci && si && j->n[ci].type == J_NUM && j->n[si].type == J_NUM) {
            b->bos[b->n_bos++] = (int32_t)j->n[ci].num;
            b->eos[b->n_eos++] = (int32_t)j->n[si].num;
            return;
        }
    }
    snprintf(b->post_error, sizeof b->post_error, "%s: post_processor \"%s\" is not supported", file, type);
}

static rlaif_status hf_build(rlaif_bpe **out, const bpe_json *j, const char *file, const char *kind) {
    rlaif_bpe *b = NULL;
    rlaif_status st = RLAIF_OK;
    uint32_t root = 1;
    if (j->n[root].type != J_OBJ) return rlaif_fail(RLAIF_EFORMAT, "%s: top level is not an object", file);
    uint32_t model = bpe_json_get(j, root, "model");
    if (!model || j->n[model].type != J_OBJ)
        return rlaif_fail(RLAIF_EFORMAT, "%s: \"model\" is missing or not an object", file);
    const char *type = jstr(j, model, "type");
    if (type && strcmp(type, "BPE") != 0)
        return rlaif_fail(RLAIF_EFORMAT, "%s: unsupported model type \"%s\" (only byte-level BPE)", file,
                          type);
    const char *csp = jstr(j, model, "continuing_subword_prefix"),
               *eow = jstr(j, model, "end_of_word_suffix");
    if ((csp && *csp) || (eow && *eow))
        return rlaif_fail(RLAIF_EFORMAT, "%s: model.%s is not supported", file,
                          csp && *csp ? "continuing_subword_prefix" : "end_of_word_suffix");
    if ((st = bpe_new(&b, kind))) return st;
    b->prefix_stage = -1;
    int32_t n_vocab = 0;
    if ((st = load_vocab_object(b, j, bpe_json_get(j, model, "vocab"), file, "model.vocab", &n_vocab)))
        goto done;
    if ((st = bpe_build_vocab(b, n_vocab, file))) goto done;
    uint32_t merges = bpe_json_get(j, model, "merges");
    if (!merges || j->n[merges].type != J_ARR) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: model.merges is missing or not an array", file);
        goto done;
    }
    if ((st = bpe_pairs_reserve(b, j->n[merges].len + 1))) goto done;
    int32_t rank = 0;
    for (uint32_t k = j->n[merges].first; k; k = j->n[k].next, rank++) {
        const bpe_jnode *m = &j->n[k];
        if (m->type == J_STR) {
            const char *sp = memchr(m->str, ' ', m->len);
            if (!sp || sp == m->str || sp + 1 == m->str + m->len) {
                st = rlaif_fail(RLAIF_EFORMAT, "%s: model.merges[%d] is not \"a b\"", file, (int)rank);
                goto done;
            }
            st = add_merge(b, m->str, (size_t)(sp - m->str), sp + 1, m->len - (size_t)(sp - m->str) - 1,
                           rank, file);
        } else if (m->type == J_ARR && m->len == 2 && j->n[m->first].type == J_STR &&
                   j->n[j->n[m->first].next].type == J_STR) {
            const bpe_jnode *x = &j->n[m->first], *y = &j->n[x->next];
            st = add_merge(b, x->str, x->len, y->str, y->len, rank, file);
        } else {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]",
                            file, (int)rank);
        }
        if (st) goto done;
    }
    b->whole_first = jbool(j, model, "ignore_merges", 0);
    if ((st = hf_normalizer(b, j, bpe_json_get(j, root, "normalizer"), file))) goto done;
    int byte_level = 0;
    if ((st = hf_pretok(b, j, bpe_json_get(j, root, "pre_tokenizer"), file, &byte_level))) goto done;
    if (!byte_level) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: no ByteLevel pre_tokenizer (only byte-level BPE is supported)",
                        file);
        goto done;
    }
    uint32_t dec = bpe_json_get(j, root, "decoder");
    const char *dtype = jstr(j, dec, "type");
    if (dec && j->n[dec].type != J_NULL && (!dtype || strcmp(dtype, "ByteLevel") != 0)) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: unsupported decoder \"%s\" (only ByteLevel)", file,
                        dtype ? dtype : "(no type)");
        goto done;
    }
    for (int i = 0; i < 256; i++)
        if (b->byte_id[i] < 0) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: model.vocab has no token for byte 0x%02x", file, i);
            goto done;
        }
    uint32_t added = bpe_json_get(j, root, "added_tokens");
    if (added && j->n[added].type != J_ARR && j->n[added].type != J_NULL) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: added_tokens is not an array", file);
        goto done;
    }
    int idx = 0;
    for (uint32_t k = added ? j->n[added].first : 0; k; k = j->n[k].next, idx++) {
        uint32_t id = bpe_json_get(j, k, "id");
        const char *content = jstr(j, k, "content");
        if (!id || j->n[id].type != J_NUM || !content) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: added_tokens[%d] needs \"id\" and \"content\"", file, idx);
            goto done;
        }
        uint32_t cn = bpe_json_get(j, k, "content");
        if ((st = bpe_add_added(b, (int32_t)j->n[id].num, (const uint8_t *)content, j->n[cn].len,
                                jbool(j, k, "special", 0))))
            goto done;
    }
    bpe_index_added(b);
    hf_post(b, j, bpe_json_get(j, root, "post_processor"), file);
done:
    if (st) rlaif_bpe_free(b);
    else *out = b;
    return st;
}

rlaif_status rlaif_bpe_load_hf_buffer(rlaif_bpe **out, const char *json, size_t len, const char *name) {
    *out = NULL;
    bpe_json j;
    rlaif_status st = bpe_json_parse(&j, json, len, name);
    if (st) return st;
    st = hf_build(out, &j, name, "tokenizer.json");
    bpe_json_free(&j);
    return st;
}

rlaif_status rlaif_bpe_load_hf(rlaif_bpe **out, const char *path) {
    *out = NULL;
    char *text;
    size_t len;
    rlaif_status st = read_file(path, &text, &len);
    if (st) return st;
    bpe_json j;
    st = bpe_json_parse_owned(&j, text, len, path); /* text now belongs to j */
    if (st) return st;
    st = hf_build(out, &j, path, "tokenizer.json");
    bpe_json_free(&j);
    return st;
}

/* ---- GPT-2 vocab.bpe + encoder.json ---- */

rlaif_status rlaif_bpe_load_gpt2(rlaif_bpe **out, const char *vocab_bpe, const char *encoder_json) {
    *out = NULL;
    char *enc = NULL, *merges = NULL;
    size_t enc_len, merges_len;
    bpe_json j = {0};
    rlaif_bpe *b = NULL;
    rlaif_status st;
    if ((st = read_file(encoder_json, &enc, &enc_len))) goto done;
    if ((st = read_file(vocab_bpe, &merges, &merges_len))) goto done;
    st = bpe_json_parse_owned(&j, enc, enc_len, encoder_json); /* enc now belongs to j */
    enc = NULL;
    if (st) goto done;
    if ((st = bpe_new(&b, "gpt2"))) goto done;
    b->prefix_stage = -1;
    int32_t n_vocab;
    if ((st = load_vocab_object(b, &j, 1, encoder_json, "the top-level object", &n_vocab))) goto done;
    if ((st = bpe_build_vocab(b, n_vocab, encoder_json))) goto done;
    size_t lines = 1;
    for (size_t i = 0; i < merges_len; i++) lines += merges[i] == '\n';
    if ((st = bpe_pairs_reserve(b, lines))) goto done;
    int32_t rank = 0;
    size_t line = 0;
    for (char *p = merges, *end = merges + merges_len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
        line++;
        if (le > p && le[-1] == '\r') le--;
        if (le > p && !(line == 1 && *p == '#')) {
            char *sp = memchr(p, ' ', (size_t)(le - p));
            if (!sp || sp == p || sp + 1 == le) {
                st = rlaif_fail(RLAIF_EFORMAT, "%s:%zu: expected a merge \"a b\"", vocab_bpe, line);
                goto done;
            }
            if ((st = add_merge(b, p, (size_t)(sp - p), sp + 1, (size_t)(le - sp - 1), rank, vocab_bpe)))
                goto done;
            rank++;
        }
        p = nl ? nl + 1 : end;
    }
    if (rank == 0) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: no merges", vocab_bpe);
        goto done;
    }
    for (int i = 0; i < 256; i++)
        if (b->byte_id[i] < 0) {
            st = rlaif_fail(RLAIF_EFORMAT, "%s: no token for byte 0x%02x", encoder_json, i);
            goto done;
        }
    int32_t eot = bpe_vocab_find(b, (const uint8_t *)"<|endoftext|>", 13);
    if (eot >= 0 && (st = bpe_add_added(b, eot, (const uint8_t *)"<|endoftext|>", 13, 1))) goto done;
    bpe_index_added(b);
    b->stages[0].kind = PRETOK_GPT2;
    b->n_stages = 1;
done:
    free(enc);
    free(merges);
    bpe_json_free(&j);
    if (st) rlaif_bpe_free(b);
    else *out = b;
    return st;
}

/* ---- sniffing ---- */

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

rlaif_status rlaif_bpe_load(rlaif_bpe **out, const char *path, const char *encoding) {
    *out = NULL;
    if (!path) return rlaif_fail(RLAIF_EINVAL, "tokenizer.load: NULL path");
    char gate[RLAIF_PATH_MAX];
    rlaif_status gst = rlaif_path_gate(&path, gate, RLAIF_PATH_READ, "tokenizer.load");
    if (gst != RLAIF_OK) return gst;
    struct stat sb;
    if (stat(path, &sb) != 0) return rlaif_fail(RLAIF_EIO, "cannot open %s: %s", path, strerror(errno));
    size_t pl = strlen(path);
    char *a = malloc(pl + 32), *c = malloc(pl + 32);
    rlaif_status st;
    if (!a || !c) {
        st = rlaif_fail(RLAIF_ENOMEM, "tokenizer.load: out of memory");
        goto done;
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(a, pl + 32, "%s/tokenizer.json", path);
        if (is_file(a)) {
            st = rlaif_bpe_load_hf(out, a);
            goto done;
        }
        snprintf(a, pl + 32, "%s/vocab.bpe", path);
        snprintf(c, pl + 32, "%s/encoder.json", path);
        if (is_file(a) && is_file(c)) {
            st = rlaif_bpe_load_gpt2(out, a, c);
            goto done;
        }
        if (encoding) {
            snprintf(a, pl + 32, "%s/%s.tiktoken", path, encoding);
            if (is_file(a)) {
                st = rlaif_bpe_load_tiktoken(out, a, encoding);
                goto done;
            }
        }
        st = rlaif_fail(RLAIF_EFORMAT, "%s: no tokenizer.json, vocab.bpe + encoder.json%s in this directory",
                        path, encoding ? " or <encoding>.tiktoken" : "");
        goto done;
    }
    const char *base = base_name(path);
    if (strcmp(base, "vocab.bpe") == 0 || strcmp(base, "encoder.json") == 0) {
        size_t dir = (size_t)(base - path);
        snprintf(a, pl + 32, "%.*svocab.bpe", (int)dir, path);
        snprintf(c, pl + 32, "%.*sencoder.json", (int)dir, path);
        st = rlaif_bpe_load_gpt2(out, a, c);
    } else if (ends_with(base, ".json")) {
        st = rlaif_bpe_load_hf(out, path);
    } else if (ends_with(base, ".gguf")) {
        st = rlaif_bpe_load_gguf(out, path);   /* bpe_gguf.c */
    } else if (ends_with(base, ".tiktoken") || encoding) {
        st = rlaif_bpe_load_tiktoken(out, path, encoding);
    } else {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: unknown tokenizer format (expected tokenizer.json, "
                        "*.tiktoken, vocab.bpe, encoder.json or *.gguf; for another rank file pass an encoding)",
                        path);
    }
done:
    free(a);
    free(c);
    return st;
}
