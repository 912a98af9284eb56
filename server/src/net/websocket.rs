//! A connection's WebSocket once upgraded: its socket, and tungstenite's protocol state for it
//! only while there is any.
//!
//! tungstenite keeps a connection's protocol state in a `WebSocketContext`: the closing
//! handshake, a message received in part, a pong owed, and a read buffer that it allocates at
//! `Config::read_buffer_bytes` (2 KiB by default) when the context is made and keeps for its
//! life. Most connections are idle most of the time, and an idle connection needs none of it.
//! So a [`WebSocketLink`] holds a context only while it is in use: the reactor's
//! [`ContextPool`] lends one to a connection that has none when it reads (or sends a control
//! frame), and the reactor's sweep takes it back from every connection quiet for a sweep
//! period (a second at most) whose context holds nothing a new one would not
//! ([`WebSocketLink::release_idle`]). The read buffer is then in effect the reactor's: lent to
//! the connections in use, kept by an idle one only while part of a message is in it.
//!
//! Why the sweep, not the end of each read: a context's read buffer is shared with the
//! messages just read (their bodies are slices of it, on their way to the logic thread), so a
//! context given back at once and lent to the next connection read would find its buffer
//! still shared and allocate another; the echo bench paid 50 instructions a call for it. A
//! busy connection keeps its context from one read to the next, as before.
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
//! **A context whose read buffer grew.** tungstenite grows the read buffer to hold each whole
//! frame and never shrinks it (0.30 has no call that shrinks, clears or shows it). A context
//! that read a frame larger than the configured buffer since it was lent is dropped, not
//! pooled, as soon as it holds nothing, so neither a connection nor the pool keeps a large
//! message's buffer.
//!
//! [`FrameBounds`]: super::frame_bounds::FrameBounds
//! [`Socket::reader_waiting`]: super::socket::Socket::reader_waiting

use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error, Message};

use super::socket::Socket;

/// The most contexts the pool keeps spare. The sweep gives back the contexts of all the
/// connections that went idle since the last one at once, and they are lent again as those
/// connections wake; beyond what a burst of wake-ups needs, a spare is memory held for
/// nothing. A spare costs its read buffer (`Config::read_buffer_bytes`) and about 300 bytes:
/// 64 of them at most 150 KiB at the default, whatever the number of connections.
const MAX_SPARE_CONTEXTS: usize = 16;

/// Spare tungstenite contexts, lent to connections while they have protocol state.
pub(crate) struct ContextPool {
    config: WebSocketConfig,
    // Boxed: a context moves between the pool and a connection, which holds a pointer to it
    // (8 bytes of its slot, not 256).
    #[allow(clippy::vec_box)]
    spare: Vec<Box<WebSocketContext>>,
}

impl ContextPool {
    /// An empty pool that makes its contexts with `config`.
    pub(crate) fn new(config: WebSocketConfig) -> Self {
        Self { config, spare: Vec::new() }
    }

    /// The configuration of every context it makes.
    pub(crate) fn config(&self) -> &WebSocketConfig {
        &self.config
    }

    /// How many contexts are spare.
    #[cfg(test)]
    pub(crate) fn spare(&self) -> usize {
        self.spare.len()
    }

    fn lend(&mut self) -> Box<WebSocketContext> {
        self.spare.pop().unwrap_or_else(|| Box::new(WebSocketContext::new(Role::Server, Some(self.config))))
    }

    /// Takes back a context that holds nothing; one whose read buffer `grew` is dropped.
    fn take_back(&mut self, context: Box<WebSocketContext>, grew: bool) {
        if !grew && self.spare.len() < MAX_SPARE_CONTEXTS {
            self.spare.push(context);
        }
    }
}

/// An upgraded connection's socket, with tungstenite's context for it while it is in use (see
/// the module's doc).
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

    /// Whether it holds a context.
    #[cfg(test)]
    pub(crate) fn holds_context(&self) -> bool {
        self.context.is_some()
    }

    /// Whether data may still be sent: no close frame sent or received.
    #[inline]
    pub(crate) fn can_write(&self) -> bool {
        self.context.as_ref().is_none_or(|context| context.can_write())
    }

    /// Reads the next message, as `WebSocket::read` does, with a context lent from `pool` if
    /// it holds none.
    // Inlined into the reactor's read loop: it runs once per message read.
    #[inline]
    pub(crate) fn read(&mut self, pool: &mut ContextPool) -> tungstenite::Result<Message> {
        lent(&mut self.context, &mut self.socket, pool).read(&mut self.socket)
    }

    /// Drops the context if it holds nothing and a frame grew its read buffer, rather than
    /// keep the buffer until the sweep. The reactor calls it when a read finds the socket
    /// empty (as it is the only time the context can hold nothing, any other time it does
    /// nothing).
    #[inline(never)]
    pub(crate) fn drop_grown_context(&mut self) {
        let Some(context) = &self.context else { return };
        let grew = self.socket.bounds().largest_frame() > context.get_config().read_buffer_size as u64;
        if grew && self.holds_nothing() {
            self.context = None;
        }
    }

    /// Writes a control frame (ping, close) through tungstenite, as `WebSocket::write` does.
    /// A ping leaves the state as it was, so a context lent for it goes straight back.
    pub(crate) fn write(&mut self, pool: &mut ContextPool, message: Message) -> tungstenite::Result<()> {
        let was_idle = self.context.is_none();
        let context = lent(&mut self.context, &mut self.socket, pool);
        let written = context.write(&mut self.socket, message);
        // Lent, it held nothing before the write, so it holds nothing after one that took
        // the frame and sent no close. A failed write may have left the frame in its buffer.
        if was_idle && written.is_ok() && context.can_write() {
            self.give_back(pool);
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

    /// Gives back what an idle connection does not need: its context to `pool` if it holds
    /// nothing, and its outbound queue's buffer if the queue is empty. The reactor's sweep
    /// calls it for every connection quiet for a sweep period.
    pub(crate) fn release_idle(&mut self, pool: &mut ContextPool) {
        if self.holds_nothing() {
            self.give_back(pool);
        }
        self.socket.release_idle_buffer();
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
/// counted afresh, for the lent context's buffer. Out of line: a connection in use has one.
#[cold]
fn lend(socket: &mut Socket, pool: &mut ContextPool) -> Box<WebSocketContext> {
    socket.bounds_mut().forget_largest();
    pool.lend()
}
