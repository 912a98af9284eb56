//! A connection's WebSocket once upgraded: its socket, and tungstenite's protocol state for it
//! only while there is any.
//!
//! tungstenite keeps a connection's protocol state in a `WebSocketContext`: the closing
//! handshake, a message received in part, a pong owed, and a read buffer that it allocates at
//! `Config::read_buffer_bytes` (2 KiB by default) when the context is made and keeps for its
//! life. Between messages, an open connection needs none of it. So a [`WebSocketLink`] holds a
//! context only while it has state to keep: the reactor's [`ContextPool`] lends one to a
//! connection that has none when it reads (or sends a control frame), and takes it back as
//! soon as it holds nothing a new one would not: when a read finds the socket empty, or after
//! a ping. The read buffer is then in effect the reactor's: lent to the connection being read,
//! kept by a connection only while part of a message (or a closing handshake) is in it. A
//! connection without a context is not read through tungstenite at all while what it sends
//! is whole data frames ([`read_in_place`](super::read_in_place)): it is lent one for the
//! first frame that is anything else.
//!
//! **When a context holds nothing.** When tungstenite's last read of the socket said
//! `WouldBlock` and none of its writes failed since ([`Socket::reader_waiting`]), every byte
//! read so far ends a message ([`FrameBounds`]), and no close frame was sent or received
//! (tungstenite's `can_write`). Then: tungstenite asked the socket for more (it passes
//! `WouldBlock` straight up), so it holds no whole frame, and by the frame boundaries no
//! partial one nor a fragmented message; a read first writes what it owes, so the pong of a
//! ping read went to the outbound queue, which takes every byte or fails the write; and its
//! own write buffer is empty (`write_buffer_size` 0, see `Config::websocket_config`, so each
//! frame goes to the queue at once). That state is the state of a new context, which is why
//! one context can serve every connection in turn.
//!
//! **Not lent again in the same turn.** The bodies of the messages just read are slices of
//! the context's read buffer, on their way to the logic thread. Lent at once to the next
//! connection read, the context would find its buffer still shared and allocate another (the
//! echo bench paid 50 instructions a call for it). So a context given back waits for the
//! reactor's next turn ([`ContextPool::start_turn`]), as long as a connection that kept its own
//! would wait to read again, and spares are lent oldest first: by then the logic thread has
//! most often let go of the bodies. A context lent for a ping read nothing, and may be lent
//! again at once.
//!
//! **How many are kept.** Under load, as many contexts go round as connections are read in a
//! turn. The pool keeps that many spare, and the sweep drops the spares that the busiest turn
//! since the last sweep did not need ([`ContextPool::trim`]), so that after a burst the pool
//! shrinks back to [`MIN_SPARE_CONTEXTS`].
//!
//! **A context whose read buffer grew.** tungstenite grows the read buffer to hold each whole
//! frame and never shrinks it (0.30 has no call that shrinks, clears or shows it). A context
//! that read a frame larger than the configured buffer since it was lent is dropped, not
//! pooled, so neither a connection nor the pool keeps a large message's buffer.
//!
//! [`FrameBounds`]: super::frame_bounds::FrameBounds
//! [`Socket::reader_waiting`]: super::socket::Socket::reader_waiting

use std::collections::VecDeque;

use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error, Message};

use super::socket::Socket;

/// The spare contexts the pool keeps however idle the server: enough for the connections a
/// quiet server reads in a turn, 16 times the read buffer (and 300 bytes) at most.
const MIN_SPARE_CONTEXTS: usize = 16;

/// Spare tungstenite contexts, lent to connections while they have protocol state.
pub(crate) struct ContextPool {
    config: WebSocketConfig,
    // Boxed: a context moves between the pool and a connection, which holds a pointer to it
    // (8 bytes of its slot, not 256).
    /// Contexts to lend, the longest given back first: their buffers' last messages have had
    /// the most time to reach the logic thread and be let go.
    spare: VecDeque<Box<WebSocketContext>>,
    /// Contexts given back this turn, lent from the next one on (see the module's doc).
    #[allow(clippy::vec_box)]
    cooling: Vec<Box<WebSocketContext>>,
    /// Contexts lent this turn.
    lent_this_turn: usize,
    /// The most contexts lent in one turn since the last trim.
    busiest_turn: usize,
}

impl ContextPool {
    /// An empty pool that makes its contexts with `config`.
    pub(crate) fn new(config: WebSocketConfig) -> Self {
        Self { config, spare: VecDeque::new(), cooling: Vec::new(), lent_this_turn: 0, busiest_turn: 0 }
    }

    /// The configuration of every context it makes.
    pub(crate) fn config(&self) -> &WebSocketConfig {
        &self.config
    }

    /// How many contexts it holds, spare or cooling.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.spare.len() + self.cooling.len()
    }

    /// A new turn of the reactor: the contexts given back in the last one may be lent.
    pub(crate) fn start_turn(&mut self) {
        self.busiest_turn = self.busiest_turn.max(self.lent_this_turn);
        self.lent_this_turn = 0;
        self.spare.extend(self.cooling.drain(..));
    }

    /// Drops the spares that the busiest turn since the last call did not need (keeping
    /// [`MIN_SPARE_CONTEXTS`] at least). The reactor's sweep calls it.
    pub(crate) fn trim(&mut self) {
        let needed = self.busiest_turn.max(self.lent_this_turn).max(MIN_SPARE_CONTEXTS);
        self.spare.truncate(needed.saturating_sub(self.cooling.len()));
        self.busiest_turn = 0;
    }

    fn lend(&mut self) -> Box<WebSocketContext> {
        self.lent_this_turn += 1;
        self.spare
            .pop_front()
            .unwrap_or_else(|| Box::new(WebSocketContext::new(Role::Server, Some(self.config))))
    }

    /// Takes back a context that holds nothing and was lent for a write only: no message
    /// shares its buffer, so it may be lent again in this turn.
    fn take_back_unread(&mut self, context: Box<WebSocketContext>) {
        self.spare.push_front(context);
    }

    /// Takes back a context that holds nothing; one whose read buffer `grew` is dropped.
    fn take_back(&mut self, context: Box<WebSocketContext>, grew: bool) {
        if !grew {
            self.cooling.push(context);
        }
    }
}

/// An upgraded connection's socket, with tungstenite's context for it while it has protocol
/// state (see the module's doc).
#[derive(Debug)]
pub(crate) struct WebSocketLink {
    socket: Socket,
    /// `None`: the connection is open, between messages, and owes nothing, which is the state
    /// of a new context.
    context: Option<Box<WebSocketContext>>,
}

impl WebSocketLink {
    /// The WebSocket over `socket`, whose HTTP request was followed by `leftover`.
    pub(crate) fn new(mut socket: Socket, leftover: Vec<u8>, config: &WebSocketConfig) -> Self {
        // tungstenite gets these without reading them through the socket.
        socket.bounds_mut().observe(&leftover);
        let context = (!leftover.is_empty())
            .then(|| Box::new(WebSocketContext::from_partially_read(leftover, Role::Server, Some(*config))));
        Self { socket, context }
    }

    /// The socket.
    #[cfg(test)]
    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The socket, to queue data frames, write the queue, or register it with the poll.
    #[inline]
    pub(crate) fn socket_mut(&mut self) -> &mut Socket {
        &mut self.socket
    }

    /// The socket, with what is still queued for the peer.
    pub(crate) fn into_socket(self) -> Socket {
        self.socket
    }

    /// Whether it holds a context: it has protocol state, and tungstenite reads it.
    #[inline]
    pub(crate) fn holds_context(&self) -> bool {
        self.context.is_some()
    }

    /// Whether data may still be sent: no close frame sent or received.
    #[inline]
    pub(crate) fn can_write(&self) -> bool {
        self.context.as_ref().is_none_or(|context| context.can_write())
    }

    /// Reads the next message, as `WebSocket::read` does, with a context lent from `pool` if
    /// it holds none. When it says `WouldBlock`, call [`WebSocketLink::give_back_if_idle`].
    // Inlined into the reactor's read loop: it runs once per message read.
    #[inline]
    pub(crate) fn read(&mut self, pool: &mut ContextPool) -> tungstenite::Result<Message> {
        lent(&mut self.context, &mut self.socket, pool).read(&mut self.socket)
    }

    /// Gives the context back to `pool` if it holds nothing (dropped if a frame grew its read
    /// buffer). The reactor calls it when a read finds the socket empty; at any other time a
    /// context holds something (or its last read did not say so), and it does nothing.
    pub(crate) fn give_back_if_idle(&mut self, pool: &mut ContextPool) {
        if self.holds_nothing() {
            self.give_back(pool);
        }
    }

    /// Writes a control frame (ping, close) through tungstenite, as `WebSocket::write` does.
    /// A ping leaves the state as it was, so a context lent for it goes straight back, and
    /// may be lent again at once: it read nothing, so no message shares its buffer (the sweep
    /// pings every quiet connection in one turn, with one context).
    pub(crate) fn write(&mut self, pool: &mut ContextPool, message: Message) -> tungstenite::Result<()> {
        let was_idle = self.context.is_none();
        let context = lent(&mut self.context, &mut self.socket, pool);
        let written = context.write(&mut self.socket, message);
        // Lent, it held nothing before the write, so it holds nothing after one that took
        // the frame and sent no close. A failed write may have left the frame in its buffer.
        if was_idle
            && written.is_ok()
            && context.can_write()
            && let Some(context) = self.context.take()
        {
            pool.take_back_unread(context);
        }
        written
    }

    /// Writes the outbound queue and what tungstenite owes, as `WebSocket::flush` does.
    pub(crate) fn flush(&mut self) -> tungstenite::Result<()> {
        match &mut self.context {
            Some(context) => context.flush(&mut self.socket),
            // A new context would owe nothing and buffer nothing: its flush is the socket's.
            None => self.socket.write_queued().map_err(Error::Io),
        }
    }

    /// Whether its context holds nothing a new one would not (see the module's doc).
    fn holds_nothing(&self) -> bool {
        self.socket.reader_waiting()
            && self.socket.bounds().at_message_boundary()
            && self.context.as_ref().is_some_and(|context| context.can_write())
    }

    fn give_back(&mut self, pool: &mut ContextPool) {
        let Some(context) = self.context.take() else { return };
        let grew = self.socket.bounds().largest_frame() > pool.config().read_buffer_size as u64;
        pool.take_back(context, grew);
    }
}

/// The connection's `context`, lent from `pool` if it has none.
#[inline]
fn lent<'a>(
    context: &'a mut Option<Box<WebSocketContext>>,
    socket: &mut Socket,
    pool: &mut ContextPool,
) -> &'a mut WebSocketContext {
    context.get_or_insert_with(|| lend(socket, pool))
}

/// A context from `pool` for the connection of `socket`, whose largest frame read is then
/// counted afresh, for the lent context's buffer.
fn lend(socket: &mut Socket, pool: &mut ContextPool) -> Box<WebSocketContext> {
    socket.bounds_mut().forget_largest();
    pool.lend()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn pool() -> ContextPool {
        ContextPool::new(Config::default().websocket_config())
    }

    #[test]
    fn a_context_given_back_is_lent_from_the_next_turn_on() {
        let mut pool = pool();
        let context = pool.lend();
        pool.take_back(context, false);
        assert_eq!((pool.spare.len(), pool.cooling.len()), (0, 1));
        pool.start_turn();
        assert_eq!((pool.spare.len(), pool.cooling.len()), (1, 0));
        let _lent = pool.lend();
        assert_eq!(pool.held(), 0, "the spare was lent, no new one made");
    }

    #[test]
    fn a_context_whose_buffer_grew_is_dropped() {
        let mut pool = pool();
        let context = pool.lend();
        pool.take_back(context, true);
        pool.start_turn();
        assert_eq!(pool.held(), 0);
    }

    #[test]
    fn the_trim_keeps_what_the_busiest_turn_lent_and_at_least_the_minimum() {
        let mut pool = pool();
        // A turn that reads 40 connections, each given its context back.
        let lent: Vec<_> = (0..40).map(|_| pool.lend()).collect();
        lent.into_iter().for_each(|context| pool.take_back(context, false));
        pool.start_turn();
        // A quieter turn.
        let lent: Vec<_> = (0..5).map(|_| pool.lend()).collect();
        lent.into_iter().for_each(|context| pool.take_back(context, false));
        pool.start_turn();
        pool.trim();
        assert_eq!(pool.held(), 40, "the busiest turn since the last trim needed 40");
        pool.trim();
        assert_eq!(pool.held(), MIN_SPARE_CONTEXTS, "no turn needed more than the minimum since");
    }
}
