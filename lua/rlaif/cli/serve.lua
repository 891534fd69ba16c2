-- lua/rlaif/cli/serve.lua -- `rlaif serve`: an OpenAI-compatible HTTP server over
-- a local model (rlaif.serve). Runs until Ctrl-C (exit 130) or SIGTERM (exit 0).
--
-- A subcommand module returns main(args) -> exit status (see cli/info.lua).

local opts = require "rlaif.opts"

local usage = [[
usage: rlaif serve --model DIR [options]

Serves DIR (a Hugging Face directory or a .gguf file) with the OpenAI API:
/v1/completions, /v1/chat/completions (streaming, logprobs), /v1/models.
  --model DIR            the model (its tokenizer is loaded from it unless --tokenizer)
  --tokenizer FILE       tokenizer.json, *.tiktoken, vocab.bpe or a directory
  --name NAME            the model id clients send (default: DIR)
  --host ADDR            numeric address to bind (default 127.0.0.1: this machine only)
  --port N               port (default 8000; 0 = any free port, see --port-file)
  --port-file FILE       write the bound port to FILE once listening
  --api-key-env VAR      require "Authorization: Bearer $VAR" on every request
  --max-batch N          requests answered together (default 64)
  --batch-window S       seconds to wait for more requests after the first (default 0.002)
  --batch-size N         rows per model forward/generation call (default 32)
  --max-queue N          waiting requests before 429 (default 256)
  --timeout S            504 when a request is not answered S seconds after arrival (default 600)
  --read-timeout S       close clients that take longer to send a request or stay idle (default 30)
  --max-body BYTES       413 above this request size (default 8388608)
  --max-logprobs K       largest logprobs / top_logprobs accepted (default 20)
  --chat-template T      auto | plain | chatml | llama3 (default auto)
  --seed N               base seed of sampled requests without their own seed
  --threads N            BLIS / kernel threads
  --log                  one line per batch on stderr
  --quiet                no start/stop lines
]]

local FLAGS = {
  model = "string", tokenizer = "string", name = "string", host = "string",
  port = { "integer", min = 0, max = 65535 }, ["port-file"] = "string", ["api-key-env"] = "string",
  ["max-batch"] = { "integer", min = 1, max = 4096 }, ["batch-window"] = { "number", min = 0, max = 10 },
  ["batch-size"] = { "integer", min = 1, max = 4096 }, ["max-queue"] = { "integer", min = 1 },
  timeout = { "number", min = 0 }, ["read-timeout"] = { "number", min = 0 }, ["max-body"] = { "integer", min = 1 },
  ["max-logprobs"] = { "integer", min = 0, max = 10000 },
  ["chat-template"] = { "string", one_of = { "auto", "plain", "chatml", "llama3" } },
  seed = "integer", threads = { "integer", min = 1, max = 1024 }, log = "flag", quiet = "flag",
}

local function main(args)
  local o, status = opts.main_args("serve", args, FLAGS, usage)
  if not o then return status end
  if not o.model then
    io.stderr:write("rlaif serve: --model is required\n", usage)
    return 2
  end
  local rlaif = require "rlaif"
  if o.threads then rlaif.set_threads(o.threads) end
  local ok, stats, reason
  ok, stats, reason = pcall(rlaif.serve, {
    model = o.model, tokenizer = o.tokenizer, name = o.name, host = o.host, port = o.port or 8000,
    port_file = o["port-file"], api_key_env = o["api-key-env"], max_batch = o["max-batch"],
    batch_window = o["batch-window"], batch_size = o["batch-size"] or 32, max_queue = o["max-queue"],
    timeout = o.timeout, read_timeout = o["read-timeout"], max_body = o["max-body"],
    max_logprobs = o["max-logprobs"], chat_template = o["chat-template"], seed = o.seed, log = o.log,
    quiet = o.quiet,
  })
  local interrupted = not ok and (type(stats) == "table" and stats.stats or tostring(stats):find("interrupted", 1,
    true))
  if not ok and not interrupted then
    io.stderr:write("rlaif serve: ", (tostring(stats):gsub("^[^\n]-/rlaif/[%w_/]+%.lua:%d+: ", "")), "\n")
    return 1
  end
  local s = ok and stats or (type(stats) == "table" and stats.stats) or nil
  if not o.quiet and s then
    io.stderr:write(string.format("rlaif serve: stopped (%s) after %d requests in %d batches, %d errors, %.0f s\n",
      interrupted and "interrupted" or reason or "closed", s.requests, s.batches, s.errors, s.seconds))
  end
  return interrupted and 130 or 0
end

return main
