#!/usr/bin/env bash
# Launch a training run with mpirun on this machine or, with a hostfile, on several.
#
#   jobs/mpirun.sh [-n RANKS] [--hostfile FILE] CONFIG.toml [vqsgd train options...]
#
# Uses target/release/vqsgd (build it with `cargo build --release`). Output goes to
# runs/<config name>-<ranks>r-<timestamp>/ unless --out is given.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ranks=4
hostfile=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--ranks) ranks=$2; shift 2 ;;
    --hostfile) hostfile=(--hostfile "$2"); shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: jobs/mpirun.sh [-n RANKS] [--hostfile FILE] CONFIG.toml [options]" >&2; exit 2; }
config=$1; shift
[ -f "$config" ] || { echo "jobs/mpirun.sh: config file '$config' not found" >&2; exit 2; }
bin=${VQSGD_BIN:-$here/target/release/vqsgd}
[ -x "$bin" ] || { echo "jobs/mpirun.sh: $bin not built; run: cargo build --release" >&2; exit 2; }
. "$here/scripts/env.sh"
out=()
case " $* " in *" --out "*|*" -o "*) ;; *)
  out=(--out "runs/$(basename "${config%.toml}")-${ranks}r-$(date +%Y%m%d-%H%M%S)") ;;
esac
exec mpirun -n "$ranks" "${hostfile[@]}" "$bin" train --config "$config" "${out[@]}" "$@"
