/* tests/embed/test_api.c -- the public core API (the headers in include/rlaif) as a C
 * program without Lua sees it, compiled against the public headers only and
 * linked with the ASan+UBSan librlaif.so.
 *
 * References are independent: the tokenizer against the Hugging Face
 * tokenizers goldens (tests/fixtures/tokenizer, scripts/gen_tokenizer_goldens.mjs),
 * models against PyTorch (tests/fixtures/model, scripts/gen_model_fixtures.py):
 * logits, rewards, and log-probabilities and greedy generation derived here
 * from PyTorch's logits. Errors must name the operation and the bad value. */
#include <rlaif.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define FIX "tests/fixtures/"

/* ---- version, features, errors ---- */

static void test_common(void) {
    CHECK(strcmp(rlaif_version(), RLAIF_VERSION) == 0);
    CHECK(RLAIF_VERSION_NUMBER == RLAIF_VERSION_MAJOR * 10000 + RLAIF_VERSION_MINOR * 100 + RLAIF_VERSION_PATCH);
    CHECK(rlaif_has_feature("tokenizer") && rlaif_has_feature("lua") && !rlaif_has_feature("gpu"));
    CHECK(strstr(rlaif_features(), "model") != NULL);
    CHECK(strcmp(rlaif_status_name(RLAIF_EBUDGET), "instruction budget exceeded") == 0);
    CHECK(strcmp(rlaif_status_name(RLAIF_EACCES), "not allowed") == 0);
    rlaif_free(NULL);
    rlaif_set_threads(2);
    CHECK(rlaif_get_threads() == 2);   /* set before anything else ran: it sticks */
    CHECK(*rlaif_blas_arch() != '\0' && *rlaif_blas_version() != '\0');
    double t = rlaif_clock();
    CHECK(rlaif_clock() >= t);
}

/* ---- tensors ---- */

static void test_tensors(void) {
    rlaif_tensor *a = NULL, *b = NULL, *c = NULL, *v = NULL, *s = NULL;
    int64_t sa[2] = {2, 3}, sb[2] = {3, 2};
    float da[6] = {1, 2, 3, 4, 5, 6}, db[6] = {7, 8, 9, 10, 11, 12};
    CHECK_OK(rlaif_tensor_from_data(&a, 2, sa, da));
    CHECK_OK(rlaif_tensor_from_data(&b, 2, sb, db));
    CHECK(rlaif_tensor_ndim(a) == 2 && rlaif_tensor_size(a, 1) == 3 && rlaif_tensor_size(a, 2) == 0);
    CHECK(rlaif_tensor_stride(a, 0) == 3 && rlaif_tensor_stride(a, 1) == 1 && rlaif_tensor_numel(a) == 6);
    CHECK_OK(rlaif_tensor_matmul(&c, a, b));   /* [[58, 64], [139, 154]] */
    float out[4];
    CHECK_OK(rlaif_tensor_to_data(c, out, 4));
    CHECK(out[0] == 58 && out[1] == 64 && out[2] == 139 && out[3] == 154);
    CHECK_FAIL(rlaif_tensor_matmul(&v, a, a), RLAIF_EINVAL, "[2,3]");
    /* a transposed view: strides swap, data shared, to_data walks it row-major */
    CHECK_OK(rlaif_tensor_transpose(&v, a, 0, 1));
    CHECK(!rlaif_tensor_is_contiguous(v) && rlaif_tensor_data(v) == rlaif_tensor_data(a));
    float tv[6];
    CHECK_OK(rlaif_tensor_to_data(v, tv, 6));
    CHECK(tv[0] == 1 && tv[1] == 4 && tv[2] == 2 && tv[5] == 6);
    CHECK(rlaif_tensor_get(v, (int64_t[]){2, 1}) == 6);
    CHECK_FAIL(rlaif_tensor_to_data(v, tv, 5), RLAIF_EINVAL, "room for 5 floats");
    rlaif_tensor_release(v);
    CHECK_OK(rlaif_tensor_select(&v, a, 0, 1));   /* row 1: 4 5 6 */
    CHECK(rlaif_tensor_ndim(v) == 1 && rlaif_tensor_get(v, (int64_t[]){2}) == 6);
    CHECK_OK(rlaif_tensor_narrow(&s, v, 0, 1, 2));   /* 5 6 */
    CHECK_OK(rlaif_tensor_fill(s, -1));
    CHECK(da[4] == 5 && rlaif_tensor_get(a, (int64_t[]){1, 1}) == -1);   /* views write through; inputs copied */
    rlaif_tensor_release(s);
    rlaif_tensor_release(v);
    CHECK_OK(rlaif_tensor_reshape(&v, a, 1, (int64_t[]){-1}));
    CHECK(rlaif_tensor_size(v, 0) == 6);
    rlaif_tensor_release(v);
    /* softmax along the last dim, against the formula */
    float row[3] = {1, 2, 4};
    rlaif_tensor *x = NULL, *p = NULL, *lp = NULL;
    CHECK_OK(rlaif_tensor_from_data(&x, 1, (int64_t[]){3}, row));
    CHECK_OK(rlaif_tensor_softmax(&p, x, 0, 0));
    CHECK_OK(rlaif_tensor_softmax(&lp, x, 0, 1));
    double z = exp(1) + exp(2) + exp(4);
    CHECK_CLOSE(rlaif_tensor_get(p, (int64_t[]){2}), exp(4) / z, 1e-6);
    CHECK_CLOSE(rlaif_tensor_get(lp, (int64_t[]){0}), 1 - log(z), 1e-6);
    /* safetensors round trip, atomically written */
    char path[] = "/tmp/rlaif-api-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    rlaif_named_tensor items[2] = {{"a", a}, {"c", c}};
    CHECK_OK(rlaif_safetensors_save(path, items, 2));
    rlaif_named_tensor *got = NULL;
    int n = 0;
    CHECK_OK(rlaif_safetensors_load(path, &got, &n));
    CHECK(n == 2 && got && strcmp(got[1].name, "c") == 0 && rlaif_tensor_get(got[1].tensor, (int64_t[]){1, 1}) == 154);
    rlaif_safetensors_free(got, n);
    unlink(path);
    CHECK_FAIL(rlaif_safetensors_load("/nonexistent/x.safetensors", &got, &n), RLAIF_EIO, "/nonexistent/x.safetensors");
    CHECK_FAIL(rlaif_tensor_from_data(&v, 1, (int64_t[]){3}, NULL), RLAIF_EINVAL, "NULL data");
    CHECK_FAIL(rlaif_tensor_new(&v, 2, (int64_t[]){2, -1}), RLAIF_EINVAL, "-1");
    rlaif_tensor_release(x), rlaif_tensor_release(p), rlaif_tensor_release(lp);
    rlaif_tensor_release(a), rlaif_tensor_release(b), rlaif_tensor_release(c);
}

/* ---- tokenizer: the Hugging Face goldens ---- */

/* Decode one JSON string literal (the corpus lines) into out; returns its length. */
static size_t json_string(const char *s, char *out) {
    size_t n = 0;
    if (*s++ != '"') return 0;
    while (*s && *s != '"') {
        unsigned c = (unsigned char)*s++;
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        c = (unsigned char)*s++;
        if (c == 'u') {
            unsigned cp = (unsigned)strtoul((char[5]){s[0], s[1], s[2], s[3], 0}, NULL, 16);
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && s[0] == '\\' && s[1] == 'u') {
                unsigned lo = (unsigned)strtoul((char[5]){s[2], s[3], s[4], s[5], 0}, NULL, 16);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
            if (cp < 0x80) out[n++] = (char)cp;
            else if (cp < 0x800) out[n++] = (char)(0xC0 | cp >> 6), out[n++] = (char)(0x80 | (cp & 63));
            else if (cp < 0x10000)
                out[n++] = (char)(0xE0 | cp >> 12), out[n++] = (char)(0x80 | (cp >> 6 & 63)),
                out[n++] = (char)(0x80 | (cp & 63));
            else
                out[n++] = (char)(0xF0 | cp >> 18), out[n++] = (char)(0x80 | (cp >> 12 & 63)),
                out[n++] = (char)(0x80 | (cp >> 6 & 63)), out[n++] = (char)(0x80 | (cp & 63));
        } else {
            out[n++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'b' ? '\b' : c == 'f' ? '\f' : (char)c;
        }
    }
    return n;
}

static void test_tokenizer(void) {
    rlaif_bpe *tok = NULL;
    CHECK_OK(rlaif_bpe_load(&tok, FIX "tokenizer/trained.json", NULL));
    if (tok == NULL) return;
    CHECK(strcmp(rlaif_bpe_kind(tok), "tokenizer.json") == 0 && rlaif_bpe_vocab_size(tok) == 1000);
    FILE *corpus = fopen(FIX "tokenizer/corpus.jsonl", "r"), *golden = fopen(FIX "tokenizer/trained.golden", "r");
    CHECK(corpus && golden);
    if (!corpus || !golden) return;
    static char line[1 << 16], text[1 << 16], gline[1 << 17];
    fgets(gline, sizeof gline, golden);   /* the header */
    /* golden lines: "<count> <id>...", or "-" for a document the reference skipped;
     * specials are recognised (add_special_tokens=false, all specials allowed) */
    rlaif_bpe_encode_opts all = {RLAIF_BPE_ALLOW_ALL_SPECIAL, NULL, 0};
    int docs = 0, matched = 0, roundtrips = 0;
    while (fgets(line, sizeof line, corpus) && fgets(gline, sizeof gline, golden)) {
        if (gline[0] == '-') continue;
        size_t len = json_string(line, text);
        rlaif_bpe_ids ids = {0};
        CHECK_OK(rlaif_bpe_encode(tok, text, len, &all, &ids));
        char *p = gline;
        long want = strtol(p, &p, 10);
        int same = want == (long)ids.n;
        for (long k = 0; same && k < want; k++) same = ids.ids[k] == (int32_t)strtol(p, &p, 10);
        matched += same;
        size_t count = 0;
        CHECK_OK(rlaif_bpe_count(tok, text, len, &all, &count));
        CHECK(count == ids.n);
        char *back = NULL;
        size_t blen = 0;
        CHECK_OK(rlaif_bpe_decode(tok, ids.ids, ids.n, &back, &blen));
        roundtrips += back && blen == len && memcmp(back, text, len) == 0;
        rlaif_free(back);
        rlaif_bpe_ids_free(&ids);
        docs++;
    }
    fclose(corpus);
    fclose(golden);
    printf("tokenizer: %d/%d documents match the Hugging Face ids, %d round-trip\n", matched, docs, roundtrips);
    CHECK(docs > 150 && matched == docs);
    CHECK(roundtrips >= docs - 2);   /* invalid UTF-8 in the corpus comes back as U+FFFD */
    /* lookups, specials, batch */
    size_t tl = 0;
    int32_t eot = rlaif_bpe_id(tok, "<|endoftext|>", 13);
    CHECK(eot >= 0 && rlaif_bpe_is_special(tok, eot));
    const char *tt = rlaif_bpe_token(tok, eot, &tl);
    CHECK(tt && tl == 13 && memcmp(tt, "<|endoftext|>", 13) == 0);
    rlaif_bpe_ids one = {0}, allowed = {0};
    CHECK_OK(rlaif_bpe_encode(tok, "<|endoftext|>", 13, NULL, &one));
    rlaif_bpe_encode_opts opts = {RLAIF_BPE_ALLOW_ALL_SPECIAL, NULL, 0};
    CHECK_OK(rlaif_bpe_encode(tok, "<|endoftext|>", 13, &opts, &allowed));
    CHECK(one.n > 1 && allowed.n == 1 && allowed.ids[0] == eot);
    rlaif_bpe_ids_free(&one), rlaif_bpe_ids_free(&allowed);
    const char *texts[3] = {"a b c", "hello", "x"};
    size_t lens[3] = {5, 5, 1};
    rlaif_bpe_ids outs[3] = {{0}, {0}, {0}}, single = {0};
    CHECK_OK(rlaif_bpe_encode_batch(tok, 3, texts, lens, NULL, outs, 2));
    CHECK_OK(rlaif_bpe_encode(tok, "hello", 5, NULL, &single));
    CHECK(outs[1].n == single.n && memcmp(outs[1].ids, single.ids, single.n * sizeof(int32_t)) == 0);
    for (int i = 0; i < 3; i++) rlaif_bpe_ids_free(&outs[i]);
    rlaif_bpe_ids_free(&single);
    char *back = NULL;
    size_t blen;
    CHECK_FAIL(rlaif_bpe_decode(tok, (int32_t[]){5, 123456}, 2, &back, &blen), RLAIF_EINVAL, "123456");
    rlaif_bpe_free(tok);
    tok = NULL;
    CHECK_FAIL(rlaif_bpe_load(&tok, "/nonexistent/tok.json", NULL), RLAIF_EIO, "/nonexistent/tok.json");
    CHECK_FAIL(rlaif_bpe_load_hf_buffer(&tok, "{\"model\": {\"type\": \"Unigram\"}}", 31, "inline"), RLAIF_EFORMAT,
               "inline");
}

/* ---- models: PyTorch goldens ---- */

typedef struct { rlaif_named_tensor *items; int n; } golden;

static rlaif_tensor *gget(const golden *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->items[i].name, name) == 0) return g->items[i].tensor;
    fprintf(stderr, "golden tensor %s missing\n", name);
    exit(2);
}

static void ints(rlaif_tensor *t, int32_t *out) {
    float f[256];
    rlaif_tensor_to_data(t, f, 256);
    for (int64_t i = 0; i < rlaif_tensor_numel(t); i++) out[i] = (int32_t)f[i];
}

static void test_models(void) {
    golden g = {0};
    rlaif_model *m = NULL;
    CHECK_OK(rlaif_safetensors_load(FIX "model/gpt2/golden.safetensors", &g.items, &g.n));
    CHECK_OK(rlaif_model_load(&m, FIX "model/gpt2", RLAIF_HEAD_LM));
    if (m == NULL || g.items == NULL) return;
    int32_t ids[21], mask[21];
    ints(gget(&g, "ids"), ids);
    ints(gget(&g, "mask"), mask);
    const int B = 3, T = 7, V = rlaif_model_vocab_size(m);
    CHECK(V == 61 && rlaif_model_eos_id(m) == 60);
    char *info = NULL;
    CHECK_OK(rlaif_model_info(m, &info));
    CHECK(info && strstr(info, "\"arch\":\"gpt2\"") && strstr(info, "\"vocab_size\":61") && strstr(info, "\"head\":\"lm\""));
    rlaif_free(info);

    /* logits against PyTorch */
    rlaif_tensor *logits = NULL;
    CHECK_OK(rlaif_model_logits(m, ids, mask, B, T, &logits));
    static float mine[3 * 7 * 61], ref[3 * 7 * 61];
    CHECK(logits && rlaif_tensor_size(logits, 2) == V);
    CHECK_OK(rlaif_tensor_to_data(logits, mine, sizeof mine / sizeof mine[0]));
    CHECK_OK(rlaif_tensor_to_data(gget(&g, "logits"), ref, sizeof ref / sizeof ref[0]));
    double maxd = 0;
    for (int i = 0; i < B * T * V; i++)
        if (mask[i / V]) maxd = fmax(maxd, fabs(mine[i] - ref[i]) / (1 + fabs(ref[i])));
    printf("model logits vs PyTorch: max rel diff %.2g\n", maxd);
    CHECK(maxd < 1e-4);

    /* log-probabilities = log_softmax of PyTorch's logits at the next real token */
    float lp[3 * 6];
    CHECK_OK(rlaif_model_logprobs(m, ids, mask, B, T, lp));
    maxd = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t + 1 < T; t++) {
            int k = b * T + t;
            double want = 0;
            if (mask[k + 1] && mask[k]) {
                const float *row = ref + (size_t)k * V;
                double mx = row[0], z = 0;
                for (int j = 1; j < V; j++) mx = fmax(mx, row[j]);
                for (int j = 0; j < V; j++) z += exp(row[j] - mx);
                want = row[ids[k + 1]] - mx - log(z);
            }
            if (mask[k + 1] && !mask[k]) continue;   /* padding before a real token: not compared */
            maxd = fmax(maxd, fabs(lp[b * (T - 1) + t] - want));
        }
    printf("model log-probabilities vs PyTorch: max abs diff %.2g\n", maxd);
    CHECK(maxd < 1e-4);

    /* greedy generation: the first new token is the argmax of PyTorch's last logits */
    int len = 0;
    while (len < T && mask[len]) len++;
    int32_t toks[4];
    float lps[4];
    int outlen = 0;
    rlaif_gen_opts go = {4, 0.0f, 0, 1.0f, NULL, 0, 1};
    CHECK_OK(rlaif_model_generate(m, ids, &len, 1, &go, toks, lps, &outlen));
    const float *last = ref + (size_t)(len - 1) * V;
    int best = 0;
    for (int j = 1; j < V; j++)
        if (last[j] > last[best]) best = j;
    CHECK(outlen == 4 && toks[0] == best);
    CHECK_FAIL(rlaif_model_rewards(m, ids, mask, B, T, lp), RLAIF_EINVAL, "no reward head");
    rlaif_tensor_release(logits);
    CHECK_FAIL(rlaif_model_logits(m, ids, mask, 0, T, &logits), RLAIF_EINVAL, "B=0");
    CHECK_FAIL(rlaif_model_logprobs(m, ids, mask, B, 1, lp), RLAIF_EINVAL, "T=1");
    rlaif_model_free(m);
    rlaif_safetensors_free(g.items, g.n);

    /* the reward head against PyTorch */
    g.items = NULL;
    CHECK_OK(rlaif_safetensors_load(FIX "model/gpt2_reward/golden.safetensors", &g.items, &g.n));
    CHECK_OK(rlaif_model_load(&m, FIX "model/gpt2_reward", RLAIF_HEAD_REWARD));
    if (m == NULL || g.items == NULL) return;
    ints(gget(&g, "ids"), ids);
    ints(gget(&g, "mask"), mask);
    float r[3], want[3];
    CHECK_OK(rlaif_model_rewards(m, ids, mask, 3, 7, r));
    CHECK_OK(rlaif_tensor_to_data(gget(&g, "reward"), want, 3));
    for (int i = 0; i < 3; i++) CHECK_CLOSE(r[i], want[i], 1e-4);
    CHECK_FAIL(rlaif_model_logits(m, ids, mask, 3, 7, &logits), RLAIF_EINVAL, "reward model has no logits");
    rlaif_model_free(m);
    rlaif_safetensors_free(g.items, g.n);
    m = NULL;
    CHECK_FAIL(rlaif_model_load(&m, "/nonexistent/model", RLAIF_HEAD_LM), RLAIF_EIO, "/nonexistent/model");
}

/* ---- the LLM client over JSON: everything that needs no server ---- */

static void test_llm(void) {
    rlaif_llm_client *c = NULL;
    CHECK_FAIL(rlaif_llm_open(&c, "{\"api\": \"openai-chat\""), RLAIF_EINVAL, "not a JSON object");
    CHECK_FAIL(rlaif_llm_open(&c, "{\"api\": \"openai-chat\", \"base_url\": \"http://x/v1\", \"temprature\": 1}"),
               RLAIF_EINVAL, "unknown option 'temprature'");
    CHECK_FAIL(rlaif_llm_open(&c, "{\"api\": \"gpt\", \"base_url\": \"http://x/v1\"}"), RLAIF_EINVAL,
               "unknown api 'gpt'");
    CHECK_FAIL(rlaif_llm_open(&c, "{\"api\": \"vllm\"}"), RLAIF_EINVAL, "base_url is required");
    CHECK_FAIL(rlaif_llm_open(&c, "{\"base_url\": \"file:///etc/passwd\"}"), RLAIF_EINVAL, "http:// or https://");
    CHECK_FAIL(rlaif_llm_open(&c, "{\"base_url\": \"http://x/v1\", \"concurrency\": 0}"), RLAIF_EINVAL,
               "'concurrency' must be a number in [1, 65536]");
    CHECK_FAIL(rlaif_llm_open(&c, "{\"base_url\": \"http://x/v1\", \"headers\": {\"X-A\": 1}}"), RLAIF_EINVAL,
               "header values must be strings");
    CHECK(c == NULL);
    /* a port nobody listens on: the failure is a result, never an empty answer */
    CHECK_OK(rlaif_llm_open(&c, "{\"api\": \"openai-completions\", \"base_url\": \"http://127.0.0.1:9/v1\", "
                                "\"model\": \"m\", \"max_retries\": 0, \"connect_timeout\": 2, "
                                "\"headers\": {\"X-Test\": \"1\"}, \"api_key_env\": \"RLAIF_NO_SUCH_KEY\"}"));
    if (c == NULL) return;
    char *res = NULL;
    CHECK_FAIL(rlaif_llm_complete(c, "[1]", &res), RLAIF_EINVAL, "not a JSON object");
    CHECK(res == NULL);
    CHECK(rlaif_llm_complete(c, "{\"prompt\": \"hi\", \"max_tokens\": 1}", &res) == RLAIF_EIO);
    CHECK(res && strstr(res, "\"ok\":false") && strstr(res, "\"kind\":\"transport\""));
    rlaif_free(res);
    CHECK_FAIL(rlaif_llm_complete_batch(c, "{}", &res), RLAIF_EINVAL, "not a JSON array");
    CHECK_FAIL(rlaif_llm_complete_batch(c, "[{\"prompt\": \"a\"}, 3]", &res), RLAIF_EINVAL, "request 2");
    CHECK_OK(rlaif_llm_complete_batch(c, "[]", &res));
    CHECK(res && strcmp(res, "[]") == 0);
    rlaif_free(res);
    CHECK_OK(rlaif_llm_stats(c, &res));
    CHECK(res && strstr(res, "\"requests\":1") && strstr(res, "\"transport\":1"));
    rlaif_free(res);
    rlaif_llm_client_free(c);
}

int main(void) {
    test_common();
    test_tensors();
    test_tokenizer();
    test_models();
    test_llm();
    return check_report("test_api");
}
