/* rlaif/llm.h -- the LLM client with requests and results as JSON strings:
 * OpenAI chat and completions, vLLM, llama.cpp, Ollama, TGI, Gemini and
 * Anthropic, concurrent batches, retries with backoff, an SQLite response
 * cache, and log-probabilities normalized to one shape on every backend.
 *
 * Configuration (a JSON object; unknown keys are an error naming the key):
 *   {"api": "openai-chat" | "openai-completions" | "vllm" | "llamacpp" |
 *           "ollama" | "tgi" | "gemini" | "anthropic",
 *    "base_url": "http://127.0.0.1:8000/v1"  (required: the OpenAI-style .../v1
 *                for the OpenAI APIs and vLLM, .../v1beta for Gemini, the
 *                server root otherwise),
 *    "model": "name", "api_key": "..." or "api_key_env": "OPENAI_API_KEY",
 *    "headers": {"Name": "value"}, "cache": "responses.sqlite",
 *    "ca_file": "ca.pem", "concurrency": 64, "max_retries": 5, "timeout": 600,
 *    "connect_timeout": 10, "stall_timeout": 60, "backoff_base": 0.5,
 *    "backoff_cap": 8, "retry_after_cap": 120, "aimd": true}
 * The key goes only into a request header: never into the cache, a result or
 * a message. TLS is always verified.
 *
 * A request: {"prompt": "..." | "messages": [{"role", "content"}], "max_tokens",
 *   "temperature", "top_p", "top_k", "n", "seed", "stop", "logprobs": K,
 *   "logit_bias", "stream", "extra": {server-specific fields}, "sample": k}.
 * A result: {"ok": true, "text", "choices": [{"text", "finish_reason", "tokens":
 *   [{"token", "bytes", "logprob", "top": [{"token", "logprob"}, ...]}]}],
 *   "usage", "latency", "attempts", "cached", ...} -- or a failure, never an
 *   empty answer: {"ok": false, "kind": "http" | "transport" | "parse" |
 *   "capability" | "cancelled" | "invalid", "status", "message", "attempts"}.
 *   The servers' "minus infinity" log-probabilities (-9999, -1.27e30) have no
 *   JSON spelling: they appear as null.
 *
 * Ownership: rlaif_llm_open returns a NEW client, freed with
 * rlaif_llm_client_free; result strings are freed with rlaif_free. A client
 * serves one thread at a time. */
#ifndef RLAIF_LLM_API_H
#define RLAIF_LLM_API_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlaif_llm_client rlaif_llm_client;

/* A client from a JSON configuration (above). */
rlaif_status rlaif_llm_open(rlaif_llm_client **out, const char *config_json);
void         rlaif_llm_client_free(rlaif_llm_client *c);   /* NULL-safe */

/* One request. *result_json (NEW) receives the result, success or failure.
 * Returns RLAIF_OK when the result has "ok": true, RLAIF_EIO when the request
 * failed (the result says why), RLAIF_EINTR when cancelled, RLAIF_EINVAL when
 * request_json is not a JSON object (then *result_json is NULL). */
rlaif_status rlaif_llm_complete(rlaif_llm_client *c, const char *request_json, char **result_json);

/* A JSON array of requests, run concurrently. *results_json (NEW) is the
 * array of their results in input order. Individual failures are results,
 * not a status: RLAIF_OK unless the batch was cancelled (RLAIF_EINTR; the
 * requests that did not finish have "kind": "cancelled") or the input is not
 * an array of objects (RLAIF_EINVAL). */
rlaif_status rlaif_llm_complete_batch(rlaif_llm_client *c, const char *requests_json, char **results_json);

/* Accounting since the client was opened, as a NEW JSON object: {requests,
 * attempts, retries, cache_hits, ok, errors = {kind = n}, models = {...},
 * latency = {n, mean, p50, p90, p99, max}, ...}. */
rlaif_status rlaif_llm_stats(const rlaif_llm_client *c, char **stats_json);

#ifdef __cplusplus
}
#endif

#endif
