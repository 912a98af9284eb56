//! How an arena bot logs in on each new server session: by name (`login PREFIX-N`), or with
//! `--accounts guest` as a guest account of its own (PROTOCOL.md 8.8, 13.2): `guest` without
//! a device token once for the whole run, then `auth` with the session token it answered. The
//! bot keeps the token ([`Account`], in its [`Bot`]) and sends it in `auth` again on every new
//! server session (a version 1 reconnect, a version 2 session after a refused resume), never
//! asking for another guest. After `auth` the connection is logged in as the account's name
//! (`guest-N`), as after a `login` with that name; joining an arena is the scenario's next call.
//!
//! A failed `guest` or `auth` is counted by route and kind (`error 10 unauthenticated`,
//! `timeout`, ...) beside the error its call already counts as.

use std::time::Instant;

use ticksock_arena::proto::{Guest, GuestSession, Joined, ROUTE_GUEST};
use ticksock_client::{CallId, Outcome};
use ticksock_protocol::{AuthReply, ROUTE_AUTH};

use super::{Script, logged_in, login};
use crate::Accounts;
use crate::tally::failure_kind;
use crate::worker::{Bot, Cx};

/// A bot's guest account (`--accounts guest`), kept for the whole run across its sessions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Account {
    /// The session token `guest` answered; `None` until it has.
    token: Option<String>,
    /// The account's name, as the latest `auth` answered (`guest-N`).
    name: Option<String>,
}

/// The call of a sign-in under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignIn {
    /// `login` by name.
    Login(CallId),
    /// `guest`, for the bot's account (the first session only).
    Guest(CallId),
    /// `auth` with the account's session token.
    Auth(CallId),
}

impl SignIn {
    /// The call's id.
    pub(crate) fn id(self) -> CallId {
        match self {
            SignIn::Login(id) | SignIn::Guest(id) | SignIn::Auth(id) => id,
        }
    }
}

/// What the outcome of a sign-in call leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The bot is logged in.
    Done,
    /// The next call went out (`auth`, after `guest` answered).
    Next(SignIn),
    /// It failed (counted): try again later.
    Failed,
}

/// Starts the bot's sign-in on a new server session: `login`, or `auth` with its token, or
/// `guest` first if it has none yet. `None` if the session refused the call (counted).
pub(crate) fn start<S: Script>(bot: &mut Bot<S>, now: Instant, cx: &mut Cx<S::Timer>) -> Option<SignIn> {
    match cx.opts.accounts {
        Accounts::None => login(bot, now, cx).map(SignIn::Login),
        Accounts::Guest => match bot.account.token.clone() {
            Some(token) => auth(bot, &token, now, cx),
            None => bot.call(ROUTE_GUEST, &Guest { device_token: None }, now, cx).map(SignIn::Guest),
        },
    }
}

fn auth<S: Script>(bot: &mut Bot<S>, token: &str, now: Instant, cx: &mut Cx<S::Timer>) -> Option<SignIn> {
    bot.call(ROUTE_AUTH, token, now, cx).map(SignIn::Auth)
}

/// Takes the outcome of the sign-in call `call`: notes the token or the account's name, and
/// sends `auth` after `guest`.
pub(crate) fn step<S: Script>(
    bot: &mut Bot<S>,
    call: SignIn,
    outcome: Outcome,
    now: Instant,
    cx: &mut Cx<S::Timer>,
) -> Step {
    match call {
        SignIn::Login(_) => {
            if logged_in(bot, outcome) {
                Step::Done
            } else {
                Step::Failed
            }
        }
        SignIn::Guest(_) => match decode::<GuestSession>(&outcome) {
            Ok(session) => {
                cx.tally.counters.guests_created += 1;
                bot.account.token = Some(session.token.clone());
                auth(bot, &session.token, now, cx).map_or(Step::Failed, Step::Next)
            }
            Err(kind) => {
                cx.tally.counters.guest_failures += 1;
                fail(ROUTE_GUEST, kind, cx);
                Step::Failed
            }
        },
        SignIn::Auth(_) => match decode::<AuthReply>(&outcome) {
            Ok(reply) => {
                cx.tally.counters.auths_ok += 1;
                bot.account.name = Some(reply.user);
                // The reply names the account; the player's id comes with the `join`.
                bot.track.player_id = None;
                Step::Done
            }
            Err(kind) => {
                cx.tally.counters.auth_failures += 1;
                fail(ROUTE_AUTH, kind, cx);
                Step::Failed
            }
        },
    }
}

/// After a `join` reply: a bot signed in by `auth` learns its player's id from the roster
/// (the entry of its account's name); `auth`'s reply names the user only.
pub(crate) fn note_player<S: Script>(bot: &mut Bot<S>, outcome: &Outcome) {
    let Some(name) = bot.account.name.as_deref() else { return };
    if let Ok(joined) = decode::<Joined>(outcome)
        && let Some(me) = joined.roster.iter().find(|entry| entry.name == name)
    {
        bot.track.player_id = Some(me.id);
    }
}

/// A reply's body as `T`, or what the outcome was instead (a reply that does not decode is
/// a protocol error: counted as one by the caller).
fn decode<T: serde::de::DeserializeOwned>(outcome: &Outcome) -> Result<T, Failure> {
    match outcome.reply_body() {
        Some(body) => ticksock_protocol::decode_body(body).map_err(|_| Failure::Undecodable),
        None => Err(Failure::Outcome(failure_kind(outcome))),
    }
}

/// Why a sign-in call failed.
#[derive(Debug)]
enum Failure {
    /// Its outcome was not a reply.
    Outcome(String),
    /// Its reply did not decode.
    Undecodable,
}

/// Counts a failed call of `route` by kind; a reply that did not decode is a protocol error
/// too (an error: the call itself was counted as replied).
fn fail<T>(route: &str, failure: Failure, cx: &mut Cx<T>) {
    let kind = match failure {
        Failure::Outcome(kind) => kind,
        Failure::Undecodable => {
            cx.tally.counters.protocol_errors += 1;
            "undecodable reply".to_owned()
        }
    };
    *cx.tally.account_failures.entry(format!("{route}: {kind}")).or_default() += 1;
}
