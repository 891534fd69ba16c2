-- examples/prompt_sweep.lua -- the paper's Table 2 grid on any endpoint:
-- {Base, Detailed} x {0, 1, 2}-shot x {plain, CoT} on a summarization dataset,
-- one label file per cell, then the alignment table (`rlaif align` prints the
-- same from the files).
--
--   rlaif examples/prompt_sweep.lua COMPARISONS.jsonl OUTDIR [N] [API] [BASE_URL] [MODEL]
--
-- COMPARISONS: OpenAI summarize-from-feedback comparisons (the paper evaluates on
-- the high-confidence subset, confidence in {1, 2, 8, 9}).

local rlaif = require "rlaif"
local metrics = rlaif.metrics

local data_path = assert(arg[1], "usage: prompt_sweep.lua COMPARISONS.jsonl OUTDIR [N] [API] [BASE_URL] [MODEL]")
local outdir = arg[2] or "sweep"
local limit = tonumber(arg[3] or "200")
os.execute("mkdir -p " .. outdir)

local client = rlaif.llm.client {
  api = arg[4] or "openai-completions", base_url = arg[5], model = arg[6] or os.getenv("RLAIF_MODEL"),
  concurrency = 32, cache = outdir .. "/cache.sqlite",   -- reruns cost nothing
}

local rows, cells = {}, {}
for _, preamble in ipairs { "base", "detailed" } do
  for _, cot in ipairs { false, true } do
    for shots = 0, 2 do
      local template = "summarize-" .. preamble .. (cot and "-cot" or "")
      local name = string.format("%s%s %d-shot", preamble == "base" and "Base" or "Detailed", cot and " + CoT" or "",
        shots)
      local out = string.format("%s/%s-%dshot.jsonl", outdir, template, shots)
      local L = rlaif.labeler.new { client = client, template = template, shots = shots }
      local reader = rlaif.data.open(data_path, { format = "comparisons" })
      L:label(reader, { out = out, limit = limit })
      reader:close()
      local a = metrics.alignment(metrics.load(out), { confidence = true, bootstrap = 0 })
      rows[#rows + 1] = name
      cells[name] = a.z_acc and string.format("%.1f", 100 * a.z_acc) or nil
    end
  end
end

io.write(metrics.format_table(rows, { "summarization" }, function(r) return cells[r] end, "prompt"))
