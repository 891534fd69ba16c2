#!/usr/bin/python3
"""scripts/gen_rl_fixtures.py -- PyTorch reference values for rlaif.rl (issue 9).

Writes tests/fixtures/rl/<family>/ for a small random GPT-2 and Llama:
  policy/, ref/    LM checkpoints (config.json + model.safetensors)
  value/           a *ForSequenceClassification checkpoint (score head): the value model
  golden.safetensors
    ids [B,T], mask [B,T], plen [B], rlen [B], scores [B], group [B],
    old_logprobs [B,T-1], old_values [B,T-1]   (aligned with ids[:, 1:]; 0 off the responses)
    <algo>.loss, <algo>.policy_loss, <algo>.value_loss [1], <algo>.kl [1]
    <algo>.grad.<name> (policy) and <algo>.vgrad.<name> (value) for every parameter
  for algo in reinforce, ppo, rloo, grpo, with the settings in SETTINGS.

The transformer is the hand-written reference of scripts/gen_model_fixtures.py
(imported); the RL conventions are implemented here from the issue's formulas,
independently of src/core/rl.c, with masks and plain loops:
  logp = log_softmax(logits / tau) at the response tokens; k1 = old - ref;
  k3 = exp(ref - logp) - (ref - logp) - 1; shaped r_t = -beta k1_t (+ reward_scale s on
  the last token); values read at the position that predicts each token; means over
  all response tokens of the batch.
Rows have different prompt and response lengths (right padding); tau != 1; the given
old log-probabilities differ from the policy's (rho != 1, some ratios clipped), and
the given old values differ from the value model's (some values clipped).

Usage: /usr/bin/python3 scripts/gen_rl_fixtures.py [outdir]   (needs python3-torch)
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_model_fixtures as gm  # noqa: E402

torch.set_num_threads(1)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures", "rl")

SETTINGS = {"temperature": 0.7, "kl_coef": 0.1, "gamma": 0.9, "lam": 0.95, "cliprange": 0.2,
            "cliprange_value": 0.2, "vf_coef": 0.1, "reward_scale": 0.95}


def make_batch(V, eos, gen):
    plen = [3, 5, 2, 4]
    rlen = [4, 2, 5, 3]
    B, T = len(plen), max(p + r for p, r in zip(plen, rlen))
    ids = torch.full((B, T), eos, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        n = plen[b] + rlen[b]
        ids[b, :n] = torch.randint(0, V - 1, (n,), generator=gen)
        mask[b, :n] = 1
    ids[0, plen[0] + rlen[0] - 1] = eos         # a response that ends with EOS
    rm = torch.zeros(B, T - 1)                  # response mask aligned with ids[:, 1:]
    for b in range(B):
        rm[b, plen[b] - 1:plen[b] - 1 + rlen[b]] = 1
    return ids, mask, rm, plen, rlen


def logprobs(P, cfg, ids, mask, tau):
    logits = gm.logits_of(P, cfg, gm.trunk(P, cfg, ids, mask))
    lp = F.log_softmax(logits / tau, dim=-1)
    return lp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]


def values(P, cfg, ids, mask):
    h = gm.trunk(P, cfg, ids, mask)
    return (h @ P["score.weight"].T)[..., 0][:, :-1]


def masked_mean(x, m):
    return (x * m).sum() / m.sum()


def whiten(x, m):
    n = m.sum()
    mean = (x * m).sum() / n
    var = (((x - mean) ** 2) * m).sum() / (n - 1)
    return (x - mean) * torch.rsqrt(var + 1e-8) * m


def last_index(plen, rlen, b):
    return plen[b] - 1 + rlen[b] - 1


def discounted(r, plen, rlen, gamma):
    G = torch.zeros_like(r)
    for b in range(r.shape[0]):
        acc = 0.0
        for t in range(last_index(plen, rlen, b), plen[b] - 2, -1):
            acc = r[b, t] + gamma * acc
            G[b, t] = acc
    return G


def gae(r, v, plen, rlen, gamma, lam):
    A = torch.zeros_like(r)
    for b in range(r.shape[0]):
        last, t1 = 0.0, last_index(plen, rlen, b)
        for t in range(t1, plen[b] - 2, -1):
            nxt = v[b, t + 1] if t < t1 else 0.0
            delta = r[b, t] + gamma * nxt - v[b, t]
            last = delta + gamma * lam * last
            A[b, t] = last
    return A


def clipped_pg(lp, old, A, eps, m):
    rho = torch.exp(lp - old)
    return torch.max(-A * rho, -A * torch.clamp(rho, 1 - eps, 1 + eps)) * m


def run(name, cfg, vcfg):
    gen = torch.Generator().manual_seed(sum(name.encode()) + 9)
    P0 = gm.make_params(cfg, gen)
    R0 = gm.make_params(cfg, gen)
    V0 = gm.make_params(vcfg, gen, reward=True)
    ids, mask, rm, plen, rlen = make_batch(cfg["vocab_size"], cfg["eos_token_id"], gen)
    B = ids.shape[0]
    s = SETTINGS
    tau, beta = s["temperature"], s["kl_coef"]
    scores = torch.randn(B, generator=gen)
    group = torch.tensor([1, 1, 2, 2])
    with torch.no_grad():
        lp0 = logprobs(P0, cfg, ids, mask, tau)
        v0 = values(V0, vcfg, ids, mask)
        ref = logprobs(R0, cfg, ids, mask, tau) * rm
    old = (lp0 + 0.3 * torch.randn(lp0.shape, generator=gen)) * rm
    old_v = (v0 + 0.4 * torch.randn(v0.shape, generator=gen)) * rm
    k1 = (old - ref) * rm
    kl_seq = k1.sum(-1)
    gold = {"ids": ids.float(), "mask": mask.float(), "plen": torch.tensor(plen).float(),
            "rlen": torch.tensor(rlen).float(), "scores": scores, "group": group.float(),
            "old_logprobs": old, "old_values": old_v}

    def shaped(kin_beta):
        r = -kin_beta * k1
        for b in range(B):
            r[b, last_index(plen, rlen, b)] += s["reward_scale"] * scores[b]
        return r * rm

    for algo in ("reinforce", "ppo", "rloo", "grpo"):
        P = {k: v.clone().requires_grad_(True) for k, v in P0.items()}
        Vp = {k: v.clone().requires_grad_(True) for k, v in V0.items()}
        lp = logprobs(P, cfg, ids, mask, tau)
        vl = None
        if algo == "reinforce":
            G = discounted(shaped(beta), plen, rlen, s["gamma"])
            V = values(Vp, vcfg, ids, mask)
            A = (G - V.detach()) * rm
            pl = masked_mean(-A * lp, rm)
            vl = 0.5 * masked_mean((V - G) ** 2, rm)
        elif algo == "ppo":
            A = gae(shaped(beta), old_v, plen, rlen, s["gamma"], s["lam"])
            Rt = (A + old_v) * rm
            A = whiten(A, rm)
            pl = masked_mean(clipped_pg(lp, old, A, s["cliprange"], rm), rm)
            V = values(Vp, vcfg, ids, mask)
            vc = old_v + torch.clamp(V - old_v, -s["cliprange_value"], s["cliprange_value"])
            vl = 0.5 * masked_mean(torch.max((V - Rt) ** 2, (vc - Rt) ** 2), rm)
        elif algo == "rloo":
            x = s["reward_scale"] * scores - beta * kl_seq
            a = torch.zeros(B)
            for b in range(B):
                others = [j for j in range(B) if group[j] == group[b] and j != b]
                a[b] = x[b] - x[others].mean()
            A = a[:, None] * rm
            pl = masked_mean(clipped_pg(lp, old, A, s["cliprange"], rm), rm)
        else:  # grpo
            a = torch.zeros(B)
            for b in range(B):
                g = scores[group == group[b]]
                a[b] = (scores[b] - g.mean()) / (g.std() + 1e-4)
            A = a[:, None] * rm
            d = ref - lp
            k3 = torch.exp(d) - d - 1
            pl = masked_mean(clipped_pg(lp, old, A, s["cliprange"], rm) + beta * k3, rm)
        loss = pl + (s["vf_coef"] * vl if vl is not None else 0)
        loss.backward()
        gold[algo + ".loss"] = loss.detach().view(1)
        gold[algo + ".policy_loss"] = pl.detach().view(1)
        gold[algo + ".value_loss"] = (vl.detach() if vl is not None else torch.tensor(0.0)).view(1)
        gold[algo + ".kl"] = kl_seq.mean().view(1)
        for k, v in P.items():
            gold[f"{algo}.grad.{k}"] = v.grad.clone()
        if vl is not None:
            for k, v in Vp.items():
                gold[f"{algo}.vgrad.{k}"] = v.grad.clone()
    d = os.path.join(OUT, name)
    for sub, c, p in (("policy", cfg, P0), ("ref", cfg, R0), ("value", vcfg, V0)):
        sd = os.path.join(d, sub)
        os.makedirs(sd, exist_ok=True)
        with open(os.path.join(sd, "config.json"), "w") as f:
            json.dump(c, f, indent=2, sort_keys=True)
        gm.save_safetensors(os.path.join(sd, "model.safetensors"), p)
    gm.save_safetensors(os.path.join(d, "golden.safetensors"), gold)
    with open(os.path.join(d, "settings.json"), "w") as f:
        json.dump(SETTINGS, f, indent=2, sort_keys=True)
    print("wrote", d)


GPT2 = dict(gm.GPT2, vocab_size=29, n_embd=16, n_inner=48, bos_token_id=28, eos_token_id=28)
GPT2_V = dict(GPT2, architectures=["GPT2ForSequenceClassification"], pad_token_id=28,
              id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0})
LLAMA = dict(gm.LLAMA, vocab_size=31, hidden_size=16, intermediate_size=24, num_attention_heads=4,
             num_key_value_heads=2, bos_token_id=1, eos_token_id=30)
LLAMA_V = dict(LLAMA, architectures=["LlamaForSequenceClassification"], pad_token_id=30,
               id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0})

if __name__ == "__main__":
    run("gpt2", GPT2, GPT2_V)
    run("llama", LLAMA, LLAMA_V)
