/* tests/embed/test_state.c -- the embedding API (rlaif_state_*) as a host
 * sees it: compiled against the public headers only (include/, plus lua.h
 * for rlaif_state_lua) and linked with the ASan+UBSan librlaif.so.
 *
 * Covers: options and creation errors; run/call/set/get with JSON and
 * tensors; errors with tracebacks and the status of each kind; every sandbox
 * escape we know of (io, os, debug, package.loadlib and C modules, bytecode,
 * files outside the root, symlinks, metatable tricks, __gc finalizers,
 * collectgarbage, env and process-wide knobs) and every runaway (loops,
 * pcall loops, coroutine loops, huge strings and tables, tensors and models
 * past the memory limit, deep recursion); interrupts from another thread,
 * from a signal handler and inside a long C loop; two states at once. After
 * each failure the state must still work. */
#include <rlaif.h>

#include <lauxlib.h>
#include <lua.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"

static char root[256];

static void write_file(const char *rel, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    if (f == NULL) {
        perror(p);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static double now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec * 1e-6;
}

/* run code: status and a message containing needle ("" = any). */
#define CHECK_RUN(S, code, status, needle)                                                              \
    do {                                                                                               \
        int st_ = rlaif_state_run((S), (code));                                                        \
        check_count++;                                                                                 \
        if (st_ != (status) || strstr(rlaif_state_error(S), (needle)) == NULL) {                       \
            check_failures++;                                                                          \
            fprintf(stderr, "%s:%d: run [%s]: status %d (%s), expected %d with '%s'; error: %.400s\n", \
                    __FILE__, __LINE__, (code), st_, rlaif_status_name(st_), (status), (needle),       \
                    rlaif_state_error(S));                                                             \
        }                                                                                              \
    } while (0)

/* the state still works after whatever happened before */
#define CHECK_ALIVE(S) CHECK_RUN(S, "assert(1 + 1 == 2)", RLAIF_OK, "")

static rlaif_state *sandboxed(long budget, size_t memory) {
    rlaif_options o = rlaif_options_default();
    o.root = root;
    o.instruction_budget = budget;
    o.memory_limit = memory;
    rlaif_state *S = rlaif_state_new(&o);
    if (S == NULL) {
        fprintf(stderr, "rlaif_state_new: %s\n", rlaif_last_error());
        exit(2);
    }
    return S;
}

/* ---- options, creation ---- */

static void test_create(void) {
    rlaif_options d = rlaif_options_default();
    CHECK(d.sandbox == 1 && d.memory_limit == 0 && d.instruction_budget == 0 && d.root == NULL);
    CHECK(strcmp(rlaif_version(), RLAIF_VERSION) == 0);
    CHECK(rlaif_version_number() == RLAIF_VERSION_NUMBER);
    CHECK(rlaif_has_feature("sandbox") && rlaif_has_feature("llm-cache") && rlaif_has_feature("openmp"));
    CHECK(!rlaif_has_feature("sand") && !rlaif_has_feature("llm-") && !rlaif_has_feature(""));

    rlaif_options o = rlaif_options_default();
    o.root = "/nonexistent/rlaif-root";
    CHECK(rlaif_state_new(&o) == NULL);
    CHECK(strstr(rlaif_last_error(), "/nonexistent/rlaif-root") && strstr(rlaif_last_error(), "No such file"));
    char file[300];
    snprintf(file, sizeof file, "%s/mod.lua", root);
    o.root = file;
    CHECK(rlaif_state_new(&o) == NULL && strstr(rlaif_last_error(), "not a directory"));
    o = rlaif_options_default();
    o.lua_dir = "/tmp";
    CHECK(rlaif_state_new(&o) == NULL && strstr(rlaif_last_error(), "rlaif/init.lua"));
    o = rlaif_options_default();
    o.memory_limit = 100000;   /* the toolkit alone needs more */
    CHECK(rlaif_state_new(&o) == NULL && strstr(rlaif_last_error(), "memory_limit too small"));
    o = rlaif_options_default();
    o.instruction_budget = -1;
    CHECK(rlaif_state_new(&o) == NULL && strstr(rlaif_last_error(), "negative"));

    rlaif_state *S = rlaif_state_new(NULL);   /* the defaults: sandbox on, no root */
    CHECK(S != NULL);
    CHECK_RUN(S, "assert(io == nil and rlaif.version == '" RLAIF_VERSION "')", RLAIF_OK, "");
    CHECK_RUN(S, "rlaif.tensor.save('x.safetensors', {a = rlaif.tensor.ones{1}})", RLAIF_EACCES,
              "no file access in this sandbox");
    CHECK(rlaif_state_memory(S) > 50000);   /* the toolkit's Lua heap */
    rlaif_state_free(S);
    rlaif_state_free(NULL);
}

/* ---- run, call, set, get ---- */

static void test_calls(void) {
    rlaif_state *S = sandboxed(0, 0);
    CHECK_RUN(S,
              "game = {n = 0}\n"
              "function game.tick(dt, world) game.n = game.n + 1\n"
              "  return {n = game.n, dt = dt * 2, names = world.names, nothing = world.nothing, s = 'a\"\\n\\u{e9}'} end\n"
              "function game.fail() local x = nil; return x.y end\n"
              "function game.raise_table() error({code = 7}) end\n"
              "function game.raise_str() error(setmetatable({}, {__tostring = function() return 'custom!' end})) end\n"
              "function game.tensor() return {t = rlaif.tensor.arange(4):reshape{2, 2}, k = 1} end\n"
              "function game.fn() return print end\n"
              "game.callable = setmetatable({}, {__call = function(self, a) return a + 1 end})\n",
              RLAIF_OK, "");
    char *out = NULL;
    CHECK(rlaif_state_call(S, "game.tick", "[0.25, {\"names\": [\"a\", null, \"c\"], \"nothing\": null}]", &out) ==
          RLAIF_OK);
    CHECK(out && strcmp(out, "{\"dt\":0.5,\"n\":1,\"names\":[\"a\",null,\"c\"],\"nothing\":null,\"s\":\"a\\\"\\n\xc3\xa9\"}") ==
                     0);
    if (out) printf("game.tick -> %s\n", out);
    rlaif_free(out);
    CHECK(rlaif_state_call(S, "game.tick", "  [1, {}]  ", NULL) == RLAIF_OK);   /* result dropped */
    CHECK(rlaif_state_get(S, "game.n", &out) == RLAIF_OK && out && strcmp(out, "2") == 0);
    rlaif_free(out);
    CHECK(rlaif_state_call(S, "game.tensor", NULL, &out) == RLAIF_OK);
    CHECK(out && strcmp(out, "{\"k\":1,\"t\":[[0.0,1.0],[2.0,3.0]]}") == 0);
    rlaif_free(out);
    CHECK(rlaif_state_call(S, "game.callable", "[41]", &out) == RLAIF_OK && out && strcmp(out, "42") == 0);
    rlaif_free(out);
    CHECK(rlaif_state_call(S, "print", "[]", &out) == RLAIF_OK && out && strcmp(out, "null") == 0);
    rlaif_free(out);

    /* the host's mistakes: RLAIF_EINVAL, naming what is wrong */
    out = (char *)"untouched";
    CHECK(rlaif_state_call(S, "game.nope", "[]", &out) == RLAIF_EINVAL && out == NULL);
    CHECK(strstr(rlaif_state_error(S), "'game.nope' is nil, not a function") != NULL);
    CHECK(rlaif_state_call(S, "game.n", "[]", NULL) == RLAIF_EINVAL);
    CHECK(strstr(rlaif_state_error(S), "'game.n' is number, not a function") != NULL);
    CHECK(rlaif_state_call(S, "game.n.x", "[]", NULL) == RLAIF_EINVAL);
    CHECK(rlaif_state_call(S, "game..tick", "[]", NULL) == RLAIF_EINVAL);
    CHECK(strstr(rlaif_state_error(S), "an empty name") != NULL);
    CHECK(rlaif_state_call(S, "game.tick", "{\"a\": 1}", NULL) == RLAIF_EINVAL);
    CHECK(strstr(rlaif_state_error(S), "args_json must be a JSON array") != NULL);
    CHECK(rlaif_state_call(S, "game.tick", "[1, {]", NULL) == RLAIF_EINVAL);
    CHECK(strstr(rlaif_state_error(S), "syntax error at byte") != NULL);
    CHECK(rlaif_state_call(S, NULL, "[]", NULL) == RLAIF_EINVAL);
    CHECK(strstr(rlaif_last_error(), "NULL argument") != NULL);

    /* the script's errors: RLAIF_ESCRIPT with a traceback */
    CHECK(rlaif_state_call(S, "game.fail", "[]", &out) == RLAIF_ESCRIPT && out == NULL);
    CHECK(strstr(rlaif_state_error(S), "attempt to index a nil value (local 'x')") != NULL);
    CHECK(strstr(rlaif_state_error(S), "stack traceback:") != NULL);
    CHECK(strstr(rlaif_state_error(S), "(run):4: in function <(run):4>") != NULL);
    CHECK(strcmp(rlaif_last_error(), rlaif_state_error(S)) == 0 || strlen(rlaif_state_error(S)) > 500);
    CHECK(rlaif_state_call(S, "game.raise_table", "[]", NULL) == RLAIF_ESCRIPT);
    CHECK(strstr(rlaif_state_error(S), "(error object is a table value)") != NULL);
    CHECK(rlaif_state_call(S, "game.raise_str", "[]", NULL) == RLAIF_ESCRIPT);
    CHECK(strcmp(rlaif_state_error(S), "custom!") == 0);
    CHECK(rlaif_state_call(S, "game.fn", "[]", &out) == RLAIF_ESCRIPT && out == NULL);
    CHECK(strstr(rlaif_state_error(S), "result: json.encode: cannot encode a function") != NULL);
    CHECK(rlaif_state_call(S, "game.fn", "[]", NULL) == RLAIF_OK);   /* a result nobody asked for */
    CHECK_RUN(S, "x = = 1", RLAIF_ESCRIPT, "unexpected symbol near '='");
    CHECK_RUN(S, "error('boom')", RLAIF_ESCRIPT, "(run):1: boom");
    CHECK_ALIVE(S);

    /* set/get JSON; tensors in and out without copies */
    CHECK(rlaif_state_set(S, "config.speed", "3.5") == RLAIF_OK);
    CHECK(rlaif_state_set(S, "config.tags", "[\"x\", \"y\"]") == RLAIF_OK);
    CHECK(rlaif_state_get(S, "config", &out) == RLAIF_OK && out &&
          strcmp(out, "{\"speed\":3.5,\"tags\":[\"x\",\"y\"]}") == 0);
    rlaif_free(out);
    CHECK(rlaif_state_set(S, "config.speed.x", "1") == RLAIF_EINVAL);
    CHECK(rlaif_state_set(S, "config.z", "nope") == RLAIF_EINVAL);
    CHECK(rlaif_state_get(S, "config.missing", &out) == RLAIF_OK && out && strcmp(out, "null") == 0);
    rlaif_free(out);

    rlaif_tensor *t = NULL;
    int64_t shape[2] = {2, 3};
    float data[6] = {1, 2, 3, 4, 5, 6};
    CHECK_OK(rlaif_tensor_from_data(&t, 2, shape, data));
    CHECK(rlaif_state_set_tensor(S, "inputs.x", t) == RLAIF_OK);
    CHECK_RUN(S, "inputs.x:mul_(10); inputs.y = inputs.x:sum(2)", RLAIF_OK, "");
    CHECK(rlaif_tensor_data(t)[5] == 60.0f);   /* the same storage */
    rlaif_tensor *y = NULL;
    CHECK(rlaif_state_get_tensor(S, "inputs.y", &y) == RLAIF_OK && y != NULL);
    if (y) {
        CHECK(rlaif_tensor_ndim(y) == 1 && rlaif_tensor_size(y, 0) == 2);
        float v[2] = {0, 0};
        CHECK_OK(rlaif_tensor_to_data(y, v, 2));
        CHECK_CLOSE(v[0], 60, 1e-6);
        CHECK_CLOSE(v[1], 150, 1e-6);
    }
    rlaif_tensor *none = t;
    CHECK(rlaif_state_get_tensor(S, "config.speed", &none) == RLAIF_EINVAL && none == NULL);
    CHECK(strstr(rlaif_state_error(S), "not a tensor") != NULL);
    rlaif_tensor_release(t);
    rlaif_state_free(S);
    /* a tensor made in the state outlives it (its memory meter too) */
    if (y) {
        CHECK(rlaif_tensor_get(y, (int64_t[]){1}) == 150.0f);
        rlaif_tensor_release(y);
    }
}

/* ---- the sandbox ---- */

static void test_escapes(void) {
    rlaif_state *S = sandboxed(2000000, 64 << 20);
    struct { const char *code; int status; const char *needle; } cases[] = {
        /* no io, no os beyond time/clock/date, no debug */
        {"return io.open('/etc/passwd')", RLAIF_ESCRIPT, "global 'io'"},
        {"io.popen('id')", RLAIF_ESCRIPT, "global 'io'"},
        {"return rlaif.serve{port = 0}", RLAIF_ESCRIPT, "field 'serve'"},
        {"assert(rlaif.core == nil or rlaif.core.serve == nil)", RLAIF_OK, ""},
        {"require('rlaif.serve')", RLAIF_ESCRIPT, "not available in the sandbox"},
        {"os.execute('true')", RLAIF_ESCRIPT, "field 'execute'"},
        {"os.exit(1)", RLAIF_ESCRIPT, "field 'exit'"},
        {"os.getenv('HOME')", RLAIF_ESCRIPT, "field 'getenv'"},
        {"os.remove('mod.lua')", RLAIF_ESCRIPT, "field 'remove'"},
        {"assert(os.time() > 0 and os.clock() >= 0 and #os.date('%Y') == 4)", RLAIF_OK, ""},
        {"return debug.getinfo(1)", RLAIF_ESCRIPT, "global 'debug'"},
        {"require 'debug'", RLAIF_ESCRIPT, "module 'debug' not found"},
        {"require 'io'", RLAIF_ESCRIPT, "module 'io' not found"},
        {"assert(package.loaded.io == nil and package.loaded.debug == nil and package.searchpath == nil)", RLAIF_OK,
         ""},
        /* no C code: loadlib, cpath, C modules */
        {"package.loadlib('libc.so.6', 'system')", RLAIF_ESCRIPT, "field 'loadlib'"},
        {"package.cpath = '/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;./?.so'; require 'lfs'", RLAIF_ESCRIPT,
         "module 'lfs' not found"},
        {"local old = package.path package.path = '/etc/?' local ok, e = pcall(require, 'passwd') package.path = old "
         "error(e)", RLAIF_ESCRIPT, "not inside the sandbox root: '/etc/passwd'"},
        /* no bytecode */
        {"local f = string.dump(function() end)", RLAIF_ESCRIPT, "field 'dump'"},
        {"assert(('').dump == nil and string.dump == nil)", RLAIF_OK, ""},
        {"local f, e = load('\\27LuaT\\0\\25\\147\\r\\n\\26\\n'); error(e)", RLAIF_ESCRIPT,
         "attempt to load a binary chunk (mode is 't')"},
        {"load('return 1', 'x', 'b')", RLAIF_ESCRIPT, "binary chunks are not allowed in the sandbox"},
        {"loadfile('mod.lua', 'b')", RLAIF_ESCRIPT, "binary chunks are not allowed in the sandbox"},
        {"assert(load('return io, os.execute, debug')() == nil)", RLAIF_OK, ""},
        {"assert(load('return 7', 'x', 't', {})() == 7)", RLAIF_OK, ""},
        /* files: only inside the root */
        {"dofile('/etc/passwd')", RLAIF_EACCES, "/etc/passwd: outside the sandbox root"},
        {"dofile('../../../../../../etc/passwd')", RLAIF_EACCES, "outside the sandbox root"},
        {"dofile('link.lua')", RLAIF_EACCES, "link.lua: outside the sandbox root"},
        {"loadfile()", RLAIF_ESCRIPT, "reading standard input is not available"},
        {"assert(dofile('mod.lua').answer == 42)", RLAIF_OK, ""},
        {"assert(require('mod').answer == 42 and require('sub.inner') == 'inner')", RLAIF_OK, ""},
        {"rlaif.tensor.save('/tmp/rlaif-sandbox-escape.safetensors', {a = rlaif.tensor.ones{1}})", RLAIF_EACCES,
         "outside the sandbox root"},
        {"rlaif.tensor.save('ok.safetensors', {a = rlaif.tensor.ones{3}})", RLAIF_OK, ""},
        {"assert(rlaif.tensor.load('ok.safetensors').a:sum():item() == 3)", RLAIF_OK, ""},
        {"rlaif.tensor.load('/etc/passwd')", RLAIF_EACCES, "outside the sandbox root"},
        {"assert(rlaif.tokenizer.load('/etc'))", RLAIF_EACCES, "outside the sandbox root"},
        {"assert(rlaif.model.try_load('/usr'))", RLAIF_EACCES, "outside the sandbox root"},
        {"rlaif.data.open('/etc/passwd', {format = 'pairs'})", RLAIF_EACCES, "outside the sandbox root"},
        {"rlaif.metrics.load('/etc/passwd')", RLAIF_EACCES, "outside the sandbox root"},
        {"rlaif.llm.client{api = 'openai-chat', base_url = 'file:///etc/passwd'}", RLAIF_ESCRIPT,
         "base_url must start with http"},
        {"rlaif.llm.client{api = 'openai-chat', base_url = 'http://127.0.0.1:9', cache = '/tmp/evil.sqlite'}",
         RLAIF_EACCES, "outside the sandbox root"},
        {"rlaif.llm.client{api = 'openai-chat', base_url = 'http://127.0.0.1:9', ca_file = '/etc/hostname'}",
         RLAIF_EACCES, "outside the sandbox root"},
        {"assert(rlaif.prompts.load('summarize-detailed'))", RLAIF_OK, ""},   /* the toolkit's own files */
        /* the toolkit's atomic Lua writer: a temporary and a rename, inside the root only */
        {"local w = require('rlaif.fileio').atomic('atomic.txt') w:write('hi') w:commit()\n"
         "assert(rlaif.core.gz.file_id('atomic.txt'))", RLAIF_OK, ""},
        {"require('rlaif.fileio').atomic('/tmp/rlaif-sandbox-escape.txt')", RLAIF_EACCES, "outside the sandbox root"},
        {"local w = require('rlaif.fileio').atomic('w2.txt') assert(getmetatable(w.w) == false) w:abort()", RLAIF_OK,
         ""},   /* its finalizer (the C writer's, which drops the temporary) is locked */
        {"assert(rlaif.core.gz.mkdir('made'))", RLAIF_OK, ""},
        {"assert(rlaif.core.gz.mkdir('/tmp/rlaif-sandbox-escape-dir'))", RLAIF_EACCES, "outside the sandbox root"},
        {"assert(rlaif.core.gz.write_atomic('/tmp/rlaif-sandbox-escape.txt', 'x'))", RLAIF_EACCES,
         "outside the sandbox root"},
        {"rlaif.prompts.load('/etc/passwd')", RLAIF_EACCES, "no such template file"},
        /* metatables: no way to the real string table or a C object's finalizer */
        {"getmetatable('').__index.upper = nil", RLAIF_ESCRIPT, "attempt to index a boolean value"},
        {"getmetatable(rlaif.tensor.ones{1}).__gc = function() while true do end end", RLAIF_ESCRIPT,
         "attempt to index a boolean value"},
        {"assert(rlaif.core.tensor.meta == nil and rlaif.tensor.meta == nil)", RLAIF_OK, ""},
        {"setmetatable({}, {__gc = function() while true do end end})", RLAIF_ESCRIPT,
         "__gc metamethods are not allowed"},
        {"local mt = {} setmetatable({}, mt) mt.__gc = function() while true do end end collectgarbage()", RLAIF_OK,
         ""},
        /* the guarded xpcall, coroutine.wrap and coroutine.close keep Lua's behaviour */
        {"local ok, e = xpcall(function() error('x', 0) end, function(m) return 'handled ' .. m end)\n"
         "assert(not ok and e == 'handled x')\n"
         "assert(select('#', xpcall(function() return 1, 2 end, print)) == 3)\n"
         "local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)\n"
         "assert(co(1) == 2 and co(5) == 10)\n"
         "local c2 = coroutine.create(function() coroutine.yield() end) coroutine.resume(c2)\n"
         "assert(coroutine.close(c2) and coroutine.status(c2) == 'dead')\n"
         "local c3 = coroutine.wrap(function() error('inner', 0) end) local ok3, e3 = pcall(c3)\n"
         "assert(not ok3 and e3 == 'inner')",
         RLAIF_OK, ""},
        {"collectgarbage('stop')", RLAIF_ESCRIPT, "option 'stop' is not available in the sandbox"},
        {"collectgarbage('generational')", RLAIF_ESCRIPT, "not available in the sandbox"},
        {"assert(collectgarbage('count') > 0)", RLAIF_OK, ""},
        /* nothing process-wide */
        {"rlaif.core.setenv('LD_PRELOAD', '/tmp/x.so')", RLAIF_ESCRIPT, "field 'setenv'"},
        {"rlaif.set_threads(64)", RLAIF_ESCRIPT, "field 'set_threads'"},
        {"rlaif.llm.cancel_request()", RLAIF_ESCRIPT, "field 'cancel_request'"},
        {"rlaif.core.llm.cancel_request()", RLAIF_ESCRIPT, "field 'cancel_request'"},
        {"assert(_G == _ENV and _G.io == nil and rawget(_G, 'os').execute == nil)", RLAIF_OK, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_RUN(S, cases[i].code, cases[i].status, cases[i].needle);
        CHECK_ALIVE(S);
    }
    CHECK(!exists("/tmp/rlaif-sandbox-escape.safetensors") && !exists("/tmp/evil.sqlite") &&
          !exists("/tmp/rlaif-sandbox-escape.txt") && !exists("/tmp/rlaif-sandbox-escape-dir"));
    char p[300];
    snprintf(p, sizeof p, "%s/ok.safetensors", root);
    CHECK(exists(p));
    rlaif_state_free(S);
}

/* ---- runaways: the budget and the memory limit ---- */

static void test_runaways(void) {
    rlaif_state *S = sandboxed(300000, 48 << 20);
    struct { const char *code; int status; const char *needle; } cases[] = {
        {"while true do end", RLAIF_EBUDGET, "(run):1: instruction budget of 300000 exceeded"},
        {"while true do pcall(function() while true do end end) end", RLAIF_EBUDGET, "instruction budget"},
        {"local co = coroutine.wrap(function() while true do coroutine.yield() end end) while true do co() end",
         RLAIF_EBUDGET, "instruction budget"},
        {"while true do coroutine.resume(coroutine.create(function() while true do end end)) end", RLAIF_EBUDGET,
         "instruction budget"},
        {"local t = setmetatable({}, {__index = function(t, k) while true do end end}) return t.x", RLAIF_EBUDGET,
         "instruction budget"},
        /* Lua code that would run with the hooks off after the budget's error: a message handler,
         * __tostring of the error object, __close of a coroutine that died of it */
        {"while true do xpcall(function() while true do end end, function() while true do end end) end",
         RLAIF_EBUDGET, "instruction budget"},
        {"error(setmetatable({}, {__tostring = function() while true do end end}))", RLAIF_EBUDGET,
         "instruction budget"},
        {"coroutine.wrap(function() local x <close> = setmetatable({}, {__close = function() while true do end end})\n"
         "  while true do end end)()", RLAIF_EBUDGET, "instruction budget"},
        {"co = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() while true do end "
         "end}) while true do end end) coroutine.resume(co)", RLAIF_EBUDGET, "(the script caught the error)"},
        {"local ok, e = coroutine.close(co) assert(not ok and e:find('instruction budget'))", RLAIF_OK, ""},
        {"local s = string.rep('x', 1 << 30)", RLAIF_ENOMEM, "memory limit of 50331648 bytes exceeded"},
        {"local s = ('x'):rep(1 << 20) local t = {} for i = 1, 100 do t[i] = s .. i end", RLAIF_ENOMEM,
         "memory limit"},
        {"local t = rlaif.tensor.zeros{20000, 20000}", RLAIF_ENOMEM, "tensor.zeros: tensor: memory limit of 50331648"},
        {"rlaif.model.new{arch = 'gpt2', vocab_size = 50000, n_layer = 12, n_head = 12, d_model = 768, max_seq = 64}",
         RLAIF_ENOMEM, "model.new: memory limit"},
        {"local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x", RLAIF_ESCRIPT,
         "stack overflow"},
        {"local t = setmetatable({}, {__tostring = function(s) return tostring(s) end}) return tostring(t)",
         RLAIF_ESCRIPT, "stack overflow"},
        {"string.format('%99999d', 1)", RLAIF_ESCRIPT, "invalid conversion"},
    };
    size_t base = rlaif_state_memory(S);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double t0 = now();
        int st = rlaif_state_run(S, cases[i].code);
        check_count++;
        if (st != cases[i].status || strstr(rlaif_state_error(S), cases[i].needle) == NULL) {
            check_failures++;
            fprintf(stderr, "runaway [%s]: status %d (%s), expected %d '%s'; error %.300s\n", cases[i].code, st,
                    rlaif_status_name(st), cases[i].status, cases[i].needle, rlaif_state_error(S));
        }
        CHECK(now() - t0 < 20);
        CHECK_ALIVE(S);
        CHECK_RUN(S, "collectgarbage()", RLAIF_OK, "");
        CHECK(rlaif_state_memory(S) < base + (4 << 20));   /* everything given back */
    }
    /* deep Lua recursion, without a budget: "stack overflow" or the memory limit, whichever comes first */
    rlaif_state *R = sandboxed(0, 48 << 20);
    int st = rlaif_state_run(R, "local function f(n) return f(n + 1) + 1 end f(1)");
    CHECK((st == RLAIF_ESCRIPT && strstr(rlaif_state_error(R), "stack overflow")) ||
          (st == RLAIF_ENOMEM && strstr(rlaif_state_error(R), "memory limit")));
    CHECK_ALIVE(R);
    rlaif_state_free(R);
    /* the budget is per call: many small calls are fine */
    for (int i = 0; i < 20; i++) CHECK_RUN(S, "local s = 0 for i = 1, 20000 do s = s + i end", RLAIF_OK, "");
    CHECK(rlaif_state_instructions(S) > 20000 && rlaif_state_instructions(S) < 300000);
    rlaif_state_free(S);
}

/* ---- interrupts ---- */

typedef struct { rlaif_state *S; int delay_ms; } interrupter;

static void *interrupt_later(void *arg) {
    interrupter *it = arg;
    usleep((useconds_t)it->delay_ms * 1000);
    rlaif_state_interrupt(it->S);
    return NULL;
}

static rlaif_state *alarm_state;
static void on_alarm(int sig) {
    (void)sig;
    rlaif_state_interrupt(alarm_state);   /* async-signal-safe */
}

typedef struct { rlaif_state *S; const char *code; int status; double elapsed; } runner;

static void *run_in_thread(void *arg) {
    runner *r = arg;
    double t0 = now();
    r->status = rlaif_state_run(r->S, r->code);
    r->elapsed = now() - t0;
    return NULL;
}

static void test_interrupts(void) {
    rlaif_state *S = sandboxed(0, 0);
    pthread_t th;
    /* a pcall loop cannot swallow an interrupt */
    interrupter it = {S, 100};
    pthread_create(&th, NULL, interrupt_later, &it);
    CHECK_RUN(S, "while true do pcall(function() while true do end end) end", RLAIF_EINTR, "interrupted");
    pthread_join(th, NULL);
    CHECK_ALIVE(S);

    /* a coroutine that never yields (no budget: the hook goes onto the running coroutine) */
    pthread_create(&th, NULL, interrupt_later, &it);
    CHECK_RUN(S, "coroutine.wrap(function() while true do end end)()", RLAIF_EINTR, "interrupted");
    pthread_join(th, NULL);
    pthread_create(&th, NULL, interrupt_later, &it);
    CHECK_RUN(S, "local co = coroutine.create(function() while true do end end)\n"
                 "local ok, e = coroutine.resume(co) error(e, 0)", RLAIF_EINTR, "interrupted");
    pthread_join(th, NULL);
    CHECK_ALIVE(S);

    /* inside a long C loop (generation polls the state's cancel flag) */
    CHECK_RUN(S,
              "m = rlaif.model.new{arch = 'llama', vocab_size = 64, n_layer = 1, n_head = 2, n_kv_head = 1,\n"
              "  d_model = 16, d_ff = 32, max_seq = 300000, seed = 1}",
              RLAIF_OK, "");
    double t0 = now();
    it.delay_ms = 200;
    pthread_create(&th, NULL, interrupt_later, &it);
    CHECK_RUN(S, "m:generate({{1, 2, 3}}, {max_new_tokens = 200000, temperature = 0})", RLAIF_EINTR,
              "model.generate: interrupted");
    pthread_join(th, NULL);
    double dt = now() - t0;
    CHECK(dt < 10);
    printf("interrupt inside model.generate: stopped after %.2f s\n", dt);
    CHECK(!rlaif_cancelled());   /* the process-wide flag was never touched */
    CHECK_ALIVE(S);

    /* from a signal handler */
    alarm_state = S;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval tv = {{0, 0}, {0, 150000}};
    setitimer(ITIMER_REAL, &tv, NULL);
    CHECK_RUN(S, "local co = coroutine.wrap(function() while true do coroutine.yield() end end) while true do co() end",
              RLAIF_EINTR, "interrupted");
    signal(SIGALRM, SIG_DFL);
    CHECK_ALIVE(S);

    /* while idle: the next run stops at its start, the one after runs */
    rlaif_state_interrupt(S);
    CHECK_RUN(S, "assert(false, 'must not run')", RLAIF_EINTR, "interrupted");
    CHECK_ALIVE(S);
    rlaif_state_free(S);

    /* two states on two threads: interrupting one leaves the other alone */
    rlaif_state *A = sandboxed(0, 0), *B = sandboxed(0, 0);
    runner ra = {A, "while true do end", -1, 0};
    runner rb = {B, "local s = 0 for i = 1, 3000000 do s = s + i end assert(s == 4500001500000)", -1, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, run_in_thread, &ra);
    pthread_create(&tb, NULL, run_in_thread, &rb);
    usleep(100000);
    rlaif_state_interrupt(A);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(ra.status == RLAIF_EINTR);
    CHECK(rb.status == RLAIF_OK);
    if (rb.status != RLAIF_OK) fprintf(stderr, "state B: %s\n", rlaif_state_error(B));
    rlaif_state_free(A);
    rlaif_state_free(B);
}

/* ---- without the sandbox; print; the raw lua_State ---- */

static char printed[256];
static void capture(void *ud, const char *text, size_t len) {
    (void)ud;
    snprintf(printed, sizeof printed, "%.*s", (int)len, text);
}

static int host_add(lua_State *L) {
    lua_pushinteger(L, luaL_checkinteger(L, 1) + luaL_checkinteger(L, 2));
    return 1;
}

static rlaif_state *reentered;
static int host_reenter(lua_State *L) {
    lua_pushinteger(L, rlaif_state_run(reentered, "return 1"));
    return 1;
}

static void test_host(void) {
    rlaif_options o = {0};   /* zeroed: no sandbox */
    o.root = root;
    o.print = capture;
    rlaif_state *S = rlaif_state_new(&o);
    CHECK(S != NULL);
    if (S == NULL) return;
    char json[300];
    snprintf(json, sizeof json, "\"%s\"", root);
    CHECK(rlaif_state_set(S, "ROOT", json) == RLAIF_OK);
    CHECK_RUN(S, "local f = assert(io.open(ROOT .. '/mod.lua')) assert(f:read('a'):find('answer')) f:close()",
              RLAIF_OK, "");
    CHECK_RUN(S, "os.exit(3)", RLAIF_ESCRIPT, "os.exit is not available in an embedded state");
    CHECK_RUN(S, "assert(debug.traceback and require('mod').answer == 42)", RLAIF_OK, "");
    CHECK(rlaif_state_run_file(S, "mod.lua") == RLAIF_OK);
    CHECK_RUN(S, "print('a', 1, true, nil)", RLAIF_OK, "");
    CHECK(strcmp(printed, "a\t1\ttrue\tnil") == 0);

    lua_State *L = rlaif_state_lua(S);
    int top = lua_gettop(L);
    lua_pushcfunction(L, host_add);
    lua_setglobal(L, "host_add");
    reentered = S;
    lua_pushcfunction(L, host_reenter);
    lua_setglobal(L, "host_reenter");
    CHECK_RUN(S, "assert(host_add(40, 2) == 42)", RLAIF_OK, "");
    char *out = NULL;
    CHECK(rlaif_state_call(S, "host_reenter", "[]", &out) == RLAIF_OK && out && atoi(out) == RLAIF_EINVAL);
    rlaif_free(out);
    CHECK(lua_gettop(L) == top);   /* every call leaves the stack as it found it */
    rlaif_state_free(S);

    /* a sandboxed state: the scripts' globals are at registry["rlaif.env"] */
    o = rlaif_options_default();
    o.root = root;
    o.print = capture;
    S = rlaif_state_new(&o);
    L = rlaif_state_lua(S);
    CHECK(lua_getfield(L, LUA_REGISTRYINDEX, "rlaif.env") == LUA_TTABLE);
    lua_pushcfunction(L, host_add);
    lua_setfield(L, -2, "host_add");
    lua_pop(L, 1);
    CHECK_RUN(S, "print(host_add(1, 2))", RLAIF_OK, "");
    CHECK(strcmp(printed, "3") == 0);
    CHECK(rlaif_state_run_file(S, "mod.lua") == RLAIF_OK);
    CHECK(rlaif_state_run_file(S, "/etc/passwd") == RLAIF_EACCES);
    CHECK(rlaif_state_run_file(S, "missing.lua") == RLAIF_ESCRIPT);
    CHECK(strstr(rlaif_state_error(S), "missing.lua") != NULL);
    rlaif_state_free(S);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/rlaif-embed-test-XXXXXX");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    write_file("mod.lua", "return {answer = 42}\n");
    char sub[300], link[300];
    snprintf(sub, sizeof sub, "%s/sub", root);
    mkdir(sub, 0755);
    write_file("sub/inner.lua", "return 'inner'\n");
    snprintf(link, sizeof link, "%s/link.lua", root);
    if (symlink("/etc/passwd", link) != 0) perror("symlink");

    test_create();
    test_calls();
    test_escapes();
    test_runaways();
    test_interrupts();
    test_host();

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return check_report("test_state");
}
