-- lua/rlaif/report.lua -- one self-contained HTML report of training and evaluation
-- runs: training curves (every numeric field of the JSONL step logs, several runs
-- overlaid), labeler alignment and position-bias tables (the `rlaif align`
-- numbers), win-rate and harmless-rate bars with their intervals (raw and
-- length-controlled, from `rlaif eval` results) and sample responses side by side.
--
--   local report = require "rlaif.report"
--   report.write("report.html", {runs = {"runs/sft", "runs/rlaif", "evals/rlaif_vs_sft"}})
--   local html = report.render{title = "sim", runs = {
--     {name = "rlaif", logs = {rl = {{step = 1, reward_mean = 0.1, kl = 0}, ...}}},
--     {name = "eval", evals = {eval.win_rate{...}}, labels = {records}, samples = {...}}}}
--
-- A run directory is read by content: every *.jsonl whose records have a numeric
-- `step` is a step log (RL DIR/log.jsonl, `log =` of rlaif.train.sft/reward);
-- results.json (+ records.jsonl) is an `rlaif eval` result; a JSONL of labeler
-- records (`p_ab`, `template`) is a label file; records with a prompt and a
-- response (RL samples.jsonl, eval records) give sample responses. A file given
-- instead of a directory is read the same way.
--
-- The page has no scripts, no network references and no external fonts: inline
-- CSS and inline SVG from rlaif.plot. Text from the data is HTML-escaped.
-- What it is not: no statistics of its own (rlaif.eval, rlaif.metrics), no plotting
-- primitives (rlaif.plot).

local core = require "rlaif.core"
local opts = require "rlaif.opts"
local plot = require "rlaif.plot"
local metrics = require "rlaif.metrics"

local json = core.json
local esc = plot.escape

local M = {}

-- ---- reading runs ----

local function read_jsonl(path, max_lines)
  local f = io.open(path, "rb")
  if not f then return nil end
  local out, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if line:match("%S") then
      local r = json.decode(line)
      if type(r) == "table" then out[#out + 1] = r end   -- a torn or bad line is skipped
    end
    if max_lines and n >= max_lines then break end
  end
  f:close()
  return out
end

local function list_dir(dir)
  local p = io.popen("ls -1 '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
  local names = {}
  if p then
    for l in p:lines() do names[#names + 1] = l end
    p:close()
  end
  table.sort(names)
  return names
end

local function is_dir(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local _, _, code = f:read(1)
  f:close()
  return code == 21   -- EISDIR: Linux opens a directory, then refuses to read it
end

local function kind_of(recs)
  local r = recs[1]
  if type(r) ~= "table" then return nil end
  if type(r.response) == "string" and (r.step ~= nil or r.score ~= nil) then return "samples" end
  if type(r.step) == "number" then return "log" end
  if r.key ~= nil and (r.len_a ~= nil or r.len ~= nil) then return "eval_records" end
  if r.template ~= nil and (r.p_ab ~= nil or r.status ~= nil) then return "labels" end
  if type(r.response) == "string" then return "samples" end
  return nil
end

--- load_run(path [, name]) -> run {name, dir, logs = {name -> rows}, labels = {name -> records},
--- evals = {results}, samples = {rows}}: what a run directory (or one file) holds.
function M.load_run(path, name)
  local run = { name = name or path:gsub("/+$", ""):match("([^/]+)$") or path, dir = path, logs = {}, labels = {},
    evals = {}, samples = {}, log_order = {}, label_order = {} }
  local files = {}
  if is_dir(path) then
    for _, f in ipairs(list_dir(path)) do files[#files + 1] = { path .. "/" .. f, f } end
  else
    files[1] = { path, path:match("([^/]+)$") }
  end
  local eval_records = {}
  for _, pf in ipairs(files) do
    local full, base = pf[1], pf[2]
    if base == "results.json" then
      local f = io.open(full, "rb")
      local r = f and json.decode(f:read("a"))
      if f then f:close() end
      if type(r) == "table" and (r.win_rate ~= nil or r.mode ~= nil) then run.evals[#run.evals + 1] = r end
    elseif base:match("%.jsonl$") then
      local head = read_jsonl(full, 3) or {}
      local k = kind_of(head)
      local stem = base:gsub("%.jsonl$", "")
      if k == "log" then
        run.logs[stem] = read_jsonl(full)
        run.log_order[#run.log_order + 1] = stem
      elseif k == "labels" then
        run.labels[stem] = metrics.load(full)
        run.label_order[#run.label_order + 1] = stem
      elseif k == "samples" then
        for _, r in ipairs(read_jsonl(full)) do r.source = stem run.samples[#run.samples + 1] = r end
      elseif k == "eval_records" then
        eval_records[stem] = read_jsonl(full)
      end
    end
  end
  -- sample pairs from the eval records (the file results.json names)
  for _, r in ipairs(run.evals) do
    local stem = type(r.records) == "string" and r.records:match("([^/]+)%.jsonl$") or "records"
    r.sample_records = eval_records[stem]
  end
  return run
end

-- ---- sections ----

local PREFERRED = { "loss", "reward_mean", "kl", "response_length", "policy_loss", "value_loss", "lr", "accuracy",
  "train_accuracy", "grad_norm", "entropy" }
local SKIP = { step = true, epoch = true, time = true, elapsed = true, seed = true }

local function curves(runs, o)
  -- field -> list of series {name, x, y}
  local fields, order = {}, {}
  for _, run in ipairs(runs) do
    local lognames = run.log_order or {}
    if #lognames == 0 then
      for k in pairs(run.logs or {}) do lognames[#lognames + 1] = k end
      table.sort(lognames)
    end
    for _, ln in ipairs(lognames) do
      local rows = run.logs[ln]
      local xs, ys = {}, {}
      for i, r in ipairs(rows) do
        local step = type(r.step) == "number" and r.step or i
        for k, v in pairs(r) do
          if type(v) == "number" and not SKIP[k] then
            if not xs[k] then xs[k], ys[k] = {}, {} end
            xs[k][#xs[k] + 1], ys[k][#ys[k] + 1] = step, v
          end
        end
      end
      for k in pairs(xs) do
        if not fields[k] then fields[k] = {} order[#order + 1] = k end
        local sname = (#runs > 1 or #lognames > 1) and (run.name .. (#lognames > 1 and ("/" .. ln) or "")) or ln
        fields[k][#fields[k] + 1] = { name = sname, x = xs[k], y = ys[k] }
      end
    end
  end
  local rank = {}
  for i, k in ipairs(PREFERRED) do rank[k] = i end
  table.sort(order, function(a, b)
    local ra, rb = rank[a] or 1000, rank[b] or 1000
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  local out = {}
  for _, k in ipairs(order) do
    out[#out + 1] = plot.lines { title = k, xlabel = "step", ylabel = k, series = fields[k],
      max_points = o.max_points, width = 520, height = 280, legend = true }
  end
  return out
end

local function pct(x) return type(x) == "number" and string.format("%.1f", 100 * x) or "-" end
local function pct_ci(c) return type(c) == "table" and type(c[1]) == "number" and
  string.format("%.1f&ndash;%.1f", 100 * c[1], 100 * c[2]) or "-" end

local function html_table(cols, rows, class)
  local p = { '<table class="' .. (class or "data") .. '"><thead><tr>' }
  for _, c in ipairs(cols) do p[#p + 1] = "<th>" .. esc(c) .. "</th>" end
  p[#p + 1] = "</tr></thead><tbody>"
  for _, r in ipairs(rows) do
    p[#p + 1] = "<tr>"
    for i, v in ipairs(r) do
      -- cells are escaped unless marked raw (numbers we format ourselves)
      local s = type(v) == "table" and v.raw or esc(v == nil and "-" or tostring(v))
      p[#p + 1] = (i == 1 and "<td class=\"name\">" or "<td>") .. s .. "</td>"
    end
    p[#p + 1] = "</tr>"
  end
  p[#p + 1] = "</tbody></table>"
  return table.concat(p)
end

local function eval_name(r)
  if r.names then return string.format("%s vs %s", r.names.a or "a", r.names.b or "b") end
  return r.name or "policy"
end

local function win_section(evals)
  local groups, hgroups, rows, hrows = {}, {}, {}, {}
  for _, r in ipairs(evals) do
    if r.mode == "harmless" or r.harmless_rate ~= nil then
      local pols = r.policies or { r }
      for _, h in ipairs(pols) do
        hgroups[#hgroups + 1] = { name = h.name or "policy", bars = {
          { label = "harmless", value = h.harmless_rate and 100 * h.harmless_rate,
            lo = h.ci95 and 100 * h.ci95[1], hi = h.ci95 and 100 * h.ci95[2] },
          { label = "length-controlled", value = h.lc_harmless_rate and 100 * h.lc_harmless_rate,
            lo = h.lc_ci95 and 100 * h.lc_ci95[1], hi = h.lc_ci95 and 100 * h.lc_ci95[2] } } }
        hrows[#hrows + 1] = { h.name or "policy", h.n, h.failed, { raw = pct(h.harmless_rate) },
          { raw = pct_ci(h.ci95) }, { raw = pct(h.soft_harmless_rate) }, { raw = pct(h.lc_harmless_rate) },
          { raw = pct_ci(h.lc_ci95) }, h.mean_len and string.format("%.0f", h.mean_len),
          h.ref_length and string.format("%.0f", h.ref_length) }
      end
    elseif r.win_rate ~= nil or r.n ~= nil then
      local name = eval_name(r)
      groups[#groups + 1] = { name = name, bars = {
        { label = "win rate", value = r.win_rate and 100 * r.win_rate, lo = r.ci95 and 100 * r.ci95[1],
          hi = r.ci95 and 100 * r.ci95[2] },
        { label = "length-controlled (App. J)", value = r.lc_win_rate and 100 * r.lc_win_rate,
          lo = r.lc_ci95 and 100 * r.lc_ci95[1], hi = r.lc_ci95 and 100 * r.lc_ci95[2] },
        { label = "AlpacaEval 2 length term", value = r.lc_ae2 and 100 * r.lc_ae2,
          lo = r.lc_ae2_ci95 and 100 * r.lc_ae2_ci95[1], hi = r.lc_ae2_ci95 and 100 * r.lc_ae2_ci95[2] } } }
      rows[#rows + 1] = { name, r.n, r.failed, r.ties, { raw = pct(r.win_rate) }, { raw = pct_ci(r.ci95) },
        { raw = pct(r.soft_win_rate) }, { raw = pct(r.lc_win_rate) }, { raw = pct_ci(r.lc_ci95) },
        { raw = pct(r.lc_ae2) }, { raw = pct(r.disagree) },
        r.mean_len_a and string.format("%.0f", r.mean_len_a), r.mean_len_b and string.format("%.0f", r.mean_len_b),
        r.template or "-" }
    end
  end
  local out = {}
  if #groups > 0 then
    out[#out + 1] = '<div class="plots">' .. plot.bars { title = "win rate of A over B (%), 95% bootstrap intervals",
      ylabel = "%", min = 0, max = 100, ref = 50, groups = groups, width = math.max(560, 200 * #groups),
      height = 320 } .. "</div>"
    out[#out + 1] = html_table({ "A vs B", "n", "failed", "ties", "win %", "95% CI", "soft %", "LC %", "LC 95% CI",
      "AE2 LC %", "orders disagree %", "len A", "len B", "judge template" }, rows)
  end
  if #hgroups > 0 then
    out[#out + 1] = '<div class="plots">' .. plot.bars { title = "harmless rate (%), 95% bootstrap intervals",
      ylabel = "%", min = 0, max = 100, groups = hgroups, width = math.max(560, 160 * #hgroups), height = 320 } ..
      "</div>"
    out[#out + 1] = html_table({ "policy", "n", "failed", "harmless %", "95% CI", "soft %", "LC %", "LC 95% CI",
      "mean len", "ref len" }, hrows)
  end
  return table.concat(out, "\n")
end

local function labels_section(runs)
  local rows = {}
  for _, run in ipairs(runs) do
    local names = run.label_order or {}
    if #names == 0 then
      for k in pairs(run.labels or {}) do names[#names + 1] = k end
      table.sort(names)
    end
    for _, ln in ipairs(names) do
      local recs = run.labels[ln]
      local first = recs[1] or {}
      local has_conf = false
      for _, r in ipairs(recs) do if r.confidence then has_conf = true break end end
      local al = metrics.alignment(recs, { confidence = has_conf or nil, bootstrap = 1000 })
      local pb = metrics.position_bias(recs)
      local cost = metrics.cost(recs)
      rows[#rows + 1] = { run.name .. "/" .. ln, first.template or "-", first.task or "-",
        tostring(al.n) .. (has_conf and " hc" or ""), { raw = pct(al.z_acc) }, { raw = pct_ci(al.ci) },
        pb.pct_same and string.format("%.1f", pb.pct_same) or "-",
        pb.pct_first and string.format("%.1f", pb.pct_first) or "-",
        pb.same > 0 and string.format("%.3g", pb.p_value) or "-",
        cost.tokens_per_label and string.format("%.0f", cost.tokens_per_label) or "-",
        string.format("%d/%d/%d", al.excluded.status, al.excluded.no_human, al.excluded.confidence) }
    end
  end
  if #rows == 0 then return nil end
  return html_table({ "label file", "template", "task", "n", "alignment %", "95% CI", "same position %",
    "first %", "bias p", "tokens/label", "excluded" }, rows) ..
    '<p class="note">alignment: share of pairs where the AI label agrees with the human one (Lee et al. ' ..
    '&sect;2.3; hc = the high-confidence filter {1,2,8,9}); same position: pairs where the labeler preferred the ' ..
    'same position in both orders (App. B); first: share of those at position 1; bias p: two-sided binomial ' ..
    'test; excluded: not ok / no human label / filtered.</p>'
end

local function clip(s, n)
  s = tostring(s or "")
  if (utf8.len(s) or #s) <= n then return s end
  local ok, cut = pcall(utf8.offset, s, n + 1)
  return (ok and cut and s:sub(1, cut - 1) or s:sub(1, n)) .. " …"
end

local function samples_section(runs, evals, k)
  local out = {}
  for _, r in ipairs(evals) do
    local recs = r.sample_records or r.records
    if type(recs) == "table" then
      local shown = 0
      local p = { string.format('<h3>%s</h3><div class="pairs">', esc(eval_name(r))) }
      for _, x in ipairs(recs) do
        if shown >= k then break end
        if x.status == "ok" and (x.response_a or x.response) then
          shown = shown + 1
          if x.response_a then
            p[#p + 1] = string.format('<div class="pair"><div class="prompt">%s</div><div class="sides">' ..
              '<div class="side%s"><b>%s</b> <span class="len">%d chars</span><pre>%s</pre></div>' ..
              '<div class="side%s"><b>%s</b> <span class="len">%d chars</span><pre>%s</pre></div></div>' ..
              '<div class="verdict">P(A better) = %.3f (A first %.3f, B first %.3f)</div></div>',
              esc(clip(x.prompt, 600)), x.p > 0.5 and " win" or "", esc(r.names and r.names.a or "A"),
              x.len_a or 0, esc(clip(x.response_a, 1200)), x.p < 0.5 and " win" or "",
              esc(r.names and r.names.b or "B"), x.len_b or 0, esc(clip(x.response_b, 1200)), x.p,
              x.p_ab or x.p, x.p_ba or x.p)
          else
            p[#p + 1] = string.format('<div class="pair"><div class="prompt">%s</div><div class="sides">' ..
              '<div class="side"><pre>%s</pre></div></div><div class="verdict">P(harmless) = %.3f</div></div>',
              esc(clip(x.prompt, 600)), esc(clip(x.response, 1200)), x.p)
          end
        end
      end
      p[#p + 1] = "</div>"
      if shown > 0 then out[#out + 1] = table.concat(p) end
    end
  end
  -- training samples (e.g. RL samples.jsonl): the last k of each run, side by side across runs
  local cols = {}
  for _, run in ipairs(runs) do
    if run.samples and #run.samples > 0 then cols[#cols + 1] = run end
  end
  if #cols > 0 then
    local p = { '<h3>training samples (latest)</h3><div class="sides">' }
    for _, run in ipairs(cols) do
      p[#p + 1] = '<div class="side"><b>' .. esc(run.name) .. "</b>"
      for i = math.max(1, #run.samples - k + 1), #run.samples do
        local s = run.samples[i]
        p[#p + 1] = string.format('<div class="sample"><div class="prompt">%s%s</div><pre>%s</pre>%s</div>',
          s.step and ("step " .. esc(s.step) .. ": ") or "", esc(clip(s.prompt, 300)), esc(clip(s.response, 800)),
          type(s.score) == "number" and string.format('<div class="verdict">score %.3f</div>', s.score) or "")
      end
      p[#p + 1] = "</div>"
    end
    p[#p + 1] = "</div>"
    out[#out + 1] = table.concat(p)
  end
  if #out == 0 then return nil end
  return table.concat(out, "\n")
end

local CSS = [[
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
h3{font-size:14px;margin:14px 0 6px}.meta{color:#666;font-size:12px}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots svg{background:#fff;border:1px solid #ddd}
table.data{border-collapse:collapse;font-size:12px;margin:10px 0;background:#fff}
table.data th,table.data td{border:1px solid #ddd;padding:3px 7px;text-align:right}
table.data th{background:#f0f0f0}table.data td.name{text-align:left}
.note{font-size:11px;color:#666;max-width:900px}
.pairs{display:flex;flex-direction:column;gap:10px}.pair{background:#fff;border:1px solid #ddd;padding:8px}
.prompt{font-size:12px;color:#444;white-space:pre-wrap;margin-bottom:6px}
.sides{display:flex;gap:10px}.side{flex:1;min-width:0;background:#fff;border:1px solid #e3e3e3;padding:6px}
.side.win{border-color:#009E73;box-shadow:inset 3px 0 #009E73}
pre{white-space:pre-wrap;word-wrap:break-word;font-size:12px;margin:4px 0;font-family:"DejaVu Sans Mono",monospace}
.len{color:#888;font-size:11px}.verdict{font-size:11px;color:#555;margin-top:4px}
.sample{border-top:1px solid #eee;padding-top:4px;margin-top:4px}
pre.preface{background:#fff;border:1px solid #ddd;padding:8px;font-size:11px;overflow-x:auto;white-space:pre}
]]

local RENDER = opts.schema("report.render", {
  runs = { "table", required = true },   -- run directories / files (strings) or run tables
  title = "string",
  samples = { "integer", min = 0, default = 3 },
  max_points = { "integer", min = 4, default = 1000 },
  generated = "string",                  -- the date line (default: now, UTC)
  preface = "string",                    -- preformatted text under the title (e.g. printed tables)
})

--- render{runs = {DIR | FILE | run table, ...}, title =, samples = 3, max_points = 1000, preface =} -> html
--- A run table: {name =, logs = {name -> {{step =, field = number, ...}}}, labels = {name -> records},
--- evals = {win_rate()/harmless_rate() results or results.json tables}, samples = {{prompt, response,
--- step, score}}}.
function M.render(o)
  o = RENDER(o)
  local runs = {}
  for i, r in ipairs(o.runs) do
    if type(r) == "string" then
      runs[i] = M.load_run(r)
    elseif type(r) == "table" then
      runs[i] = { name = r.name or ("run " .. i), logs = r.logs or {}, labels = r.labels or {}, evals = r.evals or {},
        samples = r.samples or {}, log_order = r.log_order, label_order = r.label_order }
    else
      error(string.format("report.render: run %d must be a path or a table, got %s", i, type(r)), 2)
    end
  end
  local evals = {}
  for _, run in ipairs(runs) do
    for _, e in ipairs(run.evals) do evals[#evals + 1] = e end
  end
  local title = o.title or "rlaif report"
  local p = { "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>" .. esc(title) .. "</title><style>" .. CSS .. "</style></head><body>",
    "<h1>" .. esc(title) .. "</h1>" }
  local names = {}
  for _, run in ipairs(runs) do
    names[#names + 1] = esc(run.name) .. (run.dir and (" (" .. esc(run.dir) .. ")") or "")
  end
  p[#p + 1] = string.format('<div class="meta">%s &middot; runs: %s</div>',
    esc(o.generated or os.date("!%Y-%m-%d %H:%M UTC")), table.concat(names, ", "))
  if o.preface then p[#p + 1] = '<pre class="preface">' .. esc(o.preface) .. "</pre>" end
  local c = curves(runs, o)
  if #c > 0 then
    p[#p + 1] = "<h2>Training curves</h2><div class=\"plots\">" .. table.concat(c, "\n") .. "</div>"
  end
  local w = win_section(evals)
  if w ~= "" then p[#p + 1] = "<h2>Win rates and harmless rates</h2>" .. w ..
    '<p class="note">win rate: share of items where the judge prefers A (ties count half), both orders averaged; ' ..
    "LC: the paper's length control (App. J), a logistic regression on len A / len B predicted at 1.0; " ..
    "AE2 LC: AlpacaEval 2's length term (tanh of the standardised length difference) predicted at 0; soft: mean " ..
    "P(A better).</p>" end
  local l = labels_section(runs)
  if l then p[#p + 1] = "<h2>Labeler alignment and position bias</h2>" .. l end
  local s = samples_section(runs, evals, o.samples)
  if s then p[#p + 1] = "<h2>Sample responses</h2>" .. s end
  if #c == 0 and w == "" and not l and not s then
    p[#p + 1] = '<p class="note">nothing to show: no step logs, eval results, label files or samples found.</p>'
  end
  p[#p + 1] = "</body></html>"
  return table.concat(p, "\n")
end

--- write(path, render_options) -> true: render and write atomically (never over an input).
function M.write(path, o)
  if type(path) ~= "string" then error("report.write: path must be a string", 2) end
  for _, r in ipairs(type(o) == "table" and type(o.runs) == "table" and o.runs or {}) do
    if type(r) == "string" and (r == path or r:gsub("/+$", "") == path) then
      error("report.write: the output " .. path .. " is one of the inputs", 2)
    end
  end
  local html = M.render(o)
  local ok, err = core.gz.write_atomic(path, html)
  if not ok then error("report.write: " .. tostring(err), 2) end
  return true
end

return M
