-- tests/spec/generate_spec.lua -- the sampler of m:generate against exact
-- distributions: temperature, top-k, top-p, greedy, stop tokens.
--
-- The model is built so that its next-token logits are a chosen vector z for
-- every context (final layer norm with weight 0 and bias e_1, tied embeddings
-- whose first column is z), so the distribution of every draw is known exactly:
-- softmax(z / T), cut to the top_k most likely (ties: lower id), then to the
-- smallest prefix whose mass reaches top_p, renormalised. Positions and rows
-- are independent draws from it, so one generate call gives thousands.
--
-- Bounds: each frequency test is a chi-square goodness-of-fit test at level
-- ALPHA = 1e-6, so a correct sampler fails one with probability 1e-6 over the
-- choice of seed (the seeds are fixed, so a run is deterministic); tokens
-- outside the truncated support must never appear (an exact check). With
-- 10,000 draws, a sampler that ignores T, k or p, or does not renormalise, is
-- off by chi-square values in the hundreds to thousands.
-- `make test` also runs this spec with RLAIF_KERNELS=scalar.
-- luacheck: std +busted

local rlaif = require "rlaif"
local M = rlaif.model

local ALPHA = 1e-6

-- ---- chi-square quantiles ----

-- regularised lower incomplete gamma P(a, x), by its power series
local function gamma_p(a, x)
  if x <= 0 then return 0 end
  local term, sum, n = 1 / a, 1 / a, 0
  repeat
    n = n + 1
    term = term * x / (a + n)
    sum = sum + term
  until term < sum * 1e-17 or n > 10000
  -- log Gamma(a) for a = k/2 exactly: Gamma(1) = 1, Gamma(1/2) = sqrt(pi), Gamma(a+1) = a Gamma(a)
  local lg, b = 0, a
  while b > 1 do
    b = b - 1
    lg = lg + math.log(b)
  end
  if b == 0.5 then lg = lg + 0.5 * math.log(math.pi) end
  return math.exp(a * math.log(x) - x - lg) * sum
end

-- the x with P(chi2_df > x) = alpha, by bisection
local function chi2_critical(df, alpha)
  local lo, hi = 0, 1000
  for _ = 1, 200 do
    local mid = (lo + hi) / 2
    if 1 - gamma_p(df / 2, mid / 2) > alpha then lo = mid else hi = mid end
  end
  return hi
end

-- ---- the model with known logits ----

local function exact_model(z, eos)
  local m = M.new { arch = "gpt2", vocab_size = #z, n_layer = 1, n_head = 1, d_model = 4, max_seq = 512, seed = 1,
                    eos_id = eos }
  m:param("transformer.ln_f.weight"):fill_(0)
  local b = m:param("transformer.ln_f.bias")
  b:fill_(0)
  b[1] = 1
  local wte = m:param("transformer.wte.weight")
  wte:fill_(0)
  for v = 1, #z do wte[v][1] = z[v] end
  return m
end

-- exact sampling distribution over ids 0..V-1 (as a 1-based array), the
-- smallest margin between a cumulative top-p sum and p (to keep cases clear of
-- float rounding), and log softmax(z) (the model's own log-probabilities)
local function target(z, T, k, p)
  local V = #z
  local order = {}
  for i = 1, V do order[i] = i end
  table.sort(order, function(a, b)
    if z[a] ~= z[b] then return z[a] > z[b] end
    return a < b
  end)
  local n = (k and k > 0 and k < V) and k or V
  local w, total = {}, 0
  for j = 1, n do
    w[j] = math.exp((z[order[j]] - z[order[1]]) / T)
    total = total + w[j]
  end
  local margin = math.huge
  if p and p < 1 then
    local acc, keep = 0, n
    for j = 1, n do
      acc = acc + w[j] / total
      margin = math.min(margin, math.abs(acc - p))
      if acc >= p then
        keep = j
        break
      end
    end
    n, total = keep, 0
    for j = 1, n do total = total + w[j] end
  end
  local probs = {}
  for i = 1, V do probs[i] = 0 end
  for j = 1, n do probs[order[j]] = w[j] / total end
  local lse, mx = 0, z[order[1]]
  for i = 1, V do lse = lse + math.exp(z[i] - mx) end
  local logp = {}
  for i = 1, V do logp[i] = z[i] - mx - math.log(lse) end
  return probs, margin, logp
end

-- B rows x L new tokens from prompts of varied lengths
local function draws(m, B, L, opts)
  local prompts, V = {}, m:config().vocab_size
  for b = 1, B do
    local p = {}
    for t = 1, 1 + b % 3 do p[t] = (b * 7 + t) % V end
    prompts[b] = p
  end
  opts.max_new_tokens = L
  return m:generate(prompts, opts)
end

-- chi-square statistic of counts (1-based by id+1) against probs, and its df
local function chi2(counts, probs, N)
  local x, df = 0, -1
  for i, p in ipairs(probs) do
    if p > 0 then
      local e = N * p
      x = x + ((counts[i] or 0) - e) ^ 2 / e
      df = df + 1
    end
  end
  return x, df
end

local function assert_fits(counts, probs, N, what)
  for i, p in ipairs(probs) do
    if p == 0 and (counts[i] or 0) > 0 then
      error(string.format("%s: token %d has probability 0 but was drawn %d times", what, i - 1, counts[i]), 2)
    end
  end
  local x, df = chi2(counts, probs, N)
  if df > 0 then
    local crit = chi2_critical(df, ALPHA)
    if x > crit or x ~= x then
      local got, want = {}, {}
      for i, p in ipairs(probs) do
        got[i] = string.format("%.4f", (counts[i] or 0) / N)
        want[i] = string.format("%.4f", p)
      end
      error(string.format("%s: chi-square %.1f > %.1f (df %d, alpha %g)\n  drawn %s\n  exact %s", what, x, crit,
        df, ALPHA, table.concat(got, " "), table.concat(want, " ")), 2)
    end
  end
end

local Z = { 1.5, 0.25, -0.5, 2.0, 0.75, -1.25, 0.0, 1.0 }   -- multiples of 1/4: exact in float32

describe("model:generate sampler #unit", function()
  it("runs on the kernel path RLAIF_KERNELS names", function()
    if os.getenv("RLAIF_KERNELS") == "scalar" then assert.equal("scalar", rlaif.info().kernels) end
    -- the chi-square quantiles are right: known values of the chi-square table
    assert.is_true(math.abs(chi2_critical(1, 0.05) - 3.841459) < 1e-5)
    assert.is_true(math.abs(chi2_critical(7, 0.001) - 24.321886) < 1e-5)
    assert.is_true(math.abs(chi2_critical(4, 1e-6) - 33.376885) < 1e-4)
  end)

  it("the test model's logits are exactly z in every context", function()
    local m = exact_model(Z)
    local rows = m:forward({ { 0, 3, 5, 7 }, { 2, 2, 2, 2 } }):totable()
    for b = 1, 2 do
      for t = 1, 4 do assert.same(Z, rows[b][t]) end
    end
  end)

  local cases = {
    { name = "T = 1", temperature = 1 },
    { name = "T = 0.5", temperature = 0.5 },
    { name = "T = 2.5", temperature = 2.5 },
    { name = "top_k = 3", temperature = 1, top_k = 3 },
    { name = "top_p = 0.7", temperature = 1, top_p = 0.7 },
    { name = "T = 0.7, top_k = 5, top_p = 0.9", temperature = 0.7, top_k = 5, top_p = 0.9 },
    { name = "T = 1.6, top_p = 0.95", temperature = 1.6, top_p = 0.95 },
    { name = "top_k = 8 (all), top_p = 1 (off)", temperature = 1.3, top_k = 8, top_p = 1 },
  }
  for n, c in ipairs(cases) do
    it("draws from the exact truncated, renormalised softmax: " .. c.name, function()
      local probs, margin, logp = target(Z, c.temperature, c.top_k, c.top_p)
      assert.is_true(margin > 1e-3, "top_p too close to a cumulative sum for a clear case")
      local m = exact_model(Z)
      local B, L = 40, 250
      local toks, lps = draws(m, B, L, { temperature = c.temperature, top_k = c.top_k, top_p = c.top_p,
                                         seed = 1000 + n })
      local counts, N = {}, 0
      for b = 1, B do
        assert.equal(L, #toks[b])
        for t = 1, L do
          local id = toks[b][t]
          counts[id + 1] = (counts[id + 1] or 0) + 1
          N = N + 1
          -- log-probabilities are the model's own: log softmax(z) at T = 1, untruncated
          assert.is_true(math.abs(lps[b][t] - logp[id + 1]) < 1e-5, "logprob of token " .. id)
        end
      end
      assert_fits(counts, probs, N, c.name)
    end)
  end

  it("top_k = 1 and temperature 0 are argmax, the lower id on ties", function()
    local m = exact_model(Z)
    for _, o in ipairs { { temperature = 0 }, { temperature = 1.7, top_k = 1 }, { temperature = 1, top_p = 0.01 } } do
      o.seed = 3
      local toks = draws(m, 6, 20, o)
      for b = 1, 6 do
        for t = 1, 20 do assert.equal(3, toks[b][t]) end   -- z[4] = 2.0 is the maximum
      end
    end
    local tie = exact_model { 0.5, 1.25, -1, 1.25, 1.25 }
    local toks = draws(tie, 3, 5, { temperature = 0 })
    for b = 1, 3 do assert.same({ 1, 1, 1, 1, 1 }, toks[b]) end
    -- top_k = 2 over a three-way tie keeps the two lowest ids, half and half
    local toks2 = draws(tie, 40, 100, { temperature = 1, top_k = 2, seed = 9 })
    local counts = {}
    for b = 1, 40 do
      for t = 1, 100 do counts[toks2[b][t] + 1] = (counts[toks2[b][t] + 1] or 0) + 1 end
    end
    assert_fits(counts, { 0, 0.5, 0, 0.5, 0 }, 4000, "top_k over a tie")
  end)

  it("stops each row at its first stop token; lengths are geometric", function()
    local m = exact_model(Z)
    local probs = target(Z, 1)
    local stops = { 4, 0 }   -- ids; q = P(stop) per draw
    local q = probs[5] + probs[1]
    local B, L = 600, 6
    local toks = draws(m, B, L, { temperature = 1, stop = stops, seed = 77 })
    local lens, inner, ninner = {}, {}, 0
    for b = 1, B do
      local row = toks[b]
      assert.is_true(#row >= 1 and #row <= L)
      lens[#row] = (lens[#row] or 0) + 1
      for t = 1, #row - 1 do
        local id = row[t]
        assert.is_true(id ~= 4 and id ~= 0, "a stop token inside row " .. b)
        inner[id + 1] = (inner[id + 1] or 0) + 1
        ninner = ninner + 1
      end
      if #row < L then assert.is_true(row[#row] == 4 or row[#row] == 0, "row " .. b .. " ended early") end
    end
    -- P(len = k) = (1-q)^(k-1) q for k < L; the last bin holds the rest
    local plen = {}
    for k = 1, L - 1 do plen[k] = (1 - q) ^ (k - 1) * q end
    plen[L] = (1 - q) ^ (L - 1)
    assert_fits(lens, plen, B, "row lengths")
    -- tokens before the stop: the distribution conditioned on not stopping
    local cond = {}
    for i = 1, #probs do cond[i] = (i == 5 or i == 1) and 0 or probs[i] / (1 - q) end
    assert_fits(inner, cond, ninner, "tokens before the stop")
    -- a single stop id (an integer) works too, and rows of one batch stop independently
    local one = draws(m, 8, 40, { temperature = 1, stop = 3, seed = 5 })
    local ended = 0
    for b = 1, 8 do
      for t = 1, #one[b] - 1 do assert.is_true(one[b][t] ~= 3) end
      if #one[b] < 40 then ended = ended + 1 end
    end
    assert.is_true(ended >= 7)   -- P(no 3 in 40 draws) = 0.63^40 per row
  end)

  it("seeds = one per row: a row samples the same tokens in any batch, and from the same distribution", function()
    local m = exact_model(Z)
    local P = { { 1, 2 }, { 3 }, { 4, 5, 6 }, { 7 } }
    local o = { temperature = 1.1, top_p = 0.95, max_new_tokens = 30, stop = false }
    o.seeds = { 11, 12, 13, 14 }
    local all = m:generate(P, o)
    o.seeds = { 13, 11 }
    local two = m:generate({ P[3], P[1] }, o)
    assert.same(all[3], two[1])
    assert.same(all[1], two[2])
    o.seeds = { 14 }
    assert.same(all[4], (m:generate({ P[4] }, o))[1])
    -- distinct seeds give distinct rows; per-row streams still draw from softmax(z / T)
    assert.are_not.same(all[1], all[2])
    local seeds, prompts = {}, {}
    for b = 1, 40 do seeds[b], prompts[b] = 5000 + b, { b % 8 } end
    local toks = m:generate(prompts, { temperature = 1, max_new_tokens = 250, seeds = seeds, stop = false })
    local counts = {}
    for b = 1, 40 do
      for t = 1, 250 do counts[toks[b][t] + 1] = (counts[toks[b][t] + 1] or 0) + 1 end
    end
    assert_fits(counts, target(Z, 1), 10000, "per-row seeds")
    local ok, err = pcall(m.generate, m, P, { seeds = { 1, 2 } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("seeds must hold one integer per prompt", 1, true), tostring(err))
    ok, err = pcall(m.generate, m, P, { seeds = { 1, 2, 3.5, 4 } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("model.generate: seeds[3] must be an integer", 1, true), tostring(err))
  end)

  it("stops at the model's EOS by default, not with stop = false; stop lists replace it", function()
    local m = exact_model(Z, 3)   -- EOS = the most likely token, P = 0.37
    local toks = draws(m, 30, 40, { temperature = 1, seed = 21 })
    local ended = 0
    for b = 1, 30 do
      local row = toks[b]
      for t = 1, #row - 1 do assert.is_true(row[t] ~= 3, "EOS inside row " .. b) end
      if #row < 40 then
        assert.equal(3, row[#row])
        ended = ended + 1
      end
    end
    assert.is_true(ended >= 29)
    local free = draws(m, 4, 40, { temperature = 1, seed = 21, stop = false })
    local seen = 0
    for b = 1, 4 do
      assert.equal(40, #free[b])
      for t = 1, 40 do if free[b][t] == 3 then seen = seen + 1 end end
    end
    assert.is_true(seen > 20)   -- about 0.37 * 160
    local other = draws(m, 10, 40, { temperature = 1, seed = 4, stop = { 0 } })
    local eos_inside = 0
    for b = 1, 10 do
      for t = 1, #other[b] - 1 do
        assert.is_true(other[b][t] ~= 0)
        if other[b][t] == 3 then eos_inside = eos_inside + 1 end
      end
    end
    assert.is_true(eos_inside > 0)   -- the list replaced EOS
  end)
end)
