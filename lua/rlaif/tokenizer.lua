-- rlaif.tokenizer: exact byte-level BPE (GPT-2, tiktoken encodings, Hugging Face
-- tokenizer.json such as Llama 3 and Qwen3) over the C engine in rlaif.core.tokenizer.
--
--   local tok = assert(rlaif.tokenizer.load("tokenizer.json"))   -- or *.tiktoken, vocab.bpe
--   local ids = tok:encode("Hello world")                         -- {9906, 1917}, 0-based ids
--   tok:decode(ids) == "Hello world"
--   tok:count(text); tok:id(" 1"); tok:token(16); tok:vocab_size()
--   tok:encode(text, {add_special = true, allowed_special = "all" | {"<|endoftext|>"}})
--   tok:encode_batch({a, b, c})                                   -- on rlaif.get_threads() threads
--   rlaif.tokenizer.train{texts = {...}, vocab_size = 1000, output = "tok.json"}
--
-- Special tokens in the text are plain text unless allowed; non-special added
-- tokens of a tokenizer.json are always recognised, as Hugging Face does. Invalid
-- UTF-8 is replaced by U+FFFD before encoding, as the reference tokenizers see it.
-- File problems return nil, message; misuse raises.

local core = require "rlaif.core"

local C = core.tokenizer
local M = {}

--- load(path [, {encoding = "cl100k_base"}]) -> tokenizer | nil, message
-- path: tokenizer.json, a *.tiktoken rank file, GPT-2's vocab.bpe or encoder.json,
-- or a directory holding one of them. The tiktoken encoding comes from the file
-- name unless opts.encoding names it (r50k_base, gpt2, p50k_base, cl100k_base, o200k_base).
function M.load(path, opts)
  return C.load(path, opts)
end

local function list(v)
  if type(v) == "string" then return { v } end
  return v
end

--- train{files = {...} | texts = {...}, vocab_size = n, output = path,
---       pattern = "gpt2" | "cl100k" | "llama3" | "o200k" | "qwen" | regex,
---       special = {"<|endoftext|>", ...}, min_frequency = 2} -> true | nil, message
-- Learns byte-level BPE merges and writes a Hugging Face tokenizer.json (which
-- @huggingface/tokenizers and rlaif.tokenizer.load both read). Each file is one
-- document; vocab_size counts the 256 byte tokens, the merges and the specials.
function M.train(opts)
  assert(type(opts) == "table", "tokenizer.train: expected a table of options")
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.files, o.texts, o.special = list(opts.files), list(opts.texts), list(opts.special)
  return C.train(o)
end

return M
