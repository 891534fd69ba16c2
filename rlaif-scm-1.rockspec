-- rlaif-scm-1.rockspec -- the Lua module for luarocks:
--
--   luarocks --lua-version 5.4 make              (from the checkout; Debian's luarocks)
--   luarocks --lua-version 5.4 --tree DIR make   (into a tree of your own)
--
-- It builds rlaif.core (build/rlaif/core.so) with the project's Makefile (the
-- `rock` target) and installs it, the Lua files and the prompt templates (the
-- `rock-install` target: the templates go to rlaif/prompts/ beside the Lua
-- files, where rlaif.prompts finds them). The C libraries it links are Debian
-- packages (scripts/install-deps.sh installs them); luarocks only checks that
-- their libraries are there. For the C API (librlaif.so, headers, pkg-config)
-- and the `rlaif` executable, use `make install` instead.
rockspec_format = "3.0"
package = "rlaif"
version = "scm-1"
source = {
  url = "git+file:///dev/null", -- luarocks make builds the checkout it runs in; there is no remote yet
}
description = {
  summary = "Reinforcement Learning from AI Feedback: a C toolkit with embedded Lua 5.4",
  detailed = [[
Float32 tensors on BLIS, an exact byte-level BPE tokenizer, an LLM client for
every common server, GPT-2 and Llama-family models with SFT and reward-model
training, and the AI preference labeler of Lee et al. (2023).]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  CURL = { library = "curl" },
  CJSON = { library = "cjson" },
  SQLITE = { library = "sqlite3" },
  PCRE2 = { library = "pcre2-8" },
  UTF8PROC = { library = "utf8proc" },
  ZLIB = { library = "z" },
  BLIS = { library = "blis" },
}
build = {
  type = "make",
  build_target = "rock",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_target = "rock-install",
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
}
