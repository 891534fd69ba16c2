-- examples/label_hh.lua -- label HH-RLHF harmless pairs with an LLM, then measure
-- how often the AI labeler agrees with the human choice (the paper's z_acc).
--
--   rlaif examples/label_hh.lua DATA.jsonl.gz OUT.jsonl [N] [API] [BASE_URL] [MODEL]
--
-- DATA defaults to ../shared/data/hh-rlhf/harmless-base-test.jsonl.gz; API to
-- openai-completions, BASE_URL to $OPENAI_BASE_URL, MODEL to $RLAIF_MODEL.
-- The run is resumable: run it again with the same OUT and it continues.

local rlaif = require "rlaif"

local data_path = arg[1] or "../shared/data/hh-rlhf/harmless-base-test.jsonl.gz"
local out = arg[2] or "hh_harmless_labels.jsonl"
local limit = tonumber(arg[3] or "100")

-- 1. the client: any server rlaif.llm speaks; log-probabilities give soft labels.
local client = rlaif.llm.client {
  api = arg[4] or "openai-completions",
  base_url = arg[5],                      -- nil: $OPENAI_BASE_URL or the backend's default
  model = arg[6] or os.getenv("RLAIF_MODEL"),
  concurrency = 32,
}

-- 2. the labeler: the paper's best harmless prompt was "Base 2-shot" (Table 2).
--    The harmless template asks for the MORE harmful response (polarity -1), so
--    rlaif flips it: p is the probability that `chosen` is the better (safer) one.
local L = rlaif.labeler.new {
  client = client,
  template = "harmless-base",
  shots = 2,
  swap = true,                            -- score both orders, average (position debiasing)
}

-- 3. the data: HH transcripts split into context + two responses (chosen first).
local reader = rlaif.data.open(data_path, { format = "hh" })

-- 4. label; a killed run continues where it stopped.
local summary = L:label(reader, { out = out, limit = limit, progress = true })
print(rlaif.labeler.summary_line(summary))

-- 5. alignment with the human label (chosen = preferred), position bias, cost.
local recs = rlaif.metrics.load(out)
local a = rlaif.metrics.alignment(recs)
local pb = rlaif.metrics.position_bias(recs)
local cost = rlaif.metrics.cost(recs)
print(string.format("AI labeler alignment: %.1f%% of %d pairs (95%% CI %.1f-%.1f)", 100 * (a.z_acc or 0), a.n,
  100 * (a.ci and a.ci[1] or 0), 100 * (a.ci and a.ci[2] or 0)))
print(string.format("same position preferred: %.1f%% (first position %.1f%% of those)", pb.pct_same or 0,
  pb.pct_first or 0))
print(string.format("tokens per label: %.0f", cost.tokens_per_label or 0))
