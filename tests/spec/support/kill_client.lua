-- tests/spec/support/kill_client.lua -- `rlaif label --client` file: the fake
-- client of fake_client.lua (the same answers, so the same labels), that kills
-- its own process with SIGKILL (kill -9: no handler, no flush, no cleanup) when
-- it is asked for request KILL_AFTER + 1 -- on every process, or only on the
-- mpirun rank KILL_RANK. Without KILL_AFTER it never kills.
local fake = dofile("tests/spec/support/fake_llm.lua")
local after = tonumber(os.getenv("KILL_AFTER") or "")
local rank = os.getenv("KILL_RANK")
if rank and rank ~= (os.getenv("OMPI_COMM_WORLD_RANK") or "0") then after = nil end
local n = 0
return fake.new { bias = 0.4, answer = function()
  n = n + 1
  if after and n > after then
    local f = assert(io.open("/proc/self/stat", "rb"))
    local pid = assert(f:read("a"):match("^(%d+)"))
    f:close()
    os.execute("kill -9 " .. pid)
    while true do end   -- the signal is on its way
  end
end }
