-- rlaif.model: GPT-2 and Llama-family transformers (forward, backward, AdamW) in C.
--
--   local m = rlaif.model.load("checkpoints/gpt2")              -- Hugging Face directory
--   local m = rlaif.model.new{arch = "llama", vocab_size = 8192, n_layer = 4, n_head = 4,
--                             n_kv_head = 2, d_model = 256, d_ff = 688, seed = 1}
--   local logits = m:forward({{1, 2, 3}, {4, 5}})               -- tensor [B, T, V]
--   local loss = m:lm_loss(ids, targets [, mask [, {scale=}]])  -- accumulates gradients
--   m:clip_grad_norm(1.0); m:adamw_step{lr = 3e-4, weight_decay = 0.1}; m:zero_grad()
--   m:param("transformer.h.0.attn.c_attn.weight")               -- view by HF name
--   m:save("out/dir")                                           -- transformers can load it
--
-- Token ids are 0-based values (as tokenizers produce them). A batch is an array
-- of arrays; shorter rows are right-padded with pad_id (or eos_id) and masked.
-- The optional mask has the same shape (1/true = real token). Views returned by
-- m:param / m:grad share the model's memory and keep the model alive.
-- File problems return nil, message (try_load, save); misuse raises.

local core = require "rlaif.core"

local C = core.model
local M = {}
local methods = C.methods

--- new{arch = "gpt2" | "llama" | "qwen2" | "mistral", vocab_size, n_layer, n_head,
---     n_kv_head, d_model, d_ff, head_dim, max_seq, rope_theta, norm_eps,
---     tie_embeddings, qkv_bias, o_bias, head = "lm" | "reward", seed,
---     bos_id, eos_id, pad_id} -> model
function M.new(cfg)
  return C.new(cfg)
end

--- try_load(dir [, {head = "reward"}]) -> model | nil, message
M.try_load = C.load

--- load(dir [, {head = "reward"}]) -> model; raises on any file problem
function M.load(dir, opts)
  local m, err = C.load(dir, opts)
  if not m then error(err, 2) end
  return m
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
