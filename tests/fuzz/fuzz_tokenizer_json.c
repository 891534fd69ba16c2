/* tests/fuzz/fuzz_tokenizer_json.c -- a Hugging Face tokenizer.json as the
 * input (rlaif_bpe_load_hf_buffer); a tokenizer that loads encodes and decodes
 * a fixed text with and without special tokens. */
#include "bpe.h"
#include "fuzz.h"

static const char text[] = "Hello world, 123 <|endoftext|> caf\xc3\xa9\n\n  tabs\tand \xf0\x9f\x98\x80 <s></s>";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rlaif_bpe *b = NULL;
    if (rlaif_bpe_load_hf_buffer(&b, (const char *)data, size, "fuzz.json") != RLAIF_OK) {
        FUZZ_ASSERT(b == NULL && rlaif_last_error()[0] != '\0');
        return 0;
    }
    for (int flags = 0; flags < 4; flags++) {
        rlaif_bpe_encode_opts o = {flags, NULL, 0};
        rlaif_bpe_ids ids = {0};
        if (rlaif_bpe_encode(b, text, sizeof text - 1, &o, &ids) == RLAIF_OK) {
            char *out = NULL;
            size_t n = 0;
            if (rlaif_bpe_decode(b, ids.ids, ids.n, &out, &n) == RLAIF_OK) free(out);
        }
        rlaif_bpe_ids_free(&ids);
    }
    int32_t v = rlaif_bpe_vocab_size(b);
    for (int32_t id = -1; id <= v && id < 300; id++) {
        size_t len;
        rlaif_bpe_token(b, id, &len);
    }
    rlaif_bpe_free(b);
    return 0;
}
