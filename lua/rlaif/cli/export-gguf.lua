-- lua/rlaif/cli/export-gguf.lua -- `rlaif export-gguf`: write a model and its
-- tokenizer as one GGUF file for llama.cpp (m:save_gguf in rlaif.model).
--
-- A subcommand module returns main(args) -> exit status (see cli/info.lua).

local opts = require "rlaif.opts"

local usage = [[
usage: rlaif export-gguf --model DIR --out FILE [options]

Writes DIR (a Hugging Face directory or a .gguf file; GPT-2, Llama, Mistral or
Qwen2) as a GGUF v3 file that llama.cpp, LM Studio, Ollama and node-llama-cpp
load without conversion scripts. The output is written atomically.
  --model DIR        the model
  --out FILE         the .gguf file to write (never the input)
  --tokenizer FILE   tokenizer.json, *.tiktoken, vocab.bpe or a directory (default: DIR)
  --type T           f32 | f16 | bf16 | q8_0 for the weight matrices (default f32;
                     norms, biases and positions stay f32)
  --name NAME        general.name (default: the model type)
  --pre NAME         llama.cpp's pre-tokenizer name, when rlaif cannot derive it
  --quiet            no summary line
]]

local FLAGS = {
  model = "string", out = "string", tokenizer = "string", name = "string", pre = "string", quiet = "flag",
  type = { "string", one_of = { "f32", "f16", "bf16", "q8_0" } },
}

local function main(args)
  local o, status = opts.main_args("export-gguf", args, FLAGS, usage)
  if not o then return status end
  if not o.model or not o.out then
    io.stderr:write("rlaif export-gguf: --model and --out are required\n", usage)
    return 2
  end
  local rlaif = require "rlaif"
  -- by file identity (links and other spellings count), the tokenizer's file too
  local okc, clash = pcall(require("rlaif.fileio").check_outputs, "rlaif export-gguf",
    { ["--model"] = o.model, ["--tokenizer"] = o.tokenizer }, { ["--out"] = o.out })
  if not okc then
    io.stderr:write(tostring(clash), "\n")
    return 2
  end
  local m, err = rlaif.model.try_load(o.model)
  if not m then
    io.stderr:write("rlaif export-gguf: ", err, "\n")
    return 1
  end
  local tok
  tok, err = rlaif.tokenizer.try_load(o.tokenizer or o.model)
  if not tok then
    io.stderr:write("rlaif export-gguf: ", err, "\n")
    return 1
  end
  local t0 = rlaif.core.clock()
  local ok
  ok, err = m:save_gguf(o.out, { tokenizer = tok, type = o.type, name = o.name, pre = o.pre })
  if not ok then
    io.stderr:write("rlaif export-gguf: ", err, "\n")
    return 1
  end
  if not o.quiet then
    local f = io.open(o.out, "rb")
    local size = f and f:seek("end") or 0
    if f then f:close() end
    local c = m:config()
    io.stderr:write(string.format("rlaif export-gguf: %s (%s, %d layers, %d parameters, %s) -> %s, %.1f MB in %.1f s\n",
      o.model, c.model_type, c.n_layer, m:num_params(), o.type or "f32", o.out, size / 1e6, rlaif.core.clock() - t0))
  end
  return 0
end

return main
