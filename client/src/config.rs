//! Every timing and bound of a session, with its default.

use std::time::Duration;

/// A session's configuration. [`Config::default`] suits a game client on the internet; tests
/// shorten the timings.
///
/// A timing of `Duration::MAX` (or any duration too long for an `Instant` to count to) means
/// "never": a call or a connection attempt that waits forever, a heartbeat that never pings.
/// (The TypeScript client's `timeout: Infinity` says the same.)
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a call waits for its answer, counted from the call (time spent in the offline
    /// queue counts). Each call may set its own ([`CallOptions::timeout`](crate::CallOptions::timeout)).
    /// `Duration::MAX` waits forever. Default 10 s.
    pub call_timeout: Duration,
    /// After this long without hearing from the server, the client sends a WebSocket ping.
    /// One heartbeat timer per connection checks this. `Duration::MAX`: no pings. Default 5 s.
    pub heartbeat_interval: Duration,
    /// After this long without hearing anything (frame, ping or pong) from the server, the
    /// connection is taken for dead and dropped: [`Session::poll_timeout`](crate::Session::poll_timeout)
    /// never asks to be woken later than that. `Duration::MAX`: never. Default 15 s.
    pub idle_timeout: Duration,
    /// How long a connection attempt may take, from the TCP connect to the welcome frame.
    /// `Duration::MAX` waits forever (the heartbeat still drops an open WebSocket that stays
    /// silent for [`Config::idle_timeout`]). Default 10 s.
    pub connect_timeout: Duration,
    /// The delay before the first reconnect attempt; it doubles with each failed attempt.
    /// Default 250 ms.
    pub backoff_initial: Duration,
    /// The longest delay between reconnect attempts. Default 30 s.
    pub backoff_max: Duration,
    /// How much of each delay is random, from 0.0 (none) to 1.0 (anything from 0 to the
    /// delay). A delay `d` becomes a value in `[d * (1 - jitter), d]`, so clients dropped
    /// together do not come back together. Default 0.5.
    pub backoff_jitter: f64,
    /// Failed connection attempts in a row after which the session stops for good
    /// ([`Event::Stopped`](crate::Event::Stopped) with [`Error::GaveUp`](crate::Error::GaveUp)).
    /// `None` retries forever. A connection that drops before [`Config::stable_after`] counts as
    /// a failed attempt. Default `Some(10)`.
    pub max_attempts: Option<u32>,
    /// A connection that stays up this long resets the count of failed attempts to zero.
    /// Default 10 s.
    pub stable_after: Duration,
    /// Calls queued while not connected, at most; one more fails at once with
    /// [`Error::QueueFull`](crate::Error::QueueFull). Default 256.
    pub max_queued_calls: usize,
    /// Bytes (whole request frames) queued while not connected, at most; likewise. Default 256 KiB.
    pub max_queued_bytes: usize,
    /// Calls waiting for an answer (queued or sent), at most. Default 65 536.
    pub max_pending: usize,
    /// The largest request frame sent; the server closes the connection (1009) on larger
    /// messages, so a larger call fails at once with [`Error::TooLarge`](crate::Error::TooLarge).
    /// Default 64 KiB, the server's default.
    pub max_frame_bytes: usize,
    /// Push events (pushes on topics without a handler) kept for [`Session::poll_event`](crate::Session::poll_event)
    /// at most; more are dropped and counted in [`Stats::pushes_dropped`](crate::Stats::pushes_dropped).
    /// Default 4096.
    pub max_queued_pushes: usize,
    /// Seed of the backoff jitter; `None` picks a random one. Set it for reproducible tests.
    pub jitter_seed: Option<u64>,
    /// I/O layer: bytes read from the socket per `read` call. tungstenite allocates this per
    /// connection, so it is small. Default 4 KiB.
    pub read_buffer_bytes: usize,
    /// I/O layer: the largest message accepted from the server. A `state` push grows with the
    /// players in an arena, so this is generous. Default 16 MiB.
    pub max_message_bytes: usize,
    /// I/O layer: bytes of frames buffered for a socket that does not take them; past it,
    /// frames wait in the session's queue. Default 1 MiB.
    pub max_write_buffer_bytes: usize,
    /// How long [`Client::close`](crate::Client::close) waits for the server's close frame
    /// after sending its own, so the closing handshake completes and the server, not the
    /// client, ends the TCP connection (RFC 6455, 7.1.1). Past it the socket is dropped
    /// anyway; `Duration::MAX` waits as long as the server takes. Default 1 s.
    pub close_wait: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            backoff_jitter: 0.5,
            max_attempts: Some(10),
            stable_after: Duration::from_secs(10),
            max_queued_calls: 256,
            max_queued_bytes: 256 << 10,
            max_pending: 65_536,
            max_frame_bytes: 64 << 10,
            max_queued_pushes: 4096,
            jitter_seed: None,
            read_buffer_bytes: 4 << 10,
            max_message_bytes: 16 << 20,
            max_write_buffer_bytes: 1 << 20,
            close_wait: Duration::from_secs(1),
        }
    }
}

impl Config {
    /// The tungstenite configuration of the I/O layer.
    pub fn websocket_config(&self) -> tungstenite::protocol::WebSocketConfig {
        tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_bytes)
            .write_buffer_size(16 << 10)
            .max_write_buffer_size(self.max_write_buffer_bytes.max(self.max_frame_bytes + 64).max(32 << 10))
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
    }
}
