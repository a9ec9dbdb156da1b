#!/usr/bin/env bash
# Launch one training run with mpirun, on this machine or, with a hostfile, on several.
#
#   jobs/mpirun.sh [options] CONFIG.toml [vqsgd train options, e.g. --set optim.lr=0.1]
#
#   -n, --ranks N       number of ranks (default 4, or the slot total of the hostfile)
#   --hostfile FILE     machines to run on, Open MPI syntax: "host slots=K" per line
#                       (converted to MPICH's "host:K" when the binary links MPICH).
#                       The checkout, the binary and the config must be at the same path on
#                       every host (shared file system), and ssh to them must work.
#   --hosts h1,h2:2     the same inline (host[:slots],...)
#   --npernode K        ranks per host (Open MPI --npernode / MPICH -ppn)
#   --mpi openmpi|mpich choose the build: target/release (Open MPI) or target-mpich/release
#                       (see scripts/build-mpich.sh); default: what VQSGD_BIN links
#   --launcher-arg ARG  extra argument for mpirun, repeatable (e.g. --launcher-arg=--bind-to=none)
#   --dry-run           print the command and exit
#
# Env: VQSGD_BIN (binary), MPIRUN (launcher to use). Output goes to
# runs/<config name>-<ranks>r-<timestamp>/ unless --out DIR is given; the run directory also
# gets launch.txt (command, git commit, MPI implementation and version), nodes.txt and env.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export VQSGD_ROOT=$root
# shellcheck source=jobs/lib/common.sh
. "$root/jobs/lib/common.sh"
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

ranks="" hostfile="" hosts="" npernode="" mpi="" dry=0 largs=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--ranks|-np) ranks=$2; shift 2 ;;
    --hostfile|--machinefile) hostfile=$2; shift 2 ;;
    --hosts) hosts=$2; shift 2 ;;
    --npernode) npernode=$2; shift 2 ;;
    --mpi) mpi=$2; shift 2 ;;
    --launcher-arg) largs+=("$2"); shift 2 ;;
    --launcher-arg=*) largs+=("${1#--launcher-arg=}"); shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "jobs/mpirun.sh: unknown option '$1' (vqsgd options go after the config)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
config=$1; shift
[ -f "$config" ] || { echo "jobs/mpirun.sh: config file '$config' not found" >&2; exit 2; }
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")

case "$mpi" in
  "") bin=${VQSGD_BIN:-$root/target/release/vqsgd} ;;
  openmpi) bin=${VQSGD_BIN:-$root/target/release/vqsgd} ;;
  mpich) bin=${VQSGD_BIN:-$root/target-mpich/release/vqsgd} ;;
  *) echo "jobs/mpirun.sh: --mpi must be openmpi or mpich, not '$mpi'" >&2; exit 2 ;;
esac
if [ ! -x "$bin" ]; then
  case "$mpi" in
    mpich) echo "jobs/mpirun.sh: $bin not built; run: scripts/build-mpich.sh" >&2 ;;
    *) echo "jobs/mpirun.sh: $bin not built; run: cargo build --release" >&2 ;;
  esac
  exit 2
fi
flavour=$(vq_mpi_flavour "$bin")
if [ -n "$mpi" ] && [ "$flavour" != "$mpi" ]; then
  echo "jobs/mpirun.sh: $bin links $flavour, not $mpi ($(vq_mpi_library "$bin"))" >&2; exit 2
fi

# Hostfile: from --hosts, or the given file; normalised per MPI flavour.
tmpdir=$(mktemp -d)
trap 'rm -rf "$tmpdir"' EXIT
if [ -n "$hosts" ]; then
  [ -z "$hostfile" ] || { echo "jobs/mpirun.sh: give --hosts or --hostfile, not both" >&2; exit 2; }
  hostfile=$tmpdir/hosts.in
  tr ',' '\n' <<<"$hosts" | awk -F: 'NF {print $1 " slots=" ($2 == "" ? 1 : $2)}' > "$hostfile"
fi
if [ -n "$hostfile" ]; then
  [ -f "$hostfile" ] || { echo "jobs/mpirun.sh: hostfile '$hostfile' not found" >&2; exit 2; }
  # Accept both "host slots=K" and "host:K"; write the launcher's own syntax.
  awk '!/^[[:space:]]*(#|$)/ {
         h = $1; k = 1
         if (h ~ /:/) { split(h, p, ":"); h = p[1]; k = p[2] }
         for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { k = substr($i, 7) }
         print h, k }' "$hostfile" > "$tmpdir/hosts.norm"
  [ -s "$tmpdir/hosts.norm" ] || { echo "jobs/mpirun.sh: hostfile '$hostfile' lists no hosts" >&2; exit 2; }
  slots=$(awk '{s += $2} END {print s}' "$tmpdir/hosts.norm")
  ranks=${ranks:-$slots}
  export VQSGD_HOSTFILE=$tmpdir/hosts.norm
fi
ranks=${ranks:-4}

if [ "$flavour" = mpich ]; then
  mpirun=${MPIRUN:-$(command -v mpiexec.hydra || command -v mpirun.mpich || true)}
  [ -n "$mpirun" ] || { echo "jobs/mpirun.sh: MPICH launcher (mpiexec.hydra / mpirun.mpich) not found; install package mpich" >&2; exit 2; }
  launch=("$mpirun" -n "$ranks")
  if [ -n "$hostfile" ]; then
    awk '{print $1 ":" $2}' "$tmpdir/hosts.norm" > "$tmpdir/hosts.mpich"
    launch+=(-f "$tmpdir/hosts.mpich")
  fi
  [ -n "$npernode" ] && launch+=(-ppn "$npernode")
else
  mpirun=${MPIRUN:-$(command -v mpirun.openmpi || command -v mpirun || true)}
  [ -n "$mpirun" ] || { echo "jobs/mpirun.sh: mpirun not found; install package openmpi-bin (scripts/setup.sh)" >&2; exit 2; }
  if [ -n "$hostfile" ]; then
    # Several machines: a wrong slot count should fail loudly instead of oversubscribing.
    export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-0}
  fi
  # shellcheck source=scripts/env.sh
  . "$root/scripts/env.sh"
  launch=("$mpirun" -n "$ranks")
  if [ -n "$hostfile" ]; then
    awk '{print $1 " slots=" $2}' "$tmpdir/hosts.norm" > "$tmpdir/hosts.ompi"
    launch+=(--hostfile "$tmpdir/hosts.ompi")
    # Remote ranks only see exported variables.
    for v in $(env | grep -oE '^(RUST_LOG|VQSGD_[A-Z_]+|OMP_NUM_THREADS)=' | tr -d = | grep -vx VQSGD_HOSTFILE); do launch+=(-x "$v"); done
  fi
  [ -n "$npernode" ] && launch+=(--npernode "$npernode")
fi
launch+=(${largs[@]+"${largs[@]}"})

# Run directory: --out from the options, else a fresh one under runs/.
out="" opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--out) out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    *) opts+=("$1"); shift ;;
  esac
done
out=${out:-runs/$(basename "${config%.toml}")-${ranks}r-$(date +%Y%m%d-%H%M%S)}
cmd=("${launch[@]}" "$bin" train --config "$config" --out "$out" ${opts[@]+"${opts[@]}"})
if [ "$dry" -eq 1 ]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
mkdir -p "$out"
vq_record_run "$out" "mpirun ($flavour)" "$bin" "$config" -- "${cmd[@]}"
[ -z "$hostfile" ] || cp "$tmpdir/hosts.norm" "$out/hostfile.txt"
rc=0
"${cmd[@]}" || rc=$?
vq_finish_run "$out" "$rc" "$ranks"
