-- examples/rl.lua -- SFT -> reward model -> RL, the whole RLAIF loop on a toy task
-- that runs offline in seconds: `./rlaif examples/rl.lua`.
--
-- The task: answer a request either politely ("please pass the salt") or bluntly
-- ("give me the salt"). The SFT data has both kinds half and half. The preference
-- labels prefer the polite answer -- here a rule stands in for the AI labeler
-- (rlaif.labeler produces the same {prompt, chosen, rejected, p} records from an
-- LLM). A reward model learns them; then REINFORCE with a value baseline (the
-- paper's algorithm, objective (1 - beta) r - beta KL) moves the policy towards
-- polite answers while the KL penalty keeps it near the SFT model.

local rlaif = require "rlaif"
rlaif.set_threads(1)   -- tiny models: one thread has the least overhead

-- ---- 1. a tokenizer and a tiny GPT-2 ----
local things = { "salt", "bread", "water", "book", "pen", "map", "key", "cup" }
local corpus = {}
for _, t in ipairs(things) do
  corpus[#corpus + 1] = "Ask for the " .. t .. ": please pass the " .. t .. " thank you"
  corpus[#corpus + 1] = "Ask for the " .. t .. ": give me the " .. t .. " now"
end
local tok_path = os.tmpname() .. ".json"
assert(rlaif.tokenizer.train { texts = corpus, vocab_size = 320, pattern = "gpt2", special = { "<|endoftext|>" },
  output = tok_path })
local tok = assert(rlaif.tokenizer.load(tok_path))
os.remove(tok_path)
local eos = tok:id("<|endoftext|>")
local policy = rlaif.model.new { arch = "gpt2", vocab_size = tok:vocab_size(), n_layer = 2, n_head = 2,
  d_model = 48, max_seq = 64, seed = 7, eos_id = eos }

-- ---- 2. SFT on both kinds of answer ----
local sft, prompts = {}, {}
for _, t in ipairs(things) do
  local p = "Ask for the " .. t .. ":"
  prompts[#prompts + 1] = p
  sft[#sft + 1] = { prompt = p, response = " please pass the " .. t .. " thank you" }
  sft[#sft + 1] = { prompt = p, response = " give me the " .. t .. " now" }
end
local res = rlaif.train.sft { model = policy, tokenizer = tok, data = sft, batch_size = 8, epochs = 60, lr = 3e-3 }
print(string.format("SFT: final loss %.3f", res.loss))

-- ---- 3. a reward model from preference labels (polite > blunt) ----
local pairs = {}
for _, s in ipairs(sft) do
  if s.response:find("please", 1, true) then
    pairs[#pairs + 1] = { prompt = s.prompt, chosen = s.response,
      rejected = s.response:gsub(" please pass the (%a+) thank you", " give me the %1 now"), p = 1.0 }
  end
end
local rm = policy:clone { head = "reward" }   -- start from the SFT trunk, as the paper does
local rres = rlaif.train.reward { model = rm, tokenizer = tok, pairs = pairs, batch_size = 8, epochs = 40,
  lr = 3e-3, center = 0.01 }
print(string.format("reward model: pair accuracy %.2f, reward mean %.2f, std %.2f", rres.train_pair_accuracy,
  rres.reward_mean, rres.reward_std))

-- ---- 4. RL: REINFORCE with a value baseline against the reward model ----
local function polite_share(tr)
  local n, polite = 0, 0
  for _, r in ipairs(tr.last_rollout.responses) do
    n = n + 1
    if tok:decode(r):find("please", 1, true) then polite = polite + 1 end
  end
  return polite / n
end
local beta = 0.05
local tr = rlaif.rl.trainer {
  algo = "reinforce", policy = policy, reward = rm, tokenizer = tok,
  reward_norm = { mean = rres.reward_mean, std = rres.reward_std },   -- rewards in units of the RM's std
  kl_coef = beta, reward_scale = 1 - beta,                            -- (1 - beta) r - beta KL
  temperature = 0.9, max_new_tokens = 10, lr = 1e-3, value_lr = 3e-3, vf_coef = 0.5, seed = 1,
}
print("\nstep  reward   KL     polite share of the samples")
local _, all = tr:train { prompts = prompts, steps = 30, batch_size = 8, quiet = true,
  on_step = function(t, st)
    if st.step == 1 or st.step % 3 == 0 then
      print(string.format("%4d  %6.3f  %5.2f  %4.2f", st.step, st.reward_mean, st.kl, polite_share(t)))
    end
  end }
print(string.format("\nreward %.3f -> %.3f over %d steps", all[1].reward_mean, all[#all].reward_mean, #all))
local toks = policy:generate({ tok:encode("Ask for the map:") },
  { max_new_tokens = 10, temperature = 0, stop = { eos } })
print("greedy answer after RL: Ask for the map:" .. tok:decode(toks[1]):gsub("<|endoftext|>", ""))
