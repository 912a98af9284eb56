//! What a process looks like from outside: its open descriptors and resident memory from
//! `/proc`, and a ticksock server's metrics from `GET /metrics`.
//! Linux only; every function fails cleanly elsewhere.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// One look at a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Open file descriptors (entries of `/proc/PID/fd`).
    pub fds: u64,
    /// Resident memory, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Resident high-water mark since the process started, KiB (`VmHWM`).
    pub hwm_kib: u64,
}

/// `/proc/PID`, or `/proc/self` for `None`.
fn proc_dir(pid: Option<u32>) -> PathBuf {
    match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}")),
        None => PathBuf::from("/proc/self"),
    }
}

/// The open descriptors of process `pid` (`None`: this process). For this process the count
/// includes the descriptor that reads the directory, every time, so counts compare.
pub fn open_fds(pid: Option<u32>) -> std::io::Result<u64> {
    Ok(std::fs::read_dir(proc_dir(pid).join("fd"))?.count() as u64)
}

/// Descriptors, `VmRSS` and `VmHWM` of process `pid` (`None`: this process).
pub fn sample(pid: Option<u32>) -> std::io::Result<Sample> {
    let fds = open_fds(pid)?;
    let status = std::fs::read_to_string(proc_dir(pid).join("status"))?;
    let missing = |key| std::io::Error::other(format!("no {key} in /proc/PID/status"));
    let rss_kib = status_kib(&status, "VmRSS:").ok_or_else(|| missing("VmRSS"))?;
    let hwm_kib = status_kib(&status, "VmHWM:").ok_or_else(|| missing("VmHWM"))?;
    Ok(Sample { fds, rss_kib, hwm_kib })
}

/// The value of a `Key:   1234 kB` line.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The value of metric `name` (an unlabelled counter or gauge) in the server's `GET /metrics`.
pub fn scrape(addr: SocketAddr, name: &str) -> Result<u64, String> {
    let text = metrics_text(addr)?;
    metric_value(&text, name).ok_or_else(|| format!("no {name} in the /metrics answer"))
}

/// The server's whole `GET /metrics` answer (headers included), to read several metrics from
/// one request with [`metric_value`].
pub fn metrics_text(addr: SocketAddr) -> Result<String, String> {
    let timeout = Duration::from_secs(2);
    let mut tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).map_err(|e| format!("send: {e}"))?;
    let mut text = String::new();
    tcp.read_to_string(&mut text).map_err(|e| format!("read: {e}"))?;
    Ok(text)
}

/// The value of the unlabelled metric `name` in a `/metrics` answer.
pub fn metric_value(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_read_and_an_open_descriptor_is_listed() {
        use std::os::fd::AsRawFd;
        let now = sample(None).expect("procfs");
        assert!(now.fds >= 3 && now.rss_kib > 0 && now.hwm_kib >= now.rss_kib, "{now:?}");
        let file = std::fs::File::open("/proc/self/status").expect("open");
        // (Other tests of this binary run in parallel, so counts are not compared here.)
        assert!(proc_dir(None).join("fd").join(file.as_raw_fd().to_string()).exists());
    }

    #[test]
    fn status_and_metrics_lines_parse() {
        let status = "Name:\tserver\nVmHWM:\t   40960 kB\nVmRSS:\t   32100 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(32100));
        assert_eq!(status_kib(status, "VmHWM:"), Some(40960));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        let metrics = "# HELP ticksock_connections_open Connections open now.\n\
                       # TYPE ticksock_connections_open gauge\nticksock_connections_open 7\n\
                       ticksock_connections_open_total 9\n";
        assert_eq!(metric_value(metrics, "ticksock_connections_open"), Some(7));
        assert_eq!(metric_value(metrics, "ticksock_connections"), None);
    }
}
