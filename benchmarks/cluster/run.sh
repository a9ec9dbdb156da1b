#!/usr/bin/env bash
# Wall-clock benchmark of gradient exchange schemes on a simulated bandwidth-limited cluster.
#
#   benchmarks/cluster/run.sh [options] [-- extra vqsgd train options]
#
#   --hosts N          simulated hosts, one rank each (default 4)
#   --rates LIST       link rates, tc syntax (default 1gbit,100mbit)
#   --schemes LIST     compression schemes (default dense)
#   --cases FILE       instead of --schemes: `label | KEY=VALUE ...` lines (the format of
#                      benchmarks/schemes/*.cases; `config:` lines are ignored), so each
#                      scheme runs with its own parameters (e.g. repetitions, coding, lr)
#   --reps N           repetitions of each (rate, scheme) (default 5)
#   --config FILE      experiment config (default configs/default.toml)
#   --out DIR          results directory (default results/cluster-<timestamp>)
#   --probe-bytes B    dense allreduce size for the calibration (default 4000000)
#   --allreduce ALG    ring (default: Open MPI's ring allreduce, the bandwidth-optimal
#                      baseline) or default (Open MPI's own choice, ~2x slower at 4 ranks)
#   --calibrate-only   set up, calibrate every rate, tear down; no training runs
#
# For every rate: shape the links, run the calibration probe (a dense allreduce must take at
# least 0.8x the ring lower bound 2(p-1)/p * bytes / rate, else traffic bypassed the shaping
# and the script stops), then `vqsgd train` for every scheme and repetition, one rank per
# host, Open MPI over TCP. Writes to DIR: calibration.csv, runs.csv (one row per run, from
# summary.json, with rate, rep and machine load), results.csv and results.md (median, min
# and max per rate and scheme). Tears the network down on exit, also after errors.
# Needs root, iproute2, mpicc + mpirun (Open MPI), python3, and target/release/vqsgd.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/benchmarks/cluster
usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; }

hosts=4 rates=1gbit,100mbit schemes=dense cases="" reps=5 config=$root/configs/default.toml out=""
probe_bytes=4000000 alg=ring calibrate_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --hosts) hosts=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --schemes) schemes=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --probe-bytes) probe_bytes=$2; shift 2 ;;
    --allreduce) alg=$2; shift 2 ;;
    --calibrate-only) calibrate_only=1; shift ;;
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces and tc)"
for t in ip tc unshare mpicc mpirun python3; do
  command -v "$t" >/dev/null || die "'$t' not found (packages: iproute2, util-linux, libopenmpi-dev, openmpi-bin, python3)"
done
if ! [[ $hosts =~ ^[1-9][0-9]*$ ]] || [ "$hosts" -lt 2 ]; then die "--hosts must be at least 2"; fi
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer"
case "$alg" in ring|default) ;; *) die "--allreduce must be ring or default" ;; esac
bin=${VQSGD_BIN:-$root/target/release/vqsgd}
if [ "$calibrate_only" -eq 0 ]; then
  [ -x "$bin" ] || die "$bin not built; run: cargo build --release"
  [ -f "$config" ] || die "config file '$config' not found"
  config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
fi

export NETSIM_PREFIX=${NETSIM_PREFIX:-vqb}
netsim=$root/scripts/netsim.sh
out=${out:-$root/results/cluster-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
cleanup() {
  "$netsim" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- set up ---------------------------------------------------------------------------------
"$netsim" down >/dev/null 2>&1 || true
"$netsim" up "$hosts"
"$netsim" hostfile 1 > "$work/hosts"
mpicc -O2 -o "$work/probe" "$here/probe.c" || die "cannot compile $here/probe.c with mpicc"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
btls=self,vader,tcp
mca=(--mca plm_rsh_agent "$root/scripts/nsrsh" --mca plm_rsh_no_tree_spawn 1
     --mca btl "$btls" --mca btl_tcp_if_include eth0 --mca oob_tcp_if_include eth0
     --mca mpi_yield_when_idle 1)
[ "$alg" = ring ] && mca+=(--mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_allreduce_algorithm 4)

# mpirun starts inside host 1; the other ranks are started through nsrsh.
ns_mpirun() {
  "$netsim" exec 1 mpirun --hostfile "$work/hosts" -np "$hosts" --map-by node "${mca[@]}" "$@"
}
rate_bps() {  # tc rate -> bit/s
  python3 -c '
import re, sys
m = re.fullmatch(r"([0-9.]+)([kmg]?)(bit|bps)", sys.argv[1])
v = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]
print(v * (8 if m.group(3) == "bps" else 1))' "$1"
}

# Runs: label + overrides. --schemes s1,s2 means labels s1, s2 with compression.scheme=s.
labels=() overrides=()
if [ -n "$cases" ]; then
  [ -f "$cases" ] || die "cases file '$cases' not found"
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    [[ $line =~ ^[[:space:]]*$ || $line =~ ^config: ]] && continue
    [[ $line == *"|"* ]] || die "$cases: expected 'label | KEY=VALUE ...', got '$line'"
    labels+=("$(echo "${line%%|*}" | xargs)")
    overrides+=("$(echo "${line#*|}" | xargs)")
  done < "$cases"
else
  IFS=, read -r -a labels <<<"$schemes"
  for s in "${labels[@]}"; do overrides+=("compression.scheme=$s"); done
fi
[ ${#labels[@]} -gt 0 ] || die "no runs: give --schemes or --cases"

{
  echo "host: $(hostname), $(nproc) cores, $(uname -r)"
  echo "started: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "git_commit: $(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "mpi: $(ompi_info --version 2>/dev/null | head -n1)"
  echo "hosts: $hosts, rates: $rates, runs: ${labels[*]}, reps: $reps, allreduce: $alg"
  [ -n "$cases" ] && echo "cases: $cases" && for j in "${!labels[@]}"; do echo "  ${labels[$j]}: ${overrides[$j]}"; done
  echo "config: $config"
  echo "extra options: $*"
  echo "tbf bucket: ${NETSIM_BURST:-1 ms at the rate, at least 16kb}, ethtool: $(command -v ethtool >/dev/null && echo offloads off || echo absent)"
} > "$out/setup.txt"

echo "rate,ranks,placement,allreduce_bytes,bound_ms,allreduce_median_ms,allreduce_min_ms,allreduce_max_ms,ratio_to_bound,allgather_bytes_per_rank,allgather_bound_ms,allgather_median_ms,load1,pass" > "$out/calibration.csv"
: > "$out/plan.txt"
: > "$work/meta.csv"
IFS=, read -r -a rate_list <<<"$rates"
for rate in "${rate_list[@]}"; do
  bps=$(rate_bps "$rate" 2>/dev/null) || die "cannot parse rate '$rate' (use e.g. 1gbit, 100mbit)"
  "$netsim" shape "$rate"

  # --- calibration: a dense allreduce must not beat the bandwidth bound ------------------
  ag_bytes=$((probe_bytes / 50))      # a 2%-sized payload for comparison
  iters=10
  [ "$(python3 -c "print(int($probe_bytes * 8 / $bps > 0.2))")" = 1 ] && iters=5
  load=$(cut -d' ' -f1 /proc/loadavg)
  ns_mpirun "$work/probe" "$probe_bytes" "$iters" "$ag_bytes" > "$work/probe.out" 2>&1 ||
    { cat "$work/probe.out" >&2; die "calibration probe failed at $rate"; }
  read -r line < <(python3 - "$work/probe.out" "$probe_bytes" "$ag_bytes" "$hosts" "$bps" "$rate" "$load" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
ar, agb, p, bps, rate, load = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6], sys.argv[7]
def stat(what, key):
    m = re.search(r"^%s .*%s=([0-9.]+)" % (what, key), text, re.M)
    return float(m.group(1)) if m else float("nan")
place = re.search(r"^placement: (.*)$", text, re.M)
place = place.group(1) if place else "?"
bound = 2 * (p - 1) / p * ar * 8 / bps * 1e3
ag_bound = (p - 1) * agb * 8 / bps * 1e3
med = stat("allreduce", "median_ms")
hosts_used = {x.split("@")[1] for x in place.split()} if place != "?" else set()
ok = med >= 0.8 * bound and len(hosts_used) == p
print(",".join(str(x) for x in [rate, p, place.replace(" ", ";"), ar, "%.2f" % bound, med,
      stat("allreduce", "min_ms"), stat("allreduce", "max_ms"), "%.2f" % (med / bound), agb,
      "%.2f" % ag_bound, stat("allgather", "median_ms"), load, "yes" if ok else "NO"]))
EOF
)
  echo "$line" >> "$out/calibration.csv"
  IFS=, read -r _ _ place _ bound med _ _ ratio _ _ agmed _ pass <<<"$line"
  echo "calibration $rate: dense allreduce of $probe_bytes B: ${med} ms, bound ${bound} ms (ratio $ratio);" \
       "allgather of $ag_bytes B/rank: ${agmed} ms; placement ${place//;/ }"
  if [ "$pass" != yes ]; then
    cat "$work/probe.out" >&2
    die "calibration failed at $rate: the allreduce took ${med} ms, under 0.8x the bandwidth bound" \
        "${bound} ms, or the ranks did not land on $hosts different hosts. Traffic is bypassing the" \
        "shaped links (shared memory?); results would be meaningless."
  fi
  [ "$calibrate_only" -eq 1 ] && continue

  # --- training runs -----------------------------------------------------------------------
  for j in "${!labels[@]}"; do
    s=${labels[$j]}
    sets=()
    for kv in ${overrides[$j]}; do sets+=(--set "$kv"); done
    for i in $(seq 1 "$reps"); do
      dir=$out/runs/$rate/$s-rep$i
      mkdir -p "$dir"
      echo "$dir" >> "$out/plan.txt"
      load_before=$(cut -d' ' -f1-3 /proc/loadavg)
      t0=$(date +%s.%N)
      rc=0
      ns_mpirun "$bin" train --config "$config" "${sets[@]}" \
        --set "run.name=$s-$rate-rep$i" --out "$dir" "$@" < /dev/null > "$dir/stdout.log" 2>&1 || rc=$?
      wall=$(python3 -c "import time; print('%.3f' % (time.time() - $t0))")
      load_after=$(cut -d' ' -f1-3 /proc/loadavg)
      printf '%s\n' "rate: $rate" "rep: $i" "exit_code: $rc" "wall_s: $wall" \
        "load_before: $load_before" "load_after: $load_after" > "$dir/bench.txt"
      echo "$dir,$rate,$s,$i,$rc,$wall,${load_before%% *},${load_after%% *}" >> "$work/meta.csv"
      if [ "$rc" -ne 0 ]; then
        echo "run $s @ $rate rep $i FAILED (exit $rc); log: $dir/stdout.log" >&2
        tail -n 5 "$dir/stdout.log" >&2
      else
        echo "run $s @ $rate rep $i: ${wall} s wall (load ${load_before%% *})"
      fi
    done
  done
done
"$netsim" down
echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$out/setup.txt"

if [ "$calibrate_only" -eq 0 ]; then
  python3 "$root/jobs/lib/collect.py" --plan "$out/plan.txt" --out "$work/collected.csv" || true
  python3 "$here/report.py" --collected "$work/collected.csv" --meta "$work/meta.csv" \
    --calibration "$out/calibration.csv" --setup "$out/setup.txt" --out "$out"
else
  column -s, -t < "$out/calibration.csv"
fi
echo "results in $out"
