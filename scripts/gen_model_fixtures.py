#!/usr/bin/python3
"""scripts/gen_model_fixtures.py -- PyTorch reference values for rlaif.model.

Writes tests/fixtures/model/<name>/ for small random configurations:
  config.json            the Hugging Face config (what transformers' save_pretrained writes)
  model.safetensors      weights under Hugging Face names and layouts, or a sharded
                         model-0000k-of-0000n.safetensors + model.safetensors.index.json
  golden.safetensors     F32 reference values (see below)

The reference model is written by hand in PyTorch (transformers is not installed
here) and follows the transformers modules exactly:
  gpt2     GPT2LMHeadModel: Conv1D weights are [in, out] (y = x @ W + b), tanh GELU
           ("gelu_new"), LayerNorm, learned positions, lm_head tied to wte.
  llama    LlamaForCausalLM / Qwen2ForCausalLM: Linear weights [out, in], RMSNorm,
           RoPE with rotate_half, SwiGLU (gate, up, down), grouped-query attention,
           Qwen2's q/k/v biases, llama3 rope scaling.
Names follow transformers' state_dict keys ("transformer.h.0.attn.c_attn.weight",
"model.layers.0.self_attn.q_proj.weight", "lm_head.weight" only when untied,
"score.weight" for *ForSequenceClassification), which is what
PreTrainedModel.from_pretrained matches; config keys are those of GPT2Config /
LlamaConfig / Qwen2Config.

Padding semantics (the same in rlaif): mask 1 = real token; positions count real
tokens (cumsum(mask) - 1, as transformers' generate computes position_ids); a
query attends to keys s <= t with mask[s] = 1; a query with no such key (a left
pad) gets a zero attention output. Targets -100 are ignored.

golden.safetensors holds: ids, mask, targets (as float), logits [B,T,V], loss [1],
grad.<name> for every parameter, step_loss [3] and final.<name> after 3 AdamW steps
(lr 1e-2, betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices and embeddings
only), and for reward fixtures: reward [B], pair_p, pair_loss, grad.<name> of the
pair loss.

Usage: /usr/bin/python3 scripts/gen_model_fixtures.py [outdir]   (needs python3-torch)
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures", "model")

# ---- safetensors writer (the safetensors package is not needed) ----

DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def save_safetensors(path, tensors, dtype=torch.float32):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.detach().to(dtype).contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if dtype in (torch.float16, torch.bfloat16) \
            else t.numpy().tobytes()
        header[name] = {"dtype": DT[dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- reference models ----

def attn_mask(mask):
    """allowed[b, t, s] = s <= t and mask[b, s]; any[b, t] = row has a key."""
    B, T = mask.shape
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    allowed = causal[None] & mask.bool()[:, None, :]
    return allowed, allowed.any(-1)


def attention(q, k, v, mask):
    # q [B,H,T,hd], k/v [B,KV,T,hd]
    B, H, T, hd = q.shape
    rep = H // k.shape[1]
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    allowed, anyk = attn_mask(mask)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    s = s.masked_fill(~allowed[:, None], -1e9)
    p = torch.softmax(s, dim=-1) * anyk[:, None, :, None].float()
    return (p @ v).transpose(1, 2).reshape(B, T, H * hd)


def positions(mask):
    return (mask.long().cumsum(-1) - 1).clamp(min=0) * mask.long()


def gpt2_trunk(P, cfg, ids, mask):
    C, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    B, T = ids.shape
    hd = C // H
    pre = "transformer."
    x = P[pre + "wte.weight"][ids] + P[pre + "wpe.weight"][positions(mask)]
    for i in range(L):
        p = f"{pre}h.{i}."
        h = F.layer_norm(x, (C,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], cfg["layer_norm_epsilon"])
        qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=-1)
        sh = lambda t: t.view(B, T, H, hd).transpose(1, 2)  # noqa: E731
        y = attention(sh(q), sh(k), sh(v), mask)
        x = x + y @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], cfg["layer_norm_epsilon"])
        h = F.gelu(h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + h @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
    return F.layer_norm(x, (C,), P[pre + "ln_f.weight"], P[pre + "ln_f.bias"], cfg["layer_norm_epsilon"])


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def inv_freq(cfg, hd):
    f = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2).float() / hd))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type") == "llama3":
        factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], \
            rs["original_max_position_embeddings"]
        wl = 2 * math.pi / f
        fl = torch.where(wl > old / lo, f / factor, f)
        smooth = (old / wl - lo) / (hi - lo)
        sm = (1 - smooth) * fl / factor + smooth * fl
        med = ~(wl < old / hi) * ~(wl > old / lo)
        f = torch.where(med, sm, fl)
    return f


def rope(x, pos, f, cfg):
    # x [B,h,T,hd]; HF rotate_half
    t = pos.float()
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type") == "linear":
        t = t / rs["factor"]
    ang = t[..., None] * f            # [B,T,hd/2]
    emb = torch.cat([ang, ang], -1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def llama_trunk(P, cfg, ids, mask):
    C, H, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    KV = cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", C // H)
    eps = cfg["rms_norm_eps"]
    B, T = ids.shape
    pos = positions(mask)
    f = inv_freq(cfg, hd)
    x = P["model.embed_tokens.weight"][ids]
    for i in range(L):
        p = f"model.layers.{i}."
        h = rms(x, P[p + "input_layernorm.weight"], eps)
        lin = lambda n, t: t @ P[p + n + ".weight"].T + (P[p + n + ".bias"] if p + n + ".bias" in P else 0)  # noqa
        q = lin("self_attn.q_proj", h).view(B, T, H, hd).transpose(1, 2)
        k = lin("self_attn.k_proj", h).view(B, T, KV, hd).transpose(1, 2)
        v = lin("self_attn.v_proj", h).view(B, T, KV, hd).transpose(1, 2)
        q, k = rope(q, pos, f, cfg), rope(k, pos, f, cfg)
        x = x + lin("self_attn.o_proj", attention(q, k, v, mask))
        h = rms(x, P[p + "post_attention_layernorm.weight"], eps)
        h = F.silu(lin("mlp.gate_proj", h)) * lin("mlp.up_proj", h)
        x = x + lin("mlp.down_proj", h)
    return rms(x, P["model.norm.weight"], eps)


def logits_of(P, cfg, hidden):
    if "lm_head.weight" in P:
        return hidden @ P["lm_head.weight"].T
    emb = P["transformer.wte.weight"] if cfg["model_type"] == "gpt2" else P["model.embed_tokens.weight"]
    return hidden @ emb.T


def trunk(P, cfg, ids, mask):
    return (gpt2_trunk if cfg["model_type"] == "gpt2" else llama_trunk)(P, cfg, ids, mask)


# ---- parameters ----

def make_params(cfg, gen, reward=False):
    P = {}
    rn = lambda *s: torch.randn(*s, generator=gen) * 0.2  # noqa: E731 (large, so goldens are not trivial)
    near1 = lambda n: 1 + 0.1 * torch.randn(n, generator=gen)  # noqa: E731
    if cfg["model_type"] == "gpt2":
        V, C, L, Fd = cfg["vocab_size"], cfg["n_embd"], cfg["n_layer"], cfg["n_inner"]
        t = "transformer."
        P[t + "wte.weight"] = rn(V, C)
        P[t + "wpe.weight"] = rn(cfg["n_positions"], C)
        for i in range(L):
            p = f"{t}h.{i}."
            P[p + "ln_1.weight"], P[p + "ln_1.bias"] = near1(C), rn(C)
            P[p + "attn.c_attn.weight"], P[p + "attn.c_attn.bias"] = rn(C, 3 * C), rn(3 * C)
            P[p + "attn.c_proj.weight"], P[p + "attn.c_proj.bias"] = rn(C, C), rn(C)
            P[p + "ln_2.weight"], P[p + "ln_2.bias"] = near1(C), rn(C)
            P[p + "mlp.c_fc.weight"], P[p + "mlp.c_fc.bias"] = rn(C, Fd), rn(Fd)
            P[p + "mlp.c_proj.weight"], P[p + "mlp.c_proj.bias"] = rn(Fd, C), rn(C)
        P[t + "ln_f.weight"], P[t + "ln_f.bias"] = near1(C), rn(C)
    else:
        V, C, L, Fd = cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
        H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        hd = cfg.get("head_dim", C // H)
        qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
        o_bias = cfg["model_type"] != "qwen2" and cfg.get("attention_bias", False)
        P["model.embed_tokens.weight"] = rn(V, C)
        for i in range(L):
            p = f"model.layers.{i}."
            P[p + "input_layernorm.weight"] = near1(C)
            for n, o in (("q", H * hd), ("k", KV * hd), ("v", KV * hd)):
                P[p + f"self_attn.{n}_proj.weight"] = rn(o, C)
                if qkv_bias:
                    P[p + f"self_attn.{n}_proj.bias"] = rn(o)
            P[p + "self_attn.o_proj.weight"] = rn(C, H * hd)
            if o_bias:
                P[p + "self_attn.o_proj.bias"] = rn(C)
            P[p + "post_attention_layernorm.weight"] = near1(C)
            P[p + "mlp.gate_proj.weight"] = rn(Fd, C)
            P[p + "mlp.up_proj.weight"] = rn(Fd, C)
            P[p + "mlp.down_proj.weight"] = rn(C, Fd)
        P["model.norm.weight"] = near1(C)
    if not reward and not cfg.get("tie_word_embeddings", cfg["model_type"] == "gpt2"):
        P["lm_head.weight"] = rn(cfg["vocab_size"], cfg.get("n_embd", cfg.get("hidden_size")))
    if reward:
        P["score.weight"] = rn(1, cfg.get("n_embd", cfg.get("hidden_size")))
    return P


def decays(name, t):
    return t.dim() == 2   # matrices and embeddings (score [1, C] too); not norms or biases


# ---- batches ----

def batch(V, gen, eos):
    B, T = 3, 7
    ids = torch.randint(0, V, (B, T), generator=gen)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 5:] = 0            # right padding (pad = eos)
    ids[1, 4] = eos            # the last real token is eos too
    ids[1, 5:] = eos
    mask[2, :3] = 0            # left padding
    ids[2, :3] = eos
    targets = torch.full((B, T), -100, dtype=torch.long)
    targets[:, :-1] = ids[:, 1:]
    targets[mask == 0] = -100
    targets[:, :-1][mask[:, 1:] == 0] = -100
    return ids, mask, targets


def run_lm(name, cfg, dtype=torch.float32, shards=1):
    gen = torch.Generator().manual_seed(sum(name.encode()) + 7)
    P0 = make_params(cfg, gen)
    # round to the on-disk dtype first, so references use exactly the stored values
    P0 = {k: v.to(dtype).to(torch.float32) for k, v in P0.items()}
    ids, mask, targets = batch(cfg["vocab_size"], gen, cfg["eos_token_id"])
    P = {k: v.clone().requires_grad_(True) for k, v in P0.items()}
    logits = logits_of(P, cfg, trunk(P, cfg, ids, mask))
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-100)
    loss.backward()
    gold = {"ids": ids.float(), "mask": mask.float(), "targets": targets.float(),
            "logits": logits.detach(), "loss": loss.detach().view(1)}
    for k, v in P.items():
        gold["grad." + k] = v.grad.clone()
    # 3 AdamW steps on the same batch
    P = {k: v.clone().requires_grad_(True) for k, v in P0.items()}
    groups = [{"params": [v for k, v in P.items() if decays(k, v)], "weight_decay": 0.1},
              {"params": [v for k, v in P.items() if not decays(k, v)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.95), eps=1e-8, foreach=False)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        lg = logits_of(P, cfg, trunk(P, cfg, ids, mask))
        ls = F.cross_entropy(lg.view(-1, lg.shape[-1]), targets.view(-1), ignore_index=-100)
        ls.backward()
        opt.step()
        losses.append(ls.item())
    gold["step_loss"] = torch.tensor(losses)
    for k, v in P.items():
        gold["final." + k] = v.detach().clone()
    write(name, cfg, P0, gold, dtype, shards)


def run_reward(name, cfg):
    gen = torch.Generator().manual_seed(99)
    P0 = make_params(cfg, gen, reward=True)
    ids, mask, _ = batch(cfg["vocab_size"], gen, cfg["eos_token_id"])
    P = {k: v.clone().requires_grad_(True) for k, v in P0.items()}
    h = trunk(P, cfg, ids, mask)
    last = mask.shape[1] - 1 - mask.flip(-1).argmax(-1)     # last real token
    r = (h[torch.arange(h.shape[0]), last] @ P["score.weight"].T).view(-1)
    # pairs (0, 1) and (2, 0) with soft labels, margin 0.1, centering 0.01
    r1, r2 = r[torch.tensor([0, 2])], r[torch.tensor([1, 0])]
    p = torch.tensor([0.8, 0.3])
    d = r1 - r2 - 0.1
    loss = (-(p * F.logsigmoid(d) + (1 - p) * F.logsigmoid(-d)) + 0.01 * (r1 + r2) ** 2).mean()
    loss.backward()
    gold = {"ids": ids.float(), "mask": mask.float(), "reward": r.detach(), "pair_p": p,
            "pair_loss": loss.detach().view(1)}
    for k, v in P.items():
        gold["grad." + k] = v.grad.clone()
    write(name, cfg, P0, gold, torch.float32, 1)


def write(name, cfg, P0, gold, dtype, shards):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    if shards == 1:
        save_safetensors(os.path.join(d, "model.safetensors"), P0, dtype)
    else:
        names = list(P0)
        per = (len(names) + shards - 1) // shards
        wm = {}
        for s in range(shards):
            fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {k: P0[k] for k in names[s * per:(s + 1) * per]}
            save_safetensors(os.path.join(d, fn), part, dtype)
            wm.update({k: fn for k in part})
        total = sum(v.numel() * v.element_size() for v in P0.values())
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)
    save_safetensors(os.path.join(d, "golden.safetensors"), gold)
    print("wrote", d)


GPT2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 61, "n_positions": 16,
        "n_ctx": 16, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": 128, "layer_norm_epsilon": 1e-5,
        "activation_function": "gelu_new", "bos_token_id": 60, "eos_token_id": 60, "tie_word_embeddings": True}
LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 67, "hidden_size": 32,
         "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": "silu",
         "tie_word_embeddings": False, "attention_bias": False, "bos_token_id": 1, "eos_token_id": 2,
         "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8}}
QWEN2 = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": 53, "hidden_size": 32,
         "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
         "head_dim": 12, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
         "hidden_act": "silu", "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 52}
GPT2_RM = dict(GPT2, architectures=["GPT2ForSequenceClassification"], pad_token_id=60,
               id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0})

if __name__ == "__main__":
    run_lm("gpt2", GPT2)
    run_lm("llama_gqa", LLAMA, dtype=torch.float16, shards=2)
    run_lm("qwen2_tied", QWEN2, dtype=torch.bfloat16)
    run_reward("gpt2_reward", GPT2_RM)
