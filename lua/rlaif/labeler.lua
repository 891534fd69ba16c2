-- lua/rlaif/labeler.lua -- the AI preference labeler of Lee et al. (2023), §2.1
-- and §4: soft labels from the log-probabilities of the label tokens, two-order
-- position debiasing, two-step chain-of-thought, self-consistency, vote
-- frequencies for APIs without log-probabilities, d-RLAIF 1-10 scoring, and a
-- crash-safe, resumable JSONL output.
--
--   local labeler = require "rlaif.labeler"
--   local L = labeler.new{client = c, template = "summarize-detailed", swap = true, cot = false,
--                         samples = 1, temperature = 0, clamp = nil, polarity = nil}
--   local summary = L:label(dataset, {out = "labels.jsonl", resume = true, progress = true,
--                                     on_label = function(rec, pair) end})
--   local rec = L:label_one(pair)          -- one pair, no file
--
-- `client` is anything with the rlaif.llm client interface (complete_many(reqs,
-- {progress=, on_result=}) returning results in input order, each {ok=true, text=,
-- choices={{tokens={{token=, logprob=, top={{token=, logprob=}}}}}}, usage=, cached=}
-- or {ok=false, kind=, status=, message=, attempts=}). A failed request is never
-- turned into a label: the pair gets status "error" and is retried on resume.
--
-- Probabilities in a record are always about the DATASET's first response (HH
-- `chosen`, summaries[1], ...): p_ab from the order shown as in the data, p_ba
-- from the swapped order, p = (p_ab + p_ba) / 2; the template's polarity (-1 for
-- "choose the most harmful") is applied before averaging.
--
-- What it is not: no HTTP (rlaif.llm), no template parsing (rlaif.prompts), no
-- dataset parsing (rlaif.data), no alignment statistics (rlaif.metrics).

local core = require "rlaif.core"
local dist = require "rlaif.dist"
local fileio = require "rlaif.fileio"
local opts_mod = require "rlaif.opts"
local progress = require "rlaif.progress"
local prompts = require "rlaif.prompts"

local json, gz = core.json, core.gz
local exp, log, huge = math.exp, math.log, math.huge

local M = {}

-- ---- soft-label math (pure functions; the specs test them directly) ----

--- log(sum(exp(x_i))) over a list, stable; -inf for an empty list or all -inf.
function M.logsumexp(xs)
  local m = -huge
  for i = 1, #xs do if xs[i] > m then m = xs[i] end end
  if m == -huge then return -huge end
  if m == huge then return huge end
  local s = 0
  for i = 1, #xs do s = s + exp(xs[i] - m) end
  return m + log(s)
end

--- Softmax over a list of log-probabilities.
function M.softmax(ls)
  local m = -huge
  for i = 1, #ls do if ls[i] > m then m = ls[i] end end
  local out, s = {}, 0
  for i = 1, #ls do
    local e = (ls[i] == -huge) and 0 or exp(ls[i] - m)
    out[i] = e
    s = s + e
  end
  for i = 1, #ls do out[i] = out[i] / s end
  return out
end

-- Leading bytes that make a spelling variant of a label: ASCII whitespace,
-- SentencePiece's "▁" (U+2581) and GPT-2's byte-level "Ġ" (U+0120, a space)
-- and "Ċ" (U+010A, a newline).
local LEAD = { " ", "\t", "\n", "\r", "\u{2581}", "\u{0120}", "\u{010A}" }

--- A lookup table token -> label index for labels {"1", "2", ...}: every
--- label with up to two leading whitespace-like characters.
function M.label_lut(labels)
  local lut = {}
  for i, l in ipairs(labels) do
    lut[l] = i
    for _, a in ipairs(LEAD) do
      lut[a .. l] = i
      for _, b in ipairs(LEAD) do lut[a .. b .. l] = i end
    end
  end
  return lut
end

-- log(exp(v) + exp(lp)): adds lp to a label's running logsumexp v (nil: none yet).
-- -inf (or NaN) terms leave v as it is.
local function log_add(v, lp)
  if v == nil or v == -huge then return lp end
  if lp > -huge then
    if v > lp then return v + log(1 + exp(lp - v)) end
    return lp + log(1 + exp(v - lp))
  end
  return v
end

local MISS_CAP = 4096

-- The label index of a token, or nil. Misses are cached in the table (as
-- false; at most MISS_CAP of them) so that frequent non-label tokens cost one
-- lookup.
local function match(lut, tok)
  if tok == nil then return nil end
  local k = lut[tok]
  if k then return k end
  if k == false then return nil end
  local s = tok:gsub("^[%s]+", "")
  k = lut[s] or nil
  local n = lut.__misses or 0
  if not k and n < MISS_CAP then
    lut[tok] = false
    lut.__misses = n + 1
  end
  return k
end
--- match_label(lut, token) -> the label index of a token (spelling variants included), or nil
M.match_label = match

--- Read a label distribution from generated tokens (the normalized response's
--- choices[1].tokens). Scans positions from the first and uses the first one
--- where any label variant is among the alternatives (or is the generated
--- token). At that position each label's log-probability is the logsumexp of
--- its spelling variants. A label with no variant there is floored at the lowest
--- log-probability returned at that position and flagged (missing = "floor", the
--- default) or left out (missing = "zero"). Returns
---   {P = {p_1, ..., p_n}, logp = {...}, at = position, floored = {label, ...} | nil, token = generated}
--- or nil, reason when no label appears (never a default 0.5).
function M.read_labels(tokens, labels, lut, missing)
  lut = lut or M.label_lut(labels)
  local n = #labels
  if type(tokens) ~= "table" or #tokens == 0 then
    return nil, "no log-probabilities in the response (does the server return them?)"
  end
  for pos = 1, #tokens do
    local t = tokens[pos]
    local top = t.top
    local lse = nil          -- per label: running logsumexp of its variants
    local lowest = huge
    local seen_gen = false
    local gen = t.token
    if top then
      for i = 1, #top do
        local e = top[i]
        local lp = e.logprob
        if lp ~= nil then
          if lp < lowest and lp > -huge then lowest = lp end
          local tk = e.token
          if tk == gen then seen_gen = true end
          local k = match(lut, tk)
          if k then
            lse = lse or {}
            lse[k] = log_add(lse[k], lp)
          end
        end
      end
    end
    -- the generated token itself, when the server did not list it among the alternatives
    if not seen_gen and t.logprob ~= nil then
      local lp = t.logprob
      if lp < lowest and lp > -huge then lowest = lp end
      local k = match(lut, gen)
      if k then
        lse = lse or {}
        lse[k] = log_add(lse[k], lp)
      end
    end
    if lse then
      local floored = nil
      local allinf = true
      for k = 1, n do
        local v = lse[k]
        if v == nil then
          floored = floored or {}
          floored[#floored + 1] = labels[k]
          if missing == "zero" or lowest == huge then v = -huge else v = lowest end
          lse[k] = v
        end
        if v > -huge then allinf = false end
      end
      if allinf then return nil, string.format("label tokens have zero probability at position %d", pos) end
      return { P = M.softmax(lse), logp = lse, at = pos, floored = floored, token = gen }
    end
  end
  local first = tokens[1] and tokens[1].token
  return nil, string.format("no label token (%s) among the top alternatives at positions 1..%d (generated %q)",
    table.concat(labels, "/"), #tokens, tostring(first))
end

--- read_labels for exactly two labels without building tables: returns
--- P(label 1), floored ({label, ...} | nil), position -- the same numbers as
--- read_labels(...).P[1], .floored and .at (the same operations in the same
--- order) -- or nil, reason. The labeler's hot path for pairwise templates.
function M.read_pair(tokens, labels, lut, missing)
  lut = lut or M.label_lut(labels)
  if type(tokens) ~= "table" or #tokens == 0 then
    return nil, "no log-probabilities in the response (does the server return them?)"
  end
  for pos = 1, #tokens do
    local t = tokens[pos]
    local top = t.top
    local hit = false        -- a label variant seen at this position
    local l1, l2             -- running logsumexp of each label's variants
    local lowest = huge
    local seen_gen = false
    local gen = t.token
    local nalt = top and #top or 0
    -- the alternatives, then (i == nalt + 1) the generated token when it was not among them
    for i = 1, nalt + 1 do
      local tk, lp
      if i <= nalt then
        local e = top[i]
        lp = e.logprob
        if lp ~= nil then
          tk = e.token
          if tk == gen then seen_gen = true end
        end
      elseif not seen_gen then
        lp = t.logprob
        tk = gen
      end
      if lp ~= nil then
        if lp < lowest and lp > -huge then lowest = lp end
        local k = lut[tk]
        if not k then k = (k == nil) and match(lut, tk) or nil end
        if k then
          hit = true
          if k == 1 then l1 = log_add(l1, lp) elseif k == 2 then l2 = log_add(l2, lp) end
        end
      end
    end
    if hit then
      local floored = nil
      local floor_lp = (missing == "zero" or lowest == huge) and -huge or lowest
      if l1 == nil then
        floored = { labels[1] }
        l1 = floor_lp
      end
      if l2 == nil then
        floored = floored or {}
        floored[#floored + 1] = labels[2]
        l2 = floor_lp
      end
      local allinf = true     -- (written as read_labels does: a NaN counts as -inf)
      if l1 > -huge then allinf = false end
      if l2 > -huge then allinf = false end
      if allinf then return nil, string.format("label tokens have zero probability at position %d", pos) end
      -- softmax over {l1, l2}, as M.softmax computes it
      local m = -huge
      if l1 > m then m = l1 end
      if l2 > m then m = l2 end
      local s = 0
      local e1 = (l1 == -huge) and 0 or exp(l1 - m)
      s = s + e1
      local e2 = (l2 == -huge) and 0 or exp(l2 - m)
      s = s + e2
      return e1 / s, floored, pos
    end
  end
  local first = tokens[1] and tokens[1].token
  return nil, string.format("no label token (%s) among the top alternatives at positions 1..%d (generated %q)",
    table.concat(labels, "/"), #tokens, tostring(first))
end

--- Parse a generated answer strictly: after optional whitespace the text must
--- start with a label that is not followed by a letter or digit ("1", " 2.",
--- "1 because ..." parse; "Summary 1", "12", "one" do not). Longest label first,
--- so "10" is not read as "1". Returns the label index or nil.
function M.parse_label(text, labels)
  if type(text) ~= "string" then return nil end
  local s = text:match("^%s*(.-)%s*$")
  local best, blen = nil, 0
  for i, l in ipairs(labels) do
    if #l > blen and s:sub(1, #l) == l then
      local nxt = s:sub(#l + 1, #l + 1)
      if nxt == "" or not nxt:match("[%w]") then best, blen = i, #l end
    end
  end
  return best
end

--- Vote frequencies from sampled answers: P(i) = count_i / parsed. Returns
--- {P =, counts =, invalid = n_unparsed} or nil, reason when nothing parsed.
function M.votes(texts, labels)
  local counts, valid, invalid = {}, 0, 0
  for k = 1, #labels do counts[k] = 0 end
  for _, t in ipairs(texts) do
    local k = M.parse_label(t, labels)
    if k then counts[k] = counts[k] + 1 valid = valid + 1 else invalid = invalid + 1 end
  end
  if valid == 0 then
    return nil, string.format("none of %d sampled answers parsed as a label (%s)", #texts, table.concat(labels, "/"))
  end
  local P = {}
  for k = 1, #labels do P[k] = counts[k] / valid end
  return { P = P, counts = counts, invalid = invalid }
end

--- Two-order debiasing. p1_ab = P(label names position 1) when the dataset's
--- first response is shown first; p1_ba = the same when it is shown second.
--- polarity 1: the label names the better response; -1: the worse one.
--- Returns p, p_ab, p_ba (probabilities that the dataset's first response is
--- the better one), the position the model chose in each order (1, 2 or 0 for
--- a tie) and same_position.
function M.debias(p1_ab, p1_ba, polarity)
  local sel_ab = p1_ab           -- P(dataset-first is named) in order ab
  local sel_ba = p1_ba and (1 - p1_ba)
  local p_ab = polarity == -1 and (1 - sel_ab) or sel_ab
  local p_ba = sel_ba and (polarity == -1 and (1 - sel_ba) or sel_ba)
  local pos_ab = p1_ab > 0.5 and 1 or (p1_ab < 0.5 and 2 or 0)
  local pos_ba = p1_ba and (p1_ba > 0.5 and 1 or (p1_ba < 0.5 and 2 or 0))
  local p = p_ba and (p_ab + p_ba) / 2 or p_ab
  local same = pos_ba ~= nil and pos_ab ~= 0 and pos_ab == pos_ba
  return p, p_ab, p_ba, pos_ab, pos_ba, same
end

--- d-RLAIF: the expectation s = sum_i v_i * P(i) over score values v.
function M.expectation(P, values)
  local s = 0
  for i = 1, #P do s = s + values[i] * P[i] end
  return s
end

--- The default reward map: linear from [lo, hi] (1..10) onto [-1, 1],
--- (2s - lo - hi) / (hi - lo), i.e. (s - 5.5) / 4.5 for 1..10.
function M.linear_reward(lo, hi)
  lo, hi = lo or 1, hi or 10
  return function(s) return (2 * s - lo - hi) / (hi - lo) end
end

local function clamp(p, c)
  if not c or p == nil then return p end
  local lo, hi = c[1], c[2]
  if p < lo then return lo end
  if p > hi then return hi end
  return p
end
--- clamp(p, {lo, hi}) -> p clamped into [lo, hi] (p unchanged without a range)
M.clamp = clamp

-- ---- the labeler object ----

local Labeler = {}
Labeler.__index = Labeler

local CHAT_APIS = { ["openai-chat"] = true, anthropic = true, gemini = true }
local NO_LOGPROBS = { anthropic = true }

local NEW = opts_mod.schema("labeler.new", {
  client = "table", template = "string|table", shots = { "integer", min = 0 }, exemplars = "string|table",
  swap = "boolean", cot = "boolean", samples = { "integer", min = 1 }, temperature = { "number", min = 0 },
  top_k = { "integer", min = 1 }, max_rationale = { "integer", min = 1 }, clamp = "table",
  polarity = { "integer", one_of = { 1, -1 } }, scoring = { "string", one_of = { "logprobs", "votes" } },
  votes = { "integer", min = 1 }, vote_temperature = { "number", gt = 0 }, logprobs = { "integer", min = 1 },
  label_tokens = { "integer", min = 1 }, format = { "string", one_of = { "prompt", "chat" } },
  chat = { "string", one_of = { "user", "prefill" } }, missing = { "string", one_of = { "floor", "zero" } },
  reward = "function", prices = "table", model = "string", request = "table", api = "string",
  batch = { "integer", min = 1 },
})

--- Create a labeler. Options (defaults in brackets):
---   client        the LLM client (required for labeling)
---   template      name, path or loaded template ["summarize-detailed"]
---   shots         few-shot exemplars [0]; exemplars = list or exemplar-file name [the template's]
---   swap          score both orders and average [true]
---   cot           two-step chain-of-thought [template's cot flag]; uses the template's
---                 cot_variant when the template itself has no CoT ending
---   samples       self-consistency: N rationales per order (CoT), or N votes [1]
---   temperature   rationale sampling temperature [0; must be > 0 when samples > 1]
---   top_k         top-k for sampled rationales [40]
---   max_rationale tokens for a rationale [512]
---   clamp         {lo, hi} clamp of the final p (Constitutional AI used {0.4, 0.6}) [nil]
---   polarity      1 or -1 [template's]
---   scoring       "logprobs" | "votes" ["votes" for APIs without log-probabilities]
---   votes         answers sampled per order in vote mode without CoT [5]; vote_temperature [1.0]
---   logprobs      top-K alternatives requested [20]
---   label_tokens  tokens generated for the label [1 for prompts/prefill, 5 for chat]
---   format        "prompt" | "chat" [by client api]; chat = "user" | "prefill" ["user"]
---   missing       "floor" | "zero" for a label absent from the top-K ["floor"; "zero" for scores]
---   reward        d-RLAIF map s -> reward [linear 1..10 -> -1..1]
---   prices        {prompt = USD per 1M tokens, completion = USD per 1M} for the cost field
---   model         model name recorded in the output [client.model]
---   request       table merged into every request (stop, extra, seed, ...)
---   api           the client's API when the client does not say [client.api]
---   batch         pairs per complete_many round [by client concurrency]
--- Unknown options and bad values raise "labeler.new: option 'key' ...".
function M.new(opts)
  opts = NEW(opts)
  local self = setmetatable({}, Labeler)
  self.client = opts.client
  local ok, t = pcall(prompts.load, opts.template or "summarize-detailed")
  if not ok then error((tostring(t):gsub("^[^:]+:%d+: ", "")), 2) end -- the template's problem, not a position here
  local cot = opts.cot
  if cot == nil then cot = t.cot end
  if cot and not t.sections.cot_ending then
    if t.cot_variant then
      t = prompts.load(t.cot_variant)
    else
      error(string.format("labeler: template %s has no CoT ending and names no cot_variant", t.name), 2)
    end
  end
  self.template = t
  self.kind = t.kind
  self.cot = cot and true or false
  self.shots = opts.shots or 0
  self.renderer = t:renderer { shots = self.shots, cot = self.cot, exemplars = opts.exemplars }
  self.swap = opts.swap ~= false and t.kind == "pairwise"
  self.samples = opts.samples or 1
  self.temperature = opts.temperature or 0
  if math.type(self.samples) ~= "integer" or self.samples < 1 then
    error("labeler: samples must be an integer >= 1", 2)
  end
  self.top_k = opts.top_k or 40
  self.max_rationale = opts.max_rationale or 512
  self.clamp = opts.clamp
  if self.clamp and not (type(self.clamp) == "table" and self.clamp[1] and self.clamp[2] and
      self.clamp[1] <= self.clamp[2]) then
    error("labeler: clamp must be {lo, hi} with lo <= hi", 2)
  end
  self.polarity = opts.polarity or t.polarity
  if self.polarity ~= 1 and self.polarity ~= -1 then error("labeler: polarity must be 1 or -1", 2) end
  local client = self.client
  local api = opts.api or (type(client) == "table" and (client.api or (client.config and client.config.api)))
  self.api = api
  self.scoring = opts.scoring or ((api and NO_LOGPROBS[api]) and "votes" or "logprobs")
  if self.scoring ~= "logprobs" and self.scoring ~= "votes" then
    error("labeler: scoring must be 'logprobs' or 'votes'", 2)
  end
  if self.samples > 1 and self.cot and self.temperature <= 0 then
    error("labeler: self-consistency (samples > 1) samples rationales and needs temperature > 0", 2)
  end
  if self.samples > 1 and not self.cot and self.scoring == "logprobs" then
    error("labeler: samples > 1 needs cot = true (self-consistency samples rationales) or scoring = 'votes'", 2)
  end
  self.votes = opts.votes or (self.samples > 1 and self.samples or 5)
  self.vote_temperature = opts.vote_temperature or 1.0
  self.logprobs = opts.logprobs or 20
  self.format = opts.format or ((api and CHAT_APIS[api]) and "chat" or "prompt")
  self.chat = opts.chat or "user"
  self.label_tokens = opts.label_tokens or
    ((self.format == "chat" and self.chat == "user") and 5 or (t.kind == "score" and 2 or 1))
  self.missing = opts.missing or (t.kind == "score" and "zero" or "floor")
  self.reward = opts.reward or M.linear_reward(tonumber(t.labels[1]), tonumber(t.labels[#t.labels]))
  self.prices = opts.prices
  self.model = opts.model or (type(client) == "table" and (client.model or (client.config and client.config.model)))
  self.request = opts.request
  self.labels = t.labels
  self.lut = M.label_lut(t.labels)
  -- the in-process backend reads the label tokens' log-probabilities directly
  self.label_tokens_req = api == "local" and t.labels or nil
  if t.kind == "score" then
    self.values = {}
    for i, l in ipairs(t.labels) do self.values[i] = tonumber(l) end
    -- "10" and other multi-character scores whose first character is itself a score
    self.split = {}
    for i, l in ipairs(t.labels) do
      if #l > 1 then
        local head = self.lut[l:sub(1, 1)]
        if head then self.split[i] = { head = head, rest = l:sub(2) } end
      end
    end
  end
  self.batch = opts.batch
  -- the common case, handled in one pass per order (read_pair, _finalize_pair)
  self.fast = t.kind == "pairwise" and self.scoring == "logprobs" and not self.cot and #self.labels == 2
  self.config_hash = prompts.hash(self:_config_string())
  return self
end

-- Everything that changes a label, as one canonical string (hashed into each
-- record's `config`): a resumed run must have the same.
local CONFIG_KEYS = { "template", "template_hash", "model", "api", "shots", "cot", "samples", "temperature",
  "top_k", "max_rationale", "swap", "clamp", "polarity", "scoring", "votes", "vote_temperature", "logprobs",
  "format", "chat", "label_tokens", "missing", "request" }

function Labeler:_config_value(k)
  if k == "template" then return self.template.name end
  if k == "template_hash" then return self.renderer.hash end
  return self[k]
end

function Labeler:_config_string()
  local parts = {}
  for i, k in ipairs(CONFIG_KEYS) do
    local v = self:_config_value(k)
    if type(v) == "table" then v = json.encode(v) end
    parts[i] = k .. "=" .. tostring(v)
  end
  return table.concat(parts, ";")
end

-- The fields a record carries about its configuration, normalised as this
-- labeler would write them, for naming what differs.
local SHOWN = { "template", "template_hash", "model", "api", "shots", "cot", "samples", "scoring" }

local function record_config(r)
  return { template = r.template, template_hash = r.template_hash, model = r.model, api = r.api, shots = r.shots,
    cot = r.cot or false, samples = r.samples or 1, scoring = r.scoring or "logprobs" }
end

--- L:config_diff(record) -> nil when `record` (from a label file) was made with
--- this labeler's configuration, else a list of "key: there vs here" strings.
function Labeler:config_diff(r)
  local mine = record_config { template = self.template.name, template_hash = self.renderer.hash,
    model = self.model, api = self.api, shots = self.shots, cot = self.cot, samples = self.samples,
    scoring = self.scoring }
  local theirs = record_config(r)
  local diffs = {}
  for _, k in ipairs(SHOWN) do
    local a, b = theirs[k], mine[k]
    if k == "api" and (a == nil or b == nil) then a = b end   -- files from before the api field
    if a ~= b then diffs[#diffs + 1] = string.format("%s %s there, %s here", k, json.encode(a), json.encode(b)) end
  end
  if #diffs == 0 and r.config ~= nil and r.config ~= self.config_hash then
    diffs[1] = string.format("other labeling options (config %s there, %s here)", tostring(r.config),
      self.config_hash)
  end
  return #diffs > 0 and diffs or nil
end

-- ---- requests ----

local function merge(dst, src)
  if src then for k, v in pairs(src) do if dst[k] == nil then dst[k] = v end end end
  return dst
end

-- The request for one step of one slot. step: "cot" | "score" | "ten".
-- Completion prompts start from slot.base, rendered once per order by _plan:
-- head .. sample .. "\n" .. ending, or with the CoT ending in CoT mode (where
-- the score step always has a rationale: _take sets it, "" at worst).
function Labeler:_request(slot)
  local r = self.renderer
  local step = slot.next
  if step == "score" and self.scoring == "logprobs" and not self.cot and self.format ~= "chat" then
    -- the hot path: one table, built whole
    local req = { prompt = slot.base, max_tokens = self.label_tokens, temperature = 0, logprobs = self.logprobs,
      logprobs_tokens = self.label_tokens_req }
    local extra = self.request
    if extra then merge(req, extra) end
    return req
  end
  local req
  if self.format == "chat" then
    if step == "ten" then
      local m = r:messages(slot.vars, "score", slot.rationale, "prefill")
      m[#m].content = m[#m].content .. slot.ten_prefix
      req = { messages = m }
    else
      req = { messages = r:messages(slot.vars, step, slot.rationale, self.chat) }
    end
  else
    local base = slot.base
    if step == "cot" then
      req = { prompt = base }
    elseif slot.rationale then
      req = { prompt = base .. slot.rationale:gsub("%s+$", "") .. "\n" .. r.ending ..
        (step == "ten" and slot.ten_prefix or "") }
    else
      req = { prompt = step == "ten" and (base .. slot.ten_prefix) or base }
    end
  end
  if step == "cot" then
    req.max_tokens = self.max_rationale
    req.temperature = self.temperature
    if self.temperature > 0 then
      req.top_k = self.top_k
      req.sample = slot.j
    end
  elseif step == "ten" then
    req.max_tokens = 1
    req.temperature = 0
    req.logprobs = self.logprobs
    if self.label_tokens_req then req.logprobs_tokens = { slot.ten_rest } end
  elseif self.scoring == "votes" then
    req.max_tokens = self.label_tokens
    if self.cot then
      req.temperature = 0
    else
      req.temperature = self.vote_temperature
      req.sample = slot.j
    end
  else
    req.max_tokens = self.label_tokens
    req.temperature = 0
    req.logprobs = self.logprobs
    req.logprobs_tokens = self.label_tokens_req
  end
  return merge(req, self.request)
end

local function fail_reason(res)
  local parts = { res.kind or "error" }
  if res.status then parts[#parts + 1] = tostring(res.status) end
  local msg = table.concat(parts, " ")
  if res.message then msg = msg .. ": " .. tostring(res.message) end
  if res.attempts then msg = msg .. string.format(" (%s attempts)", tostring(res.attempts)) end
  return msg
end

-- Handle the result of a slot's current step; sets slot.next (nil when final).
function Labeler:_take(slot, res)
  local u = res and res.usage
  local st = slot.pair
  st.n_requests = st.n_requests + 1
  if u then
    st.n_prompt = st.n_prompt + (u.prompt_tokens or 0)
    st.n_completion = st.n_completion + (u.completion_tokens or 0)
  end
  if res and res.cached then st.n_cached = st.n_cached + 1 end
  if type(res) ~= "table" or not res.ok then
    slot.err = type(res) == "table" and fail_reason(res) or "no result"
    slot.next = nil
    return
  end
  if type(res.choices) ~= "table" or #res.choices == 0 then   -- an answer with nothing in it
    slot.err = "the answer has no choices"
    slot.next = nil
    return
  end
  local step = slot.next
  if step == "cot" then
    slot.rationale = res.text or (res.choices and res.choices[1] and res.choices[1].text) or ""
    slot.next = "score"
    return
  end
  local tokens = res.choices and res.choices[1] and res.choices[1].tokens
  if step == "ten" then
    -- P(the score continues "0" after "1") at the first position
    local t = tokens and tokens[1]
    local p0 = 0
    if t then
      local lps = {}
      local seen = false
      for _, e in ipairs(t.top or {}) do
        if e.token == t.token then seen = true end
        if e.logprob and e.token and e.token:match("^" .. slot.ten_rest .. "%f[^%d]") then
          lps[#lps + 1] = e.logprob
        end
      end
      if not seen and t.logprob and t.token and t.token:match("^" .. slot.ten_rest .. "%f[^%d]") then
        lps[#lps + 1] = t.logprob
      end
      p0 = exp(M.logsumexp(lps))
    end
    slot.apply_split(p0, "followup")
    slot.next = nil
    return
  end
  -- step == "score"
  if self.scoring == "votes" then
    slot.text = res.text or (res.choices and res.choices[1] and res.choices[1].text)
    slot.next = nil
    return
  end
  if self.fast then
    -- pairwise from log-probabilities without CoT: only P(label 1) and the floored labels are needed
    local p1, floored_or_why = M.read_pair(tokens, self.labels, self.lut, self.missing)
    if p1 then
      slot.p1, slot.floored = p1, floored_or_why
    else
      slot.unlabeled = floored_or_why
    end
    slot.next = nil
    return
  end
  local got, why = M.read_labels(tokens, self.labels, self.lut, self.missing)
  if not got then
    slot.unlabeled = why
    slot.next = nil
    return
  end
  slot.got = got
  slot.next = nil
  if self.split then self:_split_scores(slot, tokens, res) end
end

-- d-RLAIF: a score like "10" that the tokenizer may split into "1" + "0".
-- When "10" is not among the alternatives but "1" is, P("1") is shared between
-- the score 1 and the score 10: read P("0" | "1") from the next position when
-- "1" was the generated token, else ask for it with one more request.
function Labeler:_split_scores(slot, tokens)
  local got = slot.got
  for i, sp in pairs(self.split) do
    local present = got.floored == nil
    if got.floored then
      present = true
      for _, l in ipairs(got.floored) do if l == self.labels[i] then present = false end end
    end
    local head_lp = got.logp[sp.head]
    if not present and head_lp > -huge then
      local function apply(p0, how)
        local lp = got.logp
        lp[i] = p0 > 0 and (head_lp + log(p0)) or -huge
        lp[sp.head] = p0 < 1 and (head_lp + log(1 - p0)) or -huge
        got.P = M.softmax(lp)
        got.split = how
        if got.floored then
          local keep = {}
          for _, l in ipairs(got.floored) do if l ~= self.labels[i] then keep[#keep + 1] = l end end
          got.floored = #keep > 0 and keep or nil
        end
      end
      local at = got.at
      local gen = tokens[at] and tokens[at].token
      if match(self.lut, gen) == sp.head and tokens[at + 1] then
        local nt = tokens[at + 1]
        local lps, seen = {}, false
        for _, e in ipairs(nt.top or {}) do
          if e.token == nt.token then seen = true end
          if e.logprob and e.token and e.token:match("^" .. sp.rest .. "%f[^%d]") then lps[#lps + 1] = e.logprob end
        end
        if not seen and nt.logprob and nt.token and nt.token:match("^" .. sp.rest .. "%f[^%d]") then
          lps[#lps + 1] = nt.logprob
        end
        apply(exp(M.logsumexp(lps)), "next_token")
      elseif self.format == "chat" and self.chat ~= "prefill" then
        got.split = "unresolved"   -- cannot continue a chat answer without prefill
      else
        -- the best-scoring spelling of the head label, as the server wrote it
        local best, blp = self.labels[sp.head], -huge
        for _, e in ipairs(tokens[at].top or {}) do
          if match(self.lut, e.token) == sp.head and e.logprob > blp then best, blp = e.token, e.logprob end
        end
        slot.ten_prefix = best
        slot.ten_rest = sp.rest
        slot.apply_split = function(p0, how) apply(p0, how) end
        slot.next = "ten"
      end
      return
    end
  end
end

-- ---- planning and finalizing pairs ----

-- Add the n slots of one order to st.slots. Chat requests are rendered from
-- the vars table; completion prompts from the compiled sample, once per order
-- (slot.base; see _request).
local function add_order(self, st, order, context, r1, r2, fields, n, first)
  local vars, base
  if self.format == "chat" then
    vars = prompts.vars(context, r1, r2, fields)
  else
    local r = self.renderer
    base = r.fill(context, r1, r2, fields, r.head, self.cot and r.cot_tail or r.score_tail)
  end
  local slots = st.slots
  for j = 1, n do
    slots[#slots + 1] = { pair = st, order = order, vars = vars, base = base, j = j, next = first }
  end
end

-- Slots for one pair: per order ("ab", "ba" or "one") per sample j. st counts
-- the pair's requests and tokens (n_requests, n_prompt, n_completion, n_cached).
function Labeler:_plan(pair, idx)
  local rec = pair
  local st = { rec = rec, idx = idx, slots = {}, pending = 0, n_requests = 0, n_prompt = 0, n_completion = 0,
    n_cached = 0 }
  local first = self.cot and "cot" or "score"
  local n = (self.scoring == "votes" and not self.cot) and self.votes or self.samples
  if self.kind == "score" then
    add_order(self, st, "one", rec.context, rec.response, nil, rec.fields, n, first)
  else
    local a, b = rec.a, rec.b
    if a == nil or b == nil then error("labeler: a pairwise record needs fields a and b", 3) end
    local fields, context = rec.fields, rec.context
    add_order(self, st, "ab", context, a, b, fields, n, first)
    if self.swap then add_order(self, st, "ba", rec.context_b or context, b, a, fields, n, first) end
  end
  st.pending = #st.slots
  return st
end

local function mean(xs)
  if #xs == 0 then return nil end
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return s / #xs
end

-- The record of a pair scored without CoT from log-probabilities with a
-- pairwise template: one slot per order (samples > 1 needs CoT or votes), so
-- everything is read in one pass without per-order tables. The record equals
-- what the general code in _finalize builds.
function Labeler:_finalize_pair(st)
  local sa, sb = st.slots[1], st.slots[2]
  local status, reason, floored
  local p, p_raw, p_ab, p_ba, pos_ab, pos_ba, same, position
  -- failed requests first, then unlabeled orders, in slot order ("ab: why; ba: why")
  local ea, eb = sa.err, sb and sb.err
  local ua, ub = sa.unlabeled, sb and sb.unlabeled
  if ea or eb then
    status = "error"
    reason = (ea and eb) and (sa.order .. ": " .. ea .. "; " .. sb.order .. ": " .. eb) or
      (ea and (sa.order .. ": " .. ea) or (sb.order .. ": " .. eb))
  elseif ua or ub then
    status = "unlabeled"
    reason = (ua and ub) and (sa.order .. ": " .. ua .. "; " .. sb.order .. ": " .. ub) or
      (ua and (sa.order .. ": " .. ua) or (sb.order .. ": " .. ub))
  else
    status = "ok"
    local fa, fb = sa.floored, sb and sb.floored
    if fa or fb then
      floored = {}
      if fa and #fa > 0 then floored[#floored + 1] = sa.order .. ":" .. table.concat(fa, ",") end
      if fb and #fb > 0 then floored[#floored + 1] = sb.order .. ":" .. table.concat(fb, ",") end
      if #floored > 0 then table.sort(floored) else floored = nil end
    end
    -- the mean over one sample, with mean()'s arithmetic
    local p1_ab = (0 + sa.p1) / 1
    local p1_ba = sb and (0 + sb.p1) / 1
    local raw
    raw, p_ab, p_ba, pos_ab, pos_ba, same = M.debias(p1_ab, p1_ba, self.polarity)
    local c = self.clamp
    p = clamp(raw, c)
    if c and p ~= raw then p_raw = raw end
    if p_ba ~= nil then
      if same then position = pos_ab end
    else
      same = nil
    end
  end
  local rec = st.rec
  local np, nc, ncached = st.n_prompt, st.n_completion, st.n_cached
  local prices = self.prices
  -- the whole record in one constructor (absent fields are nil)
  return {
    id = rec.id, template = self.template.name, template_hash = self.renderer.hash,
    model = self.model, api = self.api, config = self.config_hash, task = self.template.task, shots = self.shots,
    human = rec.human or nil, confidence = rec.confidence or nil,
    requests = st.n_requests, tokens = { prompt = np, completion = nc },
    cached = ncached > 0 and ncached or nil,
    cost = prices and (np * (prices.prompt or 0) + nc * (prices.completion or 0)) / 1e6 or nil,
    status = status, reason = reason, floored = floored,
    p = p, p_raw = p_raw, p_ab = p_ab, p_ba = p_ba, pos_ab = pos_ab, pos_ba = pos_ba,
    same_position = same, position = position,
  }
end

local ORDERS = { "ab", "ba", "one" }

-- The output record of a finished pair.
function Labeler:_finalize(st)
  if self.fast then return self:_finalize_pair(st) end
  local rec = st.rec
  local out = {
    id = rec.id, template = self.template.name, template_hash = self.renderer.hash,
    model = self.model, api = self.api, config = self.config_hash, task = self.template.task, shots = self.shots,
  }
  if self.cot then out.cot = true end
  if self.samples > 1 then out.samples = self.samples end
  if self.scoring == "votes" then out.scoring = "votes" end
  if rec.human then out.human = rec.human end
  if rec.confidence then out.confidence = rec.confidence end
  out.requests = st.n_requests
  out.tokens = { prompt = st.n_prompt, completion = st.n_completion }
  if st.n_cached > 0 then out.cached = st.n_cached end
  if self.prices then
    out.cost = (st.n_prompt * (self.prices.prompt or 0) + st.n_completion * (self.prices.completion or 0)) / 1e6
  end
  -- gather per order
  local by = {}
  local errs, unl = {}, {}
  for _, s in ipairs(st.slots) do
    local o = by[s.order]
    if not o then o = { P1 = {}, dists = {}, texts = {}, rationales = {}, floored = {} } by[s.order] = o end
    if s.rationale then o.rationales[#o.rationales + 1] = prompts.trim(s.rationale) end
    if s.err then
      errs[#errs + 1] = s.order .. ": " .. s.err
    elseif self.scoring == "votes" then
      o.texts[#o.texts + 1] = s.text or ""
    elseif s.unlabeled then
      unl[#unl + 1] = s.order .. ": " .. s.unlabeled
    else
      o.dists[#o.dists + 1] = s.got
      o.P1[#o.P1 + 1] = s.got.P[1]
      if s.got.floored then
        for _, l in ipairs(s.got.floored) do o.floored[#o.floored + 1] = l end
      end
      if s.got.split then o.split = s.got.split end
    end
  end
  if self.cot then
    out.rationales = {}
    for k, o in pairs(by) do out.rationales[k] = o.rationales end
  end
  if #errs > 0 then
    out.status = "error"
    out.reason = table.concat(errs, "; ")
    return out
  end
  if self.scoring == "votes" then
    for _, k in ipairs(ORDERS) do   -- in a fixed order: the reasons are joined in it
      local o = by[k]
      if not o then goto next_order end
      local v, why = M.votes(o.texts, self.labels)
      if not v then
        unl[#unl + 1] = k .. ": " .. why
      else
        o.vote = v
        o.P1 = { v.P[1] }
        o.dists = { { P = v.P } }
        out.votes = out.votes or {}
        out.votes[k] = v.counts
        if v.invalid > 0 then out.invalid = (out.invalid or 0) + v.invalid end
      end
      ::next_order::
    end
  end
  if #unl > 0 then
    out.status = "unlabeled"
    out.reason = table.concat(unl, "; ")
    return out
  end
  local floored = {}
  for k, o in pairs(by) do
    if #o.floored > 0 then floored[#floored + 1] = k .. ":" .. table.concat(o.floored, ",") end
  end
  if #floored > 0 then
    table.sort(floored)
    out.floored = floored
  end
  if self.kind == "score" then
    local o = by.one
    -- average the score distributions over samples
    local P = {}
    for i = 1, #self.labels do
      local s = 0
      for _, d in ipairs(o.dists) do s = s + d.P[i] end
      P[i] = s / #o.dists
    end
    out.P = P
    out.s = M.expectation(P, self.values)
    out.reward = self.reward(out.s)
    if o.split then out.split = o.split end
    out.status = "ok"
    return out
  end
  local p1_ab = mean(by.ab.P1)
  local p1_ba = by.ba and mean(by.ba.P1)
  local p, p_ab, p_ba, pos_ab, pos_ba, same = M.debias(p1_ab, p1_ba, self.polarity)
  out.p = clamp(p, self.clamp)
  if self.clamp and out.p ~= p then out.p_raw = p end
  out.p_ab, out.p_ba = p_ab, p_ba
  out.pos_ab, out.pos_ba = pos_ab, pos_ba
  if p_ba ~= nil then
    out.same_position = same
    if same then out.position = pos_ab end
  end
  out.status = "ok"
  return out
end

-- ---- running a batch of pairs ----

local function client_call(client, reqs, opts)
  if type(client) ~= "table" or type(client.complete_many) ~= "function" then
    error("labeler: the client has no complete_many (give an rlaif.llm client)", 3)
  end
  return client:complete_many(reqs, opts)
end

--- Label a list of pairs (no file): returns the output records in input order,
--- and `halt` when the client stopped the batch ({interrupted = true} after Ctrl-C,
--- {stopped = why} after a failure no retry heals), else nil. A pair with a request
--- that was never sent (kind "cancelled") gets no record (outs[i] = nil), so that
--- a resumed run sends it. on_done(record, pair) is called as soon as each pair is
--- complete.
function Labeler:run_batch(pairs, on_done)
  local states, outs = {}, {}
  for i, rec in ipairs(pairs) do states[i] = self:_plan(rec, i) end
  local function finish(st)
    local out = self:_finalize(st)
    outs[st.idx] = out
    if on_done then on_done(out, st.rec) end
  end
  local halt
  while not halt do
    local slots, reqs = {}, {}
    for _, st in ipairs(states) do
      for _, s in ipairs(st.slots) do
        if s.next then
          slots[#slots + 1] = s
          reqs[#reqs + 1] = self:_request(s)
          s.sent = true
        end
      end
    end
    if #reqs == 0 then break end
    local function take(k, res)
      local s = slots[k]
      if not s or not s.sent then return end
      s.sent = false
      local st = s.pair
      if type(res) == "table" and res.ok == false and res.kind == "cancelled" then
        s.next, st.unsent = nil, true   -- never answered: the pair is left for a resume
        st.pending = st.pending - 1
        return
      end
      self:_take(s, res)
      if s.next == nil then
        st.pending = st.pending - 1
        if st.pending == 0 and not st.unsent then finish(st) end
      end
    end
    local results, info = client_call(self.client, reqs, {
      on_result = function(a, b)
        if type(a) == "number" then take(a, b) elseif type(b) == "number" then take(b, a) end
      end,
    })
    if type(results) ~= "table" then error("labeler: complete_many returned no result list", 2) end
    for k = 1, #slots do
      if slots[k].sent then take(k, results[k]) end
    end
    if type(info) == "table" and (info.interrupted or info.stopped) then
      halt = { interrupted = info.interrupted or nil, stopped = info.stopped }
    end
  end
  for _, st in ipairs(states) do
    if not outs[st.idx] and st.pending == 0 and not st.unsent then finish(st) end
  end
  return outs, halt
end

--- Label one pair (or score one response); returns its output record.
function Labeler:label_one(pair)
  local pr = pair
  if pr.id == nil then pr = setmetatable({ id = 1 }, { __index = pair }) end
  return self:run_batch({ pr })[1]
end

-- ---- crash-safe JSONL output ----

--- Read an existing label file for resuming. A last line without its newline
--- (a torn write) is cut off the file. Returns a table id -> record (the last
--- record of each id) and the number of complete lines; raises "FILE:LINE: why"
--- on a malformed complete line.
function M.read_labels_file(path, truncate)
  local f = io.open(path, "rb")
  if not f then return {}, 0 end
  local by, n, offset = {}, 0, 0
  local torn = nil
  for line in f:lines("L") do
    if line:sub(-1) ~= "\n" then
      torn = offset
      break
    end
    n = n + 1
    local body = line:sub(1, -2)
    if not body:match("^%s*$") then
      local r, err = json.decode(body)
      if type(r) ~= "table" then
        f:close()
        error(string.format("%s:%d: %s", path, n, err or "not a JSON object"), 0)
      end
      if r.id ~= nil then by[r.id] = r end
    end
    offset = offset + #line
  end
  f:close()
  if torn and truncate ~= false then
    local ok, err = gz.truncate(path, torn)
    if not ok then error("labeler: " .. err, 0) end
  end
  return by, n, torn ~= nil
end

local Writer = {}
Writer.__index = Writer

--- Open `path` for appending records (one JSON object per line, each written
--- with one write() and flushed, so a killed process loses at most the record
--- being written; fsync after every batch, every `fsync_every` records if set, and
--- on close, against power loss). With replace = true the records go to a
--- temporary beside `path` (rlaif.core.gz.atomic), which replaces `path` once the
--- first record is on disk: until then an existing file stays as it was (and
--- stays if nothing is written).
function M.writer(path, opts)
  opts = opts or {}
  local f, err
  if opts.replace then
    f, err = gz.atomic(path, 1 << 22)
  else
    f, err = io.open(path, "ab")
    if f then f:setvbuf("full", 1 << 22) end   -- larger than any record: one write() per record
  end
  if not f then error("labeler: cannot open output: " .. tostring(err), 2) end
  return setmetatable({ f = f, path = path, pending = opts.replace or nil, n = 0,
    since = 0, fsync_every = opts.fsync_every or math.huge }, Writer)
end

function Writer:write(rec)
  local f = self.f
  assert(f:write(json.encode(rec), "\n"))   -- both into the buffer, then one write()
  assert(f:flush())
  self.n = self.n + 1
  self.since = self.since + 1
  if self.pending then   -- the new file has content: it takes the old one's place
    self.since = 0
    local ok, perr = f:publish()
    if not ok then error("labeler: cannot replace " .. self.path .. ": " .. tostring(perr), 0) end
    self.pending = nil
  end
  if self.since >= self.fsync_every then self:sync() end
end

function Writer:sync()
  if self.since > 0 then
    local ok, err = gz.fsync(self.f)
    if not ok then error("labeler: " .. tostring(err), 0) end
    self.since = 0
  end
end

function Writer:close()
  if self.f then
    self:sync()
    -- an atomic writer: commit (after publish, a final fsync; never published,
    -- nothing was written: abort, and the old file stays)
    if self.pending then self.f:abort() elseif self.f.commit then assert(self.f:commit()) else self.f:close() end
    self.f = nil
  end
end

-- ---- labeling a dataset ----

local DONE = { ok = true, unlabeled = true }

local function iterator(dataset)
  if type(dataset) == "function" then return dataset end
  if type(dataset) == "table" and type(dataset.next) == "function" then
    return function() return dataset:next() end
  end
  if type(dataset) == "table" then
    local i = 0
    return function()
      i = i + 1
      local r = dataset[i]
      if r ~= nil and r.id == nil then r = setmetatable({ id = i }, { __index = r }) end
      return r
    end
  end
  error("labeler: dataset must be a list of records, an iterator function or an rlaif.data reader", 3)
end

local LABEL = opts_mod.schema("labeler.label", {
  out = "string", resume = { "boolean|string", check = function(v)
    return v == true or v == false or v == "mixed", 'must be true, false or "mixed", got ' .. tostring(v)
  end }, progress = "boolean|table", on_label = "function", batch = { "integer", min = 1 },
  limit = { "integer", min = 1 }, fsync_every = { "integer", min = 1 }, total = { "integer", min = 0 },
  shard = { "table", check = function(v)
    local i, n = v[1], v[2]
    return math.type(i) == "integer" and math.type(n) == "integer" and i >= 1 and i <= n,
      "must be {i, n} with 1 <= i <= n, got " .. tostring(i) .. "/" .. tostring(n)
  end },
})

-- The error a stopped labeling raises: a table with __tostring that carries the
-- summary so far; `interrupted` (Ctrl-C) or `stopped` (why) says which.
local Halt = {}
Halt.__index = Halt
Halt.__tostring = function(h) return h.message end
M.Halt = Halt

--- Label a dataset. opts: out (JSONL path; nil = keep records in memory and
--- return them), resume [true] (skip ids already labeled ok/unlabeled in `out`,
--- retry errors, cut a torn last line; the file must come from the same
--- configuration, or resume = "mixed"; false = start afresh, the old file staying
--- until the new one has a record), progress (true or rlaif.progress options),
--- total (records in the dataset, for the progress bar), on_label(record, pair),
--- batch (pairs per complete_many round [by client concurrency]), limit,
--- fsync_every [per batch only], shard = {i, n} (label only the pairs whose id falls in
--- shard i of n, rlaif.dist.shard_of; `out` may hold no other shard's pairs; `total`
--- is then the shard's count). Returns a summary {total, ok, unlabeled, error, skipped,
--- unsent, requests, prompt_tokens, completion_tokens, cost, elapsed, records (no out)}.
--- A run the client stops (Ctrl-C, a rejected key, an unreachable server) raises a
--- labeler.Halt {interrupted = true | stopped = why, summary, message} after writing
--- every finished pair; the pairs never sent get no record, so a rerun sends them.
--- `out` may not be the dataset's own file.
function Labeler:label(dataset, opts)
  opts = LABEL(opts)
  local t0 = core.clock()
  local done = {}
  local sum = { total = 0, ok = 0, unlabeled = 0, error = 0, skipped = 0, unsent = 0, requests = 0,
    prompt_tokens = 0, completion_tokens = 0, cost = 0, torn = false }
  local w
  if opts.out then
    if type(dataset) == "table" and type(dataset.path) == "string" then
      fileio.check_outputs("labeler.label", { dataset = dataset.path }, { out = opts.out })
    end
    if opts.resume ~= false then
      local by, _, torn = M.read_labels_file(opts.out)
      sum.torn = torn
      for id, r in pairs(by) do
        if opts.shard and dist.shard_of(id, opts.shard[2]) ~= opts.shard[1] then
          error(string.format("labeler.label: %s holds pair %s of shard %d/%d, not of shard %d/%d: each shard " ..
            "needs its own output file", opts.out, json.encode(id), dist.shard_of(id, opts.shard[2]), opts.shard[2],
            opts.shard[1], opts.shard[2]), 2)
        end
        if opts.resume ~= "mixed" and r.config ~= self.config_hash then
          local diff = self:config_diff(r)
          if diff then
            error(string.format("labeler.label: %s holds labels made with another configuration (%s; id %s): " ..
              "label into another file, start afresh (resume = false), or add to it anyway (resume = \"mixed\")",
              opts.out, table.concat(diff, ", "), tostring(id)), 2)
          end
        end
        if DONE[r.status] then done[id] = true end
      end
    end
    w = M.writer(opts.out, { fsync_every = opts.fsync_every, replace = opts.resume == false })
  end
  local records = (not opts.out) and {} or nil
  -- the progress bar counts the pairs of this run: all records (opts.total, or a
  -- list's length) less those already done, capped by the limit
  local total = opts.total or (type(dataset) == "table" and not dataset.next and #dataset) or nil
  if total and opts.shard and not opts.total then   -- a list: count the shard's records
    total = 0
    for k, r in ipairs(dataset) do
      if dist.shard_of(r.id == nil and k or r.id, opts.shard[2]) == opts.shard[1] then total = total + 1 end
    end
  end
  if total then
    local ndone = 0
    for _ in pairs(done) do ndone = ndone + 1 end
    total = math.max(0, total - ndone)
    if opts.limit then total = math.min(total, opts.limit) end
  end
  local bo = { label = "label", unit = "pair", total = total, quiet = not opts.progress }
  if type(opts.progress) == "table" then for k, v in pairs(opts.progress) do bo[k] = v end end
  local bar = progress.new(bo)
  local show = not bar.quiet
  local conc = type(self.client) == "table" and (self.client.concurrency or
    (self.client.config and self.client.config.concurrency))
  local batch = opts.batch or self.batch or (tonumber(conc) and math.max(256, 32 * math.floor(conc))) or 1024
  local nxt = iterator(dataset)
  if opts.shard then   -- only this shard's pairs
    local all, i, n = nxt, opts.shard[1], opts.shard[2]
    nxt = function()
      while true do
        local rec = all()
        if rec == nil or rec.id == nil or dist.shard_of(rec.id, n) == i then return rec end
      end
    end
  end
  local limit = opts.limit
  local seen = {}
  local function on_done(out, pair)
    sum[out.status] = (sum[out.status] or 0) + 1
    sum.requests = sum.requests + (out.requests or 0)
    sum.prompt_tokens = sum.prompt_tokens + out.tokens.prompt
    sum.completion_tokens = sum.completion_tokens + out.tokens.completion
    if out.cost then sum.cost = sum.cost + out.cost end
    if w then w:write(out) end
    if opts.on_label then opts.on_label(out, pair) end
    if show then bar:update(sum.ok + sum.unlabeled + sum.error, { { "errors", sum.error } }) end
  end
  local halt
  local ok, err = pcall(function()
    while not halt do
      local chunk = {}
      while #chunk < batch do
        if limit and sum.total >= limit then break end
        local rec = nxt()
        if rec == nil then break end
        if rec.id == nil then error("labeler: a record has no id", 0) end
        if done[rec.id] then
          sum.skipped = sum.skipped + 1
        elseif seen[rec.id] then
          error(string.format("labeler: duplicate id %s in the dataset", tostring(rec.id)), 0)
        else
          seen[rec.id] = true
          chunk[#chunk + 1] = rec
          sum.total = sum.total + 1
        end
      end
      if #chunk == 0 then break end
      local outs
      outs, halt = self:run_batch(chunk, on_done)
      if w then w:sync() end
      for i = 1, #chunk do
        if outs[i] == nil then sum.unsent = sum.unsent + 1
        elseif records then records[#records + 1] = outs[i] end   -- input order
      end
    end
  end)
  if w then w:close() end
  sum.elapsed = core.clock() - t0
  sum.records = records
  sum.out = opts.out
  if not ok then
    bar:abort()
    error(err, 0)
  end
  if halt then
    bar:abort()
    local what = halt.interrupted and "interrupted" or ("stopped: " .. tostring(halt.stopped))
    error(setmetatable({ interrupted = halt.interrupted, stopped = halt.stopped, summary = sum,
      message = string.format("labeler: %s; %d pair%s not sent (a rerun sends them)", what, sum.unsent,
        sum.unsent == 1 and " was" or "s were") }, Halt), 0)
  end
  bar:finish(false)
  return sum
end

--- One line for logs: "labeled 100 pairs: 98 ok, 1 unlabeled, 1 error (3 resumed) ...".
function M.summary_line(s)
  return string.format("labeled %d: %d ok, %d unlabeled, %d error%s%s; %d requests, %d+%d tokens%s, %.2f s",
    s.total, s.ok, s.unlabeled, s.error, (s.unsent or 0) > 0 and string.format(", %d not sent", s.unsent) or "",
    s.skipped > 0 and string.format(" (%d already done)", s.skipped) or "",
    s.requests, s.prompt_tokens, s.completion_tokens, s.cost > 0 and string.format(", $%.4f", s.cost) or "",
    s.elapsed or 0)
end

-- ---- merging the files of a sharded run ----

local MERGE = opts_mod.schema("labeler.merge", { force = "boolean", partial = "boolean" })

-- what makes two records' configurations differ, named for a message
local function config_mismatch(a, b)
  local ca, cb = record_config(a), record_config(b)
  local diffs = {}
  for _, k in ipairs(SHOWN) do
    if ca[k] ~= cb[k] then
      diffs[#diffs + 1] = string.format("%s %s vs %s", k, json.encode(ca[k]), json.encode(cb[k]))
    end
  end
  if #diffs == 0 and a.config ~= b.config then
    diffs[1] = string.format("other labeling options (config %s vs %s)", tostring(a.config), tostring(b.config))
  end
  return #diffs > 0 and table.concat(diffs, ", ") or nil
end

--- merge(paths, dataset, out_path [, {force = false, partial = false}]) -> report
--- Merges label files (the shards of one labeling run, rlaif label --shard) into
--- out_path: every pair of `dataset` exactly once, in the dataset's order, each
--- line copied byte for byte (the last line of an id within a file, as a resume
--- reads it). Raises, writing nothing, when the files hold labels of different
--- configurations. Writes nothing, and says why in the report, when a pair is in
--- two files (`duplicates`), a file holds a pair the dataset lacks (`extra`), or
--- pairs have no record (`missing`; partial = true writes the rest anyway). The
--- inputs are never modified (a torn last line is ignored and reported in `torn`).
--- out_path replaces an existing file only with force. report: {pairs, written
--- (nil when nothing was written), missing = {ids}, duplicates = {{id =, files =}},
--- extra = {ids}, failed (records with status "error"), unlabeled, torn = {paths},
--- records = {per input file}}.
function M.merge(paths, dataset, out_path, opts)
  opts = MERGE(opts)
  if type(paths) ~= "table" or #paths == 0 then error("labeler.merge: no label files to merge", 2) end
  local inputs = { dataset = type(dataset) == "table" and type(dataset.path) == "string" and dataset.path or nil }
  for i, p in ipairs(paths) do inputs["file " .. i] = p end
  fileio.check_outputs("labeler.merge", inputs, { out = out_path })
  local rep = { pairs = 0, missing = {}, duplicates = {}, extra = {}, failed = 0, unlabeled = 0, torn = {},
    records = {} }
  local by, from = {}, {}   -- id -> {line, record}; id -> index of its file
  local first, first_path
  for fi, path in ipairs(paths) do
    local f, err = io.open(path, "rb")
    if not f then error("labeler.merge: " .. tostring(err), 2) end
    local mine, n = {}, 0
    for line in f:lines("L") do
      n = n + 1
      if line:sub(-1) ~= "\n" then
        rep.torn[#rep.torn + 1] = path
        break
      end
      local body = line:sub(1, -2)
      if body:match("%S") then
        local r, jerr = json.decode(body)
        if type(r) ~= "table" or r.id == nil then
          f:close()
          error(string.format("labeler.merge: %s:%d: %s", path, n, jerr or "not a label record (no id)"), 2)
        end
        if first == nil then
          first, first_path = r, path
        elseif r.config ~= first.config or config_mismatch(r, first) then
          f:close()
          error(string.format("labeler.merge: %s (id %s) and %s hold labels of different configurations: %s",
            path, json.encode(r.id), first_path, config_mismatch(r, first) or "config differs"), 2)
        end
        mine[r.id] = { line = body, rec = r }
      end
    end
    f:close()
    local count = 0
    for id, e in pairs(mine) do
      count = count + 1
      if from[id] then
        rep.duplicates[#rep.duplicates + 1] = { id = id, files = { paths[from[id]], path } }
      else
        by[id], from[id] = e, fi
      end
    end
    rep.records[fi] = count
  end
  table.sort(rep.duplicates, function(a, b) return json.encode(a.id) < json.encode(b.id) end)
  -- the dataset fixes the order and says what is missing
  local order, seen = {}, {}
  local nxt = iterator(dataset)
  while true do
    local rec = nxt()
    if rec == nil then break end
    local id = rec.id
    if id == nil then error("labeler.merge: a dataset record has no id", 2) end
    if not seen[id] then
      seen[id] = true
      rep.pairs = rep.pairs + 1
      local e = by[id]
      if e then
        order[#order + 1] = e.line
        if e.rec.status == "error" then rep.failed = rep.failed + 1 end
        if e.rec.status == "unlabeled" then rep.unlabeled = rep.unlabeled + 1 end
      else
        rep.missing[#rep.missing + 1] = id
      end
    end
  end
  for id in pairs(by) do if not seen[id] then rep.extra[#rep.extra + 1] = id end end
  table.sort(rep.extra, function(a, b) return json.encode(a) < json.encode(b) end)
  if #rep.duplicates > 0 or #rep.extra > 0 or (#rep.missing > 0 and not opts.partial) then return rep end
  local w = fileio.atomic(out_path, { who = "labeler.merge", force = opts.force })
  local ok, err = pcall(function()
    for _, line in ipairs(order) do w:write(line, "\n") end
  end)
  if not ok then
    w:abort()
    error(err, 0)
  end
  w:commit()
  rep.written = #order
  return rep
end

-- ---- export for reward-model training ----

local EXPORT = opts_mod.schema("labeler.export_pairs", { force = "boolean" })

--- Write prompt/chosen/rejected (+ p = the AI's probability that `chosen` is
--- better, id) for every pair labeled ok in `labels_path`, reading the texts
--- from `dataset` (records with id, context, a, b). chosen is the response the
--- AI preferred (p >= 0.5 keeps the dataset order). HH records keep their
--- transcript: prompt ends with "\n\nAssistant:" and each response starts with
--- its space, so prompt .. chosen is the original dialogue (pairs whose two
--- transcripts differ before the last turn are skipped). The file is written
--- atomically and replaces an existing one only with opts.force; it may not be
--- the labels or the dataset file. Returns written, skipped.
function M.export_pairs(labels_path, dataset, out_path, opts)
  opts = EXPORT(opts)
  fileio.check_outputs("labeler.export_pairs", { labels = labels_path,
    dataset = type(dataset) == "table" and type(dataset.path) == "string" and dataset.path or nil },
    { out = out_path })
  local by = M.read_labels_file(labels_path, false)
  local w = fileio.atomic(out_path, { who = "labeler.export_pairs", force = opts.force })
  local n, skipped = 0, 0
  local ok, err = pcall(function()
    local nxt = iterator(dataset)
    while true do
      local rec = nxt()
      if rec == nil then break end
      local l = by[rec.id]
      local prompt, a, b = rec.context, rec.a, rec.b
      if rec.format == "hh" then
        prompt, a, b = prompt .. "\n\nAssistant:", " " .. a, " " .. b
      end
      if l and l.status == "ok" and l.p and not (rec.format == "hh" and rec.context_b) then
        local first = l.p >= 0.5
        w:write(json.encode {
          id = rec.id, prompt = prompt, chosen = first and a or b,
          rejected = first and b or a, p = first and l.p or 1 - l.p,
        }, "\n")
        n = n + 1
      else
        skipped = skipped + 1
      end
    end
  end)
  if not ok then
    w:abort()
    error(err, 0)
  end
  w:commit()
  return n, skipped
end

M.Labeler, M.Writer = Labeler, Writer
return M
