#!/usr/bin/env bash
# Submit one training run to Slurm with the settings of a system file.
#
#   jobs/submit.sh [options] SYSTEM CONFIG.toml [vqsgd train options...]
#
# SYSTEM names jobs/systems/SYSTEM.sh (local, ci, or your copy of example_cluster.sh): it sets
# nodes, tasks per node, time, partition, account and the in-job environment. Options:
#   -N NODES          nodes                        (default: SYS_NODES)
#   -n TASKS          tasks (ranks) per node       (default: SYS_TASKS_PER_NODE)
#   -t TIME           time limit, e.g. 00:20:00    (default: SYS_TIME)
#   -p PARTITION      partition                    (default: SYS_PARTITION)
#   -A ACCOUNT        account                      (default: SYS_ACCOUNT)
#   -J NAME           job name                     (default: vqsgd-<config name>)
#   --launch L        srun or mpirun               (default: SYS_LAUNCH or srun)
#   --sbatch ARG      extra sbatch option, repeatable (e.g. --sbatch=--exclusive)
#   --wait            wait for the job; exit with its exit code and print the summary
#   --dry-run         print the sbatch command instead of running it
# Prints the job id and the run directory (runs/<config name>-<job id> unless --out is given).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export VQSGD_ROOT=$root
# shellcheck source=jobs/lib/common.sh
. "$root/jobs/lib/common.sh"
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

nodes="" tpn="" time_="" part="" acct="" name="" launch="" wait=0 dry=0 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    -N) nodes=$2; shift 2 ;;
    -n) tpn=$2; shift 2 ;;
    -t) time_=$2; shift 2 ;;
    -p) part=$2; shift 2 ;;
    -A) acct=$2; shift 2 ;;
    -J) name=$2; shift 2 ;;
    --launch) launch=$2; shift 2 ;;
    --sbatch) extra+=("$2"); shift 2 ;;
    --sbatch=*) extra+=("${1#--sbatch=}"); shift ;;
    --wait) wait=1; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "submit.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { usage >&2; exit 2; }
system=$1 config=$2; shift 2
[ -f "$config" ] || { echo "submit.sh: config file '$config' not found" >&2; exit 2; }
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")

SYS_NODES="" SYS_TASKS_PER_NODE="" SYS_TIME="" SYS_PARTITION="" SYS_ACCOUNT="" SYS_LAUNCH=""
SYS_SBATCH=()
vq_load_system "$system"
command -v sbatch >/dev/null || { echo "submit.sh: sbatch not found (is Slurm installed / the module loaded?)" >&2; exit 2; }

nodes=${nodes:-$SYS_NODES} tpn=${tpn:-$SYS_TASKS_PER_NODE} time_=${time_:-$SYS_TIME}
part=${part:-$SYS_PARTITION} acct=${acct:-$SYS_ACCOUNT} launch=${launch:-$SYS_LAUNCH}
name=${name:-vqsgd-$(basename "${config%.toml}")}

args=(--parsable --export=ALL --job-name="$name")
[ -n "$nodes" ] && args+=(--nodes="$nodes")
[ -n "$tpn" ] && args+=(--ntasks-per-node="$tpn")
[ -n "$time_" ] && args+=(--time="$time_")
[ -n "$part" ] && args+=(--partition="$part")
[ -n "$acct" ] && args+=(--account="$acct")
args+=(${SYS_SBATCH[@]+"${SYS_SBATCH[@]}"} ${extra[@]+"${extra[@]}"})
log="$root/runs/slurm-logs/%x-%j.out"
for a in "${args[@]}"; do case "$a" in --output=*) log=${a#--output=} ;; esac; done
if [ "$log" = "$root/runs/slurm-logs/%x-%j.out" ]; then
  mkdir -p "$root/runs/slurm-logs"
  args+=(--output="$log")
fi

cmd=(sbatch "${args[@]}" "$root/jobs/train.sbatch" "$config" "$@")
export VQSGD_SYSTEM=$system
[ -n "$launch" ] && export VQSGD_LAUNCH=$launch
VQSGD_SUBMIT_CMD="jobs/submit.sh $system ... -> $(printf '%q ' "${cmd[@]}")"
export VQSGD_SUBMIT_CMD
if [ "$dry" -eq 1 ]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi

# Where the run will write (same rule as train.sbatch).
out=""
prev=""
for a in "$@"; do
  case "$prev" in -o|--out) out=$a ;; esac
  case "$a" in --out=*) out=${a#--out=} ;; esac
  prev=$a
done

jobid=$("${cmd[@]}")
jobid=${jobid%%;*}
[ -n "$out" ] || out=runs/$(basename "${config%.toml}")-$jobid
log=${log//%x/$name}
echo "submitted job $jobid ($name): log ${log//%j/$jobid}, run directory $out"
[ "$wait" -eq 1 ] || exit 0

# Poll squeue (sbatch --wait polls only every ~10 s), then take the state from scontrol.
while [ -n "$(squeue -h -j "$jobid" -o %T 2>/dev/null)" ]; do sleep 1; done
info=$(scontrol show job "$jobid" 2>/dev/null || true)
state=$(grep -oE 'JobState=[A-Z_]+' <<<"$info" | cut -d= -f2)
code=$(grep -oE ' ExitCode=[0-9]+:[0-9]+' <<<"$info" | cut -d= -f2)
echo "job $jobid: ${state:-unknown} (exit ${code:-?})"
[ -f "$out/summary.json" ] && echo "summary: $out/summary.json"
[ "${state:-}" = COMPLETED ] && exit 0
rc=${code%%:*}
[ "${rc:-0}" -ne 0 ] 2>/dev/null || rc=1
exit "$rc"
