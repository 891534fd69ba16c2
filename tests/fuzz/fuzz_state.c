/* tests/fuzz/fuzz_state.c -- a training-state checkpoint (model.save_state's
 * magic + version header, parameters, AdamW moments, blob) as the input,
 * loaded into a small fixed GPT-2. A file for another model, a bad header or a
 * truncated body must fail with a message. */
#include "fuzz.h"
#include "model.h"

static rlaif_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    rlaif_model_config c;
    rlaif_model_config_defaults(&c, RLAIF_ARCH_GPT2);
    c.vocab_size = 8, c.n_layer = 1, c.n_head = 1, c.d_model = 4, c.max_seq = 4;
    if (rlaif_model_new(&model, &c, 1) != RLAIF_OK) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("state.bin", data, size);
    void *blob = NULL;
    size_t blob_len = 0;
    if (rlaif_model_load_state(model, path, &blob, &blob_len) == RLAIF_OK) FUZZ_ASSERT(blob != NULL);
    else FUZZ_ASSERT(blob == NULL && rlaif_last_error()[0] != '\0');
    free(blob);
    return 0;
}
