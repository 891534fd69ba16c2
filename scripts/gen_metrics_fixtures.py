#!/usr/bin/python3
"""scripts/gen_metrics_fixtures.py -- independent values for rlaif.metrics.

Writes tests/fixtures/metrics/metrics.json: label files (lists of labeler
records) and what numpy computes for them, from the definitions, not from
lua/rlaif/metrics.lua:
  agreement   on the ids both files labeled ok (status "ok" and a number p):
              n = pairs where neither p is exactly 0.5; agree = same side of 0.5;
              rate = agree / n; Cohen's kappa from the 2x2 confusion matrix of
              those n pairs, (p_o - p_e) / (1 - p_e) with p_e = sum over the two
              classes of the product of the marginals (1 when p_e = 1);
              mean_abs_diff = mean |p_a - p_b| over ALL ids both labeled ok
              (ties included).
  alignment   z_acc = share of ok records with a human label (1|2) whose
              argmax (p > 0.5 -> 1, p < 0.5 -> 2, 0.5 -> no side) equals it, with
              and without the confidence filter {1, 2, 8, 9}.
  bootstrap   the percentile interval of the mean over resamples drawn with the
              generator rlaif.metrics documents (splitmix64 from the seed, index =
              (z >> 11) % N), written here from the splitmix64 definition; lo is
              the round(alpha/2 B)-th smallest resampled mean, hi the
              ceil((1 - alpha/2) B)-th.
  coverage    how often that interval for the mean of 80 Bernoulli(0.3) draws
              contains 0.3, by a numpy simulation (the answer the spec's own
              simulation with rlaif's generator must reproduce).

Usage: /usr/bin/python3 scripts/gen_metrics_fixtures.py   (needs python3-numpy)
"""
import json
import math
import os

import numpy as np

MASK = (1 << 64) - 1


def splitmix(seed):
    s = seed & MASK

    def draw(n):
        nonlocal s
        s = (s + 0x9E3779B97F4A7C15) & MASK
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        return (z >> 11) % n   # 0-based
    return draw


def side(p):
    return 1 if p > 0.5 else (2 if p < 0.5 else 0)


def agreement(a, b):
    ok_b = {r["id"]: r["p"] for r in b if r.get("status") == "ok" and isinstance(r.get("p"), float)}
    pa, pb = [], []
    for r in a:
        if r.get("status") == "ok" and isinstance(r.get("p"), float) and r["id"] in ok_b:
            pa.append(r["p"])
            pb.append(ok_b[r["id"]])
    pa, pb = np.array(pa), np.array(pb)
    sa = np.array([side(p) for p in pa], dtype=int)
    sb = np.array([side(p) for p in pb], dtype=int)
    keep = (sa != 0) & (sb != 0)
    x, y = sa[keep], sb[keep]
    n = int(keep.sum())
    out = {"n": n, "agree": int((x == y).sum()), "both_ok": int(len(pa))}
    if n:
        conf = np.zeros((2, 2))
        for i, j in zip(x, y):
            conf[i - 1, j - 1] += 1
        conf /= n
        po = np.trace(conf)
        pe = float(conf.sum(axis=1) @ conf.sum(axis=0))
        out["rate"] = float(po)
        out["kappa"] = float((po - pe) / (1 - pe)) if pe < 1 else 1.0
    if len(pa):
        out["mean_abs_diff"] = float(np.mean(np.abs(pa - pb)))
    return out


def alignment(recs, confidence):
    hits = []
    for r in recs:
        if r.get("status") != "ok" or not isinstance(r.get("p"), float):
            continue
        if r.get("human") not in (1, 2):
            continue
        if confidence and r.get("confidence") not in (1, 2, 8, 9):
            continue
        hits.append(1 if side(r["p"]) == r["human"] else 0)
    return {"n": len(hits), "correct": int(sum(hits)), "z_acc": float(np.mean(hits)) if hits else None}


def bootstrap(values, B, alpha, seed):
    draw = splitmix(seed)
    v = np.array(values, dtype=float)
    N = len(v)
    means = np.empty(B)
    for b in range(B):
        idx = [draw(N) for _ in range(N)]
        means[b] = v[idx].sum() / N
    means.sort()
    lo = means[max(1, math.floor(alpha / 2 * B + 0.5)) - 1]
    hi = means[min(B, math.ceil((1 - alpha / 2) * B)) - 1]
    return [float(lo), float(hi)]


def coverage(rng, reps=20000, N=80, B=250, p=0.3, alpha=0.05):
    """How often the percentile interval (the rule above) of the mean of N
    Bernoulli(p) draws contains p, by simulation with numpy's generator: the
    known answer the spec's own simulation is held to."""
    hit = 0
    for _ in range(reps):
        v = (rng.random(N) < p).astype(float)
        m = np.sort(v[rng.integers(0, N, (B, N))].mean(axis=1))
        lo = m[max(1, math.floor(alpha / 2 * B + 0.5)) - 1]
        hi = m[min(B, math.ceil((1 - alpha / 2) * B)) - 1]
        hit += lo <= p <= hi
    c = hit / reps
    return {"N": N, "B": B, "p": p, "alpha": alpha, "reps": reps, "coverage": c,
            "sd": math.sqrt(c * (1 - c) / reps)}


def records(rng, n, tie_share, error_share, with_human):
    out = []
    for i in range(n):
        u = rng.random()
        if u < error_share:
            out.append({"id": "x%d" % i, "status": "error"})
            continue
        if rng.random() < tie_share:
            p = 0.5
        else:
            p = float(np.round(rng.random(), 6))
            if p == 0.5:
                p = 0.25
        r = {"id": "x%d" % i, "status": "ok", "p": p, "confidence": int(rng.integers(1, 10))}
        if with_human:
            r["human"] = int(rng.integers(1, 3)) if rng.random() > 0.1 else None
            if r["human"] is None:
                del r["human"]
        out.append(r)
    return out


def main():
    rng = np.random.default_rng(20260117)
    cases = []
    for k, (n, tie, err) in enumerate([(40, 0.0, 0.0), (120, 0.1, 0.05), (300, 0.2, 0.1), (25, 0.5, 0.0)]):
        a = records(rng, n, tie, err, True)
        b = records(rng, n, tie, err, False)
        # b labels a correlated version of a's preferences, in another order, with ids a lacks
        for ra, rb in zip(a, b):
            if ra.get("status") == "ok" and rb.get("status") == "ok" and rng.random() < 0.7 and rb["p"] != 0.5:
                rb["p"] = float(np.round(min(1.0, max(0.0, ra["p"] + rng.normal(0, 0.15))), 6))
                if rb["p"] == 0.5:
                    rb["p"] = 0.75
        rng.shuffle(b)
        b.append({"id": "only_b", "status": "ok", "p": 0.9})
        cases.append({"name": "case%d" % (k + 1), "a": a, "b": b, "agreement": agreement(a, b),
                      "alignment": alignment(a, False), "alignment_hc": alignment(a, True)})
    boots = []
    for k, (N, p, B, alpha, seed) in enumerate([(50, 0.7, 400, 0.05, 7), (23, 0.3, 1000, 0.05, 1),
                                                (200, 0.55, 300, 0.1, 12345)]):
        vals = [int(x) for x in (rng.random(N) < p)]
        boots.append({"values": vals, "n": B, "alpha": alpha, "seed": seed, "ci": bootstrap(vals, B, alpha, seed)})
    # a non-binary statistic input too: soft labels
    vals = [float(np.round(x, 4)) for x in rng.random(31)]
    boots.append({"values": vals, "n": 500, "alpha": 0.05, "seed": 99, "ci": bootstrap(vals, 500, 0.05, 99)})
    out = {"generator": "scripts/gen_metrics_fixtures.py (numpy %s)" % np.__version__, "cases": cases,
           "bootstrap": boots, "coverage": coverage(np.random.default_rng(17))}
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    d = os.path.join(root, "tests", "fixtures", "metrics")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "metrics.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote tests/fixtures/metrics/metrics.json: %d agreement cases, %d bootstrap cases" % (len(cases),
                                                                                                 len(boots)))


if __name__ == "__main__":
    main()
