/* src/embed/state.c -- the embedding API (include/rlaif/state.h): a Lua 5.4
 * state with the toolkit loaded, owned by a C host.
 *
 * What it is: state creation from options (a counting allocator for the
 * memory limit, a count hook for the instruction budget and interrupts, the
 * toolkit loaded from its Lua files with rlaif.core linked in), and the calls
 * a host makes -- run a chunk or a file, call a function by dotted path with
 * JSON arguments and a JSON result, set/get values and tensors, errors with
 * tracebacks. It lives outside src/core because it needs lua.h; the sandbox
 * itself (what scripts may see and touch) is sandbox.c.
 *
 * How a call stays inside the host's rules: every piece of Lua work runs in
 * lua_pcall (so an error never longjmps through the host), with the state's
 * scope installed on the calling thread (src/core/scope.c: the cancel flag
 * C loops poll, the meter tensors and models are charged to, the file
 * policy), and the count hook armed. The hook raises "interrupted" after
 * rlaif_state_interrupt and "instruction budget of N exceeded" once the
 * budget is spent -- again at every later hook of the same call, so a script
 * that catches the error with pcall cannot keep running -- and the same flag
 * (S->cancel) makes the toolkit's C loops return RLAIF_EINTR. Without a
 * budget there is no hook (Lua 5.4 traces every instruction while one is
 * set) until an interrupt puts one on the running thread.
 *
 * What it is not: a second Lua API. Values cross as JSON text or tensors;
 * hosts wanting more use rlaif_state_lua. Ownership: the state owns its
 * lua_State, meter reference and copies of every option string; result
 * strings are malloc'd for the caller (rlaif_free). */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embed.h"
#include "l_util.h"
#include "tensor.h"

#ifndef RLAIF_PREFIX
#define RLAIF_PREFIX "/usr/local"
#endif

#define ERROR_MAX (16 << 10)   /* longest error message kept (bytes) */

LUAMOD_API int luaopen_rlaif_core(lua_State *L);   /* src/lua/l_pkg.c, linked in */

/* ---- memory: every Lua allocation goes through the state's meter ---- */

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    rlaif_state *S = ud;
    if (ptr == NULL) osize = 0;   /* then osize only says what kind of object */
    if (nsize == 0) {
        free(ptr);
        rlaif_meter_sub(S->meter, osize);
        return NULL;
    }
    if (nsize > osize && !rlaif_meter_add(S->meter, nsize - osize)) {
        S->mem_refused = 1;       /* Lua raises LUA_ERRMEM; never a host OOM */
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p == NULL) {
        if (nsize > osize) rlaif_meter_sub(S->meter, nsize - osize);
        return NULL;              /* (Lua never shrinks with a failing realloc) */
    }
    if (nsize < osize) rlaif_meter_sub(S->meter, osize - nsize);
    return p;
}

rlaif_state *rlaif_embed_state(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

/* ---- the count hook: budget and interrupts ---- */

static void count_hook(lua_State *L, lua_Debug *ar) {
    rlaif_state *S = rlaif_embed_state(L);
    int step = lua_gethookcount(L);
    if (S->armed) S->used += step;
    if (S->armed && S->cancel == 0 && S->budget > 0 && S->used >= S->budget) S->cancel = 2;
    if (!S->armed || S->cancel == 0) {   /* nothing to stop: back to the usual hook, or none */
        if (S->budget > 0) {
            if (step != S->hook_step) lua_sethook(L, count_hook, LUA_MASKCOUNT, S->hook_step);
        } else {
            lua_sethook(L, NULL, 0, 0);
            /* an interrupt that came while this ran must not be undone by it */
            if (S->armed && S->cancel != 0) lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        }
        return;
    }
    /* From now on this thread hooks every instruction: a script that catches
     * the error (pcall in a loop) meets it again at its very next one. */
    if (step != 1) lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    char where[LUA_IDSIZE + 16] = "";
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        snprintf(where, sizeof where, "%s:%d: ", ar->short_src, ar->currentline);
    if (S->cancel == 2) luaL_error(L, "%sinstruction budget of %I exceeded", where, (lua_Integer)S->budget);
    luaL_error(L, "%sinterrupted", where);
}

/* Flags, and (without a budget) a hook on the running thread: lua_sethook
 * only stores a few fields, as lua.c's SIGINT handler relies on. The
 * `interrupting` flag keeps a coroutine from being left (and collected) while
 * another thread is between reading S->running and hooking it. */
void rlaif_state_interrupt(rlaif_state *S) {
    if (S == NULL) return;
    if (S->cancel == 0) S->cancel = 1;
    if (S->budget > 0) return;   /* the hook runs anyway */
    atomic_store(&S->interrupting, 1);
    lua_State *L = atomic_load(&S->running);
    if (L != NULL) {
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        if (L != S->L) lua_sethook(S->L, count_hook, LUA_MASKCOUNT, 1);   /* where it returns to */
    }
    atomic_store(&S->interrupting, 0);
}

lua_State *rlaif_embed_enter(rlaif_state *S, lua_State *co) {
    lua_State *prev = atomic_exchange(&S->running, co);
    if (S->armed && S->cancel != 0 && S->budget == 0) lua_sethook(co, count_hook, LUA_MASKCOUNT, 1);
    return prev;
}

void rlaif_embed_leave(rlaif_state *S, lua_State *prev) {
    atomic_store(&S->running, prev);
    while (atomic_load(&S->interrupting)) { /* another thread is hooking the old one: a few stores */ }
}

/* ---- errors ---- */

/* Message handler of every protected call: the message plus a traceback;
 * other error objects through __tostring (house style 9.6.4). */
static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        /* a script's __tostring, but not while the state is stopping: the hook
         * that raised the error left hooks off, so it could loop unchecked */
        if (rlaif_embed_state(L)->cancel == 0 && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static void set_error(rlaif_state *S, const char *msg, size_t len) {
    if (len == 0 && S->error != NULL) {   /* the common case: success, no allocation */
        S->error[0] = '\0';
        return;
    }
    free(S->error);
    if (len > ERROR_MAX) len = ERROR_MAX;
    S->error = malloc(len + 1);
    if (S->error != NULL) {
        memcpy(S->error, msg, len);
        S->error[len] = '\0';
    }
}

/* Record a failure outside Lua: S's error and rlaif_last_error. */
static int fail(rlaif_state *S, rlaif_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(rlaif_state *S, rlaif_status st, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    set_error(S, buf, strlen(buf));
    rlaif_fail(st, "%s", buf);
    return st;
}

const char *rlaif_state_error(rlaif_state *S) { return S && S->error ? S->error : ""; }

/* ---- protected execution ---- */

/* Run f(ud) in protected mode with the scope installed and the hook armed.
 * The status says why it failed; the message goes to S->error. */
static int protected_run(rlaif_state *S, lua_CFunction f, void *ud) {
    if (S->busy)
        return fail(S, RLAIF_EINVAL, "rlaif_state: the state is already running (a nested call?)");
    lua_State *L = S->L;
    int base = lua_gettop(L);
    atomic_store(&S->running, L);   /* before the check: an interrupt from now on is seen */
    if (S->cancel == 1) {
        rlaif_embed_leave(S, NULL);
        S->cancel = 0;
        return fail(S, RLAIF_EINTR, "interrupted");
    }
    S->busy = 1;
    S->used = 0;
    S->mem_refused = 0;
    S->bad_request = 0;
    S->scope.refused_path = S->scope.refused_mem = 0;
    S->script_scope.refused_path = 0;
    rlaif_scope *prev = rlaif_scope_set(&S->scope);
    lua_pushcfunction(L, msghandler);
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, ud);
    S->armed = 1;
    int rc = lua_pcall(L, 1, 0, base + 1);
    S->armed = 0;
    rlaif_embed_leave(S, NULL);
    if (S->budget > 0) lua_sethook(L, count_hook, LUA_MASKCOUNT, S->hook_step);   /* after a trip: every instruction */
    else lua_sethook(L, NULL, 0, 0);
    rlaif_scope_set(prev);
    rlaif_status st = RLAIF_OK;
    if (rc != LUA_OK) {
        size_t len = 0;
        const char *msg = lua_tolstring(L, -1, &len);
        char buf[256];
        if (rc == LUA_ERRMEM || S->mem_refused || S->scope.refused_mem) {
            st = RLAIF_ENOMEM;
            if (rc == LUA_ERRMEM) {   /* Lua calls no handler for these: no traceback */
                snprintf(buf, sizeof buf, S->mem_refused ? "memory limit of %zu bytes exceeded" : "not enough memory",
                         rlaif_meter_limit(S->meter));
                msg = buf, len = strlen(buf);
            }
        } else if (S->bad_request) st = RLAIF_EINVAL;
        else if (S->cancel == 2) st = RLAIF_EBUDGET;
        else if (S->cancel == 1) st = RLAIF_EINTR;
        else if (S->scope.refused_path || S->script_scope.refused_path) st = RLAIF_EACCES;
        else st = RLAIF_ESCRIPT;
        if (msg == NULL) msg = "(error object is not a string)", len = strlen(msg);
        set_error(S, msg, len);
        rlaif_fail(st, "%s", S->error ? S->error : msg);
    } else if (S->cancel != 0) {
        /* the script caught the error and finished: the call still failed */
        st = S->cancel == 2 ? RLAIF_EBUDGET : RLAIF_EINTR;
        char buf[128];
        if (S->cancel == 2) snprintf(buf, sizeof buf, "instruction budget of %ld exceeded (the script caught the error)", S->budget);
        else snprintf(buf, sizeof buf, "interrupted (the script caught the error)");
        set_error(S, buf, strlen(buf));
        rlaif_fail(st, "%s", buf);
    } else {
        set_error(S, "", 0);
    }
    lua_settop(L, base);
    S->cancel = 0;
    S->busy = 0;
    return st;
}

/* ---- values at dotted paths ---- */

/* Raise an error about the host's request (not the script): RLAIF_EINVAL. */
static int host_error(lua_State *L, const char *fmt, ...) {
    rlaif_embed_state(L)->bad_request = 1;
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return lua_error(L);
}

/* Push the scripts' global table. */
static void push_env(lua_State *L) { lua_getfield(L, LUA_REGISTRYINDEX, REG_ENV); }

/* Push the value at dotted path p (from the scripts' globals); raises when an
 * intermediate value cannot be indexed. */
static void push_path(lua_State *L, const char *p) {
    push_env(L);
    const char *seg = p;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        if (n == 0) host_error(L, "bad path '%s' (an empty name)", p);
        if (!lua_istable(L, -1) && !lua_isuserdata(L, -1))
            host_error(L, "'%s': cannot index a %s value before '%s'", p, luaL_typename(L, -1), seg);
        lua_pushlstring(L, seg, n);
        lua_gettable(L, -2);
        lua_remove(L, -2);
        if (dot == NULL) return;
        seg = dot + 1;
    }
}

/* Assign the value on top of the stack at dotted path p, creating tables. */
static void set_path(lua_State *L, const char *p) {
    int v = lua_gettop(L);
    push_env(L);
    const char *seg = p;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        if (n == 0) host_error(L, "bad path '%s' (an empty name)", p);
        lua_pushlstring(L, seg, n);
        if (dot == NULL) {
            lua_pushvalue(L, v);
            lua_settable(L, -3);
            lua_settop(L, v - 1);
            return;
        }
        lua_pushvalue(L, -1);
        lua_gettable(L, -3);
        if (lua_isnil(L, -1)) {   /* create the intermediate table */
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_settable(L, -5);
        } else if (!lua_istable(L, -1)) {
            host_error(L, "'%s': '%s' holds a %s value, not a table", p, lua_tostring(L, -2), luaL_typename(L, -1));
        }
        lua_remove(L, -2);   /* the key */
        lua_remove(L, -2);   /* the parent */
        seg = dot + 1;
    }
}

/* JSON text -> a Lua value pushed (trusted decoder in the registry). */
static void push_json(lua_State *L, const char *json, const char *what) {
    lua_getfield(L, LUA_REGISTRYINDEX, REG_HELPER);
    lua_getfield(L, -1, "decode");
    lua_remove(L, -2);
    lua_pushstring(L, json);
    lua_call(L, 1, 2);
    if (lua_isnil(L, -2)) host_error(L, "%s: %s", what, lua_tostring(L, -1));
    lua_pop(L, 1);
}

/* The value at the top -> a new malloc'd JSON string (tensors as arrays).
 * rlaif.core.json.encode directly first; only when that fails (a tensor
 * inside, or something JSON cannot hold) the helper converts and explains. */
static char *to_json(lua_State *L, const char *what) {
    lua_getfield(L, LUA_REGISTRYINDEX, REG_HELPER);
    lua_getfield(L, -1, "raw_encode");
    lua_pushvalue(L, -3);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
        lua_remove(L, -2);   /* the helper table */
        lua_remove(L, -2);   /* the value */
    } else {
        lua_pop(L, 1);
        lua_getfield(L, -1, "encode");
        lua_remove(L, -2);
        lua_insert(L, -2);
        lua_pushstring(L, what);
        lua_call(L, 2, 1);
    }
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    char *out = malloc(len + 1);
    if (out == NULL) luaL_error(L, "%s: out of memory", what);
    memcpy(out, s, len + 1);
    lua_pop(L, 1);
    return out;
}

/* ---- run, call, set, get ---- */

typedef struct job {
    rlaif_state *S;
    const char *text;     /* code, path, function path */
    const char *json;     /* arguments or value */
    char **out;           /* a JSON result */
    rlaif_tensor *t;      /* tensor in */
    rlaif_tensor **tout;  /* tensor out */
} job;

/* Load a chunk (text only in the sandbox) and give it the scripts' globals. */
static void load_chunk(lua_State *L, rlaif_state *S, int status) {
    if (status != LUA_OK) lua_error(L);
    push_env(L);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    (void)S;
}

static int do_run(lua_State *L) {
    job *j = lua_touserdata(L, 1);
    rlaif_state *S = j->S;
    load_chunk(L, S, luaL_loadbufferx(L, j->text, strlen(j->text), "=(run)", S->sandbox ? "t" : "bt"));
    lua_call(L, 0, 0);
    return 0;
}

static int do_run_file(lua_State *L) {
    job *j = lua_touserdata(L, 1);
    rlaif_state *S = j->S;
    char buf[RLAIF_PATH_MAX];
    const char *path = j->text;
    if (S->sandbox) path = rlaif_embed_script_path(L, S, path, buf, "rlaif_state_run_file");
    else if (path[0] != '/' && S->root) {
        snprintf(buf, sizeof buf, "%s/%s", S->root, path);
        path = buf;
    }
    load_chunk(L, S, luaL_loadfilex(L, path, S->sandbox ? "t" : "bt"));
    lua_call(L, 0, 0);
    return 0;
}

/* 1 when s (JSON text) is an array: its first non-blank character is '['. */
static int json_is_array(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    return *s == '[';
}

static int do_call(lua_State *L) {
    job *j = lua_touserdata(L, 1);
    push_path(L, j->text);
    if (!lua_isfunction(L, -1)) {
        if (luaL_getmetafield(L, -1, "__call") == LUA_TNIL)
            host_error(L, "'%s' is %s, not a function", j->text, lua_isnil(L, -1) ? "nil" : luaL_typename(L, -1));
        lua_pop(L, 1);   /* a callable table or userdata */
    }
    int nargs = 0;
    if (j->json != NULL) {
        if (!json_is_array(j->json)) host_error(L, "arguments: args_json must be a JSON array");
        push_json(L, j->json, "arguments");
        int t = lua_gettop(L);
        nargs = (int)lua_rawlen(L, t);
        luaL_checkstack(L, nargs + 4, "too many arguments");
        for (int i = 1; i <= nargs; i++) {
            lua_rawgeti(L, t, i);
            if (lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == NULL) {   /* json.null */
                lua_pop(L, 1);
                lua_pushnil(L);
            }
        }
        lua_remove(L, t);
    }
    lua_call(L, nargs, 1);
    if (j->out != NULL) *j->out = to_json(L, "result");
    return 0;
}

static int do_set(lua_State *L) {
    job *j = lua_touserdata(L, 1);
    if (j->t != NULL) {
        rlaif_tensor_retain(j->t);       /* the box takes this reference */
        rlaifL_pushtensor(L, j->t);
    } else {
        push_json(L, j->json, "value");
        if (lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == NULL) {
            lua_pop(L, 1);
            lua_pushnil(L);
        }
    }
    set_path(L, j->text);
    return 0;
}

static int do_get(lua_State *L) {
    job *j = lua_touserdata(L, 1);
    push_path(L, j->text);
    if (j->tout != NULL) {
        rlaif_tensor *t = rlaifL_testtensor(L, -1);
        if (t == NULL) host_error(L, "'%s' is %s, not a tensor", j->text, luaL_typename(L, -1));
        rlaif_tensor_retain(t);
        *j->tout = t;
    } else {
        *j->out = to_json(L, "value");
    }
    return 0;
}

static int check_args(rlaif_state *S, const char *what, const void *a) {
    if (S == NULL) return rlaif_fail(RLAIF_EINVAL, "%s: NULL state", what);
    if (a == NULL) return fail(S, RLAIF_EINVAL, "%s: NULL argument", what);
    return RLAIF_OK;
}

int rlaif_state_run(rlaif_state *S, const char *code) {
    int st = check_args(S, "rlaif_state_run", code);
    if (st != RLAIF_OK) return st;
    job j = {.S = S, .text = code};
    return protected_run(S, do_run, &j);
}

int rlaif_state_run_file(rlaif_state *S, const char *path) {
    int st = check_args(S, "rlaif_state_run_file", path);
    if (st != RLAIF_OK) return st;
    job j = {.S = S, .text = path};
    return protected_run(S, do_run_file, &j);
}

int rlaif_state_call(rlaif_state *S, const char *fn, const char *args_json, char **result_json) {
    if (result_json != NULL) *result_json = NULL;
    int st = check_args(S, "rlaif_state_call", fn);
    if (st != RLAIF_OK) return st;
    job j = {.S = S, .text = fn, .json = args_json, .out = result_json};
    st = protected_run(S, do_call, &j);
    if (st != RLAIF_OK && result_json != NULL) {
        free(*result_json);
        *result_json = NULL;
    }
    return st;
}

int rlaif_state_set(rlaif_state *S, const char *path, const char *json) {
    int st = check_args(S, "rlaif_state_set", path);
    if (st == RLAIF_OK) st = check_args(S, "rlaif_state_set", json);
    if (st != RLAIF_OK) return st;
    job j = {.S = S, .text = path, .json = json};
    return protected_run(S, do_set, &j);
}

int rlaif_state_get(rlaif_state *S, const char *path, char **json) {
    int st = check_args(S, "rlaif_state_get", json);
    if (st != RLAIF_OK) return st;
    *json = NULL;
    if ((st = check_args(S, "rlaif_state_get", path)) != RLAIF_OK) return st;
    job j = {.S = S, .text = path, .out = json};
    st = protected_run(S, do_get, &j);
    if (st != RLAIF_OK) {
        free(*json);
        *json = NULL;
    }
    return st;
}

int rlaif_state_set_tensor(rlaif_state *S, const char *path, rlaif_tensor *t) {
    int st = check_args(S, "rlaif_state_set_tensor", path);
    if (st == RLAIF_OK) st = check_args(S, "rlaif_state_set_tensor", t);
    if (st != RLAIF_OK) return st;
    job j = {.S = S, .text = path, .t = t};
    return protected_run(S, do_set, &j);
}

int rlaif_state_get_tensor(rlaif_state *S, const char *path, rlaif_tensor **out) {
    int st = check_args(S, "rlaif_state_get_tensor", out);
    if (st != RLAIF_OK) return st;
    *out = NULL;
    if ((st = check_args(S, "rlaif_state_get_tensor", path)) != RLAIF_OK) return st;
    job j = {.S = S, .text = path, .tout = out};
    st = protected_run(S, do_get, &j);
    if (st != RLAIF_OK && *out != NULL) {
        rlaif_tensor_release(*out);
        *out = NULL;
    }
    return st;
}

size_t rlaif_state_memory(const rlaif_state *S) { return S ? rlaif_meter_used(S->meter) : 0; }
long   rlaif_state_instructions(const rlaif_state *S) { return S ? S->used : 0; }
lua_State *rlaif_state_lua(rlaif_state *S) { return S ? S->L : NULL; }

/* ---- print ---- */

int rlaif_embed_print(lua_State *L) {
    rlaif_state *S = rlaif_embed_state(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_addvalue(&b);
        (void)s, (void)len;
    }
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (S->print != NULL) {
        S->print(S->print_ud, s, len);
    } else {
        fwrite(s, 1, len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    return 0;
}

/* ---- creation ---- */

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* If fmt % base names a directory holding rlaif/init.lua, return its realpath. */
static char *try_lua_dir(const char *fmt, const char *base) {
    char cand[PATH_MAX * 2], real[PATH_MAX], init[PATH_MAX + 32];
    snprintf(cand, sizeof cand, fmt, base);
    if (realpath(cand, real) == NULL) return NULL;
    snprintf(init, sizeof init, "%s/rlaif/init.lua", real);
    if (access(init, R_OK) != 0) return NULL;
    return strdup(real);
}

/* The toolkit's Lua files: the option, $RLAIF_LUA_DIR, next to this library
 * (checkout: build/ -> lua/, build/asan/ -> lua/; installed: lib/ ->
 * share/lua/5.4), else the compiled-in prefix. */
static char *find_lua_dir(const char *opt) {
    if (opt != NULL) return try_lua_dir("%s", opt);
    const char *env = getenv("RLAIF_LUA_DIR");
    if (env != NULL && *env) return try_lua_dir("%s", env);
    Dl_info info;
    char *found = NULL;
    if (dladdr((void *)rlaif_state_new, &info) && info.dli_fname != NULL) {
        char lib[PATH_MAX];
        if (realpath(info.dli_fname, lib) != NULL) {
            char *slash = strrchr(lib, '/');
            if (slash != NULL) *slash = '\0';
            if (!found) found = try_lua_dir("%s/../lua", lib);
            if (!found) found = try_lua_dir("%s/../../lua", lib);
            if (!found) found = try_lua_dir("%s/../share/lua/5.4", lib);
        }
    }
    if (!found) found = try_lua_dir("%s/share/lua/5.4", RLAIF_PREFIX);
    return found;
}

/* The read-only directories of the sandboxed toolkit: its Lua files and the
 * prompt templates next to them (checkout, installed prefix, luarocks tree). */
static char **find_read_dirs(const char *lua_dir) {
    const char *fmts[] = {"%s", "%s/../prompts", "%s/../../rlaif/prompts", "%s/rlaif/prompts"};
    char **dirs = calloc(sizeof fmts / sizeof fmts[0] + 1, sizeof *dirs);
    if (dirs == NULL) return NULL;
    int n = 0;
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        char cand[PATH_MAX * 2], real[PATH_MAX];
        snprintf(cand, sizeof cand, fmts[i], lua_dir);
        if (realpath(cand, real) != NULL && is_dir(real) && (dirs[n] = strdup(real)) != NULL) n++;
    }
    return dirs;
}

static void free_list(char **l) {
    for (char **p = l; p && *p; p++) free(*p);
    free(l);
}

/* The trusted helpers: JSON through rlaif.core.json, tensors to nested
 * tables first. Compiled once, before any script runs; the functions it
 * captures are the real ones, out of the scripts' reach. */
static const char helper_src[] =
    "local json, is_tensor, next, type = ...\n"
    "local encode, decode = json.encode, json.decode\n"
    "local function plain(v, depth)\n"
    "  if is_tensor(v) then return v:totable(), true end\n"
    "  if type(v) ~= 'table' or depth > 200 then return v, false end\n"
    "  local out\n"
    "  for k, x in next, v do\n"
    "    local y, changed = plain(x, depth + 1)\n"
    "    if changed then\n"
    "      if not out then out = {} for k2, x2 in next, v do out[k2] = x2 end end\n"
    "      out[k] = y\n"
    "    end\n"
    "  end\n"
    "  return out or v, out ~= nil\n"
    "end\n"
    "return {\n"
    "  encode = function(v, what)\n"
    "    local ok, s = pcall(encode, (plain(v, 0)))\n"
    "    if not ok then error(what .. ': ' .. tostring(s), 0) end\n"
    "    return s\n"
    "  end,\n"
    "  decode = decode,\n"
    "  raw_encode = encode,\n"
    "}\n";

static int is_tensor(lua_State *L) {
    lua_pushboolean(L, rlaifL_testtensor(L, 1) != NULL);
    return 1;
}

/* os.exit in an embedded state: an error, never an exit through the host. */
static int no_exit(lua_State *L) {
    return luaL_error(L, "os.exit is not available in an embedded state (return from the script instead)");
}

static int do_setup(lua_State *L) {
    job *j = lua_touserdata(L, 1);
    rlaif_state *S = j->S;
    luaL_openlibs(L);
    /* rlaif.core is linked into this library: preload it, never load a .so */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_rlaif_core);
    lua_setfield(L, -2, "rlaif.core");
    lua_pop(L, 1);
    /* package.path: the toolkit first, then the scripts' templates (non-sandbox) */
    lua_getglobal(L, "package");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", S->lua_dir, S->lua_dir);
    luaL_addvalue(&b);
    if (!S->sandbox) {
        for (const char *p = S->path; p && *p;) {
            const char *semi = strchr(p, ';');
            size_t n = semi ? (size_t)(semi - p) : strlen(p);
            if (n > 0) {
                luaL_addchar(&b, ';');
                if (p[0] != '/' && S->root) {
                    luaL_addstring(&b, S->root);
                    luaL_addchar(&b, '/');
                }
                luaL_addlstring(&b, p, n);
            }
            p += n + (semi != NULL);
        }
        lua_getfield(L, -2, "path");
        luaL_addchar(&b, ';');
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    /* never an exit through the host */
    lua_getglobal(L, "os");
    lua_pushcfunction(L, no_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
    lua_pushcfunction(L, rlaif_embed_print);
    lua_setglobal(L, "print");
    lua_getglobal(L, "coroutine");   /* resume/wrap that rlaif_state_interrupt can follow */
    rlaif_embed_coroutines(L, lua_gettop(L), 0);
    lua_pop(L, 1);
    /* the trusted helpers */
    if (luaL_loadbufferx(L, helper_src, sizeof helper_src - 1, "=(rlaif embed)", "t") != LUA_OK) lua_error(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "rlaif.core");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "json");
    lua_remove(L, -2);
    lua_pushcfunction(L, is_tensor);
    lua_getglobal(L, "next");
    lua_getglobal(L, "type");
    lua_call(L, 4, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_HELPER);
    /* the toolkit */
    if (S->sandbox) {
        rlaif_embed_sandbox(L, S);   /* loads rlaif itself, inside the gated world */
    } else {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "rlaif");
        lua_call(L, 1, 1);
        lua_setglobal(L, "rlaif");
        lua_pushglobaltable(L);
        lua_setfield(L, LUA_REGISTRYINDEX, REG_ENV);
    }
    return 0;
}

rlaif_options rlaif_options_default(void) {
    rlaif_options o;
    memset(&o, 0, sizeof o);
    o.sandbox = 1;
    return o;
}

static void state_destroy(rlaif_state *S) {
    if (S == NULL) return;
    if (S->L != NULL) {
        rlaif_scope *prev = rlaif_scope_set(&S->scope);   /* finalizers free charged buffers */
        lua_close(S->L);
        rlaif_scope_set(prev);
    }
    rlaif_meter_release(S->meter);
    free(S->root);
    free_list(S->read_dirs);
    free(S->lua_dir);
    free(S->path);
    free_list(S->env);
    free(S->error);
    free(S);
}

void rlaif_state_free(rlaif_state *S) {
    if (S != NULL && S->busy) return;   /* freeing a running state would pull the floor from under it */
    state_destroy(S);
}

rlaif_state *rlaif_state_new(const rlaif_options *opt) {
    rlaif_options defaults = rlaif_options_default();
    if (opt == NULL) opt = &defaults;
    if (opt->instruction_budget < 0) {
        rlaif_fail(RLAIF_EINVAL, "rlaif_state_new: instruction_budget %ld is negative", opt->instruction_budget);
        return NULL;
    }
    rlaif_init();
    rlaif_state *S = calloc(1, sizeof *S);
    if (S == NULL) {
        rlaif_fail(RLAIF_ENOMEM, "rlaif_state_new: out of memory");
        return NULL;
    }
    S->sandbox = opt->sandbox != 0;
    S->budget = opt->instruction_budget;
    S->hook_step = S->budget > 0 && S->budget < HOOK_STEP ? (int)S->budget : HOOK_STEP;
    S->print = opt->print;
    S->print_ud = opt->print_ud;
    S->meter = rlaif_meter_new(opt->memory_limit);
    S->path = dupstr(opt->path ? opt->path : "?.lua;?/init.lua");
    int n_env = 0;
    for (const char *const *e = opt->env; e && *e; e++) n_env++;
    S->env = calloc((size_t)n_env + 1, sizeof *S->env);
    int oom = S->meter == NULL || S->path == NULL || S->env == NULL;
    for (int i = 0; !oom && i < n_env; i++) oom = (S->env[i] = strdup(opt->env[i])) == NULL;
    if (oom) {
        rlaif_fail(RLAIF_ENOMEM, "rlaif_state_new: out of memory");
        goto fail;
    }
    if (opt->root != NULL) {
        char real[PATH_MAX];
        if (realpath(opt->root, real) == NULL) {
            rlaif_fail(RLAIF_EINVAL, "rlaif_state_new: root '%s': %s", opt->root, strerror(errno));
            goto fail;
        }
        if (!is_dir(real)) {
            rlaif_fail(RLAIF_EINVAL, "rlaif_state_new: root '%s' is not a directory", opt->root);
            goto fail;
        }
        if ((S->root = strdup(real)) == NULL) goto nomem;
    }
    if ((S->lua_dir = find_lua_dir(opt->lua_dir)) == NULL) {
        rlaif_fail(RLAIF_EINVAL, "rlaif_state_new: the toolkit's Lua files (rlaif/init.lua) are not in %s",
                   opt->lua_dir ? opt->lua_dir : "$RLAIF_LUA_DIR, next to the library or under " RLAIF_PREFIX);
        goto fail;
    }
    if ((S->read_dirs = find_read_dirs(S->lua_dir)) == NULL) goto nomem;
    S->scope.cancel = &S->cancel;
    S->scope.meter = S->meter;
    S->scope.files = S->sandbox;
    S->scope.root = S->root;
    S->scope.read_dirs = (const char *const *)S->read_dirs;
    S->script_scope = S->scope;
    S->script_scope.read_dirs = NULL;
    S->L = lua_newstate(l_alloc, S);
    if (S->L == NULL) {
        rlaif_fail(RLAIF_ENOMEM, "rlaif_state_new: cannot create a Lua state%s",
                   opt->memory_limit ? " (memory_limit too small)" : "");
        goto fail;
    }
    long budget = S->budget;
    S->budget = 0;   /* loading the toolkit is not the scripts' budget */
    job j = {.S = S};
    int st = protected_run(S, do_setup, &j);
    S->budget = budget;
    if (S->budget > 0) lua_sethook(S->L, count_hook, LUA_MASKCOUNT, S->hook_step);   /* coroutines inherit it */
    if (st != RLAIF_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", rlaif_state_error(S));
        rlaif_fail((rlaif_status)st, "rlaif_state_new: cannot load the toolkit%s: %s",
                   st == RLAIF_ENOMEM && opt->memory_limit ? " (memory_limit too small)" : "", msg);
        goto fail;
    }
    return S;
nomem:
    rlaif_fail(RLAIF_ENOMEM, "rlaif_state_new: out of memory");
fail:
    state_destroy(S);
    return NULL;
}
