/* src/lua/l_dist.c -- Lua binding of src/core/dist.h: rlaif.core.dist.
 *
 *   rank(), size(), local_rank(), local_size(), info() -> {built, active, library, ...}
 *   barrier(), finalize()
 *   allreduce(tensor [, op]) -> tensor        in place; op "sum" | "mean" | "max" | "min"
 *   allreduce_numbers({x...} [, op]) -> {y...} float64, a new array
 *   broadcast(tensor, root) -> tensor         in place
 *   broadcast_string(s | nil, root) -> s      root's string on every rank
 *   gather_strings(s, root) -> {s0, s1, ...} on root (every rank when root = -1), nil elsewhere
 *   allreduce_grads(model [, op])             the flat gradient buffer, "sum" | "mean"
 *   broadcast_model(model, root)              parameters, AdamW state and step
 *
 * Ranks are 0-based, as MPI numbers them. Each function checks its arguments,
 * calls one core function and pushes; the JSON encoding of Lua values and the
 * option checks live in lua/rlaif/dist.lua. Tensors and models are borrowed for
 * the call; a non-contiguous tensor goes through a contiguous copy that is
 * written back. Scratch memory sits in userdata boxes, so an error cannot leak it. */
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "l_util.h"

static const char *const OPS[] = {"sum", "mean", "max", "min", NULL};

static int dist_fail(lua_State *L, const char *op) {
    const char *e = rlaif_last_error();
    if (strncmp(e, "dist.", 5) == 0) return luaL_error(L, "%s", e);
    return luaL_error(L, "%s: %s", op, e);
}

static int check_root(lua_State *L, int i) {
    lua_Integer r = luaL_optinteger(L, i, 0);
    luaL_argcheck(L, r >= 0 && r < rlaif_dist_size(), i, "root must be a rank from 0 to size() - 1");
    return (int)r;
}

static int dist_rank(lua_State *L) {
    lua_pushinteger(L, rlaif_dist_rank());
    return 1;
}

static int dist_size(lua_State *L) {
    lua_pushinteger(L, rlaif_dist_size());
    return 1;
}

static int dist_local_rank(lua_State *L) {
    lua_pushinteger(L, rlaif_dist_local_rank());
    return 1;
}

static int dist_local_size(lua_State *L) {
    lua_pushinteger(L, rlaif_dist_local_size());
    return 1;
}

/* info() -> {built=, active=, library=, rank=, size=, local_rank=, local_size=, thread_level=} */
static int dist_info(lua_State *L) {
    static const char *const levels[] = {"single", "funneled", "serialized", "multiple"};
    int lv = rlaif_dist_thread_level();
    lua_createtable(L, 0, 8);
    lua_pushboolean(L, rlaif_dist_built());
    lua_setfield(L, -2, "built");
    lua_pushboolean(L, rlaif_dist_active());
    lua_setfield(L, -2, "active");
    lua_pushstring(L, rlaif_dist_library());
    lua_setfield(L, -2, "library");
    lua_pushinteger(L, rlaif_dist_rank());
    lua_setfield(L, -2, "rank");
    lua_pushinteger(L, rlaif_dist_size());
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, rlaif_dist_local_rank());
    lua_setfield(L, -2, "local_rank");
    lua_pushinteger(L, rlaif_dist_local_size());
    lua_setfield(L, -2, "local_size");
    if (lv >= 0 && lv <= 3) {
        lua_pushstring(L, levels[lv]);
        lua_setfield(L, -2, "thread_level");
    }
    return 1;
}

static int dist_barrier(lua_State *L) {
    if (rlaif_dist_barrier() != RLAIF_OK) return dist_fail(L, "dist.barrier");
    return 0;
}

static int dist_finalize(lua_State *L) {
    if (rlaif_dist_finalize() != RLAIF_OK) return dist_fail(L, "dist.finalize");
    return 0;
}

/* Run `fn` over a tensor's floats in place: directly when contiguous, else on
 * a contiguous copy that is copied back. */
typedef rlaif_status (*float_fn)(float *x, size_t n, int arg);
static rlaif_status allreduce_fn(float *x, size_t n, int op) {
    return rlaif_dist_allreduce_f32(x, n, (rlaif_dist_op)op);
}
static rlaif_status broadcast_fn(float *x, size_t n, int root) { return rlaif_dist_broadcast_f32(x, n, root); }

static int on_tensor(lua_State *L, const char *op, float_fn fn, int arg) {
    rlaif_tensor *t = rlaifL_checktensor(L, 1);
    if (rlaif_tensor_check_writable(op, t) != RLAIF_OK) return dist_fail(L, op);
    size_t n = (size_t)rlaif_tensor_numel(t);
    if (rlaif_tensor_is_contiguous(t)) {
        if (fn(t->data, n, arg) != RLAIF_OK) return dist_fail(L, op);
        lua_settop(L, 1);
        return 1;
    }
    rlaif_tensor *c = NULL;
    rlaif_status st = rlaif_tensor_contiguous(&c, t);
    if (st == RLAIF_OK) st = fn(c->data, n, arg);
    if (st == RLAIF_OK) st = rlaif_tensor_copy_(t, c);
    rlaif_tensor_release(c);
    if (st != RLAIF_OK) return dist_fail(L, op);
    lua_settop(L, 1);
    return 1;
}

static int dist_allreduce(lua_State *L) {
    int op = luaL_checkoption(L, 2, "sum", OPS);
    return on_tensor(L, "dist.allreduce", allreduce_fn, op);
}

static int dist_broadcast(lua_State *L) {
    int root = check_root(L, 2);
    return on_tensor(L, "dist.broadcast", broadcast_fn, root);
}

static int dist_allreduce_numbers(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int op = luaL_checkoption(L, 2, "sum", OPS);
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 0 && n <= (1 << 26), 1, "at most 2^26 numbers");
    double *x = lua_newuserdatauv(L, sizeof(double) * (size_t)(n ? n : 1), 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        int isnum = 0;
        x[i] = lua_tonumberx(L, -1, &isnum);
        if (!isnum)
            return luaL_error(L, "dist.allreduce_numbers: element %d is a %s, expected a number", (int)i + 1,
                              luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    if (rlaif_dist_allreduce_f64(x, (size_t)n, (rlaif_dist_op)op) != RLAIF_OK)
        return dist_fail(L, "dist.allreduce_numbers");
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_pushnumber(L, x[i]);
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

/* a malloc'd buffer from the core, held by a userdata box until pushed */
typedef struct bytes_box { char *p; size_t *lens; } bytes_box;

static int bytes_gc(lua_State *L) {
    bytes_box *b = lua_touserdata(L, 1);
    free(b->p), free(b->lens);
    b->p = NULL, b->lens = NULL;
    return 0;
}

static bytes_box *new_bytes_box(lua_State *L) {
    bytes_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->p = NULL, b->lens = NULL;
    if (luaL_newmetatable(L, "rlaif.DistBytes")) {
        lua_pushcfunction(L, bytes_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

static int dist_broadcast_string(lua_State *L) {
    int root = check_root(L, 2);
    size_t len = 0;
    const char *s = NULL;
    if (rlaif_dist_rank() == root) s = luaL_checklstring(L, 1, &len);
    bytes_box *b = new_bytes_box(L);
    char *buf = (char *)s;
    if (rlaif_dist_broadcast_bytes(&buf, &len, root) != RLAIF_OK) return dist_fail(L, "dist.broadcast_string");
    if (rlaif_dist_rank() == root) {
        lua_pushvalue(L, 1);
        return 1;
    }
    b->p = buf;
    lua_pushlstring(L, buf, len);
    return 1;
}

static int dist_gather_strings(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_Integer root = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, root >= -1 && root < rlaif_dist_size(), 2, "root must be -1 (every rank) or a rank");
    bytes_box *b = new_bytes_box(L);
    if (rlaif_dist_gather_bytes(s, len, (int)root, &b->p, &b->lens) != RLAIF_OK)
        return dist_fail(L, "dist.gather_strings");
    if (b->p == NULL) {
        lua_pushnil(L);
        return 1;
    }
    int n = rlaif_dist_size();
    lua_createtable(L, n, 0);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        lua_pushlstring(L, b->p + off, b->lens[i]);
        lua_seti(L, -2, i + 1);
        off += b->lens[i];
    }
    return 1;
}

static int dist_allreduce_grads(lua_State *L) {
    rlaif_model *m = rlaifL_checkmodel(L, 1);
    static const char *const gops[] = {"sum", "mean", NULL};
    int op = luaL_checkoption(L, 2, "sum", gops);
    if (rlaif_dist_allreduce_grads(m, op == 0 ? RLAIF_DIST_SUM : RLAIF_DIST_MEAN) != RLAIF_OK)
        return dist_fail(L, "dist.allreduce_grads");
    return 0;
}

static int dist_broadcast_model(lua_State *L) {
    rlaif_model *m = rlaifL_checkmodel(L, 1);
    int root = check_root(L, 2);
    if (rlaif_dist_broadcast_model(m, root) != RLAIF_OK) return dist_fail(L, "dist.broadcast_model");
    return 0;
}

static const luaL_Reg dist_funcs[] = {
    {"rank", dist_rank},
    {"size", dist_size},
    {"local_rank", dist_local_rank},
    {"local_size", dist_local_size},
    {"info", dist_info},
    {"barrier", dist_barrier},
    {"finalize", dist_finalize},
    {"allreduce", dist_allreduce},
    {"allreduce_numbers", dist_allreduce_numbers},
    {"broadcast", dist_broadcast},
    {"broadcast_string", dist_broadcast_string},
    {"gather_strings", dist_gather_strings},
    {"allreduce_grads", dist_allreduce_grads},
    {"broadcast_model", dist_broadcast_model},
    {NULL, NULL},
};

int luaopen_rlaif_dist(lua_State *L) {
    if (rlaif_dist_init() != RLAIF_OK) return luaL_error(L, "%s", rlaif_last_error());
    luaL_newlib(L, dist_funcs);
    return 1;
}
