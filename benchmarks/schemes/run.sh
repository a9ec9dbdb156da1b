#!/usr/bin/env bash
# Train every case of one or more case files under mpirun and tabulate the results.
#
#   benchmarks/schemes/run.sh [-n RANKS] [--reps N] [--out DIR] [--only REGEX] CASES...
#
#   CASES       files like benchmarks/schemes/mnist_mlp.cases: a `config: FILE` line, then
#               `label | KEY=VALUE ...` lines (overrides as for `vqsgd train --set`)
#   -n RANKS    MPI ranks per run (default 4)
#   --reps N    repetitions of every case (default 1; the same seed, so they differ only in time)
#   --out DIR   results directory (default runs/schemes-<timestamp>)
#   --only RE   run only the cases whose label matches the extended regex RE
#
# Writes DIR/<cases name>/<label>[-rep<i>]/ (run directories, with stdout.log and load.txt),
# DIR/schemes.md and DIR/schemes.csv (one row per run: accuracy or loss, difference to the
# dense case of the same file, bits and bytes per rank per step, compression ratio, time split),
# and DIR/report-<cases name>/ (`vqsgd report`: HTML page, SVG plots). Needs a release build
# (`cargo build --release`) and python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
ranks=4 reps=1 out="" only=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) ranks=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
bin=${VQSGD_BIN:-$root/target/release/vqsgd}
[ -x "$bin" ] || { echo "run.sh: $bin not found; run cargo build --release" >&2; exit 2; }
out=${out:-$root/runs/schemes-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# shellcheck source=scripts/env.sh
. "$root/scripts/env.sh"
failed=0
for cases in "$@"; do
  [ -f "$cases" ] || { echo "run.sh: cases file '$cases' not found" >&2; exit 2; }
  group=$(basename "${cases%.cases}")
  config=""
  lineno=0
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line=${line%%#*}
    [[ $line =~ ^[[:space:]]*$ ]] && continue
    if [[ $line =~ ^config:[[:space:]]*(.*[^[:space:]])[[:space:]]*$ ]]; then
      config=${BASH_REMATCH[1]}
      [ -f "$root/$config" ] || { echo "run.sh: $cases:$lineno: config '$config' not found" >&2; exit 2; }
      continue
    fi
    [[ $line == *"|"* ]] || { echo "run.sh: $cases:$lineno: expected 'label | KEY=VALUE ...'" >&2; exit 2; }
    [ -n "$config" ] || { echo "run.sh: $cases:$lineno: no 'config:' line before the first case" >&2; exit 2; }
    label=$(echo "${line%%|*}" | xargs)
    read -r -a kv <<<"${line#*|}"
    [ -n "$only" ] && ! [[ $label =~ $only ]] && continue
    sets=()
    for s in "${kv[@]}"; do sets+=(--set "$s"); done
    for i in $(seq 1 "$reps"); do
      name=$label; [ "$reps" -gt 1 ] && name=$label-rep$i
      dir=$out/$group/$name
      rm -rf "$dir"; mkdir -p "$dir"
      echo "== $group/$name ($ranks ranks)"
      before=$(cut -d' ' -f1-3 /proc/loadavg)
      if (cd "$root" && "$root/jobs/mpirun.sh" -n "$ranks" "$config" \
            --set "run.name=$label" "${sets[@]}" --out "$dir") < /dev/null > "$dir/stdout.log" 2>&1; then
        printf 'load before: %s\nload after: %s\n' "$before" "$(cut -d' ' -f1-3 /proc/loadavg)" > "$dir/load.txt"
        grep -E '^(final|traffic|time) ' "$dir/stdout.log" | sed 's/^/   /' || true
      else
        failed=$((failed + 1))
        echo "   FAILED (log: $dir/stdout.log)"; tail -n 3 "$dir/stdout.log" | sed 's/^/   /'
      fi
    done
  done < "$cases"
  "$bin" report "$out/$group" --out "$out/report-$group" >/dev/null 2>&1 \
    || echo "run.sh: vqsgd report failed for $group" >&2
done
python3 "$root/benchmarks/schemes/table.py" "$out" --ranks "$ranks"
[ "$failed" -eq 0 ] || { echo "run.sh: $failed runs failed" >&2; exit 1; }
