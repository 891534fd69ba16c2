-- rlaif.llm_common: what the HTTP client (rlaif.llm) and the in-process one
-- (rlaif.llm_local) share, so both look the same to a caller: the raised error
-- object, the progress bar (rlaif.progress), the batch info and its summary line, prices
-- and the stats summary line. Internal to the two clients, not a public API.
-- Holds no state and sets no globals.

local core = require "rlaif.core"

local M = {}

--- The raised form of a failed result: a table with __tostring, so the REPL and
--- scripts print "llm.complete: http 429: ... (3 attempts)".
M.Error = {}
M.Error.__index = M.Error
M.Error.__tostring = function(e)
  return string.format("llm.complete: %s%s: %s (%d attempt%s)", e.kind, e.status and (" " .. e.status) or "",
    e.message or "?", e.attempts or 0, e.attempts == 1 and "" or "s")
end

--- add_single(Client): c:try_complete(req) and c:complete(req) for a client whose
--- c:complete_many(reqs) answers in order (the in-process and simulated clients).
function M.add_single(Client)
  --- c:try_complete(req) -> response | nil, err (err: the failed result, an M.Error)
  function Client:try_complete(req)
    local res = self:complete_many({ req })[1]
    if res.ok then return res end
    return nil, setmetatable(res, M.Error)
  end
  --- c:complete(req) -> response; raises the failed result (a table with __tostring).
  function Client:complete(req)
    local res = self:complete_many({ req })[1]
    if res.ok then return res end
    error(setmetatable(res, M.Error), 2)
  end
end

-- ---- progress (rlaif.progress: a bar on a terminal, counter lines in a log) ----

--- bar(progress, total) -> an rlaif.progress bar over `total` requests, silent unless
--- `progress` is true or a table of rlaif.progress.new options (tty, stream, clock, ...).
function M.bar(progress, total)
  local o = { label = "llm", unit = "req", total = total, quiet = not progress }
  if type(progress) == "table" then for k, v in pairs(progress) do o[k] = v end end
  return require("rlaif.progress").new(o)
end

-- ---- accounting ----

--- finish_batch(results, interrupted, t0, bar, opts [, stopped]) -> info for complete_many:
--- {interrupted=, stopped=, ok=, failed=, cached=, elapsed=, summary=}. Ends the
--- progress bar, and prints the summary when opts.summary (default: when the bar
--- was shown, i.e. opts.progress).
function M.finish_batch(results, interrupted, t0, bar, opts, stopped)
  local info = { interrupted = interrupted or false, stopped = stopped, ok = 0, failed = 0, cached = 0,
    elapsed = core.clock() - t0 }
  for i = 1, #results do
    local r = results[i]
    if r.ok then
      info.ok = info.ok + 1
      if r.cached then info.cached = info.cached + 1 end
    else
      info.failed = info.failed + 1
    end
  end
  info.summary = string.format("llm: %d requests, %d ok (%d cached), %d failed%s in %.2f s (%.1f req/s)",
    #results, info.ok, info.cached, info.failed, interrupted and ", INTERRUPTED" or (stopped and ", STOPPED" or ""),
    info.elapsed, info.elapsed > 0 and #results / info.elapsed or 0)
  bar:update(info.ok + info.failed, { { "errors", info.failed } })
  bar:finish(false)
  if opts.summary or (opts.summary == nil and opts.progress) then
    bar.stream:write(info.summary, stopped and ("\nllm: stopped: " .. stopped) or "", "\n")
  end
  return info
end

--- cost(prices, name, m) -> dollars for model `name`'s m.prompt_tokens and
--- m.completion_tokens, or nil when `prices` = {model = {prompt = $/1M tokens,
--- completion = $/1M}} has no entry for it.
function M.cost(prices, name, m)
  local p = prices and prices[name]
  if not p then return nil end
  return (m.prompt_tokens * (p.prompt or 0) + m.completion_tokens * (p.completion or 0)) / 1e6
end

--- summary(s, priced) -> one line describing stats `s` (the c:stats() shape); the
--- cost is shown when `priced`.
function M.summary(s, priced)
  local errs = {}
  for k, v in pairs(s.errors) do errs[#errs + 1] = k .. " " .. v end
  table.sort(errs)
  local ptok, ctok = 0, 0
  for _, m in pairs(s.models) do ptok, ctok = ptok + m.prompt_tokens, ctok + m.completion_tokens end
  local lat = s.latency
  return string.format("llm: %d requests, %d ok, %d failed%s, %d cache hits, %d retries, tokens %d+%d%s%s",
    s.requests, s.ok, s.failed, #errs > 0 and (" (" .. table.concat(errs, ", ") .. ")") or "", s.cache_hits,
    s.retries, ptok, ctok,
    lat.p50 and string.format(", latency p50 %.0f ms p99 %.0f ms", lat.p50 * 1000, lat.p99 * 1000) or "",
    priced and string.format(", $%.4f", s.cost) or "")
end

return M
