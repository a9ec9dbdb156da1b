#!/usr/bin/env bash
# Install what vqsgd needs to build and run, when it is missing: an MPI implementation with
# its compiler wrapper and launcher (Open MPI by default, MPICH with VQSGD_MPI=mpich), libclang
# for the bindings of the `mpi` crate, pkg-config, and python3 (standard library only: the
# sweep helper's CSV and the benchmark reports). Debian/Ubuntu (apt-get); as root or through
# sudo. Safe to run again: it only installs what is absent.
set -euo pipefail

mpi=${VQSGD_MPI:-openmpi}
case "$mpi" in
  openmpi) pkgs=(libopenmpi-dev openmpi-bin); probe="mpicc.openmpi" ;;
  mpich)   pkgs=(libmpich-dev mpich);         probe="mpicc.mpich" ;;
  *) echo "setup.sh: VQSGD_MPI must be openmpi or mpich, not '$mpi'" >&2; exit 2 ;;
esac

need=()
command -v "$probe" >/dev/null 2>&1 || need+=("${pkgs[@]}")
if ! ldconfig -p 2>/dev/null | grep -q 'libclang\(-[0-9.]*\)\?\.so'; then need+=(libclang-dev); fi
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v python3 >/dev/null 2>&1 || need+=(python3)

if [ ${#need[@]} -eq 0 ]; then
  echo "setup.sh: $mpi, libclang, pkg-config and python3 are present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup.sh: missing ${need[*]} and no apt-get here; install an MPI (Open MPI or MPICH)" \
       "with its development files, libclang, pkg-config and python3 with your package manager" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup.sh: need root or sudo to install ${need[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "setup.sh: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "setup.sh: done"
