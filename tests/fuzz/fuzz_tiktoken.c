/* tests/fuzz/fuzz_tiktoken.c -- a tiktoken rank file (base64 token, space,
 * rank per line) as the input, loaded under the cl100k_base and r50k_base
 * pre-tokenizers; a file that loads encodes and decodes a fixed text. */
#include "bpe.h"
#include "fuzz.h"

static const char text[] = "Hello world, 123 <|endoftext|> caf\xc3\xa9\n\n  tabs\tand \xf0\x9f\x98\x80";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("x.tiktoken", data, size);
    static const char *const encodings[] = {"cl100k_base", "r50k_base"};
    for (int k = 0; k < 2; k++) {
        rlaif_bpe *b = NULL;
        if (rlaif_bpe_load_tiktoken(&b, path, encodings[k]) != RLAIF_OK) {
            FUZZ_ASSERT(b == NULL && rlaif_last_error()[0] != '\0');
            continue;
        }
        rlaif_bpe_encode_opts o = {RLAIF_BPE_ALLOW_ALL_SPECIAL, NULL, 0};
        rlaif_bpe_ids ids = {0};
        if (rlaif_bpe_encode(b, text, sizeof text - 1, &o, &ids) == RLAIF_OK) {
            char *out = NULL;
            size_t n = 0;
            if (rlaif_bpe_decode(b, ids.ids, ids.n, &out, &n) == RLAIF_OK) free(out);
        }
        rlaif_bpe_ids_free(&ids);
        rlaif_bpe_free(b);
    }
    return 0;
}
