-- rlaif.tokenizer through the Lua API: a tiny in-memory tokenizer.json for the
-- API and error messages, then the real tokenizers in ../shared against the
-- committed goldens (skipped when ../shared is absent), and the CLI.
local rlaif = require "rlaif"
local helper = require "spec.helper"
local json = require("rlaif.core").json
local tokenizer = rlaif.tokenizer
local FIX = "tests/fixtures/tokenizer/"

-- GPT-2's byte -> code point alphabet, to write byte-level vocabularies.
local function byte_char(b)
  local printable = (b >= 33 and b <= 126) or (b >= 161 and b <= 172) or (b >= 174 and b <= 255)
  if printable then return utf8.char(b) end
  local k = 0
  for x = 0, b - 1 do
    if not ((x >= 33 and x <= 126) or (x >= 161 and x <= 172) or (x >= 174 and x <= 255)) then k = k + 1 end
  end
  return utf8.char(256 + k)
end

-- 256 byte tokens, merges h+e -> 256, l+l -> 257, he+ll -> 258, special <|end|> = 259.
local function tiny_json(pre)
  local vocab = {}
  for b = 0, 255 do vocab[byte_char(b)] = b end
  vocab.he, vocab.ll, vocab.hell = 256, 257, 258
  return json.encode {
    version = "1.0",
    added_tokens = { { id = 259, content = "<|end|>", special = true } },
    pre_tokenizer = pre or { type = "ByteLevel", add_prefix_space = false, use_regex = true },
    post_processor = {
      type = "TemplateProcessing",
      single = { { SpecialToken = { id = "<|end|>", type_id = 0 } }, { Sequence = { id = "A", type_id = 0 } } },
      special_tokens = { ["<|end|>"] = { id = "<|end|>", ids = { 259 }, tokens = { "<|end|>" } } },
    },
    decoder = { type = "ByteLevel" },
    model = { type = "BPE", vocab = vocab, merges = { "h e", { "l", "l" }, "he ll" } },
  }
end

local function write_tmp(text, suffix)
  local path = helper.tmpname(suffix)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

describe("rlaif.tokenizer #unit", function()
  local path, tok
  setup(function()
    path = write_tmp(tiny_json(), ".json")
    tok = assert(tokenizer.load(path))
  end)
  teardown(function()
    tok:free()
    os.remove(path)
  end)

  it("encodes, decodes and counts", function()
    assert.same({ 258, 111 }, tok:encode("hello"))
    assert.equal("hello", tok:decode { 258, 111 })
    assert.equal(2, tok:count("hello"))
    assert.same({}, tok:encode(""))
    assert.equal("", tok:decode {})
    assert.equal(260, tok:vocab_size())
    assert.equal("tokenizer.json", tok:kind())
    assert.matches("rlaif.Tokenizer %(tokenizer.json, 260 ids%)", tostring(tok))
  end)

  it("looks tokens up by their bytes", function()
    assert.equal(258, tok:id("hell"))
    assert.equal(259, tok:id("<|end|>"))
    assert.is_nil(tok:id("nope"))
    assert.equal("he", tok:token(256))
    assert.equal(" ", tok:token(32))
    assert.is_nil(tok:token(100000))
    assert.is_nil(tok:token(-1))
    assert.same({ ["<|end|>"] = 259 }, tok:special_tokens())
  end)

  it("treats special tokens as text unless allowed", function()
    assert.equal(7, #tok:encode("<|end|>"))
    assert.same({ 259 }, tok:encode("<|end|>", { allowed_special = "all" }))
    assert.same({ 259 }, tok:encode("<|end|>", { allowed_special = { "<|end|>" } }))
    assert.same({ 259 }, tok:encode("<|end|>", { allowed_special = { ["<|end|>"] = true } }))
    assert.same({ 259, 256 }, tok:encode("he", { add_special = true }))
    assert.has_error(function() tok:encode("x", { allowed_special = { "<|nope|>" } }) end,
      "tokenizer.encode: allowed_special: '<|nope|>' is not a special token")
    assert.has_error(function() tok:encode("x", { allowed_special = "some" }) end,
      "tokenizer.encode: allowed_special must be \"all\" or a table of tokens")
  end)

  it("replaces invalid UTF-8 with U+FFFD like the references", function()
    assert.same(tok:encode("a\u{FFFD}\u{FFFD}z"), tok:encode("a\xff\xe2\x82z"))
    assert.equal("a\u{FFFD}", tok:decode(tok:encode("a\xC0")))
  end)

  it("handles long runs", function()
    local ids = tok:encode(string.rep("l", 10000))
    assert.equal(5000, #ids)
    assert.equal(string.rep("l", 10000), tok:decode(ids))
  end)

  it("encodes batches", function()
    local out = tok:encode_batch { "hello", "", "hell hell" }
    assert.same({ { 258, 111 }, {}, { 258, 32, 258 } }, out)
    local many = {}
    for i = 1, 100 do many[i] = string.rep("he", i) end
    local res = tok:encode_batch(many)
    for i = 1, 100 do assert.equal(i, #res[i]) end
    assert.has_error(function() tok:encode_batch { "a", 5 } end, "tokenizer.encode_batch: texts[2] is not a string")
  end)

  it("packs ids into an int32 string that decode takes, and refuses bad buffers by name", function()
    local p = tok:encode("hello", { packed = true })
    assert.equal(string.pack("<i4i4", 258, 111), p)
    assert.equal("hello", tok:decode(p))
    assert.equal("", tok:encode("", { packed = true }))
    assert.equal("", tok:decode(""))
    local function pack(t) return string.pack(string.rep("<i4", #t), table.unpack(t)) end
    local texts = { "hel", "hehe", "hello" }
    local packs = tok:encode_batch(texts, { packed = true })
    assert.equal(3, #packs)
    for i, s in ipairs(texts) do assert.equal(pack(tok:encode(s)), packs[i]) end
    -- 3000 ids: crosses the chunks decode reads at a time; positions count over the whole buffer
    local ids = {}
    for i = 1, 3000 do ids[i] = 256 end
    local big = pack(ids)
    assert.equal(tok:decode(ids), tok:decode(big))
    assert.equal(string.rep("he", 3000), tok:decode(big))
    local bad = big:sub(1, 4 * 2049) .. string.pack("<i4", 5000) .. big:sub(4 * 2050 + 1)
    assert.has_error(function() tok:decode(bad) end, "tokenizer.decode: unknown token id 5000 at position 2050")
    assert.has_error(function() tok:decode(string.pack("<i4", -7)) end,
      "tokenizer.decode: unknown token id -7 at position 1")
    assert.has_error(function() tok:decode("hello") end,
      "tokenizer.decode: packed ids of 5 bytes: not a multiple of 4 (int32 each)")
    assert.has_error(function() tok:decode(42) end,
      "tokenizer.decode: ids must be a table or a packed string of int32s, got number")
    assert.has_error(function() tok:encode("hello", { packed = "yes" }) end,
      "tokenizer.encode: option 'packed' must be a boolean, got \"yes\"")
    assert.has_error(function() tok:encode_batch({ "a" }, { packed = 1 }) end,
      "tokenizer.encode_batch: option 'packed' must be a boolean, got 1")
  end)

  it("raises on misuse and reports file problems", function()
    assert.has_error(function() tok:decode { 1, 5000 } end,
      "tokenizer.decode: unknown token id 5000 at position 2")
    assert.has_error(function() tok:decode { 1, "x" } end, "tokenizer.decode: ids[2] is not an integer")
    local long = {}
    for i = 1, 200 do long[i] = 256 end
    assert.equal(string.rep("he", 200), tok:decode(long))
    long[150] = -1 -- positions count over the whole list, not the chunk read at a time
    assert.has_error(function() tok:decode(long) end, "tokenizer.decode: unknown token id -1 at position 150")
    long[150], long[199] = 256, 2.5
    assert.has_error(function() tok:decode(long) end, "tokenizer.decode: ids[199] is not an integer")
    local t, err = tokenizer.try_load("/nonexistent/tokenizer.json")
    assert.is_nil(t)
    assert.matches("tokenizer.load: cannot open /nonexistent/tokenizer.json", err, 1, true)
    local bad = write_tmp('{"model": {"type": "Unigram", "vocab": []}}', ".json")
    t, err = tokenizer.try_load(bad)
    os.remove(bad)
    assert.is_nil(t)
    assert.matches('unsupported model type "Unigram"', err, 1, true)
    bad = write_tmp(tiny_json():sub(1, 300), ".json")
    t, err = tokenizer.try_load(bad)
    os.remove(bad)
    assert.is_nil(t)
    assert.matches("unexpected end of file (truncated JSON?)", err, 1, true)
  end)

  it("frees idempotently and refuses use after free", function()
    local t = assert(tokenizer.load(path))
    t:free()
    t:free()
    assert.has_error(function() t:encode("x") end, "attempt to use a freed tokenizer")
    do
      local c <close> = assert(tokenizer.load(path))
      assert.equal(2, c:count("hello"))
    end
  end)

  it("falls back to PCRE2 for other Split regexes", function()
    local p = write_tmp(tiny_json {
      type = "Sequence",
      pretokenizers = {
        { type = "Split", pattern = { Regex = "\\d|[a-z]+" }, behavior = "Isolated", invert = false },
        { type = "ByteLevel", add_prefix_space = false, use_regex = false },
      },
    }, ".json")
    local t = assert(tokenizer.load(p))
    os.remove(p)
    assert.same({ 258, 49, 50, 32, 256 }, t:encode("hell12 he"))
    t:free()
  end)
end)

-- ---- the real tokenizers against the goldens ----

local function read_lines(p)
  local t = {}
  for line in io.lines(p) do t[#t + 1] = line end
  return t
end

local cases = {
  { "tokenizers/tiktoken/r50k_base.tiktoken", "r50k_base" },
  { "tokenizers/tiktoken/cl100k_base.tiktoken", "cl100k_base" },
  { "tokenizers/tiktoken/o200k_base.tiktoken", "o200k_base" },
  { "tokenizers/gpt2/tokenizer.json", "gpt2_hf", true },
  { "tokenizers/gpt2/vocab.bpe", "r50k_base" },
  { "tokenizers/llama3/tokenizer.json", "llama3", true },
  { "tokenizers/qwen3/tokenizer.json", "qwen3", true, true },
  { FIX .. "trained.json", "trained", true, fixture = true }, -- trained by rlaif, ids from HF
}

describe("rlaif.tokenizer goldens #unit", function()
  local docs
  setup(function()
    docs = {}
    for i, line in ipairs(read_lines(FIX .. "corpus.jsonl")) do docs[i] = json.decode(line) end
  end)

  for _, c in ipairs(cases) do
    local file, name, hf, nfc = c[1], c[2], c[3], c[4]
    it(name .. " from " .. file, function()
      local p = c.fixture and file or helper.shared("data/" .. file)
      if not p then
        pending("../shared is absent")
        return
      end
      local tok = assert(tokenizer.load(p))
      local golden = read_lines(FIX .. name .. ".golden")
      -- a header, then one line per corpus document: a cut file must fail, not compare less
      assert.equal(#docs + 1, #golden, name .. ".golden: lines for " .. #docs .. " documents + header")
      local opts = hf and { allowed_special = "all" } or nil
      local compared = 0
      for i, text in ipairs(docs) do
        local line = golden[i + 1]
        if line ~= "-" then
          local want = {}
          for v in line:gmatch("%d+") do want[#want + 1] = tonumber(v) end
          table.remove(want, 1) -- the count
          local got = tok:encode(text, opts)
          assert.same(want, got, name .. " document " .. i)
          -- the packed form holds the same ids and decodes to the same bytes as the table form
          local packed = tok:encode(text, { allowed_special = opts and "all", packed = true })
          assert.equal(4 * #want, #packed)
          for j = 1, #want, 97 do assert.equal(want[j], (string.unpack("<i4", packed, 4 * j - 3))) end
          assert.equal(tok:decode(got), tok:decode(packed), name .. " document " .. i)
          if not nfc then assert.equal(text, tok:decode(got)) end
          compared = compared + 1
        end
      end
      assert.is_true(compared > 200)
      tok:free()
    end)
  end
end)

describe("rlaif.tokenizer.train #unit", function()
  it("reproduces the committed fixture and round-trips", function()
    local texts = {}
    for line in io.lines(FIX .. "corpus.jsonl") do texts[#texts + 1] = json.decode(line) end
    local out = helper.tmpname(".json")
    assert.is_true(tokenizer.train { texts = texts, vocab_size = 1000, pattern = "cl100k",
      special = { "<|endoftext|>", "<|pad|>" }, output = out })
    local a, b = io.open(out, "rb"), io.open(FIX .. "trained.json", "rb")
    local got, want = a:read("a"), b:read("a")
    a:close()
    b:close()
    assert.is_true(got == want, "retrained tokenizer.json differs from the fixture")
    local tok = assert(tokenizer.load(out))
    os.remove(out)
    assert.equal(1000, tok:vocab_size())
    assert.same({ 998 }, tok:encode("<|endoftext|>", { allowed_special = "all" }))
    for _, s in ipairs(texts) do assert.equal(s, tok:decode(tok:encode(s))) end
    tok:free()
  end)

  it("loaders: load raises naming the file, try_load returns nil and the message; options are checked", function()
    local TOKJSON = write_tmp(tiny_json(), ".json")
    finally(function() os.remove(TOKJSON) end)
    assert.has_error(function() tokenizer.load("/nonexistent/tokenizer.json") end,
      "tokenizer.load: cannot open /nonexistent/tokenizer.json: No such file or directory")
    assert.has_error(function() tokenizer.load(TOKJSON, { encodng = "gpt2" }) end,
      "tokenizer.load: unknown option 'encodng' (did you mean 'encoding'?)")
    assert.has_error(function() tokenizer.try_load(TOKJSON, { encoding = "cl200k" }) end,
      'tokenizer.load: option \'encoding\' must be one of "r50k_base", "gpt2", "p50k_base", "cl100k_base", ' ..
      '"o200k_base", got "cl200k"')
    local tok = tokenizer.load(TOKJSON)
    assert.has_error(function() tok:encode("hi", { add_specail = true }) end,
      "tokenizer.encode: unknown option 'add_specail' (did you mean 'add_special'?)")
    assert.has_error(function() tok:count("hi", { add_special = 1 }) end,
      "tokenizer.count: option 'add_special' must be a boolean, got 1")
    assert.has_error(function() tok:encode_batch({ "hi" }, { allowed_special = 3 }) end,
      "tokenizer.encode_batch: option 'allowed_special' must be a string or a table, got 3")
    tok:free()
  end)

  it("reports bad options", function()
    assert.has_error(function() tokenizer.train { texts = { "x" }, vocab_size = 10, output = "/tmp/x.json" } end,
      "tokenizer.train: option 'vocab_size' must be an integer >= 257 and <= 16777216, got 10")
    assert.has_error(function() tokenizer.train { texts = { "x" }, vocab_size = 300, outptu = "/tmp/x.json" } end,
      "tokenizer.train: unknown option 'outptu' (did you mean 'output'?)")
    assert.has_error(function() tokenizer.train { vocab_size = 300, output = "/tmp/x.json" } end,
      "tokenizer.train: give files or texts to learn from")
    local ok, err = tokenizer.train { files = { "/nonexistent.txt" }, vocab_size = 300, output = "/tmp/x.json" }
    assert.is_nil(ok)
    assert.equal("tokenizer.train: cannot open /nonexistent.txt", err)
  end)
end)

describe("rlaif tokenize CLI #unit #noasan", function()
  it("encodes, counts and decodes lines", function()
    local p = helper.shared("data/tokenizers/tiktoken/cl100k_base.tiktoken")
    if not p then
      pending("../shared is absent")
      return
    end
    local input = write_tmp("Hello world\n\"a\\nb\"\n", ".txt")
    local function run(args)
      local f = assert(io.popen("./rlaif tokenize --tokenizer " .. p .. " " .. args .. " " .. input))
      local out = f:read("a")
      f:close()
      return out
    end
    assert.equal("[9906,1917]\n[57793,1734,65,1]\n", run(""))
    assert.equal("2\n4\n", run("--count"))
    os.remove(input)
    input = write_tmp("\"Hello\\nworld\"\n", ".jsonl")
    assert.equal("[9906,198,14957]\n", run("--jsonl"))
    os.remove(input)
    input = write_tmp("[9906,198,14957]\n", ".txt")
    assert.equal("\"Hello\\nworld\"\n", run("--decode --jsonl"))
    os.remove(input)
  end)
end)
