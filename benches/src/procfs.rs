//! What a process (and its children) costs: CPU time and memory, read from `/proc`.

use std::fs;
use std::io;
use std::time::Duration;

/// Linux reports CPU times in USER_HZ ticks, which is 100 on every mainstream architecture.
const TICKS_PER_SEC: u64 = 100;

/// CPU time split by mode: user space (the program's own work) and kernel (syscalls, TCP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time in user mode.
    pub user: Duration,
    /// Time in the kernel on the process's behalf.
    pub system: Duration,
}

impl CpuTime {
    /// User plus system.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The time spent since `earlier`.
    pub fn since(&self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    fn from_ticks(user: u64, system: u64) -> Self {
        let d = |t: u64| Duration::from_millis(t * 1000 / TICKS_PER_SEC);
        Self {
            user: d(user),
            system: d(system),
        }
    }
}

/// The fields of `/proc/PID/stat` this module needs.
struct Stat {
    ppid: u32,
    /// utime + cutime: the process's own user time and that of the children it reaped.
    user_ticks: u64,
    /// stime + cstime, likewise.
    system_ticks: u64,
}

fn stat(pid: u32) -> io::Result<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no ')' in stat"))?;
    // `rest` starts at field 3 (state); utime is field 14, so index 11 here.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> io::Result<u64> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("stat field {i}")))
    };
    Ok(Stat {
        ppid: num(1)? as u32,
        user_ticks: num(11)? + num(13)?,
        system_ticks: num(12)? + num(14)?,
    })
}

/// `pid` and all its living descendants.
pub fn tree(pid: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| Some((p, stat(p).ok()?.ppid)))
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found
}

/// CPU time (all threads) used so far by `pid` and its living descendants.
pub fn tree_cpu(pid: u32) -> CpuTime {
    let (user, system) = tree(pid)
        .into_iter()
        .filter_map(|p| stat(p).ok())
        .fold((0, 0), |(u, s), st| {
            (u + st.user_ticks, s + st.system_ticks)
        });
    CpuTime::from_ticks(user, system)
}

/// A `kB` line of `/proc/PID/status`, e.g. `VmRSS` or `VmHWM`, in KiB.
pub fn status_kib(pid: u32, key: &str) -> io::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{key} in status")))
}

/// A `kB` line of `/proc/PID/status` summed over `pid` and its descendants, in KiB.
pub fn tree_status_kib(pid: u32, key: &str) -> u64 {
    tree(pid)
        .into_iter()
        .filter_map(|p| status_kib(p, key).ok())
        .sum()
}

/// The whole machine's CPU time so far, over all cores: (busy, total), from `/proc/stat`.
pub fn machine_cpu() -> io::Result<(Duration, Duration)> {
    let text = fs::read_to_string("/proc/stat")?;
    let line = text.lines().next().unwrap_or_default();
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // Fields: user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    let t = CpuTime::from_ticks(total - idle, idle);
    Ok((t.user, t.user + t.system))
}

/// Open file descriptors of `pid` (sockets included).
pub fn fd_count(pid: u32) -> io::Result<usize> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id();
        assert!(status_kib(me, "VmRSS").unwrap() > 0);
        assert!(tree(me).contains(&me));
        assert!(fd_count(me).unwrap() > 0);
        let _ = tree_cpu(me);
        let (busy, total) = machine_cpu().unwrap();
        assert!(busy <= total);
    }
}
