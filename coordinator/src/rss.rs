//! The coordinator's resident memory, read from `/proc/self/status`, for the report that its
//! memory stays flat across the rounds of a long job (RSS at round 1 and at the last round).
//!
//! Linux only: elsewhere [`sample`] returns [`RssError::Unavailable`].

use std::path::Path;

/// Resident memory of the process, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemorySample {
    /// Resident set size now (`VmRSS`).
    pub rss_bytes: u64,
    /// Highest resident set size so far (`VmHWM`).
    pub peak_bytes: u64,
}

/// Why memory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RssError {
    /// `/proc/self/status` could not be read (not Linux, or no procfs).
    #[error("process memory is unavailable: {0}")]
    Unavailable(#[from] std::io::Error),
    /// The status text lacks the field.
    #[error("{0} is missing from the process status")]
    Missing(&'static str),
    /// The field's line is not `<name>: <number> kB`.
    #[error("cannot read {field} from {line:?}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// The line found.
        line: String,
    },
}

/// Reads `field` (`VmRSS`, `VmHWM`, …) from the text of a `/proc/<pid>/status` file, in bytes.
pub fn parse_status_field(status: &str, field: &'static str) -> Result<u64, RssError> {
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))
        .ok_or(RssError::Missing(field))?;
    let malformed = || RssError::Malformed {
        field,
        line: line.to_string(),
    };
    let mut words = line[field.len() + 1..].split_whitespace();
    let kib: u64 = words
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(malformed)?;
    if words.next() != Some("kB") || words.next().is_some() {
        return Err(malformed());
    }
    kib.checked_mul(1024).ok_or_else(malformed)
}

/// Reads the memory of the process whose status file is `path`.
pub fn sample_from(path: &Path) -> Result<MemorySample, RssError> {
    let status = std::fs::read_to_string(path)?;
    Ok(MemorySample {
        rss_bytes: parse_status_field(&status, "VmRSS")?,
        peak_bytes: parse_status_field(&status, "VmHWM")?,
    })
}

/// This process's memory now.
pub fn sample() -> Result<MemorySample, RssError> {
    sample_from(Path::new("/proc/self/status"))
}

/// Memory samples taken after rounds, for a "flat across rounds" report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryLog {
    samples: Vec<(u32, MemorySample)>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Samples this process's memory after `round` and keeps it.
    pub fn record(&mut self, round: u32) -> Result<MemorySample, RssError> {
        let s = sample()?;
        self.samples.push((round, s));
        Ok(s)
    }

    /// Keeps a sample taken elsewhere.
    pub fn push(&mut self, round: u32, sample: MemorySample) {
        self.samples.push((round, sample));
    }

    /// Every sample, in the order taken.
    pub fn samples(&self) -> &[(u32, MemorySample)] {
        &self.samples
    }

    /// The first and last samples' resident sizes and the growth between them in bytes
    /// (negative when memory shrank), once there are two samples.
    pub fn growth(&self) -> Option<(u64, u64, i64)> {
        let (_, first) = self.samples.first()?;
        let (_, last) = self.samples.last()?;
        if self.samples.len() < 2 {
            return None;
        }
        let delta = i128::from(last.rss_bytes) - i128::from(first.rss_bytes);
        let delta = i64::try_from(delta).unwrap_or(if delta > 0 { i64::MAX } else { i64::MIN });
        Some((first.rss_bytes, last.rss_bytes, delta))
    }

    /// One line for the report, e.g. `RSS 41.2 MiB at round 1, 41.9 MiB at round 50 (+0.7 MiB)`.
    pub fn summary(&self) -> Option<String> {
        let (first, last, delta) = self.growth()?;
        let (r1, _) = self.samples.first()?;
        let (rn, _) = self.samples.last()?;
        let mib = |b: f64| b / (1024.0 * 1024.0);
        Some(format!(
            "RSS {:.1} MiB at round {r1}, {:.1} MiB at round {rn} ({:+.1} MiB)",
            mib(first as f64),
            mib(last as f64),
            mib(delta as f64)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tcairn\nVmPeak:\t  200000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t4\n";

    #[test]
    fn fields_are_parsed_in_bytes() {
        assert_eq!(parse_status_field(STATUS, "VmRSS").expect("rss"), 40 << 20);
        assert_eq!(parse_status_field(STATUS, "VmHWM").expect("hwm"), 50 << 20);
    }

    #[test]
    fn bad_status_text_is_an_error_not_a_panic() {
        assert!(matches!(
            parse_status_field("Name: x\n", "VmRSS"),
            Err(RssError::Missing("VmRSS"))
        ));
        for bad in [
            "VmRSS:\n",
            "VmRSS: lots kB\n",
            "VmRSS: 12 MB\n",
            "VmRSS: 12\n",
            "VmRSS: 12 kB extra\n",
            "VmRSS: -3 kB\n",
            "VmRSS: 99999999999999999999 kB\n",
            "VmRSS: 18014398509481984 kB\n", // × 1024 overflows u64
        ] {
            assert!(
                matches!(
                    parse_status_field(bad, "VmRSS"),
                    Err(RssError::Malformed { field: "VmRSS", .. })
                ),
                "{bad:?}"
            );
        }
        // A longer field name with the same prefix is not the field.
        assert!(matches!(
            parse_status_field("VmRSSx: 1 kB\n", "VmRSS"),
            Err(RssError::Missing(_))
        ));
        let missing = std::path::Path::new("/nonexistent/cairn/status");
        assert!(matches!(
            sample_from(missing),
            Err(RssError::Unavailable(_))
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn resident_memory_follows_touched_allocations() {
        let before = sample().expect("sample");
        assert!(before.rss_bytes > 0 && before.peak_bytes >= before.rss_bytes);
        // Touch 64 MiB (non-zero bytes, so every page is resident).
        let block = vec![1u8; 64 << 20];
        let during = sample().expect("sample");
        assert!(
            during.rss_bytes >= before.rss_bytes + (48 << 20),
            "{before:?} → {during:?}"
        );
        assert!(during.peak_bytes >= during.rss_bytes);
        assert_eq!(block.iter().map(|&b| u64::from(b)).sum::<u64>(), 64 << 20);
        drop(block);
    }

    #[test]
    fn the_log_reports_first_and_last_round() {
        let mut log = MemoryLog::new();
        assert_eq!(log.growth(), None);
        let s = |mib: u64| MemorySample {
            rss_bytes: mib << 20,
            peak_bytes: mib << 20,
        };
        log.push(1, s(40));
        assert_eq!(log.summary(), None, "one sample is no trend");
        log.push(25, s(44));
        log.push(50, s(41));
        assert_eq!(log.growth(), Some((40 << 20, 41 << 20, 1 << 20)));
        assert_eq!(
            log.summary().expect("summary"),
            "RSS 40.0 MiB at round 1, 41.0 MiB at round 50 (+1.0 MiB)"
        );
        #[cfg(target_os = "linux")]
        {
            let taken = log.record(51).expect("record");
            assert_eq!(log.samples().last(), Some(&(51, taken)));
        }
    }
}
