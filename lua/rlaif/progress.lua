-- rlaif.progress: the one progress facility of long work (generation, labeling,
-- evaluation, every trainer). It writes to stderr only:
--   * on a terminal, one line redrawn in place at most every `redraw` seconds:
--       label [#########.........] 120/400  30% 12.3 it/s ETA 22s  loss 1.234
--   * otherwise (a log file, CI), a plain counter line every `interval` seconds
--     (default 10); at the end a last counter line and the summary, but only when
--     the work outlasted one interval: work that ends sooner leaves no line at all,
--     so quick steps (a test's nine SFT steps) do not fill logs with summaries;
--   * nothing at all when `quiet`.
--
--   local progress = require "rlaif.progress"
--   local p = progress.new{label = "label", total = #pairs, unit = "pair"}
--   for i = 1, n do ...; p:update(i, {errors = e}) end   -- or p:add(1)
--   p:finish()            -- ends the line; prints "label: 400 pairs in 31.2 s (12.8/s)"
--
-- A bar never raises on odd input (total 0 or unknown, time going backwards,
-- NaN, huge ETAs): it is a display, not an accounting. Ctrl-C is the caller's
-- business: it calls p:finish() (or p:abort()) on the way out, which ends the line.
-- What it is not: a logger (the JSONL step logs are the trainers' own). Sets no globals.

local core = require "rlaif.core"
local opts = require "rlaif.opts"

local M = {}

--- fmt_duration(s) -> "42s", "3m07s", "2h05m", "3d04h", or "?" for unknown/negative/infinite.
function M.fmt_duration(s)
  if type(s) ~= "number" or s ~= s or s < 0 or s == math.huge then return "?" end
  local n = math.floor(s + 0.5)
  if n >= 100 * 86400 then return ">99d" end
  if n >= 86400 then return string.format("%dd%02dh", n // 86400, (n % 86400) // 3600) end
  if n >= 3600 then return string.format("%dh%02dm", n // 3600, (n % 3600) // 60) end
  if n >= 60 then return string.format("%dm%02ds", n // 60, n % 60) end
  return string.format("%ds", n)
end

--- fmt_rate(r) -> "12.3", "1.2k", "3.4M" (per second).
function M.fmt_rate(r)
  if type(r) ~= "number" or r ~= r or r == math.huge or r < 0 then return "?" end
  if r >= 1e6 then return string.format("%.1fM", r / 1e6) end
  if r >= 1e4 then return string.format("%.1fk", r / 1e3) end
  if r >= 100 then return string.format("%.0f", r) end
  return string.format("%.1f", r)
end

local function fmt_field(v)
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return tostring(v) end
    local a = math.abs(v)
    if a ~= 0 and (a < 1e-3 or a >= 1e5) then return string.format("%.3g", v) end
    return string.format("%.4g", v)
  end
  return tostring(v)
end

local NEW = opts.schema("progress.new", {
  total = { "number", min = 0 },
  label = "string",
  unit = "string",
  quiet = "boolean",
  interval = { "number", gt = 0 },
  redraw = { "number", min = 0 },
  width = { "integer", min = 5, max = 200 },
  tty = "boolean",        -- force terminal (true) or log (false) mode; default: isatty(2)
  stream = "userdata|table",  -- anything with :write and :flush (default io.stderr)
  clock = "function",     -- time source (tests), default rlaif.core.clock
})

local Bar = {}
Bar.__index = Bar

--- progress.new{total=, label=, unit=, quiet=, interval=, redraw=, width=, tty=, stream=} -> bar
function M.new(o)
  o = NEW(o)
  local clock = o.clock or core.clock
  local self = setmetatable({
    total = o.total, label = o.label or "", unit = o.unit or "it", quiet = o.quiet or false,
    interval = o.interval or 10, redraw = o.redraw or 0.1, width = o.width or 24,
    stream = o.stream or io.stderr, clock = clock, done = 0, fields = {}, t0 = clock(),
    last_draw = -math.huge, drawn = false, finished = false,
  }, Bar)
  if o.tty ~= nil then self.tty = o.tty else self.tty = core.llm.isatty(2) end
  if not self.tty then self.last_draw = self.t0 end -- the first log line comes after one interval
  return self
end

-- the text of the status line (without the leading \r)
function Bar:line()
  local el = self.clock() - self.t0
  local rate = el > 0 and self.done / el or 0
  local parts = {}
  if self.label ~= "" then parts[#parts + 1] = self.label end
  local total = self.total
  if total and total > 0 and self.tty then
    local frac = math.max(0, math.min(1, self.done / total))
    local fill = math.floor(self.width * frac)
    parts[#parts + 1] = "[" .. string.rep("#", fill) .. string.rep(".", self.width - fill) .. "]"
  end
  if total then
    local pct = total > 0 and math.floor(100 * math.max(0, math.min(1, self.done / total))) or 100
    parts[#parts + 1] = string.format("%s/%s %3d%%", fmt_field(self.done), fmt_field(total), pct)
  else
    parts[#parts + 1] = fmt_field(self.done) .. " " .. self.unit .. "s"
  end
  parts[#parts + 1] = M.fmt_rate(rate) .. " " .. self.unit .. "/s"
  if total then
    local left = total - self.done
    parts[#parts + 1] = "ETA " .. M.fmt_duration(left <= 0 and 0 or (rate > 0 and left / rate or math.huge))
  else
    parts[#parts + 1] = M.fmt_duration(el)
  end
  for _, f in ipairs(self.fields) do
    parts[#parts + 1] = f[1] .. " " .. fmt_field(f[2])
  end
  return table.concat(parts, " ")
end

function Bar:draw(force)
  if self.quiet or self.finished then return end
  local now = self.clock()
  if self.tty then
    if not force and now - self.last_draw < self.redraw then return end
    local s = self:line()
    -- pad to erase a longer previous line
    local pad = (self.last_len or 0) - #s
    self.stream:write("\r", s, pad > 0 and string.rep(" ", pad) or "")
    self.last_len = #s
  else
    if not force and now - self.last_draw < self.interval then return end
    self.stream:write(self:line(), "\n")
  end
  self.stream:flush()
  self.last_draw = now
  self.drawn = true
  self.drawn_done = self.done
end

--- bar:update(done [, fields]): set the count; fields is a list {{"loss", 1.2}, ...} or a
--- map {loss = 1.2} (shown sorted by key) of extra values for the status line.
function Bar:update(done, fields)
  if type(done) == "number" and done == done then self.done = done end
  if fields then
    if fields[1] then self.fields = fields else
      local keys = {}
      for k in pairs(fields) do keys[#keys + 1] = k end
      table.sort(keys)
      local list = {}
      for i, k in ipairs(keys) do list[i] = { k, fields[k] } end
      self.fields = list
    end
  end
  self:draw(false)
end

--- bar:add(n [, fields]): count n more (default 1).
function Bar:add(n, fields)
  self:update(self.done + (n or 1), fields)
end

--- bar:set_total(n): the total became known or changed.
function Bar:set_total(n)
  self.total = n
end

--- bar:note(msg): print a message line without garbling the bar.
function Bar:note(msg)
  if self.quiet then return end
  if self.tty and self.drawn then self.stream:write("\r", string.rep(" ", self.last_len or 0), "\r") end
  self.stream:write(msg, "\n")
  self.stream:flush()
  if self.tty and self.drawn then self:draw(true) end
end

--- bar:finish([msg]): the last draw, the end of the line, then msg or a summary line
--- "label: N units in T s (R/s)" (msg = false prints none). Not a terminal: the
--- last counter line and the summary only when a counter line was printed or the
--- work took one interval or more (an explicit msg is always printed). Idempotent.
function Bar:finish(msg)
  if self.finished then return end
  if not self.quiet then
    local long = self.drawn or self.clock() - self.t0 >= self.interval
    if self.tty then
      self:draw(true)
      if self.drawn then self.stream:write("\n") end
    elseif long and self.drawn_done ~= self.done then  -- a log shows the final count once
      self:draw(true)
    end
    self.finished = true
    if type(msg) == "string" or (msg == nil and (self.tty or long)) then
      local el = self.clock() - self.t0
      local s = msg or string.format("%s%s %s in %s (%s/s)", self.label, self.label ~= "" and ":" or "",
        fmt_field(self.done) .. " " .. self.unit .. (self.done == 1 and "" or "s"), M.fmt_duration(el),
        M.fmt_rate(el > 0 and self.done / el or 0))
      self.stream:write(s, "\n")
    end
    self.stream:flush()
  end
  self.finished = true
end

--- bar:abort([msg]): end the line after an interruption or error, without a summary.
function Bar:abort(msg)
  if self.finished then return end
  if not self.quiet and self.tty and self.drawn then self.stream:write("\n") end
  if not self.quiet and msg then self.stream:write(msg, "\n") end
  if not self.quiet then self.stream:flush() end
  self.finished = true
end

return M
