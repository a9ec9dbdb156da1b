#!/usr/bin/env python3
"""Tables for benchmarks/cluster/run.sh (Python 3 standard library only).

Joins the per-run rows of jobs/lib/collect.py with the harness's own record of each run
(rate, repetition, exit code, wall time, machine load) into runs.csv, then writes
results.csv and results.md: per (rate, scheme) the median, min and max of the training
time and its split, the traffic, the final accuracy, the speed-up over dense at the same
rate, and the calibration table.
"""

import argparse
import csv
import os
import re
import statistics


def rate_bps(rate):
    m = re.fullmatch(r"([0-9.]+)([kmg]?)(bit|bps)", rate)
    if not m:
        return float("nan")
    v = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]
    return v * (8 if m.group(3) == "bps" else 1)


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def stats(vals):
    v = [x for x in vals if x is not None]
    if not v:
        return None, None, None
    return statistics.median(v), min(v), max(v)


def fmt(x, digits=3):
    if x is None:
        return ""
    if abs(x) >= 1000:
        return "%.0f" % x
    return ("%." + str(digits) + "g") % x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--collected", required=True)
    ap.add_argument("--meta", required=True, help="run_dir,rate,scheme,rep,exit,wall,load_before,load_after")
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--setup", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    with open(a.collected) as f:
        collected = {os.path.abspath(r["run_dir"]): r for r in csv.DictReader(f)}
    runs = []
    with open(a.meta) as f:
        for line in f:
            d, rate, scheme, rep, rc, wall, lb, la = line.strip().split(",")
            r = dict(collected.get(os.path.abspath(d), {"run_dir": d}))
            r.update(rate=rate, scheme=scheme, rep=rep, exit_code=rc, wall_s=wall,
                     load_before=lb, load_after=la)
            runs.append(r)
    fields = ["rate", "scheme", "rep", "exit_code", "wall_s", "load_before", "load_after"]
    if collected:
        fields += [k for k in next(iter(collected.values())).keys() if k not in fields]
    with open(os.path.join(a.out, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(runs)

    groups = {}
    for r in runs:
        groups.setdefault((r["rate"], r["scheme"]), []).append(r)
    # Per-step milliseconds of each phase, from the run totals.
    for r in runs:
        steps = num(r.get("steps"))
        for ph in ("compute", "encode", "comm", "decode"):
            v = num(r.get(ph + "_s"))
            r[ph + "_ms_per_step"] = 1e3 * v / steps if v is not None and steps else None
        parts = [r[ph + "_ms_per_step"] for ph in ("compute", "encode", "comm", "decode")]
        r["step_ms"] = sum(parts) if all(x is not None for x in parts) else None
    metrics = ["total_s", "comm_s", "compute_s", "encode_s", "decode_s", "wall_s",
               "time_to_target_s", "step_ms", "compute_ms_per_step", "encode_ms_per_step",
               "comm_ms_per_step", "decode_ms_per_step"]
    rows = []
    dense_total = {}
    for (rate, scheme), rs in groups.items():
        ok = [r for r in rs if r.get("exit_code") == "0" and r.get("status") == "complete"]
        row = {"rate": rate, "scheme": scheme, "runs_ok": len(ok), "runs_failed": len(rs) - len(ok)}
        for m in metrics:
            med, lo, hi = stats([num(r.get(m)) for r in ok])
            row[m + "_median"], row[m + "_min"], row[m + "_max"] = med, lo, hi
        med = row["total_s_median"]
        row["total_spread_pct"] = (100 * (row["total_s_max"] - row["total_s_min"]) / med) if med else None
        t = row["time_to_target_s_median"]
        row["reached"] = sum(1 for r in ok if num(r.get("time_to_target_s")) is not None)
        row["target_spread_pct"] = (100 * (row["time_to_target_s_max"] - row["time_to_target_s_min"]) / t) if t else None
        for k in ["bytes_per_rank_per_step", "compression_ratio", "final_test_accuracy", "world_size", "steps"]:
            row[k] = stats([num(r.get(k)) for r in ok])[0]
        row["load_mean"] = statistics.mean([num(r["load_before"]) for r in rs if num(r["load_before"]) is not None] or [0])
        if scheme == "dense":
            dense_total[rate] = (med, row["time_to_target_s_median"], row["step_ms_median"])
        rows.append(row)
    for row in rows:
        d = dense_total.get(row["rate"], (None, None, None))
        t = row["total_s_median"]
        row["speedup_vs_dense"] = (d[0] / t) if d[0] and t else None
        t = row["time_to_target_s_median"]
        # Only when every repetition reached the target: otherwise the median is not comparable.
        full = row["reached"] == row["runs_ok"] and row["runs_ok"] > 0
        row["target_speedup_vs_dense"] = (d[1] / t) if d[1] and t and full else None
        t = row["step_ms_median"]
        row["step_speedup_vs_dense"] = (d[2] / t) if d[2] and t else None
    rates = []
    for r in runs:
        if r["rate"] not in rates:
            rates.append(r["rate"])
    rows.sort(key=lambda r: (rates.index(r["rate"]), r["scheme"] != "dense", r["scheme"]))

    cols = ["rate", "scheme", "runs_ok", "runs_failed"]
    cols += [m + s for m in metrics for s in ("_median", "_min", "_max")]
    cols += ["total_spread_pct", "speedup_vs_dense", "reached", "target_spread_pct",
             "target_speedup_vs_dense", "step_speedup_vs_dense", "bytes_per_rank_per_step",
             "compression_ratio", "final_test_accuracy", "world_size", "steps", "load_mean"]
    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (fmt(v, 6) if isinstance(v, float) else v) for k, v in r.items() if k in cols})

    md = ["# Simulated-cluster benchmark", ""]
    with open(a.setup) as f:
        md += ["    " + l.rstrip() for l in f]
    md += ["", "## Calibration (dense allreduce vs. bandwidth bound)", "",
           "| rate | ranks | allreduce bytes | bound ms | median ms (min-max) | ratio | allgather B/rank | its bound ms | median ms | load | pass |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    with open(a.calibration) as f:
        for c in csv.DictReader(f):
            md.append("| %s | %s | %s | %s | %s (%s-%s) | %s | %s | %s | %s | %s | %s |" % (
                c["rate"], c["ranks"], c["allreduce_bytes"], c["bound_ms"], c["allreduce_median_ms"],
                c["allreduce_min_ms"], c["allreduce_max_ms"], c["ratio_to_bound"],
                c["allgather_bytes_per_rank"], c["allgather_bound_ms"], c["allgather_median_ms"],
                c["load1"], c["pass"]))
    md += ["", "## Time per step and time to the target accuracy (median over repetitions, min-max in brackets)", "",
           "Per-step phases are the run totals divided by the steps taken (mean over ranks); `step` is",
           "their sum (evaluation excluded). `to target` is the wall time until the first evaluation at",
           "or above `run.target_accuracy` (`reached` counts the repetitions that got there).", "",
           "| rate | scheme | step ms | compute | encode | comm | decode | step speed-up | reached | to target s | spread % | speed-up to target | bytes/rank/step | ratio | final accuracy | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def rng2(m):
            if r[m + "_median"] is None:
                return "-"
            return "%s (%s-%s)" % (fmt(r[m + "_median"]), fmt(r[m + "_min"]), fmt(r[m + "_max"]))
        md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %d/%d | %s | %s | %s | %s | %s | %s | %.2f |" % (
            r["rate"], r["scheme"], rng2("step_ms"), fmt(r["compute_ms_per_step_median"]),
            fmt(r["encode_ms_per_step_median"]), fmt(r["comm_ms_per_step_median"]),
            fmt(r["decode_ms_per_step_median"]), fmt(r["step_speedup_vs_dense"]), r["reached"],
            r["runs_ok"], rng2("time_to_target_s"), fmt(r["target_spread_pct"], 2),
            fmt(r["target_speedup_vs_dense"]), fmt(r["bytes_per_rank_per_step"]),
            fmt(r["compression_ratio"]), fmt(r["final_test_accuracy"]), r["load_mean"]))
    md += ["", "## Whole training runs (median over repetitions, min-max in brackets)", "",
           "| rate | scheme | ok/failed | total s | comm s | compute s | encode s | decode s | spread % | speed-up vs dense | bytes/rank/step | ratio | accuracy | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def rng(m):
            if r[m + "_median"] is None:
                return "-"
            return "%s (%s-%s)" % (fmt(r[m + "_median"]), fmt(r[m + "_min"]), fmt(r[m + "_max"]))
        md.append("| %s | %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f |" % (
            r["rate"], r["scheme"], r["runs_ok"], r["runs_failed"], rng("total_s"), rng("comm_s"),
            fmt(r["compute_s_median"]), fmt(r["encode_s_median"]), fmt(r["decode_s_median"]),
            fmt(r["total_spread_pct"], 2), fmt(r["speedup_vs_dense"]), fmt(r["bytes_per_rank_per_step"]),
            fmt(r["compression_ratio"]), fmt(r["final_test_accuracy"]), r["load_mean"]))
    md += ["", "Bounds assume a ring allreduce (2(p-1)/p x bytes per NIC) and an allgather ((p-1) x bytes",
           "in per NIC) over full-duplex links of the given rate. `load` is the 1-minute load average",
           "before each run; results taken under load > cores are not comparable."]
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
