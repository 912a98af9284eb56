//! Following a redirect (`docs/PROTOCOL.md` section 12): an Error `redirect` (8) on a call
//! moves the session to the node its URL names, and the call is made again there.
//!
//! The order, as 12.2 asks (open the new connection, send the call there, then close the old):
//! 1. The Error sets the call aside (its entry, callback and deadline stay; its request is kept
//!    since it was sent), the current link becomes the **old link** ([`LinkCommand::Redirect`]),
//!    and the session connects to the URL at once, without backoff (a redirect is no failure).
//!    A version 2 session of the old link is not resumed: the old link is closed with 1000,
//!    which ends it, and the new node starts a new one.
//! 2. Calls in flight on the old link keep waiting for their answers there (pushes from it
//!    are dropped: the new node sends what the game needs from now on). Calls made meanwhile
//!    wait in the offline queue.
//! 3. On the new link's welcome, [`Event::Redirected`] (not `Connected`: the ticket logged the
//!    connection in) and the redirected calls go first. The offline queue follows once the
//!    node has answered one of them (any answer proves the ticket was taken: a refused ticket
//!    gets the connection closed with 4002 before any request is handled).
//! 4. The old link is closed (1000) once its calls are answered and the redirected calls are
//!    sent, or after [`Config::old_link_grace`](crate::Config::old_link_grace); calls still
//!    waiting on it then fail [`Outcome::Disconnected`].
//!
//! A call is redirected at most [`MAX_REDIRECTS`] times; the next redirect fails it
//! ([`RedirectFailure::TooMany`]). A URL the client cannot use fails it at once
//! ([`RedirectFailure::BadUrl`]) and the session stays where it is. A new link that fails
//! before its welcome ([`RedirectFailure::Unreachable`]) or refuses the ticket
//! ([`RedirectFailure::TicketRefused`]) fails the redirected calls, and the session goes back
//! to reconnecting to its own URL, with backoff. Reconnects after a move go to the node's URL
//! without its `ticket` (a ticket is good once), and if they all fail the session goes back to
//! its own URL once (12.4) before giving up.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use ticksock_protocol::{CLOSE_BAD_TICKET, Encoding, MAX_TICKET_LEN, ServerFrame, Version, error_code, v2};

use super::calls::CallTable;
use super::request::OutRequest;
use super::{Event, LinkCommand, Outcome, RedirectFailure, Session, State};

/// The most redirects one call follows; the next fails it (`docs/PROTOCOL.md` 12.2).
pub const MAX_REDIRECTS: u8 = 3;

/// The longest redirect URL taken: a ticket's 512 bytes and room for a host, port and path.
const MAX_URL_LEN: usize = MAX_TICKET_LEN + 1024;

/// Where redirects have taken the session.
#[derive(Default)]
pub(super) struct Redirect {
    /// The node the session's links go to, as the redirect named it (ticket included); `None`:
    /// the URL the driver was made with.
    target: Option<String>,
    /// `target` without its ticket: where reconnects go.
    reconnect_url: Option<String>,
    /// The next link is the first to `target`: it offers the ticket.
    arriving: bool,
    /// The link is up on a ticket that no answer has proved yet.
    ticket_unproven: bool,
    /// Redirected calls to make first on the next link, in the order they were redirected.
    calls: VecDeque<(u32, Arc<OutRequest>)>,
    /// Redirected calls sent on a link whose ticket is unproven.
    on_trial: Vec<u32>,
    /// The link a redirect left, while calls wait for their answers on it.
    old: Option<OldLink>,
}

/// The link a redirect left.
struct OldLink {
    version: Option<Version>,
    /// Calls sent on it, still waiting for their answers there.
    calls: Vec<u32>,
    /// When it is closed whatever still waits; `None`: never (a grace too long to count to).
    until: Option<Instant>,
}

impl Redirect {
    /// Whether call `id` waits for its answer on the old link.
    pub(super) fn on_old_link(&self, id: u32) -> bool {
        self.old.as_ref().is_some_and(|old| old.calls.contains(&id))
    }

    /// The next redirected call to send that still waits for its outcome.
    pub(super) fn next_call(&mut self, calls: &CallTable) -> Option<(u32, Arc<OutRequest>)> {
        while let Some((id, request)) = self.calls.pop_front() {
            if calls.get(id).is_some() {
                return Some((id, request));
            }
        }
        None
    }

    /// Redirected call `id` went out on the new link.
    pub(super) fn sent_on_arrival(&mut self, id: u32) {
        if self.ticket_unproven {
            self.on_trial.push(id);
        }
    }

    /// Whether the offline queue must wait: the link is up on a ticket that no answer has
    /// proved, and a redirected call sent on it still waits for that answer.
    pub(super) fn holds_queue(&self, calls: &CallTable) -> bool {
        self.ticket_unproven && self.on_trial.iter().any(|&id| calls.get(id).is_some())
    }

    /// An answer came on the current link: the node took the ticket.
    pub(super) fn proven(&mut self) {
        self.ticket_unproven = false;
        self.on_trial.clear();
    }

    /// Where the next link goes (see [`Session::connect_url`]).
    fn connect_url(&self) -> Option<&str> {
        if self.arriving { self.target.as_deref() } else { self.reconnect_url.as_deref() }
    }

    /// Forgets the node: links go to the driver's URL again. Returns whether there was one.
    fn go_home(&mut self) -> bool {
        self.arriving = false;
        self.ticket_unproven = false;
        self.reconnect_url = None;
        self.target.take().is_some()
    }
}

impl Session {
    /// Where to open the connection [`Session::poll_connect`] asks for: `None` for the URL the
    /// driver was made with, else the node a redirect moved the session to (with the
    /// redirect's ticket for the first connection there, without it for reconnects).
    pub fn connect_url(&self) -> Option<&str> {
        self.redirect.connect_url()
    }

    /// Whether the old link of a redirect is still wanted (see [`LinkCommand::Redirect`]):
    /// once `false`, the I/O layer closes it with 1000.
    pub fn keeps_old_link(&self) -> bool {
        self.redirect.old.is_some()
    }

    /// A binary message from the old link of a redirect: answers to the calls that wait on it
    /// end them (an answer `redirect` redirects the call again); anything else is dropped.
    pub fn handle_old_link_frame(&mut self, frame: &[u8], now: Instant) {
        self.now = now;
        let Some(old) = &self.redirect.old else { return };
        let answer = match old.version {
            Some(Version::V2) => match v2::decode_server_frame(Encoding::Binary, frame) {
                Ok(v2::ServerFrame::Reply { id, body }) => Some((id, Outcome::Reply(body.to_vec()))),
                Ok(v2::ServerFrame::TickReply { id, tick, body }) => {
                    Some((id, Outcome::TickReply { tick, body: body.to_vec() }))
                }
                Ok(v2::ServerFrame::Error { id, code, message }) => {
                    Some((id, Outcome::Error { code, message: message.into_owned() }))
                }
                _ => None,
            },
            _ => match ServerFrame::decode(frame) {
                Ok(ServerFrame::Reply { id, body }) => Some((id, Outcome::Reply(body.to_vec()))),
                Ok(ServerFrame::TickReply { id, tick, body }) => {
                    Some((id, Outcome::TickReply { tick, body: body.to_vec() }))
                }
                Ok(ServerFrame::Error { id, code, message }) => {
                    Some((id, Outcome::Error { code, message: message.into_owned() }))
                }
                _ => None,
            },
        };
        if let Some((id, outcome)) = answer
            && let Some(old) = &mut self.redirect.old
            && let Some(at) = old.calls.iter().position(|&waiting| waiting == id)
        {
            old.calls.swap_remove(at);
            match outcome {
                Outcome::Error { code: error_code::REDIRECT, message } => {
                    self.redirected(id, message, false, now)
                }
                outcome => self.end_call(id, outcome, now),
            }
        }
        self.settle_old_link(now);
    }

    /// The old link of a redirect is gone (it dropped, or the I/O layer closed it): the calls
    /// still waiting on it fail with [`Outcome::Disconnected`].
    pub fn handle_old_link_gone(&mut self, now: Instant) {
        self.now = now;
        self.end_old_link(now);
    }

    /// Error `redirect` to `url` on call `id`, sent and waiting. `current`: it came on the
    /// current link (which the session then leaves), not on the old one.
    pub(super) fn redirected(&mut self, id: u32, url: String, current: bool, now: Instant) {
        self.stats.redirects += 1;
        let Some(entry) = self.calls.get_mut(id) else { return };
        let failure = if entry.redirects >= MAX_REDIRECTS {
            Some(RedirectFailure::TooMany { url: url.clone() })
        } else {
            check_url(&url).err().map(|problem| RedirectFailure::BadUrl { url: url.clone(), problem })
        };
        let request = match (failure, entry.request.clone()) {
            (None, Some(request)) => request,
            (Some(failure), _) => return self.end_call(id, Outcome::Redirect(failure), now),
            // Every sent call keeps its request; were it missing, the Error stands as it is.
            (None, None) => {
                return self.end_call(id, Outcome::Error { code: error_code::REDIRECT, message: url }, now);
            }
        };
        entry.redirects += 1;
        entry.sent_at = None;
        self.redirect.calls.push_back((id, request));
        if current && matches!(self.state, State::Up { .. }) {
            self.move_to(url, now);
        }
    }

    /// Leaves the current link for the node at `url`: it becomes the old link, and the next
    /// link goes to `url` at once.
    fn move_to(&mut self, url: String, now: Instant) {
        // One old link at a time: a second move closes the first's.
        self.end_old_link(now);
        let waiting = self.calls.sent_oldest_first();
        let until = now.checked_add(self.config.old_link_grace);
        self.redirect.old = Some(OldLink { version: self.version, calls: waiting, until });
        self.redirect.reconnect_url = Some(without_ticket(&url));
        self.redirect.target = Some(url);
        self.redirect.arriving = true;
        self.redirect.proven();
        // The old link's version 2 session ends with its close (1000); the node starts anew.
        self.sequencing.forget();
        self.state = State::Down;
        self.heartbeat = None;
        self.reconnect_at = Some(now);
        self.link.push_back(LinkCommand::Redirect);
        self.settle_old_link(now);
    }

    /// A welcome on a link: if it is the first to the node of a redirect, the session has
    /// moved: [`Event::Redirected`] instead of `Connected`, and the queue is not held for a
    /// login. Returns whether it was.
    pub(super) fn arrived(&mut self, tick_hz: u16, conn_id: u64, now: Instant) -> bool {
        if !std::mem::take(&mut self.redirect.arriving) {
            return false;
        }
        self.state = State::Up { since: now };
        self.welcome = Some((tick_hz, conn_id));
        self.redirect.ticket_unproven = true;
        self.outbox.release();
        self.release_on_poll = false;
        let url = self.redirect.reconnect_url.clone().unwrap_or_default();
        self.events.push_back(Event::Redirected { url, tick_hz, conn_id });
        true
    }

    /// The server closed the current link with `code`. A refused ticket fails the redirected
    /// calls sent on it, and the session goes back to its own URL.
    pub(super) fn closed_with(&mut self, code: u16, now: Instant) {
        if code != CLOSE_BAD_TICKET || !self.redirect.ticket_unproven {
            return;
        }
        let url = self.redirect.target.clone().unwrap_or_default();
        self.redirect.go_home();
        self.fail_redirected(RedirectFailure::TicketRefused { url }, now);
    }

    /// The link to the node of a redirect failed before its welcome: the redirected calls fail,
    /// and the session goes back to its own URL. `problem`: the I/O layer could not use the
    /// URL at all.
    pub(super) fn arrival_failed(&mut self, problem: Option<String>, now: Instant) {
        if !self.redirect.arriving {
            return;
        }
        let url = self.redirect.target.clone().unwrap_or_default();
        self.redirect.go_home();
        let failure = match problem {
            Some(problem) => RedirectFailure::BadUrl { url, problem },
            None => RedirectFailure::Unreachable { url },
        };
        self.fail_redirected(failure, now);
    }

    /// The I/O layer cannot open a connection to [`Session::connect_url`] (it does not parse,
    /// its name does not resolve, it needs TLS): as a failed connection, and if it was a
    /// redirect's, the redirected calls fail with [`RedirectFailure::BadUrl`].
    pub fn handle_unusable_url(&mut self, problem: String, now: Instant) {
        self.now = now;
        self.arrival_failed(Some(problem), now);
        self.link_down(now);
    }

    /// All reconnects to the node of a redirect failed: go back to the driver's URL (12.4).
    /// Returns whether the session was away.
    pub(super) fn give_up_on_node(&mut self) -> bool {
        self.redirect.go_home()
    }

    /// Fails every redirected call on its way to, or on trial at, the node with `failure`.
    fn fail_redirected(&mut self, failure: RedirectFailure, now: Instant) {
        let trial = std::mem::take(&mut self.redirect.on_trial);
        let unsent: Vec<u32> = self.redirect.calls.drain(..).map(|(id, _)| id).collect();
        for id in trial.into_iter().chain(unsent) {
            self.end_call(id, Outcome::Redirect(failure.clone()), now);
        }
        self.settle_old_link(now);
    }

    /// Redirected calls not yet sent fail with [`Outcome::Closed`] (the session stops).
    pub(super) fn fail_unsent_redirected(&mut self, now: Instant) {
        let unsent: Vec<u32> = self.redirect.calls.drain(..).map(|(id, _)| id).collect();
        for id in unsent {
            self.end_call(id, Outcome::Closed, now);
        }
    }

    /// Lets the old link go once nothing waits on it (its calls answered, the redirected calls
    /// sent) or its grace has passed.
    pub(super) fn settle_old_link(&mut self, now: Instant) {
        let calls = &self.calls;
        let Some(old) = &mut self.redirect.old else { return };
        old.calls.retain(|&id| calls.get(id).is_some_and(|entry| entry.sent_at.is_some()));
        let idle = old.calls.is_empty() && self.redirect.calls.is_empty();
        if idle || old.until.is_some_and(|until| until <= now) {
            self.end_old_link(now);
        }
    }

    /// When the old link's grace ends, if one is kept.
    pub(super) fn old_link_deadline(&self) -> Option<Instant> {
        self.redirect.old.as_ref().and_then(|old| old.until)
    }

    /// Drops the old link: the calls still waiting on it fail with [`Outcome::Disconnected`].
    pub(super) fn end_old_link(&mut self, now: Instant) {
        let Some(old) = self.redirect.old.take() else { return };
        for id in old.calls {
            self.end_call(id, Outcome::Disconnected, now);
        }
    }
}

/// Whether `url` is one a redirect may name: `ws://` or `wss://` and a host, printable ASCII,
/// and a `ticket` (if any) of the allowed characters and length (`docs/PROTOCOL.md` 12.2).
/// Whether the I/O layer can reach it is for the I/O layer to find out.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("{} bytes, over the limit of {MAX_URL_LEN}", url.len()));
    }
    if let Some(c) = url.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("the character {c:?} has no place in a URL"));
    }
    let Some(rest) = url.strip_prefix("ws://").or_else(|| url.strip_prefix("wss://")) else {
        return Err("not a ws:// or wss:// URL".into());
    };
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Err("no host".into());
    }
    let query = rest.split_once('?').map_or("", |(_, query)| query);
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    for ticket in query.split('&').filter_map(|param| param.strip_prefix("ticket=")) {
        if ticket.len() > MAX_TICKET_LEN {
            return Err(format!("a ticket of {} bytes, over the limit of {MAX_TICKET_LEN}", ticket.len()));
        }
        if let Some(c) = ticket.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!("the character {c:?} in its ticket"));
        }
    }
    Ok(())
}

/// `url` without its `ticket` query parameter (the one a reconnect must not offer again: it is
/// good once). Other parameters stay, in order; a query left empty goes with its `?`.
pub(super) fn without_ticket(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_owned() };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let kept: Vec<&str> =
        query.split('&').filter(|param| !param.starts_with("ticket=") && *param != "ticket").collect();
    let mut out = base.to_owned();
    if kept.iter().any(|param| !param.is_empty()) {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_url_must_be_ws_with_a_host_and_a_well_formed_ticket() {
        assert_eq!(check_url("ws://10.0.0.7:8080/?ticket=AAECAwQ.ZXhh-_bXBsZQ"), Ok(()));
        assert_eq!(check_url("wss://node-2.example/play?x=1&ticket=abc"), Ok(()));
        for (url, problem) in [
            ("http://10.0.0.7/?ticket=abc", "not a ws"),
            ("ws:///?ticket=abc", "no host"),
            ("ws://", "no host"),
            ("ws://h/?ticket=a+b", "'+'"),
            ("ws://h/ ?ticket=abc", "' '"),
            ("", "not a ws"),
        ] {
            let got = check_url(url).expect_err(url);
            assert!(got.contains(problem), "{url}: {got}");
        }
        let long = format!("ws://h/?ticket={}", "a".repeat(MAX_TICKET_LEN + 1));
        assert!(check_url(&long).expect_err("too long").contains("ticket of 513"));
    }

    #[test]
    fn a_reconnect_url_drops_the_ticket_and_keeps_the_rest() {
        assert_eq!(without_ticket("ws://h:1/?ticket=abc"), "ws://h:1/");
        assert_eq!(without_ticket("ws://h:1/p?a=1&ticket=abc&b=2"), "ws://h:1/p?a=1&b=2");
        assert_eq!(without_ticket("ws://h:1/p?ticket=abc#f"), "ws://h:1/p#f");
        assert_eq!(without_ticket("ws://h:1/p"), "ws://h:1/p");
    }
}
