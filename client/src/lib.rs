//! A ticksock client: calls that feel like ajax over one WebSocket, driven by a game loop.
//!
//! `call(route, request, callback)` sends a request tagged with a `u32` callback id; the
//! server's reply or error carrying the same id ends the call. Every call ends in exactly one
//! [`Outcome`]: a reply, an error reply, a timeout, a disconnect, or "never sent". Pushes are
//! dispatched by topic; the connection heartbeats, reconnects with backoff, and queues calls
//! made while offline.
//!
//! The client offers `ticksock.v2` first and `ticksock.v1` second ([`Config::versions`]) and
//! speaks the one the server selects. On version 2 the server session survives a dropped
//! link: calls in flight and pushes are not lost, and the events say which case is which:
//!
//! | event | means | the game |
//! |-------|-------|----------|
//! | [`Event::Connected`] | a new server session (the first, or after the old one ended) | logs in |
//! | [`Event::LinkDropped`] | version 2: the link dropped, the session is kept; calls in flight wait | may show "reconnecting" |
//! | [`Event::Resumed`] | version 2: the session goes on; what was missed is sent again, once | nothing (no new login) |
//! | [`Event::SessionEnded`] | version 2: the resume was refused ([`SessionEnd`] says why); calls in flight failed; a `Connected` follows | logs in on that `Connected` |
//! | [`Event::Disconnected`] | the link dropped and the session with it (version 1, or a close frame); calls in flight failed | waits for `Connected` |
//! | [`Event::Redirected`] | a call was redirected to another node of a cluster (error `redirect`): the session moved there, the call is made again there and gets that node's answer | nothing: no new login (the ticket logged it in) |
//!
//! | [`Event::TokenRefused`] | the server closed the link over its token (4003 refused, 4004 expired); the session forgot it and reconnects anonymous | signs in again |
//!
//! A game that signs its players in hands the token to [`Session::authenticate`] (or
//! [`BlockingClient::authenticate`]), which sends it in band and keeps it when the server
//! accepts it; every reconnect then offers it at the upgrade, so a new connection is
//! authenticated before its first call (`docs/PROTOCOL.md` section 13). A token kept from an
//! earlier run goes in with [`Session::set_token`] before the first connect
//! ([`BlockingClient::connect_with_token`]).
//!
//! A redirected call follows at most [`MAX_REDIRECTS`] redirects; one that cannot be followed
//! ends with [`Outcome::Redirect`] ([`RedirectFailure`] says why), and after a refused ticket or
//! an unreachable node the session goes back to its own URL. The `session` module's `redirect`
//! docs say it in order.
//!
//! The [`session`] module docs say it all in order ("Version 2").
//!
//! # Modules
//! - [`session`]: the sans-I/O core, [`Session`]. No socket, no clock: bytes and `now` go in,
//!   frames, link commands and [`Event`]s come out. Call bookkeeping (ids, timeouts, outcomes),
//!   push handlers, the heartbeat timer, reconnect backoff and the offline queue all live here,
//!   and its module docs say what happens to calls when the link drops, and in which order
//!   calls go out after a reconnect (as in the TypeScript client, calls made on
//!   [`Event::Connected`], such as logging in again, go ahead of the offline queue).
//! - [`connection`]: one non-blocking WebSocket ([`Connection`]): TCP connect, the upgrade
//!   offering the configured versions, then messages, moved between the socket and a session.
//! - [`client`]: [`Client`], the I/O layer a game loop drives with [`Client::update`].
//! - [`blocking`]: [`BlockingClient`], whose calls block, for tools and tests.
//! - [`config`]: every timing and bound ([`Config`]), and the versions offered ([`Versions`]).
//! - [`replica`]: [`Mirror`](replica::Mirror), the view reconstructed from the server's
//!   state replication (section 14), sans-I/O.
//! - [`backoff`]: exponential backoff with jitter, as arithmetic.
//! - [`error`]: the crate's one error type ([`Error`]); each variant says what to do next.
//!
//! The wire format is the `protocol` crate's; this crate has no copy of it.

pub mod backoff;
pub mod blocking;
pub mod client;
pub mod config;
pub mod connection;
pub mod error;
pub mod replica;
pub mod session;
pub mod tls;

pub use blocking::BlockingClient;
pub use client::Client;
pub use config::{Config, Versions};
pub use connection::{Connection, Progress};
pub use error::Error;
pub use session::{
    CallId, CallOptions, Callback, Event, LinkCommand, LinkState, MAX_REDIRECTS, MAX_TOKEN_LEN, Outcome,
    RedirectFailure, Session, SessionEnd, Stats,
};
