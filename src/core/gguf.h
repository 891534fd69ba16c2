/* src/core/gguf.h -- GGUF v3, llama.cpp's model file format: a writer, a checked
 * reader, and the mappings to rlaif models and tokenizers.
 *
 * Layout (little-endian): "GGUF", version u32, n_tensors u64, n_kv u64; n_kv
 * key/values (key string, value type u32, value; strings are u64 length +
 * bytes; arrays are element type u32, count u64, elements); n_tensors tensor
 * infos (name, n_dims u32, ne u64[n_dims] with ne[0] the fastest-varying
 * dimension, ggml type u32, offset u64 into the data section); padding to
 * general.alignment (default 32); the data, each tensor padded to the alignment.
 * A row-major (rows, cols) float matrix -- our (out, in) weights -- is ne = {cols, rows}.
 *
 * gguf.c: the format. The writer collects metadata and tensors (borrowed or
 * owned float32 data, encoded as F32, F16, BF16 or Q8_0 while writing) and
 * writes atomically (rlaif_write_file_atomic). The reader maps a file read-only
 * and checks every count, length, type, shape and byte range against the file
 * before anything is used, so a crafted file is an error naming the problem,
 * never an out-of-bounds read or a giant allocation; tensors of F32, F16, BF16,
 * F64 and Q8_0 are converted to float32 on request (other quantizations are
 * reported by name).
 * gguf_model.c: GPT-2 and Llama-family models <-> llama.cpp's architectures
 * ("gpt2", "llama", "qwen2"), metadata keys and tensor names (Q/K rows permuted
 * for "llama" as convert_hf_to_gguf.py does, rope_freqs for Llama 3 scaling).
 * bpe_gguf.c: byte-level BPE tokenizers <-> tokenizer.ggml.* (vocabulary in the
 * byte-level alphabet, token types, merges, special ids, pre-tokenizer name).
 * Ownership: constructors return new objects freed by their *_free/_close;
 * everything passed in is borrowed unless a parameter says "owned". */
#ifndef RLAIF_GGUF_H
#define RLAIF_GGUF_H

#include "bpe.h"
#include "model.h"

#define RLAIF_GGUF_MAGIC 0x46554747u   /* "GGUF" */
#define RLAIF_GGUF_ALIGNMENT 32
#define RLAIF_GGUF_MAX_NAME 64           /* llama.cpp's GGML_MAX_NAME, with the NUL */

/* ggml tensor types rlaif writes and reads (the numbering is ggml's). */
typedef enum rlaif_ggml_type {
    RLAIF_GGML_F32 = 0,
    RLAIF_GGML_F16 = 1,
    RLAIF_GGML_Q8_0 = 8,
    RLAIF_GGML_F64 = 28,
    RLAIF_GGML_BF16 = 30,
} rlaif_ggml_type;

/* GGUF metadata value types. */
typedef enum rlaif_gguf_vtype {
    RLAIF_GGUF_U8 = 0, RLAIF_GGUF_I8, RLAIF_GGUF_U16, RLAIF_GGUF_I16, RLAIF_GGUF_U32, RLAIF_GGUF_I32,
    RLAIF_GGUF_F32, RLAIF_GGUF_BOOL, RLAIF_GGUF_STRING, RLAIF_GGUF_ARRAY, RLAIF_GGUF_U64, RLAIF_GGUF_I64,
    RLAIF_GGUF_F64, RLAIF_GGUF_NTYPES
} rlaif_gguf_vtype;

/* "F32", "Q4_K", ... or "type 99" (static or thread-local). */
const char *rlaif_ggml_type_name(uint32_t type);
/* Bytes of a row of n elements of `type` (0 when unknown or n is not a multiple
 * of the block size). */
uint64_t rlaif_ggml_row_bytes(uint32_t type, int64_t n);

/* ---- encoders (round to nearest even, as numpy and ggml do) ---- */

uint16_t rlaif_f32_to_f16(float x);
float    rlaif_f16_to_f32(uint16_t h);
uint16_t rlaif_f32_to_bf16(float x);
/* n (a multiple of 32) floats -> n/32 blocks of {f16 scale, 32 int8}: ggml's
 * quantize_row_q8_0_ref (scale = amax/127, values rounded half away from 0). */
void rlaif_quantize_q8_0(const float *x, int64_t n, uint8_t *out);

/* ---- writer ---- */

typedef struct rlaif_gguf_writer rlaif_gguf_writer;

rlaif_status rlaif_gguf_writer_new(rlaif_gguf_writer **out);
void rlaif_gguf_writer_free(rlaif_gguf_writer *w);   /* NULL-safe; frees owned tensor data */

/* Set a metadata key (a key set twice keeps the last value). Values are copied. */
rlaif_status rlaif_gguf_set_str(rlaif_gguf_writer *w, const char *key, const char *value);
rlaif_status rlaif_gguf_set_u32(rlaif_gguf_writer *w, const char *key, uint32_t value);
rlaif_status rlaif_gguf_set_i32(rlaif_gguf_writer *w, const char *key, int32_t value);
rlaif_status rlaif_gguf_set_f32(rlaif_gguf_writer *w, const char *key, float value);
rlaif_status rlaif_gguf_set_bool(rlaif_gguf_writer *w, const char *key, int value);
/* Arrays: n strings (lens[i] bytes each), or n int32 values. */
rlaif_status rlaif_gguf_set_strs(rlaif_gguf_writer *w, const char *key, const char *const *values,
                                 const size_t *lens, size_t n);
rlaif_status rlaif_gguf_set_i32s(rlaif_gguf_writer *w, const char *key, const int32_t *values, size_t n);

/* Add a tensor of ndim (1..4) dims ne[] (ggml order), from float32 `data`
 * (numel floats, row-major with ne[0] fastest), stored as `type`. owned = 1:
 * the writer frees data (malloc'd); else data is borrowed until the write.
 * Q8_0 needs ne[0] % 32 == 0. Names are unique and shorter than 64 bytes. */
rlaif_status rlaif_gguf_add_tensor(rlaif_gguf_writer *w, const char *name, rlaif_ggml_type type, int ndim,
                                   const int64_t *ne, float *data, int owned);

/* Write the file atomically (temp file + rename). */
rlaif_status rlaif_gguf_write(rlaif_gguf_writer *w, const char *path);

/* ---- reader ---- */

typedef struct rlaif_gguf_kv {
    const char *key;             /* into the map, key_len bytes, not NUL-terminated */
    size_t key_len;
    uint32_t type;               /* rlaif_gguf_vtype                                */
    uint32_t arr_type;           /* element type when type == ARRAY                 */
    uint64_t n;                  /* array length (1 for scalars)                    */
    const unsigned char *data;   /* the value (for arrays: the first element)       */
    uint64_t size;               /* bytes of the value                              */
} rlaif_gguf_kv;

typedef struct rlaif_gguf_tensor {
    char name[RLAIF_GGUF_MAX_NAME];
    int ndim;
    int64_t ne[4];               /* ggml order; 1 beyond ndim                       */
    int64_t numel;
    uint32_t type;               /* ggml type                                       */
    uint64_t offset, nbytes;     /* within the data section                         */
    const unsigned char *data;   /* into the map                                    */
} rlaif_gguf_tensor;

typedef struct rlaif_gguf_file {
    char *path;
    uint32_t version;
    int64_t n_kv, n_tensors;
    rlaif_gguf_kv *kv;           /* (n_kv)                                          */
    rlaif_gguf_tensor *tensors;  /* (n_tensors)                                     */
    uint64_t alignment, data_offset, data_size;
    void *map_;
    size_t map_size_;
} rlaif_gguf_file;

/* Open and check a GGUF file; RLAIF_EFORMAT naming the file and the problem. */
rlaif_status rlaif_gguf_open(const char *path, rlaif_gguf_file **out);
/* The same over bytes the caller keeps alive (for fuzzing); name is for messages. */
rlaif_status rlaif_gguf_open_buffer(const void *data, size_t size, const char *name, rlaif_gguf_file **out);
void rlaif_gguf_close(rlaif_gguf_file *f);   /* NULL-safe */

const rlaif_gguf_kv *rlaif_gguf_find(const rlaif_gguf_file *f, const char *key);
/* Typed getters: 1 when the key exists with a compatible type (any integer type
 * in range for u32/i64, F32 or F64 for f32, BOOL for bool, STRING for str). */
int rlaif_gguf_get_u32(const rlaif_gguf_file *f, const char *key, uint32_t *v);
int rlaif_gguf_get_f32(const rlaif_gguf_file *f, const char *key, float *v);
int rlaif_gguf_get_bool(const rlaif_gguf_file *f, const char *key, int *v);
int rlaif_gguf_get_str(const rlaif_gguf_file *f, const char *key, const char **s, size_t *len);
/* Element i of an array of strings, walking from the start (i < kv->n). For
 * sequential access use an iterator: p = kv->data, then rlaif_gguf_next_str. */
int rlaif_gguf_next_str(const unsigned char **p, const unsigned char *end, const char **s, size_t *len);

const rlaif_gguf_tensor *rlaif_gguf_find_tensor(const rlaif_gguf_file *f, const char *name);
/* Convert a whole tensor to float32 (numel floats at dst); RLAIF_EFORMAT for
 * types rlaif does not read (the message names the tensor and the type). */
rlaif_status rlaif_gguf_tensor_f32(const rlaif_gguf_file *f, const rlaif_gguf_tensor *t, float *dst);

/* ---- models ---- */

typedef struct rlaif_gguf_save_opts {
    rlaif_ggml_type type;        /* F32 (default), F16 or Q8_0 for 2-d weights; norms,
                                    biases and positions stay F32 (as llama.cpp's converter) */
    const char *name;            /* general.name; NULL = none                       */
    const char *pre;             /* tokenizer.ggml.pre override; NULL = derived     */
} rlaif_gguf_save_opts;

/* Write m (a language model) and its tokenizer `tok` (required) as one GGUF
 * file llama.cpp loads. RLAIF_EINVAL for what cannot be represented (reward
 * heads, a tokenizer larger than the vocabulary, an unmappable pre-tokenizer). */
rlaif_status rlaif_model_save_gguf(rlaif_model *m, const char *path, const rlaif_bpe *tok,
                                   const rlaif_gguf_save_opts *o);
/* Load a GGUF file of architecture gpt2, llama or qwen2 (F32, F16, BF16, F64 or
 * Q8_0 tensors, converted to float32). New model in *out. */
rlaif_status rlaif_model_load_gguf(rlaif_model **out, const char *path, rlaif_head head);

/* ---- tokenizers ---- */

/* Put the tokenizer.ggml.* keys of b into w, padding the vocabulary to n_vocab
 * entries ("[PAD<id>]", type UNUSED); bos/eos/pad < 0 are left out. */
rlaif_status rlaif_bpe_gguf_put(const rlaif_bpe *b, rlaif_gguf_writer *w, int32_t n_vocab, const char *pre,
                                int32_t bos, int32_t eos, int32_t pad);
/* A vocabulary-only GGUF (llama.cpp's vocab_only loading, e.g. for tokenization). */
rlaif_status rlaif_bpe_save_gguf(const rlaif_bpe *b, const char *path, const char *pre);
/* The tokenizer of a GGUF file (tokenizer.ggml.model "gpt2"). */
rlaif_status rlaif_bpe_load_gguf(rlaif_bpe **out, const char *path);
rlaif_status rlaif_bpe_from_gguf(rlaif_bpe **out, const rlaif_gguf_file *f);

#endif
