/* tests/fuzz/fuzz_llm.c -- one backend's answer as the input, built once per
 * response format with -DFUZZ_FORMAT="openai-chat" (and the other six). The
 * first byte picks whole body (even) or stream (odd: SSE, NDJSON for Ollama);
 * the rest goes to rlaif_llm_parse, and to rlaif_llm_error_from_body as the
 * body of an error status made from the second byte. */
#include "fuzz.h"
#include "llm.h"

static rlaif_llm_format fmt;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (rlaif_llm_format_parse(FUZZ_FORMAT, &fmt) != RLAIF_OK) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int stream = data[0] & 1, status = 400 + (data[1] % 200);
    const char *body = (const char *)data + 2;
    size_t len = size - 2;
    cJSON *out = NULL;
    rlaif_llm_error err;
    rlaif_status st = rlaif_llm_parse(fmt, stream, body, len, &out, &err);
    if (st == RLAIF_OK) {
        FUZZ_ASSERT(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(out, "choices")));
        char *s = cJSON_PrintUnformatted(out);
        free(s);
        cJSON_Delete(out);
    } else {
        FUZZ_ASSERT(out == NULL && rlaif_last_error()[0] != '\0');
        FUZZ_ASSERT(memchr(err.message, 0, sizeof err.message) != NULL);
    }
    rlaif_llm_error_from_body(status, body, len, &err);
    FUZZ_ASSERT(err.message[0] != '\0' && memchr(err.message, 0, sizeof err.message) != NULL);
    return 0;
}
