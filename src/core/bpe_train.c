/* src/core/bpe_train.c -- byte-level BPE training that writes a Hugging Face
 * tokenizer.json.
 *
 * Method: pre-tokenize every document with the chosen pattern (the same scanners
 * the encoder uses), count distinct pieces, start each piece as its bytes (ids
 * 0..255 = byte values), then repeatedly merge the most frequent adjacent pair
 * (ties: the smallest (left id, right id), so runs are deterministic) until the
 * vocabulary is full or the best pair is rarer than min_frequency. Pair counts
 * are recounted over distinct pieces each round: O(merges x distinct symbols),
 * meant for the small custom vocabularies of experiments, not for 100k-token
 * vocabularies over gigabytes.
 *
 * Output: model BPE with vocab, merges (["a","b"] form), the pattern as a Split
 * (or ByteLevel's own regex for "gpt2"), ByteLevel decoder, specials as added
 * tokens after the merges. It loads in @huggingface/tokenizers and rlaif alike.
 * Ownership: all memory is local and freed before returning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe_impl.h"

typedef struct word {
    int64_t  count;
    int32_t *sym;   /* (len) current symbol ids */
    uint32_t len;
} word;

typedef struct trainer {
    word    *words;
    size_t   n_words, cap_words;
    size_t  *slot;          /* word hash table: index + 1, 0 = empty */
    uint32_t *slot_hash;
    size_t   mask;
    uint8_t **wbytes;       /* (n_words) bytes of each word, for lookups */
    rlaif_status st;
} trainer;

static void add_piece(void *ctx, const uint8_t *s, size_t n) {
    trainer *t = ctx;
    if (t->st || n == 0) return;
    uint32_t h = bpe_hash_bytes(s, n);
    size_t i = h & t->mask;
    while (t->slot[i]) {
        size_t w = t->slot[i] - 1;
        if (t->slot_hash[i] == h && t->words[w].len == n && memcmp(t->wbytes[w], s, n) == 0) {
            t->words[w].count++;
            return;
        }
        i = (i + 1) & t->mask;
    }
    if (t->n_words == t->cap_words || (t->n_words + 1) * 2 > t->mask + 1) {
        /* grow both the array and the table (rehash) */
        size_t cap = t->cap_words ? t->cap_words * 2 : 4096;
        word *nw = realloc(t->words, cap * sizeof *nw);
        uint8_t **nb = nw ? realloc(t->wbytes, cap * sizeof *nb) : NULL;
        if (nw) t->words = nw;
        if (nb) t->wbytes = nb;
        size_t tcap = (t->mask + 1) * 2;
        size_t *ns = calloc(tcap, sizeof *ns);
        uint32_t *nh = calloc(tcap, sizeof *nh);
        if (!nw || !nb || !ns || !nh) {
            free(ns);
            free(nh);
            t->st = rlaif_fail(RLAIF_ENOMEM, "tokenizer.train: out of memory");
            return;
        }
        t->cap_words = cap;
        for (size_t k = 0; k <= t->mask; k++) {
            if (!t->slot[k]) continue;
            size_t j = t->slot_hash[k] & (tcap - 1);
            while (ns[j]) j = (j + 1) & (tcap - 1);
            ns[j] = t->slot[k];
            nh[j] = t->slot_hash[k];
        }
        free(t->slot);
        free(t->slot_hash);
        t->slot = ns;
        t->slot_hash = nh;
        t->mask = tcap - 1;
        i = h & t->mask;
        while (t->slot[i]) i = (i + 1) & t->mask;
    }
    word *w = &t->words[t->n_words];
    w->count = 1;
    w->len = (uint32_t)n;
    w->sym = malloc(n * sizeof *w->sym);
    t->wbytes[t->n_words] = malloc(n);
    if (!w->sym || !t->wbytes[t->n_words]) {
        free(w->sym);
        free(t->wbytes[t->n_words]);
        t->st = rlaif_fail(RLAIF_ENOMEM, "tokenizer.train: out of memory");
        return;
    }
    memcpy(t->wbytes[t->n_words], s, n);
    for (size_t k = 0; k < n; k++) w->sym[k] = s[k];
    t->slot[i] = ++t->n_words;
    t->slot_hash[i] = h;
}

static rlaif_status add_document(trainer *t, const bpe_stage *stage, const uint8_t *s, size_t n) {
    uint8_t *clean = NULL;
    if (bpe_utf8_valid_prefix(s, n) != n) {
        rlaif_status st = bpe_utf8_sanitize(s, n, &clean, &n);
        if (st) return st;
        s = clean;
    }
    rlaif_status st = bpe_pretok_split(stage, s, n, add_piece, t);
    free(clean);
    return st ? st : t->st;
}

/* ---- pair counting ---- */

typedef struct pcount { uint64_t key; int64_t count; } pcount;

/* ---- JSON output ---- */

static void put_json_bytes(FILE *f, const uint8_t *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* The byte-level string of raw bytes, as a JSON string. */
static void put_bytelevel(FILE *f, const uint8_t *s, size_t n) {
    uint8_t buf[8];
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = bpe_byte_to_cp(s[i]);
        size_t l = 0;
        if (cp == '"' || cp == '\\') buf[l++] = '\\', buf[l++] = (uint8_t)cp;
        else if (cp < 0x80) buf[l++] = (uint8_t)cp;
        else buf[l++] = (uint8_t)(0xC0 | cp >> 6), buf[l++] = (uint8_t)(0x80 | (cp & 0x3F));
        fwrite(buf, 1, l, f);
    }
    fputc('"', f);
}

rlaif_status rlaif_bpe_train(const rlaif_bpe_train_opts *o, const char *out_path) {
    bpe_classes_init();
    if (!o || !out_path) return rlaif_fail(RLAIF_EINVAL, "NULL argument");
    size_t n_special = o->n_special;
    if (o->vocab_size < 256 + (int32_t)n_special)
        return rlaif_fail(RLAIF_EINVAL, "vocab_size %d is smaller than 256 bytes + %zu special tokens",
                          (int)o->vocab_size, n_special);
    const char *pat = o->pattern ? o->pattern : "gpt2";
    bpe_stage stage = {PRETOK_GPT2, NULL};
    const char *regex;
    if (strcmp(pat, "gpt2") == 0) stage.kind = PRETOK_GPT2;
    else if (strcmp(pat, "cl100k") == 0 || strcmp(pat, "llama3") == 0) stage.kind = PRETOK_CL100K;
    else if (strcmp(pat, "o200k") == 0) stage.kind = PRETOK_O200K;
    else if (strcmp(pat, "qwen") == 0) stage.kind = PRETOK_QWEN;
    else stage.kind = bpe_pretok_known(pat);
    regex = stage.kind == PRETOK_PCRE ? pat : bpe_pretok_regex(stage.kind);

    rlaif_status st = RLAIF_OK;
    trainer t = {0};
    uint8_t **tok = NULL;       /* bytes of each id */
    uint32_t *tok_len = NULL;
    int32_t (*merges)[2] = NULL;
    pcount *pc = NULL;
    size_t pc_mask = 0;
    FILE *f = NULL;
    int32_t n_tok = 256, n_merges = 0, max_merges = o->vocab_size - 256 - (int32_t)n_special;

    if (stage.kind == PRETOK_PCRE && (st = bpe_pretok_compile(pat, &stage.code))) goto done;
    t.mask = 4095;
    t.slot = calloc(t.mask + 1, sizeof *t.slot);
    t.slot_hash = calloc(t.mask + 1, sizeof *t.slot_hash);
    if (!t.slot || !t.slot_hash) {
        st = rlaif_fail(RLAIF_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < o->n_files; i++) {
        const char *fp = o->files[i];
        char gate[RLAIF_PATH_MAX];   /* an embedding sandbox's file policy (scope.c) */
        if ((st = rlaif_path_gate(&fp, gate, RLAIF_PATH_READ, "tokenizer.train")) != RLAIF_OK) goto done;
        FILE *in = fopen(fp, "rb");
        if (!in) {
            st = rlaif_fail(RLAIF_EIO, "cannot open %s", o->files[i]);
            goto done;
        }
        size_t cap = 1 << 16, n = 0;
        uint8_t *buf = malloc(cap);
        size_t r;
        while (buf && (r = fread(buf + n, 1, cap - n, in)) > 0) {
            n += r;
            if (n == cap) {
                uint8_t *nb = realloc(buf, cap *= 2);
                if (!nb) { free(buf); buf = NULL; }
                else buf = nb;
            }
        }
        fclose(in);
        if (!buf) {
            st = rlaif_fail(RLAIF_ENOMEM, "out of memory reading %s", o->files[i]);
            goto done;
        }
        st = add_document(&t, &stage, buf, n);
        free(buf);
        if (st) goto done;
    }
    for (size_t i = 0; i < o->n_texts; i++)
        if ((st = add_document(&t, &stage, (const uint8_t *)o->texts[i], strlen(o->texts[i])))) goto done;

    size_t n_ids = 256 + (size_t)(max_merges > 0 ? max_merges : 0);
    tok = calloc(n_ids, sizeof *tok);
    tok_len = calloc(n_ids, sizeof *tok_len);
    merges = calloc((size_t)(2 * max_merges + 1), sizeof *merges);
    if (!tok || !tok_len || !merges) {
        st = rlaif_fail(RLAIF_ENOMEM, "out of memory");
        goto done;
    }
    for (int b = 0; b < 256; b++) {
        tok[b] = malloc(1);
        if (!tok[b]) {
            st = rlaif_fail(RLAIF_ENOMEM, "out of memory");
            goto done;
        }
        tok[b][0] = (uint8_t)b;
        tok_len[b] = 1;
    }
    int32_t min_freq = o->min_frequency > 0 ? o->min_frequency : 1;
    while (n_tok < 256 + max_merges && n_merges < 2 * max_merges) {
        if (rlaif_cancelled()) {
            st = rlaif_fail(RLAIF_EINTR, "interrupted");
            goto done;
        }
        /* count pairs */
        size_t total = 0;
        for (size_t w = 0; w < t.n_words; w++) total += t.words[w].len;
        size_t cap = 16;
        while (cap < total * 2 + 16) cap *= 2;
        if (cap - 1 != pc_mask) {
            free(pc);
            pc = malloc(cap * sizeof *pc);
            if (!pc) {
                st = rlaif_fail(RLAIF_ENOMEM, "out of memory");
                goto done;
            }
            pc_mask = cap - 1;
        }
        for (size_t i = 0; i <= pc_mask; i++) pc[i].key = UINT64_MAX;
        uint64_t best_key = UINT64_MAX;
        int64_t best = 0;
        for (size_t w = 0; w < t.n_words; w++) {
            const word *wd = &t.words[w];
            for (uint32_t k = 0; k + 1 < wd->len; k++) {
                uint64_t key = (uint64_t)(uint32_t)wd->sym[k] << 32 | (uint32_t)wd->sym[k + 1];
                uint64_t h = key * 0x9E3779B97F4A7C15ull;
                size_t i = (size_t)(h ^ (h >> 29)) & pc_mask;
                while (pc[i].key != UINT64_MAX && pc[i].key != key) i = (i + 1) & pc_mask;
                if (pc[i].key == UINT64_MAX) pc[i].key = key, pc[i].count = 0;
                pc[i].count += wd->count;
                if (pc[i].count > best || (pc[i].count == best && key < best_key)) best = pc[i].count, best_key = key;
            }
        }
        if (best_key == UINT64_MAX || best < min_freq) break;
        int32_t a = (int32_t)(best_key >> 32), b = (int32_t)(best_key & 0xffffffffu);
        /* the same bytes may already be a token (made by another split): reuse its id */
        uint32_t nl = tok_len[a] + tok_len[b];
        int32_t id = -1;
        for (int32_t k = 256; k < n_tok && id < 0; k++)
            if (tok_len[k] == nl && memcmp(tok[k], tok[a], tok_len[a]) == 0 &&
                memcmp(tok[k] + tok_len[a], tok[b], tok_len[b]) == 0)
                id = k;
        if (id < 0) {
            id = n_tok++;
            tok_len[id] = nl;
            tok[id] = malloc(nl);
            if (!tok[id]) {
                st = rlaif_fail(RLAIF_ENOMEM, "out of memory");
                goto done;
            }
            memcpy(tok[id], tok[a], tok_len[a]);
            memcpy(tok[id] + tok_len[a], tok[b], tok_len[b]);
        }
        merges[n_merges][0] = a;
        merges[n_merges][1] = b;
        n_merges++;
        for (size_t w = 0; w < t.n_words; w++) { /* apply left to right, as encoding does */
            word *wd = &t.words[w];
            uint32_t r = 0, k = 0;
            while (k < wd->len) {
                if (k + 1 < wd->len && wd->sym[k] == a && wd->sym[k + 1] == b) {
                    wd->sym[r++] = id;
                    k += 2;
                } else {
                    wd->sym[r++] = wd->sym[k++];
                }
            }
            wd->len = r;
        }
    }

    /* ---- write tokenizer.json ---- */
    char out_gate[RLAIF_PATH_MAX];
    if ((st = rlaif_path_gate(&out_path, out_gate, RLAIF_PATH_WRITE, "tokenizer.train")) != RLAIF_OK) goto done;
    f = fopen(out_path, "wb");
    if (!f) {
        st = rlaif_fail(RLAIF_EIO, "cannot write %s", out_path);
        goto done;
    }
    int32_t first_special = n_tok;
    fputs("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [", f);
    for (size_t i = 0; i < n_special; i++) {
        fprintf(f, "%s\n    {\"id\": %d, \"content\": ", i ? "," : "", (int)(first_special + (int32_t)i));
        put_json_bytes(f, (const uint8_t *)o->special[i], strlen(o->special[i]));
        fputs(", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
              "\"special\": true}", f);
    }
    fputs(n_special ? "\n  ],\n" : "],\n", f);
    fputs("  \"normalizer\": null,\n  \"pre_tokenizer\": ", f);
    if (stage.kind == PRETOK_GPT2) {
        fputs("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}", f);
    } else {
        fputs("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": ", f);
        put_json_bytes(f, (const uint8_t *)regex, strlen(regex));
        fputs("}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", "
              "\"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]}", f);
    }
    fputs(",\n  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": "
          "false, \"use_regex\": false},\n", f);
    fputs("  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, "
          "\"use_regex\": false},\n", f);
    fputs("  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
          "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
          "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n"
          "    \"vocab\": {", f);
    for (int32_t id = 0; id < first_special; id++) {
        fputs(id ? ",\n      " : "\n      ", f);
        put_bytelevel(f, tok[id], tok_len[id]);
        fprintf(f, ": %d", (int)id);
    }
    fputs("\n    },\n    \"merges\": [", f);
    for (int32_t m = 0; m < n_merges; m++) {
        fputs(m ? ",\n      [" : "\n      [", f);
        put_bytelevel(f, tok[merges[m][0]], tok_len[merges[m][0]]);
        fputs(", ", f);
        put_bytelevel(f, tok[merges[m][1]], tok_len[merges[m][1]]);
        fputc(']', f);
    }
    fputs(n_merges ? "\n    ]\n  }\n}\n" : "]\n  }\n}\n", f);
    if (ferror(f)) st = rlaif_fail(RLAIF_EIO, "cannot write %s", out_path);
done:
    if (f && fclose(f) && !st) st = rlaif_fail(RLAIF_EIO, "cannot write %s", out_path);
    if (stage.code) bpe_pretok_code_free(stage.code);
    for (size_t w = 0; w < t.n_words; w++) {
        free(t.words[w].sym);
        free(t.wbytes[w]);
    }
    free(t.words);
    free(t.wbytes);
    free(t.slot);
    free(t.slot_hash);
    if (tok)
        for (int32_t i = 0; i < 256 + max_merges; i++) free(tok[i]);
    free(tok);
    free(tok_len);
    free(merges);
    free(pc);
    return st;
}
