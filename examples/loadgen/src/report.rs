//! Latency samples and their summary.

use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Round-trip times of one run and how long the run took.
pub struct Samples {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Samples {
    pub fn new(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort();
        Self { latencies, elapsed }
    }

    /// Joins several runs: all their samples, their summed time.
    pub fn merge(runs: Vec<Samples>) -> Self {
        let elapsed = runs.iter().map(|r| r.elapsed).sum();
        let latencies = runs.into_iter().flat_map(|r| r.latencies).collect();
        Self::new(latencies, elapsed)
    }

    pub fn count(&self) -> usize {
        self.latencies.len()
    }

    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }

    pub fn print(&self, indent: &str) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!("{indent}messages echoed: {}", self.latencies.len());
        println!(
            "{indent}duration:        {:.2} s",
            self.elapsed.as_secs_f64()
        );
        println!("{indent}throughput:      {:.0} echoes/s", self.throughput());
        println!(
            "{indent}latency p50:     {:.3} ms",
            ms(self.percentile(0.50))
        );
        println!(
            "{indent}latency p99:     {:.3} ms",
            ms(self.percentile(0.99))
        );
    }
}

/// Waits for every session task and joins their round trips into one run
/// that began at `started`.
pub async fn gather(
    tasks: Vec<JoinHandle<Result<Vec<Duration>, crate::server::Error>>>,
    started: Instant,
) -> Result<Samples, crate::server::Error> {
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Samples::new(latencies, started.elapsed()))
}
