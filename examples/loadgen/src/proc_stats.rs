//! What /proc says about the server process: resident memory and CPU time.

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The CPU time a process used so far (user + system), in seconds.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the command name, which may hold spaces, in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Clock ticks per second of /proc's CPU times (USER_HZ, which Linux
/// fixes at 100 for user space).
fn clock_ticks() -> f64 {
    100.0
}

/// Raises this process's open-file limit (children inherit it) towards
/// `wanted`, as far as the hard limit allows; returns the limit now.
pub fn raise_open_files(wanted: u64) -> u64 {
    let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return 0;
    };
    let target = wanted.min(hard).max(soft);
    if rlimit::setrlimit(rlimit::Resource::NOFILE, target, hard).is_ok() {
        target
    } else {
        soft
    }
}

/// The CPU time a process's threads have run so far, in seconds, to the
/// nanosecond (the scheduler's own account, `/proc/PID/task/*/schedstat`;
/// `cpu_seconds` counts in 10 ms ticks). Threads that have exited are not
/// counted, so compare only across spans where a server keeps its threads
/// (Tokio's workers).
pub fn cpu_seconds_precise(pid: Option<u32>) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", pid?)).ok()?;
    let mut nanos: u64 = 0;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        nanos += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(nanos as f64 / 1e9)
}
