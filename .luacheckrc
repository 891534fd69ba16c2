-- luacheck configuration (luacheck runs under any Lua; the code targets 5.4)
std = "lua54"
max_line_length = 120
files["tests/spec"] = { std = "+busted" }
files[".busted"] = { globals = {} }
exclude_files = { "build/**" }
-- a sandboxed script: the host (examples/host/game.c) calls game.*, sets config; rlaif is preloaded
files["examples/host/game.lua"] = { globals = { "game" }, read_globals = { "config", "rlaif" } }
