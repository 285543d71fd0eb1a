# Recipes for working on axum-channel. Get `just` with `cargo install just`;
# every recipe is a plain command you can also run by hand.

# Install the npm packages the echo page and the interop tests use.
setup:
    npm ci --prefix examples/echo
    npm ci --prefix tests/interop

# Run the echo example on http://127.0.0.1:3000 (PORT overrides).
echo: setup
    cargo run --release -p echo

# Run the chat example on http://127.0.0.1:3001 (REDIS_URL joins a cluster).
chat:
    npm ci --prefix examples/chat
    cargo run --release -p chat

# The chat as a cluster: redis-server, two nodes and nginx on http://127.0.0.1:3001.
cluster:
    scripts/cluster.sh

# Run every check and test; installs what it needs on a fresh machine.
test:
    bash tests/run-all.sh

# Criterion benchmarks of the protocol codecs.
bench-codecs:
    cargo bench -p axum-channel-protocol

# End-to-end load (mode: browserchannel, websocket, sockjs, idle, broadcast, slow-member or cluster).
bench-load mode="browserchannel" sessions="100" messages="200":
    cargo build --release -p echo -p loadgen
    target/release/loadgen --mode {{mode}} --sessions {{sessions}} --messages {{messages}}

# Formatting and lints only.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
