#!/usr/bin/env python3
"""Scaling projection from measured runs (Python 3 standard library only).

    python3 benchmarks/cluster/project.py --runs DIR [DIR ...] --base-ranks 2 --out OUT
        [--rates 10gbit,25gbit,100gbit] [--alpha-us A] [--max-ranks 1024]

DIR: results directories of benchmarks/cluster/run.sh (runs/<rate>/<label>-rep<i>/ with
summary.json from runs made with `--set network.probe=true`).

The cost model of spec section 8, per training step on P ranks:

    dense / fp16 (ring allreduce of n bytes):  T = c + 2(P-1) alpha + 2(P-1)/P n beta
    compressed (ring allgather of b bytes):    T = c + e + P d + (P-1) alpha + (P-1) b beta

c = compute per step, e = encode per step, d = decode per payload (every rank decodes all P
payloads), n and b the bytes each rank hands to MPI, beta = 1/bandwidth, alpha the latency.
c, e, d and b are medians of the runs at --base-ranks (one rank per core there, so compute is
not slowed by oversubscription); alpha and beta come from the vqsgd network probe.

Writes OUT/projection.md, OUT/projection.csv (every P, rate, scheme) and one SVG plot per rate:
  1. model check: predicted against measured time per step at every measured (P, rate);
  2. predicted time per step for P = 2..max at each projection rate, and the crossover: the
     smallest P at which a compressed scheme becomes slower than the dense allreduce.
"""

import argparse
import json
import math
import os
import re
import statistics


def rate_bps(rate):
    m = re.fullmatch(r"([0-9.]+)([kmg]?)(bit|bps)", rate)
    if not m:
        raise SystemExit("project.py: cannot parse rate %r (use e.g. 10gbit)" % rate)
    v = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]
    return v * (8 if m.group(3) == "bps" else 1)


def load_runs(dirs):
    """(ranks, rate, label) -> list of summary dicts of complete runs."""
    out = {}
    for top in dirs:
        base = os.path.join(top, "runs")
        if not os.path.isdir(base):
            raise SystemExit("project.py: %s has no runs/ directory" % top)
        for rate in sorted(os.listdir(base)):
            for name in sorted(os.listdir(os.path.join(base, rate))):
                path = os.path.join(base, rate, name, "summary.json")
                try:
                    with open(path) as f:
                        s = json.load(f)
                except (OSError, ValueError):
                    continue
                if s.get("status") != "complete":
                    continue
                label = re.sub(r"-rep[0-9]+$", "", name)
                out.setdefault((s["world_size"], rate, label), []).append(s)
    return out


def per_step(s):
    """Measured per-step seconds of one run: compute, encode, comm, decode."""
    t, steps = s["time"], max(1, s["steps"])
    return {k: t[k + "_s"] / steps for k in ("compute", "encode", "comm", "decode")}


def med(vals):
    return statistics.median(vals) if vals else float("nan")


class Scheme:
    """What the model needs of one scheme, from its runs at the base rank count."""

    def __init__(self, label, runs):
        s0 = runs[0]
        self.label = label
        self.allreduce = s0["comm"].get("collective", "allgather") == "allreduce"
        self.bytes = med([s["comm"]["payload_bytes_per_rank_per_step"] for s in runs])
        self.dense_bytes = s0["comm"]["dense_bytes_per_rank_per_step"]
        ps = [per_step(s) for s in runs]
        p = s0["world_size"]
        self.compute = med([x["compute"] for x in ps])
        self.encode = med([x["encode"] for x in ps])
        # Decoding cost per received payload (each rank decodes all P).
        self.decode_per_payload = med([x["decode"] for x in ps]) / p
        self.accuracy = med([s["final"].get("test_accuracy") or float("nan") for s in runs])

    def step(self, p, alpha, beta):
        """Predicted seconds per step on p ranks."""
        if self.allreduce:
            comm = 2 * (p - 1) * alpha + 2 * (p - 1) / p * self.bytes * beta
            return self.compute + self.encode + comm + self.decode_per_payload
        comm = (p - 1) * alpha + (p - 1) * self.bytes * beta
        return self.compute + self.encode + p * self.decode_per_payload + comm


def probe_of(runs):
    """Median alpha (s) and beta (s/byte) of the runs' network probes."""
    a = [s["network"]["alpha_s"] for s in runs if s.get("network")]
    b = [1.0 / s["network"]["bandwidth_bytes_per_s"] for s in runs if s.get("network")]
    return (med(a), med(b)) if a else (None, None)


def svg_plot(title, series, xs, path):
    """Log-log line plot: series = [(label, [y...]), ...] over xs."""
    w, h, l, r, t, b = 900, 480, 80, 260, 40, 60
    ys = [y for _, v in series for y in v if y > 0]
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    x0, x1 = math.log2(xs[0]), math.log2(xs[-1])
    px = lambda x: l + (math.log2(x) - x0) / (x1 - x0) * (w - l - r)
    py = lambda y: h - b - (math.log10(y) - y0) / max(1e-9, (y1 - y0)) * (h - t - b)
    colors = ["#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
              "#F0E442", "#999999", "#882255"]
    o = ['<?xml version="1.0" encoding="UTF-8"?>',
         '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
         'font-family="sans-serif" font-size="12">' % (w, h, w, h),
         '<rect x="0" y="0" width="%d" height="%d" fill="white"/>' % (w, h),
         '<text x="%d" y="22" text-anchor="middle" font-size="15">%s</text>' % ((w - r + l) // 2, esc(title))]
    for x in xs:
        o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (px(x), t, px(x), h - b))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (px(x), h - b + 16, x))
    for e in range(y0, y1 + 1):
        y = 10.0 ** e
        o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (l, py(y), w - r, py(y)))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (l - 6, py(y) + 4, "%g ms" % (y * 1e3)))
    o.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>' % (l, t, w - l - r, h - t - b))
    o.append('<text x="%d" y="%d" text-anchor="middle">ranks (log scale)</text>' % ((w - r + l) // 2, h - 18))
    o.append('<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">predicted time per step</text>' % ((h - b + t) // 2, (h - b + t) // 2))
    for i, (label, v) in enumerate(series):
        c = colors[i % len(colors)]
        pts = " ".join("%.1f,%.1f" % (px(x), py(y)) for x, y in zip(xs, v) if y > 0)
        dash = ' stroke-dasharray="6 3"' if i == 0 else ""
        o.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>' % (pts, c, dash))
        o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>' % (w - r + 12, t + 10 + 18 * i, w - r + 30, t + 10 + 18 * i, c, dash))
        o.append('<text x="%d" y="%d">%s</text>' % (w - r + 36, t + 14 + 18 * i, esc(label)))
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--base-ranks", type=int, default=2)
    ap.add_argument("--base-rate", default=None, help="rate whose runs give c, e, d (default: the fastest)")
    ap.add_argument("--rates", default="10gbit,25gbit,100gbit")
    ap.add_argument("--alpha-us", type=float, default=None, help="latency for the projection (default: probed)")
    ap.add_argument("--max-ranks", type=int, default=1024)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    runs = load_runs(a.runs)
    if not runs:
        raise SystemExit("project.py: no complete runs found")
    rates_measured = sorted({r for _, r, _ in runs}, key=rate_bps)
    base_rate = a.base_rate or rates_measured[-1]
    labels = []
    for (p, r, l) in sorted(runs):
        if l not in labels:
            labels.append(l)
    order = list(labels)
    labels.sort(key=lambda l: (l != "dense", order.index(l)))
    schemes = {}
    for l in labels:
        rs = runs.get((a.base_ranks, base_rate, l))
        if rs:
            schemes[l] = Scheme(l, rs)
    if "dense" not in schemes:
        raise SystemExit("project.py: no dense runs at %d ranks and %s" % (a.base_ranks, base_rate))
    md = ["# Scaling projection", ""]
    md.append("Model of spec section 8 per step: dense/fp16 `c + 2(P-1) alpha + 2(P-1)/P n beta`; "
              "compressed `c + e + P d + (P-1) alpha + (P-1) b beta` (every rank decodes all P payloads). "
              "`c` (compute), `e` (encode), `d` (decode per payload) and the bytes per rank per step "
              "`n`, `b` are medians of the %d-rank runs at %s; alpha and beta come from the vqsgd "
              "network probe of each run." % (a.base_ranks, base_rate))
    md += ["", "## Inputs (measured at %d ranks, %s)" % (a.base_ranks, base_rate), "",
           "| scheme | collective | bytes/rank/step | compute ms | encode ms | decode ms per payload | final accuracy |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for s in schemes.values():
        md.append("| %s | %s | %.0f | %.3f | %.3f | %.4f | %.4f |" % (
            s.label, "allreduce" if s.allreduce else "allgather", s.bytes, 1e3 * s.compute,
            1e3 * s.encode, 1e3 * s.decode_per_payload, s.accuracy))

    # 1. Model check against every measured point.
    md += ["", "## Model check: predicted vs measured time per step", "",
           "Measured = compute + encode + comm + decode per step (mean over ranks, median over repetitions); "
           "predicted from the inputs above with the probe's alpha and beta at that rate and rank count.", "",
           "The last two columns use the nominal link rate instead of the probed bandwidth "
           "(the probe fits beta from 1 MB allgathers, which may see less than the link rate).", "",
           "| ranks | rate | probed alpha us | probed bandwidth MB/s | scheme | measured ms | predicted ms | predicted / measured | predicted at link rate ms | ratio |",
           "| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    check_rows = []
    for (p, r, l), rs in sorted(runs.items(), key=lambda kv: (kv[0][0], rate_bps(kv[0][1]), labels.index(kv[0][2]))):
        if l not in schemes:
            continue
        alpha, beta = probe_of(rs)
        if alpha is None:
            continue
        measured = med([sum(per_step(s).values()) for s in rs])
        predicted = schemes[l].step(p, alpha, beta)
        nominal = schemes[l].step(p, alpha, 8.0 / rate_bps(r))
        check_rows.append((p, r, l, measured, predicted))
        md.append("| %d | %s | %.1f | %.1f | %s | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
            p, r, alpha * 1e6, 1e-6 / beta, l, 1e3 * measured, 1e3 * predicted, predicted / measured,
            1e3 * nominal, nominal / measured))

    # 2. Projection.
    alphas = {}
    for (p, r, l), rs in runs.items():
        al, _ = probe_of(rs)
        if al is not None:
            alphas.setdefault(r, []).append(al)
    probed_alpha = med([x for v in alphas.values() for x in v])
    alpha = a.alpha_us * 1e-6 if a.alpha_us is not None else probed_alpha
    ps = [2 ** k for k in range(1, int(math.log2(a.max_ranks)) + 1)]
    csv_rows = ["rate,ranks,scheme,predicted_step_s"]
    md += ["", "## Projection: predicted time per step (ms), alpha = %.1f us%s" % (
        alpha * 1e6, " (probed on the simulated network)" if a.alpha_us is None else ""), ""]
    md.append("Crossover: the smallest P at which the scheme is slower than the dense allreduce "
              "(\"never\" up to %d; \"always\" when it is slower already at 2)." % a.max_ranks)
    for rate in a.rates.split(","):
        beta = 8.0 / rate_bps(rate)
        md += ["", "### %s" % rate, "",
               "| scheme | " + " | ".join("P=%d" % p for p in ps) + " | crossover |",
               "| --- | " + " | ".join("---:" for _ in ps) + " | ---: |"]
        series = []
        dense = [schemes["dense"].step(p, alpha, beta) for p in ps]
        for s in schemes.values():
            ys = [s.step(p, alpha, beta) for p in ps]
            series.append((s.label, ys))
            for p, y in zip(ps, ys):
                csv_rows.append("%s,%d,%s,%.6g" % (rate, p, s.label, y))
            if s.label == "dense":
                cross = "-"
            else:
                slower = [p for p, y, dn in zip(ps, ys, dense) if y > dn]
                cross = "never" if not slower else ("always" if slower[0] == ps[0] else str(slower[0]))
            md.append("| %s | " % s.label + " | ".join("%.3g" % (1e3 * y) for y in ys) + " | %s |" % cross)
        svg = "projection-%s.svg" % rate
        svg_plot("predicted time per step at %s, alpha %.0f us" % (rate, alpha * 1e6), series, ps,
                 os.path.join(a.out, svg))
        md += ["", "![%s](%s)" % (svg, svg)]
    with open(os.path.join(a.out, "projection.csv"), "w") as f:
        f.write("\n".join(csv_rows) + "\n")
    with open(os.path.join(a.out, "projection.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
