/* src/core/llm_build.c -- the normalized request (llm.h) into each backend's
 * URL and JSON body.
 *
 * `logprobs = K` means "the top K alternatives at every position" everywhere:
 * chat gets logprobs:true + top_logprobs:K, legacy completions logprobs:K,
 * llama.cpp n_probs:K, Ollama logprobs:true + top_logprobs:K, TGI details +
 * top_n_tokens:K, Gemini responseLogprobs + logprobs:K; Anthropic has none,
 * which is a capability error rather than a silently missing field. Unknown
 * request fields are rejected (typos would otherwise vanish); server-specific
 * fields go in `extra`, merged into the body last.
 * Not here: headers and keys (llm_client.c), transport.
 * Ownership: the request is borrowed; the wire strings are new allocations. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"

/* ---- names ---- */

static const char *const api_names[RLAIF_LLM_NAPIS] = {
    "openai-chat", "openai-completions", "vllm", "llamacpp", "ollama", "tgi", "gemini", "anthropic",
};
static const char *const fmt_names[RLAIF_LLM_NFORMATS] = {
    "openai-chat", "openai-completions", "llamacpp", "ollama", "tgi", "gemini", "anthropic",
};

const char *rlaif_llm_api_name(rlaif_llm_api api) {
    return (unsigned)api < RLAIF_LLM_NAPIS ? api_names[api] : NULL;
}

const char *rlaif_llm_format_name(rlaif_llm_format f) {
    return (unsigned)f < RLAIF_LLM_NFORMATS ? fmt_names[f] : NULL;
}

rlaif_status rlaif_llm_api_parse(const char *name, rlaif_llm_api *out) {
    for (int i = 0; i < RLAIF_LLM_NAPIS; i++)
        if (name && !strcmp(name, api_names[i])) return *out = (rlaif_llm_api)i, RLAIF_OK;
    return rlaif_fail(RLAIF_EINVAL,
                      "llm: unknown api '%s' (openai-chat, openai-completions, vllm, llamacpp, ollama, tgi, "
                      "gemini, anthropic)",
                      name ? name : "(null)");
}

rlaif_status rlaif_llm_format_parse(const char *name, rlaif_llm_format *out) {
    for (int i = 0; i < RLAIF_LLM_NFORMATS; i++)
        if (name && !strcmp(name, fmt_names[i])) return *out = (rlaif_llm_format)i, RLAIF_OK;
    return rlaif_fail(RLAIF_EINVAL, "llm: unknown format '%s'", name ? name : "(null)");
}

void rlaif_llm_wire_clear(rlaif_llm_wire *w) {
    free(w->url);
    free(w->body);
    free(w->model);
    memset(w, 0, sizeof *w);
}

/* ---- helpers ---- */

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* Copy req[k] (a number) into dst[name]. */
static void num(cJSON *dst, const char *name, const cJSON *req, const char *k) {
    const cJSON *v = get(req, k);
    if (cJSON_IsNumber(v)) cJSON_AddNumberToObject(dst, name, v->valuedouble);
}

/* req.stop as an array (a single string is wrapped). */
static void stop_array(cJSON *dst, const char *name, const cJSON *req) {
    const cJSON *s = get(req, "stop");
    if (cJSON_IsString(s)) {
        cJSON *a = cJSON_AddArrayToObject(dst, name);
        cJSON_AddItemToArray(a, cJSON_CreateString(s->valuestring));
    } else if (cJSON_IsArray(s)) {
        cJSON_AddItemToObject(dst, name, cJSON_Duplicate(s, 1));
    }
}

static void copy(cJSON *dst, const char *name, const cJSON *req, const char *k) {
    const cJSON *v = get(req, k);
    if (v != NULL && !cJSON_IsNull(v)) cJSON_AddItemToObject(dst, name, cJSON_Duplicate(v, 1));
}

/* Merge src into dst: objects merge recursively, anything else replaces. */
static void merge_into(cJSON *dst, const cJSON *src) {
    const cJSON *v;
    cJSON_ArrayForEach(v, src) {
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(dst, v->string);
        if (cJSON_IsObject(cur) && cJSON_IsObject(v)) {
            merge_into(cur, v);
        } else if (cur != NULL) {
            cJSON_ReplaceItemInObjectCaseSensitive(dst, v->string, cJSON_Duplicate(v, 1));
        } else {
            cJSON_AddItemToObject(dst, v->string, cJSON_Duplicate(v, 1));
        }
    }
}

static char *join_url(const char *base, const char *path) {
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/') bl--;
    size_t n = bl + strlen(path) + 1;
    char *u = malloc(n);
    if (u) snprintf(u, n, "%.*s%s", (int)bl, base, path);
    return u;
}

/* messages for chat endpoints: the request's own, or [{role=user, content=prompt}] */
static cJSON *messages_of(const cJSON *req) {
    const cJSON *m = get(req, "messages");
    if (cJSON_IsArray(m)) return cJSON_Duplicate(m, 1);
    cJSON *arr = cJSON_CreateArray();
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "role", "user");
    cJSON_AddStringToObject(u, "content", cJSON_GetStringValue(get(req, "prompt")));
    cJSON_AddItemToArray(arr, u);
    return arr;
}

static const char *const known_fields[] = {
    "prompt", "messages", "max_tokens", "temperature", "top_p", "top_k", "n", "seed", "stop",
    "logprobs", "logit_bias", "stream", "model", "sample", "extra", NULL,
};

static rlaif_status validate(const cJSON *req) {
    if (!cJSON_IsObject(req)) return rlaif_fail(RLAIF_EINVAL, "llm: a request must be a table");
    const cJSON *v;
    cJSON_ArrayForEach(v, req) {
        int ok = 0;
        for (const char *const *k = known_fields; *k && !ok; k++) ok = !strcmp(v->string, *k);
        if (!ok)
            return rlaif_fail(RLAIF_EINVAL, "llm: unknown request field '%s' (server-specific fields go in extra)",
                              v->string);
    }
    const cJSON *p = get(req, "prompt"), *m = get(req, "messages");
    if (cJSON_IsString(p) == cJSON_IsArray(m))
        return rlaif_fail(RLAIF_EINVAL, "llm: a request needs exactly one of prompt (string) or messages (list)");
    const cJSON *lp = get(req, "logprobs");
    if (lp && !cJSON_IsNull(lp) && (!cJSON_IsNumber(lp) || lp->valuedouble < 0))
        return rlaif_fail(RLAIF_EINVAL, "llm: logprobs must be a non-negative integer (top-K alternatives)");
    const cJSON *ex = get(req, "extra");
    if (ex && !cJSON_IsObject(ex)) return rlaif_fail(RLAIF_EINVAL, "llm: extra must be a table");
    return RLAIF_OK;
}

static rlaif_status unsupported(rlaif_llm_api api, const char *what) {
    return rlaif_fail(RLAIF_EINVAL, "llm: %s does not support %s", rlaif_llm_api_name(api), what);
}

/* ---- per backend ---- */

static void openai_common(cJSON *b, const cJSON *req, int chat, int top_k, int stream, int usage_opt) {
    num(b, chat ? "max_tokens" : "max_tokens", req, "max_tokens");
    num(b, "temperature", req, "temperature");
    num(b, "top_p", req, "top_p");
    if (top_k) num(b, "top_k", req, "top_k");
    num(b, "n", req, "n");
    num(b, "seed", req, "seed");
    copy(b, "stop", req, "stop");
    copy(b, "logit_bias", req, "logit_bias");
    const cJSON *lp = get(req, "logprobs");
    if (cJSON_IsNumber(lp)) {
        if (chat) {
            cJSON_AddTrueToObject(b, "logprobs");
            cJSON_AddNumberToObject(b, "top_logprobs", lp->valuedouble);
        } else {
            cJSON_AddNumberToObject(b, "logprobs", lp->valuedouble);
        }
    }
    if (stream) {
        cJSON_AddTrueToObject(b, "stream");
        if (usage_opt) cJSON_AddTrueToObject(cJSON_AddObjectToObject(b, "stream_options"), "include_usage");
    }
}

rlaif_status rlaif_llm_build(rlaif_llm_api api, const char *base_url, const char *model, const cJSON *req,
                             rlaif_llm_wire *out) {
    memset(out, 0, sizeof *out);
    out->sample = -1;
    rlaif_status st = validate(req);
    if (st != RLAIF_OK) return st;
    if (base_url == NULL || *base_url == '\0') return rlaif_fail(RLAIF_EINVAL, "llm: base_url is empty");
    const char *m = cJSON_GetStringValue(get(req, "model"));
    if (m == NULL) m = model;
    const int has_msgs = cJSON_IsArray(get(req, "messages"));
    const int stream = cJSON_IsTrue(get(req, "stream"));
    const cJSON *lp = get(req, "logprobs");
    const int want_lp = cJSON_IsNumber(lp);
    const cJSON *n = get(req, "n");
    const int multi = cJSON_IsNumber(n) && n->valuedouble > 1;
    const int bias = get(req, "logit_bias") != NULL && !cJSON_IsNull(get(req, "logit_bias"));
    const char *prompt = cJSON_GetStringValue(get(req, "prompt"));
    const char *path = NULL;
    char *url = NULL;
    cJSON *b = cJSON_CreateObject();
    if (b == NULL) return rlaif_fail(RLAIF_ENOMEM, "llm: out of memory");

    int needs_model = api != RLAIF_LLM_LLAMACPP && api != RLAIF_LLM_TGI;
    if (needs_model && (m == NULL || *m == '\0')) {
        st = rlaif_fail(RLAIF_EINVAL, "llm: %s needs a model name", rlaif_llm_api_name(api));
        goto fail;
    }
    switch (api) {
    case RLAIF_LLM_OPENAI_CHAT:
    case RLAIF_LLM_OPENAI_COMPLETIONS:
    case RLAIF_LLM_VLLM: {
        int chat = api == RLAIF_LLM_OPENAI_CHAT || (api == RLAIF_LLM_VLLM && has_msgs);
        if (!chat && has_msgs) {
            st = rlaif_fail(RLAIF_EINVAL, "llm: openai-completions takes a prompt, not messages");
            goto fail;
        }
        if (api != RLAIF_LLM_VLLM && get(req, "top_k")) {
            st = rlaif_fail(RLAIF_EINVAL, "llm: %s does not support top_k (put it in extra if your server does)",
                            rlaif_llm_api_name(api));
            goto fail;
        }
        cJSON_AddStringToObject(b, "model", m);
        if (chat) cJSON_AddItemToObject(b, "messages", messages_of(req));
        else cJSON_AddStringToObject(b, "prompt", prompt);
        openai_common(b, req, chat, api == RLAIF_LLM_VLLM, stream, 1);
        out->format = chat ? RLAIF_LLM_FMT_OPENAI_CHAT : RLAIF_LLM_FMT_OPENAI_COMPLETIONS;
        path = chat ? "/chat/completions" : "/completions";
        break;
    }
    case RLAIF_LLM_LLAMACPP:
    case RLAIF_LLM_TGI:
        if (has_msgs) {   /* their OpenAI-compatible chat endpoint */
            if (m) cJSON_AddStringToObject(b, "model", m);
            else cJSON_AddStringToObject(b, "model", "default");
            cJSON_AddItemToObject(b, "messages", messages_of(req));
            openai_common(b, req, 1, api == RLAIF_LLM_LLAMACPP, stream, 0);
            if (api == RLAIF_LLM_TGI) num(b, "top_k", req, "top_k");
            out->format = RLAIF_LLM_FMT_OPENAI_CHAT;
            path = "/v1/chat/completions";
            break;
        }
        if (multi) {
            st = unsupported(api, "n > 1 on its native endpoint (send n requests)");
            goto fail;
        }
        if (api == RLAIF_LLM_LLAMACPP) {
            cJSON_AddStringToObject(b, "prompt", prompt);
            num(b, "n_predict", req, "max_tokens");
            num(b, "temperature", req, "temperature");
            num(b, "top_k", req, "top_k");
            num(b, "top_p", req, "top_p");
            num(b, "seed", req, "seed");
            stop_array(b, "stop", req);
            if (want_lp) cJSON_AddNumberToObject(b, "n_probs", lp->valuedouble);
            copy(b, "logit_bias", req, "logit_bias");
            if (stream) cJSON_AddTrueToObject(b, "stream");
            out->format = RLAIF_LLM_FMT_LLAMACPP;
            path = "/completion";
        } else {
            if (bias) {
                st = unsupported(api, "logit_bias");
                goto fail;
            }
            cJSON_AddStringToObject(b, "inputs", prompt);
            cJSON *p = cJSON_AddObjectToObject(b, "parameters");
            num(p, "max_new_tokens", req, "max_tokens");
            cJSON_AddTrueToObject(p, "details");
            if (want_lp && lp->valuedouble > 0) cJSON_AddNumberToObject(p, "top_n_tokens", lp->valuedouble);
            const cJSON *t = get(req, "temperature");
            if (cJSON_IsNumber(t)) {
                if (t->valuedouble > 0) {   /* TGI rejects temperature 0: greedy is do_sample=false */
                    cJSON_AddTrueToObject(p, "do_sample");
                    cJSON_AddNumberToObject(p, "temperature", t->valuedouble);
                } else {
                    cJSON_AddFalseToObject(p, "do_sample");
                }
            }
            num(p, "top_k", req, "top_k");
            const cJSON *tp = get(req, "top_p");   /* TGI rejects top_p == 1.0 */
            if (cJSON_IsNumber(tp) && tp->valuedouble < 1.0) cJSON_AddNumberToObject(p, "top_p", tp->valuedouble);
            num(p, "seed", req, "seed");
            stop_array(p, "stop", req);
            cJSON_AddFalseToObject(p, "return_full_text");
            out->format = RLAIF_LLM_FMT_TGI;
            path = stream ? "/generate_stream" : "/generate";
        }
        break;
    case RLAIF_LLM_OLLAMA: {
        if (multi) {
            st = unsupported(api, "n > 1 (send n requests with distinct seeds)");
            goto fail;
        }
        if (bias) {
            st = unsupported(api, "logit_bias");
            goto fail;
        }
        cJSON_AddStringToObject(b, "model", m);
        if (has_msgs) cJSON_AddItemToObject(b, "messages", messages_of(req));
        else cJSON_AddStringToObject(b, "prompt", prompt);
        cJSON_AddBoolToObject(b, "stream", stream);
        if (want_lp) {
            cJSON_AddTrueToObject(b, "logprobs");
            cJSON_AddNumberToObject(b, "top_logprobs", lp->valuedouble);
        }
        cJSON *o = cJSON_AddObjectToObject(b, "options");
        num(o, "temperature", req, "temperature");
        num(o, "top_k", req, "top_k");
        num(o, "top_p", req, "top_p");
        num(o, "seed", req, "seed");
        num(o, "num_predict", req, "max_tokens");
        stop_array(o, "stop", req);
        out->format = RLAIF_LLM_FMT_OLLAMA;
        path = has_msgs ? "/api/chat" : "/api/generate";
        break;
    }
    case RLAIF_LLM_GEMINI: {
        if (bias) {
            st = unsupported(api, "logit_bias");
            goto fail;
        }
        cJSON *contents = cJSON_AddArrayToObject(b, "contents");
        cJSON *sys = NULL;
        cJSON *msgs = messages_of(req);
        const cJSON *mm;
        cJSON_ArrayForEach(mm, msgs) {
            const char *role = cJSON_GetStringValue(get(mm, "role"));
            const char *content = cJSON_GetStringValue(get(mm, "content"));
            if (content == NULL) {
                cJSON_Delete(msgs);
                st = rlaif_fail(RLAIF_EINVAL, "llm: gemini messages need string content");
                goto fail;
            }
            cJSON *part = cJSON_CreateObject();
            cJSON_AddStringToObject(part, "text", content);
            if (role && !strcmp(role, "system")) {
                if (sys == NULL) sys = cJSON_CreateArray();
                cJSON_AddItemToArray(sys, part);
                continue;
            }
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "role", role && !strcmp(role, "assistant") ? "model" : "user");
            cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "parts"), part);
            cJSON_AddItemToArray(contents, c);
        }
        cJSON_Delete(msgs);
        if (sys) cJSON_AddItemToObject(cJSON_AddObjectToObject(b, "systemInstruction"), "parts", sys);
        cJSON *g = cJSON_AddObjectToObject(b, "generationConfig");
        num(g, "maxOutputTokens", req, "max_tokens");
        num(g, "temperature", req, "temperature");
        num(g, "topP", req, "top_p");
        num(g, "topK", req, "top_k");
        num(g, "candidateCount", req, "n");
        num(g, "seed", req, "seed");
        stop_array(g, "stopSequences", req);
        if (want_lp) {
            cJSON_AddTrueToObject(g, "responseLogprobs");
            cJSON_AddNumberToObject(g, "logprobs", lp->valuedouble);
        }
        out->format = RLAIF_LLM_FMT_GEMINI;
        size_t k = strlen(m) + 64;
        char *pth = malloc(k);
        if (pth == NULL) {
            st = rlaif_fail(RLAIF_ENOMEM, "llm: out of memory");
            goto fail;
        }
        snprintf(pth, k, "/%s%s:%s", strncmp(m, "models/", 7) ? "models/" : "", m,
                 stream ? "streamGenerateContent?alt=sse" : "generateContent");
        url = join_url(base_url, pth);
        free(pth);
        break;
    }
    case RLAIF_LLM_ANTHROPIC: {
        if (want_lp) {
            st = unsupported(api, "log-probabilities (text only; sample and parse instead)");
            goto fail;
        }
        if (multi) {
            st = unsupported(api, "n > 1 (send n requests)");
            goto fail;
        }
        if (bias || get(req, "seed")) {
            st = unsupported(api, bias ? "logit_bias" : "seed");
            goto fail;
        }
        cJSON_AddStringToObject(b, "model", m);
        const cJSON *mt = get(req, "max_tokens");
        cJSON_AddNumberToObject(b, "max_tokens", cJSON_IsNumber(mt) ? mt->valuedouble : 1024);
        cJSON *msgs = messages_of(req), *keep = cJSON_CreateArray();
        char *system = NULL;
        size_t slen = 0;
        while (msgs->child) {
            cJSON *mm = cJSON_DetachItemViaPointer(msgs, msgs->child);
            const char *role = cJSON_GetStringValue(get(mm, "role"));
            const char *content = cJSON_GetStringValue(get(mm, "content"));
            if (role && !strcmp(role, "system") && content) {
                size_t cl = strlen(content);
                char *s2 = realloc(system, slen + cl + 3);
                if (s2) {
                    if (slen) memcpy(s2 + slen, "\n\n", 2), slen += 2;
                    memcpy(s2 + slen, content, cl + 1);
                    slen += cl;
                    system = s2;
                }
                cJSON_Delete(mm);
            } else {
                cJSON_AddItemToArray(keep, mm);
            }
        }
        cJSON_Delete(msgs);
        if (system) cJSON_AddStringToObject(b, "system", system);
        free(system);
        cJSON_AddItemToObject(b, "messages", keep);
        num(b, "temperature", req, "temperature");
        num(b, "top_p", req, "top_p");
        num(b, "top_k", req, "top_k");
        stop_array(b, "stop_sequences", req);
        if (stream) cJSON_AddTrueToObject(b, "stream");
        out->format = RLAIF_LLM_FMT_ANTHROPIC;
        path = "/v1/messages";
        break;
    }
    default:
        st = rlaif_fail(RLAIF_EINVAL, "llm: unknown api %d", (int)api);
        goto fail;
    }
    const cJSON *extra = get(req, "extra");
    if (cJSON_IsObject(extra)) merge_into(b, extra);
    if (url == NULL) url = join_url(base_url, path);
    out->url = url;
    out->body = cJSON_PrintUnformatted(b);
    out->model = m ? strdup(m) : strdup("");
    out->stream = stream;
    const cJSON *t = get(req, "temperature");
    out->sampled = !cJSON_IsNumber(t) || t->valuedouble > 0;
    const cJSON *smp = get(req, "sample");
    if (cJSON_IsNumber(smp) && smp->valuedouble >= 0) {
        if (!(smp->valuedouble <= INT_MAX) || smp->valuedouble != (double)(int)smp->valuedouble) {
            cJSON_Delete(b);   /* never cast 1e40 or 2.5 into an int */
            rlaif_llm_wire_clear(out);
            return rlaif_fail(RLAIF_EINVAL, "llm: sample %g is not an integer in [0, 2^31)", smp->valuedouble);
        }
        out->sample = (int)smp->valuedouble;
    }
    cJSON_Delete(b);
    if (out->url == NULL || out->body == NULL || out->model == NULL) {
        rlaif_llm_wire_clear(out);
        return rlaif_fail(RLAIF_ENOMEM, "llm: out of memory");
    }
    out->body_len = strlen(out->body);
    return RLAIF_OK;
fail:
    free(url);
    cJSON_Delete(b);
    return st;
}
