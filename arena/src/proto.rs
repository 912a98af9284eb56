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
//! | `register` | [`Register`]  | [`Session`]  | creates an account; its session token |
//! | `signin` | [`SignIn`]      | [`Session`]  | a session token for an account |
//! | `guest` | [`Guest`]        | [`GuestSession`] | a session token for a guest account, new or the device's |
//! | `leaderboard` | [`Leaderboard`] | `Vec<`[`LeaderboardEntry`]`>` | the top players by one stat |
//! | `flush_stats` | `()`       | [`PlayerStats`] | saves the caller's stats now; its totals (authenticated only) |
//!
//! A session token is sent in the server's `auth` request (or at the upgrade) to log in as its
//! account (PROTOCOL.md 8.8).
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
/// Route: answer with how many times this call (this connection's callback id) has run,
/// 1 unless the server ran it twice: for the fault-injection runs of version 2 sessions
/// (PROTOCOL.md section 11), which resend calls after a resume and must see 1 every time.
pub const ROUTE_ONCE: &str = "once";
/// Route: create an account with a password.
pub const ROUTE_REGISTER: &str = "register";
/// Route: a session token for an account's name and password.
pub const ROUTE_SIGNIN: &str = "signin";
/// Route: a session token for a guest account (a new one, or the one of a device token).
pub const ROUTE_GUEST: &str = "guest";
/// Route: the top players by one stat.
pub const ROUTE_LEADERBOARD: &str = "leaderboard";
/// Route: save the authenticated caller's stats now, answered once they are committed, with
/// its totals.
pub const ROUTE_FLUSH_STATS: &str = "flush_stats";
/// How many of a connection's latest `once` calls the arena remembers: a resent call is at
/// most a window of calls old, so this is room enough, and a connection that calls for hours
/// costs no more.
pub const ONCE_MEMORY: usize = 4096;

/// Route: acknowledges a replication update's tick (request: the tick, `u64`; reply:
/// [`AckOutcome`](ticksock_protocol::replica::AckOutcome)). PROTOCOL.md 14.4.
pub const ROUTE_REPLICA_ACK: &str = ticksock_protocol::replica::ROUTE_REPLICA_ACK;
/// Route (debug): the tick and digest of the view the server last sent the caller
/// (request: `()`; reply: `Option<(u64, u64)>`, none without `--replica-digests`). PROTOCOL.md 8.9.
pub const ROUTE_REPLICA_DIGEST: &str = "replica_digest";
/// Replication (PROTOCOL.md 8.9): the kind of a player entity.
pub const REPLICA_KIND_PLAYER: u16 = 1;
/// Replication: a player entity's position, `(i32, i32)`, as [`PlayerState`]'s `x`, `y`.
pub const PLAYER_FIELD_POS: u8 = 0;
/// Replication: a player entity's player id, `u32`, as in [`PlayerState`] and [`ChatLine`].
pub const PLAYER_FIELD_ID: u8 = 1;
/// Replication: a player entity's name, a string.
pub const PLAYER_FIELD_NAME: u8 = 2;

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
/// Error code: `register` with a name an account has already.
pub const ERR_NAME_TAKEN: u16 = 1007;
/// Error code: wrong name or password (`signin`), or an unknown device token (`guest`).
pub const ERR_BAD_CREDENTIALS: u16 = 1008;
/// Error code: the server's database failed or is busy (retry later), or it keeps none.
pub const ERR_STORE: u16 = 1009;

/// The longest password `register` and `signin` accept, in bytes.
pub const MAX_PASSWORD_LEN: usize = 128;
/// The most entries `leaderboard` answers.
pub const MAX_LEADERBOARD_LEN: u32 = 100;

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

/// Request of `register`: a new account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// The account's name, which is its players' name: 1 to [`MAX_NAME_LEN`] bytes, not
    /// starting with `guest-` (kept for guests).
    pub name: String,
    /// 1 to [`MAX_PASSWORD_LEN`] bytes.
    pub password: String,
}

/// Request of `signin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    /// The account's name.
    pub name: String,
    /// Its password.
    pub password: String,
}

/// Reply of `register` and `signin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session token: send it in `auth` (or at the upgrade) to play as the account, for
    /// 24 hours.
    pub token: String,
}

/// Request of `guest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    /// The device token a previous `guest` gave this device, to come back as that guest;
    /// none for a new guest.
    pub device_token: Option<String>,
}

/// Reply of `guest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestSession {
    /// The session token, as in [`Session`].
    pub token: String,
    /// The device token to keep: it is the guest's only way back.
    pub device_token: String,
}

/// Which stat a leaderboard ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaderboardBy {
    /// Distance moved, in arena units.
    Distance,
    /// Chat lines and whispers sent.
    Messages,
    /// Arenas joined.
    Games,
}

/// Request of `leaderboard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaderboard {
    /// The stat to rank by.
    pub by: LeaderboardBy,
    /// How many entries at most: 1 to [`MAX_LEADERBOARD_LEN`].
    pub limit: u32,
}

/// One entry of the reply of `leaderboard`, highest first, ties by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderboardEntry {
    /// The account's name.
    pub name: String,
    /// Its total of the stat ranked by.
    pub value: u64,
}

/// Reply of `flush_stats`: the caller's account's totals, as committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerStats {
    /// Distance moved, in arena units.
    pub distance: u64,
    /// Chat lines and whispers sent.
    pub messages: u64,
    /// Arenas joined.
    pub games: u64,
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
///
/// In bincode each axis is one raw `i8` byte. In JSON it is any integer: one beyond the `i8`
/// range decodes as the nearest end of it (300 as 127), so that every integer means what the
/// game's clamp to -1..=1 makes of it, as PROTOCOL.md section 8.3 says; a number that is not
/// an integer (`1.5`), or a string, is still a bad body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Direction along x.
    #[serde(deserialize_with = "direction")]
    pub dx: i8,
    /// Direction along y.
    #[serde(deserialize_with = "direction")]
    pub dy: i8,
}

/// Reads one axis of a [`Move`]: asks for an `i8`, which bincode answers with its byte and
/// JSON with whatever integer the text holds (serde_json reads numbers as 64-bit).
fn direction<'de, D: serde::Deserializer<'de>>(axis: D) -> Result<i8, D::Error> {
    axis.deserialize_i8(Direction)
}

/// Accepts every integer and saturates it to the `i8` range; other values keep serde's
/// "invalid type" error.
struct Direction;

impl serde::de::Visitor<'_> for Direction {
    type Value = i8;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an integer direction")
    }

    fn visit_i8<E>(self, v: i8) -> Result<i8, E> {
        Ok(v)
    }

    fn visit_i64<E>(self, v: i64) -> Result<i8, E> {
        Ok(i8::try_from(v).unwrap_or(if v < 0 { i8::MIN } else { i8::MAX }))
    }

    fn visit_u64<E>(self, v: u64) -> Result<i8, E> {
        Ok(i8::try_from(v).unwrap_or(i8::MAX))
    }
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
mod move_tests {
    use super::*;

    #[test]
    fn a_json_move_takes_any_integer_and_keeps_i8_values_exact() {
        let read = |text: &str| serde_json::from_str::<Move>(text);
        assert_eq!(read(r#"{"dx":-1,"dy":1}"#).expect("in range"), Move { dx: -1, dy: 1 });
        assert_eq!(read(r#"{"dx":-128,"dy":127}"#).expect("the ends of i8"), Move { dx: -128, dy: 127 });
        assert_eq!(read(r#"{"dx":300,"dy":-129}"#).expect("beyond i8"), Move { dx: 127, dy: -128 });
        let ends = format!(r#"{{"dx":{},"dy":{}}}"#, i64::MIN, u64::MAX);
        assert_eq!(read(&ends).expect("the ends of i64 and u64"), Move { dx: -128, dy: 127 });
        for bad in ["1.5", "1.0", "1e2", r#""1""#, "null", "true", "18446744073709551616"] {
            let text = format!(r#"{{"dx":{bad},"dy":0}}"#);
            assert!(read(&text).is_err(), "{text} decoded");
        }
    }

    #[test]
    fn a_bincode_move_is_two_raw_bytes_as_before() {
        for (dx, dy) in [(-1, 1), (i8::MIN, i8::MAX), (0, 0), (5, -7)] {
            let body = ticksock_protocol::encode_body(&Move { dx, dy }).expect("encodes");
            assert_eq!(body, [dx as u8, dy as u8]);
            assert_eq!(ticksock_protocol::decode_body::<Move>(&body).expect("decodes"), Move { dx, dy });
        }
        assert!(ticksock_protocol::decode_body::<Move>(&[1]).is_err(), "one byte short");
    }
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
