//! The example game: players log in, enter arenas, move, and chat. Movement is applied at the
//! tick, and every arena pushes its authoritative state to its players each tick.
//!
//! The messages are defined in [`protocol::arena`], shared with clients.

use std::collections::{BTreeMap, HashMap};

use protocol::arena::{
    ARENA_SIZE, Chat, ChatLine, ERR_INVALID, ERR_NO_SUCH_ROOM, ERR_NOT_IN_ROOM, ERR_NOT_LOGGED_IN,
    ERR_ROOM_FULL, Join, Joined, LoggedIn, Login, MAX_CHAT_LEN, MAX_NAME_LEN, Move, Moved, PlayerState,
    Presence, RoomInfo, SPEED, State, TOPIC_CHAT, TOPIC_PRESENCE, TOPIC_STATE,
};
use protocol::arena::{
    ROUTE_CHAT, ROUTE_ECHO, ROUTE_JOIN, ROUTE_LEAVE, ROUTE_LOGIN, ROUTE_MOVE, ROUTE_ROOMS,
};

use crate::{AppError, Caller, ConnId, Ctx, Game, Router};

/// How the arena game is set up.
#[derive(Debug, Clone)]
pub struct ArenaConfig {
    /// Arenas that exist from the start (they are listed by `rooms` even when empty).
    pub rooms: Vec<String>,
    /// Players per arena at most. Default 64: the state push of an arena grows with its
    /// players, and every player receives it every tick.
    pub capacity: u32,
    /// Arenas at most, counting those created by `join`. Default 256.
    pub max_rooms: usize,
}

impl Default for ArenaConfig {
    fn default() -> Self {
        Self { rooms: vec!["lobby".into()], capacity: 64, max_rooms: 256 }
    }
}

/// The arena game's state.
#[derive(Debug, Default)]
pub struct Arena {
    config: ArenaConfig,
    players: HashMap<ConnId, Player>,
    rooms: BTreeMap<String, Room>,
    next_player_id: u32,
}

#[derive(Debug)]
struct Player {
    id: u32,
    name: String,
    room: Option<String>,
}

#[derive(Debug, Default)]
struct Room {
    members: BTreeMap<ConnId, Avatar>,
}

#[derive(Debug, Clone, Copy)]
struct Avatar {
    id: u32,
    x: i32,
    y: i32,
    dx: i8,
    dy: i8,
}

impl Arena {
    /// An arena game with these settings.
    pub fn new(config: ArenaConfig) -> Self {
        let rooms = config.rooms.iter().map(|name| (name.clone(), Room::default())).collect();
        Self { config, players: HashMap::new(), rooms, next_player_id: 0 }
    }

    /// How many players are logged in.
    pub fn players(&self) -> usize {
        self.players.len()
    }

    fn login(&mut self, _: &mut Ctx<'_>, caller: Caller, request: Login) -> Result<LoggedIn, AppError> {
        check_text(&request.name, MAX_NAME_LEN)?;
        if let Some(player) = self.players.get_mut(&caller.conn) {
            player.name = request.name;
            return Ok(LoggedIn { player_id: player.id });
        }
        self.next_player_id += 1;
        let id = self.next_player_id;
        self.players.insert(caller.conn, Player { id, name: request.name, room: None });
        Ok(LoggedIn { player_id: id })
    }

    fn list_rooms(&mut self, _: &mut Ctx<'_>, _: Caller, (): ()) -> Result<Vec<RoomInfo>, AppError> {
        Ok(self
            .rooms
            .iter()
            .map(|(name, room)| RoomInfo {
                name: name.clone(),
                players: room.members.len() as u32,
                capacity: self.config.capacity,
            })
            .collect())
    }

    fn join(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Join) -> Result<Joined, AppError> {
        check_text(&request.room, MAX_NAME_LEN)?;
        let player = self.players.get(&caller.conn).ok_or_else(not_logged_in)?;
        if player.room.as_deref() == Some(request.room.as_str()) {
            return Ok(Joined { room: request.room.clone(), players: self.room_state(&request.room) });
        }
        match self.rooms.get(&request.room) {
            Some(room) if room.members.len() as u32 >= self.config.capacity => {
                return Err(AppError::new(ERR_ROOM_FULL, "that arena is full"));
            }
            Some(_) => {}
            None if self.rooms.len() >= self.config.max_rooms => {
                return Err(AppError::new(ERR_NO_SUCH_ROOM, "no such arena, and no room for a new one"));
            }
            None => {
                self.rooms.insert(request.room.clone(), Room::default());
            }
        }
        self.leave_room(ctx, caller.conn);
        let Some(player) = self.players.get_mut(&caller.conn) else { return Err(not_logged_in()) };
        let (id, name) = (player.id, player.name.clone());
        player.room = Some(request.room.clone());
        let avatar = Avatar { id, x: spawn(id, 7), y: spawn(id, 13), dx: 0, dy: 0 };
        let Some(room) = self.rooms.get_mut(&request.room) else { return Err(no_room()) };
        let others: Vec<ConnId> = room.members.keys().copied().collect();
        room.members.insert(caller.conn, avatar);
        ctx.push_many(others, TOPIC_PRESENCE, &Presence { player_id: id, name, joined: true });
        Ok(Joined { room: request.room.clone(), players: self.room_state(&request.room) })
    }

    fn leave(&mut self, ctx: &mut Ctx<'_>, caller: Caller, (): ()) -> Result<(), AppError> {
        let player = self.players.get(&caller.conn).ok_or_else(not_logged_in)?;
        if player.room.is_none() {
            return Err(not_in_room());
        }
        self.leave_room(ctx, caller.conn);
        Ok(())
    }

    fn movement(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Move) -> Result<Moved, AppError> {
        let avatar = self.avatar_mut(caller.conn)?;
        avatar.dx = request.dx.clamp(-1, 1);
        avatar.dy = request.dy.clamp(-1, 1);
        Ok(Moved { tick: ctx.tick() + 1 })
    }

    fn chat(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Chat) -> Result<(), AppError> {
        check_text(&request.text, MAX_CHAT_LEN)?;
        let player = self.players.get(&caller.conn).ok_or_else(not_logged_in)?;
        let room = player.room.as_ref().and_then(|r| self.rooms.get(r)).ok_or_else(not_in_room)?;
        let line = ChatLine { player_id: player.id, name: player.name.clone(), text: request.text };
        ctx.push_many(room.members.keys().copied(), TOPIC_CHAT, &line);
        Ok(())
    }

    fn avatar_mut(&mut self, conn: ConnId) -> Result<&mut Avatar, AppError> {
        let player = self.players.get(&conn).ok_or_else(not_logged_in)?;
        let room = player.room.as_ref().ok_or_else(not_in_room)?;
        self.rooms.get_mut(room).and_then(|r| r.members.get_mut(&conn)).ok_or_else(not_in_room)
    }

    fn leave_room(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let Some(player) = self.players.get_mut(&conn) else { return };
        let Some(name) = player.room.take() else { return };
        let Some(room) = self.rooms.get_mut(&name) else { return };
        room.members.remove(&conn);
        let presence = Presence { player_id: player.id, name: player.name.clone(), joined: false };
        ctx.push_many(room.members.keys().copied(), TOPIC_PRESENCE, &presence);
    }

    fn room_state(&self, room: &str) -> Vec<PlayerState> {
        self.rooms.get(room).map_or_else(Vec::new, |r| r.members.values().map(player_state).collect())
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
            .raw(ROUTE_ECHO, |_, _, _, body| Ok(body.to_vec()));
    }

    fn on_disconnect(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.leave_room(ctx, conn);
        self.players.remove(&conn);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        let tick = ctx.tick();
        for room in self.rooms.values_mut() {
            if room.members.is_empty() {
                continue;
            }
            for avatar in room.members.values_mut() {
                avatar.x = (avatar.x + i32::from(avatar.dx) * SPEED).clamp(0, ARENA_SIZE - 1);
                avatar.y = (avatar.y + i32::from(avatar.dy) * SPEED).clamp(0, ARENA_SIZE - 1);
            }
            let state = State { tick, players: room.members.values().map(player_state).collect() };
            ctx.push_many(room.members.keys().copied(), TOPIC_STATE, &state);
        }
    }
}

fn player_state(a: &Avatar) -> PlayerState {
    PlayerState { id: a.id, x: a.x, y: a.y }
}

/// A spawn coordinate spread over the arena, derived from the player id so tests can predict it.
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

fn no_room() -> AppError {
    AppError::new(ERR_NO_SUCH_ROOM, "no such arena")
}
