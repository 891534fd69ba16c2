-- lua/rlaif/prompts.lua -- labeling prompt templates: load the sectioned text
-- files in prompts/ (format in prompts/README.md), assemble the paper's four
-- parts (preamble, few-shot exemplars, the sample, the ending) and render them
-- either as one completion prompt or as chat messages, from the same source.
--
-- What it is not: no requests, no label parsing (rlaif.labeler does that).
-- Templates are plain data: nothing in a template file is executed.
--
--   local prompts = require "rlaif.prompts"
--   local t = prompts.load("summarize-detailed")        -- by name, or a path
--   local r = t:renderer{shots = 2, cot = false}          -- precomputes the head
--   r:prompt(vars)             -> "preamble\n\n...Preferred Summary="
--   r:prompt(vars, "cot")      -> the rationale request (ends with the CoT ending)
--   r:prompt(vars, "score", rationale)   -> CoT step 2 (step 1 + rationale + ending)
--   r:messages(vars, step, rationale, mode)   -> chat messages (mode "user" | "prefill")

local M = {}

-- ---- where templates live ----

local function dirname(p) return p:match("^(.*)/[^/]*$") or "." end

local function file_exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

--- Directories searched for templates, in order: RLAIF_PROMPTS (colon-separated),
--- ./prompts, then the prompts/ next to the installed Lua files.
function M.search_path()
  local dirs = {}
  local env = os.getenv("RLAIF_PROMPTS")
  if env and env ~= "" then
    for d in env:gmatch("[^:]+") do dirs[#dirs + 1] = d end
  end
  dirs[#dirs + 1] = "prompts"
  local here = package.searchpath("rlaif.prompts", package.path)
  if here then
    local root = dirname(dirname(dirname(here)))  -- checkout: ROOT/lua/rlaif/prompts.lua -> ROOT
    dirs[#dirs + 1] = root .. "/prompts"
    -- installed: PREFIX/share/lua/5.4/rlaif/prompts.lua -> PREFIX/share/lua; prompts in PREFIX/share/rlaif
    dirs[#dirs + 1] = dirname(root) .. "/rlaif/prompts"
    -- a luarocks tree: beside the Lua files (rlaif-scm-1.rockspec)
    dirs[#dirs + 1] = dirname(here) .. "/prompts"
  end
  return dirs
end

--- Find a template file: a path (contains "/" or ends in .txt) or a name looked
--- up as <dir>/<name>.txt (sub: "exemplars" for exemplar files).
function M.find(name, sub)
  if name:find("/", 1, true) or name:match("%.txt$") then
    if file_exists(name) then return name end
    return nil, "prompts: no such template file '" .. name .. "'"
  end
  local tried = {}
  for _, d in ipairs(M.search_path()) do
    local p = d .. "/" .. (sub and (sub .. "/") or "") .. name .. ".txt"
    if file_exists(p) then return p end
    tried[#tried + 1] = p
  end
  return nil, "prompts: no template named '" .. name .. "' (looked for " .. table.concat(tried, ", ") .. ")"
end

-- ---- the sectioned text format ----

--- Parse a sectioned text file: "@@ name" lines start sections; the newline
--- before a marker (and at the end of the file) is not part of the section.
--- Lines before the first marker that are blank or start with "#" are comments.
--- Returns a list of {name=, text=, line=} in file order.
function M.parse_sections(text, path)
  local sections, cur = {}, nil
  local lineno = 0
  local pos = 1
  local len = #text
  while pos <= len do
    local e = text:find("\n", pos, true)
    local line = text:sub(pos, (e or len + 1) - 1)
    lineno = lineno + 1
    local name = line:match("^@@[ \t]*([%w_%-]+)[ \t]*\r?$")
    if name then
      cur = { name = name, lines = {}, line = lineno }
      sections[#sections + 1] = cur
    elseif line:match("^@@") then
      error(string.format("%s:%d: bad section marker '%s' (expected '@@ name')", path, lineno, line), 0)
    elseif cur then
      cur.lines[#cur.lines + 1] = line
    elseif not (line:match("^%s*$") or line:match("^#")) then
      error(string.format("%s:%d: text before the first '@@ section' marker", path, lineno), 0)
    end
    if not e then break end
    pos = e + 1
  end
  for _, s in ipairs(sections) do
    s.text = table.concat(s.lines, "\n")
    s.lines = nil
  end
  return sections
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then error("prompts: cannot read " .. tostring(err), 0) end
  local s = f:read("a")
  f:close()
  return s
end

-- 64-bit FNV-1a as 16 hex digits: a stable content hash for records.
local function fnv1a(s)
  local h = -3750763034362895579   -- 0xcbf29ce484222325 as a signed integer
  for i = 1, #s do
    h = (h ~ s:byte(i)) * 1099511628211
  end
  return string.format("%016x", h)
end
--- hash(s) -> 16 hex digits of 64-bit FNV-1a: a stable content hash
M.hash = fnv1a

-- ---- slots ----

-- Compile "Text - {text}\n..." into {literal, slot, literal, ...} (odd = literal).
-- "{{" and "}}" stand for literal braces. Unknown characters inside {...} are
-- left as literal text (so JSON-like text in a preamble needs no escaping).
local function compile(text, path, line, section, known)
  local parts, slots = {}, {}
  local buf = {}
  local i, n = 1, #text
  while i <= n do
    local c = text:sub(i, i)
    if c == "{" and text:sub(i + 1, i + 1) == "{" then
      buf[#buf + 1] = "{"
      i = i + 2
    elseif c == "}" and text:sub(i + 1, i + 1) == "}" then
      buf[#buf + 1] = "}"
      i = i + 2
    elseif c == "{" then
      local name = text:match("^{([%a_][%w_]*)}", i)
      if name then
        if known and not known[name] then
          local ln = line + select(2, text:sub(1, i):gsub("\n", ""))
          error(string.format("%s:%d: unknown slot {%s} in section '%s' (known: %s)", path, ln, name, section,
            table.concat(known.__list, ", ")), 0)
        end
        parts[#parts + 1] = table.concat(buf)
        parts[#parts + 1] = name
        slots[#slots + 1] = name
        buf = {}
        i = i + #name + 2
      else
        buf[#buf + 1] = c
        i = i + 1
      end
    else
      local j = text:find("[{}]", i) or n + 1
      buf[#buf + 1] = text:sub(i, j - 1)
      i = j
    end
  end
  parts[#parts + 1] = table.concat(buf)
  return { parts = parts, slots = slots, section = section, path = path, line = line }
end

-- Render a compiled section with vars; a missing slot value raises naming the
-- template, section and slot.
local function render(c, vars, tname)
  local parts = c.parts
  if #parts == 1 then return parts[1] end
  local out = {}
  for i = 1, #parts do
    local p = parts[i]
    if i % 2 == 0 then
      local v = vars[p]
      if v == nil then
        error(string.format("template %s (%s:%d, section '%s'): slot {%s} has no value", tname, c.path, c.line,
          c.section, p), 0)
      end
      out[i] = tostring(v)
    else
      out[i] = p
    end
  end
  return table.concat(out)
end
M._compile, M._render = compile, render

-- ---- compiled samples (the hot path of a labeling run) ----

-- Where a slot's value comes from, given (context, r1, r2, fields) -- exactly
-- what rendering with M.vars(context, r1, r2, fields) would find.
local FROM_CONTEXT = { context = true, text = true }
local FROM_PAIR = { response1 = "r1", summary1 = "r1", response2 = "r2", summary2 = "r2" }
local FROM_ONE = { response = true, summary = true }

local MAX_COMPILED_SLOTS = 40   -- beyond this (never in practice) use the generic path

-- Compile a section into fill(context, r1, r2, fields, pre, post) returning
-- pre .. <the section rendered with M.vars(context, r1, r2, fields)> .. post,
-- built with one concatenation and no per-call tables. The generated chunk
-- contains only generated local names and %q-quoted slot names (identifiers,
-- checked by compile); the template's literal text is passed in as values, so
-- nothing from a template file is executed. Fields that are not a plain table
-- (a metatable, or not a table) take the generic path, which behaves the same
-- by construction.
local function compile_fill(c, tname)
  local parts = c.parts
  local function generic(context, r1, r2, fields, pre, post)
    return pre .. render(c, M.vars(context, r1, r2, fields), tname) .. post
  end
  local nslots = (#parts - 1) // 2
  if nslots > MAX_COMPILED_SLOTS then return generic end
  local lits = {}
  for i = 1, #parts, 2 do lits[#lits + 1] = parts[i] end
  local src = { "local L, generic, missing, type, tostring, rawget, getmetatable = ...\n" }
  for i = 1, #lits do src[#src + 1] = string.format("local L%d = L[%d]\n", i, i) end
  src[#src + 1] = "return function(context, r1, r2, fields, pre, post)\n"
  src[#src + 1] = "  if fields ~= nil and (type(fields) ~= 'table' or getmetatable(fields) ~= nil) then\n"
  src[#src + 1] = "    return generic(context, r1, r2, fields, pre, post)\n  end\n"
  local cat = { "pre", "L1" }
  for k = 1, nslots do
    local name = parts[2 * k]
    assert(name:match("^[%a_][%w_]*$"))
    local a = "a" .. k
    src[#src + 1] = string.format("  local %s\n", a)
    if FROM_CONTEXT[name] then
      src[#src + 1] = string.format("  %s = context\n", a)
    elseif FROM_PAIR[name] then
      src[#src + 1] = string.format("  if r2 ~= nil then %s = %s elseif fields then %s = rawget(fields, %q) end\n",
        a, FROM_PAIR[name], a, name)
    elseif FROM_ONE[name] then
      src[#src + 1] = string.format("  if r2 == nil then %s = r1 elseif fields then %s = rawget(fields, %q) end\n",
        a, a, name)
    else
      src[#src + 1] = string.format("  if fields then %s = rawget(fields, %q) end\n", a, name)
    end
    src[#src + 1] = string.format("  if %s == nil then missing(%q) end\n", a, name)
    src[#src + 1] = string.format("  if type(%s) ~= 'string' then %s = tostring(%s) end\n", a, a, a)
    cat[#cat + 1] = a
    cat[#cat + 1] = "L" .. (k + 1)
  end
  cat[#cat + 1] = "post"
  src[#src + 1] = "  return " .. table.concat(cat, " .. ") .. "\nend\n"
  local function missing(name)
    error(string.format("template %s (%s:%d, section '%s'): slot {%s} has no value", tname, c.path, c.line,
      c.section, name), 0)
  end
  local chunk = assert(load(table.concat(src), "=(prompts: compiled " .. c.section .. ")", "t", {}))
  return chunk(lits, generic, missing, type, tostring, rawget, getmetatable)
end
M._compile_fill = compile_fill

-- Slots a sample section may use. Pairwise: the context and the two responses
-- (in the order shown), under the paper's names too; score: one response.
-- Any extra field of a record (subreddit, title, post, ...) is also a slot.
local PAIR_SLOTS = { "context", "text", "response1", "response2", "summary1", "summary2", "subreddit",
  "title", "post" }
local SCORE_SLOTS = { "context", "text", "response", "summary", "subreddit", "title", "post" }

local function slotset(list)
  local s = { __list = list }
  for _, k in ipairs(list) do s[k] = true end
  return s
end

-- ---- templates ----

local Template = {}
Template.__index = Template

local META_KEYS = {
  name = true, task = true, kind = true, labels = true, polarity = true, exemplars = true, cot = true,
  cot_variant = true, description = true, slots = true,
}
local SECTION_KEYS = {
  meta = true, preamble = true, sample = true, ending = true, cot_ending = true, exemplar_open = true,
  exemplar_close = true,
}

local function parse_meta(text, path, line)
  local meta = {}
  local ln = line
  for l in (text .. "\n"):gmatch("(.-)\r?\n") do
    ln = ln + 1
    if not (l:match("^%s*$") or l:match("^%s*#")) then
      local k, v = l:match("^%s*([%w_]+)%s*:%s*(.-)%s*$")
      if not k then error(string.format("%s:%d: bad meta line '%s' (expected 'key: value')", path, ln, l), 0) end
      if not META_KEYS[k] then error(string.format("%s:%d: unknown meta key '%s'", path, ln, k), 0) end
      meta[k] = v
    end
  end
  return meta
end

local function words(s)
  local t = {}
  for w in s:gmatch("%S+") do t[#t + 1] = w end
  return t
end

--- Parse template text (path is used in messages). Returns a Template.
function M.parse(text, path, name)
  local secs = M.parse_sections(text, path)
  local by = {}
  for _, s in ipairs(secs) do
    if not SECTION_KEYS[s.name] then
      error(string.format("%s:%d: unknown section '%s' (known: meta, preamble, sample, ending, cot_ending, " ..
        "exemplar_open, exemplar_close)", path, s.line, s.name), 0)
    end
    if by[s.name] then error(string.format("%s:%d: section '%s' appears twice", path, s.line, s.name), 0) end
    by[s.name] = s
  end
  local meta = by.meta and parse_meta(by.meta.text, path, by.meta.line) or {}
  local t = setmetatable({}, Template)
  t.path = path
  t.name = meta.name or name or path:match("([^/]+)%.txt$") or path
  t.kind = meta.kind or "pairwise"
  if t.kind ~= "pairwise" and t.kind ~= "score" then
    error(string.format("%s: meta 'kind' must be pairwise or score, not '%s'", path, t.kind), 0)
  end
  t.task = meta.task or t.name
  t.description = meta.description
  t.labels = meta.labels and words(meta.labels) or (t.kind == "score" and
    { "1", "2", "3", "4", "5", "6", "7", "8", "9", "10" } or { "1", "2" })
  if t.kind == "pairwise" and #t.labels ~= 2 then
    error(string.format("%s: a pairwise template needs exactly 2 labels (got %d)", path, #t.labels), 0)
  end
  if t.kind == "score" then
    for i, l in ipairs(t.labels) do
      if not tonumber(l) then
        error(string.format("%s: score label #%d '%s' is not a number", path, i, l), 0)
      end
    end
  end
  t.polarity = tonumber(meta.polarity or "1")
  if t.polarity ~= 1 and t.polarity ~= -1 then
    error(string.format("%s: meta 'polarity' must be 1 or -1", path), 0)
  end
  t.exemplars_name = meta.exemplars
  t.cot = meta.cot == "true" or meta.cot == "yes"
  t.cot_variant = meta.cot_variant
  for _, req in ipairs { "preamble", "sample", "ending" } do
    if not by[req] then error(string.format("%s: missing section '@@ %s'", path, req), 0) end
  end
  local extra = {}
  if meta.slots then
    for _, w in ipairs(words(meta.slots)) do extra[#extra + 1] = w end
  end
  local list = {}
  for _, k in ipairs(t.kind == "score" and SCORE_SLOTS or PAIR_SLOTS) do list[#list + 1] = k end
  for _, k in ipairs(extra) do list[#list + 1] = k end
  local known = slotset(list)
  t.text = text
  t.sections = {}
  for k, s in pairs(by) do
    if k ~= "meta" then
      -- the preamble and endings take no slots (they are the same for every sample)
      local allowed = (k == "sample") and known or slotset {}
      t.sections[k] = compile(s.text, path, s.line + 1, k, allowed)
    end
  end
  if t.cot and not t.sections.cot_ending then
    error(string.format("%s: a CoT template (cot: true) needs '@@ cot_ending'", path), 0)
  end
  t.hash = fnv1a(text)
  return t
end

local cache = {}

--- Load a template by name or path (cached per resolved path).
function M.load(name)
  if type(name) == "table" and getmetatable(name) == Template then return name end
  if type(name) ~= "string" then
    error("prompts.load: name must be a template name, a path or a loaded template, got " .. type(name), 2)
  end
  local path, err = M.find(name)
  if not path then error(err, 2) end
  local t = cache[path]
  if not t then
    t = M.parse(read_file(path), path, not name:find("/", 1, true) and name:gsub("%.txt$", "") or nil)
    cache[path] = t
  end
  return t
end

--- Names of the templates found on the search path (sorted, unique).
function M.list()
  local seen, out = {}, {}
  for _, d in ipairs(M.search_path()) do
    local p = io.popen('ls "' .. d .. '" 2>/dev/null')
    if p then
      for f in p:lines() do
        local n = f:match("^(.+)%.txt$")
        if n and not seen[n] then seen[n] = true out[#out + 1] = n end
      end
      p:close()
    end
  end
  table.sort(out)
  return out
end

-- ---- exemplars ----

local EX_FIELDS = { context = true, text = true, response1 = true, response2 = true, summary1 = true,
  summary2 = true, response = true, summary = true, label = true, rationale = true, subreddit = true,
  title = true, post = true }

--- Parse an exemplar file: "@@ example" starts an exemplar; the sections after
--- it ("@@ text", "@@ response1", "@@ response2", "@@ label", "@@ rationale", ...)
--- fill its fields. Returns a list of exemplars (tables of strings).
function M.parse_exemplars(text, path)
  local out, cur = {}, nil
  for _, s in ipairs(M.parse_sections(text, path)) do
    if s.name == "example" then
      cur = { line = s.line }
      out[#out + 1] = cur
    elseif not cur then
      error(string.format("%s:%d: section '%s' before the first '@@ example'", path, s.line, s.name), 0)
    elseif not EX_FIELDS[s.name] then
      error(string.format("%s:%d: unknown exemplar field '%s'", path, s.line, s.name), 0)
    else
      cur[s.name] = s.text
    end
  end
  for i, e in ipairs(out) do
    e.context = e.context or e.text
    e.response1 = e.response1 or e.summary1
    e.response2 = e.response2 or e.summary2
    e.response = e.response or e.summary
    if not e.label then error(string.format("%s:%d: exemplar #%d has no '@@ label'", path, e.line, i), 0) end
    e.label = e.label:match("^%s*(.-)%s*$")
  end
  return out
end

local excache = {}

--- Load exemplars by name (prompts/exemplars/<name>.txt) or path.
function M.load_exemplars(name)
  local path, err = M.find(name, "exemplars")
  if not path then error(err, 2) end
  if not excache[path] then excache[path] = M.parse_exemplars(read_file(path), path) end
  return excache[path], path
end

-- ---- rendering ----

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end
--- trim(s) -> s without leading and trailing whitespace
M.trim = trim

--- The slot values for a sample: record fields plus the paper's aliases.
--- Pairwise: (context, first shown, second shown); score: (context, response).
function M.vars(context, r1, r2, fields)
  local v = {}
  if fields then for k, x in pairs(fields) do v[k] = x end end
  v.context = context
  v.text = context
  if r2 ~= nil then
    v.response1, v.summary1 = r1, r1
    v.response2, v.summary2 = r2, r2
  else
    v.response, v.summary = r1, r1
  end
  return v
end

local Renderer = {}
Renderer.__index = Renderer

--- A renderer for this template with `shots` exemplars (default 0) taken from
--- `exemplars` (a list, a name, or the template's default exemplar file) and
--- `cot` (whether exemplars show their rationales). Precomputes the head.
local RENDERER = require("rlaif.opts").schema("template:renderer", {
  shots = { "integer", min = 0 }, cot = "boolean", exemplars = "string|table",
})

function Template:renderer(opts)
  opts = RENDERER(opts)
  local shots = opts.shots or 0
  local cot = opts.cot
  if cot == nil then cot = self.cot end
  local s = self.sections
  if cot and not s.cot_ending then
    error(string.format("template %s has no '@@ cot_ending' section (needed for chain-of-thought)", self.name), 2)
  end
  local exs = {}
  if shots > 0 then
    local src = opts.exemplars or self.exemplars_name
    if not src then error(string.format("template %s names no exemplars (meta 'exemplars')", self.name), 2) end
    local list = type(src) == "table" and src or M.load_exemplars(src)
    if #list < shots then
      error(string.format("template %s: %d-shot asked, the exemplar file has %d", self.name, shots, #list), 2)
    end
    for i = 1, shots do exs[i] = list[i] end
  end
  local preamble = render(s.preamble, {}, self.name)
  local ending = render(s.ending, {}, self.name)
  local cot_ending = s.cot_ending and render(s.cot_ending, {}, self.name)
  local blocks = {}
  for i, e in ipairs(exs) do
    local vars
    if self.kind == "score" then
      vars = M.vars(e.context, e.response, nil, e)
    else
      vars = M.vars(e.context, e.response1, e.response2, e)
    end
    local b = {}
    if s.exemplar_open then b[#b + 1] = render(s.exemplar_open, {}, self.name) .. "\n" end
    b[#b + 1] = render(s.sample, vars, self.name .. " exemplar #" .. i) .. "\n"
    if cot and e.rationale then b[#b + 1] = cot_ending .. " " .. trim(e.rationale) .. "\n" end
    b[#b + 1] = ending .. e.label
    blocks[#blocks + 1] = table.concat(b)
  end
  local shots_text, sep = "", "\n\n"
  if #blocks > 0 then
    shots_text = table.concat(blocks, "\n\n") .. "\n\n"
    if s.exemplar_close then
      shots_text = shots_text .. render(s.exemplar_close, {}, self.name)
      sep = "\n"
    else
      sep = ""
    end
  end
  local r = setmetatable({
    template = self, shots = shots, cot = cot and true or false,
    preamble = preamble, shots_text = shots_text, sep = sep, ending = ending, cot_ending = cot_ending,
    sample = s.sample,
  }, Renderer)
  -- what the completion prompt starts with; the chat user turn starts with shots_text .. sep
  r.head = preamble .. "\n\n" .. shots_text .. (#blocks > 0 and sep or "")
  r.user_head = #blocks > 0 and (shots_text .. sep) or ""
  r.hash = fnv1a(self.hash .. "|" .. shots .. "|" .. tostring(r.cot) .. "|" .. r.head)
  -- the sample compiled once: fill(context, r1, r2, fields, pre, post) (see compile_fill)
  r.fill = compile_fill(s.sample, self.name)
  r.score_tail = "\n" .. ending
  r.cot_tail = cot_ending and ("\n" .. cot_ending)
  return r
end

--- The completion prompt for a sample given as (context, first shown, second
--- shown or nil, extra fields): the same text as prompt(M.vars(context, r1, r2,
--- fields), step) for step "score" (default) or "cot", rendered in one
--- concatenation without building the vars table.
function Renderer:prompt_for(context, r1, r2, fields, step)
  return self.fill(context, r1, r2, fields, self.head, step == "cot" and self.cot_tail or self.score_tail)
end

--- The sample text for vars.
function Renderer:body(vars)
  return render(self.sample, vars, self.template.name)
end

--- Completion prompt. step: "score" (default), "cot" (the rationale request) or
--- "score" with a rationale (CoT step 2: step 1 + rationale + "\n" + ending).
function Renderer:prompt(vars, step, rationale)
  local body = render(self.sample, vars, self.template.name)
  if step == "cot" then
    return self.head .. body .. "\n" .. self.cot_ending
  elseif rationale then
    return self.head .. body .. "\n" .. self.cot_ending .. rationale:gsub("%s+$", "") .. "\n" .. self.ending
  end
  return self.head .. body .. "\n" .. self.ending
end

--- Chat messages from the same parts: system = preamble; user = exemplars +
--- sample (+ ending or CoT ending). mode "user" (default) puts the ending at the
--- end of the user turn (CoT step 2: the rationale as an assistant turn, then the
--- ending as a user turn); mode "prefill" puts the ending in a final assistant
--- message for servers that continue it.
function Renderer:messages(vars, step, rationale, mode)
  local body = render(self.sample, vars, self.template.name)
  local user = self.user_head .. body
  local sys = { role = "system", content = self.preamble }
  if step == "cot" then
    if mode == "prefill" then
      return { sys, { role = "user", content = user }, { role = "assistant", content = self.cot_ending } }
    end
    return { sys, { role = "user", content = user .. "\n" .. self.cot_ending } }
  elseif rationale then
    local r = trim(rationale)
    if mode == "prefill" then
      return { sys, { role = "user", content = user },
        { role = "assistant", content = self.cot_ending .. " " .. r .. "\n" .. self.ending } }
    end
    return { sys, { role = "user", content = user .. "\n" .. self.cot_ending },
      { role = "assistant", content = r }, { role = "user", content = self.ending } }
  end
  if mode == "prefill" then
    return { sys, { role = "user", content = user }, { role = "assistant", content = self.ending } }
  end
  return { sys, { role = "user", content = user .. "\n" .. self.ending } }
end

M.Template, M.Renderer = Template, Renderer
return M
