//! Every timing and bound of a session, with its default, and the protocol versions it offers.

use std::time::Duration;

use ticksock_protocol::{SUBPROTOCOL, SUBPROTOCOL_V2, Version};

use crate::Error;

/// Which versions of the protocol a client offers in its upgrade request; the server picks one
/// (`docs/PROTOCOL.md` 11.1) and the client speaks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versions {
    /// Offer `ticksock.v2`, then `ticksock.v1`. A version 2 server keeps the session across a
    /// dropped link (calls in flight and pushes survive: see "Version 2" in the
    /// [`session`](crate::session) docs); a server that speaks only version 1 is spoken to
    /// exactly as with [`Versions::V1Only`]. The default.
    #[default]
    V2ThenV1,
    /// Offer `ticksock.v1` only: every dropped link ends the server session, and the calls in
    /// flight with it.
    V1Only,
}

impl Versions {
    /// The value of the upgrade request's `Sec-WebSocket-Protocol` header.
    pub fn header(self) -> &'static str {
        match self {
            Versions::V2ThenV1 => "ticksock.v2, ticksock.v1",
            Versions::V1Only => SUBPROTOCOL,
        }
    }

    /// Whether `version` is one of those offered.
    pub fn offers(self, version: Version) -> bool {
        match self {
            Versions::V2ThenV1 => true,
            Versions::V1Only => version == Version::V1,
        }
    }

    /// The version the server selected, from the `Sec-WebSocket-Protocol` of its `101` answer
    /// (`None`: it has none). Anything but a subprotocol offered is an [`Error::Protocol`].
    pub fn selected(self, header: Option<&str>) -> Result<Version, Error> {
        let version = match header.map(|value| value.trim_matches([' ', '\t'])) {
            Some(SUBPROTOCOL) => Version::V1,
            Some(SUBPROTOCOL_V2) => Version::V2,
            Some(other) => {
                return Err(Error::Protocol(format!("the server selected the subprotocol `{other}`")));
            }
            None => return Err(Error::Protocol("the server selected no subprotocol".into())),
        };
        if !self.offers(version) {
            return Err(Error::Protocol(format!("the server selected {version:?}, which was not offered")));
        }
        Ok(version)
    }
}

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
    /// ([`Event::Stopped`](crate::Event::Stopped) with [`Error::GaveUp`]).
    /// `None` retries forever. A connection that drops before [`Config::stable_after`] counts as
    /// a failed attempt. Default `Some(10)`.
    pub max_attempts: Option<u32>,
    /// A connection that stays up this long resets the count of failed attempts to zero.
    /// Default 10 s.
    pub stable_after: Duration,
    /// Calls queued while not connected, at most; one more fails at once with
    /// [`Error::QueueFull`]. Default 256.
    pub max_queued_calls: usize,
    /// Bytes queued while not connected, at most (each call counted as its version 1 request
    /// frame); likewise. Default 256 KiB.
    pub max_queued_bytes: usize,
    /// Calls waiting for an answer (queued or sent), at most. Default 65 536.
    pub max_pending: usize,
    /// The largest request frame sent; the server closes the connection (1009) on larger
    /// messages, so a larger call fails at once with [`Error::TooLarge`].
    /// When version 2 is offered, a request counts 18 bytes more than its version 1 frame: the
    /// most its `seq` and `ack` can take. Default 64 KiB, the server's default.
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
    /// The protocol versions offered to the server. Default: version 2, then version 1.
    pub versions: Versions,
    /// Version 2: how long sequenced frames (replies, errors, pushes) may go unacknowledged
    /// before the client sends an Ack frame on its own (every request carries the count too).
    /// The server holds what the client has not acknowledged, to send it again after a resume.
    /// Default 1 s (`docs/PROTOCOL.md` 11.2).
    pub ack_delay: Duration,
    /// Version 2: after this many unacknowledged frames an Ack goes at once, whatever
    /// [`Config::ack_delay`] says, so a burst of pushes does not pile up on the server.
    /// Default 64.
    pub ack_after_frames: u64,
    /// After a redirect, how long the old connection is kept for the answers of the calls
    /// still in flight on it (the redirected call goes to the new node meanwhile). It is closed
    /// with 1000 when they are all answered and the redirected call is sent, or when this has
    /// passed; calls still waiting on it then fail with
    /// [`Outcome::Disconnected`](crate::Outcome::Disconnected). Default 5 s (a ticket is good
    /// for 10 s, `docs/PROTOCOL.md` 12.3).
    pub old_link_grace: Duration,
    /// Whether a call answered with Error `redirect` is followed to the node it names
    /// (`docs/PROTOCOL.md` 12.2). Off, the call ends with that error as with any other (for
    /// a tool that follows redirects itself, as client-sim's bots do). Default on.
    pub follow_redirects: bool,
    /// Certificates trusted as roots for `wss://` beside Mozilla's (`webpki-roots`): a
    /// private CA, or a test CA. Add them from PEM with [`Config::trust_pem`] or
    /// [`Config::trust_pem_file`]. Default none.
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Asks the server, at every upgrade (`?ticks=1`, `docs/PROTOCOL.md` 4.3), to stamp each
    /// reply with the first tick whose state includes the call's effects: replies then end
    /// their calls as [`Outcome::TickReply`](crate::Outcome::TickReply), for a game that
    /// predicts locally and reconciles against the server's state. A server that does not know
    /// the parameter ignores it and sends plain replies. Default off.
    pub tick_stamps: bool,
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
            versions: Versions::default(),
            ack_delay: Duration::from_secs(1),
            ack_after_frames: 64,
            old_link_grace: Duration::from_secs(5),
            follow_redirects: true,
            extra_roots: Vec::new(),
            tick_stamps: false,
        }
    }
}

impl Config {
    /// Trusts the certificates in `pem` (each `CERTIFICATE` block) as roots for `wss://`, as
    /// well as Mozilla's. Fails, adding nothing, if the PEM holds no certificate or a broken one.
    pub fn trust_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        self.extra_roots.extend(crate::tls::certs_from_pem(pem)?);
        Ok(self)
    }

    /// [`Config::trust_pem`] with the PEM file at `path`.
    pub fn trust_pem_file(mut self, path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        self.extra_roots.extend(crate::tls::certs_from_pem_file(path.as_ref())?);
        Ok(self)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_offers_v2_then_v1_and_speaks_what_the_server_selects() {
        let offer = Versions::default();
        assert_eq!(offer, Versions::V2ThenV1);
        assert_eq!(offer.header(), "ticksock.v2, ticksock.v1");
        assert_eq!(offer.selected(Some("ticksock.v2")).expect("offered"), Version::V2);
        assert_eq!(offer.selected(Some("ticksock.v1")).expect("offered"), Version::V1);
    }

    #[test]
    fn v1_only_offers_v1_and_refuses_a_server_that_selects_v2() {
        let offer = Versions::V1Only;
        assert_eq!(offer.header(), "ticksock.v1");
        assert_eq!(offer.selected(Some("ticksock.v1")).expect("offered"), Version::V1);
        assert!(matches!(offer.selected(Some("ticksock.v2")), Err(Error::Protocol(_))));
    }

    #[test]
    fn a_subprotocol_never_offered_or_none_is_a_protocol_error() {
        for header in [Some("ticksock.v2.json"), Some("chat"), None] {
            let err = Versions::V2ThenV1.selected(header).expect_err("not offered");
            assert!(matches!(err, Error::Protocol(_)), "{header:?}: {err}");
        }
    }
}
