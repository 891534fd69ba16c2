-- lua/rlaif/metrics.lua -- how good is an AI labeler: alignment with human
-- labels (the paper's z_acc, with the OpenAI high-confidence filter), position
-- bias (% same position preferred and which position), agreement between two
-- label files, bootstrap confidence intervals, an exact binomial test and cost
-- per label; plus the text table `rlaif align` prints.
--
-- Records are the labeler's output records (rlaif.labeler): {id, status, p,
-- p_ab, p_ba, same_position, position, human, confidence, tokens, cost, ...}.
-- Only records with status "ok" count; the others are reported as excluded.
--
-- What it is not: no labeling, no file writing.

local core = require "rlaif.core"
local opts_mod = require "rlaif.opts"
local json = core.json

local M = {}

-- ---- reading label files ----

--- The records of a label file (JSONL), the last one per id, in the order the
--- ids first appear. A malformed line raises "FILE:LINE: why".
function M.load(path)
  local f, err = io.open(path, "rb")
  if not f then error("metrics: cannot read " .. tostring(err), 2) end
  local order, by = {}, {}
  local n = 0
  for line in f:lines() do
    n = n + 1
    if not line:match("^%s*$") then
      local r, jerr = json.decode(line)
      if type(r) ~= "table" then
        f:close()
        error(string.format("%s:%d: %s", path, n, jerr or "not a JSON object"), 0)
      end
      local id = r.id
      if id == nil then id = "#line" .. n end
      if by[id] == nil then order[#order + 1] = id end
      by[id] = r
    end
  end
  f:close()
  local out = {}
  for i, id in ipairs(order) do out[i] = by[id] end
  return out
end

-- ---- random numbers (splitmix64; the same seed gives the same CI everywhere) ----

local function rng(seed)
  local s = seed or 1
  return function(n)
    s = s + -7046029254386353131   -- 0x9E3779B97F4A7C15
    local z = s
    z = (z ~ (z >> 30)) * -4658895280553007687   -- 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * -7723592293110705685   -- 0x94D049BB133111EB
    z = z ~ (z >> 31)
    return (z >> 11) % n + 1
  end
end
--- rng(seed) -> function(n) drawing integers 1..n (splitmix64; the same everywhere)
M.rng = rng

local BOOT = opts_mod.schema("metrics.bootstrap", {
  n = { "integer", min = 1, max = 100000 }, alpha = { "number", gt = 0, lt = 1 }, seed = "integer",
})

--- Percentile bootstrap CI of stat(sample) over `values` (a list), resampling
--- with replacement. opts: n [1000], alpha [0.05], seed [1]. Returns lo, hi.
function M.bootstrap(values, stat, opts)
  opts = BOOT(opts)
  local B, alpha = opts.n or 1000, opts.alpha or 0.05
  local N = #values
  if N == 0 then return nil, nil end
  local r = rng(opts.seed or 1)
  local stats = {}
  local sample = {}
  for b = 1, B do
    for i = 1, N do sample[i] = values[r(N)] end
    stats[b] = stat(sample)
  end
  table.sort(stats)
  local lo = stats[math.max(1, math.floor(alpha / 2 * B + 0.5))]
  local hi = stats[math.min(B, math.ceil((1 - alpha / 2) * B))]
  return lo, hi
end

local function mean(xs)
  local s = 0
  for i = 1, #xs do s = s + xs[i] end
  return #xs > 0 and s / #xs or nil
end
--- mean(xs) -> the mean of a list, nil when empty
M.mean = mean

--- Exact two-sided binomial test of k successes in n trials with probability
--- p0 [0.5]: the sum of the probabilities of outcomes no more likely than k.
function M.binomial_test(k, n, p0)
  p0 = p0 or 0.5
  if n == 0 then return 1 end
  if p0 <= 0 or p0 >= 1 then
    local sure = p0 <= 0 and 0 or n
    return k == sure and 1 or 0
  end
  -- log pmf for every outcome, incrementally (O(n))
  local lp = {}
  lp[0] = n * math.log(1 - p0)
  local r = math.log(p0) - math.log(1 - p0)
  for i = 1, n do lp[i] = lp[i - 1] + math.log(n - i + 1) - math.log(i) + r end
  local pk = lp[k]
  local total = 0
  for i = 0, n do
    if lp[i] <= pk + 1e-7 * math.abs(pk) + 1e-12 then total = total + math.exp(lp[i]) end
  end
  return math.min(1, total)
end

-- ---- alignment ----

local HIGH_CONF = { [1] = true, [2] = true, [8] = true, [9] = true }
M.HIGH_CONFIDENCE = { 1, 2, 8, 9 }

--- confidence_set(spec [, who]) -> a set {[c] = true} of confidence values to keep,
--- or false for no filter. One spelling for Lua and the CLI: "high" (or true) is the
--- paper's {1, 2, 8, 9}; "all" (or false) keeps everything; a list {1, 2} or a
--- string "1,2,8,9" keeps those. Raises "<who> must be ..." on anything else.
function M.confidence_set(spec, who)
  local bad = string.format("%s must be \"high\", \"all\" or a list of confidence values like 1,2,8,9, got %s",
    who or "metrics: confidence", type(spec) == "string" and string.format("%q", spec) or tostring(spec))
  if spec == "high" or spec == true then return HIGH_CONF end
  if spec == "all" or spec == false then return false end
  local list = spec
  if type(spec) == "string" then
    list = {}
    for v in spec:gmatch("[^,]+") do
      local n = math.tointeger(tonumber(v))
      if not n then error(bad, 0) end
      list[#list + 1] = n
    end
  end
  if type(list) == "table" and #list == 0 and next(list) ~= nil then   -- already a set {[c] = true}
    for c, v in pairs(list) do if type(c) ~= "number" or v ~= true then error(bad, 0) end end
    return list
  end
  if type(list) ~= "table" or #list == 0 then error(bad, 0) end
  local set = {}
  for _, c in ipairs(list) do
    if type(c) ~= "number" then error(bad, 0) end
    set[c] = true
  end
  return set
end

local ALIGN = opts_mod.schema("metrics.alignment", {
  confidence = "boolean|string|table", human = "table", bootstrap = { "integer", min = 0, max = 100000 },
  seed = "integer",
})

--- AI-labeler alignment with human preferences (Lee et al. §2.3): z_acc = the
--- share of pairs where argmax of the AI's soft label equals the human choice.
--- records: labeler records with `human` (1 = the first response was preferred,
--- 2 = the second) or opts.human = {id -> 1|2}. opts.confidence: the values to
--- keep ("high" or true = the paper's {1, 2, 8, 9}, "all", a list); opts.bootstrap:
--- resamples for a CI [1000, 0 = none]; opts.seed. A soft label of exactly 0.5
--- counts as not aligned (and as a tie). Returns {z_acc, n, correct, ties,
--- excluded = {status=, no_human=, confidence=}, ci = {lo, hi}}. opts.confidence
--- takes the spellings of confidence_set ("high", "all", a list, true/false).
function M.alignment(records, opts)
  opts = ALIGN(opts)
  local conf = opts.confidence
  if conf ~= nil then conf = M.confidence_set(conf, "metrics.alignment: option 'confidence'") end
  local hits = {}
  local out = { n = 0, correct = 0, ties = 0, excluded = { status = 0, no_human = 0, confidence = 0 } }
  for _, r in ipairs(records) do
    local h = r.human
    if opts.human then h = opts.human[r.id] end
    if r.status ~= "ok" or type(r.p) ~= "number" then
      out.excluded.status = out.excluded.status + 1
    elseif h ~= 1 and h ~= 2 then
      out.excluded.no_human = out.excluded.no_human + 1
    elseif conf and not conf[r.confidence] then
      out.excluded.confidence = out.excluded.confidence + 1
    else
      local ai = r.p > 0.5 and 1 or (r.p < 0.5 and 2 or 0)
      if ai == 0 then out.ties = out.ties + 1 end
      local hit = (ai == h) and 1 or 0
      hits[#hits + 1] = hit
      out.correct = out.correct + hit
      out.n = out.n + 1
    end
  end
  out.z_acc = out.n > 0 and out.correct / out.n or nil
  local B = opts.bootstrap
  if B == nil then B = 1000 end
  if B > 0 and out.n > 0 then
    local lo, hi = M.bootstrap(hits, mean, { n = B, seed = opts.seed })
    out.ci = { lo, hi }
  end
  return out
end

-- ---- position bias ----

--- Position bias (Lee et al. App. B): the share of two-order pairs where the
--- model preferred the same position in both orders, and, among those, how
--- often it was the first position, with a two-sided binomial test of
--- first vs second (H0: 50/50). Returns {n, same, pct_same, first, second,
--- pct_first, p_value}.
function M.position_bias(records)
  local n, same, first, second = 0, 0, 0, 0
  for _, r in ipairs(records) do
    if r.status == "ok" and r.same_position ~= nil then
      n = n + 1
      if r.same_position then
        same = same + 1
        if r.position == 1 then first = first + 1 elseif r.position == 2 then second = second + 1 end
      end
    end
  end
  return {
    n = n, same = same, pct_same = n > 0 and 100 * same / n or nil,
    first = first, second = second, pct_first = same > 0 and 100 * first / same or nil,
    p_value = M.binomial_test(first, first + second),
  }
end

-- ---- agreement between two labelers ----

--- Agreement of two label lists on the ids both labeled ok: the share with the
--- same argmax, Cohen's kappa over {first, second} (ties excluded), and the
--- mean |p_a - p_b| over all of those ids (ties included). Returns {n, agree,
--- rate, kappa, mean_abs_diff}.
function M.agreement(a, b)
  local by = {}
  for _, r in ipairs(b) do if r.status == "ok" and r.p then by[r.id] = r end end
  local n, agree, diff, both = 0, 0, 0, 0
  local a1, b1 = 0, 0
  for _, r in ipairs(a) do
    local o = by[r.id]
    if r.status == "ok" and r.p and o then
      local x = r.p > 0.5 and 1 or (r.p < 0.5 and 2 or 0)
      local y = o.p > 0.5 and 1 or (o.p < 0.5 and 2 or 0)
      if x ~= 0 and y ~= 0 then
        n = n + 1
        if x == y then agree = agree + 1 end
        if x == 1 then a1 = a1 + 1 end
        if y == 1 then b1 = b1 + 1 end
      end
      diff = diff + math.abs(r.p - o.p)
      both = both + 1
    end
  end
  local rate = n > 0 and agree / n or nil
  local kappa
  if n > 0 then
    local pe = (a1 / n) * (b1 / n) + (1 - a1 / n) * (1 - b1 / n)
    kappa = pe < 1 and (rate - pe) / (1 - pe) or 1
  end
  return { n = n, agree = agree, rate = rate, kappa = kappa, mean_abs_diff = both > 0 and diff / both or nil }
end

-- ---- cost ----

--- Tokens, requests and cost over records (all statuses: failed requests cost
--- too). Returns {n, labeled, requests, prompt_tokens, completion_tokens, cost,
--- cost_per_label, tokens_per_label}.
function M.cost(records)
  local o = { n = #records, labeled = 0, requests = 0, prompt_tokens = 0, completion_tokens = 0, cost = 0 }
  local has_cost = false
  for _, r in ipairs(records) do
    if r.status == "ok" then o.labeled = o.labeled + 1 end
    o.requests = o.requests + (r.requests or 0)
    if type(r.tokens) == "table" then
      o.prompt_tokens = o.prompt_tokens + (r.tokens.prompt or 0)
      o.completion_tokens = o.completion_tokens + (r.tokens.completion or 0)
    end
    if r.cost then o.cost = o.cost + r.cost has_cost = true end
  end
  if not has_cost then o.cost = nil end
  if o.labeled > 0 then
    o.cost_per_label = o.cost and o.cost / o.labeled
    o.tokens_per_label = (o.prompt_tokens + o.completion_tokens) / o.labeled
  end
  return o
end

-- ---- tables ----

--- Format a text table: rows (names), cols (names), cell(row, col) -> string or
--- nil (printed as "-"). The first column holds the row names.
function M.format_table(rows, cols, cell, corner)
  local grid = { { corner or "" } }
  for _, c in ipairs(cols) do grid[1][#grid[1] + 1] = c end
  for _, r in ipairs(rows) do
    local line = { r }
    for _, c in ipairs(cols) do line[#line + 1] = cell(r, c) or "-" end
    grid[#grid + 1] = line
  end
  local w = {}
  for _, line in ipairs(grid) do
    for j, s in ipairs(line) do w[j] = math.max(w[j] or 0, utf8.len(s) or #s) end
  end
  local out = {}
  for i, line in ipairs(grid) do
    local parts = {}
    for j, s in ipairs(line) do
      local pad = w[j] - (utf8.len(s) or #s)
      parts[j] = j == 1 and (s .. string.rep(" ", pad)) or (string.rep(" ", pad) .. s)
    end
    out[#out + 1] = table.concat(parts, "  ")
    if i == 1 then
      local rule = {}
      for j = 1, #w do rule[j] = string.rep("-", w[j]) end
      out[#out + 1] = table.concat(rule, "  ")
    end
  end
  return table.concat(out, "\n") .. "\n"
end

return M
