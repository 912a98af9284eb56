//! The connection's token (`docs/PROTOCOL.md` section 13): what the game signed in with, kept
//! by the session so that every reconnect offers it at the upgrade, and dropped when the
//! server says it is no good.
//!
//! The game gets a token from its own sign-in (an arena's `signin`, say) and hands it over
//! with [`Session::set_token`], or with [`Session::authenticate`], which also sends it in band
//! (`auth`) and keeps it only if the server accepts it. The I/O layer offers
//! [`Session::token`] at every upgrade (`Authorization: Bearer`, see
//! [`offer_token`](crate::connection::offer_token)), so a new connection (version 1, or a
//! version 2 session that ended) is authenticated before its first request, without a new
//! sign-in.
//!
//! When the server closes the connection with 4003 (the token was refused) or 4004 (it
//! expired and no new one came within the grace), the session forgets the token that link
//! offered (or last authenticated with), since offering it again would be refused again, and
//! says so with [`Event::TokenRefused`]; it reconnects as usual, anonymous, and the game signs
//! in again. A token the game set meanwhile ([`Session::set_token`]) is kept and offered.

use std::time::Instant;

use ticksock_protocol::{AuthReply, CLOSE_AUTH_EXPIRED, CLOSE_AUTH_FAILED, ROUTE_AUTH};

use super::{CallId, CallOptions, Event, Outcome, Session};
use crate::Error;

/// The longest token the session keeps: the server reads at most 4096 bytes
/// (`docs/PROTOCOL.md` 13.1), so a longer one could never authenticate.
pub const MAX_TOKEN_LEN: usize = 4096;

impl Session {
    /// The token offered at every upgrade from now on (`None`: connect anonymous). It does not
    /// touch the connection that is up: send it in band with [`Session::authenticate`] for
    /// that. Fails with [`Error::BadToken`] (and keeps the old one) for a token the server
    /// would refuse unread: longer than [`MAX_TOKEN_LEN`], or with a character outside
    /// `A-Z a-z 0-9 - _ . ~ + / =`.
    pub fn set_token(&mut self, token: Option<String>) -> Result<(), Error> {
        if let Some(token) = &token {
            check_token(token)?;
        }
        self.token = token;
        Ok(())
    }

    /// The token the next upgrade offers, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Sends `token` in band (the server's `auth` route, 13.2): it authenticates this
    /// connection, refreshes an identity about to expire, or switches the user. If the server
    /// accepts it, the session keeps it for every later upgrade before `then` runs; `then`
    /// gets the outcome (an [`AuthReply`] on success, decoded with
    /// [`Outcome::decode`]; Error `unauthenticated`, 10, if refused, which keeps the old
    /// token). Fails at once as [`Session::call`] does, and with [`Error::BadToken`].
    pub fn authenticate(
        &mut self,
        token: String,
        now: Instant,
        then: impl FnOnce(&mut Session, Outcome) + Send + 'static,
    ) -> Result<CallId, Error> {
        check_token(&token)?;
        let request = token.clone();
        let options = CallOptions::default().then(move |session: &mut Session, outcome: Outcome| {
            if let Some(body) = outcome.reply_body()
                && ticksock_protocol::decode_body::<AuthReply>(body).is_ok()
            {
                session.link_token = Some(token.clone());
                session.token = Some(token);
            }
            then(session, outcome);
        });
        self.call_with(ROUTE_AUTH, &request, options, now)
    }

    /// The server closed the link with `code`: a refused or expired token is forgotten.
    pub(super) fn token_closed_with(&mut self, code: u16) {
        let expired = match code {
            CLOSE_AUTH_FAILED => false,
            CLOSE_AUTH_EXPIRED => true,
            _ => return,
        };
        // The refused token is the one this link's identity rested on; one the game has set
        // since (a fresh sign-in while the old token expired) is kept for the next link.
        if self.token == self.link_token {
            self.token = None;
        }
        self.link_token = None;
        self.events.push_back(Event::TokenRefused { expired });
    }
}

/// Whether the server could read `token` at all (`docs/PROTOCOL.md` 13.1).
pub(crate) fn check_token(token: &str) -> Result<(), Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::BadToken(format!("{} bytes, more than {MAX_TOKEN_LEN}", token.len())));
    }
    if token.is_empty() {
        return Err(Error::BadToken("empty".into()));
    }
    if let Some(c) = token.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.~+/=".contains(*c))) {
        return Err(Error::BadToken(format!("the character {c:?} is not URL-safe")));
    }
    Ok(())
}
