#!/usr/bin/env python3
"""Collect the summary.json of many run directories into one CSV (Python 3 stdlib only).

    python3 jobs/lib/collect.py [--plan PLAN] [--out FILE.csv] RUN_DIR_OR_PARENT...

Every directory that holds a summary.json becomes one row; directories given as parents are
searched recursively. With --plan (a file listing one planned run directory per line, as
jobs/sweep.sh writes it), planned runs without a summary.json get a row with status
"missing", so a failed run shows up in the table instead of vanishing from it.
"""

import argparse
import csv
import json
import os
import sys

COLUMNS = [
    ("run_dir", None),
    ("name", ("name",)),
    ("scheme", ("scheme",)),
    ("scheme_params", ("scheme_params",)),
    ("world_size", ("world_size",)),
    ("status", ("status",)),
    ("ranks_agree", ("ranks_agree",)),
    ("steps", ("steps",)),
    ("epochs", ("epochs",)),
    ("final_test_accuracy", ("final", "test_accuracy")),
    ("final_test_loss", ("final", "test_loss")),
    ("final_train_loss", ("final", "train_loss")),
    ("bytes_per_rank_per_step", ("comm", "payload_bytes_per_rank_per_step")),
    ("dense_bytes_per_rank_per_step", ("comm", "dense_bytes_per_rank_per_step")),
    ("compression_ratio", ("comm", "compression_ratio")),
    ("total_s", ("time", "total_s")),
    ("compute_s", ("time", "compute_s")),
    ("encode_s", ("time", "encode_s")),
    ("comm_s", ("time", "comm_s")),
    ("decode_s", ("time", "decode_s")),
    ("update_s", ("time", "update_s")),
    ("eval_s", ("time", "eval_s")),
    ("time_to_target_s", ("time", "time_to_target_s")),
    ("update_s_total", ("time", "update_s")),
    ("wire_bytes_per_rank_per_step", ("comm", "wire_bytes_per_rank_per_step")),
    ("nodes", None),
    ("mpi_implementation", None),
    ("git_commit", None),
]


def get(d, path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return ""
        d = d[k]
    if d is None:
        return ""
    if isinstance(d, bool):
        return "true" if d else "false"
    return d


def launch_info(run_dir):
    info = {}
    try:
        with open(os.path.join(run_dir, "launch.txt")) as f:
            for line in f:
                k, sep, v = line.partition(": ")
                if sep:
                    info[k.strip()] = v.strip()
    except OSError:
        pass
    return info


def nodes_of(run_dir):
    try:
        with open(os.path.join(run_dir, "nodes.txt")) as f:
            return " ".join(sorted(set(x.strip() for x in f if x.strip())))
    except OSError:
        return ""


def row_for(run_dir):
    path = os.path.join(run_dir, "summary.json")
    info = launch_info(run_dir)
    row = {"run_dir": run_dir, "nodes": nodes_of(run_dir),
           "mpi_implementation": info.get("mpi_implementation", ""),
           "git_commit": info.get("git_commit", "")}
    try:
        with open(path) as f:
            s = json.load(f)
    except FileNotFoundError:
        row["status"] = "missing"
        if info.get("exit_code"):
            row["status"] = "failed (exit %s)" % info["exit_code"]
        return row
    except (OSError, ValueError) as e:
        row["status"] = "unreadable: %s" % e
        return row
    for col, p in COLUMNS:
        if p is not None:
            row[col] = get(s, p)
    return row


def find_runs(paths):
    runs = []
    for p in paths:
        if os.path.isfile(os.path.join(p, "summary.json")):
            runs.append(p)
            continue
        if not os.path.isdir(p):
            sys.exit("collect.py: %s is not a directory" % p)
        for d, _dirs, files in sorted(os.walk(p)):
            if "summary.json" in files:
                runs.append(d)
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--plan", help="file with one planned run directory per line")
    ap.add_argument("--out", help="CSV file (default: stdout)")
    a = ap.parse_args()
    runs = []
    if a.plan:
        with open(a.plan) as f:
            runs = [x.strip() for x in f if x.strip()]
    seen = set(os.path.abspath(r) for r in runs)
    for r in find_runs(a.dirs):
        if os.path.abspath(r) not in seen:
            runs.append(r)
            seen.add(os.path.abspath(r))
    rows = [row_for(r) for r in runs]
    out = open(a.out, "w", newline="") if a.out else sys.stdout
    w = csv.DictWriter(out, fieldnames=[c for c, _ in COLUMNS], extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    if a.out:
        out.close()
    bad = [r for r in rows if r.get("status") != "complete"]
    print("collect.py: %d runs, %d not complete" % (len(rows), len(bad)), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
