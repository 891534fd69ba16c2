-- scripts/gen_gguf_fixtures.lua -- train the two small language models the GGUF
-- specs hand to llama.cpp (tests/fixtures/gguf/{llama,gpt2}/, F32 safetensors): the trained
-- tokenizer fixture's vocabulary (1000 tokens), 2 layers, d_model 32, trained
-- on tests/fixtures/tokenizer/corpus.jsonl for a few hundred AdamW steps, so
-- their greedy continuations are corpus-like text with clear margins rather than
-- a random model's near-ties. Deterministic (seeded init, fixed batches).
-- Run from the repository root: ./rlaif scripts/gen_gguf_fixtures.lua
local rlaif = require "rlaif"
local json = rlaif.core.json

local TOK = "tests/fixtures/tokenizer/trained.json"
local tok = assert(rlaif.tokenizer.load(TOK))
local EOS = 998

-- the corpus as one token stream with EOS between documents
local stream = {}
for line in io.lines("tests/fixtures/tokenizer/corpus.jsonl") do
  local text = json.decode(line)
  for _, id in ipairs(tok:encode(text)) do stream[#stream + 1] = id end
  stream[#stream + 1] = EOS
end

local function train(m, steps, T, B)
  local opt = { lr = 3e-3, weight_decay = 0.0 }
  local seed = 1
  for step = 1, steps do
    local batch = {}
    for b = 1, B do
      seed = (seed * 1103515245 + 12345) % 2147483648
      local start = seed % (#stream - T - 1) + 1
      batch[b] = table.move(stream, start, start + T, 1, {})
    end
    local ids, targets = m:causal_lm_batch(batch)
    m:zero_grad()
    local loss = m:lm_loss(ids, targets)
    m:clip_grad_norm(1.0)
    opt.lr = 3e-3 * math.min(1, step / 20) * (1 - 0.9 * step / steps)
    m:adamw_step(opt)
    if step % 100 == 0 then io.stderr:write(string.format("step %d loss %.3f\n", step, loss)) end
  end
end

local function write(dir, m)   -- config.json + model.safetensors; the tokenizer is TOK
  os.execute("mkdir -p " .. dir)
  assert(m:save(dir))
end

local llama = rlaif.model.new { arch = "llama", vocab_size = 1000, n_layer = 2, n_head = 4, n_kv_head = 2,
  d_model = 32, d_ff = 64, max_seq = 128, seed = 11, eos_id = EOS, tie_embeddings = false, rope_theta = 10000 }
train(llama, 600, 48, 16)
write("tests/fixtures/gguf/llama", llama)

local gpt2 = rlaif.model.new { arch = "gpt2", vocab_size = 1000, n_layer = 2, n_head = 4, d_model = 32,
  max_seq = 128, seed = 12, eos_id = EOS }
train(gpt2, 600, 48, 16)
write("tests/fixtures/gguf/gpt2", gpt2)
