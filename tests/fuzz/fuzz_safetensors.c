/* tests/fuzz/fuzz_safetensors.c -- a .safetensors file as the input: the whole
 * loader (rlaif_safetensors_load), and the mapped view the model reader uses
 * (open, check every entry, convert the good ones). A corrupt file must fail
 * with a message, never read outside the mapping. */
#include "fuzz.h"
#include "tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("t.safetensors", data, size);
    rlaif_named_tensor *items = NULL;
    int n = 0;
    if (rlaif_safetensors_load(path, &items, &n) == RLAIF_OK) rlaif_safetensors_free(items, n);
    else FUZZ_ASSERT(items == NULL && n == 0 && rlaif_last_error()[0] != '\0');
    rlaif_safetensors_file *f = NULL;
    if (rlaif_safetensors_open(path, &f) != RLAIF_OK) return 0;
    for (int i = 0; i < f->count; i++) {
        const rlaif_safetensors_entry *e = &f->entries[i];
        if (rlaif_safetensors_check(f, e) != RLAIF_OK || e->numel > (1 << 20)) continue;
        FUZZ_ASSERT((const unsigned char *)e->data + e->nbytes <= (const unsigned char *)f->map_ + f->map_size_);
        float *dst = malloc(((size_t)e->numel + 1) * sizeof(float));
        if (dst) rlaif_safetensors_convert(dst, 1, e->data, e->numel, e->dtype);
        free(dst);
    }
    rlaif_safetensors_close(f);
    return 0;
}
