#!/usr/bin/env bash
# Stop the throw-away Slurm cluster started by scripts/slurm-up.sh and remove its state.
#
#   scripts/slurm-down.sh [-d WORKDIR] [--keep-logs]
#
# Cancels running jobs, stops the slurmd, slurmctld and munged processes whose PID files are
# in WORKDIR (default $VQSGD_SLURM_DIR or /tmp/vqsgd-slurm), then deletes WORKDIR (the logs
# survive with --keep-logs). Only processes started by slurm-up.sh are touched. Safe to run
# when nothing is up.
set -euo pipefail

workdir=${VQSGD_SLURM_DIR:-/tmp/vqsgd-slurm} keep_logs=0
while [ $# -gt 0 ]; do
  case "$1" in
    -d|--workdir) workdir=$2; shift 2 ;;
    --keep-logs) keep_logs=1; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "slurm-down.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -d "$workdir" ] || { echo "slurm-down.sh: nothing to do ($workdir does not exist)"; exit 0; }
[ -f "$workdir/slurm.conf" ] || [ -f "$workdir/munged.pid" ] ||
  { echo "slurm-down.sh: $workdir is not a slurm-up.sh work directory; not touching it" >&2; exit 1; }

# Give running jobs a chance to end cleanly (their steps are children of the slurmds).
if [ -f "$workdir/slurm.conf" ] && [ -s "$workdir/slurmctld.pid" ] &&
   kill -0 "$(cat "$workdir/slurmctld.pid")" 2>/dev/null; then
  SLURM_CONF=$workdir/slurm.conf timeout 5 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  sleep 0.5
fi

# Stop by PID file: slurmds first (they end their job steps), then slurmctld and munged.
# Each daemon takes 1-2 s to exit, so each group is signalled at once and waited for together.
stop() {
  local f pids=() pid
  for f in "$@"; do
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  for _ in $(seq 1 50); do
    local left=()
    for pid in ${pids[@]+"${pids[@]}"}; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.1
  done
  for pid in ${pids[@]+"${pids[@]}"}; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "slurm-down.sh: process $pid ignored SIGTERM for 5 s; sending SIGKILL" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$@"
}
stop "$workdir"/slurmd-*.pid
stop "$workdir/slurmctld.pid" "$workdir/munged.pid"

# slurmstepd processes are daemons that outlive a killed slurmd; end the ones of this cluster.
for p in $(pgrep -x slurmstepd 2>/dev/null || true); do
  if tr '\0' ' ' < "/proc/$p/environ" 2>/dev/null | grep -q "SLURM_CONF=$workdir/slurm.conf" ||
     grep -qs "$workdir" "/proc/$p/cmdline"; then
    kill -9 "$p" 2>/dev/null || true
  fi
done

if [ "$keep_logs" -eq 1 ]; then
  rm -rf "$workdir"/{state,spool,tmp,munge} "$workdir/env.sh"
  echo "slurm-down.sh: stopped; logs kept in $workdir/log"
else
  rm -rf "$workdir"
  echo "slurm-down.sh: stopped and removed $workdir"
fi
