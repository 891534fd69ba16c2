/* rlaif/state.h -- embedding: a Lua 5.4 state with the rlaif toolkit loaded,
 * owned by the host, optionally sandboxed, with a memory limit and an
 * instruction budget.
 *
 *   rlaif_options o = rlaif_options_default();      // sandbox on
 *   o.root = "game/scripts";                        // what scripts may use
 *   o.memory_limit = 64 << 20;                      // bytes
 *   o.instruction_budget = 5000000;                 // per run or call
 *   rlaif_state *S = rlaif_state_new(&o);
 *   if (!S) die(rlaif_last_error());
 *   if (rlaif_state_run_file(S, "main.lua") != RLAIF_OK) die(rlaif_state_error(S));
 *   char *out = NULL;
 *   if (rlaif_state_call(S, "game.tick", "[1, {\"hp\": 3}]", &out) == RLAIF_OK)
 *       use(out);                                   // the first result, as JSON
 *   rlaif_free(out);
 *   rlaif_state_free(S);
 *
 * Errors: run and call return 0 (RLAIF_OK) or a status -- RLAIF_ESCRIPT (a
 * syntax or runtime error), RLAIF_EBUDGET (the instruction budget ran out),
 * RLAIF_ENOMEM (the memory limit), RLAIF_EINTR (rlaif_state_interrupt),
 * RLAIF_EACCES (a path outside the root), RLAIF_EINVAL (bad arguments, e.g.
 * args_json is not an array) -- with the message and a Lua traceback in
 * rlaif_state_error(S). Nothing a script does longjmps or exits through the
 * host: os.exit raises an error in every state, and every Lua call made here
 * is protected. The state stays usable after any error.
 *
 * The sandbox (sandbox = 1): scripts see the base functions without
 * collectgarbage's tuning options, string (without string.dump), table, math,
 * utf8, coroutine, os.time/os.clock/os.date, print (to the print callback)
 * and the toolkit as the global `rlaif` (also `require "rlaif"`). There is no
 * io, no other os function, no debug, no package.loadlib and no C module.
 * load/loadfile/dofile take text chunks only (never bytecode), in the
 * script environment; loadfile/dofile/require read Lua files inside root
 * only (require also finds the toolkit's own rlaif.* modules). The toolkit's
 * own readers and writers (tensors, tokenizers, models, datasets, label
 * files, the LLM cache) resolve relative paths under root and refuse any
 * file outside it, except reads of the toolkit's own files (prompt
 * templates); without a root, no file at all. Environment variables are
 * invisible unless named in `env`. setmetatable refuses __gc metamethods (a
 * finalizer would run outside the budget). Network access is not
 * restricted: a script can reach any http(s) server the process can.
 *
 * Limits: memory_limit counts the Lua heap plus tensor storage and model
 * buffers made while the state runs; reaching it is a Lua error, never a
 * host crash. instruction_budget counts Lua VM instructions per run or call
 * (checked every 1000; caught errors do not reset it) and also stops the C
 * loops of the toolkit called from that script. Time spent inside one C
 * function (a string pattern match on a huge subject, one long matmul) is not
 * counted; rlaif_state_interrupt stops the loops that poll the cancel flag.
 *
 * Threads: a state is used by one thread at a time (it may move between
 * threads between calls); different states run in parallel on different
 * threads. rlaif_state_interrupt may be called from any thread or from a
 * signal handler. Tensors passed in or out are shared with the state; do not
 * use them from two threads at once.
 *
 * Ownership: rlaif_state_new returns a NEW state, freed with
 * rlaif_state_free. JSON results are NEW strings freed with rlaif_free.
 * rlaif_state_error is borrowed until the next call on the state. */
#ifndef RLAIF_STATE_API_H
#define RLAIF_STATE_API_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlaif_state rlaif_state;
/* Lua's state, for hosts that include lua.h themselves (see rlaif_state_lua). */
typedef struct lua_State lua_State;

typedef struct rlaif_options {
    int sandbox;              /* 1: the sandbox above; 0: the full standard library (os.exit excepted) */
    size_t memory_limit;      /* bytes (Lua heap + tensors + models), 0 = none */
    long instruction_budget;  /* Lua VM instructions per run or call, 0 = none */
    const char *root;         /* the directory scripts may use (read, write, require), or NULL */
    const char *path;         /* search path for scripts' require, ';'-separated templates with '?'
                                 (relative ones are under root); NULL = "?.lua;?/init.lua" */
    const char *lua_dir;      /* where rlaif/init.lua lives; NULL = found next to the library,
                                 or $RLAIF_LUA_DIR */
    const char *const *env;   /* NULL-terminated names of environment variables the sandboxed
                                 toolkit may read (e.g. an API key's); NULL = none */
    /* Where print() writes (each call: the text of one line, without "\n");
     * NULL = stdout. */
    void (*print)(void *ud, const char *text, size_t len);
    void *print_ud;
} rlaif_options;

/* The defaults: sandbox on, no limits, no root, print to stdout. A NULL
 * `opt` in rlaif_state_new means these. (A zeroed struct means sandbox off.) */
rlaif_options rlaif_options_default(void);

/* A new state with the toolkit loaded, or NULL with the reason in
 * rlaif_last_error(). Copies what it needs from opt (strings included). */
rlaif_state *rlaif_state_new(const rlaif_options *opt);
void         rlaif_state_free(rlaif_state *S);   /* NULL-safe; not while a call runs */

/* Run a chunk of Lua source text. */
int rlaif_state_run(rlaif_state *S, const char *code);
/* Run a Lua source file; a relative path is under root (or the current
 * directory without a root). In the sandbox the file must lie inside root. */
int rlaif_state_run_file(rlaif_state *S, const char *path);

/* Call the function at the dotted path fn ("tick", "game.tick") with the
 * elements of the JSON array args_json (NULL = no arguments) as arguments;
 * JSON objects and arrays become tables, top-level nulls nil. Its first
 * result, encoded as JSON (nil = null, tensors as nested arrays, tables with
 * keys 1..n as arrays, other tables as objects with sorted keys), goes to
 * *result_json (NEW; pass NULL to drop it). */
int rlaif_state_call(rlaif_state *S, const char *fn, const char *args_json, char **result_json);

/* Set the value at a dotted path (creating intermediate tables) from JSON,
 * or read it as JSON (NEW string). */
int rlaif_state_set(rlaif_state *S, const char *path, const char *json);
int rlaif_state_get(rlaif_state *S, const char *path, char **json);
/* Tensors in and out without copies: set stores t (the state takes its own
 * reference); get returns a NEW reference to the tensor at path
 * (RLAIF_EINVAL when it is not a tensor). */
int rlaif_state_set_tensor(rlaif_state *S, const char *path, rlaif_tensor *t);
int rlaif_state_get_tensor(rlaif_state *S, const char *path, rlaif_tensor **out);

/* The last error of S, with its traceback ("" when none). Borrowed. */
const char *rlaif_state_error(rlaif_state *S);

/* Stop the run or call in progress at its next hook (within 1000 VM
 * instructions) and its C loops at their next check, with RLAIF_EINTR; when
 * none is in progress, the next one stops at its start. Only sets flags:
 * safe from another thread and from a signal handler. */
void rlaif_state_interrupt(rlaif_state *S);

/* Bytes in use: the Lua heap plus the tensors and models charged to S. */
size_t rlaif_state_memory(const rlaif_state *S);
/* Lua VM instructions used by the last run or call (to the hook's
 * granularity of 1000). */
long   rlaif_state_instructions(const rlaif_state *S);

/* The raw lua_State, for hosts that want the Lua C API (include <lua.h> and
 * link -llua5.4: the library uses the system's shared Lua 5.4). Code run
 * through it directly is not protected, budgeted or sandboxed by rlaif;
 * call Lua with lua_pcall. Borrowed; lives as long as S. */
lua_State *rlaif_state_lua(rlaif_state *S);

#ifdef __cplusplus
}
#endif

#endif
