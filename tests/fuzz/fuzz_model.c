/* tests/fuzz/fuzz_model.c -- a Hugging Face checkpoint directory as the input:
 * config.json, then a NUL byte, then model.safetensors. rlaif_model_load with
 * an LM and a reward head; a model that loads runs one short forward. A crafted
 * config must be refused naming its fields, never allocate short and write on. */
#include "fuzz.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t clen = nul ? (size_t)(nul - data) : size;
    fuzz_file("config.json", data, clen);
    fuzz_file("model.safetensors", nul ? nul + 1 : data + size, nul ? size - clen - 1 : 0);
    for (int head = 0; head < 2; head++) {
        rlaif_model *m = NULL;
        if (rlaif_model_load(&m, fuzz_dir(), head ? RLAIF_HEAD_REWARD : RLAIF_HEAD_LM) != RLAIF_OK) {
            FUZZ_ASSERT(m == NULL && rlaif_last_error()[0] != '\0');
            continue;
        }
        if (m->num_params < ((size_t)1 << 20)) {
            int32_t ids[2] = {0, m->cfg.vocab_size - 1};
            if (rlaif_model_forward(m, ids, NULL, 1, 2, !head) == RLAIF_OK && head) {
                float r;
                rlaif_model_reward(m, &r);
            }
        }
        rlaif_model_free(m);
    }
    return 0;
}
