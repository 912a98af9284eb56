//! The messages of the built-in example game, "arena": its routes' requests and replies and
//! its push topics. Clients, the load simulator and the game itself share them from here.
//!
//! | route   | request          | reply        | effect |
//! |---------|------------------|--------------|--------|
//! | `login` | [`Login`]        | [`LoggedIn`] | names the connection's player |
//! | `rooms` | `()`             | `Vec<`[`RoomInfo`]`>` | lists the arenas |
//! | `join`  | [`Join`]         | [`Joined`]   | enters an arena (leaving any other) |
//! | `leave` | `()`             | `()`         | leaves the arena |
//! | `move`  | [`Move`]         | [`Moved`]    | sets the player's direction from the next tick on |
//! | `chat`  | [`Chat`]         | `()`         | pushes [`ChatLine`] on [`TOPIC_CHAT`] to the arena |
//! | `whisper` | [`Whisper`]    | `()`         | pushes [`ChatLine`] on [`TOPIC_WHISPER`] to every connection of the named player |
//! | `echo`  | any bytes        | the same bytes | nothing (benchmarks) |
//!
//! Pushes: [`TOPIC_STATE`] carries [`State`] to every player of an arena each tick;
//! [`TOPIC_CHAT`] carries [`ChatLine`]; [`TOPIC_PRESENCE`] carries [`Presence`].

use serde::{Deserialize, Serialize};

/// Route: name the connection's player.
pub const ROUTE_LOGIN: &str = "login";
/// Route: list the arenas.
pub const ROUTE_ROOMS: &str = "rooms";
/// Route: enter an arena.
pub const ROUTE_JOIN: &str = "join";
/// Route: leave the arena.
pub const ROUTE_LEAVE: &str = "leave";
/// Route: set the direction of movement.
pub const ROUTE_MOVE: &str = "move";
/// Route: say something to the arena.
pub const ROUTE_CHAT: &str = "chat";
/// Route: send a private message to a player by name, on all of their connections.
pub const ROUTE_WHISPER: &str = "whisper";
/// Route: answer with the request's body, unchanged.
pub const ROUTE_ECHO: &str = "echo";

/// Push topic: the authoritative positions of an arena's players, once per tick.
pub const TOPIC_STATE: &str = "state";
/// Push topic: a chat line said in the arena.
pub const TOPIC_CHAT: &str = "chat";
/// Push topic: a private message ([`ChatLine`]) from another player.
pub const TOPIC_WHISPER: &str = "whisper";
/// Push topic: a player entered or left the arena.
pub const TOPIC_PRESENCE: &str = "presence";

/// The width and height of every arena, in arena units; positions are `0..ARENA_SIZE`.
pub const ARENA_SIZE: i32 = 1000;
/// How far a player moves per tick along each axis of its direction.
pub const SPEED: i32 = 5;
/// The longest name `login` accepts, in bytes.
pub const MAX_NAME_LEN: usize = 32;
/// The longest chat line `chat` accepts, in bytes.
pub const MAX_CHAT_LEN: usize = 256;

/// Error code: the call needs a logged-in player.
pub const ERR_NOT_LOGGED_IN: u16 = 1001;
/// Error code: the call needs the player to be in an arena.
pub const ERR_NOT_IN_ROOM: u16 = 1002;
/// Error code: no arena has that name.
pub const ERR_NO_SUCH_ROOM: u16 = 1003;
/// Error code: the arena is full.
pub const ERR_ROOM_FULL: u16 = 1004;
/// Error code: a name or text is empty or too long.
pub const ERR_INVALID: u16 = 1005;
/// Error code: no player of that name is online.
pub const ERR_NOT_ONLINE: u16 = 1006;

/// Request of `login`. The name is the player's user id: logging in with the same name on
/// several connections (devices) makes them one player, with one `player_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// The player's display name: 1 to [`MAX_NAME_LEN`] bytes.
    pub name: String,
}

/// Reply of `login`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedIn {
    /// The player's id, as it appears in [`State`] and [`ChatLine`].
    pub player_id: u32,
}

/// One arena, as `rooms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The arena's name, as `join` takes it.
    pub name: String,
    /// How many players are in it.
    pub players: u32,
    /// How many players it holds at most.
    pub capacity: u32,
}

/// Request of `join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// The arena to enter.
    pub room: String,
}

/// Reply of `join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// The arena entered.
    pub room: String,
    /// Everyone in it now, the caller included.
    pub players: Vec<PlayerState>,
    /// The name of each of `players`, in the same order. Names travel here and in [`Presence`]
    /// (which keeps a client's roster current) rather than in [`State`], which every player
    /// receives every tick.
    pub roster: Vec<RosterEntry>,
}

/// A player's name, as [`Joined::roster`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// The player's id, as in [`PlayerState::id`].
    pub id: u32,
    /// The name the player logged in with.
    pub name: String,
}

/// Request of `move`: a direction, each axis -1, 0 or 1 (other values are clamped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Direction along x.
    pub dx: i8,
    /// Direction along y.
    pub dy: i8,
}

/// Reply of `move`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// The tick from which the new direction applies.
    pub tick: u64,
}

/// Request of `chat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    /// What to say: 1 to [`MAX_CHAT_LEN`] bytes.
    pub text: String,
}

/// Request of `whisper`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whisper {
    /// The name the recipient logged in with.
    pub to: String,
    /// What to say: 1 to [`MAX_CHAT_LEN`] bytes.
    pub text: String,
}

/// Push on [`TOPIC_CHAT`] and [`TOPIC_WHISPER`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLine {
    /// Who said it.
    pub player_id: u32,
    /// Their name.
    pub name: String,
    /// What they said.
    pub text: String,
}

/// Push on [`TOPIC_PRESENCE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The player who came or went.
    pub player_id: u32,
    /// Their name.
    pub name: String,
    /// `true` when they entered, `false` when they left.
    pub joined: bool,
}

/// Push on [`TOPIC_STATE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The tick this state is the result of.
    pub tick: u64,
    /// Every player in the arena.
    pub players: Vec<PlayerState>,
}

/// One player's authoritative position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerState {
    /// The player's id.
    pub id: u32,
    /// Position along x, `0..ARENA_SIZE`.
    pub x: i32,
    /// Position along y, `0..ARENA_SIZE`.
    pub y: i32,
}

/// The tick of a [`TOPIC_STATE`] push, for clients that only time the pushes (the load
/// simulator, which reads 175 000 of them a second at 5000 bots): only the tick is decoded,
/// the players are not read. A body too short to hold a tick is an error.
pub fn state_tick(body: &[u8]) -> Result<u64, ticksock_protocol::BodyError> {
    // `tick` is `State`'s first field, so it is the body's first value.
    ticksock_protocol::decode_body_prefix::<u64>(body).map(|(tick, _)| tick)
}

#[cfg(test)]
mod state_tick_tests {
    use super::*;

    #[test]
    fn state_tick_reads_the_tick_without_the_players() {
        let players = (0..50).map(|id| PlayerState { id, x: 999, y: -1 }).collect();
        let body = ticksock_protocol::encode_body(&State { tick: 1 << 40, players }).expect("encodes");
        assert_eq!(state_tick(&body).expect("a state"), 1 << 40);
        let empty = ticksock_protocol::encode_body(&State { tick: 7, players: vec![] }).expect("encodes");
        assert_eq!(state_tick(&empty).expect("a state"), 7);
        assert!(state_tick(&[]).is_err());
        assert!(state_tick(&[253, 1]).is_err(), "a u64 tick cut short");
    }
}
