-- lua/rlaif/cli/align.lua -- `rlaif align`: AI-labeler alignment with human
-- labels, position bias and cost for one or more label files, printed like the
-- paper's Table 2 (rows: prompt configurations; columns: tasks), then one
-- detail line per file.
--
-- A subcommand module returns main(args) -> exit status (see cli/info.lua).

local usage = [[
usage: rlaif align --labels FILE [--labels FILE ...] [options]

  --labels FILE       a label file written by `rlaif label` (repeat for several)
  --data FILE         take the human labels from this dataset (joined by id) when the
                      label records carry none; --format F as for `rlaif label`
  --confidence C      high (the paper's {1,2,8,9} filter for OpenAI comparisons) | all |
                      a list like 1,2,8,9 (default: high when the records carry a confidence, else all)
  --bootstrap N       bootstrap resamples for the 95% CI, 0 to 100000 (default 1000; 0 = none)
  --seed N            bootstrap seed (default 1)

Two files of the same prompt configuration get one row each, numbered as in the
detail table. A file whose labels all sit within 0.01 of 0.5 (no preference) or
that mixes labeling configurations gets a warning.
]]

local FLAGS = {
  labels = { "string", multi = true }, data = "string",
  format = { "string", one_of = { "hh", "comparisons", "tldr", "pairs", "auto" } },
  confidence = { "string", check = function(v)
    return pcall(require("rlaif.metrics").confidence_set, v),
      'must be "high", "all" or a list of confidence values like 1,2,8,9, got ' .. v
  end }, bootstrap = { "integer", min = 0, max = 100000 }, seed = "integer",
}

local NO_PREFERENCE = 0.01   -- |p - 0.5| below this for every label: the labeler says nothing

local function row_name(r)
  local name = r.template or "?"
  name = name .. string.format(" %d-shot", r.shots or 0)
  if r.cot and not name:match("cot") then name = name .. " +CoT" end
  if r.samples and r.samples > 1 then name = name .. string.format(" SC%d", r.samples) end
  if r.scoring == "votes" then name = name .. " votes" end
  if r.p_ba == nil and r.p_ab ~= nil then name = name .. " one order" end -- labeled with --no-swap
  return name
end

local function main(args)
  local o, status = require("rlaif.opts").main_args("align", args, FLAGS, usage)
  if not o then return status end
  local files = o.labels or {}
  if #files == 0 then
    io.stderr:write("rlaif align: --labels is required\n", usage)
    return 2
  end
  local metrics = require "rlaif.metrics"
  local data = require "rlaif.data"
  local ok, err = pcall(function()
    local human, conf_by
    if o.data then
      human, conf_by = {}, {}
      for rec in data.each(o.data, { format = o.format or "auto" }) do
        human[rec.id] = rec.human
        conf_by[rec.id] = rec.confidence
      end
    end
    local B = o.bootstrap or 1000
    local seed = o.seed or 1
    local conf_opt = o.confidence and metrics.confidence_set(o.confidence)
    local details = {}
    for _, path in ipairs(files) do
      local recs = metrics.load(path)
      if human then
        for _, r in ipairs(recs) do
          if r.human == nil then r.human = human[r.id] end
          if r.confidence == nil then r.confidence = conf_by[r.id] end
        end
      end
      local has_conf = false
      for _, r in ipairs(recs) do if r.confidence then has_conf = true break end end
      local conf = conf_opt   -- a set, false (all) or nil (by the data)
      if conf == nil then conf = has_conf and metrics.confidence_set("high") end
      local first = recs[1] or {}
      local al = metrics.alignment(recs, { confidence = conf or nil, bootstrap = B, seed = seed })
      local pb = metrics.position_bias(recs)
      local cost = metrics.cost(recs)
      details[#details + 1] = { path, row_name(first), first.task or "?", al, pb, cost, conf and true or false }
      -- warnings: labels that prefer nothing, several configurations in one file
      local n, flat, configs, nconf = 0, 0, {}, 0
      for _, r in ipairs(recs) do
        if r.status == "ok" and type(r.p) == "number" then
          n = n + 1
          if math.abs(r.p - 0.5) < NO_PREFERENCE then flat = flat + 1 end
        end
        local key = r.config or ((r.template or "?") .. "|" .. tostring(r.template_hash) .. "|" .. tostring(r.model))
        if not configs[key] then configs[key], nconf = true, nconf + 1 end
      end
      if n > 0 and flat == n then
        io.stderr:write(string.format("rlaif align: warning: %s: all %d labels are within %.2f of 0.5: the labeler " ..
          "expresses no preference (are the label tokens among the returned log-probabilities?)\n", path, n,
          NO_PREFERENCE))
      end
      if nconf > 1 then
        io.stderr:write(string.format("rlaif align: warning: %s mixes %d labeling configurations; its numbers " ..
          "describe no single one\n", path, nconf))
      end
    end
    -- the summary: one row per prompt configuration; files that would share a
    -- cell get their detail number, so none is hidden behind another
    local rows, cols, cells, rowseen, colseen, uses = {}, {}, {}, {}, {}, {}
    for _, d in ipairs(details) do
      local key = d[2] .. "\0" .. d[3]
      uses[key] = (uses[key] or 0) + 1
    end
    for k, d in ipairs(details) do
      local row, col, al = d[2], d[3], d[4]
      if uses[row .. "\0" .. col] > 1 then row = string.format("%s (%d)", row, k) end
      if not rowseen[row] then rowseen[row] = true rows[#rows + 1] = row end
      if not colseen[col] then colseen[col] = true cols[#cols + 1] = col end
      cells[row .. "\0" .. col] = al.z_acc and string.format("%.1f", 100 * al.z_acc) or nil
    end
    io.write("AI labeler alignment (%), rows: prompt, columns: task\n\n")
    io.write(metrics.format_table(rows, cols, function(r, c) return cells[r .. "\0" .. c] end, "prompt"))
    io.write("\n")
    local drows, dcols = {}, { "task", "n", "z_acc %", "95% CI", "ties", "same pos %", "first %", "bias p",
      "tok/label", "$/label", "excluded" }
    local dcell = {}
    for k, d in ipairs(details) do
      local path, row, col, al, pb, cost, filter = table.unpack(d)
      local name = string.format("%d. %s (%s)", k, row, path:match("([^/]+)$"))
      drows[#drows + 1] = name
      local ex = al.excluded
      dcell[name] = {
        task = col, n = tostring(al.n) .. (filter and " hc" or ""),
        ["z_acc %"] = al.z_acc and string.format("%.1f", 100 * al.z_acc),
        ["95% CI"] = al.ci and string.format("%.1f-%.1f", 100 * al.ci[1], 100 * al.ci[2]),
        ties = tostring(al.ties),
        ["same pos %"] = pb.pct_same and string.format("%.1f", pb.pct_same),
        ["first %"] = pb.pct_first and string.format("%.1f", pb.pct_first),
        ["bias p"] = pb.same > 0 and string.format("%.3g", pb.p_value) or nil,
        ["tok/label"] = cost.tokens_per_label and string.format("%.0f", cost.tokens_per_label),
        ["$/label"] = cost.cost_per_label and string.format("%.5f", cost.cost_per_label),
        excluded = string.format("%d/%d/%d", ex.status, ex.no_human, ex.confidence),
      }
    end
    io.write(metrics.format_table(drows, dcols, function(r, c) return dcell[r][c] end, "label file"))
    io.write("\nn: pairs compared (hc = high-confidence filter {1,2,8,9}); same pos: % of pairs where the model " ..
      "preferred\nthe same position in both orders; first: % of those where it was the first; bias p: two-sided " ..
      "binomial\ntest of first vs second; ties: p exactly 0.5 (counted as not aligned); excluded: not ok / no " ..
      "human label /\nfiltered by confidence.\n")
  end)
  if not ok then
    io.stderr:write("rlaif align: ", (tostring(err):gsub("^[^\n]-/rlaif/cli/[%w_]+%.lua:%d+: ", "")), "\n")
    return 1
  end
  return 0
end

return main
