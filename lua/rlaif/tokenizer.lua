-- rlaif.tokenizer: exact byte-level BPE (GPT-2, tiktoken encodings, Hugging Face
-- tokenizer.json such as Llama 3 and Qwen3) over the C engine in rlaif.core.tokenizer.
--
--   local tok = rlaif.tokenizer.load("tokenizer.json")           -- or *.tiktoken, vocab.bpe
--   local ids = tok:encode("Hello world")                         -- {9906, 1917}, 0-based ids
--   tok:decode(ids) == "Hello world"
--   tok:count(text); tok:id(" 1"); tok:token(16); tok:vocab_size()
--   tok:encode(text, {add_special = true, allowed_special = "all" | {"<|endoftext|>"}})
--   tok:encode_batch({a, b, c})                                   -- on rlaif.get_threads() threads
--   local p = tok:encode(text, {packed = true})   -- one string of little-endian int32 ids
--   tok:decode(p) == text                         -- decode takes a table or a packed string
--   string.unpack("<i4", p, 4 * (i - 1) + 1)      -- the i-th id; #p // 4 ids
--   rlaif.tokenizer.train{texts = {...}, vocab_size = 1000, output = "tok.json"}
--
-- Special tokens in the text are plain text unless allowed; non-special added
-- tokens of a tokenizer.json are always recognised, as Hugging Face does. Invalid
-- UTF-8 is replaced by U+FFFD before encoding, as the reference tokenizers see it.
-- Loaders follow the one convention of rlaif: load raises with the file and the
-- problem, try_load returns nil, message. Options are checked by rlaif.opts.

local core = require "rlaif.core"
local opts = require "rlaif.opts"

local C = core.tokenizer
local M = {}
local methods = C.methods

local LOAD = opts.schema("tokenizer.load", {
  encoding = { "string", one_of = { "r50k_base", "gpt2", "p50k_base", "cl100k_base", "o200k_base" } },
})

local function check_path(fn, path)
  if type(path) ~= "string" then
    error(string.format("%s: path must be a string, got %s", fn, type(path)), 3)
  end
end

-- Where each loaded tokenizer came from (weak keys), so m:save can copy its files.
local sources = setmetatable({}, { __mode = "k" })

local ENCODINGS = { "cl100k_base", "o200k_base", "r50k_base", "p50k_base", "gpt2" }

local function load(path, o)
  o = LOAD(o)
  local tok, err = C.load(path, o)
  if not tok and not o.encoding and core.gz.file_id(path .. "/.") then
    -- a directory with a tiktoken file named after its encoding (as m:save writes it)
    for _, e in ipairs(ENCODINGS) do
      if core.gz.file_id(path .. "/" .. e .. ".tiktoken") then
        tok, err = C.load(path, { encoding = e })
        break
      end
    end
  end
  if tok then sources[tok] = { path = path, encoding = o.encoding } end
  return tok, err
end

--- try_load(path [, {encoding = "cl100k_base"}]) -> tokenizer | nil, message
-- path: tokenizer.json, a *.tiktoken rank file, GPT-2's vocab.bpe or encoder.json,
-- or a directory holding one of them. The tiktoken encoding comes from the file
-- name unless opts.encoding names it (r50k_base, gpt2, p50k_base, cl100k_base, o200k_base).
function M.try_load(path, o)
  check_path("tokenizer.try_load", path)
  return load(path, o)
end

--- load(path [, {encoding =}]) -> tokenizer; raises "tokenizer.load: <file>: <problem>".
function M.load(path, o)
  check_path("tokenizer.load", path)
  local tok, err = load(path, o)
  if not tok then error(err, 2) end
  return tok
end

--- source(tok) -> {path =, encoding =} the tokenizer was loaded from, or nil.
function M.source(tok) return sources[tok] end

-- encode/count/encode_batch options, checked before the C call (only when given)
local ENC = opts.schema("tokenizer.encode",
  { add_special = "boolean", allowed_special = "string|table", packed = "boolean" })
local ENC_BATCH = opts.schema("tokenizer.encode_batch",
  { add_special = "boolean", allowed_special = "string|table", packed = "boolean" })
local COUNT = opts.schema("tokenizer.count", { add_special = "boolean", allowed_special = "string|table" })
local raw = rawget(methods, "_raw") or {}   -- the C methods, kept once (a reload wraps them again)
rawset(methods, "_raw", raw)
for name, schema in pairs { encode = ENC, encode_batch = ENC_BATCH, count = COUNT } do
  raw[name] = raw[name] or methods[name]
  local c_fn = raw[name]
  methods[name] = function(self, x, o)
    if o ~= nil then o = schema(o) end
    return c_fn(self, x, o)
  end
end

local function list(v)
  if type(v) == "string" then return { v } end
  return v
end

local TRAIN = opts.schema("tokenizer.train", {
  files = "string|table", texts = "string|table", vocab_size = { "integer", min = 257, max = 1 << 24, required = true },
  output = { "string", required = true }, pattern = "string", special = "string|table",
  min_frequency = { "integer", min = 1 },
})

--- train{files = {...} | texts = {...}, vocab_size = n, output = path,
---       pattern = "gpt2" | "cl100k" | "llama3" | "o200k" | "qwen" | regex,
---       special = {"<|endoftext|>", ...}, min_frequency = 2} -> true | nil, message
-- Learns byte-level BPE merges and writes a Hugging Face tokenizer.json (which
-- @huggingface/tokenizers and rlaif.tokenizer.load both read). Each file is one
-- document; vocab_size counts the 256 byte tokens, the merges and the specials.
function M.train(o)
  o = TRAIN(o)
  o.files, o.texts, o.special = list(o.files), list(o.texts), list(o.special)
  return C.train(o)
end

M.methods = methods
return M
