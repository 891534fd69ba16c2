/* src/lua/l_tensor.c -- Lua binding of src/core/tensor.h: rlaif.core.tensor.
 *
 * Each function checks its arguments, calls one rlaif_tensor_* function and
 * pushes the result; there is no math here. Dims and positions are 1-based
 * (negative counts from the end) and converted to 0-based only here.
 * Ownership: a box owns one reference; views retain their base through the
 * shared storage, so a view keeps its data alive after the base is freed. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "l_util.h"

/* ---- helpers (l_util.h) ---- */

tensor_box *rlaifL_newbox(lua_State *L) {
    tensor_box *b = lua_newuserdatauv(L, sizeof *b, 1);
    b->t = NULL;
    luaL_setmetatable(L, RLAIF_TENSOR_MT);
    return b;
}

rlaif_tensor *rlaifL_testtensor(lua_State *L, int i) {
    tensor_box *b = luaL_testudata(L, i, RLAIF_TENSOR_MT);
    if (b == NULL) return NULL;
    if (b->t == NULL) luaL_error(L, "attempt to use a freed tensor");
    return b->t;
}

rlaif_tensor *rlaifL_checktensor(lua_State *L, int i) {
    tensor_box *b = luaL_testudata(L, i, RLAIF_TENSOR_MT);
    if (b == NULL) luaL_typeerror(L, i, "tensor");
    if (b->t == NULL) luaL_error(L, "attempt to use a freed tensor");
    return b->t;
}

void rlaifL_pushtensor(lua_State *L, rlaif_tensor *t) {
    tensor_box *b = rlaifL_newbox(L);
    b->t = t;
    if (t->storage->free_data) rlaifL_gcpressure(L, rlaif_tensor_nbytes(t));
}

/* A step per allocation, as the manual suggests (LUA_GCSTEP "corresponding to the
 * allocation of stepsize Kbytes"), is not enough on its own: the collector paces
 * itself by its small heap of boxes, and 200 dead 1 MB tensors were measured still
 * uncollected at once. So a full collection also runs whenever the outside memory
 * allocated since the last one exceeds 64 MB plus the size of the Lua heap, which
 * keeps its cost proportional to the memory it recovers. */
void rlaifL_gcpressure(lua_State *L, size_t bytes) {
    static _Thread_local size_t pending;
    size_t kb = bytes >> 10;
    if (kb == 0) return;
    pending += bytes;
    size_t heap = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024;
    if (pending >= ((size_t)64 << 20) + heap) {
        pending = 0;
        lua_gc(L, LUA_GCCOLLECT);
    } else {
        lua_gc(L, LUA_GCSTEP, kb > (1u << 30) ? 1 << 30 : (int)kb);
    }
}

int rlaifL_fail(lua_State *L, const char *op) {
    const char *msg = rlaif_last_error();
    size_t n = strlen(op);
    if (strncmp(msg, op, n) == 0 && msg[n] == ':') return luaL_error(L, "%s", msg);   /* named already */
    /* the core names its function ("matmul: ..."): "tensor.matmul: ...", not both */
    const char *dot = strrchr(op, '.'), *colon = strrchr(op, ':');
    const char *base = dot > colon ? dot + 1 : colon ? colon + 1 : NULL;
    size_t bn = base ? strlen(base) : 0;
    if (bn > 0 && strncmp(msg, base, bn) == 0 && msg[bn] == ':') return luaL_error(L, "%s%s", op, msg + bn);
    return luaL_error(L, "%s: %s", op, msg);
}

int rlaifL_checkshape(lua_State *L, int i, int64_t *shape) {
    luaL_checktype(L, i, LUA_TTABLE);
    lua_Integer n = luaL_len(L, i);
    luaL_argcheck(L, n <= RLAIF_MAX_DIMS, i, "a shape has at most 4 dims");
    for (int d = 0; d < n; d++) {
        int isint;
        lua_geti(L, i, d + 1);
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        lua_pop(L, 1);
        if (!isint) return luaL_argerror(L, i, lua_pushfstring(L, "shape entry %d is not an integer", d + 1));
        if (v < 0 && v != -1)
            return luaL_argerror(L, i, lua_pushfstring(L, "shape entry %d is negative (%I)", d + 1, (LUAI_UACINT)v));
        shape[d] = v;
    }
    return (int)n;
}

int rlaifL_checkdim(lua_State *L, int i, int ndim) {
    lua_Integer d = luaL_checkinteger(L, i);
    if (d >= 1 && d <= ndim) return (int)d - 1;
    if (d < 0 && d >= -ndim) return ndim + (int)d;
    return luaL_argerror(L, i, lua_pushfstring(L, "dim %I out of range for a %d-d tensor", (LUAI_UACINT)d, ndim));
}

/* A shape table whose entries must all be known (no -1). */
static int check_exact_shape(lua_State *L, int i, int64_t *shape) {
    int n = rlaifL_checkshape(L, i, shape);
    for (int d = 0; d < n; d++)
        if (shape[d] < 0) luaL_argerror(L, i, lua_pushfstring(L, "shape entry %d is negative", d + 1));
    return n;
}

/* Call a core function producing *out into a pre-pushed box; raise on failure. */
#define NEW_RESULT(L, op, call)                             \
    do {                                                    \
        tensor_box *box_ = rlaifL_newbox(L);                \
        rlaif_tensor *out = NULL;                           \
        if ((call) != RLAIF_OK) return rlaifL_fail(L, op);  \
        box_->t = out;                                      \
        rlaifL_gcpressure(L, rlaif_tensor_nbytes(out));     \
        return 1;                                           \
    } while (0)

/* ---- creation ---- */

static int tensor_zeros(lua_State *L) {
    int64_t shape[RLAIF_MAX_DIMS];
    int n = check_exact_shape(L, 1, shape);
    NEW_RESULT(L, "tensor.zeros", rlaif_tensor_new(&out, n, shape));
}

static int fill_new(lua_State *L, const char *op, int shape_arg, float v) {
    int64_t shape[RLAIF_MAX_DIMS];
    int n = check_exact_shape(L, shape_arg, shape);
    tensor_box *b = rlaifL_newbox(L);
    if (rlaif_tensor_empty(&b->t, n, shape) != RLAIF_OK) return rlaifL_fail(L, op);
    rlaif_tensor_fill(b->t, v);   /* a fresh contiguous tensor: cannot fail */
    rlaifL_gcpressure(L, rlaif_tensor_nbytes(b->t));
    return 1;
}

static int tensor_ones(lua_State *L) { return fill_new(L, "tensor.ones", 1, 1.0f); }
static int tensor_full(lua_State *L) {
    return fill_new(L, "tensor.full", 1, (float)luaL_checknumber(L, 2));
}

static int tensor_arange(lua_State *L) {
    double start = 0, stop, step = 1;
    if (lua_isnoneornil(L, 2)) {
        stop = luaL_checknumber(L, 1);
    } else {
        start = luaL_checknumber(L, 1);
        stop = luaL_checknumber(L, 2);
        step = luaL_optnumber(L, 3, 1);
    }
    NEW_RESULT(L, "tensor.arange", rlaif_tensor_arange(&out, start, stop, step));
}

static int random_new(lua_State *L, int normal) {
    int64_t shape[RLAIF_MAX_DIMS];
    int n = check_exact_shape(L, 1, shape);
    lua_Integer seed = luaL_optinteger(L, 2, 0);
    rlaif_rng rng;
    rlaif_rng_seed(&rng, (uint64_t)seed);
    tensor_box *b = rlaifL_newbox(L);
    if (rlaif_tensor_empty(&b->t, n, shape) != RLAIF_OK) return rlaifL_fail(L, normal ? "tensor.randn" : "tensor.rand");
    if (normal) rlaif_tensor_randn(b->t, &rng);
    else rlaif_tensor_rand(b->t, &rng);
    rlaifL_gcpressure(L, rlaif_tensor_nbytes(b->t));
    return 1;
}

static int tensor_rand(lua_State *L) { return random_new(L, 0); }
static int tensor_randn(lua_State *L) { return random_new(L, 1); }

/* Shape of a nested table: follow first elements down. */
static int nested_shape(lua_State *L, int i, int64_t *shape) {
    int ndim = 0;
    lua_pushvalue(L, i);
    while (lua_type(L, -1) == LUA_TTABLE) {
        if (ndim == RLAIF_MAX_DIMS) luaL_error(L, "tensor.new: nesting deeper than %d levels", RLAIF_MAX_DIMS);
        shape[ndim++] = (int64_t)luaL_len(L, -1);
        lua_geti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    return ndim;
}

/* Copy the nested table at the top of the stack into data, checking shape. */
static void nested_fill(lua_State *L, int depth, int ndim, const int64_t *shape, float **data, char *path,
                        size_t plen) {
    if (depth == ndim) {
        int isnum;
        lua_Number v = lua_tonumberx(L, -1, &isnum);
        if (!isnum || lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "tensor.new: element %s is a %s, expected a number", path, luaL_typename(L, -1));
        *(*data)++ = (float)v;
        return;
    }
    if (lua_type(L, -1) != LUA_TTABLE)
        luaL_error(L, "tensor.new: element %s is a %s, expected a table of %I", path[0] ? path : "[]",
                   luaL_typename(L, -1), (LUAI_UACINT)shape[depth]);
    lua_Integer n = luaL_len(L, -1);
    if (n != shape[depth])
        luaL_error(L, "tensor.new: ragged table: %s has %I elements, expected %I", path[0] ? path : "the table",
                   (LUAI_UACINT)n, (LUAI_UACINT)shape[depth]);
    size_t len = strlen(path);
    for (lua_Integer k = 1; k <= n; k++) {
        snprintf(path + len, plen - len, "[%lld]", (long long)k);
        lua_geti(L, -1, k);
        nested_fill(L, depth + 1, ndim, shape, data, path, plen);
        lua_pop(L, 1);
    }
    path[len] = '\0';
}

static int tensor_new(lua_State *L) {
    int64_t shape[RLAIF_MAX_DIMS];
    int ndim = 0;
    luaL_argexpected(L, lua_type(L, 1) == LUA_TTABLE || lua_type(L, 1) == LUA_TNUMBER, 1, "table or number");
    if (lua_type(L, 1) == LUA_TTABLE) ndim = nested_shape(L, 1, shape);
    tensor_box *b = rlaifL_newbox(L);  /* owns the tensor if nested_fill raises */
    if (rlaif_tensor_empty(&b->t, ndim, shape) != RLAIF_OK) return rlaifL_fail(L, "tensor.new");
    float *data = b->t->data;
    char path[96] = "";
    lua_pushvalue(L, 1);
    nested_fill(L, 0, ndim, shape, &data, path, sizeof path);
    lua_pop(L, 1);
    rlaifL_gcpressure(L, rlaif_tensor_nbytes(b->t));
    return 1;
}

static int tensor_is_tensor(lua_State *L) {
    lua_pushboolean(L, luaL_testudata(L, 1, RLAIF_TENSOR_MT) != NULL);
    return 1;
}

/* ---- lifetime ---- */

static int tensor_free(lua_State *L) {  /* __gc, __close and :free() */
    tensor_box *b = luaL_checkudata(L, 1, RLAIF_TENSOR_MT);
    rlaif_tensor_release(b->t);
    b->t = NULL;
    return 0;
}

static int tensor_is_freed(lua_State *L) {
    tensor_box *b = luaL_checkudata(L, 1, RLAIF_TENSOR_MT);
    lua_pushboolean(L, b->t == NULL);
    return 1;
}

/* ---- inspection ---- */

static int tensor_shape(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int tensor_stride(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->stride[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int tensor_size(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    if (lua_isnoneornil(L, 2)) return tensor_shape(L);
    lua_pushinteger(L, t->shape[rlaifL_checkdim(L, 2, t->ndim)]);
    return 1;
}

static int tensor_numel(lua_State *L) {
    lua_pushinteger(L, rlaif_tensor_numel(rlaifL_checktensor(L, 1)));
    return 1;
}

static int tensor_dim(lua_State *L) {
    lua_pushinteger(L, rlaifL_checktensor(L, 1)->ndim);
    return 1;
}

static int tensor_nbytes(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)rlaif_tensor_nbytes(rlaifL_checktensor(L, 1)));
    return 1;
}

static int tensor_is_contiguous(lua_State *L) {
    lua_pushboolean(L, rlaif_tensor_is_contiguous(rlaifL_checktensor(L, 1)));
    return 1;
}

static int tensor_item(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    if (rlaif_tensor_numel(t) != 1) {
        char s[64];
        return luaL_error(L, "tensor.item: tensor of shape %s has %I elements, expected 1",
                          rlaif_shape_str(s, sizeof s, t->ndim, t->shape), (LUAI_UACINT)rlaif_tensor_numel(t));
    }
    int64_t zero[RLAIF_MAX_DIMS] = {0};
    lua_pushnumber(L, rlaif_tensor_get(t, zero));
    return 1;
}

static void push_nested(lua_State *L, const rlaif_tensor *t, int d, const float *p) {
    if (d == t->ndim) {
        lua_pushnumber(L, *p);
        return;
    }
    lua_createtable(L, (int)t->shape[d], 0);
    for (int64_t i = 0; i < t->shape[d]; i++) {
        push_nested(L, t, d + 1, p + i * t->stride[d]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int tensor_totable(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    luaL_checkstack(L, 2 * RLAIF_MAX_DIMS + 4, "tensor.totable");
    push_nested(L, t, 0, t->data);
    return 1;
}

static int tensor_len(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    if (t->ndim == 0) return luaL_error(L, "tensor: a 0-d tensor has no length");
    lua_pushinteger(L, t->shape[0]);
    return 1;
}

/* ---- views ---- */

static int tensor_view_(lua_State *L, int reshape) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    int64_t shape[RLAIF_MAX_DIMS];
    int n = rlaifL_checkshape(L, 2, shape);
    if (reshape) NEW_RESULT(L, "tensor.reshape", rlaif_tensor_reshape(&out, t, n, shape));
    NEW_RESULT(L, "tensor.view", rlaif_tensor_view(&out, t, n, shape));
}
static int tensor_view(lua_State *L) { return tensor_view_(L, 0); }
static int tensor_reshape(lua_State *L) { return tensor_view_(L, 1); }

static int tensor_transpose(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    int d0, d1;
    if (lua_isnoneornil(L, 2)) {  /* t:transpose() swaps the last two dims */
        luaL_argcheck(L, t->ndim >= 2, 1, "transpose without dims needs at least 2 dims");
        d0 = t->ndim - 2, d1 = t->ndim - 1;
    } else {
        d0 = rlaifL_checkdim(L, 2, t->ndim);
        d1 = rlaifL_checkdim(L, 3, t->ndim);
    }
    NEW_RESULT(L, "tensor.transpose", rlaif_tensor_transpose(&out, t, d0, d1));
}

static int tensor_permute(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    int perm[RLAIF_MAX_DIMS];
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_argcheck(L, luaL_len(L, 2) == t->ndim, 2, "permute needs one entry per dim");
    for (int i = 0; i < t->ndim; i++) {
        lua_geti(L, 2, i + 1);
        lua_Integer d = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
        lua_pop(L, 1);
        /* range-check before the int cast (2^32 + 2 is not 2); -1 makes the core refuse it */
        perm[i] = d >= 1 && d <= t->ndim ? (int)d - 1 : d < 0 && d >= -t->ndim ? t->ndim + (int)d : -1;
    }
    NEW_RESULT(L, "tensor.permute", rlaif_tensor_permute(&out, t, perm));
}

static int tensor_narrow(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    int dim = rlaifL_checkdim(L, 2, t->ndim);
    lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
    if (start < 0) start += t->shape[dim] + 1;
    NEW_RESULT(L, "tensor.narrow", rlaif_tensor_narrow(&out, t, dim, start - 1, len));
}

static int tensor_select(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    int dim = rlaifL_checkdim(L, 2, t->ndim);
    lua_Integer i = luaL_checkinteger(L, 3);
    if (i < 0) i += t->shape[dim] + 1;
    NEW_RESULT(L, "tensor.select", rlaif_tensor_select(&out, t, dim, i - 1));
}

static int tensor_expand(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    int64_t shape[RLAIF_MAX_DIMS];
    int n = rlaifL_checkshape(L, 2, shape);
    for (int i = 0; i < n; i++) {  /* -1 keeps the size */
        int src = i - (n - t->ndim);
        if (shape[i] == -1) shape[i] = src >= 0 ? t->shape[src] : 1;
    }
    NEW_RESULT(L, "tensor.expand", rlaif_tensor_expand(&out, t, n, shape));
}

static int tensor_contiguous(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    if (rlaif_tensor_is_contiguous(t)) {
        lua_settop(L, 1);
        return 1;
    }
    NEW_RESULT(L, "tensor.contiguous", rlaif_tensor_clone(&out, t));
}

static int tensor_clone(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    NEW_RESULT(L, "tensor.clone", rlaif_tensor_clone(&out, t));
}

static int tensor_copy_(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1), *src = rlaifL_checktensor(L, 2);
    if (rlaif_tensor_copy_(t, src) != RLAIF_OK) return rlaifL_fail(L, "tensor.copy_");
    lua_settop(L, 1);
    return 1;
}

static int tensor_fill_(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    if (rlaif_tensor_fill(t, (float)luaL_checknumber(L, 2)) != RLAIF_OK) return rlaifL_fail(L, "tensor.fill_");
    lua_settop(L, 1);
    return 1;
}

static int tensor_zero_(lua_State *L) {
    if (rlaif_tensor_fill(rlaifL_checktensor(L, 1), 0.0f) != RLAIF_OK) return rlaifL_fail(L, "tensor.zero_");
    lua_settop(L, 1);
    return 1;
}

/* t[i]: an integer selects along dim 1 (a number when the result is 0-d);
 * any other key looks up the methods table (upvalue 1). */
static int tensor_index(lua_State *L) {
    if (lua_type(L, 2) == LUA_TNUMBER) {
        rlaif_tensor *t = rlaifL_checktensor(L, 1);
        lua_Integer i = luaL_checkinteger(L, 2);
        if (t->ndim == 0) return luaL_error(L, "tensor: cannot index a 0-d tensor (use :item())");
        if (i < 0) i += t->shape[0] + 1;
        rlaif_tensor *v = NULL;
        if (rlaif_tensor_select(&v, t, 0, i - 1) != RLAIF_OK) return rlaifL_fail(L, "tensor[]");
        if (v->ndim == 0) {
            lua_pushnumber(L, v->data[0]);
            rlaif_tensor_release(v);
        } else {
            rlaifL_pushtensor(L, v);
        }
        return 1;
    }
    lua_pushvalue(L, 2);
    lua_gettable(L, lua_upvalueindex(1));
    return 1;
}

static int tensor_newindex(lua_State *L) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    if (t->ndim == 0) return luaL_error(L, "tensor: cannot index a 0-d tensor");
    if (i < 0) i += t->shape[0] + 1;
    rlaif_tensor *v = NULL, *src;
    if (rlaif_tensor_select(&v, t, 0, i - 1) != RLAIF_OK) return rlaifL_fail(L, "tensor[]");
    rlaif_status st = RLAIF_OK;
    if (lua_type(L, 3) == LUA_TNUMBER) st = rlaif_tensor_fill(v, (float)lua_tonumber(L, 3));
    else if ((src = rlaifL_testtensor(L, 3)) != NULL) st = rlaif_tensor_copy_(v, src);
    else st = rlaif_fail(RLAIF_EINVAL, "can only assign a number or a tensor, got %s", luaL_typename(L, 3));
    rlaif_tensor_release(v);
    if (st != RLAIF_OK) return rlaifL_fail(L, "tensor[]=");
    return 0;
}

/* ---- math ---- */

static int binary(lua_State *L, rlaif_binop op, const char *name) {
    rlaif_tensor *a = rlaifL_testtensor(L, 1), *b = rlaifL_testtensor(L, 2);
    if (a && b) NEW_RESULT(L, name, rlaif_tensor_binary(&out, op, a, b));
    if (a) {
        float s = (float)luaL_checknumber(L, 2);
        NEW_RESULT(L, name, rlaif_tensor_binary_scalar(&out, op, a, s, 0));
    }
    if (b) {
        float s = (float)luaL_checknumber(L, 1);
        NEW_RESULT(L, name, rlaif_tensor_binary_scalar(&out, op, b, s, 1));
    }
    return luaL_typeerror(L, 1, "tensor");
}

static int binary_(lua_State *L, rlaif_binop op, const char *name) {
    rlaif_tensor *a = rlaifL_checktensor(L, 1), *b = rlaifL_testtensor(L, 2);
    rlaif_status st = b ? rlaif_tensor_binary_(a, op, b)
                        : rlaif_tensor_binary_scalar_(a, op, (float)luaL_checknumber(L, 2));
    if (st != RLAIF_OK) return rlaifL_fail(L, name);
    lua_settop(L, 1);
    return 1;
}

static int tensor_add(lua_State *L) { return binary(L, RLAIF_ADD, "tensor.add"); }
static int tensor_sub(lua_State *L) { return binary(L, RLAIF_SUB, "tensor.sub"); }
static int tensor_mul(lua_State *L) { return binary(L, RLAIF_MUL, "tensor.mul"); }
static int tensor_div(lua_State *L) { return binary(L, RLAIF_DIV, "tensor.div"); }
static int tensor_pow(lua_State *L) { return binary(L, RLAIF_POW, "tensor.pow"); }
static int tensor_maximum(lua_State *L) { return binary(L, RLAIF_MAXIMUM, "tensor.maximum"); }
static int tensor_minimum(lua_State *L) { return binary(L, RLAIF_MINIMUM, "tensor.minimum"); }
static int tensor_add_(lua_State *L) { return binary_(L, RLAIF_ADD, "tensor.add_"); }
static int tensor_sub_(lua_State *L) { return binary_(L, RLAIF_SUB, "tensor.sub_"); }
static int tensor_mul_(lua_State *L) { return binary_(L, RLAIF_MUL, "tensor.mul_"); }
static int tensor_div_(lua_State *L) { return binary_(L, RLAIF_DIV, "tensor.div_"); }

static int unary(lua_State *L, rlaif_unop op) {
    rlaif_tensor *a = rlaifL_checktensor(L, 1);
    NEW_RESULT(L, rlaif_unop_name(op), rlaif_tensor_unary(&out, op, a));
}

static int unary_(lua_State *L, rlaif_unop op) {
    if (rlaif_tensor_unary_(rlaifL_checktensor(L, 1), op) != RLAIF_OK) return rlaifL_fail(L, "tensor");   /* names the op */
    lua_settop(L, 1);
    return 1;
}

static int tensor_neg(lua_State *L) { return unary(L, RLAIF_NEG); }
static int tensor_exp(lua_State *L) { return unary(L, RLAIF_EXP); }
static int tensor_log(lua_State *L) { return unary(L, RLAIF_LOG); }
static int tensor_sqrt(lua_State *L) { return unary(L, RLAIF_SQRT); }
static int tensor_rsqrt(lua_State *L) { return unary(L, RLAIF_RSQRT); }
static int tensor_tanh(lua_State *L) { return unary(L, RLAIF_TANH); }
static int tensor_sigmoid(lua_State *L) { return unary(L, RLAIF_SIGMOID); }
static int tensor_relu(lua_State *L) { return unary(L, RLAIF_RELU); }
static int tensor_abs(lua_State *L) { return unary(L, RLAIF_ABS); }
static int tensor_square(lua_State *L) { return unary(L, RLAIF_SQUARE); }
static int tensor_exp_(lua_State *L) { return unary_(L, RLAIF_EXP); }
static int tensor_relu_(lua_State *L) { return unary_(L, RLAIF_RELU); }

/* gelu(t [, "tanh"]): exact erf form by default, like PyTorch. */
static int tensor_gelu(lua_State *L) {
    static const char *const modes[] = {"none", "erf", "tanh", NULL};
    int mode = luaL_checkoption(L, 2, "none", modes);
    return unary(L, mode == 2 ? RLAIF_GELU_TANH : RLAIF_GELU);
}

static int tensor_clamp(lua_State *L) {
    rlaif_tensor *a = rlaifL_checktensor(L, 1);
    float lo = lua_isnoneornil(L, 2) ? NAN : (float)luaL_checknumber(L, 2);
    float hi = lua_isnoneornil(L, 3) ? NAN : (float)luaL_checknumber(L, 3);
    NEW_RESULT(L, "tensor.clamp", rlaif_tensor_clamp(&out, a, lo, hi));
}

/* ---- reductions ---- */

/* t:op([dim [, keepdim [, correction]]]); nil dim = every element. */
static int reduce(lua_State *L, rlaif_reduce op) {
    rlaif_tensor *a = rlaifL_checktensor(L, 1);
    int whole = lua_isnoneornil(L, 2);
    int dim = whole ? -1 : rlaifL_checkdim(L, 2, a->ndim);
    int keepdim = lua_toboolean(L, 3);
    lua_Integer corr = luaL_optinteger(L, 4, 1);
    luaL_argcheck(L, corr >= INT_MIN && corr <= INT_MAX, 4, "correction out of range");
    int correction = (int)corr;
    char name[32];
    snprintf(name, sizeof name, "tensor.%s", rlaif_reduce_name(op));
    tensor_box *b = rlaifL_newbox(L);
    if (rlaif_tensor_reduce(&b->t, op, a, dim, keepdim, correction) != RLAIF_OK) return rlaifL_fail(L, name);
    if (op == RLAIF_ARGMAX || op == RLAIF_ARGMIN) rlaif_tensor_binary_scalar_(b->t, RLAIF_ADD, 1.0f);
    rlaifL_gcpressure(L, rlaif_tensor_nbytes(b->t));
    return 1;
}

/* max/min along a dim also return the 1-based indices, like torch.max(dim). */
static int reduce_with_index(lua_State *L, rlaif_reduce op, rlaif_reduce argop) {
    if (lua_isnoneornil(L, 2)) return reduce(L, op);
    lua_settop(L, 4);
    reduce(L, op);     /* 5: values */
    reduce(L, argop);  /* 6: indices */
    return 2;
}

static int tensor_sum(lua_State *L) { return reduce(L, RLAIF_SUM); }
static int tensor_mean(lua_State *L) { return reduce(L, RLAIF_MEAN); }
static int tensor_max(lua_State *L) { return reduce_with_index(L, RLAIF_MAX, RLAIF_ARGMAX); }
static int tensor_min(lua_State *L) { return reduce_with_index(L, RLAIF_MIN, RLAIF_ARGMIN); }
static int tensor_argmax(lua_State *L) { return reduce(L, RLAIF_ARGMAX); }
static int tensor_argmin(lua_State *L) { return reduce(L, RLAIF_ARGMIN); }
static int tensor_logsumexp(lua_State *L) { return reduce(L, RLAIF_LOGSUMEXP); }
static int tensor_var(lua_State *L) { return reduce(L, RLAIF_VAR); }

static int softmax(lua_State *L, int log_) {
    rlaif_tensor *a = rlaifL_checktensor(L, 1);
    luaL_argcheck(L, a->ndim > 0, 1, "softmax needs at least 1 dim");
    int dim = lua_isnoneornil(L, 2) ? a->ndim - 1 : rlaifL_checkdim(L, 2, a->ndim);
    NEW_RESULT(L, log_ ? "tensor.log_softmax" : "tensor.softmax", rlaif_tensor_softmax(&out, a, dim, log_));
}
static int tensor_softmax(lua_State *L) { return softmax(L, 0); }
static int tensor_log_softmax(lua_State *L) { return softmax(L, 1); }

/* layer_norm(x [, weight [, bias [, eps=1e-5]]]) over the last dim. */
static int tensor_layer_norm(lua_State *L) {
    rlaif_tensor *x = rlaifL_checktensor(L, 1);
    rlaif_tensor *w = lua_isnoneornil(L, 2) ? NULL : rlaifL_checktensor(L, 2);
    rlaif_tensor *b = lua_isnoneornil(L, 3) ? NULL : rlaifL_checktensor(L, 3);
    float eps = (float)luaL_optnumber(L, 4, 1e-5);
    NEW_RESULT(L, "tensor.layer_norm", rlaif_tensor_layer_norm(&out, x, w, b, eps));
}

/* rms_norm(x [, weight [, eps=1e-6]]) over the last dim. */
static int tensor_rms_norm(lua_State *L) {
    rlaif_tensor *x = rlaifL_checktensor(L, 1);
    rlaif_tensor *w = lua_isnoneornil(L, 2) ? NULL : rlaifL_checktensor(L, 2);
    float eps = (float)luaL_optnumber(L, 3, 1e-6);
    NEW_RESULT(L, "tensor.rms_norm", rlaif_tensor_rms_norm(&out, x, w, eps));
}

/* matmul(a, b [, out]): the result is written into `out` when given. */
static int tensor_matmul(lua_State *L) {
    rlaif_tensor *a = rlaifL_checktensor(L, 1), *b = rlaifL_checktensor(L, 2);
    if (!lua_isnoneornil(L, 3)) {
        rlaif_tensor *out = rlaifL_checktensor(L, 3);
        if (rlaif_tensor_matmul(&out, a, b) != RLAIF_OK) return rlaifL_fail(L, "tensor.matmul");
        lua_settop(L, 3);
        return 1;
    }
    NEW_RESULT(L, "tensor.matmul", rlaif_tensor_matmul(&out, a, b));
}

/* For benchmarks only: C = A @ B by one direct bli_sgemm call on the tensors'
 * buffers (contiguous 2-d operands), the reference rlaif's matmul is timed against. */
static int tensor_blis_sgemm(lua_State *L) {
    rlaif_tensor *a = rlaifL_checktensor(L, 1), *b = rlaifL_checktensor(L, 2), *c = rlaifL_checktensor(L, 3);
    if (rlaif_blis_sgemm_direct(c, a, b) != RLAIF_OK) return rlaifL_fail(L, "tensor._blis_sgemm");
    return 0;
}

/* ---- I/O ---- */

/* save(path, {name = tensor, ...}): names sorted, written atomically. */
static int tensor_save(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_newtable(L);  /* 3: sorted names */
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "tensor.save: keys must be tensor names (strings)");
        if (rlaifL_testtensor(L, -1) == NULL)
            return luaL_error(L, "tensor.save: '%s' is a %s, expected a tensor", lua_tostring(L, -2),
                              luaL_typename(L, -1));
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, 3, ++n);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, 3);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    /* Scratch array in a userdata so an error cannot leak it. */
    rlaif_named_tensor *items = lua_newuserdatauv(L, sizeof *items * (size_t)(n ? n : 1), 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 3, i + 1);
        items[i].name = (char *)lua_tostring(L, -1);
        lua_gettable(L, 2);
        items[i].tensor = rlaifL_checktensor(L, -1);
        lua_pop(L, 1);
    }
    if (rlaif_safetensors_save(path, items, n) != RLAIF_OK) return luaL_error(L, "tensor.save: %s", rlaif_last_error());
    return 0;
}

/* load(path) -> {name = tensor, ...}, {names in file order} */
static int tensor_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    rlaif_named_tensor *items = NULL;
    int n = 0;
    if (rlaif_safetensors_load(path, &items, &n) != RLAIF_OK) return luaL_error(L, "tensor.load: %s", rlaif_last_error());
    luaL_checkstack(L, 8, "tensor.load");
    lua_createtable(L, 0, n);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {  /* hand each reference to a box; nothing here raises but memory errors */
        rlaifL_pushtensor(L, items[i].tensor);
        items[i].tensor = NULL;
        lua_setfield(L, -3, items[i].name);
        lua_pushstring(L, items[i].name);
        lua_rawseti(L, -2, i + 1);
    }
    rlaif_safetensors_free(items, n);
    return 2;
}

/* ---- registration ---- */

#define M(name) {#name, tensor_##name}
static const luaL_Reg tensor_methods[] = {
    M(shape), M(stride), M(size), M(numel), M(dim), M(nbytes), M(is_contiguous), M(item), M(totable),
    M(view), M(reshape), M(transpose), M(permute), M(narrow), M(select), M(expand), M(contiguous), M(clone),
    M(copy_), M(fill_), M(zero_), M(free), M(is_freed),
    M(add), M(sub), M(mul), M(div), M(pow), M(maximum), M(minimum), M(add_), M(sub_), M(mul_), M(div_),
    M(neg), M(exp), M(log), M(sqrt), M(rsqrt), M(tanh), M(sigmoid), M(relu), M(gelu), M(abs), M(square),
    M(clamp), M(exp_), M(relu_),
    M(sum), M(mean), M(max), M(min), M(argmax), M(argmin), M(logsumexp), M(var),
    M(softmax), M(log_softmax), M(layer_norm), M(rms_norm), M(matmul),
    {NULL, NULL},
};

static const luaL_Reg tensor_functions[] = {
    M(new), M(zeros), M(ones), M(full), M(arange), M(rand), M(randn), M(is_tensor), M(save), M(load),
    {"_blis_sgemm", tensor_blis_sgemm},
    {NULL, NULL},
};

static const luaL_Reg tensor_meta[] = {
    {"__gc", tensor_free}, {"__close", tensor_free}, {"__len", tensor_len},
    {"__add", tensor_add}, {"__sub", tensor_sub}, {"__mul", tensor_mul}, {"__div", tensor_div},
    {"__pow", tensor_pow}, {"__unm", tensor_neg}, {"__newindex", tensor_newindex},
    {NULL, NULL},
};
#undef M

int luaopen_rlaif_tensor(lua_State *L) {
    /* module table: constructors plus every method as a function (tensor.exp(t)) */
    luaL_newlib(L, tensor_functions);
    luaL_setfuncs(L, tensor_methods, 0);
    /* metatable, with __index resolving integers first, then methods */
    if (luaL_newmetatable(L, RLAIF_TENSOR_MT)) {
        luaL_setfuncs(L, tensor_meta, 0);
        luaL_newlibtable(L, tensor_methods);
        luaL_setfuncs(L, tensor_methods, 0);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "methods");  /* the Lua facade adds methods here */
        lua_pushcclosure(L, tensor_index, 1);
        lua_setfield(L, -2, "__index");
    }
    lua_setfield(L, -2, "meta");  /* tensor.meta: the metatable, for the facade */
    return 1;
}
