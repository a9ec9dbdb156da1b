#!/usr/bin/env bash
# Build everything and train the default experiment (an MLP on the embedded digits data)
# on 4 MPI ranks. Extra arguments are passed to `vqsgd train` (e.g. --set optim.lr=0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
exec jobs/mpirun.sh -n "${RANKS:-4}" configs/default.toml "$@"
