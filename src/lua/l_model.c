/* src/lua/l_model.c -- Lua binding of src/core/model.h: rlaif.core.model.
 *
 * A model userdata is a box holding one rlaif_model (freed by __gc). Parameter
 * and gradient views are tensors that point into the model's flat buffers and
 * keep the model alive through their user value 1. Results (logits, log-probs,
 * rewards) are new tensors: copies, so a later forward cannot change them.
 * Token ids come as a Lua array (one sequence) or an array of arrays (a batch;
 * shorter rows are right-padded and masked). Scratch buffers live in userdata,
 * so a raised error cannot leak them.
 * Not here: training loops, schedules, data (lua/rlaif/train.lua). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "l_util.h"
#include "gguf.h"
#include "model.h"

#define MODEL_MT "rlaif.Model"

typedef struct model_box { rlaif_model *m; } model_box;

static rlaif_model *check_model(lua_State *L, int i) {
    model_box *b = luaL_checkudata(L, i, MODEL_MT);
    if (b->m == NULL) luaL_error(L, "attempt to use a freed model");
    return b->m;
}

rlaif_model *rlaifL_checkmodel(lua_State *L, int i) { return check_model(L, i); }

static int model_gc(lua_State *L) {
    model_box *b = luaL_checkudata(L, 1, MODEL_MT);
    rlaif_model_free(b->m);
    b->m = NULL;
    return 0;
}

/* Raise the last core error; core messages that already name a model operation
 * ("model.forward: ...") are not prefixed twice. */
static int model_fail(lua_State *L, const char *op) {
    const char *e = rlaif_last_error();
    if (strncmp(e, "model.", 6) == 0) return luaL_error(L, "%s", e);
    return luaL_error(L, "%s: %s", op, e);
}

static model_box *new_model_box(lua_State *L) {
    model_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->m = NULL;
    luaL_setmetatable(L, MODEL_MT);
    return b;
}

/* ---- batches from Lua ---- */

typedef struct batch {
    int B, T;
    int32_t *ids;      /* (B, T) */
    int32_t *mask;     /* (B, T) */
} batch;

static void *scratch(lua_State *L, size_t bytes) {
    return lua_newuserdatauv(L, bytes ? bytes : 1, 0);   /* collected with the call's stack */
}

/* Shape of the ids argument: array of ints (B=1) or array of arrays. */
static int is_batch(lua_State *L, int i) {
    luaL_checktype(L, i, LUA_TTABLE);
    int t = lua_geti(L, i, 1);
    lua_pop(L, 1);
    return t == LUA_TTABLE;
}

static int row_len(lua_State *L, int i, int nested, int b) {
    if (!nested) return (int)luaL_len(L, i);
    lua_geti(L, i, b + 1);
    if (!lua_istable(L, -1)) luaL_error(L, "model: row %d is a %s, expected an array of token ids", b + 1, luaL_typename(L, -1));
    int n = (int)luaL_len(L, -1);
    lua_pop(L, 1);
    return n;
}

static int get_int(lua_State *L, int tbl, int nested, int b, int t, const char *what) {
    int isint;
    if (nested) {
        lua_geti(L, tbl, b + 1);
        lua_geti(L, -1, t + 1);
    } else {
        lua_geti(L, tbl, t + 1);
    }
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint) luaL_error(L, "model: %s[%d][%d] is not an integer", what, b + 1, t + 1);
    lua_pop(L, nested ? 2 : 1);
    if (v < INT32_MIN || v > INT32_MAX) luaL_error(L, "model: %s[%d][%d] is out of range", what, b + 1, t + 1);
    return (int)v;
}

static int pad_id(const rlaif_model *m) {
    if (m->cfg.pad_id >= 0) return m->cfg.pad_id;
    return m->cfg.eos_id >= 0 ? m->cfg.eos_id : 0;
}

/* ids at index i, optional mask at index mi (same shape; 0/1 or booleans, or a tensor). */
static batch read_batch(lua_State *L, const rlaif_model *m, int i, int mi) {
    batch bt;
    int nested = is_batch(L, i);
    bt.B = nested ? (int)luaL_len(L, i) : 1;
    luaL_argcheck(L, bt.B > 0, i, "empty batch");
    bt.T = 0;
    for (int b = 0; b < bt.B; b++) {
        int n = row_len(L, i, nested, b);
        if (n > bt.T) bt.T = n;
    }
    luaL_argcheck(L, bt.T > 0, i, "empty sequences");
    size_t n = (size_t)bt.B * bt.T;
    bt.ids = scratch(L, n * sizeof(int32_t) * 2);
    bt.mask = bt.ids + n;
    int pad = pad_id(m);
    rlaif_tensor *mt = mi && !lua_isnoneornil(L, mi) ? rlaifL_testtensor(L, mi) : NULL;
    if (mt && rlaif_tensor_numel(mt) != (int64_t)n)
        luaL_argerror(L, mi, lua_pushfstring(L, "mask has %d elements, expected %d (B=%d, T=%d)",
                                             (int)rlaif_tensor_numel(mt), (int)n, bt.B, bt.T));
    rlaif_tensor *mc = NULL;
    if (mt && rlaif_tensor_contiguous(&mc, mt) != RLAIF_OK) model_fail(L, "model");
    for (int b = 0; b < bt.B; b++) {
        int len = row_len(L, i, nested, b);
        for (int t = 0; t < bt.T; t++) {
            size_t k = (size_t)b * bt.T + t;
            bt.ids[k] = t < len ? get_int(L, i, nested, b, t, "ids") : pad;
            int real = t < len;
            if (real && mc) real = mc->data[k] != 0;
            else if (real && mi && lua_istable(L, mi)) {
                int mnested = is_batch(L, mi);
                if (mnested) lua_geti(L, mi, b + 1), lua_geti(L, -1, t + 1);
                else lua_geti(L, mi, t + 1);
                real = lua_isboolean(L, -1) ? lua_toboolean(L, -1) : lua_tonumber(L, -1) != 0;
                lua_pop(L, mnested ? 2 : 1);
            }
            bt.mask[k] = real;
        }
    }
    rlaif_tensor_release(mc);
    return bt;
}

/* targets at index i with the batch's shape; missing entries are -100 */
static int32_t *read_targets(lua_State *L, int i, const batch *bt) {
    size_t n = (size_t)bt->B * bt->T;
    int32_t *tg = scratch(L, n * sizeof(int32_t));
    int nested = is_batch(L, i);
    int B = nested ? (int)luaL_len(L, i) : 1;
    luaL_argcheck(L, B == bt->B, i, "targets have a different batch size than ids");
    for (int b = 0; b < bt->B; b++) {
        int len = row_len(L, i, nested, b);
        luaL_argcheck(L, len <= bt->T, i, "a targets row is longer than the ids");
        for (int t = 0; t < bt->T; t++) tg[(size_t)b * bt->T + t] = t < len ? get_int(L, i, nested, b, t, "targets") : -100;
    }
    return tg;
}

static void push_new_tensor(lua_State *L, const float *data, int ndim, const int64_t *shape, const char *op) {
    tensor_box *box = rlaifL_newbox(L);
    if (rlaif_tensor_empty(&box->t, ndim, shape) != RLAIF_OK) rlaifL_fail(L, op);
    memcpy(box->t->data, data, rlaif_tensor_nbytes(box->t));
    rlaifL_gcpressure(L, rlaif_tensor_nbytes(box->t));
}

/* ---- construction ---- */

static int opt_int(lua_State *L, int t, const char *k, int def) {
    lua_getfield(L, t, k);
    int v = def;
    if (!lua_isnil(L, -1)) {
        int isint;
        lua_Integer x = lua_tointegerx(L, -1, &isint);
        if (!isint) luaL_error(L, "model.new: %s must be an integer", k);
        v = (int)x;
    }
    lua_pop(L, 1);
    return v;
}
static double opt_num(lua_State *L, int t, const char *k, double def) {
    lua_getfield(L, t, k);
    double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}
/* A seed: any integer (a float must hold one); never a double cast into an int. */
static uint64_t opt_seed(lua_State *L, int t, const char *op) {
    lua_getfield(L, t, "seed");
    int isint = 1;
    lua_Integer v = lua_isnil(L, -1) ? 0 : lua_tointegerx(L, -1, &isint);
    if (!isint) luaL_error(L, "%s: seed must be an integer", op);
    lua_pop(L, 1);
    return (uint64_t)v;
}
static int opt_bool(lua_State *L, int t, const char *k, int def) {
    lua_getfield(L, t, k);
    int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static rlaif_head check_head(lua_State *L, int t) {
    lua_getfield(L, t, "head");
    const char *h = lua_isnil(L, -1) ? "lm" : luaL_checkstring(L, -1);
    rlaif_head r = RLAIF_HEAD_LM;
    if (strcmp(h, "reward") == 0) r = RLAIF_HEAD_REWARD;
    else if (strcmp(h, "lm") != 0) luaL_error(L, "model: head must be \"lm\" or \"reward\" (got \"%s\")", h);
    lua_pop(L, 1);
    return r;
}

/* new{arch=, vocab_size=, n_layer=, n_head=, n_kv_head=, d_model=, d_ff=, head_dim=,
 *     max_seq=, rope_theta=, norm_eps=, tie_embeddings=, qkv_bias=, o_bias=, head=, seed=,
 *     bos_id=, eos_id=, pad_id=} */
static int model_new(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "arch");
    const char *arch = luaL_optstring(L, -1, "gpt2");
    rlaif_model_config c;
    if (strcmp(arch, "gpt2") == 0) rlaif_model_config_defaults(&c, RLAIF_ARCH_GPT2);
    else if (strcmp(arch, "llama") == 0 || strcmp(arch, "qwen2") == 0 || strcmp(arch, "mistral") == 0) {
        rlaif_model_config_defaults(&c, RLAIF_ARCH_LLAMA);
        snprintf(c.model_type, sizeof c.model_type, "%s", arch);
        c.qkv_bias = strcmp(arch, "qwen2") == 0;
    } else return luaL_error(L, "model.new: arch must be gpt2, llama, qwen2 or mistral (got \"%s\")", arch);
    lua_pop(L, 1);
    c.vocab_size = opt_int(L, 1, "vocab_size", 0);
    c.n_layer = opt_int(L, 1, "n_layer", 0);
    c.n_head = opt_int(L, 1, "n_head", 0);
    c.n_kv_head = opt_int(L, 1, "n_kv_head", 0);
    c.d_model = opt_int(L, 1, "d_model", 0);
    c.d_ff = opt_int(L, 1, "d_ff", 0);
    c.head_dim = opt_int(L, 1, "head_dim", 0);
    c.max_seq = opt_int(L, 1, "max_seq", 0);
    c.rope_theta = (float)opt_num(L, 1, "rope_theta", c.rope_theta);
    c.norm_eps = (float)opt_num(L, 1, "norm_eps", c.norm_eps);
    c.tie_embeddings = opt_bool(L, 1, "tie_embeddings", c.tie_embeddings);
    c.qkv_bias = opt_bool(L, 1, "qkv_bias", c.qkv_bias);
    c.o_bias = opt_bool(L, 1, "o_bias", c.o_bias);
    c.bos_id = opt_int(L, 1, "bos_id", -1);
    c.eos_id = opt_int(L, 1, "eos_id", -1);
    c.pad_id = opt_int(L, 1, "pad_id", -1);
    c.head = check_head(L, 1);
    uint64_t seed = opt_seed(L, 1, "model.new");
    model_box *b = new_model_box(L);
    if (rlaif_model_new(&b->m, &c, seed) != RLAIF_OK) return model_fail(L, "model.new");
    rlaifL_gcpressure(L, b->m->num_params * sizeof(float));
    return 1;
}

/* load(dir[, {head=}]) -> model | nil, message */
static int model_load(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    rlaif_head head = RLAIF_HEAD_LM;
    if (lua_istable(L, 2)) head = check_head(L, 2);
    model_box *b = new_model_box(L);
    if (rlaif_model_load(&b->m, dir, head) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    rlaifL_gcpressure(L, b->m->num_params * sizeof(float));
    return 1;
}

/* ---- computation ---- */

/* m:forward(ids[, mask]) -> logits tensor [B, T, V] */
static int model_forward(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    batch bt = read_batch(L, m, 2, 3);
    if (rlaif_model_forward(m, bt.ids, bt.mask, bt.B, bt.T, 1) != RLAIF_OK) return model_fail(L, "model.forward");
    int64_t shape[3] = {bt.B, bt.T, m->cfg.vocab_size};
    push_new_tensor(L, m->acts.logits, 3, shape, "model.forward");
    return 1;
}

/* m:lm_loss(ids, targets[, mask[, {scale=, backward=}]]) -> mean loss, counted tokens.
 * Accumulates the gradients of scale * mean loss (scale defaults to 1). */
static int model_lm_loss(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    batch bt = read_batch(L, m, 2, 4);
    int32_t *tg = read_targets(L, 3, &bt);
    float scale = 1.0f;
    int backward = 1;
    if (lua_istable(L, 5)) {
        scale = (float)opt_num(L, 5, "scale", 1.0);
        backward = opt_bool(L, 5, "backward", 1);
    }
    float loss;
    int count;
    if (rlaif_model_forward(m, bt.ids, bt.mask, bt.B, bt.T, 1) != RLAIF_OK) return model_fail(L, "model.lm_loss");
    if (rlaif_model_lm_loss(m, tg, &loss, NULL, &count) != RLAIF_OK) return model_fail(L, "model.lm_loss");
    if (backward && count > 0 && rlaif_model_backward_ce(m, tg, NULL, scale / count) != RLAIF_OK)
        return model_fail(L, "model.lm_loss");
    lua_pushnumber(L, loss);
    lua_pushinteger(L, count);
    return 2;
}

/* m:logprobs(ids[, mask]) -> tensor [B, T-1]: log p(ids[t+1] | ids[..t]), 0 at padding */
static int model_logprobs(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    batch bt = read_batch(L, m, 2, 3);
    luaL_argcheck(L, bt.T >= 2, 2, "sequences need at least 2 tokens");
    size_t n = (size_t)bt.B * bt.T;
    int32_t *tg = scratch(L, n * sizeof(int32_t));
    float *lp = scratch(L, n * sizeof(float));
    for (int b = 0; b < bt.B; b++)
        for (int t = 0; t < bt.T; t++) {
            size_t k = (size_t)b * bt.T + t;
            tg[k] = (t + 1 < bt.T && bt.mask[k + 1]) ? bt.ids[k + 1] : -1;
        }
    if (rlaif_model_forward(m, bt.ids, bt.mask, bt.B, bt.T, 1) != RLAIF_OK ||
        rlaif_model_token_logprobs(m, tg, lp) != RLAIF_OK)
        return model_fail(L, "model.logprobs");
    tensor_box *box = rlaifL_newbox(L);
    int64_t shape[2] = {bt.B, bt.T - 1};
    if (rlaif_tensor_empty(&box->t, 2, shape) != RLAIF_OK) return model_fail(L, "model.logprobs");
    for (int b = 0; b < bt.B; b++) memcpy(box->t->data + (size_t)b * (bt.T - 1), lp + (size_t)b * bt.T, sizeof(float) * (bt.T - 1));
    rlaifL_gcpressure(L, rlaif_tensor_nbytes(box->t));
    return 1;
}

/* m:reward(ids[, mask]) -> tensor [B]: the score head at each row's last real token */
static int model_reward(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    batch bt = read_batch(L, m, 2, 3);
    float *r = scratch(L, sizeof(float) * bt.B);
    if (rlaif_model_forward(m, bt.ids, bt.mask, bt.B, bt.T, 0) != RLAIF_OK || rlaif_model_reward(m, r) != RLAIF_OK)
        return model_fail(L, "model.reward");
    int64_t shape[1] = {bt.B};
    push_new_tensor(L, r, 1, shape, "model.reward");
    return 1;
}

/* m:values(ids[, mask]) -> tensor [B, T]: the value head (score) at every position, 0 at padding */
static int model_values(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    batch bt = read_batch(L, m, 2, 3);
    float *v = scratch(L, sizeof(float) * bt.B * bt.T);
    if (rlaif_model_forward(m, bt.ids, bt.mask, bt.B, bt.T, 0) != RLAIF_OK || rlaif_model_values(m, v) != RLAIF_OK)
        return model_fail(L, "model.values");
    int64_t shape[2] = {bt.B, bt.T};
    push_new_tensor(L, v, 2, shape, "model.values");
    return 1;
}

/* m:clone([{head = "lm" | "reward"}]) -> a new model with the same weights (a fresh
 * zero value head when a policy is cloned with head = "reward") */
static int model_clone(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    rlaif_head head = m->cfg.head;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "head");
        int has = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (has) head = check_head(L, 2);
    }
    model_box *b = new_model_box(L);
    if (rlaif_model_clone(&b->m, m, head) != RLAIF_OK) return model_fail(L, "model.clone");
    rlaifL_gcpressure(L, b->m->num_params * sizeof(float));
    return 1;
}

/* values at index i: a tensor or an array of numbers, exactly n of them */
static float *read_floats(lua_State *L, int i, int n, const char *what) {
    float *v = scratch(L, sizeof(float) * n);
    rlaif_tensor *t = rlaifL_testtensor(L, i);
    if (t) {
        if (rlaif_tensor_numel(t) != n)
            luaL_argerror(L, i, lua_pushfstring(L, "%s has %d values, expected %d", what, (int)rlaif_tensor_numel(t), n));
        rlaif_tensor *c = NULL;
        if (rlaif_tensor_contiguous(&c, t) != RLAIF_OK) model_fail(L, "model");
        memcpy(v, c->data, sizeof(float) * n);
        rlaif_tensor_release(c);
        return v;
    }
    luaL_checktype(L, i, LUA_TTABLE);
    if ((int)luaL_len(L, i) != n)
        luaL_argerror(L, i, lua_pushfstring(L, "%s has %d values, expected %d", what, (int)luaL_len(L, i), n));
    for (int k = 0; k < n; k++) {
        lua_geti(L, i, k + 1);
        v[k] = (float)luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
    return v;
}

/* m:backward_values(dv) -- accumulate gradients of sum dv[b,t] * value[b,t] for the last m:values batch */
static int model_backward_values(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    if (m->B == 0) return luaL_error(L, "model.backward_values: call m:values first");
    float *dv = read_floats(L, 2, m->B * m->T, "dv");
    if (rlaif_model_backward_values(m, dv) != RLAIF_OK) return model_fail(L, "model.backward_values");
    return 0;
}

/* m:backward_reward(dr) -- accumulate gradients of sum_b dr[b] * reward[b] for the last m:reward batch */
static int model_backward_reward(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    if (m->B == 0) return luaL_error(L, "model.backward_reward: call m:reward first");
    float *dr = read_floats(L, 2, m->B, "dr");
    if (rlaif_model_backward_reward(m, dr) != RLAIF_OK) return model_fail(L, "model.backward_reward");
    return 0;
}

/* reward_pair_loss(r1, r2, p[, margin[, center]]) -> loss, dr1, dr2 (tensors [P]) */
static int model_reward_pair_loss(lua_State *L) {
    rlaif_tensor *t1 = rlaifL_testtensor(L, 1);
    int P = t1 ? (int)rlaif_tensor_numel(t1) : (luaL_checktype(L, 1, LUA_TTABLE), (int)luaL_len(L, 1));
    luaL_argcheck(L, P > 0, 1, "no pairs");
    float *r1 = read_floats(L, 1, P, "r1"), *r2 = read_floats(L, 2, P, "r2"), *p = read_floats(L, 3, P, "p");
    float margin = (float)luaL_optnumber(L, 4, 0), center = (float)luaL_optnumber(L, 5, 0);
    float *d1 = scratch(L, sizeof(float) * P), *d2 = scratch(L, sizeof(float) * P);
    float loss = rlaif_reward_pair_loss(r1, r2, p, P, margin, center, d1, d2);
    int64_t shape[1] = {P};
    lua_pushnumber(L, loss);
    push_new_tensor(L, d1, 1, shape, "model.reward_pair_loss");
    push_new_tensor(L, d2, 1, shape, "model.reward_pair_loss");
    return 3;
}

/* ---- parameters and gradients ---- */

static int push_view(lua_State *L, int grad) {
    rlaif_model *m = check_model(L, 1);
    const char *name = luaL_checkstring(L, 2);
    rlaif_tensor *t = NULL;
    if (rlaif_model_param_view(m, name, grad, &t) != RLAIF_OK) return model_fail(L, grad ? "model.grad" : "model.param");
    rlaifL_pushtensor(L, t);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);   /* the view keeps the model alive */
    return 1;
}
static int model_param(lua_State *L) { return push_view(L, 0); }
static int model_grad(lua_State *L) { return push_view(L, 1); }

/* m:names() -> array of Hugging Face parameter names, in save order */
static int model_names(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    rlaif_hf_entry *e = NULL;
    int n = 0;
    if (rlaif_model_hf_entries(m, &e, &n) != RLAIF_OK) return model_fail(L, "model.names");
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, e[i].name);
        lua_seti(L, -2, i + 1);
    }
    free(e);
    return 1;
}

/* m:to_bf16() -> m: freeze the weight matrices into bf16 (rlaif_model_to_bf16) */
static int model_to_bf16(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    if (rlaif_model_to_bf16(m) != RLAIF_OK) return model_fail(L, "model.to_bf16");
    lua_settop(L, 1);
    return 1;
}

/* m:dtype() -> "float32" | "bf16" (the weight matrices) */
static int model_dtype(lua_State *L) {
    lua_pushstring(L, rlaif_model_is_bf16(check_model(L, 1)) ? "bf16" : "float32");
    return 1;
}

/* m:param_bytes() -> bytes of parameter memory */
static int model_param_bytes(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)rlaif_model_param_bytes(check_model(L, 1)));
    return 1;
}

/* m:free_activations() -- release the last forward's activations (the next forward reallocates) */
static int model_free_activations(lua_State *L) {
    rlaif_model_free_acts(check_model(L, 1));
    return 0;
}

static int model_zero_grad(lua_State *L) {
    if (rlaif_model_zero_grad(check_model(L, 1)) != RLAIF_OK) return model_fail(L, "model.zero_grad");
    return 0;
}

static int model_grad_norm(lua_State *L) {
    lua_pushnumber(L, rlaif_model_grad_norm(check_model(L, 1)));
    return 1;
}

static int model_scale_grads(lua_State *L) {
    rlaif_model_scale_grads(check_model(L, 1), (float)luaL_checknumber(L, 2));
    return 0;
}

/* m:adamw_step{lr=, beta1=, beta2=, eps=, weight_decay=} -> steps taken */
static int model_adamw_step(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    rlaif_adamw o;
    lua_getfield(L, 2, "lr");
    o.lr = (float)luaL_checknumber(L, -1);
    lua_pop(L, 1);
    o.beta1 = (float)opt_num(L, 2, "beta1", 0.9);
    o.beta2 = (float)opt_num(L, 2, "beta2", 0.999);
    o.eps = (float)opt_num(L, 2, "eps", 1e-8);
    o.weight_decay = (float)opt_num(L, 2, "weight_decay", 0.0);
    luaL_argcheck(L, o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, 2, "betas must be in [0, 1)");
    if (rlaif_model_adamw_step(m, &o) != RLAIF_OK) return model_fail(L, "model.adamw_step");
    lua_pushinteger(L, m->opt_step);
    return 1;
}

static int model_num_params(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)check_model(L, 1)->num_params);
    return 1;
}

static int model_steps(lua_State *L) {
    lua_pushinteger(L, check_model(L, 1)->opt_step);
    return 1;
}

/* m:config() -> table of the configuration (names as in model.new) */
static int model_config(lua_State *L) {
    const rlaif_model_config *c = &check_model(L, 1)->cfg;
    lua_createtable(L, 0, 24);
    lua_pushstring(L, c->arch == RLAIF_ARCH_GPT2 ? "gpt2" : "llama");
    lua_setfield(L, -2, "arch");
    lua_pushstring(L, c->model_type);
    lua_setfield(L, -2, "model_type");
#define I(f) (lua_pushinteger(L, c->f), lua_setfield(L, -2, #f))
#define N(f) (lua_pushnumber(L, c->f), lua_setfield(L, -2, #f))
#define Bo(f) (lua_pushboolean(L, c->f), lua_setfield(L, -2, #f))
    I(vocab_size), I(n_layer), I(n_head), I(n_kv_head), I(d_model), I(d_ff), I(head_dim), I(max_seq);
    N(norm_eps), N(rope_theta), Bo(tie_embeddings), Bo(qkv_bias), Bo(o_bias);
    I(bos_id), I(eos_id), I(pad_id);
#undef I
#undef N
#undef Bo
    lua_pushstring(L, c->head == RLAIF_HEAD_REWARD ? "reward" : "lm");
    lua_setfield(L, -2, "head");
    return 1;
}

/* ---- checkpoints ---- */

/* m:save(dir) -> true | nil, message */
static int model_save(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    if (rlaif_model_save(m, luaL_checkstring(L, 2)) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* m:save_gguf_(path, tokenizer, type, name|nil, pre|nil) -> true | nil, message
 * (lua/rlaif/model.lua's m:save_gguf checks the options and calls this) */
static int model_save_gguf(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    const char *path = luaL_checkstring(L, 2);
    const rlaif_bpe *tok = rlaifL_checktokenizer(L, 3);
    rlaif_gguf_save_opts o = {(rlaif_ggml_type)luaL_checkinteger(L, 4), luaL_optstring(L, 5, NULL),
                              luaL_optstring(L, 6, NULL)};
    if (rlaif_model_save_gguf(m, path, tok, &o) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* m:save_state(path[, blob]) -> true | nil, message */
static int model_save_state(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    size_t len = 0;
    const char *blob = luaL_optlstring(L, 3, "", &len);
    if (rlaif_model_save_state(m, luaL_checkstring(L, 2), blob, len) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* m:load_state(path) -> blob string | nil, message */
static int model_load_state(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    void *blob = NULL;
    size_t len = 0;
    if (rlaif_model_load_state(m, luaL_checkstring(L, 2), &blob, &len) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    lua_pushlstring(L, blob ? blob : "", len);
    free(blob);
    return 1;
}

/* ---- generation ---- */

/* m:generate(prompts, {max_new_tokens=, temperature=, top_k=, top_p=, stop=, seed=, seeds=})
 * -> tokens (array of arrays), logprobs (array of arrays). seeds: one integer per
 * row, each row sampling from its own stream (rlaif_model_generate_seeded). */
static int model_generate(lua_State *L) {
    rlaif_model *m = check_model(L, 1);
    int nested = is_batch(L, 2);
    int B = nested ? (int)luaL_len(L, 2) : 1;
    luaL_argcheck(L, B > 0, 2, "no prompts");
    rlaif_gen_opts o = {16, 1.0f, 0, 1.0f, NULL, 0, 0};
    int opts = lua_istable(L, 3) ? 3 : 0;
    int32_t *stop = NULL;
    uint64_t *seeds = NULL;
    if (opts) {
        o.max_new_tokens = opt_int(L, 3, "max_new_tokens", 16);
        o.temperature = (float)opt_num(L, 3, "temperature", 1.0);
        o.top_k = opt_int(L, 3, "top_k", 0);
        o.top_p = (float)opt_num(L, 3, "top_p", 1.0);
        o.seed = opt_seed(L, 3, "model.generate");
        lua_getfield(L, 3, "stop");
        if (lua_isinteger(L, -1)) {
            stop = scratch(L, sizeof(int32_t));
            stop[0] = (int32_t)lua_tointeger(L, -2);   /* the field, below the scratch */
            o.n_stop = 1;
        } else if (lua_istable(L, -1)) {
            int tb = lua_gettop(L);
            o.n_stop = (int)luaL_len(L, tb);
            stop = scratch(L, sizeof(int32_t) * (o.n_stop + 1));
            for (int k = 0; k < o.n_stop; k++) stop[k] = get_int(L, tb, 0, 0, k, "stop");
        }
        o.stop = stop;
        if (lua_getfield(L, 3, "seeds") == LUA_TTABLE) {
            int tb = lua_gettop(L);
            luaL_argcheck(L, luaL_len(L, tb) == B, 3, "seeds must hold one integer per prompt");
            seeds = scratch(L, sizeof(uint64_t) * B);
            for (int k = 0; k < B; k++) {
                int isint = 0;
                lua_geti(L, tb, k + 1);
                seeds[k] = (uint64_t)lua_tointegerx(L, -1, &isint);
                if (!isint) luaL_error(L, "model.generate: seeds[%d] must be an integer", k + 1);
                lua_pop(L, 1);
            }
        }
    }
    luaL_argcheck(L, o.max_new_tokens > 0, 3, "max_new_tokens must be positive");
    int *lens = scratch(L, sizeof(int) * B), total = 0;
    for (int b = 0; b < B; b++) {
        lens[b] = row_len(L, 2, nested, b);
        luaL_argcheck(L, lens[b] > 0, 2, "empty prompt");
        total += lens[b];
    }
    int32_t *pr = scratch(L, sizeof(int32_t) * total), *toks = scratch(L, sizeof(int32_t) * B * o.max_new_tokens);
    float *lps = scratch(L, sizeof(float) * B * o.max_new_tokens);
    int *outlen = scratch(L, sizeof(int) * B);
    for (int b = 0, k = 0; b < B; b++)
        for (int t = 0; t < lens[b]; t++) pr[k++] = get_int(L, 2, nested, b, t, "prompts");
    if (rlaif_model_generate_seeded(m, pr, lens, B, &o, seeds, toks, lps, outlen) != RLAIF_OK)
        return model_fail(L, "model.generate");
    lua_createtable(L, B, 0);
    lua_createtable(L, B, 0);
    for (int b = 0; b < B; b++) {
        lua_createtable(L, outlen[b], 0);
        lua_createtable(L, outlen[b], 0);
        for (int t = 0; t < outlen[b]; t++) {
            lua_pushinteger(L, toks[(size_t)b * o.max_new_tokens + t]);
            lua_seti(L, -3, t + 1);
            lua_pushnumber(L, lps[(size_t)b * o.max_new_tokens + t]);
            lua_seti(L, -2, t + 1);
        }
        lua_seti(L, -3, b + 1);
        lua_seti(L, -3, b + 1);
    }
    return 2;
}

static const luaL_Reg model_methods[] = {
    {"forward", model_forward},
    {"lm_loss", model_lm_loss},
    {"logprobs", model_logprobs},
    {"reward", model_reward},
    {"backward_reward", model_backward_reward},
    {"values", model_values},
    {"backward_values", model_backward_values},
    {"clone", model_clone},
    {"param", model_param},
    {"grad", model_grad},
    {"names", model_names},
    {"zero_grad", model_zero_grad},
    {"free_activations", model_free_activations},
    {"to_bf16", model_to_bf16},
    {"dtype", model_dtype},
    {"param_bytes", model_param_bytes},
    {"grad_norm", model_grad_norm},
    {"scale_grads", model_scale_grads},
    {"adamw_step", model_adamw_step},
    {"num_params", model_num_params},
    {"steps", model_steps},
    {"config", model_config},
    {"save", model_save},
    {"save_gguf_", model_save_gguf},
    {"save_state", model_save_state},
    {"load_state", model_load_state},
    {"generate", model_generate},
    {NULL, NULL},
};

static int model_tostring(lua_State *L) {
    model_box *b = luaL_checkudata(L, 1, MODEL_MT);
    if (b->m == NULL) lua_pushliteral(L, "rlaif.Model (freed)");
    else
        lua_pushfstring(L, "rlaif.Model(%s, %d layers, d_model %d, %d parameters)", b->m->cfg.model_type,
                        b->m->cfg.n_layer, b->m->cfg.d_model, (int)b->m->num_params);
    return 1;
}

static const luaL_Reg model_meta[] = {
    {"__gc", model_gc},
    {"__tostring", model_tostring},
    {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg model_funcs[] = {
    {"new", model_new},
    {"load", model_load},
    {"reward_pair_loss", model_reward_pair_loss},
    {NULL, NULL},
};

int luaopen_rlaif_model(lua_State *L) {
    luaL_newmetatable(L, MODEL_MT);
    luaL_setfuncs(L, model_meta, 0);
    luaL_newlibtable(L, model_methods);
    luaL_setfuncs(L, model_methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__index");
    luaL_newlib(L, model_funcs);
    lua_insert(L, -2);
    lua_setfield(L, -2, "methods");   /* lua/rlaif/model.lua adds Lua methods here */
    lua_remove(L, -2);                /* the metatable */
    return 1;
}
