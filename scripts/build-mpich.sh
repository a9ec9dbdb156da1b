#!/usr/bin/env bash
# Build vqsgd against MPICH instead of Open MPI, next to the default build.
#
#   scripts/build-mpich.sh [--no-smoke] [--purge-after]
#   scripts/build-mpich.sh --purge       only remove the MPICH packages this script installed
#
# 1. installs MPICH when missing (VQSGD_MPI=mpich scripts/setup.sh; Debian/Ubuntu: packages
#    mpich and libmpich-dev, which coexist with Open MPI: `mpicc`/`mpirun` keep pointing to
#    Open MPI, MPICH's are mpicc.mpich/mpirun.mpich),
# 2. builds into target-mpich/ (MPI_PKG_CONFIG=mpich CARGO_TARGET_DIR=target-mpich cargo build
#    --release). A separate target directory is required: the mpi-sys build script does not
#    notice a change of MPI and would silently keep linking the old one,
# 3. checks with ldd that the binary links libmpich (and that target/ still links Open MPI),
# 4. runs 2-rank smoke tests (dense, fp16, Rice-coded cross_polytope: allreduce, user-defined
#    reduction, allgatherv) with mpirun.mpich under a hard timeout (MPICH/UCX can hang in
#    MPI_Finalize now and then) and checks summary.json.
# --purge-after / --purge remove exactly the packages step 1 installed (recorded in
# target-mpich/installed-packages.txt), leaving the machine with Open MPI only.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${VQSGD_MPICH_TARGET_DIR:-$root/target-mpich}
smoke=1 purge_after=0 purge_only=0
for a in "$@"; do
  case "$a" in
    --no-smoke) smoke=0 ;;
    --purge-after) purge_after=1 ;;
    --purge) purge_only=1 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-mpich.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
record=$target/installed-packages.txt

purge() {
  [ -s "$record" ] || { echo "build-mpich.sh: no record of installed MPICH packages ($record); nothing to purge"; return 0; }
  mapfile -t pkgs < "$record"
  echo "build-mpich.sh: purging ${pkgs[*]}"
  # Refuse if apt would take anything else with them.
  extra=$(apt-get -s remove --purge "${pkgs[@]}" 2>/dev/null | awk '/^Purg|^Remv/ {print $2}' | grep -vxF -f "$record" || true)
  if [ -n "$extra" ]; then
    echo "build-mpich.sh: purging would also remove: $extra; not purging" >&2
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq --purge "${pkgs[@]}" >/dev/null
  rm -f "$record"
  if command -v mpicc.mpich >/dev/null; then echo "build-mpich.sh: mpicc.mpich still present" >&2; return 1; fi
  echo "build-mpich.sh: MPICH removed; Open MPI remains: $(mpirun --version 2>&1 | head -n1)"
}
if [ "$purge_only" -eq 1 ]; then purge; exit; fi

# --- 1. MPICH -----------------------------------------------------------------------------
mkdir -p "$target"
if ! command -v mpicc.mpich >/dev/null || ! pkg-config --exists mpich 2>/dev/null; then
  before=$(dpkg-query -W -f '${Package}\n' 2>/dev/null | sort)
  VQSGD_MPI=mpich scripts/setup.sh
  after=$(dpkg-query -W -f '${Package}\n' 2>/dev/null | sort)
  comm -13 <(echo "$before") <(echo "$after") >> "$record"
  echo "build-mpich.sh: installed $(paste -sd' ' "$record")"
fi
pkg-config --exists mpich || { echo "build-mpich.sh: pkg-config cannot find mpich (package libmpich-dev)" >&2; exit 1; }
echo "build-mpich.sh: MPICH $(pkg-config --modversion mpich)"

# --- 2. build -----------------------------------------------------------------------------
start=$(date +%s)
MPI_PKG_CONFIG=mpich CARGO_TARGET_DIR=$target cargo build --release --quiet
bin=$target/release/vqsgd
echo "build-mpich.sh: built $bin in $(( $(date +%s) - start )) s"

# --- 3. linkage ---------------------------------------------------------------------------
lib=$(ldd "$bin" | awk '/libmpi/ {print $1}')
case "$lib" in
  *libmpich*) echo "build-mpich.sh: $bin links $lib" ;;
  *) echo "build-mpich.sh: $bin links '${lib:-no MPI}', not libmpich" >&2; exit 1 ;;
esac
if [ -x target/release/vqsgd ]; then
  echo "build-mpich.sh: default build target/release/vqsgd links $(ldd target/release/vqsgd | awk '/libmpi/ {print $1}')"
fi

# --- 4. smoke run -------------------------------------------------------------------------
if [ "$smoke" -eq 1 ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  # 2 ranks only: MPICH busy-polls, more ranks than cores makes it crawl. One run per
  # collective: allreduce (dense), the user-defined binary16 reduction (fp16), allgatherv
  # (Rice-coded cross-polytope).
  for scheme in dense fp16 cross_polytope; do
    start=$(date +%s.%N)
    run=$out/$scheme
    if ! timeout --kill-after=5 180 mpirun.mpich -n 2 "$bin" train --config configs/default.toml \
         --set run.epochs=2 --set compression.scheme=$scheme --set compression.repetitions=200 \
         --set compression.coding=rice --out "$run" > "$out/$scheme.log" 2>&1; then
      cat "$out/$scheme.log" >&2
      echo "build-mpich.sh: 2-rank smoke run ($scheme) failed or timed out" >&2; exit 1
    fi
    ws=$(grep -oE '"world_size"[[:space:]]*:[[:space:]]*[0-9]+' "$run/summary.json" | grep -oE '[0-9]+$')
    agree=$(grep -oE '"ranks_agree"[[:space:]]*:[[:space:]]*(true|false)' "$run/summary.json" | grep -oE '(true|false)$')
    if [ "$ws" != 2 ] || [ "$agree" != true ]; then
      echo "build-mpich.sh: smoke run ($scheme) gave world_size=$ws ranks_agree=$agree" >&2; exit 1
    fi
    echo "build-mpich.sh: smoke run $scheme OK: 2 ranks, ranks agree, $(python3 -c "import time; print('%.1f' % (time.time() - $start))" 2>/dev/null || echo '?') s;" \
         "MPI library: $(grep -oE '"mpi_library"[^,]*' "$run/run.json" | head -n1)"
  done
fi

if [ "$purge_after" -eq 1 ]; then purge; fi
