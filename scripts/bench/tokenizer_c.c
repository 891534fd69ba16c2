/* scripts/bench/tokenizer_c.c -- the tokenizer engine without Lua: load time,
 * single-thread encode and decode throughput through src/core/bpe.h alone, so
 * scripts/bench/tokenizer.lua can report the binding's overhead separately.
 *
 *   tokenizer_c TOKENIZER_PATH ENCODING|- DOCS_FILE [REPS]
 *
 * DOCS_FILE holds the documents as string.pack("<s4", doc) records (what the Lua
 * benchmark writes). Prints one JSON line: load_ms, encode_mb_s, decode_mb_s,
 * tokens, bytes; best of REPS (default 5) passes. Decoding writes into one
 * buffer allocated up front (rlaif_bpe_decode_into), so it measures the engine.
 * Built on the fly by the Lua benchmark against build/librlaif.a; not installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bpe.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s TOKENIZER ENCODING|- DOCS [REPS]\n", argv[0]);
        return 2;
    }
    const char *enc = strcmp(argv[2], "-") ? argv[2] : NULL;
    int reps = argc > 4 ? atoi(argv[4]) : 5;
    if (reps < 1) reps = 1;

    FILE *f = fopen(argv[3], "rb");
    if (!f) { perror(argv[3]); return 1; }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)sz + 1);
    if (!data || fread(data, 1, (size_t)sz, f) != (size_t)sz) { fclose(f); return 1; }
    fclose(f);
    size_t ndocs = 0, cap = 1024, bytes = 0;
    const char **docs = malloc(cap * sizeof *docs);
    size_t *lens = malloc(cap * sizeof *lens);
    for (long p = 0; p + 4 <= sz;) {
        uint32_t l = (uint8_t)data[p] | (uint8_t)data[p + 1] << 8 | (uint8_t)data[p + 2] << 16 |
                     (uint32_t)(uint8_t)data[p + 3] << 24;
        p += 4;
        if (p + (long)l > sz) break;
        if (ndocs == cap) {
            cap *= 2;
            docs = realloc(docs, cap * sizeof *docs);
            lens = realloc(lens, cap * sizeof *lens);
        }
        docs[ndocs] = data + p;
        lens[ndocs++] = l;
        bytes += l;
        p += l;
    }

    rlaif_bpe *b = NULL;
    double load = 1e9;
    for (int r = 0; r < 3; r++) {
        rlaif_bpe_free(b);
        b = NULL;
        double t0 = now();
        if (rlaif_bpe_load(&b, argv[1], enc) != RLAIF_OK) {
            fprintf(stderr, "%s\n", rlaif_last_error());
            return 1;
        }
        double dt = now() - t0;
        if (dt < load) load = dt;
    }

    rlaif_bpe_ids *ids = calloc(ndocs, sizeof *ids);
    rlaif_bpe_ids tmp = {0};
    size_t ntok = 0;
    double encode = 1e9;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (size_t i = 0; i < ndocs; i++) {
            tmp.n = 0;
            if (rlaif_bpe_encode(b, docs[i], lens[i], NULL, &tmp) != RLAIF_OK) {
                fprintf(stderr, "%s\n", rlaif_last_error());
                return 1;
            }
        }
        double dt = now() - t0;
        if (dt < encode) encode = dt;
    }
    for (size_t i = 0; i < ndocs; i++) {
        rlaif_bpe_encode(b, docs[i], lens[i], NULL, &ids[i]);
        ntok += ids[i].n;
    }

    size_t maxlen = 0;
    for (size_t i = 0; i < ndocs; i++) maxlen = lens[i] * 4 > maxlen ? lens[i] * 4 : maxlen;
    char *out = malloc(maxlen + 64);
    double decode = 1e9;
    size_t decoded = 0;
    for (int r = 0; r < reps * 4; r++) {
        double t0 = now();
        decoded = 0;
        for (size_t i = 0; i < ndocs; i++) {
            size_t len;
            if (rlaif_bpe_decode_into(b, ids[i].ids, ids[i].n, out, maxlen, &len) != RLAIF_OK) {
                fprintf(stderr, "%s\n", rlaif_last_error());
                return 1;
            }
            decoded += len;
        }
        double dt = now() - t0;
        if (dt < decode) decode = dt;
    }
    printf("{\"load_ms\":%.2f,\"encode_mb_s\":%.2f,\"decode_mb_s\":%.2f,\"tokens\":%zu,"
           "\"bytes\":%zu,\"decoded_bytes\":%zu}\n",
           load * 1e3, bytes / encode / 1e6, decoded / decode / 1e6, ntok, bytes, decoded);
    for (size_t i = 0; i < ndocs; i++) rlaif_bpe_ids_free(&ids[i]);
    rlaif_bpe_ids_free(&tmp);
    free(ids);
    free(out);
    free(docs);
    free(lens);
    free(data);
    rlaif_bpe_free(b);
    return 0;
}
