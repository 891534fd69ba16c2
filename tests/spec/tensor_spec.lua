-- rlaif.tensor through the Lua API: construction, inspection, views, math,
-- lifetime and, above all, that bad input raises a clear error (never a crash).
local rlaif = require "rlaif"
local helper = require "spec.helper"
local T = rlaif.tensor

local function close(a, b, tol)
  return math.abs(a - b) <= (tol or 1e-6) * (1 + math.abs(b))
end

describe("rlaif.tensor #unit", function()
  describe("construction and inspection", function()
    it("builds from nested tables", function()
      local t = T.new { { 1, 2, 3 }, { 4, 5, 6 } }
      assert.same({ 2, 3 }, t:shape())
      assert.equal(6, t:numel())
      assert.equal(2, t:dim())
      assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, t:totable())
      assert.equal(2, #t)
      assert.same({ 4, 5, 6 }, t[2]:totable())
      assert.equal(6, t[2][3])
      assert.equal(6, t[-1][-1])
      assert.equal(3.5, T.new(3.5):item())
      assert.equal(0, T.new(3.5):dim())
    end)

    it("makes filled, ranged and random tensors", function()
      assert.same({ { 0, 0 } }, T.zeros { 1, 2 }:totable())
      assert.same({ 1, 1, 1 }, T.ones { 3 }:totable())
      assert.same({ { 7, 7 } }, T.full({ 1, 2 }, 7):totable())
      assert.same({ 0, 1, 2, 3 }, T.arange(4):totable())
      assert.same({ 2, 4, 6 }, T.arange(2, 7, 2):totable())
      local a, b, c = T.randn({ 1000 }, 7), T.randn({ 1000 }, 7), T.randn({ 1000 }, 8)
      assert.same(a:totable(), b:totable())
      assert.are_not.same(a:totable(), c:totable())
      assert.is_true(math.abs(a:mean():item()) < 0.1)
      local u = T.rand({ 10000 }, 1)
      assert.is_true(u:min():item() >= 0 and u:max():item() < 1)
      assert.is_true(close(u:mean():item(), 0.5, 0.02))
    end)

    it("draws fresh numbers without a seed, from the generator rlaif.manual_seed sets", function()
      assert.are_not.same(T.rand({ 8 }):totable(), T.rand({ 8 }):totable())
      assert.are_not.same(T.randn({ 8 }):totable(), T.randn({ 8 }):totable())
      rlaif.manual_seed(42)
      local a, b, c = T.rand({ 8 }), T.randn({ 8 }), T.rand({ 8 })
      rlaif.manual_seed(42)
      assert.same(a:totable(), T.rand({ 8 }):totable())
      assert.same(b:totable(), T.randn({ 8 }):totable())
      assert.same(c:totable(), T.rand({ 8 }):totable())
      assert.are_not.same(a:totable(), c:totable())
      assert.same(T.rand({ 8 }, 3):totable(), T.rand({ 8 }, 3):totable())   -- an explicit seed is unaffected
      assert.has_error(function() rlaif.manual_seed("x") end, "manual_seed: the seed must be an integer, got string")
    end)

    it("prints like PyTorch", function()
      assert.equal("tensor([[0., 1., 2.],\n        [3., 4., 5.]])", tostring(T.arange(6):reshape { 2, 3 }))
      assert.equal("tensor([0.5000, 1.2500])", tostring(T.new { 0.5, 1.25 }))
      assert.equal("tensor(3.)", tostring(T.new(3)))
      assert.equal("tensor([], size=(0, 3))", tostring(T.zeros { 0, 3 }))
      assert.equal("tensor([   0.,    1.,    2., ..., 1997., 1998., 1999.])", tostring(T.arange(2000)))
      assert.equal("tensor([1.0000e-05, 1.0000e+00])", tostring(T.new { 1e-5, 1 }))
    end)
  end)

  describe("views", function()
    it("share storage and see writes", function()
      local t = T.arange(12):reshape { 3, 4 }
      local v = t:transpose(1, 2)
      assert.same({ 4, 3 }, v:shape())
      assert.is_false(v:is_contiguous())
      t[2]:fill_(-1)
      assert.equal(-1, v[1][2])
      v[4] = 100 -- writes column 4 of t
      assert.equal(100, t[3][4])
      assert.same({ 1, 2 }, t:narrow(2, 2, 2)[1]:totable())
      assert.same({ 3, 2 }, T.arange(6):reshape { 2, 3 }:permute { 2, 1 }:shape())
      assert.same({ 5, 6 }, T.arange(8):slice(1, -3, -2):totable())
      assert.same({ 2, 3 }, T.arange(6):view { 2, -1 }:shape())
      assert.same({ 2, 3 }, T.new { 1, 2, 3 }:expand { 2, 3 }:shape())
      local c = v:contiguous()
      assert.is_true(c:is_contiguous())
      assert.same(v:totable(), c:totable())
      local k = t:clone()
      k:fill_(0)
      assert.are_not.equal(0, t[3][4])
    end)

    it("keeps data alive after the base is freed", function()
      local t = T.arange(4)
      local v = t:narrow(1, 2, 2)
      t:free()
      collectgarbage()
      assert.same({ 1, 2 }, v:totable())
    end)
  end)

  describe("math", function()
    it("broadcasts and uses operators", function()
      local a = T.new { { 1, 2, 3 }, { 4, 5, 6 } }
      local b = T.new { 10, 20, 30 }
      assert.same({ { 11, 22, 33 }, { 14, 25, 36 } }, (a + b):totable())
      assert.same({ { 2, 4, 6 }, { 8, 10, 12 } }, (a * 2):totable())
      assert.same({ { 9, 8, 7 }, { 6, 5, 4 } }, (10 - a):totable())
      assert.same({ { -1, -2, -3 }, { -4, -5, -6 } }, (-a):totable())
      assert.same({ { 1, 4, 9 }, { 16, 25, 36 } }, (a ^ 2):totable())
      assert.same({ 0.5, 0.25 }, (1 / T.new { 2, 4 }):totable())
      a:add_(1)
      assert.same({ 2, 3, 4 }, a[1]:totable())
      assert.same({ 0, 0, 1 }, T.new { -1, 0, 1 }:relu():totable())
      assert.same({ 0, 0.5, 1 }, T.new { -3, 0.5, 3 }:clamp(0, 1):totable())
      assert.same({ 0, 0.5, 3 }, T.new { -3, 0.5, 3 }:clamp(0):totable())
    end)

    it("reduces along dims (1-based, negative from the end)", function()
      local t = T.new { { 1, 5, 3 }, { 4, 2, 6 } }
      assert.equal(21, t:sum():item())
      assert.same({ 5, 7, 9 }, t:sum(1):totable())
      assert.same({ { 9 }, { 12 } }, t:sum(-1, true):totable())
      local v, i = t:max(2)
      assert.same({ 5, 6 }, v:totable())
      assert.same({ 2, 3 }, i:totable())
      assert.same({ 1, 2 }, t:argmin(2):totable())
      assert.equal(6, t:argmax():item())
      assert.is_true(close(t:var():item(), 3.5))
      assert.is_true(close(t:var(nil, false, 0):item(), 35 / 12))
      assert.is_true(close(T.new { 1000, 1000 }:logsumexp():item(), 1000 + math.log(2)))
      local s = t:softmax(2)
      assert.is_true(close(s[1]:sum():item(), 1))
      assert.is_true(close(t:log_softmax():exp()[2]:sum():item(), 1))
    end)

    it("multiplies matrices through BLIS, also strided views", function()
      local a = T.new { { 1, 2 }, { 3, 4 }, { 5, 6 } }
      assert.same({ { 5, 11, 17 }, { 11, 25, 39 }, { 17, 39, 61 } }, a:matmul(a:T()):totable())
      assert.same({ { 35, 44 }, { 44, 56 } }, T.matmul(a:T(), a):totable())
      local out = T.zeros { 3, 3 }
      assert.equal(out, a:matmul(a:T(), out))
      assert.equal(61, out[3][3])
      local batch = T.arange(12):reshape { 2, 3, 2 }
      assert.same({ 2, 3, 3 }, batch:matmul(a:T()):shape())
      assert.same({ 3 }, a:matmul(T.new { 1, 1 }):shape())
      assert.same({ 2 }, T.new { 1, 1, 1 }:matmul(a):shape())
    end)

    it("normalises rows", function()
      local x = T.randn({ 4, 16 }, 3)
      local y = x:layer_norm()
      assert.is_true(math.abs(y[2]:mean():item()) < 1e-5)
      assert.is_true(close(y[2]:var(nil, false, 0):item(), 1, 1e-3))
      local r = x:rms_norm(T.full({ 16 }, 2))
      assert.is_true(close((r[1] * r[1]):mean():item(), 4, 1e-3))
    end)
  end)

  describe("bad input raises a clear error", function()
    it("on negative or malformed shapes", function()
      assert.has_error(function() T.zeros { 2, -3 } end, "bad argument #1 to 'zeros' (shape entry 2 is negative (-3))")
      assert.has_error(function() T.zeros { 1, 1, 1, 1, 1 } end,
        "bad argument #1 to 'zeros' (a shape has at most 4 dims)")
      assert.has_error(function() T.ones { 2.5 } end, "bad argument #1 to 'ones' (shape entry 1 is not an integer)")
      helper.raises(function() T.zeros "2" end, "'zeros'", "got string")
      assert.has_error(function() T.new { { 1, 2 }, { 3 } } end,
        "tensor.new: ragged table: [2] has 1 elements, expected 2")
      assert.has_error(function() T.new { 1, "x" } end, "tensor.new: element [2] is a string, expected a number")
      assert.has_error(function() T.arange(4):reshape { 3, -1 } end,
        "tensor.reshape: cannot infer -1 in [3,-1] for 4 elements")
    end)

    -- issue 15, item 3: sizes and indices at the integer edges
    it("on sizes and indices at the 64-bit edges", function()
      local t = T.arange(6):reshape { 2, 3 }
      -- 2^32 + 2 used to become dim 2 after an int cast
      assert.has_error(function() t:permute { 2 ^ 32 + 2 // 1, 1 } end,
        "tensor.permute: the dims must be a permutation of 1..2")
      assert.has_error(function() t:permute { -(2 ^ 32) // 1 + 1, 1 } end,
        "tensor.permute: the dims must be a permutation of 1..2")
      local huge = 2 ^ 32 // 1
      assert.has_error(function() T.ones { 1 }:expand { huge, huge, huge } end,
        "tensor.expand: shape [4294967296,4294967296,4294967296] is too large (more than 2^60 elements)")
      assert.has_error(function() t:narrow(2, 3, math.maxinteger) end,
        "tensor.narrow: 9223372036854775807 elements from element 3 are outside dim 2 of size 3")
      assert.has_error(function() t:narrow(2, math.maxinteger, 1) end,
        "tensor.narrow: 1 elements from element 9223372036854775807 are outside dim 2 of size 3")
      assert.has_error(function() t:slice(2, 2, math.maxinteger) end)
      assert.has_error(function() return t[math.mininteger] end)
      assert.has_error(function() t:size(math.maxinteger) end,
        "bad argument #1 to 'size' (dim 9223372036854775807 out of range for a 2-d tensor)")
      assert.has_error(function() T.zeros { 2, -(2 ^ 40) // 1 } end,
        "bad argument #1 to 'zeros' (shape entry 2 is negative (-1099511627776))")
      -- found by tests/fuzz/lua_bindings.lua: an empty inner dim recursed until the stack overflowed
      assert.same({ { 0, 0, 0 }, { 0, 0, 0 } }, T.zeros { 2, 0 }:matmul(T.zeros { 0, 3 }):totable())
      -- and fill_ into a broadcast view of 2^40 elements ran for hours: writes into expanded views are refused
      local wide = T.ones { 1 }:expand { 2 ^ 20 // 1, 2 ^ 20 // 1 }
      assert.has_error(function() wide:fill_(2) end,
        "tensor.fill_: cannot write into an expanded view of shape [1048576,1048576] (its elements share "
        .. "memory); clone() it first")
      assert.has_error(function() wide:exp_() end)
      assert.has_error(function() wide[1] = 3 end)
      assert.same({ { 1, 1 }, { 1, 1 } }, T.ones { 1 }:expand { 2, 2 }:clone():totable())
      assert.has_error(function() t:var(1, false, 2 ^ 40 // 1) end,
        "bad argument #3 to 'var' (correction out of range)")
    end)

    it("on shape mismatches", function()
      assert.has_error(function() T.zeros { 2, 3 }:matmul(T.zeros { 4, 5 }) end,
        "tensor.matmul: shapes [2,3] and [4,5] are incompatible (inner dims 3 and 4)")
      assert.has_error(function() return T.zeros { 2, 3 } + T.zeros { 4 } end,
        "tensor.add: shapes [2,3] and [4] cannot be broadcast")
      assert.has_error(function() T.zeros { 2, 3 }:matmul(T.zeros { 3, 3 }, T.zeros { 3, 3 }) end,
        "tensor.matmul: out has shape [3,3], the product has shape [2,3]")
      assert.has_error(function() T.zeros { 2, 3 }:sum(3) end,
        "bad argument #1 to 'sum' (dim 3 out of range for a 2-d tensor)")
      helper.raises(function() T.zeros { 2 }:add_(T.zeros { 3, 2 }) end, "tensor.add_", "[2] and [3,2]")
      assert.has_error(function() return T.zeros { 2 }[3] end,
        "tensor[]: index 3 is out of range for dim 1 of size 2")
      assert.has_error(function() T.zeros { 2, 2 }:item() end,
        "tensor.item: tensor of shape [2,2] has 4 elements, expected 1")
    end)

    it("on wrong types", function()
      assert.has_error(function() T.exp(42) end, "bad argument #1 to 'exp' (tensor expected, got number)")
      helper.raises(function() return T.zeros { 2 } + "a" end, "'add'", "got string")
      assert.has_error(function() T.zeros { 2 }:matmul({}) end,
        "bad argument #1 to 'matmul' (tensor expected, got table)")
      helper.raises(function() T.zeros { 2 }:gelu("fast") end, "'gelu'", "'fast'")
      helper.raises(function() rlaif.set_threads(0) end, "set_threads", "from 1 to 1024, got 0")
    end)

    it("on use after free, and <close> frees at once", function()
      local t = T.ones { 2 }
      t:free()
      assert.has_error(function() t:sum() end, "attempt to use a freed tensor")
      assert.has_error(function() return t + 1 end, "attempt to use a freed tensor")
      assert.has_error(function() return T.ones { 2 } + t end, "attempt to use a freed tensor")
      t:free() -- idempotent
      assert.equal("tensor(<freed>)", tostring(t))
      local kept
      do
        local c <close> = T.ones { 3 }
        kept = c
      end
      assert.is_true(kept:is_freed())
    end)

    it("on corrupt safetensors files, naming the file and tensor", function()
      local path = helper.tmpname(".safetensors")
      T.save(path, { weight = T.arange(6):reshape { 2, 3 }, bias = T.ones { 3 } })
      local got, names = T.load(path)
      assert.same({ "bias", "weight" }, names)
      assert.same({ { 0, 1, 2 }, { 3, 4, 5 } }, got.weight:totable())
      local f = assert(io.open(path, "rb"))
      local bytes = f:read("a")
      f:close()
      local function write(s)
        local g = assert(io.open(path, "wb"))
        g:write(s)
        g:close()
      end
      write(bytes:sub(1, #bytes - 4)) -- truncated data
      assert.has_error(function() T.load(path) end,
        ("tensor.load: %s: tensor 'weight': data ends at byte 36 but the file holds 32 data bytes (truncated?)")
        :format(path))
      write(bytes:sub(1, 20)) -- truncated header
      helper.raises(function() T.load(path) end, "tensor.load: " .. path,
        "is larger than the file (20 bytes)")
      write("garbage")
      assert.has_error(function() T.load(path) end,
        ("tensor.load: %s: 7 bytes is too short for a safetensors file"):format(path))
      os.remove(path)
      assert.has_error(function() T.load(path) end, ("tensor.load: %s: No such file or directory"):format(path))
      assert.has_error(function() T.save(path, { w = 1 }) end, "tensor.save: 'w' is a number, expected a tensor")
      helper.raises(function() T.save("/nonexistent-dir/x.safetensors", { w = T.ones { 1 } }) end,
        "tensor.save", "/nonexistent-dir/x.safetensors")
    end)
  end)

  it("tells the GC about tensor memory, so loops do not grow without bound", function()
    -- a weak table sees which tensors the GC has not collected yet: without the
    -- LUA_GCSTEP pressure each 1 MB tensor looks like a 100-byte box and most of the
    -- 200 would still be uncollected at the end of the loop
    collectgarbage()
    local before, live, peak = collectgarbage("count"), setmetatable({}, { __mode = "v" }), 0
    for _ = 1, 200 do
      live[#live + 1] = T.ones { 256, 1024 }
      local n = 0
      for _ in pairs(live) do n = n + 1 end
      peak = math.max(peak, n)
    end
    collectgarbage()
    assert.is_true(peak <= 64, peak)
    assert.is_true(collectgarbage("count") - before < 1024)
  end)
end)
