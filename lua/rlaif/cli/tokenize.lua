-- lua/rlaif/cli/tokenize.lua -- `rlaif tokenize`: encode documents to token ids,
-- count them, or decode ids back to text, one document per input line.
--
-- A subcommand module returns main(args) -> exit status (see cli/info.lua).
-- Documents are processed in chunks of 1024 with tok:encode_batch (threads).
-- Flags are checked by rlaif.opts.cli (exit 2 on misuse).

local rlaif = require "rlaif"
local json = require("rlaif.core").json

local usage = [[
usage: rlaif tokenize --tokenizer PATH [--encoding NAME] [--jsonl] [--add-special]
                      [--allow-special] [--count | --decode] [FILE|-]

Reads one document per input line (FILE or standard input) and prints one JSON
array of token ids per document.
  --tokenizer PATH   tokenizer.json, a *.tiktoken file, vocab.bpe/encoder.json, or a directory
  --encoding NAME    tiktoken encoding when the file name does not say it
                     (r50k_base, gpt2, p50k_base, cl100k_base, o200k_base)
  --jsonl            each input line is a JSON string (documents may hold newlines);
                     with --decode, each output line is a JSON string
  --add-special      add the tokenizer's BOS/EOS tokens
  --allow-special    special tokens written in the text become special ids
  --count            print only the number of tokens of each document
  --decode           input lines are JSON arrays of ids; print the decoded text
]]

local function fail(msg, status)
  io.stderr:write("rlaif tokenize: ", msg, "\n")
  return status or 1
end

local FLAGS = {
  tokenizer = "string", encoding = { "string", one_of = { "r50k_base", "gpt2", "p50k_base", "cl100k_base",
    "o200k_base" } }, jsonl = "flag", ["add-special"] = "flag", ["allow-special"] = "flag", count = "flag",
  decode = "flag",
}

-- Flags through rlaif.opts.cli; one optional input file. nil, message on misuse.
local function parse_args(args)
  local ok, o = pcall(require("rlaif.opts").cli, "tokenize", args, FLAGS)
  if not ok then return nil, tostring(o) end
  if #o > 1 then return nil, "rlaif tokenize: more than one input file" end
  o.file = o[1]
  o.add_special, o.allow_special = o["add-special"], o["allow-special"]
  if o.count and o.decode then return nil, "rlaif tokenize: --count and --decode exclude each other" end
  return o
end

local function ids_json(ids)
  return "[" .. table.concat(ids, ",") .. "]"
end

local function main(args)
  local o, err = parse_args(args)
  if not o then
    io.stderr:write(err, "\n", usage)
    return 2
  end
  if o.help then
    io.write(usage)
    return 0
  end
  if not o.tokenizer then
    io.stderr:write("rlaif tokenize: --tokenizer is required\n", usage)
    return 2
  end
  local tok, lerr = rlaif.tokenizer.try_load(o.tokenizer, { encoding = o.encoding })
  if not tok then return fail(lerr) end
  local input = io.stdin
  if o.file and o.file ~= "-" then
    local f, ferr = io.open(o.file, "rb")
    if not f then return fail(ferr) end
    input = f
  end
  local opts = { add_special = o.add_special, allowed_special = o.allow_special and "all" or nil }
  local out = io.stdout
  local lineno = 0

  local function flush_encode(docs)
    if #docs == 0 then return end
    local all = tok:encode_batch(docs, opts)
    local buf = {}
    for k, ids in ipairs(all) do
      buf[k] = o.count and tostring(#ids) or ids_json(ids)
    end
    buf[#buf + 1] = ""
    out:write(table.concat(buf, "\n"))
  end

  local docs = {}
  for line in input:lines() do
    lineno = lineno + 1
    if o.decode then
      local ids, jerr = json.decode(line)
      if type(ids) ~= "table" then
        return fail(string.format("line %d: expected a JSON array of ids (%s)", lineno, jerr or "not an array"))
      end
      local ok, text = pcall(tok.decode, tok, ids)
      if not ok then return fail(string.format("line %d: %s", lineno, text)) end
      out:write(o.jsonl and json.encode(text) or text, "\n")
    else
      local doc = line
      if o.jsonl then
        local s, jerr = json.decode(line)
        if type(s) ~= "string" then
          return fail(string.format("line %d: expected a JSON string (%s)", lineno, jerr or "not a string"))
        end
        doc = s
      end
      docs[#docs + 1] = doc
      if #docs == 1024 then
        flush_encode(docs)
        docs = {}
      end
    end
  end
  flush_encode(docs)
  if input ~= io.stdin then input:close() end
  tok:free()
  return 0
end

return main
