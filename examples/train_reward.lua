-- examples/train_reward.lua -- a reward model from AI-feedback labels.
--
-- Usage: rlaif examples/train_reward.lua [PAIRS.jsonl [MODEL_DIR TOKENIZER]]
--   PAIRS.jsonl  the labeler's --export-pairs output ({prompt, chosen, rejected, p})
--                or any {prompt, chosen, rejected} JSONL. The labels are soft: p is
--                the labeler's probability that `chosen` is better, and the loss is
--                  -[p log s(r1 - r2) + (1 - p) log s(r2 - r1)]
--                (p = 1 gives Bradley-Terry). Without a file, synthetic id pairs are used.
--   MODEL_DIR    a checkpoint to start from; a reward head ("score.weight") is
--                added (zero-initialised) when it has none.
-- Prints an accuracy table on held-out pairs and saves the model and the reward
-- mean/std (for normalising rewards in RL) to /tmp/rlaif_rm.

local rlaif = require "rlaif"

local pairs_path, model_dir, tok_path = arg and arg[1], arg and arg[2], arg and arg[3]

local tok = tok_path and assert(rlaif.tokenizer.load(tok_path))
local m = model_dir and rlaif.model.load(model_dir, { head = "reward" })
  or rlaif.model.new { arch = "llama", vocab_size = 64, n_layer = 2, n_head = 4, n_kv_head = 2,
                       d_model = 32, d_ff = 64, eos_id = 63, head = "reward", seed = 7 }

-- 1. Pairs: from a file, or synthetic ones where the "better" answer contains token 5.
local all
if pairs_path then
  all = rlaif.train.read_pairs(pairs_path)
else
  all = {}
  for i = 1, 96 do
    local good, bad = { i % 20 + 10, 5 }, { i % 20 + 10, 40 + i % 10 }
    all[i] = { prompt = { i % 7 + 1 }, chosen = good, rejected = bad, p = (i % 5 == 0) and 0.75 or 1.0 }
  end
end

-- 2. Hold out a quarter (deterministically shuffled) for the accuracy report.
local perm = rlaif.train.permutation(#all, 42, 0)
local train_pairs, eval_pairs = {}, {}
for k, i in ipairs(perm) do
  local t = (k % 4 == 0) and eval_pairs or train_pairs
  t[#t + 1] = all[i]
end

-- 3. Accuracy before training.
local function accuracy(pairs)
  local rc, rr = rlaif.train.reward_scores(m, tok, pairs, { batch_size = 16 })
  return rlaif.train.pairwise_accuracy(rc, rr, pairs)
end
local before = accuracy(eval_pairs)

-- 4. Train: soft-label loss, optional margin, and reward centering (a small
--    penalty on (r1 + r2)^2 that keeps rewards near zero).
local res = rlaif.train.reward {
  model = m, tokenizer = tok, pairs = train_pairs, eval_pairs = eval_pairs,
  batch_size = 8, epochs = 6, lr = 2e-3, margin = 0, center = 0.01,
  out = "/tmp/rlaif_rm",   -- the model (GPT2/LlamaForSequenceClassification layout), the tokenizer and
                           -- reward_stats.json: rlaif rl --reward-model /tmp/rlaif_rm normalises with it
  schedule = rlaif.train.schedule.linear { warmup = 5, total = 6 * math.ceil(#train_pairs / 8) },
  on_step = function(info)
    if info.step % 10 == 0 then
      print(string.format("step %3d  loss %.4f  batch accuracy %.2f", info.step, info.loss, info.train_accuracy))
    end
  end,
}

-- 5. The table.
print()
print(string.format("%-24s %8s", "held-out pairs", #eval_pairs))
print(string.format("%-24s %8.3f", "accuracy before", before))
print(string.format("%-24s %8.3f", "accuracy after", res.accuracy))
print(string.format("%-24s %8.3f", "train-pair accuracy", res.train_pair_accuracy))
print(string.format("%-24s %8.3f", "reward mean", res.reward_mean))
print(string.format("%-24s %8.3f", "reward std", res.reward_std))
print("saved: /tmp/rlaif_rm (model and reward_stats.json)")
