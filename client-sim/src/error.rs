//! The crate's one error type: why a run could not start, or stopped without a report.

/// Why [`run`](crate::run) returned no report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not one the client library can use, or its host does not resolve. Fix it.
    #[error(transparent)]
    Client(#[from] ticksock_client::Error),
    /// The options do not make sense together (say which, and why). Fix them.
    #[error("{0}")]
    Options(String),
    /// The process could not be read (`--server-pid`): check the pid, and that it is a process
    /// on this machine whose `/proc` entries this user may read.
    #[error("--server-pid {pid}: /proc/{pid}: {source}")]
    ServerPid {
        /// The pid asked for.
        pid: u32,
        /// What reading `/proc` said.
        source: std::io::Error,
    },
    /// No bot was welcomed within `--first-connect-timeout` of the start: most likely no server
    /// listens at the URL. Start it, or check the URL.
    #[error(
        "no bot connected to {url} within {secs} s ({attempts} connection attempts; the latest error: \
         {last_error}). Is the server running, and at that address?"
    )]
    NoConnection {
        /// The server's URL.
        url: String,
        /// `--first-connect-timeout`.
        secs: f64,
        /// Connection attempts made.
        attempts: u64,
        /// What the latest failed attempt said ("none" if no attempt had failed yet).
        last_error: String,
    },
    /// A worker thread could not be started, or its event loop failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A worker thread panicked: a bug.
    #[error("a worker thread panicked")]
    WorkerPanicked,
}
