//! Killing a bot's connection the way a network fault would, at the socket: a **reset**
//! (`SO_LINGER` 0, then close: the kernel sends a TCP RST), or **half-open** (the socket is
//! taken out of the event loop and a duplicate of its descriptor is kept open: nothing is read
//! or written any more, no FIN or RST goes out, and the server can only find it dead by its
//! heartbeat, or by a resume of its session on another link).

use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::{Bot, Cx};
use crate::scenario::Script;

/// Makes closing `tcp` send a reset instead of a FIN.
pub(crate) fn arm_reset(tcp: &TcpStream) {
    // Fails only on a descriptor that is no socket; the close happens anyway.
    let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
}

/// Takes `tcp` out of the event loop and returns a duplicate of its descriptor, to hold the
/// connection open once the original is closed. `None`: no descriptor was left for it.
pub(crate) fn hold_open<T: Ord>(tcp: &mut TcpStream, cx: &Cx<T>) -> Option<socket2::Socket> {
    // Out of the event loop first: the duplicate shares the registration.
    cx.deregister(tcp);
    socket2::SockRef::from(&*tcp).try_clone().ok()
}

/// How a link is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kill {
    /// A TCP reset.
    Reset,
    /// Silence, the socket held open by the caller.
    HalfOpen,
}

impl<S: Script> Bot<S> {
    /// Kills the bot's link as `kind` says and tells its session the link is gone (version 2:
    /// the session is kept, to resume on the next link). Returns the socket to hold for a
    /// half-open kill (`None` for a reset, or when it could not be held: then the link was
    /// simply closed). The session's events that follow are handled before this returns.
    pub(crate) fn kill_link(
        &mut self,
        script: &S,
        kind: Kill,
        now: Instant,
        cx: &mut Cx<S::Timer>,
    ) -> Option<socket2::Socket> {
        self.mark_down(cx);
        let tcp = self.conn.as_mut().and_then(|c| c.tcp_mut());
        let held = match (kind, tcp) {
            (Kill::Reset, Some(tcp)) => {
                arm_reset(tcp);
                None
            }
            (Kill::HalfOpen, Some(tcp)) => hold_open(tcp, cx),
            (_, None) => None,
        };
        // Closing the bot's own descriptor: a reset, or nothing at all while the duplicate
        // keeps the socket open.
        self.conn = None;
        self.session.handle_disconnect(now);
        self.react(script, now, cx);
        held
    }
}
