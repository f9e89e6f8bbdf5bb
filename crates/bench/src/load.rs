//! Other load on the machine while a figure was taken: CPU time used by every process
//! except this one, as a share of all CPUs (the "other load" column of
//! `guides/limits.md`). Read from Linux `/proc`; elsewhere it is simply unknown.

use std::fs;

use crate::measure::count_to_f64;

/// CPU tick counters at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    /// Ticks of all CPUs, busy or not.
    total: u64,
    /// Busy ticks of all CPUs.
    busy: u64,
    /// Ticks this process used (user and system, every thread).
    own: u64,
}

impl CpuSample {
    /// The counters now, or `None` where `/proc` is missing or unreadable.
    pub(crate) fn now() -> Option<Self> {
        let stat = fs::read_to_string("/proc/stat").ok()?;
        let own = fs::read_to_string("/proc/self/stat").ok()?;
        Self::parse(&stat, &own)
    }

    fn parse(stat: &str, own_stat: &str) -> Option<Self> {
        // "cpu  user nice system idle iowait irq softirq steal guest guest_nice";
        // guest time is already counted in user.
        let line = stat.lines().next()?;
        let mut fields = line.split_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        let ticks: Vec<u64> = fields
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let total: u64 = ticks.iter().sum();
        let idle = ticks.get(3)?.saturating_add(*ticks.get(4)?);
        // Fields after the parenthesised command name start at field 3 (state);
        // utime and stime are fields 14 and 15.
        let (_, after_name) = own_stat.rsplit_once(')')?;
        let mut own = after_name.split_whitespace().skip(11);
        let utime: u64 = own.next()?.parse().ok()?;
        let stime: u64 = own.next()?.parse().ok()?;
        Some(Self {
            total,
            busy: total.saturating_sub(idle),
            own: utime.saturating_add(stime),
        })
    }

    /// Percent of all CPUs that other processes used between two samples.
    pub(crate) fn other_load_percent(before: Option<Self>, after: Option<Self>) -> Option<f64> {
        let (before, after) = (before?, after?);
        let total = after.total.checked_sub(before.total)?;
        if total == 0 {
            return None;
        }
        let busy = after.busy.saturating_sub(before.busy);
        let own = after.own.saturating_sub(before.own);
        let other = busy.saturating_sub(own);
        Some(100.0 * count_to_f64(other) / count_to_f64(total))
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` prints them.
pub(crate) fn load_average() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    (fields.len() == 3).then(|| fields.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n";
    const OWN: &str = "42 (my (odd) name) R 1 2 3 4 5 6 7 8 9 10 30 20 0 0";

    #[test]
    fn parses_proc_counters() {
        let s = CpuSample::parse(STAT, OWN).unwrap();
        assert_eq!(s.total, 1000);
        assert_eq!(s.busy, 150);
        assert_eq!(s.own, 50);
    }

    #[test]
    fn other_load_excludes_our_own_time() {
        let before = CpuSample::parse(STAT, OWN).unwrap();
        let after = CpuSample {
            total: before.total + 200,
            busy: before.busy + 120,
            own: before.own + 100,
        };
        let other = CpuSample::other_load_percent(Some(before), Some(after)).unwrap();
        assert!((other - 10.0).abs() < 1e-9);
        assert_eq!(CpuSample::other_load_percent(None, Some(after)), None);
    }

    #[test]
    fn reads_this_machine_when_proc_exists() {
        if std::path::Path::new("/proc/stat").exists() {
            assert!(CpuSample::now().is_some());
            assert!(load_average().is_some());
        }
    }
}
