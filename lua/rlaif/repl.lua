-- lua/rlaif/repl.lua -- helpers for the interactive REPL of the `rlaif`
-- executable (src/main.c): repl.pretty(...) formats results for display and
-- repl.help(topic) lists and documents the API.
--
-- It is not part of require "rlaif" and sets no globals; the REPL loads it and
-- binds the globals `help` (= repl.help) and `rlaif`. Its only state is
-- repl.docs, docs keyed by API path ("tensor.zeros", "Tensor:matmul"),
-- which other modules may extend; functions written in Lua are documented by
-- their "---" comment block in lua/rlaif/*.lua, read on the first help() call
-- (help(fn) shows the block, a module listing its first sentence). help() lists whatever the `rlaif` table holds, so an
-- undocumented function still shows up (as "name(...)").

local repl = {}

local MAX_ITEMS = 20      -- table entries shown before "..."
local MAX_KEYS = 10000    -- hash keys collected for sorting before giving up
local MAX_INLINE = 60     -- characters of a multi-line value shown inside a table

-- ---- docs ----

repl.docs = {
  ["version"] = "rlaif.version -- version string of rlaif",
  ["info"] = "rlaif.info() -> {version=, blis_version=, blis_arch=, blis_arch_forced=, threads=, kernels=, ...}",
  ["set_threads"] = "rlaif.set_threads(n) -- threads used by BLIS and the element-wise kernels",
  ["get_threads"] = "rlaif.get_threads() -> number of threads in use",
  ["core"] = "rlaif.core -- the C module the rest of rlaif is built on",
  ["tensor.new"] = "rlaif.tensor.new({{1, 2}, {3, 4}}) -> new tensor from nested tables (or a number)",
  ["tensor.zeros"] = "rlaif.tensor.zeros({d1, d2, ...}) -> new float32 tensor of zeros",
  ["tensor.ones"] = "rlaif.tensor.ones({d1, d2, ...}) -> new float32 tensor of ones",
  ["tensor.arange"] = "rlaif.tensor.arange([start,] stop [, step]) -> new 1-D tensor start, ..., < stop",
  ["tensor.is_tensor"] = "rlaif.tensor.is_tensor(v) -> true if v is a tensor",
  ["tensor.save"] = "rlaif.tensor.save(path, {name = t, ...}) -- write a safetensors file",
  ["tensor.load"] = "rlaif.tensor.load(path) -> {name = t, ...}, {names in file order}",
  ["Tensor:shape"] = "t:shape() -> {d1, d2, ...}",
  ["Tensor:reshape"] = "t:reshape({d1, d2, ...}) -> tensor with t's elements in a new shape",
  ["Tensor:matmul"] = "a:matmul(b [, out]) -> a @ b, written into out when given",
  ["Tensor:free"] = "t:free() -- release t's memory now; t is unusable afterwards",
  ["tensor.full"] = "rlaif.tensor.full({d1, ...}, v) -> new tensor filled with v",
  -- inspection
  ["Tensor:size"] = "t:size([dim]) -> size of dim (1-based, negative from the end), or the shape",
  ["Tensor:stride"] = "t:stride() -> {s1, s2, ...} element strides",
  ["Tensor:dim"] = "t:dim() -> number of dimensions",
  ["Tensor:numel"] = "t:numel() -> number of elements",
  ["Tensor:nbytes"] = "t:nbytes() -> bytes of float32 data the tensor spans",
  ["Tensor:is_contiguous"] = "t:is_contiguous() -> true when the elements are dense in row-major order",
  ["Tensor:is_freed"] = "t:is_freed() -> true after t:free()",
  ["Tensor:item"] = "t:item() -> the number of a one-element tensor",
  ["Tensor:totable"] = "t:totable() -> nested Lua tables of numbers",
  -- views and copies
  ["Tensor:view"] = "t:view({d1, ...}) -> a view with a new shape (contiguous t only)",
  ["Tensor:transpose"] = "t:transpose([d1, d2]) -> a view with two dims swapped (default the last two)",
  ["Tensor:permute"] = "t:permute({d1, ...}) -> a view with the dims reordered",
  ["Tensor:narrow"] = "t:narrow(dim, start, len) -> a view of len elements of dim from start",
  ["Tensor:select"] = "t:select(dim, i) -> a view of index i of dim, with dim removed",
  ["Tensor:expand"] = "t:expand({d1, ...}) -> a broadcast view (size-1 dims repeated, no copy)",
  ["Tensor:contiguous"] = "t:contiguous() -> t itself when contiguous, else a dense copy",
  ["Tensor:clone"] = "t:clone() -> a dense copy",
  ["Tensor:copy_"] = "t:copy_(src) -- copy src (broadcast) into t, in place",
  ["Tensor:fill_"] = "t:fill_(v) -- set every element to v, in place",
  ["Tensor:zero_"] = "t:zero_() -- set every element to 0, in place",
  -- element-wise
  ["Tensor:add"] = "t:add(x) -> t + x (tensor or number, broadcast)",
  ["Tensor:sub"] = "t:sub(x) -> t - x (tensor or number, broadcast)",
  ["Tensor:mul"] = "t:mul(x) -> t * x (tensor or number, broadcast)",
  ["Tensor:div"] = "t:div(x) -> t / x (tensor or number, broadcast)",
  ["Tensor:pow"] = "t:pow(x) -> t ^ x (tensor or number, broadcast)",
  ["Tensor:maximum"] = "t:maximum(x) -> element-wise max of t and x",
  ["Tensor:minimum"] = "t:minimum(x) -> element-wise min of t and x",
  ["Tensor:add_"] = "t:add_(x) -- t += x in place",
  ["Tensor:sub_"] = "t:sub_(x) -- t -= x in place",
  ["Tensor:mul_"] = "t:mul_(x) -- t *= x in place",
  ["Tensor:div_"] = "t:div_(x) -- t /= x in place",
  ["Tensor:neg"] = "t:neg() -> -t",
  ["Tensor:exp"] = "t:exp() -> e^t",
  ["Tensor:exp_"] = "t:exp_() -- t = e^t in place",
  ["Tensor:log"] = "t:log() -> natural log of t",
  ["Tensor:sqrt"] = "t:sqrt() -> square root of t",
  ["Tensor:rsqrt"] = "t:rsqrt() -> 1 / sqrt(t)",
  ["Tensor:tanh"] = "t:tanh() -> tanh(t)",
  ["Tensor:sigmoid"] = "t:sigmoid() -> 1 / (1 + e^-t)",
  ["Tensor:relu"] = "t:relu() -> max(t, 0)",
  ["Tensor:relu_"] = "t:relu_() -- t = max(t, 0) in place",
  ["Tensor:gelu"] = "t:gelu([\"tanh\"]) -> GELU (exact erf, or the tanh approximation)",
  ["Tensor:abs"] = "t:abs() -> |t|",
  ["Tensor:square"] = "t:square() -> t * t",
  ["Tensor:clamp"] = "t:clamp(lo, hi) -> t limited to [lo, hi]",
  -- reductions
  ["Tensor:sum"] = "t:sum([dim [, keepdim]]) -> sum over dim, or over all elements",
  ["Tensor:mean"] = "t:mean([dim [, keepdim]]) -> mean over dim, or over all elements",
  ["Tensor:max"] = "t:max([dim [, keepdim]]) -> max (and 1-based indices along dim)",
  ["Tensor:min"] = "t:min([dim [, keepdim]]) -> min (and 1-based indices along dim)",
  ["Tensor:argmax"] = "t:argmax([dim [, keepdim]]) -> 1-based index of the max",
  ["Tensor:argmin"] = "t:argmin([dim [, keepdim]]) -> 1-based index of the min",
  ["Tensor:logsumexp"] = "t:logsumexp([dim [, keepdim]]) -> log(sum(exp(t))), stable",
  ["Tensor:var"] = "t:var([dim [, keepdim [, correction = 1]]]) -> variance (unbiased by default)",
  ["Tensor:softmax"] = "t:softmax([dim]) -> softmax along dim (default the last)",
  ["Tensor:log_softmax"] = "t:log_softmax([dim]) -> log-softmax along dim (default the last)",
  ["Tensor:layer_norm"] = "t:layer_norm([w [, b [, eps = 1e-5]]]) -> LayerNorm over the last dim",
  ["Tensor:rms_norm"] = "t:rms_norm([w [, eps = 1e-6]]) -> RMSNorm over the last dim",
  -- the C module
  ["core.cancelled"] = "rlaif.core.cancelled() -> true after Ctrl-C (or llm.cancel_request) until reset",
  ["core.clock"] = "rlaif.core.clock() -> monotonic wall clock in seconds",
  ["core.get_threads"] = "rlaif.core.get_threads() -> threads in use (as rlaif.get_threads)",
  ["core.check_env"] = "rlaif.core.check_env() -> true | nil, message: RLAIF_NUM_THREADS is unset or a thread count",
  ["core.set_threads"] = "rlaif.core.set_threads(n) -- as rlaif.set_threads",
  ["core.info"] = "rlaif.core.info() -> {version, blis_version, blis_arch, blis_arch_forced, threads} (as rlaif.info)",
  ["core.setenv"] = "rlaif.core.setenv(name, value | nil) -- set or unset an environment variable for children",
  -- model methods (C)
  ["Model:forward"] = "m:forward(ids [, mask]) -> logits tensor [B, T, V]; short rows right-padded and masked",
  ["Model:logprobs"] = "m:logprobs(ids [, mask]) -> [B, T-1]: log p(ids[t+1] | ids[..t])",
  ["Model:reward"] = "m:reward(ids [, mask]) -> [B] rewards at each row's last real token (reward head)",
  ["Model:backward_reward"] = "m:backward_reward(dr) -- accumulate gradients of sum(dr[b] * reward[b])",
  ["Model:values"] = "m:values(ids [, mask]) -> [B, T]: the value head (score) at every position (reward head)",
  ["Model:backward_values"] = "m:backward_values(dv) -- accumulate gradients of sum(dv[b, t] * value[b, t])",
  ["Model:clone"] = "m:clone([{head = \"lm\" | \"reward\"}]) -> a copy; a policy cloned with head = \"reward\" "
    .. "gets a fresh (zero) value head",
  ["Model:free_activations"] = "m:free_activations() -- release the last forward's activations (frozen models)",
  ["Model:to_bf16"] = "m:to_bf16() -> m -- keep the weight matrices in bf16 (half the memory; frozen: no training)",
  ["Model:dtype"] = "m:dtype() -> \"float32\" | \"bf16\" -- the weight matrices' type",
  ["Model:param_bytes"] = "m:param_bytes() -> bytes of parameter memory (float32 and bf16)",
  ["Model:param"] = "m:param(name) -> a view of a weight by Hugging Face name (shares memory)",
  ["Model:grad"] = "m:grad(name) -> a view of a weight's gradient by Hugging Face name",
  ["Model:names"] = "m:names() -> the Hugging Face names of every weight",
  ["Model:zero_grad"] = "m:zero_grad() -- set every gradient to 0",
  ["Model:grad_norm"] = "m:grad_norm() -> global L2 norm of the gradients",
  ["Model:scale_grads"] = "m:scale_grads(s) -- multiply every gradient by s",
  ["Model:num_params"] = "m:num_params() -> number of parameters",
  ["Model:steps"] = "m:steps() -> AdamW steps taken",
  ["Model:config"] = "m:config() -> {arch, vocab_size, n_layer, ..., eos_id, head}",
  ["Model:save_state"] = "m:save_state(path [, blob]) -> true | nil, message: weights, AdamW moments, step, blob",
  ["Model:load_state"] = "m:load_state(path) -> blob | nil, message",
  ["Model:save_gguf_"] = "m:save_gguf_(path, tok, ggml_type, name, pre) -- the C half of m:save_gguf (use that)",
  -- tokenizer methods (C)
  ["Tokenizer:encode"] = "tok:encode(text [, {add_special =, allowed_special = \"all\" | {...}}]) -> {ids}",
  ["Tokenizer:save_gguf"] = "tok:save_gguf(path [, pre]) -> true | nil, message: a vocabulary-only GGUF file",
  ["Tokenizer:count"] = "tok:count(text [, opts]) -> number of tokens (as #tok:encode(text, opts))",
  ["Tokenizer:encode_batch"] = "tok:encode_batch({texts} [, opts]) -> {{ids}, ...} on rlaif.get_threads() threads",
  ["Tokenizer:decode"] = "tok:decode(ids) -> text",
  ["Tokenizer:id"] = "tok:id(bytes) -> the id of a token given by its raw bytes, or nil",
  ["Tokenizer:token"] = "tok:token(id) -> the raw bytes of a token, or nil",
  ["Tokenizer:vocab_size"] = "tok:vocab_size() -> largest id + 1",
  ["Tokenizer:special_tokens"] = "tok:special_tokens() -> {text = id} of the special tokens",
  ["Tokenizer:kind"] = "tok:kind() -> \"tokenizer.json\", \"gpt2\" or \"tiktoken:<encoding>\"",
  ["Tokenizer:free"] = "tok:free() -- release the tokenizer now (also <close> and the GC)",
}

-- ---- pretty printing ----

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  keywords[w] = true
end

local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return string.format("<%s: __tostring failed: %s>", type(v), tostring(s))
end

-- Squeeze a multi-line rendering (a tensor, a long string) onto one short line.
local function inline(s)
  s = s:gsub("%s+", " ")
  if #s > MAX_INLINE then s = s:sub(1, MAX_INLINE) .. "..." end
  return s
end

local key_rank = { number = 1, string = 2 }

-- Numbers first, then strings, then everything else by its printed form.
local function key_less(a, b)
  local ra, rb = key_rank[type(a)] or 3, key_rank[type(b)] or 3
  if ra ~= rb then return ra < rb end
  if ra == 3 then return safe_tostring(a) < safe_tostring(b) end
  return a < b
end

local format_value

local function format_key(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] then
    return k
  end
  return "[" .. format_value(k, 1) .. "]"
end

-- {1, 2, x = 3, nested = {...}}: the array part, then the other keys sorted.
local function format_table(t, depth)
  if depth > 0 then return next(t) == nil and "{}" or "{...}" end
  local items, n = {}, 0
  while n < MAX_ITEMS and rawget(t, n + 1) ~= nil do
    n = n + 1
    items[n] = format_value(rawget(t, n), depth + 1)
  end
  local more = rawget(t, n + 1) ~= nil
  if not more then
    local keys = {}
    for k in next, t do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then
        if #keys >= MAX_KEYS then more = true break end
        keys[#keys + 1] = k
      end
    end
    table.sort(keys, key_less)
    for _, k in ipairs(keys) do
      if #items >= MAX_ITEMS then more = true break end
      items[#items + 1] = format_key(k) .. " = " .. format_value(rawget(t, k), depth + 1)
    end
  end
  if more then items[#items + 1] = "..." end
  return "{" .. table.concat(items, ", ") .. "}"
end

function format_value(v, depth)
  local tv = type(v)
  local s
  if tv == "string" then
    s = string.format("%q", v):gsub("\\\n", "\\n")   -- "\<newline>" -> "\n"
  elseif tv == "table" then
    local mt = getmetatable(v)
    if type(mt) == "table" and rawget(mt, "__tostring") then
      s = safe_tostring(v)
    else
      return format_table(v, depth)
    end
  else
    s = safe_tostring(v)     -- tensors: their PyTorch-like __tostring
  end
  if depth > 0 then s = inline(s) end
  return s
end

--- Format any number of values for display, separated by tabs. Strings are
-- quoted (%q), tables shown one level deep, everything else via tostring.
function repl.pretty(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    parts[i] = format_value((select(i, ...)), 0)
  end
  return table.concat(parts, "\t")
end

-- ---- help ----

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

-- Tensor methods: the methods table of the "rlaif.Tensor" metatable (its
-- `methods` field, or __index when that is a table).
local function tensor_methods()
  local ok, reg = pcall(debug.getregistry)
  local mt = ok and type(reg) == "table" and reg["rlaif.Tensor"]
  if type(mt) ~= "table" then return nil end
  local index = rawget(mt, "methods") or rawget(mt, "__index")
  return type(index) == "table" and index or nil
end

-- Everything help knows: {path = "tensor.zeros", value = fn, parent = "tensor"},
-- top-level values, then one level into each module table, then tensor methods.
local function entries(rlaif)
  local list = {}
  for _, k in ipairs(sorted_keys(rlaif)) do
    local v = rlaif[k]
    list[#list + 1] = { path = k, value = v }
    if type(v) == "table" then
      for _, k2 in ipairs(sorted_keys(v)) do
        if not (k2 == "methods" or k2 == "meta") then   -- object methods are listed by class
          list[#list + 1] = { path = k .. "." .. k2, value = v[k2], parent = k, name = k2 }
        end
      end
    end
  end
  local groups = { { "Tensor", tensor_methods() } }
  for mod, class in pairs { model = "Model", tokenizer = "Tokenizer" } do
    local m = type(rlaif[mod]) == "table" and rlaif[mod].methods
    if type(m) == "table" then groups[#groups + 1] = { class, m } end
  end
  for _, g in ipairs(groups) do
    local class, methods = g[1], g[2]
    if methods then
      for _, k in ipairs(sorted_keys(methods)) do
        list[#list + 1] = { path = class .. ":" .. k, value = methods[k], parent = class, name = k }
      end
    end
  end
  return list
end

-- ---- docs from the Lua sources ----

-- Method tables of a module's objects: their docs are keyed "Class:name" and
-- shown with the variable the examples use.
local CLASS = { tensor = "Tensor", model = "Model", tokenizer = "Tokenizer" }
local VAR = { Tensor = "t", Model = "m", Tokenizer = "tok" }

-- The doc line of `key` from its first "---" comment line.
local function doc_line(mod, key, name, doc)
  local class = key:match("^(%u%w*):")
  if class then
    if doc:match("^[%a_][%w_]*:" .. name .. "%(") then return doc end
    if doc:match("^" .. name .. "%(") then return VAR[class] .. ":" .. doc end
    return VAR[class] .. ":" .. name .. "(...) -- " .. doc
  end
  if doc:match("^rlaif%.") then return doc end
  if mod and doc:match("^" .. mod .. "%." .. name .. "[%(%s{]") then return "rlaif." .. doc end
  if doc:match("^" .. name .. "[%(%s{]") then return "rlaif." .. (mod and (mod .. ".") or "") .. doc end
  return "rlaif." .. key .. "(...) -- " .. doc
end

-- Read "--- doc" blocks followed by `function M.name(`, `M.name =`,
-- `function methods:name(` (CLASS[mod]) or, in init.lua, `rlaif.name =`. The
-- whole block is kept: its first line made into the entry's doc line, the
-- others after it, indented.
local function harvest(mod, path, into)
  local f = io.open(path, "rb")
  if not f then return end
  local doc
  for line in f:lines() do
    local d = line:match("^%-%-%- ?(.*)$")
    if d then
      doc = doc or {}
      doc[#doc + 1] = d
    else
      if doc then
        local tbl, name = line:match("^function ([%w_]+)[.:]([%w_]+)%s*%(")
        if not tbl then tbl, name = line:match("^([%w_]+)%.([%w_]+)%s*=") end
        local key
        if tbl == "M" or (mod and tbl == mod) then key = mod .. "." .. name
        elseif tbl == "methods" and CLASS[mod] then key = CLASS[mod] .. ":" .. name
        elseif tbl == "rlaif" and not mod then key = name end
        if key and into[key] == nil then
          local text = { doc_line(mod, key, name, doc[1]) }
          for i = 2, #doc do text[i] = "    " .. doc[i] end
          into[key] = table.concat(text, "\n")
        end
      end
      if not line:match("^%-%-") then doc = nil end
    end
  end
  f:close()
end

local harvested
local function source_docs()
  if harvested then return harvested end
  harvested = {}
  local ok, rlaif = pcall(require, "rlaif")
  if not ok then return harvested end
  local init = package.searchpath("rlaif", package.path)
  if init then harvest(nil, init, harvested) end
  for mod, v in pairs(rlaif) do
    if type(v) == "table" and mod ~= "core" then
      local p = package.searchpath("rlaif." .. mod, package.path)
      if p then harvest(mod, p, harvested) end
    end
  end
  return harvested
end

-- A module function and the tensor method of the same name share one doc.
local function doc_of(path)
  local doc = repl.docs[path] or source_docs()[path]
  if doc then return doc end
  local name = path:match("^tensor%.(.+)$")
  if name then return repl.docs["Tensor:" .. name] or source_docs()["Tensor:" .. name] end
  name = path:match("^Tensor:(.+)$")
  if name then return repl.docs["tensor." .. name] or source_docs()["tensor." .. name] end
  return nil
end

-- The first sentence of a doc (which may run over several of its lines),
-- wrapped at 78 columns under a two-space indent: a module listing's entry.
local function summary(doc)
  local text = doc:gsub("\n%s*", " ")
  local at = 1
  while true do
    local e = text:find("[.?!] ", at)
    if not e then break end
    local word = text:sub(1, e):match("(%S+)$")
    if not (word == "e.g." or word == "i.e." or word == "etc." or word == "vs.") then
      text = text:sub(1, e)
      break
    end
    at = e + 1
  end
  local out, line = {}, ""
  for w in text:gmatch("%S+") do
    if #line > 0 and #line + 1 + #w > 76 then
      out[#out + 1] = line
      line = "    " .. w
    else
      line = #line > 0 and (line .. " " .. w) or w
    end
  end
  out[#out + 1] = line
  return table.concat(out, "\n  ")
end

local function describe(e, short)
  local doc = doc_of(e.path)
  if doc then return short and summary(doc) or doc end
  local class, m = e.path:match("^(%u%w*):(.+)$")
  local name = class and ((VAR[class] or "obj") .. ":" .. m) or ("rlaif." .. e.path)
  if type(e.value) == "function" then return name .. "(...)" end
  if type(e.value) == "table" then return name .. " -- table" end
  return name .. " = " .. format_value(e.value, 1)
end

-- "heading: a, b, c" wrapped at 78 columns.
local function wrap_names(heading, names, out)
  local line = heading
  for i, n in ipairs(names) do
    local piece = n .. (i < #names and "," or "")
    if #line + 1 + #piece > 78 then
      out(line .. "\n")
      line = "   "
    end
    line = line .. " " .. piece
  end
  out(line .. "\n")
end

local function names_under(list, parent)
  local names = {}
  for _, e in ipairs(list) do
    if e.parent == parent then names[#names + 1] = e.name end
  end
  return names
end

-- Top-level values one per line, then each module's and the tensor methods'
-- names, wrapped.
local function list_all(rlaif, list, out)
  out(string.format("rlaif %s -- help(\"tensor.zeros\"), help(rlaif.tensor), help(fn) for more\n",
    tostring(rlaif.version)))
  for _, e in ipairs(list) do
    if not e.parent and type(e.value) ~= "table" then out("  " .. describe(e, true) .. "\n") end
  end
  for _, e in ipairs(list) do
    if not e.parent and type(e.value) == "table" then
      local names = names_under(list, e.path)
      if #names > 0 then wrap_names("module rlaif." .. e.path .. ":", names, out) end
    end
  end
  for _, class in ipairs { "Tensor", "Model", "Tokenizer" } do
    local methods = names_under(list, class)
    if #methods > 0 then
      wrap_names(class:lower() .. " methods, " .. VAR[class] .. ":name(...):", methods, out)
    end
  end
end

-- Normalise "rlaif.tensor.zeros", "t:matmul", "Tensor.matmul" or "zeros".
local function find_by_name(list, name)
  name = name:gsub("^rlaif%.", ""):gsub("^[Tt]ensor:", "Tensor:"):gsub("^Tensor%.", "Tensor:")
    :gsub("^t:", "Tensor:"):gsub("^m:", "Model:"):gsub("^tok:", "Tokenizer:")
  for _, e in ipairs(list) do
    if e.path == name then return e end
  end
  for _, e in ipairs(list) do  -- a bare name: the first path ending in it
    if e.path:match("[.:]" .. name:gsub("%p", "%%%0") .. "$") then return e end
  end
  if doc_of(name) then return { path = name } end
  return nil
end

--- help() lists the rlaif API; help(fn), help("name") or help(module) prints
--- one entry's whole doc or a module's listing (each entry's first sentence).
--- Writes with io.write by default.
function repl.help(topic, write)
  local out = write or io.write
  local ok, rlaif = pcall(require, "rlaif")
  if not ok then
    out("help: cannot load rlaif: " .. tostring(rlaif) .. "\n")
    return
  end
  local list = entries(rlaif)
  if topic == nil or rawequal(topic, rlaif) then
    list_all(rlaif, list, out)
    return
  end
  local found
  if type(topic) == "string" then
    found = find_by_name(list, topic)
  else  -- by value: prefer the shortest path (rlaif.tensor over rlaif.core.tensor)
    for pass = 1, 2 do
      for _, e in ipairs(list) do
        if rawequal(e.value, topic) and (pass == 2 or not e.parent) then found = e break end
      end
      if found then break end
    end
  end
  if not found then
    out(string.format("help: nothing known about %s; help() lists the API\n",
      type(topic) == "string" and string.format("%q", topic) or "this " .. type(topic)))
  elseif type(found.value) == "table" then
    out("module rlaif." .. found.path .. ":\n")
    for _, k in ipairs(sorted_keys(found.value)) do
      if not (k == "methods" or k == "meta") then
        out("  " .. describe({ path = found.path .. "." .. k, value = found.value[k] }, true) .. "\n")
      end
    end
  else
    out(describe(found) .. "\n")
  end
end

return repl
