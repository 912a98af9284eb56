//! The server process, looked at before, during and after a run (`--server-pid`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::report::ServerFigures;
use crate::{Error, Options, Scenario, probe};

/// The server process's figures so far, and where its `/metrics` are.
pub(crate) struct ServerWatch {
    figures: ServerFigures,
    addr: SocketAddr,
}

impl ServerWatch {
    /// The baseline. Fails (the run does not start) when the process cannot be read.
    pub(crate) fn start(pid: u32, addr: SocketAddr) -> Result<Self, Error> {
        let before = probe::sample(Some(pid)).map_err(|source| Error::ServerPid { pid, source })?;
        // After the descriptors were counted: the request is a connection of its own.
        let open_before = probe::scrape(addr, "ticksock_connections_open").ok();
        Ok(Self {
            figures: ServerFigures {
                pid,
                fds_before: before.fds,
                fds_peak: before.fds,
                rss_kib_before: before.rss_kib,
                rss_kib_peak: before.rss_kib,
                hwm_kib_before: before.hwm_kib,
                open_before,
                ..ServerFigures::default()
            },
            addr,
        })
    }

    /// The look at the end of the steady window, every bot still connected (the workers wait
    /// for it before they close their sockets).
    pub(crate) fn loaded(&mut self) {
        self.sample();
        if let Ok(now) = probe::sample(Some(self.figures.pid)) {
            self.figures.fds_loaded = now.fds;
            self.figures.rss_kib_loaded = now.rss_kib;
        }
    }

    /// A look during the run, for the peaks.
    pub(crate) fn sample(&mut self) {
        if let Ok(now) = probe::sample(Some(self.figures.pid)) {
            let f = &mut self.figures;
            f.fds_peak = f.fds_peak.max(now.fds);
            f.rss_kib_peak = f.rss_kib_peak.max(now.rss_kib);
        }
    }

    /// Right after the run, then again after the settle delay, watching the descriptors
    /// come back to their baseline.
    pub(crate) fn finish(mut self, opts: &Options, connected: u64) -> ServerFigures {
        let pid = Some(self.figures.pid);
        let end = Instant::now();
        self.sample();
        let f = &mut self.figures;
        if let Ok(now) = probe::sample(pid) {
            f.fds_end = now.fds;
            f.rss_kib_end = now.rss_kib;
        }
        f.settle_secs = opts.settle.max(0.0);
        let settled_at = end + Duration::from_secs_f64(f.settle_secs);
        loop {
            let now = Instant::now();
            if f.fds_back_after_ms.is_none() && probe::open_fds(pid).is_ok_and(|fds| fds <= f.fds_before) {
                f.fds_back_after_ms = Some(now.duration_since(end).as_millis() as u64);
            }
            if now >= settled_at {
                break;
            }
            std::thread::sleep(Duration::from_millis(50).min(settled_at - now));
        }
        if let Ok(now) = probe::sample(pid) {
            f.fds_settled = now.fds;
            f.rss_kib_settled = now.rss_kib;
            f.hwm_kib_settled = now.hwm_kib;
        }
        f.open_settled = probe::scrape(self.addr, "ticksock_connections_open").ok();
        f.fds_back = f.fds_settled <= f.fds_before + opts.max_fd_growth;
        if opts.scenario == Scenario::Idle && connected > 0 {
            let growth = f.rss_kib_loaded as f64 - f.rss_kib_before as f64;
            f.rss_per_connection_kib = Some(growth / connected as f64);
        }
        self.figures
    }
}
