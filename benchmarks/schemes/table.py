#!/usr/bin/env python3
"""Tabulate the runs of benchmarks/schemes/run.sh (Python 3 standard library only).

    python3 benchmarks/schemes/table.py DIR [--ranks N]

Reads DIR/<group>/<run>/summary.json (and load.txt, run.json) and writes DIR/schemes.md and
DIR/schemes.csv. Within a group, the run whose scheme is `dense` is the reference for the
accuracy difference and the byte ratio. A run without a readable summary.json is listed as
missing, never dropped.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import subprocess


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_of(run_dir):
    try:
        with open(os.path.join(run_dir, "load.txt")) as f:
            vals = [line.split(":", 1)[1].split()[0] for line in f if ":" in line]
        return "/".join(vals)
    except OSError:
        return ""


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--ranks", type=int, default=None)
    a = ap.parse_args()
    rows = []
    # Groups in the order they were run (the order of the cases files on the command line).
    groups_run = [g for g in os.listdir(a.dir)
                  if os.path.isdir(os.path.join(a.dir, g)) and not g.startswith("report-")]
    groups_run.sort(key=lambda g: min((os.path.getmtime(os.path.join(a.dir, g, n))
                                       for n in os.listdir(os.path.join(a.dir, g))), default=0))
    for group in groups_run:
        gdir = os.path.join(a.dir, group)
        runs = []
        # Case order = order of creation (the cases file order).
        names = sorted(os.listdir(gdir), key=lambda n: os.path.getmtime(os.path.join(gdir, n)))
        for name in names:
            rdir = os.path.join(gdir, name)
            if not os.path.isdir(rdir):
                continue
            s = read_json(os.path.join(rdir, "summary.json"))
            runs.append((name, rdir, s))
        dense = next((s for _, _, s in runs if s and s.get("scheme") == "dense"), None)
        for name, rdir, s in runs:
            row = {"group": group, "label": name, "run_dir": os.path.relpath(rdir, a.dir)}
            if not s:
                row["status"] = "missing"
                rows.append(row)
                continue
            f, c, t = s.get("final", {}), s.get("comm", {}), s.get("time", {})
            acc = f.get("test_accuracy")
            row.update(
                status=s.get("status"),
                dataset=s.get("dataset"),
                model=s.get("model"),
                scheme=s.get("scheme"),
                params=s.get("scheme_params"),
                ranks=s.get("world_size"),
                ranks_agree=s.get("ranks_agree"),
                epochs=s.get("epochs"),
                test_accuracy=acc,
                test_loss=f.get("test_loss"),
                mean_predictor_test_loss=f.get("mean_predictor_test_loss"),
                bits_per_rank_per_step=c.get("bits_per_rank_per_step"),
                bytes_per_rank_per_step=c.get("payload_bytes_per_rank_per_step"),
                dense_bytes_per_rank_per_step=c.get("dense_bytes_per_rank_per_step"),
                compression_ratio=c.get("compression_ratio"),
                total_s=t.get("total_s"),
                compute_s=t.get("compute_s"),
                encode_s=t.get("encode_s"),
                comm_s=t.get("comm_s"),
                decode_s=t.get("decode_s"),
                load=load_of(rdir),
            )
            if dense and acc is not None and dense["final"].get("test_accuracy") is not None:
                row["delta_pp"] = 100.0 * (acc - dense["final"]["test_accuracy"])
            rows.append(row)

    cols = ["group", "label", "status", "dataset", "model", "scheme", "params", "ranks",
            "ranks_agree", "epochs", "test_accuracy", "delta_pp", "test_loss",
            "mean_predictor_test_loss", "bits_per_rank_per_step", "bytes_per_rank_per_step",
            "dense_bytes_per_rank_per_step", "compression_ratio", "total_s", "compute_s",
            "encode_s", "comm_s", "decode_s", "load", "run_dir"]
    with open(os.path.join(a.dir, "schemes.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)

    commit = ""
    for r in rows:
        info = read_json(os.path.join(a.dir, r["run_dir"], "run.json"))
        if info:
            commit = info.get("git_commit") or ""
            mpi = info.get("mpi_library") or ""
            break
    else:
        mpi = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    out = ["# Schemes side by side", ""]
    out.append(f"Generated by `benchmarks/schemes/run.sh` on {datetime.date.today()}: "
               f"{a.ranks or '?'} MPI ranks on one machine ({os.cpu_count()} cores, {cpu}), "
               f"git commit `{commit[:12]}`, {mpi}.")
    out.append("")
    out.append("`ratio` is dense bytes / bytes this rank hands to MPI per step (payload, "
               "norms and headers included). `Δ` is the accuracy difference to the dense run of "
               "the same table in percentage points. Times are seconds per run, mean over ranks; "
               "`comm` includes waiting for the slowest rank. `load` is the 1-minute load average "
               "before/after the run: with more ranks than cores, times are indicative only.")
    groups = []
    for r in rows:
        if r["group"] not in groups:
            groups.append(r["group"])
    for g in groups:
        grows = [r for r in rows if r["group"] == g]
        first = next((r for r in grows if r.get("dataset")), {})
        if len({r.get("dataset") for r in grows if r.get("dataset")}) > 1:
            out += ["", f"## {g}: several data sets and models", ""]
        else:
            out += ["", f"## {g}: {first.get('model', '?')} on {first.get('dataset', '?')}", ""]
        regression = all(r.get("test_accuracy") is None for r in grows if r.get("status"))
        if regression or g == "real_data":
            out.append("| run | data set / model | scheme | ranks | epochs | test accuracy | test loss | mean-predictor loss | bytes/rank/step | ranks agree |")
            out.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
            for r in grows:
                if r.get("status") == "missing":
                    out.append(f"| {r['label']} | missing | | | | | | | | |")
                    continue
                out.append(f"| {r['label']} | {r['dataset']} / {r['model']} | {r['scheme']} | {r['ranks']} | "
                           f"{fmt(r['epochs'], '.0f')} | {fmt(r['test_accuracy'], '.4f')} | {fmt(r['test_loss'], '.4f')} | "
                           f"{fmt(r['mean_predictor_test_loss'], '.4f')} | {fmt(r['bytes_per_rank_per_step'], ',.0f')} | {r['ranks_agree']} |")
            continue
        out.append("| run | scheme parameters | test accuracy | Δ (pp) | bits/rank/step | bytes/rank/step | ratio | total | compute | encode | comm | decode | ranks agree | load |")
        out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
        for r in grows:
            if r.get("status") == "missing":
                out.append(f"| {r['label']} | missing (no summary.json) | | | | | | | | | | | | |")
                continue
            params = f"{r['scheme']} {r['params']}".replace("|", "\\|")
            out.append(f"| {r['label']} | {params} | {fmt(r['test_accuracy'], '.4f')} | "
                       f"{fmt(r.get('delta_pp'), '+.2f')} | {fmt(r['bits_per_rank_per_step'], ',.0f')} | "
                       f"{fmt(r['bytes_per_rank_per_step'], ',.0f')} | {fmt(r['compression_ratio'], '.1f')}x | "
                       f"{fmt(r['total_s'], '.1f')} | {fmt(r['compute_s'], '.1f')} | {fmt(r['encode_s'], '.2f')} | "
                       f"{fmt(r['comm_s'], '.2f')} | {fmt(r['decode_s'], '.2f')} | {r['ranks_agree']} | {r['load']} |")
    with open(os.path.join(a.dir, "schemes.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {os.path.join(a.dir, 'schemes.md')} and schemes.csv ({len(rows)} runs)")


if __name__ == "__main__":
    main()
