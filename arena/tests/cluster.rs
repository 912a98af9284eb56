//! A cluster of three `ticksock-arena` nodes over a real Redis (PROTOCOL.md section 12,
//! docs/CLUSTER.md), driven by the Rust client over real sockets: the whole push API across
//! nodes, exactly once; the same answers to "who is online" on every node; a room that lives on
//! one node, and the redirect to it; a SIGKILLed node gone from every answer within its lease;
//! and a Redis that dies for 5 s while whispers flow, losing none of them.
//!
//! Each test starts its own `redis-server` (it fails, never passes, without one) and nodes.
#![cfg(target_os = "linux")]

mod support;

use std::time::{Duration, Instant};

use support::cluster::{Node, Player, Proxy, Redis, wait_until};
use ticksock_arena::proto::{
    Chat, ChatLine, ERR_NO_SUCH_ROOM, ERR_NOT_ONLINE, Join, Joined, LoggedIn, Login, Presence, ROUTE_CHAT,
    ROUTE_JOIN, ROUTE_LOGIN, ROUTE_ROOMS, ROUTE_WHISPER, RoomInfo, State, TOPIC_CHAT, TOPIC_PRESENCE,
    TOPIC_STATE, TOPIC_WHISPER, Whisper,
};
use ticksock_client::Error;

/// Long enough for every push of a step to arrive on a loaded machine, and for a duplicate to
/// show itself.
const SETTLE: Duration = Duration::from_millis(700);
const PATIENCE: Duration = Duration::from_secs(10);

fn login(player: &mut Player, name: &str) -> u32 {
    let reply: LoggedIn = player.client.call(ROUTE_LOGIN, &Login { name: name.into() }).expect("login");
    reply.player_id
}

fn join(player: &mut Player, room: &str) -> Joined {
    player.client.call(ROUTE_JOIN, &Join { room: room.into() }).expect("join")
}

fn whisper(player: &mut Player, to: &str, text: &str) -> Result<(), Error> {
    player.client.call::<_, ()>(ROUTE_WHISPER, &Whisper { to: to.into(), text: text.into() })
}

fn rooms(player: &mut Player) -> Vec<RoomInfo> {
    player.client.call(ROUTE_ROOMS, &()).expect("rooms")
}

fn players_in(player: &mut Player, room: &str) -> Option<u32> {
    rooms(player).into_iter().find(|r| r.name == room).map(|r| r.players)
}

fn not_online(result: Result<(), Error>) -> bool {
    matches!(result, Err(Error::Server { code: ERR_NOT_ONLINE, .. }))
}

/// A Redis, nodes n1 and n2 with leases of `lease_ms`, and ann logged in on n1, bob on n2.
struct Pair {
    redis: Redis,
    n1: Node,
    n2: Node,
    ann: Player,
    bob: Player,
}

fn pair(lease_ms: u64) -> Pair {
    let redis = Redis::start();
    let n1 = Node::start(&redis, "n1", lease_ms);
    let n2 = Node::start(&redis, "n2", lease_ms);
    let (mut ann, mut bob) = (Player::connect(&n1.url()), Player::connect(&n2.url()));
    login(&mut ann, "ann");
    login(&mut bob, "bob");
    Pair { redis, n1, n2, ann, bob }
}

#[test]
fn whisper_chat_and_presence_cross_nodes_exactly_once_and_every_node_counts_the_same() {
    let redis = Redis::start();
    let nodes: Vec<Node> = ["n1", "n2", "n3"].iter().map(|n| Node::start(&redis, n, 2000)).collect();
    let names = ["ann", "bob", "cid"];
    let mut players: Vec<Player> = nodes.iter().map(|n| Player::connect(&n.url())).collect();
    for (player, name) in players.iter_mut().zip(names) {
        login(player, name);
    }

    // Presence: each joins the lobby once the nodes before it count the ones already there,
    // and each one already there hears of each newcomer once, whatever its node.
    for i in 0..3 {
        for p in players.iter_mut() {
            wait_until(PATIENCE, "every node counts the lobby", || players_in(p, "lobby") == Some(i as u32));
        }
        join(&mut players[i], "lobby");
    }
    for (i, p) in players.iter_mut().enumerate() {
        let heard: Vec<Presence> = p.pushes(TOPIC_PRESENCE, SETTLE);
        let joined: Vec<&str> = heard.iter().filter(|e| e.joined).map(|e| e.name.as_str()).collect();
        assert_eq!(joined, names[i + 1..], "{} hears of those who joined after it, once each", names[i]);
    }
    for p in players.iter_mut() {
        assert_eq!(players_in(p, "lobby"), Some(3), "every node counts all three");
    }
    // Each node simulates its own lobby: its state reaches its own members only (one node's
    // ticks, increasing, and its one player), never another node's.
    for p in players.iter_mut() {
        let states: Vec<State> = p.pushes(TOPIC_STATE, Duration::from_millis(300));
        assert!(states.len() >= 3, "states arrive: {}", states.len());
        assert!(states.windows(2).all(|w| w[0].tick < w[1].tick), "one node's ticks: {states:?}");
        assert!(states.iter().all(|s| s.players.len() == 1), "this node's player only: {states:?}");
    }

    // Group chat from n1 reaches all three (the sender too), once each.
    players[0].client.call::<_, ()>(ROUTE_CHAT, &Chat { text: "hello all".into() }).expect("chat");
    for (i, p) in players.iter_mut().enumerate() {
        let lines: Vec<ChatLine> = p.pushes(TOPIC_CHAT, SETTLE);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["hello all"], "{} gets the chat once", names[i]);
        assert_eq!(lines[0].name, "ann");
    }

    // Whispers: n1 to n3, n3 to n2, each once; online answers agree on every node.
    whisper(&mut players[0], "cid", "psst cid").expect("ann to cid");
    whisper(&mut players[2], "bob", "psst bob").expect("cid to bob");
    let to_cid: Vec<ChatLine> = players[2].pushes(TOPIC_WHISPER, SETTLE);
    let to_bob: Vec<ChatLine> = players[1].pushes(TOPIC_WHISPER, SETTLE);
    let to_ann: Vec<ChatLine> = players[0].pushes(TOPIC_WHISPER, SETTLE);
    assert_eq!(
        to_cid.iter().map(|l| (l.name.as_str(), l.text.as_str())).collect::<Vec<_>>(),
        [("ann", "psst cid")]
    );
    assert_eq!(
        to_bob.iter().map(|l| (l.name.as_str(), l.text.as_str())).collect::<Vec<_>>(),
        [("cid", "psst bob")]
    );
    assert!(to_ann.is_empty());
    for p in players.iter_mut() {
        assert!(not_online(whisper(p, "nobody", "?")), "no node has `nobody` online");
    }
    for node in &nodes {
        assert_eq!(node.metric("ticksock_cluster_lost_total"), 0);
        assert_eq!(node.metric("ticksock_cluster_duplicates_total"), 0);
    }
}

#[test]
fn a_room_lives_on_one_node_and_the_client_follows_the_redirect_keeping_its_name() {
    let Pair { redis: _redis, n1, n2, mut ann, mut bob } = pair(2000);
    let joined = join(&mut ann, "keep");
    assert_eq!(joined.roster.len(), 1);
    wait_until(PATIENCE, "n2 knows the room", || players_in(&mut bob, "keep") == Some(1));

    // bob, on n2, joins the room n1 holds: the client follows the redirect by itself.
    let joined = join(&mut bob, "keep");
    assert_eq!(joined.room, "keep");
    let mut roster: Vec<&str> = joined.roster.iter().map(|r| r.name.as_str()).collect();
    roster.sort_unstable();
    assert_eq!(roster, ["ann", "bob"], "bob arrived on n1 as bob, without logging in again");
    assert_eq!(bob.client.client().current_url(), n1.url(), "reconnects go to n1, without the ticket");
    let heard: Vec<Presence> = ann.pushes(TOPIC_PRESENCE, SETTLE);
    assert_eq!(heard.iter().map(|p| (p.name.as_str(), p.joined)).collect::<Vec<_>>(), [("bob", true)]);
    assert_eq!(n2.metric("ticksock_cluster_redirects_total"), 1);
    assert_eq!(n1.metric("ticksock_cluster_tickets_redeemed_total"), 1);
    // bob left n2: n2 sees him on n1 only, and ann sees him online.
    // The client closes it once its loop runs with nothing in flight there.
    wait_until(PATIENCE, "bob's old connection has closed", || {
        let _ = bob.client.wait_event(Duration::from_millis(10));
        n2.metric("ticksock_sessions_open") == 0
    });
    whisper(&mut ann, "bob", "welcome").expect("bob is online");
    assert_eq!(bob.pushes::<ChatLine>(TOPIC_WHISPER, SETTLE).len(), 1);

    // A forged ticket is refused with 4002 right after the Welcome.
    let url = format!("{}?ticket=Zm9yZ2Vk.AAAAAAAAAAAAAAAAAAAAAA", n1.url());
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).expect("url");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "ticksock.v1".parse().expect("header"));
    let (mut ws, _) = tungstenite::connect(request).expect("the upgrade itself succeeds");
    let close = loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => break frame,
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    let close = close.expect("a close code");
    assert_eq!(u16::from(close.code), ticksock_protocol::CLOSE_BAD_TICKET);
    assert_eq!(close.reason.as_str(), ticksock_server::api::CLOSE_BAD_TICKET_REASON);
}

#[test]
fn a_killed_node_s_players_and_rooms_vanish_from_every_node_within_one_lease() {
    const LEASE: Duration = Duration::from_millis(1500);
    let redis = Redis::start();
    let n1 = Node::start(&redis, "n1", LEASE.as_millis() as u64);
    let n2 = Node::start(&redis, "n2", LEASE.as_millis() as u64);
    let mut n3 = Node::start(&redis, "n3", LEASE.as_millis() as u64);
    let mut ann = Player::connect(&n1.url());
    let mut bob = Player::connect(&n2.url());
    let mut cid = Player::connect(&n3.url());
    login(&mut ann, "ann");
    login(&mut bob, "bob");
    login(&mut cid, "cid");
    join(&mut cid, "doomed");
    for p in [&mut ann, &mut bob] {
        wait_until(PATIENCE, "the room is listed", || players_in(p, "doomed") == Some(1));
        whisper(p, "cid", "still there?").expect("cid is online");
    }

    n3.kill();
    let killed = Instant::now();
    for (who, p) in [("n1", &mut ann), ("n2", &mut bob)] {
        let gone = wait_until(PATIENCE, "cid and the room vanish", || {
            not_online(whisper(p, "cid", "?")) && players_in(p, "doomed").is_none()
        });
        let since_kill = killed.elapsed();
        // Within one lease of its last renewal, which came at most a third of a lease before the
        // kill; the slack is the tick that runs the expiry and this loop's 20 ms steps.
        assert!(
            since_kill <= LEASE + Duration::from_millis(300),
            "{who}: gone after {since_kill:?} ({gone:?} of polling)"
        );
    }
    assert!(n1.metric("ticksock_cluster_lease_expiries_total") >= 1);
    // The room can be created again on another node now.
    let joined = join(&mut ann, "doomed");
    assert_eq!(joined.roster.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["ann"]);
    assert_eq!(ann.client.client().current_url(), n1.url(), "created on n1, no redirect");
}

#[test]
fn whispers_across_nodes_survive_five_seconds_without_redis_none_lost_or_doubled() {
    let Pair { mut redis, n1, n2, mut ann, mut bob } = pair(1500);
    wait_until(PATIENCE, "n1 sees bob", || whisper(&mut ann, "bob", "0").is_ok());
    let _ = bob.pushes::<ChatLine>(TOPIC_WHISPER, SETTLE);

    // Whispers every 10 ms for 9 s; Redis dies at 1.5 s and is back, empty, 5 s later.
    let started = Instant::now();
    let (mut sent, mut received) = (0u32, Vec::new());
    let (mut killed_at, mut restarted) = (None, false);
    while started.elapsed() < Duration::from_secs(9) {
        sent += 1;
        whisper(&mut ann, "bob", &sent.to_string()).expect("n1 answers a whisper whatever Redis does");
        received.extend(bob.pushes::<ChatLine>(TOPIC_WHISPER, Duration::from_millis(10)));
        match killed_at {
            None if started.elapsed() >= Duration::from_millis(1500) => {
                redis.kill();
                killed_at = Some(Instant::now());
            }
            Some(at) if !restarted && at.elapsed() >= Duration::from_secs(5) => {
                redis.restart();
                restarted = true;
            }
            _ => {}
        }
    }
    received.extend(bob.pushes::<ChatLine>(TOPIC_WHISPER, Duration::from_secs(4)));
    let got: Vec<u32> = received.iter().map(|l| l.text.parse().expect("a number")).collect();
    let lost = n2.metric("ticksock_cluster_lost_total");
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len(), "no whisper arrived twice");
    assert_eq!(got, sorted, "in order");
    assert_eq!(lost, 0, "the receiver saw no gap");
    assert_eq!(got.len() as u32, sent, "every whisper arrived: sent {sent}, got {}", got.len());
    assert!(n1.metric("ticksock_cluster_redis_errors_total") >= 1, "Redis did go away");
    assert_eq!(n1.metric("ticksock_cluster_redis_up"), 1, "and came back");
}

#[test]
fn what_changed_while_one_node_could_not_write_redis_is_seen_by_every_node_once_it_can() {
    let redis = Redis::start();
    let proxy = Proxy::start(&redis);
    // A lease long enough that n2 never forgets n1 over the short cut.
    let n1 = Node::start_at(&proxy.url(), "n1", 6000);
    let n2 = Node::start(&redis, "n2", 6000);
    let mut ann = Player::connect(&n1.url());
    let mut bob = Player::connect(&n2.url());
    login(&mut ann, "ann");
    login(&mut bob, "bob");
    wait_until(PATIENCE, "n2 sees ann", || whisper(&mut bob, "ann", "hi").is_ok());

    // n1 loses Redis; meanwhile ann logs in again as eve: ann is gone from n1, unannounced.
    proxy.cut();
    login(&mut ann, "eve");
    wait_until(PATIENCE, "n1 finds Redis gone", || n1.metric("ticksock_cluster_redis_up") == 0);
    proxy.restore();
    wait_until(PATIENCE, "n1 writes Redis again", || n1.metric("ticksock_cluster_redis_up") == 1);
    wait_until(PATIENCE, "n2 sees eve and no longer ann", || {
        whisper(&mut bob, "eve", "hi").is_ok() && not_online(whisper(&mut bob, "ann", "?"))
    });
    assert_eq!(n2.metric("ticksock_cluster_lease_expiries_total"), 0, "n2 never forgot n1");
}

#[test]
fn a_node_that_stalled_past_its_lease_is_whole_again_on_every_node_once_it_runs() {
    const LEASE: Duration = Duration::from_millis(1500);
    let redis = Redis::start();
    let n1 = Node::start(&redis, "n1", LEASE.as_millis() as u64);
    let n2 = Node::start(&redis, "n2", LEASE.as_millis() as u64);
    let mut ann = Player::connect(&n1.url());
    let mut bob = Player::connect(&n2.url());
    login(&mut ann, "ann");
    login(&mut bob, "bob");
    join(&mut ann, "den");
    wait_until(PATIENCE, "n2 sees ann and her room", || {
        whisper(&mut bob, "ann", "hi").is_ok() && players_in(&mut bob, "den") == Some(1)
    });

    // n1 stands still for two leases: its keys expire, and n2 forgets it.
    n1.pause();
    wait_until(PATIENCE, "n2 forgets n1", || not_online(whisper(&mut bob, "ann", "?")));
    std::thread::sleep(LEASE);
    n1.resume();
    wait_until(PATIENCE, "n2 sees ann and her room again", || {
        whisper(&mut bob, "ann", "back?").is_ok() && players_in(&mut bob, "den") == Some(1)
    });
    assert_eq!(redis.cli(&["HGET", "ticksock:node:n1:users", "ann"]), "1", "n1's keys are whole again");
}

#[test]
fn a_room_key_redis_holds_something_else_in_is_held_here_and_the_node_goes_on() {
    let Pair { redis, n1, n2: _n2, mut ann, mut bob } = pair(2000);
    redis.cli(&["HSET", "ticksock:room:odd", "x", "1"]);

    let joined = join(&mut ann, "odd");
    assert_eq!(joined.room, "odd", "answered: the room is held on n1 without a claim");
    join(&mut ann, "even");
    wait_until(PATIENCE, "n2 lists the room n1 claimed after", || players_in(&mut bob, "even") == Some(1));
    // Past a few heartbeats, each renewing n1's claims: none failed the connection.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(n1.metric("ticksock_cluster_redis_errors_total"), 0);
    assert_eq!(n1.metric("ticksock_cluster_redis_up"), 1);
}

/// How many `XREAD`s Redis has served.
fn xreads(redis: &Redis) -> u64 {
    let stats = redis.cli(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_xread:calls=")?.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn entries_and_fields_no_node_wrote_are_skipped_and_cost_nothing_else() {
    let redis = Redis::start();
    let n1 = Node::start(&redis, "n1", 2000);
    let mut ann = Player::connect(&n1.url());
    login(&mut ann, "ann");
    redis.cli(&["HSET", "ticksock:node:n1:users", "odd", "many"]);
    redis.cli(&["XADD", "ticksock:inbox:n1", "*", "x", "1"]);
    redis.cli(&["XADD", "ticksock:registry", "*", "x", "1"]);

    // n1's reader moves past the entries without their field: it waits in XREAD (250 ms at a
    // time), rather than reading them again and again.
    let before = xreads(&redis);
    std::thread::sleep(Duration::from_secs(1));
    let reads = xreads(&redis) - before;
    assert!(reads < 40, "{reads} XREADs in a second");

    // A node that joins now reads n1's share, odd field and all.
    let n2 = Node::start(&redis, "n2", 2000);
    let mut bob = Player::connect(&n2.url());
    login(&mut bob, "bob");
    wait_until(PATIENCE, "n2 sees ann", || whisper(&mut bob, "ann", "hi").is_ok());
    wait_until(PATIENCE, "n1 sees bob", || whisper(&mut ann, "bob", "hi").is_ok());
}

#[test]
fn an_arena_refused_for_want_of_space_is_not_claimed() {
    let Pair { redis, n1: _n1, n2: _n2, mut ann, mut bob } = pair(2000);
    // The lobby and 255 more: the arena's 256 at most.
    for i in 0..255 {
        join(&mut ann, &format!("a{i}"));
    }
    let refused = ann.client.call::<_, Joined>(ROUTE_JOIN, &Join { room: "over".into() });
    assert!(matches!(refused, Err(Error::Server { code: ERR_NO_SUCH_ROOM, .. })), "{refused:?}");
    wait_until(PATIENCE, "n2 lists n1's arenas", || rooms(&mut bob).len() == 256);
    assert_eq!(redis.cli(&["EXISTS", "ticksock:room:over"]), "0", "no claim in Redis");
    assert!(players_in(&mut bob, "over").is_none(), "nor listed on n2");
}

#[test]
fn a_node_whose_reading_fell_behind_the_registry_stream_s_cap_reads_every_share_again() {
    let redis = Redis::start();
    let proxy = Proxy::start(&redis);
    let n1 = Node::start(&redis, "n1", 6000);
    let n2 = Node::start_at(&proxy.url(), "n2", 6000);
    let mut ann = Player::connect(&n1.url());
    let mut bob = Player::connect(&n2.url());
    login(&mut ann, "ann");
    login(&mut bob, "bob");
    wait_until(PATIENCE, "n2 sees ann", || whisper(&mut bob, "ann", "hi").is_ok());

    // n2's answers from Redis are held (less than its calls' 1 s timeout) while n1 changes
    // and more entries than the registry stream's cap follow: n1's change is trimmed before
    // n2 reads it.
    proxy.hold();
    // Answers the XREAD n2 waits in, before n1's change could: that answer is held.
    redis.cli(&["XADD", "ticksock:registry", "*", "x", "1"]);
    login(&mut ann, "eve");
    wait_until(PATIENCE, "n1 wrote the change", || {
        redis.cli(&["HEXISTS", "ticksock:node:n1:users", "eve"]) == "1"
    });
    let flood = "for i = 1, 10000 do redis.call('XADD', KEYS[1], 'MAXLEN', '~', 100000, '*', 'x', '1') end";
    for _ in 0..11 {
        redis.cli(&["EVAL", flood, "1", "ticksock:registry"]);
    }
    proxy.release();
    wait_until(PATIENCE, "n2 sees eve and no longer ann", || {
        whisper(&mut bob, "eve", "hi").is_ok() && not_online(whisper(&mut bob, "ann", "?"))
    });
    // A failed call would have made n2 read every share again on its own.
    assert_eq!(n2.metric("ticksock_cluster_redis_errors_total"), 0, "n2's calls to Redis all succeeded");
    assert_eq!(n1.metric("ticksock_cluster_redis_errors_total"), 0);
}

#[test]
fn a_node_refuses_a_cluster_secret_too_short_to_sign_tickets() {
    use std::process::{Command, Stdio};
    let redis = Redis::start();
    redis.cli(&["SET", "ticksock:secret", "short"]);
    let mut node = Command::new(env!("CARGO_BIN_EXE_ticksock-arena"))
        .args(["--listen", "127.0.0.1:0", "--cluster", &redis.url()])
        // Its database in the target dir, not the source tree (the default is the working dir).
        .args(["--db", concat!(env!("CARGO_TARGET_TMPDIR"), "/cluster-short-secret.db")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the arena binary starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = node.try_wait().expect("its status") {
            break status;
        }
        if started.elapsed() > PATIENCE {
            let _ = node.kill();
            panic!("the node runs with a secret anyone can sign tickets with");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut node.stderr.take().expect("piped"), &mut stderr).expect("its stderr");
    assert!(!status.success());
    assert!(stderr.contains("ticksock:secret"), "{stderr}");
}

/// A partition between one node and Redis (the proxy cut for two leases), while the others
/// keep Redis: the cut node serves its own players, holds what it sends to other nodes, and
/// delivers all of it, once and in order, when the link returns; the others answer "not online"
/// for its players meanwhile, rather than wait.
#[test]
fn a_node_cut_off_from_redis_serves_its_players_and_delivers_what_it_held_when_the_link_returns() {
    const LEASE: Duration = Duration::from_millis(1500);
    let redis = Redis::start();
    let proxy = Proxy::start(&redis);
    let n1 = Node::start_at(&proxy.url(), "n1", LEASE.as_millis() as u64);
    let n2 = Node::start(&redis, "n2", LEASE.as_millis() as u64);
    let (mut ann, mut amy) = (Player::connect(&n1.url()), Player::connect(&n1.url()));
    let mut bob = Player::connect(&n2.url());
    login(&mut ann, "ann");
    login(&mut amy, "amy");
    login(&mut bob, "bob");
    wait_until(PATIENCE, "n1 sees bob", || whisper(&mut ann, "bob", "0").is_ok());
    wait_until(PATIENCE, "n2 sees ann", || whisper(&mut bob, "ann", "0").is_ok());
    let _ = bob.pushes::<ChatLine>(TOPIC_WHISPER, SETTLE);
    let _ = ann.pushes::<ChatLine>(TOPIC_WHISPER, SETTLE);

    proxy.cut();
    let cut_at = Instant::now();
    let mut held = 0;
    while cut_at.elapsed() < LEASE * 2 {
        held += 1;
        whisper(&mut ann, "bob", &held.to_string()).expect("n1 still knows bob and takes the whisper");
        whisper(&mut ann, "amy", "local").expect("a whisper on n1 is local");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        amy.pushes::<ChatLine>(TOPIC_WHISPER, SETTLE).len(),
        held as usize,
        "local whispers all arrive"
    );
    assert!(
        not_online(whisper(&mut bob, "ann", "?")),
        "n2 forgot n1 after its lease: not online, not a hang"
    );
    assert!(
        bob.pushes::<ChatLine>(TOPIC_WHISPER, Duration::from_millis(200)).is_empty(),
        "nothing crossed yet"
    );
    assert!(n1.metric("ticksock_cluster_queue_depth") > 0, "n1 holds the whispers for bob");

    proxy.restore();
    let got: Vec<ChatLine> = bob.pushes(TOPIC_WHISPER, Duration::from_secs(4));
    let numbers: Vec<u32> = got.iter().map(|l| l.text.parse().expect("a number")).collect();
    assert_eq!(numbers, (1..=held).collect::<Vec<u32>>(), "every held whisper, once, in order");
    wait_until(PATIENCE, "n2 sees ann again", || whisper(&mut bob, "ann", "back").is_ok());
    assert_eq!(n2.metric("ticksock_cluster_lost_total"), 0);
    assert_eq!(n1.metric("ticksock_cluster_dropped_total"), 0);
}
