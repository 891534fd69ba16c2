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
  --confidence C      high (the paper's {1,2,8,9} filter for OpenAI comparisons) | all
                      (default: high when the records carry a confidence, else all)
  --bootstrap N       bootstrap resamples for the 95% CI (default 1000; 0 = none)
  --seed N            bootstrap seed (default 1)
]]

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
  local files, o = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then io.write(usage) return 0 end
    local k = a:match("^%-%-([%w%-]+)$")
    local v = args[i + 1]
    if not k or v == nil then
      io.stderr:write("rlaif align: unexpected argument '", a, "'\n", usage)
      return 2
    end
    if k == "labels" then files[#files + 1] = v
    elseif k == "data" or k == "format" or k == "confidence" or k == "bootstrap" or k == "seed" then o[k] = v
    else
      io.stderr:write("rlaif align: unknown option --", k, "\n", usage)
      return 2
    end
    i = i + 2
  end
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
    local B = tonumber(o.bootstrap or "1000")
    local seed = tonumber(o.seed or "1")
    local rows, cols, cells, rowseen, colseen = {}, {}, {}, {}, {}
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
      local filter = o.confidence == "high" or (o.confidence == nil and has_conf)
      local first = recs[1] or {}
      local row, col = row_name(first), first.task or "?"
      local al = metrics.alignment(recs, { confidence = filter and true or nil, bootstrap = B, seed = seed })
      local pb = metrics.position_bias(recs)
      local cost = metrics.cost(recs)
      if not rowseen[row] then rowseen[row] = true rows[#rows + 1] = row end
      if not colseen[col] then colseen[col] = true cols[#cols + 1] = col end
      cells[row .. "\0" .. col] = al.z_acc and string.format("%.1f", 100 * al.z_acc) or nil
      details[#details + 1] = { path, row, col, al, pb, cost, filter }
    end
    io.write("AI labeler alignment (%), rows: prompt, columns: task\n\n")
    io.write(metrics.format_table(rows, cols, function(r, c) return cells[r .. "\0" .. c] end, "prompt"))
    io.write("\n")
    local drows, dcols = {}, { "task", "n", "z_acc %", "95% CI", "same pos %", "first %", "bias p", "tok/label",
      "$/label", "excluded" }
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
      "binomial\ntest of first vs second; excluded: not ok / no human label / filtered by confidence.\n")
  end)
  if not ok then
    io.stderr:write("rlaif align: ", (tostring(err):gsub("^[^\n]-/rlaif/cli/[%w_]+%.lua:%d+: ", "")), "\n")
    return 1
  end
  return 0
end

return main
