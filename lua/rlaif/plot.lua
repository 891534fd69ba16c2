-- lua/rlaif/plot.lua -- small SVG charts for rlaif.report: line charts (training
-- curves, several series overlaid) and bar charts with interval whiskers (win
-- rates). Each chart is one self-contained <svg> string: axes, nice-number ticks,
-- axis labels, a title and a legend; no scripts, no external fonts or styles.
--
--   local plot = require "rlaif.plot"
--   local svg = plot.lines{title = "reward", xlabel = "step", ylabel = "reward mean",
--                          series = {{name = "rlaif", x = steps, y = rewards}, ...}}
--   local svg = plot.bars{title = "win rate", ylabel = "%", min = 0, max = 100, ref = 50,
--                         groups = {{name = "rlaif vs sft", bars = {{label = "raw", value = 71,
--                                    lo = 64, hi = 77}, {label = "LC", value = 59, lo =, hi =}}}}}
--   plot.nice_ticks(lo, hi [, n = 5]) -> {ticks}, step, decimals
--   plot.decimate(x, y, max_points) -> x', y'   (min/max per bucket: spikes survive)
--
-- Thousands of points stay light: every series is one <polyline>, decimated to
-- at most `max_points` (default 1000) vertices by keeping, per x bucket, the
-- first, lowest, highest and last point, in order. Non-finite values are
-- skipped (the line continues over them). Text is XML-escaped.
-- What it is not: no HTML (rlaif.report), no data reading, no interactivity.

local opts = require "rlaif.opts"

local M = {}

M.PALETTE = { "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442" }

local floor, ceil, abs = math.floor, math.ceil, math.abs
local function log10(x) return math.log(x, 10) end   -- Lua 5.4 computes base 10 with log10()

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end
--- finite(v) -> true when v is a number that is neither NaN nor infinite
M.finite = finite

--- escape(s): text for XML content and attribute values.
function M.escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&#39;" }))
end
local esc = M.escape

-- ---- ticks ----

-- Heckbert's nice number: 1, 2, 5 (or 10) times a power of ten, rounded or not below x.
local function nicenum(x, round)
  local e = floor(log10(x))
  local f = x / 10 ^ e
  local nf
  if round then
    nf = (f < 1.5 and 1) or (f < 3 and 2) or (f < 7 and 5) or 10
  else
    nf = (f <= 1 and 1) or (f <= 2 and 2) or (f <= 5 and 5) or 10
  end
  return nf * 10 ^ e
end

--- nice_ticks(lo, hi [, n = 5]) -> ticks, step, decimals
--- About n ticks at multiples of a nice step (1, 2 or 5 times a power of ten) that cover
--- [lo, hi]: the first tick <= lo, the last >= hi. A degenerate range is widened. decimals =
--- digits after the point needed to print every tick exactly.
function M.nice_ticks(lo, hi, n)
  n = n or 5
  if not finite(lo) or not finite(hi) then lo, hi = 0, 1 end
  if lo > hi then lo, hi = hi, lo end
  if hi - lo < 1e-12 * math.max(1, abs(lo)) then
    local d = abs(lo) > 0 and abs(lo) * 0.1 or 1
    lo, hi = lo - d, hi + d
  end
  local range = nicenum(hi - lo, false)
  local step = nicenum(range / math.max(1, n - 1), true)
  local g0, g1 = floor(lo / step + 1e-9) * step, ceil(hi / step - 1e-9) * step
  local decimals = math.max(0, -floor(log10(step) + 1e-9))
  local ticks = {}
  local k = 0
  while true do
    local t = g0 + k * step
    if t > g1 + step * 1e-6 then break end
    -- print-exact value (no 0.30000000000000004)
    ticks[#ticks + 1] = tonumber(string.format("%." .. decimals .. "f", t))
    k = k + 1
  end
  return ticks, step, decimals
end

--- fmt_tick(v, decimals): a tick label; large and tiny magnitudes in short forms (12k, 3.5M, 1e-05).
function M.fmt_tick(v, decimals)
  local a = abs(v)
  if a >= 1e6 and a < 1e15 and v == floor(v) then
    local s = string.format("%.6g", v / 1e6)
    return s .. "M"
  elseif a >= 1e4 and a < 1e6 and v == floor(v) then
    return string.format("%.6g", v / 1e3) .. "k"
  elseif a ~= 0 and (a < 1e-3 or a >= 1e15) then
    return string.format("%.3g", v)
  end
  return string.format("%." .. (decimals or 0) .. "f", v)
end

-- ---- decimation ----

--- decimate(x, y, max_points) -> x', y': at most about max_points points (finite ones only)
--- chosen per equal-width x bucket as the first, lowest, highest and last, in x order.
function M.decimate(x, y, max_points)
  max_points = max_points or 1000
  local xs, ys = {}, {}
  for i = 1, math.min(#x, #y) do
    if finite(x[i]) and finite(y[i]) then xs[#xs + 1], ys[#ys + 1] = x[i], y[i] end
  end
  local n = #xs
  if n <= max_points then return xs, ys end
  local buckets = math.max(1, max_points // 4)
  local x0, x1 = math.huge, -math.huge
  for i = 1, n do
    if xs[i] < x0 then x0 = xs[i] end
    if xs[i] > x1 then x1 = xs[i] end
  end
  local width = (x1 - x0) / buckets
  local ox, oy = {}, {}
  local i = 1
  while i <= n do
    local b = width > 0 and math.min(buckets - 1, floor((xs[i] - x0) / width)) or 0
    local j = i
    local lo, hi = i, i
    while j + 1 <= n and (width > 0 and math.min(buckets - 1, floor((xs[j + 1] - x0) / width)) or 0) == b do
      j = j + 1
      if ys[j] < ys[lo] then lo = j end
      if ys[j] > ys[hi] then hi = j end
    end
    local keep = { i, lo, hi, j }
    table.sort(keep)
    local last = nil
    for _, k in ipairs(keep) do
      if k ~= last then ox[#ox + 1], oy[#oy + 1] = xs[k], ys[k] end
      last = k
    end
    i = j + 1
  end
  return ox, oy
end

-- ---- shared frame ----

local FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"'

local function fmt(v) return string.format("%.1f", v) end

-- Estimated text width in px at font size fs (no font metrics here).
local function text_w(s, fs) return (utf8.len(s) or #s) * fs * 0.6 end

-- The plot area inside the chart: room for the title, one legend row above the
-- area (when there is a legend), tick labels and axis labels.
local function frame(o, has_legend)
  local W, H = o.width or 560, o.height or 300
  local left, right, top, bottom = 62, 16, (o.title and 30 or 12) + (has_legend and 18 or 0), 44
  return { W = W, H = H, x0 = left, x1 = W - right, y0 = top, y1 = H - bottom }
end

local function header(f, o, kind)
  local parts = { string.format('<svg xmlns="http://www.w3.org/2000/svg" class="plot %s" width="%d" height="%d" ' ..
    'viewBox="0 0 %d %d" role="img" %s font-size="11">', kind, f.W, f.H, f.W, f.H, FONT) }
  parts[#parts + 1] = string.format('<title>%s</title>', esc(o.title or kind))
  parts[#parts + 1] = string.format('<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>', f.W, f.H)
  if o.title then
    parts[#parts + 1] = string.format('<text x="%s" y="18" text-anchor="middle" font-size="13" font-weight="bold">' ..
      '%s</text>', fmt(f.W / 2), esc(o.title))
  end
  return parts
end

-- y axis with ticks and grid lines; returns the value -> pixel map
local function y_axis(parts, f, lo, hi, label, n)
  local ticks, _, dec = M.nice_ticks(lo, hi, n or 5)
  local t0, t1 = ticks[1], ticks[#ticks]
  local function Y(v) return f.y1 - (v - t0) / (t1 - t0) * (f.y1 - f.y0) end
  for _, t in ipairs(ticks) do
    local y = fmt(Y(t))
    parts[#parts + 1] = string.format('<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e5e5e5"/>',
      f.x0, y, f.x1, y)
    parts[#parts + 1] = string.format('<text x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>',
      f.x0 - 6, y, esc(M.fmt_tick(t, dec)))
  end
  parts[#parts + 1] = string.format('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>',
    f.x0, f.y0, f.x0, f.y1)
  if label then
    parts[#parts + 1] = string.format('<text x="14" y="%s" text-anchor="middle" transform="rotate(-90 14 %s)">' ..
      '%s</text>', fmt((f.y0 + f.y1) / 2), fmt((f.y0 + f.y1) / 2), esc(label))
  end
  return Y, t0, t1
end

local function legend(parts, f, entries)
  if #entries < 1 then return end
  -- one row under the plot area's top edge, right-aligned, wrapping when wide
  local fs, sw = 11, 14
  local widths, total = {}, 0
  for i, e in ipairs(entries) do
    widths[i] = sw + 4 + text_w(e.name, fs) + 12
    total = total + widths[i]
  end
  local avail = f.x1 - f.x0 - 8
  local x, y = f.x1 - math.min(total, avail) - 4, f.y0 - 18
  parts[#parts + 1] = '<g class="legend">'
  local row_start = x
  for i, e in ipairs(entries) do
    if x + widths[i] > f.x1 and x > row_start then x, y = row_start, y + 15 end
    if e.kind == "bar" then
      parts[#parts + 1] = string.format('<rect x="%s" y="%s" width="%d" height="10" fill="%s"/>', fmt(x),
        fmt(y + 1), sw, e.color)
    else
      parts[#parts + 1] = string.format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2.5"/>',
        fmt(x), fmt(y + 6), fmt(x + sw), fmt(y + 6), e.color)
    end
    parts[#parts + 1] = string.format('<text x="%s" y="%s" dominant-baseline="middle">%s</text>', fmt(x + sw + 4),
      fmt(y + 6), esc(e.name))
    x = x + widths[i]
  end
  parts[#parts + 1] = '</g>'
end

-- ---- line charts ----

--- lines{series = {{name =, x = {...}, y = {...}, color =}, ...}, title =, xlabel =, ylabel =,
---   width = 560, height = 300, max_points = 1000, ymin =, ymax =} -> svg string
--- An empty chart (no finite point) still has its frame and says "no data".
local LINES = opts.schema("plot.lines", {
  series = { "table", default = {} }, title = "string", xlabel = "string", ylabel = "string",
  width = { "integer", min = 120, max = 10000 }, height = { "integer", min = 100, max = 10000 },
  max_points = { "integer", min = 4 }, ymin = "number", ymax = "number", legend = "boolean", id = "string|number",
})

--- lines{series =, title =, xlabel =, ylabel =, ...} -> svg string (see the comment above)
function M.lines(o)
  o = LINES(o)
  local f = frame(o, #o.series > 1 or o.legend)
  local parts = header(f, o, "lines")
  local series = {}
  local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
  for i, s in ipairs(o.series or {}) do
    local xs, ys = M.decimate(s.x or {}, s.y or {}, o.max_points or 1000)
    series[#series + 1] = { name = s.name or ("series " .. i), x = xs, y = ys,
      color = s.color or M.PALETTE[(i - 1) % #M.PALETTE + 1] }
    for k = 1, #xs do
      if xs[k] < xlo then xlo = xs[k] end
      if xs[k] > xhi then xhi = xs[k] end
      if ys[k] < ylo then ylo = ys[k] end
      if ys[k] > yhi then yhi = ys[k] end
    end
  end
  local empty = xlo > xhi
  if empty then xlo, xhi, ylo, yhi = 0, 1, 0, 1 end
  if finite(o.ymin) then ylo = o.ymin end
  if finite(o.ymax) then yhi = o.ymax end
  local Y, t0, t1 = y_axis(parts, f, ylo, yhi, o.ylabel)
  -- x axis
  local xt, _, xdec = M.nice_ticks(xlo, xhi, 6)
  local u0, u1 = xt[1], xt[#xt]
  local function X(v) return f.x0 + (v - u0) / (u1 - u0) * (f.x1 - f.x0) end
  parts[#parts + 1] = string.format('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>',
    f.x0, f.y1, f.x1, f.y1)
  for _, t in ipairs(xt) do
    local x = fmt(X(t))
    parts[#parts + 1] = string.format('<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#333"/>', x, f.y1, x, f.y1 + 4)
    parts[#parts + 1] = string.format('<text x="%s" y="%d" text-anchor="middle">%s</text>', x, f.y1 + 16,
      esc(M.fmt_tick(t, xdec)))
  end
  if o.xlabel then
    parts[#parts + 1] = string.format('<text x="%s" y="%d" text-anchor="middle">%s</text>', fmt((f.x0 + f.x1) / 2),
      f.H - 8, esc(o.xlabel))
  end
  if empty then
    parts[#parts + 1] = string.format('<text x="%s" y="%s" text-anchor="middle" fill="#888">no data</text>',
      fmt((f.x0 + f.x1) / 2), fmt((f.y0 + f.y1) / 2))
  end
  -- the series, clipped to the plot area
  local clip = "c" .. tostring(o.id or M._next_id())
  parts[#parts + 1] = string.format('<clipPath id="%s"><rect x="%d" y="%d" width="%d" height="%d"/></clipPath>',
    clip, f.x0, f.y0 - 2, f.x1 - f.x0, f.y1 - f.y0 + 4)
  local entries = {}
  for _, s in ipairs(series) do
    if #s.x > 0 then
      local pts = {}
      for k = 1, #s.x do
        local yv = math.max(t0 - (t1 - t0), math.min(t1 + (t1 - t0), s.y[k]))   -- keep off-scale values drawable
        pts[k] = fmt(X(s.x[k])) .. "," .. fmt(Y(yv))
      end
      if #pts == 1 then
        local x, y = pts[1]:match("([^,]+),(.+)")
        parts[#parts + 1] = string.format('<circle class="series" cx="%s" cy="%s" r="3" fill="%s" ' ..
          'clip-path="url(#%s)"/>', x, y, s.color, clip)
      else
        parts[#parts + 1] = string.format('<polyline class="series" fill="none" stroke="%s" stroke-width="1.6" ' ..
          'stroke-linejoin="round" clip-path="url(#%s)" points="%s"><title>%s</title></polyline>', s.color, clip,
          table.concat(pts, " "), esc(s.name))
      end
    end
    entries[#entries + 1] = { name = s.name, color = s.color }
  end
  if #entries > 1 or o.legend then legend(parts, f, entries) end
  parts[#parts + 1] = "</svg>"
  return table.concat(parts, "\n")
end

local counter = 0
function M._next_id()
  counter = counter + 1
  return counter
end

-- ---- bar charts ----

--- bars{groups = {{name =, bars = {{label =, value =, lo =, hi =}, ...}}, ...}, title =, ylabel =,
---   min =, max =, ref =, width =, height =} -> svg string
--- Bars with the same label share a colour (and a legend entry); lo/hi draw a whisker.
--- ref draws a dashed reference line (e.g. 50 for win rates).
local BARS = opts.schema("plot.bars", {
  groups = { "table", default = {} }, title = "string", ylabel = "string", min = "number", max = "number",
  ref = "number", width = { "integer", min = 120, max = 10000 }, height = { "integer", min = 100, max = 10000 },
})

--- bars{groups =, title =, ylabel =, ref =, ...} -> svg string (see the comment above)
function M.bars(o)
  o = BARS(o)
  local f = frame(o, true)
  local parts = header(f, o, "bars")
  local groups = o.groups or {}
  local lo, hi = math.huge, -math.huge
  local labels, color_of = {}, {}
  for _, g in ipairs(groups) do
    for _, b in ipairs(g.bars or {}) do
      for _, v in ipairs { b.value, b.lo, b.hi } do
        if finite(v) then
          if v < lo then lo = v end
          if v > hi then hi = v end
        end
      end
      if b.label and not color_of[b.label] then
        labels[#labels + 1] = b.label
        color_of[b.label] = b.color or M.PALETTE[(#labels - 1) % #M.PALETTE + 1]
      end
    end
  end
  if lo > hi then lo, hi = 0, 1 end
  if finite(o.min) then lo = math.min(lo, o.min) end
  if finite(o.max) then hi = math.max(hi, o.max) end
  if finite(o.ref) then lo, hi = math.min(lo, o.ref), math.max(hi, o.ref) end
  local Y, t0 = y_axis(parts, f, lo, hi, o.ylabel)
  local base = Y(math.max(t0, math.min(0, hi)))
  if t0 > 0 then base = Y(t0) end
  parts[#parts + 1] = string.format('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>',
    f.x0, f.y1, f.x1, f.y1)
  local ng = math.max(1, #groups)
  local gw = (f.x1 - f.x0) / ng
  for gi, g in ipairs(groups) do
    local nb = math.max(1, #(g.bars or {}))
    local bw = math.min(48, gw * 0.7 / nb)
    local gx = f.x0 + (gi - 1) * gw + (gw - bw * nb) / 2
    for bi, b in ipairs(g.bars or {}) do
      local x = gx + (bi - 1) * bw
      if finite(b.value) then
        local y = Y(b.value)
        parts[#parts + 1] = string.format('<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="%s">' ..
          '<title>%s %s: %s</title></rect>', fmt(x + 1), fmt(math.min(y, base)), fmt(bw - 2),
          fmt(abs(base - y)), color_of[b.label] or M.PALETTE[1], esc(g.name or ""), esc(b.label or ""),
          esc(string.format("%.4g", b.value)))
        if finite(b.lo) and finite(b.hi) then
          local cx = fmt(x + bw / 2)
          parts[#parts + 1] = string.format('<path class="whisker" d="M%s %sV%sM%s %sH%sM%s %sH%s" stroke="#222" ' ..
            'stroke-width="1.3" fill="none"/>', cx, fmt(Y(b.lo)), fmt(Y(b.hi)), fmt(x + bw / 2 - 4), fmt(Y(b.lo)),
            fmt(x + bw / 2 + 4), fmt(x + bw / 2 - 4), fmt(Y(b.hi)), fmt(x + bw / 2 + 4))
        end
        parts[#parts + 1] = string.format('<text x="%s" y="%s" text-anchor="middle" font-size="10">%s</text>',
          fmt(x + bw / 2), fmt(math.min(y, Y(finite(b.hi) and b.hi or b.value)) - 4),
          esc(string.format("%.1f", b.value)))
      end
    end
    parts[#parts + 1] = string.format('<text x="%s" y="%d" text-anchor="middle">%s</text>',
      fmt(f.x0 + (gi - 0.5) * gw), f.y1 + 16, esc(g.name or ""))
  end
  if finite(o.ref) then
    parts[#parts + 1] = string.format('<line class="ref" x1="%d" y1="%s" x2="%d" y2="%s" stroke="#888" ' ..
      'stroke-dasharray="5,4"/>', f.x0, fmt(Y(o.ref)), f.x1, fmt(Y(o.ref)))
  end
  local entries = {}
  for _, l in ipairs(labels) do entries[#entries + 1] = { name = l, color = color_of[l], kind = "bar" } end
  legend(parts, f, entries)
  parts[#parts + 1] = "</svg>"
  return table.concat(parts, "\n")
end

return M
