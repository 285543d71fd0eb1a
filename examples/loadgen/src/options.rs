//! The load generator's command line.

/// What a run does, from the command line.
pub struct Options {
    pub mode: String,
    pub sessions: usize,
    pub messages: usize,
    pub echo_bin: String,
    pub bare_bin: String,
    pub bare_http_bin: String,
    pub bare_hyper_bin: String,
    pub bare_serve_bin: String,
    /// Serving paths of the echo server in idle runs: `channel`
    /// (`axum_channel::serve`, its default) and `axum` (`axum::serve`).
    pub echo_servers: Vec<String>,
    pub broadcast_bin: String,
    /// The bare tokio-tungstenite fan-out server.
    pub bare_fanout_bin: String,
    /// Servers of the WebSocket fan-out comparison (`layer`, `bare`,
    /// `node-preframed`, `node-send`).
    pub fanout_servers: Vec<String>,
    /// The Node fan-out server's script, and where its `ws` package is.
    pub node_fanout_script: String,
    pub node_path: String,
    /// A fan-out members' process: the path its members open, and the
    /// fan-out request's `mode`.
    pub ws_path: String,
    pub fanout_mode: String,
    /// The number of a members' process's first member (its source address).
    pub first_member: usize,
    /// Bytes of each broadcast message.
    pub size: usize,
    pub transports: Vec<String>,
    pub hold_secs: u64,
    /// A running server to use instead of starting one (memory is not measured).
    pub server: Option<String>,
    /// `--mode deflate`: broadcasts measured (0 skips them), and to how many members.
    pub rounds: usize,
    pub broadcast_members: usize,
}

/// Reads the command line; panics with the flags it knows on anything else.
pub fn parse_options() -> Options {
    let mut options = Options {
        mode: "browserchannel".into(),
        sessions: 100,
        messages: 200,
        echo_bin: "target/release/echo".into(),
        bare_bin: "target/release/bare-ws-echo".into(),
        bare_http_bin: "target/release/bare-http-stream".into(),
        bare_hyper_bin: "target/release/bare-hyper-stream".into(),
        bare_serve_bin: "target/release/bare-serve-stream".into(),
        echo_servers: vec!["channel".into()],
        broadcast_bin: "target/release/broadcast-server".into(),
        bare_fanout_bin: "target/release/bare-ws-fanout".into(),
        fanout_servers: vec!["layer".into(), "bare".into()],
        node_fanout_script: "examples/loadgen/node/fanout-server.js".into(),
        node_path: "tests/interop/node_modules".into(),
        ws_path: "/ws".into(),
        fanout_mode: "broadcast".into(),
        first_member: 0,
        size: 100,
        transports: vec![
            "websocket".into(),
            "bare-websocket".into(),
            "sockjs-websocket".into(),
            "sockjs-xhr-streaming".into(),
            "browserchannel".into(),
            "bare-http-stream".into(),
        ],
        hold_secs: 5,
        server: None,
        rounds: 0,
        broadcast_members: 10_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--mode" => options.mode = value(),
            "--sessions" => options.sessions = value().parse().expect("--sessions N"),
            "--messages" => options.messages = value().parse().expect("--messages N"),
            "--echo-bin" => options.echo_bin = value(),
            "--bare-bin" => options.bare_bin = value(),
            "--bare-http-bin" => options.bare_http_bin = value(),
            "--bare-hyper-bin" => options.bare_hyper_bin = value(),
            "--bare-serve-bin" => options.bare_serve_bin = value(),
            "--echo-servers" => {
                options.echo_servers = value().split(',').map(str::to_owned).collect();
            }
            "--broadcast-bin" => options.broadcast_bin = value(),
            "--bare-fanout-bin" => options.bare_fanout_bin = value(),
            "--fanout-servers" => {
                options.fanout_servers = value().split(',').map(str::to_owned).collect();
            }
            "--node-fanout-script" => options.node_fanout_script = value(),
            "--node-path" => options.node_path = value(),
            "--ws-path" => options.ws_path = value(),
            "--fanout-mode" => options.fanout_mode = value(),
            "--first-member" => options.first_member = value().parse().expect("--first-member N"),
            "--size" => options.size = value().parse().expect("--size BYTES"),
            "--transports" => {
                options.transports = value().split(',').map(str::to_owned).collect();
            }
            "--hold-secs" => options.hold_secs = value().parse().expect("--hold-secs N"),
            "--server" => options.server = Some(value()),
            "--rounds" => options.rounds = value().parse().expect("--rounds N"),
            "--broadcast-members" => {
                options.broadcast_members = value().parse().expect("--broadcast-members N");
            }
            other => panic!(
                "unknown flag {other}; use --mode, --sessions, --messages, --echo-bin, \
                 --bare-bin, --bare-http-bin, --bare-hyper-bin, --bare-serve-bin, --broadcast-bin, \
                 --bare-fanout-bin, --fanout-servers, --node-fanout-script, --node-path, \
                 --size, --transports, --echo-servers, --hold-secs, --server, --rounds, \
                 --broadcast-members"
            ),
        }
    }
    options
}
