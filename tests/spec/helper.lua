-- Spec helper: loaded by busted before the specs (see .busted). Makes sure the
-- module under test is the one in ./build (or ./build/asan), and offers small
-- shared utilities. Sets no globals other than through busted.
local M = {}

-- Under `make test-lua-asan` the ASan runtime is preloaded into lua5.4 only to
-- host the instrumented module; child processes (./rlaif, node servers) are not
-- instrumented and must not inherit it (libp11-kit's exit handlers deadlock
-- under a preloaded libasan).
-- M.asan_preload keeps the value for a child that loads the same module (a stock lua5.4).
if (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) then
  M.asan_preload = os.getenv("LD_PRELOAD")
  require("rlaif.core").setenv("LD_PRELOAD", nil)
end

--- Absolute path of the repository root (the specs run from it).
M.root = os.getenv("PWD") or "."

--- Path of the shared data directory, or nil when it is absent.
function M.shared(path)
  local p = M.root .. "/../shared/" .. path
  local f = io.open(p, "rb")
  if f then f:close() return p end
  return nil
end

--- A fresh temporary file name; removed by the caller.
function M.tmpname(suffix)
  return os.tmpname() .. (suffix or "")
end

--- The contents of file p, or nil when it cannot be opened.
function M.read_file(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- wait_port(port_file) -> the port a loopback test server wrote to port_file,
--- or nil when none appeared within 10 s.
function M.wait_port(port_file)
  for _ = 1, 200 do
    local port = tonumber(M.read_file(port_file) or "")
    if port then return port end
    os.execute("sleep 0.05")
  end
  return nil
end

--- The elements of a tensor (any strides) in row-major order, as a flat array.
--- Uses totable() only, so a bug in contiguous/reshape cannot hide a mismatch.
function M.flatten(t)
  local out = {}
  local function walk(v)
    if type(v) == "table" then
      for _, x in ipairs(v) do walk(x) end
    else
      out[#out + 1] = v
    end
  end
  walk(t:totable())
  return out
end

--- Call fn, which must raise; the message must contain every plain string
--- given (the operation and the bad value), so that an unrelated runtime error
--- inside the code under test cannot pass for the intended rejection, as it
--- would for a bare assert.has_error(fn). Returns the message.
function M.raises(fn, ...)
  local ok, err = pcall(fn)
  if ok then error("expected an error, got none", 2) end
  local msg = type(err) == "table" and tostring(err.message or err) or tostring(err)
  for i = 1, select("#", ...) do
    local s = select(i, ...)
    if not msg:find(s, 1, true) then error(string.format("the error %q does not mention %q", msg, s), 2) end
  end
  return msg
end

package.loaded["spec.helper"] = M
return M
