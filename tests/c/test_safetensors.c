/* tests/c/test_safetensors.c -- safetensors round trip, and every kind of
 * corrupt file (short, huge header length, bad JSON, unknown dtype, offsets past
 * the end, size mismatch, > 4 dims), plus every truncation and many random byte
 * flips of a valid file: each must fail with RLAIF_EFORMAT/EIO and a message,
 * never crash or read out of bounds (run under ASan). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "tensor.h"

static char dir[] = "/tmp/rlaif_test_st_XXXXXX";

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

/* A safetensors file from a header string and n data bytes. */
static size_t build(unsigned char *buf, const char *header, const void *data, size_t n) {
    uint64_t h = strlen(header);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(h >> (8 * i));
    memcpy(buf + 8, header, h);
    memcpy(buf + 8 + h, data, n);
    return 8 + h + n;
}

static void expect_bad(const char *name, const char *header, const void *data, size_t n, const char *needle) {
    unsigned char buf[4096];
    char path[128];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    write_file(path, buf, build(buf, header, data, n));
    rlaif_named_tensor *items = (void *)1;
    int count = -1;
    CHECK_FAIL(rlaif_safetensors_load(path, &items, &count), RLAIF_EFORMAT, needle);
    CHECK(items == NULL && count == 0);
}

static void test_round_trip(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    int64_t s1[] = {2, 3}, s0[1] = {0};
    rlaif_tensor *a = NULL, *b = NULL, *at = NULL;
    CHECK_OK(rlaif_tensor_new(&a, 2, s1));
    for (int i = 0; i < 6; i++) a->data[i] = (float)i * 0.5f;
    CHECK_OK(rlaif_tensor_transpose(&at, a, 0, 1));  /* saved as its logical [3,2] */
    CHECK_OK(rlaif_tensor_new(&b, 0, s0));
    b->data[0] = -7;
    rlaif_named_tensor items[] = {{"layer.weight", at}, {"scale", b}};
    CHECK_OK(rlaif_safetensors_save(path, items, 2));
    rlaif_named_tensor *got = NULL;
    int n = 0;
    CHECK_OK(rlaif_safetensors_load(path, &got, &n));
    CHECK(n == 2 && strcmp(got[0].name, "layer.weight") == 0 && strcmp(got[1].name, "scale") == 0);
    CHECK(got[0].tensor->ndim == 2 && got[0].tensor->shape[0] == 3 && got[0].tensor->shape[1] == 2);
    CHECK(got[0].tensor->data[1] == 1.5f && got[0].tensor->data[2] == 0.5f);
    CHECK(got[1].tensor->ndim == 0 && got[1].tensor->data[0] == -7);
    rlaif_safetensors_free(got, n);
    rlaif_named_tensor dup[] = {{"x", a}, {"x", b}};
    CHECK_FAIL(rlaif_safetensors_save(path, dup, 2), RLAIF_EINVAL, "duplicate tensor name 'x'");
    /* the failed save left the earlier file intact */
    CHECK_OK(rlaif_safetensors_load(path, &got, &n));
    CHECK(n == 2);
    rlaif_safetensors_free(got, n);
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/missing/dir.safetensors", dir);
    CHECK_FAIL(rlaif_safetensors_save(nodir, items, 2), RLAIF_EIO, "missing/dir.safetensors");
    CHECK_FAIL(rlaif_safetensors_load(nodir, &got, &n), RLAIF_EIO, "No such file");

    /* every truncation and many single-byte corruptions of the valid file */
    FILE *f = fopen(path, "rb");
    unsigned char orig[512];
    size_t len = fread(orig, 1, sizeof orig, f);
    fclose(f);
    char cut[160];
    snprintf(cut, sizeof cut, "%s/cut.safetensors", dir);
    int failures_ok = 1;
    for (size_t l = 0; l < len; l++) {
        write_file(cut, orig, l);
        rlaif_status st = rlaif_safetensors_load(cut, &got, &n);
        if (st == RLAIF_OK) rlaif_safetensors_free(got, n);
        /* the message names the file, not just any failure */
        if (st != RLAIF_EFORMAT || strstr(rlaif_last_error(), cut) == NULL) {
            if (failures_ok) fprintf(stderr, "truncated to %zu bytes: status %d '%s'\n", l, st, rlaif_last_error());
            failures_ok = 0;
        }
    }
    CHECK(failures_ok);
    srand(1);
    for (int trial = 0; trial < 3000; trial++) {
        unsigned char mut[512];
        memcpy(mut, orig, len);
        mut[rand() % len] = (unsigned char)rand();
        write_file(cut, mut, len);
        rlaif_status st = rlaif_safetensors_load(cut, &got, &n);
        if (st == RLAIF_OK) rlaif_safetensors_free(got, n);  /* a data-byte flip is still valid */
    }
    unlink(cut);
    unlink(path);
    rlaif_tensor_release(a), rlaif_tensor_release(b), rlaif_tensor_release(at);
}

static void test_corrupt(void) {
    float data[6] = {0};
    expect_bad("notjson", "{\"a\": [", data, 24, "not a JSON object");
    expect_bad("dtype", "{\"a\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}}", data, 24,
               "tensor 'a': dtype I8 is not supported");
    expect_bad("past_end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", data, 24,
               "tensor 'w': data ends at byte 400");
    expect_bad("size", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,24]}}", data, 24,
               "tensor 'w': 24 bytes for shape [2,2]");
    expect_bad("dims", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", data, 24,
               "tensor 'w' has 5 dims");
    expect_bad("fields", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", data, 24, "tensor 'w': entry needs");
    expect_bad("negshape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", data, 24,
               "header number '-1' at byte 37");
    expect_bad("badoff", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", data, 24,
               "bad data_offsets");
    /* header length larger than the file */
    char path[128];
    snprintf(path, sizeof path, "%s/hlen.safetensors", dir);
    unsigned char buf[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    write_file(path, buf, 10);
    rlaif_named_tensor *items;
    int n;
    CHECK_FAIL(rlaif_safetensors_load(path, &items, &n), RLAIF_EFORMAT, "header length");
    unlink(path);
}

/* Offsets must be exact unsigned integers inside the data section (issue 15,
 * item 1). Before the fix they went through a double: 2^64 wrapped to 0, so
 * [2^64 - 2048, 2^64] became a 2048-byte tensor starting 2048 bytes *before*
 * the mapping; 1e2 and 4.5 were accepted as 100 and 4. */
static void test_crafted_offsets(void) {
    float data[512] = {0};
    expect_bad("wrap", "{\"w\":{\"dtype\":\"F32\",\"shape\":[512],"
               "\"data_offsets\":[18446744073709549568,18446744073709551616]}}", data, sizeof data,
               "data_offsets");
    expect_bad("wrap2", "{\"w\":{\"dtype\":\"F32\",\"shape\":[512],"
               "\"data_offsets\":[18446744073709549568,18446744073709549568]}}", data, sizeof data,
               "not an unsigned integer below 2^53");
    expect_bad("exp", "{\"w\":{\"dtype\":\"F32\",\"shape\":[25],\"data_offsets\":[0,1e2]}}", data, 100,
               "'1e2'");
    expect_bad("frac", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", data, 8,
               "'4.5'");
    expect_bad("frac0", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", data, 8,
               "'4.0'");
    expect_bad("neg0", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-0,4]}}", data, 8,
               "'-0'");
    expect_bad("big53", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[9007199254740993,9007199254740997]}}", data, 8, "'9007199254740993'");
    expect_bad("shape1e1", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1e1],\"data_offsets\":[0,40]}}", data,
               40, "'1e1'");
    expect_bad("meta_num", "{\"__metadata__\":{\"n\":1.5},\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[0,4]}}", data, 4, "'1.5'");
    /* a shape whose byte size overflows 64 bits next to offsets that fit */
    expect_bad("bytes_overflow", "{\"w\":{\"dtype\":\"F64\",\"shape\":[1000000000000000,1000000],"
               "\"data_offsets\":[0,8]}}", data, 8, "shape is too large");
    /* still fine: integers as the reference writes them, strings holding digits */
    char path[128];
    unsigned char buf[256];
    snprintf(path, sizeof path, "%s/okints.safetensors", dir);
    write_file(path, buf, build(buf, "{\"__metadata__\":{\"n\":\"1.5e3\"},\"w\":{\"dtype\":\"F32\","
                                "\"shape\":[2],\"data_offsets\":[0,8]}}   ", data, 8));
    rlaif_named_tensor *items = NULL;
    int n = 0;
    CHECK_OK(rlaif_safetensors_load(path, &items, &n));
    CHECK(n == 1 && items && items[0].tensor->shape[0] == 2);
    rlaif_safetensors_free(items, n);
    unlink(path);
}

int main(void) {
    if (mkdtemp(dir) == NULL) return 1;
    test_round_trip();
    test_corrupt();
    test_crafted_offsets();
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return check_report("test_safetensors");
}
