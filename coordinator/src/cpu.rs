//! CPU time of this process and of some of its threads, read from `/proc`, for the
//! per-phase and per-round cost reports of `cairn simulate` (where the coordinator shares
//! the process with the holders, on a runtime of its own whose threads carry its name).
//!
//! Linux only: elsewhere each reader returns an error.

use std::io;

/// CPU seconds used so far by the live threads of this process whose name starts with
/// `prefix` (Linux truncates thread names to 15 bytes), from each thread's
/// `/proc/self/task/<tid>/schedstat` (nanoseconds on a CPU). Threads that have exited are
/// not counted: give the coordinator's runtime threads that live as long as it does.
pub fn threads_cpu_seconds(prefix: &str) -> io::Result<f64> {
    let mut total_ns: u64 = 0;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let dir = entry?.path();
        // A thread may exit between the listing and the reads: skip it.
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        total_ns = total_ns.saturating_add(parse_schedstat(&stat)?);
    }
    Ok(total_ns as f64 * 1e-9)
}

/// CPU seconds (user and system) used so far by the whole process, threads that have
/// exited included, from `/proc/self/stat` (in clock ticks of 1/100 s, Linux's USER_HZ).
pub fn process_cpu_seconds() -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    parse_stat_cpu(&stat)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// The first field of a `schedstat` line: nanoseconds spent on a CPU.
fn parse_schedstat(text: &str) -> io::Result<u64> {
    text.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| invalid("malformed schedstat"))
}

/// utime + stime of a `/proc/<pid>/stat` line, in seconds. The command name (field 2) is
/// in parentheses and may hold spaces, so fields are counted after its closing `)`.
fn parse_stat_cpu(text: &str) -> io::Result<f64> {
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| invalid("malformed stat"))?;
    // After the name: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| invalid("malformed stat"))
    };
    Ok((tick(11)? + tick(12)?) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_lines() {
        assert_eq!(parse_schedstat("109772 4166553 2\n").ok(), Some(109_772));
        assert!(parse_schedstat("").is_err());
        let stat = "4242 (cairn sim) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu(stat).ok(), Some(3.0));
        assert!(parse_stat_cpu("4242 (x) S 1").is_err());
    }

    #[test]
    fn this_process_uses_some_cpu() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        if std::path::Path::new("/proc/self/task").exists() {
            assert!(process_cpu_seconds().is_ok_and(|s| s >= 0.0));
            assert!(threads_cpu_seconds("").is_ok_and(|s| s > 0.0));
            assert!(threads_cpu_seconds("no-such-thread-name").is_ok_and(|s| s == 0.0));
        }
    }
}
