# Recipes for working on axum-channel. Get `just` with `cargo install just`;
# every recipe is a plain command you can also run by hand.

# Install the npm packages the echo page and the interop tests use.
setup:
    npm ci --prefix examples/echo
    npm ci --prefix tests/interop

# Run the echo example on http://127.0.0.1:3000 (PORT overrides).
echo: setup
    cargo run --release -p echo

# Run every check and test (needs Debian's `chromium` for the browser tests).
test:
    bash tests/run-all.sh

# Criterion benchmarks of the protocol codecs.
bench-codecs:
    cargo bench -p channel-protocol

# End-to-end load (mode: browserchannel, websocket or sockjs): echoes/s and latency percentiles.
bench-load mode="browserchannel" sessions="100" messages="200":
    cargo build --release -p echo -p loadgen
    target/release/loadgen --mode {{mode}} --sessions {{sessions}} --messages {{messages}}

# Formatting and lints only.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
