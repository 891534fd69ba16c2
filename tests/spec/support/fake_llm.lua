-- tests/spec/support/fake_llm.lua -- an in-process stand-in for an rlaif.llm
-- client (the same complete_many interface and result shapes), whose answers
-- follow a hidden preference rule plus an injected position bias.
--
-- Responses carry a hidden quality "qN" in their text. For a pairwise prompt
-- the fake finds the two responses shown (the last "X 1 - ..." / "X 2 - ..."
-- lines), and answers with P(label "1") = sigmoid(scale * (q1 - q2) + bias):
-- the mass of "1" is split between the tokens " 1" (70%) and "1" (30%), "2"
-- likewise, and 10% of the total goes to an unrelated token, so the labeler
-- must sum spelling variants and renormalize. A CoT rationale request (prompt or
-- last message ending in "Rationale:") gets a short text. Everything is
-- deterministic; `requests` records every request. A single response ("Response -
-- ..." and no pair: the harmless-rate template) gets P(label "1" = harmful) =
-- sigmoid(-scale * q + bias).
local M = {}

local function sigmoid(x) return 1 / (1 + math.exp(-x)) end
M.sigmoid = sigmoid

local function last_text(req)
  if req.prompt then return req.prompt end
  local parts = {}
  for _, m in ipairs(req.messages) do parts[#parts + 1] = m.content end
  return table.concat(parts, "\n")
end

--- The two responses shown in a prompt (the last occurrence of each).
function M.shown(text)
  local r1, r2
  for a in text:gmatch("%a+ 1 %- ([^\n]*)") do r1 = a end
  for b in text:gmatch("%a+ 2 %- ([^\n]*)") do r2 = b end
  return r1, r2
end

local function q(s) return tonumber(s:match("q(%-?%d+)")) or 0 end
M.q = q

--- A normalized response whose first generated position has these alternatives.
function M.response(alts, text, extra_positions)
  table.sort(alts, function(a, b) return a.logprob > b.logprob end)
  local tokens = { { token = alts[1].token, logprob = alts[1].logprob, top = alts } }
  for _, t in ipairs(extra_positions or {}) do tokens[#tokens + 1] = t end
  return { ok = true, text = text or alts[1].token, cached = false, latency = 0,
    usage = { prompt_tokens = 100, completion_tokens = #tokens },
    choices = { { text = text or alts[1].token, finish_reason = "length", tokens = tokens } } }
end

--- Alternatives for P(label 1) = p1 (see the header).
function M.pair_alts(p1)
  local l = math.log
  return {
    { token = " 1", logprob = l(0.9 * p1 * 0.7) }, { token = "1", logprob = l(0.9 * p1 * 0.3) },
    { token = " 2", logprob = l(0.9 * (1 - p1) * 0.7) }, { token = "2", logprob = l(0.9 * (1 - p1) * 0.3) },
    { token = " The", logprob = l(0.1) },
  }
end

--- opts: scale [0.5], bias [0] (logit added to position 1), fail = fn(req, n) -> error result or nil,
--- answer = fn(req) -> result (overrides), delay = seconds per request (busy wait), api, model.
function M.new(opts)
  opts = opts or {}
  local c = { requests = {}, api = opts.api, model = opts.model or "fake-model", concurrency = opts.concurrency,
    scale = opts.scale or 0.5, bias = opts.bias or 0, calls = 0 }
  function c.respond(req)
    if opts.answer then
      local r = opts.answer(req)
      if r then return r end
    end
    local text = last_text(req)
    if text:match("Rationale:%s*$") then
      return { ok = true, text = " Summary with the higher q is better.", cached = false,
        usage = { prompt_tokens = 100, completion_tokens = 8 },
        choices = { { text = " Summary with the higher q is better.", tokens = {} } } }
    end
    local r1, r2 = M.shown(text)
    local single = not r1 and not r2 and text:match("Response %- ([^\n]*)")
    local p1 = single and sigmoid(-c.scale * q(single) + c.bias)
      or sigmoid(c.scale * (q(r1 or "") - q(r2 or "")) + c.bias)
    return M.response(M.pair_alts(p1))
  end
  function c:complete_many(reqs, o)
    local out = {}
    self.calls = self.calls + 1
    for i, req in ipairs(reqs) do
      self.requests[#self.requests + 1] = req
      local res = opts.fail and opts.fail(req, #self.requests)
      if not res then res = c.respond(req) end
      if opts.delay then
        local t = os.clock() + opts.delay
        repeat until os.clock() >= t
      end
      out[i] = res
      if o and o.on_result then o.on_result(i, res) end
    end
    return out
  end
  return c
end

return M
