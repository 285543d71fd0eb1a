#!/usr/bin/env bash
# Runs every check and test of the project: formatting, lints, Rust unit,
# property, integration and doc tests, then the interop tests with the real
# npm clients and headless Chromium against the echo example.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (unit, property, integration, doc)"
cargo test --workspace --locked
echo "== cargo doc (rustdoc warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

echo "== interop: npm clients and headless Chromium against the echo example"
npm ci --prefix examples/echo --no-audit --no-fund --loglevel=error
npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
cargo build -p echo --locked
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export ECHO_BIN="$target_dir/debug/echo"
node --test --test-concurrency=1 tests/interop/
