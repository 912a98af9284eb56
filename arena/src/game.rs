//! The example game: players log in, enter arenas, move, chat and whisper. Movement is applied
//! at the tick, and every arena pushes its authoritative state to its members each tick.
//!
//! It is built on the server's push API: the player's name is its user id
//! ([`Ctx::bind_user`]); each arena is a [`Rooms`] entry whose members are the hub group of
//! the same name; who a connection is lives in its session data. The messages are defined in
//! [`crate::proto`], shared with clients.
//!
//! Over 600 lines: the arena's rules are one state machine (rooms, avatars, presence, and the
//! stats of issue 16 that its moves and messages earn), whose routes share its private helpers;
//! the accounts (`accounts`), tokens (`session`) and stats bookkeeping (`stats`) already live
//! in modules of their own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::accounts::{Accounts, refusal};
use crate::names::ReservedNames;
use crate::proto::{
    ARENA_SIZE, Chat, ChatLine, ERR_INVALID, ERR_NAME_TAKEN, ERR_NO_SUCH_ROOM, ERR_NOT_IN_ROOM,
    ERR_NOT_LOGGED_IN, ERR_NOT_ONLINE, ERR_ROOM_FULL, ERR_STORE, Guest, Join, Joined, Leaderboard, LoggedIn,
    Login, MAX_CHAT_LEN, MAX_LEADERBOARD_LEN, MAX_NAME_LEN, Move, Moved, ONCE_MEMORY, PlayerState, Presence,
    ROUTE_CHAT, ROUTE_ECHO, ROUTE_FLUSH_STATS, ROUTE_GUEST, ROUTE_JOIN, ROUTE_LEADERBOARD, ROUTE_LEAVE,
    ROUTE_LOGIN, ROUTE_MOVE, ROUTE_ONCE, ROUTE_REGISTER, ROUTE_REPLICA_ACK, ROUTE_REPLICA_DIGEST,
    ROUTE_ROOMS, ROUTE_SIGNIN, ROUTE_WHISPER, Register, RoomInfo, RosterEntry, SPEED, SignIn, State,
    TOPIC_CHAT, TOPIC_PRESENCE, TOPIC_STATE, TOPIC_WHISPER, Whisper,
};
use crate::replication::{ArenaReplica, AvatarView, ReplicationSettings};
use crate::session::SessionAuthenticator;
use crate::stats::StatsBook;
use crate::store::Stats;
use std::collections::{BTreeMap, HashMap, VecDeque};
use ticksock_protocol::replica::AckOutcome;

use ticksock_server::{AppError, Authenticator, Caller, ConnId, Ctx, Game, Guard, JobFor, Rooms, Router};

/// How often the stats authenticated players earn are saved, all of them in one job.
pub const STATS_SAVE_PERIOD: Duration = Duration::from_secs(1);

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
    /// The accounts database (`register`, `signin`, `guest`, `leaderboard`, tokens and saved
    /// stats). Default none: those routes answer `ERR_STORE` and no token is accepted.
    pub accounts: Option<Accounts>,
    /// Send an arena's state every this many ticks (1: every tick). The simulation still runs
    /// every tick; a lower send rate saves bandwidth and CPU, and clients interpolate.
    pub state_every: u32,
    /// State by replication (PROTOCOL.md 8.9): each player sees its neighbourhood, as deltas.
    /// Default none: the full `state` push to every member.
    pub replication: Option<ReplicationSettings>,
}

impl Default for ArenaConfig {
    fn default() -> Self {
        Self {
            rooms: vec!["lobby".into()],
            capacity: 64,
            max_rooms: 256,
            room_grace: Duration::from_secs(30),
            accounts: None,
            state_every: 1,
            replication: None,
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
    /// What authenticated players earned since their last save.
    stats: StatsBook,
    /// When the stats are saved next (set at the first tick).
    next_save: Option<Instant>,
    /// What players whose last connection went (or who took another name) earned, saved
    /// together at the next tick: one job for every departure of a tick, not one each (2000
    /// players leaving at once filled the job queue, and other calls got `BUSY`).
    departed: Vec<(String, Stats)>,
    /// The names `login` may not take.
    reserved: ReservedNames,
    /// The replicated world, with [`ArenaConfig::replication`].
    replica: Option<ArenaReplica>,
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
        Self {
            rooms,
            next_player_id: 0,
            once: HashMap::new(),
            stats: StatsBook::default(),
            next_save: None,
            departed: Vec::new(),
            reserved: ReservedNames::new(
                config.accounts.iter().flat_map(|a| a.names_at_open().iter().cloned()),
            ),
            replica: config.replication.map(ArenaReplica::new),
            config,
        }
    }

    /// How many arenas exist.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    fn login(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Login) -> Result<LoggedIn, AppError> {
        check_text(&request.name, MAX_NAME_LEN)?;
        if let Some(player) = player(ctx, caller.conn)
            && player.name == request.name
        {
            return Ok(LoggedIn { player_id: player.id });
        }
        if self.reserved.is_reserved(&request.name) {
            return Err(AppError::new(ERR_NAME_TAKEN, "that name belongs to an account: sign in to use it"));
        }
        if player(ctx, caller.conn).is_some() {
            // A new name is a new player: the old one leaves its arena first.
            self.leave_room(ctx, caller.conn, false);
        }
        ctx.bind_user(caller.conn, &request.name).map_err(|e| AppError::new(ERR_INVALID, e.to_string()))?;
        // A name taken by `login` is not the account's, even on a connection that had one.
        if let Some(earned) = self.stats.forget(caller.conn) {
            self.departed.push(earned);
        }
        let id = self.seat(ctx, caller.conn, request.name).ok_or_else(not_logged_in)?;
        Ok(LoggedIn { player_id: id })
    }

    /// Seats `conn`, bound to user `name` already, as that name's player: the player of the
    /// name's other connections (devices), if any, else a new one. Its id, or `None` if the
    /// connection has gone.
    fn seat(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, name: String) -> Option<u32> {
        let same_player = ctx
            .hub()
            .user_connections(&name)
            .filter(|&c| c != conn)
            .find_map(|c| player(ctx, c))
            .filter(|p| p.name == name)
            .map(|p| p.id);
        let id = same_player.unwrap_or_else(|| {
            self.next_player_id += 1;
            self.next_player_id
        });
        ctx.hub_mut().session_mut::<Seat>(conn)?.player = Some(Player { id, name, room: None });
        Some(id)
    }

    /// The accounts, or the error of a server that keeps none.
    fn accounts(&self) -> Result<Accounts, AppError> {
        self.config.accounts.clone().ok_or_else(|| AppError::new(ERR_STORE, "this server keeps no accounts"))
    }

    /// Runs `work` with the accounts on the job pool and answers the call with its result.
    fn answer_from_store<T: serde::Serialize + Send + 'static>(
        &self,
        ctx: &mut Ctx<'_>,
        caller: Caller,
        work: impl FnOnce(&Accounts) -> Result<T, AppError> + Send + 'static,
    ) -> Result<(), AppError> {
        let accounts = self.accounts()?;
        ctx.spawn_job(
            JobFor::Call(caller),
            move || work(&accounts),
            move |_: &mut Arena, ctx, answer| match answer {
                Ok(value) => ctx.reply(caller, &value),
                Err(error) => ctx.reply_error(caller, error),
            },
        )
    }

    /// Reserves the name while the job runs (a `login` cannot take it meanwhile); a name a
    /// `login` player uses now is refused, as one an account has.
    fn register(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Register) -> Result<(), AppError> {
        let accounts = self.accounts()?;
        let name = request.name;
        if ctx.hub().is_online(&name) || !self.reserved.start_registering(&name) {
            return Err(AppError::new(ERR_NAME_TAKEN, "that name is taken"));
        }
        let spawned = ctx.spawn_job(
            JobFor::Call(caller),
            {
                let name = name.clone();
                move || accounts.register(&name, &request.password)
            },
            {
                let name = name.clone();
                move |arena: &mut Arena, ctx, answer| {
                    arena.reserved.end_registering(&name, answer.is_ok());
                    match answer {
                        Ok(session) => ctx.reply(caller, &session),
                        Err(error) => ctx.reply_error(caller, error),
                    }
                }
            },
        );
        if spawned.is_err() {
            self.reserved.end_registering(&name, false);
        }
        spawned
    }

    fn sign_in(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: SignIn) -> Result<(), AppError> {
        self.answer_from_store(ctx, caller, move |a| a.sign_in(&request.name, &request.password))
    }

    fn guest(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Guest) -> Result<(), AppError> {
        self.answer_from_store(ctx, caller, move |a| a.guest(request.device_token))
    }

    fn leaderboard(
        &mut self,
        ctx: &mut Ctx<'_>,
        caller: Caller,
        request: Leaderboard,
    ) -> Result<(), AppError> {
        if request.limit == 0 || request.limit > MAX_LEADERBOARD_LEN {
            return Err(AppError::new(ERR_INVALID, format!("limit must be 1 to {MAX_LEADERBOARD_LEN}")));
        }
        self.answer_from_store(ctx, caller, move |a| a.leaderboard(request.by, request.limit))
    }

    /// Saves the caller's earnings now and answers its totals once committed: a client that
    /// sees the answer knows those totals survive a crash of the server.
    fn flush_stats(&mut self, ctx: &mut Ctx<'_>, caller: Caller, (): ()) -> Result<(), AppError> {
        let accounts = self.accounts()?;
        // The route requires an authenticated connection, which has a user.
        let name = ctx.hub().user_of(caller.conn).ok_or_else(not_logged_in)?.to_owned();
        let delta = self.stats.take(&name);
        let work = {
            let name = name.clone();
            move || accounts.save_and_read(&name, delta)
        };
        let failed_name = name.clone();
        let spawned =
            ctx.spawn_job(JobFor::Call(caller), work, move |arena: &mut Arena, ctx, saved| match saved {
                Ok(totals) => ctx.reply(caller, &totals),
                Err(error) => {
                    arena.stats.restore(&failed_name, delta);
                    ctx.reply_error(caller, refusal(error));
                }
            });
        if spawned.is_err() {
            self.stats.restore(&name, delta);
        }
        spawned
    }

    /// Saves a batch of earnings on the job pool; what fails to save is kept for the next.
    fn save_stats(&mut self, ctx: &mut Ctx<'_>, batch: Vec<(String, Stats)>) {
        let Some(accounts) = self.config.accounts.clone() else { return };
        if batch.is_empty() {
            return;
        }
        let kept = batch.clone();
        let spawned = ctx.spawn_job(
            JobFor::Game,
            move || accounts.save(batch),
            |arena: &mut Arena, _, failed| {
                for (name, delta, error) in failed {
                    tracing::warn!("the stats of {name:?} were not saved (kept for the next save): {error}");
                    arena.stats.restore(&name, delta);
                }
            },
        );
        if spawned.is_err() {
            // The pool is full: the next save takes them along.
            for (name, delta) in kept {
                self.stats.restore(&name, delta);
            }
        }
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
        if self.stats.counts(caller.conn) {
            self.stats.add(&player.name, |s| s.games += 1);
        }
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
        Ok(Moved { tick: ctx.next_tick() })
    }

    fn chat(&mut self, ctx: &mut Ctx<'_>, caller: Caller, request: Chat) -> Result<(), AppError> {
        check_text(&request.text, MAX_CHAT_LEN)?;
        let player = player(ctx, caller.conn).ok_or_else(not_logged_in)?;
        let room = player.room.ok_or_else(not_in_room)?;
        if self.stats.counts(caller.conn) {
            self.stats.add(&player.name, |s| s.messages += 1);
        }
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
        if self.stats.counts(caller.conn) {
            self.stats.add(&player.name, |s| s.messages += 1);
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
        if let Some(replica) = &mut self.replica {
            replica.forget(conn);
        }
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
    /// The present avatars, as replication copies them.
    fn present(&self) -> impl Iterator<Item = AvatarView<'_>> {
        self.avatars.iter().filter(|(_, a)| a.away_since.is_none()).map(|(name, a)| AvatarView {
            name,
            player_id: a.id,
            x: a.x,
            y: a.y,
        })
    }

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

    /// Moves every present avatar one tick's step; `moved(name, distance)` for each that moved
    /// (the distance along x plus along y, a wall's stop counted as it is).
    fn step(&mut self, mut moved: impl FnMut(&str, u64)) {
        for (name, avatar) in self.avatars.iter_mut().filter(|(_, a)| a.away_since.is_none()) {
            let (x, y) = (avatar.x, avatar.y);
            avatar.x = (avatar.x + i32::from(avatar.dx) * SPEED).clamp(0, ARENA_SIZE - 1);
            avatar.y = (avatar.y + i32::from(avatar.dy) * SPEED).clamp(0, ARENA_SIZE - 1);
            let distance = u64::from(avatar.x.abs_diff(x) + avatar.y.abs_diff(y));
            if distance > 0 {
                moved(name, distance);
            }
        }
    }
}

impl Game for Arena {
    fn routes(router: &mut Router<Self>) {
        // A room's state each tick is the whole of it: a player who reads slowly gets the
        // latest, not a backlog of old ones (PROTOCOL.md 7.3).
        router.latest_wins(TOPIC_STATE);
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
            })
            .route(ROUTE_REPLICA_ACK, |arena: &mut Arena, _, caller, tick: u64| {
                Ok::<_, AppError>(
                    arena.replica.as_mut().map_or(AckOutcome::Unknown, |r| r.ack(caller.conn, tick)),
                )
            })
            .route(ROUTE_REPLICA_DIGEST, |arena: &mut Arena, _, caller, (): ()| {
                Ok::<_, AppError>(arena.replica.as_ref().and_then(|r| r.digest(caller.conn)))
            });
        // Each costs a password hash, a write or a read on the pool: a connection's own rate
        // keeps one client from filling the pool's queue.
        let store_rate = || Guard::rate(2, 5);
        router
            .deferred(ROUTE_REGISTER, Arena::register)
            .require(store_rate())
            .deferred(ROUTE_SIGNIN, Arena::sign_in)
            .require(store_rate())
            .deferred(ROUTE_GUEST, Arena::guest)
            .require(store_rate())
            .deferred(ROUTE_LEADERBOARD, Arena::leaderboard)
            .require(Guard::rate(5, 10))
            .deferred(ROUTE_FLUSH_STATS, Arena::flush_stats)
            .require(Guard::authenticated());
    }

    fn authenticator(&self) -> Option<Arc<dyn Authenticator>> {
        let accounts = self.config.accounts.as_ref()?;
        Some(Arc::new(SessionAuthenticator::new(accounts.key().clone())))
    }

    /// A session token was accepted: the connection is its account's player, as after a
    /// `login` with the account's name, and what it earns is saved.
    fn on_auth(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let Some(name) = ctx.hub().user_of(conn).map(str::to_owned) else { return };
        match player(ctx, conn) {
            Some(player) if player.name == name => {}
            other => {
                if other.is_some() {
                    // Another name before: that player leaves its arena, as at a `login`.
                    self.leave_room(ctx, conn, false);
                }
                self.seat(ctx, conn, name.clone());
            }
        }
        if let Some(earned) = self.stats.forget(conn) {
            self.departed.push(earned);
        }
        self.stats.authenticated(conn, &name);
    }

    /// A connection that arrived with a redirect's ticket is already bound to its user (the
    /// name it logged in with on the node that redirected it): it is that player here, as
    /// after a `login` (PROTOCOL.md 8.7, "In a cluster").
    fn on_connect(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let Some(name) = ctx.hub().user_of(conn).map(str::to_owned) else { return };
        self.seat(ctx, conn, name);
    }

    fn on_disconnect(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.once.remove(&conn);
        self.leave_room(ctx, conn, true);
        if let Some(earned) = self.stats.forget(conn) {
            self.departed.push(earned);
        }
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_>) {
        let mut batch = std::mem::take(&mut self.departed);
        batch.extend(self.stats.take_all());
        self.save_stats(ctx, batch);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        let departed = std::mem::take(&mut self.departed);
        self.save_stats(ctx, departed);
        let now = ctx.now();
        let next_save = *self.next_save.get_or_insert(now + STATS_SAVE_PERIOD);
        if now >= next_save {
            self.next_save = Some(now + STATS_SAVE_PERIOD);
            let batch = self.stats.take_all();
            self.save_stats(ctx, batch);
        }
        let (tick, grace) = (ctx.tick(), self.config.room_grace);
        let sends = tick % u64::from(self.config.state_every.max(1)) == 0;
        let (stats, replica) = (&mut self.stats, &mut self.replica);
        self.rooms.tick(ctx, |name, room, ctx| {
            room.expire(ctx.now(), grace);
            room.step(|player, distance| stats.add(player, |s| s.distance += distance));
            match replica {
                Some(replica) => {
                    let own = |conn| {
                        let seat = ctx.hub().session::<Seat>(conn)?;
                        let a = room.avatars.get(&seat.player.as_ref()?.name)?;
                        Some((a.x, a.y))
                    };
                    replica.sync_room(ctx, name, room.present(), own);
                }
                // This node's simulation, for this node's members: in a cluster, `lobby` is
                // simulated on every node, and one node's state means nothing on another.
                None if sends => {
                    ctx.send_to_group_here(name, TOPIC_STATE, &State { tick, players: room.state() }, &[]);
                }
                None => {}
            }
        });
        if let Some(replica) = &mut self.replica {
            replica.end_sync();
            if sends {
                replica.flush(ctx, tick);
            }
        }
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
