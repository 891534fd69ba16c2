-- examples/sft.lua -- supervised fine-tuning: next-token loss on the response only.
--
-- Usage: rlaif examples/sft.lua [MODEL_DIR [TOKENIZER]]
--   MODEL_DIR  a Hugging Face checkpoint (gpt2, llama, qwen2, mistral); without one,
--              a tiny GPT-2 is created from scratch so the example runs anywhere.
--   TOKENIZER  tokenizer.json / vocab.bpe for text data; without one the data
--              below is already token ids.
-- The fine-tuned model is written to /tmp/rlaif_sft in the same HF layout, so
-- `transformers` (or rlaif.model.load) reads it back.

local rlaif = require "rlaif"

local model_dir, tok_path = arg and arg[1], arg and arg[2]

-- 1. The model: a checkpoint, or a fresh tiny GPT-2 (eos_id lets the trainer end
--    every response with an end-of-sequence token).
local m = model_dir and rlaif.model.load(model_dir)
  or rlaif.model.new { arch = "gpt2", vocab_size = 64, n_layer = 2, n_head = 2, d_model = 32,
                       max_seq = 64, eos_id = 63, seed = 1 }
print(m)

-- 2. The data: {prompt=, response=}. Strings need a tokenizer; id arrays do not.
local tok = tok_path and assert(rlaif.tokenizer.load(tok_path))
local data = {}
for i = 1, 32 do
  if tok then
    data[i] = { prompt = "Q: what is " .. i .. " + 1?\nA:", response = " " .. (i + 1) }
  else
    -- a toy task: the response repeats the prompt's last token twice
    local a, b = i % 50 + 1, (i * 7) % 50 + 1
    data[i] = { prompt = { a, b }, response = { b, b } }
  end
end

-- 3. Train. The schedule is any function(step) -> lr multiplier; on_step sees
--    every optimizer step and may return false to stop early.
local steps = 40
local res = rlaif.train.sft {
  model = m, tokenizer = tok, data = data,
  batch_size = 8, grad_accum = 1, epochs = 10, max_steps = steps,
  lr = 3e-3, weight_decay = 0.01, max_grad_norm = 1.0,
  schedule = rlaif.train.schedule.cosine { warmup = 4, total = steps },
  on_step = function(info)
    if info.step % 5 == 0 then
      print(string.format("step %3d  loss %.4f  lr %.2e  |g| %.3f", info.step, info.loss, info.lr, info.grad_norm))
    end
    return info.loss > 0.01                    -- early stopping
  end,
}
print(string.format("final loss %.4f after %d steps", res.loss, res.step))

-- 4. Save in the Hugging Face layout and sample from it with the KV cache.
assert(m:save("/tmp/rlaif_sft"))
local prompt = tok and tok:encode(data[1].prompt) or data[1].prompt
local toks = m:generate({ prompt }, { max_new_tokens = 3, temperature = 0 })
print("prompt", table.concat(prompt, " "), "->", table.concat(toks[1], " "))
