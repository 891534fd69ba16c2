-- tests/spec/runtime_spec.lua -- the runtime around the tensors: BLIS kernel
-- selection and threads, and an installed prefix finding its own Lua files.
local rlaif = require "rlaif"
local helper = require "spec.helper"

local ROOT = assert(io.popen("pwd")):read("l")

local function capture(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

describe("rlaif runtime #unit", function()
  it("reports the BLIS kernels and threads, and changes the thread count", function()
    local info = rlaif.info()
    assert.is_string(info.blis_arch)
    assert.matches("^0%.9", info.blis_version)
    local before = rlaif.get_threads()
    rlaif.set_threads(1)
    assert.equal(1, rlaif.get_threads())
    assert.equal(1, rlaif.info().threads)
    rlaif.set_threads(before)
    helper.raises(function() rlaif.set_threads(0) end, "set_threads", "from 1 to 1024, got 0")
    helper.raises(function() rlaif.set_threads(1025) end, "set_threads", "from 1 to 1024, got 1025")
  end)

  it("selects skx on AVX-512 CPUs that BLIS 0.9 does not know, else keeps BLIS's choice", function()
    local f = io.open("/proc/cpuinfo")
    local cpuinfo = f and f:read("a") or ""
    if f then f:close() end
    local avx512 = cpuinfo:find("avx512f") and cpuinfo:find("avx512dq") and cpuinfo:find("avx512bw")
      and cpuinfo:find("avx512vl") and cpuinfo:find("avx512cd")
    local vendor = cpuinfo:match("vendor_id%s*:%s*(%S+)")
    local family = tonumber(cpuinfo:match("cpu family%s*:%s*(%d+)") or "0")
    -- BLIS 0.9.0 knows Intel AVX-512 (skx) and AMD up to family 0x19 (zen3)
    local unknown = vendor ~= "GenuineIntel" and (vendor ~= "AuthenticAMD" or family >= 0x1a)
    local out = capture(ROOT .. "/rlaif --version")
    if avx512 and unknown then
      assert.matches("kernel configuration: skx %(selected by rlaif%)", out)
    else
      assert.matches("%(chosen by BLIS or BLIS_ARCH_TYPE%)", out)
      if avx512 then assert.not_matches("generic", out) end
    end
    -- a user's choice stands when it is usable: generic (25) runs everywhere
    out = capture("BLIS_ARCH_TYPE=25 " .. ROOT .. "/rlaif --version")
    assert.matches("kernel configuration: generic %(chosen by BLIS or BLIS_ARCH_TYPE%)", out)
  end)

  it("runs the AVX-512 kernels where the CPU has them, the portable ones with RLAIF_KERNELS=scalar", function()
    local f = io.open("/proc/cpuinfo")
    local cpuinfo = f and f:read("a") or ""
    if f then f:close() end
    local avx512 = cpuinfo:find("avx512f") and cpuinfo:find("avx512dq") and cpuinfo:find("avx512bw")
      and cpuinfo:find("avx512vl") and cpuinfo:find(" fma")
    local probe = "/rlaif -e 'local i = require(\"rlaif\").info(); print(i.kernels, i.kernels_forced, i.kernels_note)'"
    local out, code = capture("env -u RLAIF_KERNELS " .. ROOT .. probe)
    assert.equal(0, code, out)
    assert.equal((avx512 and "avx512" or "scalar") .. "\tfalse\tnil\n", out)
    out = capture("env RLAIF_KERNELS=scalar " .. ROOT .. probe)
    assert.equal("scalar\ttrue\tnil\n", out)
    out = capture("env RLAIF_KERNELS=scalar " .. ROOT .. "/rlaif --version")
    assert.matches("kernels: scalar %(forced by RLAIF_KERNELS=scalar%)", out)
    -- an unknown value is ignored, and says so
    out = capture("env RLAIF_KERNELS=sse9 " .. ROOT .. "/rlaif --version")
    assert.matches("kernels: " .. (avx512 and "avx512" or "scalar") .. " %(chosen for this CPU%)", out)
    assert.matches("note: ignored RLAIF_KERNELS=sse9: expected scalar or auto", out, 1, true)
  end)

  it("ignores a BLIS_ARCH_TYPE that would make BLIS abort, instead of crashing", function()
    -- 13 is ARMSVE, not in an x86-64 build: BLIS itself would abort()
    local out, code = capture("BLIS_ARCH_TYPE=13 " .. ROOT ..
      "/rlaif -e 'local T = require(\"rlaif\").tensor; print(T.ones{2,2}:matmul(T.ones{2,2}):sum():item())'")
    assert.equal(0, code)
    assert.matches("8.0", out)
    out = capture("BLIS_ARCH_TYPE=13 " .. ROOT .. "/rlaif --version")
    assert.matches("note: ignored BLIS_ARCH_TYPE=13", out)
  end)

  it("finds its Lua files from an installed prefix, with no environment set-up", function()
    local prefix = os.tmpname()
    os.remove(prefix)
    local out, code = capture("make -s install PREFIX=" .. prefix)
    assert.equal(0, code, out)
    out, code = capture("cd / && env -u LUA_PATH -u LUA_CPATH " .. prefix ..
      "/bin/rlaif -e 'print(package.searchpath(\"rlaif\", package.path), " ..
      "require(\"rlaif\").tensor.ones{2}:sum():item())'")
    assert.equal(0, code, out)
    assert.equal(prefix .. "/share/lua/5.4/rlaif/init.lua\t2.0\n", out)
    -- the installed prompt templates are found too
    out, code = capture("cd / && env -u LUA_PATH -u LUA_CPATH -u RLAIF_PROMPTS " .. prefix ..
      "/bin/rlaif -e 'print(require(\"rlaif.prompts\").find(\"harmless-base\"))'")
    assert.equal(0, code, out)
    assert.equal(prefix .. "/share/rlaif/prompts/harmless-base.txt\n", out)
    -- and stock lua5.4 loads the installed module
    out, code = capture(("cd / && LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;' " ..
      "LUA_CPATH='%s/lib/lua/5.4/?.so;;' lua5.4 -e 'print(require(\"rlaif\").tensor.arange(3):sum():item())'")
      :format(prefix, prefix, prefix))
    assert.equal(0, code, out)
    assert.equal("3.0\n", out)
    os.execute("rm -rf " .. prefix)
  end)
end)
