//! The HTTP exchange on a new connection, before it speaks WebSocket: read the request,
//! decide with [`handshake::decide`], write the answer. Non-blocking: `WouldBlock` means "not
//! now", and the reactor calls again on the next readiness.

use std::io::{self, Read, Write};

use bytes::Bytes;
use ticksock_protocol::{Encoding, Version};

use super::handshake::{self, Decision, Policy};
use super::tls::Transport;
use crate::bridge::Credentials;
use crate::metrics::Metrics;

/// What an upgrade leaves for the WebSocket: bytes after the request, the version and
/// encoding chosen, and the credentials offered.
type Upgrade = (Vec<u8>, Version, Encoding, Option<Box<Credentials>>);

/// The HTTP exchange before the upgrade.
pub(super) struct Http {
    /// Plain or TLS: with TLS, the TLS handshake happens here too, within the handshake
    /// deadline, as the first reads drive it.
    pub(super) stream: Transport,
    received: Vec<u8>,
    response: Option<Response>,
}

struct Response {
    /// The status line and headers, or the whole of a small answer.
    bytes: Vec<u8>,
    /// A static file's bytes, after `bytes`: shared, not copied, per response.
    body: Bytes,
    /// How much of `bytes` and then `body` the socket has taken.
    written: usize,
    upgrade_leftover: Option<Upgrade>,
}

/// What the HTTP exchange led to.
pub(super) enum HttpProgress {
    /// Waiting for more bytes or for the socket to take the response.
    Pending,
    /// The response is written: speak WebSocket now, starting with these bytes, in this
    /// encoding.
    Upgraded(Vec<u8>, Version, Encoding, Option<Box<Credentials>>),
    /// The response is written (or the peer left): close.
    Done,
}

impl Http {
    pub(super) fn new(stream: Transport) -> Self {
        Self { stream, received: Vec::new(), response: None }
    }

    /// Reads what has arrived, decides once the request is complete, and writes the response
    /// as far as the socket takes it. A `refusing` server is full: whatever the request, the
    /// answer is 503 (the request is read first, because closing a socket with unread data
    /// resets it and loses the answer).
    pub(super) fn advance(
        &mut self,
        policy: &Policy,
        metrics: &Metrics,
        refusing: bool,
    ) -> io::Result<HttpProgress> {
        if self.response.is_none() {
            let mut chunk = [0u8; 2048];
            loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => return Ok(HttpProgress::Done),
                    Ok(n) => {
                        self.received.extend_from_slice(&chunk[..n]);
                        match handshake::decide(&self.received, policy) {
                            Decision::NeedMore => continue,
                            _ if refusing => {
                                self.respond(handshake::service_unavailable_to(&self.received), None);
                                break;
                            }
                            Decision::Upgrade { response, leftover, encoding, version, credentials } => {
                                self.respond(response, Some((leftover, version, encoding, credentials)));
                                break;
                            }
                            Decision::Respond { response } => {
                                self.respond(response, None);
                                break;
                            }
                            Decision::File { head, body } => {
                                self.respond(head, None);
                                if let Some(response) = self.response.as_mut() {
                                    response.body = body;
                                }
                                break;
                            }
                            Decision::Metrics => {
                                self.respond(handshake::metrics_response(&metrics.render()), None);
                                break;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // A TLS handshake's answer the socket did not take at once goes on
                        // a writable event (the reactor asks for one while this is pending).
                        return match self.stream.flush_pending() {
                            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
                            _ => Ok(HttpProgress::Pending),
                        };
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        self.write_response()
    }

    fn respond(&mut self, bytes: Vec<u8>, upgrade_leftover: Option<Upgrade>) {
        self.received = Vec::new();
        self.response = Some(Response { bytes, body: Bytes::new(), written: 0, upgrade_leftover });
    }

    /// How many bytes of the response the socket has taken so far: the reactor counts a
    /// response that is still moving as progress, not as a stalled handshake.
    pub(super) fn response_written(&self) -> usize {
        self.response.as_ref().map_or(0, |r| r.written)
    }

    fn write_response(&mut self) -> io::Result<HttpProgress> {
        let Some(response) = self.response.as_mut() else { return Ok(HttpProgress::Pending) };
        let total = response.bytes.len() + response.body.len();
        while response.written < total {
            let rest = match response.written.checked_sub(response.bytes.len()) {
                None => &response.bytes[response.written..],
                Some(into_body) => &response.body[into_body..],
            };
            match self.stream.write(rest) {
                Ok(0) => return Ok(HttpProgress::Done),
                Ok(n) => response.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(HttpProgress::Pending),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        // With TLS, the response is written once its records are.
        match self.stream.flush_pending() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(HttpProgress::Pending),
            Err(e) => return Err(e),
        }
        Ok(match response.upgrade_leftover.take() {
            Some((leftover, version, encoding, credentials)) => {
                HttpProgress::Upgraded(leftover, version, encoding, credentials)
            }
            None => HttpProgress::Done,
        })
    }
}
