/* src/main.c -- the `rlaif` executable: a Lua 5.4 stand-alone interpreter
 * modelled on lua.c, with rlaif.core preloaded, rlaif's Lua files found next to
 * the binary, subcommands (lua/rlaif/cli/NAME.lua) and a libedit REPL.
 *
 * What it is: argument handling, script/-e/stdin execution through one
 * `docall` (traceback message handler + SIGINT hook + core cancellation), and
 * the read-eval-print loop. What it is not: a library -- nothing calls into
 * this file; the API lives in rlaif.core (src/lua) and in lua/rlaif/. Result
 * formatting and help() are Lua (lua/rlaif/repl.lua), not C.
 *
 * Globals: scripts and -e chunks get only `arg` (they `require "rlaif"`
 * themselves, so they also run under a plain lua5.4 with build/rlaif/core.so);
 * the REPL adds `rlaif` and `help` for convenience.
 *
 * Signals: while a chunk runs, SIGINT sets a Lua hook that raises
 * "interrupted!" and calls rlaif_cancel_request() so long C loops stop too; it
 * then reverts to SIG_DFL, so a second Ctrl-C kills a process stuck in C code
 * that never polls (as in lua.c). At the REPL prompt SIGINT only sets a flag:
 * our libedit getc function sees it (pselect returns EINTR), ends the line and
 * the line is discarded -- no longjmp out of libedit, no async-unsafe calls.
 *
 * MPI: under mpirun, rlaif_dist_init starts MPI once, before the Lua state
 * exists; its exit handler finalises it, or aborts the job when we exit with a
 * failure (src/core/dist.h).
 *
 * Ownership: lines from readline/getline are malloc'd here and freed here;
 * every Lua value lives on the stack of the single lua_State or in the
 * registry (the pretty-printer reference). */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "dist.h"
#include "rlaif.h"

#ifndef RLAIF_PREFIX
#define RLAIF_PREFIX "/usr/local"
#endif

#define PROMPT          "> "
#define PROMPT2         ">> "
#define EOFMARK         "<eof>"
#define MARKLEN         (sizeof(EOFMARK) - 1)
#define HISTORY_FILE    ".rlaif_history"
#define HISTORY_MAX     1000
#define MAX_COMMANDS    128

LUAMOD_API int luaopen_rlaif_core(lua_State *L);  /* src/lua/l_pkg.c */

static lua_State *globalL = NULL;       /* for laction */
static const char *progname = "rlaif";  /* NULL inside the REPL (no prefix) */
static char lua_dir[PATH_MAX];          /* holds rlaif/init.lua; "" if not found */
static int exit_code = EXIT_SUCCESS;    /* set by a subcommand's main */

/* ---- signals ---- */

static void setsignal(int sig, void (*handler)(int)) {
    struct sigaction sa;
    sa.sa_handler = handler;
    sa.sa_flags = 0;                    /* no SA_RESTART: blocking reads see EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* Hook installed by laction: runs at the next Lua event, outside the handler. */
static void lstop(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

/* SIGINT while a chunk runs. lua_sethook is safe here (Lua 5.4 manual), and
 * rlaif_cancel_request is async-signal-safe (rlaif.h). */
static void laction(int sig) {
    int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    setsignal(sig, SIG_DFL);            /* a second Ctrl-C terminates */
    rlaif_cancel_request();             /* C loops poll this and fail "interrupted" */
    lua_sethook(globalL, lstop, flag, 1);
}

/* SIGINT at the REPL prompt: just note it; repl_getc acts on it. */
static volatile sig_atomic_t prompt_sigint = 0;
static void prompt_action(int sig) {
    (void)sig;
    prompt_sigint = 1;
}

/* ---- messages and protected calls ---- */

static void l_message(const char *pname, const char *msg) {
    if (pname) lua_writestringerror("%s: ", pname);
    lua_writestringerror("%s\n", msg);
}

/* Print the error on top of the stack (if status is an error) and pop it. */
static int report(lua_State *L, int status) {
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (msg == NULL) msg = "(error object is not a string)";
        l_message(progname, msg);
        lua_pop(L, 1);
    }
    return status;
}

/* Message handler for every chunk: message + traceback; non-string error
 * objects go through __tostring (house style 9.6.4). */
static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* lua_pcall with the traceback handler, the SIGINT hook and a fresh
 * cancellation flag. Every chunk of user code runs through here. */
static int docall(lua_State *L, int narg, int nres) {
    int status;
    int base = lua_gettop(L) - narg;    /* function index */
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    globalL = L;
    rlaif_cancel_reset();
    setsignal(SIGINT, laction);
    status = lua_pcall(L, narg, nres, base);
    setsignal(SIGINT, SIG_DFL);
    if (lua_gethook(L) == lstop)        /* a late Ctrl-C must not hit the next chunk */
        lua_sethook(L, NULL, 0, 0);
    lua_remove(L, base);
    return status;
}

static int dochunk(lua_State *L, int status) {
    if (status == LUA_OK) status = docall(L, 0, 0);
    return report(L, status);
}

static int dofile(lua_State *L, const char *name) {
    return dochunk(L, luaL_loadfile(L, name));
}

static int dostring(lua_State *L, const char *s, const char *name) {
    return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* 'globname[=modname]': globname = require(modname). Modifies its argument. */
static int dolibrary(lua_State *L, char *globname) {
    int status;
    char *modname = strchr(globname, '=');
    if (modname == NULL) {
        modname = globname;
    } else {
        *modname = '\0';
        modname++;
    }
    lua_getglobal(L, "require");
    lua_pushstring(L, modname);
    status = docall(L, 1, 1);
    if (status == LUA_OK) lua_setglobal(L, globname);
    return report(L, status);
}

/* ---- version and usage ---- */

static void print_version(void) {
    printf("rlaif %s\n%s\n", RLAIF_VERSION, LUA_COPYRIGHT);
    printf("BLIS %s, kernel configuration: %s (%s)\n", rlaif_blas_version(),
           rlaif_blas_arch(),
           rlaif_blas_arch_forced() ? "selected by rlaif" : "chosen by BLIS or BLIS_ARCH_TYPE");
    if (rlaif_blas_note()[0]) printf("note: %s\n", rlaif_blas_note());
    printf("kernels: %s (%s)\n", rlaif_kernels_name(),
           rlaif_kernels_scalar_forced() ? "forced by RLAIF_KERNELS=scalar" : "chosen for this CPU");
    if (rlaif_kernels_note()[0]) printf("note: %s\n", rlaif_kernels_note());
    printf("threads: %d\n", rlaif_get_threads());
    if (!rlaif_dist_built()) printf("MPI: not built in (one process)\n");
    else if (rlaif_dist_active())
        printf("MPI: %s, rank %d of %d (%d on this node)\n", rlaif_dist_library(), rlaif_dist_rank(),
               rlaif_dist_size(), rlaif_dist_local_size());
    else printf("MPI: %s (built in; one process, not started by mpirun)\n", rlaif_dist_library());
    fflush(stdout);
}

static void print_banner(void) {
    printf("rlaif %s (%s, BLIS %s %s, %d threads) -- help() lists the API, Ctrl-D exits\n",
           RLAIF_VERSION, LUA_RELEASE, rlaif_blas_version(), rlaif_blas_arch(),
           rlaif_get_threads());
    fflush(stdout);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Write the sorted names of the *.lua files in lua_dir/rlaif/cli to `out` as "a, b, c".
 * Scans the directory each time, so new commands show up without a rebuild. */
static void list_commands(char *out, size_t size) {
    char path[PATH_MAX + 16];
    char *names[MAX_COMMANDS];
    int n = 0;
    out[0] = '\0';
    if (lua_dir[0] == '\0') return;
    snprintf(path, sizeof path, "%s/rlaif/cli", lua_dir);
    DIR *d = opendir(path);
    if (d == NULL) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < MAX_COMMANDS) {
        size_t len = strlen(e->d_name);
        if (len > 4 && e->d_name[0] != '.' && strcmp(e->d_name + len - 4, ".lua") == 0) {
            names[n] = strndup(e->d_name, len - 4);
            if (names[n] != NULL) n++;
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", i ? ", " : "", names[i]);
        free(names[i]);
    }
}

static void print_help(void) {
    char commands[2048];
    list_commands(commands, sizeof commands);
    printf("usage: %s [options] [script [args]]\n"
           "       %s COMMAND [args]\n"
           "Runs a Lua script, a command, or (with no arguments) the interactive REPL.\n"
           "Options:\n"
           "  -e stat        execute string 'stat' (may be repeated)\n"
           "  -i             enter the REPL after running 'script' and -e\n"
           "  -l mod         require library 'mod' into global 'mod'\n"
           "  -l g=mod       require library 'mod' into global 'g'\n"
           "  -v, --version  show rlaif, Lua and BLIS versions and the thread count\n"
           "  -W             turn warnings on\n"
           "  -h, --help     show this help\n"
           "  --             stop handling options\n"
           "  -              stop handling options and execute stdin\n"
           "Commands: %s\n"
           "Scripts get the global 'arg' and load the API with: local rlaif = require \"rlaif\"\n"
           "The REPL also defines the globals 'rlaif' and 'help'. Ctrl-C interrupts running code.\n"
           "Lua files: %s\n",
           progname, progname, commands[0] ? commands : "(none found)",
           lua_dir[0] ? lua_dir : "(not found)");
    fflush(stdout);
}

static void print_usage(const char *badoption) {
    lua_writestringerror("%s: ", progname);
    if (badoption[1] == 'e' || badoption[1] == 'l')
        lua_writestringerror("'%s' needs argument\n", badoption);
    else
        lua_writestringerror("unrecognized option '%s'\n", badoption);
    fprintf(stderr, "usage: %s [options] [script [args]] | %s COMMAND [args]\n"
                    "Try '%s --help' for more information.\n", progname, progname, progname);
    fflush(stderr);
}

/* ---- finding rlaif's Lua files ---- */

/* If fmt % base names a directory holding rlaif/init.lua, keep it. */
static int try_lua_dir(const char *fmt, const char *base) {
    char cand[PATH_MAX * 2], real[PATH_MAX], init[PATH_MAX + 32];
    snprintf(cand, sizeof cand, fmt, base);
    if (realpath(cand, real) == NULL) return 0;
    snprintf(init, sizeof init, "%s/rlaif/init.lua", real);
    if (access(init, R_OK) != 0) return 0;
    snprintf(lua_dir, sizeof lua_dir, "%s", real);
    return 1;
}

/* Checkout: ROOT/build/bin/rlaif -> ROOT/lua. Installed: PREFIX/bin/rlaif ->
 * PREFIX/share/lua/5.4. Else the compiled-in RLAIF_PREFIX. */
static void find_lua_dir(const char *argv0) {
    char exe[PATH_MAX];
    int ok = realpath("/proc/self/exe", exe) != NULL;
    if (!ok && argv0 != NULL && strchr(argv0, '/') != NULL)
        ok = realpath(argv0, exe) != NULL;
    if (ok) {
        char *slash = strrchr(exe, '/');
        if (slash != NULL) *slash = '\0';   /* exe -> its directory */
        if (try_lua_dir("%s/../../lua", exe)) return;
        if (try_lua_dir("%s/../share/lua/5.4", exe)) return;
    }
    try_lua_dir("%s/share/lua/5.4", RLAIF_PREFIX);
}

/* Prepend DIR/?.lua;DIR/?/init.lua; to package.path; preload rlaif.core. */
static void setup_packages(lua_State *L) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_rlaif_core);
    lua_setfield(L, -2, "rlaif.core");
    lua_pop(L, 1);
    if (lua_dir[0] == '\0') return;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", lua_dir, lua_dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
}

/* ---- command line ---- */

/* Global 'arg': argv[script] at index 0, its arguments at 1.., the
 * interpreter and its options at negative indices (as lua.c). */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
    if (script == argc) script = 0;     /* no script: index the interpreter name */
    lua_createtable(L, argc - (script + 1), script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* Push arg[1..#arg]; returns how many. */
static int pushargs(lua_State *L) {
    if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
    int n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 3, "too many arguments to script");
    int i;
    for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -i);
    return n;
}

static int handle_script(lua_State *L, char **argv) {
    const char *fname = argv[0];
    if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0)
        fname = NULL;                   /* stdin */
    int status = luaL_loadfile(L, fname);
    if (status == LUA_OK) status = docall(L, pushargs(L), LUA_MULTRET);
    return report(L, status);
}

#define has_error   1
#define has_i       2
#define has_v       4
#define has_e       8
#define has_h       16

/* Scan options before running anything. *first gets the index of the script
 * (or the bad option, or argc). Returns a has_* mask or has_error. */
static int collectargs(char **argv, int *first) {
    int args = 0, i;
    for (i = 1; argv[i] != NULL; i++) {
        *first = i;
        if (argv[i][0] != '-') return args;   /* not an option: script or command */
        switch (argv[i][1]) {
        case '-':
            if (argv[i][2] == '\0') {         /* '--' */
                *first = i + 1;
                return args;
            }
            if (strcmp(argv[i], "--help") == 0) args |= has_h;
            else if (strcmp(argv[i], "--version") == 0) args |= has_v;
            else return has_error;
            break;
        case '\0':                            /* '-': script is stdin */
            return args;
        case 'h':
            if (argv[i][2] != '\0') return has_error;
            args |= has_h;
            break;
        case 'W':
            if (argv[i][2] != '\0') return has_error;
            break;
        case 'i':                             /* the REPL prints a banner instead of -v */
            if (argv[i][2] != '\0') return has_error;
            args |= has_i;
            break;
        case 'v':
            if (argv[i][2] != '\0') return has_error;
            args |= has_v;
            break;
        case 'e':
            args |= has_e;
            /* FALLTHROUGH */
        case 'l':                             /* both need an argument */
            if (argv[i][2] == '\0') {
                i++;
                if (argv[i] == NULL || argv[i][0] == '-') return has_error;
            }
            break;
        default:
            return has_error;
        }
    }
    *first = i;
    return args;
}

/* Run -e, -l and -W in order. Returns 0 if some code raised an error. */
static int runargs(lua_State *L, char **argv, int n) {
    for (int i = 1; i < n; i++) {
        int option = argv[i][1];
        switch (option) {
        case 'e':
        case 'l': {
            char *extra = argv[i] + 2;
            if (*extra == '\0') extra = argv[++i];
            int status = option == 'e' ? dostring(L, extra, "=(command line)")
                                       : dolibrary(L, extra);
            if (status != LUA_OK) return 0;
            break;
        }
        case 'W':
            lua_warning(L, "@on", 0);
            break;
        }
    }
    return 1;
}

/* ---- subcommands ---- */

static int is_command_name(const char *s) {
    if (*s == '\0' || *s == '-') return 0;
    for (; *s; s++)
        if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
              ('0' <= *s && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* Is package.searchpath("rlaif.cli." .. name, package.path) non-nil? */
static int command_exists(lua_State *L, const char *name) {
    int found = 0;
    lua_getglobal(L, "package");
    if (lua_getfield(L, -1, "searchpath") == LUA_TFUNCTION) {
        lua_pushfstring(L, "rlaif.cli.%s", name);
        lua_getfield(L, -3, "path");
        if (lua_pcall(L, 2, 1, 0) == LUA_OK) found = lua_isstring(L, -1);
    }
    lua_settop(L, lua_gettop(L) - 2);
    return found;
}

/* require("rlaif.cli." .. name) returns main(args); its integer result is the
 * exit status (nil/true -> 0, false -> 1). args = the arguments after NAME. */
static int run_command(lua_State *L, char **argv, int argc, int cmd) {
    int status;
    lua_getglobal(L, "require");
    lua_pushfstring(L, "rlaif.cli.%s", argv[cmd]);
    status = docall(L, 1, 1);
    if (status != LUA_OK) return report(L, status);
    if (!lua_isfunction(L, -1)) {
        lua_pushfstring(L, "module 'rlaif.cli.%s' must return a function main(args), got %s",
                        argv[cmd], luaL_typename(L, -1));
        return report(L, LUA_ERRRUN);
    }
    lua_createtable(L, argc - cmd - 1, 0);
    for (int i = cmd + 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - cmd);
    }
    status = docall(L, 1, 1);
    if (status != LUA_OK) return report(L, status);
    if (lua_isinteger(L, -1)) exit_code = (int)lua_tointeger(L, -1);
    else if (lua_isboolean(L, -1)) exit_code = lua_toboolean(L, -1) ? EXIT_SUCCESS : EXIT_FAILURE;
    else if (lua_isnumber(L, -1)) exit_code = (int)lua_tonumber(L, -1);
    lua_pop(L, 1);
    return LUA_OK;
}

static int unknown_command(const char *name) {
    char commands[2048];
    list_commands(commands, sizeof commands);
    fprintf(stderr, "%s: '%s' is neither a script nor a command\n"
                    "available commands: %s\n"
                    "Try '%s --help' for more information.\n",
            progname, name, commands[0] ? commands : "(none found)", progname);
    fflush(stderr);
    return LUA_ERRRUN;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* ---- REPL: reading lines ---- */

static int use_editline = 0;        /* stdin is a tty: libedit, history */
static char history_path[PATH_MAX];
static int history_added = 0;

/* libedit's rl_getc_function. Waits for a byte with pselect so a SIGINT can
 * only arrive while waiting (no lost-wakeup race), then returns one character
 * (UTF-8 decoded when the locale is). On Ctrl-C it feeds libedit Ctrl-E, then
 * "^C" + newline, so readline returns and pushline discards the line. */
static int repl_getc(FILE *f) {
    static int pending_newline = 0;
    int fd = fileno(f);
    unsigned char c;
    if (pending_newline) {
        pending_newline = 0;
        fputs("^C", stdout);
        fflush(stdout);
        return '\n';
    }
    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &orig);
    for (;;) {
        if (prompt_sigint) break;
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(fd, &fds);
        int r = pselect(fd + 1, &fds, NULL, NULL, NULL, &orig);
        if (r > 0) break;
        if (r < 0 && errno != EINTR) {
            sigprocmask(SIG_SETMASK, &orig, NULL);
            return -1;
        }
    }
    sigprocmask(SIG_SETMASK, &orig, NULL);
    if (!prompt_sigint) {
        ssize_t r;
        while ((r = read(fd, &c, 1)) < 0 && errno == EINTR && !prompt_sigint) {}
        if (r == 0) return -1;              /* end of file */
        if (r < 0 && !prompt_sigint) return -1;
        if (r == 1 && c == 3) prompt_sigint = 1;    /* ^C arrived as a byte (ISIG off) */
        if (r == 1 && c != 3) {
            if (c < 0xC0 || MB_CUR_MAX == 1) return c;
            int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
            int cp = c & (0x3F >> more);
            for (int i = 0; i < more; i++) {
                if (read(fd, &c, 1) != 1 || (c & 0xC0) != 0x80) return 0xFFFD;
                cp = (cp << 6) | (c & 0x3F);
            }
            return cp;
        }
    }
    pending_newline = 1;
    return 5;                               /* ^E: cursor to end of line */
}

/* Read one line without its newline. Returns a malloc'd string, or NULL at
 * end of input; *interrupted is set when Ctrl-C discarded the line. */
static char *read_line(const char *prompt, int *interrupted) {
    *interrupted = 0;
    if (use_editline) {
        prompt_sigint = 0;
        setsignal(SIGINT, prompt_action);
        char *line = readline(prompt);
        setsignal(SIGINT, SIG_DFL);
        if (prompt_sigint) {
            free(line);
            *interrupted = 1;
            return NULL;
        }
        return line;
    }
    char *line = NULL;
    size_t cap = 0;
    fputs(prompt, stdout);
    fflush(stdout);
    ssize_t len = getline(&line, &cap, stdin);
    if (len < 0) {
        free(line);
        return NULL;
    }
    if (len > 0 && line[len - 1] == '\n') line[len - 1] = '\0';
    return line;
}

/* Add a line to the history and append it to the history file at once, so a
 * REPL that is killed keeps what was typed. libedit's append_history(n) writes
 * the last n + 1 entries (checked on 3.1-20221030), hence 0 for one line. */
static void saveline(const char *line) {
    if (use_editline && line[0] != '\0') {
        add_history(line);
        history_added++;
        if (history_path[0] == '\0') return;
        if (access(history_path, F_OK) == 0) append_history(0, history_path);
        else write_history(history_path);
    }
}

/* _PROMPT/_PROMPT2 override the prompts, as in lua.c. Pushes one value. */
static const char *get_prompt(lua_State *L, int firstline) {
    if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TNIL)
        return firstline ? PROMPT : PROMPT2;
    const char *p = luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
    return p;
}

#define LINE_EOF     (-1)       /* end of input: leave the REPL */
#define LINE_DISCARD (-2)       /* Ctrl-C at the prompt: forget the input */

/* Prompt, read a line and push it. Returns 1, LINE_EOF or LINE_DISCARD. */
static int pushline(lua_State *L, int firstline) {
    int interrupted;
    const char *prompt = get_prompt(L, firstline);
    char *b = read_line(prompt, &interrupted);
    lua_pop(L, 1);                      /* prompt */
    if (b == NULL) return interrupted ? LINE_DISCARD : LINE_EOF;
    if (firstline && b[0] == '=')       /* 5.2 compatibility: '=x' is 'return x' */
        lua_pushfstring(L, "return %s", b + 1);
    else
        lua_pushstring(L, b);
    free(b);
    return 1;
}

/* Try the line on the stack as 'return <line>;'. On success the stack holds
 * the chunk; otherwise the original line. */
static int addreturn(lua_State *L) {
    const char *line = lua_tostring(L, -1);
    const char *retline = lua_pushfstring(L, "return %s;", line);
    int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
    if (status == LUA_OK) {
        lua_remove(L, -2);
        saveline(line);
    } else {
        lua_pop(L, 2);
    }
    return status;
}

/* Does a syntax error on top of the stack end in "<eof>"? Pops it if so. */
static int incomplete(lua_State *L, int status) {
    if (status == LUA_ERRSYNTAX) {
        size_t lmsg;
        const char *msg = lua_tolstring(L, -1, &lmsg);
        if (lmsg >= MARKLEN && strcmp(msg + lmsg - MARKLEN, EOFMARK) == 0) {
            lua_pop(L, 1);
            return 1;
        }
    }
    return 0;
}

/* Add continuation lines until the chunk compiles or fails for real. */
static int multiline(lua_State *L) {
    for (;;) {
        size_t len;
        const char *line = lua_tolstring(L, 1, &len);
        int status = luaL_loadbuffer(L, line, len, "=stdin");
        if (!incomplete(L, status)) {
            saveline(line);
            return status;
        }
        int r = pushline(L, 0);
        if (r != 1) return r;           /* EOF or Ctrl-C inside a chunk */
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3);
    }
}

/* Read and compile one chunk: first as an expression, then as statements.
 * Leaves the function (or an error message) as the only stack value. */
static int loadline(lua_State *L) {
    int status;
    lua_settop(L, 0);
    int r = pushline(L, 1);
    if (r != 1) return r;
    if ((status = addreturn(L)) != LUA_OK) status = multiline(L);
    if (status == LINE_EOF || status == LINE_DISCARD) {
        lua_settop(L, 0);
        return status;
    }
    lua_remove(L, 1);
    return status;
}

/* ---- REPL: printing and set-up ---- */

static int pretty_ref = LUA_NOREF;      /* repl.pretty, or print as a fallback */

/* Format the results on the stack with repl.pretty and print them. */
static void l_print(lua_State *L) {
    int n = lua_gettop(L);
    if (n == 0) return;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_rawgeti(L, LUA_REGISTRYINDEX, pretty_ref);
    lua_insert(L, 1);
    if (docall(L, n, 1) != LUA_OK) {
        l_message(progname, lua_pushfstring(L, "error calling 'pretty' (%s)", lua_tostring(L, -1)));
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        lua_writestring(s, len);
        lua_writeline();
    }
    lua_settop(L, 0);
}

/* Push require(name), or print a one-line warning and return 0. */
static int repl_require(lua_State *L, const char *name) {
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    if (docall(L, 1, 1) == LUA_OK) return 1;
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = "?";
    fprintf(stderr, "warning: require \"%s\" failed: %.*s%s\n", name,
            (int)strcspn(msg, "\n"), msg, lua_dir[0] ? "" : " (rlaif's Lua files not found)");
    fflush(stderr);
    lua_pop(L, 1);
    return 0;
}

/* Globals `rlaif` and `help`, the pretty-printer, line editing and history.
 * Failures are reported in one line and the REPL carries on with `print`. */
static void repl_init(lua_State *L) {
    if (repl_require(L, "rlaif.repl") && lua_istable(L, -1)) {
        lua_getfield(L, -1, "help");
        lua_setglobal(L, "help");
        lua_getfield(L, -1, "pretty");
    } else {
        lua_getglobal(L, "print");
    }
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        lua_getglobal(L, "print");
    }
    pretty_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    if (repl_require(L, "rlaif")) lua_setglobal(L, "rlaif");
    lua_settop(L, 0);

    use_editline = isatty(STDIN_FILENO);
    if (!use_editline) return;
    setlocale(LC_CTYPE, "");            /* let libedit handle UTF-8 input */
    rl_readline_name = "rlaif";         /* ~/.editrc: "rlaif:bind -v" etc. */
    rl_catch_signals = 0;               /* we handle SIGINT ourselves */
    rl_getc_function = repl_getc;
    rl_initialize();
    stifle_history(HISTORY_MAX);
    const char *home = getenv("HOME");
    if (home != NULL && home[0] != '\0' &&
        (size_t)snprintf(history_path, sizeof history_path, "%s/%s", home, HISTORY_FILE)
            < sizeof history_path)
        read_history(history_path);     /* missing file: nothing to read */
    else
        history_path[0] = '\0';
}

/* The session's lines are in the history file already (saveline); keep the
 * file at HISTORY_MAX lines. Failures are silent. */
static void repl_done(void) {
    if (!use_editline || history_path[0] == '\0' || history_added == 0) return;
    history_truncate_file(history_path, HISTORY_MAX);
}

static void doREPL(lua_State *L) {
    int status;
    const char *oldprogname = progname;
    progname = NULL;                    /* errors print without "rlaif: " */
    repl_init(L);
    while ((status = loadline(L)) != LINE_EOF) {
        if (status == LINE_DISCARD) continue;
        if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
        if (status == LUA_OK) l_print(L);
        else report(L, status);
    }
    lua_settop(L, 0);
    lua_writeline();
    repl_done();
    progname = oldprogname;
}

/* ---- main ---- */

/* Runs in protected mode; pushes the exit status (absent = failure). */
static int pmain(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    int script = argc;
    int args = collectargs(argv, &script);
    luaL_checkversion(L);
    if (args == has_error) {
        print_usage(argv[script]);
        return 0;
    }
    if (args & has_h) {
        print_help();
        lua_pushinteger(L, EXIT_SUCCESS);
        return 1;
    }
    if (rlaif_check_env() != RLAIF_OK) {   /* e.g. RLAIF_NUM_THREADS=abc: refused, not ignored */
        l_message(progname, rlaif_last_error());
        return 0;
    }
    luaL_openlibs(L);
    setup_packages(L);
    createargtable(L, argv, argc, script);
    lua_gc(L, LUA_GCRESTART);
    lua_gc(L, LUA_GCGEN, 0, 0);
    if (args & has_v) print_version();
    if (!runargs(L, argv, script)) return 0;
    if (script < argc) {
        const char *name = argv[script];
        /* NAME as the first argument: an existing file or *.lua is a script;
         * otherwise it must be a command in rlaif/cli/. */
        if (script == 1 && is_command_name(name) && !ends_with(name, ".lua") &&
            !file_exists(name)) {
            if (!command_exists(L, name)) return unknown_command(name), 0;
            if (run_command(L, argv, argc, script) != LUA_OK) return 0;
        } else if (handle_script(L, argv + script) != LUA_OK) {
            return 0;
        }
    }
    if (args & has_i) {
        print_banner();
        doREPL(L);
    } else if (script == argc && !(args & (has_e | has_v))) {
        if (isatty(STDIN_FILENO)) {
            print_banner();
            doREPL(L);
        } else if (dofile(L, NULL) != LUA_OK) {  /* stdin as a script (lua.c ignores errors) */
            return 0;
        }
    }
    lua_pushinteger(L, exit_code);
    return 1;
}

int main(int argc, char **argv) {
    rlaif_init();
    if (rlaif_dist_init() != RLAIF_OK) {   /* MPI, once, when mpirun started us (dist.h) */
        l_message(progname, rlaif_last_error());
        return EXIT_FAILURE;
    }
    find_lua_dir(argv[0]);
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        l_message(progname, "cannot create state: not enough memory");
        return EXIT_FAILURE;
    }
    lua_gc(L, LUA_GCSTOP);              /* no GC while building the state */
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int code = EXIT_FAILURE;
    if (status == LUA_OK && lua_isinteger(L, -1)) code = (int)lua_tointeger(L, -1);
    report(L, status);
    lua_close(L);
    return code;
}
