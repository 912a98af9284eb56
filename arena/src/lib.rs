//! "arena", the example game of ticksock: players log in, enter arenas, move with the arrow
//! keys and chat; every arena pushes its authoritative state to its players each tick.
//!
//! - [`proto`]: its routes, request and reply types, push topics and error codes, shared by
//!   the game, the clients and the load simulator.
//! - [`Arena`] ([`game`]): the game, built on `ticksock-server`'s API.
//! - [`store`]: accounts, stats and the leaderboard that survive a restart, behind the
//!   [`Store`](store::Store) trait, in SQLite by default ([`SqliteStore`](store::SqliteStore)).
//! - [`accounts`] and [`session`]: the accounts as the game's routes use them (on the job
//!   pool), and the session tokens it signs and its authenticator accepts; `names` (internal):
//!   the names `login` may not take, because an account owns them.
//! - [`demo_page`]: the browser demo served at `GET /` (the page, its script and the TS client).
//!
//! The `ticksock-arena` binary (`src/main.rs`) runs it, or an echo server with `--echo`.

pub mod accounts;
pub mod game;
mod names;
pub mod proto;
pub mod replication;
pub mod session;
mod stats;
pub mod store;

pub use game::{Arena, ArenaConfig};
use ticksock_server::{StaticFile, StaticFiles};

/// The demo page: `web/demo/` and the compiled TS client `web/dist/ticksock.js`, built into
/// the binary. They live in `web/` beside the TS client they are tested with; this crate is
/// not published on its own (`publish = false`), so it may reach them there.
pub fn demo_page() -> StaticFiles {
    const HTML: &str = "text/html; charset=utf-8";
    const JS: &str = "text/javascript; charset=utf-8";
    const FILES: &[StaticFile] = &[
        StaticFile {
            path: "/index.html",
            content_type: HTML,
            body: include_bytes!("../../web/demo/index.html"),
        },
        StaticFile { path: "/demo.js", content_type: JS, body: include_bytes!("../../web/demo/demo.js") },
        StaticFile {
            path: "/ticksock.js",
            content_type: JS,
            body: include_bytes!("../../web/dist/ticksock.js"),
        },
    ];
    StaticFiles::embedded(FILES)
}
