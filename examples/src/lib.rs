//! Runnable examples of a game built on ticksock, to start a new game from.
//!
//! Each example is a game in a module of this library, a thin program that serves it (with
//! its page, at `GET /`), and a Rust client program that calls it:
//!
//! | game | server | Rust client | page |
//! |------|--------|-------------|------|
//! | [`counter`]: one route, a total pushed to everyone once a second | `examples/counter.rs` | `examples/counter_client.rs` | `examples/pages/counter/` |
//! | [`chat`]: a chat room with names, lines, presence and a list of who is there | `examples/chat.rs` | `examples/chat_client.rs` | `examples/pages/chat/` |
//!
//! ```sh
//! cargo run --release --example counter          # then open http://127.0.0.1:7778/
//! cargo run --release --example counter_client   # in another terminal
//! ```
//!
//! The games live here rather than in the programs so that tests can drive them
//! (`tests/`, through `ticksock_server::testing`, on a simulated clock).

pub mod chat;
pub mod counter;

use ticksock_server::StaticFile;

/// The `Content-Type` of the pages.
const HTML: &str = "text/html; charset=utf-8";

/// The browser client, `web/dist/ticksock.js` (built from the modules of `web/src/`), served at
/// `/ticksock.js` beside each page. This crate is not published (`publish = false`), so it may
/// reach it in `web/`, where it is built and tested.
const TICKSOCK_JS: StaticFile = StaticFile {
    path: "/ticksock.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("../../web/dist/ticksock.js"),
};
