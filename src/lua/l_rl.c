/* src/lua/l_rl.c -- Lua binding of src/core/rl.h: rlaif.core.rl.
 *
 * An RL batch userdata ("rlaif.RLBatch") is a box holding one rlaif_rl_batch
 * (freed by __gc/__close/:free()). Per-token fields are named by strings
 * ("logprobs", "old_logprobs", "ref_logprobs", "values", "old_values", "rewards",
 * "advantages", "returns", "entropy"); they cross to Lua as one array per row
 * with one number per response token, and "scores" as one number per row. Rows
 * are 1-based here and 0-based in the core. No arithmetic lives in this file:
 * each method checks, calls one core function, pushes.
 * Models are borrowed for the duration of a call (rlaifL_checkmodel).
 * Not here: the trainer (lua/rlaif/rl.lua). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "l_util.h"
#include "rl.h"

#define RLBATCH_MT "rlaif.RLBatch"

typedef struct rlbatch_box { rlaif_rl_batch *b; } rlbatch_box;

static const char *const FIELDS[] = {"logprobs", "old_logprobs", "ref_logprobs", "values", "old_values",
                                     "rewards", "advantages", "returns", "entropy", NULL};

static rlaif_rl_batch *check_batch(lua_State *L, int i) {
    rlbatch_box *b = luaL_checkudata(L, i, RLBATCH_MT);
    if (b->b == NULL) luaL_error(L, "attempt to use a freed RL batch");
    return b->b;
}

static int rlbatch_free(lua_State *L) {   /* __gc, __close and :free() */
    rlbatch_box *b = luaL_checkudata(L, 1, RLBATCH_MT);
    rlaif_rl_batch_free(b->b);
    b->b = NULL;
    return 0;
}

static rlbatch_box *new_box(lua_State *L) {
    rlbatch_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->b = NULL;
    luaL_setmetatable(L, RLBATCH_MT);
    return b;
}

static void *scratch(lua_State *L, size_t bytes) { return lua_newuserdatauv(L, bytes ? bytes : 1, 0); }

static int check_fieldname(lua_State *L, int i) { return luaL_checkoption(L, i, NULL, FIELDS); }

/* ---- construction ---- */

/* token rows at index i: array of arrays of integers; lengths into len, ids into a scratch */
static int32_t *read_rows(lua_State *L, int i, int B, int *len, const char *what) {
    luaL_checktype(L, i, LUA_TTABLE);
    size_t total = 0;
    for (int b = 0; b < B; b++) {
        if (lua_geti(L, i, b + 1) != LUA_TTABLE)
            luaL_error(L, "rl.batch: %s[%d] is a %s, expected an array of token ids", what, b + 1, luaL_typename(L, -1));
        lua_Integer n = luaL_len(L, -1);
        lua_pop(L, 1);
        if (n < 1) luaL_error(L, "rl.batch: %s[%d] is empty", what, b + 1);
        if (n > (1 << 24)) luaL_error(L, "rl.batch: %s[%d] is too long (%d tokens)", what, b + 1, (int)n);
        len[b] = (int)n;
        total += (size_t)n;
        if (total > ((size_t)1 << 28)) luaL_error(L, "rl.batch: too many %s tokens", what);
    }
    int32_t *ids = scratch(L, sizeof(int32_t) * total);
    size_t k = 0;
    for (int b = 0; b < B; b++) {
        lua_geti(L, i, b + 1);
        for (int t = 0; t < len[b]; t++) {
            lua_geti(L, -1, t + 1);
            int isint;
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            if (!isint || v < 0 || v > INT32_MAX)
                luaL_error(L, "rl.batch: %s[%d][%d] is not a token id (got %s)", what, b + 1, t + 1,
                           luaL_tolstring(L, -1, NULL));
            ids[k++] = (int32_t)v;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return ids;
}

/* rl.batch(prompts, responses[, pad]) -> batch */
static int rl_batch(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer B = luaL_len(L, 1);
    luaL_argcheck(L, B > 0, 1, "no prompts");
    luaL_argcheck(L, B <= (1 << 20), 1, "too many rows");
    if (luaL_len(L, 2) != B)
        return luaL_error(L, "rl.batch: %d prompts but %d responses", (int)B, (int)luaL_len(L, 2));
    int pad = (int)luaL_optinteger(L, 3, 0);
    int *plen = scratch(L, sizeof(int) * B), *rlen = scratch(L, sizeof(int) * B);
    int32_t *p = read_rows(L, 1, (int)B, plen, "prompts");
    int32_t *r = read_rows(L, 2, (int)B, rlen, "responses");
    rlbatch_box *box = new_box(L);
    if (rlaif_rl_batch_new(&box->b, p, plen, r, rlen, (int)B, pad) != RLAIF_OK) return rlaifL_fail(L, "rl.batch");
    return 1;
}

/* ---- fields ---- */

/* bt:size() -> B, T, response tokens */
static int rlbatch_size(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    lua_pushinteger(L, bt->B);
    lua_pushinteger(L, bt->T);
    lua_pushinteger(L, rlaif_rl_batch_tokens(bt));
    return 3;
}

static void push_floats(lua_State *L, const float *x, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, x[i]);
        lua_seti(L, -2, i + 1);
    }
}

/* bt:get(name) -> per-row arrays of per-token numbers ("scores": one number per row) */
static int rlbatch_get(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    if (strcmp(luaL_checkstring(L, 2), "scores") == 0) {
        push_floats(L, bt->scores, bt->B);
        return 1;
    }
    int f = check_fieldname(L, 2);
    lua_createtable(L, bt->B, 0);
    for (int b = 0; b < bt->B; b++) {
        push_floats(L, bt->field[f] + (size_t)b * bt->T + bt->plen[b] - 1, bt->rlen[b]);
        lua_seti(L, -2, b + 1);
    }
    return 1;
}

static float check_finite(lua_State *L, int idx, const char *name, int b, int t) {
    int isnum;
    lua_Number v = lua_tonumberx(L, idx, &isnum);
    if (!isnum || !isfinite(v)) {
        if (t > 0) luaL_error(L, "rl.batch: %s[%d][%d] must be a finite number, got %s", name, b, t, luaL_tolstring(L, idx, NULL));
        luaL_error(L, "rl.batch: %s[%d] must be a finite number, got %s", name, b, luaL_tolstring(L, idx, NULL));
    }
    return (float)v;
}

/* bt:set(name, values): per-row arrays with exactly one number per response token
 * ("scores": B numbers). Everything is checked before anything is written. */
static int rlbatch_set(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    const char *name = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    if ((int)luaL_len(L, 3) != bt->B)
        return luaL_error(L, "rl.batch: %s has %d rows, expected %d", name, (int)luaL_len(L, 3), bt->B);
    if (strcmp(name, "scores") == 0) {
        float *v = scratch(L, sizeof(float) * bt->B);
        for (int b = 0; b < bt->B; b++) {
            lua_geti(L, 3, b + 1);
            v[b] = check_finite(L, -1, name, b + 1, 0);
            lua_pop(L, 1);
        }
        memcpy(bt->scores, v, sizeof(float) * bt->B);
        return 0;
    }
    int f = check_fieldname(L, 2);
    size_t n = (size_t)bt->B * bt->T;
    float *v = scratch(L, sizeof(float) * n);
    memcpy(v, bt->field[f], sizeof(float) * n);
    for (int b = 0; b < bt->B; b++) {
        if (lua_geti(L, 3, b + 1) != LUA_TTABLE) return luaL_error(L, "rl.batch: %s[%d] is not an array", name, b + 1);
        if ((int)luaL_len(L, -1) != bt->rlen[b])
            return luaL_error(L, "rl.batch: %s[%d] has %d values, expected %d (one per response token)", name, b + 1,
                              (int)luaL_len(L, -1), bt->rlen[b]);
        float *row = v + (size_t)b * bt->T + bt->plen[b] - 1;
        for (int t = 0; t < bt->rlen[b]; t++) {
            lua_geti(L, -1, t + 1);
            row[t] = check_finite(L, -1, name, b + 1, t + 1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    memcpy(bt->field[f], v, sizeof(float) * n);
    return 0;
}

/* bt:select(rows) -> a new batch of those rows (1-based) */
static int rlbatch_select(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    luaL_argcheck(L, n > 0 && n <= (1 << 20), 2, "expected a non-empty array of rows");
    int *rows = scratch(L, sizeof(int) * n);
    for (int i = 0; i < n; i++) {
        lua_geti(L, 2, i + 1);
        rows[i] = (int)luaL_checkinteger(L, -1) - 1;
        lua_pop(L, 1);
    }
    rlbatch_box *box = new_box(L);
    if (rlaif_rl_batch_select(&box->b, bt, rows, (int)n) != RLAIF_OK) return rlaifL_fail(L, "rl.batch.select");
    return 1;
}

/* ---- model passes ---- */

static float check_tau(lua_State *L, int i) {
    lua_Number tau = luaL_checknumber(L, i);
    luaL_argcheck(L, tau > 0 && isfinite(tau), i, "temperature must be > 0");
    return (float)tau;
}

/* bt:logprobs(model, tau, field[, entropy_field]) */
static int rlbatch_logprobs(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    struct rlaif_model *m = rlaifL_checkmodel(L, 2);
    float tau = check_tau(L, 3);
    int f = check_fieldname(L, 4), e = lua_isnoneornil(L, 5) ? -1 : check_fieldname(L, 5);
    if (rlaif_rl_logprobs(m, bt, tau, f, e) != RLAIF_OK) return rlaifL_fail(L, "rl.logprobs");
    return 0;
}

/* bt:values(model, field) */
static int rlbatch_values(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    struct rlaif_model *m = rlaifL_checkmodel(L, 2);
    if (rlaif_rl_values(m, bt, check_fieldname(L, 3)) != RLAIF_OK) return rlaifL_fail(L, "rl.values");
    return 0;
}

/* ---- rewards and advantages ---- */

/* bt:kl() -> array of B: sum over each response of k1 = old - ref */
static int rlbatch_kl(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    float *k = scratch(L, sizeof(float) * bt->B);
    rlaif_rl_kl(bt, k);
    push_floats(L, k, bt->B);
    return 1;
}

/* bt:row_sums(field) -> array of B sums over each response */
static int rlbatch_row_sums(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    int f = check_fieldname(L, 2);
    lua_createtable(L, bt->B, 0);
    for (int b = 0; b < bt->B; b++) {
        const float *x = bt->field[f] + (size_t)b * bt->T + bt->plen[b] - 1;
        double s = 0;
        for (int t = 0; t < bt->rlen[b]; t++) s += x[t];
        lua_pushnumber(L, s);
        lua_seti(L, -2, b + 1);
    }
    return 1;
}

static int rlbatch_shaped_rewards(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    rlaif_rl_shaped_rewards(bt, (float)luaL_checknumber(L, 2), (float)luaL_checknumber(L, 3));
    return 0;
}

static int rlbatch_returns(lua_State *L) {
    rlaif_rl_returns(check_batch(L, 1), (float)luaL_checknumber(L, 2));
    return 0;
}

static int rlbatch_gae(lua_State *L) {
    rlaif_rl_gae(check_batch(L, 1), (float)luaL_checknumber(L, 2), (float)luaL_checknumber(L, 3));
    return 0;
}

static int rlbatch_baseline_advantages(lua_State *L) {
    rlaif_rl_baseline_advantages(check_batch(L, 1));
    return 0;
}

/* bt:row_advantages(a): a[b] on every response token of row b */
static int rlbatch_row_advantages(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_argcheck(L, (int)luaL_len(L, 2) == bt->B, 2, "expected one advantage per row");
    float *a = scratch(L, sizeof(float) * bt->B);
    for (int b = 0; b < bt->B; b++) {
        lua_geti(L, 2, b + 1);
        a[b] = check_finite(L, -1, "advantages", b + 1, 0);
        lua_pop(L, 1);
    }
    rlaif_rl_row_advantages(bt, a);
    return 0;
}

/* bt:sum(field) -> sum over response tokens, token count */
static int rlbatch_sum(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    double s;
    rlaif_rl_sum(bt, check_fieldname(L, 2), &s);
    lua_pushnumber(L, s);
    lua_pushinteger(L, rlaif_rl_batch_tokens(bt));
    return 2;
}

/* bt:sqdev(field, mean) -> sum of squared deviations over response tokens */
static int rlbatch_sqdev(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    double s;
    rlaif_rl_sqdev(bt, check_fieldname(L, 2), luaL_checknumber(L, 3), &s);
    lua_pushnumber(L, s);
    return 1;
}

/* bt:affine(field, shift, scale): x = (x - shift) * scale on response tokens */
static int rlbatch_affine(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    rlaif_rl_affine(bt, check_fieldname(L, 2), luaL_checknumber(L, 3), luaL_checknumber(L, 4));
    return 0;
}

/* ---- losses ---- */

static double opt_number(lua_State *L, int t, const char *k, double def) {
    lua_getfield(L, t, k);
    double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static void push_stats(lua_State *L, const rlaif_rl_stats *st) {
    lua_createtable(L, 0, 5);
    lua_pushnumber(L, st->loss), lua_setfield(L, -2, "loss");
    lua_pushnumber(L, st->clipped), lua_setfield(L, -2, "clipped");
    lua_pushnumber(L, st->k3), lua_setfield(L, -2, "k3");
    lua_pushnumber(L, st->ratio), lua_setfield(L, -2, "ratio");
    lua_pushnumber(L, st->tokens), lua_setfield(L, -2, "tokens");
}

/* bt:policy_loss(model, {clipped=, tau=, cliprange=, k3_coef=, weight=, backward=}) -> stats */
static int rlbatch_policy_loss(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    struct rlaif_model *m = rlaifL_checkmodel(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    rlaif_rl_loss_opts o;
    lua_getfield(L, 3, "clipped");
    o.clipped = lua_toboolean(L, -1);
    lua_getfield(L, 3, "backward");
    int backward = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 2);
    o.tau = (float)opt_number(L, 3, "tau", 1.0);
    o.cliprange = (float)opt_number(L, 3, "cliprange", 0.2);
    o.k3_coef = (float)opt_number(L, 3, "k3_coef", 0.0);
    o.weight = (float)opt_number(L, 3, "weight", 1.0);
    luaL_argcheck(L, o.tau > 0, 3, "tau must be > 0");
    rlaif_rl_stats st;
    if (rlaif_rl_policy_loss(m, bt, &o, backward, &st) != RLAIF_OK) return rlaifL_fail(L, "rl.policy_loss");
    push_stats(L, &st);
    return 1;
}

/* bt:value_loss(model, {cliprange_value= (nil: unclipped), coef=, weight=, backward=}) -> stats */
static int rlbatch_value_loss(lua_State *L) {
    rlaif_rl_batch *bt = check_batch(L, 1);
    struct rlaif_model *m = rlaifL_checkmodel(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "backward");
    int backward = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 1);
    float clip = (float)opt_number(L, 3, "cliprange_value", -1.0);
    float coef = (float)opt_number(L, 3, "coef", 1.0), w = (float)opt_number(L, 3, "weight", 1.0);
    rlaif_rl_stats st;
    if (rlaif_rl_value_loss(m, bt, clip, coef, w, backward, &st) != RLAIF_OK) return rlaifL_fail(L, "rl.value_loss");
    push_stats(L, &st);
    return 1;
}

static const luaL_Reg rlbatch_methods[] = {
    {"size", rlbatch_size},
    {"get", rlbatch_get},
    {"set", rlbatch_set},
    {"select", rlbatch_select},
    {"logprobs", rlbatch_logprobs},
    {"values", rlbatch_values},
    {"kl", rlbatch_kl},
    {"row_sums", rlbatch_row_sums},
    {"shaped_rewards", rlbatch_shaped_rewards},
    {"returns", rlbatch_returns},
    {"gae", rlbatch_gae},
    {"baseline_advantages", rlbatch_baseline_advantages},
    {"row_advantages", rlbatch_row_advantages},
    {"sum", rlbatch_sum},
    {"sqdev", rlbatch_sqdev},
    {"affine", rlbatch_affine},
    {"policy_loss", rlbatch_policy_loss},
    {"value_loss", rlbatch_value_loss},
    {"free", rlbatch_free},
    {NULL, NULL},
};

static int rlbatch_tostring(lua_State *L) {
    rlbatch_box *b = luaL_checkudata(L, 1, RLBATCH_MT);
    if (b->b == NULL) lua_pushliteral(L, "rlaif.RLBatch (freed)");
    else lua_pushfstring(L, "rlaif.RLBatch(%d rows, T %d)", b->b->B, b->b->T);
    return 1;
}

static const luaL_Reg rlbatch_meta[] = {
    {"__gc", rlbatch_free},
    {"__close", rlbatch_free},
    {"__tostring", rlbatch_tostring},
    {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg rl_funcs[] = {
    {"batch", rl_batch},
    {NULL, NULL},
};

int luaopen_rlaif_rl(lua_State *L) {
    luaL_newmetatable(L, RLBATCH_MT);
    luaL_setfuncs(L, rlbatch_meta, 0);
    luaL_newlibtable(L, rlbatch_methods);
    luaL_setfuncs(L, rlbatch_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, rl_funcs);
    return 1;
}
