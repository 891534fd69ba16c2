-- lua/rlaif/cli/merge.lua -- `rlaif merge`: join the label files of a sharded
-- labeling run (rlaif label --shard I/N, one file per shard) into one file that
-- holds every pair of the dataset exactly once, in the dataset's order, each
-- record copied byte for byte -- the file one process would have written.
--
-- Exit status: 0 when merged; 1 when a pair is missing, in two files, or not in
-- the data (nothing is written, and the ids are reported; --partial writes what
-- there is and still exits 1), or the files hold labels of different
-- configurations; 2 for bad usage. The work is rlaif.labeler.merge; this file
-- only parses flags and reports. The output is written atomically, never over
-- an input, and replaces an existing file only with --force.

local usage = [[
usage: rlaif merge OUT FILE... --data FILE [options]

  OUT                   the merged label file (JSONL), written atomically
  FILE...               the shards' label files (rlaif label --shard I/N --out FILE)
  --data FILE           the dataset the shards labeled: it fixes the order and says what is missing
  --format F            hh | comparisons | tldr | pairs | auto (default auto), as for `rlaif label`
  --fields K=V,...      user-named fields for pairs, as for `rlaif label`
  --partial             write the pairs there are even when some are missing (still exits 1)
  --force               replace OUT when it exists
  --quiet               no summary line
]]

local FLAGS = {
  data = "string", format = { "string", one_of = { "hh", "comparisons", "tldr", "pairs", "auto" } },
  fields = "string", partial = "flag", force = "flag", quiet = "flag",
}

-- the first few ids of a list, for a message
local function some(ids, json)
  local out = {}
  for k = 1, math.min(#ids, 5) do out[k] = json.encode(ids[k]) end
  return table.concat(out, ", ") .. (#ids > 5 and string.format(" and %d more", #ids - 5) or "")
end

local function main(args)
  local o, bad = require("rlaif.opts").main_args("merge", args, FLAGS, usage, { positional = true })
  if not o then return bad end
  if not o.data or #o < 2 then
    io.stderr:write("rlaif merge: OUT, at least one FILE and --data are required\n", usage)
    return 2
  end
  local out, files = o[1], {}
  for k = 2, #o do files[#files + 1] = o[k] end
  local core = require "rlaif.core"
  local json = core.json
  local status = 0
  local ok, err = pcall(function()
    if not o.force and core.gz.file_id(out) then
      error("rlaif merge: " .. out .. " exists; pass --force to replace it", 0)
    end
    local fields
    if o.fields then
      fields = {}
      for kv in o.fields:gmatch("[^,]+") do
        local k, v = kv:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
        if not k then error("rlaif merge: option --fields must be k=v,k=v, got '" .. kv .. "'", 0) end
        fields[k] = v
      end
    end
    local reader = require("rlaif.data").open(o.data, { format = o.format or "auto", skip_bad = true,
      fields = fields })
    local rok, rep = pcall(require("rlaif.labeler").merge, files, reader, out,
      { force = o.force, partial = o.partial })
    reader:close()
    if not rok then error(rep, 0) end
    for _, p in ipairs(rep.torn) do
      io.stderr:write("rlaif merge: ignored the torn last line of ", p, " (an interrupted write; resume that shard)\n")
    end
    if #rep.duplicates > 0 then
      local d = rep.duplicates[1]
      io.stderr:write(string.format("rlaif merge: %d pair(s) are in two files, e.g. %s in %s and %s\n",
        #rep.duplicates, json.encode(d.id), d.files[1], d.files[2]))
    end
    if #rep.extra > 0 then
      io.stderr:write(string.format("rlaif merge: %d pair(s) are not in %s: %s\n", #rep.extra, o.data,
        some(rep.extra, json)))
    end
    if #rep.missing > 0 then
      io.stderr:write(string.format("rlaif merge: %d of %d pairs are missing: %s (resume the shard that has " ..
        "them)\n", #rep.missing, rep.pairs, some(rep.missing, json)))
    end
    if not rep.written then
      io.stderr:write("rlaif merge: nothing written to ", out, "\n")
      status = 1
      return
    end
    if #rep.missing > 0 then status = 1 end
    if not o.quiet then
      io.stderr:write(string.format("rlaif merge: %d of %d pairs from %d file(s) -> %s (%d error, %d unlabeled)\n",
        rep.written, rep.pairs, #files, out, rep.failed, rep.unlabeled))
    end
  end)
  if not ok then
    io.stderr:write(tostring(err):gsub("^[^\n]-/rlaif/[%w_/]+%.lua:%d+: ", ""), "\n")
    return 1
  end
  return status
end

return main
