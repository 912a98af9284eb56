//! CPU time of this process and of the calling thread, from procfs.

/// CPU time (user + system) of the process, in seconds, from `/proc/self/stat`.
pub fn process_cpu_secs() -> f64 {
    proc_stat_cpu("/proc/self/stat")
}

/// CPU time of the calling thread, in seconds, from `/proc/thread-self/stat`.
pub fn thread_cpu_secs() -> f64 {
    proc_stat_cpu("/proc/thread-self/stat")
}

/// Reads utime + stime from a `stat` file of procfs. Linux reports them in clock ticks of
/// `USER_HZ`, which is 100 on every architecture Linux supports for this interface. 0 when
/// the file cannot be read (not Linux).
fn proc_stat_cpu(path: &str) -> f64 {
    const USER_HZ: f64 = 100.0;
    let Ok(text) = std::fs::read_to_string(path) else { return 0.0 };
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let Some(after) = text.rfind(')').map(|i| &text[i + 1..]) else { return 0.0 };
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so utime (field 14) is at 11 and stime (15) at 12.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / USER_HZ
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_and_grows() {
        let before = thread_cpu_secs();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(60) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_secs() > before, "60 ms of spinning shows up in the thread's CPU time");
        assert!(process_cpu_secs() >= thread_cpu_secs());
    }
}
