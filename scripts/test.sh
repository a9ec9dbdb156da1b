#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine with only Rust installed:
# installs MPI and libclang if missing, then formatting, lints, unit and multi-rank
# integration tests (under real mpirun), and the documentation build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets 2>&1
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
echo "== all checks passed"
