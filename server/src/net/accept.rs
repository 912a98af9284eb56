//! Accepting connections, and their HTTP exchange up to the WebSocket upgrade.

use std::io;

use mio::{Interest, Token};

use super::Reactor;
use ticksock_protocol::{Version, v2};

use super::connection::{Carries, Connection, OutboundLimits, Phase};
use super::http::HttpProgress;
use super::lifecycle::Lifecycle;
use super::link::new_secret;
use super::rate::{RateLimiter, RateLimits};
use super::tls::Transport;
use crate::ConnId;
use crate::bridge::{DataOpcode, ToLogic};

/// How many connections over the limit may wait for their 503 at once; more are dropped.
fn refusal_slots(max_connections: usize) -> usize {
    (max_connections / 16).clamp(16, 1024)
}

impl Reactor {
    pub(super) fn accept(&mut self) {
        self.accept_blocked = false;
        let Some(listener) = self.listener.as_ref() else { return };
        loop {
            let (mut stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors, typically. The pending connections stay queued
                    // in the kernel; edge-triggered readiness will not repeat, so retry soon.
                    tracing::warn!("accept failed: {e}");
                    self.accept_blocked = true;
                    return;
                }
            };
            self.counters.accepted += 1;
            let refuse = self.conns.len() - self.refusing >= self.config.max_connections;
            self.counters.refused += u64::from(refuse);
            if refuse && self.refusing >= refusal_slots(self.config.max_connections) {
                // Even the refusals are too many: drop without a word.
                tracing::debug!("dropped {peer}: at max_connections");
                continue;
            }
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!("set_nodelay for {peer}: {e}");
            }
            limit_unsent(&stream, self.config.tcp_notsent_lowat, peer);
            let entry = self.conns.vacant_entry();
            let index = entry.key();
            let Ok(slot) = u32::try_from(index) else { continue };
            self.next_generation = self.next_generation.wrapping_add(1);
            let id = ConnId::new(slot, self.next_generation);
            if let Err(e) = self.poll.registry().register(&mut stream, Token(index), Interest::READABLE) {
                tracing::warn!("register {peer}: {e}");
                continue;
            }
            let limits = RateLimits {
                messages_per_sec: self.config.rate_messages_per_sec,
                burst_messages: self.config.rate_burst_messages,
                bytes_per_sec: self.config.rate_bytes_per_sec,
                burst_bytes: self.config.rate_burst_bytes,
            };
            let limiter = RateLimiter::new(limits, self.now);
            let transport = match &self.tls {
                None => Transport::Plain(stream),
                Some(certs) => {
                    match Transport::tls(stream, certs.current(), self.config.max_handshake_bytes) {
                        Ok(transport) => transport,
                        Err(e) => {
                            // rustls refused its own settings: a bug, not the peer's doing.
                            tracing::warn!("TLS for {peer}: {e}");
                            continue;
                        }
                    }
                }
            };
            if refuse {
                tracing::debug!("refusing {peer}: at max_connections");
                self.refusing += 1;
            }
            entry.insert(Connection::new(id, transport, limiter, self.now, refuse));
        }
    }

    pub(super) fn advance_http(&mut self, index: usize) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let refusing = matches!(conn.lifecycle, Lifecycle::Handshaking { refusing: true, .. });
        let Phase::Http(http) = &mut conn.phase else { return };
        let written = http.response_written();
        let progress = http.advance(&self.policy, &self.metrics, refusing);
        if http.response_written() > written {
            // The answer is moving (a large static file to a slow reader, say): the handshake
            // timeout counts from its last progress, so only a stalled client is dropped.
            conn.lifecycle = Lifecycle::Handshaking { since: self.now, refusing };
        }
        match progress {
            Ok(HttpProgress::Pending) => self.want_writable(index, true),
            Ok(HttpProgress::Upgraded(leftover, version, encoding, credentials)) => {
                let limits = OutboundLimits {
                    max_queued: self.config.max_outbound_bytes,
                    coalesce: self.config.write_coalesce_bytes,
                };
                conn.upgrade(leftover, self.contexts.config(), limits, self.now);
                conn.encoding = encoding;
                conn.version = version;
                let id = conn.id;
                let mut welcome = Vec::new();
                match version {
                    _ if self.config.echo => {}
                    Version::V1 => ticksock_protocol::write_welcome(
                        encoding,
                        &mut welcome,
                        self.config.tick_hz,
                        id.to_u64(),
                    ),
                    Version::V2 => {
                        // The game hears of it at its first frame, which may resume another.
                        let secret = new_secret();
                        conn.carries = Carries::Undecided;
                        self.sessions.open(id, secret, index);
                        let epoch = self.sessions.epoch();
                        let tick_hz = self.config.tick_hz;
                        v2::write_welcome(encoding, &mut welcome, tick_hz, id.to_u64(), epoch, &secret);
                    }
                }
                if !welcome.is_empty() {
                    let _ = conn.write_data(DataOpcode::of(encoding), &welcome);
                }
                let announce = conn.carries == Carries::Itself;
                self.counters.upgraded += 1;
                self.want_writable(index, false);
                self.mark_dirty(index);
                if announce {
                    self.forward(ToLogic::Connected { conn: id, encoding, credentials });
                } else if let Some(credentials) = credentials {
                    // Version 2: the game hears of the session at its first frame.
                    self.tickets.insert(index, credentials);
                }
                // Frames may have arrived with the request.
                self.queue_read(index);
            }
            Ok(HttpProgress::Done) => self.end_tcp(index),
            Err(e) => {
                tracing::debug!("http exchange failed: {e}");
                self.remove(index);
            }
        }
    }
}

/// Keeps at most `lowat` bytes unsent in the kernel for this socket (`TCP_NOTSENT_LOWAT`;
/// 0 leaves the system's setting): past it a write takes nothing and the socket is not
/// writable, so what a slow reader is sent waits in the reactor, where a newer state can still
/// replace an older one (`Config::tcp_notsent_lowat`). Linux only; elsewhere it does nothing.
fn limit_unsent(stream: &mio::net::TcpStream, lowat: usize, peer: std::net::SocketAddr) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if lowat > 0 {
        let lowat = u32::try_from(lowat).unwrap_or(u32::MAX);
        if let Err(e) = socket2::SockRef::from(stream).set_tcp_notsent_lowat(lowat) {
            tracing::debug!("TCP_NOTSENT_LOWAT for {peer}: {e}");
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (stream, lowat, peer);
}
