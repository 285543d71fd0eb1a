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
    /// Bytes of each broadcast message.
    pub size: usize,
    pub transports: Vec<String>,
    pub hold_secs: u64,
    /// A running server to use instead of starting one (memory is not measured).
    pub server: Option<String>,
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
            "--size" => options.size = value().parse().expect("--size BYTES"),
            "--transports" => {
                options.transports = value().split(',').map(str::to_owned).collect();
            }
            "--hold-secs" => options.hold_secs = value().parse().expect("--hold-secs N"),
            "--server" => options.server = Some(value()),
            other => panic!(
                "unknown flag {other}; use --mode, --sessions, --messages, --echo-bin, \
                 --bare-bin, --bare-http-bin, --bare-hyper-bin, --bare-serve-bin, --broadcast-bin, \
                 --size, --transports, --echo-servers, --hold-secs"
            ),
        }
    }
    options
}
