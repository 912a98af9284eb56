//! A ban and a role change reach a player on another node: `Ctx::close_user` on one node of a
//! cluster closes the user's connections on every node, with the game's code and reason, and
//! `Ctx::set_roles` changes what its connections may call there at once. Two in-process
//! nodes of a small moderated game over a real Redis (started by the test; it fails without
//! one), and the Rust client over real sockets.
#![cfg(target_os = "linux")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use std::net::TcpStream;
use support::cluster::{Redis, wait_until};

use ticksock_client::{BlockingClient, Config, Versions};
use ticksock_protocol::{ClientFrame, ServerFrame};
use ticksock_server::cluster::ClusterConfig;
use ticksock_server::{
    AppError, Authenticator, Caller, Ctx, Game, Guard, Identity, Router, RunningServer, Server,
};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

const PATIENCE: Duration = Duration::from_secs(10);
const BANNED: u16 = 4010;

/// Any non-empty token is its user's name, without roles.
struct NameTokens;

impl Authenticator for NameTokens {
    fn verify(&self, token: &str) -> Result<Identity, String> {
        Ok(Identity { user: token.into(), roles: Vec::new(), expires: None })
    }
}

/// `login` binds a name, `online` asks the cluster whether a name is, `ban` closes a name
/// everywhere and says how many connections closed on this node, `promote` gives a name the
/// role `vip` everywhere, which `lounge` requires.
struct Moderated;

impl Game for Moderated {
    fn authenticator(&self) -> Option<Arc<dyn Authenticator>> {
        Some(Arc::new(NameTokens))
    }

    fn routes(router: &mut Router<Self>) {
        router.route("promote", |_: &mut Moderated, ctx: &mut Ctx<'_>, _: Caller, name: String| {
            Ok::<_, AppError>(ctx.set_roles(&name, &["vip".to_owned()]) as u32)
        });
        router
            .route("lounge", |_: &mut Moderated, _: &mut Ctx<'_>, _: Caller, (): ()| Ok::<_, AppError>(()))
            .require(Guard::role("vip"));
        router.route("login", |_: &mut Moderated, ctx: &mut Ctx<'_>, caller: Caller, name: String| {
            ctx.bind_user(caller.conn, &name).map_err(|e| AppError::new(1000, e.to_string()))
        });
        router.route("online", |_: &mut Moderated, ctx: &mut Ctx<'_>, _: Caller, name: String| {
            Ok::<_, AppError>(ctx.hub().is_online(&name))
        });
        router.route("ban", |_: &mut Moderated, ctx: &mut Ctx<'_>, _: Caller, name: String| {
            Ok::<_, AppError>(ctx.close_user(&name, BANNED, "banned by a moderator") as u32)
        });
    }
}

fn node(redis: &Redis, name: &str) -> RunningServer {
    let cluster = ClusterConfig {
        redis_url: redis.url(),
        node_name: Some(name.into()),
        public_url: None,
        lease: Duration::from_millis(1500),
        ticket_lifetime: Duration::from_secs(10),
        queue: 1024,
        retain: Duration::from_secs(2),
        inbox_len: 10_000,
    };
    let config = ticksock_server::Config {
        listen: "127.0.0.1:0".parse().expect("an address"),
        cluster: Some(cluster),
        ..ticksock_server::Config::default()
    };
    Server::start(config, Moderated).expect("the node starts")
}

/// A raw WebSocket, logged in as `name`: it reads every frame, so the test sees the close
/// frame's code and reason (the Rust client keeps them to itself).
fn raw_player(server: &RunningServer, name: &str) -> WebSocket<MaybeTlsStream<TcpStream>> {
    let url = format!("ws://{}/", server.local_addr());
    let mut request = url.as_str().into_client_request().expect("url");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "ticksock.v1".parse().expect("header"));
    let (mut ws, _) = tungstenite::connect(request).expect("upgrades");
    // A close that never comes fails the test instead of hanging it.
    if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        tcp.set_read_timeout(Some(PATIENCE)).expect("a timeout");
    }
    let body = ticksock_protocol::encode_body(&name).expect("encodes");
    let login = ClientFrame::Request { id: 1, route: "login", body: &body }.to_vec();
    ws.send(Message::binary(login)).expect("sends");
    loop {
        let message = ws.read().expect("the reply");
        if let Message::Binary(frame) = message
            && let Ok(ServerFrame::Reply { id: 1, .. }) = ServerFrame::decode(&frame)
        {
            return ws;
        }
    }
}

/// The close frame `ws` receives next (other messages are skipped).
fn close_of(ws: &mut WebSocket<MaybeTlsStream<TcpStream>>) -> (u16, String) {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => return (frame.code.into(), frame.reason.as_str().to_owned()),
            Ok(Message::Close(None)) => panic!("a close frame without a code"),
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

fn client(server: &RunningServer) -> BlockingClient {
    let url = format!("ws://{}/", server.local_addr());
    // Version 1 and no reconnect: a close ends the client, so the test sees it once.
    let config = Config { versions: Versions::V1Only, max_attempts: Some(0), ..Config::default() };
    BlockingClient::connect(&url, config, PATIENCE).expect("connects")
}

#[test]
fn a_ban_on_one_node_closes_the_players_connections_on_the_other_with_the_games_code() {
    let redis = Redis::start();
    let n1 = node(&redis, "n1");
    let n2 = node(&redis, "n2");
    let mut eve = raw_player(&n1, "eve");
    let mut eve_again = raw_player(&n1, "eve");
    let mut ann = client(&n2);
    let mut moderator = client(&n2);
    let () = ann.call("login", &"ann").expect("logs in");
    wait_until(PATIENCE, "n2 sees eve online", || {
        moderator.call::<_, bool>("online", &"eve").expect("answers")
    });

    let closed_on_n2: u32 = moderator.call("ban", &"eve").expect("bans");
    assert_eq!(closed_on_n2, 0, "eve plays on n1 only");
    for eve in [&mut eve, &mut eve_again] {
        assert_eq!(close_of(eve), (BANNED, "banned by a moderator".to_owned()));
    }
    wait_until(PATIENCE, "eve is offline everywhere", || {
        !moderator.call::<_, bool>("online", &"eve").expect("answers")
    });
    assert!(ann.call::<_, bool>("online", &"ann").expect("ann still plays"));
    ann.close();
    moderator.close();
    n1.shutdown().expect("n1 stops");
    n2.shutdown().expect("n2 stops");
}

#[test]
fn a_role_given_on_one_node_opens_a_guarded_route_on_the_other_at_once() {
    let redis = Redis::start();
    let n1 = node(&redis, "n1");
    let n2 = node(&redis, "n2");
    let config = Config { versions: Versions::V1Only, max_attempts: Some(0), ..Config::default() };
    let url = format!("ws://{}/", n1.local_addr());
    let mut vic =
        BlockingClient::connect_with_token(&url, config, Some("vic".into()), PATIENCE).expect("connects");
    let mut moderator = client(&n2);
    let refused = vic.call::<_, ()>("lounge", &());
    assert!(matches!(refused, Err(ticksock_client::Error::Server { code: 11, .. })), "{refused:?}");
    wait_until(PATIENCE, "n2 sees vic online", || {
        moderator.call::<_, bool>("online", &"vic").expect("answers")
    });

    let promoted_on_n2: u32 = moderator.call("promote", &"vic").expect("promotes");
    assert_eq!(promoted_on_n2, 0, "vic plays on n1 only");
    wait_until(PATIENCE, "vic may enter the lounge on n1", || vic.call::<_, ()>("lounge", &()).is_ok());
    vic.close();
    moderator.close();
    n1.shutdown().expect("n1 stops");
    n2.shutdown().expect("n2 stops");
}
