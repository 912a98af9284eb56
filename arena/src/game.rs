//! The example game: players log in, enter arenas, move, chat and whisper. Movement is applied
//! at the tick, and every arena pushes its authoritative state to its members each tick.
//!
//! It is built on the server's push API: the player's name is its user id
//! ([`Ctx::bind_user`]); each arena is a [`Rooms`] entry whose members are the hub group of
//! the same name; who a connection is lives in its session data. The messages are defined in
//! [`crate::proto`], shared with clients.

use std::time::{Duration, Instant};

use crate::proto::{
    ARENA_SIZE, Chat, ChatLine, ERR_INVALID, ERR_NO_SUCH_ROOM, ERR_NOT_IN_ROOM, ERR_NOT_LOGGED_IN,
    ERR_NOT_ONLINE, ERR_ROOM_FULL, Join, Joined, LoggedIn, Login, MAX_CHAT_LEN, MAX_NAME_LEN, Move, Moved,
    ONCE_MEMORY, PlayerState, Presence, ROUTE_CHAT, ROUTE_ECHO, ROUTE_JOIN, ROUTE_LEAVE, ROUTE_LOGIN,
    ROUTE_MOVE, ROUTE_ONCE, ROUTE_ROOMS, ROUTE_WHISPER, RoomInfo, RosterEntry, SPEED, State, TOPIC_CHAT,
    TOPIC_PRESENCE, TOPIC_STATE, TOPIC_WHISPER, Whisper,
};
use std::collections::{BTreeMap, HashMap, VecDeque};

use ticksock_server::{AppError, Caller, ConnId, Ctx, Game, Rooms, Router};

/// How the arena game is set up.
#[derive(Debug, Clone)]
pub struct ArenaConfig {
    /// Arenas that always exist, even empty.
    pub rooms: Vec<String>,
    /// Connections per arena at most. Default 64: an arena's state push grows with its
    /// players, and every player receives it every tick.
    pub capacity: u32,
    /// Arenas at most, counting those created by `join`. Default 256.
    pub max_rooms: usize,
    /// How long an arena created by `join` outlives its last player, and how long a player who
    /// drops keeps their avatar, so that they can come back to it (and to their position).
    /// Default 30 s.
    pub room_grace: Duration,
}

impl Default for ArenaConfig {
    fn default() -> Self {
        Self {
            rooms: vec!["lobby".into()],
            capacity: 64,
            max_rooms: 256,
            room_grace: Duration::from_secs(30),
        }
    }
}

/// The arena game's state.
#[derive(Debug)]
pub struct Arena {
    config: ArenaConfig,
    rooms: Rooms<ArenaRoom>,
    next_player_id: u32,
    /// The runs of each connection's latest `once` calls (see [`ROUTE_ONCE`]).
    once: HashMap<ConnId, OnceRuns>,
}

/// How many times each of a connection's latest `once` calls ran, the oldest forgotten first.
#[derive(Debug, Default)]
struct OnceRuns {
    runs: HashMap<u32, u32>,
    order: VecDeque<u32>,
}

impl OnceRuns {
    /// Counts one run of call `id`; how many there have been.
    fn run(&mut self, id: u32) -> u32 {
        let runs = self.runs.entry(id).or_default();
        *runs += 1;
        let count = *runs;
        if count == 1 {
            self.order.push_back(id);
            if self.order.len() > ONCE_MEMORY
                && let Some(old) = self.order.pop_front()
            {
                self.runs.remove(&old);
            }
        }
        count
    }
}

/// Who a connection is: its session data.
#[derive(Debug, Default)]
struct Seat {
    player: Option<Player>,
}

#[derive(Debug, Clone)]
struct Player {
    id: u32,
    name: String,
    room: Option<String>,
}

/// One arena's state: an avatar per player (by name), kept while they are away so that
/// they can come back to where they were.
#[derive(Debug, Default)]
struct ArenaRoom {
    avatars: BTreeMap<String, Avatar>,
    /// How many avatars are away, so a tick skips the expiry pass when none is.
    away: usize,
}

#[derive(Debug, Clone, Copy)]
struct Avatar {
    id: u32,
    x: i32,
    y: i32,
    dx: i8,
    dy: i8,
    /// Set when the player dropped: the avatar waits for them, for `room_grace` at most.
    away_since: Option<Instant>,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new(ArenaConfig::default())
    }
}

impl Arena {
    /// An arena game with these settings.
    pub fn new(config: ArenaConfig) -> Self {
        let mut rooms = Rooms::new(config.room_grace);
        for name in &config.rooms {
            rooms.insert_permanent(name, ArenaRoom::default());
        }
        Self { config, rooms, next_player_id: 0, once: HashMap::new() }
    }

    /// How many arenas exist.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    fn login(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Login) -> Result<LoggedIn, AppError> {
        check_text(&request.name, MAX_NAME_LEN)?;
        if let Some(player) = player(ctx, caller.conn) {
            if player.name == request.name {
                return Ok(LoggedIn { player_id: player.id });
            }
            // A new name is a new player: the old one leaves its arena first.
            self.leave_room(ctx, caller.conn, false);
        }
        // A name logged in on several connections (devices) is one player with one id.
        let same_player =
            ctx.hub().user_connections(&request.name).find_map(|c| player(ctx, c)).map(|p| p.id);
        ctx.bind_user(caller.conn, &request.name).map_err(|e| AppError::new(ERR_INVALID, e.to_string()))?;
        let id = same_player.unwrap_or_else(|| {
            self.next_player_id += 1;
            self.next_player_id
        });
        let seat = ctx.hub_mut().session_mut::<Seat>(caller.conn).map(|s| {
            s.player = Some(Player { id, name: request.name, room: None });
        });
        seat.ok_or_else(not_logged_in)?;
        Ok(LoggedIn { player_id: id })
    }

    /// The arenas of this node and, in a cluster, those of the other nodes (an arena lives on
    /// one node; `lobby` is on every node and listed once, with its players on all of them).
    fn list_rooms(&mut self, ctx: &mut Ctx<'_>, _: Caller, (): ()) -> Result<Vec<RoomInfo>, AppError> {
        let info = |name: &str| RoomInfo {
            name: name.to_owned(),
            players: ctx.hub().member_count(name) as u32,
            capacity: self.config.capacity,
        };
        let here = self.rooms.iter().map(|(name, _)| info(name));
        let elsewhere = ctx
            .hub()
            .cluster()
            .rooms()
            .filter(|(name, _)| !self.rooms.contains(name))
            .map(|(name, _)| info(name));
        let mut rooms: Vec<RoomInfo> = here.chain(elsewhere).collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rooms)
    }

    fn join(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Join) -> Result<Joined, AppError> {
        check_text(&request.room, MAX_NAME_LEN)?;
        let player = player(ctx, caller.conn).ok_or_else(not_logged_in)?;
        if player.room.as_deref() == Some(request.room.as_str()) {
            return Ok(self.joined(&request.room));
        }
        let no_space = || AppError::new(ERR_NO_SUCH_ROOM, "no such arena, and no space for a new one");
        let new_here = !self.rooms.contains(&request.room);
        // In a cluster an arena lives on one node (`lobby` on every one): this answers a
        // redirect to the node that holds it, before anything changes here. An arena that
        // could not be made here is not claimed: a claim stays (renewed in Redis, listed on
        // every node) until its arena is disposed of, and there would be none.
        if !self.config.rooms.contains(&request.room) {
            if new_here
                && self.rooms.len() >= self.config.max_rooms
                && ctx.hub().cluster().room_owner(&request.room).is_none()
            {
                return Err(no_space());
            }
            ctx.claim_room(caller, &request.room)?;
        }
        if !new_here {
            // Per node: in a cluster, `lobby` is on every node, each with its own capacity.
            if ctx.hub().local_member_count(&request.room) as u32 >= self.config.capacity {
                return Err(AppError::new(ERR_ROOM_FULL, "that arena is full"));
            }
        } else if self.rooms.len() >= self.config.max_rooms {
            // Others were made while this one's claim was on its way: give the claim back.
            ctx.release_room(&request.room);
            return Err(no_space());
        }
        self.leave_room(ctx, caller.conn, false);
        let already_here =
            ctx.hub().user_connections(&player.name).any(|c| ctx.hub().is_member(c, &request.room));

        let room = self.rooms.get_or_insert_with(&request.room, ArenaRoom::default);
        room.enter(&player.name, player.id, ctx.now(), self.config.room_grace);
        ctx.hub_mut().join(caller.conn, &request.room);
        set_room(ctx, caller.conn, Some(request.room.clone()));
        if !already_here {
            let presence = Presence { player_id: player.id, name: player.name, joined: true };
            ctx.send_to_group(&request.room, TOPIC_PRESENCE, &presence, &[caller.conn]);
        }
        Ok(self.joined(&request.room))
    }

    fn leave(&mut self, ctx: &mut Ctx<'_>, caller: Caller, (): ()) -> Result<(), AppError> {
        let player = player(ctx, caller.conn).ok_or_else(not_logged_in)?;
        if player.room.is_none() {
            return Err(not_in_room());
        }
        self.leave_room(ctx, caller.conn, false);
        Ok(())
    }

    fn movement(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Move) -> Result<Moved, AppError> {
        // The hot route: borrow the session rather than clone it.
        let seat = ctx.hub().session::<Seat>(caller.conn).and_then(|s| s.player.as_ref());
        let player = seat.ok_or_else(not_logged_in)?;
        let room = player.room.as_deref().ok_or_else(not_in_room)?;
        let avatar =
            self.rooms.get_mut(room).and_then(|r| r.avatars.get_mut(&player.name)).ok_or_else(not_in_room)?;
        avatar.dx = request.dx.clamp(-1, 1);
        avatar.dy = request.dy.clamp(-1, 1);
        Ok(Moved { tick: ctx.tick() + 1 })
    }

    fn chat(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Chat) -> Result<(), AppError> {
        check_text(&request.text, MAX_CHAT_LEN)?;
        let player = player(ctx, caller.conn).ok_or_else(not_logged_in)?;
        let room = player.room.ok_or_else(not_in_room)?;
        let line = ChatLine { player_id: player.id, name: player.name, text: request.text };
        ctx.send_to_group(&room, TOPIC_CHAT, &line, &[]);
        Ok(())
    }

    fn whisper(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Whisper) -> Result<(), AppError> {
        check_text(&request.text, MAX_CHAT_LEN)?;
        let player = player(ctx, caller.conn).ok_or_else(not_logged_in)?;
        if !ctx.hub().is_online(&request.to) {
            return Err(AppError::new(ERR_NOT_ONLINE, "no player of that name is online"));
        }
        let line = ChatLine { player_id: player.id, name: player.name, text: request.text };
        ctx.send_to_user(&request.to, TOPIC_WHISPER, &line);
        Ok(())
    }

    /// Takes the connection out of its arena. Its avatar stays (marked away) when the player
    /// dropped, and goes when they left on purpose, unless another of their connections is
    /// still in the arena.
    fn leave_room(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, dropped: bool) {
        let Some(player) = player(ctx, conn) else { return };
        let Some(name) = player.room else { return };
        ctx.hub_mut().leave(conn, &name);
        set_room(ctx, conn, None);
        let still_here =
            ctx.hub().user_connections(&player.name).any(|c| c != conn && ctx.hub().is_member(c, &name));
        if still_here {
            return;
        }
        if let Some(room) = self.rooms.get_mut(&name) {
            if dropped {
                room.mark_away(&player.name, ctx.now());
            } else {
                room.remove(&player.name);
            }
        }
        let presence = Presence { player_id: player.id, name: player.name, joined: false };
        ctx.send_to_group(&name, TOPIC_PRESENCE, &presence, &[]);
    }

    /// The reply of `join`: the arena's present players and, in the same order, their names
    /// (the roster a client labels players from; `presence` keeps it current).
    fn joined(&self, room: &str) -> Joined {
        let Some(arena) = self.rooms.get(room) else {
            return Joined { room: room.to_owned(), players: Vec::new(), roster: Vec::new() };
        };
        let roster = arena
            .avatars
            .iter()
            .filter(|(_, a)| a.away_since.is_none())
            .map(|(name, a)| RosterEntry { id: a.id, name: name.clone() })
            .collect();
        Joined { room: room.to_owned(), players: arena.state(), roster }
    }
}

impl ArenaRoom {
    fn state(&self) -> Vec<PlayerState> {
        self.avatars
            .values()
            .filter(|a| a.away_since.is_none())
            .map(|a| PlayerState { id: a.id, x: a.x, y: a.y })
            .collect()
    }

    /// The avatar of a player entering: theirs from before if they come back within `grace`
    /// (where they left it), else a new one at their spawn point.
    fn enter(&mut self, name: &str, id: u32, now: Instant, grace: Duration) {
        // An arena with no members is not ticked, so its expiry may be overdue: run it first.
        self.expire(now, grace);
        let avatar = self.avatars.entry(name.to_owned()).or_insert_with(|| Avatar {
            id,
            x: spawn(id, 7),
            y: spawn(id, 13),
            dx: 0,
            dy: 0,
            away_since: None,
        });
        avatar.id = id;
        if avatar.away_since.take().is_some() {
            self.away -= 1;
        }
    }

    /// The player dropped: their avatar stops and waits for them, for the grace time.
    fn mark_away(&mut self, name: &str, now: Instant) {
        if let Some(avatar) = self.avatars.get_mut(name) {
            if avatar.away_since.is_none() {
                self.away += 1;
            }
            avatar.away_since = Some(now);
            avatar.dx = 0;
            avatar.dy = 0;
        }
    }

    /// The player left on purpose: their avatar goes.
    fn remove(&mut self, name: &str) {
        if self.avatars.remove(name).is_some_and(|a| a.away_since.is_some()) {
            self.away -= 1;
        }
    }

    /// Forgets the avatars of players who dropped more than `grace` ago, so an arena that never
    /// empties (the lobby) does not keep every player who ever dropped from it.
    fn expire(&mut self, now: Instant, grace: Duration) {
        if self.away == 0 {
            return;
        }
        let mut away = 0;
        self.avatars.retain(|_, a| match a.away_since {
            None => true,
            Some(since) => {
                let keep = now.duration_since(since) < grace;
                away += usize::from(keep);
                keep
            }
        });
        self.away = away;
    }

    fn step(&mut self) {
        for avatar in self.avatars.values_mut().filter(|a| a.away_since.is_none()) {
            avatar.x = (avatar.x + i32::from(avatar.dx) * SPEED).clamp(0, ARENA_SIZE - 1);
            avatar.y = (avatar.y + i32::from(avatar.dy) * SPEED).clamp(0, ARENA_SIZE - 1);
        }
    }
}

impl Game for Arena {
    fn routes(router: &mut Router<Self>) {
        router
            .route(ROUTE_LOGIN, Arena::login)
            .route(ROUTE_ROOMS, Arena::list_rooms)
            .route(ROUTE_JOIN, Arena::join)
            .route(ROUTE_LEAVE, Arena::leave)
            .route(ROUTE_MOVE, Arena::movement)
            .route(ROUTE_CHAT, Arena::chat)
            .route(ROUTE_WHISPER, Arena::whisper)
            .raw(ROUTE_ECHO, |_, _, _, body, reply| {
                reply.extend_from_slice(body);
                Ok(())
            })
            .route(ROUTE_ONCE, |arena: &mut Arena, _, caller, (): ()| {
                Ok::<_, AppError>(arena.once.entry(caller.conn).or_default().run(caller.id))
            });
    }

    /// A connection that arrived with a redirect's ticket is already bound to its user (the
    /// name it logged in with on the node that redirected it): it is that player here, as
    /// after a `login` (PROTOCOL.md 8.7, "In a cluster").
    fn on_connect(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let Some(name) = ctx.hub().user_of(conn).map(str::to_owned) else { return };
        let same_player = ctx.hub().user_connections(&name).find_map(|c| player(ctx, c)).map(|p| p.id);
        let id = same_player.unwrap_or_else(|| {
            self.next_player_id += 1;
            self.next_player_id
        });
        if let Some(seat) = ctx.hub_mut().session_mut::<Seat>(conn) {
            seat.player = Some(Player { id, name, room: None });
        }
    }

    fn on_disconnect(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.once.remove(&conn);
        self.leave_room(ctx, conn, true);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        let (tick, grace) = (ctx.tick(), self.config.room_grace);
        self.rooms.tick(ctx, |name, room, ctx| {
            room.expire(ctx.now(), grace);
            room.step();
            // This node's simulation, for this node's members: in a cluster, `lobby` is
            // simulated on every node, and one node's state means nothing on another.
            ctx.send_to_group_here(name, TOPIC_STATE, &State { tick, players: room.state() }, &[]);
        });
    }
}

fn player(ctx: &Ctx<'_>, conn: ConnId) -> Option<Player> {
    ctx.hub().session::<Seat>(conn).and_then(|s| s.player.clone())
}

fn set_room(ctx: &mut Ctx<'_>, conn: ConnId, room: Option<String>) {
    if let Some(player) = ctx.hub_mut().session_mut::<Seat>(conn).and_then(|s| s.player.as_mut()) {
        player.room = room;
    }
}

/// A spawn coordinate spread over the arena, derived from the player id.
fn spawn(id: u32, salt: u32) -> i32 {
    (id.wrapping_mul(2_654_435_761).rotate_left(salt) % ARENA_SIZE as u32) as i32
}

fn check_text(text: &str, max: usize) -> Result<(), AppError> {
    if text.is_empty() || text.len() > max {
        return Err(AppError::new(ERR_INVALID, format!("must be 1 to {max} bytes")));
    }
    Ok(())
}

fn not_logged_in() -> AppError {
    AppError::new(ERR_NOT_LOGGED_IN, "log in first")
}

fn not_in_room() -> AppError {
    AppError::new(ERR_NOT_IN_ROOM, "join an arena first")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(30);

    #[test]
    fn joined_names_every_present_player_in_the_order_of_players() {
        let t0 = Instant::now();
        let mut arena = Arena::default();
        let den = arena.rooms.get_or_insert_with("den", ArenaRoom::default);
        den.enter("cyd", 3, t0, GRACE);
        den.enter("ann", 1, t0, GRACE);
        den.enter("bob", 2, t0, GRACE);
        den.mark_away("bob", t0);

        let joined = arena.joined("den");
        let roster: Vec<_> = joined.roster.iter().map(|e| (e.id, e.name.as_str())).collect();
        assert_eq!(roster, [(1, "ann"), (3, "cyd")], "bob is away: listed in neither");
        let ids: Vec<_> = joined.players.iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 3], "players and roster line up");
        assert_eq!(joined.room, "den");
    }

    #[test]
    fn the_away_count_follows_every_way_in_and_out() {
        let t0 = Instant::now();
        let mut room = ArenaRoom::default();
        room.enter("ann", 1, t0, GRACE);
        room.enter("bob", 2, t0, GRACE);
        room.mark_away("ann", t0);
        room.mark_away("ann", t0); // A second drop (another device) counts once.
        assert_eq!(room.away, 1);
        room.expire(t0 + GRACE / 2, GRACE);
        assert_eq!((room.avatars.len(), room.away), (2, 1), "still within the grace time");

        room.enter("ann", 1, t0 + GRACE / 2, GRACE);
        assert_eq!(room.away, 0, "back");
        room.mark_away("ann", t0);
        room.remove("ann");
        assert_eq!((room.avatars.len(), room.away), (1, 0), "gone on purpose while away");

        room.mark_away("bob", t0);
        room.expire(t0 + GRACE, GRACE);
        assert_eq!((room.avatars.len(), room.away), (0, 0), "expired");
        room.remove("nobody");
        assert_eq!(room.away, 0);
    }
}
