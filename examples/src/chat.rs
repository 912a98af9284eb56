//! The chat room: people join with a name, say lines to everyone in the room, and see who
//! comes and goes.
//!
//! | route  | request  | reply | effect |
//! |--------|----------|-------|--------|
//! | `join` | [`Join`] | `()`  | binds the name to the connection and enters the room; the others get a [`Presence`] |
//! | `say`  | [`Say`]  | `()`  | pushes a [`Line`] to everyone in the room, the speaker too |
//! | `who`  | `()`     | `Vec<String>` | the names in the room, sorted |
//!
//! Pushes: [`TOPIC_LINE`] carries [`Line`]; [`TOPIC_PRESENCE`] carries [`Presence`] when
//! someone joins or leaves (closes their connection).
//!
//! The game keeps no state of its own: the name is the connection's user in the server's
//! [`Hub`](ticksock_server::Hub), and the room is a hub group.

use serde::{Deserialize, Serialize};
use ticksock_protocol::error_code::APP_MIN;
use ticksock_server::{
    AppError, BindError, Caller, ConnId, Ctx, Game, Router, StaticFile, StaticFiles, UserPolicy,
};

/// Route: enter the room under a name.
pub const ROUTE_JOIN: &str = "join";
/// Route: say a line to the room.
pub const ROUTE_SAY: &str = "say";
/// Route: list the names in the room.
pub const ROUTE_WHO: &str = "who";
/// Push topic: a line said in the room ([`Line`]).
pub const TOPIC_LINE: &str = "line";
/// Push topic: someone joined or left ([`Presence`]).
pub const TOPIC_PRESENCE: &str = "presence";
/// The hub group that is the room.
pub const ROOM: &str = "room";

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 24;
/// The longest line, in characters.
pub const MAX_LINE_CHARS: usize = 500;

/// Error code: the name is empty, longer than [`MAX_NAME_CHARS`], or holds control characters.
pub const ERR_BAD_NAME: u16 = APP_MIN;
/// Error code: someone in the room already has that name.
pub const ERR_NAME_TAKEN: u16 = APP_MIN + 1;
/// Error code: this connection has already joined.
pub const ERR_ALREADY_JOINED: u16 = APP_MIN + 2;
/// Error code: `say` before `join`.
pub const ERR_NOT_JOINED: u16 = APP_MIN + 3;
/// Error code: the line is empty, longer than [`MAX_LINE_CHARS`], or holds control characters.
pub const ERR_BAD_LINE: u16 = APP_MIN + 4;

/// Request of `join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// The name to appear under: 1 to [`MAX_NAME_CHARS`] characters once spaces around it are
    /// trimmed, no control characters.
    pub name: String,
}

/// Request of `say`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Say {
    /// The line: 1 to [`MAX_LINE_CHARS`] characters once trimmed, no control characters.
    pub text: String,
}

/// Push on [`TOPIC_LINE`]: a line someone said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Who said it.
    pub from: String,
    /// What they said.
    pub text: String,
}

/// Push on [`TOPIC_PRESENCE`]: someone joined (`online`) or left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Their name.
    pub name: String,
    /// True when they joined, false when they left.
    pub online: bool,
}

/// The chat room game.
#[derive(Debug, Default)]
pub struct Chat;

impl Game for Chat {
    // A name is held by one connection at a time: a second `join` under it is refused.
    const USER_POLICY: UserPolicy = UserPolicy::RefuseNew;

    fn routes(router: &mut Router<Self>) {
        router.route(ROUTE_JOIN, join).route(ROUTE_SAY, say).route(ROUTE_WHO, who);
    }

    fn on_disconnect(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        // The hub still knows the connection's name and groups here; it forgets them after.
        if !ctx.hub().is_member(conn, ROOM) {
            return;
        }
        if let Some(name) = ctx.hub().user_of(conn).map(str::to_owned) {
            ctx.send_to_group(ROOM, TOPIC_PRESENCE, &Presence { name, online: false }, &[conn]);
        }
    }
}

fn join(_: &mut Chat, ctx: &mut Ctx<'_>, caller: Caller, request: Join) -> Result<(), AppError> {
    let name = checked_name(&request.name)?;
    if ctx.hub().is_member(caller.conn, ROOM) {
        return Err(AppError::new(ERR_ALREADY_JOINED, "this connection has already joined"));
    }
    ctx.bind_user(caller.conn, name).map_err(|e| match e {
        BindError::AlreadyOnline => AppError::new(ERR_NAME_TAKEN, format!("`{name}` is taken")),
        // The caller's connection is open while its handler runs; this is a server bug.
        BindError::NotConnected(_) => AppError::new(ticksock_protocol::error_code::INTERNAL, e.to_string()),
    })?;
    ctx.hub_mut().join(caller.conn, ROOM);
    let presence = Presence { name: name.to_owned(), online: true };
    ctx.send_to_group(ROOM, TOPIC_PRESENCE, &presence, &[caller.conn]);
    Ok(())
}

fn say(_: &mut Chat, ctx: &mut Ctx<'_>, caller: Caller, request: Say) -> Result<(), AppError> {
    let Some(from) = ctx.hub().user_of(caller.conn).map(str::to_owned) else {
        return Err(AppError::new(ERR_NOT_JOINED, "join first"));
    };
    let text = checked_line(&request.text)?.to_owned();
    ctx.send_to_group(ROOM, TOPIC_LINE, &Line { from, text }, &[]);
    Ok(())
}

fn who(_: &mut Chat, ctx: &mut Ctx<'_>, _: Caller, (): ()) -> Result<Vec<String>, AppError> {
    let hub = ctx.hub();
    let mut names: Vec<String> =
        hub.members(ROOM).filter_map(|c| hub.user_of(c)).map(str::to_owned).collect();
    names.sort();
    Ok(names)
}

/// The name trimmed, or why it is refused.
pub fn checked_name(name: &str) -> Result<&str, AppError> {
    checked_text(name, MAX_NAME_CHARS)
        .map_err(|why| AppError::new(ERR_BAD_NAME, format!("a name must be {why}")))
}

/// The line trimmed, or why it is refused.
pub fn checked_line(text: &str) -> Result<&str, AppError> {
    checked_text(text, MAX_LINE_CHARS)
        .map_err(|why| AppError::new(ERR_BAD_LINE, format!("a line must be {why}")))
}

/// `text` trimmed if it holds 1 to `max_chars` characters and no control characters; else
/// what it must be.
fn checked_text(text: &str, max_chars: usize) -> Result<&str, String> {
    let trimmed = text.trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > max_chars || trimmed.chars().any(char::is_control) {
        return Err(format!("1 to {max_chars} characters, without control characters"));
    }
    Ok(trimmed)
}

/// The chat's page (`examples/pages/chat/index.html`) and the browser client it imports,
/// built into the program.
pub fn page() -> StaticFiles {
    const FILES: &[StaticFile] = &[
        StaticFile {
            path: "/index.html",
            content_type: crate::HTML,
            body: include_bytes!("../pages/chat/index.html"),
        },
        crate::TICKSOCK_JS,
    ];
    StaticFiles::embedded(FILES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(checked_name("  ann "), Ok("ann"));
        assert_eq!(checked_name(&"é".repeat(MAX_NAME_CHARS)).map(|n| n.chars().count()), Ok(MAX_NAME_CHARS));
        for bad in ["", "   ", "a\nb", "tab\there", &"x".repeat(MAX_NAME_CHARS + 1)] {
            assert_eq!(checked_name(bad).map_err(|e| e.code), Err(ERR_BAD_NAME), "{bad:?}");
        }
    }

    #[test]
    fn lines_are_trimmed_and_bounded() {
        assert_eq!(checked_line(" hi there\n"), Ok("hi there"));
        assert!(checked_line(&"x".repeat(MAX_LINE_CHARS)).is_ok());
        for bad in ["", "\n", "bell\u{7}", &"x".repeat(MAX_LINE_CHARS + 1)] {
            assert_eq!(checked_line(bad).map_err(|e| e.code), Err(ERR_BAD_LINE), "{bad:?}");
        }
    }
}
