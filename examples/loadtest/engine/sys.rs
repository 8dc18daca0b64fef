//! What the process costs: CPU time from `getrusage`, peak resident memory
//! from `/proc/self/status` (`VmHWM`), reset per cell through
//! `/proc/self/clear_refs` where the kernel allows it.

use std::time::Duration;

/// CPU time (user + system) of every thread of the process so far.
pub fn process_cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live out-parameter.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Resets the kernel's peak-RSS counter (`VmHWM`) to the current RSS, so the
/// next [`peak_rss_mib`] covers only what follows. False if the kernel
/// refused; the peak then stays the process's since start.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// Peak resident memory since start or the last reset, in MiB.
pub fn peak_rss_mib() -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0.0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
