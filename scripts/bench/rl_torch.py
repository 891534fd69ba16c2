#!/usr/bin/python3
"""scripts/bench/rl_torch.py -- the PyTorch side of scripts/bench/rl.lua.

The same work in PyTorch (Debian's python3-torch; the hand-written GPT-2 of
scripts/bench/model_torch.py, float32):
  ppo_step         one PPO step, GPT-2 124M shapes: 16 prompts x 64 tokens, 32 new
                   tokens sampled at temperature 0.9 with a KV cache (rollout); a
                   reward, reference / old-policy log-probabilities and old values
                   under no_grad (score); GAE (gamma 1, lambda 0.95), whitened
                   advantages, the clipped policy loss and clipped value loss
                   (vf_coef 0.1), backward, AdamW on policy and value (update).
                   Best of 2 steps after a warm-up step.
  gen_b16, gen_b64 the rollout alone at batch 16 and 64, best of 2.
Prints one JSON line {"case", "seconds", ..., "peak_rss_mb"}.
Threads: RLAIF_NUM_THREADS (default 2).

Usage: python3 scripts/bench/rl_torch.py CASE
"""
import json
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_torch import GPT  # noqa: E402

torch.set_num_threads(int(os.environ.get("RLAIF_NUM_THREADS", "2")))
torch.manual_seed(0)
V, L, H, C, P = 50257, 12, 12, 768, 1024
CASES = {"ppo_step": (16, 64, 32), "gen_b16": (16, 64, 32), "gen_b64": (64, 64, 32)}
TAU = 0.9


class Value(nn.Module):
    """GPT trunk + a scalar head at every position."""

    def __init__(s, base):
        super().__init__()
        s.base = base
        s.score = nn.Linear(C, 1, bias=False)

    def forward(s, ids):
        x = s.base.wte(ids) + s.base.wpe(torch.arange(ids.shape[1]))
        for b in s.base.h:
            x = b(x)
        return s.score(s.base.lnf(x))[..., 0]


@torch.no_grad()
def rollout(m, prompts, new):
    caches = [{} for _ in range(L)]
    logits = m(prompts, caches)
    out = []
    T = prompts.shape[1]
    for i in range(new):
        probs = F.softmax(logits[:, -1] / TAU, -1)
        nxt = torch.multinomial(probs, 1)
        out.append(nxt)
        if i + 1 < new:
            logits = m(nxt, caches, T + i)
    return torch.cat(out, 1)


def resp_logprobs(m, seq, T0):
    logits = m(seq)[:, T0 - 1:-1] / TAU
    return torch.log_softmax(logits, -1).gather(-1, seq[:, T0:, None])[..., 0]


def ppo_step(policy, ref, value, popt, vopt, prompts, new):
    t0 = time.perf_counter()
    resp = rollout(policy, prompts, new)
    t1 = time.perf_counter()
    seq = torch.cat([prompts, resp], 1)
    T0 = prompts.shape[1]
    with torch.no_grad():
        scores = (resp[:, 0] % 7).float() / 7
        ref_lp = resp_logprobs(ref, seq, T0)
        old_lp = resp_logprobs(policy, seq, T0)
        old_v = value(seq)[:, T0 - 1:-1]
        r = -0.05 * (old_lp - ref_lp)
        r[:, -1] += scores
        adv = torch.zeros_like(r)
        last = 0
        for t in range(new - 1, -1, -1):
            nv = old_v[:, t + 1] if t + 1 < new else 0
            last = r[:, t] + nv - old_v[:, t] + 0.95 * last
            adv[:, t] = last
        ret = adv + old_v
        adv = (adv - adv.mean()) * torch.rsqrt(adv.var() + 1e-8)
    t2 = time.perf_counter()
    lp = resp_logprobs(policy, seq, T0)
    rho = torch.exp(lp - old_lp)
    pl = torch.max(-adv * rho, -adv * rho.clamp(0.8, 1.2)).mean()
    v = value(seq)[:, T0 - 1:-1]
    vc = old_v + (v - old_v).clamp(-0.2, 0.2)
    vl = 0.5 * torch.max((v - ret) ** 2, (vc - ret) ** 2).mean()
    (pl + 0.1 * vl).backward()
    for m, o in ((policy, popt), (value, vopt)):
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        o.step()
        o.zero_grad(set_to_none=True)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def main():
    case = sys.argv[1]
    B, T, new = CASES[case]
    policy = GPT(V, L, H, C, P)
    prompts = torch.randint(0, V, (B, T))
    out = {"case": case}
    if case == "ppo_step":
        ref = GPT(V, L, H, C, P)
        ref.load_state_dict(policy.state_dict())
        for p in ref.parameters():
            p.requires_grad_(False)
        base = GPT(V, L, H, C, P)
        base.load_state_dict(policy.state_dict())
        value = Value(base)
        popt = torch.optim.AdamW(policy.parameters(), lr=1e-5, weight_decay=0)
        vopt = torch.optim.AdamW(value.parameters(), lr=1e-5, weight_decay=0)
        ppo_step(policy, ref, value, popt, vopt, prompts, new)
        best = None
        for _ in range(2):
            t = ppo_step(policy, ref, value, popt, vopt, prompts, new)
            if best is None or sum(t) < sum(best):
                best = t
        out.update(seconds=sum(best), rollout_s=best[0], score_s=best[1], update_s=best[2])
    else:
        rollout(policy, prompts, new)
        best = min(time_it(lambda: rollout(policy, prompts, new)) for _ in range(2))
        out.update(seconds=best, tokens_per_s=B * new / best)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["torch"] = torch.__version__
    print(json.dumps(out))


def time_it(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
