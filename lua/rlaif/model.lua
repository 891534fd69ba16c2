-- rlaif.model: GPT-2 and Llama-family transformers (forward, backward, AdamW) in C.
--
--   local m = rlaif.model.load("checkpoints/gpt2")              -- Hugging Face directory
--   local m = rlaif.model.new{arch = "llama", vocab_size = 8192, n_layer = 4, n_head = 4,
--                             n_kv_head = 2, d_model = 256, d_ff = 688, seed = 1}
--   local logits = m:forward({{1, 2, 3}, {4, 5}})               -- tensor [B, T, V]
--   local loss = m:lm_loss(ids, targets [, mask [, {scale=}]])  -- accumulates gradients
--   m:clip_grad_norm(1.0); m:adamw_step{lr = 3e-4, weight_decay = 0.1}; m:zero_grad()
--   m:param("transformer.h.0.attn.c_attn.weight")               -- view by HF name
--   m:save("out/dir", {tokenizer = tok})                       -- transformers can load it
--   local toks, lps = m:generate(prompts, {max_new_tokens = 32})  -- stops at the model's EOS
--   m:save_gguf("m.gguf", {tokenizer = tok, type = "q8_0"})     -- llama.cpp can load it
--   rlaif.model.load("m.gguf")                                  -- GGUF too (F32/F16/BF16/Q8_0)
--
-- Token ids are 0-based values (as tokenizers produce them). A batch is an array
-- of arrays; shorter rows are right-padded with pad_id (or eos_id) and masked.
-- The optional mask has the same shape (1/true = real token). Views returned by
-- m:param / m:grad share the model's memory and keep the model alive.
-- Loaders follow the one convention of rlaif: load raises with the directory and
-- the problem, try_load returns nil, message; save returns true | nil, message.
-- Misuse raises, and every option table is checked by rlaif.opts.

local core = require "rlaif.core"
local opts = require "rlaif.opts"

local C = core.model
local M = {}
local methods = C.methods

local NEW = opts.schema("model.new", {
  arch = { "string", one_of = { "gpt2", "llama", "qwen2", "mistral" } }, vocab_size = { "integer", min = 1 },
  n_layer = { "integer", min = 1 }, n_head = { "integer", min = 1 }, n_kv_head = { "integer", min = 1 },
  d_model = { "integer", min = 1 }, d_ff = { "integer", min = 1 }, head_dim = { "integer", min = 1 },
  max_seq = { "integer", min = 1 }, rope_theta = { "number", gt = 0 }, norm_eps = { "number", gt = 0 },
  tie_embeddings = "boolean", qkv_bias = "boolean", o_bias = "boolean",
  head = { "string", one_of = { "lm", "reward" } }, seed = "integer", bos_id = { "integer", min = -1 },
  eos_id = { "integer", min = -1 }, pad_id = { "integer", min = -1 },
})
local DTYPES = { "float32", "bf16" }
local LOAD = opts.schema("model.load", { head = { "string", one_of = { "lm", "reward" } },
  dtype = { "string", one_of = DTYPES } })
local TRY_LOAD = opts.schema("model.try_load", { head = { "string", one_of = { "lm", "reward" } },
  dtype = { "string", one_of = DTYPES } })
local GEN = opts.schema("model:generate", {
  max_new_tokens = { "integer", min = 1 }, temperature = { "number", min = 0 }, top_k = { "integer", min = 0 },
  top_p = { "number", gt = 0, max = 1 }, stop = "table|integer|boolean", seed = "integer", seeds = "table",
})
local ADAMW = opts.schema("model:adamw_step", {
  lr = { "number", min = 0, required = true }, beta1 = { "number", min = 0, lt = 1 },
  beta2 = { "number", min = 0, lt = 1 }, eps = { "number", gt = 0 }, weight_decay = { "number", min = 0 },
})
local LM_LOSS = opts.schema("model:lm_loss", { scale = "number", backward = "boolean" })
local SAVE = opts.schema("model:save", { tokenizer = "userdata" })

--- new{arch = "gpt2" | "llama" | "qwen2" | "mistral", vocab_size, n_layer, n_head,
---     n_kv_head, d_model, d_ff, head_dim, max_seq, rope_theta, norm_eps,
---     tie_embeddings, qkv_bias, o_bias, head = "lm" | "reward", seed,
---     bos_id, eos_id, pad_id} -> model
function M.new(cfg)
  if cfg == nil then error("model.new: a configuration table is required", 2) end
  return C.new(NEW(cfg))
end

local function check_dir(fn, dir)
  if type(dir) ~= "string" then error(string.format("%s: dir must be a string, got %s", fn, type(dir)), 3) end
end

--- try_load(dir [, {head = "reward", dtype = "float32" | "bf16"}]) -> model | nil, message
-- dir: a Hugging Face directory, or a .gguf file (architectures gpt2, llama, qwen2).
-- dtype = "bf16" keeps the weight matrices in bf16 (half the memory; a frozen
-- model: forward, generate, reward, logprobs; computed in float32), see m:to_bf16.
function M.try_load(dir, o)
  check_dir("model.try_load", dir)
  o = TRY_LOAD(o)
  local m, err = C.load(dir, o)
  if m and o.dtype == "bf16" then m:to_bf16() end
  return m, err
end

--- load(dir [, {head = "reward", dtype = "float32" | "bf16"}]) -> model; raises on any file problem
function M.load(dir, o)
  check_dir("model.load", dir)
  o = LOAD(o)
  local m, err = C.load(dir, o)
  if not m then error(err, 2) end
  if o.dtype == "bf16" then m:to_bf16() end
  return m
end

-- ---- checked methods over the C ones ----

-- The C methods, kept once: a second load of this file (package.loaded cleared)
-- must wrap them, not its own earlier wrappers.
local raw = rawget(methods, "_raw") or {}
rawset(methods, "_raw", raw)
for _, k in ipairs { "generate", "adamw_step", "lm_loss", "save" } do raw[k] = raw[k] or methods[k] end
local c_generate, c_adamw, c_lm_loss, c_save = raw.generate, raw.adamw_step, raw.lm_loss, raw.save

--- m:generate(prompts [, {max_new_tokens = 16, temperature = 1, top_k = 0, top_p = 1, seed = 0, seeds =,
---   stop = id | {ids} | false}]) -> tokens, logprobs. Without `stop` a row ends at the
--- model's end-of-sequence token (config eos_id), as in transformers; stop = false
--- (or {}) generates max_new_tokens for every row. seeds = {one integer per prompt}: each
--- row samples from its own stream, so its text does not depend on the rest of the batch.
function methods:generate(prompts, o)
  o = GEN(o)
  if o.stop == nil then
    local eos = self:config().eos_id
    if eos >= 0 then o.stop = { eos } end
  elseif o.stop == false then
    o.stop = nil
  elseif o.stop == true then
    error("model:generate: option 'stop' must be a token id, a list of ids or false, got true", 2)
  end
  return c_generate(self, prompts, o)
end

--- m:adamw_step{lr =, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0} -> step
function methods:adamw_step(o)
  return c_adamw(self, ADAMW(o))
end

--- m:lm_loss(ids, targets [, mask [, {scale = 1, backward = true}]]) -> mean loss, tokens
function methods:lm_loss(ids, targets, mask, o)
  if o ~= nil then o = LM_LOSS(o) end
  return c_lm_loss(self, ids, targets, mask, o)
end

-- The files a tokenizer was loaded from, copied into a checkpoint directory.
local function copy_file(src, dst)
  local f, err = io.open(src, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  local w = require("rlaif.fileio").atomic(dst, { who = "model:save", force = true })
  w:write(text)
  w:commit()
  return true
end

local function save_tokenizer(tok, dir)
  local tokenizer = require "rlaif.tokenizer"
  local src = tokenizer.source(tok)
  if not src then return nil, "model:save: the tokenizer's files are unknown (load it with rlaif.tokenizer.load)" end
  local kind = tok:kind()
  local base = src.path:gsub("/+$", "")
  local is_dir = core.gz.file_id(base .. "/.") and true or false
  local from = is_dir and base or (base:match("^(.*)/[^/]*$") or ".")
  local files
  if kind == "gguf" then
    return nil, "model:save: the tokenizer was read from a GGUF file; write it with m:save_gguf, or load its " ..
      "tokenizer.json"
  elseif kind == "tokenizer.json" then
    files = { { is_dir and (base .. "/tokenizer.json") or base, "tokenizer.json" } }
  elseif kind == "gpt2" then
    files = { { from .. "/vocab.bpe", "vocab.bpe" }, { from .. "/encoder.json", "encoder.json" } }
  else
    local enc = kind:match("^tiktoken:(.+)$") or "tokenizer"
    files = { { is_dir and (base .. "/" .. enc .. ".tiktoken") or base, enc .. ".tiktoken" } }
  end
  for _, f in ipairs(files) do
    local ok, err = pcall(copy_file, f[1], dir .. "/" .. f[2])
    if not ok or not err then return nil, "model:save: cannot copy the tokenizer " .. f[1] .. ": " .. tostring(err) end
  end
  return true
end

--- m:save(dir [, {tokenizer = tok}]) -> true | nil, message. Writes config.json and
--- model.safetensors (Hugging Face names and layouts); with a tokenizer, its files
--- go beside them, so rlaif.model.load + rlaif.tokenizer.load(dir) (and the
--- `local` LLM backend) work on the directory.
function methods:save(dir, o)
  o = SAVE(o)
  local ok, err = c_save(self, dir)
  if not ok then return ok, err end
  if o.tokenizer then return save_tokenizer(o.tokenizer, dir) end
  return true
end

local GGUF_TYPES = { f32 = 0, f16 = 1, q8_0 = 8, bf16 = 30 }
local SAVE_GGUF = opts.schema("model:save_gguf", {
  tokenizer = { "userdata", required = true }, type = { "string", one_of = { "f32", "f16", "bf16", "q8_0" } },
  name = "string", pre = "string",
})

--- m:save_gguf(path, {tokenizer = tok, type = "f32" | "f16" | "bf16" | "q8_0", name =, pre =})
--- -> true | nil, message
-- One GGUF v3 file llama.cpp (and LM Studio, Ollama, node-llama-cpp) loads: the
-- architecture (gpt2, llama, qwen2), its metadata and tensor names, and the
-- tokenizer. `type` applies to the 2-d weights (norms and biases stay F32);
-- `pre` overrides llama.cpp's pre-tokenizer name. Written atomically.
function methods:save_gguf(path, o)
  if type(path) ~= "string" then error("model:save_gguf: path must be a string", 2) end
  o = SAVE_GGUF(o)
  return self:save_gguf_(path, o.tokenizer, GGUF_TYPES[o.type or "f32"], o.name, o.pre)
end

--- reward_pair_loss(r1, r2, p [, margin [, center]]) -> mean loss, dr1, dr2
-- Soft-label pairwise loss -[p log s(r1-r2-margin) + (1-p) log s(r2-r1+margin)]
-- + center * (r1+r2)^2, averaged over pairs; dr1/dr2 are tensors of gradients.
M.reward_pair_loss = C.reward_pair_loss

--- m:clip_grad_norm(max_norm) -> norm before clipping (global L2 over all gradients)
function methods:clip_grad_norm(max_norm)
  local n = self:grad_norm()
  if max_norm and max_norm > 0 and n > max_norm then self:scale_grads(max_norm / (n + 1e-6)) end
  return n
end

--- m:causal_lm_batch(seqs [, prompt_lens]) -> ids, targets
-- Next-token targets for each row; with prompt_lens[b], the first prompt_lens[b]
-- tokens are context only (targets -100), so the loss covers the response.
function methods:causal_lm_batch(seqs, prompt_lens) -- luacheck: no unused args
  local ids, targets = {}, {}
  for b, s in ipairs(seqs) do
    local t = {}
    local skip = prompt_lens and prompt_lens[b] or 0
    for i = 1, #s - 1 do t[i] = (i >= skip) and s[i + 1] or -100 end
    t[#s] = -100
    ids[b], targets[b] = s, t
  end
  return ids, targets
end

M.methods = methods
return M
