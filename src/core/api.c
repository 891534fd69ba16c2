/* src/core/api.c -- the public C API's own functions: thin wrappers where the
 * internal core is not the shape the API promises (include/rlaif/).
 *
 * What it is: version and feature queries, rlaif_free, tensor accessors (the
 * tensor struct is opaque in the API), model conveniences that run a forward
 * and copy the answer out (logits, log-probabilities, rewards, the
 * configuration as JSON), and the LLM client with requests and results as
 * JSON strings. Every other public function is the core's own, declared in
 * both the public and the internal headers (the compiler checks they agree).
 * What it is not: new behaviour -- each wrapper validates, calls the core and
 * converts; the Lua binding (src/lua) and this file sit side by side on the
 * same core. Ownership follows the public headers: strings handed out are
 * malloc'd (cJSON's default allocator) and freed with rlaif_free. */
#include "rlaif.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"
#include "model.h"
#include "tensor.h"

/* The public declarations, so the compiler checks these definitions against them. */
#include <rlaif/common.h>
#include <rlaif/llm.h>
#include <rlaif/model.h>
#include <rlaif/tensor.h>
#include <rlaif/tokenizer.h>

/* ---- version, features, memory ---- */

const char *rlaif_version(void) { return RLAIF_VERSION; }
int rlaif_version_number(void) { return RLAIF_VERSION_NUMBER; }

static const char features[] = "tensor tokenizer llm llm-cache model generate reward lua sandbox blis openmp";

const char *rlaif_features(void) { return features; }

int rlaif_has_feature(const char *name) {
    if (name == NULL || *name == '\0') return 0;
    size_t n = strlen(name);
    for (const char *p = features; (p = strstr(p, name)) != NULL; p += n)
        if ((p == features || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
    return 0;
}

void rlaif_free(void *p) { free(p); }

/* ---- tensors ---- */

rlaif_status rlaif_tensor_from_data(rlaif_tensor **out, int ndim, const int64_t *shape, const float *data) {
    *out = NULL;
    rlaif_tensor *t = NULL;
    rlaif_status st = rlaif_tensor_empty(&t, ndim, shape);
    if (st != RLAIF_OK) return st;
    int64_t n = rlaif_tensor_numel(t);
    if (n > 0 && data == NULL) {
        rlaif_tensor_release(t);
        return rlaif_fail(RLAIF_EINVAL, "tensor.from_data: NULL data for %lld elements", (long long)n);
    }
    if (n > 0) memcpy(t->data, data, (size_t)n * sizeof(float));
    *out = t;
    return RLAIF_OK;
}

int rlaif_tensor_ndim(const rlaif_tensor *t) { return t->ndim; }

int64_t rlaif_tensor_size(const rlaif_tensor *t, int dim) {
    return dim >= 0 && dim < t->ndim ? t->shape[dim] : 0;
}

int64_t rlaif_tensor_stride(const rlaif_tensor *t, int dim) {
    return dim >= 0 && dim < t->ndim ? t->stride[dim] : 0;
}

float *rlaif_tensor_data(rlaif_tensor *t) { return t->data; }

rlaif_status rlaif_tensor_to_data(const rlaif_tensor *t, float *dst, size_t n) {
    int64_t numel = rlaif_tensor_numel(t);
    if ((uint64_t)numel > n)
        return rlaif_fail(RLAIF_EINVAL, "tensor.to_data: room for %zu floats, the tensor has %lld", n,
                          (long long)numel);
    int64_t idx[RLAIF_MAX_DIMS] = {0};
    for (int64_t k = 0; k < numel; k++) {   /* row-major walk over any strides */
        dst[k] = rlaif_tensor_get(t, idx);
        for (int d = t->ndim - 1; d >= 0 && ++idx[d] == t->shape[d]; d--) idx[d] = 0;
    }
    return RLAIF_OK;
}

/* ---- models ---- */

static const char *arch_name(const rlaif_model *m) { return m->cfg.arch == RLAIF_ARCH_GPT2 ? "gpt2" : "llama"; }

rlaif_status rlaif_model_info(const rlaif_model *m, char **json) {
    *json = NULL;
    const rlaif_model_config *c = &m->cfg;
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    ok = ok && cJSON_AddStringToObject(o, "arch", arch_name(m));
    ok = ok && cJSON_AddStringToObject(o, "model_type", c->model_type[0] ? c->model_type : arch_name(m));
    struct { const char *k; double v; } nums[] = {
        {"vocab_size", c->vocab_size}, {"n_layer", c->n_layer}, {"n_head", c->n_head},
        {"n_kv_head", c->n_kv_head}, {"d_model", c->d_model}, {"d_ff", c->d_ff},
        {"head_dim", c->head_dim}, {"max_seq", c->max_seq}, {"bos_id", c->bos_id},
        {"eos_id", c->eos_id}, {"pad_id", c->pad_id}, {"num_params", (double)m->num_params},
    };
    for (size_t i = 0; ok && i < sizeof nums / sizeof nums[0]; i++)
        ok = cJSON_AddNumberToObject(o, nums[i].k, nums[i].v) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "head", c->head == RLAIF_HEAD_REWARD ? "reward" : "lm");
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (s == NULL) return rlaif_fail(RLAIF_ENOMEM, "model.info: out of memory");
    *json = s;
    return RLAIF_OK;
}

int rlaif_model_vocab_size(const rlaif_model *m) { return m->cfg.vocab_size; }
int rlaif_model_eos_id(const rlaif_model *m) { return m->cfg.eos_id; }

static rlaif_status check_batch(const char *op, const rlaif_model *m, const int32_t *ids, int B, int T, int min_T) {
    if (m == NULL || ids == NULL) return rlaif_fail(RLAIF_EINVAL, "%s: NULL model or ids", op);
    if (B <= 0 || T < min_T) return rlaif_fail(RLAIF_EINVAL, "%s: B=%d, T=%d (need B >= 1, T >= %d)", op, B, T, min_T);
    return RLAIF_OK;
}

rlaif_status rlaif_model_logits(rlaif_model *m, const int32_t *ids, const int32_t *mask, int B, int T,
                                rlaif_tensor **out) {
    *out = NULL;
    rlaif_status st = check_batch("model.logits", m, ids, B, T, 1);
    if (st != RLAIF_OK) return st;
    if (m->cfg.head != RLAIF_HEAD_LM) return rlaif_fail(RLAIF_EINVAL, "model.logits: a reward model has no logits");
    if ((st = rlaif_model_forward(m, ids, mask, B, T, 1)) != RLAIF_OK) return st;
    int64_t shape[3] = {B, T, m->cfg.vocab_size};
    return rlaif_tensor_from_data(out, 3, shape, m->acts.logits);
}

rlaif_status rlaif_model_logprobs(rlaif_model *m, const int32_t *ids, const int32_t *mask, int B, int T,
                                  float *out) {
    rlaif_status st = check_batch("model.logprobs", m, ids, B, T, 2);
    if (st != RLAIF_OK) return st;
    size_t n = (size_t)B * T;
    int32_t *tg = malloc(n * sizeof *tg);
    float *lp = malloc(n * sizeof *lp);
    if (tg == NULL || lp == NULL) {
        st = rlaif_fail(RLAIF_ENOMEM, "model.logprobs: out of memory");
        goto done;
    }
    /* the target of position t is the next token, when that one is real */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)b * T + t;
            tg[k] = (t + 1 < T && (mask == NULL || mask[k + 1])) ? ids[k + 1] : -1;
        }
    if ((st = rlaif_model_forward(m, ids, mask, B, T, 1)) != RLAIF_OK) goto done;
    if ((st = rlaif_model_token_logprobs(m, tg, lp)) != RLAIF_OK) goto done;
    for (int b = 0; b < B; b++) memcpy(out + (size_t)b * (T - 1), lp + (size_t)b * T, sizeof(float) * (T - 1));
done:
    free(tg);
    free(lp);
    return st;
}

rlaif_status rlaif_model_rewards(rlaif_model *m, const int32_t *ids, const int32_t *mask, int B, int T,
                                 float *out) {
    rlaif_status st = check_batch("model.rewards", m, ids, B, T, 1);
    if (st != RLAIF_OK) return st;
    if (m->cfg.head != RLAIF_HEAD_REWARD)
        return rlaif_fail(RLAIF_EINVAL, "model.rewards: the model has no reward head (load it with RLAIF_HEAD_REWARD)");
    if ((st = rlaif_model_forward(m, ids, mask, B, T, 0)) != RLAIF_OK) return st;
    return rlaif_model_reward(m, out);
}

/* ---- the LLM client over JSON strings ---- */

static const char *const config_keys[] = {
    "api", "base_url", "model", "api_key", "api_key_env", "headers", "cache", "ca_file", "concurrency",
    "max_retries", "timeout", "connect_timeout", "stall_timeout", "backoff_base", "backoff_cap",
    "retry_after_cap", "aimd", NULL,
};

/* The string field k of o, or NULL; RLAIF_EINVAL when present but not a string. */
static rlaif_status str_field(const cJSON *o, const char *k, const char **out) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    *out = NULL;
    if (x == NULL || cJSON_IsNull(x)) return RLAIF_OK;
    if (!cJSON_IsString(x)) return rlaif_fail(RLAIF_EINVAL, "llm.open: '%s' must be a string", k);
    *out = x->valuestring;
    return RLAIF_OK;
}

static rlaif_status num_field(const cJSON *o, const char *k, double lo, double hi, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (x == NULL || cJSON_IsNull(x)) return RLAIF_OK;
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= lo && x->valuedouble <= hi))
        return rlaif_fail(RLAIF_EINVAL, "llm.open: '%s' must be a number in [%g, %g]", k, lo, hi);
    *v = x->valuedouble;
    return RLAIF_OK;
}

rlaif_status rlaif_llm_open(rlaif_llm_client **out, const char *config_json) {
    *out = NULL;
    if (config_json == NULL) return rlaif_fail(RLAIF_EINVAL, "llm.open: NULL configuration");
    cJSON *o = cJSON_Parse(config_json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return rlaif_fail(RLAIF_EINVAL, "llm.open: the configuration is not a JSON object");
    }
    rlaif_status st = RLAIF_OK;
    char **headers = NULL;
    rlaif_llm_config cfg;
    memset(&cfg, 0, sizeof cfg);
    rlaif_http_opts_default(&cfg.http);
    for (const cJSON *x = o->child; x; x = x->next) {
        int known = 0;
        for (const char *const *k = config_keys; *k && !known; k++) known = strcmp(*k, x->string) == 0;
        if (!known) {
            st = rlaif_fail(RLAIF_EINVAL, "llm.open: unknown option '%.60s'", x->string);
            goto done;
        }
    }
    const char *api = NULL, *key_env = NULL;
    if ((st = str_field(o, "api", &api)) || (st = str_field(o, "base_url", &cfg.base_url)) ||
        (st = str_field(o, "model", &cfg.model)) || (st = str_field(o, "api_key", &cfg.api_key)) ||
        (st = str_field(o, "api_key_env", &key_env)) || (st = str_field(o, "cache", &cfg.cache_path)) ||
        (st = str_field(o, "ca_file", &cfg.http.ca_file)))
        goto done;
    if (rlaif_llm_api_parse(api ? api : "openai-chat", &cfg.api) != RLAIF_OK) {
        st = rlaif_fail(RLAIF_EINVAL, "llm.open: unknown api '%.40s'", api);
        goto done;
    }
    if (cfg.api_key == NULL && key_env != NULL) cfg.api_key = getenv(key_env);
    double conc = cfg.http.concurrency, retries = cfg.http.max_retries, aimd = cfg.http.aimd;
    if ((st = num_field(o, "concurrency", 1, 65536, &conc)) || (st = num_field(o, "max_retries", 0, 100, &retries)) ||
        (st = num_field(o, "timeout", 0, 1e6, &cfg.http.timeout)) ||
        (st = num_field(o, "connect_timeout", 0, 1e6, &cfg.http.connect_timeout)) ||
        (st = num_field(o, "stall_timeout", 0, 1e6, &cfg.http.stall_timeout)) ||
        (st = num_field(o, "backoff_base", 0, 1e6, &cfg.http.backoff_base)) ||
        (st = num_field(o, "backoff_cap", 0, 1e6, &cfg.http.backoff_cap)) ||
        (st = num_field(o, "retry_after_cap", 0, 1e6, &cfg.http.retry_after_cap)))
        goto done;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "aimd");
    if (a != NULL && !cJSON_IsNull(a)) {
        if (!cJSON_IsBool(a)) {
            st = rlaif_fail(RLAIF_EINVAL, "llm.open: 'aimd' must be true or false");
            goto done;
        }
        aimd = cJSON_IsTrue(a);
    }
    cfg.http.concurrency = (int)conc;
    cfg.http.max_retries = (int)retries;
    cfg.http.aimd = (int)aimd;
    /* headers: {"Name": "value"} or ["Name: value"] */
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "headers");
    if (h != NULL && !cJSON_IsNull(h)) {
        int n = cJSON_GetArraySize(h);
        if ((!cJSON_IsObject(h) && !cJSON_IsArray(h)) || n > 64) {
            st = rlaif_fail(RLAIF_EINVAL, "llm.open: 'headers' must be an object or an array of at most 64 headers");
            goto done;
        }
        headers = calloc((size_t)n + 1, sizeof *headers);
        if (headers == NULL) goto nomem;
        int i = 0;
        for (const cJSON *x = h->child; x; x = x->next, i++) {
            if (!cJSON_IsString(x)) {
                st = rlaif_fail(RLAIF_EINVAL, "llm.open: header values must be strings");
                goto done;
            }
            size_t len = strlen(x->valuestring) + (x->string ? strlen(x->string) + 2 : 0) + 1;
            if ((headers[i] = malloc(len)) == NULL) goto nomem;
            if (cJSON_IsObject(h)) snprintf(headers[i], len, "%s: %s", x->string, x->valuestring);
            else snprintf(headers[i], len, "%s", x->valuestring);
        }
        cfg.headers = (const char *const *)headers;
    }
    st = rlaif_llm_client_new(out, &cfg);
    goto done;
nomem:
    st = rlaif_fail(RLAIF_ENOMEM, "llm.open: out of memory");
done:
    for (char **p = headers; p && *p; p++) free(*p);
    free(headers);
    cJSON_Delete(o);
    return st;
}

/* Run n parsed requests; results[i] are new objects. */
static rlaif_status run_requests(rlaif_llm_client *c, const cJSON *const *reqs, int n, cJSON **results) {
    return rlaif_llm_client_run(c, reqs, n, results, NULL, NULL, 0, NULL);
}

rlaif_status rlaif_llm_complete(rlaif_llm_client *c, const char *request_json, char **result_json) {
    *result_json = NULL;
    cJSON *req = request_json ? cJSON_Parse(request_json) : NULL;
    if (!cJSON_IsObject(req)) {
        cJSON_Delete(req);
        return rlaif_fail(RLAIF_EINVAL, "llm.complete: the request is not a JSON object");
    }
    cJSON *res = NULL;
    const cJSON *reqs[1] = {req};
    rlaif_status st = run_requests(c, reqs, 1, &res);
    cJSON_Delete(req);
    char *s = res ? cJSON_PrintUnformatted(res) : NULL;
    int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "ok"));
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(res, "message");
    if (st == RLAIF_OK && !ok)
        st = rlaif_fail(RLAIF_EIO, "llm.complete: %s", cJSON_IsString(msg) ? msg->valuestring : "request failed");
    cJSON_Delete(res);
    if (s == NULL) return rlaif_fail(RLAIF_ENOMEM, "llm.complete: out of memory");
    *result_json = s;
    return st;
}

rlaif_status rlaif_llm_complete_batch(rlaif_llm_client *c, const char *requests_json, char **results_json) {
    *results_json = NULL;
    cJSON *arr = requests_json ? cJSON_Parse(requests_json) : NULL;
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    const cJSON **reqs = n > 0 ? calloc((size_t)n, sizeof *reqs) : NULL;
    cJSON **results = n > 0 ? calloc((size_t)n, sizeof *results) : NULL;
    cJSON *out = cJSON_CreateArray();
    rlaif_status st = RLAIF_OK;
    int i = 0;
    if (n < 0) {
        st = rlaif_fail(RLAIF_EINVAL, "llm.complete_batch: the requests are not a JSON array");
        goto done;
    }
    if (out == NULL || (n > 0 && (reqs == NULL || results == NULL))) {
        st = rlaif_fail(RLAIF_ENOMEM, "llm.complete_batch: out of memory");
        goto done;
    }
    for (const cJSON *x = arr->child; x; x = x->next, i++) {
        if (!cJSON_IsObject(x)) {
            st = rlaif_fail(RLAIF_EINVAL, "llm.complete_batch: request %d is not a JSON object", i + 1);
            goto done;
        }
        reqs[i] = x;
    }
    if (n > 0) st = run_requests(c, reqs, n, results);
    for (i = 0; i < n; i++) {   /* the array takes ownership of every result */
        cJSON_AddItemToArray(out, results[i]);
        results[i] = NULL;
    }
    char *s = cJSON_PrintUnformatted(out);
    if (s == NULL) {
        st = rlaif_fail(RLAIF_ENOMEM, "llm.complete_batch: out of memory");
        goto done;
    }
    *results_json = s;
done:
    for (i = 0; results && i < n; i++) cJSON_Delete(results[i]);
    free(results);
    free(reqs);
    cJSON_Delete(out);
    cJSON_Delete(arr);
    return st;
}

rlaif_status rlaif_llm_stats(const rlaif_llm_client *c, char **stats_json) {
    *stats_json = NULL;
    cJSON *s = rlaif_llm_client_stats(c);
    char *text = s ? cJSON_PrintUnformatted(s) : NULL;
    cJSON_Delete(s);
    if (text == NULL) return rlaif_fail(RLAIF_ENOMEM, "llm.stats: out of memory");
    *stats_json = text;
    return RLAIF_OK;
}
