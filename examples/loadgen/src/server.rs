//! Starting the server under test: a binary on a free port, whose
//! `listening on` line gives its URL.

use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Every error of the load generator.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Starts a server binary on a free port; returns its base URL and the child.
pub async fn start_server(binary: &str) -> Result<(String, tokio::process::Child), Error> {
    start_server_with(binary, &[]).await
}

/// Starts `binary` with extra environment variables.
pub async fn start_server_with(
    binary: &str,
    env: &[(&str, &str)],
) -> Result<(String, tokio::process::Child), Error> {
    start_command(binary, &[], env).await
}

/// Starts `program` with `args` and extra environment variables.
pub async fn start_command(
    binary: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(String, tokio::process::Child), Error> {
    let mut child = tokio::process::Command::new(binary)
        .args(args)
        .envs(env.iter().copied())
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("cannot start {binary}: {e} (cargo build --release -p echo -p loadgen)")
        })?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(url) = line.strip_prefix("listening on ") {
            return Ok((url.to_owned(), child));
        }
    }
    Err(format!("{binary} exited before listening").into())
}
