-- scripts/bench/serve.lua -- `rlaif serve` throughput at 1, 8 and 32 concurrent
-- clients against the in-process generation it wraps, in the same run.
--
-- Model: a random Llama of the model benchmark's "small" shape (4 layers, d_model
-- 256, 4 heads, vocabulary 8192), saved to a temp directory with the trained
-- fixture tokenizer. Requests: completions with a ~32-token text prompt (distinct
-- per request), max_tokens = 32, temperature 0 -- greedy requests are
-- the ones the local backend batches. Each level first runs a warm-up of
-- `concurrency` requests that is not timed.
--   impl = "in-process"   llm.client{api = "local", batch_size = c}:complete_many of
--                         the same requests (what the server calls per batch)
--   impl = "rlaif-serve"  ./rlaif serve (subprocess) + rlaif.llm's openai-completions
--                         client with `concurrency` = c requests in flight
--   tok_per_s             generated tokens per second; rps requests per second
--   ratio                 rlaif-serve tok_per_s / in-process tok_per_s at the same c
-- N per level: RLAIF_BENCH_SERVE_N (default 4 * c, at least 16), best of
-- RLAIF_BENCH_SERVE_REPEAT runs (default 3). Threads:
-- RLAIF_NUM_THREADS (default 2) for both. One JSON line per measurement.

local rlaif = require "rlaif"
local core = require "rlaif.core"
local llm = require "rlaif.llm"

local THREADS = tonumber(os.getenv("RLAIF_NUM_THREADS") or "") or 2
local ONLY = tonumber(arg and arg[1] or "")   -- one level only (for a quick look)
local LEVELS = ONLY and { ONLY } or { 1, 8, 32 }
local PROMPT, NEW = 32, 32
rlaif.set_threads(THREADS)

local function emit(t) io.write(llm.encode_json(t), "\n") io.stdout:flush() end
local function sh(cmd) return os.execute(cmd) == true end
local function read_file(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local dir = os.tmpname()
os.remove(dir)
sh("mkdir -p " .. dir)
local m = rlaif.model.new { arch = "llama", vocab_size = 8192, n_layer = 4, n_head = 4, n_kv_head = 4, d_model = 256,
  d_ff = 688, max_seq = 512, seed = 5, tie_embeddings = true }
assert(m:save(dir))
local TOK = "tests/fixtures/tokenizer/trained.json"
local tok = assert(rlaif.tokenizer.load(TOK))

-- distinct ~32-token text prompts cut from the tokenizer's corpus
local words = {}
for line in io.lines("tests/fixtures/tokenizer/corpus.jsonl") do
  for w in core.json.decode(line):gmatch("%S+") do
    if #w <= 16 then words[#words + 1] = w end
  end
end
local serial = 0
local function requests(n)
  local out = {}
  for i = 1, n do
    serial = serial + 1
    local parts, k = {}, (serial * 7919) % (#words - 200) + 1
    while tok:count(table.concat(parts, " ")) < PROMPT do
      parts[#parts + 1] = words[k]
      k = k + 1
    end
    out[i] = { prompt = table.concat(parts, " "), max_tokens = NEW, temperature = 0 }
  end
  return out
end

local function count_tokens(results)
  local n, failed = 0, 0
  for _, r in ipairs(results) do
    if r.ok then
      n = n + r.usage.completion_tokens
    else
      failed = failed + 1
      if failed == 1 then
        io.stderr:write("bench serve: a request failed: ", tostring(r.kind), ": ", tostring(r.message), "\n")
      end
    end
  end
  return n, failed
end

-- best of REPEAT runs of n fresh requests (the machine is shared: the best run is the least disturbed)
local REPEAT = tonumber(os.getenv("RLAIF_BENCH_SERVE_REPEAT") or "") or 3
local function measure(c, fn)
  local n = tonumber(os.getenv("RLAIF_BENCH_SERVE_N") or "") or math.max(16, 4 * c)
  fn(requests(c))   -- warm-up
  local best
  for _ = 1, REPEAT do
    local reqs = requests(n)
    local t0 = core.clock()
    local results = fn(reqs)
    local dt = core.clock() - t0
    local toks, failed = count_tokens(results)
    if not best or toks / dt > best.tok_per_s then
      best = { n = n, seconds = dt, rps = n / dt, tok_per_s = toks / dt, failed = failed }
    end
  end
  return best
end

-- in-process reference
local ref = {}
for _, c in ipairs(LEVELS) do
  local client = llm.client { api = "local", model = m, tokenizer = tok, batch_size = c, name = "bench" }
  local r = measure(c, function(reqs) return (client:complete_many(reqs)) end)
  ref[c] = r
  emit { bench = "serve", impl = "in-process", concurrency = c, n = r.n, seconds = r.seconds, rps = r.rps,
    tok_per_s = r.tok_per_s, failed = r.failed, threads = THREADS }
end
collectgarbage()

-- the server
local port_file, pid_file = dir .. "/port", dir .. "/pid"
sh(string.format("( RLAIF_NUM_THREADS=%d ./rlaif serve --model %s --tokenizer %s --name bench --port 0 " ..
  "--port-file %s --batch-size 32 --max-batch 64 --quiet >%s/log 2>&1 & echo $! > %s )", THREADS, dir, TOK,
  port_file, dir, pid_file))
local port
for _ = 1, 400 do
  port = tonumber(read_file(port_file) or "")
  if port then break end
  sh("sleep 0.05")
end
local pid = tonumber(read_file(pid_file) or "")
if not port then
  emit { bench = "serve", skipped = "rlaif serve did not start: " .. tostring(read_file(dir .. "/log")) }
else
  for _, c in ipairs(LEVELS) do
    local client = llm.client { api = "openai-completions", base_url = "http://127.0.0.1:" .. port .. "/v1",
      model = "bench", concurrency = c, max_retries = 0, timeout = 600 }
    local r = measure(c, function(reqs) return (client:complete_many(reqs)) end)
    emit { bench = "serve", impl = "rlaif-serve", concurrency = c, n = r.n, seconds = r.seconds, rps = r.rps,
      tok_per_s = r.tok_per_s, failed = r.failed, threads = THREADS, ref_tok_per_s = ref[c].tok_per_s,
      ratio = r.tok_per_s / ref[c].tok_per_s }
  end
end
if pid then sh("kill " .. pid .. " 2>/dev/null") end
sh("sleep 0.5")
sh("rm -rf " .. dir)
