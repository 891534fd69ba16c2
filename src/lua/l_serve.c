/* src/lua/l_serve.c -- Lua binding of src/core/serve.h: rlaif.core.serve.
 *
 *   local srv = core.serve.start{host=, port=, max_queue=, max_body=, timeout=,
 *                                read_timeout=, max_connections=, retry_after=, api_key=}
 *   srv:port(); srv:static(path, status, content_type, body [, public])
 *   local reqs = srv:take(max, wait, gather)   -- {id, method, path, query, headers, body, waited}
 *   srv:respond(id, status, content_type, headers, body)        -> true | false, message
 *   srv:stream_start(id, status, content_type, headers); srv:stream_write(id, s); srv:stream_end(id)
 *   srv:stats(); srv:stop([drain]); core.serve.catch_sigterm(on); core.serve.sigterm_seen()
 *
 * A server userdata is a box holding one rlaif_server; __gc, __close and
 * :stop() share one idempotent body, so a raised error or the end of the
 * interpreter never leaves libmicrohttpd's threads running. Request ids are
 * Lua integers. `headers` (in and out) are "Name: value" lines joined by "\n"
 * going out, and a table keyed by lower-case name coming in.
 * Misuse (bad types, a freed server) raises; runtime failures (address in use,
 * a request that is gone) return false/nil and a message.
 * Not here: routing, JSON, OpenAI shapes (lua/rlaif/serve.lua, serve_openai.lua). */
#include <string.h>

#include "l_util.h"
#include "serve.h"

#define SERVER_MT "rlaif.Server"

typedef struct server_box { rlaif_server *s; } server_box;
typedef struct take_box { rlaif_server_request *r; int n; } take_box;   /* requests being copied */

static rlaif_server *check_server(lua_State *L, int i) {
    server_box *b = luaL_checkudata(L, i, SERVER_MT);
    if (b->s == NULL) luaL_error(L, "attempt to use a stopped server");
    return b->s;
}

/* __gc, __close and :stop(drain) */
static int server_stop(lua_State *L) {
    server_box *b = luaL_checkudata(L, 1, SERVER_MT);
    double drain = luaL_optnumber(L, 2, 1.0);
    if (b->s) {
        rlaif_server_stop(b->s, drain);
        rlaif_server_free(b->s);
        b->s = NULL;
    }
    return 0;
}

static double opt_num_field(lua_State *L, int t, const char *k, double def) {
    lua_getfield(L, t, k);
    double v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1)) luaL_error(L, "serve.start: option '%s' must be a number", k);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* start{...} -> server | nil, message */
static int serve_start(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    rlaif_server_opts o;
    rlaif_server_opts_defaults(&o);
    lua_getfield(L, 1, "host");
    if (!lua_isnil(L, -1)) o.host = luaL_checkstring(L, -1);   /* stays on the stack until we return */
    lua_getfield(L, 1, "api_key");
    if (!lua_isnil(L, -1)) o.api_key = luaL_checkstring(L, -1);
    double port = opt_num_field(L, 1, "port", 0);
    double mq = opt_num_field(L, 1, "max_queue", o.max_queue);
    double mb = opt_num_field(L, 1, "max_body", (double)o.max_body);
    double mc = opt_num_field(L, 1, "max_connections", o.max_connections);
    double ra = opt_num_field(L, 1, "retry_after", o.retry_after);
    o.timeout = opt_num_field(L, 1, "timeout", o.timeout);
    o.read_timeout = opt_num_field(L, 1, "read_timeout", o.read_timeout);
    luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port must be in [0, 65535]");
    luaL_argcheck(L, mq >= 1 && mq <= 1e6, 1, "max_queue must be in [1, 1e6]");
    luaL_argcheck(L, mb >= 1 && mb <= 1e12, 1, "max_body must be in [1, 1e12]");
    luaL_argcheck(L, mc >= 1 && mc <= 1e6, 1, "max_connections must be in [1, 1e6]");
    luaL_argcheck(L, ra >= 0 && ra <= 86400, 1, "retry_after must be in [0, 86400]");
    o.port = (int)port, o.max_queue = (int)mq, o.max_body = (size_t)mb, o.max_connections = (int)mc;
    o.retry_after = (int)ra;
    server_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->s = NULL;
    luaL_setmetatable(L, SERVER_MT);
    if (rlaif_server_start(&b->s, &o) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    return 1;
}

static int server_port(lua_State *L) {
    lua_pushinteger(L, rlaif_server_port(check_server(L, 1)));
    return 1;
}

/* srv:static(path, status, content_type, body [, public]) */
static int server_static(lua_State *L) {
    rlaif_server *s = check_server(L, 1);
    const char *path = luaL_checkstring(L, 2);
    int status = (int)luaL_checkinteger(L, 3);
    const char *ct = luaL_checkstring(L, 4);
    size_t len;
    const char *body = luaL_checklstring(L, 5, &len);
    if (rlaif_server_static(s, path, status, ct, body, len, lua_toboolean(L, 6)) != RLAIF_OK)
        return luaL_error(L, "%s", rlaif_last_error());
    return 0;
}

/* Push a table from packed name '\0' value '\0' pairs. */
static void push_pairs(lua_State *L, const char *p, size_t len) {
    lua_newtable(L);
    size_t i = 0;
    while (p && i < len) {
        const char *k = p + i;
        size_t kl = strlen(k);
        const char *v = k + kl + 1;
        size_t vl = strlen(v);
        lua_pushlstring(L, v, vl);
        lua_setfield(L, -2, k);
        i += kl + vl + 2;
    }
}

/* srv:take(max, wait, gather) -> {requests} | nil, "interrupted" */
static int server_take(lua_State *L) {
    rlaif_server *s = check_server(L, 1);
    lua_Integer max = luaL_checkinteger(L, 2);
    double wait = luaL_checknumber(L, 3), gather = luaL_optnumber(L, 4, 0);
    luaL_argcheck(L, max >= 1 && max <= 1 << 20, 2, "max must be in [1, 2^20]");
    rlaif_server_request *rs = NULL;
    int n = 0;
    rlaif_status st = rlaif_server_take(s, (int)max, wait, gather, &rs, &n);
    if (st != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, st == RLAIF_EINTR ? "interrupted" : rlaif_last_error());
        return 2;
    }
    /* Lua allocations below may raise: copy into Lua with the array held in a
     * userdata box so an error cannot leak it */
    take_box *tb = lua_newuserdatauv(L, sizeof *tb, 0);
    tb->r = rs, tb->n = n;
    luaL_setmetatable(L, "rlaif.ServerTake");
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        rlaif_server_request *q = &rs[i];
        lua_createtable(L, 0, 8);
        lua_pushinteger(L, (lua_Integer)q->id);
        lua_setfield(L, -2, "id");
        lua_pushstring(L, q->method);
        lua_setfield(L, -2, "method");
        lua_pushstring(L, q->path);
        lua_setfield(L, -2, "path");
        push_pairs(L, q->query, q->query_len);
        lua_setfield(L, -2, "query");
        push_pairs(L, q->headers, q->headers_len);
        lua_setfield(L, -2, "headers");
        lua_pushlstring(L, q->body, q->body_len);
        lua_setfield(L, -2, "body");
        lua_pushnumber(L, q->waited);
        lua_setfield(L, -2, "waited");
        lua_seti(L, -2, i + 1);
    }
    rlaif_server_requests_free(tb->r, tb->n);
    tb->r = NULL, tb->n = 0;
    return 1;
}

static int take_gc(lua_State *L) {
    take_box *tb = lua_touserdata(L, 1);
    rlaif_server_requests_free(tb->r, tb->n);
    tb->r = NULL, tb->n = 0;
    return 0;
}

static uint64_t check_id(lua_State *L, int i) {
    lua_Integer id = luaL_checkinteger(L, i);
    luaL_argcheck(L, id > 0, i, "request ids are positive");
    return (uint64_t)id;
}

static int result(lua_State *L, rlaif_status st) {
    if (st == RLAIF_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushstring(L, rlaif_last_error());
    return 2;
}

/* srv:respond(id, status, content_type, headers|nil, body) -> true | false, message */
static int server_respond(lua_State *L) {
    rlaif_server *s = check_server(L, 1);
    uint64_t id = check_id(L, 2);
    lua_Integer status = luaL_checkinteger(L, 3);
    luaL_argcheck(L, status >= 100 && status <= 599, 3, "status must be in [100, 599]");
    const char *ct = luaL_optstring(L, 4, NULL), *hdrs = luaL_optstring(L, 5, NULL);
    size_t len = 0;
    const char *body = luaL_optlstring(L, 6, "", &len);
    return result(L, rlaif_server_respond(s, id, (int)status, ct, hdrs, body, len));
}

static int server_stream_start(lua_State *L) {
    rlaif_server *s = check_server(L, 1);
    uint64_t id = check_id(L, 2);
    lua_Integer status = luaL_checkinteger(L, 3);
    luaL_argcheck(L, status >= 100 && status <= 599, 3, "status must be in [100, 599]");
    return result(L, rlaif_server_stream_start(s, id, (int)status, luaL_optstring(L, 4, NULL),
                                               luaL_optstring(L, 5, NULL)));
}

static int server_stream_write(lua_State *L) {
    rlaif_server *s = check_server(L, 1);
    uint64_t id = check_id(L, 2);
    size_t len;
    const char *data = luaL_checklstring(L, 3, &len);
    return result(L, rlaif_server_stream_write(s, id, data, len));
}

static int server_stream_end(lua_State *L) {
    rlaif_server *s = check_server(L, 1);
    return result(L, rlaif_server_stream_end(s, check_id(L, 2)));
}

static int server_stats(lua_State *L) {
    rlaif_server_stats st;
    rlaif_server_get_stats(check_server(L, 1), &st);
    lua_createtable(L, 0, 10);
#define F(k) (lua_pushinteger(L, (lua_Integer)st.k), lua_setfield(L, -2, #k))
    F(received), F(answered), F(rejected_full), F(too_large), F(unauthorized), F(timed_out), F(static_hits);
    F(dropped), F(queued), F(in_flight);
#undef F
    return 1;
}

static int serve_catch_sigterm(lua_State *L) {
    rlaif_server_catch_sigterm(lua_toboolean(L, 1));
    return 0;
}

static int serve_sigterm_seen(lua_State *L) {
    lua_pushboolean(L, rlaif_server_sigterm_seen());
    return 1;
}

static int server_tostring(lua_State *L) {
    server_box *b = luaL_checkudata(L, 1, SERVER_MT);
    if (b->s == NULL) lua_pushliteral(L, "rlaif.Server (stopped)");
    else lua_pushfstring(L, "rlaif.Server(port %d)", rlaif_server_port(b->s));
    return 1;
}

static const luaL_Reg server_methods[] = {
    {"port", server_port},
    {"static", server_static},
    {"take", server_take},
    {"respond", server_respond},
    {"stream_start", server_stream_start},
    {"stream_write", server_stream_write},
    {"stream_end", server_stream_end},
    {"stats", server_stats},
    {"stop", server_stop},
    {NULL, NULL},
};

static const luaL_Reg server_meta[] = {
    {"__gc", server_stop},
    {"__close", server_stop},
    {"__tostring", server_tostring},
    {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg serve_funcs[] = {
    {"start", serve_start},
    {"catch_sigterm", serve_catch_sigterm},
    {"sigterm_seen", serve_sigterm_seen},
    {NULL, NULL},
};

int luaopen_rlaif_serve(lua_State *L) {
    luaL_newmetatable(L, "rlaif.ServerTake");
    lua_pushcfunction(L, take_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, SERVER_MT);
    luaL_setfuncs(L, server_meta, 0);
    luaL_newlibtable(L, server_methods);
    luaL_setfuncs(L, server_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, serve_funcs);
    return 1;
}
