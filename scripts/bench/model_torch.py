#!/usr/bin/python3
"""scripts/bench/model_torch.py -- the PyTorch side of scripts/bench/model.lua.

The same models and work as the rlaif benchmark, written directly in PyTorch
(Debian's python3-torch 1.13; transformers is not needed):
  train  CASE=gpt2_124m|small  one step = forward + backward + AdamW, float32;
         also forward_s, backward_s, adamw_s: each phase's median
  gen    CASE=gen_b1|gen_b16|gen_b64    greedy decoding with a KV cache
         CASE=gen_b1_bf16|gen_b16_bf16  the same, the model in torch.bfloat16
Prints one JSON line: {"case", "seconds" (median step or whole generation),
"tokens_per_s", "peak_rss_mb"}. Threads: RLAIF_NUM_THREADS (default 2).

Usage: python3 scripts/bench/model_torch.py CASE [steps]
"""
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get("RLAIF_NUM_THREADS", "2")))
torch.manual_seed(0)


class Block(nn.Module):
    def __init__(s, C, H):
        super().__init__()
        s.H = H
        s.ln1, s.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        s.qkv, s.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        s.fc, s.fcproj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(s, x, cache=None):
        B, T, C = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(C, dim=-1)
        sh = lambda t: t.view(B, T, s.H, C // s.H).transpose(1, 2)  # noqa: E731
        q, k, v = sh(q), sh(k), sh(v)
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        S = k.shape[2]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(C // s.H)
        mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + s.proj(y)
        return x + s.fcproj(F.gelu(s.fc(s.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(s, V, L, H, C, P):
        super().__init__()
        s.wte, s.wpe = nn.Embedding(V, C), nn.Embedding(P, C)
        s.h = nn.ModuleList([Block(C, H) for _ in range(L)])
        s.lnf = nn.LayerNorm(C)

    def forward(s, ids, caches=None, pos0=0):
        T = ids.shape[1]
        x = s.wte(ids) + s.wpe(torch.arange(pos0, pos0 + T))
        for i, b in enumerate(s.h):
            x = b(x, caches[i] if caches is not None else None)
        return s.lnf(x) @ s.wte.weight.T


CASES = {
    "gpt2_124m": dict(V=50257, L=12, H=12, C=768, P=1024, B=4, T=64),
    "small": dict(V=8192, L=4, H=4, C=256, P=1024, B=16, T=128),
    "gen_b1": dict(V=50257, L=12, H=12, C=768, P=1024, B=1, T=16, new=64),
    "gen_b16": dict(V=50257, L=12, H=12, C=768, P=1024, B=16, T=16, new=64),
    "gen_b64": dict(V=50257, L=12, H=12, C=768, P=1024, B=64, T=16, new=64),
    "gen_b1_bf16": dict(V=50257, L=12, H=12, C=768, P=1024, B=1, T=16, new=64, bf16=True),
    "gen_b16_bf16": dict(V=50257, L=12, H=12, C=768, P=1024, B=16, T=16, new=64, bf16=True),
}


def main():
    case = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    c = CASES[case]
    m = GPT(c["V"], c["L"], c["H"], c["C"], c["P"])
    if c.get("bf16"):
        m = m.to(torch.bfloat16)
    ids = torch.randint(0, c["V"], (c["B"], c["T"]))
    times = []
    if case.startswith("gen"):
        with torch.no_grad():
            for _ in range(2):
                t0 = time.perf_counter()
                caches = [{} for _ in range(c["L"])]
                logits = m(ids, caches)
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                for i in range(c["new"] - 1):
                    logits = m(nxt, caches, c["T"] + i)
                    nxt = logits[:, -1].argmax(-1, keepdim=True)
                times.append(time.perf_counter() - t0)
        sec = min(times)
        tps = c["B"] * c["new"] / sec
    else:
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.1)
        tgt = torch.randint(0, c["V"], (c["B"], c["T"]))
        phases = {"forward_s": [], "backward_s": [], "adamw_s": []}
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(m(ids).view(-1, c["V"]), tgt.view(-1))
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
            times.append(t3 - t0)
            phases["forward_s"].append(t1 - t0)
            phases["backward_s"].append(t2 - t1)
            phases["adamw_s"].append(t3 - t2)
        times = sorted(times[1:])
        sec = times[len(times) // 2]
        tps = c["B"] * c["T"] / sec
        split = {k: sorted(v[1:])[len(v[1:]) // 2] for k, v in phases.items()}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"case": case, "seconds": sec, "tokens_per_s": tps, "peak_rss_mb": rss,
           "torch": torch.__version__, "threads": torch.get_num_threads()}
    if not case.startswith("gen"):
        out.update(split)  # forward (with the loss; zero_grad(set_to_none) is free), backward, AdamW step
    print(json.dumps(out))


if __name__ == "__main__":
    main()
