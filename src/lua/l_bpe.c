/* src/lua/l_bpe.c -- rlaif.core.tokenizer: the Lua binding of src/core/bpe.h.
 *
 *   tokenizer.load(path [, {encoding=}])   -> tok | nil, message   (file problems are returned)
 *   tokenizer.train{...}                   -> true | nil, message
 *   tok:encode(text [, opts])              -> {ids}    opts: {add_special=, allowed_special=}
 *   tok:count(text [, opts])               -> n
 *   tok:encode_batch(texts [, opts])       -> {{ids}, ...}   (threads: rlaif.get_threads())
 *   tok:decode(ids)                        -> string (exact bytes)
 *   packed ids: {packed = true} makes encode (and encode_batch per text) return the
 *   ids as one string of little-endian int32s (string.pack("<i4") each); decode
 *   takes that string as well as a table. No Lua table per call, so decode runs
 *   near the engine's speed.
 *   tok:id(token_bytes) -> id | nil;  tok:token(id) -> bytes | nil;  tok:vocab_size()
 *   tok:special_tokens() -> {[text] = id};  tok:kind();  tok:free() (also __gc/__close)
 *
 * Token ids are values, so they cross unchanged (0-based, as the model uses them).
 * allowed_special is "all", an array of token strings, or a set {[str] = true}.
 *
 * Ownership: the userdata box holds one tokenizer plus a scratch id vector reused
 * by every call; __gc/__close/:free() release both (idempotent), so an error
 * raised while pushing results cannot leak C memory. Batch results live in a
 * temporary userdata with its own __gc for the same reason. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "gguf.h"
#include "l_util.h"

#define TOKENIZER_MT "rlaif.Tokenizer"
#define BATCH_MT "rlaif.TokenizerBatch"

typedef struct tok_box {
    rlaif_bpe    *b;
    rlaif_bpe_ids scratch; /* reused for encode results and decode inputs */
    char         *bytes;   /* (bytes_cap) reused decode output */
    size_t        bytes_cap;
} tok_box;

/* Decode buffers above this size are freed after the call instead of kept. */
#define KEEP_BYTES (1u << 20)

static rlaif_bpe *check_tok(lua_State *L, int i) {
    tok_box *box = luaL_checkudata(L, i, TOKENIZER_MT);
    if (!box->b) luaL_error(L, "attempt to use a freed tokenizer");
    return box->b;
}

static int tok_free(lua_State *L) { /* __gc, __close and :free() */
    tok_box *box = luaL_checkudata(L, 1, TOKENIZER_MT);
    rlaif_bpe_free(box->b);
    box->b = NULL;
    rlaif_bpe_ids_free(&box->scratch);
    free(box->bytes);
    box->bytes = NULL;
    box->bytes_cap = 0;
    return 0;
}

static tok_box *new_box(lua_State *L) {
    tok_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    memset(box, 0, sizeof *box);
    luaL_setmetatable(L, TOKENIZER_MT);
    return box;
}

/* ---- options ---- */

typedef struct enc_opts {
    rlaif_bpe_encode_opts o;
    int32_t allowed[64];
} enc_opts;

static void allow_one(lua_State *L, const rlaif_bpe *b, enc_opts *e, int idx) {
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    int32_t id = rlaif_bpe_id(b, s, len);
    if (id < 0 || !rlaif_bpe_is_special(b, id))
        luaL_error(L, "tokenizer.encode: allowed_special: '%s' is not a special token", s);
    if (e->o.n_allowed >= sizeof e->allowed / sizeof e->allowed[0])
        luaL_error(L, "tokenizer.encode: allowed_special: more than 64 tokens (use \"all\")");
    e->allowed[e->o.n_allowed++] = id;
}

/* Read the options table at idx (may be none/nil). Raises on misuse. */
static void check_opts(lua_State *L, int idx, const rlaif_bpe *b, enc_opts *e) {
    memset(e, 0, sizeof *e);
    e->o.allowed = e->allowed;
    if (lua_isnoneornil(L, idx)) return;
    luaL_checktype(L, idx, LUA_TTABLE);
    if (lua_getfield(L, idx, "add_special") != LUA_TNIL && lua_toboolean(L, -1))
        e->o.flags |= RLAIF_BPE_ADD_SPECIAL;
    lua_pop(L, 1);
    int t = lua_getfield(L, idx, "allowed_special");
    int top = lua_gettop(L);
    if (t == LUA_TSTRING) {
        if (strcmp(lua_tostring(L, top), "all") != 0)
            luaL_error(L, "tokenizer.encode: allowed_special must be \"all\" or a table of tokens");
        e->o.flags |= RLAIF_BPE_ALLOW_ALL_SPECIAL;
    } else if (t == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, top)) {
            if (lua_type(L, -2) == LUA_TSTRING) {
                if (lua_toboolean(L, -1)) allow_one(L, b, e, -2);
            } else {
                allow_one(L, b, e, -1);
            }
            lua_pop(L, 1);
        }
    } else if (t == LUA_TBOOLEAN && lua_toboolean(L, top)) {
        e->o.flags |= RLAIF_BPE_ALLOW_ALL_SPECIAL;
    } else if (t != LUA_TNIL && t != LUA_TBOOLEAN) {
        luaL_error(L, "tokenizer.encode: allowed_special must be \"all\" or a table of tokens");
    }
    lua_pop(L, 1);
}

static void push_ids(lua_State *L, const int32_t *ids, size_t n) {
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* ids as one string of 4-byte little-endian int32s (the packed form) */
static void push_packed(lua_State *L, const int32_t *ids, size_t n) {
    luaL_Buffer buf;
    char *p = luaL_buffinitsize(L, &buf, n * 4); /* n * 4 bytes already exist as ids */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        p[4 * i] = (char)v, p[4 * i + 1] = (char)(v >> 8), p[4 * i + 2] = (char)(v >> 16),
        p[4 * i + 3] = (char)(v >> 24);
    }
#else
    if (n) memcpy(p, ids, n * 4);
#endif
    luaL_pushresultsize(&buf, n * 4);
}

/* opts.packed of encode/encode_batch (the table was checked by check_opts) */
static int want_packed(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TTABLE) return 0;
    lua_getfield(L, idx, "packed");
    int packed = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return packed;
}

/* ---- functions ---- */

static int tokenizer_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *encoding = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "encoding");
        encoding = luaL_optstring(L, -1, NULL); /* stays on the stack while used */
    }
    tok_box *box = new_box(L);
    if (rlaif_bpe_load(&box->b, path, encoding) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushfstring(L, "tokenizer.load: %s", rlaif_last_error());
        return 2;
    }
    return 1;
}

/* The body of tok:encode and tok:count: encode the text at index 2 with the options
 * at 3 into the box's scratch vector (borrowed: valid until the next call on this
 * tokenizer). Raises "<op>: ..." when the core fails. */
static const rlaif_bpe_ids *encode_arg(lua_State *L, const char *op) {
    rlaif_bpe *b = check_tok(L, 1);
    tok_box *box = lua_touserdata(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    enc_opts e;
    check_opts(L, 3, b, &e);
    box->scratch.n = 0;
    if (rlaif_bpe_encode(b, text, len, &e.o, &box->scratch) != RLAIF_OK) rlaifL_fail(L, op);
    return &box->scratch;
}

static int tok_encode(lua_State *L) {
    const rlaif_bpe_ids *ids = encode_arg(L, "tokenizer.encode");
    if (want_packed(L, 3)) push_packed(L, ids->ids, ids->n);
    else push_ids(L, ids->ids, ids->n);
    return 1;
}

static int tok_count(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)encode_arg(L, "tokenizer.count")->n);
    return 1;
}

/* Batch scratch: texts, lengths and results in one userdata freed by __gc. */
typedef struct batch_box {
    size_t n;
    const char **texts;   /* (n) borrowed from the argument table */
    size_t *lens;         /* (n) */
    rlaif_bpe_ids *outs;  /* (n) owned */
} batch_box;

static void batch_release(batch_box *bb) {
    if (bb->outs)
        for (size_t i = 0; i < bb->n; i++) rlaif_bpe_ids_free(&bb->outs[i]);
    free(bb->outs);
    free(bb->texts);
    free(bb->lens);
    bb->outs = NULL;
    bb->texts = NULL;
    bb->lens = NULL;
}

static int batch_gc(lua_State *L) {
    batch_release(luaL_checkudata(L, 1, BATCH_MT));
    return 0;
}

static int tok_encode_batch(lua_State *L) {
    rlaif_bpe *b = check_tok(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    enc_opts e;
    check_opts(L, 3, b, &e);
    size_t n = (size_t)luaL_len(L, 2);
    batch_box *bb = lua_newuserdatauv(L, sizeof *bb, 0);
    memset(bb, 0, sizeof *bb);
    luaL_setmetatable(L, BATCH_MT);
    int bidx = lua_gettop(L);
    bb->texts = calloc(n ? n : 1, sizeof *bb->texts);
    bb->lens = calloc(n ? n : 1, sizeof *bb->lens);
    bb->outs = calloc(n ? n : 1, sizeof *bb->outs);
    bb->n = n;
    if (!bb->texts || !bb->lens || !bb->outs) return luaL_error(L, "tokenizer.encode_batch: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, 2, (lua_Integer)i + 1) != LUA_TSTRING)
            return luaL_error(L, "tokenizer.encode_batch: texts[%d] is not a string", (int)i + 1);
        bb->texts[i] = lua_tolstring(L, -1, &bb->lens[i]); /* kept alive by the table */
        lua_pop(L, 1);
    }
    if (rlaif_bpe_encode_batch(b, n, bb->texts, bb->lens, &e.o, bb->outs, 0) != RLAIF_OK)
        return rlaifL_fail(L, "tokenizer.encode_batch");
    int packed = want_packed(L, 3);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        if (packed) push_packed(L, bb->outs[i].ids, bb->outs[i].n);
        else push_ids(L, bb->outs[i].ids, bb->outs[i].n);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    (void)bidx;
    batch_release(bb); /* free now rather than at the next collection */
    return 1;
}

/* Grow the box's byte buffer to at least `need` bytes (+ room for the 16-byte
 * copies of rlaif_bpe_decode_into). */
static int bytes_reserve(tok_box *box, size_t need) {
    if (need <= box->bytes_cap) return 0;
    size_t cap = need + need / 2 + 64;
    char *p = realloc(box->bytes, cap);
    if (!p) return -1;
    box->bytes = p;
    box->bytes_cap = cap;
    return 0;
}

/* Decode ids[0..k), the ids at 1-based positions first+1.., onto the box's byte
 * buffer at *pos, growing it when the chunk does not fit. Raises on a bad id. */
static void decode_chunk(lua_State *L, rlaif_bpe *b, tok_box *box, const int32_t *ids, int k,
                         size_t first, size_t *pos) {
    size_t got;
    if (rlaif_bpe_decode_into(b, ids, (size_t)k, box->bytes + *pos, box->bytes_cap - *pos, &got) != RLAIF_OK) {
        int j = 0; /* the core names the position in the chunk; name it in the whole list */
        while (j < k - 1 && rlaif_bpe_token(b, ids[j], NULL)) j++;
        luaL_error(L, "tokenizer.decode: unknown token id %d at position %d", (int)ids[j], (int)(first + (size_t)j) + 1);
    }
    if (got > box->bytes_cap - *pos) {
        if (bytes_reserve(box, *pos + got + 16)) luaL_error(L, "tokenizer.decode: out of memory");
        rlaif_bpe_decode_into(b, ids, (size_t)k, box->bytes + *pos, box->bytes_cap - *pos, &got);
    }
    *pos += got;
}

/* Table ids are read IDS_CHUNK at a time (push them all, read them, pop once);
 * packed ids PACKED_CHUNK at a time (copied out: a Lua string is not int32-aligned
 * by contract). Each chunk is decoded while in cache, into the box's byte buffer. */
#define IDS_CHUNK 64
#define PACKED_CHUNK 1024

static int tok_decode(lua_State *L) {
    rlaif_bpe *b = check_tok(L, 1);
    tok_box *box = lua_touserdata(L, 1);
    int t = lua_type(L, 2);
    if (t != LUA_TTABLE && t != LUA_TSTRING)
        return luaL_error(L, "tokenizer.decode: ids must be a table or a packed string of int32s, got %s",
                          luaL_typename(L, 2));
    size_t n, plen = 0, pos = 0;
    const unsigned char *packed = NULL;
    if (t == LUA_TSTRING) {
        packed = (const unsigned char *)lua_tolstring(L, 2, &plen);
        if (plen % 4)
            return luaL_error(L, "tokenizer.decode: packed ids of %I bytes: not a multiple of 4 (int32 each)",
                              (lua_Integer)plen);
        n = plen / 4;
    } else {
        n = (size_t)luaL_len(L, 2);
    }
    int32_t ids[PACKED_CHUNK];
    /* a first guess of 8 bytes per id; the buffer grows when a chunk does not fit */
    if (bytes_reserve(box, (n < 1024 ? n : 1024) * 8)) return luaL_error(L, "tokenizer.decode: out of memory");
    if (packed) {
        for (size_t i = 0; i < n; i += PACKED_CHUNK) {
            int k = n - i < PACKED_CHUNK ? (int)(n - i) : PACKED_CHUNK;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            for (int j = 0; j < k; j++) {
                const unsigned char *q = packed + 4 * (i + (size_t)j);
                ids[j] = (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24);
            }
#else
            memcpy(ids, packed + 4 * i, (size_t)k * 4);
#endif
            decode_chunk(L, b, box, ids, k, i, &pos);
        }
    } else {
        luaL_checkstack(L, IDS_CHUNK, "tokenizer.decode");
        int top = lua_gettop(L);
        for (size_t i = 0; i < n; i += IDS_CHUNK) {
            int k = n - i < IDS_CHUNK ? (int)(n - i) : IDS_CHUNK;
            for (int j = 0; j < k; j++) lua_rawgeti(L, 2, (lua_Integer)(i + (size_t)j) + 1);
            for (int j = 0; j < k; j++) {
                int ok;
                lua_Integer id = lua_tointegerx(L, top + 1 + j, &ok);
                if (!ok) return luaL_error(L, "tokenizer.decode: ids[%d] is not an integer", (int)(i + j) + 1);
                ids[j] = id < INT32_MIN || id > INT32_MAX ? -1 : (int32_t)id;
            }
            lua_settop(L, top);
            decode_chunk(L, b, box, ids, k, i, &pos);
        }
    }
    lua_pushlstring(L, box->bytes, pos);
    if (box->bytes_cap > KEEP_BYTES) {
        free(box->bytes);
        box->bytes = NULL;
        box->bytes_cap = 0;
    }
    return 1;
}

static int tok_id(lua_State *L) {
    rlaif_bpe *b = check_tok(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    int32_t id = rlaif_bpe_id(b, s, len);
    if (id < 0) luaL_pushfail(L);
    else lua_pushinteger(L, id);
    return 1;
}

static int tok_token(lua_State *L) {
    rlaif_bpe *b = check_tok(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    size_t len;
    const char *s = id >= 0 && id <= INT32_MAX ? rlaif_bpe_token(b, (int32_t)id, &len) : NULL;
    if (!s) luaL_pushfail(L);
    else lua_pushlstring(L, s, len);
    return 1;
}

static int tok_vocab_size(lua_State *L) {
    lua_pushinteger(L, rlaif_bpe_vocab_size(check_tok(L, 1)));
    return 1;
}

static int tok_special_tokens(lua_State *L) {
    rlaif_bpe *b = check_tok(L, 1);
    size_t n = rlaif_bpe_n_special(b);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        int32_t id = rlaif_bpe_special_id(b, i);
        size_t len;
        const char *s = rlaif_bpe_token(b, id, &len);
        if (!s) continue;
        lua_pushlstring(L, s, len);
        lua_pushinteger(L, id);
        lua_rawset(L, -3);
    }
    return 1;
}

static int tok_kind(lua_State *L) {
    lua_pushstring(L, rlaif_bpe_kind(check_tok(L, 1)));
    return 1;
}

static int tok_tostring(lua_State *L) {
    tok_box *box = luaL_checkudata(L, 1, TOKENIZER_MT);
    if (!box->b) lua_pushliteral(L, "rlaif.Tokenizer (freed)");
    else lua_pushfstring(L, "rlaif.Tokenizer (%s, %d ids)", rlaif_bpe_kind(box->b),
                         (int)rlaif_bpe_vocab_size(box->b));
    return 1;
}

/* ---- training ---- */

/* Strings of the array field `key` of the options table at idx, in a pointer
 * array owned by a userdata left on the stack (the strings stay referenced by
 * the options table for the whole call). */
static const char **string_list(lua_State *L, int idx, const char *key, size_t *n) {
    *n = 0;
    int t = lua_getfield(L, idx, key), top = lua_gettop(L);
    if (t == LUA_TNIL) return NULL;
    if (t != LUA_TTABLE) luaL_error(L, "tokenizer.train: %s must be a list of strings", key);
    size_t m = (size_t)luaL_len(L, top);
    const char **p = lua_newuserdatauv(L, (m ? m : 1) * sizeof *p, 0);
    for (size_t i = 0; i < m; i++) {
        if (lua_rawgeti(L, top, (lua_Integer)i + 1) != LUA_TSTRING)
            luaL_error(L, "tokenizer.train: %s[%d] is not a string", key, (int)i + 1);
        p[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    *n = m;
    return p;
}

static int tokenizer_train(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    rlaif_bpe_train_opts o;
    memset(&o, 0, sizeof o);
    lua_getfield(L, 1, "output");
    const char *out = luaL_optstring(L, -1, NULL);
    if (!out) return luaL_error(L, "tokenizer.train: output (a path for tokenizer.json) is required");
    lua_getfield(L, 1, "vocab_size");
    o.vocab_size = (int32_t)luaL_optinteger(L, -1, 0);
    if (o.vocab_size < 257 || o.vocab_size > (1 << 24))
        return luaL_error(L, "tokenizer.train: vocab_size must be between 257 and 16777216");
    lua_getfield(L, 1, "min_frequency");
    o.min_frequency = (int32_t)luaL_optinteger(L, -1, 2);
    lua_getfield(L, 1, "pattern");
    o.pattern = luaL_optstring(L, -1, "gpt2");
    o.files = string_list(L, 1, "files", &o.n_files);
    o.texts = string_list(L, 1, "texts", &o.n_texts);
    o.special = string_list(L, 1, "special", &o.n_special);
    if (o.n_files + o.n_texts == 0) return luaL_error(L, "tokenizer.train: give files or texts to learn from");
    if (rlaif_bpe_train(&o, out) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushfstring(L, "tokenizer.train: %s", rlaif_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* tok:save_gguf(path [, pre]) -> true | nil, message: a vocabulary-only GGUF */
static int tok_save_gguf(lua_State *L) {
    rlaif_bpe *b = check_tok(L, 1);
    if (rlaif_bpe_save_gguf(b, luaL_checkstring(L, 2), luaL_optstring(L, 3, NULL)) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushfstring(L, "tokenizer.save_gguf: %s", rlaif_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

rlaif_bpe *rlaifL_checktokenizer(lua_State *L, int i) { return check_tok(L, i); }

static const luaL_Reg tok_methods[] = {
    {"save_gguf", tok_save_gguf},
    {"encode", tok_encode},
    {"count", tok_count},
    {"encode_batch", tok_encode_batch},
    {"decode", tok_decode},
    {"id", tok_id},
    {"token", tok_token},
    {"vocab_size", tok_vocab_size},
    {"special_tokens", tok_special_tokens},
    {"kind", tok_kind},
    {"free", tok_free},
    {NULL, NULL},
};

static const luaL_Reg tok_meta[] = {
    {"__gc", tok_free},
    {"__close", tok_free},
    {"__tostring", tok_tostring},
    {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg tokenizer_funcs[] = {
    {"load", tokenizer_load},
    {"train", tokenizer_train},
    {NULL, NULL},
};

int luaopen_rlaif_tokenizer(lua_State *L) {
    luaL_newmetatable(L, TOKENIZER_MT);
    luaL_setfuncs(L, tok_meta, 0);
    luaL_newlibtable(L, tok_methods);
    luaL_setfuncs(L, tok_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newmetatable(L, BATCH_MT);
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, tokenizer_funcs);
    luaL_getmetatable(L, TOKENIZER_MT);
    lua_getfield(L, -1, "__index");
    lua_setfield(L, -3, "methods");   /* tokenizer.methods: the Lua facade wraps some here */
    lua_pop(L, 1);
    return 1;
}
