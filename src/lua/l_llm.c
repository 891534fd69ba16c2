/* src/lua/l_llm.c -- Lua binding of src/core/llm.h: rlaif.core.llm.
 *
 * Check arguments, call rlaif_llm_*, push results. Requests go from Lua tables
 * to cJSON (object keys sorted, so request bodies and cache keys are canonical)
 * and results come back from cJSON to Lua tables (integral numbers as integers,
 * -inf logprobs as -math.huge).
 * Errors: misuse raises; a batch never raises for a failed request (failures are
 * result objects). Lua callbacks (on_result, on_progress) run under lua_pcall
 * while the core drives the batch: an error in them aborts the batch, the core
 * finishes and frees everything, and only then is the error re-raised (house
 * style 9.6: never raise while C owns memory). Converted requests and results
 * live in a userdata box whose __gc frees them, so a raise cannot leak them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "l_util.h"
#include "llm.h"

#define LLM_CLIENT_MT "rlaif.LLMClient"
#define LLM_BATCH_MT "rlaif.LLMBatch"
#define MAX_DEPTH 64

typedef struct { rlaif_llm_client *c; } client_box;

/* Scratch for one batch: freed by __gc even if something raises. */
typedef struct {
    cJSON **reqs;
    cJSON **results;
    int n;
} batch_box;

/* ---- Lua <-> cJSON ---- */

/* tojson never raises: on a bad value it returns NULL with a message in *err,
 * and every partial tree is freed on the way out. */
static cJSON *tojson(lua_State *L, int idx, int depth, const char **err);

typedef struct {
    const char *s;   /* a string key (anchored by the table), or NULL */
    size_t len;
    lua_Integer i;
    char num[24];    /* an integer key rendered as text */
} lkey;

static const char *key_str(const lkey *k) { return k->s ? k->s : k->num; }

static int lkey_cmp(const void *x, const void *y) {
    const lkey *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(key_str(a), key_str(b), n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* A table is an array when its keys are exactly 1..#t and #t > 0. */
static int is_array(lua_State *L, int idx, lua_Integer *len) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    if (n == 0) return 0;
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    *len = n;
    return count == n;
}

static cJSON *table_tojson(lua_State *L, int idx, int depth, const char **err) {
    lua_Integer n;
    if (is_array(L, idx, &n)) {
        cJSON *a = cJSON_CreateArray();
        for (lua_Integer i = 1; a && i <= n; i++) {
            lua_rawgeti(L, idx, i);
            cJSON *v = tojson(L, lua_gettop(L), depth + 1, err);
            lua_pop(L, 1);
            if (v == NULL) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, v);
        }
        if (a == NULL) *err = "out of memory";
        return a;
    }
    /* object: keys are strings or integers (rendered as text), sorted so that
     * the same table always gives the same JSON (canonical bodies, cache keys) */
    size_t nk = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int t = lua_type(L, -1);
        if (!(t == LUA_TSTRING || (t == LUA_TNUMBER && lua_isinteger(L, -1)))) {
            lua_pop(L, 1);
            *err = "table keys must be strings or integers";
            return NULL;
        }
        nk++;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || nk == 0) {
        if (o == NULL) *err = "out of memory";
        return o;
    }
    lkey small[16];   /* request objects are small: no allocation for their keys */
    lkey *keys = nk <= sizeof small / sizeof *small ? small : malloc(nk * sizeof *keys);
    if (keys == NULL) {
        cJSON_Delete(o);
        *err = "out of memory";
        return NULL;
    }
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) && k < nk) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            keys[k].s = lua_tolstring(L, -1, &keys[k].len);
        } else {
            keys[k].s = NULL;
            keys[k].i = lua_tointeger(L, -1);
            keys[k].len = (size_t)snprintf(keys[k].num, sizeof keys[k].num, "%lld", (long long)keys[k].i);
        }
        k++;
    }
    qsort(keys, nk, sizeof *keys, lkey_cmp);
    for (size_t j = 0; j < nk; j++) {
        if (keys[j].s) lua_pushlstring(L, keys[j].s, keys[j].len);   /* interned: no new memory */
        else lua_pushinteger(L, keys[j].i);
        lua_rawget(L, idx);
        cJSON *v = tojson(L, lua_gettop(L), depth + 1, err);
        lua_pop(L, 1);
        if (v == NULL) {
            cJSON_Delete(o);
            if (keys != small) free(keys);
            return NULL;
        }
        cJSON_AddItemToObject(o, key_str(&keys[j]), v);
    }
    if (keys != small) free(keys);
    return o;
}

static cJSON *tojson(lua_State *L, int idx, int depth, const char **err) {
    cJSON *r = NULL;
    if (depth > MAX_DEPTH) {
        *err = "tables nested too deeply (a cycle?)";
        return NULL;
    }
    if (!lua_checkstack(L, 8)) {
        *err = "Lua stack overflow";
        return NULL;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL: r = cJSON_CreateNull(); break;
    case LUA_TBOOLEAN: r = cJSON_CreateBool(lua_toboolean(L, idx)); break;
    case LUA_TNUMBER: {
        double v = lua_isinteger(L, idx) ? (double)lua_tointeger(L, idx) : lua_tonumber(L, idx);
        if (!isfinite(v)) {
            *err = "cannot send a non-finite number as JSON";
            return NULL;
        }
        r = cJSON_CreateNumber(v);
        break;
    }
    case LUA_TSTRING: r = cJSON_CreateString(lua_tostring(L, idx)); break;
    case LUA_TTABLE: return table_tojson(L, idx, depth, err);
    default:
        *err = lua_type(L, idx) == LUA_TFUNCTION ? "cannot convert a function to JSON"
                                                 : "cannot convert this value to JSON";
        return NULL;
    }
    if (r == NULL) *err = "out of memory";
    return r;
}

/* Convert the value at idx into a new tree, or raise "<op>: <why>". Only call
 * with no C memory outstanding except what a GC-protected box owns. */
static cJSON *checkjson(lua_State *L, int idx, const char *op) {
    const char *err = "out of memory";
    cJSON *v = tojson(L, idx, 0, &err);
    if (v == NULL) luaL_error(L, "%s: %s", op, err);
    return v;
}

static void pushjson(lua_State *L, const cJSON *v, int depth) {
    luaL_checkstack(L, 4, "llm: json conversion");
    if (v == NULL || cJSON_IsNull(v) || depth > MAX_DEPTH) {
        lua_pushnil(L);
    } else if (cJSON_IsBool(v)) {
        lua_pushboolean(L, cJSON_IsTrue(v));
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0) lua_pushinteger(L, (lua_Integer)d);
        else lua_pushnumber(L, d);
    } else if (cJSON_IsString(v)) {
        lua_pushstring(L, v->valuestring);
    } else if (cJSON_IsArray(v)) {
        lua_createtable(L, cJSON_GetArraySize(v), 0);
        lua_Integer i = 1;
        for (const cJSON *e = v->child; e; e = e->next) {
            pushjson(L, e, depth + 1);
            lua_rawseti(L, -2, i++);
        }
    } else if (cJSON_IsObject(v)) {
        lua_createtable(L, 0, 4);
        for (const cJSON *e = v->child; e; e = e->next) {
            pushjson(L, e, depth + 1);
            lua_setfield(L, -2, e->string);
        }
    } else {
        lua_pushnil(L);
    }
}

/* The "logprob" of the normalized response must stay a float (0 included). */
static void pushresult(lua_State *L, const cJSON *r);

static void push_tokens(lua_State *L, const cJSON *toks) {
    lua_createtable(L, cJSON_GetArraySize(toks), 0);
    lua_Integer i = 1;
    for (const cJSON *t = toks ? toks->child : NULL; t; t = t->next) {
        lua_createtable(L, 0, 5);
        for (const cJSON *f = t->child; f; f = f->next) {
            if (!strcmp(f->string, "logprob") && cJSON_IsNumber(f)) {
                lua_pushnumber(L, f->valuedouble);
            } else if (!strcmp(f->string, "top")) {
                lua_createtable(L, cJSON_GetArraySize(f), 0);
                lua_Integer j = 1;
                for (const cJSON *a = f->child; a; a = a->next) {
                    lua_createtable(L, 0, 2);
                    lua_pushstring(L, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "token")));
                    lua_setfield(L, -2, "token");
                    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(a, "logprob");
                    lua_pushnumber(L, cJSON_IsNumber(lp) ? lp->valuedouble : -HUGE_VAL);
                    lua_setfield(L, -2, "logprob");
                    lua_rawseti(L, -2, j++);
                }
            } else {
                pushjson(L, f, 3);
            }
            lua_setfield(L, -2, f->string);
        }
        lua_rawseti(L, -2, i++);
    }
}

static void pushresult(lua_State *L, const cJSON *r) {
    luaL_checkstack(L, 10, "llm: result");
    lua_createtable(L, 0, 12);
    for (const cJSON *f = r->child; f; f = f->next) {
        if (!strcmp(f->string, "choices") && cJSON_IsArray(f)) {
            lua_createtable(L, cJSON_GetArraySize(f), 0);
            lua_Integer i = 1;
            for (const cJSON *ch = f->child; ch; ch = ch->next) {
                lua_createtable(L, 0, 4);
                for (const cJSON *g = ch->child; g; g = g->next) {
                    if (!strcmp(g->string, "tokens")) push_tokens(L, g);
                    else pushjson(L, g, 2);
                    lua_setfield(L, -2, g->string);
                }
                lua_rawseti(L, -2, i++);
            }
        } else if (!strcmp(f->string, "latency") && cJSON_IsNumber(f)) {
            lua_pushnumber(L, f->valuedouble);
        } else {
            pushjson(L, f, 1);
        }
        lua_setfield(L, -2, f->string);
    }
}

/* ---- batch box ---- */

static int batch_gc(lua_State *L) {
    batch_box *b = luaL_checkudata(L, 1, LLM_BATCH_MT);
    for (int i = 0; i < b->n; i++) {
        if (b->reqs) cJSON_Delete(b->reqs[i]);
        if (b->results) cJSON_Delete(b->results[i]);
    }
    free(b->reqs);
    free(b->results);
    b->reqs = b->results = NULL;
    b->n = 0;
    return 0;
}

/* ---- client ---- */

static rlaif_llm_client *checkclient(lua_State *L, int i) {
    client_box *b = luaL_checkudata(L, i, LLM_CLIENT_MT);
    if (b->c == NULL) luaL_error(L, "attempt to use a closed llm client");
    return b->c;
}

static double optfield_num(lua_State *L, int t, const char *k, double def) {
    lua_getfield(L, t, k);
    double v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1)) luaL_error(L, "llm.client: option '%s' must be a number", k);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* A string option; the value stays anchored in the options table. */
static const char *optfield_str(lua_State *L, int t, const char *k) {
    lua_getfield(L, t, k);
    const char *s = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "llm.client: option '%s' must be a string", k);
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1);
    return s;
}

/* llm.client{api=, base_url=, model=, api_key=, headers=, cache=, concurrency=, ...} */
static int llm_client(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    rlaif_llm_config cfg;
    memset(&cfg, 0, sizeof cfg);
    rlaif_http_opts_default(&cfg.http);
    const char *api = optfield_str(L, 1, "api");
    if (rlaif_llm_api_parse(api ? api : "openai-chat", &cfg.api) != RLAIF_OK)
        return luaL_error(L, "llm.client: %s", rlaif_last_error());
    cfg.base_url = optfield_str(L, 1, "base_url");
    cfg.model = optfield_str(L, 1, "model");
    cfg.api_key = optfield_str(L, 1, "api_key");
    cfg.cache_path = optfield_str(L, 1, "cache");
    cfg.http.ca_file = optfield_str(L, 1, "ca_file");
    double conc = optfield_num(L, 1, "concurrency", cfg.http.concurrency);
    double retries = optfield_num(L, 1, "max_retries", cfg.http.max_retries);
    if (conc < 1 || conc > 65536) return luaL_error(L, "llm.client: concurrency must be in 1..65536");
    if (retries < 0 || retries > 100) return luaL_error(L, "llm.client: max_retries must be in 0..100");
    cfg.http.concurrency = (int)conc;
    cfg.http.max_retries = (int)retries;
    cfg.http.timeout = optfield_num(L, 1, "timeout", cfg.http.timeout);
    cfg.http.connect_timeout = optfield_num(L, 1, "connect_timeout", cfg.http.connect_timeout);
    cfg.http.stall_timeout = optfield_num(L, 1, "stall_timeout", cfg.http.stall_timeout);
    cfg.http.backoff_base = optfield_num(L, 1, "backoff_base", cfg.http.backoff_base);
    cfg.http.backoff_cap = optfield_num(L, 1, "backoff_cap", cfg.http.backoff_cap);
    cfg.http.retry_after_cap = optfield_num(L, 1, "retry_after_cap", cfg.http.retry_after_cap);
    lua_getfield(L, 1, "aimd");
    if (!lua_isnil(L, -1)) cfg.http.aimd = lua_toboolean(L, -1);
    lua_pop(L, 1);
    /* headers: {"Name: value", ...} or {Name = "value"}; strings anchored in a table */
    const char *hdrs[65];
    int nh = 0;
    lua_getfield(L, 1, "headers");
    int hidx = lua_gettop(L);
    if (!lua_isnil(L, hidx)) {
        luaL_argexpected(L, lua_istable(L, hidx), 1, "headers as a table");
        lua_newtable(L);
        int anchor = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, hidx)) {
            if (nh == 64) return luaL_error(L, "llm.client: at most 64 headers");
            if (lua_type(L, -2) == LUA_TSTRING) {
                hdrs[nh] = lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), luaL_tolstring(L, -1, NULL));
                lua_remove(L, -2);
            } else {
                hdrs[nh] = luaL_tolstring(L, -1, NULL);
            }
            lua_rawseti(L, anchor, nh + 1);
            nh++;
            lua_pop(L, 1);
        }
    }
    hdrs[nh] = NULL;
    cfg.headers = hdrs;
    if (cfg.base_url == NULL) return luaL_error(L, "llm.client: base_url is required");
    client_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->c = NULL;
    luaL_setmetatable(L, LLM_CLIENT_MT);
    if (rlaif_llm_client_new(&b->c, &cfg) != RLAIF_OK) return rlaifL_fail(L, "llm.client");
    return 1;
}

static int client_close(lua_State *L) {   /* __gc, __close and :close() */
    client_box *b = luaL_checkudata(L, 1, LLM_CLIENT_MT);
    rlaif_llm_client_free(b->c);
    b->c = NULL;
    return 0;
}

/* ---- running a batch ---- */

typedef struct {
    lua_State *L;
    int results_idx;    /* Lua table of results */
    int on_result_idx;  /* function or 0 */
    int on_progress_idx;
    int err_ref;        /* LUA_NOREF or a registry ref to the callback's error */
} run_ctx;

/* Protected: results[i] = table(result); on_result(i, results[i]).
 * Arguments: result (light userdata), i, results table, on_result or nil. */
static int deliver_p(lua_State *L) {
    const cJSON *r = lua_touserdata(L, 1);
    lua_Integer i = lua_tointeger(L, 2);
    pushresult(L, r);   /* 5 */
    lua_pushvalue(L, 5);
    lua_rawseti(L, 3, i);
    if (!lua_isnil(L, 4)) {
        lua_pushvalue(L, 4);
        lua_pushinteger(L, i);
        lua_pushvalue(L, 5);
        lua_call(L, 2, 0);
    }
    return 0;
}

static int keep_error(run_ctx *ctx) {
    if (ctx->err_ref == LUA_NOREF) ctx->err_ref = luaL_ref(ctx->L, LUA_REGISTRYINDEX);
    else lua_pop(ctx->L, 1);
    return 1;
}

static int on_result_cb(void *ud, int index, const cJSON *result) {
    run_ctx *ctx = ud;
    lua_State *L = ctx->L;
    if (!lua_checkstack(L, 8)) return 1;
    /* runs inside client_run's frame, so ctx's stack indices are valid here */
    lua_pushcfunction(L, deliver_p);
    lua_pushlightuserdata(L, (void *)result);
    lua_pushinteger(L, index + 1);
    lua_pushvalue(L, ctx->results_idx);
    if (ctx->on_result_idx) lua_pushvalue(L, ctx->on_result_idx);
    else lua_pushnil(L);
    if (lua_pcall(L, 4, 0, 0) != LUA_OK) return keep_error(ctx);
    /* Converted: drop the tree's contents now, while they are hot, instead of
     * holding a whole batch of trees until the end. The emptied object stays
     * in the core's results slot (the core never reads it again). */
    cJSON *r = (cJSON *)result;
    cJSON_Delete(r->child);
    r->child = NULL;
    return 0;
}

static int on_progress_cb(void *ud, int done, int total, int errors) {
    run_ctx *ctx = ud;
    lua_State *L = ctx->L;
    if (!ctx->on_progress_idx || !lua_checkstack(L, 8)) return 0;
    lua_pushvalue(L, ctx->on_progress_idx);
    lua_pushinteger(L, done);
    lua_pushinteger(L, total);
    lua_pushinteger(L, errors);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) return keep_error(ctx);
    return 0;
}

/* client:run(reqs [, on_result [, on_progress [, interval]]]) -> results, interrupted [, stopped]
 * results[i] is a table for every i; interrupted is true when Ctrl-C stopped it;
 * stopped is the reason when the core stopped the batch early (a refused key, an
 * unreachable server). */
static int client_run(lua_State *L) {
    rlaif_llm_client *c = checkclient(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TFUNCTION);
    double interval = luaL_optnumber(L, 5, 0.1);
    lua_settop(L, 5);
    lua_Integer n = luaL_len(L, 2);
    luaL_argcheck(L, n >= 0 && n <= 10000000, 2, "too many requests");
    batch_box *bx = lua_newuserdatauv(L, sizeof *bx, 0);   /* 6 */
    bx->reqs = bx->results = NULL;
    bx->n = 0;
    luaL_setmetatable(L, LLM_BATCH_MT);
    size_t sz = n ? (size_t)n : 1;
    bx->reqs = calloc(sz, sizeof *bx->reqs);
    bx->results = calloc(sz, sizeof *bx->results);
    if (bx->reqs == NULL || bx->results == NULL) return luaL_error(L, "llm.run: out of memory");
    bx->n = (int)n;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        if (!lua_istable(L, -1)) return luaL_error(L, "llm.run: request %d is not a table", (int)i);
        bx->reqs[i - 1] = checkjson(L, lua_gettop(L), "llm.run");
        lua_pop(L, 1);
    }
    lua_createtable(L, (int)n, 0);   /* 7: results */
    run_ctx ctx = {L, 7, lua_isnil(L, 3) ? 0 : 3, lua_isnil(L, 4) ? 0 : 4, LUA_NOREF};
    rlaif_status st = rlaif_llm_client_run(c, (const cJSON *const *)bx->reqs, bx->n, bx->results, on_result_cb,
                                           ctx.on_progress_idx ? on_progress_cb : NULL, interval, &ctx);
    if (st != RLAIF_OK && st != RLAIF_EINTR) {
        const char *why = rlaif_last_error();
        lua_pushstring(L, strncmp(why, "llm.run: stopped: ", 18) == 0 ? why + 18 : why);   /* 8 */
    } else {
        lua_pushnil(L);
    }
    /* results not delivered through the callback (a callback failed, or the
     * final sweep filled them) are converted here */
    for (int i = 0; i < bx->n; i++) {
        lua_rawgeti(L, 7, i + 1);
        int have = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (!have && bx->results[i]) {
            pushresult(L, bx->results[i]);
            lua_rawseti(L, 7, i + 1);
        }
    }
    for (int i = 0; i < bx->n; i++) {
        cJSON_Delete(bx->reqs[i]);
        cJSON_Delete(bx->results[i]);
        bx->reqs[i] = bx->results[i] = NULL;
    }
    if (st == RLAIF_EINTR && rlaif_cancelled()) {
        /* Ctrl-C: return the partial results instead of losing them to the
         * REPL's "interrupted!" hook. Drop that hook if it is still armed (the
         * all-events, count-1 hook lua.c-style front ends install) and the
         * error it raised inside a callback. rlaif.core.cancelled() stays true. */
        int all = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
        if (lua_gethook(L) != NULL && lua_gethookmask(L) == all && lua_gethookcount(L) == 1)
            lua_sethook(L, NULL, 0, 0);
        if (ctx.err_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, ctx.err_ref);
        ctx.err_ref = LUA_NOREF;
    }
    if (ctx.err_ref != LUA_NOREF) {   /* C is done; now it is safe to raise */
        lua_rawgeti(L, LUA_REGISTRYINDEX, ctx.err_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, ctx.err_ref);
        return lua_error(L);
    }
    lua_pushvalue(L, 7);
    lua_pushboolean(L, st == RLAIF_EINTR);
    lua_pushvalue(L, 8);
    return 3;
}

static int client_stats(lua_State *L) {
    rlaif_llm_client *c = checkclient(L, 1);
    cJSON *s = rlaif_llm_client_stats(c);
    if (s == NULL) return luaL_error(L, "llm.stats: out of memory");
    pushjson(L, s, 0);   /* may raise only on OOM; s leaks then, acceptable */
    cJSON_Delete(s);
    return 1;
}

static int client_reset_stats(lua_State *L) {
    rlaif_llm_client_reset_stats(checkclient(L, 1));
    return 0;
}

static int client_set_concurrency(lua_State *L) {
    rlaif_llm_client *c = checkclient(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 1 && n <= 65536, 2, "concurrency must be in 1..65536");
    rlaif_llm_client_set_concurrency(c, (int)n);
    return 0;
}

/* ---- module functions ---- */

/* llm.parse(format, body [, stream]) -> response | nil, message, kind */
static int llm_parse(lua_State *L) {
    const char *fname = luaL_checkstring(L, 1);
    size_t len;
    const char *body = luaL_checklstring(L, 2, &len);
    int stream = lua_toboolean(L, 3);
    rlaif_llm_format f;
    if (rlaif_llm_format_parse(fname, &f) != RLAIF_OK) return luaL_argerror(L, 1, rlaif_last_error());
    cJSON *out = NULL;
    rlaif_llm_error err;
    rlaif_status st = rlaif_llm_parse(f, stream, body, len, &out, &err);
    if (st != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        lua_pushstring(L, st == RLAIF_EIO ? (err.capability ? "capability" : "http") : "parse");
        return 3;
    }
    pushresult(L, out);
    cJSON_Delete(out);
    return 1;
}

/* llm.build(api, base_url, model, req) -> url, body, format, stream */
static int llm_build(lua_State *L) {
    rlaif_llm_api api;
    if (rlaif_llm_api_parse(luaL_checkstring(L, 1), &api) != RLAIF_OK) return luaL_argerror(L, 1, rlaif_last_error());
    const char *base = luaL_checkstring(L, 2);
    const char *model = luaL_optstring(L, 3, NULL);
    luaL_checktype(L, 4, LUA_TTABLE);
    batch_box *bx = lua_newuserdatauv(L, sizeof *bx, 0);
    bx->reqs = bx->results = NULL;
    bx->n = 0;
    luaL_setmetatable(L, LLM_BATCH_MT);
    if ((bx->reqs = calloc(1, sizeof *bx->reqs)) == NULL) return luaL_error(L, "llm.build: out of memory");
    bx->n = 1;
    bx->reqs[0] = checkjson(L, 4, "llm.build");
    rlaif_llm_wire w;
    rlaif_status st = rlaif_llm_build(api, base, model, bx->reqs[0], &w);
    if (st != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    lua_pushstring(L, w.url);
    lua_pushlstring(L, w.body, w.body_len);
    lua_pushstring(L, rlaif_llm_format_name(w.format));
    lua_pushboolean(L, w.stream);
    rlaif_llm_wire_clear(&w);
    return 4;
}

/* llm.error_info(status, body) -> {message, retryable, capability, quota, retry_after} */
static int llm_error_info(lua_State *L) {
    int status = (int)luaL_checkinteger(L, 1);
    size_t len;
    const char *body = luaL_checklstring(L, 2, &len);
    rlaif_llm_error e;
    rlaif_llm_error_from_body(status, body, len, &e);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, e.message);
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, e.retryable);
    lua_setfield(L, -2, "retryable");
    lua_pushboolean(L, e.capability);
    lua_setfield(L, -2, "capability");
    lua_pushboolean(L, e.quota);
    lua_setfield(L, -2, "quota");
    if (e.retry_after >= 0) {
        lua_pushnumber(L, e.retry_after);
        lua_setfield(L, -2, "retry_after");
    }
    lua_pushinteger(L, e.status);
    lua_setfield(L, -2, "status");
    return 1;
}

/* llm.decode_json(s) -> value | nil, message */
static int llm_decode_json(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    cJSON *v = cJSON_ParseWithLength(s, len);
    if (v == NULL) {
        luaL_pushfail(L);
        lua_pushstring(L, "llm.decode_json: invalid JSON");
        return 2;
    }
    pushjson(L, v, 0);
    cJSON_Delete(v);
    return 1;
}

/* llm.encode_json(v) -> string (object keys sorted) */
static int llm_encode_json(lua_State *L) {
    luaL_checkany(L, 1);
    batch_box *bx = lua_newuserdatauv(L, sizeof *bx, 0);
    bx->reqs = bx->results = NULL;
    bx->n = 0;
    luaL_setmetatable(L, LLM_BATCH_MT);
    if ((bx->reqs = calloc(1, sizeof *bx->reqs)) == NULL) return luaL_error(L, "llm.encode_json: out of memory");
    bx->n = 1;
    bx->reqs[0] = checkjson(L, 1, "llm.encode_json");
    char *s = cJSON_PrintUnformatted(bx->reqs[0]);
    if (s == NULL) return luaL_error(L, "llm.encode_json: out of memory");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

static int llm_isatty(lua_State *L) {
    lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 2)));
    return 1;
}

static int llm_sha256(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char hex[65];
    rlaif_sha256_hex(s, len, hex);
    lua_pushstring(L, hex);
    return 1;
}

/* llm.retry_after(ms_header, header) -> seconds | nil */
static int llm_retry_after(lua_State *L) {
    double d = rlaif_http_parse_retry_after(luaL_optstring(L, 1, NULL), luaL_optstring(L, 2, NULL));
    if (d < 0) lua_pushnil(L);
    else lua_pushnumber(L, d);
    return 1;
}

/* llm.backoff(base, cap, retry, u) -> seconds */
static int llm_backoff(lua_State *L) {
    lua_pushnumber(L, rlaif_http_backoff(luaL_checknumber(L, 1), luaL_checknumber(L, 2),
                                         (int)luaL_checkinteger(L, 3), luaL_optnumber(L, 4, 0)));
    return 1;
}

/* llm.cancel_request() / llm.cancel_reset(): what the REPL's Ctrl-C handler does
 * (for tests and for front ends without one). */
static int llm_cancel_request(lua_State *L) {
    (void)L;
    rlaif_cancel_request();
    return 0;
}

static int llm_cancel_reset(lua_State *L) {
    (void)L;
    rlaif_cancel_reset();
    return 0;
}

static const luaL_Reg client_methods[] = {
    {"run", client_run},
    {"stats", client_stats},
    {"reset_stats", client_reset_stats},
    {"set_concurrency", client_set_concurrency},
    {"close", client_close},
    {NULL, NULL},
};

static const luaL_Reg client_meta[] = {
    {"__gc", client_close},
    {"__close", client_close},
    {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg llm_funcs[] = {
    {"client", llm_client},
    {"parse", llm_parse},
    {"build", llm_build},
    {"error_info", llm_error_info},
    {"decode_json", llm_decode_json},
    {"encode_json", llm_encode_json},
    {"isatty", llm_isatty},
    {"sha256", llm_sha256},
    {"retry_after", llm_retry_after},
    {"backoff", llm_backoff},
    {"cancel_request", llm_cancel_request},
    {"cancel_reset", llm_cancel_reset},
    {NULL, NULL},
};

int luaopen_rlaif_llm(lua_State *L) {
    if (luaL_newmetatable(L, LLM_CLIENT_MT)) {
        luaL_setfuncs(L, client_meta, 0);
        luaL_newlibtable(L, client_methods);
        luaL_setfuncs(L, client_methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, LLM_BATCH_MT)) {
        lua_pushcfunction(L, batch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, llm_funcs);
    return 1;
}
