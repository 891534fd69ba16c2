-- examples/quickstart.lua -- the RLAIF pipeline end to end, offline, in a few
-- seconds: tensors, a tokenizer, a small policy model, AI preference labels with
-- two-order debiasing, and a reward model trained on the soft labels.
-- `make quickstart` runs it. Run it yourself with `./rlaif examples/quickstart.lua`.
--
-- Everything here is tiny and offline, so the "AI labeler" is a small untrained
-- model and its labels are noise: this shows the mechanics, not a result. Point
-- the labeler at a real server to get real labels:
--   RLAIF_API=openai-completions RLAIF_BASE_URL=http://localhost:8000/v1 RLAIF_MODEL=NAME \
--     ./rlaif examples/quickstart.lua
-- (any of openai-chat, openai-completions, vllm, llamacpp, ollama, tgi, gemini).

local rlaif = require "rlaif"
local T = rlaif.tensor

local function section(title) print(("\n== %s ==\n"):format(title)) end

-- ---- 1. the runtime and tensors ----
section("1. runtime and tensors")
local info = rlaif.info()
print(("rlaif %s: BLIS %s, kernels '%s'%s, %d threads"):format(info.version, info.blis_version,
  info.blis_arch, info.blis_arch_forced and " (selected by rlaif)" or "", info.threads))

-- float32 tensors, up to 4 dims; dims and indices are 1-based, -1 is the last
local x = T.arange(6):reshape { 2, 3 }
print("x =", x)
print("x:softmax(-1) =", x:softmax(-1))
-- matrix products go to BLIS; transposed views are not copied
local a, b, c = T.randn({ 1024, 1024 }, 1), T.randn({ 1024, 1024 }, 2), T.zeros { 1024, 1024 }
a:matmul(b, c) -- warm-up: BLIS allocates its packing buffers on first use
local t0 = rlaif.core.clock()
for _ = 1, 10 do a:matmul(b, c) end
local dt = (rlaif.core.clock() - t0) / 10
print(("1024^3 matmul: %.1f ms, %.0f GFLOP/s"):format(dt * 1e3, 2 * 1024 ^ 3 / dt / 1e9))

-- ---- 2. a tokenizer ----
section("2. a byte-level BPE tokenizer, trained here")
-- rlaif.tokenizer.load also reads tiktoken files, GPT-2's vocab.bpe/encoder.json
-- and Hugging Face tokenizer.json (GPT-2, Llama 3, Qwen), with the same ids.
local corpus = {}
local posts = {
  "My landlord refuses to fix the heating and winter is coming. What are my options?",
  "I adopted a rescue dog who barks at night. How do I help him settle in?",
  "My coworker keeps taking credit for my work in meetings. Should I talk to my manager?",
  "I want to learn to cook but I only have a microwave and a kettle.",
}
local summaries = {
  { "Landlord won't fix heating before winter; asking what to do.", "Heating." },
  { "New rescue dog barks at night; how to help him settle?", "I have a dog and he is a good dog." },
  { "Coworker takes credit for my work; should I tell my manager?", "Meetings are long." },
  { "Wants to learn cooking with only a microwave and kettle.", "Cooking is a thing people do at home." },
}
for i = 1, 30 do corpus[i] = posts[i % #posts + 1] .. " " .. summaries[i % #posts + 1][1] end
local tok_path = os.tmpname() .. ".json"
assert(rlaif.tokenizer.train { texts = corpus, vocab_size = 400, pattern = "gpt2",
                               special = { "<|endoftext|>" }, output = tok_path })
local tok = rlaif.tokenizer.load(tok_path)          -- raises on a file problem (try_load returns nil, msg)
os.remove(tok_path)
local ids = tok:encode("My dog barks at night.")
print(("vocab %d; 'My dog barks at night.' -> %d tokens: %s"):format(tok:vocab_size(), #ids,
  table.concat(ids, " ")))
print("decoded back:", tok:decode(ids))

-- ---- 3. a small policy model, fine-tuned (SFT) ----
section("3. a small policy model (GPT-2 architecture), fine-tuned on post -> summary")
local eos = tok:id("<|endoftext|>")
local policy = rlaif.model.new { arch = "gpt2", vocab_size = tok:vocab_size(), n_layer = 2, n_head = 2,
                                 d_model = 64, max_seq = 512, eos_id = eos, seed = 1 }
local sft_data = {}
for i, post in ipairs(posts) do sft_data[i] = { prompt = post .. "\nTL;DR:", response = " " .. summaries[i][1] } end
rlaif.train.sft { model = policy, tokenizer = tok, data = sft_data, batch_size = 4, epochs = 40, lr = 3e-3,
  on_step = function(s)
    if s.step == 1 or s.step % 10 == 0 then print(("step %2d  response loss %.3f"):format(s.step, s.loss)) end
  end }
local prompt_ids = tok:encode(posts[1] .. "\nTL;DR:")
local out = policy:generate({ prompt_ids }, { max_new_tokens = 16, temperature = 0, stop = { eos } })
print("greedy summary of post 1:", tok:decode(out[1]))

-- ---- 4. AI preference labels ----
section("4. AI preference labels: the paper's prompt, log-probabilities of '1' and '2', both orders")
local client
if os.getenv("RLAIF_BASE_URL") then
  client = rlaif.llm.client { api = os.getenv("RLAIF_API") or "openai-completions",
                              base_url = os.getenv("RLAIF_BASE_URL"), model = os.getenv("RLAIF_MODEL") }
else
  -- the in-process backend: the same requests and responses as a server's,
  -- answered by a local model (here the tiny policy, so the labels are noise)
  client = rlaif.llm.client { api = "local", model = policy, tokenizer = tok }
end
-- logprobs = K asks for the top K alternatives at the label position; a label
-- missing from them is floored at the lowest one and flagged, and a pair where
-- both are missing stays unlabeled (never a silent 0.5). The local backend
-- returns the label tokens' log-probabilities wherever they rank (the labeler
-- names them in each request), so K does not matter there.
local labeler = rlaif.labeler.new { client = client, template = "summarize-base", swap = true, logprobs = 20 }
local pairs = {}
for i, post in ipairs(posts) do
  local rec = labeler:label_one { id = i, context = post, a = summaries[i][1], b = summaries[i][2] }
  print(("pair %d: p(first better) = %.3f   p_ab %.3f   p_ba %.3f   same position: %s   %s"):format(i,
    rec.p or 0 / 0, rec.p_ab or 0 / 0, rec.p_ba or 0 / 0, tostring(rec.same_position),
    rec.status .. (rec.reason and (" (" .. rec.reason .. ")") or "")))
  if rec.p then
    pairs[#pairs + 1] = { prompt = post .. "\nTL;DR:", chosen = " " .. summaries[i][1],
                          rejected = " " .. summaries[i][2], p = rec.p }
  end
end

-- p_ab is P(summary a is better) with a shown first, p_ba the same with b shown
-- first; p averages them. An untrained model tends to prefer one position in
-- both orders (same position: true): pure position bias, which the average
-- cancels. That is why the paper, and rlaif by default, score both orders.

-- ---- 5. a reward model from the soft labels ----
section("5. a reward model trained on the soft labels")
assert(#pairs > 0, "no pair was labeled; see the reasons above")
-- the loss is -[p log s(r1 - r2) + (1 - p) log s(r2 - r1)]: p = 1 would be Bradley-Terry
local rm = rlaif.model.new { arch = "gpt2", vocab_size = tok:vocab_size(), n_layer = 2, n_head = 2, d_model = 64,
                             max_seq = 512, eos_id = eos, head = "reward", seed = 2 }
local res = rlaif.train.reward { model = rm, tokenizer = tok, pairs = pairs, eval_pairs = pairs,
                                 batch_size = 4, epochs = 20, lr = 1e-3 }
print(("reward model: final loss %.3f (log 2 = 0.693 means no preference), reward mean %.3f, std %.3f"):format(
  res.loss or 0 / 0, res.reward_mean or 0 / 0, res.reward_std or 0 / 0))
print("(soft labels near 0.5 carry little preference; with a real labeler the reward model learns it)")

print([[

Next: open the REPL with `./rlaif` (help() lists the API), label real data with
`./rlaif label --data FILE --format hh --template harmless-base --api ... --out labels.jsonl`,
and see README.md for the whole API.]])
