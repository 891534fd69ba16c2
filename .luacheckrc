-- luacheck configuration (luacheck runs under any Lua; the code targets 5.4)
std = "lua54"
max_line_length = 120
files["tests/spec"] = { std = "+busted" }
files[".busted"] = { globals = {} }
exclude_files = { "build/**" }
