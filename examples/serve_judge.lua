-- examples/serve_judge.lua -- serve a judge written in Lua as an OpenAI-compatible
-- endpoint, so any OpenAI client (the `openai` SDKs, evaluation harnesses, our own
-- `rlaif label --api openai-chat --base-url http://127.0.0.1:8001/v1`) can query it,
-- log-probabilities included.
--
--   ./rlaif examples/serve_judge.lua            -- then, in another shell:
--   curl -s http://127.0.0.1:8001/v1/chat/completions -d '{"model": "length-judge",
--     "messages": [{"role": "user", "content": "Summary 1 - short\nSummary 2 - a longer one"}],
--     "max_tokens": 1, "logprobs": true, "top_logprobs": 2}'
--
-- rlaif.serve{client = c} takes any object with the rlaif.llm interface: a method
-- complete_many(requests) returning one result per request in the rlaif.llm shape.
-- The server turns those results into OpenAI's JSON (and SSE when a client streams),
-- batches concurrent HTTP requests into one complete_many call, and handles keys,
-- queueing (429), timeouts (504) and shutdown. Ctrl-C stops it.

local rlaif = require "rlaif"

-- A toy judge: prefers the longer of the two summaries shown, with a soft probability.
local judge = { model = "length-judge" }

function judge.complete_many(_, requests)
  local results = {}
  for i, req in ipairs(requests) do
    -- the prompt: completions send `prompt`, chats send `messages` (the last one is the question)
    local text = req.prompt or req.messages[#req.messages].content
    local a = #(text:match("Summary 1 %- ([^\n]*)") or "")
    local b = #(text:match("Summary 2 %- ([^\n]*)") or "")
    local p1 = 1 / (1 + math.exp(-(a - b) / 10))          -- P("1")
    local best = p1 >= 0.5 and "1" or "2"
    -- one generated token with its alternatives: what OpenAI's logprobs report
    local top = { { token = "1", logprob = math.log(p1) }, { token = "2", logprob = math.log(1 - p1) } }
    table.sort(top, function(x, y) return x.logprob > y.logprob end)
    results[i] = {
      ok = true, text = best,
      usage = { prompt_tokens = #text // 4, completion_tokens = 1 },
      choices = { { text = best, finish_reason = "stop",
        tokens = { { token = best, logprob = top[1].logprob, top = top } } } },
    }
  end
  return results
end

-- blocks until Ctrl-C (or SIGTERM); add api_key_env = "VAR" to require a bearer key
rlaif.serve { client = judge, port = 8001 }
