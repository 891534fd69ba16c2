-- tests/spec/tokenizer_train_spec.lua -- rlaif.tokenizer.train against an
-- independent reference: scripts/ref_bpe_train.py, a plain quadratic Python
-- trainer that follows the same rule (most frequent adjacent pair; ties: the
-- smallest (left id, right id); merged bytes keep an existing id), wrote the
-- merges and vocabularies in tests/fixtures/bpe_train/ from the corpora stored
-- there. Every merge, in order, and every token id must agree.
-- luacheck: std +busted

local tokenizer = require "rlaif.tokenizer"
local json = require("rlaif.core").json
local helper = require "spec.helper"

local DIR = "tests/fixtures/bpe_train/"
local CASES = { "english-gpt2", "ties-gpt2", "utf8-custom", "abc-deep", "specials-min-frequency" }

local function read_json(path)
  local f = assert(io.open(path, "rb"))
  local d = assert(json.decode(f:read("a")))
  f:close()
  return d
end

describe("rlaif.tokenizer.train against the Python reference #unit", function()
  for _, name in ipairs(CASES) do
    it(name, function()
      local c = read_json(DIR .. name .. ".json")
      assert.is_true(#c.texts > 0 and #c.merges > 0)
      local out = helper.tmpname(".json")
      assert.is_true(tokenizer.train { texts = c.texts, vocab_size = c.vocab_size, pattern = c.pattern,
        min_frequency = c.min_frequency, special = c.special, output = out })
      local got = read_json(out)
      os.remove(out)
      local merges = got.model.merges
      for i, m in ipairs(c.merges) do
        local g = merges[i]
        if not g or g[1] ~= m[1] or g[2] ~= m[2] then
          error(string.format("%s: merge %d is %s, the reference has [%q, %q]", name, i,
            g and string.format("[%q, %q]", g[1], g[2]) or "missing", m[1], m[2]))
        end
      end
      assert.equal(#c.merges, #merges, name .. ": number of merges")
      local n = 0
      for tok, id in pairs(c.vocab) do
        assert.equal(id, got.model.vocab[tok], name .. ": id of " .. tok)
        n = n + 1
      end
      local m = 0
      for _ in pairs(got.model.vocab) do m = m + 1 end
      assert.equal(n, m, name .. ": vocabulary size")
      -- specials follow the merged tokens
      for k, s in ipairs(c.special or {}) do
        assert.equal(s, got.added_tokens[k].content)
        assert.equal(n + k - 1, got.added_tokens[k].id)
      end
    end)
  end
end)
