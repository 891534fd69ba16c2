-- tests/spec/cli_spec.lua -- the `rlaif` executable (src/main.c) seen from a
-- shell: options, scripts and `arg`, subcommands, errors and exit statuses,
-- stdin, the REPL on a pipe and SIGINT. Runs ./rlaif from the repo root (the
-- cwd busted is started in) and captures stdout and stderr in temp files.
--
-- The REPL on a real terminal (line editing, Ctrl-C at the prompt) is
-- covered by scripts/check_repl.sh through repl_spec.lua.

local ROOT = assert(io.popen("pwd")):read("l")
local RLAIF = ROOT .. "/rlaif"   -- absolute, so tests may cd elsewhere first
local helper = require "spec.helper"

local function q(s)
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function spit(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- run(args [, stdin_text [, prefix]]) -> stdout, stderr, exit status.
-- prefix goes before the command: "VAR=x" or "cd DIR && env -u VAR".
local function run(args, input, env)
  local out, err = os.tmpname(), os.tmpname()
  local cmd = string.format("%s%s %s >%s 2>%s", env and (env .. " ") or "", RLAIF, args, out, err)
  if input then
    cmd = string.format("printf '%%s' %s | %s", q(input), cmd)
  else
    cmd = cmd .. " </dev/null"
  end
  local _, _, code = os.execute(cmd)
  local o, e = slurp(out), slurp(err)
  os.remove(out)
  os.remove(err)
  return o, e, code
end

-- A temporary script file NAME.lua holding `text`; returns its path.
local temps = {}
local function script(text)
  local base = os.tmpname()
  local path = base .. ".lua"
  spit(path, text)
  temps[#temps + 1] = base
  temps[#temps + 1] = path
  return path
end

local function has(hay, needle)
  return hay:find(needle, 1, true) ~= nil
end

describe("rlaif executable #unit", function()
  teardown(function()
    for _, p in ipairs(temps) do os.remove(p) end
  end)

  describe("-e", function()
    it("runs a chunk", function()
      local out, err, code = run("-e 'print(1+1)'")
      assert.are.equal("2\n", out)
      assert.are.equal("", err)
      assert.are.equal(0, code)
    end)

    it("may repeat, in order, sharing globals", function()
      local out, _, code = run("-e 'x = 20' -e 'print(x + 1)'")
      assert.are.equal("21\n", out)
      assert.are.equal(0, code)
    end)

    it("gives scripts no rlaif global; they require it", function()
      local out = run([[-e 'print(rlaif, help, require("rlaif").version)']])
      assert.are.equal("nil\tnil\t0.1.0\n", out)
    end)

    it("passes os.exit's status through", function()
      local _, _, code = run("-e 'os.exit(3)'")
      assert.are.equal(3, code)
    end)
  end)

  describe("scripts", function()
    it("get arg with the script at 0, its arguments after, the interpreter before", function()
      local path = script([[
        print(arg[-3], arg[-2], arg[-1], arg[0] == ..., #arg, arg[1], arg[2], select("#", ...))
      ]])
      -- arg[0] == ... is false: `...` holds the arguments, not the name
      local out, err, code = run("-e 'x = 1' " .. path .. " a 'b c'")
      assert.are.equal("", err)
      assert.are.equal(0, code)
      assert.are.equal(RLAIF .. "\t-e\tx = 1\tfalse\t2\ta\tb c\t2\n", out)
    end)

    it("receive their arguments as ...", function()
      local path = script("print(...)")
      local out = run(path .. " one two")
      assert.are.equal("one\ttwo\n", out)
    end)

    it("see arg[0] as the script path", function()
      local path = script("print(arg[0])")
      local out = run(path)
      assert.are.equal(path .. "\n", out)
    end)

    it("run after -- even when named like an option", function()
      local path = script("print(arg[1])")
      local out, _, code = run("-- " .. path .. " -e")
      assert.are.equal("-e\n", out)
      assert.are.equal(0, code)
    end)

    it("report 'cannot open' and exit 1 when missing", function()
      local out, err, code = run("no/such/script.lua")
      assert.are.equal("", out)
      assert.is_truthy(has(err, "rlaif: cannot open no/such/script.lua"), err)
      assert.are.equal(1, code)
    end)

    it("report errors with a traceback on stderr and exit 1", function()
      local path = script("local function inner() error('boom') end\ninner()\n")
      local out, err, code = run(path)
      assert.are.equal("", out)
      assert.are.equal(1, code)
      assert.is_truthy(err:match("^rlaif: [^\n]*:1: boom\nstack traceback:\n"), err)
      assert.is_truthy(has(err, "in local 'inner'") or has(err, "in function 'inner'"), err)
    end)

    it("report syntax errors and exit 1", function()
      local path = script("x = = 1")
      local _, err, code = run(path)
      assert.are.equal(1, code)
      assert.is_truthy(has(err, "unexpected symbol near '='"), err)
    end)

    it("print error objects through __tostring", function()
      local _, err, code = run([[-e 'error(setmetatable({}, {__tostring = function() return "custom error" end}))']])
      assert.are.equal(1, code)
      assert.are.equal("rlaif: custom error\n", err)
    end)

    it("describe error objects without __tostring", function()
      local _, err, code = run("-e 'error({})'")
      assert.are.equal(1, code)
      assert.is_truthy(has(err, "rlaif: (error object is a table value)"), err)
    end)

    it("find rlaif's Lua files from any directory, without LUA_PATH", function()
      local out, err, code = run([[-e 'print(package.searchpath("rlaif", package.path))']],
        nil, "cd /tmp && env -u LUA_PATH -u LUA_PATH_5_4")
      assert.are.equal(0, code, err)
      assert.are.equal(ROOT .. "/lua/rlaif/init.lua\n", out)
    end)
  end)

  describe("stdin", function()
    it("runs as a script when it is not a terminal", function()
      local out, err, code = run("", "print(1+1)\n")
      assert.are.equal("2\n", out)
      assert.are.equal("", err)
      assert.are.equal(0, code)
    end)

    it("runs with '-'", function()
      local out, _, code = run("- x y", "print(...)")
      assert.are.equal("x\ty\n", out)
      assert.are.equal(0, code)
    end)

    it("exits 1 on an error (lua.c would exit 0)", function()
      local _, err, code = run("", "error('from stdin')")
      assert.are.equal(1, code)
      assert.is_truthy(has(err, "from stdin"), err)
      assert.is_truthy(has(err, "stack traceback:"), err)
    end)

    it("feeds the REPL with -i: expressions, pretty tables, the rlaif global", function()
      local input = table.concat({
        "1+1",
        "{1, 2, x = 3, nested = {}}",
        "'s', nil, 2.5",
        "rlaif.version",
        "for i = 1, 2 do",
        "  io.write(i, ';')",
        "end",
        "error('oops')",
        "'still alive'",
      }, "\n") .. "\n"
      local out, err, code = run("-i", input)
      assert.are.equal(0, code)
      assert.is_truthy(has(out, "> 2\n"), out)
      assert.is_truthy(has(out, '{1, 2, nested = {}, x = 3}\n'), out)
      assert.is_truthy(has(out, '"s"\tnil\t2.5\n'), out)
      assert.is_truthy(has(out, '"0.1.0"\n'), out)
      assert.is_truthy(has(out, ">> >> 1;2;"), out)
      assert.is_truthy(has(out, '"still alive"\n'), out)
      assert.is_truthy(has(err, "stdin:1: oops\nstack traceback:"), err)
    end)
  end)

  describe("--version", function()
    it("names rlaif, Lua, BLIS, its kernels and the thread count", function()
      local out, _, code = run("--version", nil, "RLAIF_NUM_THREADS=3")
      assert.are.equal(0, code)
      assert.is_truthy(out:match("^rlaif %d+%.%d+%.%d+\n"), out)
      assert.is_truthy(has(out, "Lua 5.4"), out)
      assert.is_truthy(out:match("BLIS [%w.]+, kernel configuration: %S+ %((.-)%)"), out)
      assert.is_truthy(has(out, "threads: 3\n"), out)
    end)

    it("has the alias -v", function()
      local long = run("--version")
      local short = run("-v")
      assert.are.equal(long, short)
    end)

    it("runs the following script too, as lua -v does", function()
      local out = run("-v -e 'print(\"after\")'")
      assert.is_truthy(out:match("threads: %d+\nMPI: [^\n]+\nafter\n$"), out)
    end)
  end)

  describe("--help", function()
    it("prints usage, options and the commands found on disk", function()
      local out, err, code = run("--help")
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.is_truthy(has(out, "usage: rlaif [options] [script [args]]"), out)
      assert.is_truthy(has(out, "-e stat"), out)
      assert.is_truthy(out:match("Commands: [^\n]*info"), out)
      assert.are.equal(out, (run("-h")))
    end)
  end)

  describe("usage errors", function()
    it("reject -e without an argument", function()
      local out, err, code = run("-e")
      assert.are.equal("", out)
      assert.are.equal(1, code)
      assert.is_truthy(has(err, "rlaif: '-e' needs argument"), err)
    end)

    it("reject unknown short and long options", function()
      for _, opt in ipairs({ "-x", "--bogus", "-ix" }) do
        local _, err, code = run(opt)
        assert.are.equal(1, code)
        assert.is_truthy(has(err, "unrecognized option '" .. opt .. "'"), err)
      end
    end)

    it("reject -l without a module", function()
      local _, err, code = run("-l")
      assert.are.equal(1, code)
      assert.is_truthy(has(err, "'-l' needs argument"), err)
    end)
  end)

  describe("subcommands", function()
    it("info prints the runtime configuration", function()
      local out, err, code = run("info", nil, "RLAIF_NUM_THREADS=2")
      assert.are.equal(0, code, err)
      assert.is_truthy(out:match("^rlaif %d+%.%d+%.%d+\n"), out)
      assert.is_truthy(has(out, "BLIS "), out)
      assert.is_truthy(has(out, "kernel configuration: "), out)
      assert.is_truthy(has(out, "threads: 2\n"), out)
    end)

    it("info rejects arguments with status 2", function()
      local _, err, code = run("info extra")
      assert.are.equal(2, code)
      assert.is_truthy(has(err, "unexpected argument 'extra'"), err)
    end)

    it("unknown names fail with the list of commands", function()
      local out, err, code = run("nosuchcmd")
      assert.are.equal("", out)
      assert.are.equal(1, code)
      assert.is_truthy(has(err, "rlaif: 'nosuchcmd' is neither a script nor a command"), err)
      assert.is_truthy(err:match("available commands: [^\n]*info"), err)
    end)

    it("are found on package.path, get their arguments and return the status", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. q(dir .. "/rlaif/cli")))
      spit(dir .. "/rlaif/cli/spec_exit.lua", [[
        return function(args)
          io.write(#args, ":", table.concat(args, ","), ":", arg[0], "\n")
          return tonumber(args[1])
        end
      ]])
      local out, err, code = run("spec_exit 7 x", nil, "LUA_PATH=" .. q(dir .. "/?.lua;;"))
      os.execute("rm -rf " .. q(dir))
      assert.are.equal("", err)
      assert.are.equal("2:7,x:spec_exit\n", out)
      assert.are.equal(7, code)
    end)

    it("yield to an existing file of the same name", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. q(dir)))
      spit(dir .. "/info", "print('the file, not the command')")
      local out, err, code = run("info", nil, "cd " .. q(dir) .. " &&")
      os.execute("rm -rf " .. q(dir))
      assert.are.equal("the file, not the command\n", out)
      assert.are.equal("", err)
      assert.are.equal(0, code)
    end)
  end)

  describe("subcommands check their flags and the environment", function()
    local FAKE = "label --data x.jsonl --out y.jsonl --client tests/spec/support/fake_client.lua "
    for _, case in ipairs {
      { FAKE .. "--shots -3", 'rlaif label: option --shots must be an integer >= 0, got "-3"' },
      { FAKE .. "--limit -1", 'rlaif label: option --limit must be an integer >= 1, got "-1"' },
      { FAKE .. "--limit 2.5", 'rlaif label: option --limit must be an integer >= 1, got "2.5"' },
      { FAKE .. "--temperature hot", 'rlaif label: option --temperature must be a number >= 0, got "hot"' },
      { FAKE .. "--api gpt", 'rlaif label: option --api must be one of "openai-chat", "openai-completions", ' ..
        '"vllm", "llamacpp", "ollama", "tgi", "gemini", "anthropic", "local", got "gpt"' },
      { FAKE .. "--shot 2", "rlaif label: unknown option --shot (did you mean --shots?)" },
      { "tokenize --tokenizer t.json --encoding cl200k", 'rlaif tokenize: option --encoding must be one of ' ..
        '"r50k_base", "gpt2", "p50k_base", "cl100k_base", "o200k_base", got "cl200k"' },
      { "tokenize --tokenizer t.json --count --decode", "rlaif tokenize: --count and --decode exclude each other" },
      { "info --verbose", "rlaif info: unknown option --verbose" },
    } do
      it(case[1]:gsub("^label %-%-data .- %-%-client %S+ ", "label ... "), function()
        local out, err, code = run(case[1])
        assert.are.equal("", out)
        assert.are.equal(2, code)
        assert.are.equal(case[2], err:match("^[^\n]*"))
      end)
    end

    it("label --help lists every API, the local backend included", function()
      local out, _, code = run("label --help")
      assert.are.equal(0, code)
      assert.is_truthy(out:find("anthropic | local", 1, true), out)
    end)

    it("refuse an RLAIF_NUM_THREADS that is not a thread count, --version included", function()
      for _, v in ipairs { "abc", "0", "-2", "3x", "1025", "99999" } do
        for _, cmd in ipairs { "info", "--version", "-e 'print(1)'" } do
          local out, err, code = run(cmd, nil, "RLAIF_NUM_THREADS=" .. v)
          assert.are.equal(1, code)
          assert.are.equal("", out)
          assert.are.equal('rlaif: RLAIF_NUM_THREADS must be an integer from 1 to 1024, got "' .. v .. '"\n', err)
        end
      end
      -- a host's require "rlaif" (a stock lua5.4 here, with the ASan runtime when the module is the ASan one)
      -- refuses it the same way
      local pre = helper.asan_preload and ("LD_PRELOAD=" .. q(helper.asan_preload) .. " ") or ""
      local p = io.popen(string.format("cd %s && %sRLAIF_NUM_THREADS=abc LUA_PATH=%s LUA_CPATH=%s lua5.4 -e " ..
        "'print(pcall(require, \"rlaif\"))' 2>&1", ROOT, pre, q(package.path), q(package.cpath)))
      local s = p:read("a")
      p:close()
      assert.are.equal('false\trequire "rlaif": RLAIF_NUM_THREADS must be an integer from 1 to 1024, got "abc"\n', s)
      local out, _, code = run("info", nil, "RLAIF_NUM_THREADS=' 2 '")
      assert.are.equal(0, code)
      assert.is_truthy(has(out, "threads: 2\n"), out)
      out, _, code = run("--version", nil, "RLAIF_NUM_THREADS=1024")
      assert.are.equal(0, code)
      assert.is_truthy(has(out, "threads: 1024\n"), out)
    end)
  end)

  describe("SIGINT", function()
    local function interrupt(code)
      local err = os.tmpname()
      local cmd = string.format(
        "%s -e %s 2>%s & pid=$!; sleep 0.5; kill -INT $pid; wait $pid; exit $?",
        RLAIF, q(code), err)
      local _, _, status = os.execute(cmd)
      local text = slurp(err)
      os.remove(err)
      return text, status
    end

    it("stops a Lua loop with 'interrupted!' and exit 1", function()
      local err, status = interrupt("while true do end")
      assert.are.equal(1, status)
      assert.is_truthy(has(err, "interrupted!"), err)
      assert.is_truthy(has(err, "stack traceback:"), err)
    end)

    it("stops a loop of C matmuls", function()
      local err, status = interrupt(
        "local t = require('rlaif').tensor " ..
        "for i = 1, 1e9 do t.ones({512, 512}):matmul(t.ones({512, 512})) end")
      assert.are.equal(1, status)
      assert.is_truthy(has(err, "interrupted"), err)
    end)
  end)
end)
