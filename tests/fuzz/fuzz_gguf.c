/* tests/fuzz/fuzz_gguf.c -- a GGUF file as the input: the reader over the bytes
 * (rlaif_gguf_open_buffer: every key walked with the typed getters, every
 * string array iterated, every small tensor converted to float32), the
 * tokenizer import (rlaif_bpe_from_gguf; one that loads encodes and decodes a
 * fixed text) and the model loader through a file (rlaif_model_load_gguf; a
 * model that loads runs one short forward). A crafted file must fail with a
 * message, never read outside its bytes. Not here: the writer (test_gguf.c). */
#include "bpe.h"
#include "fuzz.h"
#include "gguf.h"
#include "model.h"

static const char text[] = "Hello the world <|endoftext|> caf\xc3\xa9\n";

static void walk(const rlaif_gguf_file *f, const uint8_t *data, size_t size) {
    for (int64_t i = 0; i < f->n_kv; i++) {
        const rlaif_gguf_kv *kv = &f->kv[i];
        FUZZ_ASSERT(kv->data >= data && kv->size <= size && kv->data + kv->size <= data + size);
        char key[256];
        if (kv->key_len >= sizeof key) continue;
        memcpy(key, kv->key, kv->key_len);
        key[kv->key_len] = '\0';
        uint32_t u;
        float x;
        int on;
        const char *s;
        size_t n;
        rlaif_gguf_get_u32(f, key, &u);
        rlaif_gguf_get_f32(f, key, &x);
        rlaif_gguf_get_bool(f, key, &on);
        if (rlaif_gguf_get_str(f, key, &s, &n)) FUZZ_ASSERT((const uint8_t *)s >= data && n <= size);
        if (kv->type == RLAIF_GGUF_ARRAY && kv->arr_type == RLAIF_GGUF_STRING) {
            const unsigned char *p = kv->data, *end = kv->data + kv->size;
            for (uint64_t k = 0; k < kv->n && rlaif_gguf_next_str(&p, end, &s, &n); k++)
                FUZZ_ASSERT((const unsigned char *)s + n <= end);
        }
    }
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const rlaif_gguf_tensor *t = &f->tensors[i];
        FUZZ_ASSERT(t->data >= data && t->nbytes <= size && t->data + t->nbytes <= data + size);
        FUZZ_ASSERT(rlaif_gguf_find_tensor(f, t->name) == t);
        if (t->numel > (1 << 20)) continue;
        float *dst = malloc(((size_t)t->numel + 1) * sizeof(float));
        if (dst && rlaif_gguf_tensor_f32(f, t, dst) != RLAIF_OK) FUZZ_ASSERT(rlaif_last_error()[0] != '\0');
        free(dst);
    }
}

static void tokenizer(const rlaif_gguf_file *f) {
    rlaif_bpe *b = NULL;
    if (rlaif_bpe_from_gguf(&b, f) != RLAIF_OK) {
        FUZZ_ASSERT(b == NULL && rlaif_last_error()[0] != '\0');
        return;
    }
    rlaif_bpe_encode_opts o = {1, NULL, 0};
    rlaif_bpe_ids ids = {0};
    if (rlaif_bpe_encode(b, text, sizeof text - 1, &o, &ids) == RLAIF_OK) {
        char *out = NULL;
        size_t n = 0;
        if (rlaif_bpe_decode(b, ids.ids, ids.n, &out, &n) == RLAIF_OK) free(out);
    }
    rlaif_bpe_ids_free(&ids);
    rlaif_bpe_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rlaif_gguf_file *f = NULL;
    if (rlaif_gguf_open_buffer(data, size, "fuzz.gguf", &f) != RLAIF_OK) {
        FUZZ_ASSERT(f == NULL && rlaif_last_error()[0] != '\0');
        return 0;   /* the file loaders below start with the same parse */
    }
    walk(f, data, size);
    tokenizer(f);
    rlaif_gguf_close(f);
    const char *path = fuzz_file("m.gguf", data, size);
    rlaif_model *m = NULL;
    if (rlaif_model_load_gguf(&m, path, RLAIF_HEAD_LM) != RLAIF_OK) {
        FUZZ_ASSERT(m == NULL && rlaif_last_error()[0] != '\0');
        return 0;
    }
    if (m->num_params < ((size_t)1 << 20)) {
        int32_t ids[2] = {0, m->cfg.vocab_size - 1};
        rlaif_model_forward(m, ids, NULL, 1, 2, 1);
    }
    rlaif_model_free(m);
    return 0;
}
