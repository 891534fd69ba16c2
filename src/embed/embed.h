/* src/embed/embed.h -- what state.c and sandbox.c share: the rlaif_state
 * struct and the sandbox set-up entry point. Internal; the API is
 * include/rlaif/state.h.
 *
 * Ownership: a state owns its lua_State, its meter reference and every
 * string below (copies of the options, resolved with realpath). */
#ifndef RLAIF_EMBED_H
#define RLAIF_EMBED_H

#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdatomic.h>

#include "rlaif.h"

#include <rlaif/state.h>

/* With a budget, the count hook runs every HOOK_STEP VM instructions (fewer
 * when the budget is smaller): the budget's granularity. Any count hook makes
 * Lua 5.4 trace every instruction (about 2x slower pure-Lua loops), so a state
 * without a budget has no hook at all until rlaif_state_interrupt sets one on
 * the thread that runs (S->running). */
#define HOOK_STEP 1000

/* Registry fields (the scripts cannot reach the registry). */
#define REG_ENV    "rlaif.env"     /* the scripts' global table (sandbox) or _G */
#define REG_HELPER "rlaif.embed"   /* table: encode, decode, plain (trusted helpers) */

struct rlaif_state {
    lua_State *L;
    int sandbox;
    long budget;                  /* instructions per run/call, 0 = none */
    int hook_step;                /* the count hook's period */
    long used;                    /* instructions counted in this run/call */
    int armed;                    /* 1 while a run/call executes: hook counts and raises */
    int busy;                     /* a run/call is in progress (no re-entry) */
    volatile sig_atomic_t cancel; /* 1 interrupt requested, 2 budget exhausted; C loops see it */
    _Atomic(lua_State *) running; /* the thread executing a run/call (main or a coroutine), or NULL */
    atomic_int interrupting;      /* rlaif_state_interrupt is setting a hook on `running` */
    int mem_refused;              /* the Lua allocator hit the memory limit */
    int bad_request;              /* the host's request was wrong (a path, args_json): RLAIF_EINVAL */
    rlaif_meter *meter;           /* Lua heap + charged core buffers */
    rlaif_scope scope;            /* installed during runs/calls: the toolkit's view */
    rlaif_scope script_scope;     /* root only: the scripts' own loaders */
    char *root;                   /* resolved, or NULL */
    char **read_dirs;             /* resolved read-only dirs (toolkit files), NULL-terminated */
    char *lua_dir;                /* holds rlaif/init.lua */
    char *path;                   /* the scripts' require path */
    char **env;                   /* environment variables the sandbox may read, NULL-terminated */
    void (*print)(void *ud, const char *text, size_t len);
    void *print_ud;
    char *error;                  /* the last error with its traceback (malloc'd) */
};

/* The state owning L (any thread of it): the allocator's userdata. */
rlaif_state *rlaif_embed_state(lua_State *L);

/* A coroutine is resumed (enter returns the previous running thread) or
 * returns to its resumer (leave): what rlaif_state_interrupt hooks. */
lua_State *rlaif_embed_enter(rlaif_state *S, lua_State *co);
void       rlaif_embed_leave(rlaif_state *S, lua_State *prev);

/* coroutine.resume and coroutine.wrap that keep S->running current (wrap
 * also never closes the variables of a coroutine that failed), into the
 * table at idx; with `guarded`, coroutine.close too (the sandbox's). */
void rlaif_embed_coroutines(lua_State *L, int idx, int guarded);

/* print(...): to the state's print callback, or stdout. */
int rlaif_embed_print(lua_State *L);

/* Build the sandbox around the loaded toolkit (rlaif at the top of the
 * stack): gated io/os for the toolkit, locked metatables, and the scripts'
 * environment, stored at REG_ENV. Raises on failure (runs protected). */
void rlaif_embed_sandbox(lua_State *L, rlaif_state *S);

/* Resolve path for the scripts' own loaders (root only) into buf
 * (RLAIF_PATH_MAX); raises "<who>: ..." when refused. Returns the name to open. */
const char *rlaif_embed_script_path(lua_State *L, rlaif_state *S, const char *path, char *buf, const char *who);

#endif
