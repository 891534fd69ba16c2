-- tests/spec/support/servers.lua -- start the loopback fake LLM servers of
-- tests/servers (plain Node) from a spec, and stop them again.
--
--   local servers = dofile("tests/spec/support/servers.lua")
--   local s = servers.labeler{delay = 20}   -- tests/servers/fake_labeler.mjs
--   ... s.url .. "/v1" ...; s:count() (requests served); s:stop()
--
-- Returns nil when node is not installed (the caller skips).
local helper = require "spec.helper"

local M = {}

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

M.has_node = os.execute("command -v node >/dev/null 2>&1") == true

local Server = {}
Server.__index = Server

--- labeler{delay = ms, bias =, scale =} -> server | nil
function M.labeler(o)
  if not M.has_node then return nil end
  o = o or {}
  local tmp = helper.tmpname("_srv")
  local s = setmetatable({ tmp = tmp, port_file = tmp .. ".port", pid_file = tmp .. ".pid",
    count_file = tmp .. ".count" }, Server)
  -- env -u LD_PRELOAD: the ASan run preloads the sanitizer runtime into lua, not node
  os.execute(string.format("env -u LD_PRELOAD node tests/servers/fake_labeler.mjs --port-file %s --delay %d " ..
    "--bias %s --scale %s --ttl 300 --count-file %s >/dev/null 2>&1 & echo $! > %s", sh(s.port_file),
    o.delay or 0, o.bias or 0, o.scale or 0.5, sh(s.count_file), sh(s.pid_file)))
  s.port = assert(helper.wait_port(s.port_file), "fake server did not start")
  s.pid = tonumber(helper.read_file(s.pid_file) or "")
  s.url = "http://127.0.0.1:" .. s.port
  return s
end

--- s:stop() -> the number of requests the server answered (any status)
function Server:stop()
  local n
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    for _ = 1, 100 do
      n = tonumber(helper.read_file(self.count_file) or "")
      if n then break end
      os.execute("sleep 0.02")
    end
    self.pid = nil
  end
  for _, p in ipairs { self.port_file, self.pid_file, self.count_file, self.tmp } do os.remove(p) end
  return n
end

--- A port on 127.0.0.1 where nothing listens (connections are refused).
function M.dead_port()
  local p = io.popen("env -u LD_PRELOAD node -e " .. sh(
    "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"))
  local port = tonumber(p:read("a"))
  p:close()
  return port
end

return M
