#!/usr/bin/env python3
"""scripts/gen_eval_fixtures.py -- goldens for rlaif.eval (win rates, intervals, length control).

Writes tests/fixtures/eval/CASE.jsonl (judged records with known judge
probabilities) and tests/fixtures/eval/expected.json (the numbers rlaif.eval must
reproduce), computed here independently with numpy and PyTorch:

  balanced     a judge that follows a hidden quality difference, no bias
  ties         p exactly 0.5 for some items (a judge that always picks position 1
               with the same confidence in both orders gives p_ab = 0.7, p_ba = 0.3)
               plus a tie margin case
  position     a one-sided position bias (+1.5 logits for whatever is shown first)
  length       a judge that prefers the longer answer and nothing else, with A
               longer on average: the raw win rate is high, the length-controlled
               rates must come back towards 50%
  harmless     single responses with P(harmless) that grows with the length, and a
               reference (SFT) length shorter than the policy's

Definitions (README "Evaluation"; lua/rlaif/eval.lua):
  outcome(p) = 1 if p > 0.5 + m, 0 if p < 0.5 - m, else 0.5
  win rate = mean outcome; soft = mean p
  LC (App. J): minimise mean(softplus(eta) - y eta) + l2/2 b1^2, eta = b0 + b1 (len_a/len_b - 1),
      y = outcome; LC = sigmoid(b0). Fitted here with torch L-BFGS (float64) and checked
      against a vectorised numpy Newton fit used for the bootstrap.
  AE2: y = p, x = tanh((len_a - len_b) / sd(ddof=1)), eta = b0 + b1 x, LC = sigmoid(b0)
  bootstrap: B resamples of the item indices drawn with splitmix64 exactly as
      rlaif.metrics.rng draws them ((z >> 11) % n), percentile interval
      [sorted[round(alpha/2 B)], sorted[ceil((1 - alpha/2) B)]] (1-based).

Run from the repository root:  /usr/bin/python3 scripts/gen_eval_fixtures.py
"""

import json
import math
import os

import numpy as np
import torch

OUT = "tests/fixtures/eval"
B = 300
L2 = 1e-3
M64 = (1 << 64) - 1


def rng(seed):
    state = [seed & M64]

    def draw(n):
        state[0] = (state[0] + 0x9E3779B97F4A7C15) & M64
        z = state[0]
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        z = z ^ (z >> 31)
        return (z >> 11) % n

    return draw


def outcome(p, m=0.0):
    return np.where(p > 0.5 + m, 1.0, np.where(p < 0.5 - m, 0.0, 0.5))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def newton_fit(u, y, l2=L2):
    """b0, b1 minimising mean(softplus(b0 + b1 u) - y (b0 + b1 u)) + l2/2 b1^2 (numpy)."""
    ybar = y.mean()
    if ybar <= 0:
        return -math.inf
    if ybar >= 1:
        return math.inf
    b = np.array([math.log(ybar / (1 - ybar)), 0.0])
    X = np.stack([np.ones_like(u), u], 1)
    R = np.diag([0.0, l2])
    for _ in range(100):
        s = sigmoid(X @ b)
        g = X.T @ (s - y) / len(y) + R @ b
        H = (X * (s * (1 - s))[:, None]).T @ X / len(y) + R
        step = np.linalg.solve(H, g)
        b = b - step
        if np.abs(step).max() < 1e-14:
            break
    return b[0]


def torch_fit(u, y, l2=L2):
    """The same objective, minimised by torch L-BFGS in float64 (an independent check)."""
    ut, yt = torch.tensor(u, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([b], lr=1, max_iter=500, tolerance_grad=1e-15, tolerance_change=1e-18,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        eta = b[0] + b[1] * ut
        loss = (torch.nn.functional.softplus(eta) - yt * eta).mean() + 0.5 * l2 * b[1] ** 2
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    return float(b[0])


def pred(b0):
    if b0 == math.inf:
        return 1.0
    if b0 == -math.inf:
        return 0.0
    return float(sigmoid(b0))


def percentile(vals, alpha=0.05):
    v = sorted(vals)
    n = len(v)
    lo = max(1, math.floor(alpha / 2 * n + 0.5))
    hi = min(n, math.ceil((1 - alpha / 2) * n))
    return [v[lo - 1], v[hi - 1]]


def ae2_x(la, lb):
    d = la - lb
    sd = d.std(ddof=1) if len(d) > 1 else 0.0
    return np.tanh(d / sd) if sd > 0 else np.zeros_like(d)


def win_numbers(p, p_ab, p_ba, la, lb, m=0.0, seed=1):
    n = len(p)
    ratio = la / np.maximum(lb, 1)
    xt = ae2_x(la, lb)

    def stat(idx):
        y = outcome(p[idx], m)
        return (y.mean(), p[idx].mean(), pred(newton_fit(ratio[idx] - 1, y)),
                pred(newton_fit(xt[idx], p[idx])))

    all_idx = np.arange(n)
    w, s, lc, ae = stat(all_idx)
    # the point estimates once more through torch, independent of the Newton code
    y = outcome(p, m)
    lc_t = pred(torch_fit(ratio - 1, y)) if 0 < y.mean() < 1 else lc
    ae_t = pred(torch_fit(xt, p))
    assert abs(lc - lc_t) < 1e-8, (lc, lc_t)
    assert abs(ae - ae_t) < 1e-8, (ae, ae_t)
    draw = rng(seed)
    W, S, LC, AE = [], [], [], []
    for _ in range(B):
        idx = np.array([draw(n) for _ in range(n)])
        a, b_, c, d = stat(idx)
        W.append(a), S.append(b_), LC.append(c), AE.append(d)
    dis = (p_ab - 0.5) * (p_ba - 0.5) < 0
    first = (dis & (p_ab > 0.5)).sum()
    return {
        "n": n, "win_rate": w, "soft_win_rate": s, "lc_win_rate": lc, "lc_ae2": ae,
        "ties": int((y == 0.5).sum()), "wins": int((y == 1).sum()), "losses": int((y == 0).sum()),
        "ci95": percentile(W), "soft_ci95": percentile(S), "lc_ci95": percentile(LC), "lc_ae2_ci95": percentile(AE),
        "se": float(y.std(ddof=1) / math.sqrt(n)), "disagree": float(dis.mean()),
        "first": float(first / dis.sum()) if dis.sum() > 0 else None,
        "mean_len_a": float(la.mean()), "mean_len_b": float(lb.mean()),
    }


def write_records(name, rows):
    with open(os.path.join(OUT, name + ".jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def pair_case(name, n, rs, quality_scale, bias, length_pref, len_a_mean, len_b_mean, fail_every=0,
              margin=0.0, extra=None):
    qa, qb = rs.normal(0, 1, n), rs.normal(0, 1, n)
    la = np.maximum(1, np.round(rs.normal(len_a_mean, 25, n))).astype(np.int64)
    lb = np.maximum(1, np.round(rs.normal(len_b_mean, 25, n))).astype(np.int64)
    d = quality_scale * (qa - qb) + length_pref * (la / lb - 1)
    p1_ab = sigmoid(d + bias)            # A shown first: P(position 1 is better)
    p1_ba = sigmoid(-d + bias)           # B shown first
    p_ab, p_ba = p1_ab, 1 - p1_ba        # both: P(A is better)
    rows, keep = [], []
    for i in range(n):
        if fail_every and i % fail_every == fail_every - 1:
            rows.append({"id": i + 1, "status": "error", "reason": "http 500", "len_a": int(la[i]),
                         "len_b": int(lb[i])})
            continue
        p = (float(p_ab[i]) + float(p_ba[i])) / 2
        rows.append({"id": i + 1, "status": "ok", "p": p, "p_ab": float(p_ab[i]), "p_ba": float(p_ba[i]),
                     "len_a": int(la[i]), "len_b": int(lb[i])})
        keep.append(i)
    if extra:
        rows = extra(rows)
    write_records(name, rows)
    ok = [r for r in rows if r["status"] == "ok"]
    arr = lambda k: np.array([r[k] for r in ok], dtype=np.float64)
    e = win_numbers(arr("p"), arr("p_ab"), arr("p_ba"), arr("len_a"), arr("len_b"), margin)
    e["failed"] = len(rows) - len(ok)
    e["tie_margin"] = margin
    return e


def main():
    os.makedirs(OUT, exist_ok=True)
    rs = np.random.RandomState(20231)
    expected = {"bootstrap": B, "l2": L2, "cases": {}}
    C = expected["cases"]
    C["balanced"] = pair_case("balanced", 160, rs, 1.2, 0.0, 0.0, 150, 140, fail_every=20)

    def with_ties(rows):
        # a judge that prefers position 1 with 0.7 in both orders: p = (0.7 + 0.3) / 2 = 0.5
        for r in rows[::7]:
            r.update(status="ok", p_ab=0.7, p_ba=0.3, p=0.5)
        return rows
    C["ties"] = pair_case("ties", 120, rs, 1.0, 0.0, 0.0, 140, 140, extra=with_ties)
    # the same records with a tie margin: |p - 0.5| <= 0.05 counts as a tie
    ties = [json.loads(l) for l in open(os.path.join(OUT, "ties.jsonl"))]
    ok = [r for r in ties if r["status"] == "ok"]
    arr = lambda k: np.array([r[k] for r in ok], dtype=np.float64)
    e = win_numbers(arr("p"), arr("p_ab"), arr("p_ba"), arr("len_a"), arr("len_b"), 0.05)
    e["failed"], e["tie_margin"] = 0, 0.05
    C["ties_margin"] = dict(e, file="ties")
    C["position"] = pair_case("position", 150, rs, 0.8, 1.5, 0.0, 140, 140)
    C["length"] = pair_case("length", 200, rs, 0.5, 0.0, 3.0, 190, 140)
    for k in ("balanced", "ties", "position", "length"):
        C[k]["file"] = k

    # harmless rate: P(harmless) = sigmoid(0.02 (len - 150) + noise); reference length 120
    n = 150
    ln = np.maximum(1, np.round(rs.normal(170, 40, n))).astype(np.int64)
    ph = sigmoid(0.02 * (ln - 150) + rs.normal(0, 0.8, n))
    rows = []
    for i in range(n):
        if i % 25 == 24:
            rows.append({"id": i + 1, "status": "unlabeled", "reason": "no label token", "len": int(ln[i])})
        else:
            rows.append({"id": i + 1, "status": "ok", "p": float(ph[i]), "len": int(ln[i])})
    write_records("harmless", rows)
    ok = [r for r in rows if r["status"] == "ok"]
    p = np.array([r["p"] for r in ok])
    L = np.array([r["len"] for r in ok], dtype=np.float64)
    ref = 120.0

    def hstat(idx):
        y = outcome(p[idx])
        return y.mean(), p[idx].mean(), pred(newton_fit(L[idx] / ref - 1, y))

    h, s, lc = hstat(np.arange(len(p)))
    lc_t = pred(torch_fit(L / ref - 1, outcome(p)))
    assert abs(lc - lc_t) < 1e-8, (lc, lc_t)
    draw = rng(1)
    H, S, LC = [], [], []
    for _ in range(B):
        idx = np.array([draw(len(p)) for _ in range(len(p))])
        a, b_, c = hstat(idx)
        H.append(a), S.append(b_), LC.append(c)
    y = outcome(p)
    C["harmless"] = {
        "file": "harmless", "n": len(p), "failed": n - len(p), "ref_length": ref,
        "harmless_rate": h, "soft_harmless_rate": s, "lc_harmless_rate": lc,
        "harmless": int((y == 1).sum()), "harmful": int((y == 0).sum()), "ties": int((y == 0.5).sum()),
        "ci95": percentile(H), "soft_ci95": percentile(S), "lc_ci95": percentile(LC), "mean_len": float(L.mean()),
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    for k, v in C.items():
        print(k, {x: v.get(x) for x in ("n", "win_rate", "lc_win_rate", "lc_ae2", "harmless_rate",
                                         "lc_harmless_rate")})


if __name__ == "__main__":
    main()
