#!/usr/bin/env bash
# Builds the cargo-fuzz targets of fuzz/ and runs each one for a short,
# bounded time; fails if any target finds a crash, a hang or a leak of memory.
#
#   FUZZ_SECONDS   seconds per target (default 15)
#   FUZZ_JOBS      targets run at once (default 2, one per core on CI)
#   FUZZ_TARGETS   space-separated targets to run (default: all of them)
#   FUZZ_SANITIZER none (default) or address; both work on stable Rust
#
# It needs only a stable toolchain from rustup: cargo-fuzz passes `-Z`
# flags to rustc, which stable accepts with RUSTC_BOOTSTRAP=1. The default
# sanitizer is none: axum-channel-protocol forbids unsafe code, and without
# AddressSanitizer the targets run about twice as many inputs a second.
# A long local run: FUZZ_SECONDS=600 tests/fuzz.sh, or
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> -- -runs=10000000
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-15}
jobs=${FUZZ_JOBS:-2}
sanitizer=${FUZZ_SANITIZER:-none}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

start=$(date +%s)
cargo fuzz build -s "$sanitizer"
echo "fuzz: build took $(($(date +%s) - start)) s"

targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run() {
    local target=$1 status=0
    mkdir -p "corpus/$target"
    # -timeout: one input running 10 s is a hang; -rss_limit_mb: memory that
    # grows past 2 GiB is a failure too.
    cargo fuzz run -s "$sanitizer" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$logs/$target.log" 2>&1 || status=$?
    echo "$status" >"$logs/$target.status"
}

start=$(date +%s)
running=0
for target in $targets; do
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
    run "$target" &
    running=$((running + 1))
done
wait

failed=0
for target in $targets; do
    status=$(cat "$logs/$target.status" 2>/dev/null || echo missing)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -1)
    if [[ $status == 0 ]]; then
        echo "fuzz: $target: ok, ${runs:-?} runs in ${seconds} s"
    else
        failed=1
        echo "fuzz: $target: FAILED (exit $status)"
        # The panic first (a backtrace follows it), then how the run ended.
        grep -A 2 "panicked at" "$logs/$target.log" | head -n 6 || true
        tail -n 40 "$logs/$target.log"
        ls "artifacts/$target" 2>/dev/null | sed "s|^|fuzz: artifact: fuzz/artifacts/$target/|" || true
    fi
done
echo "fuzz: ran $(wc -w <<<"$targets") targets in $(($(date +%s) - start)) s"
exit "$failed"
