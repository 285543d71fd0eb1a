#!/usr/bin/env bash
# Runs every check and test of the project on a fresh machine of this kind
# (Debian with rustup, Node.js and pyenv's Python 2.7): it installs what the
# tests need first (Debian's chromium, redis-server and nginx, the npm
# packages, the Autobahn testsuite's Python 2.7 virtualenv, cargo-fuzz).
#
# Then: formatting, lints, the minimum Rust version, every Rust test (unit,
# property, integration, doc), rustdoc, the interop tests with the real npm
# clients and headless Chromium, the Autobahn testsuite against the
# WebSocket endpoints, and a short run of every fuzz target.
#
# SKIP_INSTALL=1 skips the package installs (for a machine that has them).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo "== $* ($(($(date +%s) - started)) s)"; }

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    step "installing Debian packages (chromium, redis-server, nginx)"
    missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    rustup component add clippy rustfmt >/dev/null 2>&1 || true
fi

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (warnings are errors, incompatible_msrv included)"
cargo clippy --workspace --all-targets --locked -- -D warnings -D clippy::incompatible_msrv
step "no import circles between the modules of any crate"
python3 tests/module_cycles.py
step "rust-version covers every dependency"
python3 tests/msrv.py
step "cargo test (unit, property, integration, doc)"
cargo test --workspace --locked
step "cargo doc (rustdoc warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "cargo package: the four crates publish, each built from its own package"
# Cargo unpacks the sibling packages it verifies against into
# $CARGO_HOME/registry/src/<hash of target/package/tmp-registry>/ and reuses
# an unpacked copy left there by an earlier run at the same path, even when
# the sources changed since. Clear those copies so each run verifies today's.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/axum-channel-*
cargo package --locked --allow-dirty -p axum-channel-protocol -p axum-channel-cluster -p axum-channel -p axum-channel-redis

step "interop: npm clients and headless Chromium against the echo and chat examples"
for dir in examples/echo examples/chat tests/interop; do
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
done
cargo build -p echo -p chat --locked
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export ECHO_BIN="$target_dir/debug/echo" CHAT_BIN="$target_dir/debug/chat"
node --test --test-concurrency=1 tests/interop/

step "Autobahn testsuite against /ws and SockJS's raw /websocket"
cargo build --release -p echo -p loadgen --locked
ECHO_BIN="$target_dir/release/echo" BARE_BIN="$target_dir/release/bare-ws-echo" \
    bash tests/autobahn/run.sh

step "fuzzing: every target, briefly"
bash tests/fuzz.sh

step "all checks passed"
