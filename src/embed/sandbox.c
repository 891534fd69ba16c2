/* src/embed/sandbox.c -- the sandbox of an embedded state (sandbox = 1):
 * what scripts see, and what the toolkit may touch on their behalf.
 *
 * Two worlds share one lua_State. The toolkit (the lua/rlaif files and
 * rlaif.core) runs in the real global table, where io and os are replaced by
 * gated versions: io.open/io.lines/io.input/io.output resolve every path
 * through the state's file policy (src/core/scope.c: relative paths under
 * the root; writes only inside the root; reads also from the toolkit's own
 * files), os.remove and os.rename only inside the root (the atomic writers
 * rename a temporary), popen/tmpfile and the rest of os are gone, and
 * os.getenv answers only for the variables the host named. The C core gates its own file
 * opens the same way, so tensors, tokenizers, models, datasets, label files
 * and the LLM cache stay inside the root too.
 *
 * Scripts run in a separate global table (registry field REG_ENV) holding:
 * the base functions, copies of string (without dump), table, math, utf8 and
 * coroutine, os.time/os.clock/os.date, print, the toolkit as `rlaif`, and
 * our own load/loadfile/dofile/require/setmetatable/collectgarbage:
 *   - load takes text chunks only, and runs them in the scripts' globals;
 *   - loadfile/dofile/require read Lua files inside the root only (require
 *     also returns the toolkit's rlaif.* modules); no C modules at all;
 *   - setmetatable refuses a Lua __gc metamethod (Lua runs finalizers with
 *     hooks off, so one would escape the budget and interrupts); the toolkit
 *     may use one defined in its own files, and its metatable gets locked;
 *   - collectgarbage keeps only collect/count/step/isrunning;
 *   - xpcall, coroutine.wrap and coroutine.close never run Lua code while
 *     the hooks are off (see "after an interrupt" below).
 * Every metatable of a C object (tensors, models, files...) and the string
 * metatable get a __metatable field, and the tables that exposed them are
 * cut, so no script can swap a C finalizer for a Lua one or reach the real
 * string table.
 *
 * Every check is a C function: nothing a script can redefine (string
 * functions, the rlaif tables) takes part in deciding what is allowed.
 * What it is not: a defence against native code, or against time spent in
 * one C call (see include/rlaif/state.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"

/* ---- paths ---- */

/* Run the core's file policy under `scope`; NULL with the message in
 * rlaif_last_error when refused. */
static const char *gate(rlaif_scope *scope, const char *path, char *buf, int access, const char *who) {
    rlaif_scope *prev = rlaif_scope_set(scope);
    const char *p = path;
    rlaif_status st = rlaif_path_gate(&p, buf, access, who);
    rlaif_scope_set(prev);
    return st == RLAIF_OK ? p : NULL;
}

const char *rlaif_embed_script_path(lua_State *L, rlaif_state *S, const char *path, char *buf, const char *who) {
    const char *p = gate(&S->script_scope, path, buf, RLAIF_PATH_READ, who);
    if (p == NULL) luaL_error(L, "%s", rlaif_last_error());
    return p;
}

/* ---- the toolkit's io and os ---- */

static int mode_writes(const char *mode) { return strpbrk(mode, "wa+") != NULL; }

/* io.open(path [, mode]) -> file | nil, message (as io.open reports failures) */
static int tk_open(lua_State *L) {
    rlaif_state *S = rlaif_embed_state(L);
    const char *path = luaL_checkstring(L, 1), *mode = luaL_optstring(L, 2, "r");
    char buf[RLAIF_PATH_MAX];
    const char *p = gate(&S->scope, path, buf, mode_writes(mode) ? RLAIF_PATH_WRITE : RLAIF_PATH_READ, "io.open");
    if (p == NULL) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        lua_pushinteger(L, EACCES);
        return 3;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushstring(L, p);
    lua_pushstring(L, mode);
    lua_call(L, 2, 3);
    return 3;
}

/* io.lines / io.input / io.output / os.remove: a string argument is a path
 * (read for lines and input, write for output and remove); anything else
 * (a file handle) passes through. */
static int tk_pathfn(lua_State *L) {
    rlaif_state *S = rlaif_embed_state(L);
    int n = lua_gettop(L);
    if (lua_isstring(L, 1)) {   /* a number is a file name to io and os too */
        int access = (int)lua_tointeger(L, lua_upvalueindex(2));
        char buf[RLAIF_PATH_MAX];
        const char *p = gate(&S->scope, lua_tostring(L, 1), buf, access, lua_tostring(L, lua_upvalueindex(3)));
        if (p == NULL) return luaL_error(L, "%s", rlaif_last_error());
        lua_pushstring(L, p);
        lua_replace(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* os.rename(from, to): both inside the root (the toolkit's atomic writers
 * rename a temporary over their output). Upvalue 1: the real one. */
static int tk_rename(lua_State *L) {
    rlaif_state *S = rlaif_embed_state(L);
    char a[RLAIF_PATH_MAX], b[RLAIF_PATH_MAX];
    const char *from = gate(&S->scope, luaL_checkstring(L, 1), a, RLAIF_PATH_WRITE, "os.rename");
    const char *to = from ? gate(&S->scope, luaL_checkstring(L, 2), b, RLAIF_PATH_WRITE, "os.rename") : NULL;
    if (to == NULL) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        lua_pushinteger(L, EACCES);
        return 3;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushstring(L, from);
    lua_pushstring(L, to);
    lua_call(L, 2, 3);
    return 3;
}

/* os.getenv(name): only the variables the host listed in options.env */
static int tk_getenv(lua_State *L) {
    rlaif_state *S = rlaif_embed_state(L);
    const char *name = luaL_checkstring(L, 1);
    for (char **e = S->env; e && *e; e++)
        if (strcmp(*e, name) == 0) {
            const char *v = getenv(name);
            if (v == NULL) break;
            lua_pushstring(L, v);
            return 1;
        }
    luaL_pushfail(L);
    return 1;
}

/* Copy t[name] (t at index t) into the table on top of the stack. */
static void copy_field(lua_State *L, int t, const char *name) {
    lua_getfield(L, t, name);
    lua_setfield(L, -2, name);
}

/* Replace the real io and os by the toolkit's gated ones (real ones at io, os). */
static void gate_io_os(lua_State *L, int io, int os) {
    lua_newtable(L);
    static const char *const pass[] = {"close", "read", "write", "type", "stdin", "stdout", "stderr", NULL};
    for (const char *const *k = pass; *k; k++) copy_field(L, io, *k);
    lua_getfield(L, io, "open");
    lua_pushcclosure(L, tk_open, 1);
    lua_setfield(L, -2, "open");
    static const struct { const char *name; int access; } pathfns[] = {
        {"lines", RLAIF_PATH_READ}, {"input", RLAIF_PATH_READ}, {"output", RLAIF_PATH_WRITE},
    };
    for (size_t i = 0; i < sizeof pathfns / sizeof pathfns[0]; i++) {
        lua_getfield(L, io, pathfns[i].name);
        lua_pushinteger(L, pathfns[i].access);
        lua_pushfstring(L, "io.%s", pathfns[i].name);
        lua_pushcclosure(L, tk_pathfn, 3);
        lua_setfield(L, -2, pathfns[i].name);
    }
    lua_pushvalue(L, -1);
    lua_setglobal(L, "io");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "io");
    lua_pop(L, 2);

    lua_newtable(L);
    static const char *const os_pass[] = {"time", "clock", "date", "difftime", "exit", NULL};
    for (const char *const *k = os_pass; *k; k++) copy_field(L, os, *k);   /* exit: already the error */
    lua_pushcfunction(L, tk_getenv);
    lua_setfield(L, -2, "getenv");
    lua_getfield(L, os, "remove");   /* os.remove(path): inside the root */
    lua_pushinteger(L, RLAIF_PATH_WRITE);
    lua_pushliteral(L, "os.remove");
    lua_pushcclosure(L, tk_pathfn, 3);
    lua_setfield(L, -2, "remove");
    lua_getfield(L, os, "rename");
    lua_pushcclosure(L, tk_rename, 1);
    lua_setfield(L, -2, "rename");
    lua_pushvalue(L, -1);
    lua_setglobal(L, "os");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "os");
    lua_pop(L, 2);
}

/* ---- loading code ---- */

/* load(chunk [, chunkname [, mode [, env]]]): text only; without env, the
 * chunk gets upvalue 2 (the scripts' globals) or, when it is nil, load's own
 * default. Upvalue 1 is the real load. */
static int sb_load(lua_State *L) {
    int n = lua_gettop(L);
    lua_settop(L, 4);   /* absent arguments are nil from here on; n says which were given */
    const char *mode = luaL_optstring(L, 3, "bt");
    if (strchr(mode, 't') == NULL)
        return luaL_error(L, "load: binary chunks are not allowed in the sandbox (mode \"%s\")", mode);
    luaL_checkany(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    int nargs = 3;
    if (n >= 4) lua_pushvalue(L, 4), nargs++;
    else if (!lua_isnil(L, lua_upvalueindex(2))) lua_pushvalue(L, lua_upvalueindex(2)), nargs++;
    lua_call(L, nargs, LUA_MULTRET);
    return lua_gettop(L) - 4;
}

/* Load the Lua text file `filename` through a scope; the env argument (at
 * index envidx > 0, if given) or the default env (upvalue 1, or _G when nil)
 * becomes its _ENV. Pushes the function, or fail + message. */
static int load_file_in(lua_State *L, rlaif_scope *scope, int envidx, const char *who) {
    if (lua_isnoneornil(L, 1))
        return luaL_error(L, "%s: reading standard input is not available in the sandbox", who);
    const char *name = luaL_checkstring(L, 1);
    const char *mode = luaL_optstring(L, 2, "bt");
    if (strchr(mode, 't') == NULL)
        return luaL_error(L, "%s: binary chunks are not allowed in the sandbox (mode \"%s\")", who, mode);
    char buf[RLAIF_PATH_MAX];
    const char *p = gate(scope, name, buf, RLAIF_PATH_READ, who);
    if (p == NULL) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    if (luaL_loadfilex(L, p, "t") != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (envidx > 0 && !lua_isnone(L, envidx)) lua_pushvalue(L, envidx);
    else if (!lua_isnil(L, lua_upvalueindex(1))) lua_pushvalue(L, lua_upvalueindex(1));
    else lua_pushglobaltable(L);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    return 1;
}

/* The scope a loader closure checks paths with: upvalue 2 is 1 for the
 * scripts' (root only), 0 for the toolkit's (root + its own files). */
static rlaif_scope *loader_scope(lua_State *L) {
    rlaif_state *S = rlaif_embed_state(L);
    return lua_toboolean(L, lua_upvalueindex(2)) ? &S->script_scope : &S->scope;
}

static int sb_loadfile(lua_State *L) {   /* loadfile(filename [, mode [, env]]) */
    return load_file_in(L, loader_scope(L), 3, "loadfile");
}

static int sb_dofile(lua_State *L) {     /* dofile(filename) */
    lua_settop(L, 1);
    if (load_file_in(L, loader_scope(L), 0, "dofile") != 1) return lua_error(L);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

/* require(name) for scripts. Upvalues: 1 the scripts' globals, 2 their
 * package.loaded, 3 the real require (for the toolkit), 4 their package. */
static int sb_require(lua_State *L) {
    rlaif_state *S = rlaif_embed_state(L);
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_getfield(L, lua_upvalueindex(2), name);
    if (lua_toboolean(L, -1)) return 1;
    lua_pop(L, 1);
    lua_getfield(L, lua_upvalueindex(4), "preload");
    if (lua_istable(L, -1) && lua_getfield(L, -1, name) != LUA_TNIL) {
        lua_pushvalue(L, 1);
        lua_pushliteral(L, ":preload:");
        lua_call(L, 2, 1);
        lua_pushliteral(L, ":preload:");
    } else if (strcmp(name, "rlaif.serve") == 0 || strncmp(name, "rlaif.serve_", 12) == 0) {
        return luaL_error(L, "require: '%s' is not available in the sandbox (listening sockets belong to the host)",
                          name);
    } else if (strcmp(name, "rlaif") == 0 || strncmp(name, "rlaif.", 6) == 0) {
        lua_pushvalue(L, lua_upvalueindex(3));   /* the toolkit's own modules */
        lua_pushvalue(L, 1);
        lua_call(L, 1, 2);
    } else {
        lua_settop(L, 1);
        if (lua_getfield(L, lua_upvalueindex(4), "path") != LUA_TSTRING)
            return luaL_error(L, "require: package.path must be a string");
        const char *templates = lua_tostring(L, -1);
        const char *fname = luaL_gsub(L, name, ".", "/");
        char tried[2048] = "", buf[RLAIF_PATH_MAX];
        size_t used = 0;
        const char *found = NULL;
        for (const char *t = templates; *t && !found;) {
            const char *semi = strchr(t, ';');
            size_t n = semi ? (size_t)(semi - t) : strlen(t);
            lua_pushlstring(L, t, n);
            const char *cand = luaL_gsub(L, lua_tostring(L, -1), "?", fname);
            t += n + (semi != NULL);
            if (n > 0) {
                const char *p = gate(&S->script_scope, cand, buf, RLAIF_PATH_READ, "require");
                FILE *f = p ? fopen(p, "r") : NULL;
                if (f != NULL) {
                    fclose(f);
                    found = p;
                } else {
                    int refused = S->script_scope.refused_path;
                    S->script_scope.refused_path = 0;   /* a candidate, not a refusal of the script's */
                    int w = snprintf(tried + used, sizeof tried - used, "\n\t%s '%s'",
                                     refused ? "not inside the sandbox root:" : "no file", cand);
                    if (w > 0 && used + (size_t)w < sizeof tried) used += (size_t)w;
                }
            }
            lua_pop(L, 2);
        }
        if (!found)
            return luaL_error(L, "module '%s' not found (the sandbox loads Lua files inside its root only):"
                                 "\n\tno field package.preload['%s']%s", name, name, tried);
        lua_pushstring(L, found);
        int path_idx = lua_gettop(L);
        if (luaL_loadfilex(L, found, "t") != LUA_OK)
            return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, found, lua_tostring(L, -1));
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_setupvalue(L, -2, 1);
        lua_pushvalue(L, 1);
        lua_pushvalue(L, path_idx);
        lua_call(L, 2, 1);
        lua_pushvalue(L, path_idx);
    }
    /* stack: ..., value, loader data */
    if (lua_isnil(L, -2)) {
        lua_pushboolean(L, 1);
        lua_replace(L, -3);
    }
    lua_pushvalue(L, -2);
    lua_setfield(L, lua_upvalueindex(2), name);
    return 2;
}

/* setmetatable(t, mt) without Lua finalizers. Upvalue 1: the real one;
 * upvalue 2: true for the toolkit's world, where a __gc defined in the
 * toolkit's own Lua files is allowed (a toolkit class cleaning up after itself)
 * and its metatable is locked (__metatable), so no script can swap it. */
static int sb_setmetatable(lua_State *L) {
    if (lua_istable(L, 2)) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL && !lua_iscfunction(L, -1)) {
            int trusted = 0;
            if (lua_toboolean(L, lua_upvalueindex(2)) && lua_isfunction(L, -1)) {
                rlaif_state *S = rlaif_embed_state(L);
                lua_Debug ar;
                lua_pushvalue(L, -1);
                size_t n = strlen(S->lua_dir);
                trusted = lua_getinfo(L, ">S", &ar) && ar.source[0] == '@' &&
                          strncmp(ar.source + 1, S->lua_dir, n) == 0 && ar.source[1 + n] == '/';
            }
            if (!trusted)
                return luaL_error(L, "setmetatable: __gc metamethods are not allowed in the sandbox "
                                     "(a finalizer would run outside the instruction budget)");
            lua_pushliteral(L, "__metatable");
            if (lua_rawget(L, 2) == LUA_TNIL) {
                lua_pushliteral(L, "__metatable");
                lua_pushboolean(L, 0);
                lua_rawset(L, 2);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

/* collectgarbage([opt [, arg]]) with the options that cannot switch the
 * collector off or retune it for the host. Upvalue 1: the real one. */
static int sb_collectgarbage(lua_State *L) {
    static const char *const allowed[] = {"collect", "count", "step", "isrunning", NULL};
    const char *opt = luaL_optstring(L, 1, "collect");
    int ok = 0;
    for (const char *const *a = allowed; *a && !ok; a++) ok = strcmp(*a, opt) == 0;
    if (!ok) return luaL_error(L, "collectgarbage: option '%s' is not available in the sandbox", opt);
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- after an interrupt: no Lua code with the hooks off ----
 *
 * The count hook stops a script by raising an error, and Lua leaves hooks off
 * on that thread until the error reaches a pcall. Three things could run Lua
 * code in that window, and could then loop beyond the budget's and
 * rlaif_state_interrupt's reach: xpcall's message handler, and the __close
 * handlers that coroutine.wrap and coroutine.close run for a coroutine that
 * died of the error. Ours skip them once the state is stopping (S->cancel),
 * or for a coroutine that failed at all. */

/* xpcall's handler, wrapped: upvalue 1 is the script's handler. */
static int guarded_handler(lua_State *L) {
    if (rlaif_embed_state(L)->cancel != 0) return 1;   /* the error as it is */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int finish_pcall(lua_State *L, int status, lua_KContext extra) {
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

/* xpcall(f, msgh, ...), as Lua's own (yieldable), with msgh guarded. */
static int sb_xpcall(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, guarded_handler, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);   /* first result */
    lua_pushvalue(L, 1);     /* the function */
    lua_rotate(L, 3, 2);     /* both below the function's arguments */
    int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
    return finish_pcall(L, status, 2);
}

/* Resume co with narg values from L's top, keeping S->running current;
 * moves the results (>= 0) or the error object (-1) to L. */
static int aux_resume(lua_State *L, lua_State *co, int narg) {
    int nres;
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    lua_xmove(L, co, narg);
    rlaif_state *S = rlaif_embed_state(L);
    lua_State *prev = rlaif_embed_enter(S, co);
    int status = lua_resume(co, L, narg, &nres);
    rlaif_embed_leave(S, prev);
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1);   /* the error object */
    return -1;
}

/* coroutine.resume(co, ...) -> true, ... | false, err */
static int sb_coresume(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co != NULL, 1, "coroutine");
    int r = aux_resume(L, co, lua_gettop(L) - 1);
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
}

/* The body of a function made by coroutine.wrap: resume, and on an error
 * propagate it without closing the dead coroutine's variables (Lua 5.4.4's
 * wrap would run their __close handlers with the hooks off). */
static int sb_auxwrap(lua_State *L) {
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int r = aux_resume(L, co, lua_gettop(L));
    if (r >= 0) return r;
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int sb_cowrap(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);   /* inherits the count hook, if any */
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, sb_auxwrap, 1);
    return 1;
}

/* coroutine.close(co): a coroutine that died of an error is not closed
 * (false, its error); others as Lua's own (upvalue 1). */
static int sb_coclose(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co != NULL, 1, "coroutine");
    int st = lua_status(co);
    if (st != LUA_OK && st != LUA_YIELD) {
        lua_pushboolean(L, 0);
        if (lua_gettop(co) > 0) {
            lua_pushvalue(co, -1);
            lua_xmove(co, L, 1);
        } else {
            lua_pushnil(L);
        }
        return 2;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

void rlaif_embed_coroutines(lua_State *L, int idx, int guarded) {
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, sb_coresume);
    lua_setfield(L, idx, "resume");
    lua_pushcfunction(L, sb_cowrap);
    lua_setfield(L, idx, "wrap");
    if (guarded) {
        lua_getfield(L, idx, "close");
        lua_pushcclosure(L, sb_coclose, 1);
        lua_setfield(L, idx, "close");
    }
}

/* ---- locking C objects' metatables ---- */

/* Give every registry metatable (they carry __name) and the string metatable a
 * __metatable field: getmetatable then returns false, never the table. */
static void lock_metatables(lua_State *L) {
    lua_pushnil(L);
    while (lua_next(L, LUA_REGISTRYINDEX)) {
        if (lua_istable(L, -1)) {
            lua_pushliteral(L, "__name");
            int named = lua_rawget(L, -2) == LUA_TSTRING;
            lua_pop(L, 1);
            if (named) {
                lua_pushliteral(L, "__metatable");
                lua_pushboolean(L, 0);
                lua_rawset(L, -3);
            }
        }
        lua_pop(L, 1);
    }
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushliteral(L, "__metatable");
        lua_pushboolean(L, 0);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Remove, from the table at idx and its sub-tables (to `depth`), every field
 * holding a registry metatable (rlaif.core.tensor.meta, ...) or a table with
 * a __gc field (a toolkit class whose finalizer a script could replace). */
static void cut_metatables(lua_State *L, int idx, int depth) {
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int drop = 0;
        if (lua_istable(L, -1)) {
            lua_pushliteral(L, "__name");
            if (lua_rawget(L, -2) == LUA_TSTRING) {
                luaL_getmetatable(L, lua_tostring(L, -1));
                drop = lua_rawequal(L, -1, -3);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
            lua_pushliteral(L, "__gc");   /* a class table with a finalizer: scripts must not edit it */
            drop = drop || lua_rawget(L, -2) != LUA_TNIL;
            lua_pop(L, 1);
            if (!drop && depth > 0) cut_metatables(L, -1, depth - 1);
        }
        lua_pop(L, 1);
        if (drop) {   /* clearing a field during lua_next is allowed */
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, idx);
        }
    }
}

/* t[path] = nil for a dotted path below the table at idx (if it exists). */
static void remove_field(lua_State *L, int idx, const char *a, const char *b) {
    idx = lua_absindex(L, idx);
    if (b == NULL) {
        lua_pushnil(L);
        lua_setfield(L, idx, a);
        return;
    }
    if (lua_getfield(L, idx, a) == LUA_TTABLE) {
        lua_pushnil(L);
        lua_setfield(L, -2, b);
    }
    lua_pop(L, 1);
}

/* ---- the scripts' environment ---- */

/* A shallow copy of the global library `name`, without the fields in `drop`. */
static void push_lib_copy(lua_State *L, const char *name, const char *const *drop) {
    lua_newtable(L);
    lua_getglobal(L, name);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        int skip = 0;
        for (const char *const *d = drop; d && *d && !skip; d++)
            skip = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), *d) == 0;
        if (skip) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
    }
    lua_pop(L, 1);
}

void rlaif_embed_sandbox(lua_State *L, rlaif_state *S) {
    int top = lua_gettop(L);
    /* the real io, os, load, require, setmetatable, collectgarbage */
    lua_getglobal(L, "io");
    int io = lua_gettop(L);
    lua_getglobal(L, "os");
    int os = lua_gettop(L);
    lua_getglobal(L, "load");
    int real_load = lua_gettop(L);
    lua_getglobal(L, "require");
    int real_require = lua_gettop(L);
    lua_getglobal(L, "setmetatable");
    int real_setmt = lua_gettop(L);
    lua_getglobal(L, "collectgarbage");
    int real_gc = lua_gettop(L);

    /* 1. the toolkit's world: gated io/os, no debug, no C modules, no dump */
    gate_io_os(L, io, os);
    lua_pushnil(L);
    lua_setglobal(L, "debug");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushnil(L);
    lua_setfield(L, -2, "debug");
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushnil(L);
    lua_setfield(L, -2, "loadlib");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_getfield(L, -1, "searchers");   /* keep preload and Lua files; drop both C searchers */
    lua_pushnil(L);
    lua_rawseti(L, -2, 4);
    lua_pushnil(L);
    lua_rawseti(L, -2, 3);
    lua_pop(L, 2);
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_pushvalue(L, real_load);
    lua_pushnil(L);   /* default env: the toolkit's own globals */
    lua_pushcclosure(L, sb_load, 2);
    lua_setglobal(L, "load");
    lua_pushnil(L);
    lua_pushboolean(L, 0);
    lua_pushcclosure(L, sb_loadfile, 2);
    lua_setglobal(L, "loadfile");
    lua_pushnil(L);
    lua_pushboolean(L, 0);
    lua_pushcclosure(L, sb_dofile, 2);
    lua_setglobal(L, "dofile");
    lua_pushvalue(L, real_setmt);
    lua_pushboolean(L, 1);
    lua_pushcclosure(L, sb_setmetatable, 2);
    lua_setglobal(L, "setmetatable");
    lua_pushvalue(L, real_gc);
    lua_pushcclosure(L, sb_collectgarbage, 1);
    lua_setglobal(L, "collectgarbage");

    /* 2. load the toolkit in that world, then take away what reaches past a state */
    lua_pushvalue(L, real_require);
    lua_pushliteral(L, "rlaif");
    lua_call(L, 1, 1);
    int rlaif = lua_gettop(L);
    lua_pushvalue(L, real_require);
    lua_pushliteral(L, "rlaif.core");
    lua_call(L, 1, 1);
    int core = lua_gettop(L);
    remove_field(L, core, "setenv", NULL);            /* the host's environment */
    remove_field(L, core, "set_threads", NULL);       /* process-wide thread count */
    remove_field(L, core, "llm", "cancel_request");   /* the process-wide cancel flag */
    remove_field(L, core, "llm", "cancel_reset");
    remove_field(L, core, "serve", NULL);             /* listening sockets belong to the host */
    remove_field(L, rlaif, "serve", NULL);
    remove_field(L, rlaif, "set_threads", NULL);
    remove_field(L, rlaif, "llm", "cancel_request");
    remove_field(L, rlaif, "llm", "cancel_reset");
    cut_metatables(L, rlaif, 3);
    cut_metatables(L, core, 3);
    lock_metatables(L);

    /* 3. the scripts' globals */
    lua_newtable(L);
    int env = lua_gettop(L);
    static const char *const base[] = {
        "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
        "rawset", "select", "tonumber", "tostring", "type", "getmetatable", "_VERSION", NULL,
    };
    lua_pushglobaltable(L);
    for (const char *const *k = base; *k; k++) {
        lua_getfield(L, -1, *k);
        lua_setfield(L, env, *k);
    }
    lua_pop(L, 1);
    lua_newtable(L);   /* the scripts' package.loaded */
    int loaded = lua_gettop(L);
    static const char *const libs[] = {"string", "table", "math", "utf8", "coroutine", NULL};
    static const char *const no_dump[] = {"dump", NULL};
    for (const char *const *k = libs; *k; k++) {
        push_lib_copy(L, *k, strcmp(*k, "string") == 0 ? no_dump : NULL);
        if (strcmp(*k, "coroutine") == 0) rlaif_embed_coroutines(L, -1, 1);
        lua_pushvalue(L, -1);
        lua_setfield(L, loaded, *k);
        lua_setfield(L, env, *k);
    }
    lua_pushcfunction(L, sb_xpcall);
    lua_setfield(L, env, "xpcall");
    lua_newtable(L);   /* os: time, clock, date only */
    static const char *const os_fns[] = {"time", "clock", "date", NULL};
    for (const char *const *k = os_fns; *k; k++) copy_field(L, os, *k);
    lua_pushvalue(L, -1);
    lua_setfield(L, loaded, "os");
    lua_setfield(L, env, "os");
    lua_pushcfunction(L, rlaif_embed_print);
    lua_setfield(L, env, "print");
    lua_pushvalue(L, real_setmt);
    lua_pushboolean(L, 0);
    lua_pushcclosure(L, sb_setmetatable, 2);
    lua_setfield(L, env, "setmetatable");
    lua_pushvalue(L, real_gc);
    lua_pushcclosure(L, sb_collectgarbage, 1);
    lua_setfield(L, env, "collectgarbage");
    lua_pushvalue(L, real_load);
    lua_pushvalue(L, env);
    lua_pushcclosure(L, sb_load, 2);
    lua_setfield(L, env, "load");
    lua_pushvalue(L, env);
    lua_pushboolean(L, 1);
    lua_pushcclosure(L, sb_loadfile, 2);
    lua_setfield(L, env, "loadfile");
    lua_pushvalue(L, env);
    lua_pushboolean(L, 1);
    lua_pushcclosure(L, sb_dofile, 2);
    lua_setfield(L, env, "dofile");
    /* package: path (templates under root), loaded, preload, config; nothing else */
    lua_newtable(L);
    int package = lua_gettop(L);
    lua_pushstring(L, S->path);
    lua_setfield(L, package, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, package, "cpath");
    lua_pushvalue(L, loaded);
    lua_setfield(L, package, "loaded");
    lua_newtable(L);
    lua_setfield(L, package, "preload");
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "config");
    lua_setfield(L, package, "config");
    lua_pop(L, 1);
    lua_pushvalue(L, package);
    lua_setfield(L, loaded, "package");
    lua_pushvalue(L, package);
    lua_setfield(L, env, "package");
    lua_pushvalue(L, env);
    lua_pushvalue(L, loaded);
    lua_pushvalue(L, real_require);
    lua_pushvalue(L, package);
    lua_pushcclosure(L, sb_require, 4);
    lua_setfield(L, env, "require");
    lua_pushvalue(L, rlaif);
    lua_setfield(L, env, "rlaif");
    lua_pushvalue(L, rlaif);
    lua_setfield(L, loaded, "rlaif");
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
    lua_pushvalue(L, env);
    lua_setfield(L, loaded, "_G");
    lua_pushvalue(L, env);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_ENV);
    lua_settop(L, top);
}
