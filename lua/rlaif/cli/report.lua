-- lua/rlaif/cli/report.lua -- `rlaif report RUN_DIR... --out report.html`: one
-- self-contained HTML page (inline SVG, no scripts, no network) of training
-- curves, labeler alignment, win rates and sample responses (rlaif.report).
-- A subcommand module returns main(args) -> exit status (see cli/info.lua).

local usage = [[
usage: rlaif report RUN_DIR|FILE... --out report.html [--title TEXT] [--samples N]

  RUN_DIR|FILE    run directories (RL/SFT/reward-model step logs *.jsonl, `rlaif eval` output,
                  label files, samples) or single files; several runs are overlaid
  --out FILE      the HTML file (written atomically; never one of the inputs)
  --title TEXT    the page title (default "rlaif report")
  --samples N     sample responses shown per evaluation (default 3)
  --max-points N  vertices per curve after decimation (default 1000)
]]

local FLAGS = { out = "string", title = "string", samples = { "integer", min = 0 },
  ["max-points"] = { "integer", min = 4 } }

local function main(args)
  local o, status = require("rlaif.opts").main_args("report", args, FLAGS, usage, { positional = true })
  if not o then return status end
  if not o.out or #o == 0 then
    io.stderr:write("rlaif report: give at least one RUN_DIR and --out FILE\n", usage)
    return 2
  end
  local runs = {}
  for i = 1, #o do
    local f = io.open(o[i], "rb")
    if not f then
      io.stderr:write("rlaif report: cannot read ", o[i], "\n")
      return 1
    end
    f:close()
    runs[i] = o[i]
  end
  local report = require "rlaif.report"
  local ok, err = pcall(report.write, o.out, { runs = runs, title = o.title, samples = o.samples,
    max_points = o["max-points"] })
  if not ok then
    io.stderr:write("rlaif report: ", (tostring(err):gsub("^[^\n]-/rlaif/[%w_/]+%.lua:%d+: ", "")), "\n")
    return 1
  end
  io.stderr:write("rlaif report: wrote ", o.out, "\n")
  return 0
end

return main
