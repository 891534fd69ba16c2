-- lua/rlaif/sim.lua -- a simulated world with a known truth, where the paper's
-- RLAIF vs RLHF experiment runs offline: synthetic posts with key facts, a
-- hidden quality q(post, response), simulated human raters and a simulated AI
-- judge that answers the labeler's real prompts as an LLM client backend.
--
--   local sim = require "rlaif.sim"
--   local w = sim.world{seed = 1, sizes = {train = 3000, pref = 1000, test = 250, eval = 100}}
--   local p = w.splits.train[1]          -- {id, post, prompt, reference, subreddit, title}
--   local q, d = sim.quality(p.post, p.reference)   -- d = {covered, key, invented, words}
--   local h = sim.humans{seed = 1, noise = 0.25}
--   h:prefers(p.post, a, b)              -- 1 or 2: the response these raters prefer
--   local c = rlaif.llm.client{api = "sim", seed = 1, judge_noise = 0.05}  -- the AI judge
--   rlaif.labeler.new{client = c, template = "summarize-detailed"}:label_one{context = p.post, a = a, b = b}
--
-- The world. A post tells of a loan: an opening sentence (a relation, a name,
-- an amount), then four fact sentences in a fixed order (a store, an object, a
-- city, a company), maybe an aside without facts, and a question.
-- Its key facts are the words of the fact lexicon (sim.LEXICON) it contains; no
-- other word of a post is in the lexicon. A reference summary is written by a
-- "writer" of random care: two writers in five are careful (every fact, no
-- filler); the others keep the opening phrase and each other fact phrase with
-- probability keep ~ U(0.4, 1) and add filler words ("honestly", "long story
-- short") with probability ~ U(0, 0.6); one writer in ten swaps a fact word for
-- another of its kind with probability 0.15 per word.
-- Everything is drawn from seeded streams: the same seed gives the same world
-- on any machine.
--
-- The hidden truth (what "humans want"), a pure function of two strings:
--   F = key facts of the post, R = lexicon words of the response (distinct, lower-cased),
--   k = |F|, c = |F ∩ R| (covered), v = |R \ F| (invented), n = words of the response
--   q = c / k - 0.25 v - 0.03 n
-- A perfect summary covers every key fact, invents none and wastes no words.
-- (An invented fact costs as much as leaving out about two of a post's seven:
-- a small reward model learns coverage and filler well and invented facts
-- poorly, and a heavier weight would hide what it does learn.)
--
-- Simulated humans prefer the response with the higher q (an exact tie: a fair
-- coin), and the preference is flipped with probability `noise` (default 0.25:
-- the paper's ~75% inter-rater agreement). The coin and the flip are seeded by
-- (seed, post, response 1, response 2), so a rerun gives the same labels.
--
-- The AI judge (api = "sim"): see the header of the judge section below for
-- how it reads a prompt and the exact formula of its answers.
--
-- What it is not: no model training or sampling (rlaif.sim_pipeline drives the
-- stages), no labeling logic (rlaif.labeler), no transport (an HTTP server can
-- call judge:answer(request) as it is). Sets no globals.

local core = require "rlaif.core"
local opts = require "rlaif.opts"

local M = {}

--- The world's version: part of every cache key, bumped when the world changes.
M.VERSION = 1

-- ---- deterministic randomness ----

local MASK53 = (1 << 53) - 1
local FNV_OFFSET, FNV_PRIME = -3750763034362895579, 1099511628211 -- 64-bit FNV-1a

-- splitmix64: advances x, returns the new state and an output
local function splitmix(x)
  x = x + 0x9E3779B97F4A7C15
  local z = x
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  return x, z ~ (z >> 31)
end

--- hash(...) -> a 64-bit integer: FNV-1a over the arguments (strings or
--- integers) separated by a zero byte, finished by splitmix64.
function M.hash(...)
  local h = FNV_OFFSET
  for i = 1, select("#", ...) do
    local s = select(i, ...)
    if math.type(s) == "integer" then s = string.pack("<i8", s) else s = tostring(s) end
    for j = 1, #s do h = (h ~ s:byte(j)) * FNV_PRIME end
    h = (h ~ 0) * FNV_PRIME
  end
  local _, z = splitmix(h)
  return z
end

--- uniform(h) -> a number in [0, 1) from a 64-bit integer.
local function uniform(h) return ((h >> 11) & MASK53) / (1 << 53) end
--- uniform(h) -> a number in [0, 1) from a 64-bit integer (the top 53 bits).
M.uniform = uniform

--- normal(h) -> a standard normal number from a 64-bit integer (Box-Muller
--- over two splitmix64 outputs).
function M.normal(h)
  local s, a = splitmix(h)
  local _, b = splitmix(s)
  local u1, u2 = uniform(a), uniform(b)
  if u1 < 1e-300 then u1 = 1e-300 end
  return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
end

local Rng = {}
Rng.__index = Rng

--- rng(seed, stream) -> a splitmix64 generator: r:u() in [0, 1), r:int(n) in
--- 1..n, r:pick(list), r:chance(p).
function M.rng(seed, stream)
  return setmetatable({ s = M.hash(math.tointeger(seed) or 0, stream or "") }, Rng)
end
function Rng:u()
  local z
  self.s, z = splitmix(self.s)
  return uniform(z)
end
function Rng:int(n) return math.floor(self:u() * n) + 1 end
function Rng:pick(t) return t[self:int(#t)] end
function Rng:chance(p) return self:u() < p end
function Rng:shuffle(t)
  for i = #t, 2, -1 do
    local j = self:int(i)
    t[i], t[j] = t[j], t[i]
  end
  return t
end

-- ---- the world ----

--- The fact lexicon by kind. A post's key facts are its words in this lexicon.
M.LEXICON = {
  name = { "Anna", "Ben", "Carla", "David", "Emma", "Felix", "Grace", "Hugo", "Iris", "Jack", "Kate", "Liam", "Maya",
    "Noah", "Olga", "Paul", "Rosa", "Sam", "Tina", "Victor", "Wendy", "Yusuf", "Zoe", "Omar" },
  relation = { "sister", "brother", "roommate", "boss", "neighbor", "friend", "landlord", "coworker", "cousin",
    "teacher", "uncle", "aunt" },
  number = { "20", "35", "40", "50", "60", "75", "80", "90", "120", "150", "200", "250", "300", "350", "400", "450",
    "500", "600", "700", "800", "900", "1000", "1200", "1500" },
  store = { "Target", "Walmart", "Costco", "IKEA", "Lidl", "Aldi", "Tesco", "Zara", "Uniqlo", "Sephora", "Safeway",
    "Kroger", "Gap", "Nike", "Adidas", "Apple", "Samsung", "Amazon", "Etsy", "Ebay", "Wayfair", "Staples", "Walgreens",
    "Lowes" },
  object = { "car", "bike", "laptop", "phone", "couch", "guitar", "camera", "tent", "printer", "piano", "drone",
    "kayak", "tablet", "watch", "scooter", "sofa", "desk", "lamp", "blender", "heater", "fridge", "oven", "mixer",
    "speaker" },
  place = { "Berlin", "Boston", "Denver", "Dublin", "Lisbon", "Madrid", "Oslo", "Paris", "Prague", "Seattle",
    "Toronto", "Vienna", "Austin", "Chicago", "Miami", "Phoenix", "Portland", "Atlanta", "Dallas", "Houston", "Munich",
    "Milan", "Rome", "Zurich" },
  company = { "Google", "Microsoft", "Intel", "Oracle", "Boeing", "Ford", "Toyota", "Honda", "Nestle", "Pfizer",
    "Siemens", "Bosch", "Shell", "Visa", "Netflix", "Spotify", "Uber", "Airbnb", "Tesla", "Nvidia", "Adobe", "Cisco",
    "Dell", "Sony" },
}

--- The kinds in the order a post draws them (a fixed order: Lua's pairs() is not).
M.KINDS = { "relation", "name", "number", "store", "object", "place", "company" }

-- lower-cased lexicon word -> kind
local LEX = {}
for kind, words in pairs(M.LEXICON) do
  for _, w in ipairs(words) do LEX[w:lower()] = kind end
end
M.LEX = LEX

-- Sentences with fact slots, each with the phrase a summary uses for it (a
-- span of the sentence). The opener names the loan; the others follow in this
-- order.
M.OPENERS = {
  { "My {relation} {name} owes me {number} dollars.", "{relation} {name} owes me {number}" },
}
M.FACTS = {
  { "They spent it at {store}.", "spent it at {store}" },
  { "Then they bought a new {object}.", "bought a new {object}" },
  { "They moved to {place}.", "moved to {place}" },
  { "They now work for {company}.", "work for {company}" },
}
-- text without facts
M.ASIDES = { "The weather has been awful lately.", "I have been really tired this week.",
  "Work has been busy as usual.", "I do not like drama.", "This has dragged on and on." }
M.QUESTIONS = { "Should I ask again?", "What should I do?", "Am I wrong here?", "How do I bring it up?" }
M.FILLER = { "honestly", "long story short", "I guess", "you know", "basically", "which is annoying", "fair enough",
  "kind of" }
M.SUBREDDITS = { "personalfinance", "relationship_advice", "Advice" }
M.TITLES = { "Money problems with someone close", "Not sure how to handle this", "Need advice about a loan",
  "Is this normal?", "How do I get my money back?" }

--- The policy's input for a post.
function M.prompt_text(post) return post .. "\nTL;DR:" end

local function fill(tmpl, v)
  return (tmpl:gsub("{(%w+)}", v))
end

-- One post: its text and the summary phrases of its fact sentences, in order.
-- Every post has the same layout (the opener, the fact sentences in their
-- listed order, maybe an aside, a question), so each fact sits at the same
-- place in every post: a tiny model learns to copy facts by position within
-- its SFT budget, where it fails to learn a content-based copy reliably.
local function make_post(r)
  local v = {}
  for _, kind in ipairs(M.KINDS) do v[kind] = r:pick(M.LEXICON[kind]) end
  local sents, phrases = {}, {}
  local op = r:pick(M.OPENERS)
  sents[1], phrases[1] = fill(op[1], v), fill(op[2], v)
  for _, f in ipairs(M.FACTS) do sents[#sents + 1], phrases[#phrases + 1] = fill(f[1], v), fill(f[2], v) end
  if r:chance(0.7) then sents[#sents + 1] = r:pick(M.ASIDES) end
  sents[#sents + 1] = r:pick(M.QUESTIONS)
  return table.concat(sents, " "), phrases
end

-- Another word of the same kind as lexicon word w.
local function swap_word(r, w)
  local list = M.LEXICON[LEX[w:lower()]]
  local i = r:int(#list - 1)
  if list[i]:lower() == w:lower() then i = #list end
  return list[i]
end

--- The share of careful writers (every fact, no filler, nothing invented), and
--- of writers who swap a fact word for another of its kind (15% of the words).
M.CAREFUL, M.INVENTIVE = 0.4, 0.1

-- A reference summary of the phrases, by a writer of random care.
local function make_reference(r, phrases)
  local keep = 0.4 + 0.6 * r:u()
  local filler = 0.6 * r:u()
  local invent = r:chance(M.INVENTIVE) and 0.15 or 0
  if r:chance(M.CAREFUL) then keep, filler, invent = 1, 0, 0 end
  local parts = {}
  for i, ph in ipairs(phrases) do
    if i == 1 or r:chance(keep) then
      if invent > 0 then
        ph = ph:gsub("[%w']+", function(w)
          if LEX[w:lower()] and r:chance(invent) then return swap_word(r, w) end
        end)
      end
      if r:chance(filler) then ph = r:pick(M.FILLER) .. " " .. ph end
      parts[#parts + 1] = ph
    end
  end
  if r:chance(filler) then parts[#parts + 1] = r:pick(M.FILLER) end
  return table.concat(parts, ", ") .. "."
end

M.SPLITS = { "train", "pref", "test", "eval" }
--- Split sizes by world size: train (SFT and RL prompts), pref (reward-model
--- training pairs), test (held-out pairs for reward-model accuracy), eval
--- (held-out prompts for policy evaluation).
M.SIZES = {
  default = { train = 12000, pref = 1000, test = 300, eval = 100 },
  small = { train = 4000, pref = 400, test = 150, eval = 50 },
  tiny = { train = 300, pref = 40, test = 20, eval = 6 },   -- the mechanics in seconds; numbers meaningless
}

local WORLD = opts.schema("sim.world", {
  seed = { "integer", default = 1 },
  size = { "string", one_of = { "default", "small", "tiny" }, default = "default" },
  sizes = { "table", check = function(t)
    for k, n in pairs(t) do
      if not M.SIZES.default[k] then return false, "has an unknown split '" .. tostring(k) .. "'" end
      if math.type(n) ~= "integer" or n < 1 or n > 1e7 then
        return false, "must map splits to integers in 1..1e7, got " .. tostring(n) .. " for " .. tostring(k)
      end
    end
    return true
  end },
})

--- world{seed = 1, size = "default" | "small" | "tiny", sizes = {train =, pref =, test =, eval =}}
--- -> {seed, sizes, splits = {train = {...}, pref = ..., test = ..., eval = ...}}.
--- Each prompt: {id = "train-1", post, prompt (the policy's input), reference,
--- subreddit, title}. Every split has its own stream, so changing one size
--- leaves the other splits as they were.
function M.world(o)
  o = WORLD(o)
  local sizes = {}
  for k, n in pairs(M.SIZES[o.size]) do sizes[k] = (o.sizes and o.sizes[k]) or n end
  local w = { seed = o.seed, size = o.size, sizes = sizes, splits = {} }
  for _, split in ipairs(M.SPLITS) do
    local r = M.rng(o.seed, "world/" .. split)
    local list = {}
    for i = 1, sizes[split] do
      local post, phrases = make_post(r)
      list[i] = {
        id = split .. "-" .. i, post = post, prompt = M.prompt_text(post),
        reference = make_reference(r, phrases), subreddit = r:pick(M.SUBREDDITS), title = r:pick(M.TITLES),
      }
    end
    w.splits[split] = list
  end
  return w
end

-- ---- the hidden truth ----

--- words(text) -> the list of lower-cased words ([%w']+ runs).
function M.words(s)
  local t = {}
  for w in s:gmatch("[%w']+") do t[#t + 1] = w:lower() end
  return t
end

--- facts(text) -> set of lexicon words (lower-cased), count
function M.facts(s)
  local set, n = {}, 0
  for w in s:gmatch("[%w']+") do
    w = w:lower()
    if LEX[w] and not set[w] then
      set[w] = true
      n = n + 1
    end
  end
  return set, n
end

M.Q = { invented = 0.25, per_word = 0.03 }

--- quality(post, response) -> q, {covered = c, key = k, invented = v, words = n}
--- q = c / k - 0.25 v - 0.03 n (see the header); k = 0 counts as no coverage.
function M.quality(post, response)
  local F, k = M.facts(post)
  local c, v, n = 0, 0, 0
  local seen = {}
  for w in response:gmatch("[%w']+") do
    n = n + 1
    w = w:lower()
    if LEX[w] and not seen[w] then
      seen[w] = true
      if F[w] then c = c + 1 else v = v + 1 end
    end
  end
  local q = (k > 0 and c / k or 0) - M.Q.invented * v - M.Q.per_word * n
  return q, { covered = c, key = k, invented = v, words = n }
end

--- word_count(text) -> number of words (the unit of the length bias and of mean_length).
function M.word_count(s)
  local n = 0
  for _ in s:gmatch("[%w']+") do n = n + 1 end
  return n
end

-- ---- simulated humans ----

local Humans = {}
Humans.__index = Humans

local HUMANS = opts.schema("sim.humans", {
  seed = { "integer", default = 1 },
  noise = { "number", min = 0, max = 1, default = 0.25 },
})

--- humans{seed = 1, noise = 0.25} -> raters with h:prefers(post, a, b) -> 1 | 2
function M.humans(o)
  o = HUMANS(o)
  return setmetatable({ seed = o.seed, noise = o.noise }, Humans)
end

--- h:prefers(post, a, b) -> 1 or 2 (the preferred response), q_a, q_b
function Humans:prefers(post, a, b)
  local qa, qb = M.quality(post, a), M.quality(post, b)
  local h = M.hash(self.seed, "human", post, a, b)
  local s, z1 = splitmix(h)
  local _, z2 = splitmix(s)
  local pick
  if qa > qb then pick = 1 elseif qb > qa then pick = 2 else pick = uniform(z1) < 0.5 and 1 or 2 end
  if uniform(z2) < self.noise then pick = 3 - pick end
  return pick, qa, qb
end

--- truth(post, a, b) -> 1, 2 or 0 (a tie): the response with the higher q.
function M.truth(post, a, b)
  local qa, qb = M.quality(post, a), M.quality(post, b)
  if qa > qb then return 1, qa, qb elseif qb > qa then return 2, qa, qb end
  return 0, qa, qb
end

-- ---- the simulated AI judge ----
--
-- Reading a prompt. The text is the request's `prompt`, or its `messages`'
-- contents joined by blank lines. A pairwise prompt holds two consecutive lines
-- "<L> 1 - <a>" and "<L> 2 - <b>" with the same label L ("Summary", "Response");
-- the last such pair is the sample (exemplars come before it, a CoT rationale
-- after). The context is the nearest line above them of the form "<Label> -
-- <text>" ("Text - ...", "Context - "; the lines down to the responses are part
-- of it). A score prompt (d-RLAIF) holds a line "SUMMARY: <y>" or "RESPONSE: <y>"
-- (the last one) and, above it, "POST: <x>" (else "TEXT: <x>" or "Context - <x>").
-- This covers every template shipped in prompts/ except the harmless ones
-- (whose label names the worse response: the sim judge always names the better).
--
-- Judging. For a response y to context x:
--   q̂(y) = q(x, y) + judge_noise · ε(seed, x, y) + judge_length_bias · words(y) / 10
-- with ε a standard normal drawn from a hash of (seed, x, y): the judge's
-- opinion of a response is fixed, whatever it is compared with and in either
-- order, and a rerun gives the same answers.
--   pairwise: z = judge_scale · (q̂(y1) − q̂(y2)) + judge_position_bias   (y1 shown first)
--             logprob("1") = log σ(z), logprob("2") = log σ(−z)
--   score:    μ = 1 + 9 · σ(4 · (q̂(y) − 0.25))
--             logprob("k") = log softmax_k(−(k − μ)² / 2), k = 1..10 ("10" is one token)
-- A label request (max_tokens <= 8 and the text does not end in "Rationale:")
-- is answered with one token: the top label at temperature 0, else a label drawn
-- from the distribution (seeded by (seed, text, request.seed or request.sample
-- or a per-client counter)); with `logprobs = K` the top K labels and their
-- log-probabilities. A rationale request (CoT step 1) is answered with a short
-- rationale that lists the facts each response mentions and names the one the
-- judge prefers; the rationale does not change the judge's later answer.
-- Usage counts are approximate: prompt tokens = ceil(bytes / 4), completion
-- tokens = words of the answer (1 for a label).

local Judge = {}
Judge.__index = Judge

M.JUDGE_DEFAULTS = { judge_noise = 0.05, judge_position_bias = 0.5, judge_length_bias = 0, judge_scale = 10 }

local JUDGE_SPECS = {
  seed = { "integer", default = 1 },
  judge_noise = { "number", min = 0, max = 100, default = M.JUDGE_DEFAULTS.judge_noise },
  judge_position_bias = { "number", min = -100, max = 100, default = M.JUDGE_DEFAULTS.judge_position_bias },
  judge_length_bias = { "number", min = -100, max = 100, default = M.JUDGE_DEFAULTS.judge_length_bias },
  judge_scale = { "number", gt = 0, max = 1e4, default = M.JUDGE_DEFAULTS.judge_scale },
}
local JUDGE = opts.schema("sim.judge", JUDGE_SPECS)

--- judge{seed = 1, judge_noise = 0.05, judge_position_bias = 0.5,
---       judge_length_bias = 0, judge_scale = 10} -> a judge (the formula above)
function M.judge(o)
  o = JUDGE(o)
  return setmetatable({
    seed = o.seed, noise = o.judge_noise, position_bias = o.judge_position_bias,
    length_bias = o.judge_length_bias, scale = o.judge_scale,
  }, Judge)
end

--- j:quality(context, response) -> q̂, q, details (sim.quality's)
function Judge:quality(x, y)
  local q, d = M.quality(x, y)
  local qh = q + self.length_bias * d.words / 10
  if self.noise > 0 then qh = qh + self.noise * M.normal(M.hash(self.seed, "judge", x, y)) end
  return qh, q, d
end

local function log_sigmoid(z)
  if z >= 0 then return -math.log(1 + math.exp(-z)) end
  return z - math.log(1 + math.exp(z))
end

--- j:pairwise(context, y1, y2) -> logprob("1"), logprob("2"), z (y1 shown first)
function Judge:pairwise(x, y1, y2)
  local z = self.scale * (self:quality(x, y1) - self:quality(x, y2)) + self.position_bias
  return log_sigmoid(z), log_sigmoid(-z), z
end

--- j:score(context, y) -> {logprob of "1", ..., of "10"}, μ
function Judge:score(x, y)
  local qh = self:quality(x, y)
  local mu = 1 + 9 / (1 + math.exp(-4 * (qh - 0.25)))
  local ls, m = {}, -math.huge
  for k = 1, 10 do
    ls[k] = -(k - mu) ^ 2 / 2
    if ls[k] > m then m = ls[k] end
  end
  local s = 0
  for k = 1, 10 do s = s + math.exp(ls[k] - m) end
  local lse = m + math.log(s)
  for k = 1, 10 do ls[k] = ls[k] - lse end
  return ls, mu
end

-- ---- reading prompts ----

local function lines_of(text)
  local t = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do t[#t + 1] = (l:gsub("\r$", "")) end
  return t
end

local function find_context(lines, above, patterns)
  for i = above - 1, 1, -1 do
    for _, pat in ipairs(patterns) do
      local c = lines[i]:match(pat)
      if c then
        local parts = { c }
        for j = i + 1, above - 1 do parts[#parts + 1] = lines[j] end
        return table.concat(parts, "\n")
      end
    end
  end
  return nil
end

--- parse_prompt(text) -> {kind = "pairwise", context, a, b, label} |
--- {kind = "score", context, response, label} | nil, reason (see above).
function M.parse_prompt(text)
  if type(text) ~= "string" then return nil, "the prompt is not text" end
  local lines = lines_of(text)
  for i = #lines - 1, 1, -1 do
    local label, a = lines[i]:match("^(%a[%w ]-) 1 %- (.*)$")
    if label then
      local b = lines[i + 1]:match("^" .. label:gsub("%p", "%%%0") .. " 2 %- (.*)$")
      if b then
        local ctx = find_context(lines, i, { "^%a[%w ]- %- (.*)$" })
        if not ctx then return nil, "no context line (like 'Text - ...') above the responses" end
        return { kind = "pairwise", context = ctx, a = a, b = b, label = label }
      end
    end
  end
  for i = #lines, 1, -1 do
    local label, y = lines[i]:match("^(SUMMARY): ?(.*)$")
    if not label then label, y = lines[i]:match("^(RESPONSE): ?(.*)$") end
    if label then
      local ctx = find_context(lines, i, { "^POST: ?(.*)$" }) or find_context(lines, i, { "^TEXT: ?(.*)$" }) or
        find_context(lines, i, { "^Context %- (.*)$" })
      if not ctx then return nil, "no 'POST: ...' line above the " .. label .. " line" end
      return { kind = "score", context = ctx, response = y, label = label }
    end
  end
  return nil, "found neither two responses ('Summary 1 - ...' / 'Summary 2 - ...') nor a 'SUMMARY: ...' line"
end

-- ---- answering requests ----

local function fail(kind, message)
  return { ok = false, kind = kind, message = message, attempts = 1 }
end

local function request_text(req)
  if req.prompt ~= nil and req.messages ~= nil then return nil, "give either prompt or messages, not both" end
  if type(req.prompt) == "string" then return req.prompt end
  if req.prompt ~= nil then return nil, "the sim judge reads text prompts (got " .. type(req.prompt) .. ")" end
  if type(req.messages) == "table" and #req.messages > 0 then
    local parts = {}
    for i, m in ipairs(req.messages) do
      if type(m) ~= "table" or type(m.content) ~= "string" then
        return nil, string.format("messages[%d] must be {role = string, content = string}", i)
      end
      parts[i] = m.content
    end
    return table.concat(parts, "\n\n")
  end
  return nil, "a request needs prompt (text) or messages"
end

local function list_facts(set)
  local t = {}
  for w in pairs(set) do t[#t + 1] = w end
  table.sort(t)
  return #t > 0 and table.concat(t, ", ") or "none"
end

-- The rationale of CoT step 1: what each response mentions, and the verdict.
function Judge:_rationale(s)
  local F, k = M.facts(s.context)
  local function about(name, y)
    local R = M.facts(y)
    local cov, inv = {}, {}
    for w in pairs(R) do if F[w] then cov[w] = true else inv[w] = true end end
    local nc = 0
    for _ in pairs(cov) do nc = nc + 1 end
    return string.format("%s mentions %d of the %d key facts (%s), invents %s and has %d words.", name, nc, k,
      list_facts(cov), list_facts(inv), M.word_count(y))
  end
  if s.kind == "score" then
    local _, mu = self:score(s.context, s.response)
    return about("The " .. s.label:lower(), s.response) ..
      string.format(" Overall it deserves about %d out of 10.", math.floor(mu + 0.5))
  end
  local _, _, z = self:pairwise(s.context, s.a, s.b)
  return about(s.label .. " one", s.a) .. " " .. about(s.label .. " two", s.b) ..
    string.format(" Overall %s %s is better.", s.label, z >= 0 and "1" or "2")
end

--- j:answer(req [, draw]) -> a response in the rlaif.llm shape, or an error
--- result {ok = false, kind = "invalid", message}. `draw` numbers sampled
--- requests that carry neither seed nor sample. Pure: no state, no I/O.
function Judge:answer(req, draw)
  if type(req) ~= "table" then return fail("invalid", "a request must be a table") end
  local text, err = request_text(req)
  if not text then return fail("invalid", err) end
  local mt = req.max_tokens
  if mt ~= nil and (math.type(mt) ~= "integer" or mt < 1) then return fail("invalid", "max_tokens must be >= 1") end
  local temp = req.temperature
  if temp ~= nil and (type(temp) ~= "number" or temp ~= temp or temp < 0) then
    return fail("invalid", "temperature must be a number >= 0")
  end
  local lp = req.logprobs
  if lp == true then lp = 0 end
  if lp ~= nil and lp ~= false and (math.type(lp) ~= "integer" or lp < 0) then
    return fail("invalid", "logprobs must be an integer K >= 0")
  end
  local s, why = M.parse_prompt(text)
  if not s then return fail("invalid", "sim judge: " .. why) end
  local usage = { prompt_tokens = (#text + 3) // 4 }
  local rationale = text:match("Rationale:%s*$") ~= nil or (mt or 16) > 8
  if rationale then
    local r = self:_rationale(s)
    usage.completion_tokens = M.word_count(r)
    return { ok = true, text = r, kind = "rationale", usage = usage,
      choices = { { index = 0, text = r, finish_reason = "stop", tokens = {} } } }
  end
  local labels, ls = {}
  if s.kind == "pairwise" then
    local l1, l2 = self:pairwise(s.context, s.a, s.b)
    labels, ls = { "1", "2" }, { l1, l2 }
  else
    ls = self:score(s.context, s.response)
    for k = 1, 10 do labels[k] = tostring(k) end
  end
  -- the answer: the top label (greedy) or a draw
  local order = {}
  for k = 1, #labels do order[k] = k end
  table.sort(order, function(a, b)
    if ls[a] ~= ls[b] then return ls[a] > ls[b] end
    return a < b
  end)
  local pick = order[1]
  if (temp or 1) > 0 and req.top_k ~= 1 then
    local n = req.seed or req.sample or draw or 0
    local u = uniform(M.hash(self.seed, "draw", text, math.tointeger(n) or 0))
    local acc = 0
    for _, k in ipairs(order) do
      acc = acc + math.exp(ls[k])
      pick = k
      if u < acc then break end
    end
  end
  local tok = { token = labels[pick], bytes = labels[pick], logprob = ls[pick], top = {} }
  if lp and lp ~= false then
    for j = 1, math.min(lp, #order) do
      local k = order[j]
      tok.top[j] = { token = labels[k], bytes = labels[k], logprob = ls[k] }
    end
  end
  usage.completion_tokens = 1
  return { ok = true, text = labels[pick], kind = s.kind, usage = usage,
    choices = { { index = 0, text = labels[pick], finish_reason = "stop", tokens = lp and { tok } or {} } } }
end

-- ---- the client (api = "sim") ----

local Client = {}
Client.__index = Client
Client.__name = "rlaif.llm.client"
Client.__tostring = function(c)
  return string.format("rlaif.llm.client(api=sim, model=%s)", c.model)
end

local CLIENT_SPECS = {
  api = { "string", one_of = { "sim" } },
  model = "string",
  prices = "table",
  concurrency = { "integer", min = 1 },
  -- transport options of the HTTP backends: accepted and ignored, so one configuration works for all
  base_url = "string", api_key = "string", api_key_env = "string", max_retries = "integer", timeout = "number",
  connect_timeout = "number", stall_timeout = "number", backoff_base = "number", backoff_cap = "number",
  retry_after_cap = "number", aimd = "boolean", cache = "string", headers = "table", ca_file = "string",
  stream = "boolean",
}
for k, v in pairs(JUDGE_SPECS) do CLIENT_SPECS[k] = v end
local CLIENT = opts.schema("llm.client{api = \"sim\"}", CLIENT_SPECS)
local MANY = opts.schema("llm.complete_many", {
  progress = "boolean|table", on_result = "function", summary = "boolean",
})

--- client{api = "sim", seed =, judge_noise =, judge_position_bias =, judge_length_bias =,
---        judge_scale =, model = "sim-judge", prices =} -> a client with the rlaif.llm
--- interface, answered by sim.judge (the transport options of rlaif.llm are accepted
--- and ignored). c.judge is the judge; c:stats().sim counts pairwise, score and
--- rationale (CoT) requests.
function M.client(o)
  o = CLIENT(o)
  local j = M.judge { seed = o.seed, judge_noise = o.judge_noise, judge_position_bias = o.judge_position_bias,
    judge_length_bias = o.judge_length_bias, judge_scale = o.judge_scale }
  local self = setmetatable({ api = "sim", model = o.model or "sim-judge", judge = j, prices = o.prices,
    concurrency = o.concurrency or 64, _draws = 0 }, Client)
  self:reset_stats()
  return self
end

function Client:_account(res)
  local s = self._st
  s.requests = s.requests + 1
  if res.ok then
    s.ok = s.ok + 1
    local m = s.models[self.model]
    if not m then
      m = { requests = 0, prompt_tokens = 0, completion_tokens = 0 }
      s.models[self.model] = m
    end
    m.requests = m.requests + 1
    m.prompt_tokens = m.prompt_tokens + res.usage.prompt_tokens
    m.completion_tokens = m.completion_tokens + res.usage.completion_tokens
    s.sim[res.kind] = s.sim[res.kind] + 1
  else
    s.errors[res.kind] = (s.errors[res.kind] or 0) + 1
  end
end

--- c:complete_many(reqs [, {progress=, on_result=, summary=}]) -> results, info
--- results[i] answers reqs[i]: a response (ok = true) or an error result.
function Client:complete_many(reqs, o)
  o = MANY(o)
  if type(reqs) ~= "table" then error("llm.complete_many: requests must be a list", 2) end
  local t0 = core.clock()
  local bo = { label = "judge", unit = "req", total = #reqs, quiet = not o.progress }
  if type(o.progress) == "table" then for k, v in pairs(o.progress) do bo[k] = v end end
  local bar = require("rlaif.progress").new(bo)
  local results, nfail = {}, 0
  for i = 1, #reqs do
    local req = reqs[i]
    local draw = nil
    if type(req) == "table" and req.seed == nil and req.sample == nil then
      self._draws = self._draws + 1
      draw = self._draws
    end
    local t1 = core.clock()
    local res = self.judge:answer(req, draw)
    if res.ok then
      res.model, res.latency, res.attempts, res.cached = self.model, core.clock() - t1, 1, false
      self._ids = self._ids + 1
      res.id = "sim-" .. self._ids
    else
      nfail = nfail + 1
    end
    results[i] = res
    self:_account(res)
    if o.on_result then o.on_result(i, res) end
    if i % 256 == 0 or i == #reqs then bar:update(i, { { "errors", nfail } }) end
  end
  bar:finish(false)
  local el = core.clock() - t0
  local info = { interrupted = false, ok = #reqs - nfail, failed = nfail, cached = 0, elapsed = el }
  info.summary = string.format("llm: %d requests, %d ok (0 cached), %d failed in %.2f s (%.1f req/s)", #reqs,
    info.ok, nfail, el, el > 0 and #reqs / el or 0)
  if o.summary or (o.summary == nil and o.progress) then io.stderr:write(info.summary, "\n") end
  return results, info
end

--- c:try_complete(req), c:complete(req): one request through complete_many
require("rlaif.llm_common").add_single(Client)

--- c:stats() -> the rlaif.llm stats shape, plus sim = {pairwise =, score =, rationale =}.
function Client:stats()
  local s = self._st
  local failed, errors = 0, {}
  for k, v in pairs(s.errors) do
    errors[k] = v
    failed = failed + v
  end
  local common = require "rlaif.llm_common"
  local models, cost = {}, 0
  for name, m in pairs(s.models) do
    local c = { requests = m.requests, prompt_tokens = m.prompt_tokens, completion_tokens = m.completion_tokens }
    c.cost = common.cost(self.prices, name, m)
    cost = cost + (c.cost or 0)
    models[name] = c
  end
  return {
    requests = s.requests, attempts = s.requests, retries = 0, cache_hits = 0, ok = s.ok, duplicates = 0,
    concurrency = self.concurrency, errors = errors, failed = failed, models = models, latency = { n = 0 },
    cost = cost, sim = { pairwise = s.sim.pairwise, score = s.sim.score, rationale = s.sim.rationale },
  }
end

--- c:summary() -> one line describing the stats so far.
function Client:summary()
  local s = self:stats()
  return require("rlaif.llm_common").summary(s, self.prices) ..
    string.format(" (sim judge: %d pairwise, %d score, %d rationale)", s.sim.pairwise, s.sim.score, s.sim.rationale)
end

function Client:reset_stats()
  self._st = { requests = 0, ok = 0, errors = {}, models = {}, sim = { pairwise = 0, score = 0, rationale = 0 } }
  self._ids = 0
end

--- c:set_concurrency(n): accepted for the interface (the judge answers in-process).
function Client:set_concurrency(n)
  if math.type(n) ~= "integer" or n < 1 then error("llm.set_concurrency: n must be an integer >= 1", 2) end
  self.concurrency = n
end

function Client:close() end -- luacheck: ignore 212 (nothing to free)
Client.__close = Client.close

-- ---- the experiment ----

--- pipeline(opts) -> the stages of `rlaif sim` over one directory (rlaif.sim_pipeline).
function M.pipeline(o) return require("rlaif.sim_pipeline").new(o) end

--- format_results(results) -> the tables `rlaif sim` prints.
function M.format_results(r) return require("rlaif.sim_pipeline").format_results(r) end

return M
