#!/usr/bin/env bash
# Build the fuzz targets (fuzz/, cargo-fuzz layout) and run each under libFuzzer for
# SECONDS_PER_TARGET seconds (default 180), one after another on one core, then print a
# summary: seconds fuzzed (libFuzzer's own count), executions, coverage (edges) and features,
# corpus size, crashes.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]        FUZZ_TARGETS="idx csv" scripts/fuzz.sh 60
#
# Needs cargo-fuzz (installed from crates.io when missing) and, on stable Rust, runs it with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only flags). Sanitizers are off: the crate has
# no unsafe memory code that ASan would check, and panics, overflow checks and debug
# assertions (on in fuzz builds, see fuzz/Cargo.toml) are what the targets look for.
# Each run starts from the committed seeds (fuzz/seeds/<target>) and minimised crash inputs
# (fuzz/regressions/<target>) and grows fuzz/corpus/<target> (git-ignored). A crash leaves
# its input in fuzz/artifacts/<target>/ and makes the script exit non-zero; minimise it with
# `cargo fuzz tmin`, fix it, and add it to fuzz/regressions/<target>/ with a named test.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-180}
targets=${FUZZ_TARGETS:-"payload_decode idx libsvm csv config checkpoint"}
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || exit 1
fi
cargo fuzz build -s none || exit 1

logs=target/fuzz-logs
mkdir -p "$logs"
summary=()
failed=0
total_secs=0
total_execs=0
for t in $targets; do
    case $t in
        idx) max_len=8192 ;;
        *) max_len=4096 ;;
    esac
    mkdir -p "corpus/$t"
    dirs=("corpus/$t" "seeds/$t")
    [ -d "regressions/$t" ] && dirs+=("regressions/$t")
    before=$(ls "artifacts/$t" 2>/dev/null | wc -l)
    log="$logs/$t.log"
    echo "== $t: ${secs}s (log $PWD/$log)"
    start=$(date +%s)
    cargo fuzz run -s none "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" -max_len="$max_len" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -use_value_profile=1 -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    [ -n "$took" ] || took=$(($(date +%s) - start)) # crashed: wall time
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -1)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.*corp: \([0-9]*\).*/\1/p' <<<"$last")
    after=$(ls "artifacts/$t" 2>/dev/null | wc -l)
    crashes=$((after - before))
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        failed=1
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -5
    fi
    total_secs=$((total_secs + took))
    total_execs=$((total_execs + ${execs:-0}))
    summary+=("$(printf '%-15s %6ss %12s %8s %8s %7s %8s %4s' "$t" "$took" "${execs:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes" "$rc")")
done

echo
printf '%-15s %7s %12s %8s %8s %7s %8s %4s\n' target seconds executions cov ft corpus crashes rc
for line in "${summary[@]}"; do
    echo "$line"
done
printf '%-15s %6ss %12s\n' total "$total_secs" "$total_execs"
exit "$failed"
