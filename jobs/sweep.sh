#!/usr/bin/env bash
# Run one config over a list of schemes and rank counts (and repetitions) and collect every
# summary.json into one CSV.
#
#   jobs/sweep.sh CONFIG.toml --schemes dense,qsgd,cross_polytope --ranks 2,4 [options] \
#                 [-- extra vqsgd train options, e.g. --set run.epochs=5]
#
#   --reps N             repetitions of each (scheme, ranks) pair (default 1)
#   --launcher L         mpirun (default: jobs/mpirun.sh, one run after another) or
#                        sbatch (jobs/submit.sh: all runs are submitted, then waited for)
#   --system S           system file for --launcher sbatch (default local)
#   --nodes N            nodes per job for sbatch (default SYS_NODES of the system; ranks
#                        must be a multiple of it)
#   --out DIR            sweep directory (default runs/sweep-<config name>-<timestamp>)
#   --hostfile FILE      passed to jobs/mpirun.sh
#   --dry-run            print the runs and exit
#
# Each run writes DIR/<scheme>-<ranks>r-rep<i>/; DIR/plan.txt lists them and DIR/sweep.csv
# gets one row per run: name, scheme, world_size, final accuracy, bytes per rank per step,
# compression ratio, total/compute/encode/comm/decode seconds, ranks_agree, ... A run that
# failed appears with status "failed"/"missing", and the sweep exits non-zero.
# Needs python3 (standard library only) for the CSV.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export VQSGD_ROOT=$root
usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; esac
config=$1; shift
schemes="" ranks="" reps=1 launcher=mpirun system=local nodes="" out="" hostfile="" dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --schemes) schemes=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --launcher) launcher=$2; shift 2 ;;
    --system) system=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --hostfile) hostfile=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "sweep.sh: unknown argument '$1' (vqsgd options go after --)" >&2; exit 2 ;;
  esac
done
die() { echo "sweep.sh: $*" >&2; exit 2; }
[ -f "$config" ] || die "config file '$config' not found"
[ -n "$schemes" ] || die "--schemes is required (e.g. --schemes dense,qsgd)"
[ -n "$ranks" ] || die "--ranks is required (e.g. --ranks 2,4)"
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer"
case "$launcher" in mpirun|sbatch) ;; *) die "--launcher must be mpirun or sbatch" ;; esac
python=$(command -v python3 || true)
[ -n "$python" ] || die "python3 not found; it is needed to turn summary.json files into sweep.csv (install package python3)"

stem=$(basename "${config%.toml}")
out=${out:-runs/sweep-$stem-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
IFS=, read -r -a scheme_list <<<"$schemes"
IFS=, read -r -a rank_list <<<"$ranks"

if [ "$launcher" = sbatch ]; then
  # shellcheck source=jobs/lib/common.sh
  . "$root/jobs/lib/common.sh"
  SYS_NODES=""
  vq_load_system "$system"
  nodes=${nodes:-${SYS_NODES:-1}}
fi

: > "$out/plan.txt"
jobs=()
failed=0
for s in "${scheme_list[@]}"; do
  for r in "${rank_list[@]}"; do
    [[ $r =~ ^[1-9][0-9]*$ ]] || die "rank count '$r' is not a positive integer"
    for i in $(seq 1 "$reps"); do
      dir=$out/$s-${r}r-rep$i
      echo "$dir" >> "$out/plan.txt"
      sets=(--set "compression.scheme=$s" --set "run.name=$stem-$s-${r}r-rep$i" --out "$dir")
      if [ "$launcher" = mpirun ]; then
        cmd=("$root/jobs/mpirun.sh" -n "$r")
        [ -n "$hostfile" ] && cmd+=(--hostfile "$hostfile")
        cmd+=("$config" "${sets[@]}" "$@")
      else
        n=$nodes
        [ "$r" -lt "$n" ] && n=$r
        [ $((r % n)) -eq 0 ] || die "$r ranks do not divide over $n nodes; use --nodes"
        cmd=("$root/jobs/submit.sh" -N "$n" -n $((r / n)) -J "vqsgd-$s-${r}r" "$system" "$config" "${sets[@]}" "$@")
      fi
      if [ "$dry" -eq 1 ]; then printf '%q ' "${cmd[@]}"; echo; continue; fi
      echo "== $s, $r ranks, rep $i"
      if [ "$launcher" = mpirun ]; then
        "${cmd[@]}" > "$dir.log" 2>&1 || { failed=$((failed + 1)); echo "   FAILED (log: $dir.log)"; tail -n 5 "$dir.log" | sed 's/^/   /'; }
      else
        line=$("${cmd[@]}") || die "submission failed: $line"
        echo "   $line"
        jobs+=("$(sed -nE 's/^submitted job ([0-9]+).*/\1/p' <<<"$line")")
      fi
    done
  done
done
[ "$dry" -eq 1 ] && exit 0

if [ ${#jobs[@]} -gt 0 ]; then
  echo "== waiting for ${#jobs[@]} Slurm jobs: ${jobs[*]}"
  while squeue -h -o %i 2>/dev/null | grep -qxF -f <(printf '%s\n' "${jobs[@]}"); do sleep 2; done
fi

rc=0
"$python" "$root/jobs/lib/collect.py" --plan "$out/plan.txt" --out "$out/sweep.csv" || rc=$?
echo "sweep.csv: $out/sweep.csv"
column -s, -t < "$out/sweep.csv" 2>/dev/null | cut -c1-160 || cat "$out/sweep.csv"
[ "$failed" -eq 0 ] || echo "sweep.sh: $failed runs failed" >&2
exit $((rc != 0 || failed != 0))
