//! Reading WebSocket messages: within a per-connection budget per turn, and what each one
//! means ([`inbound::classify`]), forwarded to the logic thread or answered at once.

use std::io;
use std::time::Instant;

use ticksock_protocol::{Version, error_code};
use tungstenite::Message;

use super::Reactor;
use super::connection::Phase;
use super::inbound::{self, Inbound, Mode, close};
use super::lifecycle::{RateVerdict, Stage};
use super::read_in_place::InPlace;
use crate::bridge::ToLogic;

impl Reactor {
    pub(super) fn handle_ready(&mut self, index: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        match &mut conn.phase {
            Phase::Http(_) => self.advance_http(index),
            Phase::Open(link) => {
                if readable {
                    link.socket_mut().handle_readable();
                }
                if writable {
                    self.mark_dirty(index);
                }
                if readable {
                    self.read_messages(index);
                }
            }
            Phase::Moving => {}
        }
    }

    /// Reads messages from one connection, within its budget: in place while it holds no
    /// tungstenite context (see [`read_in_place`](super::read_in_place)), else through
    /// tungstenite.
    pub(super) fn read_messages(&mut self, index: usize) {
        let mut budget = self.config.read_budget;
        if !self.may_read(index) {
            return;
        }
        if self.conns.get_mut(index).and_then(|conn| conn.link()).is_some_and(|link| !link.holds_context())
            && self.read_in_place(index, &mut budget) == InPlace::Done
        {
            return;
        }
        for _ in 0..budget {
            if !self.may_read(index) {
                return;
            }
            let Some(conn) = self.conns.get_mut(index) else { return };
            let Some(link) = conn.link() else { return };
            let result = link.read(&mut self.contexts);
            let now = self.now;
            match result {
                Ok(message) => {
                    conn.liveness.handle_heard(now);
                    self.handle_message(index, message, now);
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing more for now: if no part of a message is left, the context (and
                    // its read buffer) goes back to the pool.
                    if let Some(link) = conn.link() {
                        link.give_back_if_idle(&mut self.contexts);
                    }
                    // tungstenite may have queued a pong or a close reply while reading.
                    self.mark_dirty(index);
                    return;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.handle_read_error(index, e);
                    return;
                }
            }
        }
        self.queue_read(index);
    }

    pub(super) fn handle_message(&mut self, index: usize, message: Message, now: Instant) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let id = conn.id;
        if message.is_close() {
            // For a version 2 session, the end rather than a drop to resume from.
            conn.peer_closed = true;
        }
        if self.stage != Stage::Running || !conn.lifecycle.takes_requests() {
            // Shutting down, or the connection is closing: no new requests (the server has
            // let it go, so what it sends can change nothing). Control frames, the close
            // reply among them, are handled by tungstenite: get its answers out.
            self.mark_dirty(index);
            return;
        }
        // Pings and pongs count against the rate too: a ping flood is a flood.
        if let Message::Binary(_) | Message::Text(_) | Message::Ping(_) | Message::Pong(_) = &message {
            let len = message.len();
            if message.is_binary() || message.is_text() {
                self.counters.frames_in += 1;
                self.counters.bytes_in += len as u64;
            }
            let admitted = conn.limiter.admit(len, now);
            let verdict = conn.strikes.record(admitted, self.config.rate_strikes);
            if conn.version == Version::V2 && !self.config.echo && (message.is_binary() || message.is_text())
            {
                // A version 2 request is taken by its number even when refused for the rate,
                // so the client's numbering goes on.
                self.handle_v2_message(index, message, verdict == RateVerdict::Admit);
                if verdict == RateVerdict::Close {
                    self.counters.rate_limited_closes += 1;
                    self.close_after_replies(index, close::POLICY, close::RATE_LIMIT, false);
                }
                return;
            }
            if verdict == RateVerdict::Admit {
                // Within the rate: handled below.
            } else {
                // Refused: a request is answered RATE_LIMITED (in echo mode, which has no
                // callback ids, it is dropped), the one that closes the connection too.
                if !self.config.echo
                    && let Some(callback) = inbound::callback_id(&message, conn.encoding)
                {
                    let code = error_code::RATE_LIMITED;
                    let answer =
                        inbound::answer(callback, conn.encoding, code, "too many requests; slow down");
                    self.counters.errors[usize::from(code)] += 1;
                    if let Inbound::Answer { opcode, frame, .. } = answer {
                        self.send_data(index, opcode, &frame);
                    }
                }
                if verdict == RateVerdict::Close {
                    // Behind the answers to the requests it sent before, like every close for
                    // what a client sent: each request read gets its one answer (7.2).
                    self.counters.rate_limited_closes += 1;
                    self.close_after_replies(index, close::POLICY, close::RATE_LIMIT, false);
                }
                return;
            }
        }
        let encoding = conn.encoding;
        let mode = if self.config.echo { Mode::Echo } else { Mode::Protocol(encoding) };
        match inbound::classify(message, &self.routes, mode) {
            Inbound::Request { id: callback, route, body } => {
                self.counters.requests_forwarded += 1;
                self.forward(ToLogic::Request { conn: id, id: callback, route, body, encoding });
            }
            Inbound::Echo { opcode, payload } => self.forward(ToLogic::Echo { conn: id, opcode, payload }),
            Inbound::Answer { code, opcode, frame } => {
                self.counters.errors[usize::from(code).min(8)] += 1;
                self.send_data(index, opcode, &frame);
            }
            Inbound::Close { code, reason } => self.close_after_replies(index, code, reason, false),
            // Pongs and close replies are queued by tungstenite; get them out.
            Inbound::Control => self.mark_dirty(index),
        }
    }

    pub(super) fn handle_read_error(&mut self, index: usize, error: tungstenite::Error) {
        match inbound::close_code_for(&error) {
            Some((code, reason)) => {
                tracing::debug!("closing with {code}: {error}");
                self.close_after_replies(index, code, reason, true);
            }
            None if matches!(error, tungstenite::Error::ConnectionClosed) => {
                // The closing handshake is done (the server's close frame went first, or its
                // answer to the peer's is queued): the server closes TCP first (RFC 6455
                // 7.1.1), without a reset.
                self.end_tcp(index);
            }
            None => {
                tracing::debug!("connection gone: {error}");
                self.remove(index);
            }
        }
    }

    /// Whether connection `index` may be read now: it is open and reads, and the logic thread
    /// is not behind (if it is, the connection is queued to be read later, and TCP pushes back
    /// on its client meanwhile).
    fn may_read(&mut self, index: usize) -> bool {
        if !self.backlog.is_empty() {
            self.queue_read(index);
            return false;
        }
        self.conns.get(index).is_some_and(|conn| conn.lifecycle.reads())
    }

    pub(super) fn queue_read(&mut self, index: usize) {
        if let Some(conn) = self.conns.get_mut(index)
            && !conn.read_queued
        {
            conn.read_queued = true;
            self.read_queue.push_back(index);
        }
    }

    pub(super) fn serve_read_queue(&mut self) {
        for _ in 0..self.read_queue.len() {
            if !self.backlog.is_empty() {
                return;
            }
            let Some(index) = self.read_queue.pop_front() else { return };
            let Some(conn) = self.conns.get_mut(index) else { continue };
            conn.read_queued = false;
            self.guarded(index, |reactor| reactor.read_messages(index));
        }
    }
}
