/* tests/c/test_llm.c -- the LLM core on in-memory payloads: SSE framing edge
 * cases (every chunking of a stream gives the same events), each backend's
 * parser incl. the quirks of llm-apis.md, error bodies, retry-after and backoff,
 * request building, SHA-256 and the SQLite cache, and the HTTP engine's
 * bookkeeping against a closed loopback port (refused connections, retries,
 * cancel). No network, no server. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "http.h"
#include "llm.h"

/* ---- SSE ---- */

typedef struct { char log[4096]; int n; } events;

static int collect(void *ud, const char *event, const char *data, size_t len) {
    events *e = ud;
    size_t l = strlen(e->log);
    snprintf(e->log + l, sizeof e->log - l, "<%s|%.*s>", event, (int)len, data);
    e->n++;
    return 0;
}

/* Feed `s` in chunks of size k (all k from 1 to len) and check the event log. */
static void check_sse(const char *s, const char *want) {
    size_t len = strlen(s);
    for (size_t k = 1; k <= len; k++) {
        events e = {{0}, 0};
        rlaif_sse p;
        rlaif_sse_init(&p, collect, &e);
        for (size_t i = 0; i < len; i += k) rlaif_sse_feed(&p, s + i, i + k > len ? len - i : k);
        rlaif_sse_finish(&p);
        rlaif_sse_free(&p);
        if (strcmp(e.log, want) != 0) {
            fprintf(stderr, "sse chunk %zu: got %s\n  want %s\n", k, e.log, want);
            CHECK(0);
            return;
        }
    }
    CHECK(1);
}

/* Feed `s` as three chunks cut at every pair of byte offsets i <= j (so every
 * single cut, every two cuts and an empty middle chunk: a '\r' ending one chunk
 * with its '\n' starting the next, or one chunk later) and check the events. */
static void check_sse_splits(const char *s, const char *want) {
    size_t len = strlen(s), bad = 0;
    for (size_t i = 0; i <= len; i++)
        for (size_t j = i; j <= len; j++) {
            events e = {{0}, 0};
            rlaif_sse p;
            rlaif_sse_init(&p, collect, &e);
            rlaif_sse_feed(&p, s, i);
            rlaif_sse_feed(&p, s + i, j - i);
            rlaif_sse_feed(&p, s + j, len - j);
            rlaif_sse_finish(&p);
            rlaif_sse_free(&p);
            if (strcmp(e.log, want) != 0 && bad++ < 2)
                fprintf(stderr, "sse cut at %zu,%zu: got %s\n  want %s\n", i, j, e.log, want);
        }
    CHECK(bad == 0);
}

static void test_sse(void) {
    /* multi-line data with CRLF, CR and LF line ends, cut everywhere */
    check_sse_splits("data: 1\r\ndata: 2\r\ndata: 3\r\n\r\ndata: x\r\n\r\n", "<message|1\n2\n3><message|x>");
    check_sse_splits("data: a\r\ndata: b\n\ndata: c\rdata: d\r\r", "<message|a\nb><message|c\nd>");
    check_sse_splits("event: e\r\n: c\r\ndata: {\"x\":\r\ndata: 1}\r\n\r\n", "<e|{\"x\":\n1}>");
    check_sse_splits("data:\r\ndata\r\ndata: z\r\n\r\ndata: [DONE]\r\n", "<message|\n\nz><message|[DONE]>");
    check_sse("data: 1\r\ndata: 2\r\n\r\n", "<message|1\n2>");
    check_sse("data: a\n\n", "<message|a>");
    check_sse("data:a\n\n", "<message|a>");                       /* no space (TGI) */
    check_sse("data:  a\n\n", "<message| a>");                    /* only one space stripped */
    check_sse("data: a\r\n\r\ndata: b\r\r", "<message|a><message|b>"); /* CRLF and CR */
    check_sse(": ping\n\ndata: x\n\n", "<message|x>");            /* comment, empty event skipped */
    check_sse("data: 1\ndata: 2\n\n", "<message|1\n2>");          /* multi-line data */
    check_sse("event: foo\ndata: y\n\n", "<foo|y>");
    check_sse("id: 7\nretry: 10\nbogus: z\ndata: q\n\n", "<message|q>");
    check_sse("event: x\n\ndata: w\n\n", "<message|w>");          /* event reset without data */
    check_sse("\xEF\xBB\xBF" "data: bom\n\n", "<message|bom>");
    check_sse("data: [DONE]", "<message|[DONE]>");                  /* EOF without blank line */
    check_sse("data\n\n", "<message|>");                            /* field without colon */
    check_sse("error: {\"code\":400}\n\ndata: [DONE]\n\n", "<error|{\"code\":400}><message|[DONE]>");
    check_sse("data: \xEF\xBB\xBF\n\n", "<message|\xEF\xBB\xBF>");  /* BOM only at the start */
}

static int ndj(void *ud, const char *ev, const char *d, size_t n) { return collect(ud, ev, d, n); }

static void test_ndjson(void) {
    events e = {{0}, 0};
    const char *s = "{\"a\":1}\r\n\n  {\"b\":2}\n{\"c\":3}";
    rlaif_ndjson_each(s, strlen(s), ndj, &e);
    CHECK(e.n == 3);
    CHECK(strcmp(e.log, "<message|{\"a\":1}><message|{\"b\":2}><message|{\"c\":3}>") == 0);
}

/* ---- parsing ---- */

static cJSON *parse_ok(rlaif_llm_format f, int stream, const char *body) {
    cJSON *out = NULL;
    rlaif_status st = rlaif_llm_parse(f, stream, body, strlen(body), &out, NULL);
    if (st != RLAIF_OK) fprintf(stderr, "parse failed: %s\n", rlaif_last_error());
    CHECK(st == RLAIF_OK);
    return out;
}

static const cJSON *choice(const cJSON *r, int i) {
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "choices"), i);
}
static const char *ctext(const cJSON *r, int i) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(choice(r, i), "text"));
}
static const cJSON *tok(const cJSON *r, int c, int j) {
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(choice(r, c), "tokens"), j);
}
static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
static const char *str(const cJSON *o, const char *k) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}
static const cJSON *top(const cJSON *t, int j) {
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "top"), j);
}

static void test_openai_chat(void) {
    const char *b =
        "{\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},"
        "\"logprobs\":{\"content\":[{\"token\":\"Hi\",\"logprob\":-0.5,\"bytes\":[72,105],\"top_logprobs\":["
        "{\"token\":\"<|end|>\",\"logprob\":-9999.0,\"bytes\":null},{\"token\":\"Hi\",\"logprob\":-0.5,\"bytes\":[72,105]},"
        "{\"token\":\"Yo\",\"logprob\":-1.5,\"bytes\":[89,111]}]},"
        "{\"token\":\"<|end|>\",\"logprob\":-3,\"bytes\":null,\"top_logprobs\":[]}]},"
        "\"finish_reason\":\"stop\",\"unknown\":{\"x\":1}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,"
        "\"completion_tokens_details\":null}}";
    cJSON *r = parse_ok(RLAIF_LLM_FMT_OPENAI_CHAT, 0, b);
    if (!r) return;
    CHECK(strcmp(ctext(r, 0), "Hi") == 0);
    CHECK(strcmp(str(choice(r, 0), "finish_reason"), "stop") == 0);
    CHECK(num(cJSON_GetObjectItemCaseSensitive(r, "usage"), "prompt_tokens") == 5);
    const cJSON *t = tok(r, 0, 0);
    CHECK(strcmp(str(t, "bytes"), "Hi") == 0);
    CHECK_CLOSE(num(t, "logprob"), -0.5, 1e-12);
    /* top sorted by logprob; -9999 is -inf and comes last */
    CHECK(strcmp(str(top(t, 0), "token"), "Hi") == 0);
    CHECK(strcmp(str(top(t, 1), "token"), "Yo") == 0);
    CHECK(isinf(num(top(t, 2), "logprob")) && num(top(t, 2), "logprob") < 0);
    /* bytes:null -> no bytes field */
    CHECK(cJSON_GetObjectItemCaseSensitive(tok(r, 0, 1), "bytes") == NULL);
    cJSON_Delete(r);
}

static void test_openai_completions(void) {
    /* echo: null first entries; legacy top_logprobs is an object keyed by token */
    const char *b =
        "{\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"logprobs\":{\"text_offset\":[0,5],"
        "\"token_logprobs\":[null,-12.2],\"tokens\":[\"hello\",\" crisp\"],\"top_logprobs\":[null,{\",\":-2.1,"
        "\" crisp\":-12.2,\"bytes:\\\\xe2\\\\x80\":-3}]},\"text\":\"hello crisp\"}],\"model\":\"davinci-002\"}";
    cJSON *r = parse_ok(RLAIF_LLM_FMT_OPENAI_COMPLETIONS, 0, b);
    if (!r) return;
    CHECK(strcmp(ctext(r, 0), "hello crisp") == 0);
    CHECK(cJSON_GetObjectItemCaseSensitive(tok(r, 0, 0), "logprob") == NULL);   /* null stays absent */
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tok(r, 0, 0), "top")) == 0);
    const cJSON *t = tok(r, 0, 1);
    CHECK_CLOSE(num(t, "logprob"), -12.2, 1e-12);
    CHECK(strcmp(str(top(t, 0), "token"), ",") == 0);
    CHECK(strcmp(str(top(t, 1), "token"), "\xe2\x80") == 0);   /* bytes:\xNN decoded */
    CHECK(strcmp(str(top(t, 2), "token"), " crisp") == 0);
    cJSON_Delete(r);

    /* llama.cpp / Ollama /v1/completions: chat-style logprobs inside a completion */
    const char *b2 = "{\"choices\":[{\"text\":\"1\",\"index\":0,\"logprobs\":{\"content\":[{\"id\":16,\"token\":\"1\","
                     "\"logprob\":-0.1,\"bytes\":[49],\"top_logprobs\":[{\"id\":17,\"token\":\"2\",\"logprob\":-2.4}]}]},"
                     "\"finish_reason\":\"length\"}]}";
    r = parse_ok(RLAIF_LLM_FMT_OPENAI_COMPLETIONS, 0, b2);
    if (!r) return;
    CHECK(num(tok(r, 0, 0), "id") == 16);
    CHECK(strcmp(str(top(tok(r, 0, 0), 0), "token"), "2") == 0);
    cJSON_Delete(r);
}

static void test_streams(void) {
    /* n=2 interleaved chat chunks, usage chunk, CRLF, a comment, [DONE] without blank line */
    const char *s =
        "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\r\n\r\n"
        ": keep-alive\r\n\r\n"
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"B\"},\"finish_reason\":\"\"}]}\r\n\r\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"},\"logprobs\":{\"content\":[{\"token\":\"A\","
        "\"logprob\":-0.25,\"bytes\":[65],\"top_logprobs\":[]}]},\"finish_reason\":null}]}\r\n\r\n"
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\r\n\r\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\r\n\r\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3}}\r\n\r\n"
        "data: [DONE]";
    cJSON *r = parse_ok(RLAIF_LLM_FMT_OPENAI_CHAT, 1, s);
    if (!r) return;
    CHECK(strcmp(ctext(r, 0), "A") == 0 && strcmp(ctext(r, 1), "Bb") == 0);
    CHECK(strcmp(str(choice(r, 0), "finish_reason"), "length") == 0);
    CHECK(num(cJSON_GetObjectItemCaseSensitive(r, "usage"), "completion_tokens") == 3);
    CHECK_CLOSE(num(tok(r, 0, 0), "logprob"), -0.25, 1e-12);
    cJSON_Delete(r);

    /* ended early: no [DONE], no finish -> EFORMAT (retryable) */
    cJSON *out = NULL;
    const char *early = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"},\"finish_reason\":null}]}\n\n";
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_OPENAI_CHAT, 1, early, strlen(early), &out, NULL), RLAIF_EFORMAT,
               "ended early");
    /* an error object after HTTP 200 */
    rlaif_llm_error err;
    const char *mid = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n\n"
                      "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"code\":null}}\n\ndata: [DONE]\n\n";
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_OPENAI_CHAT, 1, mid, strlen(mid), &out, &err), RLAIF_EIO, "boom");
    CHECK(err.retryable);
    /* legacy llama.cpp `error:` field with a 400 code: not retryable */
    const char *leg = "error: {\"code\":400,\"message\":\"the request exceeds the available context size\","
                      "\"type\":\"invalid_request_error\"}\n\ndata: [DONE]\n\n";
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_OPENAI_CHAT, 1, leg, strlen(leg), &out, &err), RLAIF_EIO,
               "context size");
    CHECK(err.status == 400 && !err.retryable);
    /* truncated JSON body */
    const char *trunc = "{\"choices\":[{\"index\":0,\"message\":{\"content\":\"Hel";
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_OPENAI_CHAT, 0, trunc, strlen(trunc), &out, NULL), RLAIF_EFORMAT,
               "truncated");
    /* valid JSON but not a chat completion */
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_OPENAI_CHAT, 0, "{\"ok\":1}", 8, &out, NULL), RLAIF_EFORMAT, "choices");
    CHECK(out == NULL);
}

static void test_llamacpp(void) {
    const char *b = "{\"content\":\" to\",\"stop\":true,\"stop_type\":\"limit\",\"tokens_predicted\":1,"
                    "\"completion_probabilities\":[{\"id\":5,\"token\":\" to\",\"bytes\":[32,116,111],\"logprob\":-0.02,"
                    "\"top_logprobs\":[{\"id\":6,\"token\":\" be\",\"logprob\":-4},{\"id\":5,\"token\":\" to\",\"logprob\":-0.02}]}]}";
    cJSON *r = parse_ok(RLAIF_LLM_FMT_LLAMACPP, 0, b);
    if (!r) return;
    CHECK(strcmp(str(choice(r, 0), "finish_reason"), "length") == 0);
    CHECK(strcmp(str(top(tok(r, 0, 0), 0), "token"), " to") == 0);
    cJSON_Delete(r);
    /* the old probabilities format */
    const char *old = "{\"content\":\" to\",\"completion_probabilities\":[{\"content\":\" to\",\"probs\":["
                      "{\"prob\":0.25,\"tok_str\":\" x\"},{\"prob\":0.5,\"tok_str\":\" to\"}]}]}";
    r = parse_ok(RLAIF_LLM_FMT_LLAMACPP, 0, old);
    if (!r) return;
    CHECK_CLOSE(num(tok(r, 0, 0), "logprob"), log(0.5), 1e-12);
    CHECK(strcmp(str(top(tok(r, 0, 0), 0), "token"), " to") == 0);
    CHECK_CLOSE(num(top(tok(r, 0, 0), 1), "logprob"), log(0.25), 1e-12);
    cJSON_Delete(r);
    /* post-sampling probs */
    const char *post = "{\"content\":\"a\",\"completion_probabilities\":[{\"id\":1,\"token\":\"a\",\"prob\":1.0,"
                       "\"top_probs\":[{\"id\":1,\"token\":\"a\",\"prob\":1.0}]}]}";
    r = parse_ok(RLAIF_LLM_FMT_LLAMACPP, 0, post);
    if (r) CHECK(num(tok(r, 0, 0), "logprob") == 0.0);
    cJSON_Delete(r);
    /* stream: stop:true ends it; without it the stream ended early */
    const char *s = "data: {\"content\":\"a\",\"stop\":false}\n\ndata: {\"content\":\"\",\"stop\":true,\"stop_type\":\"eos\"}\n\n";
    r = parse_ok(RLAIF_LLM_FMT_LLAMACPP, 1, s);
    if (r) CHECK(strcmp(str(choice(r, 0), "finish_reason"), "stop") == 0);
    cJSON_Delete(r);
}

static void test_ollama_tgi_gemini_anthropic(void) {
    const char *nd = "{\"model\":\"g\",\"response\":\" Yes\",\"done\":false}\n"
                     "{\"error\":\"an error was encountered while running the model\"}\n";
    cJSON *out = NULL;
    rlaif_llm_error err;
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_OLLAMA, 1, nd, strlen(nd), &out, &err), RLAIF_EIO, "running the model");
    const char *ol = "{\"model\":\"l\",\"response\":\"1\",\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":28,"
                     "\"eval_count\":1,\"logprobs\":[{\"token\":\"1\",\"logprob\":-0.1,\"top_logprobs\":[{\"token\":\"2\","
                     "\"logprob\":-3},{\"token\":\"1\",\"logprob\":-0.1}]}]}";
    cJSON *r = parse_ok(RLAIF_LLM_FMT_OLLAMA, 0, ol);
    if (r) {
        CHECK(num(cJSON_GetObjectItemCaseSensitive(r, "usage"), "prompt_tokens") == 28);
        CHECK(strcmp(str(tok(r, 0, 0), "bytes"), "1") == 0);   /* bytes default to the token */
        CHECK(strcmp(str(top(tok(r, 0, 0), 0), "token"), "1") == 0);
    }
    cJSON_Delete(r);
    const char *tg = "{\"generated_text\":\"ab\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":2,"
                     "\"tokens\":[{\"id\":1,\"text\":\"a\",\"logprob\":-1,\"special\":false},{\"id\":2,\"text\":\"b\","
                     "\"logprob\":0.0,\"special\":false}],\"top_tokens\":[[{\"id\":1,\"text\":\"a\",\"logprob\":-1}],"
                     "[{\"id\":2,\"text\":\"b\",\"logprob\":0}]]}}";
    r = parse_ok(RLAIF_LLM_FMT_TGI, 0, tg);
    if (r) {
        CHECK(strcmp(str(choice(r, 0), "finish_reason"), "stop") == 0);
        CHECK(num(tok(r, 0, 1), "id") == 2);
        CHECK(strcmp(str(top(tok(r, 0, 1), 0), "token"), "b") == 0);
    }
    cJSON_Delete(r);
    const char *tgs = "data:{\"token\":{\"id\":1,\"text\":\" a\",\"logprob\":-2,\"special\":false},\"generated_text\":null}\n\n"
                      "data:{\"token\":{\"id\":2,\"text\":\"</s>\",\"logprob\":-1,\"special\":true},\"generated_text\":\" a\","
                      "\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":2}}\n\n";
    r = parse_ok(RLAIF_LLM_FMT_TGI, 1, tgs);
    if (r) CHECK(strcmp(ctext(r, 0), " a") == 0 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(choice(r, 0), "tokens")) == 2);
    cJSON_Delete(r);
    const char *gm = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"1\"}]},\"finishReason\":\"MAX_TOKENS\","
                     "\"logprobsResult\":{\"chosenCandidates\":[{\"token\":\"1\"}],\"topCandidates\":[{\"candidates\":["
                     "{\"token\":\"2\",\"logProbability\":-1.2676506e30},{\"token\":\"1\"}]}]}}],"
                     "\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":1}}";
    r = parse_ok(RLAIF_LLM_FMT_GEMINI, 0, gm);
    if (r) {
        CHECK(num(tok(r, 0, 0), "logprob") == 0.0);   /* omitted logProbability = 0 */
        CHECK(strcmp(str(top(tok(r, 0, 0), 0), "token"), "1") == 0);
        CHECK(isinf(num(top(tok(r, 0, 0), 1), "logprob")));
        CHECK(strcmp(str(choice(r, 0), "finish_reason"), "length") == 0);
    }
    cJSON_Delete(r);
    const char *an = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"usage\":{\"input_tokens\":7}}}\n\n"
                     "event: ping\ndata: {\"type\":\"ping\"}\n\n"
                     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
                     "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\n"
                     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    r = parse_ok(RLAIF_LLM_FMT_ANTHROPIC, 1, an);
    if (r) CHECK(strcmp(ctext(r, 0), "Hi") == 0 && strcmp(str(choice(r, 0), "finish_reason"), "stop") == 0);
    cJSON_Delete(r);
}

static void test_errors(void) {
    rlaif_llm_error e;
    const char *q = "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
                    "\"param\":null,\"code\":\"insufficient_quota\"}}";
    rlaif_llm_error_from_body(429, q, strlen(q), &e);
    CHECK(e.quota && !e.retryable);
    const char *rl = "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}}";
    rlaif_llm_error_from_body(429, rl, strlen(rl), &e);
    CHECK(!e.quota && e.retryable && strstr(e.message, "Rate limit reached") != NULL);
    const char *lp = "{\"error\":{\"message\":\"You are not allowed to request logprobs from this model\"}}";
    rlaif_llm_error_from_body(403, lp, strlen(lp), &e);
    CHECK(e.capability && !e.retryable);
    rlaif_llm_error_from_body(404, "{\"error\":\"model 'x' not found\"}", 32, &e);   /* Ollama string */
    CHECK(!e.retryable && strstr(e.message, "not found") != NULL);
    const char *an = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
    rlaif_llm_error_from_body(529, an, strlen(an), &e);
    CHECK(e.retryable && strstr(e.message, "Overloaded") != NULL);
    rlaif_llm_error_from_body(424, "{\"error\":\"Request failed during generation\",\"error_type\":\"generation\"}", 70, &e);
    CHECK(e.retryable);
    const char *gm = "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted (e.g. check quota).\","
                     "\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
                     "\"retryDelay\":\"36s\"}]}}";
    rlaif_llm_error_from_body(429, gm, strlen(gm), &e);
    CHECK(e.retryable && !e.quota && e.retry_after == 36);
    rlaif_llm_error_from_body(502, "<html>bad gateway</html>", 24, &e);
    CHECK(e.retryable && strstr(e.message, "bad gateway") != NULL);
    const char *old = "{\"object\":\"error\",\"message\":\"Cannot request more than 5 logprobs.\",\"type\":\"BadRequestError\",\"code\":400}";
    rlaif_llm_error_from_body(400, old, strlen(old), &e);
    CHECK(e.capability && strstr(e.message, "5 logprobs") != NULL);
    /* every status the rules name, as a JSON error and as a bare body: retried
     * exactly for 408, 409, 424, 429 and >= 500 except 501 (not implemented) */
    static const struct { int status, retry; } st[] = {
        {400, 0}, {401, 0}, {403, 0}, {404, 0}, {407, 0}, {408, 1}, {409, 1}, {410, 0}, {422, 0}, {423, 0},
        {424, 1}, {425, 0}, {428, 0}, {429, 1}, {430, 0}, {499, 0}, {500, 1}, {501, 0}, {502, 1}, {503, 1},
        {504, 1}, {529, 1}, {599, 1}};
    for (size_t k = 0; k < sizeof st / sizeof st[0]; k++) {
        const char *js = "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}";
        rlaif_llm_error_from_body(st[k].status, js, strlen(js), &e);
        if (e.retryable != st[k].retry || e.quota || e.capability != (st[k].status == 501) || e.status != st[k].status)
            fprintf(stderr, "status %d (json): retryable %d quota %d capability %d\n", st[k].status, e.retryable,
                    e.quota, e.capability);
        CHECK(e.retryable == st[k].retry && !e.quota && e.capability == (st[k].status == 501));
        if (st[k].status != 501) CHECK(rlaif_http_status_retryable(st[k].status) == st[k].retry);
        rlaif_llm_error_from_body(st[k].status, "upstream said no", 16, &e);
        CHECK(e.retryable == rlaif_http_status_retryable(st[k].status) && !e.quota);
    }
    /* each quota marker makes a 429 final, in the message or anywhere in the body */
    static const char *quota[] = {"insufficient_quota", "spend_limit", "billing_hard_limit", "PerDay", "per day",
                                  "daily"};
    for (size_t k = 0; k < sizeof quota / sizeof quota[0]; k++) {
        char body[256];
        snprintf(body, sizeof body, "{\"error\":{\"message\":\"limit reached\",\"details\":[\"%s\"]}}", quota[k]);
        rlaif_llm_error_from_body(429, body, strlen(body), &e);
        if (!(e.quota && !e.retryable)) fprintf(stderr, "quota marker '%s' missed\n", quota[k]);
        CHECK(e.quota && !e.retryable);
    }
    /* logprobs refused: a capability error for 400/403/404/422/501, a plain one otherwise */
    static const struct { int status, cap; } lps[] = {{400, 1}, {403, 1}, {404, 1}, {422, 1}, {501, 1}, {401, 0},
                                                       {429, 0}, {500, 0}};
    for (size_t k = 0; k < sizeof lps / sizeof lps[0]; k++) {
        const char *js = "{\"error\":{\"message\":\"top_logprobs is not supported\"}}";
        rlaif_llm_error_from_body(lps[k].status, js, strlen(js), &e);
        CHECK(e.capability == lps[k].cap);
        CHECK(e.retryable == (!lps[k].cap && rlaif_http_status_retryable(lps[k].status)));
    }
    /* an error inside a 200 stream: retried, unless it carries a final code */
    const char *ov = "{\"error\":{\"message\":\"overloaded\"}}", *bad = "{\"error\":{\"message\":\"bad\",\"code\":422}}";
    rlaif_llm_error_from_body(200, ov, strlen(ov), &e);
    CHECK(e.retryable && e.status == 200);
    rlaif_llm_error_from_body(200, bad, strlen(bad), &e);
    CHECK(!e.retryable && e.status == 422);
    char s[64] = "key sk-SECRET123 and sk-SECRET123!";
    rlaif_llm_scrub(s, "sk-SECRET123");
    CHECK(strcmp(s, "key *** and ***!") == 0);
}

static void test_retry_helpers(void) {
    CHECK_CLOSE(rlaif_http_parse_retry_after("250", "9"), 0.25, 1e-12);   /* -ms preferred */
    CHECK_CLOSE(rlaif_http_parse_retry_after(NULL, "2"), 2, 1e-12);
    CHECK_CLOSE(rlaif_http_parse_retry_after(NULL, "1.5"), 1.5, 1e-12);
    CHECK(rlaif_http_parse_retry_after(NULL, "soon") < 0);
    CHECK(rlaif_http_parse_retry_after(NULL, NULL) < 0);
    CHECK(rlaif_http_parse_retry_after(NULL, "Wed, 21 Oct 2015 07:28:00 GMT") == 0);   /* past date */
    CHECK_CLOSE(rlaif_http_backoff(0.5, 8, 1, 0), 0.5, 1e-12);
    CHECK_CLOSE(rlaif_http_backoff(0.5, 8, 3, 0), 2, 1e-12);
    CHECK_CLOSE(rlaif_http_backoff(0.5, 8, 10, 0), 8, 1e-12);
    CHECK_CLOSE(rlaif_http_backoff(0.5, 8, 2, 0.999999), 0.75, 1e-5);
    CHECK(rlaif_http_status_retryable(429) && rlaif_http_status_retryable(529) && rlaif_http_status_retryable(424));
    CHECK(rlaif_http_status_retryable(408) && rlaif_http_status_retryable(409) && rlaif_http_status_retryable(503));
    CHECK(!rlaif_http_status_retryable(400) && !rlaif_http_status_retryable(401) && !rlaif_http_status_retryable(422));
}

static void test_build(void) {
    cJSON *req = cJSON_Parse("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U\"}],"
                             "\"max_tokens\":1,\"logprobs\":5,\"temperature\":0,\"extra\":{\"seed\":3}}");
    rlaif_llm_wire w;
    CHECK_OK(rlaif_llm_build(RLAIF_LLM_OPENAI_CHAT, "http://h/v1/", "gpt", req, &w));
    CHECK(strcmp(w.url, "http://h/v1/chat/completions") == 0);
    CHECK(strstr(w.body, "\"logprobs\":true,\"top_logprobs\":5") != NULL);
    CHECK(strstr(w.body, "\"seed\":3") != NULL && !w.sampled);
    rlaif_llm_wire_clear(&w);
    CHECK_OK(rlaif_llm_build(RLAIF_LLM_GEMINI, "https://g/v1beta", "gemini-x", req, &w));
    CHECK(strcmp(w.url, "https://g/v1beta/models/gemini-x:generateContent") == 0);
    CHECK(strstr(w.body, "\"systemInstruction\"") != NULL && strstr(w.body, "\"responseLogprobs\":true") != NULL);
    rlaif_llm_wire_clear(&w);
    CHECK_FAIL(rlaif_llm_build(RLAIF_LLM_ANTHROPIC, "https://a", "c", req, &w), RLAIF_EINVAL, "does not support");
    cJSON_Delete(req);
    req = cJSON_Parse("{\"prompt\":\"p\",\"max_tokens\":1,\"logprobs\":2,\"temperature\":0}");
    CHECK_OK(rlaif_llm_build(RLAIF_LLM_TGI, "http://t", NULL, req, &w));
    CHECK(strstr(w.body, "\"top_n_tokens\":2") != NULL && strstr(w.body, "\"do_sample\":false") != NULL);
    rlaif_llm_wire_clear(&w);
    CHECK_OK(rlaif_llm_build(RLAIF_LLM_LLAMACPP, "http://l", NULL, req, &w));
    CHECK(strcmp(w.url, "http://l/completion") == 0 && strstr(w.body, "\"n_probs\":2") != NULL);
    rlaif_llm_wire_clear(&w);
    cJSON_Delete(req);
    req = cJSON_Parse("{\"prompt\":\"p\",\"max_token\":1}");
    CHECK_FAIL(rlaif_llm_build(RLAIF_LLM_OPENAI_COMPLETIONS, "http://h", "m", req, &w), RLAIF_EINVAL, "max_token");
    cJSON_Delete(req);
}

static void test_cache(void) {
    char hex[65];
    rlaif_sha256_hex("abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    rlaif_sha256_hex("", 0, hex);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);

    char path[] = "/tmp/rlaif_test_cacheXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    rlaif_llm_cache *c = NULL;
    CHECK_OK(rlaif_llm_cache_open(&c, path));
    if (c == NULL) return;
    const char *raw = "{\"choices\":[{\"index\":0,\"text\":\"x\"}]}";
    CHECK_OK(rlaif_llm_cache_put(c, "k1", "m", RLAIF_LLM_FMT_OPENAI_COMPLETIONS, 0, "{}", raw, strlen(raw), "{}"));
    CHECK_OK(rlaif_llm_cache_put(c, "k1", "m", RLAIF_LLM_FMT_OPENAI_COMPLETIONS, 0, "{}", "other", 5, "{}"));
    int found = 0, fmt = -1, stream = -1;
    char *got = NULL;
    size_t len = 0;
    CHECK_OK(rlaif_llm_cache_get(c, "k1", &found, &got, &len, &fmt, &stream));
    CHECK(found && len == strlen(raw) && strcmp(got, raw) == 0 && fmt == RLAIF_LLM_FMT_OPENAI_COMPLETIONS);
    free(got);
    CHECK_OK(rlaif_llm_cache_get(c, "nope", &found, &got, &len, &fmt, &stream));
    CHECK(!found && got == NULL);
    rlaif_llm_cache_close(c);
    unlink(path);
    char wal[64];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);

    /* keys: sample index only matters when sampled */
    rlaif_llm_wire w = {.url = "u", .body = "b", .body_len = 1, .format = RLAIF_LLM_FMT_OPENAI_CHAT, .sampled = 1};
    char k0[65], k1[65];
    rlaif_llm_cache_key(&w, 0, k0);
    rlaif_llm_cache_key(&w, 1, k1);
    CHECK(strcmp(k0, k1) != 0);
    w.sampled = 0;
    rlaif_llm_cache_key(&w, 0, k0);
    rlaif_llm_cache_key(&w, 1, k1);
    CHECK(strcmp(k0, k1) == 0);
}

/* ---- the engine, against a loopback port nobody listens on ---- */

typedef struct { rlaif_http_req req; int finished; } eng_req;

static rlaif_http_verdict eng_classify(rlaif_http_req *r) { return RLAIF_HTTP_ACCEPT; }
static void eng_finish(rlaif_http_req *r) { ((eng_req *)r)->finished++; }
static int eng_abort(void *ud) { return 1; }

/* A port that was free a moment ago: connecting to it is refused. */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static void test_engine(void) {
    int port = closed_port();
    CHECK(port > 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", port);
    rlaif_http_opts o;
    rlaif_http_opts_default(&o);
    o.concurrency = 2;
    o.max_retries = 1;
    o.backoff_base = 0.01;
    o.backoff_cap = 0.02;
    rlaif_http *h = NULL;
    CHECK_OK(rlaif_http_new(&h, &o));
    eng_req rs[5];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 5; i++) {
        rs[i].req.url = url;
        rs[i].req.body = "{}";
        rs[i].req.body_len = 2;
        rs[i].req.classify = eng_classify;
        rs[i].req.on_finish = eng_finish;
        CHECK_OK(rlaif_http_submit(h, &rs[i].req));
    }
    CHECK_OK(rlaif_http_run(h, NULL, NULL));
    for (int i = 0; i < 5; i++) {   /* each ended once, as a transport error: a server that */
        CHECK(rs[i].finished == 1);  /* never answered is not retried */
        CHECK(rs[i].req.kind == RLAIF_HTTP_ETRANSPORT);
        CHECK(rs[i].req.connect_failed == 1);
        CHECK(rs[i].req.attempts == 1);
        CHECK(strstr(rs[i].req.message, "not retried") != NULL);
    }
    CHECK(rlaif_http_in_flight(h) == 0);
    /* a batch aborted by its tick ends every request as cancelled */
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 3; i++) {
        rs[i].req.url = url;
        rs[i].req.classify = eng_classify;
        rs[i].req.on_finish = eng_finish;
        CHECK_OK(rlaif_http_submit(h, &rs[i].req));
    }
    CHECK_FAIL(rlaif_http_run(h, eng_abort, NULL), RLAIF_EINTR, "http: cancelled (batch aborted)");
    for (int i = 0; i < 3; i++)
        CHECK(rs[i].finished == 1 && rs[i].req.kind == RLAIF_HTTP_ECANCELLED);
    rlaif_http_free(h);
}

/* Hostile server answers (issue 15, item 4): a choice index of INT_MIN or
 * 1e40 (float-to-int and signed overflow in the sort), bytes beyond a byte, a
 * stream with no choices (qsort(NULL, 0)), a 1e40 `sample` in a request. */
static void test_hostile_responses(void) {
    cJSON *out = NULL;
    const char *b = "{\"choices\":[{\"index\":-2147483648,\"text\":\"a\"},{\"index\":1,\"text\":\"b\"}]}";
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_OPENAI_COMPLETIONS, 0, b, strlen(b), &out, NULL), RLAIF_EFORMAT,
               "choice index -2147483648 is not an integer in [0, 1000000]");
    b = "{\"choices\":[{\"index\":1e40,\"text\":\"a\"},{\"index\":0,\"text\":\"b\"}]}";
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_OPENAI_COMPLETIONS, 0, b, strlen(b), &out, NULL), RLAIF_EFORMAT,
               "choice index 1e+40 is not an integer");
    b = "{\"choices\":[{\"index\":0.5,\"text\":\"a\"}]}";
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_OPENAI_CHAT, 0, b, strlen(b), &out, NULL), RLAIF_EFORMAT,
               "choice index 0.5");
    b = "{\"candidates\":[{\"index\":-1e300,\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}";
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_GEMINI, 0, b, strlen(b), &out, NULL), RLAIF_EFORMAT,
               "choice index -1e+300");
    CHECK(out == NULL);
    /* two valid indices out of order still sort */
    b = "{\"choices\":[{\"index\":7,\"text\":\"b\"},{\"index\":2,\"text\":\"a\"}]}";
    cJSON *r = parse_ok(RLAIF_LLM_FMT_OPENAI_COMPLETIONS, 0, b);
    CHECK(r && strcmp(ctext(r, 0), "a") == 0 && num(choice(r, 1), "index") == 7);
    cJSON_Delete(r);
    /* bytes that are not bytes: the token keeps no `bytes` (as with null) */
    b = "{\"choices\":[{\"index\":0,\"message\":{\"content\":\"A\"},\"logprobs\":{\"content\":["
        "{\"token\":\"A\",\"logprob\":-1,\"bytes\":[1e40,65]},{\"token\":\"B\",\"logprob\":-1,\"bytes\":[-1]},"
        "{\"token\":\"C\",\"logprob\":-1,\"bytes\":[256]},{\"token\":\"D\",\"logprob\":-1,\"bytes\":[68.5]},"
        "{\"token\":\"E\",\"logprob\":-1,\"bytes\":[69]}]}}]}";
    r = parse_ok(RLAIF_LLM_FMT_OPENAI_CHAT, 0, b);
    for (int j = 0; r && j < 4; j++) CHECK(cJSON_GetObjectItemCaseSensitive(tok(r, 0, j), "bytes") == NULL);
    CHECK(r && strcmp(str(tok(r, 0, 4), "bytes"), "E") == 0);
    cJSON_Delete(r);
    /* answers that carry no choice at all: sorting the empty choice list was qsort(NULL, 0) */
    b = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":0}}\n\ndata: [DONE]\n\n";
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_OPENAI_CHAT, 1, b, strlen(b), &out, NULL), RLAIF_EINVAL,
               "the answer has no choices");
    b = "{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":3}}";
    r = parse_ok(RLAIF_LLM_FMT_GEMINI, 0, b);   /* still one empty choice, as before */
    CHECK(r && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "choices")) == 1 && strcmp(ctext(r, 0), "") == 0);
    cJSON_Delete(r);
    /* found by fuzz_llm_tgi: a whole TGI body with a token object but no generated_text
     * dereferenced the missing text (tests/fuzz/regress/llm_tgi/) */
    b = "{\"token\":{\"id\":5,\"text\":\"Hi\"},\"generated_text\":null}";
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_TGI, 0, b, strlen(b), &out, NULL), RLAIF_EFORMAT,
               "tgi: response has no `generated_text`");
    b = "{\"token\":{\"id\":5,\"text\":\"Hi\"}}";
    CHECK_FAIL(rlaif_llm_parse(RLAIF_LLM_FMT_TGI, 0, b, strlen(b), &out, NULL), RLAIF_EFORMAT,
               "tgi: response has no `generated_text`");
    /* a request's `sample` that is not an int */
    rlaif_llm_wire w;
    memset(&w, 0, sizeof w);
    cJSON *req = cJSON_Parse("{\"prompt\":\"x\",\"sample\":1e40}");
    CHECK_FAIL(rlaif_llm_build(RLAIF_LLM_OPENAI_COMPLETIONS, "http://127.0.0.1:1", "m", req, &w), RLAIF_EINVAL,
               "sample 1e+40 is not an integer");
    cJSON_Delete(req);
    rlaif_llm_wire_clear(&w);
}

int main(void) {
    test_engine();
    test_sse();
    test_ndjson();
    test_openai_chat();
    test_openai_completions();
    test_streams();
    test_llamacpp();
    test_ollama_tgi_gemini_anthropic();
    test_errors();
    test_retry_helpers();
    test_build();
    test_cache();
    test_hostile_responses();
    return check_report("test_llm");
}
