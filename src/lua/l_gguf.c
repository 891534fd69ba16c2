/* src/lua/l_gguf.c -- Lua binding of the GGUF reader (src/core/gguf.h): rlaif.core.gguf.
 *
 *   local info = core.gguf.read(path)    -- {version, metadata = {key = value}, tensors = {{name,
 *                                        --  type, shape, offset, nbytes}}} | nil, message
 *   local t = core.gguf.tensor(path, name)   -- a float32 tensor | nil, message
 *
 * For inspection and tests; models and tokenizers load through rlaif.model.load
 * and rlaif.tokenizer.load, which recognise .gguf paths. Shapes are given in
 * PyTorch order (the reverse of ggml's ne). Integers become Lua integers (u64
 * beyond 2^63 becomes a float), arrays become Lua lists.
 * The open file is held in a userdata box while Lua values are built, so an
 * error raised by Lua cannot leak it (house style 9.6).
 * Not here: writing (m:save_gguf in l_model.c, tok:save_gguf in l_bpe.c). */
#include <string.h>

#include "gguf.h"
#include "l_util.h"

#define FILE_MT "rlaif.GgufFile"

typedef struct file_box { rlaif_gguf_file *f; } file_box;

static int file_gc(lua_State *L) {
    file_box *b = luaL_checkudata(L, 1, FILE_MT);
    rlaif_gguf_close(b->f);
    b->f = NULL;
    return 0;
}

/* Open path into a box on the stack; on failure push fail, message and return 0. */
static rlaif_gguf_file *open_boxed(lua_State *L, const char *path) {
    file_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->f = NULL;
    luaL_setmetatable(L, FILE_MT);
    if (rlaif_gguf_open(path, &b->f) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return NULL;
    }
    return b->f;
}

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Push one scalar of type t at p. */
static void push_scalar(lua_State *L, uint32_t t, const unsigned char *p) {
    switch (t) {
    case RLAIF_GGUF_U8: lua_pushinteger(L, p[0]); break;
    case RLAIF_GGUF_I8: lua_pushinteger(L, (int8_t)p[0]); break;
    case RLAIF_GGUF_U16: lua_pushinteger(L, (lua_Integer)le(p, 2)); break;
    case RLAIF_GGUF_I16: lua_pushinteger(L, (int16_t)le(p, 2)); break;
    case RLAIF_GGUF_U32: lua_pushinteger(L, (lua_Integer)le(p, 4)); break;
    case RLAIF_GGUF_I32: lua_pushinteger(L, (int32_t)le(p, 4)); break;
    case RLAIF_GGUF_I64: lua_pushinteger(L, (lua_Integer)le(p, 8)); break;
    case RLAIF_GGUF_U64: {
        uint64_t v = le(p, 8);
        if (v > (uint64_t)INT64_MAX) lua_pushnumber(L, (lua_Number)v);
        else lua_pushinteger(L, (lua_Integer)v);
        break;
    }
    case RLAIF_GGUF_F32: {
        uint32_t x = (uint32_t)le(p, 4);
        float f;
        memcpy(&f, &x, 4);
        lua_pushnumber(L, f);
        break;
    }
    case RLAIF_GGUF_F64: {
        uint64_t x = le(p, 8);
        double d;
        memcpy(&d, &x, 8);
        lua_pushnumber(L, d);
        break;
    }
    case RLAIF_GGUF_BOOL: lua_pushboolean(L, p[0] != 0); break;
    default: lua_pushnil(L);
    }
}

static int scalar_bytes(uint32_t t) {
    switch (t) {
    case RLAIF_GGUF_U8: case RLAIF_GGUF_I8: case RLAIF_GGUF_BOOL: return 1;
    case RLAIF_GGUF_U16: case RLAIF_GGUF_I16: return 2;
    case RLAIF_GGUF_U32: case RLAIF_GGUF_I32: case RLAIF_GGUF_F32: return 4;
    default: return 8;
    }
}

/* read(path) -> {version, metadata, tensors} | nil, message */
static int gguf_read(lua_State *L) {
    rlaif_gguf_file *f = open_boxed(L, luaL_checkstring(L, 1));
    if (f == NULL) return 2;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, f->version);
    lua_setfield(L, -2, "version");
    lua_createtable(L, 0, (int)f->n_kv);
    for (int64_t i = 0; i < f->n_kv; i++) {
        const rlaif_gguf_kv *kv = &f->kv[i];
        lua_pushlstring(L, kv->key, kv->key_len);
        if (kv->type == RLAIF_GGUF_STRING) {
            lua_pushlstring(L, (const char *)kv->data + 8, (size_t)le(kv->data, 8));
        } else if (kv->type == RLAIF_GGUF_ARRAY) {
            lua_createtable(L, kv->n > 1 << 24 ? 0 : (int)kv->n, 0);
            const unsigned char *p = kv->data, *end = kv->data + kv->size;
            for (uint64_t k = 0; k < kv->n; k++) {
                if (kv->arr_type == RLAIF_GGUF_STRING) {
                    const char *s;
                    size_t n;
                    if (!rlaif_gguf_next_str(&p, end, &s, &n)) break;
                    lua_pushlstring(L, s, n);
                } else {
                    push_scalar(L, kv->arr_type, p);
                    p += scalar_bytes(kv->arr_type);
                }
                lua_seti(L, -2, (lua_Integer)k + 1);
            }
        } else {
            push_scalar(L, kv->type, kv->data);
        }
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "metadata");
    lua_createtable(L, (int)f->n_tensors, 0);
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const rlaif_gguf_tensor *t = &f->tensors[i];
        lua_createtable(L, 0, 5);
        lua_pushstring(L, t->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, rlaif_ggml_type_name(t->type));
        lua_setfield(L, -2, "type");
        lua_createtable(L, t->ndim, 0);
        for (int d = 0; d < t->ndim; d++) {
            lua_pushinteger(L, t->ne[t->ndim - 1 - d]);
            lua_seti(L, -2, d + 1);
        }
        lua_setfield(L, -2, "shape");
        lua_pushinteger(L, (lua_Integer)t->offset);
        lua_setfield(L, -2, "offset");
        lua_pushinteger(L, (lua_Integer)t->nbytes);
        lua_setfield(L, -2, "nbytes");
        lua_seti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "tensors");
    return 1;
}

/* tensor(path, name) -> float32 tensor | nil, message */
static int gguf_tensor(lua_State *L) {
    const char *name = luaL_checkstring(L, 2);
    rlaif_gguf_file *f = open_boxed(L, luaL_checkstring(L, 1));
    if (f == NULL) return 2;
    const rlaif_gguf_tensor *t = rlaif_gguf_find_tensor(f, name);
    if (t == NULL) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: no tensor named '%s'", f->path, name);
        return 2;
    }
    int64_t shape[4];
    for (int d = 0; d < t->ndim; d++) shape[d] = t->ne[t->ndim - 1 - d];
    tensor_box *box = rlaifL_newbox(L);
    if (rlaif_tensor_empty(&box->t, t->ndim, shape) != RLAIF_OK) return rlaifL_fail(L, "gguf.tensor");
    if (rlaif_gguf_tensor_f32(f, t, box->t->data) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    return 1;
}

static const luaL_Reg gguf_funcs[] = {
    {"read", gguf_read},
    {"tensor", gguf_tensor},
    {NULL, NULL},
};

int luaopen_rlaif_gguf(lua_State *L) {
    luaL_newmetatable(L, FILE_MT);
    lua_pushcfunction(L, file_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, gguf_funcs);
    return 1;
}
