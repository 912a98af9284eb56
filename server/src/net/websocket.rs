//! A connection's WebSocket once upgraded: its socket, and tungstenite's protocol state for it
//! only while there is any.
//!
//! tungstenite keeps a connection's protocol state in a `WebSocketContext`: the closing
//! handshake, a message received in part, a pong owed, and a read buffer that it allocates at
//! `Config::read_buffer_bytes` (2 KiB by default) when the context is made and keeps for its
//! life. Most connections are idle most of the time, and an idle connection needs none of it.
//! So a [`WebSocketLink`] holds a context only while it has state to keep, and the reactor's
//! [`ContextPool`] lends one to each read (and to each control frame sent) and takes it back
//! as soon as the connection holds nothing a new context would not. The read buffer is then in
//! effect the reactor's: lent to the connection being read, kept by a connection only while
//! part of a message is in it.
//!
//! **When a context holds nothing.** Right after tungstenite's read said `WouldBlock`, if every
//! byte read so far ends a message ([`FrameBounds`]) and no close frame was sent or received
//! (tungstenite's `can_write`). Then: tungstenite asked the socket for more, so it holds no
//! whole frame, and by the frame boundaries no partial one nor a fragmented message; a read
//! first writes what it owes, so the pong of a ping read went to the outbound queue, which
//! takes every byte or fails the read; and its own write buffer is always empty
//! (`write_buffer_size` 0, see `Config::websocket_config`), for the same reason. That state is
//! the state of a new context, which is why one context can serve every connection in turn.
//!
//! **A context whose read buffer grew.** tungstenite grows the read buffer to hold each whole
//! frame and never shrinks it (0.30 has no call that shrinks, clears or shows it). A context
//! that read a frame larger than the configured buffer since it was lent is dropped rather
//! than pooled, so neither a connection nor the pool keeps a large message's buffer.
//!
//! [`FrameBounds`]: super::frame_bounds::FrameBounds

use std::io;

use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error, Message};

use super::socket::Socket;

/// The most contexts the pool keeps spare. The reactor reads one connection at a time, so
/// one context serves every read that ends between messages; connections left holding part
/// of a message (or closing) keep theirs until it ends, and give them back in bursts. A
/// spare costs its read buffer (`Config::read_buffer_bytes`) and about 300 bytes: 64 of them
/// at most 150 KiB at the default, whatever the number of connections.
const MAX_SPARE_CONTEXTS: usize = 64;

/// Spare tungstenite contexts, lent to connections while they have protocol state.
pub(crate) struct ContextPool {
    config: WebSocketConfig,
    // Boxed: a context moves between the pool and a connection, which holds a pointer to it
    // (8 bytes of its slot, not 256), on every read.
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
    pub(crate) fn socket_mut(&mut self) -> &mut Socket {
        &mut self.socket
    }

    /// The socket, with what is still queued for the peer.
    pub(crate) fn into_socket(self) -> Socket {
        self.socket
    }

    /// Whether it holds a context (it has protocol state).
    #[cfg(test)]
    pub(crate) fn holds_context(&self) -> bool {
        self.context.is_some()
    }

    /// Whether data may still be sent: no close frame sent or received.
    pub(crate) fn can_write(&self) -> bool {
        self.context.as_ref().is_none_or(|context| context.can_write())
    }

    /// Reads the next message, as `WebSocket::read` does. When the socket has nothing more
    /// for now (`WouldBlock`) and the connection holds nothing, its context goes back to
    /// `pool`.
    pub(crate) fn read(&mut self, pool: &mut ContextPool) -> tungstenite::Result<Message> {
        let context = lent(&mut self.context, &mut self.socket, pool);
        let read = context.read(&mut self.socket);
        if let Err(Error::Io(e)) = &read
            && e.kind() == io::ErrorKind::WouldBlock
            && context.can_write()
            && self.socket.bounds().at_message_boundary()
        {
            self.give_back(pool);
        }
        read
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

    fn give_back(&mut self, pool: &mut ContextPool) {
        let Some(context) = self.context.take() else { return };
        let grew = self.socket.bounds().largest_frame() > pool.config().read_buffer_size as u64;
        pool.take_back(context, grew);
    }
}

/// The connection's `context`, lent from `pool` if it has none; the largest frame read is
/// then counted afresh, for the lent context's buffer.
fn lent<'a>(
    context: &'a mut Option<Box<WebSocketContext>>,
    socket: &mut Socket,
    pool: &mut ContextPool,
) -> &'a mut WebSocketContext {
    if context.is_none() {
        socket.bounds_mut().forget_largest();
    }
    context.get_or_insert_with(|| pool.lend())
}
