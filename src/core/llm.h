/* src/core/llm.h -- LLM client core: request building per backend, response and
 * stream parsing into one normalized shape, SSE/NDJSON framing, the SQLite
 * response cache and the batch client with accounting.
 *
 * What it is not: no Lua (src/lua/l_llm.c binds it), no prompt formatting, no
 * label logic. Requests and responses are cJSON trees so that the binding can
 * move them to and from Lua tables generically.
 *
 * The normalized request (a cJSON object, borrowed by every function here):
 *   {prompt = "..." | messages = [{role, content}], max_tokens, temperature, top_p,
 *    top_k, n, seed, stop = "s" | ["s", ...], logprobs = K (top-K alternatives at
 *    each position), logit_bias = {id = bias}, stream = bool, model = "override",
 *    sample = k (cache sample index), extra = {merged into the body last}}
 *
 * The normalized response (a new cJSON object owned by the caller):
 *   {id, model, usage = {prompt_tokens, completion_tokens},
 *    choices = [{index, text, finish_reason ("stop"|"length"|... or absent),
 *                tokens = [{token, bytes (string), logprob, id?, top = [{token, logprob}]}]}]}
 *   `top` is sorted by logprob, highest first. Logprob sentinels (-9999.0 from
 *   OpenAI/vLLM, -1.2676506e30 from Gemini) become -INFINITY; a JSON null
 *   logprob (echo of the first prompt token) leaves `logprob` absent. */
#ifndef RLAIF_LLM_H
#define RLAIF_LLM_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "rlaif.h"

/* ---- backends and wire formats ---- */

typedef enum rlaif_llm_api {
    RLAIF_LLM_OPENAI_CHAT,          /* /chat/completions */
    RLAIF_LLM_OPENAI_COMPLETIONS,   /* /completions (legacy) */
    RLAIF_LLM_VLLM,                 /* OpenAI shapes: chat for messages, completions for prompt */
    RLAIF_LLM_LLAMACPP,             /* native /completion for prompt, /v1/chat/completions for messages */
    RLAIF_LLM_OLLAMA,               /* /api/generate for prompt, /api/chat for messages */
    RLAIF_LLM_TGI,                  /* /generate for prompt, /v1/chat/completions for messages */
    RLAIF_LLM_GEMINI,               /* models/{model}:generateContent */
    RLAIF_LLM_ANTHROPIC,            /* /v1/messages (no logprobs) */
    RLAIF_LLM_NAPIS
} rlaif_llm_api;

/* Response formats, one parser each. */
typedef enum rlaif_llm_format {
    RLAIF_LLM_FMT_OPENAI_CHAT,
    RLAIF_LLM_FMT_OPENAI_COMPLETIONS,
    RLAIF_LLM_FMT_LLAMACPP,
    RLAIF_LLM_FMT_OLLAMA,
    RLAIF_LLM_FMT_TGI,
    RLAIF_LLM_FMT_GEMINI,
    RLAIF_LLM_FMT_ANTHROPIC,
    RLAIF_LLM_NFORMATS
} rlaif_llm_format;

/* Names as used in Lua ("openai-chat", ...). Static strings; NULL when out of range. */
const char  *rlaif_llm_api_name(rlaif_llm_api api);
const char  *rlaif_llm_format_name(rlaif_llm_format fmt);
rlaif_status rlaif_llm_api_parse(const char *name, rlaif_llm_api *out);
rlaif_status rlaif_llm_format_parse(const char *name, rlaif_llm_format *out);

/* ---- request building (llm_build.c) ---- */

/* What goes on the wire for one request. All strings owned; free with
 * rlaif_llm_wire_clear. The body is canonical (fixed key order; Lua-side
 * objects arrive with sorted keys), so it doubles as the cache key input. */
typedef struct rlaif_llm_wire {
    char *url;
    char *body;
    size_t body_len;
    char *model;               /* effective model name */
    rlaif_llm_format format;   /* parser to use on the answer */
    int stream;                /* SSE (or NDJSON for Ollama) expected */
    int sampled;               /* temperature absent or > 0: cache key carries a sample index */
    int sample;                /* explicit `sample` from the request, -1 when absent */
} rlaif_llm_wire;

/* Build the wire request for `req` (borrowed). base_url has no trailing slash
 * requirement. Fails with RLAIF_EINVAL for requests the backend cannot serve
 * (e.g. logprobs on anthropic, n > 1 on ollama): a "capability" error. */
rlaif_status rlaif_llm_build(rlaif_llm_api api, const char *base_url, const char *model,
                             const cJSON *req, rlaif_llm_wire *out);
void         rlaif_llm_wire_clear(rlaif_llm_wire *w);

/* ---- SSE (WHATWG event-stream) and NDJSON framing (llm_sse.c) ---- */

/* Called for each dispatched event: `event` is the event type ("message" by
 * default; "error" for the non-standard `error:` field old llama.cpp sends),
 * data is NUL-terminated (multi-line data joined with '\n'). Return nonzero to stop. */
typedef int (*rlaif_sse_cb)(void *ud, const char *event, const char *data, size_t len);

typedef struct rlaif_sse {
    rlaif_sse_cb cb;
    void *ud;
    char *line, *data;
    size_t line_len, line_cap, data_len, data_cap;
    char event[64];
    int has_data;      /* a data field was seen since the last dispatch */
    int last_cr;       /* the previous chunk ended in '\r' (a "\r\n" may straddle chunks) */
    int started;       /* the BOM check is done */
    int bom_len;       /* bytes of a BOM seen so far */
    int stopped;       /* the callback asked to stop */
    size_t events;     /* events dispatched */
} rlaif_sse;

void rlaif_sse_init(rlaif_sse *s, rlaif_sse_cb cb, void *ud);
/* Feed bytes in any chunking; returns nonzero when the callback stopped or on OOM. */
int  rlaif_sse_feed(rlaif_sse *s, const char *p, size_t n);
/* End of stream: a last line without newline and a pending event are dispatched. */
int  rlaif_sse_finish(rlaif_sse *s);
void rlaif_sse_free(rlaif_sse *s);

/* Split NDJSON into lines (empty lines skipped; CR before LF dropped) and call cb
 * with event "message" per line. Returns nonzero when cb stopped. */
int  rlaif_ndjson_each(const char *p, size_t n, rlaif_sse_cb cb, void *ud);

/* ---- response parsing (llm_parse.c) ---- */

/* A failure reported by the server, in an error body or inside a 200 stream. */
typedef struct rlaif_llm_error {
    int status;          /* HTTP status, or the integer code found in a 200 stream, or 0 */
    int retryable;       /* worth another attempt */
    int capability;      /* the model/server cannot do this (e.g. logprobs refused) */
    int quota;           /* quota or spend limit exhausted (a 429 that is not retried) */
    double retry_after;  /* seconds from the body (Gemini RetryInfo), < 0 when absent */
    char message[400];   /* the server's message (never contains the API key) */
} rlaif_llm_error;

/* Parse a complete 2xx body (stream = SSE, or NDJSON for Ollama).
 * RLAIF_OK: *out is a new normalized response.
 * RLAIF_EFORMAT: truncated/unexpected/ended-early body (retryable; message in rlaif_last_error).
 * RLAIF_EIO: the body carries a server error (err filled; e.g. a mid-stream error).
 * RLAIF_EINVAL: a complete OpenAI-style answer with no choices (not worth a retry). */
rlaif_status rlaif_llm_parse(rlaif_llm_format fmt, int stream, const char *body, size_t len,
                             cJSON **out, rlaif_llm_error *err);

/* Understand a non-2xx answer: message, retryable (408/409/424/429/5xx/529 unless the
 * body says quota/spend limit), capability (400/403 about logprobs, Gemini "not enabled"). */
void rlaif_llm_error_from_body(int status, const char *body, size_t len, rlaif_llm_error *err);

/* Replace every occurrence of `secret` in s (NUL-terminated, in place) by "***". */
void rlaif_llm_scrub(char *s, const char *secret);

/* ---- cache (llm_cache.c) ---- */

typedef struct rlaif_llm_cache rlaif_llm_cache;

/* Open (create) an SQLite cache in WAL mode, safe for several processes. */
rlaif_status rlaif_llm_cache_open(rlaif_llm_cache **out, const char *path);
void         rlaif_llm_cache_close(rlaif_llm_cache *c);   /* NULL-safe */
/* Look up `key`: RLAIF_OK with *found = 1 and a new malloc'd raw body in *raw
 * (caller frees), or *found = 0. */
rlaif_status rlaif_llm_cache_get(rlaif_llm_cache *c, const char *key, int *found, char **raw,
                                 size_t *raw_len, int *format, int *stream);
/* Store raw response + parsed result under key (first writer wins). Borrows all. */
rlaif_status rlaif_llm_cache_put(rlaif_llm_cache *c, const char *key, const char *model, int format,
                                 int stream, const char *request, const char *raw, size_t raw_len,
                                 const char *parsed);

/* SHA-256 of data as 64 lowercase hex chars + NUL. */
void rlaif_sha256_hex(const void *data, size_t len, char out[65]);

/* The cache key of a wire request: sha256 over format, url, body and (when
 * sampled) the sample index. Never includes headers, so never the API key. */
void rlaif_llm_cache_key(const rlaif_llm_wire *w, int sample, char out[65]);

/* ---- client (llm_client.c) ---- */

typedef struct rlaif_llm_config {
    rlaif_llm_api api;
    const char *base_url;          /* required */
    const char *model;             /* default model */
    const char *api_key;           /* may be NULL (local servers); never logged or cached */
    const char *const *headers;    /* extra "Name: value" lines, NULL-terminated, or NULL */
    const char *cache_path;        /* SQLite file, or NULL for no cache */
    rlaif_http_opts http;
} rlaif_llm_config;

typedef struct rlaif_llm_client rlaif_llm_client;

/* A finished request: index into the batch and its result (a normalized
 * response with "ok": true, or {"ok": false, kind, status, message, attempts}).
 * The result already sits in results[index], which belongs to the caller of
 * rlaif_llm_client_run; the core never reads a delivered result again, so a
 * callback that has converted it may empty it (cJSON_Delete(r->child);
 * r->child = NULL) to free a long batch's memory early. Return nonzero to
 * abort the batch. */
typedef int (*rlaif_llm_result_cb)(void *ud, int index, const cJSON *result);
/* Called at most every `interval` seconds while a batch runs. Return nonzero to abort. */
typedef int (*rlaif_llm_progress_cb)(void *ud, int done, int total, int errors);

rlaif_status rlaif_llm_client_new(rlaif_llm_client **out, const rlaif_llm_config *cfg);
void         rlaif_llm_client_free(rlaif_llm_client *c);   /* NULL-safe */

/* Run n requests (borrowed) concurrently. results[i] receives a new cJSON
 * object for every i (owned by the caller), also when the batch is cancelled
 * (kind "cancelled"). Returns RLAIF_EINTR when cancelled/aborted; RLAIF_EIO
 * when the batch stopped early on a failure no retry heals (HTTP 401, 403 not
 * about a capability, a server that cannot be reached: rlaif_last_error() says
 * which; the requests not sent are kind "cancelled"); else RLAIF_OK (individual
 * failures are results, not a status). */
rlaif_status rlaif_llm_client_run(rlaif_llm_client *c, const cJSON *const *reqs, int n,
                                  cJSON **results, rlaif_llm_result_cb on_result,
                                  rlaif_llm_progress_cb on_progress, double interval, void *ud);

/* Accounting since creation (or the last reset), as a new cJSON object:
 * {requests, attempts, retries, cache_hits, ok, errors = {kind = n}, in_flight_max,
 *  concurrency, models = {name = {requests, prompt_tokens, completion_tokens}},
 *  latency = {n, mean, p50, p90, p99, max}} */
cJSON *rlaif_llm_client_stats(const rlaif_llm_client *c);
void   rlaif_llm_client_reset_stats(rlaif_llm_client *c);
void   rlaif_llm_client_set_concurrency(rlaif_llm_client *c, int n);

#endif
