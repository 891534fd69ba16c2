-- tests/spec/tensor_numeric_spec.lua -- rlaif.tensor against numpy goldens.
--
-- The fixtures are written by scripts/gen_tensor_fixtures.py (numpy, float64
-- references from float32 inputs) and committed: this spec only reads
-- tests/fixtures/{tensor_ops.safetensors,tensor_ops.lua,dtypes.safetensors}, so
-- it runs where numpy is absent. The tensors are read with rlaif.tensor.load,
-- which tests the loader against an independent writer as a side effect.
--
-- Each manifest case becomes one `it`: apply the views to the inputs, call the
-- op, and compare every output element with
--   |got - expected| <= tol * max(1, |expected|)
-- (an absolute bound near zero, a relative one for large values; tol = 0 for
-- indices). A failure names the case, the first mismatching index, both values,
-- and the max abs/rel errors. The last block checks that the check itself can
-- fail: wrong ops, wrong dims and perturbed values must be rejected.
-- luacheck: std +busted

local T = require("rlaif").tensor

local DIR = "tests/fixtures/"

-- ---- comparing tensors ----

local flatten = require("spec.helper").flatten

local function shape_str(s)
  return "(" .. table.concat(s, ",") .. ")"
end

-- 1-based multi-index of the flat (1-based) position k in a row-major shape.
local function unravel(shape, k)
  local idx, rem = {}, k - 1
  for d = #shape, 1, -1 do
    idx[d] = rem % shape[d] + 1
    rem = rem // shape[d]
  end
  return "[" .. table.concat(idx, ",") .. "]"
end

local function is_nan(x) return x ~= x end

-- compare(got, expected, tol [, exact]) -> true | false, message.
-- exact: bitwise agreement up to NaN payloads (the sign of zero counts).
local function compare(got, expected, tol, exact)
  if not T.is_tensor(got) then
    return false, "result is a " .. type(got) .. ", not a tensor"
  end
  local gs, es = got:shape(), expected:shape()
  if shape_str(gs) ~= shape_str(es) then
    return false, "shape " .. shape_str(gs) .. ", expected " .. shape_str(es)
  end
  local g, e = flatten(got), flatten(expected)
  if #g ~= #e or #g ~= expected:numel() then
    return false, ("totable gave %d values, expected %d"):format(#g, #e)
  end
  local bad, first, max_abs, max_rel = 0, nil, 0, 0
  for k = 1, #e do
    local gk, ek = g[k], e[k]
    local ok
    if is_nan(ek) then
      ok = is_nan(gk)
    elseif ek == math.huge or ek == -math.huge or exact then
      ok = gk == ek and (ek ~= 0 or 1 / gk == 1 / ek)
    else
      local err = math.abs(gk - ek)
      ok = err <= tol * math.max(1, math.abs(ek)) -- false for a NaN got
      if err == err then
        max_abs = math.max(max_abs, err)
        if ek ~= 0 then max_rel = math.max(max_rel, err / math.abs(ek)) end
      else
        max_abs = math.huge
      end
    end
    if not ok then
      bad = bad + 1
      first = first or k
    end
  end
  if bad == 0 then return true end
  return false, ("first mismatch at %s (flat %d): got %.9g, expected %.9g; %d of %d elements off; "
    .. "max abs err %.3g, max rel err %.3g, tol %g%s"):format(unravel(es, first), first, g[first], e[first],
    bad, #e, max_abs, max_rel, tol, exact and " (exact)" or "")
end

-- ---- running a manifest case ----

local OPERATORS = {
  ["+"] = function(a, b) return a + b end,
  ["-"] = function(a, b) return a - b end,
  ["*"] = function(a, b) return a * b end,
  ["/"] = function(a, b) return a / b end,
  ["^"] = function(a, b) return a ^ b end,
  unm = function(a) return -a end,
}

local fixtures -- name -> tensor, loaded on first use
local fixture_names
local function tensors()
  if not fixtures then fixtures, fixture_names = T.load(DIR .. "tensor_ops.safetensors") end
  return fixtures
end

local function fixture(name)
  local t = tensors()[name]
  assert(t, "fixture tensor '" .. tostring(name) .. "' is missing from tensor_ops.safetensors")
  return t
end

local function apply_views(t, views)
  for _, v in ipairs(views or {}) do
    local method = v[1]
    t = t[method](t, table.unpack(v, 2))
  end
  return t
end

-- run(case) -> true | false, message. The case may be a modified copy (see the
-- negative controls); nothing here asserts, so a failure is always reported.
local function run(c)
  local vals, n, bases = {}, 0, {}
  for i, input in ipairs(c.inputs) do
    n = n + 1
    if type(input) == "string" then
      bases[i] = fixture(input)
      vals[n] = apply_views(bases[i], c.views and c.views[i])
    elseif input ~= false then
      vals[n] = input -- a number
    end
  end
  for _, i in ipairs(c.noncontig or {}) do
    if vals[i]:is_contiguous() then
      return false, ("input %d should be a non-contiguous view after %s"):format(i, c.name)
    end
  end
  local args = c.args or { n = 0 }
  for k = 1, args.n do vals[n + k] = args[k] end
  n = n + args.n

  local expected = {}
  for k, name in ipairs(c.expected) do expected[k] = fixture(name) end
  local results
  if OPERATORS[c.op] then
    results = table.pack(pcall(OPERATORS[c.op], table.unpack(vals, 1, n)))
  elseif c.op == "matmul_out" then
    -- into a preallocated out, prefilled with garbage that must be overwritten
    local out = T.full(expected[1]:shape(), 12345)
    results = table.pack(pcall(T.matmul, vals[1], vals[2], out))
    if results[1] and not rawequal(results[2], out) then
      return false, "matmul(a, b, out) did not return out"
    end
  else
    local fn = T[c.op]
    if not fn then return false, "rlaif.tensor has no op '" .. c.op .. "'" end
    results = table.pack(pcall(fn, table.unpack(vals, 1, n)))
  end
  if not results[1] then return false, "raised: " .. tostring(results[2]) end
  if results.n - 1 ~= #expected then
    return false, ("returned %d values, expected %d"):format(results.n - 1, #expected)
  end
  for k = 1, #expected do
    local ok, msg = compare(results[k + 1], expected[k], c.tol)
    if not ok then return false, ("output %d: %s"):format(k, msg) end
  end
  if c.op:sub(-1) == "_" and not rawequal(results[2], vals[1]) then
    return false, "in-place op did not return self"
  end
  if c.base_expected then -- the in-place write went through the view
    local ok, msg = compare(bases[1], fixture(c.base_expected), c.tol)
    if not ok then return false, "base of the in-place view: " .. msg end
  end
  return true
end

-- ---- the specs ----

local cases = dofile(DIR .. "tensor_ops.lua")

describe("rlaif.tensor numeric goldens #unit", function()
  it("the manifest covers every tensor of tensor_ops.safetensors (none dropped)", function()
    -- a manifest cut short would silently run fewer cases: every stored tensor
    -- must belong to a case, and the cases must still be all there
    assert.is_true(#cases >= 286, "only " .. #cases .. " cases in tensor_ops.lua")
    local used = {}
    for _, c in ipairs(cases) do
      for _, name in ipairs(c.inputs) do if type(name) == "string" then used[name] = true end end
      for _, name in ipairs(c.expected) do used[name] = true end
      if c.base_expected then used[c.base_expected] = true end
    end
    tensors()
    for _, name in ipairs(fixture_names) do
      assert.is_true(used[name] == true, "tensor '" .. name .. "' belongs to no case")
    end
  end)

  for _, c in ipairs(cases) do
    it(c.name .. " (" .. c.op .. ")", function()
      local ok, msg = run(c)
      assert(ok, "case " .. c.name .. ": " .. tostring(msg))
    end)
  end
end)

describe("rlaif.tensor.load dtype conversions #unit", function()
  local loaded, names = T.load(DIR .. "dtypes.safetensors")

  it("returns one name per tensor", function()
    local keys = 0
    for _ in pairs(loaded) do keys = keys + 1 end
    assert.are.equal(keys, #names)
    for _, name in ipairs(names) do assert.is_true(T.is_tensor(loaded[name]), name) end
  end)

  it("covers F16, BF16, F64 and F32", function()
    local seen = {}
    for _, name in ipairs(names) do seen[name:match("^(%w+)/")] = true end
    for _, prefix in ipairs { "f16", "bf16", "f64", "f32" } do
      assert.is_true(seen[prefix] == true, "no " .. prefix .. "/ tensors in dtypes.safetensors")
    end
  end)

  for _, name in ipairs(names) do
    if not name:match("%.expected$") then
      it("converts " .. name .. " exactly like numpy", function()
        local want = loaded[name .. ".expected"]
        assert(want, "no " .. name .. ".expected")
        local ok, msg = compare(loaded[name], want, 0, true)
        assert(ok, name .. ": " .. tostring(msg))
      end)
    end
  end

  it("round-trips specials (inf, -0, nan, subnormals) through save/load", function()
    local path = os.tmpname()
    local src = loaded["f16/bits.expected"]
    local ok, err = pcall(T.save, path, { x = src, y = loaded["f32/values"] })
    local back = ok and T.load(path)
    os.remove(path)
    assert(ok, tostring(err))
    local okx, msgx = compare(back.x, src, 0, true)
    assert(okx, "x: " .. tostring(msgx))
    local oky, msgy = compare(back.y, loaded["f32/values"], 0, true)
    assert(oky, "y: " .. tostring(msgy))
  end)
end)

-- The goldens are small, so they only reach the serial kernels (rows are spread
-- over threads from 32768 elements on). Large inputs must give bit-identical
-- results with 1 and 3 threads.
describe("rlaif.tensor threaded kernels #unit", function()
  local rlaif = require "rlaif"
  local x = T.randn({ 48, 1000 }, 11)
  local w = T.randn({ 1000 }, 12)
  local ops = {
    exp = function() return x:exp() end,
    add_row = function() return x + w end,
    add_transposed = function() return x:transpose() + T.randn({ 1000, 1 }, 13) end,
    gelu_narrowed = function() return x:narrow(2, 2, 900):gelu("tanh") end,
    sum_dim1 = function() return x:sum(1) end,
    var_dim2 = function() return x:var(2) end,
    softmax_dim1 = function() return x:softmax(1) end,
    log_softmax_dim2 = function() return x:log_softmax(2) end,
    layer_norm = function() return x:layer_norm(w, w) end,
    rms_norm_transposed = function() return x:transpose():contiguous():transpose():rms_norm(w) end,
    matmul = function() return x:narrow(2, 1, 64):transpose():matmul(x) end,
  }
  local names = {}
  for name in pairs(ops) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    it(name .. " gives the same result with 1 and 3 threads", function()
      local saved = rlaif.get_threads()
      rlaif.set_threads(1)
      local ok1, serial = pcall(ops[name])
      rlaif.set_threads(3)
      local ok3, threaded = pcall(ops[name])
      rlaif.set_threads(saved)
      assert(ok1 and ok3, tostring(ok1 and threaded or serial))
      local ok, msg = compare(threaded, serial, 0, true)
      assert(ok, name .. " (3 threads vs 1): " .. tostring(msg))
    end)
  end
end)

describe("the golden check itself #unit", function()
  local by_name = {}
  for _, c in ipairs(cases) do by_name[c.name] = c end

  -- a copy of a named case with some fields replaced
  local function variant(name, changes)
    local c = assert(by_name[name], "no case " .. name)
    local v = {}
    for k, x in pairs(c) do v[k] = x end
    for k, x in pairs(changes) do v[k] = x end
    return v
  end

  local function must_fail(c)
    local ok, msg = run(c)
    assert(not ok, "a wrong computation passed: " .. c.name)
    assert.is_string(msg)
  end

  it("loads tensor_ops.safetensors with one name per tensor", function()
    local keys = 0
    for _ in pairs(tensors()) do keys = keys + 1 end
    assert.are.equal(keys, #fixture_names)
    assert.is_true(keys > 400, "only " .. keys .. " tensors")
  end)

  it("covers every op with many cases", function()
    local ops = {}
    for _, c in ipairs(cases) do ops[c.op] = (ops[c.op] or 0) + 1 end
    for op in ([[add sub mul div pow maximum minimum + - * / ^ unm neg exp log sqrt rsqrt tanh sigmoid relu
        gelu abs square clamp contiguous clone add_ sub_ mul_ div_ exp_ relu_ sum mean max min argmax argmin
        logsumexp var std softmax log_softmax layer_norm rms_norm matmul matmul_out]]):gmatch("%S+") do
      assert.is_true((ops[op] or 0) > 0, "no case for " .. op)
    end
    assert.is_true(#cases >= 250, "only " .. #cases .. " cases")
  end)

  it("rejects a wrong op, dim, mode or correction", function()
    must_fail(variant("gelu.erf", { op = "gelu", args = { "tanh", n = 1 } }))   -- tanh form vs erf goldens
    must_fail(variant("sigmoid.x", { op = "tanh" }))
    must_fail(variant("var.dim3_c0", { args = { 3, false, 1, n = 3 } }))       -- unbiased vs biased
    must_fail(variant("softmax.dim1", { args = { 2, n = 1 } }))                -- same shape, other dim
    must_fail(variant("argmax.dim2", { op = "argmin" }))
    must_fail(variant("sum.dim2", { args = { 2, true, n = 2 } }))              -- keepdim changes the shape
    must_fail(variant("sub.same_34", { op = "add" }))
    must_fail(variant("matmul.3d_bT", { views = {} }))                         -- forgetting the transpose
    must_fail(variant("layer_norm.wb", { inputs = { "norm.x", "norm.w", false } }))
    must_fail(variant("logsumexp.big_dim1", { op = "max" }))
    must_fail(variant("max.dim2", { expected = { "max.dim2.out" } }))          -- the indices are checked too
  end)

  it("rejects a result off by a few tolerances in one element", function()
    local want = fixture("exp.x.out")
    local got = want:clone()
    local v = got[2][3]
    got[2][3] = v + 3 * 2e-6 * math.max(1, math.abs(v))
    assert.is_true(compare(want:clone(), want, 2e-6))
    local ok, msg = compare(got, want, 2e-6)
    assert.is_false(ok)
    assert.matches("first mismatch at %[2,3%]", msg)
    got[2][3] = 0 / 0
    assert.is_false((compare(got, want, 2e-6)))
  end)
end)
