//! Starting a server, and the handle that stops it.
//!
//! # Shutdown sequence
//! [`RunningServer::shutdown`], a [`Stopper`], or SIGINT/SIGTERM under
//! [`RunningServer::run_until_signal`] runs these steps in order:
//! 1. The reactor stops accepting and stops reading requests. Everything it has read is already
//!    on its way to the logic thread, followed by a shutdown marker.
//! 2. The logic thread handles every request ahead of the marker, waits for the jobs in flight
//!    on the worker pool (their continuations run, so their calls are answered; at most
//!    [`JOB_DRAIN`](crate::jobs::JOB_DRAIN)), runs [`Game::on_shutdown`], fails every deferred
//!    call still unanswered with `SHUTTING_DOWN`, sends its last batch and exits.
//! 3. The reactor writes that batch, sends close 1001 to every client, and waits for them to
//!    close, at most [`Config::close_timeout`].
//! 4. The threads are joined: the reactor, the logic thread, the job workers (which run what
//!    was still queued), and in a cluster the bridge's writer (which says goodbye to the other
//!    nodes) and reader.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::Poll;
use mio::net::TcpListener;

use crate::bridge::wake::Wake;
use crate::config::{LogicPriority, tick_rate};
use crate::logic::{Logic, LogicStats};
use crate::metrics::Metrics;
use crate::net::certs::Certs;
use crate::net::{Reactor, WAKER};
use crate::{Config, Error, Game};

/// Connections the kernel may hold completed but not yet accepted. The standard library's
/// 128 overflows when thousands of clients connect at once (each overflow costs the client a
/// 1 s SYN retransmit); the kernel clamps this to `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listener on `addr`, with `SO_REUSEADDR` (a restarted server rebinds at once)
/// and [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // Set here because socket2 sets no option on a new socket. Without it, a server restarted
    // after a crash cannot bind while the dead one's connections linger in FIN_WAIT or
    // TIME_WAIT ("Address already in use": arena/tests/crash.rs fails so). std's and mio's
    // `TcpListener::bind` set it too, on Unix only (mio 1.2.5, src/net/tcp/listener.rs:
    // `#[cfg(not(windows))] set_reuseaddr(&listener.inner, true)`), but take no backlog. Not on
    // Windows, for their reason: there it lets another socket bind a port in use.
    #[cfg(not(windows))]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Short sleeps timed to find the OS timer's shortest wait; the shortest of them is the one
/// least disturbed by other threads.
const TIMER_SAMPLES: u32 = 5;

/// The shortest wait the OS timer gives this thread: the shortest of [`TIMER_SAMPLES`] sleeps
/// of 1 µs. A sleep and the logic thread's timed park both arm one kernel timer, so they wake
/// alike.
fn measure_timer_floor() -> Duration {
    (0..TIMER_SAMPLES)
        .map(|_| {
            let asleep = Instant::now();
            std::thread::sleep(Duration::from_micros(1));
            asleep.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Starts servers.
pub struct Server;

impl Server {
    /// Binds `config.listen` and starts the reactor and logic threads for `game`.
    ///
    /// Warns (`tracing::warn!`) when the OS timer cannot hold `config.tick_hz`: when the tick
    /// period spans fewer than two of the timer's shortest waits (the reason is in
    /// `config::tick_rate`), measured here by a few short sleeps, which take well under a
    /// millisecond.
    pub fn start<G: Game>(config: Config, game: G) -> Result<RunningServer, Error> {
        config.validate()?;
        // Before anything starts: a certificate that does not load stops the server here.
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(Certs::load(cert, key).map_err(Error::Tls)?)),
            _ => None,
        };
        let timer_floor = measure_timer_floor();
        if !tick_rate::holds(config.tick_period(), timer_floor) {
            tracing::warn!(
                tick_hz = config.tick_hz,
                period = ?config.tick_period(),
                timer_floor = ?timer_floor,
                "this machine's timer cannot hold --tick-hz {}: a wait for a tick's deadline takes \
                 at least {timer_floor:?}, over half the period; expect skipped ticks",
                config.tick_hz
            );
        }
        let std_listener =
            listen(config.listen).map_err(|source| Error::Bind { addr: config.listen, source })?;
        let local_addr = std_listener.local_addr()?;
        let listener = TcpListener::from_std(std_listener);

        let poll = Poll::new()?;
        let wake = Arc::new(Wake::new(mio::Waker::new(poll.registry(), WAKER)?));
        let stop = Arc::new(AtomicBool::new(false));
        let (reactor_ends, logic_ends) = crate::bridge::channels(config.inbound_queue, config.outbound_queue);

        let logic_priority = config.logic_priority;
        let shutdown_timeout = config.shutdown_timeout;
        let mut logic = Logic::new(game);
        let (jobs, workers) =
            crate::jobs::pool::start(config.job_workers, config.job_queue, logic_ends.doorbell.clone())?;
        logic.use_job_pool(jobs);
        logic.set_auth_grace(config.auth_grace);
        let metrics = Arc::new(Metrics::default());
        let cluster = match config.cluster.clone() {
            None => None,
            Some(cluster) => {
                let registry =
                    crate::cluster::Registry::new(&cluster.node_name_at(local_addr), cluster.lease);
                let (link, threads) = crate::cluster::bridge::start(
                    &cluster,
                    local_addr,
                    metrics.cluster_shared(),
                    logic_ends.doorbell.clone(),
                )
                .map_err(Error::Cluster)?;
                logic.join_cluster(link, registry);
                Some(threads)
            }
        };
        let routes = logic.route_table();
        let period = config.tick_period();
        let reactor = Reactor::new(
            poll,
            listener,
            config,
            routes,
            reactor_ends,
            wake.clone(),
            stop.clone(),
            metrics.clone(),
            tls.clone(),
        )?;

        let logic_wake = wake.clone();
        let logic_metrics = metrics.clone();
        let doorbell = logic_ends.doorbell.clone();
        let (priority_tx, priority_rx) = std::sync::mpsc::sync_channel(1);
        let logic = std::thread::Builder::new().name("logic".into()).spawn(move || {
            let applied = crate::logic::priority::set_priority(logic_priority);
            let _ = priority_tx.send(applied);
            crate::logic::thread::run(logic, period, applied, logic_ends, logic_wake, &logic_metrics)
                .stats()
                .clone()
        })?;
        // Before the reactor runs, so that its first batch already rings the logic thread.
        doorbell.answered_by(logic.thread().clone());
        let reactor = std::thread::Builder::new().name("reactor".into()).spawn(move || reactor.run())?;
        // The logic thread reports before it does anything else; if it died first, say Normal.
        let logic_priority = priority_rx.recv().unwrap_or(LogicPriority::Normal);
        Ok(RunningServer {
            local_addr,
            stop,
            wake,
            reactor,
            logic,
            metrics,
            logic_priority,
            shutdown_timeout,
            cluster,
            workers,
            tls,
        })
    }
}

/// A server that is running. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    wake: Arc<Wake>,
    reactor: JoinHandle<std::io::Result<()>>,
    logic: JoinHandle<LogicStats>,
    metrics: Arc<Metrics>,
    logic_priority: LogicPriority,
    shutdown_timeout: Duration,
    /// The cluster's threads, in a cluster.
    cluster: Option<crate::cluster::bridge::ClusterThreads>,
    /// The job pool's workers.
    workers: crate::jobs::pool::Workers,
    /// The TLS certificate, with `--tls-cert` and `--tls-key`.
    tls: Option<Arc<Certs>>,
}

impl RunningServer {
    /// The address it listens on (useful when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How the OS schedules the logic thread: what `Config::logic_priority` asked for, or
    /// the step it fell back to.
    pub fn logic_priority(&self) -> LogicPriority {
        self.logic_priority
    }

    /// The server's metrics, as its threads last published them.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A handle that asks the server to shut down, for signal handlers and other threads.
    pub fn stopper(&self) -> Stopper {
        Stopper { stop: self.stop.clone(), wake: self.wake.clone() }
    }

    /// Loads the TLS certificate and key again from their files (what SIGHUP does under
    /// [`RunningServer::run_until_signal`]): connections accepted from now on use them, open
    /// ones keep theirs. On failure the server keeps the certificate it had and the error
    /// says why; without TLS there is nothing to reload and it says so.
    pub fn reload_tls(&self) -> Result<(), Error> {
        reload(self.tls.as_deref())
    }

    /// Runs the shutdown sequence (see the module docs) and waits for it.
    pub fn shutdown(self) -> Result<LogicStats, Error> {
        self.stopper().stop();
        self.wait()
    }

    /// Runs until SIGINT (Ctrl-C) or SIGTERM, then runs the shutdown sequence (see the module
    /// docs) and returns when it is done: what a game's `main` calls after
    /// [`Server::start`]. With TLS it also watches SIGHUP, on which it reloads the certificate
    /// and key ([`RunningServer::reload_tls`]; a failure is logged and changes nothing). If the sequence takes longer than [`Config::shutdown_timeout`], the
    /// process exits with status 1; a second signal during it exits at once with status 130.
    /// Once it returns, the process is the game's again: nothing will exit it, and the
    /// signals are no longer watched (signal-hook does not restore their default action, so a
    /// later SIGINT or SIGTERM is ignored unless the game handles it).
    ///
    /// Fails at once, with the server still running, if the signal handlers cannot be
    /// installed; stop it with [`RunningServer::shutdown`] then.
    pub fn run_until_signal(self) -> Result<LogicStats, Error> {
        let watch = SignalWatch::start(self.stopper(), self.shutdown_timeout, self.tls.clone())?;
        let stopped = self.wait();
        watch.end();
        stopped
    }

    /// Waits until the server stops (after a [`Stopper::stop`]).
    pub fn wait(self) -> Result<LogicStats, Error> {
        let reactor = self.reactor.join().map_err(|_| Error::Panicked("reactor"))?;
        let stats = self.logic.join().map_err(|_| Error::Panicked("logic"))?;
        // The logic thread has dropped its end of the job queue: the workers finish what was
        // queued (a write acknowledged to no one yet still lands), then exit.
        self.workers.join();
        // After the logic thread: its last pushes to other nodes are written, then this node
        // says goodbye to the cluster.
        if let Some(cluster) = self.cluster {
            cluster.join();
        }
        reactor?;
        Ok(stats)
    }
}

/// Reloads `tls`, if the server has TLS.
fn reload(tls: Option<&Certs>) -> Result<(), Error> {
    let certs = tls.ok_or_else(|| Error::Tls("this server has no --tls-cert to reload".into()))?;
    certs.reload().map_err(Error::Tls)
}

/// Asks a running server to shut down. Cheap to clone; safe from any thread.
#[derive(Clone)]
pub struct Stopper {
    stop: Arc<AtomicBool>,
    wake: Arc<Wake>,
}

impl Stopper {
    /// Starts the shutdown sequence; returns at once.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.wake_now();
    }
}

/// The signals `run_until_signal` watches: on the first SIGINT or SIGTERM it starts the
/// shutdown sequence and arms a watchdog that ends the process if the sequence takes longer
/// than its timeout; a second signal ends the process at once. [`SignalWatch::end`] stops
/// watching and disarms the watchdog.
struct SignalWatch {
    handle: signal_hook::iterator::Handle,
    /// Dropped to tell the watchdog the shutdown finished in time.
    finished: std::sync::mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl SignalWatch {
    fn start(stopper: Stopper, timeout: Duration, tls: Option<Arc<Certs>>) -> std::io::Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        // SIGHUP only with TLS: without a certificate to reload, it keeps its usual meaning.
        let watched: &[i32] = if tls.is_some() { &[SIGINT, SIGTERM, SIGHUP] } else { &[SIGINT, SIGTERM] };
        let mut signals = signal_hook::iterator::Signals::new(watched)?;
        let handle = signals.handle();
        let (finished, watchdog) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("signals".into()).spawn(move || {
            let mut watchdog = Some(watchdog);
            for signal in signals.forever() {
                if signal == SIGHUP {
                    match reload(tls.as_deref()) {
                        Ok(()) => tracing::info!("SIGHUP: reloaded the TLS certificate and key"),
                        Err(e) => tracing::error!("SIGHUP: {e}; keeping the certificate in use"),
                    }
                    continue;
                }
                let Some(finished) = watchdog.take() else {
                    tracing::warn!("second signal {signal}, exiting now");
                    std::process::exit(130);
                };
                tracing::info!("signal {signal}, shutting down (at most {timeout:?})");
                stopper.stop();
                std::thread::spawn(move || {
                    // Disconnected (the sequence finished) wakes this at once; only a timeout
                    // ends the process.
                    if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(timeout) {
                        tracing::error!("shutdown took longer than {timeout:?}, exiting");
                        std::process::exit(1);
                    }
                });
            }
        })?;
        Ok(Self { handle, finished, thread })
    }

    /// The server has stopped: disarm the watchdog and stop watching the signals.
    fn end(self) {
        drop(self.finished);
        self.handle.close();
        // The thread ends as soon as `forever` sees the handle closed.
        let _ = self.thread.join();
    }
}
