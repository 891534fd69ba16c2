-- lua/rlaif/data.lua -- streaming dataset readers for labeling: .jsonl and
-- .jsonl.gz (one JSON object per line, read through zlib), or a .json file
-- holding one object or an array of objects.
--
-- Every reader yields the same record shape:
--   pairwise  {id=, line=, context=, a=, b=, human=1|2|nil, confidence=, fields={...}, context_b=}
--             a is the dataset's FIRST response (HH `chosen`, summaries[1], TRL `chosen`), b the
--             second; human = which one people preferred (1 = a), when the data says so;
--             context_b only when the second transcript's context differs from the first's;
--             format = "hh" for HH transcripts (context ends before "\n\nAssistant:").
--   tldr      {id=, line=, context=post, response=summary, fields={subreddit, title, post}}
-- `id` comes from the data when it has one (an `id` field, or the user-named one), else it is
-- the line number; `fields` holds extra slots for templates (subreddit, title, post, ...).
--
-- A malformed line stops with "FILE:LINE: why" (an error value, not a crash), or with
-- skip_bad = true is skipped and counted in reader.stats (bad, first messages), never silently.
--
--   local data = require "rlaif.data"
--   for rec in data.each("hh.jsonl.gz", {format = "hh"}) do ... end
--   local recs, stats = data.read(path, {format = "comparisons", skip_bad = true})
--
-- What it is not: no labeling and no writing (rlaif.labeler writes labels).

local core = require "rlaif.core"
local json, gz = core.json, core.gz

local M = {}
local NULL = json.null

M.formats = { "hh", "comparisons", "tldr", "pairs" }

-- ---- HH-RLHF transcripts ----

local ASSISTANT = "\n\nAssistant:"

local function last_find(s, pat)
  local last, from = nil, 1
  while true do
    local i = s:find(pat, from, true)
    if not i then return last end
    last, from = i, i + 1
  end
end

--- Split an HH transcript at its last "\n\nAssistant:" turn: returns the context
--- (everything before the marker, exactly) and the response (after "\n\nAssistant: ").
--- nil, why when there is no assistant turn.
function M.split_hh(t)
  local i = last_find(t, ASSISTANT)
  if not i then return nil, "no '\\n\\nAssistant:' turn" end
  local ctx = t:sub(1, i - 1)
  local rest = t:sub(i + #ASSISTANT)
  if rest:sub(1, 1) == " " then rest = rest:sub(2) end
  return ctx, rest
end

--- Inverse of split_hh: context .. "\n\nAssistant: " .. response.
function M.join_hh(context, response)
  return context .. ASSISTANT .. " " .. response
end

-- ---- field access ----

local function str_field(obj, key, what)
  local v = obj[key]
  if v == nil or v == NULL then return nil, string.format("field '%s' missing", what or key) end
  if type(v) ~= "string" then
    return nil, string.format("field '%s' is a %s, expected a string", what or key, type(v) == "userdata" and
      "null" or type(v))
  end
  return v
end

-- A conversational value (TRL's list of {role, content}) as one text.
local function messages_text(v)
  local out = {}
  for _, m in ipairs(v) do
    if type(m) ~= "table" or type(m.content) ~= "string" then return nil end
    local role = type(m.role) == "string" and m.role or "user"
    out[#out + 1] = (role:sub(1, 1):upper() .. role:sub(2)) .. ": " .. m.content
  end
  return table.concat(out, "\n\n")
end

local function text_field(obj, key)
  local v = obj[key]
  if type(v) == "table" then
    local s = messages_text(v)
    if s then return s end
    return nil, string.format("field '%s' is neither a string nor a list of {role, content} messages", key)
  end
  return str_field(obj, key)
end

local function data_id(obj, key, line)
  local v = obj[key or "id"]
  if type(v) == "string" or math.type(v) == "integer" then return v end
  if key and key ~= "id" then return nil, string.format("id field '%s' missing or not a string/integer", key) end
  return line
end

-- ---- per-format converters: obj, line, opts -> record | nil, why ----

local conv = {}

function conv.hh(o, line, opts)
  local c, err = str_field(o, "chosen")
  if not c then return nil, err end
  local r
  r, err = str_field(o, "rejected")
  if not r then return nil, err end
  local ctx, a = M.split_hh(c)
  if not ctx then return nil, "field 'chosen': " .. a end
  local ctx_b, b = M.split_hh(r)
  if not ctx_b then return nil, "field 'rejected': " .. b end
  local id
  id, err = data_id(o, opts.fields and opts.fields.id, line)
  if id == nil then return nil, err end
  return { id = id, line = line, context = ctx, a = a, b = b, human = 1, format = "hh",
    context_b = ctx_b ~= ctx and ctx_b or nil }
end

function conv.comparisons(o, line, opts)
  local info = o.info
  if type(info) ~= "table" then return nil, "field 'info' missing or not an object" end
  local post = info.post
  if post == nil or post == NULL then post = info.article end
  if type(post) ~= "string" then return nil, "field 'info.post' (or 'info.article') missing or not a string" end
  local s = o.summaries
  if type(s) ~= "table" or #s ~= 2 then return nil, "field 'summaries' must be an array of 2 summaries" end
  for i = 1, 2 do
    if type(s[i]) ~= "table" or type(s[i].text) ~= "string" then
      return nil, string.format("field 'summaries[%d].text' missing or not a string", i)
    end
  end
  local choice = o.choice
  local human
  if choice ~= nil and choice ~= NULL then
    if choice ~= 0 and choice ~= 1 then return nil, "field 'choice' must be 0 or 1" end
    human = choice + 1
  end
  local conf
  if type(o.extra) == "table" and type(o.extra.confidence) == "number" then conf = o.extra.confidence end
  local id, err = data_id(o, opts.fields and opts.fields.id, line)
  if id == nil then return nil, err end
  local fields = {
    subreddit = type(info.subreddit) == "string" and info.subreddit or "",
    title = type(info.title) == "string" and info.title or "",
    post = post,
  }
  return { id = id, line = line, context = post, a = s[1].text, b = s[2].text, human = human,
    confidence = conf, post_id = type(info.id) == "string" and info.id or nil, fields = fields,
    batch = type(o.batch) == "string" and o.batch or nil }
end

function conv.tldr(o, line, opts)
  local post, err = str_field(o, "post")
  if not post then return nil, err end
  local summary = o.summary
  if summary == NULL then summary = nil end
  if summary ~= nil and type(summary) ~= "string" then return nil, "field 'summary' is not a string" end
  local id
  id, err = data_id(o, opts.fields and opts.fields.id, line)
  if id == nil then return nil, err end
  return { id = id, line = line, context = post, response = summary,
    fields = { subreddit = type(o.subreddit) == "string" and o.subreddit or "",
      title = type(o.title) == "string" and o.title or "", post = post } }
end

function conv.pairs(o, line, opts)
  local f = opts.fields or {}
  local pk, ck, rk = f.prompt or f.context or "prompt", f.chosen or f.a or "chosen", f.rejected or f.b or "rejected"
  local p, err
  if o[pk] == nil and not f.prompt and not f.context then
    p = ""   -- TRL's implicit-prompt form: the prompt is inside chosen/rejected
  else
    p, err = text_field(o, pk)
    if not p then return nil, err end
  end
  local a
  a, err = text_field(o, ck)
  if not a then return nil, err end
  local b
  b, err = text_field(o, rk)
  if not b then return nil, err end
  local id
  id, err = data_id(o, f.id, line)
  if id == nil then return nil, err end
  local human = 1
  if f.label then   -- a user-named field saying which one people preferred (1/2, or 0/1 with label_base=0)
    local v = o[f.label]
    if v == nil or v == NULL then
      human = nil
    elseif math.type(v) ~= "integer" then
      return nil, string.format("field '%s' is not an integer", f.label)
    else
      human = v + 1 - (f.label_base or 1)
      if human ~= 1 and human ~= 2 then return nil, string.format("field '%s' out of range", f.label) end
    end
  end
  return { id = id, line = line, context = p, a = a, b = b, human = human }
end

--- Guess the format from one decoded object.
function M.detect(o)
  if type(o.summaries) == "table" and type(o.info) == "table" then return "comparisons" end
  if o.prompt ~= nil and o.chosen ~= nil then return "pairs" end
  if type(o.chosen) == "string" and type(o.rejected) == "string" then return "hh" end
  if o.post ~= nil then return "tldr" end
  return nil
end

-- ---- the reader ----

local Reader = {}
Reader.__index = Reader

local OPEN = require("rlaif.opts").schema("data.open", {
  format = { "string", one_of = { "auto", "hh", "comparisons", "tldr", "pairs" } }, skip_bad = "boolean",
  fields = "table", limit = { "integer", min = 1 }, on_bad = "function",
})

--- Open a dataset. opts: format ("hh"|"comparisons"|"tldr"|"pairs"|"auto", default auto),
--- skip_bad, fields (user-named fields for pairs: prompt, chosen, rejected, id, label),
--- limit (max records), on_bad(msg) (called for each skipped line).
function M.open(path, opts)
  opts = OPEN(opts)
  if type(path) ~= "string" then error("data.open: path must be a string, got " .. type(path), 2) end
  local fmt = opts.format or "auto"
  local self = setmetatable({ path = path, opts = opts, format = fmt,
    stats = { lines = 0, records = 0, bad = 0, messages = {} } }, Reader)
  if path:match("%.json$") then
    local f, err = io.open(path, "rb")
    if not f then error("data: " .. tostring(err), 2) end
    local text = f:read("a")
    f:close()
    local v, jerr = json.decode(text)
    if v == nil then error(string.format("%s:1: %s", path, jerr), 2) end
    if type(v) ~= "table" then error(string.format("%s:1: expected an object or an array of objects", path), 2) end
    self.items = (v[1] ~= nil or next(v) == nil) and v or { v }
    self.pos = 0
  else
    local r, err = gz.open(path)
    if not r then error("data: " .. err, 2) end
    self.gz = r
  end
  return self
end

function Reader:_bad(line, why)
  local msg = string.format("%s:%d: %s", self.path, line, why)
  if not self.opts.skip_bad then
    self:close()
    error(msg, 0)
  end
  local st = self.stats
  st.bad = st.bad + 1
  if #st.messages < 20 then st.messages[#st.messages + 1] = msg end
  if self.opts.on_bad then self.opts.on_bad(msg) end
end

function Reader:_convert(o, line)
  if type(o) ~= "table" or o[1] ~= nil then return nil, "expected a JSON object" end
  local fmt = self.format
  if fmt == "auto" then
    fmt = M.detect(o)
    if not fmt then return nil, "cannot tell the format from this record (use format = ...)" end
    self.format = fmt
  end
  return conv[fmt](o, line, self.opts)
end

--- The next record, or nil at the end. Raises "FILE:LINE: why" on a malformed
--- line unless skip_bad.
function Reader:next()
  local st = self.stats
  if self.opts.limit and st.records >= self.opts.limit then return nil end
  while true do
    local o, line, err
    if self.items then
      self.pos = self.pos + 1
      o = self.items[self.pos]
      if o == nil then return nil end
      line = self.pos
    else
      if not self.gz then return nil end
      local s, nl = self.gz:read()
      if s == nil then
        if nl then   -- a read error: nl holds the message
          local msg = nl
          self:close()
          error(msg, 0)
        end
        self:close()
        return nil
      end
      line = self.gz:lineno()
      st.lines = line
      if s:find("^%s*$") then goto continue end
      o, err = json.decode(s)
      if o == nil then
        self:_bad(line, (err:gsub("^json%.decode: ", "invalid JSON: ")))
        goto continue
      end
    end
    do
      local rec, why = self:_convert(o, line)
      if rec then
        st.records = st.records + 1
        return rec
      end
      self:_bad(line, why)
    end
    ::continue::
  end
end

--- reader:count() -> the number of records the file holds at most (its non-blank
--- lines, or the items of a .json file), read in a separate pass; for progress
--- totals. nil when the file cannot be read again.
function Reader:count()
  if self.items then return #self.items end
  local r = gz.open(self.path)
  if not r then return nil end
  local n = 0
  while true do
    local s = r:read()
    if s == nil then break end
    if s:find("%S") then n = n + 1 end
  end
  r:close()
  if self.opts.limit then n = math.min(n, self.opts.limit) end
  return n
end

--- for rec in reader:iter() do ... end
function Reader:iter()
  return function() return self:next() end
end

function Reader:close()
  if self.gz then self.gz:close() self.gz = nil end
end

--- Iterate the records of a file: for rec in data.each(path, opts) do ... end
function M.each(path, opts)
  return M.open(path, opts):iter()
end

--- All records of a file as a list, and the reader's stats.
function M.read(path, opts)
  local r = M.open(path, opts)
  local out = {}
  for rec in r:iter() do out[#out + 1] = rec end
  return out, r.stats
end

M.Reader = Reader
return M
